/* Tests of the CPU ops on MLX affine-quantized matrices (matmul and
 * embedding): random quantized values are packed here as MLX stores them
 * (uint32 words, least-significant bits first; for 3/5/6 bits one
 * little-endian bit stream per row, see /work/shared/docs/MLX_QUANT.md) and
 * the reference dequantizes w = scale * q + bias per group in double, from
 * the values before packing. Every bits × group size × scale dtype, both
 * kernel paths, 1-3 threads. */
#include "runtime_cpu_test.h"

typedef struct quantized {
    mlxe_matrix matrix;
    uint32_t *words;
    void *scales, *biases;
    double *values; /* rows × cols dequantized in double */
    double *magnitudes; /* |scale * q| + |bias| per element, for the error bound */
} quantized;

static void make_quantized(test_rng *rng, int64_t rows, int64_t cols, int bits, int group_size, mlxe_dtype scale_dtype,
                           quantized *out) {
    int64_t words_per_row = cols * bits / 32;
    int64_t groups = cols / group_size;
    out->words = calloc((size_t)(rows * words_per_row), sizeof(uint32_t));
    out->values = malloc((size_t)(rows * cols) * sizeof(double));
    out->magnitudes = malloc((size_t)(rows * cols) * sizeof(double));
    double *scale_values, *bias_values;
    out->scales = test_make_weights(rng, scale_dtype, (size_t)(rows * groups), 0.01f, 0.1f, &scale_values);
    out->biases = test_make_weights(rng, scale_dtype, (size_t)(rows * groups), -0.5f, 0.5f, &bias_values);
    for (int64_t r = 0; r < rows; r++) {
        uint32_t *row_words = out->words + r * words_per_row;
        for (int64_t k = 0; k < cols; k++) {
            uint32_t q = (uint32_t)(test_rng_next(rng) >> 40) & ((1u << bits) - 1u);
            uint64_t bit = (uint64_t)k * (uint64_t)bits;
            for (int b = 0; b < bits; b++, bit++)
                if (q >> b & 1u) row_words[bit / 32] |= 1u << (bit % 32);
            double scale = scale_values[r * groups + k / group_size];
            double bias = bias_values[r * groups + k / group_size];
            out->values[r * cols + k] = scale * q + bias;
            out->magnitudes[r * cols + k] = fabs(scale * q) + fabs(bias);
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
    free(q->values);
    free(q->magnitudes);
}

static const int all_bits[] = {2, 3, 4, 5, 6, 8};
static const int all_group_sizes[] = {32, 64, 128};
static const mlxe_dtype all_scale_dtypes[] = {MLXE_DTYPE_F16, MLXE_DTYPE_BF16, MLXE_DTYPE_F32};

static void check_quantized_matmul(int bits) {
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {1000 + (uint64_t)bits};
    static const int64_t token_counts[] = {1, 3, 17};
    for (int g = 0; g < 3; g++) {
        for (int d = 0; d < 3; d++) {
            int group_size = all_group_sizes[g];
            /* 3 groups of 128 = 384 columns: not a multiple of the 256-column chunk */
            int64_t rows = 7 + g, cols = (int64_t)group_size * (g == 2 ? 3 : 5);
            int64_t n_rows = token_counts[(g + d) % 3];
            quantized q;
            make_quantized(&rng, rows, cols, bits, group_size, all_scale_dtypes[d], &q);
            float *x = malloc((size_t)(n_rows * cols) * sizeof(float));
            float *y = malloc((size_t)(n_rows * rows) * sizeof(float));
            test_fill(&rng, x, (size_t)(n_rows * cols), -1.0f, 1.0f);
            for (int c = 0; c < n_configs; c++) {
                mlxe_device *dev = test_create_device(&configs[c]);
                mlxe_device_ops(dev)->matmul(dev, x, n_rows, &q.matrix, y);
                for (int64_t r = 0; r < n_rows; r++) {
                    for (int64_t o = 0; o < rows; o++) {
                        double want = 0, magnitude = 0, rounding = 0;
                        for (int64_t k = 0; k < cols; k++) {
                            want += x[r * cols + k] * q.values[o * cols + k];
                            magnitude += fabs(x[r * cols + k]) * q.magnitudes[o * cols + k];
                        }
                        /* The avx512-int8 kernels for 4 and 8 bits quantize the activations to int8
                         * per group (dx = max|x| / 127): each element may move by dx / 2, weighted
                         * by |scale * q| <= magnitude (kernels_avx512.c). */
                        if (strcmp(configs[c].kernels, "avx512-int8") == 0 && (bits == 4 || bits == 8)) {
                            for (int64_t g0 = 0; g0 < cols; g0 += group_size) {
                                double max_abs = 0, weight = 0;
                                for (int64_t k = g0; k < g0 + group_size; k++) {
                                    max_abs = fmax(max_abs, fabs(x[r * cols + k]));
                                    weight += q.magnitudes[o * cols + k];
                                }
                                rounding += max_abs / 127.0 / 2.0 * weight;
                            }
                        }
                        assert_close(y[r * rows + o], want, (double)(cols + 4) * FLT_EPSILON * magnitude + rounding,
                                     "%d-bit group %d %s scales, %s x%d, token %lld output %lld", bits, group_size,
                                     test_dtype_name(all_scale_dtypes[d]), configs[c].kernels, configs[c].threads,
                                     (long long)r, (long long)o);
                    }
                }
                mlxe_device_free(dev);
            }
            free(x);
            free(y);
            free_quantized(&q);
        }
    }
}

static void test_quantized_matmul_4bit(void **state) {
    (void)state;
    check_quantized_matmul(4);
}

static void test_quantized_matmul_8bit(void **state) {
    (void)state;
    check_quantized_matmul(8);
}

static void test_quantized_matmul_other_bits(void **state) {
    (void)state;
    check_quantized_matmul(2);
    check_quantized_matmul(3);
    check_quantized_matmul(5);
    check_quantized_matmul(6);
}

/* A quantized embedding table (tied embeddings of quantized MLX models). */
static void test_quantized_embedding(void **state) {
    (void)state;
    test_rng rng = {99};
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    for (size_t b = 0; b < sizeof all_bits / sizeof all_bits[0]; b++) {
        int bits = all_bits[b];
        quantized q;
        const int64_t vocab = 11, dim = 192;
        make_quantized(&rng, vocab, dim, bits, 64, all_scale_dtypes[b % 3], &q);
        const int32_t ids[] = {3, 0, 10, 3, 7};
        const int64_t n_rows = 5;
        float out[5 * 192];
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            mlxe_device_ops(dev)->embedding(dev, &q.matrix, ids, n_rows, out);
            for (int64_t r = 0; r < n_rows; r++)
                for (int64_t k = 0; k < dim; k++)
                    assert_close(out[r * dim + k], q.values[ids[r] * dim + k],
                                 2 * FLT_EPSILON * q.magnitudes[ids[r] * dim + k], "%d-bit row %lld element %lld",
                                 bits, (long long)r, (long long)k);
            mlxe_device_free(dev);
        }
        free_quantized(&q);
    }
}

/* Rows wider than the avx512-int8 kernel's activation buffer (32768 columns)
 * go to the float kernel, and prefill (5 tokens) dequantizes 1024-column
 * tiles, so this also covers the chunks after the first; every path must
 * match the reference within the float bound. */
static void test_quantized_matmul_wide_rows(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {4242};
    const int64_t rows = 9, cols = 32768 + 64, n_rows = 5;
    for (int b = 0; b < 2; b++) {
        int bits = b == 0 ? 4 : 8;
        quantized q;
        make_quantized(&rng, rows, cols, bits, 64, MLXE_DTYPE_BF16, &q);
        float *x = malloc((size_t)(n_rows * cols) * sizeof(float));
        float *y = malloc((size_t)(n_rows * rows) * sizeof(float));
        test_fill(&rng, x, (size_t)(n_rows * cols), -1.0f, 1.0f);
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            mlxe_device_ops(dev)->matmul(dev, x, n_rows, &q.matrix, y);
            for (int64_t r = 0; r < n_rows; r++)
                for (int64_t o = 0; o < rows; o++) {
                    double want = 0, magnitude = 0;
                    for (int64_t k = 0; k < cols; k++) {
                        want += x[r * cols + k] * q.values[o * cols + k];
                        magnitude += fabs(x[r * cols + k]) * q.magnitudes[o * cols + k];
                    }
                    assert_close(y[r * rows + o], want, (double)(cols + 4) * FLT_EPSILON * magnitude,
                                 "%d-bit %lld columns, %s x%d, token %lld output %lld", bits, (long long)cols,
                                 configs[c].kernels, configs[c].threads, (long long)r, (long long)o);
                }
            mlxe_device_free(dev);
        }
        free(x);
        free(y);
        free_quantized(&q);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_matmul_4bit),
        cmocka_unit_test(test_quantized_matmul_8bit),
        cmocka_unit_test(test_quantized_matmul_other_bits),
        cmocka_unit_test(test_quantized_embedding),
        cmocka_unit_test(test_quantized_matmul_wide_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
