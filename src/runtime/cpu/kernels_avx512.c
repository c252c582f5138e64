/* runtime/cpu/kernels_avx512.c — AVX-512 (F, BW, VL, DQ) + VNNI kernels,
 * compiled function by function for those instructions (target attribute);
 * cpu_kernels.c picks this table only when __builtin_cpu_supports reports
 * all of them (and AVX2/FMA/F16C, whose table this one falls back to for
 * shapes it does not cover).
 *
 * Dense weights (F32, F16, BF16): like the AVX2 kernels with 16-float
 * vectors, register tiles of 4 weight rows × 4 tokens (16 of the 32
 * registers), and masked loads for the columns past a multiple of 16, so
 * there is no scalar tail. Numerics are those of the AVX2 kernels (float32
 * FMAs on the exact weights), only the summation order differs.
 *
 * MLX affine-quantized weights with 4 or 8 bits, table "avx512": the AVX2
 * kernel's numerics (scale * q + bias in float, FMAs with float activations)
 * with 16-lane vectors, described below.
 *
 * Table "avx512-int8" (the default on these processors; cpu_kernels.h has
 * the precision policy): the same, except that it multiplies lower-precision
 * activations where that pays: decode against 4/8-bit weights with
 * int8-quantized activations and integer dot products
 * (kernels_avx512_decode.c), and prefill through the prefill_* entries
 * (kernels_avx512_gemm_*.c: int8 GEMM for 4/8-bit weights, bf16 GEMM for
 * BF16 weights), reaching the float tiles here only for shapes those do not
 * cover. MLXE_CPU_KERNELS=avx512 (or =float) keeps float activations
 * everywhere. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>
#include <stdalign.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/half.h"
#include "runtime/cpu/kernels_avx512_gemm.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE_AVX512 AVX512 static inline __attribute__((always_inline))

#define TILE_W 4
#define TILE_X 4

typedef enum weight_kind { WEIGHT_F32, WEIGHT_F16, WEIGHT_BF16 } weight_kind;

/* Loads the n (<= 16) weights from column i of a row as floats; masked lanes
 * read nothing and are zero. */
INLINE_AVX512 __m512 load_weights(weight_kind kind, const void *row, int64_t i, __mmask16 mask) {
    if (kind == WEIGHT_F32) return _mm512_maskz_loadu_ps(mask, (const float *)row + i);
    __m256i halves = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + i);
    if (kind == WEIGHT_F16) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

/* n_w (<= TILE_W) F32 rows (row_bytes apart) × n_x (<= TILE_X) tokens
 * (x_stride floats apart) over n_cols columns; constants after inlining so
 * the accumulators live in registers. */
INLINE_AVX512 void tile_kernel(weight_kind kind, int n_w, int n_x, const char *w, size_t row_bytes, const float *x,
                               int64_t x_stride, int64_t cols, float *y, int64_t ldy) {
    __m512 acc[TILE_X][TILE_W];
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) acc[t][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < cols; k += 16) {
        __mmask16 mask = cols - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - k)) - 1u);
        __m512 xv[TILE_X];
        for (int t = 0; t < n_x; t++) xv[t] = _mm512_maskz_loadu_ps(mask, x + t * x_stride + k);
        for (int j = 0; j < n_w; j++) {
            /* Decode streams rows that may be short (896 columns): the hardware
             * prefetcher loses them at each tile, so fetch the next tile's bytes
             * (n_w rows further) while this one is computed. */
            if (n_x == 1 && n_w == TILE_W)
                _mm_prefetch(w + (j + TILE_W) * row_bytes + k * (kind == WEIGHT_F32 ? 4 : 2), _MM_HINT_T0);
            __m512 wv = load_weights(kind, w + j * row_bytes, k, mask);
            for (int t = 0; t < n_x; t++) acc[t][j] = _mm512_fmadd_ps(wv, xv[t], acc[t][j]);
        }
    }
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) y[t * ldy + j] = _mm512_reduce_add_ps(acc[t][j]);
}

INLINE_AVX512 void matmul_tile(weight_kind kind, int n_w, int n_x, const char *w, size_t row_bytes, const float *x,
                               int64_t cols, float *y, int64_t ldy) {
    tile_kernel(kind, n_w, n_x, w, row_bytes, x, cols, cols, y, ldy);
}

