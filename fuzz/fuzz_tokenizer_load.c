/* fuzz/fuzz_tokenizer_load.c — fuzz target: tokenizer.json loading. The
 * input is a tokenizer.json; when it loads, a few texts are encoded and
 * decoded with it. Built for libFuzzer (-DMLXE_FUZZ=ON with clang) or with
 * fuzz/standalone_driver.c for a bounded mutation run under the
 * sanitizers in CTest. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/tokenizer.h"
#include "unit/tokenizer_fixtures.h"
#include "fuzz_seeds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mlxe_tokenizer *tk = NULL;
    mlxe_error err;
    if (mlxe_tokenizer_load_memory((const char *)data, size, NULL, 0, "fuzz.json", &tk, &err) != MLXE_OK) return 0;
    static const char *const texts[] = {"hello world", " <|special|> ab\n\n 123 ", "\xF0\x9F\xA6\x99\xFF x", ""};
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    options.parse_special_tokens = true;
    options.add_special_tokens = true;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        mlxe_token_list ids;
        mlxe_token_list_init(&ids);
        if (mlxe_tokenizer_encode(tk, texts[i], strlen(texts[i]), &options, &ids, &err) == MLXE_OK) {
            char *text = NULL;
            size_t n = 0;
            if (mlxe_tokenizer_decode(tk, ids.ids, ids.count, NULL, &text, &n, &err) == MLXE_OK) free(text);
        }
        mlxe_token_list_free(&ids);
    }
    mlxe_tokenizer_free(tk);
    return 0;
}

/* Seeds for the standalone driver: the two fixture tokenizers. */
const char *mlxe_fuzz_seed(size_t index, size_t *size) {
    static char *seeds[2];
    if (index >= 2) return NULL;
    if (!seeds[index]) seeds[index] = index == 0 ? fixture_byte_level_json() : fixture_sentencepiece_json();
    *size = strlen(seeds[index]);
    return seeds[index];
}
