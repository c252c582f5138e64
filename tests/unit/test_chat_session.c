/* tests/unit/test_chat_session.c — chat sessions on a generated model
 * folder (tests/chat_model_util.h): prefix reuse against fresh sessions,
 * rollback on edits, context policies (error, drop oldest, rotate: the
 * window's logits against a fresh context), stop strings across token
 * boundaries, cancellation, tools and variables, save/load round trips and
 * the refusal of another model, corrupt and truncated files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <unistd.h>

#include "chat/chat_internal.h"
#include "chat_model_util.h"
#include "mlxengine/mlxengine.h"

typedef struct chat_fixture {
    char dir[256], other_dir[256], file[300];
    mlxe_model *model;
    mlxe_tokenizer *tokenizer;
    mlxe_chat_template *chat_template;
} chat_fixture;

static chat_fixture fx;

static int group_setup(void **state) {
    (void)state;
    char base[200];
    test_make_temp_dir(base, sizeof base);
    snprintf(fx.dir, sizeof fx.dir, "%s/model", base);
    snprintf(fx.other_dir, sizeof fx.other_dir, "%s/other", base);
    snprintf(fx.file, sizeof fx.file, "%s/session.bin", base);
    chat_test_write_model(fx.dir, 11, NULL);
    mlxe_error err;
    mlxe_model_options mo;
    mlxe_model_options_init(&mo);
    mo.n_threads = 1;
    if (mlxe_model_load(fx.dir, &mo, &fx.model, &err) != MLXE_OK) fail_msg("%s", err.message);
    if (mlxe_tokenizer_load(fx.dir, &fx.tokenizer, &err) != MLXE_OK) fail_msg("%s", err.message);
    if (mlxe_chat_template_load(fx.dir, &fx.chat_template, &err) != MLXE_OK) fail_msg("%s", err.message);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    mlxe_chat_template_free(fx.chat_template);
    mlxe_tokenizer_free(fx.tokenizer);
    mlxe_model_free(fx.model);
    remove(fx.file);
    chat_test_remove_model(fx.dir);
    char base[256];
    snprintf(base, sizeof base, "%s", fx.dir);
    *strrchr(base, '/') = 0;
    remove(base);
    return 0;
}

static mlxe_session *new_session(int64_t n_ctx, mlxe_context_policy policy) {
    mlxe_session_options o;
    mlxe_session_options_init(&o);
    o.n_ctx = n_ctx;
    o.context_policy = policy;
    o.n_batch = 64;
    o.n_ubatch = 16;
    mlxe_session *s = NULL;
    mlxe_error err;
    if (mlxe_session_create(fx.model, fx.tokenizer, fx.chat_template, &o, &s, &err) != MLXE_OK)
        fail_msg("%s", err.message);
    return s;
}

static void add(mlxe_session *s, mlxe_role role, const char *content) {
    mlxe_message m = {.role = role, .content = content};
    mlxe_error err;
    if (mlxe_session_add_message(s, &m, &err) != MLXE_OK) fail_msg("%s", err.message);
}

/* Letters get a bias so the random model writes ASCII words (and no EOS). */
static mlxe_logit_bias letter_bias[26];

static void reply_options(mlxe_reply_options *o, int64_t max_tokens) {
    mlxe_reply_options_init(o);
    o->max_tokens = max_tokens;
    for (int i = 0; i < 26; i++) letter_bias[i] = (mlxe_logit_bias){.token = 'a' + i, .bias = 6.0f};
    o->sampler.logit_bias = letter_bias;
    o->sampler.n_logit_bias = 26;
}

typedef struct stream {
    char text[8192];
    size_t size;
    int pieces;
    int cancel_after;       /* > 0: request cancel after this many pieces */
    int refuse_after;       /* > 0: return false after this many pieces */
    mlxe_cancel *cancel;
    bool bad_utf8;
} stream;

static bool valid_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        int len = p[i] < 0x80 ? 1 : (p[i] >> 5) == 6 ? 2 : (p[i] >> 4) == 14 ? 3 : (p[i] >> 3) == 30 ? 4 : 0;
        if (!len || i + (size_t)len > n) return false;
        for (int k = 1; k < len; k++)
            if ((p[i + (size_t)k] & 0xC0) != 0x80) return false;
        i += (size_t)len;
    }
    return true;
}

