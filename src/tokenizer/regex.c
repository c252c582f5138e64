/* tokenizer/regex.c — Oniguruma-compatible regexes on PCRE2 (see regex.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/regex.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

struct tok_regex {
    pcre2_code *code;
};

/* Oniguruma's Unicode \s and \w, as class bodies (see the header). */
static const char ONIG_SPACE_BODY[] = "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}";
static const char ONIG_WORD_BODY[] = "\\p{L}\\p{M}\\p{Nd}\\p{Pc}";

typedef struct text_out {
    char *data;
    size_t size, capacity;
    bool failed;
} text_out;

static void out_put(text_out *out, const char *s, size_t n) {
    if (out->failed) return;
    if (out->size + n + 1 > out->capacity) {
        size_t capacity = out->capacity ? out->capacity * 2 : 256;
        while (capacity < out->size + n + 1) capacity *= 2;
        char *data = realloc(out->data, capacity);
        if (!data) {
            out->failed = true;
            return;
        }
        out->data = data;
        out->capacity = capacity;
    }
    memcpy(out->data + out->size, s, n);
    out->size += n;
    out->data[out->size] = '\0';
}
static void out_str(text_out *out, const char *s) { out_put(out, s, strlen(s)); }

/* Rewrites \s, \S, \w, \W to Oniguruma's sets. Inside a character class
 * \s and \w become their bodies; \S and \W there are left to PCRE2. */
static char *translate(const char *pattern, size_t size) {
    text_out out = {0};
    int class_depth = 0;
    for (size_t i = 0; i < size; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < size) {
            char e = pattern[i + 1];
            if (e == 's' || e == 'w') {
                const char *body = e == 's' ? ONIG_SPACE_BODY : ONIG_WORD_BODY;
                if (class_depth > 0) {
                    out_str(&out, body);
                } else {
                    out_str(&out, "[");
                    out_str(&out, body);
                    out_str(&out, "]");
                }
                i++;
                continue;
            }
            if ((e == 'S' || e == 'W') && class_depth == 0) {
                out_str(&out, "[^");
                out_str(&out, e == 'S' ? ONIG_SPACE_BODY : ONIG_WORD_BODY);
                out_str(&out, "]");
                i++;
                continue;
            }
            out_put(&out, pattern + i, 2);
            i++;
            continue;
        }
        if (c == '[') {
            class_depth++;
            out_put(&out, &c, 1);
            /* a ']' right after '[' or '[^' is a literal in both engines */
            if (i + 1 < size && pattern[i + 1] == '^') {
                out_put(&out, "^", 1);
                i++;
            }
            if (i + 1 < size && pattern[i + 1] == ']') {
                out_put(&out, "\\]", 2);
                i++;
            }
            continue;
        }
        if (c == ']' && class_depth > 0) class_depth--;
        out_put(&out, &c, 1);
    }
    if (out.failed || !out.data) {
        if (!out.failed && !out.data) {
            out.data = calloc(1, 1);
            return out.data;
        }
        free(out.data);
        return NULL;
    }
    return out.data;
}

mlxe_status tok_regex_compile(const char *pattern, size_t size, const char *what, tok_regex **out,
                              mlxe_error *err) {
    *out = NULL;
    char *translated = translate(pattern, size);
    if (!translated) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    int code_error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)translated, strlen(translated),
                                     PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &code_error,
                                     &error_offset, NULL);
    free(translated);
    if (!code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(code_error, message, sizeof message);
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: regex '%.200s' is not supported by PCRE2 (%s near offset %zu)",
                              what, pattern, (const char *)message, (size_t)error_offset);
    }
    /* JIT makes matching several times faster; without it PCRE2 interprets. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    tok_regex *regex = malloc(sizeof *regex);
    if (!regex) {
        pcre2_code_free(code);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    }
    regex->code = code;
    *out = regex;
    return MLXE_OK;
}

void tok_regex_free(tok_regex *regex) {
    if (!regex) return;
    pcre2_code_free(regex->code);
    free(regex);
}

void tok_regex_matcher_free(tok_regex_matcher *matcher) {
    if (matcher->match_data) pcre2_match_data_free(matcher->match_data);
    matcher->match_data = NULL;
}

static size_t utf8_char_size(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xF0) return 4;
    if (c >= 0xE0) return 3;
    if (c >= 0xC0) return 2;
    return 1;
}

int tok_regex_next(const tok_regex *regex, tok_regex_matcher *matcher, const char *text,
                   size_t size, size_t *position, size_t *last_match_end, size_t *match_start,
                   size_t *match_end, mlxe_error *err) {
    if (!matcher->match_data) {
        /* 1 pair is enough: we read only the whole match */
        matcher->match_data = pcre2_match_data_create(1, NULL);
        if (!matcher->match_data) {
            mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "regex: out of memory");
            return -1;
        }
    }
    for (;;) {
        if (*position > size) return 0;
        int rc = pcre2_match(regex->code, (PCRE2_SPTR)text, size, *position, PCRE2_NO_UTF_CHECK,
                             matcher->match_data, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) return 0;
        if (rc < 0) {
            PCRE2_UCHAR message[256];
            pcre2_get_error_message(rc, message, sizeof message);
            mlxe_error_set(err, MLXE_ERR_LIMIT, "regex matching failed: %s", (const char *)message);
            return -1;
        }
        PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(matcher->match_data);
        size_t s = ovector[0], e = ovector[1];
        if (s == e && *last_match_end == e) {
            /* onig FindMatches: skip one character past an empty match at
             * the end of the previous one */
            *position += *position < size ? utf8_char_size((unsigned char)text[*position]) : 1;
            continue;
        }
        *position = e;
        *last_match_end = e;
        *match_start = s;
        *match_end = e;
        return 1;
    }
}
