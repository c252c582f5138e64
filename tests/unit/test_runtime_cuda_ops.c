/* Tests of every CUDA op against the CPU implementation on random inputs:
 * the same arguments go to a CPU device (host memory) and to the GPU (device
 * memory, outputs poisoned with NaN first so an unwritten element fails),
 * and the results must agree within the precision of the path:
 *   - float32 arithmetic (matrix-vector kernels, SGEMM, norms, attention):
 *     relative error (‖gpu − cpu‖ / ‖cpu‖) near 1e-6;
 *   - tensor-core GEMMs, whose activations are rounded to BF16 (or F16):
 *     within the error of that rounding (2^-9 per element for BF16).
 * Covers F32/F16/BF16 weights, MLX affine 2-8 bits with groups 32/64/128 and
 * F16/BF16/F32 scales, decode and prefill batch sizes, unaligned weights,
 * and integer arrays passed from host memory. Skips without a GPU. */
#include "runtime_cuda_test.h"

#include "mlxengine/sampler.h"

typedef struct gpu_fixture {
    mlxe_device *gpu, *cpu;
    const mlxe_ops *g, *c;
} gpu_fixture;

static int setup(void **state) {
    gpu_fixture *f = calloc(1, sizeof *f);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    gpu_fixture *f = *state;
    mlxe_device_free(f->gpu);
    mlxe_device_free(f->cpu);
    free(f);
    return 0;
}

static gpu_fixture *open_devices(void **state) {
    gpu_fixture *f = *state;
    if (!f->gpu) {
        f->gpu = cuda_device_or_skip();
        f->cpu = cuda_cpu_device();
        f->g = mlxe_device_ops(f->gpu);
        f->c = mlxe_device_ops(f->cpu);
    }
    return f;
}

/* A buffer of n floats full of NaN on gpu. */
static float *poisoned_on(mlxe_device *gpu, size_t n) {
    float *host = malloc(n * sizeof(float) + 4);
    memset(host, 0xff, n * sizeof(float));
    float *p = cuda_to_device(gpu, host, n * sizeof(float));
    free(host);
    return p;
}

static float *poisoned(gpu_fixture *f, size_t n) {
    return poisoned_on(f->gpu, n);
}

static float *download_from(mlxe_device *gpu, const float *device, size_t n) {
    float *host = malloc(n * sizeof(float) + 4);
    mlxe_device_ops(gpu)->download(gpu, host, device, n * sizeof(float));
    cuda_expect_synchronized(gpu);
    return host;
}

static float *download(gpu_fixture *f, const float *device, size_t n) {
    return download_from(f->gpu, device, n);
}

/* Another device object on the same GPU, created with env_name=value (the
 * backend reads its tuning switches at creation); the variable gets its
 * earlier value back afterwards (MLXE_CUDA_MATVEC=float stays set: main). */
static mlxe_device *gpu_with(const char *env_name, const char *value) {
    const char *before = getenv(env_name);
    char *saved = before ? strdup(before) : NULL;
    setenv(env_name, value, 1);
    mlxe_device *gpu = NULL;
    mlxe_error err;
    mlxe_status status = mlxe_device_create_cuda(0, &gpu, &err);
    if (saved) setenv(env_name, saved, 1);
    else unsetenv(env_name);
    free(saved);
    if (status != MLXE_OK) fail_msg("%s", err.message);
    return gpu;
}

/* ---- matmul ---- */

/* Runs y = x wᵀ on both devices; w_device holds the weights' device copies. */
static void check_matmul(gpu_fixture *f, mlxe_device *gpu, cuda_rng *rng, const mlxe_matrix *w_host,
                         const mlxe_matrix *w_device, int64_t n_rows, double tolerance, const char *what) {
    size_t nx = (size_t)(n_rows * w_host->cols), ny = (size_t)(n_rows * w_host->rows);
    float *x = malloc(nx * sizeof(float)), *want = malloc(ny * sizeof(float));
    cuda_fill(rng, x, nx, -1.0f, 1.0f);
    f->c->matmul(f->cpu, x, n_rows, w_host, want);
    float *dx = cuda_to_device(gpu, x, nx * sizeof(float));
    float *dy = poisoned(f, ny);
    cuda_expect_synchronized(f->gpu); /* gpu may be another device object, with its own stream */
    mlxe_device_ops(gpu)->matmul(gpu, dx, n_rows, w_device, dy);
    float *got = malloc(ny * sizeof(float));
    mlxe_device_ops(gpu)->download(gpu, got, dy, ny * sizeof(float));
    cuda_expect_synchronized(gpu);
    char label[160];
    snprintf(label, sizeof label, "%s, %lld tokens", what, (long long)n_rows);
    cuda_assert_close(got, want, ny, tolerance, label);
    f->g->free(f->gpu, dx);
    f->g->free(f->gpu, dy);
    free(x);
    free(want);
    free(got);
}

static const int64_t token_counts[] = {1, 2, 3, 5, 8, 9, 40};

/* GEMM tolerance: F16/BF16 activations are rounded to the weight type. */
static double gemm_tolerance(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F32 ? 1e-5 : dtype == MLXE_DTYPE_BF16 ? 1e-2 : 2e-3;
}

static void test_matmul_float(void **state) {
    gpu_fixture *f = open_devices(state);
    /* the default switches to cuBLAS from 2 tokens on; this one keeps the
     * matrix-vector kernels up to 8 (their 2-, 4- and 8-token variants) */
    /* ... with the row split over several warps on small matrices (off by
     * default, MLXE_CUDA_MATVEC_SPLIT=auto) */
    setenv("MLXE_CUDA_MATVEC_SPLIT", "auto", 1);
    mlxe_device *matvec8 = gpu_with("MLXE_CUDA_MATVEC_ROWS", "8");
    unsetenv("MLXE_CUDA_MATVEC_SPLIT");
    cuda_rng rng = {1};
    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};
    /* rows 8000/4000/1600/70: 1, 2, 4, 8 warps per output row on an H100;
     * 2048 columns: several unrolled passes; 100: not a multiple of the
     * 16-byte load (scalar kernel) */
    static const int64_t shapes[][2] = {{70, 2048}, {33, 100}, {9, 512}, {8000, 256}, {4000, 256}, {1600, 256}};
    for (int d = 0; d < 3; d++) {
        for (int s = 0; s < 6; s++) {
            int64_t rows = shapes[s][0], cols = shapes[s][1];
            size_t element = dtypes[d] == MLXE_DTYPE_F32 ? 4 : 2;
            void *data = cuda_random_weights(&rng, dtypes[d], (size_t)(rows * cols), -1.0f, 1.0f);
            mlxe_matrix host = {.dtype = dtypes[d], .rows = rows, .cols = cols, .data = data};
            mlxe_matrix device = host;
            device.data = cuda_weights_to_device(f->gpu, data, (size_t)(rows * cols) * element);
            for (size_t t = 0; t < sizeof token_counts / sizeof token_counts[0]; t++) {
                int64_t n = token_counts[t];
                if (s >= 3 && n > 9) continue;
                char what[96];
                snprintf(what, sizeof what, "matmul %s %lldx%lld", cuda_dtype_name(dtypes[d]), (long long)rows,
                         (long long)cols);
                check_matmul(f, f->gpu, &rng, &host, &device, n, n == 1 ? 1e-5 : gemm_tolerance(dtypes[d]), what);
                check_matmul(f, matvec8, &rng, &host, &device, n, n <= 8 ? 1e-5 : gemm_tolerance(dtypes[d]), what);
            }
            f->g->free_weights(f->gpu, (void *)device.data);
            free(data);
        }
    }
    mlxe_device_free(matvec8);
}

/* Weights at an address that is not 16-byte aligned (safetensors does not
 * align tensors): the scalar kernel must take over. */