static bool on_text(void *user, const char *text, size_t size) {
    stream *st = user;
    if (!valid_utf8((const unsigned char *)text, size)) st->bad_utf8 = true;
    if (st->size + size < sizeof st->text) {
        memcpy(st->text + st->size, text, size);
        st->size += size;
        st->text[st->size] = 0;
    }
    st->pieces++;
    if (st->cancel_after && st->pieces == st->cancel_after) mlxe_cancel_request(st->cancel);
    return !(st->refuse_after && st->pieces >= st->refuse_after);
}

static char *reply(mlxe_session *s, const mlxe_reply_options *o, mlxe_reply_stats *stats, stream *out) {
    char *text = NULL;
    mlxe_error err;
    stream local = {0};
    if (!out) out = &local;
    if (mlxe_session_reply(s, o, on_text, out, out->cancel, &text, stats, &err) != MLXE_OK)
        fail_msg("reply: %s", err.message);
    assert_false(out->bad_utf8);
    assert_string_equal(out->text, text); /* streamed == returned */
    return text;
}

/* A fresh session's reply to the first n messages of s. */
static char *fresh_reply(const mlxe_session *s, size_t first, size_t n, int64_t max_tokens, mlxe_reply_stats *stats) {
    mlxe_session *fresh = new_session(256, MLXE_CONTEXT_ERROR);
    for (size_t i = first; i < n; i++) {
        mlxe_message m;
        assert_true(mlxe_session_message_at(s, i, &m));
        mlxe_error err;
        assert_int_equal(mlxe_session_add_message(fresh, &m, &err), MLXE_OK);
    }
    mlxe_reply_options o;
    reply_options(&o, max_tokens);
    char *text = reply(fresh, &o, stats, NULL);
    mlxe_session_free(fresh);
    return text;
}

static void test_prefix_reuse_matches_fresh(void **state) {
    (void)state;
    mlxe_session *s = new_session(256, MLXE_CONTEXT_ERROR);
    add(s, MLXE_ROLE_SYSTEM, "You are terse.");
    add(s, MLXE_ROLE_USER, "hello world");
    mlxe_reply_options o;
    reply_options(&o, 12);
    mlxe_reply_stats s1, s2, f2;
    char *r1 = reply(s, &o, &s1, NULL);
    assert_int_equal(s1.cached_prompt_tokens, 0);
    assert_int_equal(s1.generated_tokens, 12);
    assert_string_equal(mlxe_chat_stop_reason_name(s1.stop_reason), "length");
    assert_true(s1.peak_memory_bytes > 0);
    assert_int_equal(mlxe_session_message_count(s), 3);
    add(s, MLXE_ROLE_USER, "the other thing");
    char *r2 = reply(s, &o, &s2, NULL);
    /* The whole first prompt is a prefix of the second: only the new tokens are prefilled. */
    assert_true(s2.cached_prompt_tokens >= s1.prompt_tokens);
    assert_true(s2.prompt_tokens - s2.cached_prompt_tokens < s2.prompt_tokens / 2);
    char *expected = fresh_reply(s, 0, 4, 12, &f2);
    assert_string_equal(r2, expected);
    assert_int_equal(f2.cached_prompt_tokens, 0);
    assert_int_equal(f2.prompt_tokens, s2.prompt_tokens);
    /* Asking again with nothing new reuses all but the last prompt token. */
    mlxe_session_remove_messages(s, 4, 1);
    mlxe_reply_stats s3;
    char *r3 = reply(s, &o, &s3, NULL);
    assert_string_equal(r3, r2);
    assert_int_equal(s3.cached_prompt_tokens, s3.prompt_tokens - 1);
    free(r1);
    free(r2);
    free(r3);
    free(expected);
    mlxe_session_free(s);
}

