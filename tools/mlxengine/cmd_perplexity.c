/* tools/mlxengine/cmd_perplexity.c — `mlxengine perplexity [--model M]
 * --file F [--window N] [--threads N] [--device D]`: the perplexity of a text file under a
 * model, as mlx-lm's perplexity tool reports it, by mlxe_perplexity's
 * contiguous-window method (include/mlxengine/perplexity.h). Without
 * --model the embedded default model is used. Prints one line:
 * "perplexity P  nll_per_token X  tokens N  scored S  windows W  window L". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/commands.h"
#include "mlxengine/default_model.h"
#include "mlxengine/mlxengine.h"
#include "mlxengine/perplexity.h"
#include "mlxengine/tokenizer.h"
#include "model_args.h"

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine perplexity [--model MODEL] --file FILE [--window N] [--threads N] [--device D]\n"
                 "  --model MODEL   model folder, registry alias or Hub id (default: the embedded model)\n"
                 "  --file FILE     the text (tokenized with the model's tokenizer, no BOS added)\n"
                 "  --window N      tokens per window (default: the model's context, at most 4096)\n"
                 "  --threads N     compute threads (default: all)\n"
                 "  --device D      cpu (default), cuda, cuda:N or auto (a GPU when usable, else the CPU)\n");
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t capacity = 1 << 16, n = 0;
    char *data = malloc(capacity);
    while (data) {
        if (n == capacity) {
            char *grown = realloc(data, capacity * 2);
            if (!grown) {
                free(data);
                data = NULL;
                break;
            }
            data = grown;
            capacity *= 2;
        }
        size_t got = fread(data + n, 1, capacity - n, f);
        n += got;
        if (got == 0) break;
    }
    if (data && ferror(f)) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = n;
    return data;
}

int cmd_perplexity(int argc, char **argv) {
    const char *model_name = NULL, *file = NULL, *value = NULL;
    long long window = 0, threads = 0;
    const char *device = NULL;
    for (int i = 1; i < argc; i++) {
        int got;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if ((got = tool_flag_value(argc, argv, &i, "--model", &value)) != 0) {
            if (got < 0) return 2;
            model_name = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--file", &value)) != 0) {
            if (got < 0) return 2;
            file = value;
        } else if ((got = tool_flag_value(argc, argv, &i, "--window", &value)) != 0) {
            if (got < 0 || !tool_parse_int("--window", value, 2, 1 << 20, &window)) return 2;
        } else if ((got = tool_flag_value(argc, argv, &i, "--threads", &value)) != 0) {
            if (got < 0 || !tool_parse_int("--threads", value, 0, 4096, &threads)) return 2;
        } else if ((got = tool_flag_value(argc, argv, &i, "--device", &value)) != 0) {
            if (got < 0) return 2;
            device = value;
        } else {
            fprintf(stderr, "mlxengine perplexity: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!file) {
        usage(stderr);
        return 2;
    }
    mlxe_error err;
    mlxe_error_clear(&err);
    char *dir = NULL;
    if (model_name) {
        dir = tool_resolve_model("perplexity", model_name);
        if (!dir) return 1;
    } else if (mlxe_default_model_path(MLXE_DEFAULT_MODEL_BF16, &dir, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine perplexity: %s\n", err.message);
        return 1;
    }
    size_t size = 0;
    char *text = read_file(file, &size);
    if (!text) {
        fprintf(stderr, "mlxengine perplexity: cannot read '%s'\n", file);
        free(dir);
        return 1;
    }
    int rc = 1;
    mlxe_tokenizer *tokenizer = NULL;
    mlxe_model *model = NULL;
    mlxe_context *ctx = NULL;
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    mlxe_encode_options encode;
    mlxe_encode_options_init(&encode);
    encode.parse_special_tokens = true; /* as transformers' tokenizer(text) */
    if (mlxe_tokenizer_load(dir, &tokenizer, &err) != MLXE_OK ||
        mlxe_tokenizer_encode(tokenizer, text, size, &encode, &ids, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine perplexity: %s\n", err.message);
        goto done;
    }
    mlxe_model_options model_options;
    mlxe_model_options_init(&model_options);
    model_options.n_threads = (int)threads;
    if (device) model_options.device = device;
    tool_show_load_progress(&model_options);
    if (mlxe_model_load(dir, &model_options, &model, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine perplexity: %s\n", err.message);
        goto done;
    }
    if (!window) {
        window = mlxe_model_context_length(model);
        if (window <= 0 || window > 4096) window = 4096;
    }
    mlxe_context_options context_options;
    mlxe_context_options_init(&context_options);
    context_options.n_ctx = window;
    mlxe_perplexity_options options;
    mlxe_perplexity_options_init(&options);
    options.window = window;
    mlxe_perplexity_result result;
    if (mlxe_context_create(model, &context_options, &ctx, &err) != MLXE_OK ||
        mlxe_perplexity(ctx, (const int32_t *)ids.ids, (int64_t)ids.count, &options, NULL, &result, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine perplexity: %s: %s\n", file, err.message);
        goto done;
    }
    printf("perplexity %.6f  nll_per_token %.6f  tokens %zu  scored %lld  windows %lld  window %lld\n",
           result.perplexity, result.sum_nll / (double)result.n_scored, ids.count, (long long)result.n_scored,
           (long long)result.n_windows, window);
    rc = 0;
done:
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    mlxe_token_list_free(&ids);
    mlxe_tokenizer_free(tokenizer);
    free(text);
    free(dir);
    return rc;
}
