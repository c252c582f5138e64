/* template/json_value.c — JSON text to template values and back.
 *
 * Reading: the render context arrives as JSON text. We parse it ourselves
 * rather than through cJSON because the template must see what Python's
 * json.loads gives transformers: `1` is an int and `1.0` a float (they print
 * differently), object keys keep their order, a repeated key keeps its first
 * position with the last value, NaN/Infinity are accepted.
 *
 * Writing: `tojson` is transformers' override, json.dumps(x,
 * ensure_ascii=False, indent=None, separators=None, sort_keys=False), so the
 * output follows CPython's json encoder: ", " and ": " separators (","
 * when indenting), floats as repr(), NaN/Infinity spelled that way, control
 * characters as \uXXXX, non-ASCII left as is unless ensure_ascii. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/interp.h"

typedef struct json_reader {
    tpl_runtime *rt;
    const char *text;
    size_t length, pos;
    const char *what;
    int depth;
} json_reader;

_Noreturn static void json_fail(json_reader *r, const char *problem) {
    int line = 1, column = 1;
    for (size_t i = 0; i < r->pos && i < r->length; i++) {
        if (r->text[i] == '\n') { line++; column = 1; } else column++;
    }
    r->rt->line = 0;
    tpl_fail(r->rt, MLXE_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", r->what, line, column, problem);
}

static void skip_ws(json_reader *r) {
    while (r->pos < r->length && (r->text[r->pos] == ' ' || r->text[r->pos] == '\t' ||
                                  r->text[r->pos] == '\n' || r->text[r->pos] == '\r'))
        r->pos++;
}

static bool match(json_reader *r, const char *word) {
    size_t n = strlen(word);
    if (r->pos + n <= r->length && memcmp(r->text + r->pos, word, n) == 0) {
        r->pos += n;
        return true;
    }
    return false;
}

static int hex4(json_reader *r) {
    if (r->pos + 4 > r->length) json_fail(r, "truncated \\u escape");
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char h = r->text[r->pos++];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) json_fail(r, "invalid \\u escape");
        v = v * 16 + d;
    }
    return v;
}

static tpl_value read_string(json_reader *r) {
    r->pos++; /* opening quote */
    tpl_buffer b = {0};
    size_t run = r->pos;
    for (;;) {
        if (r->pos >= r->length) json_fail(r, "unterminated string");
        unsigned char c = (unsigned char)r->text[r->pos];
        if (c == '"') break;
        if (c < 0x20) json_fail(r, "control character in a string");
        if (c != '\\') { r->pos++; continue; }
        tpl_buffer_append(r->rt, &b, r->text + run, r->pos - run);
        r->pos++;
        if (r->pos >= r->length) json_fail(r, "unterminated string");
        char e = r->text[r->pos++];
        char out[4];
        switch (e) {
        case '"': tpl_buffer_append(r->rt, &b, "\"", 1); break;
        case '\\': tpl_buffer_append(r->rt, &b, "\\", 1); break;
        case '/': tpl_buffer_append(r->rt, &b, "/", 1); break;
        case 'b': tpl_buffer_append(r->rt, &b, "\b", 1); break;
        case 'f': tpl_buffer_append(r->rt, &b, "\f", 1); break;
        case 'n': tpl_buffer_append(r->rt, &b, "\n", 1); break;
        case 'r': tpl_buffer_append(r->rt, &b, "\r", 1); break;
        case 't': tpl_buffer_append(r->rt, &b, "\t", 1); break;
        case 'u': {
            uint32_t cp = (uint32_t)hex4(r);
            if (cp >= 0xd800 && cp < 0xdc00 && r->pos + 6 <= r->length && r->text[r->pos] == '\\' &&
                r->text[r->pos + 1] == 'u') {
                size_t save = r->pos;
                r->pos += 2;
                uint32_t low = (uint32_t)hex4(r);
                if (low >= 0xdc00 && low < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                else r->pos = save;
            }
            tpl_buffer_append(r->rt, &b, out, tpl_utf8_encode(cp, out));
            break;
        }
        default: json_fail(r, "invalid escape in a string");
        }
        run = r->pos;
    }
    tpl_buffer_append(r->rt, &b, r->text + run, r->pos - run);
    r->pos++;
    return tpl_buffer_to_value(r->rt, &b);
}

