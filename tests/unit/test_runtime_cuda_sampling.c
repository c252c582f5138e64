/* tests/unit/test_runtime_cuda_sampling.c — the GPU's sample op (ops.h)
 * against the host sampler (engine/sampler.c), its oracle: for random rows
 * of logits (spread, peaked, with ties, NaN, -inf, +inf, signed zeros, none
 * left) and option sets (temperature, top_k 1/40/128, top_p 0.1/0.9/1,
 * min_p, logit bias, repetition/presence/frequency penalties, greedy with
 * bias), over vocabularies of one block, a few blocks and 128256 tokens,
 * the token chosen on the device equals mlxe_sampler_sample_drawn's with
 * the same draw. Options the device does not take are refused with a
 * reason. Then times the op against what it replaces (copying the logits
 * to the host and sampling there) and prints both. Skips without a GPU. */
#include <time.h>

#include "runtime_cuda_test.h"

#include "engine/engine_internal.h"
#include "mlxengine/sampler.h"

typedef struct device_sampler {
    mlxe_device *gpu;
    const mlxe_ops *ops;
    mlxe_sample_params *params;   /* device */
    mlxe_sample_adjust *adjust;   /* device [MLXE_SAMPLE_MAX_ADJUST] */
    int32_t *token;               /* device */
    mlxe_sample_adjust host_adjust[MLXE_SAMPLE_MAX_ADJUST];
} device_sampler;

static device_sampler *open_sampler(void) {
    mlxe_device *gpu = cuda_device_or_skip();
    device_sampler *d = calloc(1, sizeof *d);
    d->gpu = gpu;
    d->ops = mlxe_device_ops(gpu);
    assert_non_null(d->ops->sample);
    d->params = cuda_to_device(gpu, NULL, sizeof(mlxe_sample_params));
    d->adjust = cuda_to_device(gpu, NULL, sizeof d->host_adjust);
    d->token = cuda_to_device(gpu, NULL, sizeof(int32_t));
    return d;
}

static void close_sampler(device_sampler *d) {
    d->ops->free(d->gpu, d->params);
    d->ops->free(d->gpu, d->adjust);
    d->ops->free(d->gpu, d->token);
    mlxe_device_free(d->gpu);
    free(d);
}

/* Uploads the sampler's parameters with the draw bits (no wait). */
static void upload_params(device_sampler *d, mlxe_sampler *s, uint64_t bits) {
    mlxe_sample_params params;
    const char *why = NULL;
    if (!mlxe_sampler_device_params(s, &params, d->host_adjust, &why)) fail_msg("device_params refused: %s", why);
    params.random_bits = bits;
    params.adjust = d->adjust;
    const int32_t n_adjust = params.n_bias + params.n_penalty;
    if (n_adjust > 0) d->ops->upload(d->gpu, d->adjust, d->host_adjust, (size_t)n_adjust * sizeof(mlxe_sample_adjust));
    d->ops->upload(d->gpu, d->params, &params, sizeof params);
}

static int32_t sample_on_device(device_sampler *d, mlxe_sampler *s, const float *device_logits, int64_t vocab,
                                uint64_t bits) {
    upload_params(d, s, bits);
    d->ops->sample(d->gpu, device_logits, vocab, d->params, d->token);
    int32_t got = -2;
    d->ops->download(d->gpu, &got, d->token, sizeof got);
    cuda_expect_synchronized(d->gpu);
    return got;
}

typedef struct option_set {
    float temperature;
    int32_t top_k;
    float top_p, min_p;
    float repetition, presence, frequency;
    int n_bias;
} option_set;