static void test_edit_rolls_back(void **state) {
    (void)state;
    mlxe_session *s = new_session(256, MLXE_CONTEXT_ERROR);
    add(s, MLXE_ROLE_SYSTEM, "sys");
    add(s, MLXE_ROLE_USER, "first question");
    mlxe_reply_options o;
    reply_options(&o, 6);
    mlxe_reply_stats st, fresh_stats;
    free(reply(s, &o, &st, NULL));
    add(s, MLXE_ROLE_USER, "second question");
    free(reply(s, &o, &st, NULL));
    int64_t cached_before = mlxe_session_cached_tokens(s);
    assert_true(cached_before > 0);
    /* Edit the first user message: only the system part stays cached. */
    mlxe_message edited = {.role = MLXE_ROLE_USER, .content = "first question, edited"};
    mlxe_error err;
    assert_int_equal(mlxe_session_set_message(s, 1, &edited, &err), MLXE_OK);
    mlxe_session_remove_messages(s, 2, 3); /* and drop what came after it */
    assert_int_equal(mlxe_session_message_count(s), 2);
    mlxe_message m;
    assert_true(mlxe_session_message_at(s, 1, &m));
    assert_string_equal(m.content, "first question, edited");
    assert_false(mlxe_session_message_at(s, 2, &m));
    char *r = reply(s, &o, &st, NULL);
    char *expected = fresh_reply(s, 0, 2, 6, &fresh_stats);
    assert_string_equal(r, expected);
    /* "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nfirst question" is the common prefix */
    assert_true(st.cached_prompt_tokens > 4);
    assert_true(st.cached_prompt_tokens < st.prompt_tokens - 3);
    free(r);
    free(expected);
    assert_int_equal(mlxe_session_set_message(s, 9, &edited, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_session_free(s);
}

static void test_policy_error(void **state) {
    (void)state;
    mlxe_session *s = new_session(48, MLXE_CONTEXT_ERROR);
    assert_int_equal(mlxe_session_n_ctx(s), 48);
    add(s, MLXE_ROLE_USER, "this message is far too long for a context of forty-eight tokens, "
                           "since every byte that is not merged is one token");
    mlxe_reply_options o;
    reply_options(&o, 4);
    mlxe_reply_stats st;
    mlxe_error err;
    assert_int_equal(mlxe_session_reply(s, &o, NULL, NULL, NULL, NULL, &st, &err), MLXE_ERR_LIMIT);
    assert_message_contains(err.message, "context holds 48");
    assert_string_equal(mlxe_chat_stop_reason_name(st.stop_reason), "error");
    assert_int_equal(mlxe_session_message_count(s), 1);
    /* A prompt that fits but a reply that fills the context stops with "length". */
    mlxe_session_reset(s);
    assert_int_equal(mlxe_session_message_count(s), 0);
    add(s, MLXE_ROLE_USER, "hi");
    reply_options(&o, -1);
    free(reply(s, &o, &st, NULL));
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_LENGTH);
    assert_int_equal(st.prompt_tokens + st.generated_tokens, 48 + 1);
    mlxe_session_free(s);
}

static void test_policy_drop_oldest(void **state) {
    (void)state;
    mlxe_session *s = new_session(160, MLXE_CONTEXT_DROP_OLDEST);
    add(s, MLXE_ROLE_SYSTEM, "keep me");
    mlxe_reply_options o;
    reply_options(&o, 8);
    mlxe_reply_stats st;
    const char *questions[] = {"one two three four five six", "seven eight nine ten eleven",
                               "twelve thirteen fourteen fifteen", "sixteen seventeen eighteen",
                               "nineteen twenty twenty-one"};
    for (int turn = 0; turn < 5; turn++) {
        add(s, MLXE_ROLE_USER, questions[turn]);
        free(reply(s, &o, &st, NULL));
        assert_true(st.prompt_tokens + 8 <= 160);
    }
    size_t dropped = mlxe_session_dropped_messages(s);
    assert_true(dropped >= 2);
    assert_int_equal((size_t)st.dropped_messages, dropped);
    assert_int_equal(mlxe_session_message_count(s), 11); /* nothing is deleted */
    char *text = NULL;
    size_t size = 0;
    mlxe_error err;
    assert_int_equal(mlxe_session_render(s, &text, &size, &err), MLXE_OK);
    assert_true(strncmp(text, "<|im_start|>system\nkeep me<|im_end|>\n<|im_start|>user\n", 52) == 0);
    assert_null(strstr(text, questions[0]));
    assert_non_null(strstr(text, questions[4]));
    free(text);
    /* The next reply equals a fresh session's over the messages still rendered. */
    add(s, MLXE_ROLE_USER, "last");
    size_t before = mlxe_session_dropped_messages(s);
    char *r = reply(s, &o, &st, NULL);
    if (mlxe_session_dropped_messages(s) == before) {
        mlxe_session *fresh = new_session(256, MLXE_CONTEXT_ERROR);
        mlxe_message m;
        mlxe_session_message_at(s, 0, &m);
        mlxe_session_add_message(fresh, &m, &err);
        for (size_t i = 1 + before; i + 1 < mlxe_session_message_count(s); i++) {
            mlxe_session_message_at(s, i, &m);
            mlxe_session_add_message(fresh, &m, &err);
        }
        mlxe_reply_stats fs;
        char *expected = reply(fresh, &o, &fs, NULL);
        assert_string_equal(r, expected);
        free(expected);
        mlxe_session_free(fresh);
    }
    free(r);
    /* Inserting before the left-out messages starts the range afresh, and so
     * does removing the system message. */
    assert_true(mlxe_session_dropped_messages(s) > 0);
    mlxe_message inserted = {.role = MLXE_ROLE_USER, .content = "inserted"};
    assert_int_equal(mlxe_session_insert_message(s, 1, &inserted, &err), MLXE_OK);
    assert_int_equal(mlxe_session_dropped_messages(s), 0);
    mlxe_message m;
    assert_true(mlxe_session_message_at(s, 1, &m));
    assert_string_equal(m.content, "inserted");
    assert_int_equal(mlxe_session_insert_message(s, 99, &inserted, &err), MLXE_ERR_INVALID_ARGUMENT);
    free(reply(s, &o, &st, NULL));
    assert_true(mlxe_session_dropped_messages(s) > 0);
    mlxe_session_remove_messages(s, 0, 1);
    assert_int_equal(mlxe_session_dropped_messages(s), 0);
    assert_int_equal(mlxe_session_insert_message(s, 0, &inserted, &err), MLXE_OK);
    assert_true(mlxe_session_message_at(s, 0, &m));
    assert_string_equal(m.content, "inserted");
    mlxe_session_free(s);
}

static void test_policy_rotate(void **state) {
    (void)state;
    mlxe_session *s = new_session(64, MLXE_CONTEXT_ROTATE);
    add(s, MLXE_ROLE_USER, "rotate");
    mlxe_reply_options o;
    reply_options(&o, 150);
    o.ignore_eos = true;
    mlxe_reply_stats st;
    free(reply(s, &o, &st, NULL));
    assert_int_equal(st.generated_tokens, 150);
    assert_true(st.rotated_tokens > 0);
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_LENGTH);
    /* The cache holds the first tokens and the newest ones; its last logits
     * are what a fresh context computes on exactly those tokens. */
    assert_true(s->gap_size > 0);
    assert_int_equal(s->gap_start, 4);
    int64_t n = chat_cache_length(s);
    assert_true(n <= 64);
    int32_t window[64];
    memcpy(window, s->history.ids, (size_t)s->gap_start * sizeof(int32_t));
    memcpy(window + s->gap_start, s->history.ids + s->gap_start + s->gap_size,
           (size_t)(n - s->gap_start) * sizeof(int32_t));
    assert_true(s->logits_valid);
    const float *got = mlxe_context_logits(s->ctx, s->logits_row);
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = 64;
    mlxe_context *ctx = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_context_create(fx.model, &co, &ctx, &err), MLXE_OK);
    int32_t positions[64], seqs[64] = {0};
    for (int i = 0; i < 64; i++) positions[i] = i;
    mlxe_batch batch = {.n_tokens = n, .tokens = window, .positions = positions, .seq_ids = seqs};
    assert_int_equal(mlxe_context_decode(ctx, &batch, &err), MLXE_OK);
    const float *want = mlxe_context_logits(ctx, n - 1);
    for (int64_t v = 0; v < mlxe_model_vocab_size(fx.model); v++) assert_true(fabsf(got[v] - want[v]) < 1e-3f);
    mlxe_context_free(ctx);
    /* Saved with its gap and loaded into another session, the window goes
     * on the same way as in the original. */
    assert_int_equal(mlxe_session_save(s, fx.file, &err), MLXE_OK);
    mlxe_session *copy = new_session(64, MLXE_CONTEXT_ROTATE);
    assert_int_equal(mlxe_session_load(copy, fx.file, &err), MLXE_OK);
    assert_int_equal(copy->gap_size, s->gap_size);
    assert_int_equal(mlxe_session_cached_tokens(copy), n);
    /* A next turn continues after the window (no error, the prefix reused). */
    add(s, MLXE_ROLE_USER, "more");
    add(copy, MLXE_ROLE_USER, "more");
    reply_options(&o, 4);
    mlxe_reply_stats copy_stats;
    char *original = reply(s, &o, &st, NULL);
    char *loaded = reply(copy, &o, &copy_stats, NULL);
    assert_true(st.cached_prompt_tokens > 0);
    assert_int_equal(copy_stats.cached_prompt_tokens, st.cached_prompt_tokens);
    assert_string_equal(loaded, original);
    free(original);
    free(loaded);
    mlxe_session_free(copy);
    mlxe_session_free(s);
}

