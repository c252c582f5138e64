/* Tests of config.json and generation_config.json parsing: published
 * configs, transformers' defaults per model_type, rope variants, eos forms,
 * and the errors for impossible configs. */
#include "test_util.h"

#include <math.h>

#include "format/model_config.h"
#include "format_test_helpers.h"
#include "mlxengine/mlxengine.h"

static char temp_dir[256];

static int setup(void **state) {
    (void)state;
    test_make_temp_dir(temp_dir, sizeof temp_dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    remove_tree(temp_dir);
    return 0;
}

static mlxe_status parse(const char *json, mlxe_model_config *config, mlxe_error *err) {
    cJSON *root = cJSON_Parse(json);
    if (!root) fail_msg("test JSON does not parse: %s", json);
    mlxe_error_clear(err);
    mlxe_status status = mlxe_model_config_parse(root, "config.json", config, err);
    cJSON_Delete(root);
    return status;
}

static void parse_ok(const char *json, mlxe_model_config *config) {
    mlxe_error err;
    if (parse(json, config, &err) != MLXE_OK) fail_msg("unexpected error: %s", err.message);
}

static void expect_error(const char *json, mlxe_status status, const char *needle1, const char *needle2) {
    mlxe_model_config config;
    mlxe_error err;
    mlxe_status got = parse(json, &config, &err);
    if (got != status) fail_msg("expected %s, got %s (%s) for %s", mlxe_status_name(status), mlxe_status_name(got), err.message, json);
    assert_message_contains(err.message, "config.json");
    if (needle1) assert_message_contains(err.message, needle1);
    if (needle2) assert_message_contains(err.message, needle2);
}

static void write_text(const char *name, const char *text) {
    char *path = join_path(temp_dir, name);
    test_write_file(path, text, strlen(text));
    free(path);
}

/* meta-llama/Llama-3.2-1B-Instruct config.json as published. */
static const char *const llama32_config =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"attention_bias\":false,\"attention_dropout\":0.0,"
    "\"bos_token_id\":128000,\"eos_token_id\":[128001,128008,128009],\"head_dim\":64,"
    "\"hidden_act\":\"silu\",\"hidden_size\":2048,\"initializer_range\":0.02,\"intermediate_size\":8192,"
    "\"max_position_embeddings\":131072,\"mlp_bias\":false,\"model_type\":\"llama\","
    "\"num_attention_heads\":32,\"num_hidden_layers\":16,\"num_key_value_heads\":8,\"pretraining_tp\":1,"
    "\"rms_norm_eps\":1e-05,\"rope_scaling\":{\"factor\":32.0,\"high_freq_factor\":4.0,"
    "\"low_freq_factor\":1.0,\"original_max_position_embeddings\":8192,\"rope_type\":\"llama3\"},"
    "\"rope_theta\":500000.0,\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\","
    "\"transformers_version\":\"4.45.0.dev0\",\"use_cache\":true,\"vocab_size\":128256}";

/* Qwen/Qwen2.5-0.5B-Instruct config.json as published. */
static const char *const qwen25_config =
    "{\"architectures\":[\"Qwen2ForCausalLM\"],\"attention_dropout\":0.0,\"bos_token_id\":151643,"
    "\"eos_token_id\":151645,\"hidden_act\":\"silu\",\"hidden_size\":896,\"initializer_range\":0.02,"
    "\"intermediate_size\":4864,\"max_position_embeddings\":32768,\"max_window_layers\":21,"
    "\"model_type\":\"qwen2\",\"num_attention_heads\":14,\"num_hidden_layers\":24,"
    "\"num_key_value_heads\":2,\"rms_norm_eps\":1e-06,\"rope_theta\":1000000.0,"
    "\"sliding_window\":32768,\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\","
    "\"transformers_version\":\"4.43.1\",\"use_cache\":true,\"use_sliding_window\":false,"
    "\"vocab_size\":151936}";

/* Qwen/Qwen3-0.6B config.json as published. */
static const char *const qwen3_config =
    "{\"architectures\":[\"Qwen3ForCausalLM\"],\"attention_bias\":false,\"attention_dropout\":0.0,"
    "\"bos_token_id\":151643,\"eos_token_id\":151645,\"head_dim\":128,\"hidden_act\":\"silu\","
    "\"hidden_size\":1024,\"initializer_range\":0.02,\"intermediate_size\":3072,"
    "\"max_position_embeddings\":40960,\"max_window_layers\":28,\"model_type\":\"qwen3\","
    "\"num_attention_heads\":16,\"num_hidden_layers\":28,\"num_key_value_heads\":8,"
    "\"rms_norm_eps\":1e-06,\"rope_scaling\":null,\"rope_theta\":1000000,\"sliding_window\":null,"
    "\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\",\"transformers_version\":\"4.51.0\","
    "\"use_cache\":true,\"use_sliding_window\":false,\"vocab_size\":151936}";

/* mistralai/Mistral-7B-Instruct-v0.3 config.json as published. */
static const char *const mistral_config =
    "{\"architectures\":[\"MistralForCausalLM\"],\"attention_dropout\":0.0,\"bos_token_id\":1,"
    "\"eos_token_id\":2,\"hidden_act\":\"silu\",\"hidden_size\":4096,\"initializer_range\":0.02,"
    "\"intermediate_size\":14336,\"max_position_embeddings\":32768,\"model_type\":\"mistral\","
    "\"num_attention_heads\":32,\"num_hidden_layers\":32,\"num_key_value_heads\":8,"
    "\"rms_norm_eps\":1e-05,\"rope_theta\":1000000.0,\"sliding_window\":null,"
    "\"tie_word_embeddings\":false,\"torch_dtype\":\"bfloat16\",\"transformers_version\":\"4.42.0.dev0\","
    "\"use_cache\":true,\"vocab_size\":32768}";

static void test_published_configs(void **state) {
    (void)state;
    mlxe_model_config c;
    parse_ok(llama32_config, &c);
    assert_string_equal(c.model_type, "llama");
    assert_string_equal(c.architecture, "LlamaForCausalLM");
    assert_int_equal(c.vocab_size, 128256);
    assert_int_equal(c.hidden_size, 2048);
    assert_int_equal(c.intermediate_size, 8192);
    assert_int_equal(c.num_hidden_layers, 16);
    assert_int_equal(c.num_attention_heads, 32);
    assert_int_equal(c.num_key_value_heads, 8);
    assert_int_equal(c.head_dim, 64);
    assert_int_equal(c.max_position_embeddings, 131072);
    assert_true(c.rms_norm_eps == 1e-5);
    assert_true(c.rope_theta == 500000.0);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_LLAMA3);
    assert_true(c.rope_scaling.factor == 32.0);
    assert_true(c.rope_scaling.low_freq_factor == 1.0);
    assert_true(c.rope_scaling.high_freq_factor == 4.0);
    assert_int_equal(c.rope_scaling.original_max_position_embeddings, 8192);
    assert_true(c.tie_word_embeddings);
    assert_false(c.attention_bias);
    assert_false(c.attention_output_bias);
    assert_false(c.mlp_bias);
    assert_false(c.qk_norm);
    assert_int_equal(c.sliding_window, 0);
    assert_string_equal(c.hidden_act, "silu");
    assert_int_equal(c.torch_dtype, MLXE_DTYPE_BF16);
    assert_int_equal(c.bos_token_id, 128000);
    assert_int_equal(c.pad_token_id, -1);
    assert_int_equal(c.n_eos_token_ids, 3);
    assert_int_equal(c.eos_token_ids[0], 128001);
    assert_int_equal(c.eos_token_ids[1], 128008);
    assert_int_equal(c.eos_token_ids[2], 128009);

    parse_ok(qwen25_config, &c);
    assert_string_equal(c.model_type, "qwen2");
    assert_int_equal(c.head_dim, 64); /* 896 / 14 */
    assert_int_equal(c.num_key_value_heads, 2);
    assert_true(c.attention_bias);          /* Qwen2 q/k/v always have biases */
    assert_false(c.attention_output_bias);
    assert_false(c.qk_norm);
    assert_int_equal(c.sliding_window, 0); /* use_sliding_window is false */
    assert_int_equal(c.max_window_layers, 21);
    assert_true(c.rope_theta == 1e6);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_NONE);
    assert_int_equal(c.n_eos_token_ids, 1);
    assert_int_equal(c.eos_token_ids[0], 151645);
    assert_int_equal(c.bos_token_id, 151643);

    parse_ok(qwen3_config, &c);
    assert_string_equal(c.model_type, "qwen3");
    assert_int_equal(c.head_dim, 128); /* not hidden/heads = 64 */
    assert_true(c.qk_norm);
    assert_false(c.attention_bias);
    assert_int_equal(c.sliding_window, 0);
    assert_int_equal(c.max_position_embeddings, 40960);

    parse_ok(mistral_config, &c);
    assert_string_equal(c.model_type, "mistral");
    assert_int_equal(c.vocab_size, 32768);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.sliding_window, 0); /* explicit null */
    assert_false(c.attention_bias);
}

