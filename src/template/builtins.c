/* template/builtins.c — Jinja2's filters and tests, the global functions
 * transformers provides, and the Python str/dict/list methods that Jinja2's
 * ImmutableSandboxedEnvironment lets templates call.
 *
 * Each behaviour follows the Python it imitates (jinja2/filters.py,
 * jinja2/tests.py, jinja2/sandbox.py, CPython's str methods) because a chat
 * template's output must equal what transformers renders; the comments name
 * the quirks that matter (e.g. `indent` adds a newline before splitting,
 * `title` capitalises after `-`, spaces and brackets, `int` falls back to
 * float parsing). Methods that would mutate a list or dict fail as the
 * immutable sandbox makes them fail. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "template/interp.h"

/* ---- argument helpers ---- */

static const tpl_value *arg(const tpl_args *args, size_t index, const char *name) {
    if (name)
        for (size_t i = 0; i < args->n_named; i++)
            if (!strcmp(args->names[i], name)) return &args->named[i];
    if (index < args->n_positional) return &args->positional[index];
    return NULL;
}

static tpl_value arg_or(const tpl_args *args, size_t index, const char *name, tpl_value fallback) {
    const tpl_value *v = arg(args, index, name);
    return v ? *v : fallback;
}

static bool arg_bool(const tpl_args *args, size_t index, const char *name, bool fallback) {
    const tpl_value *v = arg(args, index, name);
    return v ? tpl_truthy(*v) : fallback;
}

static tpl_string *need_string(tpl_interp *in, tpl_value v, const char *what) {
    if (v.type != TPL_STRING)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s expects a string, got '%s'", what, tpl_type_name(v));
    return v.as.string;
}

static int64_t need_int(tpl_interp *in, tpl_value v, const char *what) {
    if (v.type == TPL_INT) return v.as.integer;
    if (v.type == TPL_BOOL) return v.as.boolean;
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s: '%s' object cannot be interpreted as an integer", what,
             tpl_type_name(v));
}

static tpl_value soft_str(tpl_interp *in, tpl_value v) { return tpl_to_string(in->rt, v); }

/* Python's int(float): truncation; we have no integers beyond 64 bits. */
static int64_t float_to_int(tpl_interp *in, double d) {
    if (isnan(d) || isinf(d)) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "cannot convert float %s to integer", isnan(d) ? "NaN" : "infinity");
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0)
        tpl_fail(in->rt, MLXE_ERR_UNSUPPORTED, "integer %.17g does not fit in 64 bits", d);
    return (int64_t)d;
}

static void need_hashable(tpl_interp *in, tpl_value v) {
    if ((v.type == TPL_LIST && !v.as.list->is_tuple) || v.type == TPL_DICT)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unhashable type: '%s'", tpl_type_name(v));
}

static tpl_value as_generator(tpl_value list) {
    list.as.list->is_generator = true;
    return list;
}

static void need_sized(tpl_interp *in, tpl_value v) {
    if (v.type == TPL_LIST && v.as.list->is_generator)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "object of type 'generator' has no len()");
}

/* markupsafe.escape of plain text. */
static tpl_value html_escape(tpl_interp *in, tpl_value s) {
    tpl_buffer b = {0};
    for (size_t i = 0; i < s.as.string->length; i++) {
        char c = s.as.string->data[i];
        const char *rep = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '"' ? "&#34;"
                          : c == '\'' ? "&#39;" : NULL;
        if (rep) tpl_buffer_append_cstr(in->rt, &b, rep);
        else tpl_buffer_append(in->rt, &b, &c, 1);
    }
    tpl_value out = tpl_buffer_to_value(in->rt, &b);
    out.as.string->is_markup = true;
    return out;
}

static tpl_value keep_markup(tpl_value result, tpl_value input) {
    if (result.type == TPL_STRING && input.type == TPL_STRING && input.as.string->is_markup &&
        result.as.string != input.as.string)
        result.as.string->is_markup = true;
    return result;
}

/* ---- case mapping and whitespace, code point by code point ---- */

typedef enum case_op { CASE_UPPER, CASE_LOWER, CASE_TITLE } case_op;

static void append_cp(tpl_interp *in, tpl_buffer *b, uint32_t cp) {
    char bytes[4];
    tpl_buffer_append(in->rt, b, bytes, tpl_utf8_encode(cp, bytes));
}

static uint32_t map_case(uint32_t cp, case_op op) {
    if (cp < 0x80) {
        if (op == CASE_LOWER) return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
        return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
    }
    utf8proc_int32_t c = (utf8proc_int32_t)cp;
    if (op == CASE_UPPER) return (uint32_t)utf8proc_toupper(c);
    if (op == CASE_LOWER) return (uint32_t)utf8proc_tolower(c);
    return (uint32_t)utf8proc_totitle(c);
}

/* The unconditional multi-character mappings of Unicode's SpecialCasing.txt
 * that Python's str.upper/lower/title apply and simple case mapping lacks
 * (ß becomes "SS", not U+1E9E). NULL when cp has none for op. */
static const char *special_case(uint32_t cp, case_op op) {
    static const struct { uint32_t cp; const char *lower, *title, *upper; } table[] = {
        {0x00DF, NULL, "Ss", "SS"},           {0x0130, "i\xcc\x87", NULL, NULL},
        {0x0149, NULL, "\xca\xbcN", "\xca\xbcN"}, {0x01F0, NULL, "J\xcc\x8c", "J\xcc\x8c"},
        {0x1E96, NULL, "H\xcc\xb1", "H\xcc\xb1"}, {0x1E97, NULL, "T\xcc\x88", "T\xcc\x88"},
        {0x1E98, NULL, "W\xcc\x8a", "W\xcc\x8a"}, {0x1E99, NULL, "Y\xcc\x8a", "Y\xcc\x8a"},
        {0x1E9A, NULL, "A\xca\xbe", "A\xca\xbe"}, {0xFB00, NULL, "Ff", "FF"},
        {0xFB01, NULL, "Fi", "FI"},             {0xFB02, NULL, "Fl", "FL"},
        {0xFB03, NULL, "Ffi", "FFI"},           {0xFB04, NULL, "Ffl", "FFL"},
        {0xFB05, NULL, "St", "ST"},             {0xFB06, NULL, "St", "ST"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].cp == cp) return op == CASE_LOWER ? table[i].lower : op == CASE_TITLE ? table[i].title : table[i].upper;
    return NULL;
}

/* Appends cp mapped by op, special cases included. */
static void append_case(tpl_interp *in, tpl_buffer *b, uint32_t cp, case_op op) {
    const char *special = cp >= 0x80 ? special_case(cp, op) : NULL;
    if (special) tpl_buffer_append_cstr(in->rt, b, special);
    else append_cp(in, b, map_case(cp, op));
}

static bool is_cased(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

static tpl_value change_case(tpl_interp *in, tpl_string *s, case_op op) {
    tpl_buffer b = {0};
    size_t pos = 0;
    while (pos < s->length) append_case(in, &b, tpl_utf8_next(s->data, s->length, &pos), op);
    return tpl_buffer_to_value(in->rt, &b);
}

/* Python's str.capitalize: first character title-cased, the rest lower-cased. */
static tpl_value capitalize(tpl_interp *in, tpl_string *s) {
    tpl_buffer b = {0};
    size_t pos = 0;
    bool first = true;
    while (pos < s->length) {
        uint32_t cp = tpl_utf8_next(s->data, s->length, &pos);
        append_case(in, &b, cp, first ? CASE_TITLE : CASE_LOWER);
        first = false;
    }
    return tpl_buffer_to_value(in->rt, &b);
}

/* Python's str.title: a cased character after an uncased one starts a word. */
static tpl_value python_title(tpl_interp *in, tpl_string *s) {
    tpl_buffer b = {0};
    size_t pos = 0;
    bool previous_cased = false;
    while (pos < s->length) {
        uint32_t cp = tpl_utf8_next(s->data, s->length, &pos);
        bool cased = is_cased(cp);
        if (cased) append_case(in, &b, cp, previous_cased ? CASE_LOWER : CASE_TITLE);
        else append_cp(in, &b, cp);
        previous_cased = cased;
    }
    return tpl_buffer_to_value(in->rt, &b);
}

/* Jinja's title filter: words start after runs of '-', whitespace, '(', '{', '[', '<'. */
static tpl_value jinja_title(tpl_interp *in, tpl_string *s) {
    tpl_buffer b = {0};
    size_t pos = 0;
    bool word_start = true;
    while (pos < s->length) {
        uint32_t cp = tpl_utf8_next(s->data, s->length, &pos);
        bool separator = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || tpl_is_space(cp);
        if (separator) {
            append_cp(in, &b, cp);
            word_start = true;
        } else {
            append_case(in, &b, cp, word_start ? CASE_UPPER : CASE_LOWER);
            word_start = false;
        }
    }
    return tpl_buffer_to_value(in->rt, &b);
}

static bool in_char_set(uint32_t cp, const tpl_string *chars) {
    size_t pos = 0;
    while (pos < chars->length)
        if (tpl_utf8_next(chars->data, chars->length, &pos) == cp) return true;
    return false;
}

/* str.strip/lstrip/rstrip with optional chars (None: whitespace). */
static tpl_value strip(tpl_interp *in, tpl_string *s, const tpl_value *chars, bool left, bool right) {
    const tpl_string *set = chars && chars->type == TPL_STRING ? chars->as.string : NULL;
    if (chars && chars->type != TPL_STRING && chars->type != TPL_NONE && chars->type != TPL_UNDEFINED)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "strip arg must be None or str");
    size_t start = 0, end = s->length;
    if (left)
        while (start < end) {
            size_t p = start;
            uint32_t cp = tpl_utf8_next(s->data, s->length, &p);
            if (set ? !in_char_set(cp, set) : !tpl_is_space(cp)) break;
            start = p;
        }
    if (right)
        while (end > start) {
            size_t q = end - 1;
            while (q > start && ((unsigned char)s->data[q] & 0xc0) == 0x80) q--;
            size_t p = q;
            uint32_t cp = tpl_utf8_next(s->data, s->length, &p);
            if (set ? !in_char_set(cp, set) : !tpl_is_space(cp)) break;
            end = q;
        }
    return tpl_str(in->rt, s->data + start, end - start);
}

static tpl_value replace(tpl_interp *in, tpl_string *s, tpl_string *old, tpl_string *new_text, int64_t count) {
    tpl_buffer b = {0};
    if (old->length == 0) {
        /* Python inserts the replacement before every character and at the end. */
        size_t pos = 0;
        int64_t done = 0;
        while (pos <= s->length) {
            if (count < 0 || done < count) {
                tpl_buffer_append(in->rt, &b, new_text->data, new_text->length);
                done++;
            }
            if (pos == s->length) break;
            size_t start = pos;
            tpl_utf8_next(s->data, s->length, &pos);
            tpl_buffer_append(in->rt, &b, s->data + start, pos - start);
        }
        return tpl_buffer_to_value(in->rt, &b);
    }
    size_t pos = 0;
    int64_t done = 0;
    while (pos < s->length) {
        const char *hit = count >= 0 && done >= count ? NULL
                          : memmem(s->data + pos, s->length - pos, old->data, old->length);
        if (!hit) break;
        size_t at = (size_t)(hit - s->data);
        tpl_buffer_append(in->rt, &b, s->data + pos, at - pos);
        tpl_buffer_append(in->rt, &b, new_text->data, new_text->length);
        pos = at + old->length;
        done++;
    }
    tpl_buffer_append(in->rt, &b, s->data + pos, s->length - pos);
    return tpl_buffer_to_value(in->rt, &b);
}

