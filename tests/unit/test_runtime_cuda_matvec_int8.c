/* Tests of the int8-activation one-token products with MLX affine 4/8-bit
 * weights (runtime/cuda/cuda_matvec_int8.cu) against the CPU's float32
 * product (MLXE_CPU_KERNELS=float) on random inputs.
 *
 * The GPU rounds x to int8 per block of 32 values, d = max|x| / 127, so
 * |x − d·xq| ≤ d/2 per value, and with w = s·q + b (q unsigned) and the
 * block's exact Σx for the bias term, each output may differ from the exact
 * product by at most
 *   bound = Σ_blocks |s| · d/2 · Σ_i q_i   (+ slack 1e-5 · Σ|w_i·x_i| for
 *           float rounding on both sides, far above its typical size)
 * computed here from the same weights and x (the CPU's rms_norm of x for
 * the ops that fold a norm). SwiGLU propagates the bounds of gate (Eg) and
 * up (Eu): |Δ silu(g)·u| ≤ 1.1·Eg·(|u| + Eu) + |silu(g)|·Eu (|silu'| < 1.1).
 * Every output must stay within its bound; and so that the bound proves
 * something, the test also requires it to stay below 2% of Σ|w·x| (an error
 * of layout or scaling would be of the order of the output), and requires
 * some output to differ from the float32 product by more than float rounding
 * (1e-5 of Σ|w·x|: the int8 path did run).
 *
 * Covers bits 4 and 8, groups 32/64/128, BF16/F16/F32 scales, odd row and
 * column counts (a partial last step), every forced shape of the kernel
 * (rows per warp 1/2/4/8 × warps per row 1/2/4, with and without the
 * product's start overlapped) and the automatic choice, and
 * each op: matmul, matmul_add, matmul_multi (q, k, v; with and without the
 * RMSNorm folded in) and matmul_swiglu (with and without). Also: the float
 * path (MLXE_CUDA_MATVEC=float) on the same cases within 2e-5 (exact), and
 * formats the path does not take (3 bits) falling back to it, and two
 * layers' products replayed from a recorded graph giving the direct
 * launches' bits. And the decode attention writing its output's int8 form
 * for o_proj: the same bits as the quantization kernel, and the form taken.
 * Skips without a GPU. */
#include "runtime_cuda_test.h"

#include "base/build_config.h"

typedef struct fixture {
    mlxe_device *gpu, *exact_gpu, *cpu;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    mlxe_device_free(f->gpu);
    mlxe_device_free(f->exact_gpu);
    mlxe_device_free(f->cpu);
    free(f);
    return 0;
}

#if MLXE_BUILD_CUDA
#include "runtime/cuda/cuda_matvec_int8.h"

static float host_float(mlxe_dtype dtype, const void *data, size_t i) {
    if (dtype == MLXE_DTYPE_F32) return ((const float *)data)[i];
    uint16_t bits = ((const uint16_t *)data)[i];
    if (dtype == MLXE_DTYPE_F16) {
        _Float16 h;
        memcpy(&h, &bits, 2);
        return (float)h;
    }
    uint32_t word = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &word, 4);
    return f;
}

typedef struct qmatrix {
    mlxe_matrix host, device;
} qmatrix;

/* Random packed words are valid values of any width. */
static void make_qmatrix(mlxe_device *gpu, cuda_rng *rng, int64_t rows, int64_t cols, int bits, int group,
                         mlxe_dtype scale_dtype, qmatrix *m) {
    size_t words = (size_t)(rows * cols * bits / 32), groups = (size_t)(rows * cols / group);
    uint32_t *packed = malloc(words * 4);
    assert_non_null(packed);
    for (size_t i = 0; i < words; i++) packed[i] = (uint32_t)cuda_rng_next(rng);
    size_t scale_bytes = groups * (scale_dtype == MLXE_DTYPE_F32 ? 4 : 2);
    void *scales = cuda_random_weights(rng, scale_dtype, groups, 0.01f, 0.1f);
    void *biases = cuda_random_weights(rng, scale_dtype, groups, -0.5f, 0.5f);
    m->host = (mlxe_matrix){.dtype = MLXE_DTYPE_U32, .rows = rows, .cols = cols, .data = packed, .bits = bits,
                            .group_size = group, .scale_dtype = scale_dtype, .scales = scales, .biases = biases};
    m->device = m->host;
    m->device.data = cuda_weights_to_device(gpu, packed, words * 4);
    m->device.scales = cuda_weights_to_device(gpu, scales, scale_bytes);
    m->device.biases = cuda_weights_to_device(gpu, biases, scale_bytes);
}

