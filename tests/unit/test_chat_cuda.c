/* tests/unit/test_chat_cuda.c — chat replies (mlxe_session_reply) choosing
 * their tokens on a GPU as mlxe_generate does (engine/token_choice.h), on a
 * chat model folder written at test time (tests/chat_model_util.h: ChatML
 * tokenizer and template) whose weights are re-written in the shapes of the
 * llama-f32 fixture (F32, so the GPU computes as the CPU does):
 *  - on the CPU (runs everywhere): a reply's tokens are mlxe_generate's over
 *    the same prompt ids and sampler options, none chosen on a device;
 *  - on the GPU, with the recorded decode graphs and without
 *    (MLXE_CUDA_GRAPH=0): greedy and seeded temperature / top-k / top-p /
 *    min-p / penalty / bias replies give mlxe_generate's tokens on the GPU
 *    and the CPU reply's text, every token after the first chosen on the
 *    device; the session's logits (fetched on demand) are the CPU's;
 *  - the logits path: options the device does not take (top_k 0, a penalty
 *    window above MLXE_SAMPLE_MAX_ADJUST) sample on the host, a rotation
 *    (MLXE_CONTEXT_ROTATE) takes the logits for the step after it; stop
 *    strings and a second turn; all equal to the CPU's replies.
 * Without a usable GPU the GPU tests skip, saying why; MLXE_REQUIRE_GPU=1
 * makes that a failure. */
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
#include "runtime_cuda_test.h"

#define N_NEW 24
#define MAX_IDS 512

static struct {
    char base[200], dir[256];
    mlxe_tokenizer *tokenizer;
    mlxe_chat_template *chat_template;
    mlxe_model *cpu;
} fx;

static int group_setup(void **state) {
    (void)state;
    test_make_temp_dir(fx.base, sizeof fx.base);
    snprintf(fx.dir, sizeof fx.dir, "%s/model", fx.base);
    chat_test_write_model(fx.dir, 23, NULL);
    /* the llama-f32 fixture's shapes with the chat vocabulary */
    test_model_spec spec;
    test_model_spec_init(&spec, "llama");
    spec.vocab = CHAT_TEST_VOCAB;
    spec.hidden = 64;
    spec.ffn = 128;
    spec.head_dim = 16;
    test_write_model(fx.dir, &spec, 23);
    mlxe_error err;
    if (mlxe_tokenizer_load(fx.dir, &fx.tokenizer, &err) != MLXE_OK) fail_msg("%s", err.message);
    if (mlxe_chat_template_load(fx.dir, &fx.chat_template, &err) != MLXE_OK) fail_msg("%s", err.message);
    mlxe_model_options mo;
    mlxe_model_options_init(&mo);
    mo.n_threads = 2;
    mo.device = "cpu";
    if (mlxe_model_load(fx.dir, &mo, &fx.cpu, &err) != MLXE_OK) fail_msg("%s", err.message);
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    mlxe_model_free(fx.cpu);
    mlxe_chat_template_free(fx.chat_template);
    mlxe_tokenizer_free(fx.tokenizer);
    chat_test_remove_model(fx.dir);
    remove(fx.base);
    return 0;
}

/* Skips the calling test (with the reason) when no GPU is usable. */
static void require_gpu(void) { mlxe_device_free(cuda_device_or_skip()); }

/* The chat model on cuda; graphs false: without the recorded decode graphs. */
static mlxe_model *load_gpu(bool graphs) {
    if (!graphs) setenv("MLXE_CUDA_GRAPH", "0", 1);
    mlxe_model_options mo;
    mlxe_model_options_init(&mo);
    mo.device = "cuda";
    mlxe_model *model = NULL;
    mlxe_error err;
    mlxe_status st = mlxe_model_load(fx.dir, &mo, &model, &err);
    unsetenv("MLXE_CUDA_GRAPH");
    if (st != MLXE_OK) fail_msg("load on cuda: %s", err.message);
    assert_string_equal(mlxe_model_device_name(model), "cuda:0");
    return model;
}

/* Letters get a bias so the random model writes ASCII words. */
static mlxe_logit_bias letter_bias[26];

