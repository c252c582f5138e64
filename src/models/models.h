/* models/models.h — the model families the native backend runs, and the
 * interface the engine drives them through.
 *
 * A family binds a folder's weights once at load (by tensor name, shapes
 * checked against config.json) and runs a forward pass over a batch of
 * tokens, written only against the ops table (runtime/ops.h), so it runs on
 * every device. The engine owns the KV cache memory and the per-context
 * scratch; the family says how much scratch it needs.
 *
 * Thread-safety: a loaded model is read-only; forward calls on one device
 * must not overlap (the engine serialises them). */
#ifndef MLXE_MODELS_MODELS_H
#define MLXE_MODELS_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "format/model_config.h"
#include "format/safetensors.h"
#include "mlxengine/model.h"
#include "mlxengine/status.h"
#include "runtime/ops.h"

/* The KV cache as the forward sees it: per layer one K and one V buffer in
 * device memory, each [n_slots][n_kv_heads][capacity][head_dim] float32
 * (the layout of runtime/ops.h). */
typedef struct mlxe_kv_view {
    int64_t n_layers;
    int64_t n_slots;
    int64_t capacity;   /* positions per slot */
    float **k;          /* [n_layers] */
    float **v;          /* [n_layers] */
} mlxe_kv_view;

/* One forward: n_rows tokens (any mix of sequences), their rows' logits
 * copied out for the rows listed in logit_rows. */
typedef struct mlxe_forward_batch {
    int64_t n_rows;
    const int32_t *tokens;     /* device memory [n_rows], each < vocab_size (checked by the engine) */
    const int32_t *positions;  /* device memory [n_rows], each < kv->capacity */
    const int32_t *slots;      /* device memory [n_rows], each < kv->n_slots */
    int64_t max_position;      /* largest of positions (host copy, for dynamic RoPE) */
    int64_t n_logit_rows;
    const int32_t *logit_rows; /* host [n_logit_rows]: rows (ascending) whose logits are wanted */
    float *logits;             /* host [n_logit_rows][vocab_size] */
    /* Optional (NULL: unused). For a batch with one row wanting logits, on a
     * device that computes argmax itself (ops->argmax): that row's argmax
     * (the greedy token, the CPU sampler's rule) is written here and
     * `logits` is NOT filled; the logits stay in the state until the next
     * forward, and family->copy_logits fetches them. Where the device cannot,
     * *greedy_token is set to -1 and `logits` is filled as usual. */
    int32_t *greedy_token;
    /* Optional (NULL: the argmax), with greedy_token, on a device with
     * ops->sample: the token written to greedy_token is sampled with these
     * parameters (device memory, runtime/sampling.h) instead. */
    const mlxe_sample_params *sample_params;
    /* Pipelined greedy decode (engine/generate.c), one row: the row's token
     * is the one the previous forward of this state chose on the device
     * (`tokens` is not read). */
    bool token_from_choice;
    /* With greedy_token, on a device with ops->token_keep: the chosen token
     * is handed over through token_keep into keep_slot (device memory) and
     * its handle stored in *keep_handle, not downloaded (greedy_token is
     * left at -1); elsewhere it is downloaded as usual. */
    int32_t *keep_slot;
    void **keep_handle;
} mlxe_forward_batch;

typedef struct mlxe_model_family mlxe_model_family;
typedef struct mlxe_model_weights mlxe_model_weights; /* a family's bound weights (opaque) */
typedef struct mlxe_forward_state mlxe_forward_state; /* a family's scratch for one context */

struct mlxe_model_family {
    const char *name;               /* e.g. "llama" */
    const char *const *model_types; /* NULL-terminated config.json model_type values */
    /* Binds the weights of set to config; errors name the tensor and the
     * folder. progress (may be NULL) hears of each placed tensor (bytes of
     * mlxe_weight_set_total_bytes) and may cancel (MLXE_ERR_CANCELLED). */
    mlxe_status (*load)(const mlxe_model_config *config, const mlxe_weight_set *set, mlxe_device *dev,
                        mlxe_load_progress_fn progress, void *progress_user, mlxe_model_weights **out,
                        mlxe_error *err);
    void (*free)(mlxe_model_weights *weights);
    /* Device memory the binding holds beyond the mapped files (aligned
     * copies of misaligned tensors). */
    size_t (*owned_bytes)(const mlxe_model_weights *weights);
    /* Scratch for forwards of up to max_rows tokens (device memory). */
    mlxe_status (*state_create)(const mlxe_model_weights *weights, int64_t max_rows,
                                mlxe_forward_state **out, mlxe_error *err);
    void (*state_free)(mlxe_forward_state *state);
    /* Bytes state_create allocates for max_rows (for memory estimates). */
    size_t (*state_bytes)(const mlxe_model_weights *weights, int64_t max_rows);
    /* Runs the batch (n_rows <= the state's max_rows) and fills logits.
     * Arguments are checked by the caller; this never fails. */
    void (*forward)(const mlxe_model_weights *weights, mlxe_forward_state *state,
                    const mlxe_kv_view *kv, const mlxe_forward_batch *batch);
    /* Copies the logits row a forward with greedy_token kept on the device
     * into host (vocab_size floats). */
    void (*copy_logits)(const mlxe_model_weights *weights, mlxe_forward_state *state, float *host);
};

/* The family that runs config.json's model_type, or NULL. */
const mlxe_model_family *mlxe_model_family_find(const char *model_type);

/* Families, NULL-terminated (registry in models.c). */
extern const mlxe_model_family *const mlxe_model_families[];
extern const mlxe_model_family mlxe_llama_family;

#endif
