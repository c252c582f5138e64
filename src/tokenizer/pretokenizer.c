/* tokenizer/pretokenizer.c — tokenizer.json pre-tokenizers (tokenizers'
 * pre_tokenizers/ (*.rs)): Split, ByteLevel, Metaspace, Digits, Punctuation,
 * Whitespace, WhitespaceSplit, CharDelimiterSplit, Sequence.
 *
 * Each one rewrites work->pieces into work->next: pieces that are added
 * tokens pass through, others are cut (sub-pieces point into the same
 * arena text) or rewritten (new text appended to the arena). Empty pieces
 * are dropped, as PreTokenizedString::split does. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

static mlxe_status oom(mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory while pre-tokenizing");
}

static bool emit(tok_work *work, size_t start, size_t len, bool at_origin) {
    if (len == 0) return true;
    return tok_piece_list_push(&work->next, (tok_piece){start, len, -1, at_origin});
}

typedef bool (*char_predicate)(uint32_t c, const tok_pretokenizer *pre);

/* Segments for a character predicate: every matching character is its own
 * match (tokenizers' `impl Pattern for Fn(char) -> bool`). */
static bool find_chars(const char *text, size_t size, char_predicate pred, const tok_pretokenizer *pre,
                       tok_segment_list *out) {
    out->count = 0;
    size_t last = 0;
    for (size_t i = 0; i < size;) {
        uint32_t c;
        size_t n = tok_utf8_decode(text + i, size - i, &c);
        if (pred(c, pre)) {
            if (out->count + 2 > out->capacity) {
                size_t capacity = out->capacity ? out->capacity * 2 : 32;
                tok_segment *items = realloc(out->items, capacity * sizeof *items);
                if (!items) return false;
                out->items = items;
                out->capacity = capacity;
            }
            if (last < i) out->items[out->count++] = (tok_segment){last, i, false};
            out->items[out->count++] = (tok_segment){i, i + n, true};
            last = i + n;
        }
        i += n;
    }
    if (last < size) {
        if (out->count + 1 > out->capacity) {
            size_t capacity = out->capacity ? out->capacity * 2 : 32;
            tok_segment *items = realloc(out->items, capacity * sizeof *items);
            if (!items) return false;
            out->items = items;
            out->capacity = capacity;
        }
        out->items[out->count++] = (tok_segment){last, size, false};
    }
    return true;
}

/* Applies a split behaviour (tokenizers' NormalizedString::split) to the
 * segments of one piece and emits the resulting pieces. */
static mlxe_status emit_split(tok_work *work, const tok_piece *piece, tok_segment_list *segments,
                              tok_split_behavior behavior, bool invert, mlxe_error *err) {
    tok_segment *s = segments->items;
    size_t n = segments->count;
    if (invert)
        for (size_t i = 0; i < n; i++) s[i].is_match = !s[i].is_match;
    size_t out = 0; /* merged segments are compacted in place */
    switch (behavior) {
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!s[i].is_match) s[out++] = s[i];
        break;
    case TOK_SPLIT_ISOLATED: out = n; break;
    case TOK_SPLIT_MERGED_WITH_PREVIOUS: {
        bool previous_match = false;
        for (size_t i = 0; i < n; i++) {
            tok_segment seg = s[i];
            if (seg.is_match && !previous_match && out > 0) s[out - 1].end = seg.end;
            else s[out++] = seg;
            previous_match = seg.is_match;
        }
        break;
    }
    case TOK_SPLIT_MERGED_WITH_NEXT: {
        /* the same from the end, then reversed back */
        bool previous_match = false;
        size_t write = n; /* fill from the back */
        for (size_t i = n; i-- > 0;) {
            tok_segment seg = s[i];
            if (seg.is_match && !previous_match && write < n) s[write].start = seg.start;
            else s[--write] = seg;
            previous_match = seg.is_match;
        }
        memmove(s, s + write, (n - write) * sizeof *s);
        out = n - write;
        break;
    }
    case TOK_SPLIT_CONTIGUOUS: {
        bool previous_match = false;
        for (size_t i = 0; i < n; i++) {
            tok_segment seg = s[i];
            if (seg.is_match == previous_match && out > 0) s[out - 1].end = seg.end;
            else s[out++] = seg;
            previous_match = seg.is_match;
        }
        break;
    }
    }
    for (size_t i = 0; i < out; i++)
        if (!emit(work, piece->start + s[i].start, s[i].end - s[i].start,
                  piece->at_origin && s[i].start == 0))
            return oom(err);
    return MLXE_OK;
}

