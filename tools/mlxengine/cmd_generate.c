/* tools/mlxengine/cmd_generate.c — `mlxengine generate`: token ids in,
 * generated token ids out (stdout, space-separated, one line); or, with
 * --prompt TEXT, text in (encoded by the model's tokenizer as transformers'
 * encode does, special tokens added, no chat template) and the generated
 * text streamed out through the incremental detokenizer. Stats and logs go
 * to stderr. Greedy unless --temp is given. The model may be a folder, a
 * registry alias or a Hub id. The flags are a stable interface other
 * checks script against. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"
#include "memory_check.h"
#include "model_args.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mlxengine generate --model DIR --prompt-ids 1,2,3 --max-tokens N\n"
            "       mlxengine generate --model DIR --prompt TEXT --max-tokens N\n"
            "                          [--temp T] [--top-p P] [--top-k K] [--min-p M] [--seed S]\n"
            "                          [--repeat-penalty R] [--threads N] [--device D] [--force-load] [--print-ids]\n"
            "Prints the generated token ids on stdout (space-separated); an end-of-sequence id,\n"
            "when generated, is printed and ends the generation. With --prompt TEXT the text is\n"
            "tokenized (no chat template) and the generated text is streamed instead (--print-ids:\n"
            "the ids). DIR may also be a registry alias or a Hub id. Temperature 0 (greedy) by default.\n"
            "--device: cpu (default), cuda, cuda:N or auto (a GPU when usable, else the CPU).\n");
}

typedef struct print_state {
    int64_t count;
    mlxe_detokenizer *detokenizer; /* text mode */
    const int32_t *eos_ids;
    int n_eos_ids;
} print_state;

static bool print_token(void *user, int32_t token) {
    print_state *state = user;
    if (!state->detokenizer) {
        printf("%s%d", state->count++ ? " " : "", (int)token);
        fflush(stdout);
        return true;
    }
    for (int i = 0; i < state->n_eos_ids; i++)
        if (state->eos_ids[i] == token) return true; /* the end, not text */
    const char *piece = NULL;
    size_t size = 0;
    if (mlxe_detokenizer_push(state->detokenizer, token, &piece, &size, NULL) == MLXE_OK && size) {
        fwrite(piece, 1, size, stdout);
        fflush(stdout);
    }
    return true;
}

int cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *device = NULL, *prompt_text = NULL, *text_prompt = NULL, *value = NULL;
    bool print_ids = false;
    long long max_tokens = -1, top_k = 0, threads = 0;
    double temperature = 0, top_p = 1, min_p = 0, repeat_penalty = 1;
    uint64_t seed = MLXE_SEED_RANDOM;
    bool ok = true;
    for (int i = 1; i < argc && ok; i++) {
        int got;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--print-ids") == 0) {
            print_ids = true; /* --prompt-ids always prints ids */
        } else if ((got = tool_flag_value(argc, argv, &i, "--prompt", &value))) {
            ok = got > 0;
            text_prompt = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--model", &value))) {
            ok = got > 0;
            model_dir = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--prompt-ids", &value))) {
            ok = got > 0;
            prompt_text = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--max-tokens", &value))) {
            ok = got > 0 && tool_parse_int("--max-tokens", value, 0, 1 << 24, &max_tokens);
        } else if ((got = tool_flag_value(argc, argv, &i, "--temp", &value))) {
            ok = got > 0 && tool_parse_float("--temp", value, 0, 1e6, &temperature);
        } else if ((got = tool_flag_value(argc, argv, &i, "--top-p", &value))) {
            ok = got > 0 && tool_parse_float("--top-p", value, 1e-9, 1, &top_p);
        } else if ((got = tool_flag_value(argc, argv, &i, "--top-k", &value))) {
            ok = got > 0 && tool_parse_int("--top-k", value, 0, INT32_MAX, &top_k);
        } else if ((got = tool_flag_value(argc, argv, &i, "--min-p", &value))) {
            ok = got > 0 && tool_parse_float("--min-p", value, 0, 1, &min_p);
        } else if ((got = tool_flag_value(argc, argv, &i, "--seed", &value))) {
            ok = got > 0 && tool_parse_u64("--seed", value, &seed);
        } else if ((got = tool_flag_value(argc, argv, &i, "--repeat-penalty", &value))) {
            ok = got > 0 && tool_parse_float("--repeat-penalty", value, 1e-6, 1e6, &repeat_penalty);
        } else if ((got = tool_flag_value(argc, argv, &i, "--device", &value))) {
            ok = got > 0;
            device = value;
        } else if (tool_parse_force_load(argv[i])) {
            ok = true;
        } else if ((got = tool_flag_value(argc, argv, &i, "--threads", &value))) {
            ok = got > 0 && tool_parse_int("--threads", value, 0, 1024, &threads);
        } else {
            fprintf(stderr, "mlxengine generate: unknown option '%s'\n", argv[i]);
            ok = false;
        }
    }
    if (ok && (!model_dir || (!prompt_text == !text_prompt) || max_tokens < 0)) {
        fprintf(stderr, "mlxengine generate: --model, one of --prompt-ids or --prompt, and --max-tokens are required\n");
        ok = false;
    }
    int32_t *prompt = NULL;
    int64_t n_prompt = 0;
    if (ok && prompt_text) ok = tool_parse_ids("--prompt-ids", prompt_text, &prompt, &n_prompt);
    if (!ok) {
        usage(stderr);
        return 2;
    }

    char *folder = tool_resolve_model("generate", model_dir);
    if (!folder) {
        free(prompt);
        return 1;
    }
    mlxe_tokenizer *tokenizer = NULL;
    print_state state = {0};
    if (text_prompt) {
        mlxe_error load_err;
        mlxe_error_clear(&load_err);
        mlxe_token_list ids;
        mlxe_token_list_init(&ids);
        mlxe_encode_options encode;
        mlxe_encode_options_init(&encode);
        encode.add_special_tokens = true;
        if (mlxe_tokenizer_load(folder, &tokenizer, &load_err) != MLXE_OK ||
            mlxe_tokenizer_encode(tokenizer, text_prompt, strlen(text_prompt), &encode, &ids, &load_err) != MLXE_OK ||
            (!print_ids && mlxe_detokenizer_create(tokenizer, NULL, &state.detokenizer, &load_err) != MLXE_OK)) {
            fprintf(stderr, "mlxengine generate: %s\n", load_err.message);
            mlxe_token_list_free(&ids);
            mlxe_tokenizer_free(tokenizer);
            free(folder);
            return 1;
        }
        if (ids.count == 0) {
            fprintf(stderr, "mlxengine generate: --prompt encodes to no tokens\n");
            mlxe_token_list_free(&ids);
            mlxe_detokenizer_free(state.detokenizer);
            mlxe_tokenizer_free(tokenizer);
            free(folder);
            return 2;
        }
        prompt = ids.ids; /* taken over from the list */
        n_prompt = (int64_t)ids.count;
    }

    mlxe_model *model = NULL;
    mlxe_context *ctx = NULL;
    bool loaded = tool_load_model_folder_on(folder, device, (int)threads, n_prompt + max_tokens, &model, &ctx);
    free(folder);
    if (!loaded) {
        free(prompt);
        mlxe_detokenizer_free(state.detokenizer);
        mlxe_tokenizer_free(tokenizer);
        return 1;
    }
    state.n_eos_ids = mlxe_model_eos_ids(model, &state.eos_ids);
    mlxe_generate_options options;
    mlxe_generate_options_init(&options);
    options.max_tokens = max_tokens;
    options.sampler.temperature = (float)temperature;
    options.sampler.top_k = (int32_t)top_k;
    options.sampler.top_p = (float)top_p;
    options.sampler.min_p = (float)min_p;
    options.sampler.repetition_penalty = (float)repeat_penalty;
    options.sampler.seed = seed;

    mlxe_generate_stats stats;
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_status st = mlxe_generate(ctx, prompt, n_prompt, &options, print_token, &state, NULL, &stats, &err);
    if (state.detokenizer) {
        const char *piece = NULL;
        size_t size = 0;
        if (mlxe_detokenizer_flush(state.detokenizer, &piece, &size, NULL) == MLXE_OK) fwrite(piece, 1, size, stdout);
    }
    printf("\n");
    fflush(stdout);
    if (st != MLXE_OK) {
        fprintf(stderr, "mlxengine: %s\n", err.message);
    } else {
        fprintf(stderr,
                "load %.3f s | prompt %lld tokens, %.1f tok/s | generated %lld tokens, %.1f tok/s | "
                "sampling %.3f ms/token | stop %s | seed %llu | %s\n",
                stats.load_seconds, (long long)stats.n_prompt_tokens, stats.prefill_tokens_per_second,
                (long long)stats.n_generated_tokens, stats.decode_tokens_per_second,
                stats.n_generated_tokens ? 1e3 * stats.sample_seconds / (double)stats.n_generated_tokens : 0.0,
                mlxe_stop_reason_name(stats.stop_reason), (unsigned long long)stats.seed,
                mlxe_model_device_name(model));
    }
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    mlxe_detokenizer_free(state.detokenizer);
    mlxe_tokenizer_free(tokenizer);
    free(prompt);
    return st == MLXE_OK ? 0 : 1;
}
