/* template/parser.c — recursive-descent parser for Jinja2 statements and
 * expressions, with Jinja2's operator precedence (jinja2/parser.py):
 * conditional < or < and < not < comparisons (in, not in, ==, <...) < + -
 * < ~ < * / // % < ** < unary - + < filters | and tests `is` < postfix
 * (. [] ()). Nesting depth is bounded so a hostile template cannot overflow
 * the stack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/ast.h"

typedef struct parser {
    tpl_runtime *rt;
    const tpl_token *tokens;
    size_t count, pos;
    int depth;
    int loop_depth;  /* for-loop bodies around here (break/continue need one) */
} parser;

static const tpl_token *peek(parser *p) { return &p->tokens[p->pos]; }
static const tpl_token *peek_at(parser *p, size_t ahead) {
    size_t i = p->pos + ahead;
    return &p->tokens[i < p->count ? i : p->count - 1];
}
static const tpl_token *next(parser *p) {
    const tpl_token *t = &p->tokens[p->pos];
    if (p->pos + 1 < p->count) p->pos++;
    return t;
}

_Noreturn static void parse_fail(parser *p, const tpl_token *at, const char *format, const char *arg) {
    p->rt->line = at->line;
    p->rt->column = at->column;
    tpl_fail(p->rt, MLXE_ERR_TEMPLATE, format, arg ? arg : "");
}

static const char *describe(const tpl_token *t) {
    switch (t->kind) {
    case TK_EOF: return "end of template";
    case TK_TEXT: return "template text";
    case TK_VAR_BEGIN: return "'{{'";
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_BEGIN: return "'{%'";
    case TK_BLOCK_END: return "'%}'";
    case TK_NAME: return t->text;
    case TK_STRING: return "a string";
    case TK_INT:
    case TK_FLOAT: return "a number";
    case TK_OP: return "an operator";
    }
    return "token";
}

static bool is_op(parser *p, tpl_op op) { return peek(p)->kind == TK_OP && peek(p)->op == op; }
static bool is_name(parser *p, const char *name) {
    return peek(p)->kind == TK_NAME && strcmp(peek(p)->text, name) == 0;
}
static bool accept_op(parser *p, tpl_op op) {
    if (!is_op(p, op)) return false;
    next(p);
    return true;
}
static bool accept_name(parser *p, const char *name) {
    if (!is_name(p, name)) return false;
    next(p);
    return true;
}
static void expect_op(parser *p, tpl_op op, const char *what) {
    if (!accept_op(p, op)) parse_fail(p, peek(p), "expected %s", what);
}
static const char *expect_name(parser *p) {
    if (peek(p)->kind != TK_NAME) parse_fail(p, peek(p), "expected a name, got %s", describe(peek(p)));
    return next(p)->text;
}
static void expect_block_end(parser *p) {
    if (peek(p)->kind != TK_BLOCK_END)
        parse_fail(p, peek(p), "expected the end of the statement '%%}', got %s", describe(peek(p)));
    next(p);
}

