/* models/weight_binding_quant.h — binding a module's weight matrix, plain
 * float or MLX affine-quantized, from a weight set.
 *
 * A module at path P (e.g. "model.layers.0.mlp.down_proj", "lm_head",
 * "model.embed_tokens") is stored either as P.weight in F32/F16/BF16, or,
 * quantized, as P.weight (U32, packed), P.scales and P.biases (one float
 * type). Which one follows mlx-lm's loader (mlx_lm/utils.py load_model): a
 * module with its own entry in config.json's quantization uses it (`false`:
 * float); otherwise it is quantized exactly when P.scales exists, with the
 * config's default bits and group size. Shapes are checked against the
 * logical [rows, cols] and the bits/group size; errors name the tensor, its
 * file and what config.json says. The matrix points into the mapping (no
 * copy). */
#ifndef MLXE_MODELS_WEIGHT_BINDING_QUANT_H
#define MLXE_MODELS_WEIGHT_BINDING_QUANT_H

#include <stdint.h>

#include "format/quant_config.h"
#include "format/safetensors.h"
#include "mlxengine/status.h"
#include "runtime/ops.h"

/* quant may be NULL (no quantization declared). */
mlxe_status mlxe_bind_weight_matrix(const mlxe_weight_set *set, const mlxe_quant_config *quant,
                                    const char *module, int64_t rows, int64_t cols, mlxe_matrix *out,
                                    mlxe_error *err);

#endif
