/* runtime/cpu/kernels_avx2_attention.c — the AVX2 + FMA attention kernels
 * (cpu_kernels.h: attention_scores, attention_exp, attention_values) for one
 * block of cached positions and the query heads of one kv head; the same
 * scheme as kernels_avx512_attention.c at 8 lanes.
 *
 * Scores: 8 positions at a time, one query head at a time: 8 accumulators
 * reduced by a transpose-and-add tree (7 adds) into one vector of 8 scores;
 * the 8 key rows, each read front to back, come from memory for the first
 * head, from L1 for the others. Values: at head_dim 64 and 128, 64 columns
 * of one head in 8 registers, each value row read front to back; else 8
 * columns of up to 8 heads (16 registers allow no wider tile). Reading in
 * address order matters in decode, where the cache comes from memory: the
 * hardware prefetchers follow it (kernels_avx512_attention.c). Head dims
 * that are not multiples of 8 use masked loads; rows past n are never read.
 *
 * exp: as the AVX-512 kernel (Cody-Waite reduction, degree-7 Taylor
 * polynomial, under a float ulp), 2^k built in the exponent field; t is
 * clamped to [-87, 88] so 2^k stays a normal float (e^-87 ~ 2e-38 stands in
 * for anything smaller, nothing against the block maximum's weight of 1). */
#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>

#include "runtime/cpu/cpu_kernels.h"

#define AVX2 __attribute__((target("avx2,fma")))
#define INLINE_AVX2 AVX2 static inline __attribute__((always_inline))

#define BLOCK MLXE_CPU_ATTENTION_BLOCK

/* Lanes below `remaining` set (all when remaining >= 8). */
INLINE_AVX2 __m256i tail_mask(int64_t remaining) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const int count = remaining >= 8 ? 8 : (int)remaining;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
}

INLINE_AVX2 __m256 load(const float *p, __m256i mask, bool full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

/* Element p of the result is the sum of the 8 elements of v[p]. */
INLINE_AVX2 __m256 sum8(const __m256 v[8]) {
    __m256 pairs[4], quads[2];
    for (int i = 0; i < 4; i++) /* per 128-bit lane: v[2i] in elements 0, 2 and v[2i+1] in 1, 3 */
        pairs[i] = _mm256_add_ps(_mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 2; i++) { /* per lane: the lane's sums of v[4i .. 4i+3] in order */
        __m256d a = _mm256_castps_pd(pairs[2 * i]), b = _mm256_castps_pd(pairs[2 * i + 1]);
        quads[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)), _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(quads[0], quads[1], 0x20),
                         _mm256_permute2f128_ps(quads[0], quads[1], 0x31));
}

/* dot(q, row p) for the rows p < rows of a tile; lanes from `rows` on
 * repeat the last row. Row by row, each read front to back (the tile's
 * lines in address order, which the hardware prefetchers follow when the
 * cache comes from memory); the query comes from L1. */
INLINE_AVX2 __m256 tile_scores(const float *q, const float *tile, int64_t head_dim, int rows) {
    __m256 acc[8];
    const int64_t full_end = head_dim & ~(int64_t)7;
    const __m256i mask = tail_mask(head_dim - full_end);
#pragma GCC unroll 8
    for (int p = 0; p < 8; p++) {
        const float *row = tile + (p < rows ? p : rows - 1) * head_dim;
        __m256 sum = _mm256_setzero_ps();
        for (int64_t c = 0; c < full_end; c += 8) sum = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), _mm256_loadu_ps(row + c), sum);
        if (full_end < head_dim)
            sum = _mm256_fmadd_ps(_mm256_maskload_ps(q + full_end, mask), _mm256_maskload_ps(row + full_end, mask), sum);
        acc[p] = sum;
    }
    return sum8(acc);
}

INLINE_AVX2 float horizontal_max(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

INLINE_AVX2 float horizontal_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 void mlxe_avx2_attention_scores(const float *q, int n_q, const float *keys, int64_t n, int64_t head_dim,
                                     float scale, float *scores, float *block_max) {
    const __m256 factor = _mm256_set1_ps(scale);
    __m256 maxima[MLXE_CPU_ATTENTION_MAX_QUERIES];
    for (int g = 0; g < n_q; g++) maxima[g] = _mm256_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < n; j0 += 8) {
        const int rows = n - j0 >= 8 ? 8 : (int)(n - j0);
        const __m256i mask = tail_mask(rows);
        const float *tile = keys + j0 * head_dim;
        for (int g = 0; g < n_q; g++) {
            __m256 s = rows == 8 ? tile_scores(q + g * head_dim, tile, head_dim, 8)
                                 : tile_scores(q + g * head_dim, tile, head_dim, rows);
            s = _mm256_mul_ps(s, factor);
            _mm256_maskstore_ps(scores + g * BLOCK + j0, mask, s);
            /* lanes past rows repeat the last row's score: harmless for the maximum */
            maxima[g] = _mm256_max_ps(maxima[g], s);
        }
    }
    for (int g = 0; g < n_q; g++) block_max[g] = horizontal_max(maxima[g]);
}