static tpl_node *node_at(parser *p, tpl_node_kind kind, const tpl_token *at) {
    tpl_node *n = tpl_alloc(p->rt, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->column = at->column;
    return n;
}

/* Growable node arrays while parsing. */
typedef struct node_vec {
    tpl_node **items;
    size_t count, capacity;
} node_vec;

static void vec_push(parser *p, node_vec *v, tpl_node *n) {
    if (v->count == v->capacity) {
        size_t capacity = v->capacity ? v->capacity * 2 : 4;
        tpl_node **items = tpl_alloc(p->rt, capacity * sizeof *items);
        if (v->count) memcpy(items, v->items, v->count * sizeof *items);
        v->items = items;
        v->capacity = capacity;
    }
    v->items[v->count++] = n;
}

typedef struct name_vec {
    const char **items;
    size_t count, capacity;
} name_vec;

static void names_push(parser *p, name_vec *v, const char *name) {
    if (v->count == v->capacity) {
        size_t capacity = v->capacity ? v->capacity * 2 : 4;
        const char **items = tpl_alloc(p->rt, capacity * sizeof *items);
        if (v->count) memcpy(items, v->items, v->count * sizeof *items);
        v->items = items;
        v->capacity = capacity;
    }
    v->items[v->count++] = name;
}

static void enter(parser *p) {
    if (++p->depth > p->rt->limits.max_nesting) {
        p->rt->line = peek(p)->line;
        p->rt->column = peek(p)->column;
        tpl_fail(p->rt, MLXE_ERR_LIMIT, "the template nests deeper than %d levels (max_nesting)",
                 p->rt->limits.max_nesting);
    }
}
static void leave(parser *p) { p->depth--; }

/* ---- expressions ---- */

static tpl_node *parse_expression(parser *p, bool with_condexpr);
static tpl_node *parse_or(parser *p);
static tpl_node *parse_unary(parser *p, bool with_filter);
static tpl_node *parse_primary(parser *p);
static tpl_node *parse_postfix(parser *p, tpl_node *node);

/* A comma-separated list; a comma makes it a tuple. explicit: inside (). */
static tpl_node *parse_tuple(parser *p, bool simplified, bool with_condexpr, bool explicit_parens,
                             const char *extra_end_name) {
    const tpl_token *start = peek(p);
    node_vec items = {0};
    bool is_tuple = false;
    for (;;) {
        if (items.count) expect_op(p, OP_COMMA, "','");
        /* Tuple ends: ) ]  %}  }}  or an extra end word (`recursive`, `if`). */
        const tpl_token *t = peek(p);
        if (items.count &&
            (t->kind == TK_BLOCK_END || t->kind == TK_VAR_END || t->kind == TK_EOF ||
             (t->kind == TK_OP && (t->op == OP_RPAREN || t->op == OP_RBRACKET || t->op == OP_ASSIGN)) ||
             (extra_end_name && t->kind == TK_NAME && strcmp(t->text, extra_end_name) == 0) ||
             (t->kind == TK_NAME && strcmp(t->text, "in") == 0)))
            break;
        tpl_node *item;
        if (simplified) item = parse_primary(p);
        else item = parse_expression(p, with_condexpr);
        vec_push(p, &items, item);
        if (is_op(p, OP_COMMA)) is_tuple = true;
        else break;
    }
    if (!is_tuple) {
        if (items.count == 1) return items.items[0];
        if (!explicit_parens) parse_fail(p, peek(p), "expected an expression, got %s", describe(peek(p)));
    }
    tpl_node *n = node_at(p, N_TUPLE, start);
    n->items = items.items;
    n->n_items = items.count;
    return n;
}

static void parse_call_args(parser *p, tpl_node *call) {
    /* after '(' */
    node_vec args = {0}, kwargs = {0};
    name_vec names = {0};
    while (!is_op(p, OP_RPAREN)) {
        if (args.count || kwargs.count) {
            expect_op(p, OP_COMMA, "',' between arguments");
            if (is_op(p, OP_RPAREN)) break;
        }
        if (is_op(p, OP_MUL) || is_op(p, OP_POW))
            parse_fail(p, peek(p), "*args and **kwargs in calls are not supported%s", "");
        if (peek(p)->kind == TK_NAME && peek_at(p, 1)->kind == TK_OP && peek_at(p, 1)->op == OP_ASSIGN) {
            names_push(p, &names, next(p)->text);
            next(p);
            vec_push(p, &kwargs, parse_expression(p, true));
        } else {
            if (kwargs.count) parse_fail(p, peek(p), "positional argument after keyword argument%s", "");
            vec_push(p, &args, parse_expression(p, true));
        }
    }
    expect_op(p, OP_RPAREN, "')'");
    call->items = args.items;
    call->n_items = args.count;
    call->names = names.items;
    call->n_names = names.count;
    call->items2 = kwargs.items;
}

static tpl_node *parse_subscript(parser *p, tpl_node *object, const tpl_token *at) {
    /* after '[': an index or a slice [start:stop:step] */
    tpl_node *parts[3] = {NULL, NULL, NULL};
    bool is_slice = false;
    if (!is_op(p, OP_COLON)) parts[0] = parse_expression(p, true);
    if (accept_op(p, OP_COLON)) {
        is_slice = true;
        if (!is_op(p, OP_RBRACKET) && !is_op(p, OP_COLON)) parts[1] = parse_expression(p, true);
        if (accept_op(p, OP_COLON) && !is_op(p, OP_RBRACKET)) parts[2] = parse_expression(p, true);
    }
    if (!is_slice && is_op(p, OP_COMMA)) parse_fail(p, peek(p), "tuple subscripts are not supported%s", "");
    expect_op(p, OP_RBRACKET, "']'");
    tpl_node *n = node_at(p, is_slice ? N_SLICE : N_ITEM, at);
    n->a = object;
    n->b = parts[0];
    if (is_slice) {
        n->c = parts[1];
        n->d = parts[2];
    }
    return n;
}

static tpl_node *parse_postfix(parser *p, tpl_node *node) {
    for (;;) {
        const tpl_token *t = peek(p);
        if (accept_op(p, OP_DOT)) {
            const tpl_token *attr = next(p);
            if (attr->kind == TK_NAME) {
                tpl_node *n = node_at(p, N_ATTR, t);
                n->a = node;
                n->name = attr->text;
                node = n;
            } else if (attr->kind == TK_INT) {
                tpl_node *n = node_at(p, N_ITEM, t);
                n->a = node;
                n->b = node_at(p, N_CONST, attr);
                n->b->constant = tpl_int(attr->integer);
                node = n;
            } else {
                parse_fail(p, attr, "expected an attribute name after '.', got %s", describe(attr));
            }
        } else if (accept_op(p, OP_LBRACKET)) {
            node = parse_subscript(p, node, t);
        } else if (accept_op(p, OP_LPAREN)) {
            tpl_node *n = node_at(p, N_CALL, t);
            n->a = node;
            parse_call_args(p, n);
            node = n;
        } else {
            return node;
        }
    }
}

static tpl_node *parse_filter(parser *p, tpl_node *input) {
    /* after '|', or at the first name of a filter block's chain */
    const tpl_token *at = peek(p);
    tpl_node *n = node_at(p, N_FILTER, at);
    n->a = input;
    const char *name = expect_name(p);
    while (is_op(p, OP_DOT) && peek_at(p, 1)->kind == TK_NAME) {
        next(p);
        const char *part = next(p)->text;
        size_t length = strlen(name) + strlen(part) + 2;
        char *joined = tpl_alloc(p->rt, length);
        snprintf(joined, length, "%s.%s", name, part);
        name = joined;
    }
    n->name = name;
    if (accept_op(p, OP_LPAREN)) parse_call_args(p, n);
    return n;
}

static tpl_node *parse_filter_expr(parser *p, tpl_node *node) {
    for (;;) {
        const tpl_token *t = peek(p);
        if (accept_op(p, OP_PIPE)) {
            node = parse_filter(p, node);
        } else if (t->kind == TK_NAME && strcmp(t->text, "is") == 0) {
            next(p);
            tpl_node *n = node_at(p, N_TEST, t);
            n->a = node;
            if (accept_name(p, "not")) n->flag = true;
            n->name = expect_name(p);
            while (is_op(p, OP_DOT) && peek_at(p, 1)->kind == TK_NAME) {
                next(p);
                n->name = next(p)->text; /* dotted test names: keep the last part */
            }
            const tpl_token *u = peek(p);
            if (accept_op(p, OP_LPAREN)) {
                parse_call_args(p, n);
            } else if ((u->kind == TK_NAME || u->kind == TK_STRING || u->kind == TK_INT || u->kind == TK_FLOAT ||
                        (u->kind == TK_OP && (u->op == OP_LPAREN || u->op == OP_LBRACKET || u->op == OP_LBRACE))) &&
                       !(u->kind == TK_NAME && (strcmp(u->text, "else") == 0 || strcmp(u->text, "or") == 0 ||
                                                strcmp(u->text, "and") == 0))) {
                if (u->kind == TK_NAME && strcmp(u->text, "is") == 0)
                    parse_fail(p, u, "you cannot chain multiple tests with is%s", "");
                tpl_node *arg = parse_postfix(p, parse_primary(p));
                n->items = tpl_alloc(p->rt, sizeof(tpl_node *));
                n->items[0] = arg;
                n->n_items = 1;
            }
            node = n;
        } else if (accept_op(p, OP_LPAREN)) {
            tpl_node *n = node_at(p, N_CALL, t);
            n->a = node;
            parse_call_args(p, n);
            node = n;
        } else {
            return node;
        }
    }
}

static tpl_node *parse_primary(parser *p) {
    enter(p);
    const tpl_token *t = next(p);
    tpl_node *n = NULL;
    switch (t->kind) {
    case TK_NAME:
        n = node_at(p, N_CONST, t);
        if (!strcmp(t->text, "true") || !strcmp(t->text, "True")) n->constant = tpl_bool(true);
        else if (!strcmp(t->text, "false") || !strcmp(t->text, "False")) n->constant = tpl_bool(false);
        else if (!strcmp(t->text, "none") || !strcmp(t->text, "None")) n->constant = tpl_none();
        else {
            n->kind = N_NAME;
            n->name = t->text;
        }
        break;
    case TK_STRING: {
        /* Adjacent string literals join, as in Python. */
        tpl_buffer joined = {0};
        tpl_buffer_append(p->rt, &joined, t->text, t->length);
        while (peek(p)->kind == TK_STRING) {
            const tpl_token *more = next(p);
            tpl_buffer_append(p->rt, &joined, more->text, more->length);
        }
        n = node_at(p, N_CONST, t);
        n->constant = tpl_buffer_to_value(p->rt, &joined);
        break;
    }
    case TK_INT:
        n = node_at(p, N_CONST, t);
        n->constant = tpl_int(t->integer);
        break;
    case TK_FLOAT:
        n = node_at(p, N_CONST, t);
        n->constant = tpl_float(t->number);
        break;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            n = parse_tuple(p, false, true, true, NULL);
            expect_op(p, OP_RPAREN, "')'");
            break;
        }
        if (t->op == OP_LBRACKET) {
            n = node_at(p, N_LIST, t);
            node_vec items = {0};
            while (!is_op(p, OP_RBRACKET)) {
                if (items.count) {
                    expect_op(p, OP_COMMA, "',' in a list");
                    if (is_op(p, OP_RBRACKET)) break;
                }
                vec_push(p, &items, parse_expression(p, true));
            }
            expect_op(p, OP_RBRACKET, "']'");
            n->items = items.items;
            n->n_items = items.count;
            break;
        }
        if (t->op == OP_LBRACE) {
            n = node_at(p, N_DICT, t);
            node_vec keys = {0}, values = {0};
            while (!is_op(p, OP_RBRACE)) {
                if (keys.count) {
                    expect_op(p, OP_COMMA, "',' in a dict");
                    if (is_op(p, OP_RBRACE)) break;
                }
                vec_push(p, &keys, parse_expression(p, true));
                expect_op(p, OP_COLON, "':' in a dict");
                vec_push(p, &values, parse_expression(p, true));
            }
            expect_op(p, OP_RBRACE, "'}'");
            n->items = keys.items;
            n->items2 = values.items;
            n->n_items = keys.count;
            break;
        }
        /* fall through */
    default: parse_fail(p, t, "unexpected %s in an expression", describe(t));
    }
    leave(p);
    return n;
}

