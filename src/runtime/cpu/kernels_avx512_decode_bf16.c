/* runtime/cpu/kernels_avx512_decode_bf16.c — one token against BF16 rows
 * with AVX512_BF16's vdpbf16ps, for the avx512-int8 table (the default on
 * AVX-512 VNNI processors; cpu_kernels.h has the precision policy).
 *
 * Why: widening BF16 weights to float costs two instructions per 16
 * weights before the FMA, which kept one core at ~19 GB/s of weights while
 * llama.cpp's decode streams ~25 GB/s per core on this machine.
 * vdpbf16ps multiplies 32 stored weights per instruction.
 *
 * Numerics (the default, bf16-rounded activations): the op (cpu_matmul.c)
 * rounds the token's activations to bf16 once (round to nearest even,
 * vcvtneps2bf16, as the prefill GEMM in kernels_avx512_gemm_bf16.c does
 * and as llama.cpp does for BF16 weights); every row is then one vdpbf16ps
 * per 32 weights. Rounding moves each activation by at most 2^-9 |x|, and
 * products of two bf16 numbers are exact in float32, so an output moves by
 * at most 2^-9 sum_k |w_k x_k| besides float32 summation
 * (tests/unit/test_runtime_cpu_matmul.c checks it). vdpbf16ps treats bf16
 * denormals as zero, which adds at most 2^-126 sum_k |w_k|.
 *
 * The split kernel (table avx512-int8-split) instead splits the activations
 * into hi = bf16(x) and lo = bf16(x - hi) and dots each row with both:
 * |x - hi - lo| <= 2^-9 |x - hi| <= 2^-17 |x|, so 2^-17 sum_k |w_k x_k|,
 * at two vdpbf16ps per 32 weights and twice the activation bytes.
 *
 * Streaming: the weights are read once and the activations (2 bytes a
 * column, 4 KiB for a 2048-column row) are re-read for every row and must
 * stay in L1. Beside a plain stream of weights only ~4 KiB of reused data
 * survived in L1 on the Zen 4 VM, so each weight line is prefetched with
 * the non-temporal hint, which keeps streamed lines from displacing the
 * activations (bench/llamacpp/README.md has the measurements). */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/cpu/cpu_kernels.h"

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

/* The split kernel keeps its activations on the stack: 2 × this many BF16 values. */
#define MAX_SPLIT_COLS 16384

/* Bytes ahead of the loads at which each weight line is prefetched with the
 * non-temporal hint (see the file comment). */
#define PREFETCH_AHEAD 256

static bool has_avx512_bf16(void) {
    static int supported = -1; /* benign race: every thread computes the same answer */
    if (supported < 0) {
        __builtin_cpu_init();
        supported = __builtin_cpu_supports("avx512bf16");
    }
    return supported;
}

/* The mask of the first n (0..32) of 32 lanes. */
static inline __mmask32 first_lanes32(int64_t n) {
    return n >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << n) - 1u);
}
static inline __mmask16 first_lanes16(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* Prepared activations: cols bf16 values, zero-padded to a multiple of 32. */
static int64_t padded_cols(int64_t cols) { return (cols + 31) / 32 * 32; }

size_t mlxe_avx512_bf16_decode_x_bytes(const mlxe_matrix *w, int64_t n_x) {
    if (w->bits != 0 || w->dtype != MLXE_DTYPE_BF16 || n_x != 1 || w->cols <= 0 || !has_avx512_bf16()) return 0;
    return (size_t)padded_cols(w->cols) * sizeof(uint16_t);
}

AVX512_BF16 bool mlxe_avx512_bf16_decode_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                                   size_t capacity) {
    size_t need = mlxe_avx512_bf16_decode_x_bytes(w, n_x);
    if (need == 0 || need > capacity) return false;
    uint16_t *out = buffer;
    const int64_t cols = w->cols, padded = padded_cols(cols);
    for (int64_t k = 0; k < padded; k += 16) {
        __m256bh rounded = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(first_lanes16(cols - k), x + k));
        _mm256_storeu_si256((__m256i *)(void *)(out + k), (__m256i)rounded);
    }
    return true;
}

