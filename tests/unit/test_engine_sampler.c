/* tests/unit/test_engine_sampler.c — the sampler chain: greedy, the support
 * restrictions of top_k / top_p / min_p (sampled many times with different
 * seeds: no excluded token may appear), the penalty formulas
 * (transformers' RepetitionPenaltyLogitsProcessor, OpenAI's presence and
 * frequency penalties), logit bias, seeding and option checks; the draw
 * made ahead (mlxe_sampler_draw / sample_drawn, what the GPU path uses) and
 * the shared integer arithmetic of runtime/sampling.h. */
#include <math.h>
#include <stdbool.h>

#include "test_util.h"
#include "mlxengine/sampler.h"
#include "engine/engine_internal.h"
#include "engine/sampler_rng.h"
#include "runtime/sampling.h"

#define VOCAB 50

/* Deterministic pseudo-random logits in [-4, 4). */
static void make_logits(float *logits, int n, uint64_t seed) {
    mlxe_rng rng;
    mlxe_rng_seed(&rng, seed);
    for (int i = 0; i < n; i++) logits[i] = (float)(mlxe_rng_uniform(&rng) * 8.0 - 4.0);
}

static mlxe_sampler *make_sampler(const mlxe_sampler_options *options) {
    mlxe_sampler *s = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_sampler_create(options, VOCAB, &s, &err), MLXE_OK);
    return s;
}

/* Probabilities softmax(logits / temperature) in double. */
static void softmax(const float *logits, int n, double temperature, double *probs) {
    double max = -INFINITY, total = 0;
    for (int i = 0; i < n; i++) max = fmax(max, logits[i] / temperature);
    for (int i = 0; i < n; i++) total += probs[i] = exp(logits[i] / temperature - max);
    for (int i = 0; i < n; i++) probs[i] /= total;
}

static void test_greedy_picks_argmax(void **state) {
    (void)state;
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    assert_true(o.temperature == 0.0f); /* greedy by default */
    mlxe_sampler *s = make_sampler(&o);
    float logits[VOCAB];
    for (uint64_t trial = 0; trial < 50; trial++) {
        make_logits(logits, VOCAB, trial);
        int best = 0;
        for (int i = 1; i < VOCAB; i++)
            if (logits[i] > logits[best]) best = i;
        assert_int_equal(mlxe_sampler_sample(s, logits), best);
    }
    /* ties: the lowest id */
    for (int i = 0; i < VOCAB; i++) logits[i] = 1.0f;
    logits[7] = logits[9] = 2.0f;
    assert_int_equal(mlxe_sampler_sample(s, logits), 7);
    mlxe_sampler_free(s);
}

/* Samples with many seeds; fails if a token outside allowed appears;
 * returns how many distinct tokens appeared. */
static int sample_support(const mlxe_sampler_options *base, const float *logits, const bool *allowed) {
    bool seen[VOCAB] = {false};
    int distinct = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        mlxe_sampler_options o = *base;
        o.seed = seed;
        mlxe_sampler *s = make_sampler(&o);
        for (int draw = 0; draw < 5; draw++) {
            int32_t token = mlxe_sampler_sample(s, logits);
            assert_true(token >= 0 && token < VOCAB);
            if (!allowed[token]) fail_msg("token %d outside the allowed support was sampled", token);
            if (!seen[token]) distinct++;
            seen[token] = true;
        }
        mlxe_sampler_free(s);
    }
    return distinct;
}

static void test_top_k_restricts_support(void **state) {
    (void)state;
    float logits[VOCAB];
    make_logits(logits, VOCAB, 42);
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 1.5f;
    o.top_k = 5;
    bool allowed[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
        int higher = 0;
        for (int j = 0; j < VOCAB; j++) higher += logits[j] > logits[i];
        allowed[i] = higher < 5;
    }
    int distinct = sample_support(&o, logits, allowed);
    assert_int_equal(distinct, 5); /* and every one of the five is reachable */
}

static void test_top_p_restricts_support(void **state) {
    (void)state;
    float logits[VOCAB];
    make_logits(logits, VOCAB, 7);
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 1.0f;
    o.top_p = 0.5f;
    /* The definition: keep a token when the probability mass strictly above
     * it (in descending order) is below top_p. */
    double probs[VOCAB];
    softmax(logits, VOCAB, 1.0, probs);
    bool allowed[VOCAB];
    int n_allowed = 0;
    for (int i = 0; i < VOCAB; i++) {
        double above = 0;
        for (int j = 0; j < VOCAB; j++)
            if (probs[j] > probs[i]) above += probs[j];
        allowed[i] = above < 0.5;
        n_allowed += allowed[i];
    }
    assert_true(n_allowed > 1 && n_allowed < VOCAB);
    int distinct = sample_support(&o, logits, allowed);
    assert_true(distinct > 1);
}