static void test_stop_strings_across_tokens(void **state) {
    (void)state;
    mlxe_session *s = new_session(256, MLXE_CONTEXT_ERROR);
    add(s, MLXE_ROLE_USER, "say something");
    mlxe_reply_options o;
    reply_options(&o, 24);
    o.add_to_history = false;
    mlxe_reply_stats st;
    stream free_run = {0};
    char *full = reply(s, &o, &st, &free_run);
    assert_true(strlen(full) >= 6);
    assert_int_equal(mlxe_session_message_count(s), 1); /* add_to_history false */
    /* A stop string made of the end of one piece and the start of the next. */
    stream pieces = {0};
    free(reply(s, &o, &st, &pieces));
    char stop[8];
    snprintf(stop, sizeof stop, "%c%c", full[2], full[3]);
    const char *stops[] = {"never-there", stop};
    o.stop = stops;
    o.n_stop = 2;
    stream out = {0};
    char *cut = reply(s, &o, &st, &out);
    size_t at = (size_t)(strstr(full, stop) - full);
    assert_int_equal(strlen(cut), at);
    assert_true(strncmp(cut, full, at) == 0);
    assert_null(strstr(out.text, stop));
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_STOP);
    assert_int_equal(st.stop_string_index, 1);
    assert_int_equal(st.stop_token, -1);
    free(cut);
    /* A stop string longer than one token, spanning three. */
    snprintf(stop, sizeof stop, "%.4s", full + 1);
    stops[1] = stop;
    stream out2 = {0};
    cut = reply(s, &o, &st, &out2);
    assert_int_equal(strlen(cut), (size_t)(strstr(full, stop) - full));
    assert_null(strstr(out2.text, stop));
    free(cut);
    /* An extra eos id: the first generated token ends the reply, unstreamed. */
    o.n_stop = 0;
    int32_t first = (int32_t)(unsigned char)full[0];
    o.extra_eos_ids = &first;
    o.n_extra_eos_ids = 1;
    stream out3 = {0};
    cut = reply(s, &o, &st, &out3);
    assert_int_equal(st.generated_tokens, 1);
    assert_int_equal(st.stop_token, first);
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_STOP);
    assert_string_equal(cut, "");
    free(cut);
    /* Bad stop options. */
    const char *empty[] = {""};
    o.stop = empty;
    o.n_stop = 1;
    mlxe_error err;
    assert_int_equal(mlxe_session_reply(s, &o, NULL, NULL, NULL, NULL, &st, &err), MLXE_ERR_INVALID_ARGUMENT);
    free(full);
    mlxe_session_free(s);
}