static const option_set option_sets[] = {
    {1.0f, 1, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0},    {1.0f, 40, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0},
    {0.8f, 40, 0.9f, 0.0f, 1.0f, 0.0f, 0.0f, 0},   {0.8f, 40, 0.95f, 0.05f, 1.0f, 0.0f, 0.0f, 0},
    {1.0f, 128, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0},  {1.5f, 128, 0.9f, 0.0f, 1.0f, 0.0f, 0.0f, 0},
    {0.7f, 128, 0.1f, 0.0f, 1.0f, 0.0f, 0.0f, 0},  {2.0f, 64, 1.0f, 0.3f, 1.0f, 0.0f, 0.0f, 0},
    {0.05f, 40, 0.9f, 0.0f, 1.0f, 0.0f, 0.0f, 0},  {1.0f, 40, 0.9f, 0.0f, 1.3f, 0.5f, 0.25f, 0},
    {1.0f, 40, 1.0f, 0.0f, 0.8f, -0.5f, 0.0f, 3},  {0.9f, 100, 0.8f, 0.1f, 1.1f, 0.0f, 0.7f, 5},
    {0.0f, 0, 1.0f, 0.0f, 1.3f, 0.5f, 0.25f, 4},   {0.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 2},
};
#define N_OPTION_SETS (int)(sizeof option_sets / sizeof option_sets[0])
#define N_ROW_KINDS 9

/* Row kinds: 0 spread, 1 peaked, 2 few distinct values (ties), 3 NaN and
 * -inf scattered, 4 nothing but -inf and NaN, 5 two +inf, 6 all equal,
 * 7 signed zeros and small values, 8 large magnitudes. */
static void make_row(cuda_rng *rng, float *row, int64_t n, int kind) {
    for (int64_t i = 0; i < n; i++) {
        float u = cuda_rng_float(rng, 0.0f, 1.0f);
        switch (kind) {
        case 1: row[i] = 30.0f * u * u * u * u * u * u - 5.0f; break;
        case 2: row[i] = (float)(cuda_rng_next(rng) % 7) - 3.0f; break;
        case 3: row[i] = i % 5 == 0 ? NAN : i % 7 == 0 ? -INFINITY : 10.0f * u - 5.0f; break;
        case 4: row[i] = i % 3 == 0 ? NAN : -INFINITY; break;
        case 6: row[i] = 1.5f; break;
        case 7: row[i] = u < 0.3f ? 0.0f : u < 0.6f ? -0.0f : (u - 0.6f) * 0.01f; break;
        case 8: row[i] = (u - 0.5f) * 2e38f; break;
        default: row[i] = 20.0f * u - 10.0f; break;
        }
    }
    if (kind == 5 && n > 3) {
        row[n - 2] = INFINITY;
        row[n / 3] = INFINITY;
    }
}

static mlxe_sampler *sampler_for(const option_set *o, int64_t vocab, cuda_rng *rng, mlxe_logit_bias *bias) {
    mlxe_sampler_options so;
    mlxe_sampler_options_init(&so);
    so.temperature = o->temperature;
    so.top_k = o->top_k;
    so.top_p = o->top_p;
    so.min_p = o->min_p;
    so.repetition_penalty = o->repetition;
    so.presence_penalty = o->presence;
    so.frequency_penalty = o->frequency;
    so.penalty_last_n = 16;
    so.seed = 1;
    for (int b = 0; b < o->n_bias; b++) {
        const int64_t stretch = vocab / o->n_bias; /* one token in each stretch: all distinct */
        bias[b].token = (int32_t)(b * stretch + (int64_t)(cuda_rng_next(rng) % (uint64_t)stretch));
        bias[b].bias = b == 1 ? -INFINITY : cuda_rng_float(rng, -6.0f, 6.0f);
    }
    so.logit_bias = bias;
    so.n_logit_bias = o->n_bias;
    mlxe_sampler *s = NULL;
    mlxe_error err;
    if (mlxe_sampler_create(&so, vocab, &s, &err) != MLXE_OK) fail_msg("sampler: %s", err.message);
    return s;
}

/* The device's token equals the host's on every row kind, option set and
 * draw, for one vocabulary size. */
