/* format/quant_config.h — config.json's MLX quantization settings.
 *
 * MLX models (mlx-lm's convert, mlx-community uploads) describe their
 * quantization in config.json as
 *
 *   "quantization": {"group_size": 64, "bits": 4, "mode": "affine",
 *                    "model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 8},
 *                    "lm_head": false},
 *   "quantization_config": { the same object }
 *
 * The top-level group_size/bits/mode are the defaults; a key naming a
 * module path with an object gives that module its own settings, `false`
 * keeps it unquantized and `true` uses the defaults. mlx-lm reads the
 * defaults from "quantization_config" first, then "quantization", and the
 * per-module entries from "quantization" (mlx_lm/utils.py load_model); we do
 * the same, falling back to "quantization_config" when "quantization" is
 * absent.
 *
 * Only affine quantization is supported: the modes mxfp4, nvfp4 and mxfp8,
 * and Hugging Face quantizers (a "quantization_config" with "quant_method",
 * e.g. gptq, awq, fp8, bitsandbytes) are refused by name. Everything here is
 * parsing; module tensors are checked against it at weight binding. */
#ifndef MLXE_FORMAT_QUANT_CONFIG_H
#define MLXE_FORMAT_QUANT_CONFIG_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/status.h"

/* MLX's affine defaults (mlx/ops.cpp quantization_params_from_mode). */
#define MLXE_QUANT_DEFAULT_BITS 4
#define MLXE_QUANT_DEFAULT_GROUP_SIZE 64

/* How one module is stored. */
typedef struct mlxe_quant_params {
    bool quantized;     /* false: plain float weight */
    int bits;           /* 2, 3, 4, 5, 6 or 8 when quantized, else 0 */
    int group_size;     /* 32, 64 or 128 when quantized, else 0 */
    bool explicit_entry;/* the module has its own entry (object, true or false) */
} mlxe_quant_params;

typedef struct mlxe_quant_module {
    char *path;         /* e.g. "model.layers.0.mlp.down_proj" */
    mlxe_quant_params params;
} mlxe_quant_module;

typedef struct mlxe_quant_config {
    bool present;       /* config.json has MLX quantization */
    int bits;           /* defaults for modules without an entry */
    int group_size;
    mlxe_quant_module *modules; /* per-module entries, in file order */
    size_t n_modules;
} mlxe_quant_config;

/* True for the bits / group sizes MLX's affine quantization supports. */
bool mlxe_quant_bits_supported(int bits);
bool mlxe_quant_group_size_supported(int group_size);

/* Parses the quantization keys of a config.json object (root); `what`
 * names the source in errors. A config without them gives present=false
 * and MLXE_OK. Unsupported modes or quantizers give MLXE_ERR_UNSUPPORTED
 * naming them; malformed values give MLXE_ERR_FORMAT naming the key. On
 * error *out is left empty (nothing to free). */
mlxe_status mlxe_quant_config_parse(const cJSON *root, const char *what, mlxe_quant_config *out,
                                    mlxe_error *err);
/* Reads DIR/config.json and parses it. */
mlxe_status mlxe_quant_config_load(const char *dir, mlxe_quant_config *out, mlxe_error *err);
/* Frees the module entries; the struct is left empty. Accepts NULL. */
void mlxe_quant_config_free(mlxe_quant_config *config);

/* How the module at path (no ".weight" suffix) is declared: its own entry
 * when it has one, else the defaults when the config is present, else not
 * quantized. config may be NULL. Whether a module without an entry is in
 * fact quantized is decided by the weights (mlx-lm: "P.scales" exists). */
mlxe_quant_params mlxe_quant_config_lookup(const mlxe_quant_config *config, const char *path);

/* Writes `{"group_size": G, "bits": B, "mode": "affine"}` plus per-module
 * entries as a new cJSON object (what mlx-lm writes for both keys). NULL
 * when out of memory. */
cJSON *mlxe_quant_config_to_json(const mlxe_quant_config *config);

#endif
