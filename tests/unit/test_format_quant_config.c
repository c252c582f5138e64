/* Tests of config.json's MLX quantization settings (format/quant_config.h):
 * defaults, per-module overrides and `false` entries, the two keys mlx-lm
 * writes, refusal of other modes and Hugging Face quantizers by name, bad
 * values, the JSON writer and loading from a folder. */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <unistd.h>

#include "format/quant_config.h"

static mlxe_status parse_text(const char *text, mlxe_quant_config *config, mlxe_error *err) {
    cJSON *root = cJSON_Parse(text);
    if (!root) fail_msg("test JSON does not parse: %s", text);
    mlxe_status st = mlxe_quant_config_parse(root, "test/config.json", config, err);
    cJSON_Delete(root);
    return st;
}

static void test_absent(void **state) {
    (void)state;
    mlxe_quant_config config;
    mlxe_error err;
    assert_int_equal(parse_text("{\"model_type\": \"llama\"}", &config, &err), MLXE_OK);
    assert_false(config.present);
    mlxe_quant_params p = mlxe_quant_config_lookup(&config, "model.layers.0.mlp.up_proj");
    assert_false(p.quantized);
    assert_int_equal(p.bits, 0);
    p = mlxe_quant_config_lookup(NULL, "lm_head");
    assert_false(p.quantized);
    /* null values count as absent, as json.h's getters treat them */
    assert_int_equal(parse_text("{\"quantization\": null, \"quantization_config\": null}", &config, &err), MLXE_OK);
    assert_false(config.present);
    mlxe_quant_config_free(&config);
    mlxe_quant_config_free(NULL);
}

static const char *const mlx_lm_config =
    "{\"quantization\": {\"group_size\": 64, \"bits\": 4, \"mode\": \"affine\","
    "  \"model.layers.0.mlp.down_proj\": {\"group_size\": 32, \"bits\": 8},"
    "  \"model.layers.1.self_attn.v_proj\": {\"group_size\": 128, \"bits\": 6, \"mode\": \"affine\"},"
    "  \"lm_head\": false, \"model.embed_tokens\": true},"
    " \"quantization_config\": {\"group_size\": 64, \"bits\": 4, \"mode\": \"affine\","
    "  \"model.layers.0.mlp.down_proj\": {\"group_size\": 32, \"bits\": 8}, \"lm_head\": false}}";

static void test_overrides(void **state) {
    (void)state;
    mlxe_quant_config config;
    mlxe_error err;
    assert_int_equal(parse_text(mlx_lm_config, &config, &err), MLXE_OK);
    assert_true(config.present);
    assert_int_equal(config.bits, 4);
    assert_int_equal(config.group_size, 64);
    assert_int_equal(config.n_modules, 4);

    mlxe_quant_params p = mlxe_quant_config_lookup(&config, "model.layers.0.mlp.up_proj");
    assert_true(p.quantized);
    assert_false(p.explicit_entry);
    assert_int_equal(p.bits, 4);
    assert_int_equal(p.group_size, 64);
    p = mlxe_quant_config_lookup(&config, "model.layers.0.mlp.down_proj");
    assert_true(p.quantized && p.explicit_entry);
    assert_int_equal(p.bits, 8);
    assert_int_equal(p.group_size, 32);
    p = mlxe_quant_config_lookup(&config, "model.layers.1.self_attn.v_proj");
    assert_int_equal(p.bits, 6);
    assert_int_equal(p.group_size, 128);
    p = mlxe_quant_config_lookup(&config, "lm_head");
    assert_false(p.quantized);
    assert_true(p.explicit_entry);
    p = mlxe_quant_config_lookup(&config, "model.embed_tokens");
    assert_true(p.quantized && p.explicit_entry);
    assert_int_equal(p.bits, 4);
    /* a prefix of an entry is not that entry */
    p = mlxe_quant_config_lookup(&config, "model.layers.0.mlp");
    assert_false(p.explicit_entry);
    mlxe_quant_config_free(&config);
    assert_int_equal(config.n_modules, 0);
}

