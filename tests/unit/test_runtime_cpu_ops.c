/* Tests of the CPU device (creation, name, threads, memory) and of its
 * element-wise ops — embedding, add_bias, rms_norm, rope, silu_mul, add —
 * against double-precision references written here, for every weight dtype,
 * both kernel paths and 1-3 threads, with sizes large enough to use the
 * workers as well as tiny ones. */
#include "runtime_cpu_test.h"

#include "base/thread_pool.h"
#include "mlxengine/log.h"

/* True when a runtime record in the log ring contains needle. */
static bool runtime_log_contains(const char *needle) {
    static mlxe_log_record records[MLXE_LOG_RING_SIZE];
    size_t n = mlxe_log_recent(records, MLXE_LOG_RING_SIZE);
    for (size_t i = 0; i < n; i++)
        if (records[i].category == MLXE_LOG_CAT_RUNTIME && strstr(records[i].message, needle)) return true;
    return false;
}

static const mlxe_dtype weight_dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};

static void test_device_create(void **state) {
    (void)state;
    mlxe_error err;
    assert_int_equal(mlxe_device_create_cpu(1, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "out");

    mlxe_device *dev = NULL;
    assert_int_equal(mlxe_device_create_cpu(0, &dev, &err), MLXE_OK);
    assert_int_equal(mlxe_device_threads(dev), mlxe_thread_pool_default_size());
    const mlxe_ops *ops = mlxe_device_ops(dev);
    assert_non_null(ops);
    assert_string_equal(mlxe_device_name(dev), ops->name);
    assert_string_equal(ops->name, mlxe_cpu_has_avx512() ? "cpu-avx512-int8" : mlxe_cpu_has_avx2() ? "cpu-avx2" : "cpu-generic");
    assert_non_null(ops->matmul);
    assert_non_null(ops->attention);

    /* alloc zero-fills; upload/download copy */
    float *buffer = NULL;
    assert_int_equal(ops->alloc(dev, 1001 * sizeof(float), (void **)&buffer, &err), MLXE_OK);
    for (int i = 0; i < 1001; i++) assert_true(buffer[i] == 0.0f);
    float host[1001], back[1001];
    for (int i = 0; i < 1001; i++) host[i] = (float)i * 0.5f;
    ops->upload(dev, buffer, host, sizeof host);
    ops->download(dev, back, buffer, sizeof back);
    assert_memory_equal(host, back, sizeof host);
    ops->free(dev, buffer);
    void *empty = NULL;
    assert_int_equal(ops->alloc(dev, 0, &empty, &err), MLXE_OK);
    assert_non_null(empty);
    ops->free(dev, empty);
    assert_int_equal(ops->alloc(dev, SIZE_MAX - 8, &empty, &err), MLXE_ERR_OUT_OF_MEMORY);
    mlxe_device_free(dev);
    mlxe_device_free(NULL);

    /* MLXE_CPU_KERNELS=generic forces the portable kernels, and the choice is logged at debug level */
    mlxe_log_set_level(MLXE_LOG_CAT_RUNTIME, MLXE_LOG_DEBUG);
    mlxe_log_clear_recent();
    setenv("MLXE_CPU_KERNELS", "generic", 1);
    assert_int_equal(mlxe_device_create_cpu(1, &dev, &err), MLXE_OK);
    unsetenv("MLXE_CPU_KERNELS");
    assert_string_equal(mlxe_device_name(dev), "cpu-generic");
    assert_int_equal(mlxe_device_threads(dev), 1);
    assert_true(runtime_log_contains("cpu kernels: generic (MLXE_CPU_KERNELS=generic)"));
    mlxe_device_free(dev);

    /* MLXE_CPU_KERNELS=avx2 forces AVX2 on an AVX-512 processor; =avx512 is honoured where the processor has it */
    if (mlxe_cpu_has_avx2()) {
        setenv("MLXE_CPU_KERNELS", "avx2", 1);
        assert_int_equal(mlxe_device_create_cpu(1, &dev, &err), MLXE_OK);
        unsetenv("MLXE_CPU_KERNELS");
        assert_string_equal(mlxe_device_name(dev), "cpu-avx2");
        mlxe_device_free(dev);
    }
    setenv("MLXE_CPU_KERNELS", "avx512", 1);
    assert_int_equal(mlxe_device_create_cpu(1, &dev, &err), MLXE_OK);
    unsetenv("MLXE_CPU_KERNELS");
    if (mlxe_cpu_has_avx512()) {
        assert_string_equal(mlxe_device_name(dev), "cpu-avx512");
    } else {
        assert_true(runtime_log_contains("MLXE_CPU_KERNELS=avx512 but this processor lacks"));
    }
    mlxe_device_free(dev);

    /* =float: the fastest table with float activations (the exact quantized kernels) */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    assert_int_equal(mlxe_device_create_cpu(1, &dev, &err), MLXE_OK);
    unsetenv("MLXE_CPU_KERNELS");
    assert_string_equal(mlxe_device_name(dev), mlxe_cpu_has_avx512() ? "cpu-avx512" : mlxe_cpu_has_avx2() ? "cpu-avx2" : "cpu-generic");
    assert_true(runtime_log_contains("(MLXE_CPU_KERNELS=float)"));
    mlxe_device_free(dev);

    /* an unknown value warns and chooses automatically: int8-activation decode on AVX-512 VNNI */
    setenv("MLXE_CPU_KERNELS", "sse9", 1);
    assert_int_equal(mlxe_device_create_cpu(2, &dev, &err), MLXE_OK);
    unsetenv("MLXE_CPU_KERNELS");
    assert_string_equal(mlxe_device_name(dev),
                        mlxe_cpu_has_avx512() ? "cpu-avx512-int8" : mlxe_cpu_has_avx2() ? "cpu-avx2" : "cpu-generic");
    assert_true(runtime_log_contains("MLXE_CPU_KERNELS=sse9 is not known"));
    mlxe_device_free(dev);
    mlxe_log_set_level(MLXE_LOG_CAT_RUNTIME, MLXE_LOG_INFO);
}

static void test_embedding(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {3};
    const int64_t vocab = 50, dim = 2049, n_rows = 17;
    int32_t ids[17];
    for (int64_t r = 0; r < n_rows; r++) ids[r] = (int32_t)(test_rng_next(&rng) % vocab);
    ids[0] = 0;
    ids[1] = (int32_t)vocab - 1;
    float *out = malloc((size_t)(n_rows * dim) * sizeof(float));
    for (int d = 0; d < 3; d++) {
        double *values;
        void *table_data = test_make_weights(&rng, weight_dtypes[d], (size_t)(vocab * dim), -1.0f, 1.0f, &values);
        mlxe_matrix table = {.dtype = weight_dtypes[d], .rows = vocab, .cols = dim, .data = table_data};
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            for (int64_t n = 1; n <= n_rows; n += n_rows - 1) {
                mlxe_device_ops(dev)->embedding(dev, &table, ids, n, out);
                for (int64_t r = 0; r < n; r++)
                    for (int64_t i = 0; i < dim; i++)
                        assert_true(out[r * dim + i] == (float)values[ids[r] * dim + i]); /* exact */
            }
            mlxe_device_free(dev);
        }
        free(table_data);
        free(values);
    }
    free(out);
}

