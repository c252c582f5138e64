/* models/llama.c — the llama family: llama, mistral, qwen2, qwen3.
 *
 * One decoder, read top to bottom like transformers' modeling_llama.py
 * (LlamaModel.forward / LlamaDecoderLayer / LlamaAttention / LlamaMLP).
 * The variants differ only in what the config switches on:
 *   - qwen2: biases on q/k/v (config attention_bias), sliding window on
 *     layers >= max_window_layers when use_sliding_window;
 *   - qwen3: per-head RMSNorm of q and k (q_norm / k_norm) before RoPE;
 *   - mistral: sliding window on every layer;
 *   - llama: optional attention/MLP biases, llama3 RoPE scaling.
 * Weights are bound once at load by tensor name, with shapes checked
 * against the config, and used in place from the safetensors mapping
 * (F32/F16/BF16, or MLX affine-quantized: packed U32 + scales + biases).
 * Activations live in per-context scratch sized for the largest batch, so
 * a forward allocates nothing. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "models/models.h"
#include "models/rope.h"
#include "runtime/device.h"

/* Rows whose logits are computed per lm_head matmul: bounds the logits
 * scratch to this many vocab-sized rows whatever the batch. */
#define LOGIT_ROWS_PER_PASS 8
/* Decode-step graphs: attention spans 256, 512, ... 2^(8+23) positions. */
#define GRAPH_BUCKETS 24
#define GRAPH_MIN_SPAN 256

typedef struct llama_layer {
    mlxe_vector input_norm;           /* input_layernorm.weight [hidden] */
    mlxe_matrix q_proj, k_proj, v_proj, o_proj;
    mlxe_vector q_bias, k_bias, v_bias, o_bias; /* size 0 when the config has none */
    mlxe_vector q_norm, k_norm;       /* qwen3: [head_dim]; size 0 otherwise */
    mlxe_vector post_attention_norm;  /* post_attention_layernorm.weight [hidden] */
    mlxe_matrix gate_proj, up_proj, down_proj;
    mlxe_vector gate_bias, up_bias, down_bias;
    int64_t window;                   /* sliding window in tokens, 0 = full causal */
} llama_layer;

struct mlxe_model_weights {
    mlxe_device *dev;
    const mlxe_ops *ops;
    int64_t n_layers, hidden, n_heads, n_kv_heads, head_dim, q_dim, kv_dim, ffn, vocab;
    float eps;
    float attention_softmax_scale;  /* 1/sqrt(head_dim) */
    mlxe_rope_params rope;
    mlxe_matrix embed_tokens;       /* [vocab][hidden] */
    mlxe_matrix lm_head;            /* [vocab][hidden]; the embedding when tied */
    mlxe_vector final_norm;         /* model.norm.weight [hidden] */
    llama_layer *layers;
    /* Aligned device copies of tensors the file stores misaligned (MLX's
     * writer does not align): the kernels need element-aligned data. */
    void **copies;
    size_t n_copies, copies_capacity, copied_bytes;
    /* On a device with its own memory every tensor is a copy (in copies,
     * freed with free_weights): the bytes of those uploads. */
    size_t uploaded_bytes;
    size_t packed_count; /* matrices in the device's memory and layout (ops->pack_matrix) */
};

/* What binding needs: the tensors, and the model to record copies in. */
typedef struct llama_binder {
    const mlxe_weight_set *set;
    mlxe_model_weights *w;
    mlxe_load_progress_fn progress; /* may be NULL */
    void *progress_user;
    size_t done_bytes, total_bytes;
} llama_binder;

/* Tells the progress callback that info is in place; its false cancels. */
static mlxe_status report_placed(llama_binder *b, const mlxe_tensor_info *info, mlxe_error *err) {
    b->done_bytes += info->n_bytes;
    if (b->done_bytes > b->total_bytes) b->done_bytes = b->total_bytes;
    if (!b->progress || b->progress(b->progress_user, b->done_bytes, b->total_bytes)) return MLXE_OK;
    return mlxe_error_set(err, MLXE_ERR_CANCELLED, "loading cancelled by the progress callback after %zu of %zu MB",
                          b->done_bytes >> 20, b->total_bytes >> 20);
}

struct mlxe_forward_state {
    int64_t max_rows;
    float *x;        /* [rows][hidden]   residual stream */
    float *xb;       /* [rows][hidden]   normed input / projection output */
    float *q;        /* [rows][n_heads][head_dim] */
    float *k, *v;    /* [rows][n_kv_heads][head_dim] */
    float *att;      /* [rows][n_heads][head_dim] attention output */
    float *gate;     /* [rows][ffn] */
    float *up;       /* [rows][ffn] */
    float *last;     /* [LOGIT_ROWS_PER_PASS][hidden] final-normed rows wanting logits */
    float *logits;   /* [LOGIT_ROWS_PER_PASS][vocab] */
    float *inv_freq; /* [head_dim/2] device copy of the RoPE frequencies */
    float *token;    /* int32 [LOGIT_ROWS_PER_PASS]: argmax of the logits rows (greedy_token) */
    float *inv_freq_host;
    float attention_scale;          /* RoPE cos/sin factor (yarn), 1 otherwise */
    int64_t inv_freq_seq_len;       /* dynamic NTK: seq_len the table was made for */
    const mlxe_model_weights *weights;
    /* Recorded decode steps (decode_step_graph), per attention-span bucket;
     * valid for the KV cache they were recorded with (graph_kv). */
    void *graphs[GRAPH_BUCKETS];
    bool graph_warm[GRAPH_BUCKETS];
    bool graphs_off;
    bool graphs_sample;             /* the graphs end in ops->sample, not argmax */
    bool graphs_from_choice;        /* the graphs embed the previous step's device choice */
    float *const *graph_kv;
};