/* The F32 tile on a dequantized buffer (x rows x_stride apart, n_cols used). */
INLINE_AVX512 void matmul_tile_strided(int n_w, int n_x, const char *w, size_t row_bytes, const float *x,
                                       int64_t x_stride, int64_t n_cols, float *y, int64_t ldy) {
    tile_kernel(WEIGHT_F32, n_w, n_x, w, row_bytes, x, x_stride, n_cols, y, ldy);
}

INLINE_AVX512 void avx512_matmul(weight_kind kind, const float *x, int64_t n_x, const void *w, int64_t cols,
                                 int64_t o_begin, int64_t o_end, float *y, int64_t ldy) {
    if (n_x == 1) { /* decode: one row after another (kernels_avx512_decode.c) */
        mlxe_avx512_decode_dense(kind == WEIGHT_F32 ? MLXE_DTYPE_F32 : kind == WEIGHT_F16 ? MLXE_DTYPE_F16 : MLXE_DTYPE_BF16,
                                 x, w, cols, o_begin, o_end, y);
        return;
    }
    const size_t row_bytes = (size_t)cols * (kind == WEIGHT_F32 ? 4 : 2);
    const char *weights = (const char *)w;
    int64_t o = o_begin;
    for (; o + TILE_W <= o_end; o += TILE_W) {
        const char *rows = weights + (size_t)o * row_bytes;
        int64_t r = 0;
        for (; r + TILE_X <= n_x; r += TILE_X)
            matmul_tile(kind, TILE_W, TILE_X, rows, row_bytes, x + r * cols, cols, y + r * ldy + o, ldy);
        for (; r < n_x; r++) matmul_tile(kind, TILE_W, 1, rows, row_bytes, x + r * cols, cols, y + r * ldy + o, ldy);
    }
    for (; o < o_end; o++) {
        const char *row = weights + (size_t)o * row_bytes;
        for (int64_t r = 0; r < n_x; r++) matmul_tile(kind, 1, 1, row, row_bytes, x + r * cols, cols, y + r * ldy + o, ldy);
    }
}

AVX512 static void avx512_matmul_f32(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                     int64_t o_end, float *y, int64_t ldy) {
    avx512_matmul(WEIGHT_F32, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

AVX512 static void avx512_matmul_f16(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                     int64_t o_end, float *y, int64_t ldy) {
    avx512_matmul(WEIGHT_F16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

AVX512 static void avx512_matmul_bf16(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                      int64_t o_end, float *y, int64_t ldy) {
    avx512_matmul(WEIGHT_BF16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

/* ---- quantized weights, float activations (the default) ----
 * Same numerics as the AVX2 kernel: w = scale * q + bias with one FMA, then
 * FMAs with the float activations. 32 columns at a time (dequantize32):
 * straight into the FMAs for decode, into an L1 tile for prefill. */

#define QF_ROWS 4
#define QF_TOKENS 3

static inline float scale_value(mlxe_dtype dtype, const void *data, int64_t i) {
    if (dtype == MLXE_DTYPE_F16) return mlxe_f16_to_f32(((const uint16_t *)data)[i]);
    if (dtype == MLXE_DTYPE_BF16) return mlxe_bf16_to_f32(((const uint16_t *)data)[i]);
    return ((const float *)data)[i];
}

/* Weights of columns k..k+15 (first) and k+16..k+31 (second). 8-bit: the
 * bytes widened and converted, then scale * q + bias. 4-bit: `table` holds
 * scale * q + bias for q = 0..15 (the same FMA, done once per group), each
 * packed word is spread over 8 lanes and shifted so lane i's nibble is in its
 * low 4 bits, and vpermps looks the weights up (it reads only those bits). */
INLINE_AVX512 void dequantize32(int bits, const uint8_t *row, int64_t k, __m512 scale, __m512 bias, __m512 table,
                                __m512 *first, __m512 *second) {
    if (bits == 8) {
        __m512i q0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + k)));
        __m512i q1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(row + k + 16)));
        *first = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q0), scale, bias);
        *second = _mm512_fmadd_ps(_mm512_cvtepi32_ps(q1), scale, bias);
        return;
    }
    const __m512i words01 = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m512i words23 = _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m512i shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    __m512i packed = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(row + k / 2)));
    __m512i q0 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(words01, packed), shifts);
    __m512i q1 = _mm512_srlv_epi32(_mm512_permutexvar_epi32(words23, packed), shifts);
    *first = _mm512_permutexvar_ps(q0, table);
    *second = _mm512_permutexvar_ps(q1, table);
}

/* n_w weight rows from o × n_x tokens (constants after inlining); x rows are
 * cols apart. */