static tpl_value split(tpl_interp *in, tpl_string *s, const tpl_value *separator, int64_t max_split, bool from_right) {
    tpl_value out = tpl_list_new(in->rt, 0, false);
    if (!separator || separator->type == TPL_NONE) {
        /* Whitespace runs; leading/trailing whitespace gives no empty parts. */
        if (from_right) {
            size_t end = s->length;
            tpl_value parts = tpl_list_new(in->rt, 0, false);
            int64_t splits = 0;
            for (;;) {
                while (end > 0) {
                    size_t q = end - 1;
                    while (q > 0 && ((unsigned char)s->data[q] & 0xc0) == 0x80) q--;
                    size_t p = q;
                    if (!tpl_is_space(tpl_utf8_next(s->data, s->length, &p))) break;
                    end = q;
                }
                if (end == 0) break;
                size_t start = end;
                if (max_split >= 0 && splits >= max_split) start = 0;
                else
                    while (start > 0) {
                        size_t q = start - 1;
                        while (q > 0 && ((unsigned char)s->data[q] & 0xc0) == 0x80) q--;
                        size_t p = q;
                        if (tpl_is_space(tpl_utf8_next(s->data, s->length, &p))) break;
                        start = q;
                    }
                tpl_list_push(in->rt, parts.as.list, tpl_str(in->rt, s->data + start, end - start));
                splits++;
                end = start;
            }
            for (size_t i = parts.as.list->length; i > 0; i--) tpl_list_push(in->rt, out.as.list, parts.as.list->items[i - 1]);
            return out;
        }
        size_t pos = 0;
        int64_t splits = 0;
        for (;;) {
            while (pos < s->length) {
                size_t p = pos;
                if (!tpl_is_space(tpl_utf8_next(s->data, s->length, &p))) break;
                pos = p;
            }
            if (pos >= s->length) break;
            size_t start = pos;
            if (max_split >= 0 && splits >= max_split) {
                /* The rest, with its trailing whitespace stripped. */
                tpl_value rest = strip(in, tpl_string_new(in->rt, s->data + start, s->length - start), NULL, false, true);
                tpl_list_push(in->rt, out.as.list, rest);
                break;
            }
            while (pos < s->length) {
                size_t p = pos;
                if (tpl_is_space(tpl_utf8_next(s->data, s->length, &p))) break;
                pos = p;
            }
            tpl_list_push(in->rt, out.as.list, tpl_str(in->rt, s->data + start, pos - start));
            splits++;
        }
        return out;
    }
    tpl_string *sep = need_string(in, *separator, "split");
    if (sep->length == 0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "empty separator");
    if (from_right) {
        tpl_value parts = tpl_list_new(in->rt, 0, false);
        size_t end = s->length;
        int64_t splits = 0;
        for (;;) {
            const char *hit = NULL;
            if (max_split < 0 || splits < max_split)
                for (size_t i = end >= sep->length ? end - sep->length + 1 : 0; i > 0; i--)
                    if (memcmp(s->data + i - 1, sep->data, sep->length) == 0) { hit = s->data + i - 1; break; }
            if (!hit) break;
            size_t at = (size_t)(hit - s->data);
            tpl_list_push(in->rt, parts.as.list, tpl_str(in->rt, s->data + at + sep->length, end - at - sep->length));
            end = at;
            splits++;
        }
        tpl_list_push(in->rt, parts.as.list, tpl_str(in->rt, s->data, end));
        for (size_t i = parts.as.list->length; i > 0; i--) tpl_list_push(in->rt, out.as.list, parts.as.list->items[i - 1]);
        return out;
    }
    size_t pos = 0;
    int64_t splits = 0;
    for (;;) {
        const char *hit = max_split >= 0 && splits >= max_split ? NULL
                          : memmem(s->data + pos, s->length - pos, sep->data, sep->length);
        if (!hit) break;
        size_t at = (size_t)(hit - s->data);
        tpl_list_push(in->rt, out.as.list, tpl_str(in->rt, s->data + pos, at - pos));
        pos = at + sep->length;
        splits++;
    }
    tpl_list_push(in->rt, out.as.list, tpl_str(in->rt, s->data + pos, s->length - pos));
    return out;
}

/* Python's str.splitlines line boundaries. */
static size_t line_break_at(const tpl_string *s, size_t pos, size_t *width) {
    size_t p = pos;
    uint32_t cp = tpl_utf8_next(s->data, s->length, &p);
    *width = p - pos;
    if (cp == '\r' && p < s->length && s->data[p] == '\n') { *width = p + 1 - pos; return 1; }
    return cp == '\n' || cp == '\r' || cp == 0x0b || cp == 0x0c || cp == 0x1c || cp == 0x1d || cp == 0x1e ||
           cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

static tpl_value splitlines(tpl_interp *in, tpl_string *s, bool keep_ends) {
    tpl_value out = tpl_list_new(in->rt, 0, false);
    size_t start = 0, pos = 0;
    while (pos < s->length) {
        size_t width;
        if (line_break_at(s, pos, &width)) {
            tpl_list_push(in->rt, out.as.list, tpl_str(in->rt, s->data + start, (keep_ends ? pos + width : pos) - start));
            pos += width;
            start = pos;
        } else {
            pos += width;
        }
    }
    if (start < s->length) tpl_list_push(in->rt, out.as.list, tpl_str(in->rt, s->data + start, s->length - start));
    return out;
}

static bool starts_or_ends(tpl_interp *in, tpl_string *s, tpl_value affix, bool at_end) {
    if (affix.type == TPL_LIST && affix.as.list->is_tuple) {
        for (size_t i = 0; i < affix.as.list->length; i++)
            if (starts_or_ends(in, s, affix.as.list->items[i], at_end)) return true;
        return false;
    }
    tpl_string *a = need_string(in, affix, at_end ? "endswith" : "startswith");
    if (a->length > s->length) return false;
    return memcmp(s->data + (at_end ? s->length - a->length : 0), a->data, a->length) == 0;
}

static int64_t find(tpl_string *s, tpl_string *needle, bool from_right) {
    if (needle->length > s->length) return -1;
    size_t found = SIZE_MAX;
    if (from_right) {
        for (size_t i = s->length - needle->length + 1; i > 0; i--)
            if (memcmp(s->data + i - 1, needle->data, needle->length) == 0) { found = i - 1; break; }
    } else {
        const char *hit = memmem(s->data, s->length, needle->data, needle->length);
        if (hit) found = (size_t)(hit - s->data);
    }
    if (found == SIZE_MAX) return -1;
    int64_t chars = 0;
    for (size_t pos = 0; pos < found;) {
        tpl_utf8_next(s->data, s->length, &pos);
        chars++;
    }
    return chars;
}

static int64_t count_substring(tpl_string *s, tpl_string *needle) {
    if (needle->length == 0) return tpl_string_chars(s) + 1;
    int64_t n = 0;
    size_t pos = 0;
    for (;;) {
        const char *hit = memmem(s->data + pos, s->length - pos, needle->data, needle->length);
        if (!hit) return n;
        n++;
        pos = (size_t)(hit - s->data) + needle->length;
    }
}

static tpl_value pad(tpl_interp *in, tpl_string *s, int64_t width, tpl_string *fill, int align /* -1 left, 0 center, 1 right */) {
    int64_t n = tpl_string_chars(s);
    if (width <= n) return (tpl_value){TPL_STRING, {.string = s}};
    if (width > (int64_t)in->rt->limits.max_output)
        tpl_fail(in->rt, MLXE_ERR_LIMIT, "padding width beyond the output limit (max_output_bytes)");
    int64_t total = width - n, left_pad;
    if (align < 0) left_pad = 0;
    else if (align > 0) left_pad = total;
    else left_pad = total / 2 + (total & width & 1); /* CPython's centering rule */
    tpl_buffer b = {0};
    const char *f = fill ? fill->data : " ";
    size_t fl = fill ? fill->length : 1;
    for (int64_t i = 0; i < left_pad; i++) tpl_buffer_append(in->rt, &b, f, fl);
    tpl_buffer_append(in->rt, &b, s->data, s->length);
    for (int64_t i = left_pad; i < total; i++) tpl_buffer_append(in->rt, &b, f, fl);
    return tpl_buffer_to_value(in->rt, &b);
}

static bool all_chars(tpl_string *s, int kind) {
    if (s->length == 0) return false;
    size_t pos = 0;
    bool any_cased = false;
    while (pos < s->length) {
        uint32_t cp = tpl_utf8_next(s->data, s->length, &pos);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        bool letter = c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT ||
                      c == UTF8PROC_CATEGORY_LM || c == UTF8PROC_CATEGORY_LO;
        bool digit = c == UTF8PROC_CATEGORY_ND;
        bool numeric = digit || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
        switch (kind) {
        case 'a': if (!letter) return false; break;
        case 'd': if (!digit) return false; break;
        case 'n': if (!numeric) return false; break;
        case 'A': if (!letter && !numeric) return false; break;
        case 's': if (!tpl_is_space(cp)) return false; break;
        case 'u':
            if (c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT) return false;
            if (c == UTF8PROC_CATEGORY_LU) any_cased = true;
            break;
        case 'l':
            if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) return false;
            if (c == UTF8PROC_CATEGORY_LL) any_cased = true;
            break;
        }
    }
    if (kind == 'u' || kind == 'l') return any_cased;
    return true;
}

/* ---- str.format (the sandbox's formatter for the common field forms) ---- */

static void format_spec_apply(tpl_interp *in, tpl_buffer *out, tpl_value v, const char *spec, size_t spec_length);

