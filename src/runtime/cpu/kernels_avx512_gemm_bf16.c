/* runtime/cpu/kernels_avx512_gemm_bf16.c — prefill (many tokens) against
 * BF16 weights with the activations rounded to bf16 and AVX-512 BF16 dot
 * products (vdpbf16ps: two bf16 products per float lane), as llama.cpp
 * multiplies its BF16 weights on processors that have the instruction.
 * Opt-in: only the avx512-int8 kernel table carries it (cpu_kernels.h), and
 * only where the processor reports AVX512_BF16.
 *
 * Numerics. The weights are used exactly as stored. Each activation is
 * rounded to bf16 once per op (round to nearest even, vcvtneps2bf16): it
 * moves by at most 2^-9 |x|, so an output moves by at most
 * 2^-9 sum_k |w_k x_k| beyond float32 accumulation error (the products of
 * two bf16 are exact in float32; vdpbf16ps accumulates in float32 with
 * denormals flushed to zero). tests/unit/test_runtime_cpu_gemm_bf16.c
 * checks that bound.
 *
 * Layout (the outer-product form, like kernels_avx512_gemm_int8.c): per
 * block of 32 weight rows and up to PANEL_COLS columns, the weights are
 * repacked once per call so that one 64-byte vector holds a column pair
 * (k, k+1) of 16 rows — vdpbf16ps's operand shape — by a 16×16 transpose
 * of 32-bit pairs. The micro-kernel keeps 12 tokens × 32 rows of float sums
 * in 24 registers: per column pair two weight loads and 24 vdpbf16ps
 * against each token's broadcast activation pair. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdalign.h>
#include <stdbool.h>
#include <string.h>

#include "runtime/cpu/kernels_avx512_gemm.h"
#include "runtime/cpu/kernels_avx512_gemm_internal.h"

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))
#define INLINE_AVX512_BF16 AVX512_BF16 static inline __attribute__((always_inline))

#define PANEL_ROWS 32
#define PANEL_COLS 1024 /* 64 KiB of weights per panel */
#define TILE_TOKENS 12

static bool has_avx512_bf16(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16");
}

/* Prepared activations of one token: cols bf16 values, padded to 64 bytes. */
static int64_t token_stride(const mlxe_matrix *w) { return (w->cols * 2 + 63) / 64 * 64; }

size_t mlxe_avx512_bf16_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x) {
    if (w->bits != 0 || w->dtype != MLXE_DTYPE_BF16 || w->cols % 2 != 0 || n_x <= 0 || !has_avx512_bf16()) return 0;
    return (size_t)(n_x * token_stride(w));
}

bool mlxe_avx512_bf16_prefill_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                        size_t capacity) {
    size_t need = mlxe_avx512_bf16_prefill_x_bytes(w, n_x);
    if (need == 0 || need > capacity) return false;
    mlxe_avx512_bf16_round_rows(x, n_x, w->cols, (uint8_t *)buffer, token_stride(w));
    return true;
}

AVX512_BF16 void mlxe_avx512_bf16_round_rows(const float *x, int64_t n_x, int64_t cols, uint8_t *out,
                                             int64_t stride) {
    for (int64_t t = 0; t < n_x; t++) {
        uint16_t *dst = (uint16_t *)(void *)(out + t * stride);
        for (int64_t k = 0; k < cols; k += 16) {
            __mmask16 mask = cols - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - k)) - 1u);
            __m256bh rounded = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, x + t * cols + k));
            _mm256_mask_storeu_epi16(dst + k, mask, (__m256i)rounded);
        }
    }
}

/* panel[(k / 2) * 32 + j] = the bf16 pair of row o + j at columns k, k+1
 * (zero for rows past n_rows), k < kc (even). */
AVX512_BF16 static void pack_panel(const mlxe_matrix *w, int64_t o, int n_rows, int64_t k0, int64_t kc,
                                   uint32_t *panel) {
    alignas(64) uint32_t scratch[16 * 16];
    const uint16_t *data = w->data;
    for (int half = 0; half < PANEL_ROWS / 16; half++) {
        for (int64_t k = 0; k < kc; k += 32) {
            const int64_t n = kc - k < 32 ? kc - k : 32;
            const __mmask32 mask = n == 32 ? ~(__mmask32)0 : (((__mmask32)1 << n) - 1);
            for (int j = 0; j < 16; j++) {
                int row = half * 16 + j;
                __m512i v = row < n_rows ? _mm512_maskz_loadu_epi16(mask, data + (o + row) * w->cols + k0 + k)
                                         : _mm512_setzero_si512();
                _mm512_store_si512(scratch + j * 16, v);
            }
            mlxe_avx512_transpose16x32(scratch, 16, panel + (k / 2) * PANEL_ROWS + half * 16, PANEL_ROWS);
        }
    }
}

