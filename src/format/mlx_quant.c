/* format/mlx_quant.c — MLX affine quantize / dequantize (see mlx_quant.h for
 * the algorithm and the MLX sources it reproduces). */
#include "format/mlx_quant.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "base/error.h"
#include "format/quant_config.h"

int64_t mlxe_quant_packed_cols(int64_t cols, int bits) { return cols * bits / 32; }

mlxe_status mlxe_quant_check_shape(int64_t rows, int64_t cols, int bits, int group_size, const char *what,
                                   mlxe_error *err) {
    if (!what) what = "matrix";
    if (!mlxe_quant_bits_supported(bits))
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: %d-bit quantization is not supported (bits must be 2, 3, 4, 5, 6 or 8)",
                              what, bits);
    if (!mlxe_quant_group_size_supported(group_size))
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: quantization group size %d is not supported (32, 64 or 128)", what,
                              group_size);
    if (rows <= 0 || cols <= 0 || cols % group_size != 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "%s: a %lld x %lld matrix cannot be quantized with group size %d (the number "
                              "of columns must be a positive multiple of it)",
                              what, (long long)rows, (long long)cols, group_size);
    return MLXE_OK;
}

/* ---- float types ---- */

static float bits_to_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint32_t float_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* bfloat16: the top half of a float32, rounded to nearest even; NaN stays a
 * quiet NaN (MLX's float_to_bfloat_bits does the same). */
static uint16_t float_to_bf16(float f) {
    uint32_t bits = float_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

/* float16 through the compiler's _Float16, which rounds to nearest even
 * with subnormals (libgcc's soft conversion where the CPU lacks F16C). */
static uint16_t float_to_f16(float f) {
    _Float16 h = (_Float16)f;
    uint16_t bits;
    memcpy(&bits, &h, sizeof bits);
    return bits;
}

static float f16_to_float(uint16_t bits) {
    _Float16 h;
    memcpy(&h, &bits, sizeof h);
    return (float)h;
}

float mlxe_quant_load_float(const void *data, mlxe_dtype dtype, int64_t index) {
    switch (dtype) {
    case MLXE_DTYPE_F32: return ((const float *)data)[index];
    case MLXE_DTYPE_F16: return f16_to_float(((const uint16_t *)data)[index]);
    case MLXE_DTYPE_BF16: return bits_to_float((uint32_t)((const uint16_t *)data)[index] << 16);
    default: return 0.0f;
    }
}

void mlxe_quant_store_float(void *data, mlxe_dtype dtype, int64_t index, float value) {
    switch (dtype) {
    case MLXE_DTYPE_F32: ((float *)data)[index] = value; break;
    case MLXE_DTYPE_F16: ((uint16_t *)data)[index] = float_to_f16(value); break;
    case MLXE_DTYPE_BF16: ((uint16_t *)data)[index] = float_to_bf16(value); break;
    default: break;
    }
}

/* value rounded to dtype and back (what storing in T then reading gives). */
static float round_to(mlxe_dtype dtype, float value) {
    switch (dtype) {
    case MLXE_DTYPE_F16: return f16_to_float(float_to_f16(value));
    case MLXE_DTYPE_BF16: return bits_to_float((uint32_t)float_to_bf16(value) << 16);
    default: return value;
    }
}

static bool is_float_type(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F32 || dtype == MLXE_DTYPE_F16 || dtype == MLXE_DTYPE_BF16;
}

/* ---- quantize ---- */

/* One group of group_size values starting at element `first` of src, as
 * MLX's quantize() does it (std::max/std::min spelled out with their exact
 * comparison order). Writes q values into the row's bit stream. */
static void quantize_group(const void *src, mlxe_dtype dtype, int64_t first, int group_size, int bits,
                           uint32_t *row_words, int64_t first_in_row, float *scale_out, float *bias_out) {
    const float n_bins = (float)((1 << bits) - 1);
    const float eps = 1e-7f;
    float w_min = INFINITY, w_max = -INFINITY;
    for (int j = 0; j < group_size; j++) {
        float v = mlxe_quant_load_float(src, dtype, first + j);
        w_max = (w_max < v) ? v : w_max;
        w_min = (v < w_min) ? v : w_min;
    }
    bool edge_is_min = fabsf(w_min) > fabsf(w_max);
    float range = (w_max - w_min) / n_bins;
    float scale = (range < eps) ? eps : range;
    scale = edge_is_min ? scale : -scale;
    float edge = edge_is_min ? w_min : w_max;
    float q0 = rintf(edge / scale);
    float bias = 0.0f;
    if (q0 != 0.0f) {
        scale = edge / q0;
        bias = edge;
    }
    for (int j = 0; j < group_size; j++) {
        float v = mlxe_quant_load_float(src, dtype, first + j);
        float q = rintf((v - bias) / scale);
        q = (q < 0.0f) ? 0.0f : q;
        q = (n_bins < q) ? n_bins : q;
        /* NaN only when edge / 1e-7 overflowed in a constant group (|w| >
         * ~3e31): scale becomes -0 and (w - bias) / scale is 0/0. MLX's
         * integer conversion turns it into 0 on x86-64; so do we. */
        uint32_t value = isnan(q) ? 0u : (uint32_t)q;
        uint64_t bit = (uint64_t)(first_in_row + j) * (uint64_t)bits;
        uint64_t word = bit >> 5;
        unsigned shift = (unsigned)(bit & 31u);
        row_words[word] |= value << shift;
        if (shift + (unsigned)bits > 32u) row_words[word + 1] |= value >> (32u - shift);
    }
    *scale_out = scale;
    *bias_out = bias;
}

mlxe_status mlxe_quantize_affine(const void *src, mlxe_dtype src_dtype, int64_t rows, int64_t cols, int bits,
                                 int group_size, uint32_t *packed, void *scales, void *biases,
                                 const char *what, mlxe_error *err) {
    if (!what) what = "matrix";
    mlxe_status st = mlxe_quant_check_shape(rows, cols, bits, group_size, what, err);
    if (st != MLXE_OK) return st;
    if (!is_float_type(src_dtype))
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: only F32, F16 and BF16 weights can be quantized (got %s)", what,
                              mlxe_dtype_name(src_dtype));
    if (!src || !packed || !scales || !biases)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "%s: quantize needs input and output buffers", what);
    int64_t total = rows * cols;
    for (int64_t i = 0; i < total; i++) {
        float v = mlxe_quant_load_float(src, src_dtype, i);
        if (!isfinite(v))
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "%s: element [%lld, %lld] is %s; non-finite weights cannot be quantized",
                                  what, (long long)(i / cols), (long long)(i % cols), isnan(v) ? "nan" : "inf");
    }
    const int64_t words = mlxe_quant_packed_cols(cols, bits);
    const int64_t groups = cols / group_size;
    for (int64_t r = 0; r < rows; r++) {
        uint32_t *row_words = packed + r * words;
        memset(row_words, 0, (size_t)words * sizeof *row_words);
        for (int64_t g = 0; g < groups; g++) {
            float scale, bias;
            quantize_group(src, src_dtype, r * cols + g * group_size, group_size, bits, row_words,
                           g * group_size, &scale, &bias);
            mlxe_quant_store_float(scales, src_dtype, r * groups + g, scale);
            mlxe_quant_store_float(biases, src_dtype, r * groups + g, bias);
        }
    }
    return MLXE_OK;
}

