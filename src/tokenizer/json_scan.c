/* tokenizer/json_scan.c — the raw JSON scanner (see json_scan.h). */
#include "tokenizer/json_scan.h"

#include <string.h>

#include "tokenizer/unicode.h"

#define MAX_DEPTH 512

void json_scan_ws(json_scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t')) s->p++;
}

bool json_scan_expect(json_scan *s, char c) {
    json_scan_ws(s);
    if (s->p >= s->end || *s->p != c) {
        if (!s->error) s->error = c == ':' ? "expected ':'" : c == ',' ? "expected ','" : "unexpected character";
        return false;
    }
    s->p++;
    return true;
}

static bool skip_string(json_scan *s) {
    /* s->p at the opening quote */
    const char *p = s->p + 1;
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(s->end - p));
        if (!q) {
            s->error = "unterminated string";
            return false;
        }
        /* count the backslashes before the quote */
        const char *b = q;
        while (b > p && b[-1] == '\\') b--;
        if (((q - b) & 1) == 0) {
            s->p = q + 1;
            return true;
        }
        p = q + 1;
    }
}

static inline bool is_delimiter(char c) {
    return c == ',' || c == ']' || c == '}' || c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':';
}

bool json_scan_skip(json_scan *s) {
    int depth = 0;
    json_scan_ws(s);
    do {
        json_scan_ws(s);
        if (s->p >= s->end) {
            s->error = "unexpected end of file";
            return false;
        }
        char c = *s->p;
        if (c == '"') {
            if (!skip_string(s)) return false;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_DEPTH) {
                s->error = "nesting too deep";
                return false;
            }
            s->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) {
                s->error = "unbalanced bracket";
                return false;
            }
            depth--;
            s->p++;
        } else if (c == ',' || c == ':') {
            if (depth == 0) {
                s->error = "unexpected separator";
                return false;
            }
            s->p++;
        } else {
            /* number, true, false, null */
            const char *start = s->p;
            while (s->p < s->end && !is_delimiter(*s->p)) s->p++;
            if (s->p == start) {
                s->error = "unexpected character";
                return false;
            }
        }
    } while (depth > 0);
    return true;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

bool json_scan_string(json_scan *s, tok_buffer *out) {
    json_scan_ws(s);
    out->size = 0;
    if (s->p >= s->end || *s->p != '"') {
        s->error = "expected a string";
        return false;
    }
    const char *p = s->p + 1;
    for (;;) {
        const char *run = p;
        while (p < s->end && *p != '"' && *p != '\\') p++;
        if (p >= s->end) {
            s->error = "unterminated string";
            return false;
        }
        if (p > run && !tok_buffer_append(out, run, (size_t)(p - run))) {
            s->error = "out of memory";
            return false;
        }
        if (*p == '"') {
            s->p = p + 1;
            if (!tok_buffer_append(out, "", 0)) {
                s->error = "out of memory";
                return false;
            }
            return true;
        }
        /* escape */
        if (p + 1 >= s->end) {
            s->error = "unterminated string";
            return false;
        }
        char e = p[1];
        char c;
        p += 2;
        switch (e) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
            if (s->end - p < 4 || hex4(p) < 0) {
                s->error = "bad \\u escape";
                return false;
            }
            uint32_t cp = (uint32_t)hex4(p);
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && s->end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                int low = hex4(p + 2);
                if (low >= 0xDC00 && low < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
                    p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD; /* lone surrogate */
            char utf8[4];
            size_t n = tok_utf8_encode(cp, utf8);
            if (!tok_buffer_append(out, utf8, n)) {
                s->error = "out of memory";
                return false;
            }
            continue;
        }
        default: s->error = "bad escape"; return false;
        }
        if (!tok_buffer_append(out, &c, 1)) {
            s->error = "out of memory";
            return false;
        }
    }
}

bool json_scan_int(json_scan *s, int64_t *value) {
    json_scan_ws(s);
    const char *p = s->p;
    bool negative = false;
    if (p < s->end && *p == '-') {
        negative = true;
        p++;
    }
    if (p >= s->end || *p < '0' || *p > '9') {
        s->error = "expected an integer";
        return false;
    }
    int64_t v = 0;
    while (p < s->end && *p >= '0' && *p <= '9') {
        if (v > (INT64_MAX - 9) / 10) {
            s->error = "integer too large";
            return false;
        }
        v = v * 10 + (*p - '0');
        p++;
    }
    if (p < s->end && (*p == '.' || *p == 'e' || *p == 'E')) {
        s->error = "expected an integer";
        return false;
    }
    s->p = p;
    *value = negative ? -v : v;
    return true;
}

size_t json_scan_line(const json_scan *s) {
    size_t line = 1;
    for (const char *p = s->text; p < s->p && p < s->end; p++)
        if (*p == '\n') line++;
    return line;
}
