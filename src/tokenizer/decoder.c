/* tokenizer/decoder.c — ids back to text through the decoder chain, as
 * tokenizers' Tokenizer::decode and decoders/ (*.rs) do: look up each id
 * (added tokens first; unknown ids skipped; special tokens skipped on
 * request), run the chain over the list of token strings, concatenate.
 *
 * Quirks kept on purpose (they are the reference's behaviour):
 *  - ByteLevel maps every character of a token back to its byte, but uses
 *    the token's own UTF-8 bytes when any character is outside the table
 *    (added tokens such as "<｜begin▁of▁sentence｜>"); the bytes of all
 *    tokens are then joined and invalid UTF-8 becomes U+FFFD per maximal
 *    invalid sequence (String::from_utf8_lossy).
 *  - ByteFallback turns a run of <0xNN> tokens into its bytes, or into one
 *    U+FFFD per byte when the run is not valid UTF-8.
 *  - Metaspace drops every replacement character of the first token when
 *    prepend_scheme is not "never", and turns the others into spaces.
 * `continuation` turns off the start-of-text rules (Metaspace's first
 * token, Strip's leading characters) for the streaming detokenizer. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

static mlxe_status oom(mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory while decoding");
}

static const char REPLACEMENT_UTF8[] = "\xEF\xBF\xBD";

/* Appends bytes as UTF-8, each maximal invalid sequence as U+FFFD. */
static bool append_lossy(tok_buffer *out, const char *bytes, size_t size) {
    size_t i = 0;
    while (i < size) {
        size_t valid = tok_utf8_valid_prefix(bytes + i, size - i);
        if (valid && !tok_buffer_append(out, bytes + i, valid)) return false;
        i += valid;
        if (i < size) {
            if (!tok_buffer_append(out, REPLACEMENT_UTF8, 3)) return false;
            i += tok_utf8_invalid_length(bytes + i, size - i);
        }
    }
    return true;
}

/* The pieces are rewritten into new arena text; `next` collects them. */
typedef struct chain_state {
    tok_piece_list *pieces;
    tok_piece_list next;
    tok_buffer *arena;
    tok_buffer bytes;
} chain_state;

static bool push_text(chain_state *cs, const char *text, size_t size) {
    size_t start = cs->arena->size;
    if (!tok_buffer_append(cs->arena, text, size)) return false;
    return tok_piece_list_push(&cs->next, (tok_piece){start, size, -1, false});
}

static void swap_lists(chain_state *cs) {
    tok_piece_list swap = *cs->pieces;
    *cs->pieces = cs->next;
    cs->next = swap;
    cs->next.count = 0;
}

