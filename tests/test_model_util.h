/* tests/test_model_util.h — writes tiny random-weight llama-family model
 * folders (config.json + model.safetensors) for engine tests that check
 * self-consistency and bad input; the reference-logit tests use the
 * committed fixtures instead. */
#ifndef MLXE_TEST_MODEL_UTIL_H
#define MLXE_TEST_MODEL_UTIL_H

#include <stdbool.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/safetensors_write.h"
#include "test_util.h"

typedef struct test_model_spec {
    const char *model_type;   /* "llama", "mistral", "qwen2", "qwen3" */
    int64_t vocab, hidden, ffn, layers, heads, kv_heads, head_dim;
    int64_t sliding_window;   /* mistral: written as sliding_window; 0 = null */
    bool tied;
    const char *skip_tensor;  /* leave this tensor out (bad-input tests) */
    const char *wrong_tensor; /* give this tensor one extra row */
    const char *extra_config; /* raw JSON members appended to config.json, e.g. ", \"x\": 1" */
    int quant_bits;           /* MLX affine quantization of every matrix (0 = float) */
    int quant_group;          /* its group size */
    bool dequantized_twin;    /* write float matrices holding the quantized values instead */
} test_model_spec;

static inline void test_model_spec_init(test_model_spec *s, const char *model_type) {
    memset(s, 0, sizeof *s);
    s->model_type = model_type;
    s->vocab = 64;
    s->hidden = 32;
    s->ffn = 48;
    s->layers = 2;
    s->heads = 4;
    s->kv_heads = 2;
    s->head_dim = 8;
}

typedef struct test_tensor_list {
    mlxe_safetensors_write_tensor tensors[256];
    void *data[256];
    char names[256][128];
    size_t count;
    uint64_t rng;
} test_tensor_list;

static inline float test_random_unit(uint64_t *state) {
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*state >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static inline void test_push_tensor(test_tensor_list *list, const char *name, mlxe_dtype dtype, int n_dims,
                                    int64_t d0, int64_t d1, void *data) {
    size_t i = list->count++;
    if (i >= 256) fail_msg("too many tensors");
    list->data[i] = data;
    snprintf(list->names[i], sizeof list->names[i], "%s", name);
    mlxe_safetensors_write_tensor *t = &list->tensors[i];
    memset(t, 0, sizeof *t);
    t->name = list->names[i];
    t->dtype = dtype;
    t->n_dims = n_dims;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = data;
}

/* MLX affine quantization of a [rows][cols] matrix (shared/docs/MLX_QUANT.md):
 * per group, scale = (max - min) / (2^bits - 1), bias = min,
 * q = round((w - bias) / scale), packed least-significant bits first.
 * With twin set, w is overwritten by scale * q + bias instead. */
static inline void test_quantize(test_tensor_list *list, const char *name, float *w, int64_t rows, int64_t cols,
                                 int bits, int group, bool twin) {
    int64_t groups = cols / group, levels = (1 << bits) - 1;
    uint32_t *packed = calloc((size_t)(rows * cols * bits / 32), sizeof(uint32_t));
    float *scales = malloc((size_t)(rows * groups) * sizeof(float));
    float *biases = malloc((size_t)(rows * groups) * sizeof(float));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < groups; g++) {
            float *x = w + r * cols + g * group, lo = x[0], hi = x[0];
            for (int k = 1; k < group; k++) {
                lo = x[k] < lo ? x[k] : lo;
                hi = x[k] > hi ? x[k] : hi;
            }
            float scale = (hi - lo) / (float)levels;
            if (scale == 0) scale = 1;
            scales[r * groups + g] = scale;
            biases[r * groups + g] = lo;
            for (int k = 0; k < group; k++) {
                long q = lroundf((x[k] - lo) / scale);
                q = q < 0 ? 0 : q > levels ? levels : q;
                uint64_t bit = (uint64_t)(r * cols + g * group + k) * (uint64_t)bits;
                packed[bit / 32] |= (uint32_t)q << (bit % 32);
                if (bit % 32 + (uint64_t)bits > 32) packed[bit / 32 + 1] |= (uint32_t)q >> (32 - bit % 32);
                if (twin) x[k] = scale * (float)q + lo;
            }
        }
    if (twin) {
        free(packed);
        free(scales);
        free(biases);
        test_push_tensor(list, name, MLXE_DTYPE_F32, 2, rows, cols, w);
        return;
    }
    char base[96], other[112];
    snprintf(base, sizeof base, "%.*s", (int)(strlen(name) - strlen(".weight")), name);
    test_push_tensor(list, name, MLXE_DTYPE_U32, 2, rows, cols * bits / 32, packed);
    snprintf(other, sizeof other, "%s.scales", base);
    test_push_tensor(list, other, MLXE_DTYPE_F32, 2, rows, groups, scales);
    snprintf(other, sizeof other, "%s.biases", base);
    test_push_tensor(list, other, MLXE_DTYPE_F32, 2, rows, groups, biases);
    free(w);
}

/* Adds a tensor of uniform(-scale, scale) + offset values (matrices
 * quantized when the spec says so). */
