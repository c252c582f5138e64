/* runtime/cpu/cpu_convert.c — reading stored weights as floats: vectors and
 * rows of matrices in F32/F16/BF16, and rows of MLX affine-quantized
 * matrices (see /work/shared/docs/MLX_QUANT.md, and mlx/backend/cpu/quantized.cpp:
 * packed uint32 words, values least-significant bits first, one scale and
 * bias per group of group_size consecutive inputs, w = scale * q + bias). */
#include "runtime/cpu/cpu_ops.h"
#include "runtime/cpu/half.h"

static inline float element_to_float(mlxe_dtype dtype, const void *data, int64_t i) {
    switch (dtype) {
    case MLXE_DTYPE_F16: return mlxe_f16_to_f32(((const uint16_t *)data)[i]);
    case MLXE_DTYPE_BF16: return mlxe_bf16_to_f32(((const uint16_t *)data)[i]);
    default: return ((const float *)data)[i];
    }
}

void mlxe_cpu_vector_to_float(mlxe_dtype dtype, const void *data, int64_t first, int64_t n, float *out) {
    switch (dtype) {
    case MLXE_DTYPE_F16: {
        const uint16_t *src = (const uint16_t *)data + first;
        for (int64_t i = 0; i < n; i++) out[i] = mlxe_f16_to_f32(src[i]);
        break;
    }
    case MLXE_DTYPE_BF16: {
        const uint16_t *src = (const uint16_t *)data + first;
        for (int64_t i = 0; i < n; i++) out[i] = mlxe_bf16_to_f32(src[i]);
        break;
    }
    default: {
        const float *src = (const float *)data + first;
        for (int64_t i = 0; i < n; i++) out[i] = src[i];
        break;
    }
    }
}

/* The quantized value at input index k of a row of packed words. For 2, 4
 * and 8 bits a value never straddles two words; for 3, 5 and 6 bits the row
 * is one little-endian bit stream, so it may. */
static inline uint32_t quantized_value(const uint32_t *row_words, int bits, int64_t k) {
    uint64_t bit = (uint64_t)k * (uint64_t)bits;
    uint64_t word = bit >> 5;
    unsigned shift = (unsigned)(bit & 31);
    uint32_t mask = (1u << bits) - 1u;
    uint32_t value = row_words[word] >> shift;
    if (shift + (unsigned)bits > 32) value |= row_words[word + 1] << (32 - shift);
    return value & mask;
}

void mlxe_cpu_matrix_row_to_float(const mlxe_matrix *w, int64_t row, int64_t k0, int64_t n, float *out) {
    if (w->bits == 0) {
        mlxe_cpu_vector_to_float(w->dtype, w->data, row * w->cols + k0, n, out);
        return;
    }
    if (w->packed) {
        mlxe_cpu_packed_row_to_float(w, row, k0, n, out);
        return;
    }
    const int bits = w->bits;
    const int64_t group_size = w->group_size;
    const int64_t groups_per_row = w->cols / group_size;
    const uint32_t *words = (const uint32_t *)w->data + row * (w->cols * bits / 32);
    int64_t k = k0, end = k0 + n;
    while (k < end) {
        int64_t group = k / group_size;
        int64_t group_end = (group + 1) * group_size < end ? (group + 1) * group_size : end;
        float scale = element_to_float(w->scale_dtype, w->scales, row * groups_per_row + group);
        float bias = element_to_float(w->scale_dtype, w->biases, row * groups_per_row + group);
        if (bits == 4) {
            for (; k < group_end; k++) out[k - k0] = scale * (float)((words[k >> 3] >> ((k & 7) * 4)) & 15u) + bias;
        } else if (bits == 8) {
            for (; k < group_end; k++) out[k - k0] = scale * (float)((words[k >> 2] >> ((k & 3) * 8)) & 255u) + bias;
        } else {
            for (; k < group_end; k++) out[k - k0] = scale * (float)quantized_value(words, bits, k) + bias;
        }
    }
}