static void test_add_bias(void **state) {
    (void)state;
    test_rng rng = {4};
    const int64_t n_rows = 3, size = 37;
    for (int d = 0; d < 3; d++) {
        double *values;
        void *bias_data = test_make_weights(&rng, weight_dtypes[d], (size_t)size, -1.0f, 1.0f, &values);
        mlxe_vector bias = {.dtype = weight_dtypes[d], .size = size, .data = bias_data};
        float y[3 * 37], original[3 * 37];
        test_fill(&rng, original, sizeof y / sizeof y[0], -1.0f, 1.0f);
        memcpy(y, original, sizeof y);
        test_device_config config = {"generic", 2};
        mlxe_device *dev = test_create_device(&config);
        mlxe_device_ops(dev)->add_bias(dev, y, n_rows, &bias);
        for (int64_t r = 0; r < n_rows; r++)
            for (int64_t i = 0; i < size; i++)
                assert_close(y[r * size + i], original[r * size + i] + values[i], 2 * FLT_EPSILON, "bias %d %lld", d,
                             (long long)i);
        mlxe_device_free(dev);
        free(bias_data);
        free(values);
    }
}

static void test_rms_norm(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {6};
    static const int64_t dims[] = {1, 7, 2049};
    const int64_t n_rows = 17;
    const float eps = 1e-5f;
    for (int d = 0; d < 3; d++) {
        for (int s = 0; s < 3; s++) {
            int64_t dim = dims[s];
            double *gains;
            void *gain_data = test_make_weights(&rng, weight_dtypes[d], (size_t)dim, 0.5f, 1.5f, &gains);
            mlxe_vector weight = {.dtype = weight_dtypes[d], .size = dim, .data = gain_data};
            float *x = malloc((size_t)(n_rows * dim) * sizeof(float));
            float *y = malloc((size_t)(n_rows * dim) * sizeof(float));
            test_fill(&rng, x, (size_t)(n_rows * dim), -3.0f, 3.0f);
            for (int c = 0; c < n_configs; c++) {
                mlxe_device *dev = test_create_device(&configs[c]);
                for (int in_place = 0; in_place < 2; in_place++) {
                    if (in_place) memcpy(y, x, (size_t)(n_rows * dim) * sizeof(float));
                    mlxe_device_ops(dev)->rms_norm(dev, in_place ? y : x, &weight, n_rows, dim, eps, y);
                    for (int64_t r = 0; r < n_rows; r++) {
                        double sum = 0;
                        for (int64_t i = 0; i < dim; i++) sum += (double)x[r * dim + i] * x[r * dim + i];
                        double inverse = 1.0 / sqrt(sum / (double)dim + eps);
                        for (int64_t i = 0; i < dim; i++) {
                            double want = x[r * dim + i] * inverse * gains[i];
                            assert_close(y[r * dim + i], want, 1e-5 * (fabs(want) + 1e-3), "rms_norm %s dim %lld %s x%d",
                                         test_dtype_name(weight_dtypes[d]), (long long)dim, configs[c].kernels,
                                         configs[c].threads);
                        }
                    }
                }
                mlxe_device_free(dev);
            }
            free(gain_data);
            free(gains);
            free(x);
            free(y);
        }
    }
}

