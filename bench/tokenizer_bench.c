/* bench/tokenizer_bench.c — the C side of bench/tokenizer_bench.mjs (built
 * as build/bench/bench_tokenizer_bench):
 * load time of a tokenizer folder (best of LOADS runs) and single-threaded
 * encode throughput over a text file, one encode call per paragraph
 * (blank-line separated), best of 3 passes. Prints one JSON line.
 * usage: tokenizer_bench MODEL_DIR TEXT_FILE [LOADS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/file.h"
#include "mlxengine/tokenizer.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL_DIR TEXT_FILE [LOADS]\n", argv[0]);
        return 2;
    }
    int loads = argc > 3 ? atoi(argv[3]) : 3;
    mlxe_error err;
    mlxe_tokenizer *tk = NULL;
    double best_load = 1e30;
    for (int i = 0; i < loads; i++) {
        double t0 = now_ms();
        if (mlxe_tokenizer_load(argv[1], &tk, &err) != MLXE_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t = now_ms() - t0;
        if (t < best_load) best_load = t;
        if (i + 1 < loads) mlxe_tokenizer_free(tk);
    }
    char *text = NULL;
    size_t size = 0;
    if (mlxe_file_read_all(argv[2], 1u << 30, &text, &size, &err) != MLXE_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    options.parse_special_tokens = true; /* as @huggingface/tokenizers does */
    double best_encode = 1e30;
    size_t n_tokens = 0;
    for (int pass = 0; pass < 3; pass++) {
        n_tokens = 0;
        double t0 = now_ms();
        const char *p = text, *end = text + size;
        while (p < end) {
            const char *q = memmem(p, (size_t)(end - p), "\n\n", 2);
            const char *stop = q ? q + 2 : end;
            ids.count = 0;
            if (mlxe_tokenizer_encode(tk, p, (size_t)(stop - p), &options, &ids, &err) != MLXE_OK) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
            }
            n_tokens += ids.count;
            p = stop;
        }
        double t = now_ms() - t0;
        if (t < best_encode) best_encode = t;
    }
    printf("{\"load_ms\": %.1f, \"encode_ms\": %.1f, \"mb_per_s\": %.2f, \"tokens\": %zu}\n", best_load, best_encode,
           size / 1e6 / (best_encode / 1e3), n_tokens);
    mlxe_token_list_free(&ids);
    free(text);
    mlxe_tokenizer_free(tk);
    return 0;
}