static void test_matmul_unaligned(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {2};
    int64_t rows = 20, cols = 256;
    void *data = cuda_random_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows * cols) + 8, -1.0f, 1.0f);
    char *base = cuda_weights_to_device(f->gpu, data, (size_t)(rows * cols) * 2 + 16);
    mlxe_matrix host = {.dtype = MLXE_DTYPE_BF16, .rows = rows, .cols = cols, .data = (char *)data + 2};
    mlxe_matrix device = host;
    device.data = base + 2;
    for (int64_t n = 1; n <= 9; n += 4)
        check_matmul(f, f->gpu, &rng, &host, &device, n, n == 1 ? 1e-5 : gemm_tolerance(MLXE_DTYPE_BF16),
                     "unaligned BF16");
    f->g->free_weights(f->gpu, base);
    free(data);
}

typedef struct quantized_weights {
    mlxe_matrix host, device;
} quantized_weights;
static void make_quantized(gpu_fixture *f, cuda_rng *rng, int64_t rows, int64_t cols, int bits, int group_size,
                           mlxe_dtype scale_dtype, quantized_weights *q);
static void free_quantized(gpu_fixture *f, quantized_weights *q);

/* The alternative prefill path: weights widened to F32 per call. */
static void test_matmul_f32_gemm_mode(void **state) {
    gpu_fixture *f = open_devices(state);
    mlxe_device *gpu = gpu_with("MLXE_CUDA_GEMM", "f32");
    cuda_rng rng = {3};
    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F16, MLXE_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        int64_t rows = 130, cols = 384;
        void *data = cuda_random_weights(&rng, dtypes[d], (size_t)(rows * cols), -1.0f, 1.0f);
        mlxe_matrix host = {.dtype = dtypes[d], .rows = rows, .cols = cols, .data = data};
        mlxe_matrix device = host;
        device.data = cuda_weights_to_device(gpu, data, (size_t)(rows * cols) * 2);
        check_matmul(f, gpu, &rng, &host, &device, 33, 1e-5, "F32-GEMM mode");
        mlxe_device_ops(gpu)->free_weights(gpu, (void *)device.data);
        free(data);
    }
    /* quantized weights expanded to F32: as exact as the CPU (the path the
     * greedy-equality tests of quantized models take) */
    static const int quantized_bits[] = {4, 8, 3};
    for (int b = 0; b < 3; b++) {
        quantized_weights q;
        make_quantized(f, &rng, 130, 384, quantized_bits[b], 64, b == 2 ? MLXE_DTYPE_F32 : MLXE_DTYPE_BF16, &q);
        check_matmul(f, gpu, &rng, &q.host, &q.device, 33, 2e-5, "F32-GEMM mode, quantized");
        free_quantized(f, &q);
    }
    mlxe_device_free(gpu);
}


/* Random words are valid packed values of any width: the CPU is the oracle. */
static void make_quantized(gpu_fixture *f, cuda_rng *rng, int64_t rows, int64_t cols, int bits, int group_size,
                           mlxe_dtype scale_dtype, quantized_weights *q) {
    size_t words = (size_t)(rows * cols * bits / 32), groups = (size_t)(rows * cols / group_size);
    uint32_t *packed = malloc(words * 4);
    for (size_t i = 0; i < words; i++) packed[i] = (uint32_t)cuda_rng_next(rng);
    size_t scale_bytes = groups * (scale_dtype == MLXE_DTYPE_F32 ? 4 : 2);
    void *scales = cuda_random_weights(rng, scale_dtype, groups, 0.01f, 0.1f);
    void *biases = cuda_random_weights(rng, scale_dtype, groups, -0.5f, 0.5f);
    q->host = (mlxe_matrix){.dtype = MLXE_DTYPE_U32, .rows = rows, .cols = cols, .data = packed, .bits = bits,
                            .group_size = group_size, .scale_dtype = scale_dtype, .scales = scales, .biases = biases};
    q->device = q->host;
    q->device.data = cuda_weights_to_device(f->gpu, packed, words * 4);
    q->device.scales = cuda_weights_to_device(f->gpu, scales, scale_bytes);
    q->device.biases = cuda_weights_to_device(f->gpu, biases, scale_bytes);
}

static void free_quantized(gpu_fixture *f, quantized_weights *q) {
    f->g->free_weights(f->gpu, (void *)q->device.data);
    f->g->free_weights(f->gpu, (void *)q->device.scales);
    f->g->free_weights(f->gpu, (void *)q->device.biases);
    free((void *)q->host.data);
    free((void *)q->host.scales);
    free((void *)q->host.biases);
}

static void test_matmul_quantized(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {4};
    static const int all_bits[] = {4, 8, 2, 3, 5, 6};
    static const int group_sizes[] = {32, 64, 128};
    static const mlxe_dtype scale_dtypes[] = {MLXE_DTYPE_BF16, MLXE_DTYPE_F16, MLXE_DTYPE_F32};
    static const int64_t counts[] = {1, 2, 4, 7, 8, 12};
    mlxe_device *split_gpu = gpu_with("MLXE_CUDA_MATVEC_SPLIT", "auto");
    for (int b = 0; b < 6; b++) {
        for (int g = 0; g < 3; g++) {
            for (int s = 0; s < 3; s++) {
                /* 8000/4000/1600 rows: 1, 2, 4 warps per output row on an H100 */
                static const int64_t large_rows[] = {8000, 4000, 1600};
                int64_t rows = b < 2 && s == 0 ? large_rows[g] : 37;
                int64_t cols = (int64_t)group_sizes[g] * (b < 2 ? (s == 0 ? 4 : 12) : 3);
                quantized_weights q;
                make_quantized(f, &rng, rows, cols, all_bits[b], group_sizes[g], scale_dtypes[s], &q);
                for (int t = 0; t < 6; t++) {
                    if (b >= 2 && t % 2) continue; /* the scalar path: fewer cases */
                    int64_t n = counts[(t + g + s) % 6];
                    char what[96];
                    snprintf(what, sizeof what, "quantized %d-bit group %d scales %s", all_bits[b], group_sizes[g],
                             cuda_dtype_name(scale_dtypes[s]));
                    /* beyond 8 tokens: weights expanded to BF16 and BF16 activations */
                    check_matmul(f, f->gpu, &rng, &q.host, &q.device, n, n <= 8 ? 2e-5 : 1.5e-2, what);
                    if (n <= 8) check_matmul(f, split_gpu, &rng, &q.host, &q.device, n, 2e-5, what);
                }
                free_quantized(f, &q);
            }
        }
    }
    mlxe_device_free(split_gpu);
}

/* ---- fused decode ops: matmul_add, argmax ---- */

/* y += x wᵀ on the GPU against y0 + the CPU's matmul: the one-token kernels
 * (several rows per warp, 4/8-bit with x pre-scaled), the batch kernels and
 * the GEMM path (product in scratch, then the add); also the version-3
 * one-token kernels (MLXE_CUDA_MATVEC=v3) the bench compares with. */
static void check_matmul_add(gpu_fixture *f, mlxe_device *gpu, cuda_rng *rng, const mlxe_matrix *w_host,
                             const mlxe_matrix *w_device, int64_t n_rows, double tolerance, const char *what) {
    size_t nx = (size_t)(n_rows * w_host->cols), ny = (size_t)(n_rows * w_host->rows);
    float *x = malloc(nx * sizeof(float)), *y0 = malloc(ny * sizeof(float)), *want = malloc(ny * sizeof(float));
    cuda_fill(rng, x, nx, -1.0f, 1.0f);
    cuda_fill(rng, y0, ny, -4.0f, 4.0f);
    f->c->matmul(f->cpu, x, n_rows, w_host, want);
    for (size_t i = 0; i < ny; i++) want[i] += y0[i];
    float *dx = cuda_to_device(gpu, x, nx * sizeof(float));
    float *dy = cuda_to_device(gpu, y0, ny * sizeof(float));
    const mlxe_ops *ops = mlxe_device_ops(gpu);
    assert_non_null(ops->matmul_add);
    ops->matmul_add(gpu, dx, n_rows, w_device, dy);
    float *got = malloc(ny * sizeof(float));
    ops->download(gpu, got, dy, ny * sizeof(float));
    cuda_expect_synchronized(gpu);
    char label[160];
    snprintf(label, sizeof label, "matmul_add %s, %lld tokens", what, (long long)n_rows);
    cuda_assert_close(got, want, ny, tolerance, label);
    ops->free(gpu, dx);
    ops->free(gpu, dy);
    free(x);
    free(y0);
    free(want);
    free(got);
}