/* One row: two independent sums over 64 columns a step. (Measured on the
 * Zen 4 VM, Llama-3.2-1B shape, one thread: this form and one or two sums
 * over 32 or 128 columns stream alike; four sums over 128 columns were
 * ~15% slower, two rows side by side sharing the activation loads ~30%
 * slower on 2048-column rows (4 KiB apart: they alias in L1) and no
 * clearer than the noise on 8192-column rows, no prefetch ~6% slower,
 * 256-512 B ahead alike.) */
AVX512_BF16 static inline __attribute__((always_inline)) float row_dot(const uint16_t *x, const uint16_t *row,
                                                                        int64_t cols) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= cols; k += 64) {
        _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD, _MM_HINT_NTA);
        _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD + 64, _MM_HINT_NTA);
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(row + k), (__m512bh)_mm512_loadu_si512(x + k));
        acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_loadu_si512(row + k + 32),
                                (__m512bh)_mm512_loadu_si512(x + k + 32));
    }
    /* The tail: weights past cols are masked off (they belong to the next
     * row or lie past the matrix), the activations are zero there. */
    for (; k < cols; k += 32) {
        __m512i w0 = _mm512_maskz_loadu_epi16(first_lanes32(cols - k), row + k);
        acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)w0, (__m512bh)_mm512_loadu_si512(x + k));
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

AVX512_BF16 void mlxe_avx512_bf16_decode_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w,
                                                  int64_t o_begin, int64_t o_end, float *y) {
    (void)n_x;
    const uint16_t *x = x_prepared, *data = w->data;
    const int64_t cols = w->cols;
    for (int64_t o = o_begin; o < o_end; o++) y[o] = row_dot(x, data + o * cols, cols);
}

/* x[k..k+15] as hi and lo halves, stored at hi + k, lo + k. */
AVX512_BF16 static inline __attribute__((always_inline)) void split16(const float *x, int64_t k, __mmask16 mask,
                                                                       uint16_t *hi, uint16_t *lo) {
    __m512 v = _mm512_maskz_loadu_ps(mask, x + k);
    __m256bh h = _mm512_cvtneps_pbh(v);
    __m512 h_float = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)h), 16));
    __m256bh l = _mm512_cvtneps_pbh(_mm512_sub_ps(v, h_float));
    _mm256_storeu_si256((__m256i *)(hi + k), (__m256i)h);
    _mm256_storeu_si256((__m256i *)(lo + k), (__m256i)l);
}

AVX512_BF16 bool mlxe_avx512_decode_bf16_split(const float *x, const uint16_t *w, int64_t cols, int64_t o_begin,
                                               int64_t o_end, float *y) {
    if (!has_avx512_bf16() || cols <= 0 || cols > MAX_SPLIT_COLS) return false;
    /* padded to 32 columns with zeros, so the tail needs a mask on the weights only */
    _Alignas(64) uint16_t hi[MAX_SPLIT_COLS + 32], lo[MAX_SPLIT_COLS + 32];
    const int64_t padded = padded_cols(cols);
    for (int64_t k = 0; k < padded; k += 16) split16(x, k, first_lanes16(cols - k), hi, lo);
    for (int64_t o = o_begin; o < o_end; o++) {
        const uint16_t *row = w + o * cols;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
               acc3 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 64 <= cols; k += 64) {
            _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD, _MM_HINT_NTA);
            _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD + 64, _MM_HINT_NTA);
            __m512i w0 = _mm512_loadu_si512(row + k), w1 = _mm512_loadu_si512(row + k + 32);
            acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)w0, (__m512bh)_mm512_load_si512(hi + k));
            acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)w0, (__m512bh)_mm512_load_si512(lo + k));
            acc2 = _mm512_dpbf16_ps(acc2, (__m512bh)w1, (__m512bh)_mm512_load_si512(hi + k + 32));
            acc3 = _mm512_dpbf16_ps(acc3, (__m512bh)w1, (__m512bh)_mm512_load_si512(lo + k + 32));
        }
        for (; k < cols; k += 32) {
            __m512i w0 = _mm512_maskz_loadu_epi16(first_lanes32(cols - k), row + k);
            acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)w0, (__m512bh)_mm512_load_si512(hi + k));
            acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)w0, (__m512bh)_mm512_load_si512(lo + k));
        }
        y[o] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
    }
    return true;
}
#endif
