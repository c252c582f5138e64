/* Tests of the CPU's fused projections (runtime/cpu/cpu_matmul.c):
 * ops->matmul_multi (q, k and v of one input in one run of the pool) and
 * ops->matmul_swiglu (gate and up in one run, then silu(gate) * up), each
 * with and without the folded RMSNorm, against the plain ops they replace
 * (rms_norm, matmul per matrix, silu_mul), which the other
 * test_runtime_cpu_*.c programs check against double-precision references.
 * The fused ops promise the plain ops' results bit for bit (the same
 * kernels on the same prepared activations, only the scheduling differs),
 * so the comparison is exact. Every kernel table × 1-3 threads; F32, F16 and
 * BF16 weights and MLX 4/8-bit ones with groups of 32, 64 and 128, in the
 * file's layout and in the CPU's packed copy (16-row tiles, partial last
 * tiles); 1, 2 and 3 tokens (decode kernels) and 5 and 17 (prefill). */
#include "runtime_cpu_test.h"

#include "runtime/cpu/cpu_ops.h"

/* One weight matrix with random contents; free with free_matrix. bits 0:
 * dense (dtype), else MLX affine with BF16 scales (F16 for group 32). */
static mlxe_matrix make_matrix(test_rng *rng, int64_t rows, int64_t cols, mlxe_dtype dtype, int bits, int group_size) {
    if (bits == 0) {
        double *values;
        void *data = test_make_weights(rng, dtype, (size_t)(rows * cols), -0.5f, 0.5f, &values);
        free(values);
        return (mlxe_matrix){.dtype = dtype, .rows = rows, .cols = cols, .data = data};
    }
    const size_t words = (size_t)(rows * cols * bits / 32), groups = (size_t)(rows * cols / group_size);
    uint32_t *data = malloc(words * sizeof(uint32_t));
    uint16_t *scales = malloc(groups * sizeof(uint16_t)), *biases = malloc(groups * sizeof(uint16_t));
    assert_non_null(data);
    assert_non_null(scales);
    assert_non_null(biases);
    const mlxe_dtype scale_dtype = group_size == 32 ? MLXE_DTYPE_F16 : MLXE_DTYPE_BF16;
    for (size_t i = 0; i < words; i++) data[i] = (uint32_t)test_rng_next(rng);
    for (size_t g = 0; g < groups; g++) {
        const float scale = test_rng_float(rng, 0.005f, 0.05f), bias = test_rng_float(rng, -0.3f, 0.3f);
        scales[g] = scale_dtype == MLXE_DTYPE_F16 ? test_f16_bits(scale) : test_bf16_bits(scale);
        biases[g] = scale_dtype == MLXE_DTYPE_F16 ? test_f16_bits(bias) : test_bf16_bits(bias);
    }
    return (mlxe_matrix){.dtype = MLXE_DTYPE_U32, .rows = rows, .cols = cols, .data = data, .bits = bits,
                         .group_size = group_size, .scale_dtype = scale_dtype, .scales = scales, .biases = biases};
}

static void free_matrix(mlxe_matrix *m) {
    free((void *)m->data);
    free((void *)m->scales);
    free((void *)m->biases);
}

typedef struct weights_case {
    mlxe_dtype dtype;
    int bits, group_size;
    int64_t cols;
} weights_case;

static const weights_case cases[] = {
    {MLXE_DTYPE_F32, 0, 0, 40},      {MLXE_DTYPE_F16, 0, 0, 72},       {MLXE_DTYPE_BF16, 0, 0, 96},
    {MLXE_DTYPE_U32, 4, 64, 448},    {MLXE_DTYPE_U32, 8, 64, 448},     {MLXE_DTYPE_U32, 4, 32, 160},
    {MLXE_DTYPE_U32, 8, 32, 96},     {MLXE_DTYPE_U32, 4, 128, 384},    {MLXE_DTYPE_U32, 8, 128, 256},
};

static const int64_t token_counts[] = {1, 2, 3, 5, 17};

/* q (a partial last packed tile), k and v (one tile each, or less), gate
 * and up (tiles and a half) of one input. */
#define Q_ROWS 37
#define KV_ROWS 16
#define FFN_ROWS 24
#define KV_ROWS_SMALL 5

