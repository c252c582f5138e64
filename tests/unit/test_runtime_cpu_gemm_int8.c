/* Tests of the int8-activation prefill GEMM (kernels_avx512_gemm_int8.c,
 * table avx512-int8) through the matmul op: MLX 4/8-bit weights packed here
 * as MLX stores them (uint32 words, least-significant bits first), every
 * group size and scale dtype, token counts around the 6-token tile and
 * above the prefill threshold, row counts around the 16/32-row panels,
 * column counts past the 2048-column panel, 1-3 threads.
 *
 * Each output is checked against the exact product of the float
 * activations with the stored weights (double precision), within a bound
 * derived from the arithmetic, not fitted to the output:
 *  - activation rounding: x_k becomes dx_g * xq_k with dx_g = max|x| / 127
 *    over the group, so it moves by at most dx_g / 2 (plus a few float
 *    roundings of x, 4 eps |x_k|), weighted by |scale * q_k|;
 *  - float32 evaluation: per group one int32 sum (exact), s * dx, the
 *    conversion, the group sum of x (group_size - 1 additions) and the
 *    accumulation over 2 terms per group: at most (cols + 2 groups + 4) eps
 *    times sum_k (|scale q_k| + |bias|) (|x_k| + dx_g / 2). */
#include "runtime_cpu_test.h"

typedef struct quantized {
    mlxe_matrix matrix;
    uint32_t *words;
    void *scales, *biases;
    double *scale_q; /* rows × cols: scale * q */
    double *bias;    /* rows × cols: the element's group bias */
} quantized;

static void make_quantized(test_rng *rng, int64_t rows, int64_t cols, int bits, int group_size, mlxe_dtype scale_dtype,
                           quantized *out) {
    int64_t words_per_row = cols * bits / 32, groups = cols / group_size;
    out->words = calloc((size_t)(rows * words_per_row), sizeof(uint32_t));
    out->scale_q = malloc((size_t)(rows * cols) * sizeof(double));
    out->bias = malloc((size_t)(rows * cols) * sizeof(double));
    double *scale_values, *bias_values;
    out->scales = test_make_weights(rng, scale_dtype, (size_t)(rows * groups), 0.01f, 0.1f, &scale_values);
    out->biases = test_make_weights(rng, scale_dtype, (size_t)(rows * groups), -0.5f, 0.5f, &bias_values);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t k = 0; k < cols; k++) {
            uint32_t q = (uint32_t)(test_rng_next(rng) >> 40) & ((1u << bits) - 1u);
            uint64_t bit = (uint64_t)k * (uint64_t)bits;
            out->words[r * words_per_row + (int64_t)(bit / 32)] |= q << (bit % 32);
            out->scale_q[r * cols + k] = scale_values[r * groups + k / group_size] * q;
            out->bias[r * cols + k] = bias_values[r * groups + k / group_size];
        }
    }
    free(scale_values);
    free(bias_values);
    out->matrix = (mlxe_matrix){.dtype = MLXE_DTYPE_U32, .rows = rows, .cols = cols, .data = out->words,
                                .bits = bits, .group_size = group_size, .scale_dtype = scale_dtype,
                                .scales = out->scales, .biases = out->biases};
}

static void free_quantized(quantized *q) {
    free(q->words);
    free(q->scales);
    free(q->biases);
    free(q->scale_q);
    free(q->bias);
}

typedef struct shape {
    int64_t rows, groups, n_tokens;
} shape;

static const shape shapes[] = {
    {1, 1, 4}, {5, 3, 5}, {16, 2, 6}, {17, 5, 7}, {33, 4, 13}, {70, 3, 64}, {32, 1, 12}, {48, 2, 8},
};

/* want and bound (see the top of the file) for n tokens of x against q. */
static void reference(const quantized *q, const float *x, int64_t n, double *want, double *bound) {
    const int64_t rows = q->matrix.rows, cols = q->matrix.cols, group_size = q->matrix.group_size;
    const int64_t groups = cols / group_size;
    for (int64_t t = 0; t < n; t++) {
        for (int64_t o = 0; o < rows; o++) {
            double sum = 0, rounding = 0, magnitude = 0;
            for (int64_t g0 = 0; g0 < cols; g0 += group_size) {
                double max_abs = 0;
                for (int64_t k = g0; k < g0 + group_size; k++) max_abs = fmax(max_abs, fabs(x[t * cols + k]));
                double dx = max_abs / 127.0;
                for (int64_t k = g0; k < g0 + group_size; k++) {
                    double xk = x[t * cols + k], sq = q->scale_q[o * cols + k], b = q->bias[o * cols + k];
                    sum += (sq + b) * xk;
                    rounding += fabs(sq) * (dx / 2 + 4 * FLT_EPSILON * fabs(xk));
                    magnitude += (fabs(sq) + fabs(b)) * (fabs(xk) + dx / 2);
                }
            }
            want[t * rows + o] = sum;
            bound[t * rows + o] = rounding + (double)(cols + 2 * groups + 4) * FLT_EPSILON * magnitude + 1e-30;
        }
    }
}