static void free_qmatrix(mlxe_device *gpu, qmatrix *m) {
    const mlxe_ops *ops = mlxe_device_ops(gpu);
    ops->free_weights(gpu, (void *)m->device.data);
    ops->free_weights(gpu, (void *)m->device.scales);
    ops->free_weights(gpu, (void *)m->device.biases);
    free((void *)m->host.data);
    free((void *)m->host.scales);
    free((void *)m->host.biases);
}

/* Per output row of w against x: the rounding bound and Σ|w·x|. */
static void row_bounds(const mlxe_matrix *w, const float *x, double *bound, double *magnitude) {
    const int64_t cols = w->cols, groups_per_row = cols / w->group_size;
    const uint32_t *words = w->data;
    const uint32_t mask = (1u << w->bits) - 1u;
    for (int64_t o = 0; o < w->rows; o++) {
        double b = 0.0, mag = 0.0;
        for (int64_t k0 = 0; k0 < cols; k0 += 32) {
            float amax = 0.0f;
            for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[k0 + i]));
            const double half_d = (double)(amax / 127.0f) / 2.0;
            const size_t g = (size_t)(o * groups_per_row + k0 / w->group_size);
            const double s = host_float(w->scale_dtype, w->scales, g), bias = host_float(w->scale_dtype, w->biases, g);
            double q_sum = 0.0;
            for (int i = 0; i < 32; i++) {
                const uint64_t bit = (uint64_t)(o * cols + k0 + i) * (uint64_t)w->bits;
                const uint32_t q = (words[bit >> 5] >> (bit & 31u)) & mask;
                q_sum += q;
                mag += fabs((s * q + bias) * x[k0 + i]);
            }
            b += fabs(s) * half_d * q_sum;
        }
        bound[o] = b;
        magnitude[o] = mag;
    }
}

/* What a case found, over all its outputs. */
typedef struct tally {
    double worst_error_over_bound; /* ≤ 1 required */
    double worst_bound_over_size;  /* ≤ 0.02 required: the bound says something */
    double worst_error_over_size;  /* > 1e-5 somewhere: the int8 path ran */
} tally;

static tally totals;

static void check_output(const float *got, const float *want, const double *bound, const double *size, int64_t n,
                         double float_slack_of_want, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) fail_msg("%s: output %lld is %g", what, (long long)i, got[i]);
        const double error = fabs((double)got[i] - want[i]);
        const double allowed = bound[i] + 1e-5 * size[i] + float_slack_of_want * fabs(want[i]) + 1e-6;
        if (!(error <= allowed))
            fail_msg("%s: output %lld is %.9g, the float32 product %.9g: error %.3g above the int8 bound %.3g", what,
                     (long long)i, got[i], want[i], error, allowed);
        totals.worst_error_over_bound = fmax(totals.worst_error_over_bound, error / allowed);
        if (size[i] > 0) {
            totals.worst_bound_over_size = fmax(totals.worst_bound_over_size, bound[i] / size[i]);
            totals.worst_error_over_size = fmax(totals.worst_error_over_size, error / size[i]);
        }
    }
}

static float *download(mlxe_device *gpu, const float *device, size_t n) {
    float *host = malloc(n * sizeof(float) + 4);
    assert_non_null(host);
    mlxe_device_ops(gpu)->download(gpu, host, device, n * sizeof(float));
    cuda_expect_synchronized(gpu);
    return host;
}

static float *poisoned(mlxe_device *gpu, size_t n) {
    float *host = malloc(n * sizeof(float) + 4);
    memset(host, 0xff, n * sizeof(float));
    float *p = cuda_to_device(gpu, host, n * sizeof(float));
    free(host);
    return p;
}

