/* runtime/sampling.h — what the host sampler (engine/sampler.c) and the
 * device's sample op (ops.h sample, cuda/cuda_sampling.cu) share so that both
 * choose the same token from the same logits and the same random draw: the
 * parameter block a decode step reads from device memory, and the arithmetic
 * whose result must not depend on where or in which order it runs.
 *
 * Why integers: the sampler sums token probabilities and walks them against
 * a uniform draw. A sum in floating point depends on its order, and a GPU
 * sums in a tree, the host in a loop; so a probability is a 64-bit integer
 * weight floor(2^shift * exp(logit - max)) (shift 40 for vocabularies under
 * 2^22: a token under 2^-40 of the most likely one weighs nothing) and
 * sums are exact in any order. exp is computed here from IEEE additions and
 * multiplications only (no library exp, whose last bit differs between the
 * C library and CUDA; no fused multiply-add: CUDA's __dmul_rn / __dadd_rn,
 * and C in ISO mode, which GCC does not contract), so both sides get the
 * same bits. The draw is target = floor(u * total) with u the 53-bit
 * uniform, computed exactly in 128 bits: the token whose running weight
 * first exceeds target is chosen.
 *
 * Included by C files and by .cu files (where the functions are device
 * functions). */
#ifndef MLXE_RUNTIME_SAMPLING_H
#define MLXE_RUNTIME_SAMPLING_H

#include <stdint.h>

/* The device samples with top_k in [1, MLXE_SAMPLE_MAX_TOP_K] (or greedy);
 * other options sample on the host. */
#define MLXE_SAMPLE_MAX_TOP_K 128
/* Entries of logit bias plus penalised history tokens a step may carry. */
#define MLXE_SAMPLE_MAX_ADJUST 1024
#define MLXE_SAMPLING_STRING(x) #x
#define MLXE_SAMPLING_STRINGIFY(x) MLXE_SAMPLING_STRING(x)

/* One adjusted token: a logit bias (first n_bias entries: logit += bias) or
 * a token of the penalty window seen count times (the next n_penalty). Each
 * token appears at most once in each part. */
typedef struct mlxe_sample_adjust {
    int32_t token;
    int32_t count;
    float bias;
    int32_t unused;
} mlxe_sample_adjust;

/* A decode step's sampling, in device memory (uploaded with the step's
 * tokens, so a recorded graph reads the new values on every replay). */
typedef struct mlxe_sample_params {
    uint64_t random_bits;                /* this step's draw: 53 uniform bits */
    double log_min_p;                    /* log(min_p) (min_p > 0 only) */
    const mlxe_sample_adjust *adjust;    /* device memory [n_bias + n_penalty] */
    float temperature;                   /* <= 0: greedy (argmax after bias and penalties) */
    float top_p;                         /* 1 = off */
    float min_p;                         /* 0 = off */
    float repetition_penalty;            /* 1 = off */
    float presence_penalty, frequency_penalty;
    int32_t top_k;                       /* 1..MLXE_SAMPLE_MAX_TOP_K when temperature > 0 */
    int32_t n_bias, n_penalty;
    int32_t weight_shift;                /* weights are floor(2^weight_shift * p) */
} mlxe_sample_params;

#ifdef __CUDACC__
#define MLXE_SAMPLING_FN static __device__ __forceinline__
#define MLXE_SAMPLING_DMUL(a, b) __dmul_rn((a), (b))
#define MLXE_SAMPLING_DADD(a, b) __dadd_rn((a), (b))
#define MLXE_SAMPLING_DDIV(a, b) __ddiv_rn((a), (b))
#define MLXE_SAMPLING_U2D(a) __ull2double_rn(a)
#define MLXE_SAMPLING_BITS_TO_DOUBLE(b) __longlong_as_double((long long)(b))
#else
#include <string.h>
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#define MLXE_SAMPLING_FN static inline
#define MLXE_SAMPLING_DMUL(a, b) ((a) * (b))
#define MLXE_SAMPLING_DADD(a, b) ((a) + (b))
#define MLXE_SAMPLING_DDIV(a, b) ((a) / (b))
#define MLXE_SAMPLING_U2D(a) ((double)(a))
static inline double mlxe_sampling_bits_to_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}
#define MLXE_SAMPLING_BITS_TO_DOUBLE(b) mlxe_sampling_bits_to_double(b)
#endif

/* floor(2^shift * exp(d)) for d <= 0 (0 for NaN and below -shift*ln2 - 1):
 * exp(d) = 2^k * exp(r), k = round(d / ln2), |r| <= ln2/2, exp(r) by its
 * Taylor series to degree 12 (relative error below 2e-16), the constants
 * given as bits so every compiler reads the same doubles. */
