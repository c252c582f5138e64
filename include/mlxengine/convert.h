/* mlxengine/convert.h — converting a Hugging Face or MLX model folder into
 * an MLX model folder, optionally quantizing or dequantizing it, as
 * `mlx_lm.convert` does.
 *
 * The output is what mlx-lm and mlx-swift-lm load: config.json (with
 * "quantization" and "quantization_config" when quantized), the weights in
 * safetensors shards of at most max_shard_bytes named
 * model-0000i-of-0000N.safetensors (model.safetensors when one shard is
 * enough) with model.safetensors.index.json, and the tokenizer, template and
 * generation files copied from the source.
 *
 * Quantization follows MLX's affine algorithm bit for bit (see
 * shared/docs/MLX_QUANT.md): every 2-D floating-point ".weight" (the Linear
 * layers, the embedding and an untied lm_head, which is what mlx-lm's
 * nn.quantize picks in the llama family) whose input size is a multiple of
 * the group size; norms and biases stay floating point. Weights are first
 * cast to the target dtype, then quantized, as mlx-lm does. Only the model
 * types the native backend runs can be quantized (the rule above is checked
 * for them).
 *
 * The folder is written under a temporary name next to dst_dir and renamed
 * to dst_dir only once complete, so an error or a cancellation leaves
 * nothing at dst_dir (and removes the temporary folder). dst_dir must not
 * exist. Peak memory is about one tensor's input and output.
 *
 * Thread-safety: independent calls may run concurrently; the progress
 * callback is called on the calling thread. */
#ifndef MLXENGINE_CONVERT_H
#define MLXENGINE_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef enum mlxe_convert_dtype {
    MLXE_CONVERT_DTYPE_AUTO = 0, /* config.json's torch_dtype / dtype when it is one of the three,
                                    else keep each tensor's type (mlx-lm's default) */
    MLXE_CONVERT_DTYPE_F32,
    MLXE_CONVERT_DTYPE_F16,
    MLXE_CONVERT_DTYPE_BF16
} mlxe_convert_dtype;

typedef struct mlxe_convert_progress {
    const char *stage;        /* "weights", "files" or "done" */
    const char *tensor;       /* the output tensor just written, or NULL */
    int64_t tensors_done;
    int64_t tensors_total;
    uint64_t bytes_done;      /* output weight bytes written so far */
    uint64_t bytes_total;     /* output weight bytes in all */
} mlxe_convert_progress;

/* Return false to cancel (the conversion then fails with MLXE_ERR_CANCELLED). */
typedef bool (*mlxe_convert_progress_fn)(void *user, const mlxe_convert_progress *progress);

typedef struct mlxe_convert_options {
    bool quantize;                 /* affine-quantize (refused when the source is quantized) */
    int bits;                      /* 2, 3, 4, 5, 6 or 8; default 4 */
    int group_size;                /* 32, 64 or 128; default 64 */
    bool dequantize;               /* turn a quantized source back into float weights */
    mlxe_convert_dtype dtype;      /* default AUTO */
    uint64_t max_shard_bytes;      /* default 5 GiB (mlx-lm's MAX_FILE_SIZE_GB << 30) */
    mlxe_convert_progress_fn progress; /* may be NULL */
    void *progress_user;
    mlxe_cancel *cancel;           /* may be NULL */
} mlxe_convert_options;

void mlxe_convert_options_init(mlxe_convert_options *options);

/* Converts src_dir into the new folder dst_dir (see the header comment).
 * options may be NULL for the defaults (a plain copy in the config's dtype). */
mlxe_status mlxe_convert(const char *src_dir, const char *dst_dir, const mlxe_convert_options *options,
                         mlxe_error *err);

/* "bf16", "f16", "f32" (also "bfloat16", "float16", "float32") -> the enum;
 * false when the name is not one of them. */
bool mlxe_convert_dtype_from_name(const char *name, mlxe_convert_dtype *out);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
