/* tests/unit/test_engine_context.c — the context and the forward pass on
 * tiny random models of each family (written by test_model_util.h):
 * prefill in one pass == in chunks == token by token, two sequences in one
 * batch == each alone, contexts sharing a model on two threads, batch
 * checks (bad ids, positions, overflow → MLXE_ERR_LIMIT) and the
 * generation loop's stops. Reference logits are checked in
 * test_models_fixtures.c. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>

#include "engine/engine_internal.h"
#include "test_model_util.h"
#include "mlxengine/mlxengine.h"

#define PROMPT_LEN 21

typedef struct family_case {
    const char *model_type;
    int64_t sliding_window;
    bool tied;
} family_case;

static const family_case cases[] = {
    {"llama", 0, false}, {"llama", 0, true}, {"mistral", 5, false}, {"qwen2", 0, true}, {"qwen3", 0, false},
};

static mlxe_model *load_case(const family_case *fc, char *dir, size_t dir_size) {
    test_model_spec spec;
    test_model_spec_init(&spec, fc->model_type);
    spec.sliding_window = fc->sliding_window;
    spec.tied = fc->tied;
    test_make_temp_dir(dir, dir_size);
    test_write_model(dir, &spec, 1234);
    mlxe_model *model = NULL;
    mlxe_error err;
    mlxe_model_options options;
    mlxe_model_options_init(&options);
    options.n_threads = 2;
    if (mlxe_model_load(dir, &options, &model, &err) != MLXE_OK) fail_msg("load %s: %s", fc->model_type, err.message);
    return model;
}

static mlxe_context *make_context(mlxe_model *model, int32_t n_seq, int64_t n_ctx, int64_t n_ubatch) {
    mlxe_context_options o;
    mlxe_context_options_init(&o);
    o.n_seq = n_seq;
    o.n_ctx = n_ctx;
    o.n_batch = 64;
    o.n_ubatch = n_ubatch;
    mlxe_context *ctx = NULL;
    mlxe_error err;
    if (mlxe_context_create(model, &o, &ctx, &err) != MLXE_OK) fail_msg("context: %s", err.message);
    return ctx;
}

static void make_prompt(int32_t *ids, int n, int64_t vocab, uint32_t seed) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)((seed * 2654435761u + (uint32_t)i * 40503u) % (uint32_t)vocab);
}

/* Decodes prompt into seq of ctx with every row asking for logits, in
 * batches of batch_rows; stores logits [n][vocab]. */
static void run_prompt(mlxe_context *ctx, int32_t seq, const int32_t *prompt, int n, int batch_rows, float *out) {
    int64_t vocab = mlxe_model_vocab_size(mlxe_context_model(ctx));
    int64_t start = mlxe_context_seq_length(ctx, seq);
    for (int first = 0; first < n; first += batch_rows) {
        int rows = n - first < batch_rows ? n - first : batch_rows;
        int32_t positions[64], seqs[64];
        int8_t want[64];
        for (int r = 0; r < rows; r++) {
            positions[r] = (int32_t)(start + first + r);
            seqs[r] = seq;
            want[r] = 1;
        }
        mlxe_batch b = {.n_tokens = rows, .tokens = prompt + first, .positions = positions, .seq_ids = seqs,
                        .logits = want};
        mlxe_error err;
        if (mlxe_context_decode(ctx, &b, &err) != MLXE_OK) fail_msg("decode: %s", err.message);
        for (int r = 0; r < rows; r++) {
            const float *logits = mlxe_context_logits(ctx, r);
            assert_non_null(logits);
            memcpy(out + (size_t)(first + r) * vocab, logits, (size_t)vocab * sizeof(float));
        }
    }
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    }
    return worst;
}

