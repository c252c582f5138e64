/* tools/mlxengine/cmd_detokenize.c — `mlxengine detokenize --model DIR
 * [--skip-special-tokens] IDS`: decodes ids (separated by spaces or commas,
 * one argument or several) and prints the text followed by a newline. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"
#include "mlxengine/tokenizer.h"

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine detokenize --model DIR [--skip-special-tokens] IDS...\n"
                 "  IDS   token ids separated by spaces or commas (e.g. \"9906 1917\")\n");
}

static int parse_ids(const char *text, mlxe_token_list *ids) {
    const char *p = text;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n' || *p == '[' || *p == ']') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 0x7fffffff) return -1;
        if (ids->count == ids->capacity) {
            size_t capacity = ids->capacity ? ids->capacity * 2 : 64;
            mlxe_token_id *grown = realloc(ids->ids, capacity * sizeof *grown);
            if (!grown) return -1;
            ids->ids = grown;
            ids->capacity = capacity;
        }
        ids->ids[ids->count++] = (mlxe_token_id)v;
        p = end;
    }
    return 0;
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL;
    mlxe_decode_options options;
    mlxe_decode_options_init(&options);
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[++i];
        else if (strcmp(argv[i], "--skip-special-tokens") == 0) options.skip_special_tokens = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            mlxe_token_list_free(&ids);
            return 0;
        } else if (parse_ids(argv[i], &ids) != 0) {
            fprintf(stderr, "mlxengine detokenize: '%s' is not a list of token ids\n", argv[i]);
            mlxe_token_list_free(&ids);
            return 2;
        }
    }
    if (!model) {
        usage(stderr);
        mlxe_token_list_free(&ids);
        return 2;
    }
    mlxe_error err;
    mlxe_tokenizer *tokenizer = NULL;
    char *text = NULL;
    size_t size = 0;
    int rc = 0;
    if (mlxe_tokenizer_load(model, &tokenizer, &err) != MLXE_OK ||
        mlxe_tokenizer_decode(tokenizer, ids.ids, ids.count, &options, &text, &size, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine detokenize: %s\n", err.message);
        rc = 1;
    } else {
        fwrite(text, 1, size, stdout);
        fputc('\n', stdout);
    }
    free(text);
    mlxe_token_list_free(&ids);
    mlxe_tokenizer_free(tokenizer);
    return rc;
}
