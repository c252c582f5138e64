/* template/value.c — Python semantics of template values: construction,
 * truthiness, equality, ordering, str()/repr() printing, iteration.
 *
 * Printing must match CPython byte for byte because templates print dicts,
 * lists and floats straight into prompts: repr() quoting of strings (single
 * quotes unless the text holds a ' and no "), \x/\u escapes of non-printable
 * characters (Objects/unicodeobject.c unicode_repr), and the shortest
 * round-tripping float repr with its switch to exponent form below 1e-4 and
 * from 1e16 (Python/pystrtod.c format_float_short). */
#include "template/value.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

_Noreturn void tpl_fail(tpl_runtime *rt, mlxe_status status, const char *format, ...) {
    char text[640];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    rt->status = status;
    if (rt->line > 0)
        snprintf(rt->message, sizeof rt->message, "%s, line %d, column %d: %s",
                 rt->template_name ? rt->template_name : "template", rt->line, rt->column, text);
    else
        snprintf(rt->message, sizeof rt->message, "%s: %s",
                 rt->template_name ? rt->template_name : "template", text);
    longjmp(*rt->fail_jump, 1);
}

void *tpl_alloc(tpl_runtime *rt, size_t size) {
    bool over = false;
    void *p = tpl_arena_alloc(&rt->arena, size, &over);
    if (!p) {
        if (over)
            tpl_fail(rt, MLXE_ERR_LIMIT,
                     "the template used more than %zu bytes of memory (limit max_memory_bytes)",
                     rt->limits.max_memory);
        tpl_fail(rt, MLXE_ERR_OUT_OF_MEMORY, "out of memory while rendering");
    }
    return p;
}

/* ---- constructors ---- */

tpl_string *tpl_string_new(tpl_runtime *rt, const char *data, size_t length) {
    if (length > rt->limits.max_output)
        tpl_fail(rt, MLXE_ERR_LIMIT, "a string of %zu bytes is longer than the limit of %zu (max_output_bytes)",
                 length, rt->limits.max_output);
    tpl_string *s = tpl_alloc(rt, sizeof(tpl_string) + length + 1);
    s->length = length;
    if (length) memcpy(s->data, data, length);
    s->data[length] = '\0';
    /* Counted now, not lazily: compiled templates share their constant
     * strings between threads, so strings must never change after creation. */
    /* Counted with the same decoder that iterates, slices and indexes them
     * (tpl_utf8_next): a stray continuation byte, possible in a template's
     * own literals, is one character there, so it must be one here too, or
     * code sized by n_chars (iterating a string into a list) overflows. */
    int64_t n = 0;
    for (size_t pos = 0; pos < length; n++) tpl_utf8_next(s->data, length, &pos);
    s->n_chars = n;
    s->is_markup = false;
    return s;
}

tpl_value tpl_str(tpl_runtime *rt, const char *data, size_t length) {
    tpl_value v = {TPL_STRING, {.string = tpl_string_new(rt, data, length)}};
    return v;
}

tpl_value tpl_cstr(tpl_runtime *rt, const char *text) { return tpl_str(rt, text, strlen(text)); }

tpl_value tpl_list_new(tpl_runtime *rt, size_t capacity, bool is_tuple) {
    tpl_list *list = tpl_alloc(rt, sizeof *list);
    list->length = 0;
    list->capacity = capacity;
    list->is_tuple = is_tuple;
    list->is_generator = false;
    list->consumed = false;
    list->items = capacity ? tpl_alloc(rt, capacity * sizeof(tpl_value)) : NULL;
    tpl_value v = {TPL_LIST, {.list = list}};
    return v;
}

void tpl_list_push(tpl_runtime *rt, tpl_list *list, tpl_value item) {
    if (list->length == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 4;
        tpl_value *items = tpl_alloc(rt, capacity * sizeof(tpl_value));
        if (list->length) memcpy(items, list->items, list->length * sizeof(tpl_value));
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->length++] = item;
}