static void check_gemm(int bits) {
    if (!mlxe_cpu_has_avx512()) {
        print_message("no AVX-512 VNNI on this processor: the int8 prefill GEMM is not used, nothing to check\n");
        return;
    }
    static const int group_sizes[] = {32, 64, 128};
    static const mlxe_dtype scale_dtypes[] = {MLXE_DTYPE_BF16, MLXE_DTYPE_F16, MLXE_DTYPE_F32};
    test_rng rng = {77 + (uint64_t)bits};
    int case_index = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] + 2; s++) {
        for (int g = 0; g < 3; g++, case_index++) {
            shape sh = s < sizeof shapes / sizeof shapes[0] ? shapes[s] : (shape){20, 0, 9};
            const int group_size = group_sizes[g];
            /* the two extra shapes span more than one 2048-column panel */
            if (sh.groups == 0) sh.groups = (s % 2 ? 2112 : 4160) / group_size;
            const int64_t rows = sh.rows, cols = sh.groups * group_size, n = sh.n_tokens;
            const mlxe_dtype scale_dtype = scale_dtypes[case_index % 3];
            quantized q;
            make_quantized(&rng, rows, cols, bits, group_size, scale_dtype, &q);
            float *x = malloc((size_t)(n * cols) * sizeof(float));
            float *y = malloc((size_t)(n * rows) * sizeof(float));
            double *want = malloc((size_t)(n * rows) * sizeof(double));
            double *bound = malloc((size_t)(n * rows) * sizeof(double));
            /* mixed magnitudes, so groups get different dx */
            for (int64_t i = 0; i < n * cols; i++)
                x[i] = test_rng_float(&rng, -1.0f, 1.0f) * (i / group_size % 3 == 0 ? 4.0f : 0.25f);
            reference(&q, x, n, want, bound);
            for (int threads = 1; threads <= 3; threads++) {
                test_device_config config = {"avx512-int8", threads};
                mlxe_device *dev = test_create_device(&config);
                for (int64_t i = 0; i < n * rows; i++) y[i] = NAN;
                mlxe_device_ops(dev)->matmul(dev, x, n, &q.matrix, y);
                for (int64_t i = 0; i < n * rows; i++)
                    assert_close(y[i], want[i], bound[i],
                                 "%d-bit group %d %s scales, %lld rows × %lld cols, %lld tokens, x%d, output %lld",
                                 bits, group_size, test_dtype_name(scale_dtype), (long long)rows, (long long)cols,
                                 (long long)n, threads, (long long)i);
                mlxe_device_free(dev);
            }
            free(x);
            free(y);
            free(want);
            free(bound);
            free_quantized(&q);
        }
    }
}

static void test_gemm_int8_4bit(void **state) {
    (void)state;
    check_gemm(4);
}

static void test_gemm_int8_8bit(void **state) {
    (void)state;
    check_gemm(8);
}

/* The kernel entries called directly on row ranges that start and end
 * inside 16/32-row panels (the op hands out whole panels), for every token
 * count 4-13 (the 6-token tile and its tails). Rows outside the range must
 * be left untouched. */