INLINE_AVX2 __m256 exp_ps(__m256 t) {
    const __m256 log2e = _mm256_set1_ps(1.44269504088896341f);
    const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
    t = _mm256_max_ps(_mm256_min_ps(t, _mm256_set1_ps(88.0f)), _mm256_set1_ps(-87.0f));
    __m256 k = _mm256_round_ps(_mm256_mul_ps(t, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(k, ln2_hi, t);
    r = _mm256_fnmadd_ps(k, ln2_lo, r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

AVX2 float mlxe_avx2_attention_exp(float *x, int64_t n, float shift) {
    const __m256 offset = _mm256_set1_ps(shift);
    __m256 sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), offset));
        _mm256_storeu_ps(x + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < n) {
        const __m256i mask = tail_mask(n - i);
        __m256 e = _mm256_and_ps(exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, mask), offset)),
                                 _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(x + i, mask, e);
        sum = _mm256_add_ps(sum, e);
    }
    return horizontal_sum(sum);
}

/* Columns [c, c + 8) of the n_q output rows (masked past head_dim). */
INLINE_AVX2 void values_columns(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                                float *out, int64_t c, bool full) {
    const __m256i mask = tail_mask(head_dim - c);
    __m256 acc[MLXE_CPU_ATTENTION_MAX_QUERIES];
#pragma GCC unroll 8
    for (int g = 0; g < n_q; g++) acc[g] = load(out + g * head_dim + c, mask, full);
    for (int64_t j = 0; j < n; j++) {
        const __m256 v = load(values + j * head_dim + c, mask, full);
#pragma GCC unroll 8
        for (int g = 0; g < n_q; g++) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(weights + g * BLOCK + j), v, acc[g]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < n_q; g++) {
        if (full)
            _mm256_storeu_ps(out + g * head_dim + c, acc[g]);
        else
            _mm256_maskstore_ps(out + g * head_dim + c, mask, acc[g]);
    }
}

/* n_q a constant after inlining, so the accumulators stay in registers. */
INLINE_AVX2 void values_all(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                            float *out) {
    int64_t c = 0;
    for (; c + 8 <= head_dim; c += 8) values_columns(weights, n_q, values, n, head_dim, out, c, true);
    if (c < head_dim) values_columns(weights, n_q, values, n, head_dim, out, c, false);
}

/* Columns [c, c + 64) of one output row over the block's value rows, each
 * row's 64 columns read front to back. */
INLINE_AVX2 void values_64_columns(const float *weights, const float *values, int64_t n, int64_t head_dim,
                                   float *out) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int w = 0; w < 8; w++) acc[w] = _mm256_loadu_ps(out + 8 * w);
    for (int64_t j = 0; j < n; j++) {
        const __m256 weight = _mm256_broadcast_ss(weights + j);
        const float *row = values + j * head_dim;
#pragma GCC unroll 8
        for (int w = 0; w < 8; w++) acc[w] = _mm256_fmadd_ps(weight, _mm256_loadu_ps(row + 8 * w), acc[w]);
    }
#pragma GCC unroll 8
    for (int w = 0; w < 8; w++) _mm256_storeu_ps(out + 8 * w, acc[w]);
}

AVX2 void mlxe_avx2_attention_values(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                                     float *out) {
    if (head_dim % 64 == 0) {
        /* Head dims of 64 and 128: one head and 64 columns at a time (16
         * registers allow no more), each value row's columns read front to
         * back; the block (16-32 KiB) comes from L1 for the next heads. */
        for (int64_t c = 0; c < head_dim; c += 64)
            for (int h = 0; h < n_q; h++)
                values_64_columns(weights + h * BLOCK, values + c, n, head_dim, out + h * head_dim + c);
        return;
    }
    switch (n_q) {
    case 1: values_all(weights, 1, values, n, head_dim, out); break;
    case 2: values_all(weights, 2, values, n, head_dim, out); break;
    case 3: values_all(weights, 3, values, n, head_dim, out); break;
    case 4: values_all(weights, 4, values, n, head_dim, out); break;
    case 5: values_all(weights, 5, values, n, head_dim, out); break;
    case 6: values_all(weights, 6, values, n, head_dim, out); break;
    case 7: values_all(weights, 7, values, n, head_dim, out); break;
    default: values_all(weights, 8, values, n, head_dim, out); break;
    }
}

#endif