/* Absent keys take the transformers class defaults. */
static void test_defaults_per_model_type(void **state) {
    (void)state;
    mlxe_model_config c;
    parse_ok("{\"model_type\":\"llama\"}", &c);
    assert_int_equal(c.vocab_size, 32000);
    assert_int_equal(c.hidden_size, 4096);
    assert_int_equal(c.intermediate_size, 11008);
    assert_int_equal(c.num_hidden_layers, 32);
    assert_int_equal(c.num_attention_heads, 32);
    assert_int_equal(c.num_key_value_heads, 32);
    assert_int_equal(c.head_dim, 128);
    assert_int_equal(c.max_position_embeddings, 2048);
    assert_true(c.rms_norm_eps == 1e-6);
    assert_true(c.rope_theta == 10000.0);
    assert_int_equal(c.bos_token_id, 1);
    assert_int_equal(c.n_eos_token_ids, 1);
    assert_int_equal(c.eos_token_ids[0], 2);
    assert_false(c.tie_word_embeddings);
    assert_string_equal(c.hidden_act, "silu");
    assert_int_equal(c.torch_dtype, MLXE_DTYPE_UNKNOWN);
    assert_string_equal(c.architecture, "");

    parse_ok("{\"model_type\":\"mistral\"}", &c);
    assert_int_equal(c.intermediate_size, 14336);
    assert_int_equal(c.num_key_value_heads, 8);
    assert_int_equal(c.max_position_embeddings, 131072);
    assert_int_equal(c.sliding_window, 4096);
    parse_ok("{\"model_type\":\"mistral\",\"num_key_value_heads\":null,\"sliding_window\":1024}", &c);
    assert_int_equal(c.num_key_value_heads, 32);
    assert_int_equal(c.sliding_window, 1024);

    parse_ok("{\"model_type\":\"qwen2\"}", &c);
    assert_int_equal(c.vocab_size, 151936);
    assert_int_equal(c.intermediate_size, 22016);
    assert_int_equal(c.num_key_value_heads, 32);
    assert_int_equal(c.max_position_embeddings, 32768);
    assert_int_equal(c.max_window_layers, 28);
    assert_int_equal(c.bos_token_id, -1);
    assert_int_equal(c.n_eos_token_ids, 0);
    assert_true(c.attention_bias);
    parse_ok("{\"model_type\":\"qwen2\",\"use_sliding_window\":true}", &c);
    assert_int_equal(c.sliding_window, 4096);
    parse_ok("{\"model_type\":\"qwen2\",\"use_sliding_window\":true,\"sliding_window\":2048,\"max_window_layers\":10}", &c);
    assert_int_equal(c.sliding_window, 2048);
    assert_int_equal(c.max_window_layers, 10);

    /* transformers 5's layer_types must agree with the window settings. */
    parse_ok("{\"model_type\":\"qwen2\",\"num_hidden_layers\":3,\"use_sliding_window\":true,\"sliding_window\":64,"
             "\"max_window_layers\":1,\"layer_types\":[\"full_attention\",\"sliding_attention\",\"sliding_attention\"]}", &c);
    assert_int_equal(c.sliding_window, 64);
    expect_error("{\"model_type\":\"qwen3\",\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\",\"sliding_attention\"]}",
                 MLXE_ERR_UNSUPPORTED, "layer_types[1] is 'sliding_attention'", "'full_attention'");
    expect_error("{\"model_type\":\"qwen3\",\"num_hidden_layers\":2,\"layer_types\":[\"full_attention\"]}",
                 MLXE_ERR_FORMAT, "layer_types", "one entry per layer");

    parse_ok("{\"model_type\":\"qwen3\"}", &c);
    assert_int_equal(c.head_dim, 128);
    assert_true(c.qk_norm);
    assert_false(c.attention_bias);
    parse_ok("{\"model_type\":\"qwen3\",\"attention_bias\":true,\"dtype\":\"float16\"}", &c);
    assert_true(c.attention_bias);
    assert_true(c.attention_output_bias);
    assert_int_equal(c.torch_dtype, MLXE_DTYPE_F16);

    parse_ok("{\"model_type\":\"llama\",\"attention_bias\":true,\"mlp_bias\":true,\"pad_token_id\":0}", &c);
    assert_true(c.attention_bias);
    assert_true(c.attention_output_bias);
    assert_true(c.mlp_bias);
    assert_int_equal(c.pad_token_id, 0);
}