MLXE_SAMPLING_FN uint64_t mlxe_sample_weight(float d, int shift) {
    const double x = (double)d;
    if (!(x > -(double)shift * 0.6931471805599453 - 1.0)) return 0;
    if (x >= 0.0) return (uint64_t)1 << shift; /* d is logit - max: 0 at the max */
    const uint64_t coefficient_bits[13] = {
        0x3ff0000000000000ULL, 0x3ff0000000000000ULL, 0x3fe0000000000000ULL, 0x3fc5555555555555ULL,
        0x3fa5555555555555ULL, 0x3f81111111111111ULL, 0x3f56c16c16c16c17ULL, 0x3f2a01a01a01a01aULL,
        0x3efa01a01a01a01aULL, 0x3ec71de3a556c734ULL, 0x3e927e4fb7789f5cULL, 0x3e5ae64567f544e4ULL,
        0x3e21eed8eff8d898ULL};
    const double log2e = MLXE_SAMPLING_BITS_TO_DOUBLE(0x3ff71547652b82feULL);
    const double ln2_hi = MLXE_SAMPLING_BITS_TO_DOUBLE(0x3fe62e42fee00000ULL); /* 32 bits: k * ln2_hi is exact */
    const double ln2_lo = MLXE_SAMPLING_BITS_TO_DOUBLE(0x3dea39ef35793c76ULL);
    /* k = round(x / ln2), in [-(shift + 2), 0] */
    const double scaled = MLXE_SAMPLING_DADD(MLXE_SAMPLING_DMUL(x, log2e), -0.5);
    int k = (int)scaled; /* truncation toward zero of a negative number: ceil */
    if ((double)k > scaled) k--; /* floor(x/ln2 - 0.5)... */
    k++;                         /* ...+ 1 = round half down */
    const double kd = (double)k;
    const double r = MLXE_SAMPLING_DADD(MLXE_SAMPLING_DADD(x, -MLXE_SAMPLING_DMUL(kd, ln2_hi)),
                                        -MLXE_SAMPLING_DMUL(kd, ln2_lo));
    double p = MLXE_SAMPLING_BITS_TO_DOUBLE(coefficient_bits[12]);
    for (int n = 11; n >= 0; n--)
        p = MLXE_SAMPLING_DADD(MLXE_SAMPLING_DMUL(p, r), MLXE_SAMPLING_BITS_TO_DOUBLE(coefficient_bits[n]));
    /* times 2^(k + shift): exact (k + shift >= -2, a normal power of two) */
    const double scale = MLXE_SAMPLING_BITS_TO_DOUBLE((uint64_t)(1023 + k + shift) << 52);
    const double w = MLXE_SAMPLING_DMUL(p, scale);
    return w > 0.0 ? (uint64_t)w : 0;
}

/* The weight shift for a vocabulary: 40, less when vocab * 2^40 would not
 * fit the 63 bits a sum may use. */
MLXE_SAMPLING_FN int mlxe_sample_weight_shift(int64_t vocab) {
    int bits = 0;
    while (bits < 62 && ((int64_t)1 << bits) < vocab) bits++;
    int shift = 62 - bits;
    return shift < 40 ? shift : 40;
}

/* floor(random_bits * total / 2^53): the draw's place in [0, total). */
MLXE_SAMPLING_FN uint64_t mlxe_sample_target(uint64_t random_bits, uint64_t total) {
    const uint64_t a_lo = random_bits & 0xffffffffULL, a_hi = random_bits >> 32;
    const uint64_t b_lo = total & 0xffffffffULL, b_hi = total >> 32;
    const uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    const uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xffffffffULL) + (lo_hi & 0xffffffffULL);
    const uint64_t high = hi_hi + (hi_lo >> 32) + (lo_hi >> 32) + (middle >> 32);
    const uint64_t low = (middle << 32) | (lo_lo & 0xffffffffULL);
    return (high << 11) | (low >> 53);
}

#ifndef __CUDACC__
#include <math.h>

/* The greedy rule on the host (the sampler's argmax, and the CPU's argmax
 * op): the first index of the largest value, NaN never beating a number, 0
 * when every value is NaN. The GPU's argmax reduces in a tree with the same
 * order (cuda_sampling.cu beats). */
static inline int32_t mlxe_sample_argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i]))) best = i;
    return (int32_t)best;
}
#endif

/* top_p over candidates sorted best first (transformers' TopPLogitsWarper):
 * the walk stops at a token once the weight before it reaches top_p of the
 * total. */
MLXE_SAMPLING_FN int mlxe_sample_top_p_stops(uint64_t before, uint64_t total, float top_p) {
    return MLXE_SAMPLING_DDIV(MLXE_SAMPLING_U2D(before), MLXE_SAMPLING_U2D(total)) >= (double)top_p;
}

#endif