static void test_matmul_add(void **state) {
    gpu_fixture *f = open_devices(state);
    mlxe_device *v3 = gpu_with("MLXE_CUDA_MATVEC", "v3");
    /* the one-token kernels with 1, 2 and 4 rows per warp, wherever they apply */
    mlxe_device *rpw[5] = {gpu_with("MLXE_CUDA_MATVEC_RPW", "1"), gpu_with("MLXE_CUDA_MATVEC_RPW", "2"),
                           gpu_with("MLXE_CUDA_MATVEC_RPW", "4"), gpu_with("MLXE_CUDA_MATVEC", "warp"),
                           gpu_with("MLXE_CUDA_MATVEC", "rowblock8")};
    cuda_rng rng = {11};
    static const int64_t counts[] = {1, 3, 40};
    /* float: 70 rows (not a multiple of the 16 rows of a block), 2048 columns (several column steps) */
    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};
    for (int d = 0; d < 3; d++) {
        int64_t rows = 70, cols = 2048;
        size_t element = dtypes[d] == MLXE_DTYPE_F32 ? 4 : 2;
        void *data = cuda_random_weights(&rng, dtypes[d], (size_t)(rows * cols), -1.0f, 1.0f);
        mlxe_matrix host = {.dtype = dtypes[d], .rows = rows, .cols = cols, .data = data};
        mlxe_matrix device = host;
        device.data = cuda_weights_to_device(f->gpu, data, (size_t)(rows * cols) * element);
        for (int c = 0; c < 3; c++) {
            double tolerance = counts[c] == 1 ? 1e-5 : gemm_tolerance(dtypes[d]);
            check_matmul_add(f, f->gpu, &rng, &host, &device, counts[c], tolerance, cuda_dtype_name(dtypes[d]));
            if (counts[c] == 1) check_matmul_add(f, v3, &rng, &host, &device, 1, 1e-5, "v3 kernels");
            for (int k = 0; k < 5 && counts[c] == 1; k++) {
                check_matmul_add(f, rpw[k], &rng, &host, &device, 1, 1e-5, "forced rows per warp or block");
                check_matmul(f, rpw[k], &rng, &host, &device, 1, 1e-5, "forced rows per warp or block");
            }
        }
        f->g->free_weights(f->gpu, (void *)device.data);
        free(data);
    }
    static const int bits[] = {4, 8, 4, 8};
    static const int groups[] = {64, 32, 128, 64};
    for (int b = 0; b < 4; b++) {
        quantized_weights q;
        mlxe_dtype scale_dtype = b == 3 ? MLXE_DTYPE_F16 : MLXE_DTYPE_BF16;
        make_quantized(f, &rng, 45, (int64_t)groups[b] * 6, bits[b], groups[b], scale_dtype, &q);
        for (int c = 0; c < 3; c++)
            check_matmul_add(f, f->gpu, &rng, &q.host, &q.device, counts[c], counts[c] <= 8 ? 2e-5 : 1.5e-2,
                             "quantized");
        check_matmul_add(f, v3, &rng, &q.host, &q.device, 1, 2e-5, "quantized, v3 kernels");
        for (int k = 0; k < 3; k++) {
            check_matmul_add(f, rpw[k], &rng, &q.host, &q.device, 1, 2e-5, "quantized, forced rows per warp");
            check_matmul(f, rpw[k], &rng, &q.host, &q.device, 1, 2e-5, "quantized, forced rows per warp");
        }
        free_quantized(f, &q);
    }
    mlxe_device_free(v3);
    for (int k = 0; k < 5; k++) mlxe_device_free(rpw[k]);
}

/* SwiGLU of two projections against the CPU's matmul, matmul, silu_mul:
 * one launch for a token (every rows-per-warp variant), the three ops for
 * a batch, and with the fused ops off (MLXE_CUDA_FUSED=0: the op is absent). */
/* RMSNorm gains for the folded norm: host and device copies (BF16, as models store them). */
typedef struct norm_gains {
    mlxe_vector host, device;
} norm_gains;

static void make_norm(gpu_fixture *f, cuda_rng *rng, int64_t size, norm_gains *g) {
    void *data = cuda_random_weights(rng, MLXE_DTYPE_BF16, (size_t)size, 0.5f, 1.5f);
    g->host = (mlxe_vector){.dtype = MLXE_DTYPE_BF16, .size = size, .data = data};
    g->device = g->host;
    g->device.data = cuda_weights_to_device(f->gpu, data, (size_t)size * 2);
}

static void free_norm(gpu_fixture *f, norm_gains *g) {
    f->g->free_weights(f->gpu, (void *)g->device.data);
    free((void *)g->host.data);
}

/* x, or the CPU's rms_norm of x (eps 1e-5) when norm is given: the oracle's input. */
static float *oracle_input(gpu_fixture *f, const float *x, int64_t n_rows, int64_t cols, const norm_gains *norm) {
    float *in = malloc((size_t)(n_rows * cols) * sizeof(float));
    memcpy(in, x, (size_t)(n_rows * cols) * sizeof(float));
    if (norm) f->c->rms_norm(f->cpu, x, &norm->host, n_rows, cols, 1e-5f, in);
    return in;
}

static void check_swiglu(gpu_fixture *f, mlxe_device *gpu, cuda_rng *rng, const mlxe_matrix *gate_host,
                         const mlxe_matrix *gate_device, const mlxe_matrix *up_host, const mlxe_matrix *up_device,
                         int64_t n_rows, double tolerance, const char *what, const norm_gains *norm) {
    size_t nx = (size_t)(n_rows * gate_host->cols), ny = (size_t)(n_rows * gate_host->rows);
    float *x = malloc(nx * sizeof(float)), *want = malloc(ny * sizeof(float)), *up = malloc(ny * sizeof(float));
    cuda_fill(rng, x, nx, -1.0f, 1.0f);
    float *in = oracle_input(f, x, n_rows, gate_host->cols, norm);
    f->c->matmul(f->cpu, in, n_rows, gate_host, want);
    f->c->matmul(f->cpu, in, n_rows, up_host, up);
    f->c->silu_mul(f->cpu, want, up, want, (int64_t)ny);
    free(in);
    const mlxe_ops *ops = mlxe_device_ops(gpu);
    float *dx = cuda_to_device(gpu, x, nx * sizeof(float));
    float *dout = poisoned_on(gpu, ny), *dscratch = poisoned_on(gpu, ny), *dnormed = poisoned_on(gpu, nx);
    ops->matmul_swiglu(gpu, dx, n_rows, norm ? &norm->device : NULL, 1e-5f, dnormed, gate_device, up_device, dout,
                       dscratch);
    float *got = download_from(gpu, dout, ny);
    char label[160];
    snprintf(label, sizeof label, "matmul_swiglu %s, %lld tokens%s", what, (long long)n_rows, norm ? ", normed" : "");
    cuda_assert_close(got, want, ny, tolerance, label);
    ops->free(gpu, dx);
    ops->free(gpu, dout);
    ops->free(gpu, dscratch);
    ops->free(gpu, dnormed);
    free(x);
    free(want);
    free(up);
    free(got);
}

