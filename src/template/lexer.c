/* template/lexer.c — Jinja2's tokenizer with trim_blocks and lstrip_blocks
 * (see lexer.h; the whitespace rules mirror jinja2/lexer.py tokeniter). */
#include "template/lexer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    tpl_runtime *rt;
    const char *src;     /* normalised source */
    size_t length;
    size_t pos;
    tpl_token *tokens;
    size_t count, capacity;
    bool line_starting;  /* the last tag ended with a newline (for lstrip_blocks) */
    size_t seen_offset;  /* position cache: offsets only grow while lexing */
    int seen_line, seen_column;
} lexer;

static void position_of(lexer *lx, size_t offset, int *line, int *column) {
    if (offset < lx->seen_offset) {
        lx->seen_offset = 0;
        lx->seen_line = 1;
        lx->seen_column = 1;
    }
    int l = lx->seen_line, c = lx->seen_column;
    for (size_t i = lx->seen_offset; i < offset && i < lx->length; i++) {
        if (lx->src[i] == '\n') { l++; c = 1; } else c++;
    }
    lx->seen_offset = offset;
    lx->seen_line = l;
    lx->seen_column = c;
    *line = l;
    *column = c;
}

_Noreturn static void lex_fail(lexer *lx, size_t offset, const char *what) {
    position_of(lx, offset, &lx->rt->line, &lx->rt->column);
    tpl_fail(lx->rt, MLXE_ERR_TEMPLATE, "%s", what);
}

static tpl_token *push(lexer *lx, tpl_token_kind kind, size_t offset) {
    if (lx->count == lx->capacity) {
        size_t capacity = lx->capacity ? lx->capacity * 2 : 256;
        tpl_token *tokens = tpl_alloc(lx->rt, capacity * sizeof *tokens);
        if (lx->count) memcpy(tokens, lx->tokens, lx->count * sizeof *tokens);
        lx->tokens = tokens;
        lx->capacity = capacity;
    }
    tpl_token *t = &lx->tokens[lx->count++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    position_of(lx, offset, &t->line, &t->column);
    return t;
}

/* Trailing whitespace length (Python's str.rstrip()). */
static size_t rstrip_length(const char *text, size_t length) {
    size_t end = length;
    while (end > 0) {
        size_t start = end - 1;
        while (start > 0 && ((unsigned char)text[start] & 0xc0) == 0x80) start--;
        size_t p = start;
        uint32_t cp = tpl_utf8_next(text, end, &p);
        if (p != end || !tpl_is_space(cp)) break;
        end = start;
    }
    return end;
}

static size_t skip_space(const char *text, size_t length, size_t pos) {
    while (pos < length) {
        size_t p = pos;
        uint32_t cp = tpl_utf8_next(text, length, &p);
        if (!tpl_is_space(cp)) break;
        pos = p;
    }
    return pos;
}

/* Emits the data before a tag, applying `-` (strip all trailing whitespace)
 * or lstrip_blocks (drop spaces/tabs between the last newline and a block or
 * comment tag when nothing else is there). */
static void emit_data(lexer *lx, size_t start, size_t end, char sign, bool is_variable) {
    size_t length = end - start;
    const char *text = lx->src + start;
    if (sign == '-') {
        length = rstrip_length(text, length);
    } else if (sign != '+' && !is_variable) {
        size_t line_start = length;
        while (line_start > 0 && text[line_start - 1] != '\n') line_start--;
        if (line_start > 0 || lx->line_starting) {
            bool only_blanks = true;
            for (size_t i = line_start; i < length; i++)
                if (text[i] != ' ' && text[i] != '\t') { only_blanks = false; break; }
            if (only_blanks) length = line_start;
        }
    }
    if (length) {
        tpl_token *t = push(lx, TK_TEXT, start);
        char *copy = tpl_alloc(lx->rt, length + 1);
        memcpy(copy, text, length);
        copy[length] = '\0';
        t->text = copy;
        t->length = length;
    }
}

/* After `%}` or `#}`: `-` strips all following whitespace, trim_blocks one
 * newline, `+` nothing. Returns the new position. */
static size_t after_tag_end(lexer *lx, size_t pos, char sign, bool is_variable) {
    size_t start = pos;
    if (sign == '-') pos = skip_space(lx->src, lx->length, pos);
    else if (sign != '+' && !is_variable && pos < lx->length && lx->src[pos] == '\n') pos++;
    lx->line_starting = pos > start && lx->src[pos - 1] == '\n';
    return pos;
}

/* Decodes a Python string literal body (Jinja uses the unicode-escape codec). */
static void decode_string(lexer *lx, size_t start, size_t end, tpl_token *t) {
    char *out = tpl_alloc(lx->rt, end - start + 1);
    size_t o = 0;
    const char *s = lx->src;
    for (size_t i = start; i < end; i++) {
        if (s[i] != '\\' || i + 1 >= end) {
            out[o++] = s[i];
            continue;
        }
        char c = s[++i];
        uint32_t cp = 0;
        int hex = 0;
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'v': out[o++] = '\v'; break;
        case '\n': break; /* line continuation */
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (c >= '0' && c <= '7') {
                int n = 0;
                while (n < 3 && i < end && s[i] >= '0' && s[i] <= '7') cp = cp * 8 + (uint32_t)(s[i++] - '0'), n++;
                i--;
                o += tpl_utf8_encode(cp, out + o);
            } else {
                out[o++] = '\\';
                out[o++] = c;
            }
        }
        if (hex) {
            if (i + (size_t)hex >= end) lex_fail(lx, i, "truncated \\x, \\u or \\U escape in a string");
            for (int k = 0; k < hex; k++) {
                char h = s[i + 1 + (size_t)k];
                int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
                if (d < 0) lex_fail(lx, i, "invalid \\x, \\u or \\U escape in a string");
                cp = cp * 16 + (uint32_t)d;
            }
            if (cp > 0x10ffff) lex_fail(lx, i, "\\U escape beyond U+10FFFF");
            i += (size_t)hex;
            o += tpl_utf8_encode(cp, out + o);
        }
    }
    out[o] = '\0';
    t->text = out;
    t->length = o;
}

static bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* A run of digits with single underscores between them; returns the end. */
static size_t digits_end(const char *s, size_t length, size_t pos) {
    if (pos >= length || !is_digit(s[pos])) return pos;
    while (pos < length) {
        if (is_digit(s[pos])) pos++;
        else if (s[pos] == '_' && pos + 1 < length && is_digit(s[pos + 1])) pos++;
        else break;
    }
    return pos;
}

static double parse_number_text(const char *s, size_t start, size_t end, bool *ok) {
    char buffer[128];
    size_t n = 0;
    for (size_t i = start; i < end && n + 1 < sizeof buffer; i++)
        if (s[i] != '_') buffer[n++] = s[i];
    buffer[n] = '\0';
    char *stop;
    double d = strtod(buffer, &stop);
    *ok = *stop == '\0';
    return d;
}

/* Tokenizes the inside of a tag until its end delimiter; returns the position
 * after the delimiter and the end's whitespace sign. */
static size_t lex_tag(lexer *lx, size_t pos, bool is_variable, char *end_sign) {
    const char *s = lx->src;
    size_t n = lx->length;
    int balance = 0;
    for (;;) {
        while (pos < n && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r' ||
                           s[pos] == '\f' || s[pos] == '\v'))
            pos++;
        if (pos >= n)
            lex_fail(lx, pos, is_variable ? "unexpected end of template: '}}' missing"
                                          : "unexpected end of template: '%}' missing");
        if (balance == 0) {
            char close = is_variable ? '}' : '%';
            size_t p = pos;
            char sign = 0;
            if ((s[p] == '-' || s[p] == '+') && p + 2 < n && s[p + 1] == close && s[p + 2] == '}') {
                sign = s[p];
                p++;
            }
            if (p + 1 < n && s[p] == close && s[p + 1] == '}') {
                if (sign == '+' && is_variable) sign = 0;
                push(lx, is_variable ? TK_VAR_END : TK_BLOCK_END, pos);
                *end_sign = sign;
                return p + 2;
            }
        }
        char c = s[pos];
        if (is_name_start(c)) {
            size_t start = pos;
            while (pos < n && (is_name_start(s[pos]) || is_digit(s[pos]))) pos++;
            tpl_token *t = push(lx, TK_NAME, start);
            char *name = tpl_alloc(lx->rt, pos - start + 1);
            memcpy(name, s + start, pos - start);
            name[pos - start] = '\0';
            t->text = name;
            t->length = pos - start;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t start = pos++;
            while (pos < n && s[pos] != c) {
                if (s[pos] == '\\') pos++;
                pos++;
            }
            if (pos >= n) lex_fail(lx, start, "unterminated string literal");
            tpl_token *t = push(lx, TK_STRING, start);
            decode_string(lx, start + 1, pos, t);
            pos++;
            continue;
        }
        if (is_digit(c)) {
            size_t start = pos;
            bool after_dot = lx->count > 0 && lx->tokens[lx->count - 1].kind == TK_OP &&
                             lx->tokens[lx->count - 1].op == OP_DOT && start > 0 && s[start - 1] == '.';
            if (c == '0' && pos + 1 < n && strchr("bBoOxX", s[pos + 1])) {
                int base = (s[pos + 1] == 'b' || s[pos + 1] == 'B') ? 2 : (s[pos + 1] == 'o' || s[pos + 1] == 'O') ? 8 : 16;
                pos += 2;
                int64_t value = 0;
                size_t digits_start = pos;
                while (pos < n) {
                    char h = s[pos];
                    int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10 : h == '_' ? -2 : -1;
                    if (d == -2) { pos++; continue; }
                    if (d < 0 || d >= base) break;
                    if (value > (INT64_MAX - d) / base) lex_fail(lx, start, "integer literal too large");
                    value = value * base + d;
                    pos++;
                }
                if (pos == digits_start) lex_fail(lx, start, "invalid integer literal");
                tpl_token *t = push(lx, TK_INT, start);
                t->integer = value;
                continue;
            }
            pos = digits_end(s, n, pos);
            bool is_float = false;
            if (!after_dot) {
                size_t p = pos;
                if (p + 1 < n && s[p] == '.' && is_digit(s[p + 1])) {
                    p = digits_end(s, n, p + 1);
                    is_float = true;
                }
                if (p < n && (s[p] == 'e' || s[p] == 'E')) {
                    size_t q = p + 1;
                    if (q < n && (s[q] == '+' || s[q] == '-')) q++;
                    size_t e = digits_end(s, n, q);
                    if (e > q) { p = e; is_float = true; }
                }
                if (is_float) pos = p;
            }
            bool ok;
            double d = parse_number_text(s, start, pos, &ok);
            if (is_float) {
                tpl_token *t = push(lx, TK_FLOAT, start);
                t->number = d;
            } else {
                int64_t value = 0;
                for (size_t i = start; i < pos; i++) {
                    if (s[i] == '_') continue;
                    if (value > (INT64_MAX - (s[i] - '0')) / 10) lex_fail(lx, start, "integer literal too large");
                    value = value * 10 + (s[i] - '0');
                }
                tpl_token *t = push(lx, TK_INT, start);
                t->integer = value;
            }
            continue;
        }
        tpl_op op = OP_NONE;
        size_t width = 1;
        char d = pos + 1 < n ? s[pos + 1] : '\0';
        switch (c) {
        case '+': op = OP_ADD; break;
        case '-': op = OP_SUB; break;
        case '*': if (d == '*') { op = OP_POW; width = 2; } else op = OP_MUL; break;
        case '/': if (d == '/') { op = OP_FLOORDIV; width = 2; } else op = OP_DIV; break;
        case '%': op = OP_MOD; break;
        case '~': op = OP_TILDE; break;
        case '[': op = OP_LBRACKET; balance++; break;
        case ']': op = OP_RBRACKET; balance--; break;
        case '(': op = OP_LPAREN; balance++; break;
        case ')': op = OP_RPAREN; balance--; break;
        case '{': op = OP_LBRACE; balance++; break;
        case '}': op = OP_RBRACE; balance--; break;
        case '=': if (d == '=') { op = OP_EQ; width = 2; } else op = OP_ASSIGN; break;
        case '!': if (d == '=') { op = OP_NE; width = 2; } break;
        case '<': if (d == '=') { op = OP_LE; width = 2; } else op = OP_LT; break;
        case '>': if (d == '=') { op = OP_GE; width = 2; } else op = OP_GT; break;
        case '.': op = OP_DOT; break;
        case ':': op = OP_COLON; break;
        case '|': op = OP_PIPE; break;
        case ',': op = OP_COMMA; break;
        case ';': op = OP_SEMICOLON; break;
        default: break;
        }
        if (op == OP_NONE) {
            char message[64];
            snprintf(message, sizeof message, "unexpected character '%c' in a tag", c);
            lex_fail(lx, pos, message);
        }
        if (balance < 0) balance = 0;
        tpl_token *t = push(lx, TK_OP, pos);
        t->op = op;
        pos += width;
    }
}