static void test_min_p_restricts_support(void **state) {
    (void)state;
    float logits[VOCAB];
    make_logits(logits, VOCAB, 99);
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 0.8f;
    o.min_p = 0.2f;
    double probs[VOCAB], max = 0;
    softmax(logits, VOCAB, 0.8, probs);
    for (int i = 0; i < VOCAB; i++) max = fmax(max, probs[i]);
    bool allowed[VOCAB];
    int n_allowed = 0;
    for (int i = 0; i < VOCAB; i++) n_allowed += allowed[i] = probs[i] >= 0.2 * max;
    assert_true(n_allowed > 1 && n_allowed < VOCAB);
    assert_true(sample_support(&o, logits, allowed) > 1);
}

static void test_combined_filters_and_bias(void **state) {
    (void)state;
    float logits[VOCAB];
    make_logits(logits, VOCAB, 5);
    int best = 0;
    for (int i = 1; i < VOCAB; i++)
        if (logits[i] > logits[best]) best = i;
    /* a bias of -inf removes the best token; top_k 3 then keeps the next three */
    mlxe_logit_bias bias = {.token = best, .bias = -INFINITY};
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 1.0f;
    o.top_k = 3;
    o.logit_bias = &bias;
    o.n_logit_bias = 1;
    bool allowed[VOCAB];
    for (int i = 0; i < VOCAB; i++) {
        int higher = 0;
        for (int j = 0; j < VOCAB; j++) higher += j != best && logits[j] > logits[i];
        allowed[i] = i != best && higher < 3;
    }
    assert_int_equal(sample_support(&o, logits, allowed), 3);
    /* a large positive bias makes a token the greedy choice */
    mlxe_logit_bias boost = {.token = 3, .bias = 100.0f};
    mlxe_sampler_options g;
    mlxe_sampler_options_init(&g);
    g.logit_bias = &boost;
    g.n_logit_bias = 1;
    mlxe_sampler *s = make_sampler(&g);
    assert_int_equal(mlxe_sampler_sample(s, logits), 3);
    mlxe_sampler_free(s);
}

static void test_repetition_penalty_formula(void **state) {
    (void)state;
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.repetition_penalty = 1.3f;
    mlxe_sampler *s = make_sampler(&o);
    float logits[VOCAB], adjusted[VOCAB];
    make_logits(logits, VOCAB, 11);
    logits[3] = 2.0f;
    logits[5] = -1.5f;
    mlxe_sampler_accept(s, 3);
    mlxe_sampler_accept(s, 5);
    mlxe_sampler_accept(s, 3); /* repeated: still penalised once */
    memcpy(adjusted, logits, sizeof logits);
    mlxe_sampler_apply_penalties(s, adjusted);
    for (int i = 0; i < VOCAB; i++) {
        float expected = logits[i];
        if (i == 3 || i == 5) expected = logits[i] < 0 ? logits[i] * 1.3f : logits[i] / 1.3f;
        assert_float_equal(adjusted[i], expected, 1e-6);
    }
    /* the penalty now makes 3 lose to a token it used to beat */
    float two[VOCAB];
    for (int i = 0; i < VOCAB; i++) two[i] = -10.0f;
    two[3] = 2.0f;
    two[8] = 1.8f;
    assert_int_equal(mlxe_sampler_sample(s, two), 8);
    mlxe_sampler_free(s);
}

static void test_presence_frequency_and_window(void **state) {
    (void)state;
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.presence_penalty = 0.5f;
    o.frequency_penalty = 0.25f;
    o.penalty_last_n = 4;
    mlxe_sampler *s = make_sampler(&o);
    const int32_t history[] = {1, 2, 2, 2, 3}; /* window of 4 drops the first 1 */
    for (int i = 0; i < 5; i++) mlxe_sampler_accept(s, history[i]);
    float logits[VOCAB], adjusted[VOCAB];
    make_logits(logits, VOCAB, 13);
    memcpy(adjusted, logits, sizeof logits);
    mlxe_sampler_apply_penalties(s, adjusted);
    assert_float_equal(adjusted[1], logits[1], 0);                       /* left the window */
    assert_float_equal(adjusted[2], logits[2] - 3 * 0.25f - 0.5f, 1e-6); /* count 3 */
    assert_float_equal(adjusted[3], logits[3] - 0.25f - 0.5f, 1e-6);     /* count 1 */
    assert_float_equal(adjusted[4], logits[4], 0);
    /* reset forgets the history */
    mlxe_sampler_reset(s);
    memcpy(adjusted, logits, sizeof logits);
    mlxe_sampler_apply_penalties(s, adjusted);
    assert_memory_equal(adjusted, logits, sizeof logits);
    mlxe_sampler_free(s);
}

