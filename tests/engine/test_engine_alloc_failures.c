/* Allocation-failure tests of the engine, in the manner of SQLite's malloc
 * tests: model load, context creation, sampler creation and a whole
 * generation run again and again with their 1st, 2nd, 3rd... allocation
 * failing, until a run completes without reaching the failure. Every
 * failing run must return an error (never crash or succeed), and under
 * LeakSanitizer free everything it allocated. */
#include "test_util.h"

#include <stdbool.h>

#include "mlxengine/mlxengine.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t count, size_t size);
void *__wrap_realloc(void *pointer, size_t size);
char *__wrap_strdup(const char *s);

static long countdown; /* 0: nothing armed; n: the n-th allocation from now fails */
static bool failure_happened;

static bool should_fail(void) {
    if (countdown > 0 && --countdown == 0) {
        failure_happened = true;
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t size) { return should_fail() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t count, size_t size) { return should_fail() ? NULL : __real_calloc(count, size); }
void *__wrap_realloc(void *pointer, size_t size) { return should_fail() ? NULL : __real_realloc(pointer, size); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }

#define MODEL_DIR MLXE_FIXTURES "/models/qwen3-f32"

typedef mlxe_status (*scenario_fn)(mlxe_error *err);

static int run_with_failures(const char *label, scenario_fn scenario) {
    mlxe_error err;
    for (long k = 1; k < 100000; k++) {
        countdown = k;
        failure_happened = false;
        mlxe_status status = scenario(&err);
        countdown = 0;
        if (!failure_happened) {
            if (status != MLXE_OK) fail_msg("%s: failed without an injected failure: %s", label, err.message);
            return (int)(k - 1);
        }
        if (status == MLXE_OK) fail_msg("%s: allocation %ld failed but the call succeeded", label, k);
    }
    fail_msg("%s: never completed", label);
    return 0;
}

static mlxe_status load_model(int n_threads, mlxe_model **model, mlxe_error *err) {
    mlxe_model_options options;
    mlxe_model_options_init(&options);
    options.n_threads = n_threads;
    return mlxe_model_load(MODEL_DIR, &options, model, err);
}

static mlxe_status scenario_load(mlxe_error *err) {
    mlxe_model *model = NULL;
    mlxe_status st = load_model(1, &model, err);
    mlxe_model_free(model);
    return st;
}

static mlxe_status scenario_load_threads(mlxe_error *err) {
    mlxe_model *model = NULL;
    mlxe_status st = load_model(2, &model, err);
    mlxe_model_free(model);
    return st;
}

static mlxe_model *shared_model;

static mlxe_status scenario_context(mlxe_error *err) {
    mlxe_context_options options;
    mlxe_context_options_init(&options);
    options.n_ctx = 64;
    options.n_seq = 2;
    mlxe_context *ctx = NULL;
    mlxe_status st = mlxe_context_create(shared_model, &options, &ctx, err);
    mlxe_context_free(ctx);
    return st;
}

static mlxe_status scenario_sampler(mlxe_error *err) {
    mlxe_logit_bias bias = {.token = 3, .bias = 1.0f};
    mlxe_sampler_options options;
    mlxe_sampler_options_init(&options);
    options.temperature = 0.7f;
    options.logit_bias = &bias;
    options.n_logit_bias = 1;
    mlxe_sampler *sampler = NULL;
    mlxe_status st = mlxe_sampler_create(&options, 256, &sampler, err);
    mlxe_sampler_free(sampler);
    return st;
}

/* A context, then a generation whose decode calls want more logits rows
 * than the context first reserved (its buffer grows). */
static mlxe_status scenario_generate(mlxe_error *err) {
    mlxe_context_options options;
    mlxe_context_options_init(&options);
    options.n_ctx = 32;
    mlxe_context *ctx = NULL;
    mlxe_status st = mlxe_context_create(shared_model, &options, &ctx, err);
    if (st == MLXE_OK) {
        int32_t ids[4] = {1, 5, 9, 13}, positions[4] = {0, 1, 2, 3}, seqs[4] = {0};
        int8_t want[4] = {1, 1, 1, 1};
        mlxe_batch batch = {.n_tokens = 4, .tokens = ids, .positions = positions, .seq_ids = seqs, .logits = want};
        st = mlxe_context_decode(ctx, &batch, err);
    }
    if (st == MLXE_OK) {
        int32_t prompt[5] = {1, 7, 3, 9, 11};
        mlxe_generate_options generate;
        mlxe_generate_options_init(&generate);
        generate.max_tokens = 3;
        generate.sampler.temperature = 0.5f;
        generate.sampler.seed = 1;
        st = mlxe_generate(ctx, prompt, 5, &generate, NULL, NULL, NULL, NULL, err);
    }
    mlxe_context_free(ctx);
    return st;
}

static void test_alloc_failures(void **state) {
    (void)state;
    int runs = run_with_failures("model load", scenario_load);
    assert_true(runs > 5);
    run_with_failures("model load, 2 threads", scenario_load_threads);
    mlxe_error err;
    assert_int_equal(load_model(1, &shared_model, &err), MLXE_OK);
    assert_true(run_with_failures("context create", scenario_context) > 3);
    assert_true(run_with_failures("sampler create", scenario_sampler) > 3);
    assert_true(run_with_failures("decode and generate", scenario_generate) > 3);
    mlxe_model_free(shared_model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