static float *alloc_floats(int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    assert_non_null(p);
    for (int64_t i = 0; i < n; i++) p[i] = NAN;
    return p;
}

/* The fused ops on w (packed where the table packs and pack is set)
 * against the plain ops, one device. */
static void check_case(mlxe_device *dev, const char *label, mlxe_matrix *mats, int n_mats, const float *x,
                       const mlxe_vector *norm_weight, int64_t n_rows) {
    const mlxe_ops *ops = mlxe_device_ops(dev);
    const int64_t cols = mats[0].cols;
    assert_non_null(ops->matmul_multi);
    assert_non_null(ops->matmul_swiglu);
    for (int with_norm = 0; with_norm < 2; with_norm++) {
        const mlxe_vector *norm = with_norm ? norm_weight : NULL;
        float *normed_want = alloc_floats(n_rows * cols), *normed = alloc_floats(n_rows * cols);
        const float *input = x;
        if (norm) {
            ops->rms_norm(dev, x, norm, n_rows, cols, 1e-5f, normed_want);
            input = normed_want;
        }
        /* q, k, v: the first three matrices (1 to 3 of them) */
        const int n_out = n_mats < 3 ? n_mats : 3;
        float *want[3], *got[3];
        const mlxe_matrix *projections[3];
        for (int i = 0; i < n_out; i++) {
            projections[i] = &mats[i];
            want[i] = alloc_floats(n_rows * mats[i].rows);
            got[i] = alloc_floats(n_rows * mats[i].rows);
            ops->matmul(dev, input, n_rows, &mats[i], want[i]);
        }
        ops->matmul_multi(dev, x, n_rows, norm, 1e-5f, normed, n_out, projections, got);
        if (norm) assert_memory_equal(normed, normed_want, (size_t)(n_rows * cols) * sizeof(float));
        for (int i = 0; i < n_out; i++) {
            for (int64_t j = 0; j < n_rows * mats[i].rows; j++)
                if (memcmp(&got[i][j], &want[i][j], sizeof(float)) != 0)
                    fail_msg("matmul_multi %s, %d outputs, output %d, %lld tokens%s: element %lld is %.9g, want %.9g",
                             label, n_out, i, (long long)n_rows, norm ? ", normed" : "", (long long)j, got[i][j],
                             want[i][j]);
            free(want[i]);
            free(got[i]);
        }
        /* gate and up: the last two matrices, same shape */
        if (n_mats == 5) {
            const mlxe_matrix *gate = &mats[3], *up = &mats[4];
            const int64_t n = n_rows * gate->rows;
            float *gate_want = alloc_floats(n), *up_want = alloc_floats(n), *out = alloc_floats(n), *scratch = alloc_floats(n);
            ops->matmul(dev, input, n_rows, gate, gate_want);
            ops->matmul(dev, input, n_rows, up, up_want);
            ops->silu_mul(dev, gate_want, up_want, gate_want, n);
            ops->matmul_swiglu(dev, x, n_rows, norm, 1e-5f, normed, gate, up, out, scratch);
            for (int64_t j = 0; j < n; j++)
                if (memcmp(&out[j], &gate_want[j], sizeof(float)) != 0)
                    fail_msg("matmul_swiglu %s, %lld tokens%s: element %lld is %.9g, want %.9g", label,
                             (long long)n_rows, norm ? ", normed" : "", (long long)j, out[j], gate_want[j]);
            /* not vacuous: silu(g) * u of random weights is not all zero */
            double magnitude = 0;
            for (int64_t j = 0; j < n; j++) magnitude += fabs(out[j]);
            assert_true(magnitude > 0);
            free(gate_want);
            free(up_want);
            free(out);
            free(scratch);
        }
        free(normed_want);
        free(normed);
    }
}

