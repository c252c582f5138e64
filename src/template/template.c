/* template/template.c — the public mlxe_template API: compile (lex, parse,
 * check filter and test names as Jinja2 does at compile time) and render
 * (parse the JSON context, run the interpreter, hand back the text), each
 * inside its own arena with errors unwinding to here. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "template/ast.h"
#include "template/interp.h"
#include "template/lexer.h"
#include "template/template_internal.h"

struct mlxe_template {
    tpl_runtime compiled;   /* its arena holds the syntax tree */
    tpl_node *root;
    mlxe_template_limits limits;
    char name[128];
};

void mlxe_template_limits_init(mlxe_template_limits *limits) {
    if (!limits) return;
    limits->max_loop_iterations = 1000000;
    limits->max_recursion_depth = 100;
    limits->max_nesting = 200;
    limits->max_output_bytes = (size_t)64 << 20;
    limits->max_memory_bytes = (size_t)1 << 30;
}

static void runtime_init(tpl_runtime *rt, const mlxe_template_limits *limits, const char *name, jmp_buf *jump) {
    memset(rt, 0, sizeof *rt);
    rt->limits.max_iterations = limits->max_loop_iterations;
    rt->limits.max_depth = limits->max_recursion_depth;
    rt->limits.max_nesting = limits->max_nesting;
    rt->limits.max_output = limits->max_output_bytes;
    rt->limits.max_memory = limits->max_memory_bytes;
    rt->template_name = name;
    rt->fail_jump = jump;
    tpl_arena_init(&rt->arena, limits->max_memory_bytes);
}

/* Jinja2 resolves filter and test names when compiling: an unknown one is an
 * error even in code that never runs, except in a "soft" frame (inside an if
 * or a conditional expression, not nested in a loop, macro or block), where
 * the error waits until the name is used (jinja2/compiler.py
 * _filter_test_common and Frame.soft). */
static void check_names(tpl_runtime *rt, const tpl_node *n, bool soft) {
    if (!n) return;
    if (!soft && n->kind == N_FILTER && !tpl_filter_known(n->name)) {
        rt->line = n->line;
        rt->column = n->column;
        tpl_fail(rt, MLXE_ERR_TEMPLATE, "No filter named '%s'.", n->name);
    }
    if (!soft && n->kind == N_TEST && !tpl_test_known(n->name)) {
        rt->line = n->line;
        rt->column = n->column;
        tpl_fail(rt, MLXE_ERR_TEMPLATE, "No test named '%s'.", n->name);
    }
    bool children_soft = soft || n->kind == N_IF || n->kind == N_COND;
    switch (n->kind) {
    case N_FOR:
        check_names(rt, n->b, soft);
        check_names(rt, n->a, false);
        check_names(rt, n->c, false);
        check_names(rt, n->d, false);
        check_names(rt, n->e, false);
        return;
    case N_MACRO:
    case N_SET_BLOCK:
    case N_FILTER_BLOCK:
        children_soft = false;
        break;
    case N_CALL_BLOCK:
        check_names(rt, n->a, soft);
        check_names(rt, n->b, false);
        if (n->items2)
            for (size_t i = 0; i < n->n_names; i++) check_names(rt, n->items2[i], false);
        return;
    case N_WITH:
        for (size_t i = 0; i < n->n_items; i++) check_names(rt, n->items[i], soft);
        check_names(rt, n->b, false);
        return;
    default: break;
    }
    check_names(rt, n->a, children_soft);
    check_names(rt, n->b, children_soft);
    check_names(rt, n->c, children_soft);
    check_names(rt, n->d, children_soft);
    check_names(rt, n->e, children_soft);
    for (size_t i = 0; i < n->n_items; i++) check_names(rt, n->items[i], children_soft);
    size_t n2 = n->kind == N_DICT ? n->n_items : n->n_names;
    if (n->items2)
        for (size_t i = 0; i < n2; i++) check_names(rt, n->items2[i], children_soft);
}