/* ---- dequantize ---- */

mlxe_status mlxe_dequantize_affine(const uint32_t *packed, const void *scales, const void *biases,
                                   mlxe_dtype scale_dtype, int64_t rows, int64_t cols, int bits,
                                   int group_size, void *dst, mlxe_dtype dst_dtype, const char *what,
                                   mlxe_error *err) {
    if (!what) what = "matrix";
    mlxe_status st = mlxe_quant_check_shape(rows, cols, bits, group_size, what, err);
    if (st != MLXE_OK) return st;
    if (!is_float_type(scale_dtype) || !is_float_type(dst_dtype))
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: scales and output must be F32, F16 or BF16 (got %s and %s)", what,
                              mlxe_dtype_name(scale_dtype), mlxe_dtype_name(dst_dtype));
    if (!packed || !scales || !biases || !dst)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "%s: dequantize needs input and output buffers", what);
    const int64_t words = mlxe_quant_packed_cols(cols, bits);
    const int64_t groups = cols / group_size;
    for (int64_t r = 0; r < rows; r++) {
        const uint32_t *row_words = packed + r * words;
        for (int64_t c = 0; c < cols; c++) {
            float scale = mlxe_quant_load_float(scales, scale_dtype, r * groups + c / group_size);
            float bias = mlxe_quant_load_float(biases, scale_dtype, r * groups + c / group_size);
            float q = (float)mlxe_quant_get(row_words, c, bits);
            /* MLX: multiply(w, scales) then add(_, biases), each an op in
             * the scales' type (so rounded to it), never fused. */
            float product = round_to(scale_dtype, q * scale);
            float value = round_to(scale_dtype, product + bias);
            mlxe_quant_store_float(dst, dst_dtype, r * cols + c, value);
        }
    }
    return MLXE_OK;
}
