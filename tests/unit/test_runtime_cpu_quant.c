/* Tests of the CPU ops on MLX affine-quantized matrices (matmul and
 * embedding): random quantized values are packed here as MLX stores them
 * (uint32 words, least-significant bits first; for 3/5/6 bits one
 * little-endian bit stream per row, see /work/shared/docs/MLX_QUANT.md) and
 * the reference dequantizes w = scale * q + bias per group in double, from
 * the values before packing. Every bits × group size × scale dtype, both
 * kernel paths, 1-3 threads. */
#include "runtime_cpu_test.h"

#include "runtime/cpu/cpu_ops.h"

typedef struct quantized {
    mlxe_matrix matrix;
    uint32_t *words;
    void *scales, *biases;
    double *values; /* rows × cols dequantized in double */
    double *magnitudes; /* |scale * q| + |bias| per element, for the error bound */
    double *biases_exact; /* rows × groups, the stored biases as doubles */
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
    out->biases_exact = bias_values;
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
    free(q->biases_exact);
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
                         * (decode: per 8 columns, kernels_avx512_decode.c; prefill: per weight group,
                         * kernels_avx512_gemm_int8.c; dx = max|x| / 127): each element may move by
                         * dx / 2, weighted by |scale * q|; bounded here by the group's max |x|, which
                         * covers both. */
                        bool int8_path = strcmp(configs[c].kernels, "avx512-int8") == 0 && (bits == 4 || bits == 8);
                        if (int8_path) {
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

/* Wide rows in prefill (5 tokens: float activations on every table), which
 * dequantizes 1024-column tiles, so this also covers the chunks after the
 * first; every path must match the reference within the float bound. */
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

/* w in the CPU's packed layout (ops->pack_matrix, cpu_pack.c): the
 * avx512-int8 table packs every 4/8-bit matrix with F16/BF16 scales. */
static void pack_for_test(mlxe_device *dev, mlxe_matrix *w, void **owned) {
    mlxe_error err;
    const mlxe_ops *ops = mlxe_device_ops(dev);
    assert_non_null(ops->pack_matrix);
    /* the test's buffers are heap memory: never released (release_bound false) */
    if (ops->pack_matrix(dev, w, false, owned, &err) != MLXE_OK) fail_msg("pack_matrix: %s", err.message);
    const bool packable = w->scale_dtype != MLXE_DTYPE_F32 && (w->bits == 4 || w->bits == 8);
    assert_int_equal(*owned != NULL, packable);
    assert_true(w->packed == *owned);
}

/* The avx512-int8 decode path computes exactly sum_k w_k * dx_b * xq_k over
 * the activations as it quantizes them — per 8 columns b: dx_b = max|x| /
 * 127 and xq_k = round-to-nearest-even(x_k * (127 / max|x|)), both in float
 * (runtime/cpu/kernels_avx512_decode.c) — so against that reference only
 * float rounding remains (the same bound as the float kernels). This pins
 * the rounding down far tighter than the dx / 2 bound above, and checks the
 * bias term uses the exact float activations: the reference splits w_k =
 * s q_k + b into s q_k (times the quantized x) and b (times the float x).
 * Every group size, scale dtype, 1-3 tokens, rows not a multiple of 4 and
 * columns not a multiple of the 128-column block. */
static void check_int8_definition(test_rng *rng, int bits, int group_size, mlxe_dtype scale_dtype, int64_t rows,
                                  int64_t cols, int64_t n_rows) {
    quantized q;
    make_quantized(rng, rows, cols, bits, group_size, scale_dtype, &q);
    float *x = malloc((size_t)(n_rows * cols) * sizeof(float));
    float *y = malloc((size_t)(n_rows * rows) * sizeof(float));
    test_fill(rng, x, (size_t)(n_rows * cols), -1.0f, 1.0f);
    x[3] = 0; /* a zero and a block of zeros (dx = 0) */
    for (int64_t k = 32; k < 64 && k < cols; k++) x[k] = 0;
    for (int run = 0; run < 6; run++) {
        /* 1-3 threads on the file's layout, then on the CPU's packed copy (cpu_pack.c) */
        const int threads = 1 + run % 3;
        const bool packed = run >= 3;
        test_device_config config = {"avx512-int8", threads};
        mlxe_device *dev = test_create_device(&config);
        mlxe_matrix w = q.matrix;
        void *owned = NULL;
        if (packed) pack_for_test(dev, &w, &owned);
        mlxe_device_ops(dev)->matmul(dev, x, n_rows, &w, y);
        for (int64_t r = 0; r < n_rows; r++) {
            const float *xr = x + r * cols;
            for (int64_t o = 0; o < rows; o++) {
                double want = 0, magnitude = 0;
                for (int64_t k0 = 0; k0 < cols; k0 += 8) {
                    float max_abs = 0;
                    for (int64_t k = k0; k < k0 + 8; k++) max_abs = fmaxf(max_abs, fabsf(xr[k]));
                    float dx = max_abs / 127.0f, inverse = max_abs > 0 ? 127.0f / max_abs : 0.0f;
                    for (int64_t k = k0; k < k0 + 8; k++) {
                        double xq = nearbyint((double)(xr[k] * inverse)); /* float product, then round */
                        double bias = q.biases_exact[o * (cols / group_size) + k / group_size];
                        double scaled = q.values[o * cols + k] - bias; /* s q_k */
                        want += scaled * (double)dx * xq + bias * xr[k];
                        magnitude += fabs(scaled) * fabs((double)dx * xq) + fabs(bias * xr[k]);
                    }
                }
                assert_close(y[r * rows + o], want, (double)(cols + 8) * FLT_EPSILON * magnitude,
                             "%d-bit group %d %s scales, %lld x %lld%s x%d, token %lld output %lld", bits, group_size,
                             test_dtype_name(scale_dtype), (long long)rows, (long long)cols, packed ? " packed" : "",
                             threads, (long long)r, (long long)o);
            }
        }
        free(owned);
        mlxe_device_free(dev);
    }
    free(x);
    free(y);
    free_quantized(&q);
}

static void test_int8_decode_matches_its_definition(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) skip();
    test_rng rng = {777};
    for (int b = 0; b < 2; b++)
        for (int g = 0; g < 3; g++)
            for (int d = 0; d < 3; d++) {
                int group_size = all_group_sizes[g];
                check_int8_definition(&rng, b == 0 ? 4 : 8, group_size, all_scale_dtypes[d], 6 + g + d,
                                      384 + (group_size == 128 ? 0 : group_size) /* 416, 448, 384 */,
                                      1 + (g + d + b) % 3);
            }
    /* rows past one 16-row tile of the packed layout, a partial last tile */
    check_int8_definition(&rng, 4, 64, MLXE_DTYPE_BF16, 37, 896, 1);
    check_int8_definition(&rng, 8, 128, MLXE_DTYPE_F16, 33, 256, 3);
    check_int8_definition(&rng, 4, 32, MLXE_DTYPE_F16, 48, 96, 2);
    /* prepared activations past cpu_matmul.c's stack buffer (16 KiB): the heap copy */
    check_int8_definition(&rng, 4, 64, MLXE_DTYPE_BF16, 5, 8320, 2);
    check_int8_definition(&rng, 8, 32, MLXE_DTYPE_F16, 5, 8320, 1);
}

/* The packed copy read by every other path: prefill (int8 GEMM panels
 * taken from the tiles: the same panels, so the same outputs bit for bit),
 * the embedding and the portable float path (mlxe_cpu_matrix_row_to_float,
 * bit for bit), on rows that fill no whole tile, one tile, and several
 * with a partial last one. And what is not packed: F32 scales, other bit
 * widths, tables without int8 kernels. */
static void test_packed_layout_read_by_every_path(void **state) {
    (void)state;
    if (!mlxe_cpu_has_avx512()) skip();
    test_rng rng = {2026};
    static const int64_t row_counts[] = {5, 16, 41};
    for (int b = 0; b < 2; b++)
        for (int g = 0; g < 3; g++)
            for (int r = 0; r < 3; r++) {
                const int bits = b == 0 ? 4 : 8, group_size = all_group_sizes[g];
                const int64_t rows = row_counts[r], cols = group_size == 32 ? 160 : 384, n_rows = 6;
                const mlxe_dtype scale_dtype = (b + g + r) % 2 ? MLXE_DTYPE_F16 : MLXE_DTYPE_BF16;
                quantized q;
                make_quantized(&rng, rows, cols, bits, group_size, scale_dtype, &q);
                float *x = malloc((size_t)(n_rows * cols) * sizeof(float));
                /* room for the matmuls' n_rows x rows and the embedding's 3 x cols */
                const size_t out_floats = (size_t)(n_rows * rows > 3 * cols ? n_rows * rows : 3 * cols);
                float *want = malloc(out_floats * sizeof(float)), *got = malloc(out_floats * sizeof(float));
                test_fill(&rng, x, (size_t)(n_rows * cols), -1.0f, 1.0f);
                for (int threads = 1; threads <= 3; threads++) {
                    test_device_config config = {"avx512-int8", threads};
                    mlxe_device *dev = test_create_device(&config);
                    const mlxe_ops *ops = mlxe_device_ops(dev);
                    mlxe_matrix packed = q.matrix;
                    void *owned = NULL;
                    pack_for_test(dev, &packed, &owned);
                    ops->matmul(dev, x, n_rows, &q.matrix, want);
                    ops->matmul(dev, x, n_rows, &packed, got);
                    assert_memory_equal(got, want, (size_t)(n_rows * rows) * sizeof(float));
                    const int32_t ids[] = {(int32_t)rows - 1, 0, (int32_t)(rows / 2)};
                    ops->embedding(dev, &q.matrix, ids, 3, want);
                    ops->embedding(dev, &packed, ids, 3, got);
                    assert_memory_equal(got, want, (size_t)(3 * cols) * sizeof(float));
                    for (int64_t o = 0; o < rows; o += 7) {
                        mlxe_cpu_matmul_quantized(mlxe_cpu_kernels_select(), x, 2, &q.matrix, o, o + 1, want);
                        mlxe_cpu_matmul_quantized(mlxe_cpu_kernels_select(), x, 2, &packed, o, o + 1, got);
                        assert_true(got[o] == want[o] && got[rows + o] == want[rows + o]);
                    }
                    free(owned);
                    mlxe_device_free(dev);
                }
                free(x);
                free(want);
                free(got);
                free_quantized(&q);
            }
    /* not packed: F32 scales, 3 bits (avx512-int8), any matrix on the float tables */
    quantized f32, three;
    make_quantized(&rng, 16, 128, 4, 64, MLXE_DTYPE_F32, &f32);
    make_quantized(&rng, 16, 128, 3, 64, MLXE_DTYPE_BF16, &three);
    test_device_config int8 = {"avx512-int8", 1};
    mlxe_device *dev = test_create_device(&int8);
    mlxe_matrix w = f32.matrix;
    void *owned = NULL;
    pack_for_test(dev, &w, &owned);
    w = three.matrix;
    pack_for_test(dev, &w, &owned);
    mlxe_device_free(dev);
    static const char *const float_tables[] = {"generic", "avx512"};
    for (int t = 0; t < 2; t++) {
        test_device_config config = {float_tables[t], 2};
        dev = test_create_device(&config);
        mlxe_error err;
        w = three.matrix;
        w.bits = 4;
        w.data = f32.words;
        assert_int_equal(mlxe_device_ops(dev)->pack_matrix(dev, &w, false, &owned, &err), MLXE_OK);
        assert_null(owned);
        assert_null(w.packed);
        mlxe_device_free(dev);
    }
    free_quantized(&f32);
    free_quantized(&three);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_matmul_4bit),
        cmocka_unit_test(test_quantized_matmul_8bit),
        cmocka_unit_test(test_quantized_matmul_other_bits),
        cmocka_unit_test(test_quantized_embedding),
        cmocka_unit_test(test_quantized_matmul_wide_rows),
        cmocka_unit_test(test_int8_decode_matches_its_definition),
        cmocka_unit_test(test_packed_layout_read_by_every_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