static void test_fused_match_plain_ops(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    const int n_configs = test_device_configs(configs);
    test_rng rng = {2718};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const weights_case wc = cases[c];
        const int64_t kv_rows = c % 2 ? KV_ROWS : KV_ROWS_SMALL;
        const int64_t rows[5] = {Q_ROWS, kv_rows, kv_rows, FFN_ROWS, FFN_ROWS};
        mlxe_matrix mats[5];
        for (int i = 0; i < 5; i++) mats[i] = make_matrix(&rng, rows[i], wc.cols, wc.dtype, wc.bits, wc.group_size);
        float *x = alloc_floats(17 * wc.cols);
        test_fill(&rng, x, (size_t)(17 * wc.cols), -2.0f, 2.0f);
        double *norm_values;
        void *norm_data = test_make_weights(&rng, MLXE_DTYPE_BF16, (size_t)wc.cols, 0.5f, 1.5f, &norm_values);
        free(norm_values);
        const mlxe_vector norm = {.dtype = MLXE_DTYPE_BF16, .size = wc.cols, .data = norm_data};
        for (int k = 0; k < n_configs; k++) {
            mlxe_device *dev = test_create_device(&configs[k]);
            const mlxe_ops *ops = mlxe_device_ops(dev);
            for (int pack = 0; pack < 2; pack++) {
                mlxe_matrix used[5];
                void *owned[5] = {NULL};
                for (int i = 0; i < 5; i++) {
                    used[i] = mats[i];
                    mlxe_error err;
                    if (pack && ops->pack_matrix(dev, &used[i], false, &owned[i], &err) != MLXE_OK)
                        fail_msg("pack_matrix: %s", err.message);
                }
                char label[128];
                snprintf(label, sizeof label, "%s %d-bit g%d %lld cols%s, %s x%d",
                         wc.bits ? "MLX" : test_dtype_name(wc.dtype), wc.bits ? wc.bits : 16, wc.group_size,
                         (long long)wc.cols, used[0].packed ? " packed" : pack ? " copied" : "", configs[k].kernels,
                         configs[k].threads);
                for (size_t t = 0; t < sizeof token_counts / sizeof token_counts[0]; t++) {
                    check_case(dev, label, used, 5, x, &norm, token_counts[t]);
                    /* one and two projections (matmul_multi's n_out 1 and 2) */
                    check_case(dev, label, used, 1 + (int)(t % 2), x, &norm, token_counts[t]);
                }
                for (int i = 0; i < 5; i++) free(owned[i]);
            }
            mlxe_device_free(dev);
        }
        for (int i = 0; i < 5; i++) free_matrix(&mats[i]);
        free(x);
        free(norm_data);
    }
}

/* A large matrix, so the op runs on the pool and the workers' ranges meet
 * inside one part (q's blocks split between the workers, k and v taken
 * whole by one): 2 threads on the default table, decode and prefill. */
static void test_fused_large(void **state) {
    (void)state;
    test_rng rng = {161803};
    mlxe_device *dev = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_device_create_cpu(2, &dev, &err), MLXE_OK);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    const int64_t cols = 896, rows[5] = {896, 128, 128, 1000, 1000};
    mlxe_matrix mats[5], used[5];
    void *owned[5] = {NULL};
    for (int i = 0; i < 5; i++) {
        mats[i] = make_matrix(&rng, rows[i], cols, MLXE_DTYPE_U32, 4, 64);
        used[i] = mats[i];
        assert_int_equal(ops->pack_matrix(dev, &used[i], false, &owned[i], &err), MLXE_OK);
    }
    float *x = alloc_floats(5 * cols);
    test_fill(&rng, x, (size_t)(5 * cols), -2.0f, 2.0f);
    double *norm_values;
    void *norm_data = test_make_weights(&rng, MLXE_DTYPE_F32, (size_t)cols, 0.5f, 1.5f, &norm_values);
    free(norm_values);
    const mlxe_vector norm = {.dtype = MLXE_DTYPE_F32, .size = cols, .data = norm_data};
    check_case(dev, "MLX 4-bit g64 896 cols, default x2", used, 5, x, &norm, 1);
    check_case(dev, "MLX 4-bit g64 896 cols, default x2", used, 5, x, &norm, 5);
    /* gate packed, up not: blocks of 16 rows, then of 4, in one run */
    mlxe_matrix mixed[5] = {used[0], used[1], used[2], used[3], mats[4]};
    check_case(dev, "gate packed, up in the file's layout", mixed, 5, x, &norm, 1);
    check_case(dev, "gate packed, up in the file's layout", mixed, 5, x, &norm, 5);
    for (int i = 0; i < 5; i++) {
        free(owned[i]);
        free_matrix(&mats[i]);
    }
    free(x);
    free(norm_data);
    mlxe_device_free(dev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fused_match_plain_ops),
        cmocka_unit_test(test_fused_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