static tpl_node *parse_unary(parser *p, bool with_filter) {
    enter(p);
    const tpl_token *t = peek(p);
    tpl_node *node;
    if (is_op(p, OP_SUB) || is_op(p, OP_ADD)) {
        next(p);
        node = node_at(p, N_UNARY, t);
        node->op = t->op;
        node->a = parse_unary(p, false);
    } else {
        node = parse_primary(p);
    }
    node = parse_postfix(p, node);
    if (with_filter) node = parse_filter_expr(p, node);
    leave(p);
    return node;
}

static tpl_node *binary(parser *p, const tpl_token *at, tpl_op op, tpl_node *a, tpl_node *b) {
    tpl_node *n = node_at(p, N_BINARY, at);
    n->op = op;
    n->a = a;
    n->b = b;
    return n;
}

static tpl_node *parse_pow(parser *p) {
    tpl_node *left = parse_unary(p, true);
    while (is_op(p, OP_POW)) {
        const tpl_token *t = next(p);
        left = binary(p, t, OP_POW, left, parse_unary(p, true));
    }
    return left;
}

static tpl_node *parse_math2(parser *p) {
    tpl_node *left = parse_pow(p);
    while (is_op(p, OP_MUL) || is_op(p, OP_DIV) || is_op(p, OP_FLOORDIV) || is_op(p, OP_MOD)) {
        const tpl_token *t = next(p);
        left = binary(p, t, t->op, left, parse_pow(p));
    }
    return left;
}