static void test_matmul_swiglu(void **state) {
    gpu_fixture *f = open_devices(state);
    /* the last: the BF16 row-block SwiGLU kernel without its register bound */
    mlxe_device *gpus[7] = {f->gpu, gpu_with("MLXE_CUDA_MATVEC_RPW", "1"), gpu_with("MLXE_CUDA_MATVEC_RPW", "2"),
                            gpu_with("MLXE_CUDA_MATVEC", "v3"), gpu_with("MLXE_CUDA_MATVEC", "warp"),
                            gpu_with("MLXE_CUDA_MATVEC", "rowblock8"), gpu_with("MLXE_CUDA_SWIGLU_MIN_BLOCKS", "1")};
    mlxe_device *unfused = gpu_with("MLXE_CUDA_FUSED", "0");
    assert_null(mlxe_device_ops(unfused)->matmul_swiglu);
    assert_null(mlxe_device_ops(unfused)->matmul_multi);
    assert_null(mlxe_device_ops(unfused)->argmax);
    mlxe_device_free(unfused);
    cuda_rng rng = {13};
    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        int64_t rows = 37, cols = 1024;
        size_t bytes = (size_t)(rows * cols) * (dtypes[d] == MLXE_DTYPE_F32 ? 4 : 2);
        void *gate = cuda_random_weights(&rng, dtypes[d], (size_t)(rows * cols), -1.0f, 1.0f);
        void *up = cuda_random_weights(&rng, dtypes[d], (size_t)(rows * cols), -1.0f, 1.0f);
        mlxe_matrix gate_host = {.dtype = dtypes[d], .rows = rows, .cols = cols, .data = gate}, up_host = gate_host;
        up_host.data = up;
        mlxe_matrix gate_device = gate_host, up_device = up_host;
        gate_device.data = cuda_weights_to_device(f->gpu, gate, bytes);
        up_device.data = cuda_weights_to_device(f->gpu, up, bytes);
        norm_gains norm;
        make_norm(f, &rng, cols, &norm);
        for (int g = 0; g < 7; g++)
            for (int normed = 0; normed < 2; normed++)
                check_swiglu(f, gpus[g], &rng, &gate_host, &gate_device, &up_host, &up_device, 1, 2e-5,
                             cuda_dtype_name(dtypes[d]), normed ? &norm : NULL);
        check_swiglu(f, f->gpu, &rng, &gate_host, &gate_device, &up_host, &up_device, 2, 2e-2, "batch of 2", &norm);
        free_norm(f, &norm);
        f->g->free_weights(f->gpu, (void *)gate_device.data);
        f->g->free_weights(f->gpu, (void *)up_device.data);
        free(gate);
        free(up);
    }
    static const int bits[] = {4, 8, 4};
    static const int groups[] = {64, 32, 32};
    for (int b = 0; b < 3; b++) {
        quantized_weights gate, up;
        mlxe_dtype sdt = b == 2 ? MLXE_DTYPE_F16 : MLXE_DTYPE_BF16;
        make_quantized(f, &rng, 45, (int64_t)groups[b] * 8, bits[b], groups[b], sdt, &gate);
        make_quantized(f, &rng, 45, (int64_t)groups[b] * 8, bits[b], groups[b], sdt, &up);
        norm_gains norm;
        make_norm(f, &rng, gate.host.cols, &norm);
        for (int g = 0; g < 6; g++)
            for (int normed = 0; normed < 2; normed++)
                check_swiglu(f, gpus[g], &rng, &gate.host, &gate.device, &up.host, &up.device, 1, 4e-5, "quantized",
                             normed ? &norm : NULL);
        check_swiglu(f, f->gpu, &rng, &gate.host, &gate.device, &up.host, &up.device, 3, 4e-5, "quantized, 3 tokens",
                     &norm);
        free_norm(f, &norm);
        free_quantized(f, &gate);
        free_quantized(f, &up);
    }
    for (int g = 1; g < 7; g++) mlxe_device_free(gpus[g]);
}

/* matmul_multi (q, k, v of one input, with and without the folded
 * RMSNorm) against the CPU's rms_norm and matmuls: one launch for a token
 * on every rows-per-warp variant and the version-3 fallback, the separate
 * ops for a batch. */
static void check_multi(gpu_fixture *f, mlxe_device *gpu, cuda_rng *rng, int n_out, const mlxe_matrix *host,
                        const mlxe_matrix *device, int64_t n_rows, double tolerance, const char *what,
                        const norm_gains *norm) {
    const int64_t cols = host[0].cols;
    size_t nx = (size_t)(n_rows * cols);
    float *x = malloc(nx * sizeof(float));
    cuda_fill(rng, x, nx, -2.0f, 2.0f);
    float *in = oracle_input(f, x, n_rows, cols, norm);
    const mlxe_ops *ops = mlxe_device_ops(gpu);
    float *dx = cuda_to_device(gpu, x, nx * sizeof(float)), *dnormed = poisoned_on(gpu, nx);
    const mlxe_matrix *matrices[3];
    float *outputs[3];
    for (int i = 0; i < n_out; i++) {
        matrices[i] = &device[i];
        outputs[i] = poisoned_on(gpu, (size_t)(n_rows * host[i].rows));
    }
    ops->matmul_multi(gpu, dx, n_rows, norm ? &norm->device : NULL, 1e-5f, dnormed, n_out, matrices, outputs);
    for (int i = 0; i < n_out; i++) {
        size_t ny = (size_t)(n_rows * host[i].rows);
        float *want = malloc(ny * sizeof(float));
        f->c->matmul(f->cpu, in, n_rows, &host[i], want);
        float *got = download_from(gpu, outputs[i], ny);
        char label[160];
        snprintf(label, sizeof label, "matmul_multi %s, output %d, %lld tokens%s", what, i, (long long)n_rows,
                 norm ? ", normed" : "");
        cuda_assert_close(got, want, ny, tolerance, label);
        free(got);
        free(want);
        ops->free(gpu, outputs[i]);
    }
    ops->free(gpu, dx);
    ops->free(gpu, dnormed);
    free(in);
    free(x);
}

static void test_matmul_multi(void **state) {
    gpu_fixture *f = open_devices(state);
    mlxe_device *gpus[6] = {f->gpu, gpu_with("MLXE_CUDA_MATVEC_RPW", "1"), gpu_with("MLXE_CUDA_MATVEC_RPW", "4"),
                            gpu_with("MLXE_CUDA_MATVEC", "v3"), gpu_with("MLXE_CUDA_MATVEC", "warp"),
                            gpu_with("MLXE_CUDA_MATVEC", "rowblock8")};
    cuda_rng rng = {15};
    static const int64_t rows[3] = {96, 21, 21}; /* q, k, v of unequal size; 21: a partial block */
    const int64_t cols = 512;
    norm_gains norm;
    make_norm(f, &rng, cols, &norm);
    /* BF16 */
    mlxe_matrix host[3], device[3];
    for (int i = 0; i < 3; i++) {
        void *data = cuda_random_weights(&rng, MLXE_DTYPE_BF16, (size_t)(rows[i] * cols), -1.0f, 1.0f);
        host[i] = (mlxe_matrix){.dtype = MLXE_DTYPE_BF16, .rows = rows[i], .cols = cols, .data = data};
        device[i] = host[i];
        device[i].data = cuda_weights_to_device(f->gpu, data, (size_t)(rows[i] * cols) * 2);
    }
    for (int g = 0; g < 6; g++)
        for (int normed = 0; normed < 2; normed++) {
            check_multi(f, gpus[g], &rng, 3, host, device, 1, 2e-5, "BF16", normed ? &norm : NULL);
            check_multi(f, gpus[g], &rng, 2, host, device, 1, 2e-5, "BF16, two", normed ? &norm : NULL);
        }
    check_multi(f, f->gpu, &rng, 3, host, device, 5, 2e-2, "BF16 batch", &norm);
    for (int i = 0; i < 3; i++) {
        f->g->free_weights(f->gpu, (void *)device[i].data);
        free((void *)host[i].data);
    }
    /* quantized: 4-bit group 64, 8-bit group 32 */
    static const int bits[] = {4, 8};
    static const int groups[] = {64, 32};
    for (int b = 0; b < 2; b++) {
        quantized_weights q[3];
        for (int i = 0; i < 3; i++) {
            make_quantized(f, &rng, rows[i], cols, bits[b], groups[b], MLXE_DTYPE_BF16, &q[i]);
            host[i] = q[i].host;
            device[i] = q[i].device;
        }
        for (int g = 0; g < 6; g++)
            for (int normed = 0; normed < 2; normed++)
                check_multi(f, gpus[g], &rng, 3, host, device, 1, 4e-5, "quantized", normed ? &norm : NULL);
        check_multi(f, f->gpu, &rng, 3, host, device, 3, 4e-5, "quantized batch", &norm);
        for (int i = 0; i < 3; i++) free_quantized(f, &q[i]);
    }
    free_norm(f, &norm);
    for (int g = 1; g < 6; g++) mlxe_device_free(gpus[g]);
}