INLINE_AVX512 void float_quantized_tile(int bits, int n_w, int n_x, const mlxe_matrix *w, int64_t o, const float *x,
                                        float *y) {
    const int64_t cols = w->cols, group_size = w->group_size, groups = cols / group_size;
    const int64_t row_bytes = cols * bits / 8;
    const uint8_t *rows = (const uint8_t *)w->data + o * row_bytes;
    const __m512 nibbles = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 acc[QF_TOKENS][QF_ROWS];
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) acc[t][j] = _mm512_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        __m512 scales[QF_ROWS], biases[QF_ROWS], tables[QF_ROWS];
        for (int j = 0; j < n_w; j++) {
            scales[j] = _mm512_set1_ps(scale_value(w->scale_dtype, w->scales, (o + j) * groups + g));
            biases[j] = _mm512_set1_ps(scale_value(w->scale_dtype, w->biases, (o + j) * groups + g));
            tables[j] = bits == 4 ? _mm512_fmadd_ps(nibbles, scales[j], biases[j]) : _mm512_setzero_ps();
        }
        for (int64_t k = g * group_size; k < (g + 1) * group_size; k += 32) {
            for (int j = 0; j < n_w; j++) {
                /* the next tile's bytes, one prefetch per 64-byte line (see tile_kernel) */
                if (n_x == 1 && n_w == QF_ROWS && (k * bits / 8) % 64 == 0)
                    _mm_prefetch((const char *)rows + (j + QF_ROWS) * row_bytes + k * bits / 8, _MM_HINT_T0);
                __m512 first, second;
                dequantize32(bits, rows + j * row_bytes, k, scales[j], biases[j], tables[j], &first, &second);
                for (int t = 0; t < n_x; t++) {
                    acc[t][j] = _mm512_fmadd_ps(first, _mm512_loadu_ps(x + t * cols + k), acc[t][j]);
                    acc[t][j] = _mm512_fmadd_ps(second, _mm512_loadu_ps(x + t * cols + k + 16), acc[t][j]);
                }
            }
        }
    }
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) y[t * w->rows + j] = _mm512_reduce_add_ps(acc[t][j]);
}

INLINE_AVX512 void float_quantized_rows(int bits, const float *x, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                        int64_t o_end, float *y) {
    const int64_t ldy = w->rows;
    int64_t o = o_begin;
    /* one token against 8-bit rows: row after row (one stream for the hardware
     * prefetchers: 12.3 against 10.5 GB/s per core in bench/decode_matmul.c);
     * 4-bit rows are compute-bound here and keep the 4-row tiles */
    for (; o + QF_ROWS <= o_end && !(n_x == 1 && bits == 8); o += QF_ROWS) {
        int64_t t = 0;
        for (; t + QF_TOKENS <= n_x; t += QF_TOKENS)
            float_quantized_tile(bits, QF_ROWS, QF_TOKENS, w, o, x + t * w->cols, y + t * ldy + o);
        for (; t < n_x; t++) float_quantized_tile(bits, QF_ROWS, 1, w, o, x + t * w->cols, y + t * ldy + o);
    }
    for (; o < o_end; o++)
        for (int64_t t = 0; t < n_x; t++) float_quantized_tile(bits, 1, 1, w, o, x + t * w->cols, y + t * ldy + o);
}

/* Prefill (several tokens): dequantize a tile of DQ_ROWS weight rows ×
 * DQ_COLS columns into a float buffer on the stack (L1-sized, the same
 * scale * q + bias FMA as above), then run the dense 4 rows × 4 tokens float
 * tile over every token, adding each column chunk's sums into y. Each weight
 * is unpacked once per call instead of once per token tile. */
#define DQ_ROWS 4
#define DQ_COLS 1024
#define DQ_MIN_TOKENS 4