static void test_chunking_and_batching_agree(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char dir[64];
        mlxe_model *model = load_case(&cases[c], dir, sizeof dir);
        int64_t vocab = mlxe_model_vocab_size(model);
        size_t n_logits = (size_t)PROMPT_LEN * (size_t)vocab;
        float *one = malloc(n_logits * sizeof(float)), *chunked = malloc(n_logits * sizeof(float));
        float *stepwise = malloc(n_logits * sizeof(float)), *mixed = malloc(2 * n_logits * sizeof(float));
        float *other = malloc(n_logits * sizeof(float));
        int32_t prompt[PROMPT_LEN], prompt_b[PROMPT_LEN];
        make_prompt(prompt, PROMPT_LEN, vocab, 7);
        make_prompt(prompt_b, PROMPT_LEN, vocab, 11);

        /* one forward pass */
        mlxe_context *ctx = make_context(model, 1, 64, 64);
        run_prompt(ctx, 0, prompt, PROMPT_LEN, PROMPT_LEN, one);
        assert_int_equal(mlxe_context_seq_length(ctx, 0), PROMPT_LEN);
        mlxe_context_free(ctx);
        /* one decode call, split into forward passes of 4 rows */
        ctx = make_context(model, 1, 64, 4);
        run_prompt(ctx, 0, prompt, PROMPT_LEN, PROMPT_LEN, chunked);
        /* token by token */
        mlxe_context_seq_clear(ctx, 0);
        assert_int_equal(mlxe_context_seq_length(ctx, 0), 0);
        run_prompt(ctx, 0, prompt, PROMPT_LEN, 1, stepwise);
        mlxe_context_free(ctx);
        double d_chunk = max_abs_diff(one, chunked, n_logits), d_step = max_abs_diff(one, stepwise, n_logits);
        if (d_chunk > 1e-5 || d_step > 1e-5)
            fail_msg("%s: chunked differs by %g, token-by-token by %g", cases[c].model_type, d_chunk, d_step);

        /* two sequences interleaved in one batch == each alone */
        ctx = make_context(model, 2, 64, 64);
        run_prompt(ctx, 0, prompt_b, PROMPT_LEN, PROMPT_LEN, other);
        mlxe_context_seq_clear(ctx, 0);
        int32_t tokens[2 * PROMPT_LEN], positions[2 * PROMPT_LEN], seqs[2 * PROMPT_LEN];
        for (int i = 0; i < PROMPT_LEN; i++) {
            tokens[2 * i] = prompt[i];
            tokens[2 * i + 1] = prompt_b[i];
            positions[2 * i] = positions[2 * i + 1] = i;
            seqs[2 * i] = 0;
            seqs[2 * i + 1] = 1;
        }
        int8_t want[2 * PROMPT_LEN];
        memset(want, 1, sizeof want);
        mlxe_batch b = {.n_tokens = 2 * PROMPT_LEN, .tokens = tokens, .positions = positions, .seq_ids = seqs,
                        .logits = want};
        mlxe_error err;
        assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
        double d_a = 0, d_b = 0;
        for (int i = 0; i < PROMPT_LEN; i++) {
            d_a = fmax(d_a, max_abs_diff(mlxe_context_logits(ctx, 2 * i), one + (size_t)i * vocab, (size_t)vocab));
            d_b = fmax(d_b, max_abs_diff(mlxe_context_logits(ctx, 2 * i + 1), other + (size_t)i * vocab, (size_t)vocab));
        }
        if (d_a > 1e-5 || d_b > 1e-5)
            fail_msg("%s: batched sequences differ from alone by %g / %g", cases[c].model_type, d_a, d_b);
        /* a row that did not ask has no logits */
        want[0] = 0;
        mlxe_context_seq_clear(ctx, 0);
        mlxe_context_seq_clear(ctx, 1);
        assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
        assert_null(mlxe_context_logits(ctx, 0));
        assert_null(mlxe_context_logits(ctx, 2 * PROMPT_LEN));
        assert_non_null(mlxe_context_logits(ctx, 1));
        /* truncation: re-decoding the tail gives the same logits */
        mlxe_context_seq_truncate(ctx, 0, 10);
        assert_int_equal(mlxe_context_seq_length(ctx, 0), 10);
        float *tail = malloc((size_t)(PROMPT_LEN - 10) * (size_t)vocab * sizeof(float));
        run_prompt(ctx, 0, prompt + 10, PROMPT_LEN - 10, 3, tail);
        assert_true(max_abs_diff(tail, one + (size_t)10 * vocab, (size_t)(PROMPT_LEN - 10) * (size_t)vocab) <= 1e-5);
        free(tail);
        mlxe_context_free(ctx);
        free(one);
        free(chunked);
        free(stepwise);
        free(mixed);
        free(other);
        mlxe_model_free(model);
        test_remove_model(dir);
    }
}

