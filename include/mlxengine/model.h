/* mlxengine/model.h — loading a model folder for the native backend.
 *
 * A model folder holds config.json, optional generation_config.json and the
 * weights (model.safetensors, sharded model-0000x-of-0000y.safetensors with
 * an index, or MLX's *.safetensors). Loading maps the weights (no copy),
 * checks every tensor the architecture needs against the config, and
 * creates the compute device.
 *
 * Thread-safety: a loaded model is immutable and may be shared by contexts
 * on several threads (mlxe_context_create and the getters below may be
 * called concurrently). Forward passes of contexts sharing a model are
 * serialised on the model's device. mlxe_model_free must not race with any
 * other use, and every context made from the model must be freed first. */
#ifndef MLXENGINE_MODEL_H
#define MLXENGINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_model mlxe_model;

/* Load progress: done_bytes of the model's total_bytes of weights are
 * ready (on a GPU: copied into its memory, tensor by tensor). Called from
 * the loading thread as tensors are placed, done_bytes never decreasing,
 * and once more at the end with done_bytes == total_bytes. Return false
 * to stop the load: mlxe_model_load then fails with MLXE_ERR_CANCELLED and
 * frees what it had made. */
typedef bool (*mlxe_load_progress_fn)(void *user, size_t done_bytes, size_t total_bytes);

typedef struct mlxe_model_options {
    /* Compute threads; <= 0: MLXE_NUM_THREADS or the CPUs this process may
     * use. Default 0. */
    int n_threads;
    /* The device: "cpu" (default), "cuda" (= "cuda:0"), "cuda:N" (NVIDIA
     * GPU N), or "auto" (cuda:0 when usable, else the CPU; the reason is
     * logged at info level). A GPU that cannot be used gives MLXE_ERR_DEVICE
     * saying why (CUDA not compiled in, no driver, no such GPU, too old). On
     * a GPU the weights are copied into its memory at load; when they do
     * not fit in its free memory the load fails with MLXE_ERR_OUT_OF_MEMORY
     * before copying anything, saying how much is missing. The string is
     * read during the call only. */
    const char *device;
    /* Optional (default NULL): told how the load advances (above); user is
     * passed back unchanged. */
    mlxe_load_progress_fn progress;
    void *progress_user;
} mlxe_model_options;

/* Fills the defaults. */
void mlxe_model_options_init(mlxe_model_options *options);

/* Loads the model in folder dir. options may be NULL (defaults). On error
 * *out is NULL and err names the file, key or tensor at fault: a missing
 * tensor, a tensor whose shape disagrees with config.json, a model_type the
 * engine does not run (MLXE_ERR_UNSUPPORTED), an invalid config. */
mlxe_status mlxe_model_load(const char *dir, const mlxe_model_options *options, mlxe_model **out,
                            mlxe_error *err);
/* Accepts NULL. */
void mlxe_model_free(mlxe_model *model);

/* Rows of the logits (config vocab_size). */
int64_t mlxe_model_vocab_size(const mlxe_model *model);
/* The longest context the model was trained for (max_position_embeddings). */
int64_t mlxe_model_context_length(const mlxe_model *model);
/* The end-of-sequence ids (generation_config.json's list wins over
 * config.json's): *ids borrows from the model. Returns the count (may be 0). */
int mlxe_model_eos_ids(const mlxe_model *model, const int32_t **ids);
/* config.json's model_type, e.g. "qwen2"; borrows from the model. */
const char *mlxe_model_type(const mlxe_model *model);
/* Bytes of weights the model uses (mapped from the files, not copied). */
size_t mlxe_model_weight_bytes(const mlxe_model *model);
/* Bytes of memory the model holds: on the CPU the mapped weights plus
 * aligned copies of tensors a file stores misaligned (as MLX's writer can);
 * on a GPU the device copies of the tensors it uses. Contexts report their
 * own (mlxe_context_memory_bytes). */
size_t mlxe_model_memory_bytes(const mlxe_model *model);
/* Seconds mlxe_model_load took. */
double mlxe_model_load_seconds(const mlxe_model *model);
/* The compute device's name, e.g. "cpu-avx2" or "cuda:0". */
const char *mlxe_model_device_name(const mlxe_model *model);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