static int byte_fallback_value(const char *t, size_t n) {
    if (n != 6 || memcmp(t, "<0x", 3) != 0 || t[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = t[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

static mlxe_status run_decoder(const tok_decoder *dec, chain_state *cs, bool continuation,
                               tok_work *scratch_work, mlxe_error *err) {
    tok_piece_list *pieces = cs->pieces;
    switch (dec->kind) {
    case TOK_DEC_SEQUENCE:
        for (size_t i = 0; i < dec->n_children; i++) {
            mlxe_status st = run_decoder(&dec->children[i], cs, continuation, scratch_work, err);
            if (st != MLXE_OK) return st;
        }
        return MLXE_OK;
    case TOK_DEC_BYTE_LEVEL: {
        cs->bytes.size = 0;
        for (size_t p = 0; p < pieces->count; p++) {
            const char *t = cs->arena->data + pieces->items[p].start;
            size_t n = pieces->items[p].len;
            size_t mark = cs->bytes.size;
            bool mapped = true;
            for (size_t i = 0; i < n;) {
                uint32_t c;
                size_t l = tok_utf8_decode(t + i, n - i, &c);
                int b = tok_char_to_byte(c);
                if (b < 0) {
                    mapped = false;
                    break;
                }
                char byte = (char)b;
                if (!tok_buffer_append(&cs->bytes, &byte, 1)) return oom(err);
                i += l;
            }
            if (!mapped) {
                cs->bytes.size = mark;
                /* t may move if the arena grows: bytes is a separate buffer */
                if (!tok_buffer_append(&cs->bytes, t, n)) return oom(err);
            }
        }
        size_t start = cs->arena->size;
        if (!append_lossy(cs->arena, cs->bytes.data ? cs->bytes.data : "", cs->bytes.size)) return oom(err);
        if (!tok_piece_list_push(&cs->next, (tok_piece){start, cs->arena->size - start, -1, false}))
            return oom(err);
        swap_lists(cs);
        return MLXE_OK;
    }
    case TOK_DEC_BYTE_FALLBACK: {
        cs->bytes.size = 0;
        size_t run = 0; /* bytes collected from consecutive <0xNN> tokens */
        for (size_t p = 0; p <= pieces->count; p++) {
            int value = -1;
            if (p < pieces->count)
                value = byte_fallback_value(cs->arena->data + pieces->items[p].start, pieces->items[p].len);
            if (value >= 0) {
                char byte = (char)value;
                if (!tok_buffer_append(&cs->bytes, &byte, 1)) return oom(err);
                run++;
                continue;
            }
            if (run) {
                if (tok_utf8_valid_prefix(cs->bytes.data, run) == run) {
                    if (!push_text(cs, cs->bytes.data, run)) return oom(err);
                } else {
                    size_t start = cs->arena->size;
                    for (size_t k = 0; k < run; k++)
                        if (!tok_buffer_append(cs->arena, REPLACEMENT_UTF8, 3)) return oom(err);
                    if (!tok_piece_list_push(&cs->next, (tok_piece){start, run * 3, -1, false})) return oom(err);
                }
                run = 0;
                cs->bytes.size = 0;
            }
            if (p < pieces->count && !tok_piece_list_push(&cs->next, pieces->items[p])) return oom(err);
        }
        swap_lists(cs);
        return MLXE_OK;
    }
    case TOK_DEC_FUSE: {
        size_t start = cs->arena->size, total = 0;
        for (size_t p = 0; p < pieces->count; p++) total += pieces->items[p].len;
        if (!tok_buffer_reserve(cs->arena, total)) return oom(err);
        for (size_t p = 0; p < pieces->count; p++) {
            memcpy(cs->arena->data + cs->arena->size, cs->arena->data + pieces->items[p].start,
                   pieces->items[p].len);
            cs->arena->size += pieces->items[p].len;
        }
        cs->arena->data[cs->arena->size] = '\0';
        if (!tok_piece_list_push(&cs->next, (tok_piece){start, total, -1, false})) return oom(err);
        swap_lists(cs);
        return MLXE_OK;
    }
    case TOK_DEC_STRIP:
        for (size_t p = 0; p < pieces->count; p++) {
            tok_piece *piece = &pieces->items[p];
            const char *t = cs->arena->data + piece->start;
            size_t begin = 0, end = piece->len;
            for (size_t k = 0; k < dec->strip_start && begin < end && !continuation; k++) {
                uint32_t c;
                size_t l = tok_utf8_decode(t + begin, end - begin, &c);
                if (c != dec->strip_char) break;
                begin += l;
            }
            for (size_t k = 0; k < dec->strip_stop && end > begin; k++) {
                size_t j = end - 1;
                while (j > begin && ((unsigned char)t[j] & 0xC0) == 0x80) j--;
                uint32_t c;
                tok_utf8_decode(t + j, end - j, &c);
                if (c != dec->strip_char) break;
                end = j;
            }
            piece->start += begin;
            piece->len = end - begin;
        }
        return MLXE_OK;
    case TOK_DEC_REPLACE:
    case TOK_DEC_METASPACE:
    case TOK_DEC_BPE_SUFFIX:
        for (size_t p = 0; p < pieces->count; p++) {
            tok_piece piece = pieces->items[p];
            size_t start = cs->arena->size;
            if (dec->kind == TOK_DEC_REPLACE) {
                tok_segment_list segments = {0};
                /* copy: the arena may move while we append to it */
                tok_buffer *copy = &cs->bytes;
                copy->size = 0;
                if (!tok_buffer_append(copy, cs->arena->data + piece.start, piece.len)) return oom(err);
                mlxe_status st = tok_pattern_find(&dec->pattern, copy->data, copy->size,
                                                  &scratch_work->matcher, &segments, err);
                for (size_t i = 0; st == MLXE_OK && i < segments.count; i++) {
                    const tok_segment *s = &segments.items[i];
                    bool ok = s->is_match ? tok_buffer_append(cs->arena, dec->content, dec->content_size)
                                          : tok_buffer_append(cs->arena, copy->data + s->start, s->end - s->start);
                    if (!ok) st = oom(err);
                }
                free(segments.items);
                if (st != MLXE_OK) return st;
            } else if (dec->kind == TOK_DEC_METASPACE) {
                bool drop = p == 0 && !continuation && dec->prepend_scheme != TOK_PREPEND_NEVER;
                if (!tok_buffer_reserve(cs->arena, piece.len)) return oom(err);
                for (size_t i = 0; i < piece.len;) {
                    const char *t = cs->arena->data + piece.start;
                    uint32_t c;
                    size_t l = tok_utf8_decode(t + i, piece.len - i, &c);
                    if (c == dec->replacement_char) {
                        if (!drop && !tok_buffer_append(cs->arena, " ", 1)) return oom(err);
                    } else if (!tok_buffer_append(cs->arena, cs->arena->data + piece.start + i, l)) {
                        return oom(err);
                    }
                    i += l;
                }
            } else { /* BPEDecoder: the suffix becomes a space, except on the last token */
                tok_buffer *copy = &cs->bytes;
                copy->size = 0;
                if (!tok_buffer_append(copy, cs->arena->data + piece.start, piece.len)) return oom(err);
                const char *t = copy->data;
                size_t i = 0;
                while (i < copy->size) {
                    const char *hit = dec->content_size ? memmem(t + i, copy->size - i, dec->content, dec->content_size) : NULL;
                    size_t upto = hit ? (size_t)(hit - t) : copy->size;
                    if (!tok_buffer_append(cs->arena, t + i, upto - i)) return oom(err);
                    if (!hit) break;
                    if (p + 1 < pieces->count && !tok_buffer_append(cs->arena, " ", 1)) return oom(err);
                    i = upto + dec->content_size;
                }
            }
            if (!tok_piece_list_push(&cs->next, (tok_piece){start, cs->arena->size - start, -1, false}))
                return oom(err);
        }
        swap_lists(cs);
        return MLXE_OK;
    }
    return mlxe_error_set(err, MLXE_ERR_INTERNAL, "tokenizer: unknown decoder kind");
}

mlxe_status tok_decode_ids(const mlxe_tokenizer *tk, const mlxe_token_id *ids, size_t n_ids,
                           bool skip_special, bool continuation, tok_buffer *out,
                           tok_piece_list *pieces, tok_buffer *arena, mlxe_error *err) {
    arena->size = 0;
    pieces->count = 0;
    out->size = 0;
    if (!tok_buffer_append(out, "", 0) || !tok_buffer_append(arena, "", 0)) return oom(err);
    for (size_t i = 0; i < n_ids; i++) {
        mlxe_token_id id = ids[i];
        if (id < 0 || (size_t)id >= tk->vocab_size || tk->id_size[id] == UINT32_MAX) continue;
        if (skip_special && tk->special[id]) continue;
        size_t start = arena->size;
        if (!tok_buffer_append(arena, tk->id_strings + tk->id_offset[id], tk->id_size[id]) ||
            !tok_piece_list_push(pieces, (tok_piece){start, tk->id_size[id], id, false}))
            return oom(err);
    }
    mlxe_status st = MLXE_OK;
    if (tk->decoder) {
        chain_state cs = {pieces, {0}, arena, {0}};
        tok_work scratch = {0};
        st = run_decoder(tk->decoder, &cs, continuation, &scratch, err);
        free(cs.next.items);
        tok_buffer_free(&cs.bytes);
        tok_work_free(&scratch);
        if (st != MLXE_OK) return st;
        for (size_t p = 0; p < pieces->count; p++)
            if (!tok_buffer_append(out, arena->data + pieces->items[p].start, pieces->items[p].len))
                return oom(err);
    } else {
        /* no decoder: tokens joined with single spaces (a continuation
         * starts with the space that joins it to what came before) */
        for (size_t p = 0; p < pieces->count; p++) {
            if (((p > 0 || continuation) && !tok_buffer_append(out, " ", 1)) ||
                !tok_buffer_append(out, arena->data + pieces->items[p].start, pieces->items[p].len))
                return oom(err);
        }
    }
    return MLXE_OK;
}

void tok_decoder_free(tok_decoder *dec) {
    if (!dec) return;
    tok_pattern_free(&dec->pattern);
    free(dec->content);
    for (size_t i = 0; i < dec->n_children; i++) tok_decoder_free(&dec->children[i]);
    free(dec->children);
    dec->children = NULL;
    dec->n_children = 0;
}
