/* tests/unit/test_runtime_cpu_int8_model.c — the int8-activation decode
 * kernels (the default on AVX-512 VNNI processors, table avx512-int8) against
 * the exact float-activation kernels (MLXE_CPU_KERNELS=float) on the
 * embedded default 4-bit model (models/default-4bit, group 32):
 *   - greedy continuations of the 8 golden prompts (tests/embedded/golden.json,
 *     64 tokens, both paths in lockstep): the agreement is printed with the
 *     float path's top-2 margin where they part; at least 4 of the 8 must
 *     agree throughout (a regression guard: 5 did when this was written);
 *   - decode-mode perplexity (the held-out sample fed one token at a time, so
 *     every matmul takes the decode path) moves by less than 5%, the change
 *     test_embedded_model.c accepts between the 4-bit and BF16 models: int8
 *     activations may not cost more than the weight quantization the project
 *     already accepts. Both perplexities and the largest logit difference
 *     are printed;
 *   - the same for the BF16 model (models/default) with the one-token BF16
 *     kernels' bf16-rounded activations (and, in the fast builds, the
 *     avx512-int8-split table's split activations).
 * The kernel-level error bound is checked in test_runtime_cpu_quant.c.
 * Skipped on processors without AVX-512 VNNI (no int8 path there). Sanitizer
 * and Debug builds score a shorter stretch of the sample. */
#include <math.h>

#include "base/build_config.h"
#include "mlxengine/mlxengine.h"
#include "runtime/cpu/cpu_kernels.h"
#include "model_compare_test.h"
#include "test_util.h"

#define GOLDEN MLXE_SOURCE_DIR "/tests/embedded/golden.json"
#define SAMPLE MLXE_SOURCE_DIR "/tests/embedded/heldout_sample.txt"
#define MODEL_4BIT MLXE_SOURCE_DIR "/models/default-4bit"
#define MODEL_BF16 MLXE_SOURCE_DIR "/models/default"
#define N_CTX 512

static bool slow_build(void) {
    return strcmp(MLXE_BUILD_SANITIZERS, "none") != 0 || strcmp(MLXE_BUILD_TYPE, "Debug") == 0;
}

/* The model on a device with the given kernel table (MLXE_CPU_KERNELS is
 * read when the context's device is created). */
static void load_model(const char *dir, const char *kernels, mlxe_model **model, mlxe_context **ctx) {
    mlxe_error err;
    setenv("MLXE_CPU_KERNELS", kernels, 1);
    if (mlxe_model_load(dir, NULL, model, &err) != MLXE_OK) fail_msg("%s", err.message);
    mlxe_context_options options;
    mlxe_context_options_init(&options);
    options.n_ctx = N_CTX;
    if (mlxe_context_create(*model, &options, ctx, &err) != MLXE_OK) fail_msg("%s", err.message);
    unsetenv("MLXE_CPU_KERNELS");
}
static void load(const char *kernels, mlxe_model **model, mlxe_context **ctx) {
    load_model(MODEL_4BIT, kernels, model, ctx);
}

/* Greedy decoding of each golden prompt with both kernel sets in lockstep
 * (compare_greedy_golden; the prompt's batch takes the float prefill
 * kernels in both). */