tpl_value tpl_dict_new(tpl_runtime *rt, size_t capacity) {
    tpl_dict *dict = tpl_alloc(rt, sizeof *dict);
    dict->length = 0;
    dict->filled = 0;
    dict->capacity = capacity;
    dict->keys = capacity ? tpl_alloc(rt, capacity * sizeof(tpl_value)) : NULL;
    dict->values = capacity ? tpl_alloc(rt, capacity * sizeof(tpl_value)) : NULL;
    tpl_value v = {TPL_DICT, {.dict = dict}};
    return v;
}

tpl_value *tpl_dict_get(tpl_runtime *rt, const tpl_dict *dict, tpl_value key) {
    for (size_t i = 0; i < dict->length; i++)
        if (tpl_equal(rt, dict->keys[i], key)) return &dict->values[i];
    return NULL;
}

tpl_value *tpl_dict_get_cstr(const tpl_dict *dict, const char *key) {
    size_t length = strlen(key);
    for (size_t i = 0; i < dict->length; i++) {
        tpl_value k = dict->keys[i];
        if (k.type == TPL_STRING && k.as.string->length == length &&
            memcmp(k.as.string->data, key, length) == 0)
            return &dict->values[i];
    }
    return NULL;
}

void tpl_dict_set(tpl_runtime *rt, tpl_dict *dict, tpl_value key, tpl_value value) {
    tpl_value *slot = tpl_dict_get(rt, dict, key);
    if (slot) {
        *slot = value;
        return;
    }
    if (dict->length == dict->capacity) {
        size_t capacity = dict->capacity ? dict->capacity * 2 : 4;
        tpl_value *keys = tpl_alloc(rt, capacity * sizeof(tpl_value));
        tpl_value *values = tpl_alloc(rt, capacity * sizeof(tpl_value));
        if (dict->length) {
            memcpy(keys, dict->keys, dict->length * sizeof(tpl_value));
            memcpy(values, dict->values, dict->length * sizeof(tpl_value));
        }
        dict->keys = keys;
        dict->values = values;
        dict->capacity = capacity;
    }
    dict->keys[dict->length] = key;
    dict->values[dict->length] = value;
    dict->length++;
    if (dict->length > dict->filled) dict->filled = dict->length;
}

/* ---- buffers ---- */

void tpl_buffer_append(tpl_runtime *rt, tpl_buffer *buffer, const char *data, size_t length) {
    if (length == 0) return;
    if (buffer->length + length > rt->limits.max_output)
        tpl_fail(rt, MLXE_ERR_LIMIT,
                 "the output grew past the limit of %zu bytes (max_output_bytes)", rt->limits.max_output);
    if (buffer->length + length + 1 > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity * 2 : 256;
        while (capacity < buffer->length + length + 1) capacity *= 2;
        char *data_new = tpl_alloc(rt, capacity);
        if (buffer->length) memcpy(data_new, buffer->data, buffer->length);
        buffer->data = data_new;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->length, data, length);
    buffer->length += length;
    buffer->data[buffer->length] = '\0';
}

void tpl_buffer_append_cstr(tpl_runtime *rt, tpl_buffer *buffer, const char *text) {
    tpl_buffer_append(rt, buffer, text, strlen(text));
}

void tpl_buffer_printf(tpl_runtime *rt, tpl_buffer *buffer, const char *format, ...) {
    char text[512];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (n < 0) return;
    tpl_buffer_append(rt, buffer, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

tpl_value tpl_buffer_to_value(tpl_runtime *rt, const tpl_buffer *buffer) {
    return tpl_str(rt, buffer->data ? buffer->data : "", buffer->length);
}

/* ---- UTF-8 ---- */

uint32_t tpl_utf8_next(const char *data, size_t length, size_t *pos) {
    const unsigned char *s = (const unsigned char *)data;
    size_t i = *pos;
    unsigned char c = s[i];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n <= 1 || i + (size_t)n > length) {
        *pos = i + 1;
        return c;
    }
    uint32_t cp = n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
    for (int k = 1; k < n; k++) {
        if ((s[i + k] & 0xc0) != 0x80) {
            *pos = i + 1;
            return c;
        }
        cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    *pos = i + (size_t)n;
    return cp;
}

size_t tpl_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) { o[0] = (unsigned char)(0xc0 | (cp >> 6)); o[1] = (unsigned char)(0x80 | (cp & 0x3f)); return 2; }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

bool tpl_is_space(uint32_t cp) {
    /* Python's str.isspace: bidirectional class WS/B/S or category Zs. */
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f)) return true;
    if (cp < 0x80) return false;
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