/* n_t (a constant after inlining) tokens × 32 rows over n_pairs column
 * pairs: y[t * ldy + j] (+)= sum, masked by m0 (j < 16) and m1 (j >= 16). */
INLINE_AVX512_BF16 void tile(int n_t, const uint32_t *panel, int64_t n_pairs, const uint8_t *xp, int64_t x_stride,
                             float *y, int64_t ldy, __mmask16 m0, __mmask16 m1, bool accumulate) {
    __m512 acc0[TILE_TOKENS], acc1[TILE_TOKENS];
    for (int t = 0; t < n_t; t++) {
        acc0[t] = _mm512_setzero_ps();
        acc1[t] = _mm512_setzero_ps();
    }
    for (int64_t p = 0; p < n_pairs; p++) {
        __m512bh w0 = (__m512bh)_mm512_load_si512(panel + p * PANEL_ROWS);
        __m512bh w1 = (__m512bh)_mm512_load_si512(panel + p * PANEL_ROWS + 16);
        for (int t = 0; t < n_t; t++) {
            int32_t pair;
            memcpy(&pair, xp + t * x_stride + p * 4, sizeof pair);
            __m512bh xv = (__m512bh)_mm512_set1_epi32(pair);
            acc0[t] = _mm512_dpbf16_ps(acc0[t], w0, xv);
            acc1[t] = _mm512_dpbf16_ps(acc1[t], w1, xv);
        }
    }
    mlxe_avx512_store_tile(n_t, acc0, acc1, y, ldy, m0, m1, accumulate);
}

#define TILE_CASE(n)                                                                                                  \
    case n:                                                                                                           \
        tile(n, panel, n_pairs, xp, x_stride, y, ldy, m0, m1, accumulate);                                            \
        break;

AVX512_BF16 static void tile_tokens(int n_t, const uint32_t *panel, int64_t n_pairs, const uint8_t *xp,
                                    int64_t x_stride, float *y, int64_t ldy, __mmask16 m0, __mmask16 m1,
                                    bool accumulate) {
    switch (n_t) {
        TILE_CASE(1)
        TILE_CASE(2)
        TILE_CASE(3)
        TILE_CASE(4)
        TILE_CASE(5)
        TILE_CASE(6)
        TILE_CASE(7)
        TILE_CASE(8)
        TILE_CASE(9)
        TILE_CASE(10)
        TILE_CASE(11)
        default:
            tile(TILE_TOKENS, panel, n_pairs, xp, x_stride, y, ldy, m0, m1, accumulate);
            break;
    }
}

AVX512_BF16 void mlxe_avx512_bf16_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w,
                                                   int64_t o_begin, int64_t o_end, float *y) {
    alignas(64) uint32_t panel[PANEL_COLS / 2 * PANEL_ROWS];
    const int64_t cols = w->cols, ldy = w->rows, x_stride = token_stride(w);
    const uint8_t *xp = x_prepared;
    for (int64_t o = o_begin; o < o_end; o += PANEL_ROWS) {
        int n_rows = o_end - o < PANEL_ROWS ? (int)(o_end - o) : PANEL_ROWS;
        __mmask16 m0 = mlxe_avx512_lanes_mask(n_rows), m1 = mlxe_avx512_lanes_mask(n_rows - 16);
        for (int64_t k0 = 0; k0 < cols; k0 += PANEL_COLS) {
            int64_t kc = cols - k0 < PANEL_COLS ? cols - k0 : PANEL_COLS;
            pack_panel(w, o, n_rows, k0, kc, panel);
            for (int64_t t = 0; t < n_x; t += TILE_TOKENS) {
                int n_t = n_x - t < TILE_TOKENS ? (int)(n_x - t) : TILE_TOKENS;
                tile_tokens(n_t, panel, kc / 2, xp + t * x_stride + k0 * 2, x_stride, y + t * ldy + o, ldy, m0, m1,
                            k0 > 0);
            }
        }
    }
}

#endif
