/* models/weight_binding_quant.c — a module's weight matrix, float or MLX
 * affine-quantized (rules in weight_binding_quant.h). */
#include "models/weight_binding_quant.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

static bool is_float_dtype(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F32 || dtype == MLXE_DTYPE_F16 || dtype == MLXE_DTYPE_BF16;
}

static mlxe_status check_aligned(const mlxe_tensor_info *info, mlxe_error *err) {
    size_t size = mlxe_dtype_size(info->dtype);
    if (size && ((uintptr_t)info->data % size) != 0)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "tensor '%s' in %s starts at a byte offset that is not a multiple of its "
                              "element size (%zu); rewrite the file with 'mlxengine convert'",
                              info->name, info->file, size);
    return MLXE_OK;
}

static mlxe_status bind_float(const mlxe_weight_set *set, const char *module, int64_t rows, int64_t cols,
                              mlxe_matrix *out, mlxe_error *err) {
    char name[320];
    snprintf(name, sizeof name, "%s.weight", module);
    const int64_t shape[2] = {rows, cols};
    const mlxe_tensor_info *info = NULL;
    mlxe_status st = mlxe_weight_set_require(set, name, 2, shape, &info, err);
    if (st != MLXE_OK) return st;
    if (!is_float_dtype(info->dtype))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "tensor '%s' in %s has dtype %s but '%s' is not quantized (no '%s.scales', or "
                              "config.json's quantization says so); expected F32, F16 or BF16",
                              name, info->file, mlxe_dtype_name(info->dtype), module, module);
    if ((st = check_aligned(info, err)) != MLXE_OK) return st;
    memset(out, 0, sizeof *out);
    out->dtype = info->dtype;
    out->rows = rows;
    out->cols = cols;
    out->data = info->data;
    return MLXE_OK;
}

static mlxe_status bind_quantized(const mlxe_weight_set *set, const char *module, mlxe_quant_params params,
                                  int64_t rows, int64_t cols, mlxe_matrix *out, mlxe_error *err) {
    char name[320];
    if (cols % params.group_size != 0 || (cols * params.bits) % 32 != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "'%s' has %lld input features, which %d-bit quantization with group size %d "
                              "cannot store (config.json's quantization and the model disagree)",
                              module, (long long)cols, params.bits, params.group_size);
    const int64_t weight_shape[2] = {rows, cols * params.bits / 32};
    const int64_t group_shape[2] = {rows, cols / params.group_size};
    const mlxe_tensor_info *weight = NULL, *scales = NULL, *biases = NULL;
    snprintf(name, sizeof name, "%s.weight", module);
    mlxe_status st = mlxe_weight_set_require(set, name, 2, weight_shape, &weight, err);
    if (st == MLXE_OK && weight->dtype != MLXE_DTYPE_U32)
        st = mlxe_error_set(err, MLXE_ERR_FORMAT,
                            "tensor '%s' in %s has dtype %s; a quantized weight is U32 (packed)", name,
                            weight->file, mlxe_dtype_name(weight->dtype));
    if (st == MLXE_OK) {
        snprintf(name, sizeof name, "%s.scales", module);
        st = mlxe_weight_set_require(set, name, 2, group_shape, &scales, err);
    }
    if (st == MLXE_OK) {
        snprintf(name, sizeof name, "%s.biases", module);
        if (!mlxe_weight_set_find(set, name))
            return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                                  "'%s' has scales but no '%s': only MLX affine quantization (with biases) is "
                                  "supported",
                                  module, name);
        st = mlxe_weight_set_require(set, name, 2, group_shape, &biases, err);
    }
    if (st != MLXE_OK) {
        if (st == MLXE_ERR_FORMAT)
            mlxe_error_prefix(err, "'%s' is quantized with %d bits, group size %d", module, params.bits,
                              params.group_size);
        return st;
    }
    if (!is_float_dtype(scales->dtype) || scales->dtype != biases->dtype)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "'%s': scales (%s) and biases (%s) must have the same float dtype (F32, F16 or "
                              "BF16)",
                              module, mlxe_dtype_name(scales->dtype), mlxe_dtype_name(biases->dtype));
    if ((st = check_aligned(weight, err)) != MLXE_OK || (st = check_aligned(scales, err)) != MLXE_OK ||
        (st = check_aligned(biases, err)) != MLXE_OK)
        return st;
    memset(out, 0, sizeof *out);
    out->dtype = MLXE_DTYPE_U32;
    out->rows = rows;
    out->cols = cols;
    out->data = weight->data;
    out->bits = params.bits;
    out->group_size = params.group_size;
    out->scale_dtype = scales->dtype;
    out->scales = scales->data;
    out->biases = biases->data;
    return MLXE_OK;
}

mlxe_status mlxe_bind_weight_matrix(const mlxe_weight_set *set, const mlxe_quant_config *quant,
                                    const char *module, int64_t rows, int64_t cols, mlxe_matrix *out,
                                    mlxe_error *err) {
    if (!set || !module || !out || rows <= 0 || cols <= 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_bind_weight_matrix: invalid arguments");
    char name[320];
    snprintf(name, sizeof name, "%s.scales", module);
    const bool has_scales = mlxe_weight_set_find(set, name) != NULL;
    mlxe_quant_params params = mlxe_quant_config_lookup(quant, module);
    if (params.explicit_entry) {
        if (!params.quantized && has_scales)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "config.json's quantization lists '%s' as not quantized, but '%s' exists",
                                  module, name);
        if (params.quantized && !has_scales)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "config.json's quantization gives '%s' %d bits, group size %d, but '%s' is "
                                  "missing (incomplete download?)",
                                  module, params.bits, params.group_size, name);
    } else if (has_scales && !params.quantized) {
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "'%s' exists but config.json has no 'quantization' giving its bits and group "
                              "size",
                              name);
    }
    if (!has_scales) return bind_float(set, module, rows, cols, out, err);
    return bind_quantized(set, module, params, rows, cols, out, err);
}