int64_t tpl_string_chars(tpl_string *s) { return s->n_chars; }

size_t tpl_string_offset(tpl_string *s, int64_t char_index) {
    if (char_index <= 0) return 0;
    if (tpl_string_chars(s) == (int64_t)s->length)
        return char_index >= (int64_t)s->length ? s->length : (size_t)char_index;
    size_t pos = 0;
    for (int64_t i = 0; i < char_index && pos < s->length; i++) tpl_utf8_next(s->data, s->length, &pos);
    return pos;
}

/* ---- Python semantics ---- */

const char *tpl_type_name(tpl_value v) {
    switch (v.type) {
    case TPL_UNDEFINED: return "Undefined";
    case TPL_NONE: return "NoneType";
    case TPL_BOOL: return "bool";
    case TPL_INT: return "int";
    case TPL_FLOAT: return "float";
    case TPL_STRING: return "str";
    case TPL_LIST: return v.as.list->is_generator ? "generator" : v.as.list->is_tuple ? "tuple" : "list";
    case TPL_DICT: return "dict";
    case TPL_NAMESPACE: return "Namespace";
    case TPL_MACRO: return "Macro";
    case TPL_FUNCTION: return "function";
    case TPL_METHOD: return "method";
    case TPL_LOOP: return "LoopContext";
    }
    return "object";
}

bool tpl_truthy(tpl_value v) {
    switch (v.type) {
    case TPL_UNDEFINED:
    case TPL_NONE: return false;
    case TPL_BOOL: return v.as.boolean;
    case TPL_INT: return v.as.integer != 0;
    case TPL_FLOAT: return v.as.number != 0.0;
    case TPL_STRING: return v.as.string->length > 0;
    case TPL_LIST: return v.as.list->is_generator || v.as.list->length > 0;
    case TPL_DICT: return v.as.dict->length > 0;
    default: return true;
    }
}

bool tpl_is_number(tpl_value v) { return v.type == TPL_INT || v.type == TPL_FLOAT || v.type == TPL_BOOL; }

double tpl_as_double(tpl_value v) {
    if (v.type == TPL_FLOAT) return v.as.number;
    if (v.type == TPL_INT) return (double)v.as.integer;
    if (v.type == TPL_BOOL) return v.as.boolean ? 1.0 : 0.0;
    return 0.0;
}

static bool equal_depth(tpl_runtime *rt, tpl_value a, tpl_value b, int depth) {
    if (depth > rt->limits.max_depth * 4 + 64)
        tpl_fail(rt, MLXE_ERR_LIMIT, "values nested too deeply to compare");
    if (tpl_is_number(a) && tpl_is_number(b)) {
        if (a.type != TPL_FLOAT && b.type != TPL_FLOAT) {
            int64_t x = a.type == TPL_BOOL ? a.as.boolean : a.as.integer;
            int64_t y = b.type == TPL_BOOL ? b.as.boolean : b.as.integer;
            return x == y;
        }
        return tpl_as_double(a) == tpl_as_double(b);
    }
    if (a.type != b.type) return false;
    switch (a.type) {
    case TPL_UNDEFINED:
    case TPL_NONE: return true;
    case TPL_STRING:
        return a.as.string->length == b.as.string->length &&
               memcmp(a.as.string->data, b.as.string->data, a.as.string->length) == 0;
    case TPL_LIST: {
        tpl_list *x = a.as.list, *y = b.as.list;
        if (x->is_generator || y->is_generator) return x == y;
        if (x->is_tuple != y->is_tuple || x->length != y->length) return false;
        for (size_t i = 0; i < x->length; i++)
            if (!equal_depth(rt, x->items[i], y->items[i], depth + 1)) return false;
        return true;
    }
    case TPL_DICT: {
        tpl_dict *x = a.as.dict, *y = b.as.dict;
        if (x == y) return true;
        if (x->length != y->length) return false;
        for (size_t i = 0; i < x->length; i++) {
            tpl_value *other = tpl_dict_get(rt, y, x->keys[i]);
            if (!other || !equal_depth(rt, x->values[i], *other, depth + 1)) return false;
        }
        return true;
    }
    default: return a.as.object == b.as.object;
    }
}