static tpl_value str_format(tpl_interp *in, tpl_string *f, const tpl_args *args) {
    tpl_buffer b = {0};
    size_t auto_index = 0;
    for (size_t i = 0; i < f->length; i++) {
        char c = f->data[i];
        if (c == '{' && i + 1 < f->length && f->data[i + 1] == '{') { tpl_buffer_append(in->rt, &b, "{", 1); i++; continue; }
        if (c == '}' && i + 1 < f->length && f->data[i + 1] == '}') { tpl_buffer_append(in->rt, &b, "}", 1); i++; continue; }
        if (c == '}') tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "Single '}' encountered in format string");
        if (c != '{') { tpl_buffer_append(in->rt, &b, &c, 1); continue; }
        size_t end = i + 1;
        int nesting = 1;
        while (end < f->length && nesting) {
            if (f->data[end] == '{') nesting++;
            else if (f->data[end] == '}') nesting--;
            if (nesting) end++;
        }
        if (end >= f->length) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "Single '{' encountered in format string");
        const char *field = f->data + i + 1;
        size_t field_length = end - i - 1;
        size_t name_end = 0;
        while (name_end < field_length && field[name_end] != '!' && field[name_end] != ':' &&
               field[name_end] != '.' && field[name_end] != '[')
            name_end++;
        tpl_value v;
        if (name_end == 0) {
            if (auto_index >= args->n_positional)
                tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "Replacement index %zu out of range for positional args tuple", auto_index);
            v = args->positional[auto_index++];
        } else if (field[0] >= '0' && field[0] <= '9') {
            size_t index = (size_t)strtoul(field, NULL, 10);
            if (index >= args->n_positional)
                tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "Replacement index %zu out of range for positional args tuple", index);
            v = args->positional[index];
        } else {
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(name_end < 127 ? name_end : 127), field);
            const tpl_value *named = arg(args, SIZE_MAX, name);
            if (!named) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "KeyError: '%s'", name);
            v = *named;
        }
        size_t p = name_end;
        while (p < field_length && (field[p] == '.' || field[p] == '[')) {
            if (field[p] == '.') {
                size_t q = p + 1;
                while (q < field_length && field[q] != '.' && field[q] != '[' && field[q] != '!' && field[q] != ':') q++;
                char attr[128];
                snprintf(attr, sizeof attr, "%.*s", (int)(q - p - 1 < 127 ? q - p - 1 : 127), field + p + 1);
                v = tpl_get_attr(in, v, tpl_cstr(in->rt, attr).as.string->data);
                p = q;
            } else {
                size_t q = p + 1;
                while (q < field_length && field[q] != ']') q++;
                char key[128];
                snprintf(key, sizeof key, "%.*s", (int)(q - p - 1 < 127 ? q - p - 1 : 127), field + p + 1);
                char *stop;
                long long index = strtoll(key, &stop, 10);
                v = tpl_get_item(in, v, *stop == '\0' && *key ? tpl_int(index) : tpl_cstr(in->rt, key));
                p = q + 1;
            }
        }
        bool repr = false;
        if (p < field_length && field[p] == '!') {
            repr = p + 1 < field_length && field[p + 1] == 'r';
            p += 2;
        }
        const char *spec = "";
        size_t spec_length = 0;
        if (p < field_length && field[p] == ':') {
            spec = field + p + 1;
            spec_length = field_length - p - 1;
        }
        if (repr) {
            tpl_buffer r = {0};
            tpl_write_repr(in->rt, &r, v, 0);
            v = tpl_buffer_to_value(in->rt, &r);
        }
        format_spec_apply(in, &b, v, spec, spec_length);
        i = end;
    }
    return tpl_buffer_to_value(in->rt, &b);
}

/* [[fill]align][sign][#][0][width][,][.precision][type] */
static void format_spec_apply(tpl_interp *in, tpl_buffer *out, tpl_value v, const char *spec, size_t spec_length) {
    char s[64];
    snprintf(s, sizeof s, "%.*s", (int)(spec_length < 63 ? spec_length : 63), spec);
    if (!*s) {
        tpl_write_str(in->rt, out, v);
        return;
    }
    const char *p = s;
    char fill = ' ';
    int align = 0; /* '<' '>' '^' '=' */
    if (p[0] && (p[1] == '<' || p[1] == '>' || p[1] == '^' || p[1] == '=')) { fill = p[0]; align = p[1]; p += 2; }
    else if (*p == '<' || *p == '>' || *p == '^' || *p == '=') align = *p++;
    char sign = 0;
    if (*p == '+' || *p == '-' || *p == ' ') sign = *p++;
    if (*p == '#') p++;
    if (*p == '0') { if (!align) { fill = '0'; align = '='; } p++; }
    int width = 0;
    while (*p >= '0' && *p <= '9') {
        width = width * 10 + (*p++ - '0');
        if (width > 100000) tpl_fail(in->rt, MLXE_ERR_LIMIT, "format width beyond 100000");
    }
    bool comma = false;
    if (*p == ',' || *p == '_') { comma = true; p++; }
    int precision = -1;
    if (*p == '.') {
        p++;
        precision = 0;
        while (*p >= '0' && *p <= '9') {
            precision = precision * 10 + (*p++ - '0');
            if (precision > 400) tpl_fail(in->rt, MLXE_ERR_LIMIT, "format precision beyond 400");
        }
    }
    char type = *p;
    (void)comma;
    char body[1024];
    bool numeric = tpl_is_number(v);
    if (v.type == TPL_STRING && (type == 0 || type == 's')) {
        tpl_string *str = v.as.string;
        size_t length = precision >= 0 ? tpl_string_offset(str, precision) : str->length;
        tpl_value cut = tpl_str(in->rt, str->data, length);
        char fill_text[2] = {fill, 0};
        tpl_value padded = pad(in, cut.as.string, width, tpl_string_new(in->rt, fill_text, 1),
                               align == '>' ? 1 : align == '^' ? 0 : -1);
        tpl_write_str(in->rt, out, padded);
        return;
    }
    if (!numeric) {
        tpl_write_str(in->rt, out, v);
        return;
    }
    char fmt[32];
    const char *sign_flag = sign == '+' ? "+" : sign == ' ' ? " " : "";
    if (type == 'd' || (type == 0 && v.type != TPL_FLOAT && precision < 0)) {
        if (v.type == TPL_FLOAT) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "Unknown format code 'd' for object of type 'float'");
        snprintf(fmt, sizeof fmt, "%%%s" PRId64, sign_flag);
        snprintf(body, sizeof body, fmt, v.type == TPL_BOOL ? (int64_t)v.as.boolean : v.as.integer);
    } else if (type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G' || type == '%') {
        double d = tpl_as_double(v) * (type == '%' ? 100.0 : 1.0);
        snprintf(fmt, sizeof fmt, "%%%s.%d%c", sign_flag, precision < 0 ? 6 : precision, type == '%' ? 'f' : type);
        snprintf(body, sizeof body, fmt, d);
        if (type == '%') strncat(body, "%", sizeof body - strlen(body) - 1);
    } else if (type == 'x' || type == 'X' || type == 'o' || type == 'b') {
        int64_t x = v.type == TPL_BOOL ? v.as.boolean : v.type == TPL_INT ? v.as.integer : float_to_int(in, v.as.number);
        if (type == 'b') {
            char bits[70];
            int n = 0;
            uint64_t u = x < 0 ? (uint64_t)(-x) : (uint64_t)x;
            do { bits[n++] = (char)('0' + (u & 1)); u >>= 1; } while (u);
            size_t o = 0;
            if (x < 0) body[o++] = '-';
            while (n) body[o++] = bits[--n];
            body[o] = 0;
        } else {
            snprintf(fmt, sizeof fmt, "%%%sll%c", sign_flag, type);
            snprintf(body, sizeof body, fmt, (long long)x);
        }
    } else {
        /* No type for a float: repr-like, or the precision as 'g'. */
        if (precision >= 0) {
            snprintf(fmt, sizeof fmt, "%%%s.%dg", sign_flag, precision);
            snprintf(body, sizeof body, fmt, tpl_as_double(v));
        } else {
            tpl_format_float(tpl_as_double(v), body, sizeof body);
        }
    }
    size_t length = strlen(body);
    if ((int)length >= width) {
        tpl_buffer_append(in->rt, out, body, length);
        return;
    }
    size_t total = (size_t)width - length;
    if (!align) align = '>';
    if (align == '=') {
        size_t sign_length = (body[0] == '-' || body[0] == '+' || body[0] == ' ') ? 1 : 0;
        tpl_buffer_append(in->rt, out, body, sign_length);
        for (size_t i = 0; i < total; i++) tpl_buffer_append(in->rt, out, &fill, 1);
        tpl_buffer_append(in->rt, out, body + sign_length, length - sign_length);
        return;
    }
    size_t left = align == '<' ? 0 : align == '>' ? total : total / 2;
    for (size_t i = 0; i < left; i++) tpl_buffer_append(in->rt, out, &fill, 1);
    tpl_buffer_append(in->rt, out, body, length);
    for (size_t i = left; i < total; i++) tpl_buffer_append(in->rt, out, &fill, 1);
}

/* ---- Python %-formatting ---- */

tpl_value tpl_percent_format(tpl_interp *in, tpl_string *format, tpl_value values) {
    tpl_buffer b = {0};
    size_t next_arg = 0;
    tpl_list *tuple = values.type == TPL_LIST && values.as.list->is_tuple ? values.as.list : NULL;
    bool used_single = false;
    for (size_t i = 0; i < format->length; i++) {
        char c = format->data[i];
        if (c != '%') { tpl_buffer_append(in->rt, &b, &c, 1); continue; }
        if (++i >= format->length) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "incomplete format");
        if (format->data[i] == '%') { tpl_buffer_append(in->rt, &b, "%", 1); continue; }
        tpl_value v;
        bool have_value = false;
        if (format->data[i] == '(') {
            size_t end = i + 1;
            while (end < format->length && format->data[end] != ')') end++;
            if (values.type != TPL_DICT) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "format requires a mapping");
            tpl_value key = tpl_str(in->rt, format->data + i + 1, end - i - 1);
            tpl_value *found = tpl_dict_get(in->rt, values.as.dict, key);
            if (!found) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "KeyError: '%s'", key.as.string->data);
            v = *found;
            have_value = true;
            i = end + 1;
        }
        char flags[8] = "";
        size_t n_flags = 0;
        while (i < format->length && strchr("-+ #0", format->data[i]) && n_flags < 7) flags[n_flags++] = format->data[i++];
        flags[n_flags] = 0;
        int width = 0, precision = -1;
        while (i < format->length && format->data[i] >= '0' && format->data[i] <= '9') {
            width = width * 10 + (format->data[i++] - '0');
            if (width > 100000) tpl_fail(in->rt, MLXE_ERR_LIMIT, "format width beyond 100000");
        }
        if (i < format->length && format->data[i] == '.') {
            i++;
            precision = 0;
            while (i < format->length && format->data[i] >= '0' && format->data[i] <= '9') {
                precision = precision * 10 + (format->data[i++] - '0');
                if (precision > 400) tpl_fail(in->rt, MLXE_ERR_LIMIT, "format precision beyond 400");
            }
        }
        if (i >= format->length) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "incomplete format");
        char type = format->data[i];
        if (!have_value) {
            if (tuple) {
                if (next_arg >= tuple->length) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "not enough arguments for format string");
                v = tuple->items[next_arg++];
            } else {
                if (used_single) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "not enough arguments for format string");
                v = values;
                used_single = true;
            }
        }
        char spec[48], body[1024];
        if (type == 's' || type == 'r' || type == 'a') {
            tpl_buffer text = {0};
            if (type == 's') tpl_write_str(in->rt, &text, v);
            else tpl_write_repr(in->rt, &text, v, 0);
            tpl_value t = tpl_buffer_to_value(in->rt, &text);
            size_t length = precision >= 0 ? tpl_string_offset(t.as.string, precision) : t.as.string->length;
            t = tpl_str(in->rt, t.as.string->data, length);
            tpl_write_str(in->rt, &b, pad(in, t.as.string, width, NULL, strchr(flags, '-') ? -1 : 1));
            continue;
        }
        if (!tpl_is_number(v))
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%%%c format: a real number is required, not %s", type, tpl_type_name(v));
        /* Width is applied here rather than by snprintf so that any width fits. */
        char plain_flags[8];
        size_t n_plain = 0;
        for (size_t f = 0; flags[f]; f++)
            if (flags[f] != '-' && flags[f] != '0') plain_flags[n_plain++] = flags[f];
        plain_flags[n_plain] = '\0';
        if (type == 'd' || type == 'i' || type == 'u') {
            int64_t x = v.type == TPL_FLOAT ? float_to_int(in, v.as.number) : v.type == TPL_BOOL ? v.as.boolean : v.as.integer;
            snprintf(spec, sizeof spec, "%%%s" PRId64, plain_flags);
            snprintf(body, sizeof body, spec, x);
        } else if (strchr("feEgGF", type)) {
            snprintf(spec, sizeof spec, "%%%s.%d%c", plain_flags, precision < 0 ? 6 : precision, type);
            snprintf(body, sizeof body, spec, tpl_as_double(v));
        } else if (strchr("xXo", type)) {
            snprintf(spec, sizeof spec, "%%%sll%c", plain_flags, type);
            snprintf(body, sizeof body, spec, (long long)(v.type == TPL_FLOAT ? float_to_int(in, v.as.number) : v.type == TPL_BOOL ? v.as.boolean : v.as.integer));
        } else if (type == 'c') {
            char ch[4];
            size_t n = tpl_utf8_encode((uint32_t)tpl_as_double(v), ch);
            tpl_buffer_append(in->rt, &b, ch, n);
            continue;
        } else {
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unsupported format character '%c'", type);
        }
        size_t length = strlen(body);
        size_t fill = (size_t)width > length ? (size_t)width - length : 0;
        if (strchr(flags, '-')) {
            tpl_buffer_append(in->rt, &b, body, length);
            for (size_t k = 0; k < fill; k++) tpl_buffer_append(in->rt, &b, " ", 1);
        } else if (strchr(flags, '0') && isfinite(tpl_as_double(v))) {
            size_t sign = (body[0] == '-' || body[0] == '+' || body[0] == ' ') ? 1 : 0;
            tpl_buffer_append(in->rt, &b, body, sign);
            for (size_t k = 0; k < fill; k++) tpl_buffer_append(in->rt, &b, "0", 1);
            tpl_buffer_append(in->rt, &b, body + sign, length - sign);
        } else {
            for (size_t k = 0; k < fill; k++) tpl_buffer_append(in->rt, &b, " ", 1);
            tpl_buffer_append(in->rt, &b, body, length);
        }
        continue;
    }
    if (tuple && next_arg < tuple->length)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "not all arguments converted during string formatting");
    /* A lone argument must be used, unless Python takes it for a mapping (dict, list). */
    if (!tuple && !used_single && values.type != TPL_DICT && values.type != TPL_LIST && values.type != TPL_UNDEFINED)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "not all arguments converted during string formatting");
    return tpl_buffer_to_value(in->rt, &b);
}