static void test_stop_matcher_unit(void **state) {
    (void)state;
    const char *stops[] = {"END", "ENX"};
    chat_stop_matcher m;
    chat_stop_matcher_init(&m, stops, 2);
    const char *out;
    size_t n;
    assert_int_equal(chat_stop_matcher_feed(&m, "abcE", 4, &out, &n), -1);
    assert_int_equal(n, 3);
    assert_true(memcmp(out, "abc", 3) == 0);
    assert_int_equal(chat_stop_matcher_feed(&m, "N", 1, &out, &n), -1);
    assert_int_equal(n, 0); /* "EN" may still become END */
    assert_int_equal(chat_stop_matcher_feed(&m, "Z", 1, &out, &n), -1);
    assert_int_equal(n, 3);
    assert_true(memcmp(out, "ENZ", 3) == 0);
    assert_int_equal(chat_stop_matcher_feed(&m, "xxEND tail", 10, &out, &n), 0);
    assert_int_equal(n, 2);
    chat_stop_matcher_free(&m);
    chat_stop_matcher_init(&m, stops, 2);
    assert_int_equal(chat_stop_matcher_feed(&m, "E", 1, &out, &n), -1);
    assert_int_equal(n, 0);
    chat_stop_matcher_finish(&m, &out, &n);
    assert_int_equal(n, 1);
    chat_stop_matcher_free(&m);
}