typedef enum op_kind { OP_MATMUL, OP_ADD, OP_MULTI, OP_SWIGLU } op_kind;

typedef struct norm_gains {
    mlxe_vector host, device;
} norm_gains;

/* One op on gpu against the CPU: exact = the float path (2e-5 relative),
 * else the int8 bound per output. ms: 1 matrix (matmul, add), 3 (multi), 2
 * (gate, up). */
static void check_op(fixture *f, mlxe_device *gpu, bool exact, cuda_rng *rng, op_kind op, qmatrix *ms, int n_ms,
                     const norm_gains *norm, const char *what) {
    const mlxe_ops *c = mlxe_device_ops(f->cpu), *g = mlxe_device_ops(gpu);
    const int64_t cols = ms[0].host.cols;
    float *x = malloc((size_t)cols * sizeof(float)), *in = malloc((size_t)cols * sizeof(float));
    cuda_fill(rng, x, (size_t)cols, -1.0f, 1.0f);
    memcpy(in, x, (size_t)cols * sizeof(float));
    if (norm) c->rms_norm(f->cpu, x, &norm->host, 1, cols, 1e-5f, in);
    float *dx = cuda_to_device(gpu, x, (size_t)cols * sizeof(float));
    float *dnormed = poisoned(gpu, (size_t)cols);
    char label[200];
    snprintf(label, sizeof label, "%s%s%s", what, norm ? ", normed" : "", exact ? ", float path" : "");
    /* the CPU's products and their bounds, per matrix */
    float *want[3] = {NULL, NULL, NULL}, *dy[3] = {NULL, NULL, NULL};
    double *bound[3] = {NULL, NULL, NULL}, *size[3] = {NULL, NULL, NULL};
    float *y0 = NULL;
    for (int i = 0; i < n_ms; i++) {
        const size_t rows = (size_t)ms[i].host.rows;
        want[i] = malloc(rows * sizeof(float));
        bound[i] = malloc(rows * sizeof(double));
        size[i] = malloc(rows * sizeof(double));
        c->matmul(f->cpu, in, 1, &ms[i].host, want[i]);
        row_bounds(&ms[i].host, in, bound[i], size[i]);
        dy[i] = poisoned(gpu, rows);
    }
    if (op == OP_MATMUL) {
        g->matmul(gpu, dx, 1, &ms[0].device, dy[0]);
    } else if (op == OP_ADD) {
        const size_t rows = (size_t)ms[0].host.rows;
        y0 = malloc(rows * sizeof(float));
        cuda_fill(rng, y0, rows, -4.0f, 4.0f);
        g->free(gpu, dy[0]);
        dy[0] = cuda_to_device(gpu, y0, rows * sizeof(float));
        g->matmul_add(gpu, dx, 1, &ms[0].device, dy[0]);
        for (size_t o = 0; o < rows; o++) want[0][o] += y0[o];
    } else if (op == OP_MULTI) {
        const mlxe_matrix *matrices[3] = {&ms[0].device, &ms[1].device, &ms[2].device};
        g->matmul_multi(gpu, dx, 1, norm ? &norm->device : NULL, 1e-5f, dnormed, n_ms, matrices, dy);
    } else {
        g->matmul_swiglu(gpu, dx, 1, norm ? &norm->device : NULL, 1e-5f, dnormed, &ms[0].device, &ms[1].device, dy[0],
                         dy[1]);
    }
    const int n_outputs = op == OP_MULTI ? n_ms : 1;
    for (int i = 0; i < n_outputs; i++) {
        const int64_t rows = ms[i].host.rows;
        float *got = download(gpu, dy[i], (size_t)rows);
        char output_label[240];
        snprintf(output_label, sizeof output_label, "%s, output %d", label, i);
        if (op == OP_SWIGLU) { /* silu(gate)·up and the bound carried through it */
            for (int64_t o = 0; o < rows; o++) {
                const double gate = want[0][o], up = want[1][o];
                const double eg = bound[0][o] + 1e-5 * size[0][o] + 1e-6, eu = bound[1][o] + 1e-5 * size[1][o] + 1e-6;
                const double silu = gate / (1.0 + exp(-gate));
                want[0][o] = (float)(silu * up);
                bound[0][o] = 1.1 * eg * (fabs(up) + eu) + fabs(silu) * eu;
                size[0][o] = 1.1 * size[0][o] * (fabs(up) + eu) + fabs(silu) * size[1][o];
            }
        }
        if (exact) {
            cuda_assert_close(got, want[i], (size_t)rows, 2e-5, output_label);
        } else {
            check_output(got, want[i], bound[i], size[i], rows, y0 ? 1e-6 : 0.0, output_label);
        }
        free(got);
    }
    for (int i = 0; i < n_ms; i++) {
        free(want[i]);
        free(bound[i]);
        free(size[i]);
        g->free(gpu, dy[i]);
    }
    free(y0);
    g->free(gpu, dx);
    g->free(gpu, dnormed);
    free(x);
    free(in);
}

