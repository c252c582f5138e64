/* tokenizer/normalizer.c — tokenizer.json normalizers (tokenizers'
 * normalizers/ (*.rs)): NFC/NFD/NFKC/NFKD through utf8proc, Lowercase
 * (Rust's full str::to_lowercase), Strip, StripAccents, Replace, Prepend,
 * Sequence. Input is valid UTF-8; output replaces *out's content. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

static mlxe_status oom(mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory while normalizing");
}

static mlxe_status unicode_form(utf8proc_option_t options, const char *text, size_t size,
                                tok_buffer *out, mlxe_error *err) {
    out->size = 0;
    if (size == 0) return tok_buffer_append(out, "", 0) ? MLXE_OK : oom(err);
    utf8proc_uint8_t *result = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)text, (utf8proc_ssize_t)size, &result,
                                      (utf8proc_option_t)(options | UTF8PROC_STABLE));
    if (n < 0) {
        free(result);
        if (n == UTF8PROC_ERROR_NOMEM) return oom(err);
        return mlxe_error_set(err, MLXE_ERR_INTERNAL, "tokenizer: Unicode normalization failed: %s",
                              utf8proc_errmsg(n));
    }
    bool ok = tok_buffer_append(out, result, (size_t)n);
    free(result);
    return ok ? MLXE_OK : oom(err);
}

static mlxe_status lowercase(const char *text, size_t size, tok_buffer *out, mlxe_error *err) {
    out->size = 0;
    if (!tok_buffer_reserve(out, size + 8)) return oom(err);
    for (size_t i = 0; i < size;) {
        uint32_t c;
        size_t n = tok_utf8_decode(text + i, size - i, &c);
        char encoded[8];
        size_t m;
        if (c == 0x130) {
            m = tok_utf8_encode('i', encoded);
            m += tok_utf8_encode(0x307, encoded + m);
        } else {
            m = tok_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)c), encoded);
        }
        if (!tok_buffer_append(out, encoded, m)) return oom(err);
        i += n;
    }
    return MLXE_OK;
}

static mlxe_status strip(const tok_normalizer *nz, const char *text, size_t size, tok_buffer *out,
                         mlxe_error *err) {
    size_t start = 0, end = size;
    if (nz->strip_left) {
        while (start < end) {
            uint32_t c;
            size_t n = tok_utf8_decode(text + start, end - start, &c);
            if (!tok_char_is_whitespace(c)) break;
            start += n;
        }
    }
    if (nz->strip_right) {
        while (end > start) {
            size_t k = end - 1;
            while (k > start && ((unsigned char)text[k] & 0xC0) == 0x80) k--;
            uint32_t c;
            tok_utf8_decode(text + k, end - k, &c);
            if (!tok_char_is_whitespace(c)) break;
            end = k;
        }
    }
    out->size = 0;
    return tok_buffer_append(out, text + start, end - start) ? MLXE_OK : oom(err);
}

static mlxe_status strip_accents(const char *text, size_t size, tok_buffer *out, mlxe_error *err) {
    out->size = 0;
    if (!tok_buffer_reserve(out, size)) return oom(err);
    for (size_t i = 0; i < size;) {
        uint32_t c;
        size_t n = tok_utf8_decode(text + i, size - i, &c);
        if (!tok_char_is_combining_mark(c) && !tok_buffer_append(out, text + i, n)) return oom(err);
        i += n;
    }
    return MLXE_OK;
}

static mlxe_status replace(const tok_normalizer *nz, const char *text, size_t size, tok_work *work,
                           tok_buffer *out, mlxe_error *err) {
    tok_segment_list segments = {0};
    mlxe_status st = tok_pattern_find(&nz->pattern, text, size, &work->matcher, &segments, err);
    out->size = 0;
    if (st == MLXE_OK && !tok_buffer_append(out, "", 0)) st = oom(err);
    for (size_t i = 0; st == MLXE_OK && i < segments.count; i++) {
        const tok_segment *s = &segments.items[i];
        bool ok = s->is_match ? tok_buffer_append(out, nz->content, nz->content_size)
                              : tok_buffer_append(out, text + s->start, s->end - s->start);
        if (!ok) st = oom(err);
    }
    free(segments.items);
    return st;
}

mlxe_status tok_normalize(const tok_normalizer *nz, const char *text, size_t size, tok_work *work,
                          tok_buffer *out, mlxe_error *err) {
    switch (nz->kind) {
    case TOK_NORM_NFC: return unicode_form(UTF8PROC_COMPOSE, text, size, out, err);
    case TOK_NORM_NFD: return unicode_form(UTF8PROC_DECOMPOSE, text, size, out, err);
    case TOK_NORM_NFKC:
        return unicode_form((utf8proc_option_t)(UTF8PROC_COMPOSE | UTF8PROC_COMPAT), text, size, out, err);
    case TOK_NORM_NFKD:
        return unicode_form((utf8proc_option_t)(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT), text, size, out, err);
    case TOK_NORM_LOWERCASE: return lowercase(text, size, out, err);
    case TOK_NORM_STRIP: return strip(nz, text, size, out, err);
    case TOK_NORM_STRIP_ACCENTS: return strip_accents(text, size, out, err);
    case TOK_NORM_REPLACE: return replace(nz, text, size, work, out, err);
    case TOK_NORM_PREPEND:
        out->size = 0;
        if ((size && !tok_buffer_append(out, nz->content, nz->content_size)) ||
            !tok_buffer_append(out, text, size))
            return oom(err);
        return MLXE_OK;
    case TOK_NORM_SEQUENCE: {
        out->size = 0;
        if (!tok_buffer_append(out, text, size)) return oom(err);
        tok_buffer temp = {0};
        for (size_t i = 0; i < nz->n_children; i++) {
            mlxe_status st = tok_normalize(&nz->children[i], out->data, out->size, work, &temp, err);
            if (st != MLXE_OK) {
                tok_buffer_free(&temp);
                return st;
            }
            tok_buffer swap = *out;
            *out = temp;
            temp = swap;
        }
        tok_buffer_free(&temp);
        return MLXE_OK;
    }
    }
    return mlxe_error_set(err, MLXE_ERR_INTERNAL, "tokenizer: unknown normalizer kind");
}

void tok_normalizer_free(tok_normalizer *nz) {
    if (!nz) return;
    tok_pattern_free(&nz->pattern);
    free(nz->content);
    for (size_t i = 0; i < nz->n_children; i++) tok_normalizer_free(&nz->children[i]);
    free(nz->children);
    nz->children = NULL;
    nz->n_children = 0;
}