bool tpl_equal(tpl_runtime *rt, tpl_value a, tpl_value b) { return equal_depth(rt, a, b, 0); }

int tpl_compare(tpl_runtime *rt, tpl_value a, tpl_value b) {
    if (tpl_is_number(a) && tpl_is_number(b)) {
        if (a.type != TPL_FLOAT && b.type != TPL_FLOAT) {
            int64_t x = a.type == TPL_BOOL ? a.as.boolean : a.as.integer;
            int64_t y = b.type == TPL_BOOL ? b.as.boolean : b.as.integer;
            return x < y ? -1 : x > y;
        }
        double x = tpl_as_double(a), y = tpl_as_double(b);
        return x < y ? -1 : x > y;
    }
    if (a.type == TPL_STRING && b.type == TPL_STRING) {
        size_t n = a.as.string->length < b.as.string->length ? a.as.string->length : b.as.string->length;
        int c = memcmp(a.as.string->data, b.as.string->data, n);
        if (c) return c < 0 ? -1 : 1;
        return a.as.string->length < b.as.string->length ? -1 : a.as.string->length > b.as.string->length;
    }
    if (a.type == TPL_LIST && b.type == TPL_LIST && a.as.list->is_tuple == b.as.list->is_tuple) {
        tpl_list *x = a.as.list, *y = b.as.list;
        for (size_t i = 0; i < x->length && i < y->length; i++) {
            if (tpl_equal(rt, x->items[i], y->items[i])) continue;
            return tpl_compare(rt, x->items[i], y->items[i]);
        }
        return x->length < y->length ? -1 : x->length > y->length;
    }
    tpl_fail(rt, MLXE_ERR_TEMPLATE, "'<' not supported between instances of '%s' and '%s'",
             tpl_type_name(a), tpl_type_name(b));
}

void tpl_format_float(double d, char *buffer, size_t size) {
    if (isnan(d)) { snprintf(buffer, size, "nan"); return; }
    if (isinf(d)) { snprintf(buffer, size, d < 0 ? "-inf" : "inf"); return; }
    if (d == 0.0) { snprintf(buffer, size, signbit(d) ? "-0.0" : "0.0"); return; }
    /* Shortest digits that read back as the same double (repr's 'r' mode). */
    char sci[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(sci, sizeof sci, "%.*e", precision - 1, d);
        if (strtod(sci, NULL) == d) break;
    }
    const char *p = sci;
    bool negative = *p == '-';
    if (negative) p++;
    char digits[24];
    int n_digits = 0;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && n_digits < 23) digits[n_digits++] = *p;
    while (n_digits > 1 && digits[n_digits - 1] == '0') n_digits--;
    digits[n_digits] = '\0';
    int exponent = *p == 'e' ? atoi(p + 1) : 0;
    int point = exponent + 1; /* digits d1d2... = 0.d1d2... x 10^point */
    char out[64];
    size_t o = 0;
    if (negative) out[o++] = '-';
    if (point <= -4 || point > 16) {
        out[o++] = digits[0];
        if (n_digits > 1) {
            out[o++] = '.';
            for (int i = 1; i < n_digits; i++) out[o++] = digits[i];
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%c%02d", exponent < 0 ? '-' : '+',
                              exponent < 0 ? -exponent : exponent);
    } else if (point <= 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = 0; i < -point; i++) out[o++] = '0';
        for (int i = 0; i < n_digits; i++) out[o++] = digits[i];
    } else if (point < n_digits) {
        for (int i = 0; i < n_digits; i++) {
            if (i == point) out[o++] = '.';
            out[o++] = digits[i];
        }
    } else {
        for (int i = 0; i < n_digits; i++) out[o++] = digits[i];
        for (int i = n_digits; i < point; i++) out[o++] = '0';
        out[o++] = '.';
        out[o++] = '0';
    }
    out[o] = '\0';
    snprintf(buffer, size, "%s", out);
}

