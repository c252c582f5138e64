/* tests/unit/test_tokenizer_encode.c — encode/decode properties on the
 * built-in fixtures: round trips (byte-level and byte fallback are
 * lossless), special-token parsing on and off, BOS from the template,
 * invalid UTF-8 handled as its U+FFFD replacement, and the streaming
 * detokenizer (pieces are whole UTF-8 and concatenate to the one-shot
 * decode) over random id sequences. Exact ids are the oracle test's job. */
#include <pthread.h>

#include "test_util.h"
#include "tokenizer_fixtures.h"

#include "mlxengine/tokenizer.h"

static const char *const TEXTS[] = {
    "hello world", "hello  world\n\n", " leading", "trailing ", "", "a", "naïve café 日本語 🦙👨‍👩‍👧",
    "e\xCC\x81", "tabs\tand\r\nlines", "1234567 89", "<|special|> inside <extra> text", "ab ab aab b",
    "\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99", "x\xE2\x80\x8By",
};

static mlxe_tokenizer *load(char *json, const char *config) {
    mlxe_tokenizer *tk = NULL;
    mlxe_error err;
    mlxe_status st = mlxe_tokenizer_load_memory(json, strlen(json), config, config ? strlen(config) : 0, "fixture", &tk, &err);
    free(json);
    if (st != MLXE_OK) fail_msg("%s", err.message);
    return tk;
}

static char *decode_sized(const mlxe_tokenizer *tk, const mlxe_token_list *ids, bool skip, size_t *out_size) {
    mlxe_decode_options options;
    mlxe_decode_options_init(&options);
    options.skip_special_tokens = skip;
    char *text = NULL;
    size_t size = 0;
    mlxe_error err;
    if (mlxe_tokenizer_decode(tk, ids->ids, ids->count, &options, &text, &size, &err) != MLXE_OK) fail_msg("%s", err.message);
    assert_int_equal(text[size], '\0');
    *out_size = size;
    return text;
}

static char *decode(const mlxe_tokenizer *tk, const mlxe_token_list *ids, bool skip) {
    size_t size;
    char *text = decode_sized(tk, ids, skip, &size);
    assert_int_equal(strlen(text), size);
    return text;
}

static void encode(const mlxe_tokenizer *tk, const char *text, size_t size, bool parse, bool add, mlxe_token_list *out) {
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    options.parse_special_tokens = parse;
    options.add_special_tokens = add;
    mlxe_error err;
    out->count = 0;
    if (mlxe_tokenizer_encode(tk, text, size, &options, out, &err) != MLXE_OK) fail_msg("%s", err.message);
}

static bool contains(const mlxe_token_list *ids, mlxe_token_id id) {
    for (size_t i = 0; i < ids->count; i++)
        if (ids->ids[i] == id) return true;
    return false;
}

static void round_trips(mlxe_tokenizer *tk) {
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
        encode(tk, TEXTS[i], strlen(TEXTS[i]), true, false, &ids);
        char *text = decode(tk, &ids, false);
        if (strcmp(text, TEXTS[i]) != 0) fail_msg("round trip of \"%s\" gave \"%s\"", TEXTS[i], text);
        free(text);
        /* encoding is deterministic (the word cache must not change it) */
        mlxe_token_list again;
        mlxe_token_list_init(&again);
        encode(tk, TEXTS[i], strlen(TEXTS[i]), true, false, &again);
        assert_int_equal(again.count, ids.count);
        assert_memory_equal(again.ids, ids.ids, ids.count * sizeof *ids.ids);
        mlxe_token_list_free(&again);
    }
    mlxe_token_list_free(&ids);
}