/* The default device (int8 path) and one that read MLXE_CUDA_MATVEC=float
 * at its first quantized product (the float path). */
static fixture *open_devices(void **state) {
    fixture *f = *state;
    unsetenv("MLXE_CUDA_MATVEC");
    f->gpu = cuda_device_or_skip();
    f->cpu = cuda_cpu_device();
    assert_true(mlxe_cuda_int8_enabled(mlxe_cuda_state_of(f->gpu)));
    mlxe_error err;
    setenv("MLXE_CUDA_MATVEC", "float", 1);
    if (mlxe_device_create_cuda(0, &f->exact_gpu, &err) != MLXE_OK) fail_msg("%s", err.message);
    assert_false(mlxe_cuda_int8_enabled(mlxe_cuda_state_of(f->exact_gpu)));
    unsetenv("MLXE_CUDA_MATVEC");
    assert_false(mlxe_cuda_int8_enabled(mlxe_cuda_state_of(f->exact_gpu))); /* read once, at first use */
    assert_true(mlxe_cuda_int8_enabled(mlxe_cuda_state_of(f->gpu)));
    return f;
}

static void make_norm(mlxe_device *gpu, cuda_rng *rng, int64_t size, norm_gains *n) {
    void *data = cuda_random_weights(rng, MLXE_DTYPE_BF16, (size_t)size, 0.5f, 1.5f);
    n->host = (mlxe_vector){.dtype = MLXE_DTYPE_BF16, .size = size, .data = data};
    n->device = n->host;
    n->device.data = cuda_weights_to_device(gpu, data, (size_t)size * 2);
}

static void free_norm(mlxe_device *gpu, norm_gains *n) {
    mlxe_device_ops(gpu)->free_weights(gpu, (void *)n->device.data);
    free((void *)n->host.data);
}

/* Every op for one format and shape, on both devices. */
static void check_format(fixture *f, cuda_rng *rng, int bits, int group, mlxe_dtype scale_dtype, int64_t rows,
                         int64_t cols, bool with_exact) {
    qmatrix ms[3];
    const int64_t multi_rows[3] = {rows, rows / 4 + 1, rows / 4 + 1};
    for (int i = 0; i < 3; i++) make_qmatrix(f->gpu, rng, i == 1 ? rows : multi_rows[i], cols, bits, group, scale_dtype, &ms[i]);
    norm_gains norm;
    make_norm(f->gpu, rng, cols, &norm);
    char what[160];
    snprintf(what, sizeof what, "%d-bit group %d scales %s, %lld x %lld", bits, group, cuda_dtype_name(scale_dtype),
             (long long)rows, (long long)cols);
    for (int exact = 0; exact <= (with_exact ? 1 : 0); exact++) {
        mlxe_device *gpu = exact ? f->exact_gpu : f->gpu;
        char label[200];
        snprintf(label, sizeof label, "matmul %s", what);
        check_op(f, gpu, exact, rng, OP_MATMUL, ms, 1, NULL, label);
        snprintf(label, sizeof label, "matmul_add %s", what);
        check_op(f, gpu, exact, rng, OP_ADD, ms, 1, NULL, label);
        for (int normed = 0; normed < 2; normed++) {
            snprintf(label, sizeof label, "matmul_multi %s", what);
            qmatrix qkv[3] = {ms[0], ms[2], ms[2]};
            check_op(f, gpu, exact, rng, OP_MULTI, qkv, 3, normed ? &norm : NULL, label);
            snprintf(label, sizeof label, "matmul_swiglu %s", what);
            check_op(f, gpu, exact, rng, OP_SWIGLU, ms, 2, normed ? &norm : NULL, label);
        }
    }
    free_norm(f->gpu, &norm);
    for (int i = 0; i < 3; i++) free_qmatrix(f->gpu, &ms[i]);
}

