/* bench/cuda_ops.c — the CUDA ops against the GPU's own ceilings, in one run:
 * the device-to-device copy bandwidth (bytes read + written) measured first
 * is the roofline the decode matrix-vector kernels are compared with; the
 * prefill GEMMs are reported in TFLOP/s, the two ways of feeding F32
 * activations to F16/BF16 weights side by side (activations rounded to BF16
 * for the tensor cores, or weights widened to F32 per call); and matvec vs
 * GEMM at small batches, to place the switch between them.
 *
 *   bench_cuda_ops [--quick | --prefill | --decode]
 *
 * --decode prints the decode tables only: the one-token kernels per call in
 * a graph (versions 3 and 4; for 4/8-bit weights version 5, int8
 * activations, with every forced shape of its kernel) and the decode ops of
 * a layer with float against int8 activations (docs/CUDA.md, version 5). --prefill times only what prefill uses, the version-3 kernels against
 * the current ones in the same run: prompt attention (warp per pair vs
 * flash), quantized GEMMs by expansion kernel and slice size, and whole
 * prefill steps of both model shapes (docs/CUDA.md, version 4).
 *
 * Shapes are Llama-3.1-8B's (hidden 4096, ffn 14336, vocab 128256) and
 * Llama-3.2-1B's (2048, 8192). Weights are random (never zeros) and several
 * copies are rotated so no call finds its matrix in the 50 MB L2. Each cell
 * is the median of timed calls (CUDA events on the device's stream) after a
 * warm-up. Without a GPU it says why and exits 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/build_config.h"
#include "runtime/device.h"

#if MLXE_BUILD_CUDA
#include "runtime/cuda/cuda_gemm_quant.h"
#include "runtime/cuda/cuda_internal.h"
#include "runtime/cuda/cuda_matvec_int8.h"

#define RANDOM_BLOCK_BYTES ((size_t)64 << 20)
#define ROTATION_BYTES ((size_t)512 << 20)

static uint16_t *random_block; /* valid BF16 values in [-1, 1): also finite as F16 */

static void make_random_block(void) {
    random_block = malloc(RANDOM_BLOCK_BYTES);
    uint64_t state = 0x1234567;
    for (size_t i = 0; i < RANDOM_BLOCK_BYTES / 2; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        float f = (float)((double)(state >> 11) * 0x1p-53) * 2.0f - 1.0f;
        uint32_t word;
        memcpy(&word, &f, 4);
        random_block[i] = (uint16_t)(word >> 16);
    }
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Device memory filled from the random block. */
static void *random_device(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
        fprintf(stderr, "cudaMalloc %zu failed\n", bytes);
        exit(1);
    }
    for (size_t done = 0; done < bytes; done += RANDOM_BLOCK_BYTES) {
        size_t n = bytes - done < RANDOM_BLOCK_BYTES ? bytes - done : RANDOM_BLOCK_BYTES;
        cudaMemcpy((char *)p + done, random_block, n, cudaMemcpyHostToDevice);
    }
    return p;
}

typedef struct matrix_set {
    int copies;
    mlxe_matrix m[64];
    size_t bytes; /* of one copy: weights + scales + biases */
} matrix_set;

/* bits 0: dtype weights; else MLX affine with BF16 scales and biases. */
static void make_set(matrix_set *s, mlxe_dtype dtype, int bits, int group, int64_t rows, int64_t cols) {
    size_t weight_bytes = bits ? (size_t)(rows * cols) * (size_t)bits / 8
                               : (size_t)(rows * cols) * (dtype == MLXE_DTYPE_F32 ? 4 : 2);
    size_t scale_bytes = bits ? (size_t)(rows * cols / group) * 2 : 0;
    s->bytes = weight_bytes + 2 * scale_bytes;
    s->copies = (int)((ROTATION_BYTES + s->bytes - 1) / s->bytes);
    if (s->copies > 64) s->copies = 64;
    if (s->copies < 2) s->copies = 2;
    for (int c = 0; c < s->copies; c++) {
        s->m[c] = (mlxe_matrix){.dtype = bits ? MLXE_DTYPE_U32 : dtype, .rows = rows, .cols = cols, .bits = bits,
                                .group_size = group, .scale_dtype = MLXE_DTYPE_BF16};
        s->m[c].data = random_device(weight_bytes);
        if (bits) { /* any finite scales and biases will do for timing */
            s->m[c].scales = random_device(scale_bytes);
            s->m[c].biases = random_device(scale_bytes);
        }
    }
}

static void free_set(matrix_set *s) {
    for (int c = 0; c < s->copies; c++) {
        cudaFree((void *)s->m[c].data);
        if (s->m[c].bits) {
            cudaFree((void *)s->m[c].scales);
            cudaFree((void *)s->m[c].biases);
        }
    }
}

/* Median milliseconds of one matmul over the set's copies in turn. */
static float time_matmul(mlxe_device *dev, const matrix_set *s, const float *x, int64_t n_rows, float *y, int reps) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    for (int c = 0; c < s->copies; c++) ops->matmul(dev, x, n_rows, &s->m[c], y); /* warm-up */
    float times[256];
    if (reps > 256) reps = 256;
    for (int r = 0; r < reps; r++) {
        cudaEventRecord(start, state->stream);
        ops->matmul(dev, x, n_rows, &s->m[r % s->copies], y);
        cudaEventRecord(stop, state->stream);
        cudaEventSynchronize(stop);
        cudaEventElapsedTime(&times[r], start, stop);
    }
    mlxe_error err;
    if (ops->synchronize(dev, &err) != MLXE_OK) {
        fprintf(stderr, "GPU error: %s\n", err.message);
        exit(1);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    qsort(times, (size_t)reps, sizeof(float), compare_floats);
    return times[reps / 2];
}

/* Replays a recording of `calls` ops 7 times after a warm-up, then frees
 * it: the minimum and the median milliseconds per op. */
