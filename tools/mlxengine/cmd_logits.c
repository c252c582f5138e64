/* tools/mlxengine/cmd_logits.c — `mlxengine logits`: runs token ids through
 * the model and prints the last position's 10 highest logits, one
 * "ID LOGIT" per line, highest first (ties: lower id first). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"
#include "memory_check.h"
#include "model_args.h"

#define TOP_N 10

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine logits --model DIR --prompt-ids 1,2,3 [--threads N] [--device D] [--top N]\n"
                 "Prints the last position's highest logits, one 'ID LOGIT' per line.\n"
                 "--device: cpu (default), cuda, cuda:N or auto (a GPU when usable, else the CPU).\n");
}

int cmd_logits(int argc, char **argv) {
    const char *model_dir = NULL, *device = NULL, *prompt_text = NULL, *value = NULL;
    long long threads = 0, top_n = TOP_N;
    bool ok = true;
    for (int i = 1; i < argc && ok; i++) {
        int got;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if ((got = tool_flag_value(argc, argv, &i, "--model", &value))) {
            ok = got > 0;
            model_dir = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--prompt-ids", &value))) {
            ok = got > 0;
            prompt_text = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--device", &value))) {
            ok = got > 0;
            device = value;
        } else if (tool_parse_force_load(argv[i])) {
            ok = true;
        } else if ((got = tool_flag_value(argc, argv, &i, "--threads", &value))) {
            ok = got > 0 && tool_parse_int("--threads", value, 0, 1024, &threads);
        } else if ((got = tool_flag_value(argc, argv, &i, "--top", &value))) {
            ok = got > 0 && tool_parse_int("--top", value, 1, 1 << 20, &top_n);
        } else {
            fprintf(stderr, "mlxengine logits: unknown option '%s'\n", argv[i]);
            ok = false;
        }
    }
    if (ok && (!model_dir || !prompt_text)) {
        fprintf(stderr, "mlxengine logits: --model and --prompt-ids are required\n");
        ok = false;
    }
    int32_t *prompt = NULL;
    int64_t n_prompt = 0;
    if (ok) ok = tool_parse_ids("--prompt-ids", prompt_text, &prompt, &n_prompt);
    if (!ok) {
        usage(stderr);
        return 2;
    }
    mlxe_model *model = NULL;
    mlxe_context *ctx = NULL;
    if (!tool_load_model_on(model_dir, device, (int)threads, n_prompt, &model, &ctx)) {
        free(prompt);
        return 1;
    }
    /* Prefill in n_ubatch chunks; the last chunk's last row has the logits. */
    int64_t chunk = mlxe_context_n_ubatch(ctx);
    int32_t *positions = malloc((size_t)chunk * 2 * sizeof(int32_t));
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_status st = positions ? MLXE_OK : MLXE_ERR_OUT_OF_MEMORY;
    int64_t last_row = 0;
    for (int64_t first = 0; st == MLXE_OK && first < n_prompt; first += chunk) {
        int64_t n = n_prompt - first < chunk ? n_prompt - first : chunk;
        for (int64_t r = 0; r < n; r++) {
            positions[r] = (int32_t)(first + r);
            positions[chunk + r] = 0;
        }
        mlxe_batch batch = {.n_tokens = n, .tokens = prompt + first, .positions = positions,
                            .seq_ids = positions + chunk, .logits = NULL};
        st = mlxe_context_decode(ctx, &batch, &err);
        last_row = n - 1;
    }
    if (st == MLXE_OK) {
        const float *logits = mlxe_context_logits(ctx, last_row);
        int64_t vocab = mlxe_model_vocab_size(model);
        if (top_n > vocab) top_n = vocab;
        /* selection of the top_n by repeated scans: top_n is small */
        unsigned char *taken = calloc((size_t)vocab, 1);
        for (long long k = 0; taken && k < top_n; k++) {
            int64_t best = -1;
            for (int64_t i = 0; i < vocab; i++)
                if (!taken[i] && (best < 0 || logits[i] > logits[best])) best = i;
            taken[best] = 1;
            printf("%lld %.6f\n", (long long)best, (double)logits[best]);
        }
        if (!taken) st = MLXE_ERR_OUT_OF_MEMORY;
        free(taken);
    }
    if (st != MLXE_OK) fprintf(stderr, "mlxengine: %s\n", err.message[0] ? err.message : "out of memory");
    free(positions);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    free(prompt);
    return st == MLXE_OK ? 0 : 1;
}