/* rope_kv_store against the CPU's rope, rope, kv_store: q rotated in
 * place, the cache rows of rotated k and of v; k left as it was. */
static void test_rope_kv_store(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {14};
    const int64_t n_rows = 3, n_heads = 8, n_kv_heads = 2, head_dim = 64, half = 32, capacity = 40, n_slots = 2;
    int32_t positions[3] = {7, 39, 0}, slots[3] = {1, 0, 0};
    float inv_freq[32];
    for (int64_t j = 0; j < half; j++) inv_freq[j] = powf(10000.0f, -2.0f * (float)j / (float)head_dim);
    size_t nq = (size_t)(n_rows * n_heads * head_dim), nk = (size_t)(n_rows * n_kv_heads * head_dim);
    size_t cache_n = (size_t)(n_slots * n_kv_heads * capacity * head_dim);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4);
    float *want_q = malloc(nq * 4), *want_k = malloc(nk * 4);
    float *k_cache = calloc(cache_n, 4), *v_cache = calloc(cache_n, 4);
    cuda_fill(&rng, q, nq, -2.0f, 2.0f);
    cuda_fill(&rng, k, nk, -2.0f, 2.0f);
    cuda_fill(&rng, v, nk, -2.0f, 2.0f);
    memcpy(want_q, q, nq * 4);
    memcpy(want_k, k, nk * 4);
    f->c->rope(f->cpu, want_q, n_rows, n_heads, head_dim, positions, inv_freq, 0.9f);
    f->c->rope(f->cpu, want_k, n_rows, n_kv_heads, head_dim, positions, inv_freq, 0.9f);
    f->c->kv_store(f->cpu, want_k, v, n_rows, n_kv_heads, head_dim, k_cache, v_cache, capacity, slots, positions);
    float *dq = cuda_to_device(f->gpu, q, nq * 4), *dk = cuda_to_device(f->gpu, k, nk * 4);
    float *dv = cuda_to_device(f->gpu, v, nk * 4);
    float *dk_cache = cuda_to_device(f->gpu, k_cache, cache_n * 4);
    float *dv_cache = cuda_to_device(f->gpu, v_cache, cache_n * 4);
    /* the cache starts as the CPU's before the write: zero */
    float *zeros = calloc(cache_n, 4);
    f->g->upload(f->gpu, dk_cache, zeros, cache_n * 4);
    f->g->upload(f->gpu, dv_cache, zeros, cache_n * 4);
    int32_t *dpositions = cuda_to_device(f->gpu, positions, sizeof positions);
    int32_t *dslots = cuda_to_device(f->gpu, slots, sizeof slots);
    float *dinv = cuda_to_device(f->gpu, inv_freq, sizeof inv_freq);
    f->g->rope_kv_store(f->gpu, dq, dk, dv, n_rows, n_heads, n_kv_heads, head_dim, dpositions, dinv, 0.9f, dk_cache,
                        dv_cache, capacity, dslots);
    float *got = download(f, dq, nq);
    cuda_assert_close(got, want_q, nq, 1e-6, "rope_kv_store q");
    free(got);
    got = download(f, dk_cache, cache_n);
    cuda_assert_close(got, k_cache, cache_n, 1e-6, "rope_kv_store key cache");
    free(got);
    got = download(f, dv_cache, cache_n);
    cuda_assert_close(got, v_cache, cache_n, 0.0, "rope_kv_store value cache");
    free(got);
    got = download(f, dk, nk);
    cuda_assert_close(got, k, nk, 0.0, "rope_kv_store leaves k");
    free(got);
    void *device[] = {dq, dk, dv, dk_cache, dv_cache, dpositions, dslots, dinv};
    for (size_t i = 0; i < sizeof device / sizeof device[0]; i++) f->g->free(f->gpu, device[i]);
    free(zeros);
    free(q);
    free(k);
    free(v);
    free(want_q);
    free(want_k);
    free(k_cache);
    free(v_cache);
}

/* rope_attention (RoPE, the cache write and attention of one token in one
 * pass) against the CPU's rope, kv_store and attention: the output and both
 * caches. Head dims 64/128/256 take the fused kernel, 80 and groups of 16
 * its fallback (the two ops); short and deep contexts, a window. */
static void check_rope_attention(gpu_fixture *f, cuda_rng *rng, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                 int32_t position, int64_t window, bool hint) {
    const int64_t capacity = 800, n_slots = 2, half = head_dim / 2;
    int32_t positions[1] = {position}, slots[1] = {1};
    float *inv_freq = malloc((size_t)half * 4);
    for (int64_t j = 0; j < half; j++) inv_freq[j] = powf(10000.0f, -2.0f * (float)j / (float)head_dim);
    const size_t nq = (size_t)(n_heads * head_dim), nk = (size_t)(n_kv_heads * head_dim);
    const size_t cache_n = (size_t)(n_slots * n_kv_heads * capacity * head_dim);
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *rotated_q = malloc(nq * 4);
    float *rotated_k = malloc(nk * 4), *k_cache = malloc(cache_n * 4), *v_cache = malloc(cache_n * 4);
    cuda_fill(rng, q, nq, -1.5f, 1.5f);
    cuda_fill(rng, k, nk, -1.0f, 1.0f);
    cuda_fill(rng, v, nk, -1.0f, 1.0f);
    cuda_fill(rng, k_cache, cache_n, -1.0f, 1.0f);
    cuda_fill(rng, v_cache, cache_n, -1.0f, 1.0f);
    float *dk_cache = cuda_to_device(f->gpu, k_cache, cache_n * 4), *dv_cache = cuda_to_device(f->gpu, v_cache, cache_n * 4);
    float *dq = cuda_to_device(f->gpu, q, nq * 4), *dk = cuda_to_device(f->gpu, k, nk * 4);
    float *dv = cuda_to_device(f->gpu, v, nk * 4), *dinv = cuda_to_device(f->gpu, inv_freq, (size_t)half * 4);
    int32_t *dpositions = cuda_to_device(f->gpu, positions, 4), *dslots = cuda_to_device(f->gpu, slots, 4);

    memcpy(rotated_q, q, nq * 4);
    memcpy(rotated_k, k, nk * 4);
    f->c->rope(f->cpu, rotated_q, 1, n_heads, head_dim, positions, inv_freq, 0.8f);
    f->c->rope(f->cpu, rotated_k, 1, n_kv_heads, head_dim, positions, inv_freq, 0.8f);
    f->c->kv_store(f->cpu, rotated_k, v, 1, n_kv_heads, head_dim, k_cache, v_cache, capacity, slots, positions);
    float *want = malloc(nq * 4);
    mlxe_attention_args args = {.n_rows = 1, .n_heads = n_heads, .n_kv_heads = n_kv_heads, .head_dim = head_dim,
                                .q = rotated_q, .k_cache = k_cache, .v_cache = v_cache, .capacity = capacity,
                                .slots = slots, .positions = positions, .window = window,
                                .scale = 1.0f / sqrtf((float)head_dim), .out = want};
    f->c->attention(f->cpu, &args);

    float *dout = poisoned_on(f->gpu, nq);
    args.q = dq;
    args.k_cache = dk_cache;
    args.v_cache = dv_cache;
    args.slots = dslots;
    args.positions = dpositions;
    args.out = dout;
    args.kv_length = hint ? position + 1 : 0;
    f->g->rope_attention(f->gpu, &args, dk, dv, dinv, 0.8f);
    char what[128];
    snprintf(what, sizeof what, "rope_attention %lld/%lld heads x %lld, position %d, window %lld", (long long)n_heads,
             (long long)n_kv_heads, (long long)head_dim, (int)position, (long long)window);
    float *got = download(f, dout, nq);
    cuda_assert_close(got, want, nq, 1e-5, what);
    free(got);
    got = download(f, dk_cache, cache_n);
    cuda_assert_close(got, k_cache, cache_n, 1e-6, what);
    free(got);
    got = download(f, dv_cache, cache_n);
    cuda_assert_close(got, v_cache, cache_n, 0.0, what);
    free(got);
    void *device[] = {dq, dk, dv, dk_cache, dv_cache, dpositions, dslots, dinv, dout};
    for (size_t i = 0; i < sizeof device / sizeof device[0]; i++) f->g->free(f->gpu, device[i]);
    void *host[] = {inv_freq, q, k, v, rotated_q, rotated_k, k_cache, v_cache, want};
    for (size_t i = 0; i < sizeof host / sizeof host[0]; i++) free(host[i]);
}

