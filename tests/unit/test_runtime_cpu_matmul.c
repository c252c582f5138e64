/* Tests of the CPU matmul op on F32/F16/BF16 weights used in place: every
 * result against a double-precision sum over the exact stored weights, on
 * awkward shapes (odd column counts, counts not a multiple of 8 or 16, one
 * output row, token counts 1, 3 and 17), on every kernel table and 1-3
 * threads. The bound is the classic worst case for float32 summation of n
 * products, (n + 2) * FLT_EPSILON * sum |x * w|, valid whatever the order.
 *
 * The avx512-int8 table's one-token BF16 path rounds the activations to
 * bf16 (round to nearest even: |x - bf16(x)| <= 2^-9 |x|, so an output
 * moves by at most 2^-9 sum |w x| beyond the float bound; products of two
 * bf16 are exact in float32). test_matmul_bf16_decode checks that bound on
 * random inputs, that the result is the float32 sum of w * bf16(x) (the
 * rounding is round to nearest even, and happens once), that it is not
 * vacuous (the results differ from the float kernels'), and the split
 * table's 2^-17 bound. */
#include "runtime_cpu_test.h"

#include <unistd.h>

#include "base/file.h"
#include "runtime/cpu/half.h"

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
            /* The avx512-int8 table's BF16 prefill and one-token kernels round
             * each activation to bf16 (kernels_avx512_gemm_bf16.c,
             * kernels_avx512_decode_bf16.c): 2^-9 |x w| more per product. */
            const bool lowp_bf16 = strcmp(configs[c].kernels, "avx512-int8") == 0 && dtype == MLXE_DTYPE_BF16;
            double lowp = lowp_bf16 && (sh.n_rows >= MLXE_CPU_PREFILL_MIN_TOKENS || sh.n_rows == 1)
                              ? 0x1p-9 / ((double)(sh.cols + 2) * FLT_EPSILON)
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

/* A device for MLXE_CPU_KERNELS=kernels (float names another table). */
static mlxe_device *create_device(const char *kernels, int threads) {
    setenv("MLXE_CPU_KERNELS", kernels, 1);
    mlxe_device *dev = NULL;
    mlxe_error err;
    mlxe_status status = mlxe_device_create_cpu(threads, &dev, &err);
    unsetenv("MLXE_CPU_KERNELS");
    if (status != MLXE_OK) fail_msg("mlxe_device_create_cpu: %s", err.message);
    return dev;
}

/* Whether this processor runs the one-token BF16 kernels (the avx512-int8
 * table's size query says so). */
static bool runs_bf16_decode(void) {
    if (!mlxe_cpu_has_avx512()) return false;
    setenv("MLXE_CPU_KERNELS", "avx512-int8", 1);
    const mlxe_cpu_kernels *kernels = mlxe_cpu_kernels_select();
    unsetenv("MLXE_CPU_KERNELS");
    mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = 4, .cols = 64};
    return kernels->decode_x_bytes && kernels->decode_x_bytes(&w, 1) > 0;
}