static void replay_graph(mlxe_device *dev, void *graph, int calls, float *min_ms, float *median_ms) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    ops->graph_launch(dev, graph); /* warm-up */
    float times[7];
    for (int r = 0; r < 7; r++) {
        cudaEventRecord(start, state->stream);
        ops->graph_launch(dev, graph);
        cudaEventRecord(stop, state->stream);
        cudaEventSynchronize(stop);
        cudaEventElapsedTime(&times[r], start, stop);
        times[r] /= (float)calls;
    }
    mlxe_error err;
    if (ops->synchronize(dev, &err) != MLXE_OK) {
        fprintf(stderr, "GPU error: %s\n", err.message);
        exit(1);
    }
    ops->graph_free(dev, graph);
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    qsort(times, 7, sizeof(float), compare_floats);
    *min_ms = times[0];
    *median_ms = times[3];
}

/* Milliseconds per call of `calls` matmuls recorded back to back in one
 * CUDA graph (as in a decode step: no host launch gap between kernels),
 * rotating over the set's copies; the minimum and the median of 7 replays. */
static void time_matmul_graph(mlxe_device *dev, const matrix_set *s, const float *x, float *y, float *min_ms,
                              float *median_ms) {
    const int calls = 40;
    const mlxe_ops *ops = mlxe_device_ops(dev);
    *min_ms = *median_ms = NAN;
    ops->matmul(dev, x, 1, &s->m[0], y); /* sizes the device's scratch outside the recording */
    if (!ops->graph_begin(dev)) return;
    for (int c = 0; c < calls; c++) ops->matmul(dev, x, 1, &s->m[c % s->copies], y);
    void *graph = ops->graph_end(dev);
    if (graph) replay_graph(dev, graph, calls, min_ms, median_ms);
}

/* One decode op of a layer, for graph timing: matmul or matmul_add of a,
 * matmul_multi of a, b, c (q, k, v) or matmul_swiglu of a (gate) and b
 * (up), with the RMSNorm where norm is not NULL. */
typedef enum { OP_MATMUL, OP_ADD, OP_MULTI, OP_SWIGLU } op_kind;
typedef struct layer_op {
    const char *name;
    op_kind kind;
    const matrix_set *a, *b, *c;
    const mlxe_vector *norm;
} layer_op;

static void run_layer_op(mlxe_device *dev, const layer_op *op, int call, const float *x, float *y) {
    const mlxe_ops *ops = mlxe_device_ops(dev);
    const mlxe_matrix *a = &op->a->m[call % op->a->copies];
    float *normed = y + ((size_t)1 << 20), *second = y + ((size_t)1 << 19), *third = y + ((size_t)3 << 18);
    if (op->kind == OP_MATMUL) ops->matmul(dev, x, 1, a, y);
    if (op->kind == OP_ADD) ops->matmul_add(dev, x, 1, a, y);
    if (op->kind == OP_MULTI) {
        const mlxe_matrix *w[3] = {a, &op->b->m[call % op->b->copies], &op->c->m[call % op->c->copies]};
        float *outputs[3] = {y, second, third};
        ops->matmul_multi(dev, x, 1, op->norm, 1e-5f, normed, 3, w, outputs);
    }
    if (op->kind == OP_SWIGLU)
        ops->matmul_swiglu(dev, x, 1, op->norm, 1e-5f, normed, a, &op->b->m[call % op->b->copies], y, second);
}

/* Microseconds per op of 40 ops recorded back to back in one graph
 * (rotating the copies); the minimum of 7 replays. */
static double time_layer_op(mlxe_device *dev, const layer_op *op, const float *x, float *y) {
    const int calls = 40;
    const mlxe_ops *ops = mlxe_device_ops(dev);
    run_layer_op(dev, op, 0, x, y); /* sizes the scratch outside the recording */
    if (!ops->graph_begin(dev)) return NAN;
    for (int c = 0; c < calls; c++) run_layer_op(dev, op, c, x, y);
    void *graph = ops->graph_end(dev);
    if (!graph) return NAN;
    float min_ms, median_ms;
    replay_graph(dev, graph, calls, &min_ms, &median_ms);
    return 1e3 * min_ms;
}

static double copy_bandwidth(mlxe_cuda_state *state) {
    size_t bytes = (size_t)1 << 30;
    void *a = random_device(bytes), *b = NULL;
    cudaMalloc(&b, bytes);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, state->stream);
    float times[10];
    for (int r = 0; r < 10; r++) {
        cudaEventRecord(start, state->stream);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, state->stream);
        cudaEventRecord(stop, state->stream);
        cudaEventSynchronize(stop);
        cudaEventElapsedTime(&times[r], start, stop);
    }
    qsort(times, 10, sizeof(float), compare_floats);
    cudaFree(a);
    cudaFree(b);
    return 2.0 * (double)bytes / (times[5] * 1e-3) / 1e9;
}

typedef struct shape {
    const char *name;
    int64_t rows, cols;
} shape;

static const char *format_name(mlxe_dtype dtype, int bits, int group, char *buf, size_t size) {
    if (bits) snprintf(buf, size, "Q%d g%d", bits, group);
    else snprintf(buf, size, "%s", dtype == MLXE_DTYPE_F32 ? "F32" : dtype == MLXE_DTYPE_F16 ? "F16" : "BF16");
    return buf;
}