/* ---- methods ---- */

static const char *const STRING_METHODS[] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith", "upper",
    "lower", "title", "capitalize", "replace", "find", "rfind", "index", "rindex", "count", "join",
    "format", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric",
    "isdecimal", "removeprefix", "removesuffix", "zfill", "ljust", "rjust", "center", "partition",
    "rpartition", "swapcase", "casefold", NULL};
static const char *const DICT_METHODS[] = {"get", "items", "keys", "values", "copy", "pop", "popitem",
                                           "setdefault", "update", "clear", "fromkeys", NULL};
static const char *const LIST_METHODS[] = {"index", "count", "copy", "append", "extend", "insert", "pop",
                                           "remove", "reverse", "sort", "clear", NULL};
static const char *const LOOP_METHODS[] = {"cycle", "changed", NULL};

static bool in_list(const char *const *names, const char *name) {
    for (; *names; names++)
        if (!strcmp(*names, name)) return true;
    return false;
}

bool tpl_has_method(tpl_value self, const char *name) {
    switch (self.type) {
    case TPL_STRING: return in_list(STRING_METHODS, name);
    case TPL_DICT: return in_list(DICT_METHODS, name);
    case TPL_LIST:
        if (self.as.list->is_tuple) return !strcmp(name, "index") || !strcmp(name, "count");
        return in_list(LIST_METHODS, name);
    case TPL_LOOP: return in_list(LOOP_METHODS, name);
    default: return false;
    }
}

static tpl_value dict_items(tpl_interp *in, tpl_dict *d) {
    tpl_value out = tpl_list_new(in->rt, d->length, false);
    for (size_t i = 0; i < d->length; i++) {
        tpl_value pair = tpl_list_new(in->rt, 2, true);
        pair.as.list->items[0] = d->keys[i];
        pair.as.list->items[1] = d->values[i];
        pair.as.list->length = 2;
        out.as.list->items[out.as.list->length++] = pair;
    }
    return out;
}

static tpl_value string_method(tpl_interp *in, tpl_string *s, const char *name, const tpl_args *args) {
    const tpl_value *a0 = arg(args, 0, NULL);
    if (!strcmp(name, "strip")) return strip(in, s, a0, true, true);
    if (!strcmp(name, "lstrip")) return strip(in, s, a0, true, false);
    if (!strcmp(name, "rstrip")) return strip(in, s, a0, false, true);
    if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
        const tpl_value *sep = arg(args, 0, "sep");
        const tpl_value *max = arg(args, 1, "maxsplit");
        return split(in, s, sep, max ? need_int(in, *max, "maxsplit") : -1, name[0] == 'r');
    }
    if (!strcmp(name, "splitlines")) return splitlines(in, s, arg_bool(args, 0, "keepends", false));
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s() takes at least 1 argument", name);
        return tpl_bool(starts_or_ends(in, s, *a0, name[0] == 'e'));
    }
    if (!strcmp(name, "upper")) return change_case(in, s, CASE_UPPER);
    if (!strcmp(name, "lower") || !strcmp(name, "casefold")) return change_case(in, s, CASE_LOWER);
    if (!strcmp(name, "title")) return python_title(in, s);
    if (!strcmp(name, "capitalize")) return capitalize(in, s);
    if (!strcmp(name, "swapcase")) {
        tpl_buffer b = {0};
        size_t pos = 0;
        while (pos < s->length) {
            uint32_t cp = tpl_utf8_next(s->data, s->length, &pos);
            /* swapcase: lower-case letters go up, the others down */
            utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
            append_case(in, &b, cp, c == UTF8PROC_CATEGORY_LL ? CASE_UPPER : CASE_LOWER);
        }
        return tpl_buffer_to_value(in->rt, &b);
    }
    if (!strcmp(name, "replace")) {
        const tpl_value *old = arg(args, 0, NULL), *new_text = arg(args, 1, NULL), *count = arg(args, 2, "count");
        if (!old || !new_text) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "replace() takes at least 2 arguments");
        return replace(in, s, need_string(in, *old, "replace"), need_string(in, *new_text, "replace"),
                       count ? need_int(in, *count, "replace") : -1);
    }
    if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") || !strcmp(name, "rindex")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s() takes at least 1 argument", name);
        int64_t at = find(s, need_string(in, *a0, name), name[0] == 'r');
        if (at < 0 && strstr(name, "index")) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "substring not found");
        return tpl_int(at);
    }
    if (!strcmp(name, "count")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "count() takes at least 1 argument");
        return tpl_int(count_substring(s, need_string(in, *a0, "count")));
    }
    if (!strcmp(name, "join")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "join() takes exactly one argument");
        tpl_list *items = tpl_iterate(in->rt, *a0);
        tpl_buffer b = {0};
        for (size_t i = 0; i < items->length; i++) {
            if (items->items[i].type != TPL_STRING)
                tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "sequence item %zu: expected str instance, %s found", i,
                         tpl_type_name(items->items[i]));
            if (i) tpl_buffer_append(in->rt, &b, s->data, s->length);
            tpl_buffer_append(in->rt, &b, items->items[i].as.string->data, items->items[i].as.string->length);
        }
        return tpl_buffer_to_value(in->rt, &b);
    }
    if (!strcmp(name, "format")) return str_format(in, s, args);
    if (!strcmp(name, "isdigit") || !strcmp(name, "isdecimal")) return tpl_bool(all_chars(s, 'd'));
    if (!strcmp(name, "isnumeric")) return tpl_bool(all_chars(s, 'n'));
    if (!strcmp(name, "isalpha")) return tpl_bool(all_chars(s, 'a'));
    if (!strcmp(name, "isalnum")) return tpl_bool(all_chars(s, 'A'));
    if (!strcmp(name, "isspace")) return tpl_bool(all_chars(s, 's'));
    if (!strcmp(name, "isupper")) return tpl_bool(all_chars(s, 'u'));
    if (!strcmp(name, "islower")) return tpl_bool(all_chars(s, 'l'));
    if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s() takes exactly one argument", name);
        tpl_string *affix = need_string(in, *a0, name);
        bool suffix = name[6] == 's';
        if (starts_or_ends(in, s, *a0, suffix))
            return suffix ? tpl_str(in->rt, s->data, s->length - affix->length)
                          : tpl_str(in->rt, s->data + affix->length, s->length - affix->length);
        return (tpl_value){TPL_STRING, {.string = s}};
    }
    if (!strcmp(name, "zfill")) {
        int64_t width = a0 ? need_int(in, *a0, "zfill") : 0;
        int64_t n = tpl_string_chars(s);
        if (width <= n) return (tpl_value){TPL_STRING, {.string = s}};
        tpl_buffer b = {0};
        size_t sign = s->length && (s->data[0] == '-' || s->data[0] == '+') ? 1 : 0;
        tpl_buffer_append(in->rt, &b, s->data, sign);
        for (int64_t i = n; i < width; i++) tpl_buffer_append(in->rt, &b, "0", 1);
        tpl_buffer_append(in->rt, &b, s->data + sign, s->length - sign);
        return tpl_buffer_to_value(in->rt, &b);
    }
    if (!strcmp(name, "ljust") || !strcmp(name, "rjust") || !strcmp(name, "center")) {
        const tpl_value *fill = arg(args, 1, NULL);
        return pad(in, s, a0 ? need_int(in, *a0, name) : 0, fill ? need_string(in, *fill, name) : NULL,
                   name[0] == 'l' ? -1 : name[0] == 'r' ? 1 : 0);
    }
    if (!strcmp(name, "partition") || !strcmp(name, "rpartition")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s() takes exactly one argument", name);
        tpl_string *sep = need_string(in, *a0, name);
        tpl_value out = tpl_list_new(in->rt, 3, true);
        tpl_value parts = split(in, s, a0, 1, name[0] == 'r');
        if (parts.as.list->length == 2) {
            tpl_list_push(in->rt, out.as.list, parts.as.list->items[0]);
            tpl_list_push(in->rt, out.as.list, tpl_str(in->rt, sep->data, sep->length)); /* a copy: results may be marked */
            tpl_list_push(in->rt, out.as.list, parts.as.list->items[1]);
        } else if (name[0] == 'r') {
            tpl_list_push(in->rt, out.as.list, tpl_cstr(in->rt, ""));
            tpl_list_push(in->rt, out.as.list, tpl_cstr(in->rt, ""));
            tpl_list_push(in->rt, out.as.list, (tpl_value){TPL_STRING, {.string = s}});
        } else {
            tpl_list_push(in->rt, out.as.list, (tpl_value){TPL_STRING, {.string = s}});
            tpl_list_push(in->rt, out.as.list, tpl_cstr(in->rt, ""));
            tpl_list_push(in->rt, out.as.list, tpl_cstr(in->rt, ""));
        }
        return out;
    }
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "str method '%s' is not supported", name);
}

/* markupsafe.Markup's methods return Markup (strings, and the strings in
 * split()/partition() results); join() escapes the items it joins. */
static tpl_value mark_strings(tpl_value v) {
    if (v.type == TPL_STRING) v.as.string->is_markup = true;
    else if (v.type == TPL_LIST)
        for (size_t i = 0; i < v.as.list->length; i++)
            if (v.as.list->items[i].type == TPL_STRING) v.as.list->items[i].as.string->is_markup = true;
    return v;
}

