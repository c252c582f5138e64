/* Tests of tokenizer_config.json parsing and the template files loaded
 * next to it. */
#include "test_util.h"

#include <sys/stat.h>

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

static mlxe_status parse(const char *json, mlxe_tokenizer_config *config, mlxe_error *err) {
    cJSON *root = cJSON_Parse(json);
    if (!root) fail_msg("test JSON does not parse: %s", json);
    mlxe_status status = mlxe_tokenizer_config_parse(root, "tokenizer_config.json", config, err);
    cJSON_Delete(root);
    return status;
}

static void write_text(const char *name, const char *text) {
    char *path = join_path(temp_dir, name);
    test_write_file(path, text, strlen(text));
    free(path);
}

static void test_strings_and_flags(void **state) {
    (void)state;
    mlxe_tokenizer_config t;
    mlxe_error err;
    /* Qwen2.5-style: plain strings, a null bos, a huge-but-real max length. */
    assert_int_equal(parse("{\"bos_token\":null,\"eos_token\":\"<|im_end|>\",\"pad_token\":\"<|endoftext|>\","
                           "\"unk_token\":null,\"add_bos_token\":false,\"clean_up_tokenization_spaces\":false,"
                           "\"model_max_length\":131072,\"tokenizer_class\":\"Qwen2Tokenizer\","
                           "\"chat_template\":\"{{ messages }}\"}",
                           &t, &err),
                     MLXE_OK);
    assert_true(t.present);
    assert_null(t.bos_token);
    assert_string_equal(t.eos_token, "<|im_end|>");
    assert_string_equal(t.pad_token, "<|endoftext|>");
    assert_null(t.unk_token);
    assert_int_equal(t.add_bos_token, 0);
    assert_int_equal(t.add_eos_token, -1);
    assert_false(t.clean_up_tokenization_spaces);
    assert_int_equal(t.model_max_length, 131072);
    assert_string_equal(t.tokenizer_class, "Qwen2Tokenizer");
    assert_int_equal(t.n_chat_templates, 1);
    assert_string_equal(t.chat_templates[0].name, "default");
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, NULL), "{{ messages }}");
    assert_null(mlxe_tokenizer_config_chat_template(&t, "tool_use"));
    mlxe_tokenizer_config_free(&t);
    assert_false(t.present);
    assert_null(t.eos_token);
    assert_int_equal(t.add_bos_token, -1);

    /* Llama-2-style AddedToken dicts, add_bos true, HF's 1e30 "no limit". */
    assert_int_equal(parse("{\"bos_token\":{\"__type\":\"AddedToken\",\"content\":\"<s>\",\"lstrip\":false},"
                           "\"eos_token\":{\"content\":\"</s>\"},\"unk_token\":{\"content\":\"<unk>\"},"
                           "\"add_bos_token\":true,\"add_eos_token\":false,\"clean_up_tokenization_spaces\":true,"
                           "\"model_max_length\":1000000000000000019884624838656}",
                           &t, &err),
                     MLXE_OK);
    assert_string_equal(t.bos_token, "<s>");
    assert_string_equal(t.eos_token, "</s>");
    assert_string_equal(t.unk_token, "<unk>");
    assert_null(t.pad_token);
    assert_int_equal(t.add_bos_token, 1);
    assert_int_equal(t.add_eos_token, 0);
    assert_true(t.clean_up_tokenization_spaces);
    assert_int_equal(t.model_max_length, 0);
    assert_null(t.tokenizer_class);
    assert_int_equal(t.n_chat_templates, 0);
    mlxe_tokenizer_config_free(&t);
    mlxe_tokenizer_config_free(NULL);
}

static void test_template_list(void **state) {
    (void)state;
    mlxe_tokenizer_config t;
    mlxe_error err;
    assert_int_equal(parse("{\"chat_template\":[{\"name\":\"default\",\"template\":\"A\"},"
                           "{\"name\":\"tool_use\",\"template\":\"B\"},{\"name\":\"rag\",\"template\":\"C\"}]}",
                           &t, &err),
                     MLXE_OK);
    assert_int_equal(t.n_chat_templates, 3);
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, "default"), "A");
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, "tool_use"), "B");
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, "rag"), "C");
    mlxe_tokenizer_config_free(&t);
    assert_int_equal(parse("{\"chat_template\":null}", &t, &err), MLXE_OK);
    assert_int_equal(t.n_chat_templates, 0);
    mlxe_tokenizer_config_free(&t);
}

