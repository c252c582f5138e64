/* bench/runtime_matmul.c — throughput of the CPU matmul op on a 4096×4096
 * weight matrix: decode (1 token, memory-bound) and prefill (64 tokens,
 * compute-bound) for F32, F16 and BF16 weights and 4/8-bit MLX quantized, with
 * the AVX-512 (also with int8 activations), AVX2 and portable kernels side
 * by side (those this processor runs).
 *
 *   bench_runtime_matmul [--threads N] [--size N] [--prefill-rows N] [--seconds S]
 *
 * GFLOP/s counts 2 * tokens * rows * cols; GB/s counts the weight bytes read
 * once per call (what bounds decode). Each cell is the best of repeated calls
 * over about --seconds, after a warm-up call. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/half.h"
#include "runtime/device.h"
#include "bench_clock.h"

static uint64_t rng_state = 12345;
static float random_float(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) * 0x1p-53) * 2.0f - 1.0f;
}

typedef struct weights {
    const char *label;
    mlxe_matrix matrix;
    size_t bytes;
    void *data, *scales, *biases;
} weights;

static int make_weights(weights *w, const char *label, mlxe_dtype dtype, int bits, int64_t n) {
    memset(w, 0, sizeof *w);
    w->label = label;
    size_t count = (size_t)(n * n);
    if (bits) {
        const int group_size = 64;
        size_t groups = count / group_size;
        w->bytes = count * (size_t)bits / 8 + 2 * groups * sizeof(uint16_t);
        w->data = malloc(count * (size_t)bits / 8);
        w->scales = malloc(groups * sizeof(uint16_t));
        w->biases = malloc(groups * sizeof(uint16_t));
        if (!w->data || !w->scales || !w->biases) return -1;
        uint32_t *words = w->data;
        for (size_t i = 0; i < count * (size_t)bits / 32; i++) words[i] = (uint32_t)(random_float() * 4e9f);
        for (size_t g = 0; g < groups; g++) {
            ((uint16_t *)w->scales)[g] = mlxe_f32_to_bf16(0.01f);
            ((uint16_t *)w->biases)[g] = mlxe_f32_to_bf16(-0.08f);
        }
        w->matrix = (mlxe_matrix){.dtype = MLXE_DTYPE_U32, .rows = n, .cols = n, .data = w->data, .bits = bits,
                                  .group_size = group_size, .scale_dtype = MLXE_DTYPE_BF16, .scales = w->scales,
                                  .biases = w->biases};
        return 0;
    }
    size_t element = dtype == MLXE_DTYPE_F32 ? 4 : 2;
    w->bytes = count * element;
    w->data = malloc(w->bytes);
    if (!w->data) return -1;
    for (size_t i = 0; i < count; i++) {
        float f = random_float() * 0.05f;
        if (dtype == MLXE_DTYPE_F32) ((float *)w->data)[i] = f;
        else if (dtype == MLXE_DTYPE_F16) ((uint16_t *)w->data)[i] = mlxe_f32_to_f16(f);
        else ((uint16_t *)w->data)[i] = mlxe_f32_to_bf16(f);
    }
    w->matrix = (mlxe_matrix){.dtype = dtype, .rows = n, .cols = n, .data = w->data};
    return 0;
}

/* Best seconds per call over about `seconds` of repeated calls. */
static double time_matmul(mlxe_device *dev, const weights *w, const float *x, int64_t n_rows, float *y,
                          double seconds) {
    const mlxe_ops *ops = mlxe_device_ops(dev);
    ops->matmul(dev, x, n_rows, &w->matrix, y); /* warm-up */
    double best = INFINITY, start = bench_now_seconds();
    int calls = 0;
    while (calls < 3 || (bench_now_seconds() - start < seconds && calls < 1000)) {
        double t0 = bench_now_seconds();
        ops->matmul(dev, x, n_rows, &w->matrix, y);
        double elapsed = bench_now_seconds() - t0;
        if (elapsed < best) best = elapsed;
        calls++;
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = 0;
    int64_t n = 4096, prefill_rows = 64;
    double seconds = 1.0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) n = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--prefill-rows") && i + 1 < argc) prefill_rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--size N] [--prefill-rows N] [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    if (n < 64 || n % 64 || prefill_rows < 1) {
        fprintf(stderr, "--size must be a positive multiple of 64 and --prefill-rows positive\n");
        return 2;
    }
    weights all[5];
    if (make_weights(&all[0], "F32", MLXE_DTYPE_F32, 0, n) || make_weights(&all[1], "F16", MLXE_DTYPE_F16, 0, n) ||
        make_weights(&all[2], "BF16", MLXE_DTYPE_BF16, 0, n) || make_weights(&all[3], "Q4 g64", MLXE_DTYPE_U32, 4, n) ||
        make_weights(&all[4], "Q8 g64", MLXE_DTYPE_U32, 8, n)) {
        fprintf(stderr, "out of memory making %lldx%lld weights\n", (long long)n, (long long)n);
        return 1;
    }
    float *x = malloc((size_t)(prefill_rows * n) * sizeof(float));
    float *y = malloc((size_t)(prefill_rows * n) * sizeof(float));
    if (!x || !y) return 1;
    for (int64_t i = 0; i < prefill_rows * n; i++) x[i] = random_float();

    const char *kernel_sets[4];
    int n_sets = 0;
    if (mlxe_cpu_has_avx512()) {
        kernel_sets[n_sets++] = "avx512";
        kernel_sets[n_sets++] = "avx512-int8";
    }
    if (mlxe_cpu_has_avx2()) kernel_sets[n_sets++] = "avx2";
    kernel_sets[n_sets++] = "generic";
    mlxe_device *devices[4];
    for (int s = 0; s < n_sets; s++) {
        setenv("MLXE_CPU_KERNELS", kernel_sets[s], 1);
        mlxe_error err;
        if (mlxe_device_create_cpu(threads, &devices[s], &err) != MLXE_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    unsetenv("MLXE_CPU_KERNELS");
    printf("matmul %lldx%lld weights, %d thread(s), best of ~%.1f s per cell\n\n", (long long)n, (long long)n,
           mlxe_device_threads(devices[0]), seconds);
    printf("| weights | case | kernels | ms/call | GFLOP/s | weight GB/s |\n");
    printf("| --- | --- | --- | ---: | ---: | ---: |\n");
    for (int k = 0; k < 5; k++) {
        for (int c = 0; c < 2; c++) {
            int64_t rows = c == 0 ? 1 : prefill_rows;
            for (int s = 0; s < n_sets; s++) {
                double t = time_matmul(devices[s], &all[k], x, rows, y, seconds);
                double flops = 2.0 * (double)rows * (double)n * (double)n;
                printf("| %s | %s %lld | %s | %.2f | %.1f | %.1f |\n", all[k].label, c == 0 ? "decode" : "prefill",
                       (long long)rows, mlxe_device_name(devices[s]), t * 1e3, flops / t * 1e-9,
                       (double)all[k].bytes / t * 1e-9);
                fflush(stdout);
            }
        }
    }
    for (int s = 0; s < n_sets; s++) mlxe_device_free(devices[s]);
    for (int k = 0; k < 5; k++) {
        free(all[k].data);
        free(all[k].scales);
        free(all[k].biases);
    }
    free(x);
    free(y);
    return 0;
}
