/* runtime/cpu/kernels_avx512_gemm_int8.c — prefill (many tokens) against
 * MLX 4/8-bit affine-quantized weights with int8 activations and AVX-512
 * VNNI integer dot products (vpdpbusd), the arithmetic llama.cpp uses for
 * its Q4_0/Q8_0 weights with Q8 activations. Opt-in: only the avx512-int8
 * kernel table carries it (cpu_kernels.h, entries prefill_*).
 *
 * Numerics. Each token's activations are quantized once per op
 * (quantize_x) per weight group: dx = max|x| / 127 over the group's
 * columns, xq_k = round(x_k / dx) in [-127, 127], and the float sum of the
 * group's x. For a weight group with scale s and bias b,
 *     sum_k (s q_k + b) x_k  ~=  (s dx) * sum_k q_k xq_k  +  b * sum_k x_k
 * where sum_k q_k xq_k is exact in int32 (|q xq| <= 255 * 127, at most 128
 * terms: below 2^24, so its conversion to float is exact too) and the
 * bias term uses the float activations. The only error beyond float32
 * rounding is the activation rounding, |x_k - dx xq_k| <= dx / 2: an
 * output moves by at most sum_k |s q_k| dx_g / 2
 * (tests/unit/test_runtime_cpu_gemm_int8.c checks that bound).
 *
 * Layout (the outer-product form, as a BLAS micro-kernel). For each block
 * of PANEL_ROWS (32) weight rows and up to PANEL_COLS columns, the
 * unsigned weights (4-bit nibbles unpacked to bytes) are repacked once per
 * call so that one 64-byte vector holds 4 consecutive columns of 16 rows —
 * vpdpbusd's operand shape: each 32-bit lane (one row) gets 4 byte
 * products summed. The repacking is a 16×16 transpose of 32-bit elements.
 * The scales and biases of the block are converted to float vectors (one
 * lane per row). The micro-kernel keeps TILE_TOKENS (6) tokens × 32 rows
 * of int32 group sums and float totals in 24 registers: per 4 columns two
 * weight loads and 12 vpdpbusd against each token's 4 activation bytes
 * broadcast; at each group's end, per token and 16 rows, one conversion
 * and three FMAs/multiplies fold the group into the float totals, which
 * land in y token-major, 16 outputs per vector, with no horizontal sum. */
#if defined(__x86_64__)

#include "runtime/cpu/kernels_avx512_gemm.h"

#include <immintrin.h>
#include <stdalign.h>
#include <stdbool.h>
#include <string.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/half.h"
#include "runtime/cpu/kernels_avx512_gemm_internal.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE_AVX512 AVX512 static inline __attribute__((always_inline))

#define PANEL_ROWS 32
#define PANEL_COLS 2048 /* a multiple of every group size (32, 64, 128); 64 KiB of bytes per panel */
#define TILE_TOKENS 6

/* Prepared activations of one token: cols int8 values, then groups floats
 * dx, then groups floats sum, padded to 64 bytes. */
static int64_t token_stride(const mlxe_matrix *w) {
    const int64_t groups = w->cols / w->group_size;
    return (w->cols + 8 * groups + 63) / 64 * 64;
}

size_t mlxe_avx512_int8_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x) {
    if ((w->bits != 4 && w->bits != 8) || w->group_size % 32 != 0 || w->group_size > 128 ||
        w->cols % w->group_size != 0 || n_x <= 0)
        return 0;
    return (size_t)(n_x * token_stride(w));
}

