/* format/mlx_quant.h — MLX affine quantization of weight matrices: packing,
 * quantizing and dequantizing exactly as MLX stores them.
 *
 * Layout (shared/docs/MLX_QUANT.md). A rows × cols matrix quantized with
 * `bits` and `group_size` is
 *   packed  uint32 [rows][cols * bits / 32]
 *   scales  T      [rows][cols / group_size]
 *   biases  T      [rows][cols / group_size]
 * where T is the float type of the weights (F32, F16 or BF16) and element
 * (r, c) is w = scales[r][c / group_size] * q + biases[r][c / group_size].
 * Each row's q values form one little-endian bit stream, least-significant
 * bits first: value c occupies bits [c*bits, (c+1)*bits) of the row, so for
 * 3, 5 and 6 bits a value may straddle two words.
 *
 * Quantizing follows MLX's CPU kernel (mlx/backend/cpu/quantized.cpp,
 * `quantize`, used by fast::Quantize::eval_cpu) operation for operation in
 * float32, so packed words, scales and biases equal MLX's bit for bit:
 *   min, max of the group (as float32)
 *   scale = max((max - min) / (2^bits - 1), 1e-7)
 *   edge  = the one of min/max with the larger magnitude (min on a tie goes
 *           to max); scale is negated when edge is max
 *   q0    = rint(edge / scale); if q0 != 0: scale = edge / q0, bias = edge
 *           else bias = 0
 *   q     = clamp(rint((w - bias) / scale), 0, 2^bits - 1)
 *   scale and bias are then rounded to T (round to nearest even).
 * Known difference: MLX's Metal kernel starts its running max at 0, so for a
 * group whose values are all negative Apple GPUs produce other (equally
 * valid) scales than the CPU kernel we follow.
 *
 * Dequantizing follows MLX's dequantize as evaluated on the CPU: q * scale
 * rounded to T, plus bias rounded to T (two roundings for F16/BF16, plain
 * float32 arithmetic for F32), then converted to the output type.
 *
 * Thread-safety: pure functions on caller memory. */
#ifndef MLXE_FORMAT_MLX_QUANT_H
#define MLXE_FORMAT_MLX_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"
#include "mlxengine/status.h"

/* Words per packed row: cols * bits / 32 (cols must be a multiple of 32). */
int64_t mlxe_quant_packed_cols(int64_t cols, int bits);

/* Checks bits ∈ {2,3,4,5,6,8}, group_size ∈ {32,64,128}, cols a positive
 * multiple of group_size, rows positive; `what` names the tensor. */
mlxe_status mlxe_quant_check_shape(int64_t rows, int64_t cols, int bits, int group_size, const char *what,
                                   mlxe_error *err);

/* Value `index` of a packed row (no bounds check). */
static inline uint32_t mlxe_quant_get(const uint32_t *row, int64_t index, int bits) {
    uint64_t bit = (uint64_t)index * (uint64_t)bits;
    uint64_t word = bit >> 5;
    unsigned shift = (unsigned)(bit & 31u);
    uint64_t window = row[word];
    if (shift + (unsigned)bits > 32u) window |= (uint64_t)row[word + 1] << 32;
    return (uint32_t)((window >> shift) & ((1u << bits) - 1u));
}

/* Quantizes src (rows × cols of src_dtype: F32, F16 or BF16) into packed
 * (rows × packed_cols words) and scales/biases (rows × cols/group_size of
 * src_dtype, as MLX keeps the weights' type). Non-finite weights are refused
 * (MLXE_ERR_INVALID_ARGUMENT naming `what` and the element), as MLX's
 * output for them is not meaningful. */
mlxe_status mlxe_quantize_affine(const void *src, mlxe_dtype src_dtype, int64_t rows, int64_t cols, int bits,
                                 int group_size, uint32_t *packed, void *scales, void *biases,
                                 const char *what, mlxe_error *err);

/* Dequantizes into dst (rows × cols of dst_dtype: F32, F16 or BF16); the
 * arithmetic is done in scale_dtype as MLX does, then converted. */
mlxe_status mlxe_dequantize_affine(const uint32_t *packed, const void *scales, const void *biases,
                                   mlxe_dtype scale_dtype, int64_t rows, int64_t cols, int bits,
                                   int group_size, void *dst, mlxe_dtype dst_dtype, const char *what,
                                   mlxe_error *err);

/* float32 <-> stored float types, round to nearest even (as numpy, torch
 * and MLX convert). */
float mlxe_quant_load_float(const void *data, mlxe_dtype dtype, int64_t index);
void mlxe_quant_store_float(void *data, mlxe_dtype dtype, int64_t index, float value);

#endif
