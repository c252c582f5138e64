/* Loads every model fixture (tiny models written by transformers 5.17, see
 * docs/FIXTURES.md) through the formats layer and checks it against what
 * transformers recorded in reference.json: the tensor list with dtypes and
 * shapes, the rope frequencies for unscaled and linear rope, yarn's
 * attention scaling, and the tensor shapes implied by our parsed config. */
#include "test_util.h"

#include <dirent.h>
#include <math.h>

#include "base/json.h"
#include "format/model_config.h"
#include "format/safetensors.h"
#include "format_test_helpers.h"
#include "mlxengine/mlxengine.h"

#define MODELS MLXE_FIXTURES "/models"

/* Requires name with the given dims; counts it. */
static void require(const mlxe_weight_set *set, const char *name, int n_dims, int64_t d0, int64_t d1,
                    size_t *count) {
    int64_t shape[2] = {d0, d1};
    mlxe_error err;
    if (mlxe_weight_set_require(set, name, n_dims, shape, NULL, &err) != MLXE_OK) fail_msg("%s", err.message);
    (*count)++;
}

/* Every tensor the config implies is there with the implied shape, and
 * nothing else is. */
static void check_implied_shapes(const mlxe_model_config *c, const mlxe_weight_set *set) {
    size_t count = 0;
    char name[128];
    int64_t q = c->num_attention_heads * c->head_dim, kv = c->num_key_value_heads * c->head_dim;
    require(set, "model.embed_tokens.weight", 2, c->vocab_size, c->hidden_size, &count);
    require(set, "model.norm.weight", 1, c->hidden_size, 0, &count);
    if (c->tie_word_embeddings) assert_null(mlxe_weight_set_find(set, "lm_head.weight"));
    else require(set, "lm_head.weight", 2, c->vocab_size, c->hidden_size, &count);
    for (int64_t l = 0; l < c->num_hidden_layers; l++) {
#define LAYER(suffix) (snprintf(name, sizeof name, "model.layers.%lld.%s", (long long)l, suffix), name)
        require(set, LAYER("self_attn.q_proj.weight"), 2, q, c->hidden_size, &count);
        require(set, LAYER("self_attn.k_proj.weight"), 2, kv, c->hidden_size, &count);
        require(set, LAYER("self_attn.v_proj.weight"), 2, kv, c->hidden_size, &count);
        require(set, LAYER("self_attn.o_proj.weight"), 2, c->hidden_size, q, &count);
        require(set, LAYER("mlp.gate_proj.weight"), 2, c->intermediate_size, c->hidden_size, &count);
        require(set, LAYER("mlp.up_proj.weight"), 2, c->intermediate_size, c->hidden_size, &count);
        require(set, LAYER("mlp.down_proj.weight"), 2, c->hidden_size, c->intermediate_size, &count);
        require(set, LAYER("input_layernorm.weight"), 1, c->hidden_size, 0, &count);
        require(set, LAYER("post_attention_layernorm.weight"), 1, c->hidden_size, 0, &count);
        if (c->attention_bias) {
            require(set, LAYER("self_attn.q_proj.bias"), 1, q, 0, &count);
            require(set, LAYER("self_attn.k_proj.bias"), 1, kv, 0, &count);
            require(set, LAYER("self_attn.v_proj.bias"), 1, kv, 0, &count);
        }
        if (c->attention_output_bias) require(set, LAYER("self_attn.o_proj.bias"), 1, c->hidden_size, 0, &count);
        if (c->qk_norm) {
            require(set, LAYER("self_attn.q_norm.weight"), 1, c->head_dim, 0, &count);
            require(set, LAYER("self_attn.k_norm.weight"), 1, c->head_dim, 0, &count);
        }
#undef LAYER
    }
    assert_int_equal(count, mlxe_weight_set_count(set));
}