static const char *const llama_model_types[] = {"llama", "mistral", "qwen2", "qwen3", NULL};

/* ---- weight binding ---- */

static bool is_float_dtype(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F32 || dtype == MLXE_DTYPE_F16 || dtype == MLXE_DTYPE_BF16;
}

static mlxe_status check_float(const mlxe_tensor_info *info, mlxe_error *err) {
    if (is_float_dtype(info->dtype)) return MLXE_OK;
    return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                          "tensor '%s' in %s has dtype %s; the llama family runs F32, F16 and BF16 "
                          "weights, or MLX-quantized ones (U32 with .scales and .biases)",
                          info->name, info->file, mlxe_dtype_name(info->dtype));
}

/* Room in w->copies for one more device copy. */
static mlxe_status room_for_a_copy(mlxe_model_weights *w, mlxe_error *err) {
    if (w->n_copies < w->copies_capacity) return MLXE_OK;
    size_t capacity = w->copies_capacity ? 2 * w->copies_capacity : 64;
    void **grown = realloc(w->copies, capacity * sizeof *grown);
    if (!grown) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory loading the model");
    w->copies = grown;
    w->copies_capacity = capacity;
    return MLXE_OK;
}

/* The address the kernels read tensor info from: in place when aligned to
 * its element size, else an aligned device copy owned by the model. */
static mlxe_status place_tensor(llama_binder *b, const mlxe_tensor_info *info, const void **out, mlxe_error *err) {
    mlxe_model_weights *w = b->w;
    const bool upload = mlxe_device_has_own_memory(w->dev);
    if (!upload && (info->aligned || info->n_bytes == 0)) {
        *out = info->data;
        return report_placed(b, info, err);
    }
    mlxe_status room = room_for_a_copy(w, err);
    if (room != MLXE_OK) return room;
    void *copy = NULL;
    if (upload) {
        /* A GPU computes from its own memory: every tensor is copied there
         * once (aligned, whatever the file's alignment). */
        mlxe_status st = w->ops->upload_weights(w->dev, info->data, info->n_bytes, &copy, err);
        if (st != MLXE_OK) return mlxe_error_prefix(err, "uploading tensor '%s' of %s", info->name, info->file);
        w->copies[w->n_copies++] = copy;
        w->uploaded_bytes += info->n_bytes;
        *out = copy;
        return report_placed(b, info, err);
    }
    mlxe_status st = w->ops->alloc(w->dev, info->n_bytes, &copy, err);
    if (st != MLXE_OK) return mlxe_error_prefix(err, "copying misaligned tensor '%s'", info->name);
    w->ops->upload(w->dev, copy, info->data, info->n_bytes);
    w->copies[w->n_copies++] = copy;
    w->copied_bytes += info->n_bytes;
    *out = copy;
    return report_placed(b, info, err);
}

static mlxe_status bind_float_matrix(llama_binder *b, const char *name, int64_t rows,
                                     int64_t cols, mlxe_matrix *out, mlxe_error *err) {
    const int64_t shape[2] = {rows, cols};
    const mlxe_tensor_info *info = NULL;
    mlxe_status st = mlxe_weight_set_require(b->set, name, 2, shape, &info, err);
    if (st != MLXE_OK) return st;
    if ((st = check_float(info, err)) != MLXE_OK) return st;
    memset(out, 0, sizeof *out);
    out->dtype = info->dtype;
    out->rows = rows;
    out->cols = cols;
    return place_tensor(b, info, &out->data, err);
}

/* An MLX affine-quantized matrix (shared/docs/MLX_QUANT.md): "<base>.weight"
 * U32 [rows, cols * bits / 32] of packed values, "<base>.scales" and
 * "<base>.biases" [rows, cols / group_size] in a float dtype. bits and
 * group_size are read off the shapes, which is what per-layer overrides in
 * config.json's "quantization" would say, so they cannot disagree with the
 * data. */
static mlxe_status bind_quantized_matrix(llama_binder *b, const char *base, const mlxe_tensor_info *scales,
                                         int64_t rows, int64_t cols, mlxe_matrix *out, mlxe_error *err) {
    char name[288];
    snprintf(name, sizeof name, "%s.weight", base);
    const mlxe_tensor_info *weight = mlxe_weight_set_find(b->set, name);
    if (!weight)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "missing tensor '%s' (its '%s.scales' says it is quantized)",
                              name, base);
    if (weight->dtype != MLXE_DTYPE_U32 || weight->n_dims != 2 || weight->shape[0] != rows ||
        (weight->shape[1] * 32) % cols != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "quantized tensor '%s' in %s is %s with %d dims; the config implies U32 "
                              "[%lld, %lld * bits / 32]",
                              name, weight->file, mlxe_dtype_name(weight->dtype), weight->n_dims, (long long)rows,
                              (long long)cols);
    int64_t bits = weight->shape[1] * 32 / cols;
    if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "quantized tensor '%s' in %s packs %lld bits per value; MLX uses 2, 3, 4, 5, 6 or 8",
                              name, weight->file, (long long)bits);
    if (!is_float_dtype(scales->dtype) || scales->n_dims != 2 || scales->shape[0] != rows || scales->shape[1] <= 0 ||
        cols % scales->shape[1] != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "tensor '%s' in %s must be a float [%lld, groups] with groups dividing %lld",
                              scales->name, scales->file, (long long)rows, (long long)cols);
    int64_t group_size = cols / scales->shape[1];
    snprintf(name, sizeof name, "%s.biases", base);
    const mlxe_tensor_info *biases = NULL;
    mlxe_status st = mlxe_weight_set_require(b->set, name, 2, scales->shape, &biases, err);
    if (st != MLXE_OK) return st;
    if (biases->dtype != scales->dtype)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "tensor '%s' in %s is %s but its scales are %s", name,
                              biases->file, mlxe_dtype_name(biases->dtype), mlxe_dtype_name(scales->dtype));
    memset(out, 0, sizeof *out);
    out->dtype = MLXE_DTYPE_U32;
    out->rows = rows;
    out->cols = cols;
    out->bits = (int)bits;
    out->group_size = (int)group_size;
    out->scale_dtype = scales->dtype;
    if ((st = place_tensor(b, weight, &out->data, err)) != MLXE_OK) return st;
    if ((st = place_tensor(b, scales, &out->scales, err)) != MLXE_OK) return st;
    return place_tensor(b, biases, &out->biases, err);
}