static int compare_on(device_sampler *d, int64_t vocab, int draws, cuda_rng *rng) {
    float *row = malloc((size_t)vocab * sizeof(float));
    float *device_row = cuda_to_device(d->gpu, NULL, (size_t)vocab * sizeof(float));
    int compared = 0;
    for (int kind = 0; kind < N_ROW_KINDS; kind++) {
        make_row(rng, row, vocab, kind);
        d->ops->upload(d->gpu, device_row, row, (size_t)vocab * sizeof(float));
        for (int o = 0; o < N_OPTION_SETS; o++) {
            mlxe_logit_bias bias[8];
            mlxe_sampler *s = sampler_for(&option_sets[o], vocab, rng, bias);
            /* a penalty window: repeated tokens, some of them the row's best */
            for (int t = 0; t < 24; t++) {
                int32_t token = (int32_t)(cuda_rng_next(rng) % (uint64_t)(t % 3 == 0 ? 8 : vocab));
                if (t % 4 == 1) token = mlxe_sampler_sample_drawn(s, row, cuda_rng_next(rng) >> 11);
                mlxe_sampler_accept(s, token);
            }
            for (int draw = 0; draw < draws; draw++) {
                uint64_t bits = cuda_rng_next(rng) >> 11;
                if (draw == 0) bits = 0;                       /* the lowest target */
                if (draw == 1) bits = ((uint64_t)1 << 53) - 1; /* the highest */
                int32_t want = mlxe_sampler_sample_drawn(s, row, bits);
                int32_t got = sample_on_device(d, s, device_row, vocab, bits);
                if (got != want)
                    fail_msg("vocab %lld, row kind %d, option set %d (temperature %g, top_k %d, top_p %g, min_p %g), "
                             "draw %d: device %d, host %d",
                             (long long)vocab, kind, o, (double)option_sets[o].temperature, (int)option_sets[o].top_k,
                             (double)option_sets[o].top_p, (double)option_sets[o].min_p, draw, got, want);
                compared++;
            }
            mlxe_sampler_free(s);
        }
    }
    d->ops->free(d->gpu, device_row);
    free(row);
    return compared;
}

static void test_sample_matches_host(void **state) {
    (void)state;
    device_sampler *d = open_sampler();
    cuda_rng rng = {2026};
    int compared = compare_on(d, 256, 6, &rng);
    compared += compare_on(d, 5003, 6, &rng);
    compared += compare_on(d, 2048, 3, &rng);
    compared += compare_on(d, 128256, 3, &rng);
    print_message("sample: %d device tokens equal to the host sampler's\n", compared);
    close_sampler(d);
}

