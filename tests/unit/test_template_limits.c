/* Hostile templates: every one must stop with MLXE_ERR_LIMIT (or a plain
 * template error), quickly, without a hang, a stack overflow or a leak. */
#include "test_util.h"

#include <time.h>

#include "mlxengine/mlxengine.h"

static mlxe_status run(const char *source, const char *context, const mlxe_template_limits *limits, mlxe_error *err) {
    mlxe_template *tpl = NULL;
    mlxe_status status = mlxe_template_compile(source, strlen(source), "hostile.jinja", limits, &tpl, err);
    if (status != MLXE_OK) return status;
    char *text = NULL;
    status = mlxe_template_render_json(tpl, context, strlen(context), &text, NULL, err);
    mlxe_template_text_free(text);
    mlxe_template_free(tpl);
    return status;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void expect_limit(const char *source, const char *context, const mlxe_template_limits *limits, const char *needle) {
    mlxe_error err;
    double start = now_seconds();
    mlxe_status status = run(source, context, limits, &err);
    double elapsed = now_seconds() - start;
    if (status != MLXE_ERR_LIMIT) fail_msg("expected a limit error for %.60s, got %s: %s", source, mlxe_status_name(status), err.message);
    assert_message_contains(err.message, needle);
    if (elapsed > 20.0) fail_msg("stopping %.60s took %.1f s", source, elapsed);
}

static void test_loop_iterations(void **state) {
    (void)state;
    /* 100000 x 100000 iterations would take hours. */
    expect_limit("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{}", NULL,
                 "max_loop_iterations");
    mlxe_template_limits limits;
    mlxe_template_limits_init(&limits);
    limits.max_loop_iterations = 10;
    expect_limit("{% for i in range(11) %}{{ i }}{% endfor %}", "{}", &limits, "max_loop_iterations");
    mlxe_error err;
    assert_int_equal(run("{% for i in range(10) %}{{ i }}{% endfor %}", "{}", &limits, &err), MLXE_OK);
}

static void test_macro_recursion(void **state) {
    (void)state;
    expect_limit("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}", NULL, "max_recursion_depth");
    /* Two calls per level: exponential work, stopped by the iteration budget. */
    expect_limit("{% macro f(n) %}{% if n < 60 %}{{ f(n + 1) }}{{ f(n + 1) }}{% endif %}{% endmacro %}{{ f(0) }}", "{}",
                 NULL, "max_loop_iterations");
    /* Call blocks recurse through caller(). */
    expect_limit("{% macro g() %}{% call g() %}x{% endcall %}{% endmacro %}{{ g() }}", "{}", NULL, "max_recursion_depth");
}

static void test_output_and_memory(void **state) {
    (void)state;
    expect_limit("{% for i in range(100000) %}{% for j in range(9) %}{{ 'x' * 100000 }}{% endfor %}{% endfor %}", "{}",
                 NULL, "max_output_bytes");
    expect_limit("{{ 'x' * 1000000000000 }}", "{}", NULL, "max_output_bytes");
    /* Doubling a string: output limit or memory limit, whichever comes first. */
    mlxe_error err;
    mlxe_status status = run("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(80) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
                             "{}", NULL, &err);
    assert_int_equal(status, MLXE_ERR_LIMIT);
    mlxe_template_limits limits;
    mlxe_template_limits_init(&limits);
    limits.max_memory_bytes = 1 << 20;
    expect_limit("{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [i] %}{% endfor %}", "{}",
                 &limits, "max_memory_bytes");
    limits.max_output_bytes = 100;
    expect_limit("{{ 'y' * 101 }}", "{}", &limits, "max_output_bytes");
    /* The sandbox's own cap on range() is an ordinary template error, as in Jinja2. */
    assert_int_equal(run("{{ range(100001)|length }}", "{}", NULL, &err), MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "MAX_RANGE");
}

static void test_nesting(void **state) {
    (void)state;
    /* Deep parentheses, deep blocks and a deep JSON context. */
    size_t n = 100000;
    char *source = malloc(2 * n + 8);
    size_t o = 0;
    memcpy(source + o, "{{ ", 3), o += 3;
    for (size_t i = 0; i < n / 2; i++) source[o++] = '(';
    source[o++] = '1';
    for (size_t i = 0; i < n / 2; i++) source[o++] = ')';
    memcpy(source + o, " }}", 4);
    expect_limit(source, "{}", NULL, "max_nesting");
    o = 0;
    for (size_t i = 0; i < 20000; i++) memcpy(source + o, "{% if 1 %}", 10), o += 10;
    source[o] = '\0';
    expect_limit(source, "{}", NULL, "max_nesting");
    o = 0;
    memcpy(source + o, "{\"a\": ", 6), o += 6;
    for (size_t i = 0; i < 50000; i++) source[o++] = '[';
    for (size_t i = 0; i < 50000; i++) source[o++] = ']';
    source[o++] = '}';
    source[o] = '\0';
    expect_limit("{{ a }}", source, NULL, "max_nesting");
    o = 0;
    for (size_t i = 0; i < 50000; i++) memcpy(source + o, "not ", 4), o += 4;
    source[o] = '\0';
    char *wrapped = malloc(o + 16);
    snprintf(wrapped, o + 16, "{{ %s1 }}", source);
    expect_limit(wrapped, "{}", NULL, "max_nesting");
    free(wrapped);
    free(source);
    /* A value nested by the template itself is stopped when printed. */
    mlxe_template_limits limits;
    mlxe_template_limits_init(&limits);
    mlxe_error err;
    mlxe_status status = run("{% set ns = namespace(v=1) %}{% for i in range(100000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v }}",
                             "{}", &limits, &err);
    assert_int_equal(status, MLXE_ERR_LIMIT);
    status = run("{% set ns = namespace(v=1) %}{% for i in range(100000) %}{% set ns.v = [ns.v] %}{% endfor %}{{ ns.v|tojson }}",
                 "{}", &limits, &err);
    assert_int_equal(status, MLXE_ERR_LIMIT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_iterations),
        cmocka_unit_test(test_macro_recursion),
        cmocka_unit_test(test_output_and_memory),
        cmocka_unit_test(test_nesting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
