/* tests/unit/test_models_fixtures.c — every model under tests/fixtures/models
 * against the reference.json transformers wrote for it (the fixtures
 * helper's scripts/fixtures/make_fixtures.py):
 *  - the RoPE table at load (and after each forward, for dynamic NTK) equals
 *    transformers' inv_freq and attention scaling;
 *  - our logits at every position of every sequence match: float32 models
 *    within 1e-4 of max |logit|; bfloat16 models within 1e-4 of the
 *    reference computed in float32 from the same bf16 weights (what we do),
 *    and within a bf16-sized bound of the reference computed in bf16;
 *  - greedy continuation of 32 tokens identical (through mlxe_generate);
 *  - prefill in one pass == in chunks == token by token. */
#include <dirent.h>
#include <math.h>
#include <unistd.h>

#include "test_util.h"
#include "fixture_reference.h"
#include "base/json.h"
#include "engine/engine_internal.h"
#include "mlxengine/mlxengine.h"
#include "models/rope.h"

#define FIXTURE_DIR MLXE_FIXTURES "/models"

typedef struct fixture {
    char dir[512];
    cJSON *reference;
    mlxe_model *model;
    bool bf16;
} fixture;

static void open_fixture(fixture *f, const char *name) {
    snprintf(f->dir, sizeof f->dir, "%s/%s", FIXTURE_DIR, name);
    char path[600];
    snprintf(path, sizeof path, "%s/reference.json", f->dir);
    mlxe_error err;
    if (mlxe_json_parse_file(path, 64 << 20, &f->reference, &err) != MLXE_OK) fail_msg("%s", err.message);
    if (mlxe_model_load(f->dir, NULL, &f->model, &err) != MLXE_OK) fail_msg("load %s: %s", name, err.message);
    const cJSON *dtype = cJSON_GetObjectItem(f->reference, "weights_dtype");
    f->bf16 = cJSON_IsString(dtype) && strcmp(dtype->valuestring, "bfloat16") == 0;
}

static void close_fixture(fixture *f) {
    mlxe_model_free(f->model);
    cJSON_Delete(f->reference);
}

/* Decodes ids into a fresh sequence 0 of ctx, every row wanting logits,
 * batch_rows rows per decode call; logits out [n][vocab]. */
static void decode_all(mlxe_context *ctx, const int32_t *ids, int n, int batch_rows, float *out) {
    int64_t vocab = mlxe_model_vocab_size(mlxe_context_model(ctx));
    mlxe_context_seq_clear(ctx, 0);
    for (int first = 0; first < n; first += batch_rows) {
        int rows = n - first < batch_rows ? n - first : batch_rows;
        int32_t positions[256], seqs[256] = {0};
        int8_t want[256];
        for (int r = 0; r < rows; r++) {
            positions[r] = first + r;
            want[r] = 1;
        }
        mlxe_batch b = {.n_tokens = rows, .tokens = ids + first, .positions = positions, .seq_ids = seqs, .logits = want};
        mlxe_error err;
        if (mlxe_context_decode(ctx, &b, &err) != MLXE_OK) fail_msg("decode: %s", err.message);
        for (int r = 0; r < rows; r++)
            memcpy(out + (size_t)(first + r) * vocab, mlxe_context_logits(ctx, r), (size_t)vocab * sizeof(float));
    }
}

/* max |ours - ref| and max |ref| over a [n][vocab] reference array. */
static void compare_logits(const float *ours, const cJSON *reference, int64_t vocab, double *max_error, double *max_ref) {
    *max_error = 0;
    *max_ref = 0;
    int row = 0;
    const cJSON *position;
    cJSON_ArrayForEach(position, reference) {
        int64_t v = 0;
        const cJSON *value;
        cJSON_ArrayForEach(value, position) {
            double ref = value->valuedouble, got = ours[(size_t)row * vocab + v];
            *max_error = fmax(*max_error, fabs(got - ref));
            *max_ref = fmax(*max_ref, fabs(ref));
            if (!isfinite(got)) *max_error = INFINITY;
            v++;
        }
        if (v != vocab) fail_msg("reference row has %lld logits, model vocab %lld", (long long)v, (long long)vocab);
        row++;
    }
}