/* Options the device does not take are refused with the reason. */
static void test_device_params_refusals(void **state) {
    (void)state;
    mlxe_sampler_options so;
    mlxe_sampler_options_init(&so);
    so.temperature = 1.0f;
    mlxe_sampler *s = NULL;
    mlxe_error err;
    mlxe_sample_params params;
    static mlxe_sample_adjust adjust[MLXE_SAMPLE_MAX_ADJUST];
    const char *why = NULL;
    assert_int_equal(mlxe_sampler_create(&so, 1000, &s, &err), MLXE_OK);
    assert_false(mlxe_sampler_device_params(s, &params, adjust, &why));
    assert_non_null(strstr(why, "top_k"));
    mlxe_sampler_free(s);
    so.top_k = 1000;
    assert_int_equal(mlxe_sampler_create(&so, 1000, &s, &err), MLXE_OK);
    assert_false(mlxe_sampler_device_params(s, &params, adjust, &why));
    mlxe_sampler_free(s);
    so.top_k = 40;
    mlxe_logit_bias twice[2] = {{.token = 5, .bias = 1.0f}, {.token = 5, .bias = 2.0f}};
    so.logit_bias = twice;
    so.n_logit_bias = 2;
    assert_int_equal(mlxe_sampler_create(&so, 1000, &s, &err), MLXE_OK);
    assert_false(mlxe_sampler_device_params(s, &params, adjust, &why));
    assert_non_null(strstr(why, "twice"));
    mlxe_sampler_free(s);
    so.n_logit_bias = 1;
    so.repetition_penalty = 1.2f;
    so.penalty_last_n = MLXE_SAMPLE_MAX_ADJUST;
    assert_int_equal(mlxe_sampler_create(&so, 1000, &s, &err), MLXE_OK);
    assert_false(mlxe_sampler_device_params(s, &params, adjust, &why));
    assert_non_null(strstr(why, "penalty window"));
    mlxe_sampler_free(s);
    so.penalty_last_n = 8;
    assert_int_equal(mlxe_sampler_create(&so, 1000, &s, &err), MLXE_OK);
    mlxe_sampler_accept(s, 7);
    mlxe_sampler_accept(s, 9);
    mlxe_sampler_accept(s, 7);
    assert_true(mlxe_sampler_device_params(s, &params, adjust, &why));
    assert_int_equal(params.n_bias, 1);
    assert_int_equal(params.n_penalty, 2);
    assert_int_equal(adjust[0].token, 5);
    assert_int_equal(adjust[1].token + adjust[2].token, 16);
    assert_int_equal(adjust[1].token == 7 ? adjust[1].count : adjust[2].count, 2);
    mlxe_sampler_free(s);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* Time per token: the op (the draw uploaded, the id downloaded) against
 * downloading the 128256 logits and sampling them on the host. */
static void test_sample_timing(void **state) {
    (void)state;
    device_sampler *d = open_sampler();
    enum { VOCAB = 128256, ROUNDS = 200 };
    cuda_rng rng = {7};
    float *row = malloc(VOCAB * sizeof(float)), *host_row = malloc(VOCAB * sizeof(float));
    make_row(&rng, row, VOCAB, 1);
    float *device_row = cuda_to_device(d->gpu, row, VOCAB * sizeof(float));
    mlxe_sampler_options so;
    mlxe_sampler_options_init(&so);
    so.temperature = 0.8f;
    so.top_k = 40;
    so.top_p = 0.9f;
    so.min_p = 0.05f;
    so.seed = 3;
    mlxe_sampler *s = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_sampler_create(&so, VOCAB, &s, &err), MLXE_OK);
    static double device_us[ROUNDS], download_us[ROUNDS], host_us[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        uint64_t bits = cuda_rng_next(&rng) >> 11;
        double t0 = now_us();
        int32_t got = sample_on_device(d, s, device_row, VOCAB, bits);
        double t1 = now_us();
        d->ops->download(d->gpu, host_row, device_row, VOCAB * sizeof(float));
        double t2 = now_us();
        int32_t want = mlxe_sampler_sample_drawn(s, host_row, bits);
        double t3 = now_us();
        assert_int_equal(got, want);
        device_us[r] = t1 - t0;
        download_us[r] = t2 - t1;
        host_us[r] = t3 - t2;
    }
    /* the kernel alone: launches back to back, one wait */
    upload_params(d, s, 12345);
    double t0 = now_us();
    for (int r = 0; r < ROUNDS; r++) d->ops->sample(d->gpu, device_row, VOCAB, d->params, d->token);
    cuda_expect_synchronized(d->gpu);
    double kernel_us = (now_us() - t0) / ROUNDS;
    qsort(device_us, ROUNDS, sizeof(double), compare_doubles);
    qsort(download_us, ROUNDS, sizeof(double), compare_doubles);
    qsort(host_us, ROUNDS, sizeof(double), compare_doubles);
    print_message("sample timing on %s (%s), vocab %d, temperature 0.8, top_k 40, top_p 0.9, min_p 0.05, %d rounds: "
                  "device sample + copies %.1f us min / %.1f median (kernel alone, back to back: %.1f us); replaced: "
                  "logits download %.1f / %.1f + host sample %.1f / %.1f = %.1f us min / %.1f median\n",
                  mlxe_device_name(d->gpu), mlxe_device_description(d->gpu), VOCAB, ROUNDS, device_us[0],
                  device_us[ROUNDS / 2], kernel_us, download_us[0], download_us[ROUNDS / 2], host_us[0],
                  host_us[ROUNDS / 2], download_us[0] + host_us[0], download_us[ROUNDS / 2] + host_us[ROUNDS / 2]);
    mlxe_sampler_free(s);
    d->ops->free(d->gpu, device_row);
    free(row);
    free(host_row);
    close_sampler(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_params_refusals),
        cmocka_unit_test(test_sample_matches_host),
        cmocka_unit_test(test_sample_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