AVX512 static void quantize_token(const float *x, int64_t cols, int64_t group_size, int8_t *xq, float *dx,
                                  float *sum) {
    for (int64_t g0 = 0, g = 0; g0 < cols; g0 += group_size, g++) {
        __m512 max_abs = _mm512_setzero_ps(), total = _mm512_setzero_ps();
        for (int64_t k = g0; k < g0 + group_size; k += 16) {
            __m512 v = _mm512_loadu_ps(x + k);
            max_abs = _mm512_max_ps(max_abs, _mm512_abs_ps(v));
            total = _mm512_add_ps(total, v);
        }
        float m = _mm512_reduce_max_ps(max_abs);
        __m512 inverse = _mm512_set1_ps(m > 0 ? 127.0f / m : 0.0f);
        dx[g] = m / 127.0f;
        sum[g] = _mm512_reduce_add_ps(total);
        for (int64_t k = g0; k < g0 + group_size; k += 16) {
            /* round to nearest even (the default MXCSR mode); |x * 127 / m| <= 127 up to rounding */
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), inverse));
            _mm_storeu_si128((__m128i *)(xq + k), _mm512_cvtsepi32_epi8(q));
        }
    }
}

bool mlxe_avx512_int8_prefill_quantize_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                         size_t capacity) {
    size_t need = mlxe_avx512_int8_prefill_x_bytes(w, n_x);
    if (need == 0 || need > capacity) return false;
    const int64_t stride = token_stride(w), groups = w->cols / w->group_size;
    for (int64_t t = 0; t < n_x; t++) {
        uint8_t *out = (uint8_t *)buffer + t * stride;
        float *dx = (float *)(void *)(out + w->cols);
        quantize_token(x + t * w->cols, w->cols, w->group_size, (int8_t *)out, dx, dx + groups);
    }
    return true;
}

static inline float scale_value(mlxe_dtype dtype, const void *data, int64_t i) {
    if (dtype == MLXE_DTYPE_F16) return mlxe_f16_to_f32(((const uint16_t *)data)[i]);
    if (dtype == MLXE_DTYPE_BF16) return mlxe_bf16_to_f32(((const uint16_t *)data)[i]);
    return ((const float *)data)[i];
}

/* 64 unsigned weights of a row from column k (k a multiple of 64, or of 32
 * with only 32 valid: then the upper half is zero) in column order. */
INLINE_AVX512 __m512i row_bytes64(int bits, const uint8_t *row, int64_t k, int64_t n_valid) {
    if (bits == 8) {
        __mmask64 mask = n_valid >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << n_valid) - 1);
        return _mm512_maskz_loadu_epi8(mask, row + k);
    }
    /* 32 packed bytes = 64 nibbles, least significant first: byte i holds
     * column 2i (low nibble) and 2i+1 (high nibble). */
    __mmask32 mask = n_valid >= 64 ? ~(__mmask32)0 : (((__mmask32)1 << (n_valid / 2)) - 1);
    __m256i packed = _mm256_maskz_loadu_epi8(mask, row + k / 2);
    const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(packed, low_nibbles);
    __m256i hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low_nibbles);
    /* per 128-bit lane: unpacklo gives columns 0-15 (lane 0) and 32-47 (lane 1), unpackhi 16-31 and 48-63 */
    __m256i a = _mm256_unpacklo_epi8(lo, hi), b = _mm256_unpackhi_epi8(lo, hi);
    __m256i first = _mm256_permute2x128_si256(a, b, 0x20), second = _mm256_permute2x128_si256(a, b, 0x31);
    return _mm512_inserti64x4(_mm512_castsi256_si512(first), second, 1);
}