tpl_value tpl_call_method(tpl_interp *in, const tpl_method *method, const tpl_args *args) {
    tpl_value self = method->self;
    const char *name = method->name;
    if (self.type == TPL_STRING && self.as.string->is_markup) {
        if (!strcmp(name, "join") && args->n_positional == 1) {
            tpl_list *items = tpl_iterate(in->rt, args->positional[0]);
            tpl_value escaped = tpl_list_new(in->rt, items->length, false);
            for (size_t i = 0; i < items->length; i++) {
                tpl_value item = items->items[i];
                if (item.type == TPL_STRING && !item.as.string->is_markup) item = html_escape(in, item);
                escaped.as.list->items[escaped.as.list->length++] = item;
            }
            tpl_args escaped_args = {&escaped, 1, NULL, NULL, 0};
            return mark_strings(string_method(in, self.as.string, name, &escaped_args));
        }
        tpl_value result = string_method(in, self.as.string, name, args);
        /* Results that are the receiver itself or a fresh string are safe to mark;
         * bools and numbers (startswith, find...) pass through. */
        if (result.type == TPL_STRING && result.as.string == self.as.string) return result;
        return mark_strings(result);
    }
    if (self.type == TPL_STRING) return string_method(in, self.as.string, name, args);
    if (self.type == TPL_DICT) {
        tpl_dict *d = self.as.dict;
        if (!strcmp(name, "get")) {
            const tpl_value *key = arg(args, 0, NULL);
            if (!key) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "get expected at least 1 argument, got 0");
            need_hashable(in, *key);
            tpl_value *v = tpl_dict_get(in->rt, d, *key);
            return v ? *v : arg_or(args, 1, NULL, tpl_none());
        }
        if (!strcmp(name, "items")) return dict_items(in, d);
        if (!strcmp(name, "keys") || !strcmp(name, "values")) {
            tpl_value out = tpl_list_new(in->rt, d->length, false);
            for (size_t i = 0; i < d->length; i++)
                out.as.list->items[out.as.list->length++] = name[0] == 'k' ? d->keys[i] : d->values[i];
            return out;
        }
        if (!strcmp(name, "copy")) {
            tpl_value out = tpl_dict_new(in->rt, d->length);
            for (size_t i = 0; i < d->length; i++) tpl_dict_set(in->rt, out.as.dict, d->keys[i], d->values[i]);
            return out;
        }
    } else if (self.type == TPL_LIST) {
        tpl_list *l = self.as.list;
        if (!strcmp(name, "index") || !strcmp(name, "count")) {
            const tpl_value *x = arg(args, 0, NULL);
            if (!x) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s() takes exactly one argument", name);
            int64_t count = 0;
            for (size_t i = 0; i < l->length; i++)
                if (tpl_equal(in->rt, l->items[i], *x)) {
                    if (name[0] == 'i') return tpl_int((int64_t)i);
                    count++;
                }
            if (name[0] == 'i') tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "value is not in list");
            return tpl_int(count);
        }
        if (!strcmp(name, "copy")) {
            tpl_value out = tpl_list_new(in->rt, l->length, false);
            for (size_t i = 0; i < l->length; i++) out.as.list->items[out.as.list->length++] = l->items[i];
            return out;
        }
    } else if (self.type == TPL_LOOP) {
        tpl_loop *loop = self.as.object;
        if (!strcmp(name, "cycle")) {
            if (args->n_positional == 0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "no items for cycling given");
            return args->positional[loop->index0 % (int64_t)args->n_positional];
        }
        if (!strcmp(name, "changed")) {
            tpl_value current = tpl_list_new(in->rt, args->n_positional, false);
            for (size_t i = 0; i < args->n_positional; i++) current.as.list->items[current.as.list->length++] = args->positional[i];
            if (!loop->changed_called || !tpl_equal(in->rt, current, loop->last_changed)) {
                loop->changed_called = true;
                loop->last_changed = current;
                return tpl_bool(true);
            }
            return tpl_bool(false);
        }
    }
    /* What remains mutates a list or dict: the immutable sandbox refuses it. */
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "access to attribute '%s' of '%s' object is unsafe.", name,
             tpl_type_name(self));
}

/* ---- global functions ---- */

static tpl_value function_value(tpl_interp *in, tpl_function_id id, const char *name) {
    tpl_function *fn = tpl_alloc(in->rt, sizeof *fn);
    fn->id = id;
    fn->name = name;
    fn->state = tpl_undefined(NULL);
    fn->used = false;
    tpl_value v = {TPL_FUNCTION, {.object = fn}};
    return v;
}

tpl_value tpl_lookup_global(tpl_interp *in, const char *name) {
    static const struct { const char *name; tpl_function_id id; } globals[] = {
        {"range", FN_RANGE}, {"namespace", FN_NAMESPACE}, {"dict", FN_DICT},
        {"raise_exception", FN_RAISE_EXCEPTION}, {"strftime_now", FN_STRFTIME_NOW}, {"joiner", FN_JOINER},
    };
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++)
        if (!strcmp(globals[i].name, name)) return function_value(in, globals[i].id, globals[i].name);
    return tpl_undefined(NULL);
}

/* The sandbox's cap on range() (jinja2.sandbox.MAX_RANGE). */
#define MAX_RANGE 100000

tpl_value tpl_call_function(tpl_interp *in, tpl_function *fn, const tpl_args *args) {
    switch (fn->id) {
    case FN_RANGE: {
        int64_t start = 0, stop, step = 1;
        if (args->n_positional == 0 || args->n_positional > 3)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "range expected 1 to 3 arguments, got %zu", args->n_positional);
        if (args->n_positional == 1) stop = need_int(in, args->positional[0], "range");
        else {
            start = need_int(in, args->positional[0], "range");
            stop = need_int(in, args->positional[1], "range");
            if (args->n_positional == 3) step = need_int(in, args->positional[2], "range");
        }
        if (step == 0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "range() arg 3 must not be zero");
        int64_t count = 0;
        if (step > 0 && start < stop) count = (stop - start + step - 1) / step;
        if (step < 0 && start > stop) count = (start - stop - step - 1) / -step;
        if (count > MAX_RANGE)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE,
                     "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).", MAX_RANGE);
        tpl_value out = tpl_list_new(in->rt, (size_t)count, false);
        for (int64_t i = 0; i < count; i++) out.as.list->items[out.as.list->length++] = tpl_int(start + i * step);
        return out;
    }
    case FN_NAMESPACE:
    case FN_DICT: {
        tpl_value out = tpl_dict_new(in->rt, args->n_named);
        if (args->n_positional > 1)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s expected at most 1 positional argument", fn->name);
        if (args->n_positional == 1) {
            tpl_value init = args->positional[0];
            if (init.type == TPL_DICT || init.type == TPL_NAMESPACE) {
                for (size_t i = 0; i < init.as.dict->length; i++)
                    tpl_dict_set(in->rt, out.as.dict, init.as.dict->keys[i], init.as.dict->values[i]);
            } else {
                tpl_list *pairs = tpl_iterate(in->rt, init);
                for (size_t i = 0; i < pairs->length; i++) {
                    tpl_list *pair = tpl_iterate(in->rt, pairs->items[i]);
                    if (pair->length != 2)
                        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "dictionary update sequence element #%zu has length %zu; 2 is required", i, pair->length);
                    tpl_dict_set(in->rt, out.as.dict, pair->items[0], pair->items[1]);
                }
            }
        }
        for (size_t i = 0; i < args->n_named; i++)
            tpl_dict_set(in->rt, out.as.dict, tpl_cstr(in->rt, args->names[i]), args->named[i]);
        if (fn->id == FN_NAMESPACE) out.type = TPL_NAMESPACE;
        return out;
    }
    case FN_RAISE_EXCEPTION: {
        tpl_value message = arg_or(args, 0, "message", tpl_cstr(in->rt, ""));
        tpl_value text = soft_str(in, message);
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s", text.as.string->data);
    }
    case FN_STRFTIME_NOW: {
        const tpl_value *format = arg(args, 0, "format");
        if (!format) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "strftime_now() needs a format");
        tpl_string *f = need_string(in, *format, "strftime_now");
        time_t now = time(NULL);
        struct tm local;
        localtime_r(&now, &local);
        char text[512];
        size_t n = f->length ? strftime(text, sizeof text, f->data, &local) : 0;
        return tpl_str(in->rt, text, n);
    }
    case FN_JOINER: {
        tpl_value j = function_value(in, FN_JOINER_CALL, "joiner");
        ((tpl_function *)j.as.object)->state = arg_or(args, 0, "sep", tpl_cstr(in->rt, ", "));
        return j;
    }
    case FN_JOINER_CALL:
        if (!fn->used) {
            fn->used = true;
            return tpl_cstr(in->rt, "");
        }
        return fn->state;
    }
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "'%s' is not callable here", fn->name);
}

/* ---- tests (jinja2/tests.py) ---- */

static bool test_known(const char *name);

bool tpl_apply_test(tpl_interp *in, const char *name, tpl_value v, const tpl_args *args) {
    const tpl_value *a0 = arg(args, 0, NULL);
    if (!strcmp(name, "defined")) return v.type != TPL_UNDEFINED;
    if (!strcmp(name, "undefined")) return v.type == TPL_UNDEFINED;
    if (!strcmp(name, "none")) return v.type == TPL_NONE;
    if (!strcmp(name, "boolean")) return v.type == TPL_BOOL;
    if (!strcmp(name, "true")) return v.type == TPL_BOOL && v.as.boolean;
    if (!strcmp(name, "false")) return v.type == TPL_BOOL && !v.as.boolean;
    if (!strcmp(name, "integer")) return v.type == TPL_INT;
    if (!strcmp(name, "float")) return v.type == TPL_FLOAT;
    if (!strcmp(name, "number")) return tpl_is_number(v);
    if (!strcmp(name, "string")) return v.type == TPL_STRING;
    if (!strcmp(name, "mapping")) return v.type == TPL_DICT;
    if (!strcmp(name, "iterable"))
        return v.type == TPL_STRING || v.type == TPL_LIST || v.type == TPL_DICT || v.type == TPL_UNDEFINED;
    if (!strcmp(name, "sequence"))
        return v.type == TPL_STRING || (v.type == TPL_LIST && !v.as.list->is_generator) || v.type == TPL_DICT ||
               v.type == TPL_UNDEFINED;
    if (!strcmp(name, "callable"))
        return v.type == TPL_MACRO || v.type == TPL_FUNCTION || v.type == TPL_METHOD;
    if (!strcmp(name, "sameas")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "sameas needs an argument");
        if (v.type != a0->type) return false;
        switch (v.type) {
        case TPL_NONE:
        case TPL_UNDEFINED: return v.type == TPL_NONE;
        case TPL_BOOL: return v.as.boolean == a0->as.boolean;
        case TPL_INT: return v.as.integer == a0->as.integer && v.as.integer >= -5 && v.as.integer <= 256;
        default: return v.as.object == a0->as.object;
        }
    }
    if (!strcmp(name, "odd") || !strcmp(name, "even")) {
        if (v.type == TPL_UNDEFINED) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s", v.as.undefined_name ? v.as.undefined_name : "undefined value");
        if (!tpl_is_number(v)) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unsupported operand type(s) for %%: '%s' and 'int'", tpl_type_name(v));
        double d = tpl_as_double(v);
        int64_t i = (int64_t)d;
        bool odd = v.type == TPL_FLOAT ? fmod(fabs(d), 2.0) == 1.0 : (i % 2 != 0);
        return name[0] == 'o' ? odd : (v.type == TPL_FLOAT ? fmod(d, 2.0) == 0.0 : !odd);
    }
    if (!strcmp(name, "divisibleby")) {
        /* value % num == 0, with Python's int and float modulo */
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "divisibleby needs an argument");
        if (v.type == TPL_UNDEFINED || a0->type == TPL_UNDEFINED)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "a value is undefined");
        if (!tpl_is_number(v) || !tpl_is_number(*a0))
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unsupported operand type(s) for %%: '%s' and '%s'", tpl_type_name(v), tpl_type_name(*a0));
        if (tpl_as_double(*a0) == 0.0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "integer division or modulo by zero");
        if (v.type != TPL_FLOAT && a0->type != TPL_FLOAT) {
            int64_t x = v.type == TPL_BOOL ? v.as.boolean : v.as.integer, y = a0->type == TPL_BOOL ? a0->as.boolean : a0->as.integer;
            return y == -1 || x % y == 0;
        }
        return fmod(tpl_as_double(v), tpl_as_double(*a0)) == 0.0;
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) /* str(value).islower() / .isupper() */
        return all_chars(soft_str(in, v).as.string, name[0] == 'l' ? 'l' : 'u');
    if (!strcmp(name, "escaped")) return v.type == TPL_STRING && v.as.string->is_markup;
    if (!strcmp(name, "filter")) return a0 && a0->type == TPL_STRING && tpl_apply_test(in, "defined", *a0, args);
    if (!strcmp(name, "test")) return a0 && a0->type == TPL_STRING && test_known(a0->as.string->data);
    if (!strcmp(name, "in")) {
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "the 'in' test needs an argument");
        return tpl_contains(in, *a0, v);
    }
    static const struct { const char *name; int op; } comparisons[] = {
        {"eq", 0}, {"equalto", 0}, {"==", 0}, {"ne", 1}, {"!=", 1}, {"lt", 2}, {"lessthan", 2}, {"<", 2},
        {"le", 3}, {"<=", 3}, {"gt", 4}, {"greaterthan", 4}, {">", 4}, {"ge", 5}, {">=", 5}};
    for (size_t i = 0; i < sizeof comparisons / sizeof comparisons[0]; i++) {
        if (strcmp(comparisons[i].name, name)) continue;
        if (!a0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "the '%s' test needs an argument", name);
        int op = comparisons[i].op;
        if (op == 0) return tpl_equal(in->rt, v, *a0);
        if (op == 1) return !tpl_equal(in->rt, v, *a0);
        int c = tpl_compare(in->rt, v, *a0);
        return op == 2 ? c < 0 : op == 3 ? c <= 0 : op == 4 ? c > 0 : c >= 0;
    }
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "No test named '%s'.", name);
}