/* Binds "<base>.weight" as a [rows][cols] matrix: quantized when
 * "<base>.scales" exists (MLX), float otherwise. */
static mlxe_status bind_matrix(llama_binder *b, const char *name, int64_t rows, int64_t cols,
                               mlxe_matrix *out, mlxe_error *err) {
    char base[256], scales_name[272];
    size_t len = strlen(name);
    const size_t suffix = strlen(".weight");
    if (len > suffix && len - suffix < sizeof base && strcmp(name + len - suffix, ".weight") == 0) {
        memcpy(base, name, len - suffix);
        base[len - suffix] = '\0';
        snprintf(scales_name, sizeof scales_name, "%s.scales", base);
        const mlxe_tensor_info *scales = mlxe_weight_set_find(b->set, scales_name);
        if (scales) return bind_quantized_matrix(b, base, scales, rows, cols, out, err);
    }
    return bind_float_matrix(b, name, rows, cols, out, err);
}

static mlxe_status bind_vector(llama_binder *b, const char *name, int64_t size,
                               mlxe_vector *out, mlxe_error *err) {
    const int64_t shape[1] = {size};
    const mlxe_tensor_info *info = NULL;
    mlxe_status st = mlxe_weight_set_require(b->set, name, 1, shape, &info, err);
    if (st != MLXE_OK) return st;
    if ((st = check_float(info, err)) != MLXE_OK) return st;
    out->dtype = info->dtype;
    out->size = size;
    return place_tensor(b, info, &out->data, err);
}

/* Binds "<prefix>.weight" [rows][cols] and, when has_bias, "<prefix>.bias" [rows]. */
static mlxe_status bind_linear(llama_binder *b, const char *prefix, int64_t rows,
                               int64_t cols, bool has_bias, mlxe_matrix *weight, mlxe_vector *bias,
                               mlxe_error *err) {
    char name[256];
    snprintf(name, sizeof name, "%s.weight", prefix);
    mlxe_status st = bind_matrix(b, name, rows, cols, weight, err);
    if (st != MLXE_OK || !has_bias) return st;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return bind_vector(b, name, rows, bias, err);
}

/* Frees an alignment copy the binder made of a part of a matrix (the
 * device's copy replaced it); parts used in place in the mapping had their
 * pages released by the device as it copied them. */
static void free_bound_copy(mlxe_model_weights *w, const void *data) {
    for (size_t i = 0; data && i < w->n_copies; i++) {
        if (w->copies[i] == data) {
            w->ops->free(w->dev, w->copies[i]);
            w->copies[i] = w->copies[--w->n_copies];
            return;
        }
    }
}

/* One matrix into the device's memory and layout (ops->pack_matrix), when
 * the device has one for it. */
static mlxe_status pack_matrix(llama_binder *b, mlxe_matrix *m, mlxe_error *err) {
    mlxe_model_weights *w = b->w;
    mlxe_status room = room_for_a_copy(w, err);
    if (room != MLXE_OK) return room;
    const mlxe_matrix bound = *m;
    void *owned = NULL;
    mlxe_status st = w->ops->pack_matrix(w->dev, m, true, &owned, err);
    if (st != MLXE_OK || !owned) return st;
    w->copies[w->n_copies++] = owned;
    w->packed_count++;
    free_bound_copy(w, bound.data);
    free_bound_copy(w, bound.scales);
    free_bound_copy(w, bound.biases);
    return MLXE_OK;
}

/* Every matrix into the device's memory and layout, one after the other
 * (the device releases the bound pages as it copies: peak memory stays near
 * the weights' size). Not for sets copied into memory: their pages cannot
 * be released (they would read back as zeros). */
static mlxe_status pack_matrices(llama_binder *b, mlxe_error *err) {
    mlxe_model_weights *w = b->w;
    /* MLXE_WEIGHTS_HUGEPAGES=0 keeps the file's layout, mapped lazily: the
     * copy costs ~0.5-2 s of load per GB on the 2-core development VM */
    const char *huge = getenv("MLXE_WEIGHTS_HUGEPAGES");
    if (!w->ops->pack_matrix || mlxe_weight_set_in_memory(b->set) || (huge && strcmp(huge, "0") == 0)) return MLXE_OK;
    /* the embedding first: tied to the lm_head, it is the largest */
    const void *embedding_bound = w->embed_tokens.data; /* a dense copy moves data */
    mlxe_status st = pack_matrix(b, &w->embed_tokens, err);
    for (int64_t l = 0; st == MLXE_OK && l < w->n_layers; l++) {
        llama_layer *layer = &w->layers[l];
        mlxe_matrix *matrices[] = {&layer->q_proj, &layer->k_proj, &layer->v_proj, &layer->o_proj,
                                   &layer->gate_proj, &layer->up_proj, &layer->down_proj};
        for (size_t i = 0; st == MLXE_OK && i < sizeof matrices / sizeof matrices[0]; i++)
            st = pack_matrix(b, matrices[i], err);
    }
    if (st == MLXE_OK && w->lm_head.data == embedding_bound) w->lm_head = w->embed_tokens; /* tied */
    else if (st == MLXE_OK) st = pack_matrix(b, &w->lm_head, err);
    if (st != MLXE_OK) return mlxe_error_prefix(err, "repacking the weights for %s", mlxe_device_name(w->dev));
    if (w->packed_count)
        MLXE_DEBUG(MLXE_LOG_CAT_MODEL, "%zu matrices copied into %s's memory and layout", w->packed_count,
                   mlxe_device_name(w->dev));
    return st;
}

