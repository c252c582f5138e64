/* tests/unit/test_tokenizer_load.c — loading tokenizer.json: valid files,
 * and every kind of bad input failing with a clear error and no leak
 * (truncated at every length, corrupt, unsupported models and components,
 * merges naming unknown tokens, bad tokenizer_config.json, missing files). */
#include "test_util.h"
#include "tokenizer_fixtures.h"

#include <unistd.h>

#include "mlxengine/tokenizer.h"

static mlxe_status load_text(const char *json, const char *config, mlxe_tokenizer **out, mlxe_error *err) {
    return mlxe_tokenizer_load_memory(json, strlen(json), config, config ? strlen(config) : 0, "test/tokenizer.json",
                                      out, err);
}

static void test_valid_fixtures_load(void **state) {
    (void)state;
    char *json = fixture_byte_level_json();
    mlxe_tokenizer *tk = NULL;
    mlxe_error err;
    assert_int_equal(load_text(json, NULL, &tk, &err), MLXE_OK);
    mlxe_tokenizer_info info;
    mlxe_tokenizer_get_info(tk, &info);
    assert_int_equal(info.vocab_size, 302);
    assert_true(info.byte_level);
    assert_false(info.byte_fallback);
    assert_string_equal(info.model_type, "BPE");
    assert_string_equal(info.special_tokens_rule, "none");
    /* token_to_id and id_to_token agree for every id */
    for (mlxe_token_id id = 0; id < 302; id++) {
        const char *t = mlxe_tokenizer_id_to_token(tk, id);
        if (!t) continue;
        assert_int_equal(mlxe_tokenizer_token_to_id(tk, t), id);
    }
    assert_string_equal(mlxe_tokenizer_id_to_token(tk, 299), "<unused_299>");
    assert_null(mlxe_tokenizer_id_to_token(tk, 302));
    assert_null(mlxe_tokenizer_id_to_token(tk, -1));
    assert_int_equal(mlxe_tokenizer_token_to_id(tk, "not a token"), -1);
    assert_true(mlxe_tokenizer_is_special(tk, 300));
    assert_false(mlxe_tokenizer_is_special(tk, 301));
    assert_false(mlxe_tokenizer_is_special(tk, 5000));
    mlxe_tokenizer_free(tk);
    free(json);

    json = fixture_sentencepiece_json();
    assert_int_equal(load_text(json, "{\"add_bos_token\": true, \"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\", "
                                     "\"tokenizer_class\": \"LlamaTokenizerFast\"}",
                               &tk, &err), MLXE_OK);
    mlxe_tokenizer_get_info(tk, &info);
    assert_true(info.byte_fallback);
    assert_int_equal(info.bos_id, 1);
    assert_int_equal(info.eos_id, 2);
    assert_true(info.adds_bos);
    assert_false(info.adds_eos);
    assert_int_equal(info.n_prefix_special, 1);
    assert_int_equal(info.n_suffix_special, 0);
    assert_string_equal(info.special_tokens_rule, "tokenizer_config.json add_bos_token/add_eos_token");
    mlxe_tokenizer_free(tk);
    /* without the config, or for a class that keeps tokenizer.json's
     * post-processor, the template of tokenizer.json decides */
    assert_int_equal(load_text(json, NULL, &tk, &err), MLXE_OK);
    mlxe_tokenizer_get_info(tk, &info);
    assert_string_equal(info.special_tokens_rule, "tokenizer.json post_processor");
    assert_int_equal(info.n_prefix_special, 1);
    mlxe_tokenizer_free(tk);
    assert_int_equal(load_text(json, "{\"add_bos_token\": false, \"add_eos_token\": true, \"eos_token\": \"</s>\", "
                                     "\"tokenizer_class\": \"Qwen2Tokenizer\"}", &tk, &err), MLXE_OK);
    mlxe_tokenizer_get_info(tk, &info);
    assert_string_equal(info.special_tokens_rule, "tokenizer.json post_processor");
    assert_true(info.adds_bos == (info.bos_id >= 0)); /* the template's <s> */
    assert_false(info.adds_eos);
    mlxe_tokenizer_free(tk);
    free(json);
    mlxe_tokenizer_free(NULL);
}

static void test_truncated_at_every_length(void **state) {
    (void)state;
    char *json = fixture_sentencepiece_json();
    size_t size = strlen(json);
    /* a stride keeps the test fast; every tail is different JSON damage */
    for (size_t n = 0; n < size; n += (n < 400 || n > size - 400) ? 1 : 7) {
        mlxe_tokenizer *tk = (mlxe_tokenizer *)1;
        mlxe_error err;
        mlxe_status st = mlxe_tokenizer_load_memory(json, n, NULL, 0, "cut/tokenizer.json", &tk, &err);
        if (st == MLXE_OK) fail_msg("a tokenizer.json cut at %zu of %zu bytes loaded", n, size);
        assert_null(tk);
        assert_message_contains(err.message, "cut/tokenizer.json");
    }
    free(json);
}

static void test_corrupt_bytes(void **state) {
    (void)state;
    char *json = fixture_byte_level_json();
    size_t size = strlen(json);
    /* flip bytes across the file: either a clean error or a tokenizer */
    for (size_t i = 0; i < size; i += 13) {
        char saved = json[i];
        json[i] = (char)(json[i] ^ 0x5A);
        mlxe_tokenizer *tk = NULL;
        mlxe_error err;
        if (mlxe_tokenizer_load_memory(json, size, NULL, 0, "flip.json", &tk, &err) == MLXE_OK) {
            mlxe_token_list ids;
            mlxe_token_list_init(&ids);
            assert_int_equal(mlxe_tokenizer_encode(tk, "hello world", 11, NULL, &ids, &err), MLXE_OK);
            mlxe_token_list_free(&ids);
            mlxe_tokenizer_free(tk);
        } else {
            assert_true(strlen(err.message) > 0);
        }
        json[i] = saved;
    }
    free(json);
}