static void test_cancellation(void **state) {
    (void)state;
    mlxe_session *s = new_session(256, MLXE_CONTEXT_ERROR);
    add(s, MLXE_ROLE_USER, "go on");
    mlxe_reply_options o;
    reply_options(&o, 40);
    mlxe_reply_stats st;
    stream out = {.cancel = mlxe_cancel_create(), .cancel_after = 3};
    char *partial = reply(s, &o, &st, &out);
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_CANCELLED);
    assert_true(st.generated_tokens >= 3 && st.generated_tokens < 40);
    assert_int_equal(mlxe_session_message_count(s), 2); /* the partial reply is kept */
    mlxe_message m;
    mlxe_session_message_at(s, 1, &m);
    assert_string_equal(m.content, partial);
    free(partial);
    /* Cancelled before the prompt: no reply. */
    mlxe_session_remove_messages(s, 1, 1);
    stream pre = {.cancel = out.cancel};
    char *none = reply(s, &o, &st, &pre);
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_CANCELLED);
    assert_int_equal(st.generated_tokens, 0);
    assert_int_equal(mlxe_session_message_count(s), 1);
    free(none);
    /* The callback refusing more text also cancels. */
    mlxe_cancel_reset(out.cancel);
    stream refuse = {.refuse_after = 2};
    free(reply(s, &o, &st, &refuse));
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_CANCELLED);
    assert_int_equal(refuse.pieces, 2);
    mlxe_cancel_free(out.cancel);
    mlxe_session_free(s);
}