static bool test_known(const char *name) {
    static const char *const names[] = {
        "defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number",
        "string", "mapping", "iterable", "sequence", "callable", "sameas", "odd", "even",
        "divisibleby", "lower", "upper", "escaped", "filter", "test", "in", "eq", "equalto", "==",
        "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", NULL};
    return in_list(names, name);
}

/* ---- filters (jinja2/filters.py) ---- */

/* Jinja's make_attrgetter: "a.b.0" looks up each part with getitem. */
static tpl_value get_path(tpl_interp *in, tpl_value item, tpl_value attribute) {
    if (attribute.type == TPL_INT) return tpl_get_item(in, item, attribute);
    tpl_string *path = need_string(in, attribute, "attribute");
    size_t start = 0;
    for (size_t i = 0; i <= path->length; i++) {
        if (i < path->length && path->data[i] != '.') continue;
        tpl_value part = tpl_str(in->rt, path->data + start, i - start);
        char *stop;
        long long index = strtoll(part.as.string->data, &stop, 10);
        if (part.as.string->length && *stop == '\0') part = tpl_int(index);
        item = tpl_get_item(in, item, part);
        start = i + 1;
    }
    return item;
}

/* Sort key with case folding of strings (Jinja's ignore_case). */
static tpl_value sort_key(tpl_interp *in, tpl_value v, bool case_sensitive) {
    if (!case_sensitive && v.type == TPL_STRING) return change_case(in, v.as.string, CASE_LOWER);
    return v;
}

/* Stable merge sort of items by keys (Python's sorted is stable). */
static void merge_sort(tpl_interp *in, tpl_value *items, tpl_value *keys, size_t n, bool reverse) {
    if (n < 2) return;
    size_t half = n / 2;
    merge_sort(in, items, keys, half, reverse);
    merge_sort(in, items + half, keys + half, n - half, reverse);
    tpl_value *merged_items = tpl_alloc(in->rt, n * sizeof(tpl_value));
    tpl_value *merged_keys = tpl_alloc(in->rt, n * sizeof(tpl_value));
    size_t i = 0, j = half, k = 0;
    while (i < half && j < n) {
        int c = tpl_compare(in->rt, keys[j], keys[i]);
        bool take_right = reverse ? c > 0 : c < 0;
        if (take_right) { merged_items[k] = items[j]; merged_keys[k++] = keys[j++]; }
        else { merged_items[k] = items[i]; merged_keys[k++] = keys[i++]; }
    }
    while (i < half) { merged_items[k] = items[i]; merged_keys[k++] = keys[i++]; }
    while (j < n) { merged_items[k] = items[j]; merged_keys[k++] = keys[j++]; }
    memcpy(items, merged_items, n * sizeof(tpl_value));
    memcpy(keys, merged_keys, n * sizeof(tpl_value));
}

static tpl_value list_copy(tpl_interp *in, tpl_list *l) {
    tpl_value out = tpl_list_new(in->rt, l->length, false);
    for (size_t i = 0; i < l->length; i++) out.as.list->items[out.as.list->length++] = l->items[i];
    return out;
}

/* select/reject/selectattr/rejectattr: args after the sequence (and the
 * attribute) are a test name and its arguments; no test means truthiness. */
static tpl_value select_items(tpl_interp *in, tpl_value seq, const tpl_args *args, bool by_attribute, bool keep) {
    /* jinja2 select_or_reject: a false value (None, empty) gives an empty generator. */
    if (!tpl_truthy(seq)) return as_generator(tpl_list_new(in->rt, 0, false));
    tpl_list *items = tpl_iterate(in->rt, seq);
    size_t first_test_arg = by_attribute ? 1 : 0;
    tpl_value attribute = by_attribute ? arg_or(args, 0, NULL, tpl_undefined(NULL)) : tpl_undefined(NULL);
    if (by_attribute && attribute.type == TPL_UNDEFINED)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "selectattr/rejectattr need an attribute name");
    const char *test = NULL;
    tpl_args test_args = {0};
    if (args->n_positional > first_test_arg) {
        test = need_string(in, args->positional[first_test_arg], "select test name")->data;
        test_args.positional = args->positional + first_test_arg + 1;
        test_args.n_positional = args->n_positional - first_test_arg - 1;
        test_args.names = args->names;
        test_args.named = args->named;
        test_args.n_named = args->n_named;
    }
    tpl_value out = tpl_list_new(in->rt, 0, false);
    for (size_t i = 0; i < items->length; i++) {
        tpl_value item = items->items[i];
        tpl_value subject = by_attribute ? get_path(in, item, attribute) : item;
        bool passed = test ? tpl_apply_test(in, test, subject, &test_args) : tpl_truthy(subject);
        if (passed == keep) tpl_list_push(in->rt, out.as.list, item);
    }
    return as_generator(out);
}

static tpl_value do_indent(tpl_interp *in, tpl_value input, const tpl_args *args) {
    /* Jinja's indent starts with `s += "\n"`, which only a string survives. */
    if (input.type == TPL_UNDEFINED)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s", input.as.undefined_name ? input.as.undefined_name : "undefined value");
    if (input.type != TPL_STRING)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unsupported operand type(s) for +=: '%s' and 'str'", tpl_type_name(input));
    tpl_value width = arg_or(args, 0, "width", tpl_int(4));
    bool first = arg_bool(args, 1, "first", false);
    bool blank = arg_bool(args, 2, "blank", false);
    tpl_value indentation;
    if (width.type == TPL_STRING) indentation = width;
    else {
        int64_t w = need_int(in, width, "indent");
        if (w < 0) w = 0;
        if ((size_t)w > in->rt->limits.max_output) tpl_fail(in->rt, MLXE_ERR_LIMIT, "indent width beyond the output limit");
        tpl_buffer spaces = {0};
        for (int64_t i = 0; i < w; i++) tpl_buffer_append(in->rt, &spaces, " ", 1);
        indentation = tpl_buffer_to_value(in->rt, &spaces);
    }
    tpl_string *ind = indentation.as.string;
    tpl_value s = soft_str(in, input);
    /* Jinja appends "\n" before splitlines() so a trailing newline survives as a line. */
    tpl_buffer with_newline = {0};
    tpl_buffer_append(in->rt, &with_newline, s.as.string->data, s.as.string->length);
    tpl_buffer_append(in->rt, &with_newline, "\n", 1);
    tpl_value lines = splitlines(in, tpl_buffer_to_value(in->rt, &with_newline).as.string, false);
    tpl_list *l = lines.as.list;
    tpl_buffer b = {0};
    if (first) tpl_buffer_append(in->rt, &b, ind->data, ind->length);
    for (size_t i = 0; i < l->length; i++) {
        tpl_string *line = l->items[i].as.string;
        if (i) {
            tpl_buffer_append(in->rt, &b, "\n", 1);
            if (blank || line->length) tpl_buffer_append(in->rt, &b, ind->data, ind->length);
        }
        tpl_buffer_append(in->rt, &b, line->data, line->length);
    }
    return tpl_buffer_to_value(in->rt, &b);
}

static tpl_value do_tojson(tpl_interp *in, tpl_value input, const tpl_args *args) {
    bool ensure_ascii = arg_bool(args, 0, "ensure_ascii", false);
    tpl_value indent = arg_or(args, 1, "indent", tpl_none());
    tpl_value separators = arg_or(args, 2, "separators", tpl_none());
    bool sort_keys = arg_bool(args, 3, "sort_keys", false);
    const char *indent_text = NULL;
    if (indent.type == TPL_STRING) indent_text = indent.as.string->data;
    else if (indent.type == TPL_INT || indent.type == TPL_BOOL) {
        int64_t w = indent.type == TPL_BOOL ? indent.as.boolean : indent.as.integer;
        if (w < 0) w = 0;
        if (w > 4096) tpl_fail(in->rt, MLXE_ERR_LIMIT, "tojson indent wider than 4096");
        char *spaces = tpl_alloc(in->rt, (size_t)w + 1);
        memset(spaces, ' ', (size_t)w);
        spaces[w] = '\0';
        indent_text = spaces;
    } else if (indent.type != TPL_NONE && indent.type != TPL_UNDEFINED) {
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "tojson indent must be an int or a string");
    }
    const char *item_separator = NULL, *key_separator = NULL;
    if (separators.type == TPL_LIST && separators.as.list->length == 2 &&
        separators.as.list->items[0].type == TPL_STRING && separators.as.list->items[1].type == TPL_STRING) {
        item_separator = separators.as.list->items[0].as.string->data;
        key_separator = separators.as.list->items[1].as.string->data;
    } else if (separators.type != TPL_NONE && separators.type != TPL_UNDEFINED) {
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "tojson separators must be a pair of strings");
    }
    tpl_buffer b = {0};
    tpl_json_dump(in->rt, &b, input, ensure_ascii, indent_text, item_separator, key_separator, sort_keys);
    return tpl_buffer_to_value(in->rt, &b);
}