/* What one reply did. */
typedef struct reply_run {
    int32_t prompt[MAX_IDS];
    int n_prompt;
    int32_t cached[MAX_IDS]; /* the generated ids the cache holds after the prompt */
    int n_cached;
    char text[4096];
    char second[4096];       /* with second_turn: the reply to one more user message */
    mlxe_reply_stats stats;
    int64_t device_tokens;
    float *logits;           /* the session's logits after the reply, [vocab] */
} reply_run;

typedef struct reply_setup {
    mlxe_sampler_options sampler;
    mlxe_context_policy policy;
    int64_t n_ctx, max_tokens;
    const char *stop;        /* NULL: none */
    bool second_turn;
} reply_setup;

static void setup_init(reply_setup *r, const mlxe_sampler_options *so) {
    memset(r, 0, sizeof *r);
    r->sampler = *so;
    r->policy = MLXE_CONTEXT_ERROR;
    r->n_ctx = 256;
    r->max_tokens = N_NEW;
}

static void reply_once(mlxe_session *s, const reply_setup *r, char *text, size_t capacity, mlxe_reply_stats *stats) {
    mlxe_reply_options o;
    mlxe_reply_options_init(&o);
    o.max_tokens = r->max_tokens;
    o.ignore_eos = true;
    o.sampler = r->sampler;
    o.stop = r->stop ? &r->stop : NULL;
    o.n_stop = r->stop ? 1 : 0;
    char *reply = NULL;
    mlxe_error err;
    if (mlxe_session_reply(s, &o, NULL, NULL, NULL, &reply, stats, &err) != MLXE_OK)
        fail_msg("reply on %s: %s", mlxe_model_device_name(s->model), err.message);
    if (strlen(reply) >= capacity) fail_msg("reply longer than the test's buffer");
    snprintf(text, capacity, "%s", reply);
    free(reply);
}

static void run_reply(mlxe_model *model, const reply_setup *r, reply_run *out) {
    memset(out, 0, sizeof *out);
    mlxe_session_options so;
    mlxe_session_options_init(&so);
    so.n_ctx = r->n_ctx;
    so.context_policy = r->policy;
    so.n_batch = 64;
    so.n_ubatch = 16;
    mlxe_session *s = NULL;
    mlxe_error err;
    if (mlxe_session_create(model, fx.tokenizer, fx.chat_template, &so, &s, &err) != MLXE_OK)
        fail_msg("%s", err.message);
    mlxe_message system = {.role = MLXE_ROLE_SYSTEM, .content = "You answer in short words."};
    mlxe_message user = {.role = MLXE_ROLE_USER, .content = "hello world, tell me about the north wind and the sun"};
    assert_int_equal(mlxe_session_add_message(s, &system, &err), MLXE_OK);
    assert_int_equal(mlxe_session_add_message(s, &user, &err), MLXE_OK);
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    assert_int_equal(chat_render_tokens(s, 0, &ids, &err), MLXE_OK);
    assert_true(ids.count <= MAX_IDS);
    out->n_prompt = (int)ids.count;
    memcpy(out->prompt, ids.ids, ids.count * sizeof(int32_t));
    mlxe_token_list_free(&ids);

    reply_once(s, r, out->text, sizeof out->text, &out->stats);
    out->device_tokens = s->last_device_tokens;
    for (size_t i = (size_t)out->n_prompt; i < s->history.count && out->n_cached < MAX_IDS; i++)
        out->cached[out->n_cached++] = s->history.ids[i];
    /* the logits of the last decoded token, as anything asking later sees them */
    int64_t vocab = mlxe_model_vocab_size(model);
    if (s->logits_valid) {
        const float *logits = mlxe_context_logits(s->ctx, s->logits_row);
        assert_non_null(logits);
        out->logits = malloc((size_t)vocab * sizeof(float));
        assert_non_null(out->logits);
        memcpy(out->logits, logits, (size_t)vocab * sizeof(float));
    }
    if (r->second_turn) {
        mlxe_message more = {.role = MLXE_ROLE_USER, .content = "and then?"};
        assert_int_equal(mlxe_session_add_message(s, &more, &err), MLXE_OK);
        mlxe_reply_stats stats;
        reply_once(s, r, out->second, sizeof out->second, &stats);
        assert_true(stats.cached_prompt_tokens > 0);
    }
    mlxe_session_free(s);
}