static void test_formats(void **state) {
    fixture *f = open_devices(state);
    cuda_rng rng = {71};
    static const int groups[] = {32, 64, 128};
    static const mlxe_dtype scale_dtypes[] = {MLXE_DTYPE_BF16, MLXE_DTYPE_F16, MLXE_DTYPE_F32};
    memset(&totals, 0, sizeof totals);
    for (int bits = 4; bits <= 8; bits += 4)
        for (int g = 0; g < 3; g++)
            for (int s = 0; s < 3; s++) {
                /* odd columns: 37, 19, 9 groups (a partial last step of the lanes) */
                const int64_t cols = (int64_t)groups[g] * (g == 0 ? 37 : g == 1 ? 19 : 9);
                const int64_t rows = s == 0 ? 1001 : 37;
                check_format(f, &rng, bits, groups[g], scale_dtypes[s], rows, cols, s == 0);
            }
    print_message("int8 path: worst error / bound %.3g, worst bound / sum|w x| %.3g, worst error / sum|w x| %.3g\n",
                  totals.worst_error_over_bound, totals.worst_bound_over_size, totals.worst_error_over_size);
    assert_true(totals.worst_error_over_bound <= 1.0);
    assert_true(totals.worst_bound_over_size <= 0.02);
    assert_true(totals.worst_error_over_size > 1e-5);
}

/* Every forced shape of the kernel (rows per warp × warps per row), and
 * large row counts (the automatic choice at its several steps). */
static void test_shapes(void **state) {
    fixture *f = open_devices(state);
    cuda_rng rng = {72};
    memset(&totals, 0, sizeof totals);
    static const int choices[] = {1, 2, 4, 8};
    for (int r = 0; r < 4; r++)
        for (int s = 0; s < 3; s++) {
            /* with the launches overlapped (the default on sm_90) and after each other */
            mlxe_cuda_int8_tuning(choices[r], choices[s], (r + s) % 2 ? MLXE_CUDA_INT8_OVERLAP : MLXE_CUDA_INT8_SERIAL);
            check_format(f, &rng, 4, 64, MLXE_DTYPE_BF16, 45, 64 * 41, false);
            check_format(f, &rng, 8, 32, MLXE_DTYPE_BF16, 45, 32 * 77, false);
        }
    mlxe_cuda_int8_tuning(0, 0, 0);
    check_format(f, &rng, 4, 64, MLXE_DTYPE_BF16, 5003, 1024, false);
    check_format(f, &rng, 8, 64, MLXE_DTYPE_BF16, 20011, 512, false);
    check_format(f, &rng, 4, 128, MLXE_DTYPE_BF16, 301, 8192, false);
    /* 8-bit rows of 128 loads and more: 8 rows a warp, 4 warps a row */
    check_format(f, &rng, 8, 64, MLXE_DTYPE_BF16, 301, 2048, false);
    check_format(f, &rng, 8, 32, MLXE_DTYPE_F16, 77, 32 * 129, false);
    print_message("int8 shapes: worst error / bound %.3g, worst bound / sum|w x| %.3g\n",
                  totals.worst_error_over_bound, totals.worst_bound_over_size);
    assert_true(totals.worst_bound_over_size <= 0.02);
    assert_true(totals.worst_error_over_size > 1e-5);
}

/* Two decode layers' products (q/k/v and gate/up with the norm, down
 * consuming SwiGLU's output and adding into the residual, which is the next
 * layer's input) recorded as a graph and replayed twice give the same bits
 * as the direct launches, with each kernel launched after the one before
 * (MLXE_CUDA_INT8_SERIAL) and overlapped (the default on sm_90). */