static void time_attention(mlxe_device *dev, int64_t n_rows, int64_t context, double copy_gbs, int mode) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    state->attention_mode = mode;
    const mlxe_ops *ops = mlxe_device_ops(dev);
    const int64_t n_heads = 32, n_kv = 8, hd = 128, capacity = context;
    size_t cache_bytes = (size_t)(n_kv * capacity * hd) * 4;
    float *k_cache = random_device(cache_bytes), *v_cache = random_device(cache_bytes);
    float *q = random_device((size_t)(n_rows * n_heads * hd) * 4), *out = NULL;
    cudaMalloc((void **)&out, (size_t)(n_rows * n_heads * hd) * 4);
    int32_t *slots_host = calloc((size_t)n_rows, 4), *positions_host = malloc((size_t)n_rows * 4);
    for (int64_t r = 0; r < n_rows; r++) positions_host[r] = (int32_t)(context - n_rows + r);
    int32_t *slots = NULL, *positions = NULL;
    cudaMalloc((void **)&slots, (size_t)n_rows * 4);
    cudaMalloc((void **)&positions, (size_t)n_rows * 4);
    cudaMemcpy(slots, slots_host, (size_t)n_rows * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(positions, positions_host, (size_t)n_rows * 4, cudaMemcpyHostToDevice);
    mlxe_attention_args args = {.n_rows = n_rows, .n_heads = n_heads, .n_kv_heads = n_kv, .head_dim = hd,
                                .q = q, .k_cache = k_cache, .v_cache = v_cache, .capacity = capacity,
                                .slots = slots, .positions = positions, .scale = 0.088f, .out = out,
                                .kv_length = context};
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    ops->attention(dev, &args);
    float times[21];
    for (int r = 0; r < 21; r++) {
        cudaEventRecord(start, state->stream);
        ops->attention(dev, &args);
        cudaEventRecord(stop, state->stream);
        cudaEventSynchronize(stop);
        cudaEventElapsedTime(&times[r], start, stop);
    }
    qsort(times, 21, sizeof(float), compare_floats);
    double ms = times[10];
    double bytes = 2.0 * (double)cache_bytes; /* K and V read once at least */
    static const char *kernels[] = {"auto", "split", "warp per pair", "flash"};
    printf("| attention %lld token%s, context %lld, 32/8 heads x 128, %s kernel | %.3f ms | %.0f GB/s of KV (%.0f%% of "
           "copy) |\n",
           (long long)n_rows, n_rows == 1 ? "" : "s", (long long)context, kernels[mode], ms, bytes / (ms * 1e-3) / 1e9,
           100.0 * bytes / (ms * 1e-3) / 1e9 / copy_gbs);
    cudaFree(k_cache);
    cudaFree(v_cache);
    cudaFree(q);
    cudaFree(out);
    cudaFree(slots);
    cudaFree(positions);
    free(slots_host);
    free(positions_host);
    mlxe_error err;
    if (ops->synchronize(dev, &err) != MLXE_OK) fprintf(stderr, "GPU error: %s\n", err.message);
}

/* ---- a whole model step through the ops (no CUDA graph yet) ---- */

typedef struct model_shape {
    const char *name;
    int64_t hidden, n_heads, n_kv_heads, head_dim, ffn, n_layers, vocab;
} model_shape;

typedef struct model_layer {
    mlxe_matrix q, k, v, o, gate, up, down;
} model_layer;

static mlxe_matrix make_matrix(mlxe_dtype dtype, int bits, int group, int64_t rows, int64_t cols, size_t *bytes) {
    size_t weight_bytes = bits ? (size_t)(rows * cols) * (size_t)bits / 8 : (size_t)(rows * cols) * 2;
    size_t scale_bytes = bits ? (size_t)(rows * cols / group) * 2 : 0;
    mlxe_matrix m = {.dtype = bits ? MLXE_DTYPE_U32 : dtype, .rows = rows, .cols = cols, .bits = bits,
                     .group_size = group, .scale_dtype = MLXE_DTYPE_BF16};
    m.data = random_device(weight_bytes);
    if (bits) {
        m.scales = random_device(scale_bytes);
        m.biases = random_device(scale_bytes);
    }
    *bytes += weight_bytes + 2 * scale_bytes;
    return m;
}

static void free_matrix(mlxe_matrix *m) {
    cudaFree((void *)m->data);
    if (m->bits) {
        cudaFree((void *)m->scales);
        cudaFree((void *)m->biases);
    }
}

static float *device_floats(size_t n) {
    float *p = NULL;
    if (cudaMalloc((void **)&p, n * sizeof(float)) != cudaSuccess) {
        fprintf(stderr, "cudaMalloc of %zu floats failed\n", n);
        exit(1);
    }
    cudaMemset(p, 0, n * sizeof(float));
    return p;
}

/* Times decode steps (1 token at position `context`) and one prefill of
 * `prompt` tokens through every layer, as a model forward calls the ops:
 * norms, projections, RoPE, KV store, attention, SwiGLU, residuals, final
 * norm and lm_head for one row. */