/* The window a layer attends over (transformers' layer_types): mistral
 * applies sliding_window on every layer, qwen2/qwen3 from max_window_layers
 * on (the config's sliding_window is 0 unless use_sliding_window). */
static int64_t layer_window(const mlxe_model_config *config, int64_t layer) {
    if (config->sliding_window <= 0) return 0;
    if (strcmp(config->model_type, "mistral") == 0) return config->sliding_window;
    if (strcmp(config->model_type, "qwen2") == 0 || strcmp(config->model_type, "qwen3") == 0)
        return layer >= config->max_window_layers ? config->sliding_window : 0;
    return 0;
}

static mlxe_status bind_layer(const mlxe_model_config *c, llama_binder *b, int64_t l, mlxe_error *err) {
    mlxe_model_weights *w = b->w;
    llama_layer *layer = &w->layers[l];
    char prefix[128], name[192];
    mlxe_status st;
#define TRY(call)                                     \
    do {                                              \
        if ((st = (call)) != MLXE_OK) return st;      \
    } while (0)
    snprintf(prefix, sizeof prefix, "model.layers.%lld", (long long)l);

    snprintf(name, sizeof name, "%s.input_layernorm.weight", prefix);
    TRY(bind_vector(b, name, w->hidden, &layer->input_norm, err));
    snprintf(name, sizeof name, "%s.self_attn.q_proj", prefix);
    TRY(bind_linear(b, name, w->q_dim, w->hidden, c->attention_bias, &layer->q_proj, &layer->q_bias, err));
    snprintf(name, sizeof name, "%s.self_attn.k_proj", prefix);
    TRY(bind_linear(b, name, w->kv_dim, w->hidden, c->attention_bias, &layer->k_proj, &layer->k_bias, err));
    snprintf(name, sizeof name, "%s.self_attn.v_proj", prefix);
    TRY(bind_linear(b, name, w->kv_dim, w->hidden, c->attention_bias, &layer->v_proj, &layer->v_bias, err));
    snprintf(name, sizeof name, "%s.self_attn.o_proj", prefix);
    TRY(bind_linear(b, name, w->hidden, w->q_dim, c->attention_output_bias, &layer->o_proj,
                    &layer->o_bias, err));
    if (c->qk_norm) {
        snprintf(name, sizeof name, "%s.self_attn.q_norm.weight", prefix);
        TRY(bind_vector(b, name, w->head_dim, &layer->q_norm, err));
        snprintf(name, sizeof name, "%s.self_attn.k_norm.weight", prefix);
        TRY(bind_vector(b, name, w->head_dim, &layer->k_norm, err));
    }
    snprintf(name, sizeof name, "%s.post_attention_layernorm.weight", prefix);
    TRY(bind_vector(b, name, w->hidden, &layer->post_attention_norm, err));
    snprintf(name, sizeof name, "%s.mlp.gate_proj", prefix);
    TRY(bind_linear(b, name, w->ffn, w->hidden, c->mlp_bias, &layer->gate_proj, &layer->gate_bias, err));
    snprintf(name, sizeof name, "%s.mlp.up_proj", prefix);
    TRY(bind_linear(b, name, w->ffn, w->hidden, c->mlp_bias, &layer->up_proj, &layer->up_bias, err));
    snprintf(name, sizeof name, "%s.mlp.down_proj", prefix);
    TRY(bind_linear(b, name, w->hidden, w->ffn, c->mlp_bias, &layer->down_proj, &layer->down_bias, err));
#undef TRY
    layer->window = layer_window(c, l);
    return MLXE_OK;
}

/* The shape facts the forward relies on. model_config.c validates these
 * too; checking again here keeps this file safe on its own. */
static mlxe_status check_config(const mlxe_model_config *c, mlxe_error *err) {
    if (c->num_hidden_layers <= 0 || c->hidden_size <= 0 || c->vocab_size <= 0 ||
        c->intermediate_size <= 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "config.json: num_hidden_layers, hidden_size, vocab_size and "
                              "intermediate_size must be positive (got %lld, %lld, %lld, %lld)",
                              (long long)c->num_hidden_layers, (long long)c->hidden_size,
                              (long long)c->vocab_size, (long long)c->intermediate_size);
    if (c->num_attention_heads <= 0 || c->num_key_value_heads <= 0 ||
        c->num_attention_heads % c->num_key_value_heads != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "config.json: num_attention_heads (%lld) must be a positive multiple "
                              "of num_key_value_heads (%lld)",
                              (long long)c->num_attention_heads, (long long)c->num_key_value_heads);
    if (c->head_dim <= 0 || c->head_dim % 2 != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "config.json: head_dim %lld must be positive and even (RoPE rotates pairs)",
                              (long long)c->head_dim);
    if (!(c->rms_norm_eps > 0) || !(c->rope_theta > 0))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "config.json: rms_norm_eps and rope_theta must be positive");
    if (c->hidden_act[0] && strcmp(c->hidden_act, "silu") != 0)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "config.json: hidden_act '%s' is not supported (the llama family uses 'silu')",
                              c->hidden_act);
    return MLXE_OK;
}

static void llama_free(mlxe_model_weights *w) {
    if (!w) return;
    const bool uploaded = mlxe_device_has_own_memory(w->dev);
    for (size_t i = 0; i < w->n_copies; i++) {
        if (uploaded)
            w->ops->free_weights(w->dev, w->copies[i]);
        else
            w->ops->free(w->dev, w->copies[i]);
    }
    free(w->copies);
    free(w->layers);
    free(w);
}

