/* Tests of MLX affine quantize/dequantize (format/mlx_quant.h). Bit-exact
 * agreement with the independent numpy reference is the CTest test
 * quant_numpy_reference (scripts/quant/check_quant_ref.py); here: the bit
 * layout read back against a bit-by-bit packing written from the format
 * description, the properties MLX's algorithm guarantees (the edge value is
 * exact, constant groups are exact, other values within half a step, only
 * the far end clamps), the CPU matmul on our quantized output agreeing with
 * the float matmul of the dequantized weights, and every error path. */
#include "runtime_cpu_test.h"

#include "format/mlx_quant.h"

static const int all_bits[] = {2, 3, 4, 5, 6, 8};
static const int all_groups[] = {32, 64, 128};
static const mlxe_dtype all_dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};

static void test_bit_layout(void **state) {
    (void)state;
    test_rng rng = {11};
    for (size_t b = 0; b < 6; b++) {
        int bits = all_bits[b];
        enum { COLS = 96 };
        uint32_t words[COLS * 8 / 32] = {0};
        uint32_t values[COLS];
        for (int k = 0; k < COLS; k++) {
            values[k] = (uint32_t)(test_rng_next(&rng) >> 40) & ((1u << bits) - 1u);
            for (int i = 0; i < bits; i++) {
                int pos = k * bits + i;
                if (values[k] >> i & 1u) words[pos / 32] |= 1u << (pos % 32);
            }
        }
        assert_int_equal(mlxe_quant_packed_cols(COLS, bits), COLS * bits / 32);
        for (int k = 0; k < COLS; k++) assert_int_equal(mlxe_quant_get(words, k, bits), values[k]);
    }
}

static void fill_weights(test_rng *rng, void *data, mlxe_dtype dtype, int64_t n, float spread) {
    for (int64_t i = 0; i < n; i++) mlxe_quant_store_float(data, dtype, i, test_rng_float(rng, -spread, spread));
}

/* For every group: the edge value (bias) is reproduced exactly; values
 * below the top level are within half a step (plus the rounding of scale
 * and bias to the stored type); values at the top level lie at or beyond
 * it. Constant groups are reproduced exactly. */
static void check_properties(int bits, int group, mlxe_dtype dtype) {
    test_rng rng = {(uint64_t)(bits * 1000 + group + (int)dtype)};
    const int64_t rows = 4, cols = group * 3, groups = cols / group, words = cols * bits / 32;
    size_t esize = mlxe_dtype_size(dtype);
    void *w = calloc((size_t)(rows * cols), esize);
    uint32_t *packed = calloc((size_t)(rows * words), 4);
    void *scales = calloc((size_t)(rows * groups), esize), *biases = calloc((size_t)(rows * groups), esize);
    void *deq = calloc((size_t)(rows * cols), esize);
    fill_weights(&rng, w, dtype, rows * cols, 0.5f);
    for (int64_t c = 0; c < group; c++) mlxe_quant_store_float(w, dtype, 2 * cols + c, 0.3125f); /* constant */
    for (int64_t c = 0; c < group; c++) mlxe_quant_store_float(w, dtype, 3 * cols + c, 0.0f);    /* zeros */
    mlxe_error err;
    assert_int_equal(mlxe_quantize_affine(w, dtype, rows, cols, bits, group, packed, scales, biases, "w", &err),
                     MLXE_OK);
    assert_int_equal(mlxe_dequantize_affine(packed, scales, biases, dtype, rows, cols, bits, group, deq, dtype,
                                            "w", &err),
                     MLXE_OK);
    const double top = (double)((1 << bits) - 1);
    const double type_eps = dtype == MLXE_DTYPE_F32 ? 1.2e-7 : dtype == MLXE_DTYPE_F16 ? 9.8e-4 : 7.9e-3;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < groups; g++) {
            double scale = mlxe_quant_load_float(scales, dtype, r * groups + g);
            double bias = mlxe_quant_load_float(biases, dtype, r * groups + g);
            bool saw_edge = false;
            for (int64_t c = g * group; c < (g + 1) * group; c++) {
                double x = mlxe_quant_load_float(w, dtype, r * cols + c);
                double y = mlxe_quant_load_float(deq, dtype, r * cols + c);
                uint32_t q = mlxe_quant_get(packed + r * words, c, bits);
                assert_true(q <= (uint32_t)top);
                if (q == 0 && x == bias) saw_edge = true;
                /* slack: rounding of scale, bias and the result to the type */
                double slack = type_eps * (fabs(scale) * q + fabs(bias) + fabs(x)) * 2 + 1e-30;
                if (q < top) {
                    if (fabs(y - x) > 0.5 * fabs(scale) + slack)
                        fail_msg("bits %d group %d %s: [%lld,%lld] %g -> q %u -> %g (scale %g bias %g)", bits, group,
                                 mlxe_dtype_name(dtype), (long long)r, (long long)c, x, q, y, scale, bias);
                } else {
                    assert_true(fabs(x - bias) >= top * fabs(scale) - 0.5 * fabs(scale) - slack);
                }
                if (r >= 2 && g == 0) assert_true(y == x); /* constant and zero groups are exact */
            }
            assert_true(saw_edge);
        }
    free(w);
    free(packed);
    free(scales);
    free(biases);
    free(deq);
}

static void test_properties(void **state) {
    (void)state;
    for (size_t b = 0; b < 6; b++)
        for (size_t g = 0; g < 3; g++)
            for (size_t d = 0; d < 3; d++) check_properties(all_bits[b], all_groups[g], all_dtypes[d]);
}