static void test_rope(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {8};
    static const int64_t shapes[][3] = {{1, 1, 2}, {3, 5, 6}, {17, 8, 128}}; /* rows, heads, head_dim */
    for (int s = 0; s < 3; s++) {
        int64_t n_rows = shapes[s][0], n_heads = shapes[s][1], head_dim = shapes[s][2], half = head_dim / 2;
        size_t n = (size_t)(n_rows * n_heads * head_dim);
        float *original = malloc(n * sizeof(float));
        float *x = malloc(n * sizeof(float));
        float *inv_freq = malloc((size_t)half * sizeof(float));
        int32_t positions[17];
        test_fill(&rng, original, n, -1.0f, 1.0f);
        for (int64_t i = 0; i < half; i++) inv_freq[i] = powf(10000.0f, -2.0f * (float)i / (float)head_dim);
        for (int64_t r = 0; r < n_rows; r++) positions[r] = (int32_t)(test_rng_next(&rng) % 2000);
        const float attention_scale = 1.25f;
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            memcpy(x, original, n * sizeof(float));
            mlxe_device_ops(dev)->rope(dev, x, n_rows, n_heads, head_dim, positions, inv_freq, attention_scale);
            for (int64_t r = 0; r < n_rows; r++)
                for (int64_t h = 0; h < n_heads; h++)
                    for (int64_t i = 0; i < head_dim; i++) {
                        const float *head = original + (r * n_heads + h) * head_dim;
                        int64_t pair = i < half ? i : i - half;
                        double angle = (double)positions[r] * inv_freq[pair];
                        /* x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x2, x1) */
                        double rotated = i < half ? -(double)head[i + half] : (double)head[i - half];
                        double want = ((double)head[i] * cos(angle) + rotated * sin(angle)) * attention_scale;
                        /* float32 angles of positions < 2000 are off by up to ~1e-4 rad */
                        assert_close(x[(r * n_heads + h) * head_dim + i], want, 3e-4, "rope row %lld head %lld dim %lld %s x%d",
                                     (long long)r, (long long)h, (long long)i, configs[c].kernels, configs[c].threads);
                    }
            mlxe_device_free(dev);
        }
        free(original);
        free(x);
        free(inv_freq);
    }
}

static void test_silu_mul_and_add(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {10};
    static const int64_t sizes[] = {1, 13, 140001};
    for (int s = 0; s < 3; s++) {
        int64_t n = sizes[s];
        float *gate = malloc((size_t)n * sizeof(float));
        float *up = malloc((size_t)n * sizeof(float));
        float *out = malloc((size_t)n * sizeof(float));
        test_fill(&rng, gate, (size_t)n, -8.0f, 8.0f);
        test_fill(&rng, up, (size_t)n, -2.0f, 2.0f);
        if (n == 13) {
            /* the vector exp's range ends: saturation to 0 and infinity, and its clamp at +-100 */
            static const float extremes[13] = {0, -0.0f, 1e-30f, -20, 20, -60, 60, -87.5f, 88.5f, -100, 100, -1000, 1000};
            memcpy(gate, extremes, sizeof extremes);
        }
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            const mlxe_ops *ops = mlxe_device_ops(dev);
            ops->silu_mul(dev, gate, up, out, n);
            for (int64_t i = 0; i < n; i++) {
                double g = gate[i], want = g / (1.0 + exp(-g)) * up[i];
                assert_close(out[i], want, 1e-6 * (fabs(want) + 1e-3), "silu_mul %lld of %lld", (long long)i, (long long)n);
            }
            /* in place: out == gate */
            memcpy(out, gate, (size_t)n * sizeof(float));
            ops->silu_mul(dev, out, up, out, n);
            for (int64_t i = 0; i < n; i++) {
                double g = gate[i], want = g / (1.0 + exp(-g)) * up[i];
                assert_close(out[i], want, 1e-6 * (fabs(want) + 1e-3), "silu_mul in place %lld", (long long)i);
            }
            memcpy(out, up, (size_t)n * sizeof(float));
            ops->add(dev, out, gate, n);
            for (int64_t i = 0; i < n; i++) assert_true(out[i] == up[i] + gate[i]);
            mlxe_device_free(dev);
        }
        free(gate);
        free(up);
        free(out);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_create),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_add_bias),
        cmocka_unit_test(test_rms_norm),
        cmocka_unit_test(test_rope),
        cmocka_unit_test(test_silu_mul_and_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