static size_t llama_owned_bytes(const mlxe_model_weights *w) { return w ? w->copied_bytes + w->uploaded_bytes : 0; }

static mlxe_status llama_load(const mlxe_model_config *c, const mlxe_weight_set *set, mlxe_device *dev,
                              mlxe_load_progress_fn progress, void *progress_user, mlxe_model_weights **out,
                              mlxe_error *err) {
    *out = NULL;
    mlxe_status st = check_config(c, err);
    if (st != MLXE_OK) return st;
    mlxe_model_weights *w = calloc(1, sizeof *w);
    if (!w) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory loading the model");
    w->dev = dev;
    w->ops = mlxe_device_ops(dev);
    w->n_layers = c->num_hidden_layers;
    w->hidden = c->hidden_size;
    w->n_heads = c->num_attention_heads;
    w->n_kv_heads = c->num_key_value_heads;
    w->head_dim = c->head_dim;
    w->q_dim = w->n_heads * w->head_dim;
    w->kv_dim = w->n_kv_heads * w->head_dim;
    w->ffn = c->intermediate_size;
    w->vocab = c->vocab_size;
    w->eps = (float)c->rms_norm_eps;
    w->attention_softmax_scale = (float)(1.0 / sqrt((double)w->head_dim));
    mlxe_rope_params_from_config(c, &w->rope);
    w->layers = calloc((size_t)w->n_layers, sizeof *w->layers);
    if (!w->layers) {
        llama_free(w);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory loading the model");
    }

    llama_binder binder = {set, w, progress, progress_user, 0, mlxe_weight_set_total_bytes(set)};
    llama_binder *b = &binder;
    st = bind_matrix(b, "model.embed_tokens.weight", w->vocab, w->hidden, &w->embed_tokens, err);
    for (int64_t l = 0; st == MLXE_OK && l < w->n_layers; l++) st = bind_layer(c, b, l, err);
    if (st == MLXE_OK) st = bind_vector(b, "model.norm.weight", w->hidden, &w->final_norm, err);
    if (st == MLXE_OK) {
        /* transformers ties lm_head to the embedding when tie_word_embeddings
         * is set, whether or not the file also stores lm_head.weight. */
        if (c->tie_word_embeddings)
            w->lm_head = w->embed_tokens;
        else
            st = bind_matrix(b, "lm_head.weight", w->vocab, w->hidden, &w->lm_head, err);
    }
    if (st == MLXE_OK) st = pack_matrices(b, err);
    if (st != MLXE_OK) {
        llama_free(w);
        return st;
    }
    if (w->uploaded_bytes)
        MLXE_INFO(MLXE_LOG_CAT_MODEL, "%zu tensors (%zu MB) uploaded to %s (%s)", w->n_copies, w->uploaded_bytes >> 20,
                  mlxe_device_name(dev), mlxe_device_description(dev));
    else if (w->n_copies)
        MLXE_INFO(MLXE_LOG_CAT_MODEL, "%zu misaligned tensors (%zu MB) copied to aligned memory", w->n_copies,
                  w->copied_bytes >> 20);
    MLXE_DEBUG(MLXE_LOG_CAT_MODEL,
               "%s: %lld layers, hidden %lld, heads %lld/%lld x %lld, ffn %lld, vocab %lld, rope %d",
               c->model_type, (long long)w->n_layers, (long long)w->hidden, (long long)w->n_heads,
               (long long)w->n_kv_heads, (long long)w->head_dim, (long long)w->ffn, (long long)w->vocab,
               (int)w->rope.scaling.type);
    /* the end, whatever the set held beyond the tensors bound (its answer no longer matters) */
    if (progress) progress(progress_user, binder.total_bytes, binder.total_bytes);
    *out = w;
    return MLXE_OK;
}

/* ---- scratch ---- */

/* Element counts of the scratch buffers, in the order of the struct. */
#define N_STATE_BUFFERS 12

static void scratch_sizes(const mlxe_model_weights *w, int64_t rows, size_t sizes[N_STATE_BUFFERS]) {
    sizes[0] = (size_t)(rows * w->hidden);                  /* x */
    sizes[1] = (size_t)(rows * w->hidden);                  /* xb */
    sizes[2] = (size_t)(rows * w->q_dim);                   /* q */
    sizes[3] = (size_t)(rows * w->kv_dim);                  /* k */
    sizes[4] = (size_t)(rows * w->kv_dim);                  /* v */
    sizes[5] = (size_t)(rows * w->q_dim);                   /* att */
    sizes[6] = (size_t)(rows * w->ffn);                     /* gate */
    sizes[7] = (size_t)(rows * w->ffn);                     /* up */
    sizes[8] = (size_t)(LOGIT_ROWS_PER_PASS * w->hidden);   /* last */
    sizes[9] = (size_t)(LOGIT_ROWS_PER_PASS * w->vocab);    /* logits */
    sizes[10] = (size_t)(w->head_dim / 2);                  /* inv_freq */
    sizes[11] = LOGIT_ROWS_PER_PASS;                        /* token (int32, the size of a float) */
}

static size_t llama_state_bytes(const mlxe_model_weights *w, int64_t max_rows) {
    size_t sizes[N_STATE_BUFFERS], total = 0;
    scratch_sizes(w, max_rows, sizes);
    for (int i = 0; i < N_STATE_BUFFERS; i++) total += sizes[i] * sizeof(float);
    return total;
}

static float **state_buffer(mlxe_forward_state *s, int i) {
    float **buffers[N_STATE_BUFFERS] = {&s->x,    &s->xb, &s->q,    &s->k,      &s->v,        &s->att,
                                        &s->gate, &s->up, &s->last, &s->logits, &s->inv_freq, &s->token};
    return buffers[i];
}

