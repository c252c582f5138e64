/* Tests of mlxe_chat_template: finding a model folder's chat template
 * (chat_template.jinja, chat_template.json, tokenizer_config.json as a string
 * or as named templates), the special tokens and defaults it renders with,
 * tool_use selection, the logged fallback, and bad folders. */
#include "test_util.h"

#include "mlxengine/mlxengine.h"

static void write_text(const char *dir, const char *name, const char *text) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    test_write_file(path, text, strlen(text));
}

static char *render(const mlxe_chat_template *chat, const char *name, const char *context, mlxe_status *status,
                    mlxe_error *err) {
    char *text = NULL;
    *status = mlxe_chat_template_render_json(chat, name, context, strlen(context), &text, NULL, err);
    return text;
}

static const char *CONTEXT = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}";

static void test_tokenizer_config_string(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    write_text(dir, "tokenizer_config.json",
               "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\","
               " \"chat_template\": \"{{ bos_token }}{% for m in messages %}[{{ m.content }}]{% endfor %}"
               "{{ tools }}|{{ documents }}|{{ add_generation_prompt }}|{{ eos_token }}|{{ pad_token is defined }}\"}");
    mlxe_chat_template *chat = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_OK);
    assert_string_equal(mlxe_chat_template_origin(chat), "tokenizer_config.json");
    assert_int_equal(mlxe_chat_template_count(chat), 1);
    assert_string_equal(mlxe_chat_template_name(chat, 0), "default");
    assert_null(mlxe_chat_template_name(chat, 1));
    mlxe_status status;
    char *text = render(chat, NULL, CONTEXT, &status, &err);
    assert_int_equal(status, MLXE_OK);
    /* apply_chat_template's defaults: tools/documents None, add_generation_prompt False. */
    assert_string_equal(text, "<s>[hi]None|None|False|</s>|False");
    mlxe_template_text_free(text);
    /* The caller's variables win over the special tokens. */
    text = render(chat, NULL, "{\"messages\": [], \"bos_token\": \"B\", \"add_generation_prompt\": true}", &status, &err);
    assert_string_equal(text, "BNone|None|True|</s>|False");
    mlxe_template_text_free(text);
    text = render(chat, "nope", CONTEXT, &status, &err);
    assert_int_equal(status, MLXE_ERR_NOT_FOUND);
    mlxe_chat_template_free(chat);
    mlxe_chat_template_free(NULL);
}

static void test_named_templates_and_tool_use(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    write_text(dir, "tokenizer_config.json",
               "{\"chat_template\": [{\"name\": \"default\", \"template\": \"plain\"},"
               " {\"name\": \"tool_use\", \"template\": \"tools:{{ tools|length }}\"}]}");
    mlxe_chat_template *chat = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_OK);
    assert_int_equal(mlxe_chat_template_count(chat), 2);
    mlxe_status status;
    char *text = render(chat, NULL, CONTEXT, &status, &err);
    assert_string_equal(text, "plain");
    mlxe_template_text_free(text);
    text = render(chat, NULL, "{\"messages\": [], \"tools\": null}", &status, &err);
    assert_string_equal(text, "plain");
    mlxe_template_text_free(text);
    text = render(chat, NULL, "{\"messages\": [], \"tools\": [{\"type\": \"function\"}]}", &status, &err);
    assert_string_equal(text, "tools:1");
    mlxe_template_text_free(text);
    text = render(chat, "tool_use", CONTEXT, &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE); /* None has no length, as in Jinja2 */
    mlxe_chat_template_free(chat);
}

static void test_jinja_and_json_files(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    write_text(dir, "tokenizer_config.json", "{\"chat_template\": \"from config\"}");
    write_text(dir, "chat_template.json", "{\"chat_template\": \"from json\"}");
    mlxe_chat_template *chat = NULL;
    mlxe_error err;
    mlxe_status status;
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_OK);
    assert_string_equal(mlxe_chat_template_origin(chat), "chat_template.json");
    char *text = render(chat, NULL, CONTEXT, &status, &err);
    assert_string_equal(text, "from json");
    mlxe_template_text_free(text);
    mlxe_chat_template_free(chat);
    write_text(dir, "chat_template.jinja", "from jinja\n");
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_OK);
    assert_string_equal(mlxe_chat_template_origin(chat), "chat_template.jinja");
    text = render(chat, NULL, CONTEXT, &status, &err);
    assert_string_equal(text, "from jinja"); /* Jinja2 drops one trailing newline */
    mlxe_template_text_free(text);
    mlxe_chat_template_free(chat);
}

static void test_fallback_is_logged(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    mlxe_log_set_level(MLXE_LOG_CAT_TEMPLATE, MLXE_LOG_WARN);
    mlxe_chat_template *chat = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_OK);
    assert_string_equal(mlxe_chat_template_origin(chat), "fallback");
    mlxe_log_record records[16];
    size_t n = mlxe_log_recent(records, 16);
    bool logged = false;
    for (size_t i = 0; i < n; i++) logged |= strstr(records[i].message, "has no chat template") != NULL;
    assert_true(logged);
    mlxe_status status;
    char *text = render(chat, NULL,
                        "{\"messages\": [{\"role\": \"system\", \"content\": \"a\"}, {\"role\": \"user\", \"content\":"
                        " [{\"type\": \"image\"}, {\"type\": \"text\", \"text\": \"b\"}]}, {\"role\": \"assistant\", \"content\": \"c\"}]}",
                        &status, &err);
    assert_int_equal(status, MLXE_OK);
    assert_string_equal(text, "a\nb\nc");
    mlxe_template_text_free(text);
    mlxe_chat_template_free(chat);
}

static void test_bad_folders(void **state) {
    (void)state;
    mlxe_chat_template *chat = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_chat_template_load("/nonexistent/model", &chat, &err), MLXE_ERR_NOT_FOUND);
    assert_null(chat);
    assert_int_equal(mlxe_chat_template_load(NULL, &chat, &err), MLXE_ERR_INVALID_ARGUMENT);
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    write_text(dir, "tokenizer_config.json", "{\"chat_template\": ");
    assert_int_not_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_OK);
    assert_message_contains(err.message, "tokenizer_config.json");
    write_text(dir, "tokenizer_config.json", "{\"chat_template\": \"{% if %}\"}");
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "tokenizer_config.json, line 1");
    write_text(dir, "tokenizer_config.json", "{\"chat_template\": 42}");
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_ERR_FORMAT);
    write_text(dir, "tokenizer_config.json", "{}");
    write_text(dir, "chat_template.json", "{\"chat_template\": [{\"name\": 1}]}");
    assert_int_equal(mlxe_chat_template_load(dir, &chat, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "chat_template.json");
    assert_null(chat);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_config_string),
        cmocka_unit_test(test_named_templates_and_tool_use),
        cmocka_unit_test(test_jinja_and_json_files),
        cmocka_unit_test(test_fallback_is_logged),
        cmocka_unit_test(test_bad_folders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