static void test_gemm_int8_row_ranges(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) return;
    setenv("MLXE_CPU_KERNELS", "avx512-int8", 1);
    const mlxe_cpu_kernels *kernels = mlxe_cpu_kernels_select();
    unsetenv("MLXE_CPU_KERNELS");
    static const int64_t ranges[][2] = {{0, 70}, {3, 19}, {16, 48}, {31, 33}, {40, 70}, {0, 1}};
    test_rng rng = {9};
    for (int bits = 4; bits <= 8; bits += 4) {
        const int64_t rows = 70, group_size = bits == 4 ? 64 : 128, cols = 4 * group_size;
        quantized q;
        make_quantized(&rng, rows, cols, bits, (int)group_size, MLXE_DTYPE_BF16, &q);
        for (int64_t n = 4; n <= 13; n++) {
            float *x = malloc((size_t)(n * cols) * sizeof(float));
            float *y = malloc((size_t)(n * rows) * sizeof(float));
            double *want = malloc((size_t)(n * rows) * sizeof(double));
            double *bound = malloc((size_t)(n * rows) * sizeof(double));
            test_fill(&rng, x, (size_t)(n * cols), -2.0f, 2.0f);
            reference(&q, x, n, want, bound);
            size_t bytes = kernels->prefill_x_bytes(&q.matrix, n);
            assert_true(bytes > 0);
            void *prepared = malloc(bytes);
            assert_true(kernels->prefill_prepare_x(x, n, &q.matrix, prepared, bytes));
            for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
                for (int64_t i = 0; i < n * rows; i++) y[i] = -12345.0f;
                kernels->prefill_matmul_x(prepared, n, &q.matrix, ranges[r][0], ranges[r][1], y);
                for (int64_t t = 0; t < n; t++)
                    for (int64_t o = 0; o < rows; o++) {
                        int64_t i = t * rows + o;
                        if (o < ranges[r][0] || o >= ranges[r][1])
                            assert_true(y[i] == -12345.0f);
                        else
                            assert_close(y[i], want[i], bound[i], "%d-bit, %lld tokens, rows [%lld, %lld), output %lld",
                                         bits, (long long)n, (long long)ranges[r][0], (long long)ranges[r][1],
                                         (long long)i);
                    }
            }
            free(prepared);
            free(x);
            free(y);
            free(want);
            free(bound);
        }
        free_quantized(&q);
    }
}

/* The activation rounding is what the bound above allows for: the bound
 * must also be tight enough to catch a kernel that drops it. A GEMM whose
 * activations were not rounded would be within float32 error of the exact
 * result; this one is not, on at least one output (else the test above
 * would not be testing the int8 path at all). */
static void test_gemm_int8_rounds_activations(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) return;
    test_rng rng = {5};
    const int64_t rows = 32, cols = 256, n = 8;
    quantized q;
    make_quantized(&rng, rows, cols, 4, 64, MLXE_DTYPE_BF16, &q);
    float x[8 * 256], y[8 * 32];
    test_fill(&rng, x, (size_t)(n * cols), -1.0f, 1.0f);
    test_device_config config = {"avx512-int8", 1};
    mlxe_device *dev = test_create_device(&config);
    mlxe_device_ops(dev)->matmul(dev, x, n, &q.matrix, y);
    double worst = 0;
    for (int64_t t = 0; t < n; t++)
        for (int64_t o = 0; o < rows; o++) {
            double sum = 0, magnitude = 0;
            for (int64_t k = 0; k < cols; k++) {
                double w = q.scale_q[o * cols + k] + q.bias[o * cols + k];
                sum += w * x[t * cols + k];
                magnitude += fabs(w * x[t * cols + k]);
            }
            worst = fmax(worst, fabs(y[t * rows + o] - sum) / ((double)(cols + 2) * FLT_EPSILON * magnitude));
        }
    mlxe_device_free(dev);
    free_quantized(&q);
    assert_true(worst > 1.0);
}

/* Shapes the GEMM does not cover are refused by its size query, so the op
 * keeps the float kernels for them. */
static void test_gemm_int8_refuses_other_shapes(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) return;
    const mlxe_cpu_kernels *kernels = NULL;
    setenv("MLXE_CPU_KERNELS", "avx512-int8", 1);
    kernels = mlxe_cpu_kernels_select();
    unsetenv("MLXE_CPU_KERNELS");
    assert_non_null(kernels->prefill_x_bytes);
    mlxe_matrix w = {.dtype = MLXE_DTYPE_U32, .rows = 8, .cols = 256, .bits = 4, .group_size = 64,
                     .scale_dtype = MLXE_DTYPE_BF16};
    assert_true(kernels->prefill_x_bytes(&w, 8) > 0);
    w.bits = 3;
    assert_int_equal(kernels->prefill_x_bytes(&w, 8), 0);
    w.bits = 8;
    w.group_size = 16;
    assert_int_equal(kernels->prefill_x_bytes(&w, 8), 0);
    w.group_size = 64;
    assert_int_equal(kernels->prefill_x_bytes(&w, 0), 0);
    /* a buffer too small is refused, not overrun */
    float x[256] = {0};
    uint8_t small[16];
    assert_false(kernels->prefill_prepare_x(x, 1, &w, small, sizeof small));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_int8_4bit),
        cmocka_unit_test(test_gemm_int8_8bit),
        cmocka_unit_test(test_gemm_int8_row_ranges),
        cmocka_unit_test(test_gemm_int8_rounds_activations),
        cmocka_unit_test(test_gemm_int8_refuses_other_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