static void llama_state_free(mlxe_forward_state *s) {
    if (!s) return;
    const mlxe_model_weights *w = s->weights;
    for (int b = 0; b < GRAPH_BUCKETS && w->ops->graph_free; b++) w->ops->graph_free(w->dev, s->graphs[b]);
    for (int i = 0; i < N_STATE_BUFFERS; i++)
        if (*state_buffer(s, i)) w->ops->free(w->dev, *state_buffer(s, i));
    free(s->inv_freq_host);
    free(s);
}

/* Computes the RoPE table for seq_len and uploads it. */
static void update_rope(const mlxe_model_weights *w, mlxe_forward_state *s, int64_t seq_len) {
    mlxe_rope_frequencies(&w->rope, seq_len, s->inv_freq_host, &s->attention_scale);
    w->ops->upload(w->dev, s->inv_freq, s->inv_freq_host, (size_t)(w->head_dim / 2) * sizeof(float));
    s->inv_freq_seq_len = seq_len;
}

static mlxe_status llama_state_create(const mlxe_model_weights *w, int64_t max_rows,
                                      mlxe_forward_state **out, mlxe_error *err) {
    *out = NULL;
    if (max_rows <= 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "forward batch size must be positive");
    mlxe_forward_state *s = calloc(1, sizeof *s);
    if (!s) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    s->weights = w;
    s->max_rows = max_rows;
    s->inv_freq_host = malloc((size_t)(w->head_dim / 2) * sizeof(float));
    if (!s->inv_freq_host) {
        llama_state_free(s);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    }
    size_t sizes[N_STATE_BUFFERS];
    scratch_sizes(w, max_rows, sizes);
    for (int i = 0; i < N_STATE_BUFFERS; i++) {
        void *buffer = NULL;
        mlxe_status st = w->ops->alloc(w->dev, sizes[i] * sizeof(float), &buffer, err);
        if (st != MLXE_OK) {
            llama_state_free(s);
            return mlxe_error_prefix(err, "allocating %zu bytes of forward scratch for %lld rows",
                                     sizes[i] * sizeof(float), (long long)max_rows);
        }
        *state_buffer(s, i) = buffer;
    }
    update_rope(w, s, 0);
    *out = s;
    return MLXE_OK;
}

/* ---- the forward pass ---- */

/* The layers of a forward, up to the residual stream x after the last
 * layer (queued on the device, nothing waited for). kv_length: the
 * attention hint (runtime/ops.h). */