static tpl_node *parse_concat(parser *p) {
    const tpl_token *at = peek(p);
    tpl_node *first = parse_math2(p);
    if (!is_op(p, OP_TILDE)) return first;
    node_vec parts = {0};
    vec_push(p, &parts, first);
    while (accept_op(p, OP_TILDE)) vec_push(p, &parts, parse_math2(p));
    tpl_node *n = node_at(p, N_CONCAT, at);
    n->items = parts.items;
    n->n_items = parts.count;
    return n;
}

static tpl_node *parse_math1(parser *p) {
    tpl_node *left = parse_concat(p);
    while (is_op(p, OP_ADD) || is_op(p, OP_SUB)) {
        const tpl_token *t = next(p);
        left = binary(p, t, t->op, left, parse_concat(p));
    }
    return left;
}

static tpl_node *parse_compare(parser *p) {
    const tpl_token *at = peek(p);
    tpl_node *first = parse_math1(p);
    node_vec operands = {0};
    size_t n_ops = 0;
    int *op_list = NULL;
    size_t op_capacity = 0;
    for (;;) {
        const tpl_token *t = peek(p);
        int op;
        if (t->kind == TK_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LE ||
                                 t->op == OP_GT || t->op == OP_GE)) {
            next(p);
            op = (int)t->op;
        } else if (accept_name(p, "in")) {
            op = TPL_CMP_IN;
        } else if (is_name(p, "not") && peek_at(p, 1)->kind == TK_NAME && strcmp(peek_at(p, 1)->text, "in") == 0) {
            next(p);
            next(p);
            op = TPL_CMP_NOT_IN;
        } else {
            break;
        }
        if (n_ops == op_capacity) {
            size_t capacity = op_capacity ? op_capacity * 2 : 4;
            int *grown = tpl_alloc(p->rt, capacity * sizeof(int));
            if (n_ops) memcpy(grown, op_list, n_ops * sizeof(int));
            op_list = grown;
            op_capacity = capacity;
        }
        op_list[n_ops++] = op;
        vec_push(p, &operands, parse_math1(p));
    }
    if (!n_ops) return first;
    tpl_node *n = node_at(p, N_COMPARE, at);
    n->a = first;
    n->items = operands.items;
    n->n_items = operands.count;
    n->ops = op_list;
    return n;
}