typedef struct token_sink {
    int32_t *ids;
    int n, capacity;
} token_sink;

static bool keep_token(void *user, int32_t token) {
    token_sink *sink = user;
    if (sink->n < sink->capacity) sink->ids[sink->n++] = token;
    return true;
}

/* mlxe_generate over prompt with the reply's sampler: n tokens. */
static void run_generate(mlxe_model *model, const reply_setup *r, const int32_t *prompt, int n_prompt,
                         int32_t *tokens, int n) {
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = 256;
    co.n_batch = 64;
    co.n_ubatch = 16;
    mlxe_context *ctx = NULL;
    mlxe_error err;
    if (mlxe_context_create(model, &co, &ctx, &err) != MLXE_OK) fail_msg("context: %s", err.message);
    mlxe_generate_options g;
    mlxe_generate_options_init(&g);
    g.max_tokens = n;
    g.ignore_eos = true;
    g.sampler = r->sampler;
    token_sink sink = {.ids = tokens, .n = 0, .capacity = n};
    if (mlxe_generate(ctx, prompt, n_prompt, &g, keep_token, &sink, NULL, NULL, &err) != MLXE_OK)
        fail_msg("generate: %s", err.message);
    assert_int_equal(sink.n, n);
    mlxe_context_free(ctx);
}

/* The reply is mlxe_generate's on the same model: the cache holds its
 * tokens but the last, and the text is all of them decoded. */
static void assert_reply_is_generate(mlxe_model *model, const reply_setup *r, const reply_run *run, const char *what) {
    int32_t tokens[N_NEW];
    assert_true(run->stats.generated_tokens == N_NEW);
    run_generate(model, r, run->prompt, run->n_prompt, tokens, N_NEW);
    if (run->n_cached != N_NEW - 1) fail_msg("%s: the cache holds %d generated ids, want %d", what, run->n_cached, N_NEW - 1);
    for (int i = 0; i < N_NEW - 1; i++)
        if (run->cached[i] != tokens[i])
            fail_msg("%s: reply token %d is %d, mlxe_generate's %d", what, i, run->cached[i], tokens[i]);
    char *text = NULL;
    size_t size = 0;
    mlxe_error err;
    assert_int_equal(mlxe_tokenizer_decode(fx.tokenizer, tokens, N_NEW, NULL, &text, &size, &err), MLXE_OK);
    if (strcmp(text, run->text) != 0) fail_msg("%s: reply \"%s\", mlxe_generate \"%s\"", what, run->text, text);
    free(text);
}

static void free_run(reply_run *run) {
    free(run->logits);
    run->logits = NULL;
}

/* The option sets: greedy (the device's argmax), greedy with bias and a
 * penalty, and seeded sampling with the device's options. */
#define N_SETS 4
static void option_sets(mlxe_sampler_options sets[N_SETS]) {
    for (int i = 0; i < 26; i++) letter_bias[i] = (mlxe_logit_bias){.token = 'a' + i, .bias = 6.0f};
    for (int i = 0; i < N_SETS; i++) mlxe_sampler_options_init(&sets[i]);
    sets[1].logit_bias = letter_bias, sets[1].n_logit_bias = 26, sets[1].repetition_penalty = 1.3f;
    sets[2].temperature = 0.8f, sets[2].top_k = 40, sets[2].top_p = 0.9f, sets[2].min_p = 0.02f, sets[2].seed = 1234;
    sets[3].temperature = 1.1f, sets[3].top_k = 20, sets[3].top_p = 0.95f, sets[3].seed = 99;
    sets[3].repetition_penalty = 1.2f, sets[3].presence_penalty = 0.3f, sets[3].frequency_penalty = 0.2f;
    sets[3].penalty_last_n = 16, sets[3].logit_bias = letter_bias, sets[3].n_logit_bias = 26;
}

