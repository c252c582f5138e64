/* template/ast.h — the syntax tree the parser builds and the interpreter walks.
 *
 * One node struct for every kind keeps the tree simple to allocate from the
 * arena; the comment at each kind says which fields it uses. Bodies of block
 * statements are N_BODY nodes holding the statements in `items`. */
#ifndef MLXE_TEMPLATE_AST_H
#define MLXE_TEMPLATE_AST_H

#include <stdbool.h>
#include <stddef.h>

#include "template/lexer.h"
#include "template/value.h"

typedef enum tpl_node_kind {
    /* statements */
    N_BODY,         /* items: statements */
    N_TEXT,         /* constant: the text */
    N_OUTPUT,       /* a: expression printed */
    N_IF,           /* a: test, b: body, c: else body or elif N_IF (may be NULL) */
    N_FOR,          /* a: target, b: iterable, c: body, d: else body, e: filter test; flag: recursive */
    N_SET,          /* a: target (name, tuple of names, or ns.attr), b: value */
    N_SET_BLOCK,    /* a: target, b: body, c: filter chain or NULL */
    N_MACRO,        /* name, names: parameters, items2: defaults (NULL entries), b: body */
    N_CALL_BLOCK,   /* a: the call, names/items2: caller's parameters and defaults, b: body */
    N_FILTER_BLOCK, /* a: filter chain (innermost input NULL), b: body */
    N_WITH,         /* names: targets, items: values, b: body */
    N_BREAK,
    N_CONTINUE,
    /* expressions */
    N_CONST,        /* constant */
    N_NAME,         /* name */
    N_LIST,         /* items */
    N_TUPLE,        /* items */
    N_DICT,         /* items: keys, items2: values */
    N_ATTR,         /* a.name */
    N_ITEM,         /* a[b] */
    N_SLICE,        /* a[b:c:d], each of b, c, d may be NULL */
    N_CALL,         /* a(items..., names=items2...) */
    N_FILTER,       /* a|name(items..., names=items2...); a NULL: the block's text */
    N_TEST,         /* a is [not] name(items...); flag: negated */
    N_UNARY,        /* op (OP_SUB, OP_ADD) a */
    N_NOT,          /* not a */
    N_BINARY,       /* a op b for + - * / // % ** */
    N_AND,          /* a and b */
    N_OR,           /* a or b */
    N_COMPARE,      /* a ops[i] items[i]... */
    N_CONCAT,       /* items joined with ~ */
    N_COND          /* b if a else c (c may be NULL) */
} tpl_node_kind;

/* Comparison codes in N_COMPARE's ops beyond the tpl_op ones. */
#define TPL_CMP_IN 100
#define TPL_CMP_NOT_IN 101

typedef struct tpl_node tpl_node;
struct tpl_node {
    tpl_node_kind kind;
    int line, column;
    tpl_op op;
    bool flag;
    const char *name;
    tpl_value constant;
    tpl_node *a, *b, *c, *d, *e;
    tpl_node **items;
    size_t n_items;
    tpl_node **items2;
    const char **names;
    size_t n_names;
    int *ops;
};

/* Parses tokens into a tree (N_BODY). Nesting deeper than
 * rt->limits.max_nesting fails with MLXE_ERR_LIMIT. */
tpl_node *tpl_parse(tpl_runtime *rt, const tpl_token_list *tokens);

#endif
