/* fuzz/fuzz_tokenizer_encode.c — fuzz target: encode arbitrary bytes
 * (invalid UTF-8 included) with a loaded tokenizer, decode the ids, and
 * check the streaming detokenizer against the one-shot decode. The
 * tokenizer is MLXE_FUZZ_TOKENIZER (a model folder) when set, else the
 * first input byte picks one of the built-in fixture tokenizers. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/tokenizer.h"
#include "unit/tokenizer_fixtures.h"
#include "fuzz_seeds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mlxe_tokenizer *tokenizers[3];

static void load_all(void) {
    if (tokenizers[0]) return;
    mlxe_error err;
    char *a = fixture_byte_level_json(), *b = fixture_sentencepiece_json();
    if (mlxe_tokenizer_load_memory(a, strlen(a), NULL, 0, "fixture", &tokenizers[0], &err) != MLXE_OK ||
        mlxe_tokenizer_load_memory(b, strlen(b), NULL, 0, "fixture", &tokenizers[1], &err) != MLXE_OK)
        abort();
    free(a);
    free(b);
    const char *dir = getenv("MLXE_FUZZ_TOKENIZER");
    if (dir && mlxe_tokenizer_load(dir, &tokenizers[2], &err) != MLXE_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_all();
    if (size == 0) return 0;
    const mlxe_tokenizer *tk = tokenizers[2] ? tokenizers[2] : tokenizers[data[0] & 1];
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    options.parse_special_tokens = (data[0] & 2) != 0;
    options.add_special_tokens = (data[0] & 4) != 0;
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    mlxe_error err;
    if (mlxe_tokenizer_encode(tk, (const char *)data + 1, size - 1, &options, &ids, &err) != MLXE_OK) abort();
    char *text = NULL;
    size_t n = 0;
    mlxe_decode_options decode_options = {(data[0] & 8) != 0};
    if (mlxe_tokenizer_decode(tk, ids.ids, ids.count, &decode_options, &text, &n, &err) != MLXE_OK) abort();
    mlxe_detokenizer *d = NULL;
    if (mlxe_detokenizer_create(tk, &decode_options, &d, &err) != MLXE_OK) abort();
    size_t at = 0;
    for (size_t i = 0; i <= ids.count; i++) {
        const char *piece;
        size_t piece_size;
        mlxe_status st = i < ids.count ? mlxe_detokenizer_push(d, ids.ids[i], &piece, &piece_size, &err)
                                       : mlxe_detokenizer_flush(d, &piece, &piece_size, &err);
        if (st != MLXE_OK || at + piece_size > n || memcmp(text + at, piece, piece_size) != 0 ||
            tok_utf8_valid_prefix(piece, piece_size) != piece_size)
            abort(); /* the streaming property is broken */
        at += piece_size;
    }
    if (at != n) abort();
    mlxe_detokenizer_free(d);
    free(text);
    mlxe_token_list_free(&ids);
    return 0;
}

const char *mlxe_fuzz_seed(size_t index, size_t *size) {
    static const char *const seeds[] = {
        "\x02hello world <|special|> <extra>", "\x07 naive caf\xC3\xA9 \xF0\x9F\xA6\x99 12345\r\n\t x",
        "\x01\xE2\x96\x81" "ab ab\xFF\xC3", "\x0F<s></s><unk> \xE6\x97\xA5\xE6\x9C\xAC",
    };
    if (index >= sizeof seeds / sizeof seeds[0]) return NULL;
    *size = strlen(seeds[index]);
    return seeds[index];
}