static void model_step(mlxe_device *dev, const model_shape *model, mlxe_dtype dtype, int bits, int group,
                       double copy_gbs, int64_t prompt) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    const int64_t hidden = model->hidden, q_dim = model->n_heads * model->head_dim,
                  kv_dim = model->n_kv_heads * model->head_dim, ffn = model->ffn;
    const int64_t capacity = 1024, context = 512;
    size_t weight_bytes = 0;
    model_layer *layers = calloc((size_t)model->n_layers, sizeof *layers);
    for (int64_t l = 0; l < model->n_layers; l++) {
        layers[l].q = make_matrix(dtype, bits, group, q_dim, hidden, &weight_bytes);
        layers[l].k = make_matrix(dtype, bits, group, kv_dim, hidden, &weight_bytes);
        layers[l].v = make_matrix(dtype, bits, group, kv_dim, hidden, &weight_bytes);
        layers[l].o = make_matrix(dtype, bits, group, hidden, q_dim, &weight_bytes);
        layers[l].gate = make_matrix(dtype, bits, group, ffn, hidden, &weight_bytes);
        layers[l].up = make_matrix(dtype, bits, group, ffn, hidden, &weight_bytes);
        layers[l].down = make_matrix(dtype, bits, group, hidden, ffn, &weight_bytes);
    }
    mlxe_matrix lm_head = make_matrix(dtype, bits, group, model->vocab, hidden, &weight_bytes);
    /* norm gains: BF16 ones */
    uint16_t *ones_host = malloc((size_t)ffn * 2);
    for (int64_t i = 0; i < ffn; i++) ones_host[i] = 0x3f80;
    void *ones = NULL;
    cudaMalloc(&ones, (size_t)ffn * 2);
    cudaMemcpy(ones, ones_host, (size_t)ffn * 2, cudaMemcpyHostToDevice);
    free(ones_host);
    mlxe_vector norm = {.dtype = MLXE_DTYPE_BF16, .size = hidden, .data = ones};

    const int64_t rows = prompt;
    float *x = device_floats((size_t)(rows * hidden)), *xb = device_floats((size_t)(rows * hidden));
    float *q = device_floats((size_t)(rows * q_dim)), *k = device_floats((size_t)(rows * kv_dim));
    float *v = device_floats((size_t)(rows * kv_dim)), *att = device_floats((size_t)(rows * q_dim));
    float *gate = device_floats((size_t)(rows * ffn)), *up = device_floats((size_t)(rows * ffn));
    float *logits = device_floats((size_t)model->vocab);
    size_t cache_n = (size_t)(model->n_kv_heads * capacity * model->head_dim);
    float **k_cache = calloc((size_t)model->n_layers, sizeof(float *)), **v_cache = calloc((size_t)model->n_layers, sizeof(float *));
    for (int64_t l = 0; l < model->n_layers; l++) {
        k_cache[l] = device_floats(cache_n);
        v_cache[l] = device_floats(cache_n);
    }
    float *inv_freq_host = malloc((size_t)model->head_dim / 2 * sizeof(float));
    for (int64_t i = 0; i < model->head_dim / 2; i++)
        inv_freq_host[i] = powf(500000.0f, -2.0f * (float)i / (float)model->head_dim);
    float *inv_freq = device_floats((size_t)model->head_dim / 2);
    cudaMemcpy(inv_freq, inv_freq_host, (size_t)model->head_dim / 2 * sizeof(float), cudaMemcpyHostToDevice);
    free(inv_freq_host);
    int32_t *slots_host = calloc((size_t)rows, 4), *positions_host = malloc((size_t)rows * 4);
    int32_t *slots = NULL, *positions = NULL, *decode_position = NULL;
    cudaMalloc((void **)&slots, (size_t)rows * 4);
    cudaMalloc((void **)&positions, (size_t)rows * 4);
    cudaMalloc((void **)&decode_position, 4);
    for (int64_t r = 0; r < rows; r++) positions_host[r] = (int32_t)r;
    cudaMemcpy(slots, slots_host, (size_t)rows * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(positions, positions_host, (size_t)rows * 4, cudaMemcpyHostToDevice);
    int32_t context_position = (int32_t)context;
    cudaMemcpy(decode_position, &context_position, 4, cudaMemcpyHostToDevice);
    {
        float *x_host = malloc((size_t)(rows * hidden) * sizeof(float));
        for (int64_t i = 0; i < rows * hidden; i++) x_host[i] = (float)((i * 7919) % 2001 - 1000) * 1e-3f;
        cudaMemcpy(x, x_host, (size_t)(rows * hidden) * sizeof(float), cudaMemcpyHostToDevice);
        free(x_host);
    }

    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    float times[2][32];
    int reps[2] = {21, 5};
    for (int phase = 0; phase < 2; phase++) {
        const int64_t n = phase == 0 ? 1 : rows;
        const int32_t *step_positions = phase == 0 ? decode_position : positions;
        const int64_t kv_length = phase == 0 ? context + 1 : rows;
        for (int r = -2; r < reps[phase]; r++) {
            cudaEventRecord(start, state->stream);
            for (int64_t l = 0; l < model->n_layers; l++) {
                const model_layer *L = &layers[l];
                ops->rms_norm(dev, x, &norm, n, hidden, 1e-5f, xb);
                ops->matmul(dev, xb, n, &L->q, q);
                ops->matmul(dev, xb, n, &L->k, k);
                ops->matmul(dev, xb, n, &L->v, v);
                ops->rope(dev, q, n, model->n_heads, model->head_dim, step_positions, inv_freq, 1.0f);
                ops->rope(dev, k, n, model->n_kv_heads, model->head_dim, step_positions, inv_freq, 1.0f);
                ops->kv_store(dev, k, v, n, model->n_kv_heads, model->head_dim, k_cache[l], v_cache[l], capacity,
                              slots, step_positions);
                mlxe_attention_args args = {.n_rows = n, .n_heads = model->n_heads, .n_kv_heads = model->n_kv_heads,
                                            .head_dim = model->head_dim, .q = q, .k_cache = k_cache[l],
                                            .v_cache = v_cache[l], .capacity = capacity, .slots = slots,
                                            .positions = step_positions, .scale = 0.125f, .out = att,
                                            .kv_length = kv_length};
                ops->attention(dev, &args);
                ops->matmul(dev, att, n, &L->o, xb);
                ops->add(dev, x, xb, n * hidden);
                ops->rms_norm(dev, x, &norm, n, hidden, 1e-5f, xb);
                ops->matmul(dev, xb, n, &L->gate, gate);
                ops->matmul(dev, xb, n, &L->up, up);
                ops->silu_mul(dev, gate, up, gate, n * ffn);
                ops->matmul(dev, gate, n, &L->down, xb);
                ops->add(dev, x, xb, n * hidden);
            }
            ops->rms_norm(dev, x + (n - 1) * hidden, &norm, 1, hidden, 1e-5f, xb);
            ops->matmul(dev, xb, 1, &lm_head, logits);
            cudaEventRecord(stop, state->stream);
            cudaEventSynchronize(stop);
            if (r >= 0) cudaEventElapsedTime(&times[phase][r], start, stop);
        }
        qsort(times[phase], (size_t)reps[phase], sizeof(float), compare_floats);
    }
    mlxe_error err;
    if (ops->synchronize(dev, &err) != MLXE_OK) fprintf(stderr, "GPU error: %s\n", err.message);
    double decode_ms = times[0][10], prefill_ms = times[1][2];
    char name[32];
    double gbs = (double)weight_bytes / (decode_ms * 1e-3) / 1e9;
    printf("| %s | %s | %.2f | %.3f | %.0f | %.0f (%.0f%%) | %.1f | %.0f |\n", model->name,
           format_name(dtype, bits, group, name, sizeof name), (double)weight_bytes / 1e9, decode_ms, 1e3 / decode_ms,
           gbs, 100.0 * gbs / copy_gbs, prefill_ms, (double)rows / (prefill_ms * 1e-3));
    fflush(stdout);

    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    for (int64_t l = 0; l < model->n_layers; l++) {
        free_matrix(&layers[l].q);
        free_matrix(&layers[l].k);
        free_matrix(&layers[l].v);
        free_matrix(&layers[l].o);
        free_matrix(&layers[l].gate);
        free_matrix(&layers[l].up);
        free_matrix(&layers[l].down);
        cudaFree(k_cache[l]);
        cudaFree(v_cache[l]);
    }
    free_matrix(&lm_head);
    float *buffers[] = {x, xb, q, k, v, att, gate, up, logits, inv_freq};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) cudaFree(buffers[i]);
    cudaFree(ones);
    cudaFree(slots);
    cudaFree(positions);
    cudaFree(decode_position);
    free(slots_host);
    free(positions_host);
    free(k_cache);
    free(v_cache);
    free(layers);
}

