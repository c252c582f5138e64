/* bench/model_harness.h — the end-to-end speed harness of a model folder,
 * shared by `mlxengine bench` (tools/mlxengine/cmd_bench.c) and the
 * executable mlxe-bench-model (bench/bench_model.c): load time, prefill
 * tokens/s over a prompt, decode tokens/s over generated tokens, peak RSS.
 * Prompts are seeded random ids, generation is greedy with EOS ignored, so
 * every run does the same work.
 *
 *   PROGRAM --model DIR [--prompt-tokens 128] [--gen-tokens 64]
 *           [--threads N] [--repeat 3] [--ubatch 128]
 *
 * The table has one column per engine; this harness fills the mlxengine
 * column (best of --repeat runs for the rates); bench/llamacpp/compare.py
 * puts llama.cpp's numbers beside it. Random-weight folders of real shapes:
 * bench/make_random_model.py. Header-only (static functions) so both
 * programs compile it without a library of their own. */
#ifndef MLXE_BENCH_MODEL_HARNESS_H
#define MLXE_BENCH_MODEL_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "mlxengine/mlxengine.h"

static void bench_harness_usage(const char *program, FILE *out) {
    fprintf(out, "usage: %s --model DIR [--prompt-tokens N] [--gen-tokens N] [--threads N]\n"
                 "       [--repeat N] [--ubatch N]\n"
                 "Prints load time, prefill and decode tokens/s (best of --repeat) and peak RSS.\n", program);
}

static double bench_harness_peak_rss_mb(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_maxrss / 1024.0; /* Linux reports KiB */
}

/* Runs the harness on argv[1..]; returns the exit code (0, 1 failure, 2 usage). */
static int bench_harness_main(const char *program, int argc, char **argv) {
    const char *model_dir = NULL;
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
    mlxe_error err;
    mlxe_model_options model_options;
    mlxe_model_options_init(&model_options);
    model_options.n_threads = (int)threads;
    mlxe_model *model = NULL;
    if (mlxe_model_load(model_dir, &model_options, &model, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    mlxe_context_options context_options;
    mlxe_context_options_init(&context_options);
    context_options.n_ctx = prompt_tokens + gen_tokens;
    context_options.n_batch = ubatch;
    context_options.n_ubatch = ubatch;
    mlxe_context *ctx = NULL;
    if (mlxe_context_create(model, &context_options, &ctx, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        mlxe_model_free(model);
        return 1;
    }
    int32_t *prompt = malloc((size_t)prompt_tokens * sizeof *prompt);
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
    double best_prefill = 0, best_decode = 0;
    int exit_code = 0;
    for (long r = 0; r < repeat; r++) {
        mlxe_generate_stats stats;
        if (mlxe_generate(ctx, prompt, prompt_tokens, &options, NULL, NULL, NULL, &stats, &err) != MLXE_OK) {
            fprintf(stderr, "%s: %s\n", program, err.message);
            exit_code = 1;
            break;
        }
        if (stats.prefill_tokens_per_second > best_prefill) best_prefill = stats.prefill_tokens_per_second;
        if (stats.decode_tokens_per_second > best_decode) best_decode = stats.decode_tokens_per_second;
    }

    if (exit_code != 0) {
        free(prompt);
        mlxe_context_free(ctx);
        mlxe_model_free(model);
        return exit_code;
    }
    printf("model: %s (%s, %.0f MB of weights), device %s, context %.0f MB\n", model_dir, mlxe_model_type(model),
           (double)mlxe_model_weight_bytes(model) / 1048576.0, mlxe_model_device_name(model),
           (double)mlxe_context_memory_bytes(ctx) / 1048576.0);
    printf("| %-28s | %12s |\n", "metric", "mlxengine");
    printf("| %-28s | %12s |\n", "----------------------------", "------------");
    printf("| %-28s | %12.3f |\n", "load time (s)", mlxe_model_load_seconds(model));
    char label[64];
    snprintf(label, sizeof label, "prefill tok/s (%ld tokens)", prompt_tokens);
    printf("| %-28s | %12.1f |\n", label, best_prefill);
    snprintf(label, sizeof label, "decode tok/s (%ld tokens)", gen_tokens);
    printf("| %-28s | %12.2f |\n", label, best_decode);
    printf("| %-28s | %12.1f |\n", "peak RSS (MB)", bench_harness_peak_rss_mb());
    free(prompt);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    return 0;
}

#endif