static void expect_error(const char *json, const char *config, mlxe_status status, const char *needle) {
    mlxe_tokenizer *tk = NULL;
    mlxe_error err;
    mlxe_status st = load_text(json, config, &tk, &err);
    if (st != status) fail_msg("expected %s, got %s (%s)", mlxe_status_name(status), mlxe_status_name(st), err.message);
    assert_null(tk);
    assert_message_contains(err.message, needle);
}

static void test_unsupported_and_inconsistent(void **state) {
    (void)state;
    expect_error("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", NULL, MLXE_ERR_UNSUPPORTED, "WordPiece");
    expect_error("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", -1.0]]}}", NULL, MLXE_ERR_UNSUPPORTED, "Unigram");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", NULL, MLXE_ERR_FORMAT, "'b'");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", NULL,
                 MLXE_ERR_FORMAT, "'ab'");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"ab\"]}}", NULL, MLXE_ERR_FORMAT, "merge #0");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -4}, \"merges\": []}}", NULL, MLXE_ERR_FORMAT, "id -4");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"BertPreTokenizer\"}}",
                 NULL, MLXE_ERR_UNSUPPORTED, "BertPreTokenizer");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"Precompiled\"}}",
                 NULL, MLXE_ERR_UNSUPPORTED, "Precompiled");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"decoder\": {\"type\": \"CTC\"}}",
                 NULL, MLXE_ERR_UNSUPPORTED, "CTC");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", "
                 "\"pattern\": {\"Regex\": \"(unclosed\"}, \"behavior\": \"Isolated\"}}",
                 NULL, MLXE_ERR_UNSUPPORTED, "(unclosed");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"post_processor\": {\"type\": \"TemplateProcessing\", "
                 "\"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}}], \"special_tokens\": {}}}",
                 NULL, MLXE_ERR_FORMAT, "<s>");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"content\": \"x\"}]}",
                 NULL, MLXE_ERR_FORMAT, "added_tokens[0]");
    expect_error("{\"version\": \"1.0\"}", NULL, MLXE_ERR_FORMAT, "no \"model\"");
    /* bytes that are not UTF-8 would reach the regex engine as text (found by the fuzzer) */
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"Replace\", "
                 "\"pattern\": {\"String\": \" \"}, \"content\": \"\xFF\xFE\"}}", NULL, MLXE_ERR_FORMAT, "normalizer");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\xC3\": 0}, \"merges\": []}}", NULL, MLXE_ERR_FORMAT, "UTF-8");
    expect_error("[1, 2]", NULL, MLXE_ERR_FORMAT, "line 1");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}} trailing", NULL, MLXE_ERR_FORMAT, "extra text");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "{\"add_bos_token\": \"yes\"}",
                 MLXE_ERR_FORMAT, "add_bos_token");
    expect_error("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "not json", MLXE_ERR_FORMAT,
                 "tokenizer_config.json");
}

static void test_files_and_folders(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    mlxe_tokenizer *tk = (mlxe_tokenizer *)1;
    mlxe_error err;
    assert_int_equal(mlxe_tokenizer_load(dir, &tk, &err), MLXE_ERR_NOT_FOUND);
    assert_null(tk);
    assert_message_contains(err.message, "tokenizer.json");
    char path[128], config[128], map[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    snprintf(config, sizeof config, "%s/tokenizer_config.json", dir);
    snprintf(map, sizeof map, "%s/special_tokens_map.json", dir);
    char *json = fixture_sentencepiece_json();
    test_write_file(path, json, strlen(json));
    /* the config sets add_bos_token; the special tokens come from the map */
    const char *cfg = "{\"add_bos_token\": true, \"add_eos_token\": true, \"tokenizer_class\": \"GemmaTokenizer\"}";
    const char *special = "{\"bos_token\": \"<s>\", \"eos_token\": {\"content\": \"</s>\"}}";
    test_write_file(config, cfg, strlen(cfg));
    test_write_file(map, special, strlen(special));
    assert_int_equal(mlxe_tokenizer_load(dir, &tk, &err), MLXE_OK);
    mlxe_tokenizer_info info;
    mlxe_tokenizer_get_info(tk, &info);
    assert_true(info.adds_bos);
    assert_true(info.adds_eos);
    mlxe_tokenizer_free(tk);
    assert_int_equal(mlxe_tokenizer_load_files(path, NULL, &tk, &err), MLXE_OK);
    mlxe_tokenizer_free(tk);
    /* truncated file on disk */
    test_write_file(path, json, strlen(json) / 2);
    assert_int_not_equal(mlxe_tokenizer_load(dir, &tk, &err), MLXE_OK);
    assert_message_contains(err.message, path);
    /* a broken special_tokens_map.json is named */
    test_write_file(path, json, strlen(json));
    test_write_file(map, "{", 1);
    assert_int_equal(mlxe_tokenizer_load(dir, &tk, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "special_tokens_map.json");
    assert_int_not_equal(mlxe_tokenizer_load_files("/nonexistent/tokenizer.json", NULL, &tk, &err), MLXE_OK);
    assert_message_contains(err.message, "/nonexistent/tokenizer.json");
    assert_int_equal(mlxe_tokenizer_load(NULL, &tk, &err), MLXE_ERR_INVALID_ARGUMENT);
    free(json);
    unlink(path);
    unlink(config);
    unlink(map);
    rmdir(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_fixtures_load),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_corrupt_bytes),
        cmocka_unit_test(test_unsupported_and_inconsistent),
        cmocka_unit_test(test_files_and_folders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