static void check_fixture(const char *dir) {
    mlxe_error err;
    mlxe_model_config config;
    mlxe_generation_config gen;
    if (mlxe_model_config_load(dir, &config, &gen, &err) != MLXE_OK) fail_msg("%s", err.message);
    mlxe_weight_set *set = NULL;
    if (mlxe_weight_set_open(dir, &set, &err) != MLXE_OK) fail_msg("%s", err.message);
    char *reference_path = join_path(dir, "reference.json");
    cJSON *reference = NULL;
    if (mlxe_json_parse_file(reference_path, 64u << 20, &reference, &err) != MLXE_OK) fail_msg("%s", err.message);
    free(reference_path);

    /* The tensor list transformers recorded. */
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(reference, "tensors");
    assert_int_equal(cJSON_GetArraySize(tensors), mlxe_weight_set_count(set));
    const cJSON *entry;
    cJSON_ArrayForEach(entry, tensors) {
        const mlxe_tensor_info *t = mlxe_weight_set_find(set, entry->string);
        if (!t) fail_msg("%s: tensor %s not found", dir, entry->string);
        assert_string_equal(mlxe_dtype_name(t->dtype),
                            cJSON_GetObjectItemCaseSensitive(entry, "dtype")->valuestring);
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
        assert_int_equal(cJSON_GetArraySize(shape), t->n_dims);
        for (int d = 0; d < t->n_dims; d++)
            assert_int_equal((int64_t)cJSON_GetArrayItem(shape, d)->valuedouble, t->shape[d]);
        assert_int_equal((uintptr_t)t->data % mlxe_dtype_size(t->dtype), 0);
    }
    bool lm_head_in_file = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reference, "lm_head_in_file"));
    assert_int_equal(lm_head_in_file, !config.tie_word_embeddings);
    check_implied_shapes(&config, set);

    /* Rope: transformers' inv_freq after loading. Unscaled and linear rope
     * follow from theta, head_dim and factor alone. */
    const cJSON *rope = cJSON_GetObjectItemCaseSensitive(reference, "rope_at_load");
    const cJSON *inv_freq = cJSON_GetObjectItemCaseSensitive(rope, "inv_freq");
    assert_int_equal(cJSON_GetArraySize(inv_freq), config.head_dim / 2);
    if (config.rope_scaling.type == MLXE_ROPE_SCALING_NONE || config.rope_scaling.type == MLXE_ROPE_SCALING_LINEAR) {
        double factor = config.rope_scaling.type == MLXE_ROPE_SCALING_LINEAR ? config.rope_scaling.factor : 1.0;
        for (int i = 0; i < config.head_dim / 2; i++) {
            double want = cJSON_GetArrayItem(inv_freq, i)->valuedouble;
            double got = 1.0 / pow(config.rope_theta, 2.0 * i / (double)config.head_dim) / factor;
            if (fabs(got - want) > 1e-6 * fabs(want) + 1e-12)
                fail_msg("%s: inv_freq[%d] %.9g, transformers has %.9g", dir, i, got, want);
        }
    }
    double attention_scaling = cJSON_GetObjectItemCaseSensitive(rope, "attention_scaling")->valuedouble;
    if (config.rope_scaling.type == MLXE_ROPE_SCALING_YARN)
        assert_true(fabs(0.1 * log(config.rope_scaling.factor) + 1.0 - attention_scaling) < 1e-12);
    else
        assert_true(attention_scaling == 1.0);

    /* Values the config states, as transformers read them. */
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(reference, "config");
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(cfg, "sliding_window");
    assert_int_equal(config.sliding_window, cJSON_IsNumber(window) ? (int64_t)window->valuedouble : 0);
    assert_int_equal(config.n_eos_token_ids, 1);
    assert_int_equal(config.eos_token_ids[0], 2);
    assert_int_equal(config.bos_token_id, 1);
    assert_true(gen.present);
    assert_int_equal(gen.n_eos_token_ids, 1);
    const char *architecture = cJSON_GetObjectItemCaseSensitive(reference, "architecture")->valuestring;
    assert_string_equal(config.architecture, architecture);

    /* The transformers 5 form of the same config (what transformers wrote
     * when it loaded the committed one) must parse to the same values. */
    const cJSON *saved = cJSON_GetObjectItemCaseSensitive(reference, "config_saved_by_transformers");
    mlxe_model_config a, b;
    if (mlxe_model_config_parse(cfg, "config", &a, &err) != MLXE_OK) fail_msg("%s", err.message);
    if (mlxe_model_config_parse(saved, "saved config", &b, &err) != MLXE_OK) fail_msg("%s", err.message);
    assert_string_equal(a.model_type, b.model_type);
    assert_int_equal(a.head_dim, b.head_dim);
    assert_int_equal(a.num_key_value_heads, b.num_key_value_heads);
    assert_true(a.rope_theta == b.rope_theta);
    assert_true(a.rms_norm_eps == b.rms_norm_eps);
    assert_int_equal(a.rope_scaling.type, b.rope_scaling.type);
    assert_true(a.rope_scaling.factor == b.rope_scaling.factor);
    assert_true(a.rope_scaling.low_freq_factor == b.rope_scaling.low_freq_factor);
    assert_true(a.rope_scaling.high_freq_factor == b.rope_scaling.high_freq_factor);
    assert_int_equal(a.rope_scaling.original_max_position_embeddings, b.rope_scaling.original_max_position_embeddings);
    assert_true(a.rope_scaling.beta_fast == b.rope_scaling.beta_fast);
    assert_int_equal(a.sliding_window, b.sliding_window);
    assert_int_equal(a.tie_word_embeddings, b.tie_word_embeddings);
    assert_int_equal(a.attention_bias, b.attention_bias);
    assert_int_equal(a.torch_dtype, b.torch_dtype);
    assert_int_equal(a.torch_dtype, mlxe_weight_set_find(set, "model.embed_tokens.weight")->dtype);

    cJSON_Delete(reference);
    mlxe_weight_set_close(set);
}

static void test_all_fixtures(void **state) {
    (void)state;
    DIR *d = opendir(MODELS);
    if (!d) fail_msg("no fixtures at %s", MODELS);
    int checked = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char *dir = join_path(MODELS, e->d_name);
        char *config = join_path(dir, "config.json");
        if (access(config, R_OK) == 0) {
            check_fixture(dir);
            checked++;
        }
        free(config);
        free(dir);
    }
    closedir(d);
    assert_true(checked >= 9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