/* Finds `{% endraw %}` (with optional signs and spaces) from pos; returns its
 * start and sets the tag's signs and end. */
static bool find_endraw(lexer *lx, size_t pos, size_t *tag_start, char *open_sign, char *close_sign,
                        size_t *tag_end) {
    const char *s = lx->src;
    size_t n = lx->length;
    for (size_t i = pos; i + 1 < n; i++) {
        if (s[i] != '{' || s[i + 1] != '%') continue;
        size_t p = i + 2;
        char sign = 0;
        if (p < n && (s[p] == '-' || s[p] == '+')) sign = s[p++];
        while (p < n && tpl_is_space((unsigned char)s[p])) p++;
        if (p + 6 > n || memcmp(s + p, "endraw", 6) != 0) continue;
        p += 6;
        while (p < n && tpl_is_space((unsigned char)s[p])) p++;
        char csign = 0;
        if (p < n && (s[p] == '-' || s[p] == '+')) csign = s[p++];
        if (p + 1 < n && s[p] == '%' && s[p + 1] == '}') {
            *tag_start = i;
            *open_sign = sign;
            *close_sign = csign;
            *tag_end = p + 2;
            return true;
        }
    }
    return false;
}

tpl_token_list tpl_lex(tpl_runtime *rt, const char *source, size_t length) {
    /* Newlines: \r\n and \r become \n; one trailing newline is dropped. */
    char *src = tpl_alloc(rt, length + 1);
    size_t n = 0;
    for (size_t i = 0; i < length; i++) {
        if (source[i] == '\r') {
            src[n++] = '\n';
            if (i + 1 < length && source[i + 1] == '\n') i++;
        } else {
            src[n++] = source[i];
        }
    }
    if (n > 0 && src[n - 1] == '\n') n--;
    src[n] = '\0';

    lexer lx = {.rt = rt, .src = src, .length = n, .line_starting = true, .seen_line = 1, .seen_column = 1};
    size_t pos = 0;
    while (pos < n) {
        /* Next tag opener. */
        size_t tag = pos;
        int kind = 0; /* 1 var, 2 block, 3 comment */
        for (; tag + 1 < n; tag++) {
            if (src[tag] != '{') continue;
            char c = src[tag + 1];
            if (c == '{') { kind = 1; break; }
            if (c == '%') { kind = 2; break; }
            if (c == '#') { kind = 3; break; }
        }
        if (!kind) {
            emit_data(&lx, pos, n, 0, true);
            pos = n;
            break;
        }
        size_t inner = tag + 2;
        char sign = 0;
        if (inner < n && (src[inner] == '-' || src[inner] == '+')) sign = src[inner++];
        if (sign == '+' && kind == 1) sign = 0, inner--;
        emit_data(&lx, pos, tag, sign, kind == 1);
        if (kind == 3) {
            /* Comment: find `#}`, with its own `-`. */
            size_t end = inner;
            while (end + 1 < n && !(src[end] == '#' && src[end + 1] == '}')) end++;
            if (end + 1 >= n) lex_fail(&lx, tag, "unexpected end of template: comment not closed with '#}'");
            char close_sign = 0;
            if (end > inner && (src[end - 1] == '-' || src[end - 1] == '+')) close_sign = src[end - 1];
            pos = after_tag_end(&lx, end + 2, close_sign, false);
            continue;
        }
        push(&lx, kind == 1 ? TK_VAR_BEGIN : TK_BLOCK_BEGIN, tag);
        size_t first_token = lx.count;
        char end_sign = 0;
        pos = lex_tag(&lx, inner, kind == 1, &end_sign);
        bool is_raw = kind == 2 && lx.count == first_token + 2 && lx.tokens[first_token].kind == TK_NAME &&
                      strcmp(lx.tokens[first_token].text, "raw") == 0;
        /* Jinja2's raw_begin rule has no trim_blocks suffix: only `-%}` strips after it. */
        pos = after_tag_end(&lx, pos, is_raw && end_sign != '-' ? '+' : end_sign, kind == 1);
        /* {% raw %}: everything up to {% endraw %} is data. */
        if (is_raw) {
            lx.count -= 3; /* drop BLOCK_BEGIN raw BLOCK_END */
            size_t tag_start, tag_end;
            char open_sign, close_sign;
            if (!find_endraw(&lx, pos, &tag_start, &open_sign, &close_sign, &tag_end))
                lex_fail(&lx, tag, "missing end of raw directive ('{% endraw %}')");
            emit_data(&lx, pos, tag_start, open_sign, false);
            pos = after_tag_end(&lx, tag_end, close_sign, false);
        }
    }
    push(&lx, TK_EOF, n);
    tpl_token_list list = {lx.tokens, lx.count};
    return list;
}
