/* tests/unit/test_models_quant.c — MLX affine-quantized weights (packed U32
 * + scales + biases, bits and group size read off the shapes): a quantized
 * model gives the logits of its float twin holding the dequantized values
 * (scale * q + bias), for 3, 4 and 8 bits, tied and untied; inconsistent
 * quantized tensors are refused with the tensor named. */
#include <math.h>

#include "test_model_util.h"
#include "mlxengine/mlxengine.h"

static mlxe_model *write_and_load(test_model_spec *spec, char *dir, size_t dir_size) {
    test_make_temp_dir(dir, dir_size);
    test_write_model(dir, spec, 77);
    mlxe_model *model = NULL;
    mlxe_error err;
    if (mlxe_model_load(dir, NULL, &model, &err) != MLXE_OK) fail_msg("load: %s", err.message);
    return model;
}

/* Logits of every position of a fixed prompt, [n][vocab]. */
static float *prompt_logits(mlxe_model *model, int n) {
    int64_t vocab = mlxe_model_vocab_size(model);
    mlxe_context *ctx = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_context_create(model, NULL, &ctx, &err), MLXE_OK);
    int32_t ids[32], positions[32], seqs[32] = {0};
    int8_t want[32];
    for (int i = 0; i < n; i++) {
        ids[i] = (int32_t)((i * 37 + 5) % vocab);
        positions[i] = i;
        want[i] = 1;
    }
    mlxe_batch b = {.n_tokens = n, .tokens = ids, .positions = positions, .seq_ids = seqs, .logits = want};
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
    float *out = malloc((size_t)n * (size_t)vocab * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * vocab, mlxe_context_logits(ctx, i), (size_t)vocab * sizeof(float));
    mlxe_context_free(ctx);
    return out;
}

static void check_twin(const char *model_type, bool tied, int bits) {
    test_model_spec spec;
    test_model_spec_init(&spec, model_type);
    spec.ffn = 64;
    spec.tied = tied;
    spec.quant_bits = bits;
    spec.quant_group = 32;
    char config[96];
    snprintf(config, sizeof config, ", \"quantization\": {\"group_size\": 32, \"bits\": %d}", bits);
    spec.extra_config = config;
    char quant_dir[64], twin_dir[64];
    mlxe_model *quantized = write_and_load(&spec, quant_dir, sizeof quant_dir);
    spec.dequantized_twin = true;
    spec.extra_config = NULL;
    mlxe_model *twin = write_and_load(&spec, twin_dir, sizeof twin_dir);
    /* the packed model is smaller than its float twin */
    assert_true(mlxe_model_weight_bytes(quantized) < mlxe_model_weight_bytes(twin));
    const int n = 12;
    int64_t vocab = mlxe_model_vocab_size(twin);
    float *a = prompt_logits(quantized, n), *b = prompt_logits(twin, n);
    double worst = 0, max_ref = 0;
    for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++) {
        if (!isfinite(a[i])) fail_msg("%s %d bits: non-finite logit", model_type, bits);
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
        max_ref = fmax(max_ref, fabs((double)b[i]));
    }
    if (worst > 1e-4 * max_ref)
        fail_msg("%s %d-bit%s: quantized logits differ from the dequantized twin by %g (max |logit| %g)", model_type,
                 bits, tied ? " tied" : "", worst, max_ref);
    free(a);
    free(b);
    mlxe_model_free(quantized);
    mlxe_model_free(twin);
    test_remove_model(quant_dir);
    test_remove_model(twin_dir);
}

static void test_quantized_matches_dequantized(void **state) {
    (void)state;
    check_twin("llama", false, 4);
    check_twin("qwen3", true, 4);
    check_twin("qwen2", false, 8);
    check_twin("mistral", true, 3);
}

static void test_inconsistent_quantized_tensors(void **state) {
    (void)state;
    test_model_spec spec;
    test_model_spec_init(&spec, "llama");
    spec.ffn = 64;
    spec.quant_bits = 4;
    spec.quant_group = 32;
    /* one packed weight with an extra row: refused, named */
    spec.wrong_tensor = "model.layers.1.mlp.gate_proj.weight";
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    test_write_model(dir, &spec, 3);
    mlxe_model *model = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_model_load(dir, NULL, &model, &err), MLXE_ERR_FORMAT);
    assert_null(model);
    assert_message_contains(err.message, "model.layers.1.mlp.gate_proj");
    test_remove_model(dir);
}

int main(void) {
    /* exact float-activation kernels: the int8-activation decode default of
     * AVX-512 VNNI processors would move logits past this test's tolerance
     * (runtime/cpu/cpu_kernels.h, precision policy) */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_matches_dequantized),
        cmocka_unit_test(test_inconsistent_quantized_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