static void check_rope_table(const char *name, const cJSON *rope, const mlxe_model *model, int64_t seq_len) {
    mlxe_rope_params params;
    mlxe_rope_params_from_config(&model->config, &params);
    float inv_freq[512], attention_scale = 0;
    mlxe_rope_frequencies(&params, seq_len, inv_freq, &attention_scale);
    int i = 0;
    const cJSON *value;
    cJSON_ArrayForEach(value, cJSON_GetObjectItem(rope, "inv_freq")) {
        double ref = value->valuedouble;
        if (fabs(inv_freq[i] - ref) > 2e-6 * fabs(ref))
            fail_msg("%s: inv_freq[%d] for seq_len %lld is %.9g, transformers has %.9g", name, i, (long long)seq_len,
                     (double)inv_freq[i], ref);
        i++;
    }
    assert_int_equal(i, params.dim / 2);
    double ref_scale = cJSON_GetObjectItem(rope, "attention_scaling")->valuedouble;
    if (fabs(attention_scale - ref_scale) > 1e-6 * ref_scale)
        fail_msg("%s: attention scaling %.9g, transformers has %.9g", name, (double)attention_scale, ref_scale);
}

static double worst_f32_relative = 0, worst_bf16_abs = 0, worst_bf16_relative = 0;

static void check_fixture_logits(const char *name) {
    fixture f;
    open_fixture(&f, name);
    int64_t vocab = mlxe_model_vocab_size(f.model);
    check_rope_table(name, cJSON_GetObjectItem(f.reference, "rope_at_load"), f.model, 0);
    mlxe_context_options o;
    mlxe_context_options_init(&o);
    o.n_ctx = 256;
    o.n_ubatch = 64;
    mlxe_context *ctx = NULL, *chunked_ctx = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_context_create(f.model, &o, &ctx, &err), MLXE_OK);
    o.n_ubatch = 5;
    assert_int_equal(mlxe_context_create(f.model, &o, &chunked_ctx, &err), MLXE_OK);
    bool dynamic = f.model->config.rope_scaling.type == MLXE_ROPE_SCALING_DYNAMIC;

    const cJSON *sequence;
    cJSON_ArrayForEach(sequence, cJSON_GetObjectItem(f.reference, "sequences")) {
        int32_t ids[256];
        int n = fixture_json_ids(cJSON_GetObjectItem(sequence, "input_ids"), ids, 256);
        check_rope_table(name, cJSON_GetObjectItem(sequence, "rope_after_forward"), f.model, n);
        float *ours = malloc((size_t)n * (size_t)vocab * sizeof(float));
        float *other = malloc((size_t)n * (size_t)vocab * sizeof(float));
        decode_all(ctx, ids, n, n, ours);
        double error, max_ref;
        if (f.bf16) {
            compare_logits(ours, cJSON_GetObjectItem(sequence, "logits_float32_compute"), vocab, &error, &max_ref);
            worst_f32_relative = fmax(worst_f32_relative, error / max_ref);
            if (error > 1e-4 * max_ref)
                fail_msg("%s (%d tokens): logits differ from the float32-compute reference by %g (max |logit| %g)",
                         name, n, error, max_ref);
            compare_logits(ours, cJSON_GetObjectItem(sequence, "logits"), vocab, &error, &max_ref);
            worst_bf16_abs = fmax(worst_bf16_abs, error);
            worst_bf16_relative = fmax(worst_bf16_relative, error / max_ref);
            /* bf16 keeps 8 bits of mantissa: each rounding is 2^-9 relative,
             * and transformers rounds after every op; 5% of the largest
             * logit bounds what that accumulates to over two layers. */
            if (error > 0.05 * max_ref)
                fail_msg("%s (%d tokens): logits differ from the bf16 reference by %g (max |logit| %g)", name, n,
                         error, max_ref);
        } else {
            compare_logits(ours, cJSON_GetObjectItem(sequence, "logits"), vocab, &error, &max_ref);
            worst_f32_relative = fmax(worst_f32_relative, error / max_ref);
            if (error > 1e-4 * max_ref)
                fail_msg("%s (%d tokens): logits differ from transformers by %g (max |logit| %g)", name, n, error,
                         max_ref);
        }
        /* one decode call run as passes of 5 rows gives the same logits */
        decode_all(chunked_ctx, ids, n, n, other);
        for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++)
            if (fabsf(other[i] - ours[i]) > 1e-5f * fmaxf(1.0f, fabsf(ours[i])))
                fail_msg("%s: chunked prefill differs at %zu: %g vs %g", name, i, (double)other[i], (double)ours[i]);
        /* and so does token by token (dynamic NTK excepted past
         * max_position_embeddings: there the frequencies depend on each
         * forward's length, in transformers too) */
        if (!dynamic || n <= f.model->config.max_position_embeddings) {
            decode_all(ctx, ids, n, 1, other);
            for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++)
                if (fabsf(other[i] - ours[i]) > 1e-5f * fmaxf(1.0f, fabsf(ours[i])))
                    fail_msg("%s: token-by-token differs at %zu: %g vs %g", name, i, (double)other[i], (double)ours[i]);
        }
        free(ours);
        free(other);
    }
    mlxe_context_free(ctx);
    mlxe_context_free(chunked_ctx);
    close_fixture(&f);
}