/* On the CPU a plain greedy reply's tokens (all but the first, from the
 * prompt's logits) are the CPU's argmax op's, the others' are sampled on
 * the host (no sample op), and either way a reply is mlxe_generate's. */
static void test_reply_like_generate_on_cpu(void **state) {
    (void)state;
    mlxe_sampler_options sets[N_SETS];
    option_sets(sets);
    for (int i = 0; i < N_SETS; i++) {
        reply_setup r;
        setup_init(&r, &sets[i]);
        reply_run run;
        run_reply(fx.cpu, &r, &run);
        assert_int_equal(run.device_tokens, i == 0 ? run.stats.generated_tokens - 1 : 0);
        char what[64];
        snprintf(what, sizeof what, "cpu, option set %d", i);
        assert_reply_is_generate(fx.cpu, &r, &run, what);
        free_run(&run);
    }
}

static void assert_logits_close(const float *got, const float *want, int64_t vocab, const char *what) {
    assert_non_null(got);
    assert_non_null(want);
    double max_error = 0, max_ref = 0;
    for (int64_t i = 0; i < vocab; i++) {
        max_error = fmax(max_error, fabs((double)got[i] - want[i]));
        max_ref = fmax(max_ref, fabs((double)want[i]));
    }
    if (!(max_error <= 1e-4 * max_ref)) fail_msg("%s: logits differ by %g of %g", what, max_error, max_ref);
}

/* On the GPU, with and without graphs: every token after the first chosen
 * on the device, the same tokens as mlxe_generate there and the same text
 * as the CPU's reply; the logits left behind are the CPU's. */
static void test_reply_on_gpu(void **state) {
    (void)state;
    require_gpu();
    mlxe_model *gpus[2] = {load_gpu(true), load_gpu(false)};
    const int64_t vocab = mlxe_model_vocab_size(fx.cpu);
    mlxe_sampler_options sets[N_SETS];
    option_sets(sets);
    for (int i = 0; i < N_SETS; i++) {
        reply_setup r;
        setup_init(&r, &sets[i]);
        r.second_turn = true;
        reply_run on_cpu;
        run_reply(fx.cpu, &r, &on_cpu);
        for (int g = 0; g < 2; g++) {
            char what[96];
            snprintf(what, sizeof what, "option set %d on cuda %s graphs", i, g == 0 ? "with" : "without");
            reply_run on_gpu;
            run_reply(gpus[g], &r, &on_gpu);
            if (on_gpu.device_tokens != N_NEW - 1)
                fail_msg("%s: %lld tokens chosen on the device, want %d", what, (long long)on_gpu.device_tokens,
                         N_NEW - 1);
            assert_reply_is_generate(gpus[g], &r, &on_gpu, what);
            if (strcmp(on_gpu.text, on_cpu.text) != 0)
                fail_msg("%s: \"%s\", the CPU's reply \"%s\"", what, on_gpu.text, on_cpu.text);
            if (strcmp(on_gpu.second, on_cpu.second) != 0)
                fail_msg("%s, second turn: \"%s\", the CPU's \"%s\"", what, on_gpu.second, on_cpu.second);
            assert_logits_close(on_gpu.logits, on_cpu.logits, vocab, what);
            print_message("GPU: %s: %lld of %d tokens chosen on the device: \"%.40s\"\n", what,
                          (long long)on_gpu.device_tokens, N_NEW, on_gpu.text);
            free_run(&on_gpu);
        }
        free_run(&on_cpu);
    }
    mlxe_model_free(gpus[0]);
    mlxe_model_free(gpus[1]);
}

/* The reply on cuda (graphs on) against the CPU's, same text. */
static void same_as_cpu(mlxe_model *gpu, const reply_setup *r, reply_run *on_gpu, reply_run *on_cpu, const char *what) {
    run_reply(fx.cpu, r, on_cpu);
    run_reply(gpu, r, on_gpu);
    if (strcmp(on_gpu->text, on_cpu->text) != 0)
        fail_msg("%s: \"%s\", the CPU's reply \"%s\"", what, on_gpu->text, on_cpu->text);
    assert_int_equal(on_gpu->stats.generated_tokens, on_cpu->stats.generated_tokens);
    assert_int_equal(on_gpu->stats.rotated_tokens, on_cpu->stats.rotated_tokens);
    assert_int_equal(on_gpu->stats.stop_string_index, on_cpu->stats.stop_string_index);
}