typedef struct thread_job {
    mlxe_model *model;
    float *logits;
} thread_job;

static void *thread_run(void *arg) {
    thread_job *job = arg;
    mlxe_context *ctx = make_context(job->model, 1, 64, 8);
    int32_t prompt[PROMPT_LEN];
    make_prompt(prompt, PROMPT_LEN, mlxe_model_vocab_size(job->model), 3);
    for (int repeat = 0; repeat < 3; repeat++) {
        mlxe_context_seq_clear(ctx, 0);
        run_prompt(ctx, 0, prompt, PROMPT_LEN, 5, job->logits);
    }
    mlxe_context_free(ctx);
    return NULL;
}

static void test_model_shared_by_threads(void **state) {
    (void)state;
    char dir[64];
    mlxe_model *model = load_case(&cases[0], dir, sizeof dir);
    size_t n = (size_t)PROMPT_LEN * (size_t)mlxe_model_vocab_size(model);
    thread_job jobs[2] = {{model, malloc(n * sizeof(float))}, {model, malloc(n * sizeof(float))}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&threads[i], NULL, thread_run, &jobs[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    assert_memory_equal(jobs[0].logits, jobs[1].logits, n * sizeof(float));
    free(jobs[0].logits);
    free(jobs[1].logits);
    mlxe_model_free(model);
    test_remove_model(dir);
}

static void test_bad_batches(void **state) {
    (void)state;
    char dir[64];
    mlxe_model *model = load_case(&cases[0], dir, sizeof dir);
    mlxe_context *ctx = make_context(model, 2, 8, 4);
    assert_int_equal(mlxe_context_n_ctx(ctx), 8);
    assert_int_equal(mlxe_context_n_seq(ctx), 2);
    assert_int_equal(mlxe_context_n_ubatch(ctx), 4);
    assert_int_equal(mlxe_context_n_batch(ctx), 64);
    assert_true(mlxe_context_memory_bytes(ctx) > 0);
    mlxe_error err;
    int32_t tokens[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, positions[10], seqs[10] = {0};
    for (int i = 0; i < 10; i++) positions[i] = i;
    mlxe_batch b = {.n_tokens = 3, .tokens = tokens, .positions = positions, .seq_ids = seqs};

    tokens[1] = 64; /* == vocab */
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "token id 64");
    tokens[1] = -1;
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_INVALID_ARGUMENT);
    tokens[1] = 2;
    seqs[2] = 2;
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "sequence id 2");
    seqs[2] = 0;
    positions[0] = 1; /* must start at the sequence's length 0 */
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "position");
    positions[0] = 0;
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 0); /* nothing changed */
    b.n_tokens = 0;
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_INVALID_ARGUMENT);
    b.n_tokens = 65; /* > n_batch */
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_context_decode(ctx, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);

    /* n_ctx 8: 9 tokens overflow */
    b.n_tokens = 9;
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_LIMIT);
    assert_message_contains(err.message, "n_ctx");
    b.n_tokens = 8;
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
    b.n_tokens = 1;
    positions[0] = 8;
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_ERR_LIMIT);
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 8);

    /* bad options */
    mlxe_context_options o;
    mlxe_context_options_init(&o);
    mlxe_context *bad = NULL;
    o.n_seq = 0;
    assert_int_equal(mlxe_context_create(model, &o, &bad, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_context_options_init(&o);
    o.n_ubatch = o.n_batch + 1;
    assert_int_equal(mlxe_context_create(model, &o, &bad, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_null(bad);
    /* defaults: the model's context length (256 here) */
    assert_int_equal(mlxe_context_create(model, NULL, &bad, &err), MLXE_OK);
    assert_int_equal(mlxe_context_n_ctx(bad), 256);
    mlxe_context_free(bad);
    mlxe_context_free(NULL);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    test_remove_model(dir);
}

typedef struct collect {
    int32_t tokens[64];
    int n;
    int stop_after;
    mlxe_cancel *cancel_after;
} collect;

static bool collect_token(void *user, int32_t token) {
    collect *c = user;
    c->tokens[c->n++] = token;
    if (c->cancel_after && c->n == 2) mlxe_cancel_request(c->cancel_after);
    return c->stop_after == 0 || c->n < c->stop_after;
}

static void test_generate_loop(void **state) {
    (void)state;
    char dir[64];
    mlxe_model *model = load_case(&cases[4], dir, sizeof dir);
    int64_t vocab = mlxe_model_vocab_size(model);
    mlxe_context *ctx = make_context(model, 1, 40, 8);
    int32_t prompt[PROMPT_LEN];
    make_prompt(prompt, PROMPT_LEN, vocab, 5);

    /* greedy generation == argmax of our own logits, step by step */
    int32_t expected[12];
    float *logits = malloc((size_t)(PROMPT_LEN + 12) * (size_t)vocab * sizeof(float));
    int32_t sequence[PROMPT_LEN + 12];
    memcpy(sequence, prompt, sizeof prompt);
    run_prompt(ctx, 0, prompt, PROMPT_LEN, 8, logits);
    for (int i = 0; i < 12; i++) {
        const float *last = logits + (size_t)(PROMPT_LEN - 1 + i) * vocab;
        int best = 0;
        for (int v = 1; v < vocab; v++)
            if (last[v] > last[best]) best = v;
        expected[i] = best;
        sequence[PROMPT_LEN + i] = best;
        run_prompt(ctx, 0, &sequence[PROMPT_LEN + i], 1, 1, logits + (size_t)(PROMPT_LEN + i) * vocab);
    }
    mlxe_generate_options o;
    mlxe_generate_options_init(&o);
    o.max_tokens = 12;
    o.ignore_eos = true;
    collect got = {0};
    mlxe_generate_stats stats;
    mlxe_error err;
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &got, NULL, &stats, &err), MLXE_OK);
    assert_int_equal(got.n, 12);
    assert_memory_equal(got.tokens, expected, sizeof expected);
    assert_int_equal(stats.stop_reason, MLXE_STOP_MAX_TOKENS);
    assert_int_equal(stats.n_prompt_tokens, PROMPT_LEN);
    assert_int_equal(stats.n_generated_tokens, 12);
    assert_true(stats.prefill_tokens_per_second > 0 && stats.decode_tokens_per_second > 0);
    assert_string_equal(mlxe_stop_reason_name(stats.stop_reason), "max_tokens");
    /* the same with a prompt spread over several decode calls (n_batch 8) */
    {
        mlxe_context_options small;
        mlxe_context_options_init(&small);
        small.n_ctx = 40;
        small.n_batch = 8;
        small.n_ubatch = 3;
        mlxe_context *split = NULL;
        assert_int_equal(mlxe_context_create(model, &small, &split, &err), MLXE_OK);
        collect again = {0};
        assert_int_equal(mlxe_generate(split, prompt, PROMPT_LEN, &o, collect_token, &again, NULL, NULL, &err), MLXE_OK);
        assert_int_equal(again.n, 12);
        assert_memory_equal(again.tokens, expected, sizeof expected);
        mlxe_context_free(split);
    }

    /* an EOS id stops (and is reported) */
    o.ignore_eos = false;
    o.eos_ids = &expected[3];
    o.n_eos_ids = 1;
    memset(&got, 0, sizeof got);
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &got, NULL, &stats, &err), MLXE_OK);
    assert_int_equal(stats.stop_reason, MLXE_STOP_EOS);
    assert_int_equal(got.tokens[got.n - 1], expected[3]);
    assert_true(got.n <= 4);
    o.eos_ids = NULL;
    o.n_eos_ids = 0;
    o.ignore_eos = true;

    /* the callback stops */
    memset(&got, 0, sizeof got);
    got.stop_after = 3;
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &got, NULL, &stats, &err), MLXE_OK);
    assert_int_equal(stats.stop_reason, MLXE_STOP_CALLBACK);
    assert_int_equal(got.n, 3);

    /* cancellation */
    mlxe_cancel *cancel = mlxe_cancel_create();
    memset(&got, 0, sizeof got);
    got.cancel_after = cancel;
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &got, cancel, &stats, &err),
                     MLXE_ERR_CANCELLED);
    assert_int_equal(stats.stop_reason, MLXE_STOP_CANCELLED);
    assert_int_equal(got.n, 2);
    mlxe_cancel_free(cancel);

    /* a full context stops generation; a prompt too long is MLXE_ERR_LIMIT */
    o.max_tokens = 64;
    memset(&got, 0, sizeof got);
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &got, NULL, &stats, &err), MLXE_OK);
    assert_int_equal(stats.stop_reason, MLXE_STOP_CONTEXT_FULL);
    assert_int_equal(got.n, 40 - PROMPT_LEN + 1);
    int32_t long_prompt[41] = {0};
    assert_int_equal(mlxe_generate(ctx, long_prompt, 41, &o, NULL, NULL, NULL, &stats, &err), MLXE_ERR_LIMIT);

    /* sampling with a seed is reproducible */
    o.max_tokens = 8;
    o.sampler.temperature = 1.0f;
    o.sampler.seed = 99;
    collect first = {0}, second = {0};
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &first, NULL, NULL, &err), MLXE_OK);
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, collect_token, &second, NULL, &stats, &err), MLXE_OK);
    assert_int_equal(first.n, 8);
    assert_memory_equal(first.tokens, second.tokens, sizeof first.tokens);
    assert_true(stats.seed == 99);
    /* bad arguments */
    prompt[0] = (int32_t)vocab;
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, NULL, NULL, NULL, &stats, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_generate(ctx, prompt, 0, &o, NULL, NULL, NULL, &stats, &err), MLXE_ERR_INVALID_ARGUMENT);
    o.sampler.top_p = 2.0f;
    prompt[0] = 1;
    assert_int_equal(mlxe_generate(ctx, prompt, PROMPT_LEN, &o, NULL, NULL, NULL, &stats, &err), MLXE_ERR_INVALID_ARGUMENT);
    free(logits);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    test_remove_model(dir);
}