static tpl_node *parse_not(parser *p) {
    const tpl_token *t = peek(p);
    if (accept_name(p, "not")) {
        enter(p);
        tpl_node *n = node_at(p, N_NOT, t);
        n->a = parse_not(p);
        leave(p);
        return n;
    }
    return parse_compare(p);
}

static tpl_node *parse_and(parser *p) {
    tpl_node *left = parse_not(p);
    while (is_name(p, "and")) {
        const tpl_token *t = next(p);
        tpl_node *n = node_at(p, N_AND, t);
        n->a = left;
        n->b = parse_not(p);
        left = n;
    }
    return left;
}

static tpl_node *parse_or(parser *p) {
    tpl_node *left = parse_and(p);
    while (is_name(p, "or")) {
        const tpl_token *t = next(p);
        tpl_node *n = node_at(p, N_OR, t);
        n->a = left;
        n->b = parse_and(p);
        left = n;
    }
    return left;
}

static tpl_node *parse_expression(parser *p, bool with_condexpr) {
    enter(p);
    tpl_node *expr = parse_or(p);
    if (with_condexpr) {
        while (is_name(p, "if")) {
            const tpl_token *t = next(p);
            tpl_node *n = node_at(p, N_COND, t);
            n->b = expr;
            n->a = parse_or(p);
            if (accept_name(p, "else")) n->c = parse_expression(p, true);
            expr = n;
        }
    }
    leave(p);
    return expr;
}

