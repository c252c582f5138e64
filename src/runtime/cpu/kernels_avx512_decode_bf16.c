/* runtime/cpu/kernels_avx512_decode_bf16.c — one token against BF16 rows
 * with AVX512_BF16's vdpbf16ps, for the avx512-int8 table (the default on
 * AVX-512 VNNI processors; cpu_kernels.h has the precision policy).
 *
 * Why: widening BF16 weights to float costs two instructions per 16
 * weights before the FMA, which kept one core at ~19 GB/s of weights while
 * llama.cpp's F16 decode streams ~40 GB/s on this machine's two cores.
 * vdpbf16ps multiplies 32 stored weights per instruction.
 *
 * Numerics: the activations are split once per call into two BF16 vectors,
 * hi = bf16(x) and lo = bf16(x - hi) (round to nearest even), and each row
 * is dotted with both: sum_k w_k hi_k + w_k lo_k. Products of two BF16
 * numbers are exact in float32; |x - hi - lo| <= 2^-9 |x - hi| <= 2^-17 |x|,
 * so besides float32 summation each output moves by at most
 * 2^-17 sum_k |w_k x_k| (tests/unit/test_runtime_cpu_matmul.c checks it).
 * vdpbf16ps treats BF16 denormals as zero: for lo that drops values below
 * ~1e-38, far under that bound. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/cpu/cpu_kernels.h"

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

/* The split activations live on the stack: 2 × this many BF16 values. */
#define MAX_COLS 16384

/* Bytes ahead of the loads at which each weight line is prefetched with the
 * non-temporal hint. The split activations (4 bytes a column) are re-read
 * for every row and must stay in L1; beside a plain stream of weights only
 * ~4 KiB of them survived on the Zen 4 VM (a 2048-column row needs 8 KiB:
 * a scratch kernel reading only 4 KiB of them streamed ~30% faster), and
 * the hint keeps the streamed lines from displacing them. Measured ~5% per
 * core (bench_decode_matmul --bits 0 --threads 1); 128-512 B alike. */
#define PREFETCH_AHEAD 256

static bool has_avx512_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
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
    static int supported = -1; /* benign race: every thread computes the same answer */
    if (supported < 0) supported = has_avx512_bf16();
    if (!supported || cols <= 0 || cols > MAX_COLS) return false;
    /* padded to 32 columns with zeros, so the tail needs a mask on the weights only */
    _Alignas(64) uint16_t hi[MAX_COLS + 32], lo[MAX_COLS + 32];
    const int64_t padded = (cols + 31) / 32 * 32;
    for (int64_t k = 0; k < padded; k += 16) {
        __mmask16 mask = k >= cols ? 0 : cols - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - k)) - 1u);
        split16(x, k, mask, hi, lo);
    }
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
            __mmask32 mask = cols - k >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (cols - k)) - 1u);
            __m512i w0 = _mm512_maskz_loadu_epi16(mask, row + k);
            acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)w0, (__m512bh)_mm512_load_si512(hi + k));
            acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)w0, (__m512bh)_mm512_load_si512(lo + k));
        }
        y[o] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
    }
    return true;
}
#endif