static void forward_layers(const mlxe_model_weights *w, mlxe_forward_state *s, const mlxe_kv_view *kv,
                           const mlxe_forward_batch *batch, int64_t kv_length) {
    const mlxe_ops *ops = w->ops;
    mlxe_device *dev = w->dev;
    const int64_t n = batch->n_rows, hidden = w->hidden, ffn = w->ffn;

    /* x = embed_tokens(input_ids)                                 x: [n, hidden]
     * (a pipelined step's id: the previous step's choice, on the device) */
    const int32_t *ids = batch->token_from_choice ? (const int32_t *)(void *)s->token : batch->tokens;
    ops->embedding(dev, &w->embed_tokens, ids, n, s->x);

    for (int64_t l = 0; l < w->n_layers; l++) {
        const llama_layer *layer = &w->layers[l];

        /* ---- self-attention block ---- */
        /* xb = input_layernorm(x)                                 xb: [n, hidden]
         * q = q_proj(xb), k = k_proj(xb), v = v_proj(xb)
         *   q: [n, n_heads, head_dim]   k, v: [n, n_kv_heads, head_dim]
         * (a device with matmul_multi may fold the norm into the projections) */
        if (ops->matmul_multi) {
            const mlxe_matrix *projections[3] = {&layer->q_proj, &layer->k_proj, &layer->v_proj};
            float *outputs[3] = {s->q, s->k, s->v};
            ops->matmul_multi(dev, s->x, n, &layer->input_norm, w->eps, s->xb, 3, projections, outputs);
        } else {
            ops->rms_norm(dev, s->x, &layer->input_norm, n, hidden, w->eps, s->xb);
            ops->matmul(dev, s->xb, n, &layer->q_proj, s->q);
            ops->matmul(dev, s->xb, n, &layer->k_proj, s->k);
            ops->matmul(dev, s->xb, n, &layer->v_proj, s->v);
        }
        if (layer->q_bias.size) ops->add_bias(dev, s->q, n, &layer->q_bias);
        if (layer->k_bias.size) ops->add_bias(dev, s->k, n, &layer->k_bias);
        if (layer->v_bias.size) ops->add_bias(dev, s->v, n, &layer->v_bias);
        /* qwen3: q = q_norm(q), k = k_norm(k), per head over head_dim */
        if (layer->q_norm.size) {
            ops->rms_norm(dev, s->q, &layer->q_norm, n * w->n_heads, w->head_dim, w->eps, s->q);
            ops->rms_norm(dev, s->k, &layer->k_norm, n * w->n_kv_heads, w->head_dim, w->eps, s->k);
        }
        /* q, k = apply_rotary_pos_emb(q, k, cos, sin)
         * past_key_value.update(k, v): cache[slot][:, pos] = k, v */
        /* one token: RoPE and the cache write inside the attention op where the device has it */
        const bool rope_in_attention = n == 1 && ops->rope_attention;
        if (rope_in_attention) {
            /* done by rope_attention below */
        } else if (ops->rope_kv_store) {
            ops->rope_kv_store(dev, s->q, s->k, s->v, n, w->n_heads, w->n_kv_heads, w->head_dim, batch->positions,
                               s->inv_freq, s->attention_scale, kv->k[l], kv->v[l], kv->capacity, batch->slots);
        } else {
            ops->rope(dev, s->q, n, w->n_heads, w->head_dim, batch->positions, s->inv_freq, s->attention_scale);
            ops->rope(dev, s->k, n, w->n_kv_heads, w->head_dim, batch->positions, s->inv_freq,
                      s->attention_scale);
            ops->kv_store(dev, s->k, s->v, n, w->n_kv_heads, w->head_dim, kv->k[l], kv->v[l], kv->capacity,
                          batch->slots, batch->positions);
        }
        /* one token: o_proj's first rows on their way while the attention
         * below leaves memory idle */
        if (n == 1 && ops->prefetch) ops->prefetch(dev, &layer->o_proj);
        /* att = softmax(q k^T * scale + causal/window mask) v       att: [n, n_heads, head_dim] */
        mlxe_attention_args args = {
            .n_rows = n,
            .n_heads = w->n_heads,
            .n_kv_heads = w->n_kv_heads,
            .head_dim = w->head_dim,
            .q = s->q,
            .k_cache = kv->k[l],
            .v_cache = kv->v[l],
            .capacity = kv->capacity,
            .slots = batch->slots,
            .positions = batch->positions,
            .window = layer->window,
            .scale = w->attention_softmax_scale,
            .out = s->att,
            .kv_length = kv_length,
        };
        if (rope_in_attention)
            ops->rope_attention(dev, &args, s->k, s->v, s->inv_freq, s->attention_scale);
        else
            ops->attention(dev, &args);
        /* x = x + o_proj(att)                                     xb: [n, hidden] */
        if (ops->matmul_add && !layer->o_bias.size) {
            ops->matmul_add(dev, s->att, n, &layer->o_proj, s->x);
        } else {
            ops->matmul(dev, s->att, n, &layer->o_proj, s->xb);
            if (layer->o_bias.size) ops->add_bias(dev, s->xb, n, &layer->o_bias);
            ops->add(dev, s->x, s->xb, n * hidden);
        }

        /* ---- MLP block ---- */
        /* xb = post_attention_layernorm(x)
         * gate = gate_proj(xb), up = up_proj(xb)                  gate, up: [n, ffn]
         * gate = silu(gate) * up */
        if (ops->matmul_swiglu && !layer->gate_bias.size && !layer->up_bias.size) {
            ops->matmul_swiglu(dev, s->x, n, &layer->post_attention_norm, w->eps, s->xb, &layer->gate_proj,
                               &layer->up_proj, s->gate, s->up);
        } else {
            ops->rms_norm(dev, s->x, &layer->post_attention_norm, n, hidden, w->eps, s->xb);
            ops->matmul(dev, s->xb, n, &layer->gate_proj, s->gate);
            ops->matmul(dev, s->xb, n, &layer->up_proj, s->up);
            if (layer->gate_bias.size) ops->add_bias(dev, s->gate, n, &layer->gate_bias);
            if (layer->up_bias.size) ops->add_bias(dev, s->up, n, &layer->up_bias);
            ops->silu_mul(dev, s->gate, s->up, s->gate, n * ffn);
        }
        /* x = x + down_proj(gate) */
        if (ops->matmul_add && !layer->down_bias.size) {
            ops->matmul_add(dev, s->gate, n, &layer->down_proj, s->x);
        } else {
            ops->matmul(dev, s->gate, n, &layer->down_proj, s->xb);
            if (layer->down_bias.size) ops->add_bias(dev, s->xb, n, &layer->down_bias);
            ops->add(dev, s->x, s->xb, n * hidden);
        }
    }
}

/* The end of a one-token decode step: the final norm, the logits and (where
 * the device has it) their argmax, the greedy token, or the token sampled
 * with sample_params (device memory). */
/* The token of the first logits row, chosen on the device into s->token:
 * sampled with sample_params (device memory) where the device samples,
 * else its argmax where it has one. */
static void choose_token(const mlxe_model_weights *w, mlxe_forward_state *s, const mlxe_sample_params *sample_params) {
    if (sample_params && w->ops->sample)
        w->ops->sample(w->dev, s->logits, w->vocab, sample_params, (int32_t *)(void *)s->token);
    else if (w->ops->argmax)
        w->ops->argmax(w->dev, s->logits, 1, w->vocab, (int32_t *)(void *)s->token);
}

static void decode_tail(const mlxe_model_weights *w, mlxe_forward_state *s, const mlxe_sample_params *sample_params) {
    w->ops->rms_norm(w->dev, s->x, &w->final_norm, 1, w->hidden, w->eps, s->last);
    w->ops->matmul(w->dev, s->last, 1, &w->lm_head, s->logits);
    choose_token(w, s, sample_params);
}

/* The decode step of one token as a recorded graph (runtime/ops.h
 * graph_*), replayed at a fraction of the launch cost of its ~17 ops per
 * layer. The attention hint is rounded up to a power of two (a recording
 * per bucket: the split over the sequence depends on it); the first step
 * of a bucket runs directly, sizing the device's buffers, the second is
 * recorded. Returns false when the step must run directly. */
