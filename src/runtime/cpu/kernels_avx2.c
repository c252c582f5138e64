/* runtime/cpu/kernels_avx2.c — AVX2 + FMA + F16C kernels, compiled for those
 * instructions function by function (target attribute) so the rest of the
 * library stays baseline x86-64; cpu_kernels.c picks this table only when
 * __builtin_cpu_supports says the processor has all three.
 *
 * Matmul register tiles: TILE_W weight rows × TILE_X tokens of 8-float
 * accumulators. Each 8-element load of a weight row (converted from F16 with
 * vcvtph2ps, from BF16 by a 16-bit shift) feeds TILE_X FMAs, so in prefill
 * each weight byte read from memory serves several tokens; in decode
 * (one token) the 4 rows give 4 independent FMA chains while streaming the
 * matrix once. Columns past the last multiple of 8 are done in scalar code
 * with the same conversions as the generic kernels. */
#if defined(__x86_64__)

#include <immintrin.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/half.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INLINE_AVX2 AVX2 static inline __attribute__((always_inline))

#define TILE_W 4
#define TILE_X 3

typedef enum weight_kind { WEIGHT_F32, WEIGHT_F16, WEIGHT_BF16 } weight_kind;

INLINE_AVX2 float horizontal_sum(__m256 v) {
    __m128 sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 shuffled = _mm_movehdup_ps(sum);
    sum = _mm_add_ps(sum, shuffled);
    shuffled = _mm_movehl_ps(shuffled, sum);
    sum = _mm_add_ss(sum, shuffled);
    return _mm_cvtss_f32(sum);
}

INLINE_AVX2 __m256 load_weights(weight_kind kind, const void *row, int64_t i) {
    if (kind == WEIGHT_F32) return _mm256_loadu_ps((const float *)row + i);
    __m128i halves = _mm_loadu_si128((const __m128i *)((const uint16_t *)row + i));
    if (kind == WEIGHT_F16) return _mm256_cvtph_ps(halves);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}

INLINE_AVX2 float load_weight(weight_kind kind, const void *row, int64_t i) {
    if (kind == WEIGHT_F32) return ((const float *)row)[i];
    if (kind == WEIGHT_F16) return mlxe_f16_to_f32(((const uint16_t *)row)[i]);
    return mlxe_bf16_to_f32(((const uint16_t *)row)[i]);
}

/* n_w (<= TILE_W) consecutive weight rows × n_x (<= TILE_X) consecutive
 * tokens; both are compile-time constants after inlining, so the loops
 * unroll and the accumulators live in registers. */
INLINE_AVX2 void matmul_tile(weight_kind kind, int n_w, int n_x, const char *w, size_t row_bytes,
                             const float *x, int64_t cols, float *y, int64_t ldy) {
    __m256 acc[TILE_X][TILE_W];
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) acc[t][j] = _mm256_setzero_ps();
    const int64_t cols8 = cols & ~(int64_t)7;
    for (int64_t k = 0; k < cols8; k += 8) {
        __m256 xv[TILE_X];
        for (int t = 0; t < n_x; t++) xv[t] = _mm256_loadu_ps(x + t * cols + k);
        for (int j = 0; j < n_w; j++) {
            __m256 wv = load_weights(kind, w + j * row_bytes, k);
            for (int t = 0; t < n_x; t++) acc[t][j] = _mm256_fmadd_ps(wv, xv[t], acc[t][j]);
        }
    }
    for (int t = 0; t < n_x; t++) {
        for (int j = 0; j < n_w; j++) {
            float sum = horizontal_sum(acc[t][j]);
            for (int64_t k = cols8; k < cols; k++) sum += load_weight(kind, w + j * row_bytes, k) * x[t * cols + k];
            y[t * ldy + j] = sum;
        }
    }
}

INLINE_AVX2 void avx2_matmul(weight_kind kind, const float *x, int64_t n_x, const void *w, int64_t cols,
                             int64_t o_begin, int64_t o_end, float *y, int64_t ldy) {
    const size_t element = kind == WEIGHT_F32 ? 4 : 2;
    const size_t row_bytes = (size_t)cols * element;
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
        int64_t r = 0;
        for (; r + TILE_X <= n_x; r += TILE_X)
            matmul_tile(kind, 1, TILE_X, row, row_bytes, x + r * cols, cols, y + r * ldy + o, ldy);
        for (; r < n_x; r++) matmul_tile(kind, 1, 1, row, row_bytes, x + r * cols, cols, y + r * ldy + o, ldy);
    }
}