static inline void test_add_tensor(test_tensor_list *list, const test_model_spec *spec, const char *name,
                                   int n_dims, int64_t d0, int64_t d1, float scale, float offset) {
    if (spec->skip_tensor && strcmp(spec->skip_tensor, name) == 0) return;
    if (spec->wrong_tensor && strcmp(spec->wrong_tensor, name) == 0) d0++;
    int64_t n = d0 * (n_dims == 2 ? d1 : 1);
    float *data = malloc((size_t)n * sizeof(float));
    for (int64_t k = 0; k < n; k++) data[k] = offset + scale * test_random_unit(&list->rng);
    if (n_dims == 2 && spec->quant_bits)
        test_quantize(list, name, data, d0, d1, spec->quant_bits, spec->quant_group, spec->dequantized_twin);
    else
        test_push_tensor(list, name, MLXE_DTYPE_F32, n_dims, d0, d1, data);
}

/* Writes the model folder into dir (which must exist). */
static inline void test_write_model(const char *dir, const test_model_spec *s, uint64_t seed) {
    bool qwen2 = strcmp(s->model_type, "qwen2") == 0, qwen3 = strcmp(s->model_type, "qwen3") == 0;
    char path[512], config[2048], window[64] = "null";
    if (s->sliding_window > 0) snprintf(window, sizeof window, "%lld", (long long)s->sliding_window);
    snprintf(config, sizeof config,
             "{\"model_type\": \"%s\", \"vocab_size\": %lld, \"hidden_size\": %lld, "
             "\"intermediate_size\": %lld, \"num_hidden_layers\": %lld, \"num_attention_heads\": %lld, "
             "\"num_key_value_heads\": %lld, \"head_dim\": %lld, \"max_position_embeddings\": 256, "
             "\"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, \"tie_word_embeddings\": %s, "
             "\"hidden_act\": \"silu\", \"eos_token_id\": 2, \"bos_token_id\": 1, \"sliding_window\": %s%s}",
             s->model_type, (long long)s->vocab, (long long)s->hidden, (long long)s->ffn, (long long)s->layers,
             (long long)s->heads, (long long)s->kv_heads, (long long)s->head_dim, s->tied ? "true" : "false",
             window, s->extra_config ? s->extra_config : "");
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_write_file(path, config, strlen(config));

    test_tensor_list *list = calloc(1, sizeof *list);
    list->rng = seed;
    char name[96];
    int64_t q_dim = s->heads * s->head_dim, kv_dim = s->kv_heads * s->head_dim;
    test_add_tensor(list, s, "model.embed_tokens.weight", 2, s->vocab, s->hidden, 1.0f, 0.0f);
    for (int64_t l = 0; l < s->layers; l++) {
#define LAYER(suffix) (snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, suffix), name)
        test_add_tensor(list, s, LAYER("input_layernorm.weight"), 1, s->hidden, 0, 0.1f, 1.0f);
        test_add_tensor(list, s, LAYER("self_attn.q_proj.weight"), 2, q_dim, s->hidden, 0.3f, 0.0f);
        test_add_tensor(list, s, LAYER("self_attn.k_proj.weight"), 2, kv_dim, s->hidden, 0.3f, 0.0f);
        test_add_tensor(list, s, LAYER("self_attn.v_proj.weight"), 2, kv_dim, s->hidden, 0.3f, 0.0f);
        test_add_tensor(list, s, LAYER("self_attn.o_proj.weight"), 2, s->hidden, q_dim, 0.3f, 0.0f);
        if (qwen2) {
            test_add_tensor(list, s, LAYER("self_attn.q_proj.bias"), 1, q_dim, 0, 0.2f, 0.0f);
            test_add_tensor(list, s, LAYER("self_attn.k_proj.bias"), 1, kv_dim, 0, 0.2f, 0.0f);
            test_add_tensor(list, s, LAYER("self_attn.v_proj.bias"), 1, kv_dim, 0, 0.2f, 0.0f);
        }
        if (qwen3) {
            test_add_tensor(list, s, LAYER("self_attn.q_norm.weight"), 1, s->head_dim, 0, 0.1f, 1.0f);
            test_add_tensor(list, s, LAYER("self_attn.k_norm.weight"), 1, s->head_dim, 0, 0.1f, 1.0f);
        }
        test_add_tensor(list, s, LAYER("post_attention_layernorm.weight"), 1, s->hidden, 0, 0.1f, 1.0f);
        test_add_tensor(list, s, LAYER("mlp.gate_proj.weight"), 2, s->ffn, s->hidden, 0.3f, 0.0f);
        test_add_tensor(list, s, LAYER("mlp.up_proj.weight"), 2, s->ffn, s->hidden, 0.3f, 0.0f);
        test_add_tensor(list, s, LAYER("mlp.down_proj.weight"), 2, s->hidden, s->ffn, 0.3f, 0.0f);
#undef LAYER
    }
    test_add_tensor(list, s, "model.norm.weight", 1, s->hidden, 0, 0.1f, 1.0f);
    if (!s->tied) test_add_tensor(list, s, "lm_head.weight", 2, s->vocab, s->hidden, 0.5f, 0.0f);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    mlxe_error err;
    if (mlxe_safetensors_write(path, list->tensors, list->count, NULL, 0, &err) != MLXE_OK)
        fail_msg("writing %s: %s", path, err.message);
    for (size_t i = 0; i < list->count; i++) free(list->data[i]);
    free(list);
}

/* Removes a folder written by test_write_model. */
static inline void test_remove_model(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    remove(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    remove(path);
    remove(dir);
}

#endif