INLINE_AVX512 void dequantized_tile_rows(int bits, const float *x, int64_t n_x, const mlxe_matrix *w, int64_t o,
                                         int n_w, float *y) {
    alignas(64) float tile[DQ_ROWS * DQ_COLS];
    const int64_t cols = w->cols, group_size = w->group_size, groups = cols / group_size, ldy = w->rows;
    const int64_t row_bytes = cols * bits / 8;
    const __m512 nibbles = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (int64_t k0 = 0; k0 < cols; k0 += DQ_COLS) {
        const int64_t n_cols = cols - k0 < DQ_COLS ? cols - k0 : DQ_COLS; /* a multiple of 32 */
        for (int j = 0; j < n_w; j++) {
            const uint8_t *row = (const uint8_t *)w->data + (o + j) * row_bytes;
            for (int64_t k = k0; k < k0 + n_cols; k += 32) {
                int64_t g = k / group_size;
                __m512 scale = _mm512_set1_ps(scale_value(w->scale_dtype, w->scales, (o + j) * groups + g));
                __m512 bias = _mm512_set1_ps(scale_value(w->scale_dtype, w->biases, (o + j) * groups + g));
                __m512 table = bits == 4 ? _mm512_fmadd_ps(nibbles, scale, bias) : _mm512_setzero_ps();
                __m512 first, second;
                dequantize32(bits, row, k, scale, bias, table, &first, &second);
                _mm512_store_ps(tile + j * DQ_COLS + (k - k0), first);
                _mm512_store_ps(tile + j * DQ_COLS + (k - k0) + 16, second);
            }
        }
        const size_t tile_row_bytes = DQ_COLS * sizeof(float);
        float sums[TILE_X * TILE_W];
        int64_t t = 0;
        for (; t < n_x; t += TILE_X) {
            int n_t = n_x - t < TILE_X ? (int)(n_x - t) : TILE_X;
            /* the dense tile's y layout: token stride ldy = TILE_W here */
            const float *xt = x + t * cols + k0;
            if (n_w == DQ_ROWS && n_t == TILE_X)
                matmul_tile_strided(TILE_W, TILE_X, (const char *)tile, tile_row_bytes, xt, cols, n_cols, sums, TILE_W);
            else
                for (int tt = 0; tt < n_t; tt++)
                    for (int j = 0; j < n_w; j++)
                        matmul_tile_strided(1, 1, (const char *)(tile + j * DQ_COLS), tile_row_bytes,
                                            xt + tt * cols, cols, n_cols, sums + tt * TILE_W + j, TILE_W);
            for (int tt = 0; tt < n_t; tt++)
                for (int j = 0; j < n_w; j++) {
                    float *out = y + (t + tt) * ldy + o + j;
                    *out = k0 == 0 ? sums[tt * TILE_W + j] : *out + sums[tt * TILE_W + j];
                }
        }
    }
}

AVX512 static void avx512_matmul_quantized(const float *x, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                           int64_t o_end, float *y) {
    if (w->group_size % 32 != 0) {
        mlxe_cpu_kernels_avx2.matmul_quantized(x, n_x, w, o_begin, o_end, y);
        return;
    }
    if (n_x >= DQ_MIN_TOKENS) {
        for (int64_t o = o_begin; o < o_end; o += DQ_ROWS) {
            int n_w = o_end - o < DQ_ROWS ? (int)(o_end - o) : DQ_ROWS;
            if (w->bits == 8)
                dequantized_tile_rows(8, x, n_x, w, o, n_w, y);
            else
                dequantized_tile_rows(4, x, n_x, w, o, n_w, y);
        }
        return;
    }
    if (w->bits == 8)
        float_quantized_rows(8, x, n_x, w, o_begin, o_end, y);
    else
        float_quantized_rows(4, x, n_x, w, o_begin, o_end, y);
}

AVX512 static float avx512_dot(const float *a, const float *b, int64_t n) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
    }
    for (; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, a + i), _mm512_maskz_loadu_ps(mask, b + i), acc0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

AVX512 static void avx512_axpy(float *y, float a, const float *x, int64_t n) {
    __m512 factor = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 sum = _mm512_fmadd_ps(factor, _mm512_maskz_loadu_ps(mask, x + i), _mm512_maskz_loadu_ps(mask, y + i));
        _mm512_mask_storeu_ps(y + i, mask, sum);
    }
}

AVX512 static void avx512_scale(float *y, float a, int64_t n) {
    __m512 factor = _mm512_set1_ps(a);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, mask, _mm512_mul_ps(factor, _mm512_maskz_loadu_ps(mask, y + i)));
    }
}

/* The avx512-int8 table's decode entries: int8 activations for 4/8-bit
 * weights (kernels_avx512_decode.c), bf16 activations for one token against
 * BF16 weights (kernels_avx512_decode_bf16.c). */
static size_t avx512_decode_x_bytes(const mlxe_matrix *w, int64_t n_x) {
    return w->bits == 0 ? mlxe_avx512_bf16_decode_x_bytes(w, n_x) : mlxe_avx512_int8_x_bytes(w, n_x);
}
static bool avx512_decode_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                    size_t capacity) {
    return w->bits == 0 ? mlxe_avx512_bf16_decode_prepare_x(x, n_x, w, buffer, capacity)
                        : mlxe_avx512_int8_quantize_x(x, n_x, w, buffer, capacity);
}
static void avx512_decode_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                   int64_t o_end, float *y) {
    if (w->bits == 0) mlxe_avx512_bf16_decode_matmul_x(x_prepared, n_x, w, o_begin, o_end, y);
    else mlxe_avx512_int8_matmul_x(x_prepared, n_x, w, o_begin, o_end, y);
}