static tpl_value do_round(tpl_interp *in, tpl_value v, const tpl_args *args) {
    int64_t precision = need_int(in, arg_or(args, 0, "precision", tpl_int(0)), "round");
    tpl_value method = arg_or(args, 1, "method", tpl_cstr(in->rt, "common"));
    const char *m = need_string(in, method, "round method")->data;
    if (!tpl_is_number(v)) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "type %s doesn't define __round__ method", tpl_type_name(v));
    if (strcmp(m, "common") && strcmp(m, "ceil") && strcmp(m, "floor"))
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "method must be common, ceil or floor");
    if (v.type != TPL_FLOAT && !strcmp(m, "common")) {
        /* int.__round__: an int, rounded half to even at 10**-precision. */
        int64_t x = v.type == TPL_BOOL ? v.as.boolean : v.as.integer;
        if (precision >= 0) return tpl_int(x);
        if (precision < -18) return tpl_int(0);
        int64_t unit = 1;
        for (int64_t k = 0; k < -precision; k++) unit *= 10;
        int64_t q = x / unit, r = x % unit;
        if (r < 0) { q--; r += unit; } /* floor division */
        if (2 * r > unit || (2 * r == unit && (q & 1))) q++;
        int64_t out;
        if (__builtin_mul_overflow(q, unit, &out)) tpl_fail(in->rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
        return tpl_int(out);
    }
    double d = tpl_as_double(v);
    if (!strcmp(m, "common")) {
        /* Python's round() rounds the exact binary value half-to-even, as printf does. */
        if (precision > 300 || !isfinite(d)) return tpl_float(d);
        char text[400];
        if (precision >= 0) {
            snprintf(text, sizeof text, "%.*f", (int)precision, d);
            return tpl_float(strtod(text, NULL));
        }
        double scale = pow(10.0, (double)-precision);
        return tpl_float(nearbyint(d / scale) * scale);
    }
    double scale = pow(10.0, (double)precision);
    return tpl_float((!strcmp(m, "ceil") ? ceil(d * scale) : floor(d * scale)) / scale);
}

static bool parse_python_int(const char *text, int base, int64_t *out) {
    while (tpl_is_space((unsigned char)*text)) text++;
    char clean[128];
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < sizeof clean; p++)
        if (*p != '_') clean[n++] = *p;
    while (n && tpl_is_space((unsigned char)clean[n - 1])) n--;
    clean[n] = '\0';
    if (!n) return false;
    /* Python's int(text, base): base 0 or 2..36; base 0 reads a 0x/0o/0b prefix
     * and refuses other leading zeros (strtoll would read them as octal). */
    if (base != 0 && (base < 2 || base > 36)) return false;
    const char *digits = clean + (clean[0] == '-' || clean[0] == '+');
    if (base == 0 && digits[0] == '0' && digits[1]) {
        char p = digits[1];
        if (p == 'o' || p == 'O' || p == 'b' || p == 'B') {
            char *stop = NULL;
            errno = 0;
            long long v = strtoll(digits + 2, &stop, p == 'o' || p == 'O' ? 8 : 2);
            if (!stop || *stop || stop == digits + 2 || errno) return false;
            *out = clean[0] == '-' ? -v : v;
            return true;
        }
        if (p != 'x' && p != 'X') {
            for (const char *z = digits; *z; z++)
                if (*z != '0') return false;
        }
    }
    if (base == 16 && digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X') && !digits[2]) return false;
    char *stop = NULL;
    errno = 0;
    long long v = strtoll(clean, &stop, base);
    if (!stop || stop == clean || *stop || errno) return false;
    *out = v;
    return true;
}

static bool parse_python_float(const char *text, double *out) {
    while (tpl_is_space((unsigned char)*text)) text++;
    if (!*text) return false;
    /* Python's float(): decimal only (strtod would also read hex), with
     * single underscores allowed between digits. */
    char clean[128];
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p == 'x' || *p == 'X' || *p == 'p' || *p == 'P') return false;
        if (*p == '_') {
            if (p == text || !(p[-1] >= '0' && p[-1] <= '9') || !(p[1] >= '0' && p[1] <= '9')) return false;
            continue;
        }
        if (n + 1 >= sizeof clean) return false;
        clean[n++] = *p;
    }
    clean[n] = '\0';
    text = clean;
    char *stop;
    double d = strtod(text, &stop);
    while (*stop && tpl_is_space((unsigned char)*stop)) stop++;
    if (*stop) return false;
    *out = d;
    return true;
}

static const char *const FILTERS[] = {
    "abs", "attr", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
    "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length",
    "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round",
    "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim", "unique",
    "upper", "wordcount", "batch", "striptags", NULL};

bool tpl_filter_known(const char *name) { return in_list(FILTERS, name); }
bool tpl_test_known(const char *name) { return test_known(name); }