/* --prefill: the version-3 prefill kernels against the current ones. */
static void prefill_comparison(mlxe_device *dev, double copy_gbs, const float *x, float *y) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    printf("prompt attention (median of 21)\n| case | ms | bandwidth |\n|---|---|---|\n");
    for (int c = 0; c < 2; c++) {
        const int64_t n = c ? 2048 : 512;
        time_attention(dev, n, n, copy_gbs, 2);
        time_attention(dev, n, n, copy_gbs, 3);
    }
    state->attention_mode = 0;

    static const shape shapes[] = {
        {"8B q/o 4096x4096", 4096, 4096},     {"8B gate/up 14336x4096", 14336, 4096},
        {"8B down 4096x14336", 4096, 14336},  {"1B q/o 2048x2048", 2048, 2048},
        {"1B gate/up 8192x2048", 8192, 2048}, {"1B down 2048x8192", 2048, 8192},
    };
    static const struct { int64_t slice_mb; bool vectors; const char *what; } configs[] = {
        {256, false, "word per thread, slices of 256 MB (version 3)"},
        {256, true, "as chosen (8-bit: 16-byte vectors), slices of 256 MB"},
        {40, true, "as chosen, slices of 40 MB"},
    };
    printf("\nprefill GEMM (512 tokens), quantized weights expanded to BF16 (median of 20)\n");
    printf("| shape | weights | expansion | ms | TFLOP/s |\n|---|---|---|---|---|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const double flops = 2.0 * 512.0 * (double)shapes[s].rows * (double)shapes[s].cols;
        matrix_set set;
        make_set(&set, MLXE_DTYPE_BF16, 0, 0, shapes[s].rows, shapes[s].cols);
        float ms = time_matmul(dev, &set, x, 512, y, 20);
        printf("| %s | BF16 | none | %.3f | %.1f |\n", shapes[s].name, ms, flops / (ms * 1e-3) / 1e12);
        free_set(&set);
        for (int bits = 8; bits >= 4; bits -= 4) {
            make_set(&set, MLXE_DTYPE_U32, bits, 64, shapes[s].rows, shapes[s].cols);
            for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
                mlxe_cuda_expand_tuning(configs[c].slice_mb, configs[c].vectors);
                ms = time_matmul(dev, &set, x, 512, y, 20);
                printf("| %s | Q%d g64 | %s | %.3f | %.1f |\n", shapes[s].name, bits, configs[c].what, ms,
                       flops / (ms * 1e-3) / 1e12);
            }
            free_set(&set);
        }
    }
    mlxe_cuda_expand_tuning(0, true);

    static const model_shape models[] = {
        {"Llama-3.2-1B shape", 2048, 32, 8, 64, 8192, 16, 128256},
        {"Llama-3.1-8B shape", 4096, 32, 8, 128, 14336, 32, 128256},
    };
    printf("\nmodel steps through the ops, random weights: decode 1 token at position 512 (median of 21), prefill 512 "
           "tokens (median of 5); each width with the version-3 prefill kernels (warp-per-pair attention, word-per-"
           "thread expansion in 256 MB slices) and then the current ones\n");
    printf("| model | weights | GB | decode ms | decode tok/s | weight GB/s (of copy) | prefill ms | prefill tok/s "
           "|\n|---|---|---|---|---|---|---|---|\n");
    for (int m = 0; m < 2; m++) {
        static const struct { int bits; mlxe_dtype dtype; } widths[] = {
            {0, MLXE_DTYPE_BF16}, {8, MLXE_DTYPE_U32}, {4, MLXE_DTYPE_U32}};
        for (int w = 0; w < 3; w++) {
            for (int version = 3; version <= 4; version++) {
                state->attention_mode = version == 3 ? 2 : 0;
                mlxe_cuda_expand_tuning(version == 3 ? 256 : 0, version == 4);
                model_step(dev, &models[m], widths[w].dtype, widths[w].bits, widths[w].bits ? 64 : 0, copy_gbs, 512);
            }
        }
    }
    state->attention_mode = 0;
    mlxe_cuda_expand_tuning(0, true);
}