static bool decode_step_graph(const mlxe_model_weights *w, mlxe_forward_state *s, const mlxe_kv_view *kv,
                              const mlxe_forward_batch *batch) {
    const mlxe_ops *ops = w->ops;
    if (!ops->graph_begin || s->graphs_off || batch->n_rows != 1 || batch->n_logit_rows != 1 ||
        mlxe_rope_is_dynamic(&w->rope))
        return false;
    if (!s->graph_kv) s->graph_kv = kv->k;
    if (kv->k != s->graph_kv) return false;
    /* a tail of the other kind (argmax / sample): record again */
    const mlxe_sample_params *sample_params = ops->sample ? batch->sample_params : NULL;
    if ((sample_params != NULL) != s->graphs_sample || batch->token_from_choice != s->graphs_from_choice) {
        for (int b = 0; b < GRAPH_BUCKETS; b++) {
            ops->graph_free(w->dev, s->graphs[b]);
            s->graphs[b] = NULL;
            s->graph_warm[b] = false;
        }
        s->graphs_sample = sample_params != NULL;
        s->graphs_from_choice = batch->token_from_choice;
    }
    int bucket = 0;
    while (bucket < GRAPH_BUCKETS - 1 && ((int64_t)GRAPH_MIN_SPAN << bucket) < batch->max_position + 1) bucket++;
    if (((int64_t)GRAPH_MIN_SPAN << bucket) < batch->max_position + 1) return false;
    const int64_t kv_length = (int64_t)GRAPH_MIN_SPAN << bucket;
    if (s->graphs[bucket] && ops->graph_launch(w->dev, s->graphs[bucket])) return true;
    ops->graph_free(w->dev, s->graphs[bucket]);
    s->graphs[bucket] = NULL;
    if (!s->graph_warm[bucket]) {
        s->graph_warm[bucket] = true;
        forward_layers(w, s, kv, batch, kv_length);
        decode_tail(w, s, sample_params);
        return true;
    }
    if (!ops->graph_begin(w->dev)) {
        s->graphs_off = true;
        return false;
    }
    forward_layers(w, s, kv, batch, kv_length);
    decode_tail(w, s, sample_params);
    s->graphs[bucket] = ops->graph_end(w->dev);
    if (!s->graphs[bucket] || !ops->graph_launch(w->dev, s->graphs[bucket])) {
        MLXE_DEBUG(MLXE_LOG_CAT_MODEL, "decode step not recordable on %s: graphs off for this context",
                   mlxe_device_name(w->dev));
        s->graphs_off = true;
        return false;
    }
    return true;
}

/* The step's chosen token to the host: handed over without waiting for
 * later work (batch->keep_slot, ops->token_keep) or downloaded; where the
 * device could not choose (-1: ops.h sample), the logits too. */
static void hand_over_choice(const mlxe_model_weights *w, mlxe_forward_state *s, const mlxe_forward_batch *batch) {
    const mlxe_ops *ops = w->ops;
    int32_t *token = (int32_t *)(void *)s->token;
    if (batch->keep_slot && ops->token_keep) {
        *batch->keep_handle = ops->token_keep(w->dev, batch->keep_slot, token);
        return;
    }
    ops->download(w->dev, batch->greedy_token, token, sizeof(int32_t));
    if (*batch->greedy_token < 0)
        ops->download(w->dev, batch->logits, s->logits, (size_t)w->vocab * sizeof(float));
}

static void llama_forward(const mlxe_model_weights *w, mlxe_forward_state *s, const mlxe_kv_view *kv,
                          const mlxe_forward_batch *batch) {
    const mlxe_ops *ops = w->ops;
    mlxe_device *dev = w->dev;
    const int64_t hidden = w->hidden;

    /* Dynamic NTK: transformers recomputes inv_freq from the largest
     * position of the forward once it exceeds max_position_embeddings. */
    if (mlxe_rope_is_dynamic(&w->rope)) {
        int64_t seq_len = batch->max_position + 1;
        if (seq_len <= w->rope.max_position_embeddings) seq_len = 0;
        if (seq_len != s->inv_freq_seq_len) update_rope(w, s, seq_len);
    }

    /* greedy: the argmax (or the token sampled with sample_params) on the
     * device, one int32 copied back, the logits kept for copy_logits */
    if (batch->greedy_token) *batch->greedy_token = -1;
    const bool greedy = batch->greedy_token && (ops->argmax || (batch->sample_params && ops->sample)) &&
                        batch->n_logit_rows == 1;
    if (decode_step_graph(w, s, kv, batch)) {
        if (greedy) hand_over_choice(w, s, batch);
        else ops->download(dev, batch->logits, s->logits, (size_t)w->vocab * sizeof(float));
        return;
    }
    forward_layers(w, s, kv, batch, batch->max_position + 1);

    /* logits = lm_head(norm(x)) for the wanted rows only, a few at a time:
     * rms_norm of single rows doubles as the gather.     logits: [rows, vocab] */
    for (int64_t first = 0; first < batch->n_logit_rows; first += LOGIT_ROWS_PER_PASS) {
        int64_t count = batch->n_logit_rows - first;
        if (count > LOGIT_ROWS_PER_PASS) count = LOGIT_ROWS_PER_PASS;
        for (int64_t j = 0; j < count; j++) {
            int64_t row = batch->logit_rows[first + j];
            ops->rms_norm(dev, s->x + row * hidden, &w->final_norm, 1, hidden, w->eps, s->last + j * hidden);
        }
        ops->matmul(dev, s->last, count, &w->lm_head, s->logits);
        if (greedy) {
            choose_token(w, s, batch->sample_params);
            hand_over_choice(w, s, batch);
        } else {
            ops->download(dev, batch->logits + first * w->vocab, s->logits,
                          (size_t)(count * w->vocab) * sizeof(float));
        }
    }
}

static void llama_copy_logits(const mlxe_model_weights *w, mlxe_forward_state *s, float *host) {
    w->ops->download(w->dev, host, s->logits, (size_t)w->vocab * sizeof(float));
}

const mlxe_model_family mlxe_llama_family = {
    .name = "llama",
    .model_types = llama_model_types,
    .load = llama_load,
    .free = llama_free,
    .owned_bytes = llama_owned_bytes,
    .state_create = llama_state_create,
    .state_free = llama_state_free,
    .state_bytes = llama_state_bytes,
    .forward = llama_forward,
    .copy_logits = llama_copy_logits,
};
