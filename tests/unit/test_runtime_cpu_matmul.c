/* Tests of the CPU matmul op on F32/F16/BF16 weights used in place: every
 * result against a double-precision sum over the exact stored weights, on
 * awkward shapes (odd column counts, counts not a multiple of 8 or 16, one
 * output row, token counts 1, 3 and 17), on both kernel paths and 1-3
 * threads. The bound is the classic worst case for float32 summation of n
 * products, (n + 2) * FLT_EPSILON * sum |x * w|, valid whatever the order. */
#include "runtime_cpu_test.h"

typedef struct shape {
    int64_t rows, cols, n_rows;
} shape;

static const shape shapes[] = {
    {1, 1, 1},   {5, 7, 1},    {4, 8, 3},    {13, 33, 3},  {37, 257, 17},
    {300, 257, 1}, {9, 515, 17}, {64, 100, 17}, {3, 16, 2},  {129, 24, 5},
};

static void check_matmul(mlxe_dtype dtype) {
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {42 + (uint64_t)dtype};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        shape sh = shapes[s];
        double *w_values;
        void *w_data = test_make_weights(&rng, dtype, (size_t)(sh.rows * sh.cols), -1.0f, 1.0f, &w_values);
        float *x = malloc((size_t)(sh.n_rows * sh.cols) * sizeof(float));
        float *y = malloc((size_t)(sh.n_rows * sh.rows) * sizeof(float));
        double *want = malloc((size_t)(sh.n_rows * sh.rows) * sizeof(double));
        double *bound = malloc((size_t)(sh.n_rows * sh.rows) * sizeof(double));
        test_fill(&rng, x, (size_t)(sh.n_rows * sh.cols), -2.0f, 2.0f);
        for (int64_t r = 0; r < sh.n_rows; r++) {
            for (int64_t o = 0; o < sh.rows; o++) {
                double sum = 0, magnitude = 0;
                for (int64_t i = 0; i < sh.cols; i++) {
                    double product = (double)x[r * sh.cols + i] * w_values[o * sh.cols + i];
                    sum += product;
                    magnitude += fabs(product);
                }
                want[r * sh.rows + o] = sum;
                bound[r * sh.rows + o] = (double)(sh.cols + 2) * FLT_EPSILON * magnitude + 1e-30;
            }
        }
        mlxe_matrix w = {.dtype = dtype, .rows = sh.rows, .cols = sh.cols, .data = w_data};
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            for (int64_t i = 0; i < sh.n_rows * sh.rows; i++) y[i] = NAN;
            mlxe_device_ops(dev)->matmul(dev, x, sh.n_rows, &w, y);
            /* The avx512-int8 table's BF16 prefill rounds each activation to bf16
             * (kernels_avx512_gemm_bf16.c): 2^-9 |x w| more per product; its
             * one-token kernel splits activations into two bf16 halves
             * (kernels_avx512_decode_bf16.c): 2^-17 |x w|. */
            const bool lowp_bf16 = strcmp(configs[c].kernels, "avx512-int8") == 0 && dtype == MLXE_DTYPE_BF16;
            double lowp = lowp_bf16 && sh.n_rows >= MLXE_CPU_PREFILL_MIN_TOKENS
                              ? 0x1p-9 / ((double)(sh.cols + 2) * FLT_EPSILON)
                          : lowp_bf16 && sh.n_rows == 1 ? 0x1p-17 / ((double)(sh.cols + 2) * FLT_EPSILON)
                                                         : 0.0;
            for (int64_t i = 0; i < sh.n_rows * sh.rows; i++)
                assert_close(y[i], want[i], bound[i] * (1.0 + lowp), "%s %s x%d, %lldx%lld weights, %lld tokens, output %lld",
                             test_dtype_name(dtype), configs[c].kernels, configs[c].threads, (long long)sh.rows,
                             (long long)sh.cols, (long long)sh.n_rows, (long long)i);
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

static void test_matmul_f32(void **state) {
    (void)state;
    check_matmul(MLXE_DTYPE_F32);
}

static void test_matmul_f16(void **state) {
    (void)state;
    check_matmul(MLXE_DTYPE_F16);
}

static void test_matmul_bf16(void **state) {
    (void)state;
    check_matmul(MLXE_DTYPE_BF16);
}

/* The SIMD kernel paths must agree with the portable one as well as with
 * the reference: same stored weights, outputs within the float bound. */
static void test_matmul_paths_agree(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx2()) skip();
    test_rng rng = {7};
    const int64_t rows = 67, cols = 4099, n_rows = 5;
    double *w_values;
    void *w_data = test_make_weights(&rng, MLXE_DTYPE_F16, (size_t)(rows * cols), -1.0f, 1.0f, &w_values);
    float *x = malloc((size_t)(n_rows * cols) * sizeof(float));
    float *y_generic = malloc((size_t)(n_rows * rows) * sizeof(float));
    float *y_simd = malloc((size_t)(n_rows * rows) * sizeof(float));
    test_fill(&rng, x, (size_t)(n_rows * cols), -1.0f, 1.0f);
    mlxe_matrix w = {.dtype = MLXE_DTYPE_F16, .rows = rows, .cols = cols, .data = w_data};
    test_device_config generic = {"generic", 2};
    mlxe_device *dev = test_create_device(&generic);
    mlxe_device_ops(dev)->matmul(dev, x, n_rows, &w, y_generic);
    mlxe_device_free(dev);
    test_device_config simd[] = {{"avx2", 2}, {"avx512", 2}};
    int n_simd = mlxe_cpu_has_avx512() ? 2 : 1;
    for (int s = 0; s < n_simd; s++) {
        dev = test_create_device(&simd[s]);
        mlxe_device_ops(dev)->matmul(dev, x, n_rows, &w, y_simd);
        mlxe_device_free(dev);
        for (int64_t i = 0; i < n_rows * rows; i++)
            assert_close(y_simd[i], y_generic[i], 2e-5 * sqrt((double)cols), "%s output %lld", simd[s].kernels,
                         (long long)i);
    }
    free(w_data);
    free(w_values);
    free(x);
    free(y_generic);
    free(y_simd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_f32),
        cmocka_unit_test(test_matmul_f16),
        cmocka_unit_test(test_matmul_bf16),
        cmocka_unit_test(test_matmul_paths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