/* ---- statements ---- */

static tpl_node *parse_body(parser *p, const char *const *end_names, const char **found_end);

static tpl_node *parse_assign_target(parser *p, bool with_namespace, bool with_tuple,
                                     const char *extra_end_name) {
    const tpl_token *t = peek(p);
    if (with_namespace && t->kind == TK_NAME && peek_at(p, 1)->kind == TK_OP && peek_at(p, 1)->op == OP_DOT) {
        next(p);
        next(p);
        tpl_node *n = node_at(p, N_ATTR, t);
        n->a = node_at(p, N_NAME, t);
        n->a->name = t->text;
        n->name = expect_name(p);
        return n;
    }
    tpl_node *target;
    if (with_tuple) target = parse_tuple(p, true, false, false, extra_end_name);
    else {
        target = node_at(p, N_NAME, t);
        target->name = expect_name(p);
    }
    if (target->kind == N_TUPLE) {
        for (size_t i = 0; i < target->n_items; i++)
            if (target->items[i]->kind != N_NAME) parse_fail(p, t, "can't assign to this target%s", "");
    } else if (target->kind != N_NAME) {
        parse_fail(p, t, "can't assign to this target%s", "");
    }
    return target;
}

static void parse_signature(parser *p, tpl_node *n) {
    /* after '(' of a macro or caller definition */
    name_vec names = {0};
    node_vec defaults = {0};
    while (!is_op(p, OP_RPAREN)) {
        if (names.count) expect_op(p, OP_COMMA, "',' between parameters");
        names_push(p, &names, expect_name(p));
        tpl_node *d = NULL;
        if (accept_op(p, OP_ASSIGN)) d = parse_expression(p, true);
        else if (defaults.count && defaults.items[defaults.count - 1])
            parse_fail(p, peek(p), "parameter without a default follows a parameter with one%s", "");
        vec_push(p, &defaults, d);
    }
    expect_op(p, OP_RPAREN, "')'");
    n->names = names.items;
    n->n_names = names.count;
    n->items2 = defaults.items;
}

static const char *const END_FOR[] = {"endfor", "else", NULL};
static const char *const END_FOR_ONLY[] = {"endfor", NULL};
static const char *const END_IF[] = {"elif", "else", "endif", NULL};
static const char *const END_IF_ONLY[] = {"endif", NULL};
static const char *const END_SET[] = {"endset", NULL};
static const char *const END_MACRO[] = {"endmacro", NULL};
static const char *const END_CALL[] = {"endcall", NULL};
static const char *const END_FILTER[] = {"endfilter", NULL};
static const char *const END_WITH[] = {"endwith", NULL};
static const char *const END_GENERATION[] = {"endgeneration", NULL};