static void test_rope_attention(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {15};
    static const int64_t head_dims[] = {64, 128, 256, 80};
    static const int64_t groups[][2] = {{32, 8}, {14, 2}, {32, 2}};
    static const int32_t positions[] = {0, 5, 700};
    /* the default (the first step's cached rows read before the kernel's
     * wait, lane groups for head_dim 64 and 128), the rows read after it,
     * the global merge, a whole warp per position, and 8 lanes a position for
     * head_dim 128 (MLXE_CUDA_ATTENTION_LANES=8) */
    mlxe_device *const default_gpu = f->gpu;
    mlxe_device *variants[5] = {default_gpu, gpu_with("MLXE_CUDA_ATTENTION_EARLY", "0"),
                                gpu_with("MLXE_CUDA_ATTENTION_CLUSTER", "0"), gpu_with("MLXE_CUDA_ATTENTION_LANES", "0"),
                                gpu_with("MLXE_CUDA_ATTENTION_LANES", "8")};
    for (int v = 0; v < 5; v++) {
        f->gpu = variants[v]; /* f->g has the same functions: only the device's settings differ */
        for (int hi = 0; hi < 4; hi++)
            for (int gi = 0; gi < 3; gi++)
                for (int pi = 0; pi < 3; pi++) {
                    check_rope_attention(f, &rng, groups[gi][0], groups[gi][1], head_dims[hi], positions[pi], 0,
                                         pi != 1);
                    check_rope_attention(f, &rng, groups[gi][0], groups[gi][1], head_dims[hi], positions[pi], 50,
                                         pi == 1);
                }
    }
    f->gpu = default_gpu;
    for (int v = 1; v < 5; v++) mlxe_device_free(variants[v]);
}

/* argmax against the CPU sampler's greedy choice (the oracle: the same
 * rule must give the same token), on rows with ties, NaN, infinities, and
 * one of only NaN; a vocabulary-sized row takes the multi-block path. */
static void test_argmax(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {12};
    static const int64_t lengths[] = {1, 5, 300, 4097, 128256};
    for (int l = 0; l < 5; l++) {
        const int64_t n = lengths[l];
        mlxe_sampler_options options;
        mlxe_sampler_options_init(&options);
        options.temperature = 0.0f;
        mlxe_sampler *sampler = NULL;
        mlxe_error err;
        assert_int_equal(mlxe_sampler_create(&options, n, &sampler, &err), MLXE_OK);
        const int n_rows = 6;
        float *x = malloc((size_t)(n_rows * n) * sizeof(float));
        for (int r = 0; r < n_rows; r++) {
            float *row = x + r * n;
            /* few distinct values: many ties */
            for (int64_t i = 0; i < n; i++) row[i] = (float)(cuda_rng_next(&rng) % 7) - 3.0f;
            if (r == 1)
                for (int64_t i = 0; i < n; i += 3) row[i] = NAN;
            if (r == 2) {
                row[n - 1] = INFINITY;
                if (n > 2) row[n / 2] = INFINITY;
            }
            if (r == 3)
                for (int64_t i = 0; i < n; i++) row[i] = NAN;
            if (r == 4) {
                for (int64_t i = 0; i < n; i++) row[i] = -INFINITY;
                row[0] = NAN;
            }
            if (r == 5) cuda_fill(&rng, row, (size_t)n, -10.0f, 10.0f);
        }
        float *dx = cuda_to_device(f->gpu, x, (size_t)(n_rows * n) * sizeof(float));
        int32_t *dout = cuda_to_device(f->gpu, x, (size_t)n_rows * sizeof(int32_t));
        for (int pass = 0; pass < 2; pass++) { /* twice: the counters reset for the next launch */
            f->g->argmax(f->gpu, dx, n_rows, n, dout);
            int32_t got[6];
            f->g->download(f->gpu, got, dout, sizeof got);
            cuda_expect_synchronized(f->gpu);
            for (int r = 0; r < n_rows; r++) {
                int32_t want = mlxe_sampler_sample(sampler, x + r * n);
                if (got[r] != want)
                    fail_msg("argmax of a row of %lld (case %d): GPU %d, CPU sampler %d", (long long)n, r, got[r], want);
            }
        }
        f->g->argmax(f->gpu, dx + n, 1, n, dout); /* one row */
        int32_t one = -1;
        f->g->download(f->gpu, &one, dout, sizeof one);
        assert_int_equal(one, mlxe_sampler_sample(sampler, x + n));
        f->g->free(f->gpu, dx);
        f->g->free(f->gpu, dout);
        free(x);
        mlxe_sampler_free(sampler);
    }
}

/* ---- embedding ---- */

static void test_embedding(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {5};
    int64_t vocab = 50, cols = 256, n = 7;
    int32_t ids[7] = {0, 49, 3, 3, 17, 25, 8};
    int32_t *device_ids = cuda_to_device(f->gpu, ids, sizeof ids);
    for (int kind = 0; kind < 5; kind++) {
        mlxe_matrix host, device;
        quantized_weights q;
        void *data = NULL;
        if (kind < 3) {
            mlxe_dtype dtype = kind == 0 ? MLXE_DTYPE_F32 : kind == 1 ? MLXE_DTYPE_F16 : MLXE_DTYPE_BF16;
            data = cuda_random_weights(&rng, dtype, (size_t)(vocab * cols), -1.0f, 1.0f);
            host = (mlxe_matrix){.dtype = dtype, .rows = vocab, .cols = cols, .data = data};
            device = host;
            device.data = cuda_weights_to_device(f->gpu, data, (size_t)(vocab * cols) * (kind == 0 ? 4 : 2));
        } else {
            make_quantized(f, &rng, vocab, cols, kind == 3 ? 4 : 3, 64, MLXE_DTYPE_BF16, &q);
            host = q.host;
            device = q.device;
        }
        float *want = malloc((size_t)(n * cols) * sizeof(float));
        f->c->embedding(f->cpu, &host, ids, n, want);
        float *out = poisoned(f, (size_t)(n * cols));
        /* ids from device memory, and from host memory (copied up by the op) */
        for (int from_host = 0; from_host < 2; from_host++) {
            f->g->embedding(f->gpu, &device, from_host ? ids : device_ids, n, out);
            float *got = download(f, out, (size_t)(n * cols));
            /* 1e-6: the GPU fuses scale * q + bias into one rounding */
            cuda_assert_close(got, want, (size_t)(n * cols), 1e-6, "embedding");
            free(got);
        }
        f->g->free(f->gpu, out);
        free(want);
        if (kind < 3) {
            f->g->free_weights(f->gpu, (void *)device.data);
            free(data);
        } else {
            free_quantized(f, &q);
        }
    }
    f->g->free(f->gpu, device_ids);
}