/* The avx512-int8-split table's BF16 weights: one token through vdpbf16ps
 * on split activations where the processor has AVX512_BF16
 * (kernels_avx512_decode_bf16.c), else as above. */
AVX512 static void avx512_matmul_bf16_split(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                            int64_t o_end, float *y, int64_t ldy) {
    if (n_x == 1 && mlxe_avx512_decode_bf16_split(x, w, cols, o_begin, o_end, y)) return;
    avx512_matmul(WEIGHT_BF16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

const mlxe_cpu_kernels mlxe_cpu_kernels_avx512 = {
    .name = "avx512",
    .matmul_f32 = avx512_matmul_f32,
    .matmul_f16 = avx512_matmul_f16,
    .matmul_bf16 = avx512_matmul_bf16,
    .dot = avx512_dot,
    .axpy = avx512_axpy,
    .scale = avx512_scale,
    .matmul_quantized = avx512_matmul_quantized,
    .attention_scores = mlxe_avx512_attention_scores,
    .attention_exp = mlxe_avx512_attention_exp,
    .attention_values = mlxe_avx512_attention_values,
    .silu_mul = mlxe_avx512_silu_mul,
};

/* The same with lower-precision activations: int8 for 4/8-bit weights and
 * bf16 for one token against BF16 weights in decode
 * (kernels_avx512_decode*.c), int8 / bf16 in prefill
 * (kernels_avx512_gemm_*.c); the default on AVX-512 VNNI processors. Shapes
 * those kernels do not cover use the float kernels above. */
const mlxe_cpu_kernels mlxe_cpu_kernels_avx512_int8 = {
    .name = "avx512-int8",
    .matmul_f32 = avx512_matmul_f32,
    .matmul_f16 = avx512_matmul_f16,
    .matmul_bf16 = avx512_matmul_bf16,
    .dot = avx512_dot,
    .axpy = avx512_axpy,
    .scale = avx512_scale,
    .matmul_quantized = avx512_matmul_quantized,
    .attention_scores = mlxe_avx512_attention_scores,
    .attention_exp = mlxe_avx512_attention_exp,
    .attention_values = mlxe_avx512_attention_values,
    .decode_x_bytes = avx512_decode_x_bytes,
    .decode_prepare_x = avx512_decode_prepare_x,
    .decode_matmul_x = avx512_decode_matmul_x,
    .silu_mul = mlxe_avx512_silu_mul,
    .prefill_x_bytes = mlxe_avx512_prefill_x_bytes,
    .prefill_prepare_x = mlxe_avx512_prefill_prepare_x,
    .prefill_matmul_x = mlxe_avx512_prefill_matmul_x,
    .packs_quantized = true,
};

/* avx512-int8 with one token against BF16 weights on hi/lo-split
 * activations (2^-17 relative instead of 2^-9; MLXE_CPU_KERNELS=avx512-int8-split). */
const mlxe_cpu_kernels mlxe_cpu_kernels_avx512_int8_split = {
    .name = "avx512-int8-split",
    .matmul_f32 = avx512_matmul_f32,
    .matmul_f16 = avx512_matmul_f16,
    .matmul_bf16 = avx512_matmul_bf16_split,
    .dot = avx512_dot,
    .axpy = avx512_axpy,
    .scale = avx512_scale,
    .matmul_quantized = avx512_matmul_quantized,
    .attention_scores = mlxe_avx512_attention_scores,
    .attention_exp = mlxe_avx512_attention_exp,
    .attention_values = mlxe_avx512_attention_values,
    .decode_x_bytes = mlxe_avx512_int8_x_bytes,
    .decode_prepare_x = mlxe_avx512_int8_quantize_x,
    .decode_matmul_x = mlxe_avx512_int8_matmul_x,
    .silu_mul = mlxe_avx512_silu_mul,
    .prefill_x_bytes = mlxe_avx512_prefill_x_bytes,
    .prefill_prepare_x = mlxe_avx512_prefill_prepare_x,
    .prefill_matmul_x = mlxe_avx512_prefill_matmul_x,
    .packs_quantized = true,
};

#endif