static tpl_value read_number(json_reader *r) {
    size_t start = r->pos;
    bool is_float = false;
    if (r->text[r->pos] == '-') r->pos++;
    if (match(r, "Infinity")) return tpl_float(r->text[start] == '-' ? -INFINITY : INFINITY);
    size_t digits = r->pos;
    while (r->pos < r->length && r->text[r->pos] >= '0' && r->text[r->pos] <= '9') r->pos++;
    if (r->pos == digits) json_fail(r, "invalid number");
    if (r->text[digits] == '0' && r->pos - digits > 1) json_fail(r, "leading zeros in a number");
    if (r->pos < r->length && r->text[r->pos] == '.') {
        is_float = true;
        r->pos++;
        size_t f = r->pos;
        while (r->pos < r->length && r->text[r->pos] >= '0' && r->text[r->pos] <= '9') r->pos++;
        if (r->pos == f) json_fail(r, "invalid number");
    }
    if (r->pos < r->length && (r->text[r->pos] == 'e' || r->text[r->pos] == 'E')) {
        is_float = true;
        r->pos++;
        if (r->pos < r->length && (r->text[r->pos] == '+' || r->text[r->pos] == '-')) r->pos++;
        size_t e = r->pos;
        while (r->pos < r->length && r->text[r->pos] >= '0' && r->text[r->pos] <= '9') r->pos++;
        if (r->pos == e) json_fail(r, "invalid number");
    }
    char buffer[400];
    size_t n = r->pos - start;
    if (n >= sizeof buffer) json_fail(r, "number too long");
    memcpy(buffer, r->text + start, n);
    buffer[n] = '\0';
    if (!is_float) {
        errno = 0;
        long long v = strtoll(buffer, NULL, 10);
        if (errno == 0) return tpl_int(v);
        /* Beyond 64 bits: Python keeps an exact int; we cannot, so say so. */
        r->rt->line = 0;
        tpl_fail(r->rt, MLXE_ERR_UNSUPPORTED, "%s: integer %s does not fit in 64 bits", r->what, buffer);
    }
    return tpl_float(strtod(buffer, NULL));
}