static void test_greedy_agrees(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) skip();
    mlxe_model *float_model = NULL, *int8_model = NULL;
    mlxe_context *float_ctx = NULL, *int8_ctx = NULL;
    load("float", &float_model, &float_ctx);
    load("avx512-int8", &int8_model, &int8_ctx);
    assert_string_equal(mlxe_model_device_name(int8_model), "cpu-avx512-int8");
    assert_string_equal(mlxe_model_device_name(float_model), "cpu-avx512");
    const int n_new = slow_build() ? 12 : 64;
    const compare_agreement found = compare_greedy_golden(GOLDEN, float_ctx, int8_ctx,
                                                          mlxe_model_vocab_size(float_model), n_new, "int8 activations");
    assert_int_equal(found.prompts, 8);
    printf("greedy agreement: %d of %d tokens, %d of 8 prompts throughout\n", found.tokens, 8 * n_new,
           found.throughout);
    /* A regression guard, not a derived bound: divergences happen at near-ties
     * (float top-2 margins 0.0001-0.6 when this was written, 5 of 8 prompts
     * agreeing throughout); a broken kernel diverges within a few tokens. */
    if (found.throughout < 4)
        fail_msg("int8 activations change the greedy continuation of %d of 8 prompts", 8 - found.throughout);
    mlxe_context_free(float_ctx);
    mlxe_context_free(int8_ctx);
    mlxe_model_free(float_model);
    mlxe_model_free(int8_model);
}

/* Decode-mode perplexity of the model in dir with the float kernels and
 * with the given lower-precision table; fails past 5%. */
static void check_decode_perplexity(const char *dir, const char *kernels, const char *what) {
    mlxe_token_list ids;
    compare_encode_file(dir, SAMPLE, &ids);
    const int64_t n = (int64_t)ids.count < N_CTX ? (int64_t)ids.count : slow_build() ? 48 : N_CTX;
    mlxe_model *float_model = NULL, *lowp_model = NULL;
    mlxe_context *float_ctx = NULL, *lowp_ctx = NULL;
    load_model(dir, "float", &float_model, &float_ctx);
    load_model(dir, kernels, &lowp_model, &lowp_ctx);
    const int64_t vocab = mlxe_model_vocab_size(float_model);
    double nll_exact = 0, nll_lowp = 0, worst = 0, worst_max = 0;
    for (int64_t i = 0; i + 1 < n; i++) {
        const float *a = compare_decode_one(float_ctx, ids.ids, i), *b = compare_decode_one(lowp_ctx, ids.ids, i);
        for (int64_t v = 0; v < vocab; v++) {
            worst = fmax(worst, fabs((double)a[v] - b[v]));
            worst_max = fmax(worst_max, fabs(a[v]));
        }
        nll_exact += compare_nll_of(a, vocab, ids.ids[i + 1]);
        nll_lowp += compare_nll_of(b, vocab, ids.ids[i + 1]);
    }
    double exact = exp(nll_exact / (double)(n - 1)), lowp = exp(nll_lowp / (double)(n - 1));
    printf("%s (%s): largest logit difference %.4g (largest |logit| %.4g)\n", dir + strlen(MLXE_SOURCE_DIR) + 1,
           kernels, worst, worst_max);
    mlxe_context_free(float_ctx);
    mlxe_context_free(lowp_ctx);
    mlxe_model_free(float_model);
    mlxe_model_free(lowp_model);
    printf("%s: decode perplexity of %lld sample tokens: float activations %.4f, %s %.4f (%+.3f%%)\n",
           dir + strlen(MLXE_SOURCE_DIR) + 1, (long long)n, exact, what, lowp, 100.0 * (lowp - exact) / exact);
    if (fabs(lowp - exact) > 0.05 * exact)
        fail_msg("%s moves decode perplexity of %s from %.4f to %.4f (more than 5%%)", what, dir, exact, lowp);
    mlxe_token_list_free(&ids);
}

static void test_decode_perplexity(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) skip();
    check_decode_perplexity(MODEL_4BIT, "avx512-int8", "int8 activations");
}

/* The BF16 model's one-token path: bf16-rounded activations (default) and
 * the split table, both against the float kernels (a no-op comparison on
 * processors without AVX512_BF16, which take the float kernels). */
static void test_decode_perplexity_bf16(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) skip();
    check_decode_perplexity(MODEL_BF16, "avx512-int8", "bf16 activations");
    if (!slow_build()) check_decode_perplexity(MODEL_BF16, "avx512-int8-split", "split bf16 activations");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_agrees),
        cmocka_unit_test(test_decode_perplexity),
        cmocka_unit_test(test_decode_perplexity_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