/* 16 F16/BF16 values of a packed group header as floats. */
INLINE_AVX512 __m512 packed_header_values(mlxe_dtype dtype, const uint8_t *values) {
    __m256i halves = _mm256_load_si256((const __m256i *)(const void *)values);
    if (dtype == MLXE_DTYPE_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
    return _mm512_cvtph_ps(halves);
}

/* pack_panel for a matrix in the CPU's packed layout (cpu_pack.c): each
 * half of the panel (16 rows from a multiple of 16) is one tile, whose
 * 64-byte chunks already hold one word of 16 rows. 8-bit: a chunk is 4
 * columns of the 16 rows, the panel's vector as it is. 4-bit: a chunk is 8
 * columns; its nibbles are unpacked to bytes (low: even columns, high: odd)
 * and interleaved into the two vectors of columns 0-3 and 4-7. */
AVX512 static void pack_panel_packed(int bits, const mlxe_matrix *w, int64_t o, int64_t k0, int64_t kc,
                                     uint32_t *panel, float *scales, float *biases) {
    const int64_t g0 = k0 / w->group_size, n_groups = kc / w->group_size;
    const int64_t group_bytes = mlxe_cpu_packed_group_bytes(w), tile_bytes = mlxe_cpu_packed_tile_bytes(w);
    const int64_t chunks = w->group_size * bits / 32, chunk_columns = 32 / bits;
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
    for (int half = 0; half < PANEL_ROWS / 16; half++) {
        const int64_t first_row = o + half * 16;
        if (first_row >= w->rows) {
            for (int64_t g = 0; g < n_groups; g++) {
                _mm512_store_ps(scales + g * PANEL_ROWS + half * 16, _mm512_setzero_ps());
                _mm512_store_ps(biases + g * PANEL_ROWS + half * 16, _mm512_setzero_ps());
            }
            for (int64_t q = 0; q < kc / 4; q++) _mm512_store_si512(panel + q * PANEL_ROWS + half * 16, _mm512_setzero_si512());
            continue;
        }
        const uint8_t *tile = (const uint8_t *)w->packed + (first_row / MLXE_CPU_PACK_ROWS) * tile_bytes;
        for (int64_t g = 0; g < n_groups; g++) {
            const uint8_t *group = tile + (g0 + g) * group_bytes;
            _mm512_store_ps(scales + g * PANEL_ROWS + half * 16, packed_header_values(w->scale_dtype, group));
            _mm512_store_ps(biases + g * PANEL_ROWS + half * 16, packed_header_values(w->scale_dtype, group + 32));
            for (int64_t c = 0; c < chunks; c++) {
                const __m512i v = _mm512_load_si512(group + MLXE_CPU_PACK_HEADER + c * 64);
                const int64_t quad = (g * w->group_size + c * chunk_columns) / 4;
                if (bits == 8) {
                    _mm512_store_si512(panel + quad * PANEL_ROWS + half * 16, v);
                    continue;
                }
                /* per row: lo bytes = columns 0,2,4,6, hi bytes = 1,3,5,7; unpacking
                 * interleaves them as rows r: [c0-3][c4-7], r+1: [c0-3][c4-7] (lo
                 * half of each 128-bit lane) and r+2, r+3 (high half) */
                const __m512i lo = _mm512_and_si512(v, low_nibbles);
                const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low_nibbles);
                const __m512 first = _mm512_castsi512_ps(_mm512_unpacklo_epi8(lo, hi));
                const __m512 second = _mm512_castsi512_ps(_mm512_unpackhi_epi8(lo, hi));
                _mm512_store_si512(panel + quad * PANEL_ROWS + half * 16,
                                   _mm512_castps_si512(_mm512_shuffle_ps(first, second, _MM_SHUFFLE(2, 0, 2, 0))));
                _mm512_store_si512(panel + (quad + 1) * PANEL_ROWS + half * 16,
                                   _mm512_castps_si512(_mm512_shuffle_ps(first, second, _MM_SHUFFLE(3, 1, 3, 1))));
            }
        }
    }
}

/* The panel of rows o .. o + n_rows - 1 (zero past them), columns k0 ..
 * k0 + kc - 1 (kc a multiple of 32): panel[(k / 4) * 32 + j] holds the 4
 * weight bytes of row j at columns k .. k+3 (as one 32-bit element), and
 * scales[g * 32 + j], biases[g * 32 + j] the row's group values as floats. */
