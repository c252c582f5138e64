/* Tests of the bf16-activation prefill GEMM for BF16 weights
 * (kernels_avx512_gemm_bf16.c, table avx512-int8, AVX512_BF16 processors):
 * through the matmul op with 1-3 threads and through the kernel entries on
 * row ranges that start and end inside the 16/32-row panels, every token
 * count of the 12-token tile's tails, columns past the 1024-column panel
 * and not a multiple of 32.
 *
 * Each output is checked against the exact product of the float
 * activations with the stored weights (double precision) within a bound
 * derived from the arithmetic: rounding an activation to bf16 moves it by
 * at most 2^-9 |x| (round to nearest even, 8 significant bits), so the
 * output by 2^-9 sum_k |w_k x_k|; the products of two bf16 are exact in
 * float32 and their accumulation adds at most (cols + 4) eps sum_k |w_k x_k|,
 * doubled here because vdpbf16ps may round once per product. */
#include "runtime_cpu_test.h"

static const mlxe_cpu_kernels *int8_table(void) {
    setenv("MLXE_CPU_KERNELS", "avx512-int8", 1);
    const mlxe_cpu_kernels *kernels = mlxe_cpu_kernels_select();
    unsetenv("MLXE_CPU_KERNELS");
    return kernels;
}

/* Whether this processor runs the BF16 GEMM (the size query says so). */
static bool runs_bf16_gemm(void) {
    if (!mlxe_cpu_has_avx512()) return false;
    mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = 32, .cols = 64};
    return int8_table()->prefill_x_bytes(&w, 8) > 0;
}

static void reference(const double *w, int64_t rows, int64_t cols, const float *x, int64_t n, double *want,
                      double *bound) {
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < rows; o++) {
            double sum = 0, magnitude = 0;
            for (int64_t k = 0; k < cols; k++) {
                double product = w[o * cols + k] * x[t * cols + k];
                sum += product;
                magnitude += fabs(product);
            }
            want[t * rows + o] = sum;
            bound[t * rows + o] = (0x1p-9 + 2.0 * (double)(cols + 4) * FLT_EPSILON) * magnitude + 1e-30;
        }
}

static void test_gemm_bf16_op(void **state) {
    (void)state;
    if (!runs_bf16_gemm()) {
        print_message("no AVX512_BF16 on this processor: the BF16 prefill GEMM is not used, nothing to check\n");
        return;
    }
    static const int64_t shapes[][3] = {{70, 96, 4}, {33, 1090, 13}, {5, 2050, 25}, {128, 64, 64}, {40, 30, 12}};
    test_rng rng = {31};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t rows = shapes[s][0], cols = shapes[s][1], n = shapes[s][2];
        double *w_values;
        void *w_data = test_make_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows * cols), -1.0f, 1.0f, &w_values);
        float *x = malloc((size_t)(n * cols) * sizeof(float));
        float *y = malloc((size_t)(n * rows) * sizeof(float));
        double *want = malloc((size_t)(n * rows) * sizeof(double));
        double *bound = malloc((size_t)(n * rows) * sizeof(double));
        test_fill(&rng, x, (size_t)(n * cols), -2.0f, 2.0f);
        reference(w_values, rows, cols, x, n, want, bound);
        mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = rows, .cols = cols, .data = w_data};
        for (int threads = 1; threads <= 3; threads++) {
            test_device_config config = {"avx512-int8", threads};
            mlxe_device *dev = test_create_device(&config);
            for (int64_t i = 0; i < n * rows; i++) y[i] = NAN;
            mlxe_device_ops(dev)->matmul(dev, x, n, &w, y);
            for (int64_t i = 0; i < n * rows; i++)
                assert_close(y[i], want[i], bound[i], "%lld × %lld weights, %lld tokens, x%d, output %lld",
                             (long long)rows, (long long)cols, (long long)n, threads, (long long)i);
            mlxe_device_free(dev);
        }
        free(w_data);
        free(w_values);
        free(x);
        free(y);
        free(want);
        free(bound);
    }
}

