/* tests/unit/test_models_cuda_int8.c — the GPU's int8-activation decode path
 * (runtime/cuda/cuda_matvec_int8.cu, the default for 4/8-bit weights)
 * against its exact float-activation kernels (MLXE_CUDA_MATVEC=float) on the
 * embedded default 4-bit model (models/default-4bit, group 32), as
 * test_runtime_cpu_int8_model.c checks the CPU's int8 kernels:
 *   - decode-mode perplexity (the held-out sample fed one token at a time,
 *     so every product takes the one-token path, recorded decode graphs
 *     included) moves by less than 5%, the change test_embedded_model.c
 *     accepts between the 4-bit and BF16 models: int8 activations may not
 *     cost more than the weight quantization the project already accepts;
 *     both perplexities and the largest logit difference are printed, and
 *     the logits must differ somewhere (the int8 path ran);
 *   - greedy continuations of the 8 golden prompts (tests/embedded/golden.json,
 *     both paths in lockstep, the prompt prefilled by the same GEMM path): the
 *     agreement is printed with the float path's top-2 margin where they
 *     part; at least half of the 512 tokens must agree (a regression guard,
 *     not a derived bound: a broken kernel parts within a few tokens; 437,
 *     and 4 of the 8 prompts throughout, on an H200 when this was written).
 * Skips without a GPU; MLXE_REQUIRE_GPU=1 makes that a failure. */
#include <math.h>

#include "mlxengine/mlxengine.h"
#include "runtime/device.h"
#include "model_compare_test.h"
#include "runtime_cuda_test.h"
#include "test_util.h"

#define GOLDEN MLXE_SOURCE_DIR "/tests/embedded/golden.json"
#define SAMPLE MLXE_SOURCE_DIR "/tests/embedded/heldout_sample.txt"
#define MODEL_4BIT MLXE_SOURCE_DIR "/models/default-4bit"
#define N_CTX 512

/* Skips the calling test (with the reason) when no GPU is usable. */
static void require_gpu(void) { mlxe_device_free(cuda_device_or_skip()); }

static void open_on_gpu(mlxe_model **model, mlxe_context **ctx) {
    mlxe_model_options o;
    mlxe_model_options_init(&o);
    o.device = "cuda";
    mlxe_error err;
    if (mlxe_model_load(MODEL_4BIT, &o, model, &err) != MLXE_OK) fail_msg("%s", err.message);
    mlxe_context_options options;
    mlxe_context_options_init(&options);
    options.n_ctx = N_CTX;
    if (mlxe_context_create(*model, &options, ctx, &err) != MLXE_OK) fail_msg("%s", err.message);
}

/* The float-path model reads MLXE_CUDA_MATVEC=float at its first one-token
 * product (a decode of token 0 here), the int8 one finds it unset. */
static void open_both(mlxe_model **float_model, mlxe_context **float_ctx, mlxe_model **int8_model,
                      mlxe_context **int8_ctx) {
    setenv("MLXE_CUDA_MATVEC", "float", 1);
    open_on_gpu(float_model, float_ctx);
    const int32_t first = 0;
    compare_decode_one(*float_ctx, &first, 0);
    unsetenv("MLXE_CUDA_MATVEC");
    open_on_gpu(int8_model, int8_ctx);
    mlxe_context_seq_clear(*float_ctx, 0);
}

static void test_decode_perplexity(void **state) {
    (void)state;
    require_gpu();
    mlxe_token_list ids;
    compare_encode_file(MODEL_4BIT, SAMPLE, &ids);
    const int64_t n = (int64_t)ids.count < N_CTX ? (int64_t)ids.count : N_CTX;
    mlxe_model *float_model = NULL, *int8_model = NULL;
    mlxe_context *float_ctx = NULL, *int8_ctx = NULL;
    open_both(&float_model, &float_ctx, &int8_model, &int8_ctx);
    const int64_t vocab = mlxe_model_vocab_size(float_model);
    double nll_exact = 0, nll_int8 = 0, worst = 0, worst_max = 0;
    for (int64_t i = 0; i + 1 < n; i++) {
        const float *a = compare_decode_one(float_ctx, ids.ids, i), *b = compare_decode_one(int8_ctx, ids.ids, i);
        for (int64_t v = 0; v < vocab; v++) {
            if (!isfinite(b[v])) fail_msg("token %lld: int8 logit %lld is %g", (long long)i, (long long)v, b[v]);
            worst = fmax(worst, fabs((double)a[v] - b[v]));
            worst_max = fmax(worst_max, fabs(a[v]));
        }
        nll_exact += compare_nll_of(a, vocab, ids.ids[i + 1]);
        nll_int8 += compare_nll_of(b, vocab, ids.ids[i + 1]);
    }
    double exact = exp(nll_exact / (double)(n - 1)), int8 = exp(nll_int8 / (double)(n - 1));
    print_message("GPU: largest logit difference int8 - float %.4g (largest |logit| %.4g)\n", worst, worst_max);
    print_message("GPU: decode perplexity of %lld sample tokens: float activations %.4f, int8 activations %.4f "
                  "(%+.3f%%)\n",
                  (long long)n, exact, int8, 100.0 * (int8 - exact) / exact);
    mlxe_context_free(float_ctx);
    mlxe_context_free(int8_ctx);
    mlxe_model_free(float_model);
    mlxe_model_free(int8_model);
    assert_true(worst > 0.0); /* the int8 path ran */
    if (fabs(int8 - exact) > 0.05 * exact)
        fail_msg("int8 activations move decode perplexity from %.4f to %.4f (more than 5%%)", exact, int8);
    mlxe_token_list_free(&ids);
}

static void test_greedy_agrees(void **state) {
    (void)state;
    require_gpu();
    mlxe_model *float_model = NULL, *int8_model = NULL;
    mlxe_context *float_ctx = NULL, *int8_ctx = NULL;
    open_both(&float_model, &float_ctx, &int8_model, &int8_ctx);
    const int n_new = 64;
    const compare_agreement found = compare_greedy_golden(GOLDEN, float_ctx, int8_ctx,
                                                          mlxe_model_vocab_size(float_model), n_new,
                                                          "GPU int8 activations");
    assert_int_equal(found.prompts, 8);
    print_message("GPU greedy agreement: %d of %d tokens, %d of 8 prompts throughout\n", found.tokens, 8 * n_new,
                  found.throughout);
    if (found.tokens < 4 * n_new)
        fail_msg("int8 activations agree with float for only %d of %d greedy tokens", found.tokens, 8 * n_new);
    mlxe_context_free(float_ctx);
    mlxe_context_free(int8_ctx);
    mlxe_model_free(float_model);
    mlxe_model_free(int8_model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_perplexity),
        cmocka_unit_test(test_greedy_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