/* One generation with MLXE_DECODE_PIPELINE=1 or 0: its tokens, stats,
 * status and the sequence's length after it; and how many steps the log
 * says were queued ahead of the host. */
typedef struct generation {
    collect got;
    mlxe_generate_stats stats;
    mlxe_status status;
    int64_t length;
    long long queued;
} generation;

static long long logged_queued;

static void note_queued(void *user, const mlxe_log_record *record) {
    (void)user;
    long long n = 0;
    if (strstr(record->message, "steps queued ahead of the host") &&
        sscanf(record->message, "generate: %lld steps", &n) == 1)
        logged_queued = n;
}

static generation generate_with(mlxe_context *ctx, const int32_t *prompt, const mlxe_generate_options *o,
                                int stop_after, bool cancel_after_two, bool pipelined) {
    generation g;
    memset(&g, 0, sizeof g);
    g.got.stop_after = stop_after;
    mlxe_cancel *cancel = cancel_after_two ? mlxe_cancel_create() : NULL;
    g.got.cancel_after = cancel;
    setenv("MLXE_DECODE_PIPELINE", pipelined ? "1" : "0", 1);
    logged_queued = -1;
    mlxe_log_set_level(MLXE_LOG_CAT_ENGINE, MLXE_LOG_DEBUG);
    mlxe_log_set_callback(note_queued, NULL);
    mlxe_error err;
    g.status = mlxe_generate(ctx, prompt, PROMPT_LEN, o, collect_token, &g.got, cancel, &g.stats, &err);
    mlxe_log_set_callback(NULL, NULL);
    unsetenv("MLXE_DECODE_PIPELINE");
    g.queued = logged_queued;
    g.length = mlxe_context_seq_length(ctx, 0);
    mlxe_cancel_free(cancel);
    return g;
}