static void draw_sequence(uint64_t seed, int32_t *out, int n) {
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 1.0f;
    o.top_p = 0.95f;
    o.seed = seed;
    mlxe_sampler *s = make_sampler(&o);
    assert_int_equal(mlxe_sampler_seed(s), seed);
    float logits[VOCAB];
    for (int i = 0; i < n; i++) {
        make_logits(logits, VOCAB, (uint64_t)i);
        out[i] = mlxe_sampler_sample(s, logits);
        mlxe_sampler_accept(s, out[i]);
    }
    mlxe_sampler_free(s);
}

static void test_same_seed_same_tokens(void **state) {
    (void)state;
    int32_t a[64], b[64], c[64];
    draw_sequence(1234, a, 64);
    draw_sequence(1234, b, 64);
    draw_sequence(4321, c, 64);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    /* reset replays the same draws */
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 1.0f;
    o.seed = 77;
    mlxe_sampler *s = make_sampler(&o);
    float logits[VOCAB];
    make_logits(logits, VOCAB, 3);
    int32_t first[16];
    for (int i = 0; i < 16; i++) first[i] = mlxe_sampler_sample(s, logits);
    mlxe_sampler_reset(s);
    for (int i = 0; i < 16; i++) assert_int_equal(mlxe_sampler_sample(s, logits), first[i]);
    mlxe_sampler_free(s);
    /* a random seed is drawn and reported */
    mlxe_sampler_options_init(&o);
    s = make_sampler(&o);
    assert_true(mlxe_sampler_seed(s) != MLXE_SEED_RANDOM);
    mlxe_sampler_free(s);
}

