/* Tests of the public mlxe_template API: compile and render, error
 * messages with line and column, raise_exception, bad arguments and bad
 * context JSON, and concurrent renders of one compiled template. Rendering
 * semantics are checked against Python's Jinja2 by tests/template
 * (oracle_compare.py); these tests cover the contract around it. */
#include "test_util.h"

#include <pthread.h>

#include "mlxengine/mlxengine.h"

static char *render(const char *source, const char *context, mlxe_status *status, mlxe_error *err) {
    mlxe_template *tpl = NULL;
    *status = mlxe_template_compile(source, strlen(source), "test.jinja", NULL, &tpl, err);
    if (*status != MLXE_OK) return NULL;
    char *text = NULL;
    size_t length = 0;
    *status = mlxe_template_render_json(tpl, context, context ? strlen(context) : 0, &text, &length, err);
    if (*status == MLXE_OK) assert_int_equal(length, strlen(text));
    mlxe_template_free(tpl);
    return text;
}

static void test_render_basic(void **state) {
    (void)state;
    mlxe_status status;
    mlxe_error err;
    char *text = render("{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{{ x }}",
                        "{\"messages\": [{\"role\": \"user\", \"content\": \"hé\"}], \"x\": 1.0}", &status, &err);
    assert_int_equal(status, MLXE_OK);
    assert_string_equal(text, "[user:hé]1.0");
    mlxe_template_text_free(text);
    /* No context at all is an empty one. */
    text = render("a{{ missing }}b", NULL, &status, &err);
    assert_int_equal(status, MLXE_OK);
    assert_string_equal(text, "ab");
    mlxe_template_text_free(text);
    /* A template need not be NUL-terminated. */
    mlxe_template *tpl = NULL;
    assert_int_equal(mlxe_template_compile("{{ 'ok' }}XXXX", 10, NULL, NULL, &tpl, &err), MLXE_OK);
    assert_int_equal(mlxe_template_render_json(tpl, "{}", 2, &text, NULL, &err), MLXE_OK);
    assert_string_equal(text, "ok");
    mlxe_template_text_free(text);
    mlxe_template_free(tpl);
    mlxe_template_free(NULL);
    mlxe_template_text_free(NULL);
}

static void test_syntax_error_location(void **state) {
    (void)state;
    mlxe_status status;
    mlxe_error err;
    char *text = render("line one\n{% if x %}\n  {{ 1 + }}\n{% endif %}", "{}", &status, &err);
    assert_null(text);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "test.jinja, line 3, column");
    text = render("{% for x in y %}no end", "{}", &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "endfor");
    text = render("{{ 'unterminated }}", "{}", &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "line 1");
    text = render("{% include 'other.jinja' %}", "{}", &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "not supported");
    text = render("{{ x | no_such_filter }}", "{}", &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "No filter named 'no_such_filter'");
}

static void test_raise_exception_message(void **state) {
    (void)state;
    mlxe_status status;
    mlxe_error err;
    char *text = render("ok\n{% if messages[0].role != 'user' %}{{ raise_exception('Conversation roles must "
                        "alternate user/assistant/user/assistant/...') }}{% endif %}",
                        "{\"messages\": [{\"role\": \"assistant\", \"content\": \"x\"}]}", &status, &err);
    assert_null(text);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "line 2, column");
    assert_message_contains(err.message, ": Conversation roles must alternate user/assistant/user/assistant/...");
    /* Runtime errors name the problem too. */
    text = render("{{ messages.first.role }}", "{}", &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "'messages' is undefined");
    text = render("{% set xs = [1] %}{{ xs.append(2) }}", "{}", &status, &err);
    assert_int_equal(status, MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "unsafe");
}

static void test_bad_arguments_and_context(void **state) {
    (void)state;
    mlxe_error err;
    mlxe_template *tpl = NULL;
    assert_int_equal(mlxe_template_compile("x", 1, NULL, NULL, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_template_compile(NULL, 5, NULL, NULL, &tpl, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_null(tpl);
    assert_int_equal(mlxe_template_compile("{{ a }}", 7, NULL, NULL, &tpl, &err), MLXE_OK);
    char *text = (char *)"sentinel";
    assert_int_equal(mlxe_template_render_json(NULL, "{}", 2, &text, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_null(text);
    assert_int_equal(mlxe_template_render_json(tpl, "{}", 2, NULL, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    const char *bad[] = {"{", "{\"a\": }", "[1, 2]", "\"text\"", "{\"a\": 1} trailing", "{\"a\": tru}",
                         "{\"a\": \"\x01\"}", "{\"a\": 01}", "{\"a\": 123456789012345678901234567890}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mlxe_status status = mlxe_template_render_json(tpl, bad[i], strlen(bad[i]), &text, NULL, &err);
        assert_int_not_equal(status, MLXE_OK);
        assert_null(text);
        assert_true(strlen(err.message) > 0);
    }
    assert_int_equal(mlxe_template_render_json(tpl, "{", 1, &text, NULL, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "template context");
    assert_int_equal(mlxe_template_render_json(tpl, "[1]", 3, &text, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "JSON object");
    mlxe_template_free(tpl);
}

typedef struct render_job {
    const mlxe_template *tpl;
    char *text;
    mlxe_status status;
} render_job;

static void *render_thread(void *arg) {
    render_job *job = arg;
    const char *context = "{\"messages\": [{\"role\": \"user\", \"content\": \"ab\"}, {\"role\": \"assistant\", \"content\": \"cd\"}]}";
    for (int i = 0; i < 50; i++) {
        mlxe_template_text_free(job->text);
        job->text = NULL;
        job->status = mlxe_template_render_json(job->tpl, context, strlen(context), &job->text, NULL, NULL);
        if (job->status != MLXE_OK) break;
    }
    return NULL;
}

static void test_concurrent_renders(void **state) {
    (void)state;
    const char *source = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m.content|length %}"
                         "{{ m.role|upper }}={{ m.content[::-1] }};{% endfor %}{{ ns.n }}";
    mlxe_template *tpl = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_template_compile(source, strlen(source), NULL, NULL, &tpl, &err), MLXE_OK);
    render_job jobs[4] = {{tpl, NULL, MLXE_OK}, {tpl, NULL, MLXE_OK}, {tpl, NULL, MLXE_OK}, {tpl, NULL, MLXE_OK}};
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&threads[i], NULL, render_thread, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(jobs[i].status, MLXE_OK);
        assert_string_equal(jobs[i].text, "USER=ba;ASSISTANT=dc;4");
        mlxe_template_text_free(jobs[i].text);
    }
    mlxe_template_free(tpl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_basic),
        cmocka_unit_test(test_syntax_error_location),
        cmocka_unit_test(test_raise_exception_message),
        cmocka_unit_test(test_bad_arguments_and_context),
        cmocka_unit_test(test_concurrent_renders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
