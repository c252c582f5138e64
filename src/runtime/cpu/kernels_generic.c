/* runtime/cpu/kernels_generic.c — portable C kernels: the fallback for any
 * processor and the reference the SIMD kernels are tested against.
 *
 * Dot products keep 8 partial sums so the compiler can vectorize them
 * without reassociating float math on its own. The matmul converts a chunk
 * of one weight row (F16/BF16 -> float) into a small stack buffer and uses it
 * for up to TOKEN_TILE tokens, so each weight element is converted once per
 * tile rather than once per token, and no copy of the matrix is ever made. */
#include <math.h>
#include <string.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/half.h"

#define CHUNK 256
#define TOKEN_TILE 8

static float generic_dot(const float *a, const float *b, int64_t n) {
    float partial[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) partial[j] += a[i + j] * b[i + j];
    float sum = ((partial[0] + partial[4]) + (partial[1] + partial[5])) +
                ((partial[2] + partial[6]) + (partial[3] + partial[7]));
    for (; i < n; i++) sum += a[i] * b[i];
    return sum;
}

static void generic_axpy(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void generic_scale(float *y, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] *= a;
}

static void generic_attention_scores(const float *q, int n_q, const float *keys, int64_t n, int64_t head_dim,
                                     float scale, float *scores, float *block_max) {
    for (int g = 0; g < n_q; g++) block_max[g] = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        const float *key = keys + j * head_dim;
        for (int g = 0; g < n_q; g++) {
            float score = generic_dot(q + g * head_dim, key, head_dim) * scale;
            scores[g * MLXE_CPU_ATTENTION_BLOCK + j] = score;
            if (score > block_max[g]) block_max[g] = score;
        }
    }
}

static float generic_attention_exp(float *x, int64_t n, float shift) {
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - shift);
        sum += x[i];
    }
    return sum;
}

static void generic_attention_values(const float *weights, int n_q, const float *values, int64_t n,
                                     int64_t head_dim, float *out) {
    for (int64_t j = 0; j < n; j++) {
        const float *value = values + j * head_dim;
        for (int g = 0; g < n_q; g++) generic_axpy(out + g * head_dim, weights[g * MLXE_CPU_ATTENTION_BLOCK + j], value, head_dim);
    }
}

typedef enum weight_kind { WEIGHT_F32, WEIGHT_F16, WEIGHT_BF16 } weight_kind;

static void generic_matmul(weight_kind kind, const float *x, int64_t n_x, const void *w, int64_t cols,
                           int64_t o_begin, int64_t o_end, float *y, int64_t ldy) {
    float buffer[CHUNK];
    for (int64_t o = o_begin; o < o_end; o++) {
        for (int64_t r0 = 0; r0 < n_x; r0 += TOKEN_TILE) {
            int64_t tile = n_x - r0 < TOKEN_TILE ? n_x - r0 : TOKEN_TILE;
            float acc[TOKEN_TILE] = {0};
            for (int64_t k0 = 0; k0 < cols; k0 += CHUNK) {
                int64_t n = cols - k0 < CHUNK ? cols - k0 : CHUNK;
                const float *row;
                if (kind == WEIGHT_F32) {
                    row = (const float *)w + o * cols + k0;
                } else {
                    const uint16_t *src = (const uint16_t *)w + o * cols + k0;
                    if (kind == WEIGHT_F16)
                        for (int64_t i = 0; i < n; i++) buffer[i] = mlxe_f16_to_f32(src[i]);
                    else
                        for (int64_t i = 0; i < n; i++) buffer[i] = mlxe_bf16_to_f32(src[i]);
                    row = buffer;
                }
                for (int64_t t = 0; t < tile; t++) acc[t] += generic_dot(row, x + (r0 + t) * cols + k0, n);
            }
            for (int64_t t = 0; t < tile; t++) y[(r0 + t) * ldy + o] = acc[t];
        }
    }
}

static void generic_matmul_f32(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                               int64_t o_end, float *y, int64_t ldy) {
    generic_matmul(WEIGHT_F32, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

static void generic_matmul_f16(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                               int64_t o_end, float *y, int64_t ldy) {
    generic_matmul(WEIGHT_F16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

static void generic_matmul_bf16(const float *x, int64_t n_x, const void *w, int64_t cols, int64_t o_begin,
                                int64_t o_end, float *y, int64_t ldy) {
    generic_matmul(WEIGHT_BF16, x, n_x, w, cols, o_begin, o_end, y, ldy);
}

const mlxe_cpu_kernels mlxe_cpu_kernels_generic = {
    .name = "generic",
    .matmul_f32 = generic_matmul_f32,
    .matmul_f16 = generic_matmul_f16,
    .matmul_bf16 = generic_matmul_bf16,
    .dot = generic_dot,
    .axpy = generic_axpy,
    .scale = generic_scale,
    .attention_scores = generic_attention_scores,
    .attention_exp = generic_attention_exp,
    .attention_values = generic_attention_values,
};