static bool pred_numeric(uint32_t c, const tok_pretokenizer *pre) { (void)pre; return tok_char_is_numeric(c); }
static bool pred_punctuation(uint32_t c, const tok_pretokenizer *pre) { (void)pre; return tok_char_is_punctuation(c); }
static bool pred_whitespace(uint32_t c, const tok_pretokenizer *pre) { (void)pre; return tok_char_is_whitespace(c); }
static bool pred_delimiter(uint32_t c, const tok_pretokenizer *pre) { return c == pre->delimiter; }
static bool pred_replacement(uint32_t c, const tok_pretokenizer *pre) { return c == pre->replacement_char; }

/* Maps every byte of the piece to its GPT-2 character (ByteLevel). */
static mlxe_status byte_level_map(tok_work *work, size_t start, size_t len, bool at_origin, mlxe_error *err) {
    if (!tok_buffer_reserve(&work->arena, len * 2)) return oom(err);
    const unsigned char *src = (const unsigned char *)work->arena.data + start;
    char *dst = work->arena.data + work->arena.size;
    size_t out = 0;
    for (size_t i = 0; i < len; i++) out += tok_utf8_encode(tok_byte_to_char(src[i]), dst + out);
    size_t new_start = work->arena.size;
    work->arena.size += out;
    work->arena.data[work->arena.size] = '\0';
    return emit(work, new_start, out, at_origin) ? MLXE_OK : oom(err);
}

static mlxe_status apply(const tok_pretokenizer *pre, tok_work *work, tok_segment_list *segments,
                         mlxe_error *err);

static mlxe_status run_one(const tok_pretokenizer *pre, tok_work *work, mlxe_error *err) {
    tok_segment_list segments = {0};
    mlxe_status st = apply(pre, work, &segments, err);
    free(segments.items);
    return st;
}