tpl_value tpl_apply_filter(tpl_interp *in, const char *name, tpl_value v, const tpl_args *args) {
    tpl_runtime *rt = in->rt;
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        tpl_value fallback = arg_or(args, 0, "default_value", tpl_cstr(rt, ""));
        bool boolean = arg_bool(args, 1, "boolean", false);
        if (v.type == TPL_UNDEFINED || (boolean && !tpl_truthy(v))) return fallback;
        return v;
    }
    if (!strcmp(name, "safe")) {
        if (v.type == TPL_STRING && v.as.string->is_markup) return v;
        tpl_value s = soft_str(in, v);
        tpl_value copy = tpl_str(rt, s.as.string->data, s.as.string->length);
        copy.as.string->is_markup = true;
        return copy;
    }
    if (!strcmp(name, "string")) return soft_str(in, v);
    if (!strcmp(name, "tojson")) return do_tojson(in, v, args);
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        need_sized(in, v);
        switch (v.type) {
        case TPL_STRING: return tpl_int(tpl_string_chars(v.as.string));
        case TPL_LIST: return tpl_int((int64_t)v.as.list->length);
        case TPL_DICT:
        case TPL_NAMESPACE: return tpl_int((int64_t)v.as.dict->length);
        case TPL_UNDEFINED: return tpl_int(0);
        default: tpl_fail(rt, MLXE_ERR_TEMPLATE, "object of type '%s' has no len()", tpl_type_name(v));
        }
    }
    if (!strcmp(name, "trim")) return keep_markup(strip(in, soft_str(in, v).as.string, arg(args, 0, "chars"), true, true), v);
    if (!strcmp(name, "upper")) return keep_markup(change_case(in, soft_str(in, v).as.string, CASE_UPPER), v);
    if (!strcmp(name, "lower")) return keep_markup(change_case(in, soft_str(in, v).as.string, CASE_LOWER), v);
    if (!strcmp(name, "capitalize")) return keep_markup(capitalize(in, soft_str(in, v).as.string), v);
    if (!strcmp(name, "title")) return keep_markup(jinja_title(in, soft_str(in, v).as.string), v);
    if (!strcmp(name, "replace")) {
        const tpl_value *old = arg(args, 0, "old"), *new_text = arg(args, 1, "new"), *count = arg(args, 2, "count");
        if (!old || !new_text) tpl_fail(rt, MLXE_ERR_TEMPLATE, "replace needs the old and the new text");
        int64_t n = count && count->type != TPL_NONE ? need_int(in, *count, "replace") : -1;
        return replace(in, soft_str(in, v).as.string, soft_str(in, *old).as.string, soft_str(in, *new_text).as.string, n);
    }
    if (!strcmp(name, "indent")) return keep_markup(do_indent(in, v, args), v);
    if (!strcmp(name, "center")) {
        int64_t width = need_int(in, arg_or(args, 0, "width", tpl_int(80)), "center");
        return pad(in, soft_str(in, v).as.string, width, NULL, 0);
    }
    if (!strcmp(name, "format")) {
        tpl_value values;
        if (args->n_named) {
            values = tpl_dict_new(rt, args->n_named);
            for (size_t i = 0; i < args->n_named; i++)
                tpl_dict_set(rt, values.as.dict, tpl_cstr(rt, args->names[i]), args->named[i]);
        } else {
            values = tpl_list_new(rt, args->n_positional, true);
            for (size_t i = 0; i < args->n_positional; i++) values.as.list->items[values.as.list->length++] = args->positional[i];
        }
        return tpl_percent_format(in, soft_str(in, v).as.string, values);
    }
    if (!strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) {
        if (v.type == TPL_STRING && v.as.string->is_markup && name[0] != 'f') return v;
        return html_escape(in, soft_str(in, v));
    }
    if ((!strcmp(name, "int") || !strcmp(name, "float")) && v.type == TPL_UNDEFINED)
        tpl_fail(rt, MLXE_ERR_TEMPLATE, "%s", v.as.undefined_name ? v.as.undefined_name : "a value is undefined");
    if (!strcmp(name, "int")) {
        tpl_value fallback = arg_or(args, 0, "default", tpl_int(0));
        int64_t base = need_int(in, arg_or(args, 1, "base", tpl_int(10)), "int");
        int64_t i;
        double d;
        if (v.type == TPL_INT) return v;
        if (v.type == TPL_BOOL) return tpl_int(v.as.boolean);
        if (v.type == TPL_FLOAT) {
            if (!isfinite(v.as.number)) return fallback;
            return tpl_int(float_to_int(in, v.as.number));
        }
        if (v.type == TPL_STRING) {
            if (parse_python_int(v.as.string->data, (int)base, &i)) return tpl_int(i);
            if (parse_python_float(v.as.string->data, &d) && isfinite(d)) return tpl_int(float_to_int(in, d));
        }
        return fallback;
    }
    if (!strcmp(name, "float")) {
        tpl_value fallback = arg_or(args, 0, "default", tpl_float(0.0));
        double d;
        if (tpl_is_number(v)) return tpl_float(tpl_as_double(v));
        if (v.type == TPL_STRING && parse_python_float(v.as.string->data, &d)) return tpl_float(d);
        return fallback;
    }
    if (!strcmp(name, "abs")) {
        if (v.type == TPL_FLOAT) return tpl_float(fabs(v.as.number));
        if (v.type == TPL_INT || v.type == TPL_BOOL) {
            int64_t i = v.type == TPL_BOOL ? v.as.boolean : v.as.integer;
            if (i == INT64_MIN) tpl_fail(rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
            return tpl_int(i < 0 ? -i : i);
        }
        tpl_fail(rt, MLXE_ERR_TEMPLATE, "bad operand type for abs(): '%s'", tpl_type_name(v));
    }
    if (!strcmp(name, "round")) return do_round(in, v, args);
    if (!strcmp(name, "first")) {
        tpl_list *items = tpl_iterate(rt, v);
        return items->length ? items->items[0] : tpl_undefined("No first item, sequence was empty.");
    }
    if (!strcmp(name, "last")) {
        if (v.type == TPL_LIST && v.as.list->is_generator)
            tpl_fail(rt, MLXE_ERR_TEMPLATE, "'generator' object is not reversible");
        tpl_list *items = tpl_iterate(rt, v);
        return items->length ? items->items[items->length - 1] : tpl_undefined("No last item, sequence was empty.");
    }
    if (!strcmp(name, "join")) {
        tpl_value separator = arg_or(args, 0, "d", tpl_cstr(rt, ""));
        const tpl_value *attribute = arg(args, 1, "attribute");
        tpl_list *items = tpl_iterate(rt, v);
        tpl_buffer b = {0};
        tpl_value sep = soft_str(in, separator);
        for (size_t i = 0; i < items->length; i++) {
            if (i) tpl_buffer_append(rt, &b, sep.as.string->data, sep.as.string->length);
            tpl_value item = attribute && attribute->type != TPL_NONE ? get_path(in, items->items[i], *attribute) : items->items[i];
            tpl_write_str(rt, &b, item);
        }
        return tpl_buffer_to_value(rt, &b);
    }
    if (!strcmp(name, "list")) return list_copy(in, tpl_iterate(rt, v));
    if (!strcmp(name, "items")) {
        if (v.type == TPL_UNDEFINED) return tpl_list_new(rt, 0, false);
        if (v.type != TPL_DICT) tpl_fail(rt, MLXE_ERR_TEMPLATE, "Can only get item pairs from a mapping.");
        return as_generator(dict_items(in, v.as.dict));
    }
    if (!strcmp(name, "reverse")) {
        if (v.type == TPL_STRING) {
            tpl_list *chars = tpl_iterate(rt, v);
            tpl_buffer b = {0};
            for (size_t i = chars->length; i > 0; i--)
                tpl_buffer_append(rt, &b, chars->items[i - 1].as.string->data, chars->items[i - 1].as.string->length);
            return tpl_buffer_to_value(rt, &b);
        }
        /* reversed(list) is an iterator; a generator is listed and reversed instead. */
        bool was_generator = v.type == TPL_LIST && v.as.list->is_generator;
        tpl_list *items = tpl_iterate(rt, v);
        tpl_value out = tpl_list_new(rt, items->length, false);
        for (size_t i = items->length; i > 0; i--) out.as.list->items[out.as.list->length++] = items->items[i - 1];
        return was_generator || v.type != TPL_LIST ? out : as_generator(out);
    }
    if (!strcmp(name, "select")) return select_items(in, v, args, false, true);
    if (!strcmp(name, "reject")) return select_items(in, v, args, false, false);
    if (!strcmp(name, "selectattr")) return select_items(in, v, args, true, true);
    if (!strcmp(name, "rejectattr")) return select_items(in, v, args, true, false);
    if (!strcmp(name, "map")) {
        if (!tpl_truthy(v)) return as_generator(tpl_list_new(rt, 0, false));
        tpl_list *items = tpl_iterate(rt, v);
        tpl_value out = tpl_list_new(rt, items->length, false);
        const tpl_value *attribute = arg(args, SIZE_MAX, "attribute");
        if (attribute) {
            const tpl_value *fallback = arg(args, SIZE_MAX, "default");
            for (size_t i = 0; i < items->length; i++) {
                tpl_value x = get_path(in, items->items[i], *attribute);
                if (x.type == TPL_UNDEFINED && fallback) x = *fallback;
                out.as.list->items[out.as.list->length++] = x;
            }
            return as_generator(out);
        }
        if (args->n_positional == 0) return as_generator(list_copy(in, items));
        const char *filter = need_string(in, args->positional[0], "map filter name")->data;
        if (!tpl_filter_known(filter)) tpl_fail(rt, MLXE_ERR_TEMPLATE, "No filter named '%s'.", filter);
        tpl_args rest = {args->positional + 1, args->n_positional - 1, args->names, args->named, args->n_named};
        for (size_t i = 0; i < items->length; i++)
            out.as.list->items[out.as.list->length++] = tpl_apply_filter(in, filter, items->items[i], &rest);
        return as_generator(out);
    }
    if (!strcmp(name, "unique")) {
        bool case_sensitive = arg_bool(args, 0, "case_sensitive", false);
        const tpl_value *attribute = arg(args, 1, "attribute");
        tpl_list *items = tpl_iterate(rt, v);
        tpl_value out = tpl_list_new(rt, 0, false), seen = tpl_list_new(rt, 0, false);
        for (size_t i = 0; i < items->length; i++) {
            tpl_value key = attribute && attribute->type != TPL_NONE ? get_path(in, items->items[i], *attribute) : items->items[i];
            key = sort_key(in, key, case_sensitive);
            need_hashable(in, key);
            bool dup = false;
            for (size_t k = 0; k < seen.as.list->length && !dup; k++) dup = tpl_equal(rt, seen.as.list->items[k], key);
            if (!dup) {
                tpl_list_push(rt, seen.as.list, key);
                tpl_list_push(rt, out.as.list, items->items[i]);
            }
        }
        return as_generator(out);
    }
    if (!strcmp(name, "sort") || !strcmp(name, "dictsort") || !strcmp(name, "min") || !strcmp(name, "max")) {
        bool is_dictsort = name[0] == 'd', is_sort = name[0] == 's';
        bool reverse = is_sort ? arg_bool(args, 0, "reverse", false) : is_dictsort ? arg_bool(args, 2, "reverse", false) : false;
        bool case_sensitive = arg_bool(args, is_sort ? 1 : 0, "case_sensitive", false);
        const tpl_value *attribute = is_dictsort ? NULL : arg(args, is_sort ? 2 : 1, "attribute");
        tpl_list *items;
        if (is_dictsort) {
            if (v.type != TPL_DICT) tpl_fail(rt, MLXE_ERR_TEMPLATE, "You can only sort by either \"key\" or \"value\"");
            items = dict_items(in, v.as.dict).as.list;
        } else {
            items = list_copy(in, tpl_iterate(rt, v)).as.list;
        }
        bool by_value = false;
        if (is_dictsort) {
            tpl_value by = arg_or(args, 1, "by", tpl_cstr(rt, "key"));
            by_value = by.type == TPL_STRING && !strcmp(by.as.string->data, "value");
        }
        tpl_value *keys = tpl_alloc(rt, (items->length + 1) * sizeof(tpl_value));
        for (size_t i = 0; i < items->length; i++) {
            tpl_value key = items->items[i];
            if (is_dictsort) key = key.as.list->items[by_value ? 1 : 0];
            else if (is_sort) {
                /* make_multi_attrgetter: the key is a list, one value per comma-separated
                 * attribute (or the item itself), so equal values never reach `<`. */
                tpl_value parts = tpl_list_new(rt, 1, false);
                if (attribute && attribute->type == TPL_STRING) {
                    tpl_string *spec = attribute->as.string;
                    size_t start = 0;
                    for (size_t c = 0; c <= spec->length; c++) {
                        if (c < spec->length && spec->data[c] != ',') continue;
                        tpl_value one = get_path(in, key, tpl_str(rt, spec->data + start, c - start));
                        tpl_list_push(rt, parts.as.list, sort_key(in, one, case_sensitive));
                        start = c + 1;
                    }
                } else {
                    tpl_value one = attribute && attribute->type != TPL_NONE ? get_path(in, key, *attribute) : key;
                    tpl_list_push(rt, parts.as.list, sort_key(in, one, case_sensitive));
                }
                keys[i] = parts;
                continue;
            } else if (attribute && attribute->type != TPL_NONE) key = get_path(in, key, *attribute);
            keys[i] = sort_key(in, key, case_sensitive);
        }
        if (is_sort || is_dictsort) {
            merge_sort(in, items->items, keys, items->length, reverse);
            return (tpl_value){TPL_LIST, {.list = items}};
        }
        if (!items->length) return tpl_undefined("No aggregated item, sequence was empty.");
        size_t best = 0;
        for (size_t i = 1; i < items->length; i++) {
            int c = tpl_compare(rt, keys[i], keys[best]);
            if (name[1] == 'i' ? c < 0 : c > 0) best = i;
        }
        return items->items[best];
    }
    if (!strcmp(name, "sum")) {
        const tpl_value *attribute = arg(args, 0, "attribute");
        tpl_value total = arg_or(args, 1, "start", tpl_int(0));
        tpl_list *items = tpl_iterate(rt, v);
        for (size_t i = 0; i < items->length; i++) {
            tpl_value x = attribute && attribute->type != TPL_NONE ? get_path(in, items->items[i], *attribute) : items->items[i];
            if (!tpl_is_number(x) || !tpl_is_number(total))
                tpl_fail(rt, MLXE_ERR_TEMPLATE, "unsupported operand type(s) for +: '%s' and '%s'", tpl_type_name(total), tpl_type_name(x));
            if (total.type == TPL_FLOAT || x.type == TPL_FLOAT) total = tpl_float(tpl_as_double(total) + tpl_as_double(x));
            else {
                int64_t r;
                if (__builtin_add_overflow(total.type == TPL_BOOL ? total.as.boolean : total.as.integer,
                                           x.type == TPL_BOOL ? x.as.boolean : x.as.integer, &r))
                    tpl_fail(rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
                total = tpl_int(r);
            }
        }
        return total;
    }
    if (!strcmp(name, "attr")) {
        const tpl_value *attribute = arg(args, 0, "name");
        if (!attribute) tpl_fail(rt, MLXE_ERR_TEMPLATE, "attr needs a name");
        tpl_value result = tpl_get_attr(in, v, need_string(in, *attribute, "attr")->data);
        /* Jinja's attr filter reads attributes only, never items. */
        if (v.type == TPL_DICT && result.type != TPL_METHOD) return tpl_undefined(NULL);
        return result;
    }
    if (!strcmp(name, "wordcount")) {
        tpl_value s = soft_str(in, v);
        int64_t words = 0;
        bool in_word = false;
        size_t pos = 0;
        while (pos < s.as.string->length) {
            uint32_t cp = tpl_utf8_next(s.as.string->data, s.as.string->length, &pos);
            utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
            bool word = cp == '_' || (cp < 0x80 ? ((cp | 32) >= 'a' && (cp | 32) <= 'z') || (cp >= '0' && cp <= '9')
                                                : (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
                                                      (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) ||
                                                      c == UTF8PROC_CATEGORY_MN || c == UTF8PROC_CATEGORY_MC);
            if (word && !in_word) words++;
            in_word = word;
        }
        return tpl_int(words);
    }
    if (!strcmp(name, "batch")) {
        int64_t size = need_int(in, arg_or(args, 0, "linecount", tpl_int(1)), "batch");
        const tpl_value *fill = arg(args, 1, "fill_with");
        if (size <= 0) tpl_fail(rt, MLXE_ERR_TEMPLATE, "batch size must be positive");
        tpl_list *items = tpl_iterate(rt, v);
        tpl_value out = tpl_list_new(rt, 0, false);
        tpl_value current = tpl_list_new(rt, 0, false);
        for (size_t i = 0; i < items->length; i++) {
            tpl_list_push(rt, current.as.list, items->items[i]);
            if ((int64_t)current.as.list->length == size) {
                tpl_list_push(rt, out.as.list, current);
                current = tpl_list_new(rt, 0, false);
            }
        }
        if (current.as.list->length) {
            if (fill && fill->type != TPL_NONE)
                while ((int64_t)current.as.list->length < size) tpl_list_push(rt, current.as.list, *fill);
            tpl_list_push(rt, out.as.list, current);
        }
        return out;
    }
    if (!strcmp(name, "striptags")) {
        tpl_value s = soft_str(in, v);
        tpl_buffer b = {0};
        bool in_tag = false, pending_space = false;
        for (size_t i = 0; i < s.as.string->length; i++) {
            char c = s.as.string->data[i];
            if (c == '<') { in_tag = true; continue; }
            if (in_tag) { if (c == '>') in_tag = false; continue; }
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') { pending_space = b.length > 0; continue; }
            if (pending_space) tpl_buffer_append(rt, &b, " ", 1);
            pending_space = false;
            tpl_buffer_append(rt, &b, &c, 1);
        }
        return tpl_buffer_to_value(rt, &b);
    }
    tpl_fail(rt, MLXE_ERR_TEMPLATE, "No filter named '%s'.", name);
}