static void test_fixture_logits(void **state) {
    (void)state;
    int count = fixture_for_each_reference(FIXTURE_DIR, check_fixture_logits);
    assert_true(count >= 1);
    fprintf(stderr, "fixtures: %d models; worst |ours - ref| / max|ref|: float32 %.3g; bf16 models vs bf16 "
                    "reference: max abs %.3g (relative %.3g)\n",
            count, worst_f32_relative, worst_bf16_abs, worst_bf16_relative);
}

typedef struct token_list {
    int32_t ids[64];
    int n;
} token_list;

static bool keep_token(void *user, int32_t token) {
    token_list *list = user;
    if (list->n < 64) list->ids[list->n++] = token;
    return true;
}

static void check_fixture_greedy(const char *name) {
    fixture f;
    open_fixture(&f, name);
    const cJSON *greedy = cJSON_GetObjectItem(f.reference, "greedy");
    /* bf16 models: we compute in float32, so compare with transformers'
     * float32-compute run of the same weights */
    const cJSON *expected_source = f.bf16 ? cJSON_GetObjectItem(greedy, "float32_compute") : greedy;
    int32_t prompt[256], expected[64];
    int n_prompt = fixture_json_ids(cJSON_GetObjectItem(greedy, "prompt"), prompt, 256);
    int n_expected = fixture_json_ids(cJSON_GetObjectItem(expected_source, "generate"), expected, 64);
    mlxe_context *ctx = NULL;
    mlxe_error err;
    mlxe_context_options o;
    mlxe_context_options_init(&o);
    o.n_ctx = 128;
    o.n_ubatch = 3;
    assert_int_equal(mlxe_context_create(f.model, &o, &ctx, &err), MLXE_OK);
    mlxe_generate_options g;
    mlxe_generate_options_init(&g);
    g.max_tokens = (int64_t)cJSON_GetObjectItem(greedy, "max_new_tokens")->valuedouble;
    g.ignore_eos = true;
    token_list got = {0};
    mlxe_generate_stats stats;
    if (mlxe_generate(ctx, prompt, n_prompt, &g, keep_token, &got, NULL, &stats, &err) != MLXE_OK)
        fail_msg("%s: %s", name, err.message);
    assert_int_equal(got.n, n_expected);
    for (int i = 0; i < n_expected; i++)
        if (got.ids[i] != expected[i])
            fail_msg("%s: greedy token %d is %d, transformers generated %d", name, i, got.ids[i], expected[i]);
    mlxe_context_free(ctx);
    close_fixture(&f);
}

static void test_fixture_greedy(void **state) {
    (void)state;
    assert_true(fixture_for_each_reference(FIXTURE_DIR, check_fixture_greedy) >= 1);
}

int main(void) {
    /* These compare the models with transformers' float32 references at
     * 1e-4: float-activation kernels (the default ones round BF16 prefill
     * activations to bf16 on AVX512_BF16 processors; their bounds are
     * checked in test_runtime_cpu_gemm_bf16.c). */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_logits),
        cmocka_unit_test(test_fixture_greedy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