static void test_defaults_and_single_key(void **state) {
    (void)state;
    mlxe_quant_config config;
    mlxe_error err;
    /* MLX's affine defaults for absent fields */
    assert_int_equal(parse_text("{\"quantization\": {\"model.norm\": {\"bits\": 8}}}", &config, &err), MLXE_OK);
    assert_int_equal(config.bits, MLXE_QUANT_DEFAULT_BITS);
    assert_int_equal(config.group_size, MLXE_QUANT_DEFAULT_GROUP_SIZE);
    mlxe_quant_params p = mlxe_quant_config_lookup(&config, "model.norm");
    assert_int_equal(p.bits, 8);
    assert_int_equal(p.group_size, 64);
    mlxe_quant_config_free(&config);
    /* only quantization_config, MLX style (no quant_method) */
    assert_int_equal(parse_text("{\"quantization_config\": {\"group_size\": 32, \"bits\": 3, \"lm_head\": false}}",
                                &config, &err),
                     MLXE_OK);
    assert_true(config.present);
    assert_int_equal(config.bits, 3);
    assert_int_equal(config.group_size, 32);
    assert_false(mlxe_quant_config_lookup(&config, "lm_head").quantized);
    mlxe_quant_config_free(&config);
}

static void expect_error(const char *text, mlxe_status status, const char *needle) {
    mlxe_quant_config config;
    mlxe_error err;
    mlxe_error_clear(&err);
    assert_int_equal(parse_text(text, &config, &err), status);
    assert_int_equal(err.status, status);
    assert_message_contains(err.message, needle);
    assert_message_contains(err.message, "test/config.json");
    assert_false(config.present);
    assert_int_equal(config.n_modules, 0);
    assert_null(config.modules);
}

static void test_unsupported_modes(void **state) {
    (void)state;
    expect_error("{\"quantization\": {\"group_size\": 32, \"bits\": 4, \"mode\": \"mxfp4\"}}",
                 MLXE_ERR_UNSUPPORTED, "'mxfp4'");
    expect_error("{\"quantization\": {\"group_size\": 16, \"bits\": 4, \"mode\": \"nvfp4\"}}",
                 MLXE_ERR_UNSUPPORTED, "'nvfp4'");
    expect_error("{\"quantization\": {\"group_size\": 32, \"bits\": 8, \"mode\": \"mxfp8\"}}",
                 MLXE_ERR_UNSUPPORTED, "'mxfp8'");
    expect_error("{\"quantization\": {\"mode\": \"ternary\"}}", MLXE_ERR_UNSUPPORTED, "'ternary'");
    /* in a per-module entry, after valid entries were read (no leak) */
    expect_error("{\"quantization\": {\"bits\": 4, \"a\": {\"bits\": 8}, \"b\": {\"mode\": \"mxfp4\"}}}",
                 MLXE_ERR_UNSUPPORTED, "'mxfp4'");
    expect_error("{\"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}", MLXE_ERR_UNSUPPORTED,
                 "quant_method 'gptq'");
    expect_error("{\"quantization_config\": {\"quant_method\": \"mxfp4\"}}", MLXE_ERR_UNSUPPORTED, "'mxfp4'");
}