static void test_bad_values(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"{\"bos_token\":5}", "'bos_token'"},
        {"{\"eos_token\":{\"id\":2}}", "'eos_token'"},
        {"{\"pad_token\":[\"x\"]}", "'pad_token'"},
        {"{\"add_bos_token\":\"true\"}", "'add_bos_token'"},
        {"{\"add_eos_token\":1}", "'add_eos_token'"},
        {"{\"model_max_length\":\"4096\"}", "'model_max_length'"},
        {"{\"tokenizer_class\":3}", "'tokenizer_class'"},
        {"{\"chat_template\":5}", "'chat_template'"},
        {"{\"chat_template\":[{\"name\":\"default\",\"template\":\"A\"},{\"name\":\"x\"}]}", "entry 1"},
        {"{\"bos_token\":\"<s>\",\"chat_template\":[7]}", "entry 0"},
        {"\"text\"", "JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mlxe_tokenizer_config t;
        mlxe_error err;
        assert_int_equal(parse(cases[i][0], &t, &err), MLXE_ERR_FORMAT);
        assert_message_contains(err.message, "tokenizer_config.json");
        assert_message_contains(err.message, cases[i][1]);
        /* Nothing to free after an error, and free is still harmless. */
        assert_null(t.bos_token);
        assert_int_equal(t.n_chat_templates, 0);
        mlxe_tokenizer_config_free(&t);
    }
}

static void test_load_folder(void **state) {
    (void)state;
    mlxe_tokenizer_config t;
    mlxe_error err;
    /* No file: not an error. */
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_OK);
    assert_false(t.present);
    assert_int_equal(t.add_bos_token, -1);
    mlxe_tokenizer_config_free(&t);

    write_text("tokenizer_config.json",
               "{\"eos_token\":\"</s>\",\"chat_template\":[{\"name\":\"default\",\"template\":\"old\"},"
               "{\"name\":\"tool_use\",\"template\":\"tools-old\"}]}");
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_OK);
    assert_true(t.present);
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, NULL), "old");
    mlxe_tokenizer_config_free(&t);

    /* chat_template.jinja replaces "default"; additional_chat_templates add or replace by name. */
    write_text("chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
    char *extra = join_path(temp_dir, "additional_chat_templates");
    assert_int_equal(mkdir(extra, 0755), 0);
    free(extra);
    write_text("additional_chat_templates/tool_use.jinja", "tools-new");
    write_text("additional_chat_templates/rag.jinja", "rag-new");
    write_text("additional_chat_templates/readme.txt", "ignored");
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_OK);
    assert_string_equal(t.eos_token, "</s>");
    assert_int_equal(t.n_chat_templates, 3);
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, "default"),
                        "{% for m in messages %}{{ m.content }}{% endfor %}");
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, "tool_use"), "tools-new");
    assert_string_equal(mlxe_tokenizer_config_chat_template(&t, "rag"), "rag-new");
    mlxe_tokenizer_config_free(&t);

    /* A template file alone (no tokenizer_config.json) still loads. */
    char *config_path = join_path(temp_dir, "tokenizer_config.json");
    unlink(config_path);
    free(config_path);
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_OK);
    assert_false(t.present);
    assert_int_equal(t.n_chat_templates, 3);
    mlxe_tokenizer_config_free(&t);

    /* Errors name the file; nothing is left allocated. */
    write_text("tokenizer_config.json", "{\"bos_token\": {\"content\": 1}}");
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, temp_dir);
    assert_message_contains(err.message, "'bos_token'");
    assert_int_equal(t.n_chat_templates, 0);
    write_text("tokenizer_config.json", "{\"bos_token\": ");
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "tokenizer_config.json");
    write_text("tokenizer_config.json", "{}");
    char *jinja = join_path(temp_dir, "chat_template.jinja");
    test_write_file(jinja, "bad\0byte", 8);
    free(jinja);
    assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "chat_template.jinja");

    /* Repeated loads and frees leak nothing (LSan). */
    write_text("chat_template.jinja", "T");
    for (int i = 0; i < 100; i++) {
        assert_int_equal(mlxe_tokenizer_config_load(temp_dir, &t, &err), MLXE_OK);
        mlxe_tokenizer_config_free(&t);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_and_flags),
        cmocka_unit_test(test_template_list),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test_setup_teardown(test_load_folder, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
