/* tokenizer/unicode.c — UTF-8 helpers and Rust-compatible char classes. */
#include "tokenizer/unicode.h"

#include <utf8proc.h>

size_t tok_utf8_decode(const char *text, size_t size, uint32_t *codepoint) {
    const unsigned char *s = (const unsigned char *)text;
    unsigned char c = s[0];
    if (c < 0x80 || size < 2) {
        *codepoint = c;
        return 1;
    }
    if (c < 0xE0) {
        *codepoint = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0 || size < 4) {
        if (size < 3) {
            *codepoint = c;
            return 1;
        }
        *codepoint = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *codepoint = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                 ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t tok_utf8_encode(uint32_t c, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | (c >> 6));
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (c >> 12));
        o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (c >> 18));
    o[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* The valid second-byte range for a lead byte (Unicode table 3-7), or 0. */
static void second_byte_range(unsigned char lead, unsigned char *lo, unsigned char *hi, int *need) {
    *lo = 0x80;
    *hi = 0xBF;
    *need = 0;
    if (lead >= 0xC2 && lead <= 0xDF) *need = 1;
    else if (lead == 0xE0) { *need = 2; *lo = 0xA0; }
    else if (lead >= 0xE1 && lead <= 0xEC) *need = 2;
    else if (lead == 0xED) { *need = 2; *hi = 0x9F; }
    else if (lead >= 0xEE && lead <= 0xEF) *need = 2;
    else if (lead == 0xF0) { *need = 3; *lo = 0x90; }
    else if (lead >= 0xF1 && lead <= 0xF3) *need = 3;
    else if (lead == 0xF4) { *need = 3; *hi = 0x8F; }
}

/* Length of the valid character at s, 0 if invalid or cut short. */
static size_t valid_char(const unsigned char *s, size_t size) {
    if (s[0] < 0x80) return 1;
    unsigned char lo, hi;
    int need;
    second_byte_range(s[0], &lo, &hi, &need);
    if (!need || size < (size_t)need + 1) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (int i = 2; i <= need; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return (size_t)need + 1;
}

size_t tok_utf8_valid_prefix(const char *text, size_t size) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < size) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = valid_char(s + i, size - i);
        if (!n) break;
        i += n;
    }
    return i;
}

size_t tok_utf8_invalid_length(const char *text, size_t size) {
    const unsigned char *s = (const unsigned char *)text;
    unsigned char lo, hi;
    int need;
    second_byte_range(s[0], &lo, &hi, &need);
    if (!need) return 1;
    size_t i = 1;
    if (i < size && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < size && (int)i <= need && (s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

bool tok_utf8_incomplete(const char *text, size_t size) {
    const unsigned char *s = (const unsigned char *)text;
    if (size == 0) return false;
    unsigned char lo, hi;
    int need;
    second_byte_range(s[0], &lo, &hi, &need);
    if (!need || size > (size_t)need) return false;
    if (size >= 2 && (s[1] < lo || s[1] > hi)) return false;
    for (size_t i = 2; i < size; i++)
        if ((s[i] & 0xC0) != 0x80) return false;
    return true;
}

bool tok_char_is_whitespace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

bool tok_char_is_numeric(uint32_t c) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool tok_char_is_punctuation(uint32_t c) {
    if (c < 0x80)
        return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
               (c >= 0x7B && c <= 0x7E);
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool tok_char_is_word(uint32_t c) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_NO) || cat == UTF8PROC_CATEGORY_PC;
}

bool tok_char_is_combining_mark(uint32_t c) {
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat >= UTF8PROC_CATEGORY_MN && cat <= UTF8PROC_CATEGORY_ME;
}