static void test_rope_variants(void **state) {
    (void)state;
    mlxe_model_config c;
    /* transformers 4: "type" (older) or "rope_type" */
    parse_ok("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\",\"factor\":2.0}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_LINEAR);
    assert_true(c.rope_scaling.factor == 2.0);
    parse_ok("{\"model_type\":\"llama\",\"max_position_embeddings\":4096,"
             "\"rope_scaling\":{\"rope_type\":\"dynamic\",\"factor\":4}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_DYNAMIC);
    assert_true(c.rope_scaling.factor == 4.0);
    assert_false(c.rope_scaling.has_original_max_position_embeddings);
    assert_int_equal(c.rope_scaling.original_max_position_embeddings, 4096);
    parse_ok("{\"model_type\":\"qwen2\",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0,"
             "\"original_max_position_embeddings\":32768}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_YARN);
    assert_true(c.rope_scaling.beta_fast == 32.0);
    assert_true(c.rope_scaling.beta_slow == 1.0);
    assert_true(c.rope_scaling.attention_factor == 0.0);
    assert_true(c.rope_scaling.truncate);
    assert_true(c.rope_scaling.has_original_max_position_embeddings);
    assert_int_equal(c.rope_scaling.original_max_position_embeddings, 32768);
    parse_ok("{\"model_type\":\"qwen3\",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":2,"
             "\"beta_fast\":16,\"beta_slow\":2,\"attention_factor\":1.1,\"truncate\":false}}", &c);
    assert_true(c.rope_scaling.beta_fast == 16.0);
    assert_true(c.rope_scaling.beta_slow == 2.0);
    assert_true(c.rope_scaling.attention_factor == 1.1);
    assert_false(c.rope_scaling.truncate);
    /* yarn without a factor: max_position_embeddings / original (transformers 5). */
    parse_ok("{\"model_type\":\"qwen3\",\"max_position_embeddings\":131072,\"rope_scaling\":{\"rope_type\":\"yarn\","
             "\"original_max_position_embeddings\":32768}}", &c);
    assert_true(c.rope_scaling.factor == 4.0);
    parse_ok("{\"model_type\":\"llama\",\"rope_scaling\":{\"rope_type\":\"default\"}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_NONE);
    /* transformers versions between 4 and 5 wrote the theta inside rope_scaling. */
    parse_ok("{\"model_type\":\"llama\",\"rope_scaling\":{\"rope_theta\":250000.0}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_NONE);
    assert_true(c.rope_theta == 250000.0);
    parse_ok("{\"model_type\":\"llama\",\"rope_scaling\":null}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_NONE);

    /* transformers 5: rope_parameters carries the theta and the type. */
    parse_ok("{\"model_type\":\"llama\",\"rope_parameters\":{\"rope_type\":\"default\",\"rope_theta\":500000.0}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_NONE);
    assert_true(c.rope_theta == 500000.0);
    parse_ok("{\"model_type\":\"llama\",\"rope_parameters\":{\"rope_type\":\"llama3\",\"rope_theta\":500000.0,"
             "\"factor\":8.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
             "\"original_max_position_embeddings\":8192}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_LLAMA3);
    assert_true(c.rope_scaling.factor == 8.0);
    assert_true(c.rope_theta == 500000.0);
    parse_ok("{\"model_type\":\"qwen3\",\"rope_parameters\":{\"full_attention\":{\"rope_type\":\"yarn\","
             "\"rope_theta\":1000000,\"factor\":4}}}", &c);
    assert_int_equal(c.rope_scaling.type, MLXE_ROPE_SCALING_YARN);
    assert_true(c.rope_theta == 1e6);

    expect_error("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"longrope\",\"factor\":2}}",
                 MLXE_ERR_UNSUPPORTED, "'longrope'", "linear, dynamic, llama3, yarn");
    expect_error("{\"model_type\":\"llama\",\"rope_scaling\":{\"factor\":2}}", MLXE_ERR_FORMAT,
                 "rope_scaling", "'rope_type'");
    expect_error("{\"model_type\":\"llama\",\"rope_scaling\":{\"type\":\"linear\"}}", MLXE_ERR_FORMAT,
                 "rope_scaling", "'factor'");
    expect_error("{\"model_type\":\"llama\",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,"
                 "\"original_max_position_embeddings\":8192,\"low_freq_factor\":1}}",
                 MLXE_ERR_FORMAT, "high_freq_factor", NULL);
    expect_error("{\"model_type\":\"llama\",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,"
                 "\"original_max_position_embeddings\":8192,\"low_freq_factor\":4,\"high_freq_factor\":4}}",
                 MLXE_ERR_FORMAT, "low_freq_factor < high_freq_factor", NULL);
    expect_error("{\"model_type\":\"llama\",\"rope_scaling\":[1]}", MLXE_ERR_FORMAT, "rope_scaling", NULL);
    expect_error("{\"model_type\":\"llama\",\"rope_theta\":0}", MLXE_ERR_FORMAT, "rope_theta", NULL);
    expect_error("{\"model_type\":\"llama\",\"rope_theta\":\"big\"}", MLXE_ERR_FORMAT, "'rope_theta'", NULL);
}

static void test_token_ids(void **state) {
    (void)state;
    mlxe_model_config c;
    parse_ok("{\"model_type\":\"llama\",\"eos_token_id\":7,\"bos_token_id\":[5]}", &c);
    assert_int_equal(c.n_eos_token_ids, 1);
    assert_int_equal(c.eos_token_ids[0], 7);
    assert_int_equal(c.bos_token_id, 5);
    parse_ok("{\"model_type\":\"llama\",\"eos_token_id\":[7,8],\"bos_token_id\":null}", &c);
    assert_int_equal(c.n_eos_token_ids, 2);
    assert_int_equal(c.eos_token_ids[1], 8);
    assert_int_equal(c.bos_token_id, -1);
    parse_ok("{\"model_type\":\"llama\",\"eos_token_id\":null}", &c);
    assert_int_equal(c.n_eos_token_ids, 0);
    expect_error("{\"model_type\":\"llama\",\"eos_token_id\":\"</s>\"}", MLXE_ERR_FORMAT, "'eos_token_id'", NULL);
    expect_error("{\"model_type\":\"llama\",\"eos_token_id\":[1,-2]}", MLXE_ERR_FORMAT, "'eos_token_id'", NULL);
    expect_error("{\"model_type\":\"llama\",\"eos_token_id\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
                 MLXE_ERR_UNSUPPORTED, "'eos_token_id'", "17");
}

static void test_invalid_configs(void **state) {
    (void)state;
    expect_error("{\"model_type\":\"llama\",\"num_attention_heads\":0}", MLXE_ERR_FORMAT,
                 "num_attention_heads is 0; it must be a positive number", NULL);
    expect_error("{\"model_type\":\"llama\",\"num_attention_heads\":32,\"num_key_value_heads\":6}",
                 MLXE_ERR_FORMAT, "num_attention_heads (32) is not a multiple of num_key_value_heads (6)", NULL);
    expect_error("{\"model_type\":\"llama\",\"num_key_value_heads\":0}", MLXE_ERR_FORMAT,
                 "num_key_value_heads is 0", NULL);
    expect_error("{\"model_type\":\"llama\",\"vocab_size\":0}", MLXE_ERR_FORMAT, "vocab_size is 0", NULL);
    expect_error("{\"model_type\":\"llama\",\"num_hidden_layers\":-3}", MLXE_ERR_FORMAT, "num_hidden_layers is -3", NULL);
    expect_error("{\"model_type\":\"llama\",\"hidden_size\":0}", MLXE_ERR_FORMAT, "hidden_size is 0", NULL);
    expect_error("{\"model_type\":\"llama\",\"intermediate_size\":0}", MLXE_ERR_FORMAT, "intermediate_size is 0", NULL);
    expect_error("{\"model_type\":\"llama\",\"hidden_size\":4096,\"num_attention_heads\":3}", MLXE_ERR_FORMAT,
                 "hidden_size (4096) is not a multiple of num_attention_heads (3)", NULL);
    expect_error("{\"model_type\":\"llama\",\"head_dim\":63}", MLXE_ERR_FORMAT, "head_dim is 63", "even");
    expect_error("{\"model_type\":\"llama\",\"head_dim\":0}", MLXE_ERR_FORMAT, "head_dim is 0", NULL);
    expect_error("{\"model_type\":\"llama\",\"rms_norm_eps\":0}", MLXE_ERR_FORMAT, "rms_norm_eps", "positive");
    expect_error("{\"model_type\":\"llama\",\"hidden_size\":\"4096\"}", MLXE_ERR_FORMAT, "'hidden_size'", "integer");
    expect_error("{\"model_type\":\"llama\",\"hidden_size\":4096.5}", MLXE_ERR_FORMAT, "'hidden_size'", NULL);
    expect_error("{\"model_type\":\"llama\",\"vocab_size\":99999999999}", MLXE_ERR_FORMAT, "vocab_size", "larger");
    expect_error("{\"model_type\":\"llama\",\"tie_word_embeddings\":1}", MLXE_ERR_FORMAT, "'tie_word_embeddings'", NULL);
    expect_error("{\"model_type\":\"mistral\",\"sliding_window\":-1}", MLXE_ERR_FORMAT, "sliding_window is -1", NULL);
    expect_error("{\"model_type\":\"qwen2\",\"max_window_layers\":-1}", MLXE_ERR_FORMAT, "max_window_layers", NULL);
    expect_error("{\"model_type\":\"llama\",\"hidden_act\":\"a_very_long_activation_name\"}", MLXE_ERR_UNSUPPORTED,
                 "hidden_act", NULL);
    expect_error("{\"model_type\":\"gemma2\"}", MLXE_ERR_UNSUPPORTED, "'gemma2'",
                 "supported: llama, mistral, qwen2, qwen3");
    expect_error("{\"hidden_size\":4096}", MLXE_ERR_FORMAT, "no 'model_type'", "llama, mistral, qwen2, qwen3");
    expect_error("{\"model_type\":7}", MLXE_ERR_FORMAT, "'model_type'", NULL);
    expect_error("[1, 2]", MLXE_ERR_FORMAT, "JSON object", NULL);
    /* The supported list is NULL-terminated and matches the message. */
    int n = 0;
    while (mlxe_supported_model_types[n]) n++;
    assert_int_equal(n, 4);
}

static void test_generation_config(void **state) {
    (void)state;
    mlxe_generation_config g;
    mlxe_generation_config_init(&g);
    assert_false(g.present);
    assert_true(g.temperature == 1.0 && g.top_p == 1.0 && g.repetition_penalty == 1.0);
    assert_int_equal(g.bos_token_id, -1);
    /* Qwen/Qwen2.5-0.5B-Instruct generation_config.json as published. */
    cJSON *root = cJSON_Parse("{\"bos_token_id\":151643,\"pad_token_id\":151643,\"do_sample\":true,"
                              "\"eos_token_id\":[151645,151643],\"repetition_penalty\":1.1,"
                              "\"temperature\":0.7,\"top_p\":0.8,\"top_k\":20,"
                              "\"transformers_version\":\"4.37.0\"}");
    mlxe_error err;
    assert_int_equal(mlxe_generation_config_parse(root, "generation_config.json", &g, &err), MLXE_OK);
    cJSON_Delete(root);
    assert_true(g.present);
    assert_true(g.do_sample);
    assert_true(g.temperature == 0.7);
    assert_true(g.top_p == 0.8);
    assert_int_equal(g.top_k, 20);
    assert_true(g.repetition_penalty == 1.1);
    assert_true(g.min_p == 0.0);
    assert_int_equal(g.max_new_tokens, 0);
    assert_int_equal(g.bos_token_id, 151643);
    assert_int_equal(g.n_eos_token_ids, 2);
    assert_int_equal(g.eos_token_ids[0], 151645);
    assert_int_equal(g.eos_token_ids[1], 151643);

    static const char *const bad[][2] = {
        {"{\"top_p\":2}", "top_p"}, {"{\"temperature\":-1}", "temperature"},
        {"{\"top_k\":-5}", "top_k"}, {"{\"min_p\":1.5}", "min_p"},
        {"{\"repetition_penalty\":0}", "repetition_penalty"}, {"{\"do_sample\":\"yes\"}", "'do_sample'"},
        {"{\"max_new_tokens\":-1}", "max_new_tokens"}, {"[]", "JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        root = cJSON_Parse(bad[i][0]);
        assert_int_equal(mlxe_generation_config_parse(root, "generation_config.json", &g, &err), MLXE_ERR_FORMAT);
        assert_message_contains(err.message, "generation_config.json");
        assert_message_contains(err.message, bad[i][1]);
        cJSON_Delete(root);
    }
}

static void test_load_with_generation_override(void **state) {
    (void)state;
    mlxe_model_config c;
    mlxe_generation_config g;
    mlxe_error err;
    write_text("config.json", llama32_config);
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, &g, &err), MLXE_OK);
    assert_false(g.present);
    assert_int_equal(c.n_eos_token_ids, 3);

    /* generation_config.json's eos list replaces config.json's. */
    write_text("generation_config.json", "{\"eos_token_id\": [128009], \"temperature\": 0.6, \"top_p\": 0.9}");
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, &g, &err), MLXE_OK);
    assert_true(g.present);
    assert_true(g.temperature == 0.6);
    assert_int_equal(c.n_eos_token_ids, 1);
    assert_int_equal(c.eos_token_ids[0], 128009);
    /* ... also when the caller does not want the generation config. */
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, NULL, &err), MLXE_OK);
    assert_int_equal(c.n_eos_token_ids, 1);
    /* An eos int works as well; no eos key keeps config.json's list. */
    write_text("generation_config.json", "{\"eos_token_id\": 128001}");
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, &g, &err), MLXE_OK);
    assert_int_equal(c.n_eos_token_ids, 1);
    assert_int_equal(c.eos_token_ids[0], 128001);
    write_text("generation_config.json", "{\"do_sample\": true}");
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, &g, &err), MLXE_OK);
    assert_int_equal(c.n_eos_token_ids, 3);

    /* Errors name the file. */
    write_text("generation_config.json", "{\"top_p\": ");
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, &g, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "generation_config.json");
    write_text("config.json", "{\"model_type\": \"llama\", \"num_attention_heads\": 0}");
    assert_int_equal(mlxe_model_config_load(temp_dir, &c, &g, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "config.json: num_attention_heads is 0");
    assert_message_contains(err.message, temp_dir);
    char *missing = join_path(temp_dir, "absent");
    assert_int_equal(mlxe_model_config_load(missing, &c, &g, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "config.json");
    free(missing);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_configs),
        cmocka_unit_test(test_defaults_per_model_type),
        cmocka_unit_test(test_rope_variants),
        cmocka_unit_test(test_token_ids),
        cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_generation_config),
        cmocka_unit_test_setup_teardown(test_load_with_generation_override, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
