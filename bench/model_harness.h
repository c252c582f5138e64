/* bench/model_harness.h — the end-to-end speed harness of a model folder,
 * shared by `mlxengine bench` (tools/mlxengine/cmd_bench.c) and the
 * executable mlxe-bench-model (bench/bench_model.c): load time, prefill
 * tokens/s over a prompt, decode tokens/s over generated tokens, model
 * memory and peak RSS. Prompts are seeded random ids, generation is greedy
 * with EOS ignored, so every run does the same work.
 *
 *   PROGRAM --model DIR [--prompt-tokens 128] [--gen-tokens 64]
 *           [--threads N] [--repeat 3] [--ubatch 128] [--device cpu,cuda]
 *
 * The table has one column per device (--device takes a comma-separated
 * list: cpu, cuda, cuda:N, auto, measured one after the other; best of
 * --repeat runs for the rates); bench/llamacpp/compare.py puts llama.cpp's
 * numbers beside ours. Random-weight folders of real shapes:
 * bench/make_random_model.py. Header-only (static functions) so both
 * programs compile it without a library of their own. */
#ifndef MLXE_BENCH_MODEL_HARNESS_H
#define MLXE_BENCH_MODEL_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mlxengine/mlxengine.h"

static void bench_harness_usage(const char *program, FILE *out) {
    fprintf(out, "usage: %s --model DIR [--prompt-tokens N] [--gen-tokens N] [--threads N]\n"
                 "       [--repeat N] [--ubatch N] [--device cpu,cuda,...]\n"
                 "Prints load time, prefill and decode tokens/s (best of --repeat), model memory and peak RSS.\n",
            program);
}

static double bench_harness_peak_rss_mb(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0; /* Linux reports KiB */
}

#define BENCH_MAX_DEVICES 8

typedef struct bench_column {
    char device[32];
    char name[48];
    bool ok;
    double load_seconds, prefill, decode, model_mb, context_mb;
} bench_column;

/* Loads the model on col->device and runs the generation `repeat` times. */
static void bench_measure(const char *program, const char *model_dir, long prompt_tokens, long gen_tokens, long threads, long repeat, long ubatch,
                    bench_column *col) {
    mlxe_error err;
    mlxe_model_options model_options;
    mlxe_model_options_init(&model_options);
    model_options.n_threads = (int)threads;
    model_options.device = col->device;
    mlxe_model *model = NULL;
    if (mlxe_model_load(model_dir, &model_options, &model, &err) != MLXE_OK) {
        fprintf(stderr, "%s (%s): %s\n", program, col->device, err.message);
        return;
    }
    snprintf(col->name, sizeof col->name, "%.40s", mlxe_model_device_name(model));
    mlxe_context_options context_options;
    mlxe_context_options_init(&context_options);
    context_options.n_ctx = prompt_tokens + gen_tokens;
    context_options.n_batch = ubatch;
    context_options.n_ubatch = ubatch;
    mlxe_context *ctx = NULL;
    if (mlxe_context_create(model, &context_options, &ctx, &err) != MLXE_OK) {
        fprintf(stderr, "%s (%s): %s\n", program, col->device, err.message);
        mlxe_model_free(model);
        return;
    }
    int32_t *prompt = malloc((size_t)prompt_tokens * sizeof *prompt);
    if (!prompt) {
        mlxe_context_free(ctx);
        mlxe_model_free(model);
        return;
    }
    uint64_t state = 42;
    int64_t vocab = mlxe_model_vocab_size(model);
    for (long i = 0; i < prompt_tokens; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        prompt[i] = (int32_t)((state >> 33) % (uint64_t)vocab);
    }
    mlxe_generate_options options;
    mlxe_generate_options_init(&options);
    options.max_tokens = gen_tokens;
    options.ignore_eos = true;
    col->ok = true;
    for (long r = 0; r < repeat; r++) {
        mlxe_generate_stats stats;
        if (mlxe_generate(ctx, prompt, prompt_tokens, &options, NULL, NULL, NULL, &stats, &err) != MLXE_OK) {
            fprintf(stderr, "%s (%s): %s\n", program, col->device, err.message);
            col->ok = false;
            break;
        }
        if (stats.prefill_tokens_per_second > col->prefill) col->prefill = stats.prefill_tokens_per_second;
        if (stats.decode_tokens_per_second > col->decode) col->decode = stats.decode_tokens_per_second;
    }
    col->load_seconds = mlxe_model_load_seconds(model);
    col->model_mb = (double)mlxe_model_memory_bytes(model) / 1048576.0;
    col->context_mb = (double)mlxe_context_memory_bytes(ctx) / 1048576.0;
    printf("model: %s (%s, %.0f MB of weights), device %s, context %.0f MB\n", model_dir, mlxe_model_type(model),
           (double)mlxe_model_weight_bytes(model) / 1048576.0, col->name, col->context_mb);
    free(prompt);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
}