static tpl_node *parse_if_rest(parser *p, const tpl_token *at) {
    tpl_node *n = node_at(p, N_IF, at);
    n->a = parse_expression(p, true);
    expect_block_end(p);
    const char *end;
    n->b = parse_body(p, END_IF, &end);
    const tpl_token *t = peek(p);
    if (!strcmp(end, "elif")) {
        next(p);
        n->c = parse_if_rest(p, t);
        return n;
    }
    next(p);
    if (!strcmp(end, "else")) {
        expect_block_end(p);
        n->c = parse_body(p, END_IF_ONLY, &end);
        next(p);
    }
    expect_block_end(p);
    return n;
}

static tpl_node *parse_statement(parser *p) {
    next(p); /* {% */
    const tpl_token *t = peek(p);
    if (t->kind != TK_NAME) parse_fail(p, t, "expected a statement name after '{%%', got %s", describe(t));
    const char *word = next(p)->text;
    const char *end;
    if (!strcmp(word, "if")) return parse_if_rest(p, t);
    if (!strcmp(word, "for")) {
        tpl_node *n = node_at(p, N_FOR, t);
        n->a = parse_assign_target(p, false, true, "in");
        if (!accept_name(p, "in")) parse_fail(p, peek(p), "expected 'in' in a for loop, got %s", describe(peek(p)));
        n->b = parse_tuple(p, false, false, false, "recursive");
        if (accept_name(p, "if")) n->e = parse_expression(p, true);
        if (accept_name(p, "recursive")) n->flag = true;
        expect_block_end(p);
        p->loop_depth++;
        n->c = parse_body(p, END_FOR, &end);
        p->loop_depth--;
        next(p);
        if (!strcmp(end, "else")) { /* runs after the loop: break/continue there belong to an outer loop */
            expect_block_end(p);
            n->d = parse_body(p, END_FOR_ONLY, &end);
            next(p);
        }
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "set")) {
        tpl_node *target = parse_assign_target(p, true, true, NULL);
        if (accept_op(p, OP_ASSIGN)) {
            tpl_node *n = node_at(p, N_SET, t);
            n->a = target;
            n->b = parse_tuple(p, false, true, false, NULL);
            expect_block_end(p);
            return n;
        }
        tpl_node *n = node_at(p, N_SET_BLOCK, t);
        n->a = target;
        tpl_node *chain = NULL;
        while (accept_op(p, OP_PIPE)) chain = parse_filter(p, chain);
        n->c = chain;
        expect_block_end(p);
        n->b = parse_body(p, END_SET, &end);
        next(p);
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "macro")) {
        tpl_node *n = node_at(p, N_MACRO, t);
        n->name = expect_name(p);
        expect_op(p, OP_LPAREN, "'(' after the macro name");
        parse_signature(p, n);
        expect_block_end(p);
        int saved_loops = p->loop_depth;
        p->loop_depth = 0; /* a macro body is its own function in Jinja2 */
        n->b = parse_body(p, END_MACRO, &end);
        p->loop_depth = saved_loops;
        next(p);
        if (peek(p)->kind == TK_NAME) next(p); /* {% endmacro name %} */
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "call")) {
        tpl_node *n = node_at(p, N_CALL_BLOCK, t);
        if (accept_op(p, OP_LPAREN)) parse_signature(p, n);
        n->a = parse_expression(p, true);
        if (n->a->kind != N_CALL) parse_fail(p, t, "expected a call after {%% call %%}%s", "");
        expect_block_end(p);
        int saved_loops = p->loop_depth;
        p->loop_depth = 0;
        n->b = parse_body(p, END_CALL, &end);
        p->loop_depth = saved_loops;
        next(p);
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "filter")) {
        tpl_node *n = node_at(p, N_FILTER_BLOCK, t);
        tpl_node *chain = parse_filter(p, NULL);
        while (accept_op(p, OP_PIPE)) chain = parse_filter(p, chain);
        n->a = chain;
        expect_block_end(p);
        n->b = parse_body(p, END_FILTER, &end);
        next(p);
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "with")) {
        tpl_node *n = node_at(p, N_WITH, t);
        name_vec names = {0};
        node_vec values = {0};
        while (peek(p)->kind != TK_BLOCK_END) {
            if (names.count) expect_op(p, OP_COMMA, "','");
            names_push(p, &names, expect_name(p));
            expect_op(p, OP_ASSIGN, "'='");
            vec_push(p, &values, parse_expression(p, true));
        }
        n->names = names.items;
        n->n_names = names.count;
        n->items = values.items;
        n->n_items = values.count;
        expect_block_end(p);
        n->b = parse_body(p, END_WITH, &end);
        next(p);
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "generation")) {
        /* transformers' AssistantTracker extension: marks assistant text; renders its body. */
        expect_block_end(p);
        tpl_node *body = parse_body(p, END_GENERATION, &end);
        next(p);
        expect_block_end(p);
        return body;
    }
    if (!strcmp(word, "break") || !strcmp(word, "continue")) {
        tpl_node *n = node_at(p, !strcmp(word, "break") ? N_BREAK : N_CONTINUE, t);
        /* Jinja2 compiles to Python, which refuses a break outside a loop. */
        if (p->loop_depth == 0) parse_fail(p, t, "'%s' not properly in loop", word);
        expect_block_end(p);
        return n;
    }
    if (!strcmp(word, "include") || !strcmp(word, "extends") || !strcmp(word, "import") ||
        !strcmp(word, "from") || !strcmp(word, "block"))
        parse_fail(p, t, "'%s' is not supported in chat templates (there are no other templates to load)", word);
    parse_fail(p, t, "unknown statement '%s' (or an end tag without its start)", word);
}