/* ---- element-wise and row-wise ops ---- */

static void test_rms_norm(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {6};
    static const int64_t dims[] = {64, 128, 1000, 4096};
    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};
    for (int i = 0; i < 4; i++) {
        for (int d = 0; d < 3; d++) {
            int64_t dim = dims[i], rows = i < 2 ? 300 : 5;
            size_t n = (size_t)(rows * dim);
            void *weight = cuda_random_weights(&rng, dtypes[d], (size_t)dim, 0.5f, 1.5f);
            mlxe_vector host = {.dtype = dtypes[d], .size = dim, .data = weight};
            mlxe_vector device = host;
            device.data = cuda_weights_to_device(f->gpu, weight, (size_t)dim * (d == 0 ? 4 : 2));
            float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
            cuda_fill(&rng, x, n, -3.0f, 3.0f);
            f->c->rms_norm(f->cpu, x, &host, rows, dim, 1e-6f, want);
            float *dx = cuda_to_device(f->gpu, x, n * sizeof(float));
            float *dy = poisoned(f, n);
            f->g->rms_norm(f->gpu, dx, &device, rows, dim, 1e-6f, dy);
            float *got = download(f, dy, n);
            cuda_assert_close(got, want, n, 1e-6, "rms_norm");
            free(got);
            /* in place (y == x), as qwen3's per-head norms */
            f->g->rms_norm(f->gpu, dx, &device, rows, dim, 1e-6f, dx);
            got = download(f, dx, n);
            cuda_assert_close(got, want, n, 1e-6, "rms_norm in place");
            free(got);
            f->g->free(f->gpu, dx);
            f->g->free(f->gpu, dy);
            f->g->free_weights(f->gpu, (void *)device.data);
            free(weight);
            free(x);
            free(want);
        }
    }
}

static void test_rope(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {7};
    static const int64_t head_dims[] = {64, 128};
    for (int i = 0; i < 2; i++) {
        int64_t n_rows = 9, n_heads = 6, head_dim = head_dims[i], half = head_dim / 2;
        size_t n = (size_t)(n_rows * n_heads * head_dim);
        int32_t positions[9] = {0, 1, 2, 100, 101, 4095, 8000, 32767, 5};
        float inv_freq[64];
        for (int64_t j = 0; j < half; j++) inv_freq[j] = powf(500000.0f, -2.0f * (float)j / (float)head_dim);
        float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        cuda_fill(&rng, x, n, -2.0f, 2.0f);
        memcpy(want, x, n * sizeof(float));
        f->c->rope(f->cpu, want, n_rows, n_heads, head_dim, positions, inv_freq, 1.1f);
        int32_t *device_positions = cuda_to_device(f->gpu, positions, sizeof positions);
        float *device_inv_freq = cuda_to_device(f->gpu, inv_freq, (size_t)half * sizeof(float));
        for (int from_host = 0; from_host < 2; from_host++) {
            float *dx = cuda_to_device(f->gpu, x, n * sizeof(float));
            f->g->rope(f->gpu, dx, n_rows, n_heads, head_dim, from_host ? positions : device_positions,
                       from_host ? inv_freq : device_inv_freq, 1.1f);
            float *got = download(f, dx, n);
            cuda_assert_close(got, want, n, 1e-6, "rope");
            free(got);
            f->g->free(f->gpu, dx);
        }
        f->g->free(f->gpu, device_positions);
        f->g->free(f->gpu, device_inv_freq);
        free(x);
        free(want);
    }
}

static void test_pointwise(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {8};
    size_t n = 100003;
    float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    cuda_fill(&rng, a, n, -8.0f, 8.0f);
    cuda_fill(&rng, b, n, -2.0f, 2.0f);
    float *da = cuda_to_device(f->gpu, a, n * sizeof(float)), *db = cuda_to_device(f->gpu, b, n * sizeof(float));
    float *dout = poisoned(f, n);

    f->c->silu_mul(f->cpu, a, b, want, (int64_t)n);
    f->g->silu_mul(f->gpu, da, db, dout, (int64_t)n);
    float *got = download(f, dout, n);
    cuda_assert_close(got, want, n, 1e-6, "silu_mul");
    free(got);

    memcpy(want, a, n * sizeof(float));
    f->c->add(f->cpu, want, b, (int64_t)n);
    f->g->add(f->gpu, da, db, (int64_t)n);
    got = download(f, da, n);
    cuda_assert_close(got, want, n, 0.0, "add");
    free(got);

    static const mlxe_dtype dtypes[] = {MLXE_DTYPE_F32, MLXE_DTYPE_F16, MLXE_DTYPE_BF16};
    for (int d = 0; d < 3; d++) {
        int64_t size = 1000, rows = 7;
        void *bias = cuda_random_weights(&rng, dtypes[d], (size_t)size, -1.0f, 1.0f);
        mlxe_vector host = {.dtype = dtypes[d], .size = size, .data = bias}, device = host;
        device.data = cuda_weights_to_device(f->gpu, bias, (size_t)size * (d == 0 ? 4 : 2));
        memcpy(want, a, (size_t)(size * rows) * sizeof(float));
        f->c->add_bias(f->cpu, want, rows, &host);
        float *dy = cuda_to_device(f->gpu, a, (size_t)(size * rows) * sizeof(float));
        f->g->add_bias(f->gpu, dy, rows, &device);
        got = download(f, dy, (size_t)(size * rows));
        cuda_assert_close(got, want, (size_t)(size * rows), 0.0, "add_bias");
        free(got);
        f->g->free(f->gpu, dy);
        f->g->free_weights(f->gpu, (void *)device.data);
        free(bias);
    }
    f->g->free(f->gpu, da);
    f->g->free(f->gpu, db);
    f->g->free(f->gpu, dout);
    free(a);
    free(b);
    free(want);
}

/* ---- KV cache and attention ---- */

typedef struct attention_case {
    int64_t n_heads, n_kv_heads, head_dim, window;
    int64_t n_rows;
    int32_t slots[48], positions[48];
    bool hint;
    const char *what;
} attention_case;