AVX512 static void pack_panel(int bits, const mlxe_matrix *w, int64_t o, int n_rows, int64_t k0, int64_t kc,
                              uint32_t *panel, float *scales, float *biases) {
    if (w->packed) {
        pack_panel_packed(bits, w, o, k0, kc, panel, scales, biases);
        return;
    }
    alignas(64) uint32_t scratch[16 * 16];
    const int64_t row_bytes = w->cols * bits / 8, groups = w->cols / w->group_size;
    const int64_t g0 = k0 / w->group_size, n_groups = kc / w->group_size;
    for (int j = 0; j < PANEL_ROWS; j++) {
        for (int64_t g = 0; g < n_groups; g++) {
            bool valid = j < n_rows;
            scales[g * PANEL_ROWS + j] = valid ? scale_value(w->scale_dtype, w->scales, (o + j) * groups + g0 + g) : 0;
            biases[g * PANEL_ROWS + j] = valid ? scale_value(w->scale_dtype, w->biases, (o + j) * groups + g0 + g) : 0;
        }
    }
    for (int half = 0; half < PANEL_ROWS / 16; half++) {
        for (int64_t k = 0; k < kc; k += 64) {
            for (int j = 0; j < 16; j++) {
                int row = half * 16 + j;
                __m512i v = row < n_rows ? row_bytes64(bits, (const uint8_t *)w->data + (o + row) * row_bytes, k0 + k,
                                                       kc - k)
                                         : _mm512_setzero_si512();
                _mm512_store_si512(scratch + j * 16, v);
            }
            /* 16 rows × 16 column quads -> 16 quads × 16 rows; a last block of 32 columns fills 8 quads */
            mlxe_avx512_transpose16x32(scratch, 16, panel + (k / 4) * PANEL_ROWS + half * 16, PANEL_ROWS);
        }
    }
}

/* n_t (a constant after inlining) tokens × 32 rows over the panel's
 * n_groups groups: y[t * ldy + j] (+)= the rows' dot products, masked by
 * m0 (j < 16) and m1 (j >= 16). xq points at the tokens' activations of the
 * panel's first column, dx and sum at their first group's values; tokens
 * are x_stride bytes apart. */
INLINE_AVX512 void tile(int n_t, const uint32_t *panel, const float *scales, const float *biases, int64_t n_groups,
                        int64_t group_size, const uint8_t *xq, const uint8_t *dx_bytes, int64_t x_stride, int64_t groups,
                        float *y, int64_t ldy, __mmask16 m0, __mmask16 m1, bool accumulate) {
    __m512 total0[TILE_TOKENS], total1[TILE_TOKENS];
    for (int t = 0; t < n_t; t++) {
        total0[t] = _mm512_setzero_ps();
        total1[t] = _mm512_setzero_ps();
    }
    const int64_t quads = group_size / 4;
    for (int64_t g = 0; g < n_groups; g++) {
        __m512i dot0[TILE_TOKENS], dot1[TILE_TOKENS];
        for (int t = 0; t < n_t; t++) {
            dot0[t] = _mm512_setzero_si512();
            dot1[t] = _mm512_setzero_si512();
        }
        const uint32_t *pw = panel + g * quads * PANEL_ROWS;
        const uint8_t *xg = xq + g * group_size;
        for (int64_t q = 0; q < quads; q++) {
            __m512i w0 = _mm512_load_si512(pw + q * PANEL_ROWS);
            __m512i w1 = _mm512_load_si512(pw + q * PANEL_ROWS + 16);
            for (int t = 0; t < n_t; t++) {
                int32_t four;
                memcpy(&four, xg + t * x_stride + q * 4, sizeof four);
                __m512i xv = _mm512_set1_epi32(four);
                dot0[t] = _mm512_dpbusd_epi32(dot0[t], w0, xv);
                dot1[t] = _mm512_dpbusd_epi32(dot1[t], w1, xv);
            }
        }
        __m512 s0 = _mm512_load_ps(scales + g * PANEL_ROWS), s1 = _mm512_load_ps(scales + g * PANEL_ROWS + 16);
        __m512 b0 = _mm512_load_ps(biases + g * PANEL_ROWS), b1 = _mm512_load_ps(biases + g * PANEL_ROWS + 16);
        for (int t = 0; t < n_t; t++) {
            const float *dx = (const float *)(const void *)(dx_bytes + t * x_stride);
            __m512 d = _mm512_set1_ps(dx[g]), sum = _mm512_set1_ps(dx[groups + g]);
            total0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot0[t]), _mm512_mul_ps(s0, d), total0[t]);
            total1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot1[t]), _mm512_mul_ps(s1, d), total1[t]);
            total0[t] = _mm512_fmadd_ps(b0, sum, total0[t]);
            total1[t] = _mm512_fmadd_ps(b1, sum, total1[t]);
        }
    }
    mlxe_avx512_store_tile(n_t, total0, total1, y, ldy, m0, m1, accumulate);
}