/* Statements until a `{% name %}` with name in end_names (NULL: until the end
 * of the template). Leaves the position at that name. */
static tpl_node *parse_body(parser *p, const char *const *end_names, const char **found_end) {
    enter(p);
    const tpl_token *start = peek(p);
    tpl_node *body = node_at(p, N_BODY, start);
    node_vec items = {0};
    for (;;) {
        const tpl_token *t = peek(p);
        if (t->kind == TK_EOF) {
            if (end_names) {
                char expected[128] = "";
                for (const char *const *e = end_names; *e; e++) {
                    if (*expected) strncat(expected, "' or '", sizeof expected - strlen(expected) - 1);
                    strncat(expected, *e, sizeof expected - strlen(expected) - 1);
                }
                parse_fail(p, t, "unexpected end of template, expected '%s'", expected);
            }
            break;
        }
        if (t->kind == TK_TEXT) {
            next(p);
            tpl_node *n = node_at(p, N_TEXT, t);
            n->constant = tpl_str(p->rt, t->text, t->length);
            vec_push(p, &items, n);
        } else if (t->kind == TK_VAR_BEGIN) {
            next(p);
            tpl_node *n = node_at(p, N_OUTPUT, t);
            n->a = parse_tuple(p, false, true, false, NULL);
            if (peek(p)->kind != TK_VAR_END)
                parse_fail(p, peek(p), "expected the end of the print statement '}}', got %s", describe(peek(p)));
            next(p);
            vec_push(p, &items, n);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            const tpl_token *word = peek_at(p, 1);
            if (end_names && word->kind == TK_NAME) {
                bool is_end = false;
                for (const char *const *e = end_names; *e; e++)
                    if (!strcmp(word->text, *e)) { is_end = true; *found_end = *e; break; }
                if (is_end) {
                    next(p); /* {% ; position at the name */
                    break;
                }
            }
            vec_push(p, &items, parse_statement(p));
        } else {
            parse_fail(p, t, "unexpected %s", describe(t));
        }
    }
    body->items = items.items;
    body->n_items = items.count;
    leave(p);
    return body;
}

tpl_node *tpl_parse(tpl_runtime *rt, const tpl_token_list *tokens) {
    parser p = {.rt = rt, .tokens = tokens->tokens, .count = tokens->count};
    return parse_body(&p, NULL, NULL);
}
