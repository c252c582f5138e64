/* template/interp.h — the tree-walking interpreter and the builtins it calls.
 *
 * interp.c runs statements and expressions (scopes, loops, macros, calls,
 * operators); builtins.c has Jinja2's filters and tests, the Python methods
 * of str/dict/list that the sandbox allows, and the global functions
 * (range, namespace, dict, raise_exception, strftime_now); json_value.c reads
 * the JSON context and writes tojson. */
#ifndef MLXE_TEMPLATE_INTERP_H
#define MLXE_TEMPLATE_INTERP_H

#include "template/ast.h"
#include "template/value.h"

typedef struct tpl_scope tpl_scope;
struct tpl_scope {
    tpl_dict *vars;
    tpl_scope *parent;
};

typedef struct tpl_interp {
    tpl_runtime *rt;
    tpl_scope *globals;     /* the render context */
    tpl_scope *scope;       /* the scope expressions are evaluated in now */
    tpl_value block_input;  /* the body text a filter block or set block filters */
} tpl_interp;

/* Arguments of a call: positional, then keyword. */
typedef struct tpl_args {
    tpl_value *positional;
    size_t n_positional;
    const char **names;
    tpl_value *named;
    size_t n_named;
} tpl_args;

typedef enum tpl_function_id {
    FN_RANGE = 1,
    FN_NAMESPACE,
    FN_DICT,
    FN_RAISE_EXCEPTION,
    FN_STRFTIME_NOW,
    FN_JOINER_CALL,
    FN_JOINER
} tpl_function_id;

typedef struct tpl_function {
    tpl_function_id id;
    const char *name;
    tpl_value state;      /* joiner: its separator and whether it was called */
    bool used;
} tpl_function;

typedef struct tpl_method {
    tpl_value self;
    const char *name;
} tpl_method;

typedef struct tpl_macro {
    const tpl_node *definition;   /* N_MACRO or N_CALL_BLOCK */
    tpl_scope *closure;
    const char *name;
    tpl_value caller;             /* for macros called from a call block; else undefined */
} tpl_macro;

typedef struct tpl_loop {
    tpl_list *items;
    int64_t index0;
    int depth;
    tpl_value last_changed;
    bool changed_called;
} tpl_loop;

/* Renders the template body with the context dict; the text lands in out. */
void tpl_render_body(tpl_runtime *rt, const tpl_node *body, tpl_dict *context, tpl_buffer *out);

/* Calls any callable value (macro, builtin, bound method). */
tpl_value tpl_call_value(tpl_interp *in, tpl_value callee, const tpl_args *args);
/* Attribute access as Jinja's getattr (`x.name`) and item access (`x[key]`). */
tpl_value tpl_get_attr(tpl_interp *in, tpl_value object, const char *name);
tpl_value tpl_get_item(tpl_interp *in, tpl_value object, tpl_value key);

/* builtins.c */
bool tpl_filter_known(const char *name);
bool tpl_test_known(const char *name);
tpl_value tpl_apply_filter(tpl_interp *in, const char *name, tpl_value input, const tpl_args *args);
bool tpl_apply_test(tpl_interp *in, const char *name, tpl_value input, const tpl_args *args);
bool tpl_has_method(tpl_value self, const char *name);
tpl_value tpl_call_method(tpl_interp *in, const tpl_method *method, const tpl_args *args);
tpl_value tpl_call_function(tpl_interp *in, tpl_function *fn, const tpl_args *args);
/* The builtin global of that name, or undefined. */
tpl_value tpl_lookup_global(tpl_interp *in, const char *name);
/* Python's `%` string formatting (Jinja's `format` filter and `str % args`). */
tpl_value tpl_percent_format(tpl_interp *in, tpl_string *format, tpl_value args);
bool tpl_contains(tpl_interp *in, tpl_value container, tpl_value item);

/* json_value.c */
/* Parses JSON text into values, keeping ints and floats apart as Python's
 * json.loads does; nesting beyond max_nesting fails with MLXE_ERR_LIMIT. */
tpl_value tpl_json_parse(tpl_runtime *rt, const char *text, size_t length, const char *what);
/* json.dumps(value, ensure_ascii, indent, separators, sort_keys) as Python
 * writes it. indent: NULL for none; item/key separators: NULL for defaults. */
void tpl_json_dump(tpl_runtime *rt, tpl_buffer *out, tpl_value value, bool ensure_ascii,
                   const char *indent, const char *item_separator, const char *key_separator,
                   bool sort_keys);

#endif