int main(int argc, char **argv) {
    int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int prefill_only = argc > 1 && strcmp(argv[1], "--prefill") == 0;
    int decode_only = argc > 1 && strcmp(argv[1], "--decode") == 0; /* the decode table alone */
    mlxe_device *dev = NULL;
    mlxe_error err;
    if (mlxe_device_create_cuda(0, &dev, &err) != MLXE_OK) {
        printf("no GPU: %s\n", err.message);
        return 0;
    }
    setenv("MLXE_CUDA_GEMM", "f32", 1);
    mlxe_device *dev_f32 = NULL;
    if (mlxe_device_create_cuda(0, &dev_f32, &err) != MLXE_OK) return 1;
    unsetenv("MLXE_CUDA_GEMM");
    /* the version-3 one-token kernels (one row per warp), side by side */
    setenv("MLXE_CUDA_MATVEC", "v3", 1);
    mlxe_device *dev_v3 = NULL;
    if (mlxe_device_create_cuda(0, &dev_v3, &err) != MLXE_OK) return 1;
    unsetenv("MLXE_CUDA_MATVEC");
    /* the version-4 one-token kernels with 1, 2, 4 rows per warp, forced */
    mlxe_device *dev_rpw[3] = {NULL, NULL, NULL};
    static const char *const rpw_names[3] = {"1", "2", "4"};
    for (int k = 0; k < 3; k++) {
        setenv("MLXE_CUDA_MATVEC_RPW", rpw_names[k], 1);
        if (mlxe_device_create_cuda(0, &dev_rpw[k], &err) != MLXE_OK) return 1;
    }
    unsetenv("MLXE_CUDA_MATVEC_RPW");
    /* the float-activation one-token kernels for 4/8-bit weights (version 4),
     * beside the default int8 activations (version 5) */
    mlxe_device *dev_float = NULL;
    if (mlxe_device_create_cuda(0, &dev_float, &err) != MLXE_OK) return 1;
    mlxe_cuda_state_of(dev_float)->quantized_activations = 2;
    mlxe_cuda_state_of(dev)->quantized_activations = 1;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    make_random_block();
    printf("GPU: %s (%d SMs, compute capability %d.%d, %zu MiB)\n", state->gpu_name, state->sm_count,
           state->cc_major, state->cc_minor, state->total_memory >> 20);
    double copy_gbs = copy_bandwidth(state);
    printf("device-to-device copy: %.0f GB/s (bytes read + written; the decode roofline below)\n\n", copy_gbs);

    const int64_t max_rows = 512, max_cols = 14336, max_out = 128256;
    /* activations: finite floats in [-1, 1] */
    float *x = NULL, *y = NULL;
    size_t n_x = (size_t)(max_rows * max_cols);
    float *x_host = malloc(n_x * 4);
    for (size_t i = 0; i < n_x; i++) x_host[i] = (float)((int)(i * 2654435761u % 2001) - 1000) * 1e-3f;
    cudaMalloc((void **)&x, n_x * 4);
    cudaMemcpy(x, x_host, n_x * 4, cudaMemcpyHostToDevice);
    free(x_host);
    cudaMalloc((void **)&y, (size_t)(max_rows * max_out) * 4);
    if (prefill_only) {
        prefill_comparison(dev, copy_gbs, x, y);
        goto done;
    }

    /* ---- decode ---- */
    static const shape decode_shapes[] = {
        {"8B q/o 4096x4096", 4096, 4096},      {"8B gate/up 14336x4096", 14336, 4096},
        {"8B down 4096x14336", 4096, 14336},   {"8B lm_head 128256x4096", 128256, 4096},
        {"1B q/o 2048x2048", 2048, 2048},      {"1B gate/up 8192x2048", 8192, 2048},
        {"1B k/v 512x2048", 512, 2048},
    };
    struct { mlxe_dtype dtype; int bits, group; } formats[] = {
        {MLXE_DTYPE_BF16, 0, 0}, {MLXE_DTYPE_F16, 0, 0}, {MLXE_DTYPE_U32, 8, 64}, {MLXE_DTYPE_U32, 4, 64},
        {MLXE_DTYPE_U32, 4, 32}, {MLXE_DTYPE_U32, 8, 32},
    };
    int n_shapes = quick ? 3 : (int)(sizeof decode_shapes / sizeof decode_shapes[0]);
    printf("decode (1 token): matrix-vector kernels per call in a graph of 40 calls (min of 7 replays, us): version 3 "
           "(one row per warp), version 4 (float activations, R rows per warp forced, and its automatic choice), "
           "version 5 (4/8-bit: int8 activations, a quantization kernel and the dp4a product; also with the "
           "launches after each other, overlapped (the default on sm_90), each of the two kernels alone, and the best forced R rows per "
           "warp, S warps per row); GB/s and %% of copy from the default path (v5 for 4/8-bit, v4 auto for float) and "
           "from the v5 product alone\n");
    printf("| shape | weights | MB | v3 | v4 R=1 | v4 R=2 | v4 R=4 | v4 auto | v5 | v5 overlapped | v5 quantize | v5 product "
           "| v5 best (R,S) | GB/s | %% of copy | product %% of copy |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    static char sweep_lines[64][256];
    int n_sweep = 0;
    for (int s = 0; s < n_shapes; s++) {
        for (size_t f = 0; f < sizeof formats / sizeof formats[0]; f++) {
            if (decode_shapes[s].rows == 128256 && formats[f].dtype == MLXE_DTYPE_F16) continue;
            matrix_set set;
            make_set(&set, formats[f].dtype, formats[f].bits, formats[f].group, decode_shapes[s].rows,
                     decode_shapes[s].cols);
            float graph_v3, graph_float, rpw_min[3], unused;
            time_matmul_graph(dev_v3, &set, x, y, &graph_v3, &unused);
            for (int k = 0; k < 3; k++) time_matmul_graph(dev_rpw[k], &set, x, y, &rpw_min[k], &unused);
            time_matmul_graph(dev_float, &set, x, y, &graph_float, &unused);
            /* v5: after each other, overlapped (the default on sm_90), quantize only, product only */
            float v5[4] = {NAN, NAN, NAN, NAN};
            char best_text[48] = "–";
            if (formats[f].bits) {
                static const int variant_flags[4] = {MLXE_CUDA_INT8_SERIAL, MLXE_CUDA_INT8_OVERLAP,
                                                     MLXE_CUDA_INT8_QUANTIZE_ONLY, MLXE_CUDA_INT8_PRODUCT_ONLY};
                for (int k = 0; k < 4; k++) {
                    mlxe_cuda_int8_tuning(0, 0, variant_flags[k]);
                    time_matmul_graph(dev, &set, x, y, &v5[k], &unused);
                }
                /* every forced shape of the int8 kernel */
                static const int choices[4] = {1, 2, 4, 8};
                float best = INFINITY;
                int best_r = 0, best_s = 0;
                char line[256];
                int used = snprintf(line, sizeof line, "| %s | Q%d g%d | %.1f |", decode_shapes[s].name,
                                    formats[f].bits, formats[f].group, v5[0] * 1e3);
                for (int r = 0; r < 4; r++)
                    for (int k = 0; k < 3; k++) {
                        mlxe_cuda_int8_tuning(choices[r], choices[k], 0);
                        float t;
                        time_matmul_graph(dev, &set, x, y, &t, &unused);
                        if (t < best) {
                            best = t;
                            best_r = choices[r];
                            best_s = choices[k];
                        }
                        if (used < (int)sizeof line)
                            used += snprintf(line + used, sizeof line - (size_t)used, " %.1f |", t * 1e3);
                    }
                mlxe_cuda_int8_tuning(0, 0, 0);
                if (n_sweep < 64) snprintf(sweep_lines[n_sweep++], sizeof sweep_lines[0], "%s", line);
                snprintf(best_text, sizeof best_text, "%.1f (%d,%d)", best * 1e3, best_r, best_s);
            }
            const float chosen = formats[f].bits ? v5[0] : graph_float;
            double gbs = (double)set.bytes / (chosen * 1e-3) / 1e9;
            double product_gbs = (double)set.bytes / (v5[3] * 1e-3) / 1e9;
            char name[32], v5_text[4][16], product_text[16] = "–";
            for (int k = 0; k < 4; k++) {
                if (formats[f].bits) snprintf(v5_text[k], sizeof v5_text[k], "%.1f", v5[k] * 1e3);
                else snprintf(v5_text[k], sizeof v5_text[k], "–");
            }
            if (formats[f].bits) snprintf(product_text, sizeof product_text, "%.0f%%", 100.0 * product_gbs / copy_gbs);
            printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s | %s | %s | %s | %s | %.0f | %.0f%% | %s |\n",
                   decode_shapes[s].name,
                   format_name(formats[f].dtype, formats[f].bits, formats[f].group, name, sizeof name),
                   (double)set.bytes / 1e6, graph_v3 * 1e3, rpw_min[0] * 1e3, rpw_min[1] * 1e3, rpw_min[2] * 1e3,
                   graph_float * 1e3, v5_text[0], v5_text[1], v5_text[2], v5_text[3], best_text, gbs,
                   100.0 * gbs / copy_gbs, product_text);
            fflush(stdout);
            free_set(&set);
        }
    }
    printf("\nversion 5 (int8 activations), every forced R (rows per warp), S (warps per row), us per call in a graph\n");
    printf("| shape | weights | auto | R1 S1 | R1 S2 | R1 S4 | R2 S1 | R2 S2 | R2 S4 | R4 S1 | R4 S2 | R4 S4 | R8 S1 | "
           "R8 S2 | R8 S4 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_sweep; i++) printf("%s\n", sweep_lines[i]);

    /* ---- the decode ops of a layer, float vs int8 activations ---- */
    printf("\ndecode ops of one layer (1 token, us per op in a graph of 40, min of 7 replays; 'norm': the RMSNorm "
           "of the input included, as the models call them): version 4 (float activations; for 4/8-bit the norm is "
           "its own kernel) against version 5 (int8 activations, the norm folded into the quantization kernel; also "
           "with R = 4 rows per warp and S = 1 or 2 warps per row forced, and with the product's start "
           "overlapped)\n");
    printf("| model | weights | op | v4 us | v5 us | v5 R4 S1 | v5 R4 S2 | v5 overlapped | gain (v4 / v5) "
           "|\n|---|---|---|---|---|---|---|---|---|\n");
    static const struct { const char *model; int64_t hidden, q, kv, ffn; } layer_shapes[] = {
        {"8B", 4096, 4096, 1024, 14336}, {"1B", 2048, 2048, 512, 8192}};
    static const int layer_bits[] = {8, 4};
    for (int l = 0; l < 2; l++) {
        for (int b = 0; b < 2; b++) {
            const int bits = layer_bits[b];
            matrix_set q, k, o, gate, up, down;
            make_set(&q, MLXE_DTYPE_U32, bits, 64, layer_shapes[l].q, layer_shapes[l].hidden);
            make_set(&k, MLXE_DTYPE_U32, bits, 64, layer_shapes[l].kv, layer_shapes[l].hidden);
            make_set(&o, MLXE_DTYPE_U32, bits, 64, layer_shapes[l].hidden, layer_shapes[l].q);
            make_set(&gate, MLXE_DTYPE_U32, bits, 64, layer_shapes[l].ffn, layer_shapes[l].hidden);
            make_set(&up, MLXE_DTYPE_U32, bits, 64, layer_shapes[l].ffn, layer_shapes[l].hidden);
            make_set(&down, MLXE_DTYPE_U32, bits, 64, layer_shapes[l].hidden, layer_shapes[l].ffn);
            mlxe_vector norm = {.dtype = MLXE_DTYPE_BF16, .size = layer_shapes[l].hidden,
                                .data = random_device((size_t)layer_shapes[l].hidden * 2)};
            const layer_op layer[] = {
                {"q/k/v + norm (matmul_multi)", OP_MULTI, &q, &k, &k, &norm},
                {"o + residual (matmul_add)", OP_ADD, &o, NULL, NULL, NULL},
                {"gate/up + norm (matmul_swiglu)", OP_SWIGLU, &gate, &up, NULL, &norm},
                {"down + residual (matmul_add)", OP_ADD, &down, NULL, NULL, NULL},
            };
            /* v4, v5 after each other, R4 S1, R4 S2 (after each other), overlapped (the default) */
            static const int layer_r[4] = {0, 4, 4, 0}, layer_s[4] = {0, 1, 2, 0};
            static const int layer_flags[4] = {MLXE_CUDA_INT8_SERIAL, MLXE_CUDA_INT8_SERIAL, MLXE_CUDA_INT8_SERIAL,
                                               MLXE_CUDA_INT8_OVERLAP};
            double sums[5] = {0, 0, 0, 0, 0};
            for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++) {
                double t[5];
                t[0] = time_layer_op(dev_float, &layer[i], x, y);
                for (int v = 0; v < 4; v++) {
                    mlxe_cuda_int8_tuning(layer_r[v], layer_s[v], layer_flags[v]);
                    t[v + 1] = time_layer_op(dev, &layer[i], x, y);
                }
                mlxe_cuda_int8_tuning(0, 0, 0);
                for (int v = 0; v < 5; v++) sums[v] += t[v];
                printf("| %s | Q%d g64 | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx |\n", layer_shapes[l].model, bits,
                       layer[i].name, t[0], t[1], t[2], t[3], t[4], t[0] / t[1]);
            }
            printf("| %s | Q%d g64 | the four | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx |\n", layer_shapes[l].model,
                   bits, sums[0], sums[1], sums[2], sums[3], sums[4], sums[0] / sums[1]);
            fflush(stdout);
            cudaFree((void *)norm.data);
            free_set(&q);
            free_set(&k);
            free_set(&o);
            free_set(&gate);
            free_set(&up);
            free_set(&down);
        }
    }

    if (decode_only) goto done;

    /* ---- small batches: matvec vs GEMM ---- */
    printf("\nsmall batches, 8B gate/up 14336x4096: matrix-vector kernels (8 tokens per pass) vs GEMM\n");
    printf("| weights | tokens | matvec us | GEMM us |\n|---|---|---|---|\n");
    for (size_t f = 0; f < 4; f++) {
        if (formats[f].dtype == MLXE_DTYPE_F16) continue;
        matrix_set set;
        make_set(&set, formats[f].dtype, formats[f].bits, formats[f].group, 14336, 4096);
        static const int64_t counts[] = {2, 4, 8, 16, 32, 64};
        for (int c = 0; c < 6; c++) {
            state->matvec_max_rows = state->float_matvec_max_rows = 1 << 30;
            float mv = time_matmul(dev, &set, x, counts[c], y, 40);
            state->matvec_max_rows = state->float_matvec_max_rows = 0;
            float gm = time_matmul(dev, &set, x, counts[c], y, 40);
            char name[32];
            printf("| %s | %lld | %.1f | %.1f |\n", format_name(formats[f].dtype, formats[f].bits, formats[f].group, name, sizeof name),
                   (long long)counts[c], mv * 1e3, gm * 1e3);
        }
        state->matvec_max_rows = 8;
        state->float_matvec_max_rows = 1;
        free_set(&set);
    }

    /* ---- prefill ---- */
    static const shape prefill_shapes[] = {
        {"8B q/o 4096x4096", 4096, 4096}, {"8B gate/up 14336x4096", 14336, 4096}, {"8B down 4096x14336", 4096, 14336},
        {"1B gate/up 8192x2048", 8192, 2048},
    };
    printf("\nprefill (512 tokens): cuBLAS\n");
    printf("| shape | weights | path | ms | TFLOP/s |\n|---|---|---|---|---|\n");
    for (int s = 0; s < (quick ? 2 : 4); s++) {
        struct { mlxe_dtype dtype; int bits, group; mlxe_device *d; const char *path; } runs[] = {
            {MLXE_DTYPE_BF16, 0, 0, dev, "BF16 activations, tensor cores"},
            {MLXE_DTYPE_BF16, 0, 0, dev_f32, "weights widened to F32, SGEMM"},
            {MLXE_DTYPE_F16, 0, 0, dev, "F16 activations, tensor cores"},
            {MLXE_DTYPE_F32, 0, 0, dev, "F32 SGEMM"},
            {MLXE_DTYPE_U32, 8, 64, dev, "expanded to BF16, tensor cores"},
            {MLXE_DTYPE_U32, 4, 64, dev, "expanded to BF16, tensor cores"},
        };
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            matrix_set set;
            make_set(&set, runs[r].dtype, runs[r].bits, runs[r].group, prefill_shapes[s].rows, prefill_shapes[s].cols);
            float ms = time_matmul(runs[r].d, &set, x, max_rows, y, 20);
            double flops = 2.0 * (double)max_rows * (double)prefill_shapes[s].rows * (double)prefill_shapes[s].cols;
            char name[32];
            printf("| %s | %s | %s | %.3f | %.1f |\n", prefill_shapes[s].name,
                   format_name(runs[r].dtype, runs[r].bits, runs[r].group, name, sizeof name), runs[r].path, ms,
                   flops / (ms * 1e-3) / 1e12);
            free_set(&set);
        }
    }

    /* ---- attention ---- */
    printf("\nattention\n| case | ms | bandwidth |\n|---|---|---|\n");
    time_attention(dev, 1, 4096, copy_gbs, 0);
    time_attention(dev, 1, 32768, copy_gbs, 0);
    time_attention(dev, 4, 4096, copy_gbs, 0);
    for (int mode = 1; mode <= 2; mode++) {
        time_attention(dev, 512, 512, copy_gbs, mode);
        if (!quick) time_attention(dev, 2048, 2048, copy_gbs, mode);
    }
    state->attention_mode = 0;

    /* ---- whole model steps ---- */
    static const model_shape models[] = {
        {"Llama-3.2-1B shape", 2048, 32, 8, 64, 8192, 16, 128256},
        {"Llama-3.1-8B shape", 4096, 32, 8, 128, 14336, 32, 128256},
    };
    printf("\nmodel steps through the ops, random weights, no CUDA graph: decode 1 token at position 512 (median of "
           "21), prefill 512 tokens (median of 5)\n");
    printf("| model | weights | GB | decode ms | decode tok/s | weight GB/s (of copy) | prefill ms | prefill tok/s "
           "|\n|---|---|---|---|---|---|---|---|\n");
    for (int m = 0; m < (quick ? 1 : 2); m++) {
        model_step(dev, &models[m], MLXE_DTYPE_BF16, 0, 0, copy_gbs, 512);
        model_step(dev, &models[m], MLXE_DTYPE_U32, 8, 64, copy_gbs, 512);
        model_step(dev, &models[m], MLXE_DTYPE_U32, 4, 64, copy_gbs, 512);
    }

done: /* every mode ends here */
    cudaFree(x);
    cudaFree(y);
    free(random_block);
    mlxe_device_free(dev_f32);
    mlxe_device_free(dev_v3);
    mlxe_device_free(dev_float);
    for (int k = 0; k < 3; k++) mlxe_device_free(dev_rpw[k]);
    mlxe_device_free(dev);
    return 0;
}
#else
int main(void) {
    printf("bench_cuda_ops: this build has no CUDA backend (configure with -DMLXE_CUDA=ON where nvcc is installed)\n");
    return 0;
}
#endif