static mlxe_status apply(const tok_pretokenizer *pre, tok_work *work, tok_segment_list *segments,
                         mlxe_error *err) {
    if (pre->kind == TOK_PRE_SEQUENCE) {
        for (size_t i = 0; i < pre->n_children; i++) {
            mlxe_status st = run_one(&pre->children[i], work, err);
            if (st != MLXE_OK) return st;
        }
        return MLXE_OK;
    }
    work->next.count = 0;
    for (size_t p = 0; p < work->pieces.count; p++) {
        tok_piece piece = work->pieces.items[p];
        if (piece.token_id >= 0) {
            if (!tok_piece_list_push(&work->next, piece)) return oom(err);
            continue;
        }
        mlxe_status st = MLXE_OK;
        const char *text = work->arena.data + piece.start;
        switch (pre->kind) {
        case TOK_PRE_SPLIT:
        case TOK_PRE_WHITESPACE:
            st = tok_pattern_find(&pre->pattern, text, piece.len, &work->matcher, segments, err);
            if (st == MLXE_OK)
                st = emit_split(work, &piece, segments,
                                pre->kind == TOK_PRE_SPLIT ? pre->behavior : TOK_SPLIT_REMOVED,
                                pre->kind == TOK_PRE_SPLIT ? pre->invert : true, err);
            break;
        case TOK_PRE_DIGITS:
            if (!find_chars(text, piece.len, pred_numeric, pre, segments)) return oom(err);
            st = emit_split(work, &piece, segments,
                            pre->individual_digits ? TOK_SPLIT_ISOLATED : TOK_SPLIT_CONTIGUOUS, false, err);
            break;
        case TOK_PRE_PUNCTUATION:
            if (!find_chars(text, piece.len, pred_punctuation, pre, segments)) return oom(err);
            st = emit_split(work, &piece, segments, pre->behavior, false, err);
            break;
        case TOK_PRE_WHITESPACE_SPLIT:
            if (!find_chars(text, piece.len, pred_whitespace, pre, segments)) return oom(err);
            st = emit_split(work, &piece, segments, TOK_SPLIT_REMOVED, false, err);
            break;
        case TOK_PRE_CHAR_DELIMITER:
            if (!find_chars(text, piece.len, pred_delimiter, pre, segments)) return oom(err);
            st = emit_split(work, &piece, segments, TOK_SPLIT_REMOVED, false, err);
            break;
        case TOK_PRE_BYTE_LEVEL: {
            /* optional prefix space, optional GPT-2 regex split, then the
             * byte-to-char mapping of every sub-piece */
            if (pre->add_prefix_space && !(piece.len > 0 && text[0] == ' ')) {
                if (!tok_buffer_reserve(&work->arena, piece.len + 1)) return oom(err);
                size_t start = work->arena.size;
                work->arena.data[start] = ' ';
                memcpy(work->arena.data + start + 1, work->arena.data + piece.start, piece.len);
                work->arena.size += piece.len + 1;
                work->arena.data[work->arena.size] = '\0';
                piece.start = start;
                piece.len += 1;
            }
            size_t first = work->next.count;
            if (pre->use_regex) {
                st = tok_pattern_find(&pre->pattern, work->arena.data + piece.start, piece.len,
                                      &work->matcher, segments, err);
                if (st == MLXE_OK) st = emit_split(work, &piece, segments, TOK_SPLIT_ISOLATED, false, err);
            } else if (!emit(work, piece.start, piece.len, piece.at_origin)) {
                return oom(err);
            }
            /* map the pieces just emitted, in place in the list */
            size_t last = work->next.count;
            for (size_t i = first; st == MLXE_OK && i < last; i++) {
                tok_piece sub = work->next.items[i];
                size_t before = work->next.count;
                st = byte_level_map(work, sub.start, sub.len, sub.at_origin, err);
                if (st == MLXE_OK) {
                    work->next.items[i] = work->next.items[before];
                    work->next.count = before;
                }
            }
            break;
        }
        case TOK_PRE_METASPACE: {
            /* spaces -> replacement, maybe a leading replacement, then split
             * before each replacement (MergedWithNext) */
            size_t extra = piece.len / 1 * (pre->replacement_size) + pre->replacement_size;
            if (!tok_buffer_reserve(&work->arena, piece.len + extra)) return oom(err);
            text = work->arena.data + piece.start;
            char *dst = work->arena.data + work->arena.size;
            size_t out = 0;
            for (size_t i = 0; i < piece.len; i++) {
                if (text[i] == ' ') {
                    memcpy(dst + out, pre->replacement, pre->replacement_size);
                    out += pre->replacement_size;
                } else {
                    dst[out++] = text[i];
                }
            }
            bool starts = out >= pre->replacement_size &&
                          memcmp(dst, pre->replacement, pre->replacement_size) == 0;
            bool prepend = !starts && (pre->prepend_scheme == TOK_PREPEND_ALWAYS ||
                                       (pre->prepend_scheme == TOK_PREPEND_FIRST && piece.at_origin));
            if (prepend) {
                memmove(dst + pre->replacement_size, dst, out);
                memcpy(dst, pre->replacement, pre->replacement_size);
                out += pre->replacement_size;
            }
            tok_piece mapped = {work->arena.size, out, -1, piece.at_origin};
            work->arena.size += out;
            work->arena.data[work->arena.size] = '\0';
            if (pre->split) {
                if (!find_chars(work->arena.data + mapped.start, mapped.len, pred_replacement, pre, segments))
                    return oom(err);
                st = emit_split(work, &mapped, segments, TOK_SPLIT_MERGED_WITH_NEXT, false, err);
            } else if (!emit(work, mapped.start, mapped.len, mapped.at_origin)) {
                return oom(err);
            }
            break;
        }
        case TOK_PRE_SEQUENCE: break;
        }
        if (st != MLXE_OK) return st;
    }
    tok_piece_list swap = work->pieces;
    work->pieces = work->next;
    work->next = swap;
    return MLXE_OK;
}

mlxe_status tok_pretokenize(const tok_pretokenizer *pre, tok_work *work, mlxe_error *err) {
    return run_one(pre, work, err);
}

void tok_pretokenizer_free(tok_pretokenizer *pre) {
    if (!pre) return;
    tok_pattern_free(&pre->pattern);
    for (size_t i = 0; i < pre->n_children; i++) tok_pretokenizer_free(&pre->children[i]);
    free(pre->children);
    pre->children = NULL;
    pre->n_children = 0;
}