static void check_attention(gpu_fixture *f, mlxe_device *gpu, cuda_rng *rng, const attention_case *c) {
    const mlxe_ops *g = mlxe_device_ops(gpu);
    const int64_t n_slots = 2, capacity = 1100;
    const int64_t cache_n = n_slots * c->n_kv_heads * capacity * c->head_dim;
    /* the cache filled with random history, then the batch's own k/v stored */
    float *k_cache = malloc((size_t)cache_n * sizeof(float)), *v_cache = malloc((size_t)cache_n * sizeof(float));
    cuda_fill(rng, k_cache, (size_t)cache_n, -1.0f, 1.0f);
    cuda_fill(rng, v_cache, (size_t)cache_n, -1.0f, 1.0f);
    size_t kv_n = (size_t)(c->n_rows * c->n_kv_heads * c->head_dim), q_n = (size_t)(c->n_rows * c->n_heads * c->head_dim);
    float *k = malloc(kv_n * sizeof(float)), *v = malloc(kv_n * sizeof(float)), *q = malloc(q_n * sizeof(float));
    cuda_fill(rng, k, kv_n, -1.0f, 1.0f);
    cuda_fill(rng, v, kv_n, -1.0f, 1.0f);
    cuda_fill(rng, q, q_n, -1.5f, 1.5f);
    float *dk_cache = cuda_to_device(gpu, k_cache, (size_t)cache_n * sizeof(float));
    float *dv_cache = cuda_to_device(gpu, v_cache, (size_t)cache_n * sizeof(float));
    float *dk = cuda_to_device(gpu, k, kv_n * sizeof(float)), *dv = cuda_to_device(gpu, v, kv_n * sizeof(float));
    float *dq = cuda_to_device(gpu, q, q_n * sizeof(float));
    int32_t *dslots = cuda_to_device(gpu, c->slots, (size_t)c->n_rows * 4);
    int32_t *dpositions = cuda_to_device(gpu, c->positions, (size_t)c->n_rows * 4);

    f->c->kv_store(f->cpu, k, v, c->n_rows, c->n_kv_heads, c->head_dim, k_cache, v_cache, capacity, c->slots,
                   c->positions);
    g->kv_store(gpu, dk, dv, c->n_rows, c->n_kv_heads, c->head_dim, dk_cache, dv_cache, capacity, dslots,
                   dpositions);
    float *got_cache = download_from(gpu, dk_cache, (size_t)cache_n);
    cuda_assert_close(got_cache, k_cache, (size_t)cache_n, 0.0, "kv_store keys");
    free(got_cache);
    got_cache = download_from(gpu, dv_cache, (size_t)cache_n);
    cuda_assert_close(got_cache, v_cache, (size_t)cache_n, 0.0, "kv_store values");
    free(got_cache);

    int32_t max_position = 0;
    for (int64_t r = 0; r < c->n_rows; r++)
        if (c->positions[r] > max_position) max_position = c->positions[r];
    mlxe_attention_args args = {.n_rows = c->n_rows, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                                .head_dim = c->head_dim, .q = q, .k_cache = k_cache, .v_cache = v_cache,
                                .capacity = capacity, .slots = c->slots, .positions = c->positions,
                                .window = c->window, .scale = 1.0f / sqrtf((float)c->head_dim)};
    float *want = malloc(q_n * sizeof(float));
    args.out = want;
    f->c->attention(f->cpu, &args);
    float *dout = poisoned_on(gpu, q_n);
    args.q = dq;
    args.k_cache = dk_cache;
    args.v_cache = dv_cache;
    args.slots = dslots;
    args.positions = dpositions;
    args.out = dout;
    args.kv_length = c->hint ? max_position + 1 : 0;
    g->attention(gpu, &args);
    float *got = download_from(gpu, dout, q_n);
    cuda_assert_close(got, want, q_n, 1e-5, c->what);
    free(got);
    /* slots and positions from host memory */
    args.slots = c->slots;
    args.positions = c->positions;
    g->attention(gpu, &args);
    got = download_from(gpu, dout, q_n);
    cuda_assert_close(got, want, q_n, 1e-5, c->what);
    free(got);

    void *device_buffers[] = {dk_cache, dv_cache, dk, dv, dq, dslots, dpositions, dout};
    for (size_t i = 0; i < sizeof device_buffers / sizeof device_buffers[0]; i++) g->free(gpu, device_buffers[i]);
    free(k_cache);
    free(v_cache);
    free(k);
    free(v);
    free(q);
    free(want);
}

static void test_attention(void **state) {
    gpu_fixture *f = open_devices(state);
    cuda_rng rng = {9};
    /* every case on each kernel: as chosen by the batch, split, warp per pair */
    mlxe_device *gpus[3] = {f->gpu, gpu_with("MLXE_CUDA_ATTENTION", "split"), gpu_with("MLXE_CUDA_ATTENTION", "warp")};
    /* the grouped kernel's merges on sm_90: in a cluster (the default) and
     * through global memory; with the next kernel scheduled only at the
     * end; a whole warp per position instead of lane groups; and 8 lanes
     * a position for head_dim 128 (test_rope_attention covers
     * MLXE_CUDA_ATTENTION_EARLY) */
    mlxe_device *merges[5] = {f->gpu, gpu_with("MLXE_CUDA_ATTENTION_CLUSTER", "0"),
                              gpu_with("MLXE_CUDA_ATTENTION_TRIGGER", "late"), gpu_with("MLXE_CUDA_ATTENTION_LANES", "0"),
                              gpu_with("MLXE_CUDA_ATTENTION_LANES", "8")};
    static const int64_t head_dims[] = {64, 80, 128, 256};
    for (int i = 0; i < 4; i++) {
        int64_t hd = head_dims[i];
        /* decode: one token deep in the context (split over the sequence) */
        attention_case decode = {.n_heads = 8, .n_kv_heads = 2, .head_dim = hd, .n_rows = 1, .hint = i % 2 == 0,
                                 .what = "attention decode"};
        decode.slots[0] = 1;
        decode.positions[0] = 1037;
        for (int k = 0; k < 3; k++) check_attention(f, gpus[k], &rng, &decode);
        /* batched decode: four sequences at different depths */
        attention_case batched = {.n_heads = 4, .n_kv_heads = 4, .head_dim = hd, .n_rows = 4, .hint = true,
                                  .what = "attention batched decode"};
        int32_t depths[4] = {0, 5, 700, 1099};
        for (int r = 0; r < 4; r++) {
            batched.slots[r] = r % 2;
            batched.positions[r] = depths[r];
        }
        for (int k = 0; k < 3; k++) check_attention(f, gpus[k], &rng, &batched);
        /* prefill: 48 tokens of slot 0 from position 30, and with a sliding window */
        attention_case prefill = {.n_heads = 8, .n_kv_heads = i % 2 ? 2 : 1, .head_dim = hd, .n_rows = 48, .hint = i % 2 == 1,
                                  .what = "attention prefill"};
        for (int r = 0; r < 48; r++) {
            prefill.slots[r] = 0;
            prefill.positions[r] = 30 + r;
        }
        for (int k = 0; k < 3; k++) check_attention(f, gpus[k], &rng, &prefill);
        prefill.window = 16;
        prefill.what = "attention prefill, window 16";
        for (int k = 0; k < 3; k++) check_attention(f, gpus[k], &rng, &prefill);
        decode.window = 100;
        decode.what = "attention decode, window 100";
        for (int k = 0; k < 3; k++) check_attention(f, gpus[k], &rng, &decode);
        /* the grouped decode kernel (the default for one token): groups of
         * 4 (Llama), 7 (Qwen2.5-0.5B, not a power of two), 8, and 16 (too
         * large: the per-pair kernel); a short context (more splits than
         * positions), 2-8 splits and 9-32 (a cluster of 8), and a deep
         * one; each case runs twice (check_attention), so the split
         * counters must have been left at zero; every merge */
        static const int64_t groups[][2] = {{32, 8}, {14, 2}, {16, 2}, {32, 2}};
        static const int32_t depths_grouped[] = {3, 600, 1099, 300};
        for (int gi = 0; gi < 4; gi++)
            for (int di = 0; di < 4; di++)
                for (int m = 0; m < 5; m++) {
                    attention_case grouped = {.n_heads = groups[gi][0], .n_kv_heads = groups[gi][1],
                                              .head_dim = hd, .n_rows = 1, .hint = di != 1,
                                              .what = "attention decode, grouped"};
                    grouped.slots[0] = di % 2;
                    grouped.positions[0] = depths_grouped[di];
                    check_attention(f, merges[m], &rng, &grouped);
                    grouped.window = 33;
                    grouped.what = "attention decode, grouped, window 33";
                    check_attention(f, merges[m], &rng, &grouped);
                }
    }
    mlxe_device_free(gpus[1]);
    mlxe_device_free(gpus[2]);
    mlxe_device_free(merges[1]);
    mlxe_device_free(merges[2]);
    mlxe_device_free(merges[3]);
    mlxe_device_free(merges[4]);
}

int main(void) {
    /* The CPU is the reference here: its float-activation kernels (the default
     * ones multiply int8/bf16 activations on AVX-512 VNNI processors,
     * runtime/cpu/cpu_kernels.h). */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    /* ... and the GPU's float32-activation one-token kernels, exact at the
     * tolerances below: the int8-activation path (the default for 4/8-bit
     * weights) has its own bound, test_runtime_cuda_matvec_int8.c. */
    setenv("MLXE_CUDA_MATVEC", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_matmul_float, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_unaligned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_f32_gemm_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_quantized, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_add, setup, teardown),
        cmocka_unit_test_setup_teardown(test_argmax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_swiglu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_matmul_multi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rope_kv_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rope_attention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedding, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rms_norm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pointwise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attention, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