/* The pipelined greedy loop (each step queued before the host reads the
 * token the step before chose; on the CPU the choice is downloaded at
 * once, the same bookkeeping) gives the sequential loop's tokens, stops and
 * sequence length for every stop: max tokens, an EOS id, the callback,
 * cancellation, a full context. A step queued past the stop is dropped. */
static void test_generate_pipelined(void **state) {
    (void)state;
    char dir[64];
    mlxe_model *model = load_case(&cases[4], dir, sizeof dir);
    mlxe_context *ctx = make_context(model, 1, 40, 8);
    int32_t prompt[PROMPT_LEN];
    make_prompt(prompt, PROMPT_LEN, mlxe_model_vocab_size(model), 5);
    mlxe_generate_options o;
    mlxe_generate_options_init(&o);
    o.max_tokens = 12;
    o.ignore_eos = true;
    generation plain = generate_with(ctx, prompt, &o, 0, false, false);
    assert_int_equal(plain.got.n, 12);
    int32_t eos = plain.got.tokens[5];
    for (int c = 0; c < 5; c++) {
        o.max_tokens = c == 4 ? 64 : 12;
        o.ignore_eos = c != 1;
        o.eos_ids = c == 1 ? &eos : NULL;
        o.n_eos_ids = c == 1 ? 1 : 0;
        const int stop_after = c == 2 ? 4 : 0;
        generation want = generate_with(ctx, prompt, &o, stop_after, c == 3, false);
        generation got = generate_with(ctx, prompt, &o, stop_after, c == 3, true);
        assert_int_equal(got.status, want.status);
        assert_int_equal(got.stats.stop_reason, want.stats.stop_reason);
        assert_int_equal(got.got.n, want.got.n);
        assert_memory_equal(got.got.tokens, want.got.tokens, (size_t)want.got.n * sizeof(int32_t));
        assert_int_equal(got.stats.n_generated_tokens, want.stats.n_generated_tokens);
        assert_int_equal(got.length, want.length);
        assert_int_equal(want.queued, -1); /* the sequential loop queues nothing ahead */
        if (got.got.n >= 3 && got.queued < 1) fail_msg("stop case %d: %lld steps queued ahead", c, got.queued);
    }
    assert_int_equal(plain.length, PROMPT_LEN + 11);
    /* the context's calls: nothing to embed before a device choice, nothing to take */
    mlxe_context_seq_clear(ctx, 0);
    mlxe_error err;
    int32_t token = 0;
    assert_int_equal(mlxe_context_decode_ahead(ctx, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_context_take_ahead(ctx, &token, &err), MLXE_ERR_INVALID_ARGUMENT);
    int32_t position = 0, seq = 0, first = prompt[0];
    mlxe_batch b = {.n_tokens = 1, .tokens = &first, .positions = &position, .seq_ids = &seq, .logits = NULL};
    assert_int_equal(mlxe_context_decode_greedy(ctx, &b, &token, &err), MLXE_OK);
    assert_true(token >= 0);
    int32_t want_next = -1;
    {
        /* the sequential step after it, for comparison */
        mlxe_context *other = make_context(model, 1, 40, 8);
        int32_t t0 = -1, t1 = -1;
        assert_int_equal(mlxe_context_decode_greedy(other, &b, &t0, &err), MLXE_OK);
        position = 1;
        b.tokens = &t0;
        assert_int_equal(mlxe_context_decode_greedy(other, &b, &t1, &err), MLXE_OK);
        want_next = t1;
        mlxe_context_free(other);
    }
    assert_int_equal(mlxe_context_decode_ahead(ctx, 0, &err), MLXE_OK);
    assert_int_equal(mlxe_context_decode_ahead(ctx, 0, &err), MLXE_OK);
    assert_int_equal(mlxe_context_decode_ahead(ctx, 0, &err), MLXE_ERR_INVALID_ARGUMENT); /* 2 queued at most */
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 3);
    assert_int_equal(mlxe_context_take_ahead(ctx, &token, &err), MLXE_OK);
    assert_int_equal(token, want_next);
    assert_int_equal(mlxe_context_finish_ahead(ctx, 0, true, &err), MLXE_OK); /* drops the one left */
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 2);
    assert_int_equal(mlxe_context_finish_ahead(ctx, 0, true, &err), MLXE_OK); /* nothing queued: nothing dropped */
    assert_int_equal(mlxe_context_seq_length(ctx, 0), 2);
    assert_int_equal(mlxe_context_decode_ahead(ctx, 0, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    test_remove_model(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunking_and_batching_agree),
        cmocka_unit_test(test_model_shared_by_threads),
        cmocka_unit_test(test_bad_batches),
        cmocka_unit_test(test_generate_loop),
        cmocka_unit_test(test_generate_pipelined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
