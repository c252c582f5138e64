/* A bounded mutation fuzz of the template lexer, parser and interpreter.
 *
 * Seeds are the one-feature templates of tests/template/features.json; each
 * round cuts, duplicates and splices Jinja fragments into one, then compiles
 * and renders it with tight limits. Any outcome is fine except a crash, a
 * hang, a leak (the sanitizer build checks) or an error without a message.
 * The PRNG is seeded so that a failure replays; MLXE_FUZZ_ROUNDS raises the
 * number of rounds for a longer local run and MLXE_FUZZ_SEED changes the
 * sequence (MLXE_FUZZ_VERBOSE=1 prints each input before running it). */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <time.h>

#include "base/file.h"
#include "mlxengine/mlxengine.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) {
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static size_t pick(size_t n) { return n ? (size_t)(next_random() % n) : 0; }

static const char *const FRAGMENTS[] = {
    "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", "{%+", "(", ")", "[", "]", "{", "}",
    "'", "\"", "|", " is ", " not ", " in ", " and ", " or ", "for x in ", "{% endfor %}", "{% if x %}",
    "{% endif %}", "{% else %}", "{% macro m(a, b=1) %}", "{% endmacro %}", "{{ m(1) }}", "{% set x = ",
    "{% set ns.y = 1 %}", "namespace(a=1)", "loop.index", "loop.cycle(1, 2)", "..", "::", "[::-1]", "\\",
    "\n", "~", "**", "//", "%", "%s", "{% raw %}", "{% endraw %}", " if x else ", "caller()",
    "{% call m() %}", "{% endcall %}", "{% filter upper %}", "{% endfilter %}", "range(1000)", "* 99999",
    "|tojson(indent=2)", "|join(',')", "|selectattr('role')", "|map(attribute='content')", "|list",
    "|length", "|indent(4)", "|int", "|round(2)", "|format(1)", "messages", "messages[0]", ".content",
    "raise_exception('boom')", "1e308", "-9223372036854775808", "0x", "'\\u00e9'", "\xc3\xa9", "\xff",
    "{% break %}", "{% continue %}", "{% with a = 1 %}", "{% endwith %}", "{% generation %}",
    "{% endgeneration %}", ".items()", ".split()", ".format(1)", "none", "true", "1.5", "[1, 2]", "{'k': 1}",
};

static char *mutate(const char *seed) {
    size_t length = strlen(seed);
    size_t capacity = length * 2 + 512;
    char *text = malloc(capacity);
    memcpy(text, seed, length + 1);
    int rounds = 1 + (int)pick(4);
    for (int r = 0; r < rounds; r++) {
        size_t at = pick(length + 1);
        switch (pick(4)) {
        case 0: { /* cut a span */
            size_t span = pick(length - at + 1);
            memmove(text + at, text + at + span, length - at - span + 1);
            length -= span;
            break;
        }
        case 1:
        case 2: { /* splice a fragment */
            const char *fragment = FRAGMENTS[pick(sizeof FRAGMENTS / sizeof FRAGMENTS[0])];
            size_t n = strlen(fragment);
            if (length + n + 1 > capacity) break;
            memmove(text + at + n, text + at, length - at + 1);
            memcpy(text + at, fragment, n);
            length += n;
            break;
        }
        default: { /* duplicate a span */
            size_t span = pick(length - at + 1);
            if (span > 64) span = 64;
            if (length + span + 1 > capacity) break;
            memmove(text + at + span, text + at, length - at + 1);
            memcpy(text + at + span, text + at, span);
            length += span;
            break;
        }
        }
    }
    return text;
}

static void test_fuzz_templates(void **state) {
    (void)state;
    char *json = NULL;
    size_t size = 0;
    mlxe_error err;
    assert_int_equal(mlxe_file_read_all(MLXE_SOURCE_DIR "/tests/template/features.json", 1 << 20, &json, &size, &err), MLXE_OK);
    cJSON *root = cJSON_ParseWithLength(json, size);
    assert_non_null(root);
    cJSON *cases = cJSON_GetObjectItem(root, "cases");
    char *context = cJSON_PrintUnformatted(cJSON_GetObjectItem(root, "context"));
    int n_seeds = cJSON_GetArraySize(cases);
    assert_true(n_seeds > 10);
    mlxe_template_limits limits;
    mlxe_template_limits_init(&limits);
    limits.max_loop_iterations = 20000;
    limits.max_output_bytes = 1 << 20;
    limits.max_memory_bytes = 64 << 20;
    int rounds = 3000;
    const char *env = getenv("MLXE_FUZZ_ROUNDS");
    if (env) rounds = atoi(env);
    const char *seed_env = getenv("MLXE_FUZZ_SEED");
    if (seed_env) rng_state = 0x9e3779b97f4a7c15ull + strtoull(seed_env, NULL, 10) * 0xbf58476d1ce4e5b9ull;
    if (!rng_state) rng_state = 1;
    time_t start = time(NULL);
    int compiled = 0, rendered = 0;
    for (int i = 0; i < rounds && time(NULL) - start < 60; i++) {
        const char *seed = cJSON_GetObjectItem(cJSON_GetArrayItem(cases, (int)pick((size_t)n_seeds)), "template")->valuestring;
        char *source = mutate(seed);
        if (getenv("MLXE_FUZZ_VERBOSE")) fprintf(stderr, "---- %d\n%s\n", i, source);
        mlxe_template *tpl = NULL;
        mlxe_status status = mlxe_template_compile(source, strlen(source), "fuzz", &limits, &tpl, &err);
        if (status == MLXE_OK) {
            compiled++;
            char *text = NULL;
            status = mlxe_template_render_json(tpl, context, strlen(context), &text, NULL, &err);
            if (status == MLXE_OK) rendered++;
            else if (!err.message[0]) fail_msg("render error without a message for: %s", source);
            mlxe_template_text_free(text);
            mlxe_template_free(tpl);
        } else {
            assert_null(tpl);
            if (!err.message[0]) fail_msg("compile error without a message for: %s", source);
        }
        free(source);
    }
    print_message("fuzz: %d compiled, %d rendered\n", compiled, rendered);
    assert_true(compiled > 0 && rendered > 0);
    free(context);
    cJSON_Delete(root);
    free(json);
}

/* Found by fuzz/fuzz_template.c: a stray UTF-8 continuation byte in a
 * template literal was one character when a string was iterated but none
 * when its length was counted, so `| list` wrote past the list it had sized
 * (heap overflow). Length, iteration and indexing must agree. */
static void test_stray_continuation_byte(void **state) {
    (void)state;
    static const char source[] = "{% set s = 'a\x8f" "b' %}{{ s | length }},{{ s | list | length }},{{ s[2] }},"
                                 "{{ s | list | last }},{{ (s | list)[1] == s[1] }}";
    mlxe_template *tpl = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_template_compile(source, strlen(source), "stray", NULL, &tpl, &err), MLXE_OK);
    char *text = NULL;
    assert_int_equal(mlxe_template_render_json(tpl, "{}", 2, &text, NULL, &err), MLXE_OK);
    assert_string_equal(text, "3,3,b,b,True");
    mlxe_template_text_free(text);
    mlxe_template_free(tpl);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_templates),
        cmocka_unit_test(test_stray_continuation_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