static void test_tools_variables_render(void **state) {
    (void)state;
    mlxe_session *s = new_session(512, MLXE_CONTEXT_ERROR);
    mlxe_error err;
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
                        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}]";
    assert_int_equal(mlxe_session_set_tools(s, tools, &err), MLXE_OK);
    assert_int_equal(mlxe_session_set_tools(s, "{\"not\": \"a list\"}", &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "JSON array");
    add(s, MLXE_ROLE_USER, "weather in Paris?");
    mlxe_message call = {.role = MLXE_ROLE_ASSISTANT, .content = "",
                         .tool_calls_json = "[{\"type\":\"function\",\"id\":\"c1\",\"function\":"
                                            "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]"};
    assert_int_equal(mlxe_session_add_message(s, &call, &err), MLXE_OK);
    mlxe_message bad = call;
    bad.tool_calls_json = "not json";
    assert_int_equal(mlxe_session_add_message(s, &bad, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_message bad_role = {.role = (mlxe_role)42, .content = "x"};
    assert_int_equal(mlxe_session_add_message(s, &bad_role, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_message result = {.role = MLXE_ROLE_TOOL, .content = "18C", .tool_call_id = "c1", .name = "get_weather"};
    assert_int_equal(mlxe_session_add_message(s, &result, &err), MLXE_OK);
    assert_int_equal(mlxe_session_set_variable(s, "enable_thinking", "false", &err), MLXE_OK);
    assert_int_equal(mlxe_session_set_variable(s, "enable_thinking", "not json", &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_session_set_variable(s, "messages", "[]", &err), MLXE_ERR_INVALID_ARGUMENT);
    char *text = NULL;
    size_t size = 0;
    assert_int_equal(mlxe_session_render(s, &text, &size, &err), MLXE_OK);
    assert_int_equal(strlen(text), size);
    assert_non_null(strstr(text, "# Tools\n[{\"type\": \"function\""));
    assert_non_null(strstr(text, "<call>get_weather</call><|im_end|>"));
    assert_non_null(strstr(text, "<|im_start|>tool\n[c1 get_weather] 18C<|im_end|>"));
    const char *tail = "<|im_start|>assistant\n<think>\n\n</think>\n\n";
    assert_string_equal(text + size - strlen(tail), tail);
    free(text);
    /* Removing the variable and the tools changes the render. */
    assert_int_equal(mlxe_session_set_variable(s, "enable_thinking", NULL, &err), MLXE_OK);
    assert_int_equal(mlxe_session_set_tools(s, NULL, &err), MLXE_OK);
    assert_int_equal(mlxe_session_render(s, &text, &size, &err), MLXE_OK);
    assert_null(strstr(text, "# Tools"));
    assert_null(strstr(text, "<think>"));
    free(text);
    /* A reply over the tool result works. */
    mlxe_reply_options o;
    reply_options(&o, 3);
    mlxe_reply_stats st;
    free(reply(s, &o, &st, NULL));
    assert_int_equal(st.generated_tokens, 3);
    mlxe_session_free(s);
}

static void test_template_error(void **state) {
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s-raise", fx.dir);
    chat_test_write_model(dir, 11, "{% if messages[0]['role'] != 'system' %}{{ raise_exception('a system message is required') }}{% endif %}ok");
    mlxe_chat_template *tpl = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_chat_template_load(dir, &tpl, &err), MLXE_OK);
    mlxe_session *s = NULL;
    assert_int_equal(mlxe_session_create(fx.model, fx.tokenizer, tpl, NULL, &s, &err), MLXE_OK);
    add(s, MLXE_ROLE_USER, "hi");
    mlxe_reply_stats st;
    assert_int_equal(mlxe_session_reply(s, NULL, NULL, NULL, NULL, NULL, &st, &err), MLXE_ERR_TEMPLATE);
    assert_message_contains(err.message, "a system message is required");
    assert_int_equal(st.stop_reason, MLXE_CHAT_STOP_ERROR);
    mlxe_session_free(s);
    mlxe_chat_template_free(tpl);
    chat_test_remove_model(dir);
    /* Bad arguments. */
    assert_int_equal(mlxe_session_create(NULL, fx.tokenizer, fx.chat_template, NULL, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_session_options so;
    mlxe_session_options_init(&so);
    so.context_policy = (mlxe_context_policy)9;
    assert_int_equal(mlxe_session_create(fx.model, fx.tokenizer, fx.chat_template, &so, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_null(s);
    mlxe_session_free(NULL);
    assert_string_equal(mlxe_role_name(MLXE_ROLE_TOOL), "tool");
    assert_null(mlxe_role_name((mlxe_role)7));
}

static void test_save_load(void **state) {
    (void)state;
    mlxe_session *a = new_session(256, MLXE_CONTEXT_ERROR);
    mlxe_error err;
    add(a, MLXE_ROLE_SYSTEM, "sys");
    add(a, MLXE_ROLE_USER, "remember this");
    assert_int_equal(mlxe_session_set_variable(a, "temperature_hint", "1.0", &err), MLXE_OK);
    assert_int_equal(mlxe_session_set_tools(a, "[]", &err), MLXE_OK);
    mlxe_reply_options o;
    reply_options(&o, 8);
    mlxe_reply_stats st;
    free(reply(a, &o, &st, NULL));
    assert_int_equal(mlxe_session_save(a, fx.file, &err), MLXE_OK);
    int64_t cached = mlxe_session_cached_tokens(a);
    add(a, MLXE_ROLE_USER, "and now?");
    char *want = reply(a, &o, &st, NULL);

    mlxe_session *b = new_session(256, MLXE_CONTEXT_ERROR);
    add(b, MLXE_ROLE_USER, "something else entirely");
    free(reply(b, &o, &st, NULL));
    assert_int_equal(mlxe_session_load(b, fx.file, &err), MLXE_OK);
    assert_int_equal(mlxe_session_message_count(b), 3);
    assert_int_equal(mlxe_session_cached_tokens(b), cached);
    mlxe_message m;
    mlxe_session_message_at(b, 1, &m);
    assert_string_equal(m.content, "remember this");
    add(b, MLXE_ROLE_USER, "and now?");
    mlxe_reply_stats bs;
    char *got = reply(b, &o, &bs, NULL);
    assert_string_equal(got, want);
    assert_true(bs.cached_prompt_tokens >= cached - 8); /* the loaded cache was used */
    assert_true(bs.cached_prompt_tokens > 0);
    free(got);
    free(want);

    /* A smaller context cannot take the cache. */
    mlxe_session *small = new_session(8, MLXE_CONTEXT_ERROR);
    assert_int_equal(mlxe_session_load(small, fx.file, &err), MLXE_ERR_LIMIT);
    mlxe_session_free(small);

    /* Another model is refused, naming both. */
    chat_test_write_model(fx.other_dir, 99, NULL);
    mlxe_model *other = NULL;
    assert_int_equal(mlxe_model_load(fx.other_dir, NULL, &other, &err), MLXE_OK);
    mlxe_session *c = NULL;
    assert_int_equal(mlxe_session_create(other, fx.tokenizer, fx.chat_template, NULL, &c, &err), MLXE_OK);
    add(c, MLXE_ROLE_USER, "mine");
    assert_int_equal(mlxe_session_load(c, fx.file, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "another model");
    assert_message_contains(err.message, "llama: 2 layers");
    assert_int_equal(mlxe_session_message_count(c), 1);
    mlxe_session_free(c);
    mlxe_model_free(other);
    chat_test_remove_model(fx.other_dir);

    /* Corrupt, truncated and foreign files; the session stays as it was. */
    FILE *f = fopen(fx.file, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)size);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    char damaged[320];
    snprintf(damaged, sizeof damaged, "%s.bad", fx.file);
    bytes[size / 2] ^= 0x40;
    test_write_file(damaged, bytes, (size_t)size);
    size_t count = mlxe_session_message_count(b);
    assert_int_equal(mlxe_session_load(b, damaged, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "corrupt");
    bytes[size / 2] ^= 0x40;
    test_write_file(damaged, bytes, (size_t)size - 100);
    assert_int_equal(mlxe_session_load(b, damaged, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "truncated");
    test_write_file(damaged, "hello, not a session file at all, just text that is long enough......", 70);
    assert_int_equal(mlxe_session_load(b, damaged, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "not an mlxengine session file");
    test_write_file(damaged, bytes, 20);
    assert_int_equal(mlxe_session_load(b, damaged, &err), MLXE_ERR_FORMAT);
    assert_int_equal(mlxe_session_load(b, "/nonexistent/session.bin", &err), MLXE_ERR_NOT_FOUND);
    assert_int_equal(mlxe_session_message_count(b), count);
    assert_int_equal(mlxe_session_save(b, "/nonexistent/dir/x.bin", &err), MLXE_ERR_IO);
    remove(damaged);
    free(bytes);
    mlxe_session_free(a);
    mlxe_session_free(b);
}

static void test_context_state_api(void **state) {
    (void)state;
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = 16;
    mlxe_context *ctx = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_context_create(fx.model, &co, &ctx, &err), MLXE_OK);
    int32_t tokens[5] = {104, 105, 32, 119, 111}, positions[5] = {0, 1, 2, 3, 4}, seqs[5] = {0};
    mlxe_batch batch = {.n_tokens = 5, .tokens = tokens, .positions = positions, .seq_ids = seqs};
    assert_int_equal(mlxe_context_decode(ctx, &batch, &err), MLXE_OK);
    size_t bytes = mlxe_context_seq_state_bytes(ctx, 5);
    /* 2 layers x (K, V) x 2 KV heads x 5 tokens x 8 floats */
    assert_int_equal(bytes, 2 * 2 * 2 * 5 * 8 * sizeof(float));
    float *saved = malloc(bytes);
    assert_int_equal(mlxe_context_seq_state_read(ctx, 0, 6, saved, bytes, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_context_seq_state_read(ctx, 0, 5, saved, bytes - 4, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_context_seq_state_read(ctx, 0, 5, saved, bytes, &err), MLXE_OK);
    float *logits = malloc((size_t)mlxe_model_vocab_size(fx.model) * sizeof(float));
    int32_t next = 114, pos = 5, seq = 0;
    mlxe_batch one = {.n_tokens = 1, .tokens = &next, .positions = &pos, .seq_ids = &seq};
    assert_int_equal(mlxe_context_decode(ctx, &one, &err), MLXE_OK);
    memcpy(logits, mlxe_context_logits(ctx, 0), (size_t)mlxe_model_vocab_size(fx.model) * sizeof(float));
    mlxe_context_seq_clear(ctx, 0);
    assert_int_equal(mlxe_context_seq_state_write(ctx, 0, 17, saved, bytes, &err), MLXE_ERR_LIMIT);
    assert_int_equal(mlxe_context_seq_state_write(ctx, 0, 5, saved, bytes + 4, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 0);
    assert_int_equal(mlxe_context_seq_state_write(ctx, 0, 5, saved, bytes, &err), MLXE_OK);
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 5);
    assert_int_equal(mlxe_context_decode(ctx, &one, &err), MLXE_OK);
    assert_memory_equal(mlxe_context_logits(ctx, 0), logits, (size_t)mlxe_model_vocab_size(fx.model) * sizeof(float));
    free(logits);
    free(saved);
    mlxe_context_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_matcher_unit),
        cmocka_unit_test(test_context_state_api),
        cmocka_unit_test(test_prefix_reuse_matches_fresh),
        cmocka_unit_test(test_edit_rolls_back),
        cmocka_unit_test(test_policy_error),
        cmocka_unit_test(test_policy_drop_oldest),
        cmocka_unit_test(test_policy_rotate),
        cmocka_unit_test(test_stop_strings_across_tokens),
        cmocka_unit_test(test_cancellation),
        cmocka_unit_test(test_tools_variables_render),
        cmocka_unit_test(test_template_error),
        cmocka_unit_test(test_save_load),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