static void bench_print_row(const char *label, const bench_column *cols, int n, int which, const char *format) {
    printf("| %-28s |", label);
    for (int c = 0; c < n; c++) {
        double value = which == 0 ? cols[c].load_seconds : which == 1 ? cols[c].prefill : which == 2 ? cols[c].decode
                                                                       : cols[c].model_mb;
        char cell[32];
        if (cols[c].ok)
            snprintf(cell, sizeof cell, format, value);
        else
            snprintf(cell, sizeof cell, "failed");
        printf(" %14s |", cell);
    }
    printf("\n");
}

/* Runs the harness on argv[1..]; returns the exit code (0, 1 failure, 2 usage). */
static int bench_harness_main(const char *program, int argc, char **argv) {
    const char *model_dir = NULL, *devices = "cpu";
    long prompt_tokens = 128, gen_tokens = 64, threads = 0, repeat = 3, ubatch = 128;
    for (int i = 1; i < argc; i++) {
        long *target = NULL;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            bench_harness_usage(program, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) {
            model_dir = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            devices = argv[++i];
            continue;
        }
        if (strcmp(argv[i], "--prompt-tokens") == 0) target = &prompt_tokens;
        else if (strcmp(argv[i], "--gen-tokens") == 0) target = &gen_tokens;
        else if (strcmp(argv[i], "--threads") == 0) target = &threads;
        else if (strcmp(argv[i], "--repeat") == 0) target = &repeat;
        else if (strcmp(argv[i], "--ubatch") == 0) target = &ubatch;
        char *end = NULL;
        if (!target || i + 1 >= argc || (*target = strtol(argv[++i], &end, 10), *end) || *target < 0) {
            bench_harness_usage(program, stderr);
            return 2;
        }
    }
    if (!model_dir || prompt_tokens < 1 || repeat < 1 || ubatch < 1) {
        bench_harness_usage(program, stderr);
        return 2;
    }
    /* MLXE_LOG=debug shows the library's log (which GPU, which kernels) */
    mlxe_log_set_level_all(MLXE_LOG_WARN);
    mlxe_error log_err;
    if (mlxe_log_configure_from_env(&log_err) != MLXE_OK) fprintf(stderr, "%s: %s\n", program, log_err.message);
    mlxe_log_set_stderr(true);
    bench_column cols[BENCH_MAX_DEVICES];
    memset(cols, 0, sizeof cols);
    int n_cols = 0;
    for (const char *p = devices; *p && n_cols < BENCH_MAX_DEVICES;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof cols[0].device) {
            bench_harness_usage(program, stderr);
            return 2;
        }
        memcpy(cols[n_cols].device, p, len);
        memcpy(cols[n_cols].name, cols[n_cols].device, len + 1);
        n_cols++;
        p += len;
        if (*p == ',') p++;
    }
    for (int c = 0; c < n_cols; c++)
        bench_measure(program, model_dir, prompt_tokens, gen_tokens, threads, repeat, ubatch, &cols[c]);

    printf("| %-28s |", "metric");
    for (int c = 0; c < n_cols; c++) {
        char header[64];
        snprintf(header, sizeof header, "mlxe %.40s", cols[c].name);
        printf(" %14s |", header);
    }
    printf("\n| ---------------------------- |");
    for (int c = 0; c < n_cols; c++) printf(" -------------- |");
    printf("\n");
    char label[64];
    bench_print_row("load time (s)", cols, n_cols, 0, "%.3f");
    snprintf(label, sizeof label, "prefill tok/s (%ld tokens)", prompt_tokens);
    bench_print_row(label, cols, n_cols, 1, "%.1f");
    snprintf(label, sizeof label, "decode tok/s (%ld tokens)", gen_tokens);
    bench_print_row(label, cols, n_cols, 2, "%.2f");
    bench_print_row("model memory (MB)", cols, n_cols, 3, "%.0f");
    printf("| %-28s | %14.1f |\n", "peak RSS (MB)", bench_harness_peak_rss_mb()); /* the whole process */
    int failed = 0;
    for (int c = 0; c < n_cols; c++) failed += !cols[c].ok;
    return failed ? 1 : 0;
}

#endif