mlxe_status mlxe_template_compile(const char *source, size_t length, const char *name,
                                  const mlxe_template_limits *limits, mlxe_template **out,
                                  mlxe_error *err) {
    if (out) *out = NULL;
    if (!out || (!source && length))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_template_compile: source and out are required");
    mlxe_template *tpl = calloc(1, sizeof *tpl);
    if (!tpl) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory compiling a template");
    if (limits) tpl->limits = *limits;
    else mlxe_template_limits_init(&tpl->limits);
    snprintf(tpl->name, sizeof tpl->name, "%s", name ? name : "template");
    jmp_buf jump;
    tpl_runtime *rt = &tpl->compiled;
    runtime_init(rt, &tpl->limits, tpl->name, &jump);
    if (setjmp(jump)) {
        mlxe_status status = rt->status;
        mlxe_error_set(err, status, "%s", rt->message);
        tpl_arena_free(&rt->arena);
        free(tpl);
        return status;
    }
    tpl_token_list tokens = tpl_lex(rt, source ? source : "", length);
    tpl->root = tpl_parse(rt, &tokens);
    check_names(rt, tpl->root, false);
    rt->line = 0;
    rt->fail_jump = NULL;
    MLXE_DEBUG(MLXE_LOG_CAT_TEMPLATE, "%s: compiled %zu bytes into %zu tokens", tpl->name, length, tokens.count);
    *out = tpl;
    return MLXE_OK;
}

mlxe_status tpl_template_render(const mlxe_template *tpl, const char *context_json, size_t context_length,
                                tpl_context_hook hook, void *user, char **out_text, size_t *out_length,
                                mlxe_error *err) {
    if (out_text) *out_text = NULL;
    if (out_length) *out_length = 0;
    if (!tpl || !out_text || (!context_json && context_length))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "mlxe_template_render_json: template and out_text are required");
    jmp_buf jump;
    tpl_runtime rt;
    runtime_init(&rt, &tpl->limits, tpl->name, &jump);
    /* volatile: read after a longjmp */
    char *volatile result = NULL;
    if (setjmp(jump)) {
        mlxe_status status = rt.status;
        mlxe_error_set(err, status, "%s", rt.message);
        free(result);
        tpl_arena_free(&rt.arena);
        return status;
    }
    tpl_value context = tpl_dict_new(&rt, 0);
    if (context_json && context_length) {
        context = tpl_json_parse(&rt, context_json, context_length, "template context");
        if (context.type != TPL_DICT) {
            rt.line = 0;
            tpl_fail(&rt, MLXE_ERR_INVALID_ARGUMENT, "the template context must be a JSON object, not %s",
                     tpl_type_name(context));
        }
    }
    if (hook) hook(&rt, context.as.dict, user);
    tpl_buffer text = {0};
    tpl_render_body(&rt, tpl->root, context.as.dict, &text);
    result = malloc(text.length + 1);
    if (!result) {
        rt.line = 0;
        tpl_fail(&rt, MLXE_ERR_OUT_OF_MEMORY, "out of memory copying the rendered text");
    }
    if (text.length) memcpy(result, text.data, text.length);
    result[text.length] = '\0';
    *out_text = result;
    if (out_length) *out_length = text.length;
    MLXE_TRACE(MLXE_LOG_CAT_TEMPLATE, "%s: rendered %zu bytes (%zu bytes of working memory)", tpl->name,
               text.length, rt.arena.used);
    tpl_arena_free(&rt.arena);
    return MLXE_OK;
}

mlxe_status mlxe_template_render_json(const mlxe_template *tpl, const char *context_json, size_t context_length,
                                      char **out_text, size_t *out_length, mlxe_error *err) {
    return tpl_template_render(tpl, context_json, context_length, NULL, NULL, out_text, out_length, err);
}

void mlxe_template_free(mlxe_template *tpl) {
    if (!tpl) return;
    tpl_arena_free(&tpl->compiled.arena);
    free(tpl);
}

void mlxe_template_text_free(char *text) { free(text); }