AVX2 static void avx2_matmul_f32(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                 int64_t o_end, float *y, int64_t ldy) {
    avx2_matmul(WEIGHT_F32, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

AVX2 static void avx2_matmul_f16(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                 int64_t o_end, float *y, int64_t ldy) {
    avx2_matmul(WEIGHT_F16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

AVX2 static void avx2_matmul_bf16(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                  int64_t o_end, float *y, int64_t ldy) {
    avx2_matmul(WEIGHT_BF16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

/* ---- MLX affine-quantized weights, 4 and 8 bits ----
 * Eight consecutive values of a row become one vector: 4-bit values are the
 * nibbles of one word (least significant first), split by per-lane shifts;
 * 8-bit values are eight consecutive bytes. Then w = scale * q + bias with one
 * FMA, and w feeds the token FMAs like a dense weight vector. Group sizes are
 * multiples of 8, so a vector never straddles two groups. */

static inline float scale_value(mlxe_dtype dtype, const void *data, int64_t i) {
    if (dtype == MLXE_DTYPE_F16) return mlxe_f16_to_f32(((const uint16_t *)data)[i]);
    if (dtype == MLXE_DTYPE_BF16) return mlxe_bf16_to_f32(((const uint16_t *)data)[i]);
    return ((const float *)data)[i];
}

INLINE_AVX2 __m256 dequantize8(int bits, const uint32_t *row_words, int64_t k, __m256 scale, __m256 bias) {
    __m256i q;
    if (bits == 4) {
        const __m256i shifts = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
        __m256i word = _mm256_set1_epi32((int)row_words[k >> 3]);
        q = _mm256_and_si256(_mm256_srlv_epi32(word, shifts), _mm256_set1_epi32(15));
    } else {
        q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)((const uint8_t *)row_words + k)));
    }
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), scale, bias);
}

/* n_w weight rows from o × n_x tokens; constants after inlining. */
INLINE_AVX2 void quantized_tile(int bits, int n_w, int n_x, const mlxe_matrix *w, int64_t o, const float *x,
                                float *y) {
    const int64_t cols = w->cols, group_size = w->group_size, groups = cols / group_size;
    const int64_t words_per_row = cols * bits / 32;
    const uint32_t *words = (const uint32_t *)w->data + o * words_per_row;
    __m256 acc[TILE_X][TILE_W];
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) acc[t][j] = _mm256_setzero_ps();
    for (int64_t g = 0; g < groups; g++) {
        __m256 scales[TILE_W], biases[TILE_W];
        for (int j = 0; j < n_w; j++) {
            scales[j] = _mm256_set1_ps(scale_value(w->scale_dtype, w->scales, (o + j) * groups + g));
            biases[j] = _mm256_set1_ps(scale_value(w->scale_dtype, w->biases, (o + j) * groups + g));
        }
        for (int64_t k = g * group_size; k < (g + 1) * group_size; k += 8) {
            __m256 xv[TILE_X];
            for (int t = 0; t < n_x; t++) xv[t] = _mm256_loadu_ps(x + t * cols + k);
            for (int j = 0; j < n_w; j++) {
                __m256 wv = dequantize8(bits, words + j * words_per_row, k, scales[j], biases[j]);
                for (int t = 0; t < n_x; t++) acc[t][j] = _mm256_fmadd_ps(wv, xv[t], acc[t][j]);
            }
        }
    }
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) y[t * w->rows + j] = horizontal_sum(acc[t][j]);
}

/* Prefill tiles are 2 rows × 3 tokens (scales, biases and accumulators must
 * fit the 16 vector registers); single tokens use 4 rows. */
INLINE_AVX2 void avx2_matmul_quantized_bits(int bits, const float *x, int64_t n_x, const mlxe_matrix *w,
                                            int64_t o_begin, int64_t o_end, float *y) {
    const int64_t cols = w->cols, ldy = w->rows;
    int64_t o = o_begin;
    for (; o + 4 <= o_end; o += 4) {
        int64_t r = 0;
        for (; r + TILE_X <= n_x; r += TILE_X) {
            quantized_tile(bits, 2, TILE_X, w, o, x + r * cols, y + r * ldy + o);
            quantized_tile(bits, 2, TILE_X, w, o + 2, x + r * cols, y + r * ldy + o + 2);
        }
        for (; r < n_x; r++) quantized_tile(bits, 4, 1, w, o, x + r * cols, y + r * ldy + o);
    }
    for (; o < o_end; o++) {
        int64_t r = 0;
        for (; r + TILE_X <= n_x; r += TILE_X) quantized_tile(bits, 1, TILE_X, w, o, x + r * cols, y + r * ldy + o);
        for (; r < n_x; r++) quantized_tile(bits, 1, 1, w, o, x + r * cols, y + r * ldy + o);
    }
}

AVX2 static void avx2_matmul_quantized(const float *x, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                       int64_t o_end, float *y) {
    if (w->bits == 4)
        avx2_matmul_quantized_bits(4, x, n_x, w, o_begin, o_end, y);
    else
        avx2_matmul_quantized_bits(8, x, n_x, w, o_begin, o_end, y);
}

AVX2 static float avx2_dot(const float *a, const float *b, int64_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    if (i + 8 <= n) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        i += 8;
    }
    float sum = horizontal_sum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

AVX2 static void avx2_axpy(float *y, float a, const float *x, int64_t n) {
    __m256 factor = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(factor, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

AVX2 static void avx2_scale(float *y, float a, int64_t n) {
    __m256 factor = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(factor, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

const mlxe_cpu_kernels mlxe_cpu_kernels_avx2 = {
    .name = "avx2",
    .matmul_f32 = avx2_matmul_f32,
    .matmul_f16 = avx2_matmul_f16,
    .matmul_bf16 = avx2_matmul_bf16,
    .dot = avx2_dot,
    .axpy = avx2_axpy,
    .scale = avx2_scale,
    .matmul_quantized = avx2_matmul_quantized,
    .attention_scores = mlxe_avx2_attention_scores,
    .attention_exp = mlxe_avx2_attention_exp,
    .attention_values = mlxe_avx2_attention_values,
};

#endif