#define TILE_CASE(n)                                                                                                  \
    case n:                                                                                                           \
        tile(n, panel, scales, biases, n_groups, group_size, xq, dx_bytes, x_stride, groups, y, ldy, m0, m1,          \
             accumulate);                                                                                             \
        break;

AVX512 static void tile_tokens(int n_t, const uint32_t *panel, const float *scales, const float *biases,
                               int64_t n_groups, int64_t group_size, const uint8_t *xq, const uint8_t *dx_bytes,
                               int64_t x_stride, int64_t groups, float *y, int64_t ldy, __mmask16 m0, __mmask16 m1,
                               bool accumulate) {
    switch (n_t) {
        TILE_CASE(1)
        TILE_CASE(2)
        TILE_CASE(3)
        TILE_CASE(4)
        TILE_CASE(5)
        default:
            tile(TILE_TOKENS, panel, scales, biases, n_groups, group_size, xq, dx_bytes, x_stride, groups, y, ldy, m0,
                 m1, accumulate);
            break;
    }
}

AVX512 void mlxe_avx512_int8_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w,
                                              int64_t o_begin, int64_t o_end, float *y) {
    alignas(64) uint32_t panel[PANEL_COLS / 4 * PANEL_ROWS];
    alignas(64) float scales[PANEL_COLS / 32 * PANEL_ROWS], biases[PANEL_COLS / 32 * PANEL_ROWS];
    const int64_t cols = w->cols, group_size = w->group_size, groups = cols / group_size, ldy = w->rows;
    const int64_t x_stride = token_stride(w);
    const uint8_t *xp = x_prepared;
    for (int64_t o = o_begin; o < o_end; o += PANEL_ROWS) {
        int n_rows = o_end - o < PANEL_ROWS ? (int)(o_end - o) : PANEL_ROWS;
        __mmask16 m0 = mlxe_avx512_lanes_mask(n_rows), m1 = mlxe_avx512_lanes_mask(n_rows - 16);
        for (int64_t k0 = 0; k0 < cols; k0 += PANEL_COLS) {
            int64_t kc = cols - k0 < PANEL_COLS ? cols - k0 : PANEL_COLS;
            if (w->bits == 4)
                pack_panel(4, w, o, n_rows, k0, kc, panel, scales, biases);
            else
                pack_panel(8, w, o, n_rows, k0, kc, panel, scales, biases);
            const int64_t n_groups = kc / group_size, g0 = k0 / group_size;
            for (int64_t t = 0; t < n_x; t += TILE_TOKENS) {
                int n_t = n_x - t < TILE_TOKENS ? (int)(n_x - t) : TILE_TOKENS;
                const uint8_t *xt = xp + t * x_stride;
                tile_tokens(n_t, panel, scales, biases, n_groups, group_size, xt + k0, xt + cols + g0 * 4, x_stride,
                            groups, y + t * ldy + o, ldy, m0, m1, k0 > 0);
            }
        }
    }
}

#endif