static bool is_printable(uint32_t cp) {
    if (cp < 0x20 || cp == 0x7f) return false;
    if (cp < 0x7f) return true;
    if (cp == ' ') return true;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_ZS: return false;
    default: return true;
    }
}

static void write_string_repr(tpl_runtime *rt, tpl_buffer *out, const tpl_string *s) {
    bool has_single = memchr(s->data, '\'', s->length) != NULL;
    bool has_double = memchr(s->data, '"', s->length) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    tpl_buffer_append(rt, out, &quote, 1);
    size_t pos = 0, run = 0;
    while (pos < s->length) {
        size_t start = pos;
        uint32_t cp = tpl_utf8_next(s->data, s->length, &pos);
        char escape[16];
        const char *text = NULL;
        if (cp == (uint32_t)quote || cp == '\\') {
            escape[0] = '\\';
            escape[1] = (char)cp;
            escape[2] = '\0';
            text = escape;
        } else if (cp == '\n') text = "\\n";
        else if (cp == '\r') text = "\\r";
        else if (cp == '\t') text = "\\t";
        else if (!is_printable(cp)) {
            if (cp < 0x100) snprintf(escape, sizeof escape, "\\x%02x", cp);
            else if (cp < 0x10000) snprintf(escape, sizeof escape, "\\u%04x", cp);
            else snprintf(escape, sizeof escape, "\\U%08x", cp);
            text = escape;
        }
        if (text) {
            tpl_buffer_append(rt, out, s->data + run, start - run);
            tpl_buffer_append_cstr(rt, out, text);
            run = pos;
        }
    }
    tpl_buffer_append(rt, out, s->data + run, s->length - run);
    tpl_buffer_append(rt, out, &quote, 1);
}

void tpl_write_repr(tpl_runtime *rt, tpl_buffer *out, tpl_value v, int depth) {
    if (depth > rt->limits.max_depth * 4 + 64)
        tpl_fail(rt, MLXE_ERR_LIMIT, "a value nested too deeply to print (more than %d levels)",
                 rt->limits.max_depth * 4 + 64);
    switch (v.type) {
    case TPL_STRING:
        if (v.as.string->is_markup) {
            tpl_buffer_append_cstr(rt, out, "Markup(");
            write_string_repr(rt, out, v.as.string);
            tpl_buffer_append(rt, out, ")", 1);
            return;
        }
        write_string_repr(rt, out, v.as.string);
        return;
    case TPL_UNDEFINED: tpl_buffer_append_cstr(rt, out, "Undefined"); return; /* repr(Undefined) */
    case TPL_LIST: {
        tpl_list *list = v.as.list;
        if (list->is_generator) {
            tpl_buffer_append_cstr(rt, out, "<generator object>");
            return;
        }
        tpl_buffer_append(rt, out, list->is_tuple ? "(" : "[", 1);
        for (size_t i = 0; i < list->length; i++) {
            if (i) tpl_buffer_append(rt, out, ", ", 2);
            tpl_write_repr(rt, out, list->items[i], depth + 1);
        }
        if (list->is_tuple && list->length == 1) tpl_buffer_append(rt, out, ",", 1);
        tpl_buffer_append(rt, out, list->is_tuple ? ")" : "]", 1);
        return;
    }
    case TPL_DICT:
    case TPL_NAMESPACE: {
        tpl_dict *dict = v.as.dict;
        if (v.type == TPL_NAMESPACE) tpl_buffer_append_cstr(rt, out, "<Namespace ");
        tpl_buffer_append(rt, out, "{", 1);
        for (size_t i = 0; i < dict->length; i++) {
            if (i) tpl_buffer_append(rt, out, ", ", 2);
            tpl_write_repr(rt, out, dict->keys[i], depth + 1);
            tpl_buffer_append(rt, out, ": ", 2);
            tpl_write_repr(rt, out, dict->values[i], depth + 1);
        }
        tpl_buffer_append(rt, out, "}", 1);
        if (v.type == TPL_NAMESPACE) tpl_buffer_append(rt, out, ">", 1);
        return;
    }
    default: tpl_write_str(rt, out, v); return;
    }
}

