/* bench/cpu_attention.c — the CPU attention op (ops->attention,
 * src/runtime/cpu/cpu_attention.c) for one decode token, as a model calls it
 * once per layer: --layers separate caches used in turn (24 x the shape's
 * cache is larger than the L3, so the cache comes from memory as in a decode
 * step), a context of --context positions. Prints min and median
 * microseconds per call and the cache bytes read per second at the minimum,
 * per shape (Qwen2.5-0.5B: 14 heads over 2 kv heads of 64; Llama-3.2-1B:
 * 32 over 8 of 64; Llama-3.1-8B: 32 over 8 of 128). Build it against two
 * trees and alternate the runs to compare implementations.
 *
 *   bench_cpu_attention [--threads N] [--context N] [--layers N] [--runs N]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/device.h"
#include "runtime/ops.h"
#include "bench_clock.h"

typedef struct shape {
    const char *name;
    int64_t n_heads, n_kv_heads, head_dim;
} shape;

static const shape shapes[] = {
    {"qwen2.5-0.5b (14/2 x 64)", 14, 2, 64},
    {"llama-3.2-1b (32/8 x 64)", 32, 8, 64},
    {"llama-3.1-8b (32/8 x 128)", 32, 8, 128},
};

int main(int argc, char **argv) {
    int threads = 2, context = 2048, layers = 24, runs = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        int value = atoi(argv[i + 1]);
        if (strcmp(argv[i], "--threads") == 0) threads = value;
        else if (strcmp(argv[i], "--context") == 0) context = value;
        else if (strcmp(argv[i], "--layers") == 0) layers = value;
        else if (strcmp(argv[i], "--runs") == 0) runs = value;
        else {
            fprintf(stderr, "usage: %s [--threads N] [--context N] [--layers N] [--runs N]\n", argv[0]);
            return 2;
        }
    }
    if (threads < 1 || context < 1 || layers < 1 || runs < 1) {
        fprintf(stderr, "%s: every value must be a positive number\n", argv[0]);
        return 2;
    }
    mlxe_device *dev = NULL;
    mlxe_error err;
    if (mlxe_device_create_cpu(threads, &dev, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", argv[0], err.message);
        return 1;
    }
    const mlxe_ops *ops = mlxe_device_ops(dev);
    printf("device %s, %d thread%s, context %d, %d layers' caches in turn, %d runs\n\n", ops->name, threads,
           threads == 1 ? "" : "s", context, layers, runs);
    printf("| shape | min us per call | median us | cache GB/s at min |\n| --- | ---: | ---: | ---: |\n");
    double *times = malloc((size_t)runs * sizeof(double));
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0] && times; s++) {
        const shape *sh = &shapes[s];
        const size_t layer_floats = (size_t)(sh->n_kv_heads * context * sh->head_dim);
        float *k = NULL, *v = NULL, *q = NULL, *out = NULL;
        const size_t q_bytes = (size_t)(sh->n_heads * sh->head_dim) * sizeof(float);
        if (ops->alloc(dev, layer_floats * (size_t)layers * sizeof(float), (void **)&k, &err) != MLXE_OK ||
            ops->alloc(dev, layer_floats * (size_t)layers * sizeof(float), (void **)&v, &err) != MLXE_OK ||
            ops->alloc(dev, q_bytes, (void **)&q, &err) != MLXE_OK ||
            ops->alloc(dev, q_bytes, (void **)&out, &err) != MLXE_OK) {
            fprintf(stderr, "%s: %s\n", argv[0], err.message);
            ops->free(dev, k);
            ops->free(dev, v);
            ops->free(dev, q);
            break;
        }
        for (size_t i = 0; i < layer_floats * (size_t)layers; i++) {
            k[i] = sinf((float)(i % 9973) * 0.01f);
            v[i] = cosf((float)(i % 9967) * 0.013f);
        }
        for (int64_t i = 0; i < sh->n_heads * sh->head_dim; i++) q[i] = sinf((float)i * 0.3f);
        const int32_t slot = 0, position = context - 1;
        for (int r = 0; r < runs; r++) {
            const int calls = 4 * layers;
            double start = bench_now_seconds();
            for (int c = 0; c < calls; c++) {
                const size_t layer = (size_t)(c % layers);
                mlxe_attention_args args = {.n_rows = 1, .n_heads = sh->n_heads, .n_kv_heads = sh->n_kv_heads,
                                            .head_dim = sh->head_dim, .q = q, .k_cache = k + layer * layer_floats,
                                            .v_cache = v + layer * layer_floats, .capacity = context,
                                            .slots = &slot, .positions = &position,
                                            .scale = 1.0f / sqrtf((float)sh->head_dim), .out = out};
                ops->attention(dev, &args);
            }
            times[r] = (bench_now_seconds() - start) / calls * 1e6;
        }
        qsort(times, (size_t)runs, sizeof(double), bench_compare_doubles);
        printf("| %s | %.1f | %.1f | %.1f |\n", sh->name, times[0], times[runs / 2],
               2.0 * (double)layer_floats * sizeof(float) / (times[0] * 1e3));
        ops->free(dev, k);
        ops->free(dev, v);
        ops->free(dev, q);
        ops->free(dev, out);
    }
    free(times);
    mlxe_device_free(dev);
    return 0;
}