/* Our quantized output fed to the runtime's quantized matmul equals (to
 * float rounding) the float matmul of our dequantized weights: the
 * converter and the kernels agree on the layout. */
static void test_matches_runtime_matmul(void **state) {
    (void)state;
    mlxe_error err;
    mlxe_device *dev = NULL;
    assert_int_equal(mlxe_device_create_cpu(2, &dev, &err), MLXE_OK);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    test_rng rng = {3};
    for (size_t b = 0; b < 6; b++)
        for (size_t d = 0; d < 3; d++) {
            int bits = all_bits[b], group = 64;
            mlxe_dtype dtype = all_dtypes[d];
            const int64_t rows = 24, cols = 192, n = 3, words = cols * bits / 32, groups = cols / group;
            size_t esize = mlxe_dtype_size(dtype);
            void *w = calloc((size_t)(rows * cols), esize);
            uint32_t *packed = calloc((size_t)(rows * words), 4);
            void *scales = calloc((size_t)(rows * groups), esize), *biases = calloc((size_t)(rows * groups), esize);
            float *deq = calloc((size_t)(rows * cols), sizeof(float));
            float *x = calloc((size_t)(n * cols), sizeof(float));
            float *y_quant = calloc((size_t)(n * rows), sizeof(float)), *y_float = calloc((size_t)(n * rows), sizeof(float));
            fill_weights(&rng, w, dtype, rows * cols, 0.3f);
            test_fill(&rng, x, (size_t)(n * cols), -1.0f, 1.0f);
            assert_int_equal(mlxe_quantize_affine(w, dtype, rows, cols, bits, group, packed, scales, biases, "w", &err),
                             MLXE_OK);
            /* dequantized to F32 directly: the kernels compute scale * q + bias in float */
            for (int64_t r = 0; r < rows; r++)
                for (int64_t c = 0; c < cols; c++)
                    deq[r * cols + c] = mlxe_quant_load_float(scales, dtype, r * groups + c / group) *
                                            (float)mlxe_quant_get(packed + r * words, c, bits) +
                                        mlxe_quant_load_float(biases, dtype, r * groups + c / group);
            mlxe_matrix qm = {.dtype = MLXE_DTYPE_U32, .rows = rows, .cols = cols, .data = packed, .bits = bits,
                              .group_size = group, .scale_dtype = dtype, .scales = scales, .biases = biases};
            mlxe_matrix fm = {.dtype = MLXE_DTYPE_F32, .rows = rows, .cols = cols, .data = deq};
            ops->matmul(dev, x, n, &qm, y_quant);
            ops->matmul(dev, x, n, &fm, y_float);
            for (int64_t i = 0; i < n * rows; i++)
                assert_float_equal(y_quant[i], y_float[i], 1e-4 * (1.0 + fabs(y_float[i])));
            free(w), free(packed), free(scales), free(biases), free(deq), free(x), free(y_quant), free(y_float);
        }
    mlxe_device_free(dev);
}

static void test_errors(void **state) {
    (void)state;
    float w[64] = {0};
    uint32_t packed[64];
    float scales[4], biases[4], out[64];
    mlxe_error err;
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 1, 64, 7, 64, packed, scales, biases, "t.weight", &err),
                     MLXE_ERR_UNSUPPORTED);
    assert_message_contains(err.message, "t.weight");
    assert_message_contains(err.message, "7-bit");
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 1, 64, 4, 16, packed, scales, biases, "t.weight", &err),
                     MLXE_ERR_UNSUPPORTED);
    assert_message_contains(err.message, "group size 16");
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 2, 32, 4, 64, packed, scales, biases, "t.weight", &err),
                     MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "2 x 32");
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 0, 64, 4, 64, packed, scales, biases, NULL, &err),
                     MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_U32, 1, 64, 4, 64, packed, scales, biases, "t", &err),
                     MLXE_ERR_UNSUPPORTED);
    assert_message_contains(err.message, "U32");
    assert_int_equal(mlxe_quantize_affine(NULL, MLXE_DTYPE_F32, 1, 64, 4, 64, packed, scales, biases, "t", &err),
                     MLXE_ERR_INVALID_ARGUMENT);
    w[37] = NAN;
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 1, 64, 4, 64, packed, scales, biases, "t.weight", &err),
                     MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "[0, 37] is nan");
    w[37] = -INFINITY;
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 2, 32, 4, 32, packed, scales, biases, "t.weight", &err),
                     MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "[1, 5] is inf");

    assert_int_equal(mlxe_dequantize_affine(packed, scales, biases, MLXE_DTYPE_F32, 1, 64, 4, 48, out,
                                            MLXE_DTYPE_F32, "t", &err),
                     MLXE_ERR_UNSUPPORTED);
    assert_int_equal(mlxe_dequantize_affine(packed, scales, biases, MLXE_DTYPE_I32, 1, 64, 4, 64, out,
                                            MLXE_DTYPE_F32, "t", &err),
                     MLXE_ERR_UNSUPPORTED);
    assert_int_equal(mlxe_dequantize_affine(packed, scales, biases, MLXE_DTYPE_F32, 1, 64, 4, 64, NULL,
                                            MLXE_DTYPE_F32, "t", &err),
                     MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_quant_check_shape(3, 128, 3, 128, "x", &err), MLXE_OK);
}

int main(void) {
    /* exact float-activation kernels: the int8-activation decode default of
     * AVX-512 VNNI processors rounds activations past this test's tolerance
     * (runtime/cpu/cpu_kernels.h, precision policy; its layout is checked in
     * test_runtime_cpu_quant.c) */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bit_layout),
        cmocka_unit_test(test_properties),
        cmocka_unit_test(test_matches_runtime_matmul),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