static void test_matmul_bf16_decode(void **state) {
    (void)state;
    if (!runs_bf16_decode()) {
        print_message("no AVX512_BF16 on this processor: the one-token BF16 kernels are not used\n");
        return;
    }
    /* 8200 columns: the prepared activations (16.4 KB) go to the heap. */
    static const int64_t decode_shapes[][2] = {{70, 2048}, {33, 1090}, {5, 8200}, {17, 31}, {1, 1}, {64, 96}, {9, 4864}};
    test_rng rng = {77};
    int differs = 0;
    double worst_relative = 0;
    for (size_t s = 0; s < sizeof decode_shapes / sizeof decode_shapes[0]; s++) {
        const int64_t rows = decode_shapes[s][0], cols = decode_shapes[s][1];
        double *w_values;
        void *w_data = test_make_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows * cols), -1.0f, 1.0f, &w_values);
        float *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
        float *y_float = malloc((size_t)rows * sizeof(float));
        double *want = malloc((size_t)rows * sizeof(double)), *want_rounded = malloc((size_t)rows * sizeof(double));
        double *magnitude = malloc((size_t)rows * sizeof(double));
        double *magnitude_rounded = malloc((size_t)rows * sizeof(double));
        /* Activations over several binades (the rounding is relative). */
        for (int64_t k = 0; k < cols; k++) x[k] = test_rng_float(&rng, -2.0f, 2.0f) * ldexpf(1.0f, (int)(k % 7) - 3);
        for (int64_t o = 0; o < rows; o++) {
            double sum = 0, sum_rounded = 0, mag = 0, mag_rounded = 0;
            for (int64_t k = 0; k < cols; k++) {
                double wv = w_values[o * cols + k], xr = (double)mlxe_bf16_to_f32(mlxe_f32_to_bf16(x[k]));
                sum += wv * x[k];
                mag += fabs(wv * x[k]);
                sum_rounded += wv * xr;
                mag_rounded += fabs(wv * xr);
            }
            want[o] = sum;
            want_rounded[o] = sum_rounded;
            magnitude[o] = mag;
            magnitude_rounded[o] = mag_rounded;
        }
        mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = rows, .cols = cols, .data = w_data};
        mlxe_device *dev = create_device("float", 1);
        mlxe_device_ops(dev)->matmul(dev, x, 1, &w, y_float);
        mlxe_device_free(dev);
        const double float_bound = (double)(cols + 2) * FLT_EPSILON;
        for (int threads = 1; threads <= 3; threads++) {
            test_device_config config = {"avx512-int8", threads};
            dev = test_create_device(&config);
            for (int64_t o = 0; o < rows; o++) y[o] = NAN;
            mlxe_device_ops(dev)->matmul(dev, x, 1, &w, y);
            mlxe_device_free(dev);
            for (int64_t o = 0; o < rows; o++) {
                /* The stated bound against the exact product ... */
                assert_close(y[o], want[o], (0x1p-9 + float_bound) * magnitude[o] + 1e-30,
                             "bf16 decode %lldx%lld, x%d, output %lld", (long long)rows, (long long)cols, threads,
                             (long long)o);
                /* ... and what is computed: float32 sums of w * bf16(x). */
                assert_close(y[o], want_rounded[o], float_bound * magnitude_rounded[o] + 1e-30,
                             "bf16 decode against w * bf16(x), %lldx%lld, x%d, output %lld", (long long)rows,
                             (long long)cols, threads, (long long)o);
                if (y[o] != y_float[o]) differs++;
                worst_relative = fmax(worst_relative, fabs(y[o] - want[o]) / (magnitude[o] + 1e-30));
            }
        }
        /* The split table: 2^-17. */
        test_device_config split = {"avx512-int8-split", 2};
        dev = test_create_device(&split);
        mlxe_device_ops(dev)->matmul(dev, x, 1, &w, y);
        mlxe_device_free(dev);
        for (int64_t o = 0; o < rows; o++)
            assert_close(y[o], want[o], (0x1p-17 + float_bound) * magnitude[o] + 1e-30,
                         "split bf16 decode %lldx%lld, output %lld", (long long)rows, (long long)cols, (long long)o);
        free(w_data);
        free(w_values);
        free(x);
        free(y);
        free(y_float);
        free(want);
        free(want_rounded);
        free(magnitude);
        free(magnitude_rounded);
    }
    print_message("bf16 decode: %d outputs differ from the float kernels'; largest error %.3g of sum |w x| (bound "
                  "2^-9 = %.3g)\n",
                  differs, worst_relative, 0x1p-9);
    assert_true(differs > 0);
}

/* The kernel entries on row ranges that start and end off the op's 4-row
 * blocks: rows outside the range are left alone. */
static void test_matmul_bf16_decode_ranges(void **state) {
    (void)state;
    if (!runs_bf16_decode()) return;
    setenv("MLXE_CPU_KERNELS", "avx512-int8", 1);
    const mlxe_cpu_kernels *kernels = mlxe_cpu_kernels_select();
    unsetenv("MLXE_CPU_KERNELS");
    static const int64_t ranges[][2] = {{0, 23}, {3, 19}, {22, 23}, {5, 6}, {0, 1}};
    const int64_t rows = 23, cols = 161;
    test_rng rng = {78};
    double *w_values;
    void *w_data = test_make_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows * cols), -1.0f, 1.0f, &w_values);
    mlxe_matrix w = {.dtype = MLXE_DTYPE_BF16, .rows = rows, .cols = cols, .data = w_data};
    float x[161], y[23];
    test_fill(&rng, x, (size_t)cols, -2.0f, 2.0f);
    assert_int_equal(kernels->decode_x_bytes(&w, 2), 0); /* one token only */
    size_t bytes = kernels->decode_x_bytes(&w, 1);
    assert_int_equal(bytes, 192 * 2); /* padded to 32 columns */
    void *prepared = aligned_alloc(64, bytes);
    assert_false(kernels->decode_prepare_x(x, 1, &w, prepared, bytes - 2)); /* too small */
    assert_true(kernels->decode_prepare_x(x, 1, &w, prepared, bytes));
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        for (int64_t o = 0; o < rows; o++) y[o] = -12345.0f;
        kernels->decode_matmul_x(prepared, 1, &w, ranges[r][0], ranges[r][1], y);
        for (int64_t o = 0; o < rows; o++) {
            if (o < ranges[r][0] || o >= ranges[r][1]) {
                assert_true(y[o] == -12345.0f);
                continue;
            }
            double sum = 0, magnitude = 0;
            for (int64_t k = 0; k < cols; k++) {
                sum += w_values[o * cols + k] * x[k];
                magnitude += fabs(w_values[o * cols + k] * x[k]);
            }
            assert_close(y[o], sum, (0x1p-9 + (double)(cols + 2) * FLT_EPSILON) * magnitude + 1e-30,
                         "rows [%lld, %lld), output %lld", (long long)ranges[r][0], (long long)ranges[r][1],
                         (long long)o);
        }
    }
    free(prepared);
    free(w_data);
    free(w_values);
}