static void test_byte_level(void **state) {
    (void)state;
    mlxe_tokenizer *tk = load(fixture_byte_level_json(), NULL);
    round_trips(tk);
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    /* merges apply: "hello world" is two tokens */
    encode(tk, "hello world", 11, true, false, &ids);
    assert_int_equal(ids.count, 2);
    assert_string_equal(mlxe_tokenizer_id_to_token(tk, ids.ids[0]), "hello");
    assert_string_equal(mlxe_tokenizer_id_to_token(tk, ids.ids[1]), "\xC4\xA0world");
    /* special tokens: parsed only when allowed; <extra> (not special) always */
    const char *text = "a<|special|>b<extra>c";
    encode(tk, text, strlen(text), true, false, &ids);
    assert_true(contains(&ids, 300));
    assert_true(contains(&ids, 301));
    encode(tk, text, strlen(text), false, false, &ids);
    assert_false(contains(&ids, 300));
    assert_true(contains(&ids, 301));
    char *plain = decode(tk, &ids, false);
    assert_string_equal(plain, text);
    free(plain);
    /* skip_special_tokens drops exactly the special token */
    encode(tk, text, strlen(text), true, false, &ids);
    char *skipped = decode(tk, &ids, true);
    assert_string_equal(skipped, "ab<extra>c");
    free(skipped);
    /* no template: add_special_tokens changes nothing */
    mlxe_token_list with;
    mlxe_token_list_init(&with);
    encode(tk, text, strlen(text), true, true, &with);
    assert_int_equal(with.count, ids.count);
    mlxe_token_list_free(&with);
    /* encode appends to the list */
    size_t before = ids.count;
    mlxe_error err;
    assert_int_equal(mlxe_tokenizer_encode(tk, "hello", 5, NULL, &ids, &err), MLXE_OK);
    assert_int_equal(ids.count, before + 1);
    /* NULL arguments */
    assert_int_equal(mlxe_tokenizer_encode(NULL, "x", 1, NULL, &ids, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_tokenizer_encode(tk, NULL, 1, NULL, &ids, &err), MLXE_ERR_INVALID_ARGUMENT);
    char *out = NULL;
    assert_int_equal(mlxe_tokenizer_decode(tk, NULL, 3, NULL, &out, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    /* unknown ids are skipped */
    mlxe_token_id odd[] = {-5, 256 + 3, 99999};
    assert_int_equal(mlxe_tokenizer_decode(tk, odd, 3, NULL, &out, NULL, &err), MLXE_OK);
    assert_string_equal(out, "hello");
    free(out);
    mlxe_token_list_free(&ids);
    mlxe_tokenizer_free(tk);
}

static void test_sentencepiece(void **state) {
    (void)state;
    mlxe_tokenizer *tk = load(fixture_sentencepiece_json(), "{\"add_bos_token\": true, \"bos_token\": \"<s>\"}");
    round_trips(tk);
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    encode(tk, "ab", 2, true, true, &ids);
    assert_true(ids.count >= 2);
    assert_int_equal(ids.ids[0], 1); /* BOS */
    assert_string_equal(mlxe_tokenizer_id_to_token(tk, ids.ids[1]), "\xE2\x96\x81" "ab");
    /* characters outside the vocabulary become <0xNN> byte tokens */
    encode(tk, "\xC3\xA9", 2, true, false, &ids);
    for (size_t i = 0; i < ids.count; i++) {
        const char *t = mlxe_tokenizer_id_to_token(tk, ids.ids[i]);
        assert_non_null(t);
    }
    assert_string_equal(mlxe_tokenizer_id_to_token(tk, ids.ids[ids.count - 1]), "<0xA9>");
    mlxe_token_list_free(&ids);
    mlxe_tokenizer_free(tk);
}

static void test_invalid_utf8(void **state) {
    (void)state;
    static const struct { const char *bytes, *replaced; } cases[] = {
        {"a\xFF" "b", "a\xEF\xBF\xBD" "b"},
        {"\xE2\x82", "\xEF\xBF\xBD"},
        {"\xF0\x9F\xA6", "\xEF\xBF\xBD"},
        {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
        {"\xC0\xAF x", "\xEF\xBF\xBD\xEF\xBF\xBD x"},
        {"\xE2\x82\xAC\xE2\x82", "\xE2\x82\xAC\xEF\xBF\xBD"},
    };
    mlxe_tokenizer *tks[2] = {load(fixture_byte_level_json(), NULL), load(fixture_sentencepiece_json(), NULL)};
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            mlxe_token_list a, b;
            mlxe_token_list_init(&a);
            mlxe_token_list_init(&b);
            encode(tks[t], cases[i].bytes, strlen(cases[i].bytes), true, false, &a);
            encode(tks[t], cases[i].replaced, strlen(cases[i].replaced), true, false, &b);
            assert_int_equal(a.count, b.count);
            assert_memory_equal(a.ids, b.ids, a.count * sizeof *a.ids);
            mlxe_token_list_free(&a);
            mlxe_token_list_free(&b);
        }
        mlxe_tokenizer_free(tks[t]);
    }
}

/* Pieces are whole UTF-8 and add up to the one-shot decode. */
static void check_stream(const mlxe_tokenizer *tk, const mlxe_token_list *ids, bool skip) {
    mlxe_decode_options options = {skip};
    mlxe_detokenizer *d = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_detokenizer_create(tk, &options, &d, &err), MLXE_OK);
    size_t expected_size;
    char *expected = decode_sized(tk, ids, skip, &expected_size);
    for (int round = 0; round < 2; round++) {
        size_t n = 0, cap = expected_size + 1;
        char *all = malloc(cap);
        for (size_t i = 0; i <= ids->count; i++) {
            const char *piece;
            size_t size;
            mlxe_status st = i < ids->count ? mlxe_detokenizer_push(d, ids->ids[i], &piece, &size, &err)
                                            : mlxe_detokenizer_flush(d, &piece, &size, &err);
            assert_int_equal(st, MLXE_OK);
            assert_int_equal(tok_utf8_valid_prefix(piece, size), size);
            if (n + size >= cap) fail_msg("stream longer than decode");
            memcpy(all + n, piece, size);
            n += size;
        }
        assert_int_equal(n, expected_size);
        assert_memory_equal(all, expected, n);
        free(all);
        /* flush reset the stream: a second round gives the same */
    }
    /* reset drops pending ids */
    const char *piece;
    size_t size;
    if (ids->count) assert_int_equal(mlxe_detokenizer_push(d, ids->ids[0], &piece, &size, &err), MLXE_OK);
    mlxe_detokenizer_reset(d);
    assert_int_equal(mlxe_detokenizer_flush(d, &piece, &size, &err), MLXE_OK);
    assert_int_equal(size, 0);
    free(expected);
    mlxe_detokenizer_free(d);
}

static void test_streaming(void **state) {
    (void)state;
    mlxe_tokenizer *tks[2] = {load(fixture_byte_level_json(), NULL), load(fixture_sentencepiece_json(), NULL)};
    unsigned seed = 12345;
    for (int t = 0; t < 2; t++) {
        mlxe_tokenizer_info info;
        mlxe_tokenizer_get_info(tks[t], &info);
        mlxe_token_list ids;
        mlxe_token_list_init(&ids);
        for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) {
            encode(tks[t], TEXTS[i], strlen(TEXTS[i]), true, true, &ids);
            check_stream(tks[t], &ids, false);
            check_stream(tks[t], &ids, true);
        }
        for (int round = 0; round < 300; round++) {
            ids.count = 0;
            int n = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 10;
            if (ids.capacity < 16) {
                ids.ids = realloc(ids.ids, 16 * sizeof *ids.ids);
                ids.capacity = 16;
            }
            for (int k = 0; k < n; k++)
                ids.ids[ids.count++] = (mlxe_token_id)(((seed = seed * 1103515245u + 12345u) >> 8) % info.vocab_size);
            check_stream(tks[t], &ids, round & 1);
        }
        mlxe_token_list_free(&ids);
        mlxe_tokenizer_free(tks[t]);
    }
    mlxe_detokenizer *d = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_detokenizer_create(NULL, NULL, &d, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_detokenizer_free(NULL);
}

/* One tokenizer shared by threads (its word cache is locked): every
 * thread gets the single-threaded ids. */
#define N_TEXTS (sizeof TEXTS / sizeof TEXTS[0])
typedef struct thread_job {
    const mlxe_tokenizer *tk;
    const mlxe_token_list *expected;
    int failures;
} thread_job;

static void *encode_many(void *arg) {
    thread_job *job = arg;
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    for (int round = 0; round < 200; round++) {
        size_t i = (size_t)round % N_TEXTS;
        ids.count = 0;
        mlxe_error err;
        if (mlxe_tokenizer_encode(job->tk, TEXTS[i], strlen(TEXTS[i]), &options, &ids, &err) != MLXE_OK ||
            ids.count != job->expected[i].count ||
            (ids.count && memcmp(ids.ids, job->expected[i].ids, ids.count * sizeof *ids.ids) != 0))
            job->failures++;
    }
    mlxe_token_list_free(&ids);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    mlxe_tokenizer *tk = load(fixture_byte_level_json(), NULL);
    mlxe_token_list expected[N_TEXTS];
    for (size_t i = 0; i < N_TEXTS; i++) {
        mlxe_token_list_init(&expected[i]);
        encode(tk, TEXTS[i], strlen(TEXTS[i]), false, false, &expected[i]);
    }
    pthread_t threads[4];
    thread_job jobs[4];
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){tk, expected, 0};
        assert_int_equal(pthread_create(&threads[t], NULL, encode_many, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(threads[t], NULL);
        assert_int_equal(jobs[t].failures, 0);
    }
    for (size_t i = 0; i < N_TEXTS; i++) mlxe_token_list_free(&expected[i]);
    mlxe_tokenizer_free(tk);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_level),
        cmocka_unit_test(test_sentencepiece),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