static tpl_value read_value(json_reader *r) {
    skip_ws(r);
    if (r->pos >= r->length) json_fail(r, "unexpected end of JSON");
    char c = r->text[r->pos];
    if (c == '{' || c == '[') {
        if (++r->depth > r->rt->limits.max_nesting) {
            r->rt->line = 0;
            tpl_fail(r->rt, MLXE_ERR_LIMIT, "%s: JSON nested deeper than %d levels (max_nesting)", r->what,
                     r->rt->limits.max_nesting);
        }
        r->pos++;
        tpl_value out = c == '{' ? tpl_dict_new(r->rt, 0) : tpl_list_new(r->rt, 0, false);
        skip_ws(r);
        char close = c == '{' ? '}' : ']';
        if (r->pos < r->length && r->text[r->pos] == close) {
            r->pos++;
            r->depth--;
            return out;
        }
        for (;;) {
            if (c == '{') {
                skip_ws(r);
                if (r->pos >= r->length || r->text[r->pos] != '"') json_fail(r, "expected a string key");
                tpl_value key = read_string(r);
                skip_ws(r);
                if (r->pos >= r->length || r->text[r->pos] != ':') json_fail(r, "expected ':'");
                r->pos++;
                tpl_value value = read_value(r);
                tpl_dict_set(r->rt, out.as.dict, key, value);
            } else {
                tpl_list_push(r->rt, out.as.list, read_value(r));
            }
            skip_ws(r);
            if (r->pos < r->length && r->text[r->pos] == ',') { r->pos++; continue; }
            if (r->pos < r->length && r->text[r->pos] == close) { r->pos++; break; }
            json_fail(r, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
        r->depth--;
        return out;
    }
    if (c == '"') return read_string(r);
    if (c == '-' || (c >= '0' && c <= '9')) return read_number(r);
    if (match(r, "true")) return tpl_bool(true);
    if (match(r, "false")) return tpl_bool(false);
    if (match(r, "null")) return tpl_none();
    if (match(r, "NaN")) return tpl_float(NAN);
    if (match(r, "Infinity")) return tpl_float(INFINITY);
    json_fail(r, "unexpected character");
}

tpl_value tpl_json_parse(tpl_runtime *rt, const char *text, size_t length, const char *what) {
    json_reader r = {.rt = rt, .text = text, .length = length, .what = what};
    tpl_value v = read_value(&r);
    skip_ws(&r);
    if (r.pos != r.length) json_fail(&r, "extra data after the JSON value");
    return v;
}

/* ---- json.dumps ---- */

typedef struct json_writer {
    tpl_runtime *rt;
    tpl_buffer *out;
    bool ensure_ascii;
    const char *indent;
    const char *item_separator, *key_separator;
    bool sort_keys;
} json_writer;

static void write_json_string(json_writer *w, const char *data, size_t length) {
    tpl_runtime *rt = w->rt;
    tpl_buffer_append(rt, w->out, "\"", 1);
    size_t pos = 0, run = 0;
    while (pos < length) {
        size_t start = pos;
        uint32_t cp = tpl_utf8_next(data, length, &pos);
        char escape[16];
        const char *text = NULL;
        switch (cp) {
        case '"': text = "\\\""; break;
        case '\\': text = "\\\\"; break;
        case '\n': text = "\\n"; break;
        case '\r': text = "\\r"; break;
        case '\t': text = "\\t"; break;
        case '\b': text = "\\b"; break;
        case '\f': text = "\\f"; break;
        default:
            if (cp < 0x20 || (w->ensure_ascii && cp > 0x7e)) {
                if (cp >= 0x10000) {
                    uint32_t v = cp - 0x10000;
                    snprintf(escape, sizeof escape, "\\u%04x\\u%04x", 0xd800 + (v >> 10), 0xdc00 + (v & 0x3ff));
                } else {
                    snprintf(escape, sizeof escape, "\\u%04x", cp);
                }
                text = escape;
            }
        }
        if (text) {
            tpl_buffer_append(rt, w->out, data + run, start - run);
            tpl_buffer_append_cstr(rt, w->out, text);
            run = pos;
        }
    }
    tpl_buffer_append(rt, w->out, data + run, length - run);
    tpl_buffer_append(rt, w->out, "\"", 1);
}

static void write_float(json_writer *w, double d) {
    char text[64];
    if (isnan(d)) snprintf(text, sizeof text, "NaN");
    else if (isinf(d)) snprintf(text, sizeof text, d < 0 ? "-Infinity" : "Infinity");
    else tpl_format_float(d, text, sizeof text);
    tpl_buffer_append_cstr(w->rt, w->out, text);
}

static void newline_indent(json_writer *w, int level) {
    tpl_buffer_append(w->rt, w->out, "\n", 1);
    for (int i = 0; i < level; i++) tpl_buffer_append_cstr(w->rt, w->out, w->indent);
}

static void write_json(json_writer *w, tpl_value v, int level) {
    tpl_runtime *rt = w->rt;
    if (level > rt->limits.max_depth * 4 + 64)
        tpl_fail(rt, MLXE_ERR_LIMIT, "a value nested too deeply for tojson");
    char number[64];
    switch (v.type) {
    case TPL_NONE: tpl_buffer_append(rt, w->out, "null", 4); return;
    case TPL_BOOL: tpl_buffer_append_cstr(rt, w->out, v.as.boolean ? "true" : "false"); return;
    case TPL_INT:
        snprintf(number, sizeof number, "%lld", (long long)v.as.integer);
        tpl_buffer_append_cstr(rt, w->out, number);
        return;
    case TPL_FLOAT: write_float(w, v.as.number); return;
    case TPL_STRING: write_json_string(w, v.as.string->data, v.as.string->length); return;
    case TPL_LIST: {
        tpl_list *l = v.as.list;
        if (l->is_generator) tpl_fail(rt, MLXE_ERR_TEMPLATE, "Object of type generator is not JSON serializable");
        if (!l->length) { tpl_buffer_append(rt, w->out, "[]", 2); return; }
        tpl_buffer_append(rt, w->out, "[", 1);
        for (size_t i = 0; i < l->length; i++) {
            if (i) tpl_buffer_append_cstr(rt, w->out, w->item_separator);
            if (w->indent) newline_indent(w, level + 1);
            write_json(w, l->items[i], level + 1);
        }
        if (w->indent) newline_indent(w, level);
        tpl_buffer_append(rt, w->out, "]", 1);
        return;
    }
    case TPL_DICT: {
        tpl_dict *d = v.as.dict;
        if (!d->length) { tpl_buffer_append(rt, w->out, "{}", 2); return; }
        /* Keys become strings first (json.dumps converts int, float, bool, None keys). */
        tpl_value *keys = tpl_alloc(rt, d->length * sizeof(tpl_value));
        size_t *order = tpl_alloc(rt, d->length * sizeof(size_t));
        for (size_t i = 0; i < d->length; i++) {
            tpl_value k = d->keys[i];
            order[i] = i;
            if (k.type == TPL_STRING) keys[i] = k;
            else if (k.type == TPL_BOOL) keys[i] = tpl_cstr(rt, k.as.boolean ? "true" : "false");
            else if (k.type == TPL_NONE) keys[i] = tpl_cstr(rt, "null");
            else if (k.type == TPL_INT) keys[i] = tpl_to_string(rt, k);
            else if (k.type == TPL_FLOAT) {
                tpl_buffer b = {0};
                json_writer kw = *w;
                kw.out = &b;
                write_float(&kw, k.as.number);
                keys[i] = tpl_buffer_to_value(rt, &b);
            } else {
                tpl_fail(rt, MLXE_ERR_TEMPLATE, "keys must be str, int, float, bool or None, not %s", tpl_type_name(k));
            }
        }
        if (w->sort_keys) {
            /* insertion sort keeps it simple and stable; dicts here are small */
            for (size_t i = 1; i < d->length; i++) {
                size_t current = order[i], j = i;
                while (j > 0 && tpl_compare(rt, keys[order[j - 1]], keys[current]) > 0) {
                    order[j] = order[j - 1];
                    j--;
                }
                order[j] = current;
            }
        }
        tpl_buffer_append(rt, w->out, "{", 1);
        for (size_t n = 0; n < d->length; n++) {
            size_t i = order[n];
            if (n) tpl_buffer_append_cstr(rt, w->out, w->item_separator);
            if (w->indent) newline_indent(w, level + 1);
            write_json_string(w, keys[i].as.string->data, keys[i].as.string->length);
            tpl_buffer_append_cstr(rt, w->out, w->key_separator);
            write_json(w, d->values[i], level + 1);
        }
        if (w->indent) newline_indent(w, level);
        tpl_buffer_append(rt, w->out, "}", 1);
        return;
    }
    default:
        tpl_fail(rt, MLXE_ERR_TEMPLATE, "Object of type %s is not JSON serializable", tpl_type_name(v));
    }
}

void tpl_json_dump(tpl_runtime *rt, tpl_buffer *out, tpl_value value, bool ensure_ascii, const char *indent,
                   const char *item_separator, const char *key_separator, bool sort_keys) {
    json_writer w = {rt, out, ensure_ascii, indent, item_separator, key_separator, sort_keys};
    if (!w.item_separator) w.item_separator = indent ? "," : ", ";
    if (!w.key_separator) w.key_separator = ": ";
    write_json(&w, value, 0);
}