void tpl_write_str(tpl_runtime *rt, tpl_buffer *out, tpl_value v) {
    char number[64];
    switch (v.type) {
    case TPL_UNDEFINED: return;
    case TPL_NONE: tpl_buffer_append(rt, out, "None", 4); return;
    case TPL_BOOL: tpl_buffer_append_cstr(rt, out, v.as.boolean ? "True" : "False"); return;
    case TPL_INT:
        snprintf(number, sizeof number, "%" PRId64, v.as.integer);
        tpl_buffer_append_cstr(rt, out, number);
        return;
    case TPL_FLOAT:
        tpl_format_float(v.as.number, number, sizeof number);
        tpl_buffer_append_cstr(rt, out, number);
        return;
    case TPL_STRING: tpl_buffer_append(rt, out, v.as.string->data, v.as.string->length); return;
    case TPL_LIST:
    case TPL_DICT:
    case TPL_NAMESPACE: tpl_write_repr(rt, out, v, 0); return;
    case TPL_MACRO: tpl_buffer_append_cstr(rt, out, "<Macro>"); return;
    case TPL_FUNCTION: tpl_buffer_append_cstr(rt, out, "<function>"); return;
    case TPL_METHOD: tpl_buffer_append_cstr(rt, out, "<built-in method>"); return;
    case TPL_LOOP: tpl_buffer_append_cstr(rt, out, "<LoopContext>"); return;
    }
}

tpl_value tpl_to_string(tpl_runtime *rt, tpl_value v) {
    if (v.type == TPL_STRING) return v;
    tpl_buffer buffer = {0};
    tpl_write_str(rt, &buffer, v);
    return tpl_buffer_to_value(rt, &buffer);
}

tpl_list *tpl_iterate(tpl_runtime *rt, tpl_value v) {
    switch (v.type) {
    case TPL_UNDEFINED: return tpl_list_new(rt, 0, false).as.list;
    case TPL_LIST:
        if (v.as.list->is_generator) {
            /* A generator runs once: iterating it again gives nothing. */
            if (v.as.list->consumed) return tpl_list_new(rt, 0, false).as.list;
            v.as.list->consumed = true;
        }
        return v.as.list;
    case TPL_DICT: {
        tpl_list *keys = tpl_list_new(rt, v.as.dict->length, false).as.list;
        for (size_t i = 0; i < v.as.dict->length; i++) keys->items[keys->length++] = v.as.dict->keys[i];
        return keys;
    }
    case TPL_STRING: {
        tpl_string *s = v.as.string;
        tpl_list *chars = tpl_list_new(rt, (size_t)tpl_string_chars(s), false).as.list;
        size_t pos = 0;
        while (pos < s->length) {
            size_t start = pos;
            tpl_utf8_next(s->data, s->length, &pos);
            chars->items[chars->length++] = tpl_str(rt, s->data + start, pos - start);
        }
        return chars;
    }
    default:
        tpl_fail(rt, MLXE_ERR_TEMPLATE, "'%s' object is not iterable", tpl_type_name(v));
    }
}