static void test_bad_values(void **state) {
    (void)state;
    expect_error("{\"quantization\": {\"bits\": 7}}", MLXE_ERR_UNSUPPORTED, "'bits' is 7");
    expect_error("{\"quantization\": {\"bits\": 1}}", MLXE_ERR_UNSUPPORTED, "'bits' is 1");
    expect_error("{\"quantization\": {\"group_size\": 16}}", MLXE_ERR_UNSUPPORTED, "'group_size' is 16");
    expect_error("{\"quantization\": {\"group_size\": -64}}", MLXE_ERR_UNSUPPORTED, "'group_size' is -64");
    expect_error("{\"quantization\": {\"bits\": \"4\"}}", MLXE_ERR_FORMAT, "bits");
    expect_error("{\"quantization\": {\"bits\": 4, \"lm_head\": {\"bits\": 9}}}", MLXE_ERR_UNSUPPORTED,
                 "'lm_head'");
    expect_error("{\"quantization\": [4, 64]}", MLXE_ERR_FORMAT, "'quantization' must be an object");
    expect_error("{\"quantization_config\": 4}", MLXE_ERR_FORMAT, "'quantization_config' must be an object");
    expect_error("{\"quantization\": {\"bits\": 4}, \"quantization_config\": {\"bits\": 8}}", MLXE_ERR_FORMAT,
                 "disagree");

    mlxe_error err;
    mlxe_quant_config config;
    cJSON *array = cJSON_CreateArray();
    assert_int_equal(mlxe_quant_config_parse(array, NULL, &config, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "config.json");
    cJSON_Delete(array);
    assert_int_equal(mlxe_quant_config_parse(NULL, "x", NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
}

static void test_to_json_round_trip(void **state) {
    (void)state;
    mlxe_quant_config config, again;
    mlxe_error err;
    assert_int_equal(parse_text(mlx_lm_config, &config, &err), MLXE_OK);
    cJSON *obj = mlxe_quant_config_to_json(&config);
    assert_non_null(obj);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(obj, "mode")->valuestring, "affine");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(obj, "lm_head")));
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "quantization", cJSON_Duplicate(obj, 1));
    cJSON_AddItemToObject(root, "quantization_config", obj);
    assert_int_equal(mlxe_quant_config_parse(root, "round trip", &again, &err), MLXE_OK);
    cJSON_Delete(root);
    assert_int_equal(again.n_modules, config.n_modules);
    for (size_t i = 0; i < config.n_modules; i++) {
        mlxe_quant_params a = mlxe_quant_config_lookup(&config, config.modules[i].path);
        mlxe_quant_params b = mlxe_quant_config_lookup(&again, config.modules[i].path);
        assert_int_equal(a.quantized, b.quantized);
        assert_int_equal(a.bits, b.bits);
        assert_int_equal(a.group_size, b.group_size);
    }
    mlxe_quant_config_free(&config);
    mlxe_quant_config_free(&again);
    assert_null(mlxe_quant_config_to_json(NULL));
}

static void test_load(void **state) {
    (void)state;
    char dir[64], path[128];
    test_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_write_file(path, mlx_lm_config, strlen(mlx_lm_config));
    mlxe_quant_config config;
    mlxe_error err;
    assert_int_equal(mlxe_quant_config_load(dir, &config, &err), MLXE_OK);
    assert_int_equal(mlxe_quant_config_lookup(&config, "model.layers.0.mlp.down_proj").bits, 8);
    mlxe_quant_config_free(&config);

    test_write_file(path, "{\"quantization\": ", 17);
    assert_int_not_equal(mlxe_quant_config_load(dir, &config, &err), MLXE_OK);
    assert_message_contains(err.message, "config.json");
    remove(path);
    assert_int_not_equal(mlxe_quant_config_load(dir, &config, &err), MLXE_OK);
    assert_message_contains(err.message, "config.json");
    assert_false(config.present);
    rmdir(dir);
    assert_int_equal(mlxe_quant_config_load(NULL, &config, &err), MLXE_ERR_INVALID_ARGUMENT);
}

static void test_supported_values(void **state) {
    (void)state;
    const int bits_ok[] = {2, 3, 4, 5, 6, 8};
    for (size_t i = 0; i < 6; i++) assert_true(mlxe_quant_bits_supported(bits_ok[i]));
    assert_false(mlxe_quant_bits_supported(1));
    assert_false(mlxe_quant_bits_supported(7));
    assert_false(mlxe_quant_bits_supported(16));
    assert_true(mlxe_quant_group_size_supported(32));
    assert_true(mlxe_quant_group_size_supported(64));
    assert_true(mlxe_quant_group_size_supported(128));
    assert_false(mlxe_quant_group_size_supported(16));
    assert_false(mlxe_quant_group_size_supported(256));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_overrides),
        cmocka_unit_test(test_defaults_and_single_key),
        cmocka_unit_test(test_unsupported_modes),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_to_json_round_trip),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_supported_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