typedef struct layer_buffers {
    float *x, *q, *k, *v, *out, *up, *normed;
} layer_buffers;

static void run_layers(mlxe_device *gpu, qmatrix *ms, const norm_gains *norm, layer_buffers *b) {
    const mlxe_ops *g = mlxe_device_ops(gpu);
    for (int layer = 0; layer < 2; layer++) {
        const mlxe_matrix *qkv[3] = {&ms[0].device, &ms[1].device, &ms[1].device};
        float *outputs[3] = {b->q, b->k, b->v};
        g->matmul_multi(gpu, b->x, 1, &norm->device, 1e-5f, b->normed, 3, qkv, outputs);
        g->matmul_swiglu(gpu, b->x, 1, &norm->device, 1e-5f, b->normed, &ms[2].device, &ms[3].device, b->out, b->up);
        g->matmul_add(gpu, b->out, 1, &ms[4].device, b->x);
    }
}

static void test_graph_replay(void **state) {
    fixture *f = open_devices(state);
    cuda_rng rng = {74};
    const mlxe_ops *g = mlxe_device_ops(f->gpu);
    const int64_t hidden = 512, ffn = 1536;
    for (int bits = 4; bits <= 8; bits += 4) {
        qmatrix ms[5];
        make_qmatrix(f->gpu, &rng, hidden, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[0]);
        make_qmatrix(f->gpu, &rng, hidden / 4, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[1]);
        make_qmatrix(f->gpu, &rng, ffn, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[2]);
        make_qmatrix(f->gpu, &rng, ffn, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[3]);
        make_qmatrix(f->gpu, &rng, hidden, ffn, bits, 64, MLXE_DTYPE_BF16, &ms[4]);
        norm_gains norm;
        make_norm(f->gpu, &rng, hidden, &norm);
        float *x0 = malloc((size_t)hidden * sizeof(float));
        cuda_fill(&rng, x0, (size_t)hidden, -1.0f, 1.0f);
        layer_buffers b = {.x = cuda_to_device(f->gpu, x0, (size_t)hidden * sizeof(float)),
                           .q = poisoned(f->gpu, (size_t)hidden), .k = poisoned(f->gpu, (size_t)hidden),
                           .v = poisoned(f->gpu, (size_t)hidden), .out = poisoned(f->gpu, (size_t)ffn),
                           .up = poisoned(f->gpu, (size_t)ffn), .normed = poisoned(f->gpu, (size_t)ffn)};
        static const char *const mode_names[2] = {"each kernel after the one before", "overlapped launches"};
        for (int mode = 0; mode < 2; mode++) {
            mlxe_cuda_int8_tuning(0, 0, mode ? MLXE_CUDA_INT8_OVERLAP : MLXE_CUDA_INT8_SERIAL);
            g->upload(f->gpu, b.x, x0, (size_t)hidden * sizeof(float));
            run_layers(f->gpu, ms, &norm, &b);
            float *direct_x = download(f->gpu, b.x, (size_t)hidden), *direct_q = download(f->gpu, b.q, (size_t)hidden);
            for (int64_t i = 0; i < hidden; i++)
                if (!isfinite(direct_x[i])) fail_msg("%d-bit layers: output %lld is %g", bits, (long long)i, direct_x[i]);
            assert_true(g->graph_begin(f->gpu));
            run_layers(f->gpu, ms, &norm, &b);
            void *graph = g->graph_end(f->gpu);
            assert_non_null(graph);
            for (int replay = 0; replay < 2; replay++) {
                g->upload(f->gpu, b.x, x0, (size_t)hidden * sizeof(float));
                assert_true(g->graph_launch(f->gpu, graph));
                float *x = download(f->gpu, b.x, (size_t)hidden), *q = download(f->gpu, b.q, (size_t)hidden);
                if (memcmp(x, direct_x, (size_t)hidden * sizeof(float)) != 0 ||
                    memcmp(q, direct_q, (size_t)hidden * sizeof(float)) != 0)
                    fail_msg("%d-bit layers, %s: the graph's replay %d differs from the direct launches", bits,
                             mode_names[mode], replay);
                free(x);
                free(q);
            }
            g->graph_free(f->gpu, graph);
            free(direct_x);
            free(direct_q);
        }
        mlxe_cuda_int8_tuning(0, 0, 0);
        float *buffers[] = {b.x, b.q, b.k, b.v, b.out, b.up, b.normed};
        for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) g->free(f->gpu, buffers[i]);
        free(x0);
        free_norm(f->gpu, &norm);
        for (int i = 0; i < 5; i++) free_qmatrix(f->gpu, &ms[i]);
    }
}

