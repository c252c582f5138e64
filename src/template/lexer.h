/* template/lexer.h — splits a Jinja template into tokens.
 *
 * Follows Jinja2's lexer (jinja2/lexer.py) with the settings transformers
 * uses: trim_blocks (the first newline after a block or comment tag is
 * dropped), lstrip_blocks (spaces and tabs before a block or comment tag at
 * the start of a line are dropped), `-` and `+` whitespace control, newlines
 * normalised to \n and one trailing newline removed (keep_trailing_newline
 * off), `{% raw %}` blocks, and Python's string-literal escapes. */
#ifndef MLXE_TEMPLATE_LEXER_H
#define MLXE_TEMPLATE_LEXER_H

#include <stddef.h>
#include <stdint.h>

#include "template/value.h"

typedef enum tpl_token_kind {
    TK_EOF = 0,
    TK_TEXT,        /* template data between tags */
    TK_VAR_BEGIN,   /* {{ */
    TK_VAR_END,     /* }} */
    TK_BLOCK_BEGIN, /* {% */
    TK_BLOCK_END,   /* %} */
    TK_NAME,
    TK_STRING,
    TK_INT,
    TK_FLOAT,
    TK_OP
} tpl_token_kind;

/* Operators, one code each (multi-character ones have their own). */
typedef enum tpl_op {
    OP_NONE = 0,
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ASSIGN,
    OP_DOT, OP_COLON, OP_PIPE, OP_COMMA, OP_SEMICOLON
} tpl_op;

typedef struct tpl_token {
    tpl_token_kind kind;
    tpl_op op;
    int line, column;
    const char *text;   /* names, strings (decoded), text data; NUL-terminated */
    size_t length;
    int64_t integer;
    double number;
} tpl_token;

typedef struct tpl_token_list {
    tpl_token *tokens;
    size_t count;
} tpl_token_list;

/* Tokenizes source into rt's arena; errors (unclosed tag or string, bad
 * character) go through tpl_fail with the line and column. */
tpl_token_list tpl_lex(tpl_runtime *rt, const char *source, size_t length);

#endif