static void test_gemm_bf16_row_ranges(void **state) {
    (void)state;
    if (!runs_bf16_gemm()) return;
    const mlxe_cpu_kernels *kernels = int8_table();
    static const int64_t ranges[][2] = {{0, 70}, {3, 19}, {16, 48}, {31, 33}, {40, 70}, {0, 1}};
    test_rng rng = {32};
    const int64_t rows = 70, cols = 200;
    double *w_values;
    void *w_data = test_make_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows * cols), -1.0f, 1.0f, &w_values);
    mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = rows, .cols = cols, .data = w_data};
    for (int64_t n = 4; n <= 25; n++) {
        float *x = malloc((size_t)(n * cols) * sizeof(float));
        float *y = malloc((size_t)(n * rows) * sizeof(float));
        double *want = malloc((size_t)(n * rows) * sizeof(double));
        double *bound = malloc((size_t)(n * rows) * sizeof(double));
        test_fill(&rng, x, (size_t)(n * cols), -2.0f, 2.0f);
        reference(w_values, rows, cols, x, n, want, bound);
        size_t bytes = kernels->prefill_x_bytes(&w, n);
        assert_true(bytes > 0);
        void *prepared = malloc(bytes);
        assert_true(kernels->prefill_prepare_x(x, n, &w, prepared, bytes));
        for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
            for (int64_t i = 0; i < n * rows; i++) y[i] = -12345.0f;
            kernels->prefill_matmul_x(prepared, n, &w, ranges[r][0], ranges[r][1], y);
            for (int64_t t = 0; t < n; t++)
                for (int64_t o = 0; o < rows; o++) {
                    int64_t i = t * rows + o;
                    if (o < ranges[r][0] || o >= ranges[r][1])
                        assert_true(y[i] == -12345.0f);
                    else
                        assert_close(y[i], want[i], bound[i], "%lld tokens, rows [%lld, %lld), output %lld",
                                     (long long)n, (long long)ranges[r][0], (long long)ranges[r][1], (long long)i);
                }
        }
        free(prepared);
        free(x);
        free(y);
        free(want);
        free(bound);
    }
    free(w_data);
    free(w_values);
}

/* The bound is tight enough to tell the bf16 rounding from float32: some
 * output is further from the exact product than float32 summation allows
 * (else this path would not be under test). Weights other than BF16, odd
 * column counts and too-small buffers are refused. */
static void test_gemm_bf16_rounds_and_refuses(void **state) {
    (void)state;
    if (!runs_bf16_gemm()) return;
    const mlxe_cpu_kernels *kernels = int8_table();
    test_rng rng = {33};
    const int64_t rows = 32, cols = 256, n = 8;
    double *w_values;
    void *w_data = test_make_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows * cols), -1.0f, 1.0f, &w_values);
    mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = rows, .cols = cols, .data = w_data};
    float x[8 * 256], y[8 * 32];
    test_fill(&rng, x, (size_t)(n * cols), -1.0f, 1.0f);
    test_device_config config = {"avx512-int8", 1};
    mlxe_device *dev = test_create_device(&config);
    mlxe_device_ops(dev)->matmul(dev, x, n, &w, y);
    mlxe_device_free(dev);
    double worst = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < rows; o++) {
            double sum = 0, magnitude = 0;
            for (int64_t k = 0; k < cols; k++) {
                sum += w_values[o * cols + k] * x[t * cols + k];
                magnitude += fabs(w_values[o * cols + k] * x[t * cols + k]);
            }
            worst = fmax(worst, fabs(y[t * rows + o] - sum) / ((double)(cols + 2) * FLT_EPSILON * magnitude));
        }
    assert_true(worst > 1.0);

    w.cols = 255;
    assert_int_equal(kernels->prefill_x_bytes(&w, n), 0);
    w.cols = 256;
    w.dtype = MLXE_DTYPE_F16;
    assert_int_equal(kernels->prefill_x_bytes(&w, n), 0);
    w.dtype = MLXE_DTYPE_BF16;
    uint8_t small[64];
    assert_false(kernels->prefill_prepare_x(x, n, &w, small, sizeof small));
    free(w_data);
    free(w_values);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_bf16_op),
        cmocka_unit_test(test_gemm_bf16_row_ranges),
        cmocka_unit_test(test_gemm_bf16_rounds_and_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