/* A decode attention (one token at position `position`, the grouped kernel:
 * one split, or several merged by the last block) into att, o_proj added
 * into x, then SwiGLU with the norm into out and down_proj added into x:
 * with the attention writing o_proj's int8 form (default) or a quantization
 * kernel before each product (MLXE_CUDA_INT8_UNFUSED). Returns x and the
 * int8 forms the products took. */
typedef struct attention_case {
    int64_t n_heads, n_kv_heads, head_dim, capacity;
    float *q, *k_cache, *v_cache, *att, *out, *up, *normed, *x;
} attention_case;

static float *attention_then_products(mlxe_device *gpu, const attention_case *a, int32_t position, qmatrix *ms,
                                      const norm_gains *norm, const float *x0, bool unfused,
                                      unsigned long long *taken) {
    const mlxe_ops *g = mlxe_device_ops(gpu);
    mlxe_cuda_state *st = mlxe_cuda_state_of(gpu);
    const int64_t hidden = a->n_heads * a->head_dim;
    mlxe_cuda_int8_tuning(0, 0, unfused ? MLXE_CUDA_INT8_UNFUSED : 0);
    g->upload(gpu, a->x, x0, (size_t)hidden * sizeof(float));
    const unsigned long long before = st->prequantized_taken;
    const int32_t slot = 0;
    mlxe_attention_args args = {.n_rows = 1, .n_heads = a->n_heads, .n_kv_heads = a->n_kv_heads,
                                .head_dim = a->head_dim, .q = a->q, .k_cache = a->k_cache, .v_cache = a->v_cache,
                                .capacity = a->capacity, .slots = &slot, .positions = &position,
                                .scale = 1.0f / sqrtf((float)a->head_dim), .out = a->att,
                                .kv_length = position + 1};
    g->attention(gpu, &args);
    g->matmul_add(gpu, a->att, 1, &ms[0].device, a->x);
    g->matmul_swiglu(gpu, a->x, 1, &norm->device, 1e-5f, a->normed, &ms[1].device, &ms[2].device, a->out, a->up);
    g->matmul_add(gpu, a->out, 1, &ms[3].device, a->x);
    float *x = download(gpu, a->x, (size_t)hidden);
    *taken = st->prequantized_taken - before;
    mlxe_cuda_int8_tuning(0, 0, 0);
    return x;
}

