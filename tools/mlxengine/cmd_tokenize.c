/* tools/mlxengine/cmd_tokenize.c — `mlxengine tokenize --model DIR
 * [--ids-only] [--add-special-tokens] TEXT|-`: encodes like transformers'
 * tokenizer.encode(text, add_special_tokens=...) (special tokens written in
 * the text are recognised; BOS/EOS only with the flag). `-` reads all of
 * standard input byte for byte. Without --ids-only, one "id<TAB>token"
 * line per token. These flags are a stable interface. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"
#include "mlxengine/tokenizer.h"

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine tokenize --model DIR [--ids-only] [--add-special-tokens]\n"
                 "                          [--no-parse-special] TEXT|-\n"
                 "  --model DIR            folder with tokenizer.json (and tokenizer_config.json)\n"
                 "  --ids-only             print only the ids, on one line\n"
                 "  --add-special-tokens   add BOS/EOS as the tokenizer's config says\n"
                 "  --no-parse-special     treat special tokens written in TEXT as plain text\n"
                 "  TEXT                   the text, or - to read standard input\n");
}

static char *read_stdin(size_t *size) {
    size_t capacity = 1 << 16, n = 0;
    char *data = malloc(capacity);
    if (!data) return NULL;
    for (;;) {
        if (n == capacity) {
            char *grown = realloc(data, capacity * 2);
            if (!grown) {
                free(data);
                return NULL;
            }
            data = grown;
            capacity *= 2;
        }
        size_t got = fread(data + n, 1, capacity - n, stdin);
        n += got;
        if (got == 0) break;
    }
    *size = n;
    return data;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *text = NULL;
    bool ids_only = false;
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    options.parse_special_tokens = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) model = argv[++i];
        else if (strcmp(argv[i], "--ids-only") == 0) ids_only = true;
        else if (strcmp(argv[i], "--add-special-tokens") == 0) options.add_special_tokens = true;
        else if (strcmp(argv[i], "--no-parse-special") == 0) options.parse_special_tokens = false;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (!text && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0 || argv[i][1] == '\0')) text = argv[i];
        else if (!text && strcmp(argv[i], "--") == 0 && i + 1 < argc) text = argv[++i];
        else {
            fprintf(stderr, "mlxengine tokenize: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!model || !text) {
        usage(stderr);
        return 2;
    }
    char *input = NULL;
    size_t size = 0;
    if (strcmp(text, "-") == 0) {
        input = read_stdin(&size);
        if (!input) {
            fprintf(stderr, "mlxengine tokenize: out of memory reading standard input\n");
            return 1;
        }
    }
    mlxe_error err;
    mlxe_tokenizer *tokenizer = NULL;
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    int rc = 0;
    if (mlxe_tokenizer_load(model, &tokenizer, &err) != MLXE_OK ||
        mlxe_tokenizer_encode(tokenizer, input ? input : text, input ? size : strlen(text), &options, &ids, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine tokenize: %s\n", err.message);
        rc = 1;
    } else if (ids_only) {
        for (size_t i = 0; i < ids.count; i++) printf(i ? " %d" : "%d", ids.ids[i]);
        printf("\n");
    } else {
        for (size_t i = 0; i < ids.count; i++) {
            const char *token = mlxe_tokenizer_id_to_token(tokenizer, ids.ids[i]);
            printf("%d\t%s\n", ids.ids[i], token ? token : "");
        }
    }
    mlxe_token_list_free(&ids);
    mlxe_tokenizer_free(tokenizer);
    free(input);
    return rc;
}
