/* tokenizer/detokenizer.c — streaming decode for generation.
 *
 * Ids are collected in a window; after each id the window is decoded (as a
 * continuation of what was already emitted, so start-of-text rules such as
 * Metaspace's first token and Strip's leading space apply only once). The
 * window's text is released, and a new window started, only when it can
 * no longer change: it does not end with U+FFFD (which a UTF-8 sequence cut
 * between tokens decodes to) and its last token is not a <0xNN> byte token
 * (ByteFallback decodes a whole run of those together). Windows therefore
 * end on character boundaries of the byte stream, where decoding splits
 * cleanly, so the pieces concatenate to the one-shot decode. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"

struct mlxe_detokenizer {
    const mlxe_tokenizer *tokenizer;
    bool skip_special;
    bool started;           /* some text was released: later windows are continuations */
    mlxe_token_list window; /* ids not yet released */
    tok_buffer text, arena;
    tok_piece_list pieces;
};

mlxe_status mlxe_detokenizer_create(const mlxe_tokenizer *tokenizer, const mlxe_decode_options *options,
                                    mlxe_detokenizer **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_detokenizer_create: out is NULL");
    *out = NULL;
    if (!tokenizer) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_detokenizer_create: tokenizer is NULL");
    mlxe_detokenizer *d = calloc(1, sizeof *d);
    if (!d) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "detokenizer: out of memory");
    d->tokenizer = tokenizer;
    d->skip_special = options && options->skip_special_tokens;
    *out = d;
    return MLXE_OK;
}

void mlxe_detokenizer_reset(mlxe_detokenizer *d) {
    if (!d) return;
    d->window.count = 0;
    d->started = false;
}

void mlxe_detokenizer_free(mlxe_detokenizer *d) {
    if (!d) return;
    mlxe_token_list_free(&d->window);
    tok_buffer_free(&d->text);
    tok_buffer_free(&d->arena);
    free(d->pieces.items);
    free(d);
}

static bool is_byte_token(const mlxe_tokenizer *tk, mlxe_token_id id) {
    const char *t = mlxe_tokenizer_id_to_token(tk, id);
    return t && strlen(t) == 6 && memcmp(t, "<0x", 3) == 0 && t[5] == '>';
}

static mlxe_status decode_window(mlxe_detokenizer *d, mlxe_error *err) {
    return tok_decode_ids(d->tokenizer, d->window.ids, d->window.count, d->skip_special, d->started,
                          &d->text, &d->pieces, &d->arena, err);
}

mlxe_status mlxe_detokenizer_push(mlxe_detokenizer *d, mlxe_token_id id, const char **piece, size_t *piece_size,
                                  mlxe_error *err) {
    if (!d || !piece || !piece_size)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_detokenizer_push: NULL argument");
    *piece = "";
    *piece_size = 0;
    if (d->window.count == d->window.capacity) {
        size_t capacity = d->window.capacity ? d->window.capacity * 2 : 16;
        mlxe_token_id *ids = realloc(d->window.ids, capacity * sizeof *ids);
        if (!ids) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "detokenizer: out of memory");
        d->window.ids = ids;
        d->window.capacity = capacity;
    }
    d->window.ids[d->window.count++] = id;
    if (d->tokenizer->bpe.byte_fallback && is_byte_token(d->tokenizer, id)) return MLXE_OK;
    mlxe_status st = decode_window(d, err);
    if (st != MLXE_OK) {
        d->window.count--;
        return st;
    }
    const tok_buffer *t = &d->text;
    if (t->size >= 3 && memcmp(t->data + t->size - 3, "\xEF\xBF\xBD", 3) == 0) return MLXE_OK;
    if (t->size == 0) {
        /* nothing yet: keep the ids so start-of-text rules still see them */
        if (!d->started) return MLXE_OK;
        d->window.count = 0;
        return MLXE_OK;
    }
    d->started = true;
    d->window.count = 0;
    *piece = t->data;
    *piece_size = t->size;
    return MLXE_OK;
}

mlxe_status mlxe_detokenizer_flush(mlxe_detokenizer *d, const char **piece, size_t *piece_size, mlxe_error *err) {
    if (!d || !piece || !piece_size)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_detokenizer_flush: NULL argument");
    *piece = "";
    *piece_size = 0;
    if (d->window.count) {
        mlxe_status st = decode_window(d, err);
        if (st != MLXE_OK) return st;
        *piece = d->text.data;
        *piece_size = d->text.size;
    }
    d->window.count = 0;
    d->started = false;
    return MLXE_OK;
}