/* Where the device does not choose: options it does not take, the step
 * after a rotation; and stop strings. Always the CPU's replies. */
static void test_logits_path_on_gpu(void **state) {
    (void)state;
    require_gpu();
    mlxe_model *gpu = load_gpu(true);
    mlxe_sampler_options sets[N_SETS];
    option_sets(sets);
    reply_run on_gpu, on_cpu;
    reply_setup r;

    /* top_k 0 and a penalty window the device cannot carry: on the host */
    mlxe_sampler_options host_only[2];
    mlxe_sampler_options_init(&host_only[0]);
    host_only[0].temperature = 0.7f, host_only[0].top_p = 0.9f, host_only[0].seed = 5;
    host_only[1] = sets[3];
    host_only[1].penalty_last_n = MLXE_SAMPLE_MAX_ADJUST + 1;
    for (int i = 0; i < 2; i++) {
        setup_init(&r, &host_only[i]);
        char what[64];
        snprintf(what, sizeof what, "host-sampled set %d", i);
        same_as_cpu(gpu, &r, &on_gpu, &on_cpu, what);
        assert_int_equal(on_gpu.device_tokens, 0);
        assert_reply_is_generate(gpu, &r, &on_gpu, what);
        free_run(&on_gpu);
        free_run(&on_cpu);
    }

    /* rotation: a window of 48 over a longer reply; the step after each
     * rotation samples the logits, the others are chosen on the device */
    for (int i = 0; i < N_SETS; i++) {
        setup_init(&r, &sets[i]);
        r.policy = MLXE_CONTEXT_ROTATE;
        r.n_ctx = 48;
        r.max_tokens = 80;
        char what[64];
        snprintf(what, sizeof what, "rotation, option set %d", i);
        same_as_cpu(gpu, &r, &on_gpu, &on_cpu, what);
        assert_true(on_gpu.stats.rotated_tokens > 0);
        assert_int_equal(on_gpu.stats.generated_tokens, 80);
        if (!(on_gpu.device_tokens > 0 && on_gpu.device_tokens < 79))
            fail_msg("%s: %lld of 79 tokens chosen on the device", what, (long long)on_gpu.device_tokens);
        print_message("GPU: %s: %lld tokens rotated out, %lld of 79 chosen on the device\n", what,
                      (long long)on_gpu.stats.rotated_tokens, (long long)on_gpu.device_tokens);
        free_run(&on_gpu);
        free_run(&on_cpu);
    }

    /* a stop string from the middle of the reply without one */
    setup_init(&r, &sets[1]);
    same_as_cpu(gpu, &r, &on_gpu, &on_cpu, "no stop string");
    char stop[3] = {on_gpu.text[10], on_gpu.text[11], 0};
    const char *at = strstr(on_gpu.text, stop);
    assert_non_null(at);
    size_t keep = (size_t)(at - on_gpu.text);
    char expected[4096];
    snprintf(expected, sizeof expected, "%.*s", (int)keep, on_gpu.text);
    free_run(&on_gpu);
    free_run(&on_cpu);
    r.stop = stop;
    same_as_cpu(gpu, &r, &on_gpu, &on_cpu, "stop string");
    assert_string_equal(on_gpu.text, expected);
    print_message("GPU: stop string \"%s\" after %zu characters, %lld tokens\n", stop, keep,
                  (long long)on_gpu.stats.generated_tokens);
    assert_int_equal(on_gpu.stats.stop_string_index, 0);
    assert_int_equal(on_gpu.device_tokens, on_gpu.stats.generated_tokens - 1);
    free_run(&on_gpu);
    free_run(&on_cpu);
    mlxe_model_free(gpu);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_like_generate_on_cpu),
        cmocka_unit_test(test_reply_on_gpu),
        cmocka_unit_test(test_logits_path_on_gpu),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