static void test_xoshiro_reference_values(void **state) {
    (void)state;
    /* xoshiro256** from the state {1, 2, 3, 4}: the first outputs of the
     * reference C implementation (prng.di.unimi.it/xoshiro256starstar.c). */
    mlxe_rng rng = {{1, 2, 3, 4}};
    assert_true(mlxe_rng_next(&rng) == 11520ULL);
    assert_true(mlxe_rng_next(&rng) == 0ULL);
    assert_true(mlxe_rng_next(&rng) == 1509978240ULL);
    assert_true(mlxe_rng_next(&rng) == 1215971899390074240ULL);
    for (int i = 0; i < 1000; i++) {
        double u = mlxe_rng_uniform(&rng);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

static void test_bad_options(void **state) {
    (void)state;
    mlxe_sampler *s = (mlxe_sampler *)1;
    mlxe_error err;
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.top_p = 0.0f;
    assert_int_equal(mlxe_sampler_create(&o, VOCAB, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_null(s);
    assert_message_contains(err.message, "top_p");
    mlxe_sampler_options_init(&o);
    o.min_p = 1.5f;
    assert_int_equal(mlxe_sampler_create(&o, VOCAB, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "min_p");
    mlxe_sampler_options_init(&o);
    o.repetition_penalty = 0.0f;
    assert_int_equal(mlxe_sampler_create(&o, VOCAB, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "repetition_penalty");
    mlxe_sampler_options_init(&o);
    o.temperature = NAN;
    assert_int_equal(mlxe_sampler_create(&o, VOCAB, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_logit_bias bias = {.token = VOCAB, .bias = 1.0f};
    mlxe_sampler_options_init(&o);
    o.logit_bias = &bias;
    o.n_logit_bias = 1;
    assert_int_equal(mlxe_sampler_create(&o, VOCAB, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "logit_bias");
    assert_int_equal(mlxe_sampler_create(NULL, 0, &s, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_sampler_free(NULL);
    /* ids outside the vocabulary are ignored by accept */
    s = make_sampler(NULL);
    mlxe_sampler_accept(s, -1);
    mlxe_sampler_accept(s, VOCAB);
    mlxe_sampler_free(s);
}

/* sample == sample_drawn with the draw of an identically seeded sampler;
 * with temperature > 0 every token takes exactly one draw, even from a row
 * with nothing left to draw from. */
static void test_draw_ahead(void **state) {
    (void)state;
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 0.9f;
    o.top_k = 20;
    o.top_p = 0.9f;
    o.seed = 5;
    mlxe_sampler *a = make_sampler(&o), *b = make_sampler(&o);
    float logits[VOCAB], dead[VOCAB];
    for (int i = 0; i < VOCAB; i++) dead[i] = -INFINITY;
    dead[7] = NAN;
    for (int step = 0; step < 200; step++) {
        make_logits(logits, VOCAB, (uint64_t)step);
        const float *row = step % 17 == 3 ? dead : logits;
        int32_t want = mlxe_sampler_sample(a, row);
        uint64_t bits = mlxe_sampler_draw(b);
        assert_true(bits < ((uint64_t)1 << 53));
        assert_int_equal(mlxe_sampler_sample_drawn(b, row, bits), want);
        if (row == dead) assert_int_equal(want, 0); /* argmax: -inf beats NaN, lowest index */
    }
    mlxe_sampler_free(a);
    mlxe_sampler_free(b);
    /* greedy takes no draw */
    o.temperature = 0.0f;
    a = make_sampler(&o);
    assert_true(mlxe_sampler_draw(a) == 0);
    mlxe_sampler_free(a);
}

/* +inf (here after a tiny temperature) outweighs every finite logit: the
 * best ranked of them, the lowest id, whatever the draw. */
static void test_infinite_logits(void **state) {
    (void)state;
    mlxe_sampler_options o;
    mlxe_sampler_options_init(&o);
    o.temperature = 1e-38f;
    o.seed = 9;
    mlxe_sampler *s = make_sampler(&o);
    float logits[VOCAB];
    make_logits(logits, VOCAB, 4);
    for (int i = 0; i < VOCAB; i++) logits[i] = i % 2 ? -fabsf(logits[i]) - 0.5f : -0.0f; /* -inf, or 0 */
    logits[30] = logits[12] = 4.5f; /* finite, but over FLT_MAX once divided */
    for (int i = 0; i < 20; i++) assert_int_equal(mlxe_sampler_sample(s, logits), 12);
    mlxe_sampler_free(s);
}

/* The integer weights are floor(2^40 * exp(d)) (checked against libm's exp
 * in long double), the target is floor(bits * total / 2^53) (checked in 128
 * bits), and the weight shift keeps a vocabulary's sum under 2^63. */
static void test_integer_arithmetic(void **state) {
    (void)state;
    int off = 0;
    for (int i = 0; i < 100000; i++) {
        float d = -(float)i * 0.0003f;
        long double exact = expl((long double)d) * 1099511627776.0L;
        uint64_t w = mlxe_sample_weight(d, 40);
        long double diff = (long double)w - floorl(exact);
        if (diff != 0) off++;
        assert_true(diff >= -1 && diff <= 1);
    }
    assert_true(off < 100); /* at most a rounding at a floor's edge */
    assert_true(mlxe_sample_weight(0.0f, 40) == (uint64_t)1 << 40);
    assert_true(mlxe_sample_weight(-100.0f, 40) == 0);
    assert_true(mlxe_sample_weight(NAN, 40) == 0);
    __extension__ typedef unsigned __int128 u128;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t bits = x >> 11, total = (x * 2654435761ULL) >> (i % 40);
        assert_true(mlxe_sample_target(bits, total) == (uint64_t)(((u128)bits * total) >> 53));
        assert_true(mlxe_sample_target(bits, total) < total || total == 0);
    }
    assert_int_equal(mlxe_sample_weight_shift(128256), 40);
    assert_int_equal(mlxe_sample_weight_shift((int64_t)1 << 30), 32);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_picks_argmax),
        cmocka_unit_test(test_draw_ahead),
        cmocka_unit_test(test_infinite_logits),
        cmocka_unit_test(test_integer_arithmetic),
        cmocka_unit_test(test_top_k_restricts_support),
        cmocka_unit_test(test_top_p_restricts_support),
        cmocka_unit_test(test_min_p_restricts_support),
        cmocka_unit_test(test_combined_filters_and_bias),
        cmocka_unit_test(test_repetition_penalty_formula),
        cmocka_unit_test(test_presence_frequency_and_window),
        cmocka_unit_test(test_same_seed_same_tokens),
        cmocka_unit_test(test_xoshiro_reference_values),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