/* ops->pack_matrix on dense matrices: a plain copy (huge-page memory, the
 * same layout) that every table reads to the same results, bit for bit; and
 * with release_bound on a file mapping, the bound pages dropped as the copy
 * grows still read back from the file (mlxe_release_pages). Rows beyond one
 * copy piece (4096) so the release runs piece by piece. */
static void test_matmul_dense_copy(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {31337};
    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};
    const int64_t rows = 4099, cols = 96, n_rows = 2;
    float *x = malloc((size_t)(n_rows * cols) * sizeof(float));
    float *want = malloc((size_t)(n_rows * rows) * sizeof(float)), *got = malloc((size_t)(n_rows * rows) * sizeof(float));
    test_fill(&rng, x, (size_t)(n_rows * cols), -1.0f, 1.0f);
    char dir[64], path[96];
    test_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/weights.bin", dir);
    for (int d = 0; d < 3; d++) {
        double *values;
        const size_t bytes = (size_t)(rows * cols) * (dtypes[d] == MLXE_DTYPE_F32 ? 4 : 2);
        void *data = test_make_weights(&rng, dtypes[d], (size_t)(rows * cols), -1.0f, 1.0f, &values);
        test_write_file(path, data, bytes);
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            const mlxe_ops *ops = mlxe_device_ops(dev);
            mlxe_matrix w = {.dtype = dtypes[d], .rows = rows, .cols = cols, .data = data};
            ops->matmul(dev, x, n_rows, &w, want);
            /* from the heap: nothing released */
            void *owned = NULL;
            mlxe_error err;
            assert_int_equal(ops->pack_matrix(dev, &w, false, &owned, &err), MLXE_OK);
            assert_non_null(owned);
            assert_ptr_equal(w.data, owned);
            assert_null(w.packed);
            assert_memory_equal(owned, data, bytes);
            ops->matmul(dev, x, n_rows, &w, got);
            assert_memory_equal(got, want, (size_t)(n_rows * rows) * sizeof(float));
            free(owned);
            /* from a file mapping, released as copied */
            mlxe_mapped_file mapped;
            assert_int_equal(mlxe_file_map(path, &mapped, &err), MLXE_OK);
            w = (mlxe_matrix){.dtype = dtypes[d], .rows = rows, .cols = cols, .data = mapped.data};
            assert_int_equal(ops->pack_matrix(dev, &w, true, &owned, &err), MLXE_OK);
            assert_non_null(owned);
            assert_memory_equal(owned, data, bytes);
            assert_memory_equal(mapped.data, data, bytes);
            ops->matmul(dev, x, n_rows, &w, got);
            assert_memory_equal(got, want, (size_t)(n_rows * rows) * sizeof(float));
            free(owned);
            mlxe_file_unmap(&mapped);
            mlxe_device_free(dev);
        }
        free(data);
        free(values);
    }
    remove(path);
    rmdir(dir);
    free(x);
    free(want);
    free(got);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_f32),
        cmocka_unit_test(test_matmul_f16),
        cmocka_unit_test(test_matmul_bf16),
        cmocka_unit_test(test_matmul_paths_agree),
        cmocka_unit_test(test_matmul_bf16_decode),
        cmocka_unit_test(test_matmul_bf16_decode_ranges),
        cmocka_unit_test(test_matmul_dense_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