static void test_producers(void **state) {
    fixture *f = open_devices(state);
    cuda_rng rng = {75};
    const mlxe_ops *g = mlxe_device_ops(f->gpu);
    attention_case a = {.n_heads = 8, .n_kv_heads = 2, .head_dim = 64, .capacity = 512};
    const int64_t hidden = a.n_heads * a.head_dim, ffn = 1536;
    const size_t cache = (size_t)(a.n_kv_heads * a.capacity * a.head_dim);
    float *host = malloc(cache * sizeof(float)), *x0 = malloc((size_t)hidden * sizeof(float));
    cuda_fill(&rng, host, cache, -1.0f, 1.0f);
    a.k_cache = cuda_to_device(f->gpu, host, cache * sizeof(float));
    cuda_fill(&rng, host, cache, -1.0f, 1.0f);
    a.v_cache = cuda_to_device(f->gpu, host, cache * sizeof(float));
    cuda_fill(&rng, host, (size_t)hidden, -1.0f, 1.0f);
    a.q = cuda_to_device(f->gpu, host, (size_t)hidden * sizeof(float));
    cuda_fill(&rng, x0, (size_t)hidden, -1.0f, 1.0f);
    a.att = poisoned(f->gpu, (size_t)hidden);
    a.x = poisoned(f->gpu, (size_t)hidden);
    a.out = poisoned(f->gpu, (size_t)ffn);
    a.up = poisoned(f->gpu, (size_t)ffn);
    a.normed = poisoned(f->gpu, (size_t)ffn);
    for (int bits = 4; bits <= 8; bits += 4) {
        qmatrix ms[4];
        make_qmatrix(f->gpu, &rng, hidden, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[0]);
        make_qmatrix(f->gpu, &rng, ffn, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[1]);
        make_qmatrix(f->gpu, &rng, ffn, hidden, bits, 64, MLXE_DTYPE_BF16, &ms[2]);
        make_qmatrix(f->gpu, &rng, hidden, ffn, bits, 32, MLXE_DTYPE_BF16, &ms[3]);
        norm_gains norm;
        make_norm(f->gpu, &rng, hidden, &norm);
        unsigned long long taken = 0;
        /* a first pass: producers write the int8 form only once a product of int8 activations ran */
        free(attention_then_products(f->gpu, &a, 5, ms, &norm, x0, false, &taken));
        static const int32_t positions[] = {5, 300, 511};
        for (size_t p = 0; p < sizeof positions / sizeof positions[0]; p++) {
            unsigned long long taken_unfused = 0;
            float *fused = attention_then_products(f->gpu, &a, positions[p], ms, &norm, x0, false, &taken);
            float *unfused = attention_then_products(f->gpu, &a, positions[p], ms, &norm, x0, true, &taken_unfused);
            for (int64_t i = 0; i < hidden; i++)
                if (!isfinite(fused[i])) fail_msg("%d-bit, position %d: output %lld is %g", bits, positions[p], (long long)i, fused[i]);
            if (memcmp(fused, unfused, (size_t)hidden * sizeof(float)) != 0)
                fail_msg("%d-bit, position %d: the attention's int8 form gives other bits than the quantization kernel",
                         bits, positions[p]);
            if (taken != 1 || taken_unfused != 0)
                fail_msg("%d-bit, position %d: %llu int8 forms taken (1 expected), %llu with MLXE_CUDA_INT8_UNFUSED (0)",
                         bits, positions[p], taken, taken_unfused);
            free(fused);
            free(unfused);
        }
        free_norm(f->gpu, &norm);
        for (int i = 0; i < 4; i++) free_qmatrix(f->gpu, &ms[i]);
    }
    float *buffers[] = {a.k_cache, a.v_cache, a.q, a.att, a.x, a.out, a.up, a.normed};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) g->free(f->gpu, buffers[i]);
    free(host);
    free(x0);
}

/* Formats the path does not take go to the float kernels (exact). */
static void test_fallback(void **state) {
    fixture *f = open_devices(state);
    cuda_rng rng = {73};
    qmatrix m;
    make_qmatrix(f->gpu, &rng, 33, 256, 3, 64, MLXE_DTYPE_BF16, &m);
    const mlxe_matrix *w = &m.device;
    float *scratch = poisoned(f->gpu, 64);
    assert_false(mlxe_cuda_matvec_int8(mlxe_cuda_state_of(f->gpu), scratch, 1, &w, &scratch, MLXE_CUDA_INT8_STORE,
                                       NULL, 0.0f));
    check_op(f, f->gpu, true, &rng, OP_MATMUL, &m, 1, NULL, "3-bit matmul");
    mlxe_device_ops(f->gpu)->free(f->gpu, scratch);
    free_qmatrix(f->gpu, &m);
}
#else
static void test_formats(void **state) {
    (void)state;
    skip();
}
static void test_shapes(void **state) {
    (void)state;
    skip();
}
static void test_fallback(void **state) {
    (void)state;
    skip();
}
static void test_graph_replay(void **state) {
    (void)state;
    skip();
}
static void test_producers(void **state) {
    (void)state;
    skip();
}
#endif

int main(void) {
    /* the CPU's float-activation kernels are the reference */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_producers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
