/* engine/convert_internal.h — the pieces of mlxe_convert (convert.c): the
 * plan of output tensors, the streaming shard writer (convert_shard.c) and
 * the folder chores (convert_files.c). */
#ifndef MLXE_ENGINE_CONVERT_INTERNAL_H
#define MLXE_ENGINE_CONVERT_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"
#include "format/safetensors.h"
#include "mlxengine/status.h"

/* How an output tensor is made from the source. */
typedef enum convert_kind {
    CONVERT_COPY,          /* bytes as they are */
    CONVERT_CAST,          /* float tensor to another float type */
    CONVERT_QUANT_WEIGHT,  /* packed words of quantize(cast(src)) */
    CONVERT_QUANT_SCALES,  /* its scales */
    CONVERT_QUANT_BIASES,  /* its biases */
    CONVERT_DEQUANT        /* dequantize(src, scales, biases), scales cast first */
} convert_kind;

typedef struct convert_module convert_module;

typedef struct convert_tensor {
    char *name;                       /* output name */
    mlxe_dtype dtype;                 /* output type */
    int n_dims;
    int64_t shape[MLXE_MAX_DIMS];
    size_t n_bytes;
    convert_kind kind;
    const mlxe_tensor_info *src;      /* the source tensor (the weight for quant/dequant) */
    convert_module *module;           /* quant/dequant: the module it belongs to */
    int shard;                        /* 0-based */
    uint64_t offset;                  /* in its shard's data area */
} convert_tensor;

/* A quantized module being produced or dequantized. Quantizing writes the
 * scales and biases here when it makes the packed weight, so they are not
 * computed twice (they are 1/16 of a BF16 weight at group size 64). */
struct convert_module {
    const mlxe_tensor_info *weight, *scales, *biases; /* source tensors (scales/biases: dequant) */
    int bits, group_size;
    int64_t rows, cols;
    mlxe_dtype dtype;                 /* quant: type of the cast weight, scales and biases */
    void *scales_out, *biases_out;    /* quantize results waiting to be written */
    bool scales_written, biases_written;
};

/* Produces the bytes of one output tensor into buffer (t->n_bytes). */
typedef mlxe_status (*convert_produce_fn)(void *ctx, convert_tensor *t, void *buffer, mlxe_error *err);
/* Called after each tensor is written; returns MLXE_ERR_CANCELLED to stop. */
typedef mlxe_status (*convert_written_fn)(void *ctx, const convert_tensor *t, mlxe_error *err);

/* Writes shard `shard` (tensors with t->shard == shard, in the order given,
 * which must put 4-byte types before 2-byte ones so every tensor stays
 * aligned) to path, with __metadata__ {"format": "mlx"}. One tensor's bytes
 * are in memory at a time. */
mlxe_status convert_write_shard(const char *path, convert_tensor **tensors, size_t n_tensors,
                                convert_produce_fn produce, convert_written_fn written, void *ctx,
                                mlxe_error *err);

/* model.safetensors.index.json as mlx-lm writes it (metadata total_size and
 * total_parameters, weight_map sorted by name). */
mlxe_status convert_write_index(const char *dir, convert_tensor *tensors, size_t n_tensors,
                                char **shard_names, uint64_t total_parameters, mlxe_error *err);

/* Writes root to DIR/config.json with its top-level keys sorted. */
mlxe_status convert_write_config(const char *dir, cJSON *root, mlxe_error *err);

/* Copies the tokenizer, template and generation files of src into dst
 * (tokenizer*, special_tokens_map.json, added_tokens.json, chat_template.*,
 * vocab.*, merges.*, generation_config.json, *.jinja, *.tiktoken, *.py). */
mlxe_status convert_copy_side_files(const char *src, const char *dst, mlxe_error *err);

/* Makes an empty folder "<dst>.partial-XXXXXX" next to dst; *out is malloc'd. */
mlxe_status convert_make_temp_dir(const char *dst, char **out, mlxe_error *err);
/* Removes the files in dir and dir itself (a folder this conversion made). */
void convert_remove_dir(const char *dir);
/* Renames tmp to dst, failing if dst appeared meanwhile. */
mlxe_status convert_publish(const char *tmp, const char *dst, mlxe_error *err);

#endif
