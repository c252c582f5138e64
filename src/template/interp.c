/* template/interp.c — runs a parsed template: statements, scopes, loops,
 * macros and expressions with Jinja2's semantics.
 *
 * Scoping follows Jinja2: a for loop's body gets a fresh scope each
 * iteration (a `set` inside a loop is gone after it, hence namespace()),
 * `if` blocks share the enclosing scope, macros see the scope they were
 * defined in at call time. Every loop iteration and macro call counts against
 * limits.max_iterations and macro nesting against limits.max_depth, so no
 * template can hang or overflow the stack. */
#include "template/interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum flow { FLOW_NORMAL = 0, FLOW_BREAK, FLOW_CONTINUE } flow;

static tpl_value eval(tpl_interp *in, const tpl_node *n);
static flow exec_body(tpl_interp *in, tpl_scope *scope, const tpl_node *body, tpl_buffer *out);

static void locate(tpl_interp *in, const tpl_node *n) {
    in->rt->line = n->line;
    in->rt->column = n->column;
}

static tpl_scope *scope_new(tpl_interp *in, tpl_scope *parent) {
    tpl_scope *s = tpl_alloc(in->rt, sizeof *s);
    s->vars = tpl_dict_new(in->rt, 0).as.dict;
    s->parent = parent;
    return s;
}

static void scope_set(tpl_interp *in, tpl_scope *s, const char *name, tpl_value v) {
    tpl_value *slot = tpl_dict_get_cstr(s->vars, name);
    if (slot) {
        *slot = v;
        return;
    }
    tpl_dict *vars = s->vars;
    /* A loop scope is emptied, not reallocated, between iterations: the key
     * left in the next slot by the previous iteration is usually this one. */
    if (vars->length < vars->filled) {
        tpl_value old = vars->keys[vars->length];
        if (old.type == TPL_STRING && strcmp(old.as.string->data, name) == 0) {
            vars->values[vars->length++] = v;
            return;
        }
    }
    tpl_dict_set(in->rt, vars, tpl_cstr(in->rt, name), v);
}

/* Empties a scope for reuse (see scope_set). */
static void scope_clear(tpl_scope *s) { s->vars->length = 0; }

static void count_iteration(tpl_interp *in) {
    if (++in->rt->iterations > in->rt->limits.max_iterations)
        tpl_fail(in->rt, MLXE_ERR_LIMIT,
                 "the template ran more than %lld loop iterations and macro calls (max_loop_iterations)",
                 (long long)in->rt->limits.max_iterations);
}

static tpl_value lookup(tpl_interp *in, tpl_scope *scope, const char *name) {
    for (tpl_scope *s = scope; s; s = s->parent) {
        tpl_value *v = tpl_dict_get_cstr(s->vars, name);
        if (v) return *v;
    }
    return tpl_lookup_global(in, name);
}

_Noreturn static void undefined_error(tpl_interp *in, tpl_value v) {
    if (v.as.undefined_name) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s", v.as.undefined_name);
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "a value is undefined");
}

/* "'x' is undefined" or "'dict object' has no attribute 'y'". */
static const char *undefined_hint(tpl_interp *in, const char *format, const char *a, const char *b) {
    size_t length = strlen(format) + strlen(a) + (b ? strlen(b) : 0) + 1;
    char *text = tpl_alloc(in->rt, length);
    snprintf(text, length, format, a, b ? b : "");
    return text;
}

static const char *object_name(tpl_value v) {
    switch (v.type) {
    case TPL_DICT: return "dict object";
    case TPL_LIST: return v.as.list->is_tuple ? "tuple object" : "list object";
    case TPL_STRING: return "str object";
    case TPL_INT: return "int object";
    case TPL_FLOAT: return "float object";
    case TPL_BOOL: return "bool object";
    case TPL_NONE: return "None";
    case TPL_NAMESPACE: return "Namespace object";
    default: return "object";
    }
}

/* ---- attribute and item access (jinja2 Environment.getattr / getitem) ---- */

static tpl_value loop_attr(tpl_interp *in, tpl_loop *loop, const char *name, bool *found) {
    int64_t length = (int64_t)loop->items->length;
    *found = true;
    if (!strcmp(name, "index")) return tpl_int(loop->index0 + 1);
    if (!strcmp(name, "index0")) return tpl_int(loop->index0);
    if (!strcmp(name, "revindex")) return tpl_int(length - loop->index0);
    if (!strcmp(name, "revindex0")) return tpl_int(length - loop->index0 - 1);
    if (!strcmp(name, "first")) return tpl_bool(loop->index0 == 0);
    if (!strcmp(name, "last")) return tpl_bool(loop->index0 == length - 1);
    if (!strcmp(name, "length")) return tpl_int(length);
    if (!strcmp(name, "depth")) return tpl_int(loop->depth);
    if (!strcmp(name, "depth0")) return tpl_int(loop->depth - 1);
    if (!strcmp(name, "previtem"))
        return loop->index0 > 0 ? loop->items->items[loop->index0 - 1] : tpl_undefined("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return loop->index0 + 1 < length ? loop->items->items[loop->index0 + 1] : tpl_undefined("there is no next item");
    *found = false;
    (void)in;
    return tpl_undefined(NULL);
}

tpl_value tpl_get_attr(tpl_interp *in, tpl_value object, const char *name) {
    if (object.type == TPL_UNDEFINED) undefined_error(in, object);
    if (object.type == TPL_LOOP) {
        bool found;
        tpl_value v = loop_attr(in, object.as.object, name, &found);
        if (found) return v;
    }
    if (object.type == TPL_NAMESPACE) {
        tpl_value *v = tpl_dict_get_cstr(object.as.dict, name);
        if (v) return *v;
        return tpl_undefined(undefined_hint(in, "'%s' has no attribute '%s'", "Namespace object", name));
    }
    if (tpl_has_method(object, name)) {
        tpl_method *m = tpl_alloc(in->rt, sizeof *m);
        m->self = object;
        m->name = name;
        tpl_value v = {TPL_METHOD, {.object = m}};
        return v;
    }
    if (object.type == TPL_DICT) {
        tpl_value *v = tpl_dict_get_cstr(object.as.dict, name);
        if (v) return *v;
    }
    return tpl_undefined(undefined_hint(in, "'%s' has no attribute '%s'", object_name(object), name));
}

static int64_t normalize_index(int64_t index, int64_t length, bool *ok) {
    if (index < 0) index += length;
    *ok = index >= 0 && index < length;
    return index;
}

tpl_value tpl_get_item(tpl_interp *in, tpl_value object, tpl_value key) {
    if (object.type == TPL_UNDEFINED) undefined_error(in, object);
    if (object.type == TPL_DICT) {
        tpl_value *v = tpl_dict_get(in->rt, object.as.dict, key);
        if (v) return *v;
    } else if (((object.type == TPL_LIST && !object.as.list->is_generator) || object.type == TPL_STRING) &&
               (key.type == TPL_INT || key.type == TPL_BOOL)) {
        int64_t index = key.type == TPL_BOOL ? key.as.boolean : key.as.integer;
        bool ok;
        if (object.type == TPL_LIST) {
            index = normalize_index(index, (int64_t)object.as.list->length, &ok);
            if (ok) return object.as.list->items[index];
        } else {
            tpl_string *s = object.as.string;
            index = normalize_index(index, tpl_string_chars(s), &ok);
            if (ok) {
                size_t start = tpl_string_offset(s, index);
                size_t end = start;
                tpl_utf8_next(s->data, s->length, &end);
                return tpl_str(in->rt, s->data + start, end - start);
            }
        }
    }
    if (key.type == TPL_STRING) {
        if (object.type != TPL_DICT || tpl_has_method(object, key.as.string->data) ||
            object.type == TPL_NAMESPACE || object.type == TPL_LOOP)
            return tpl_get_attr(in, object, key.as.string->data);
        return tpl_undefined(undefined_hint(in, "'%s' has no attribute '%s'", object_name(object), key.as.string->data));
    }
    tpl_buffer text = {0};
    tpl_write_repr(in->rt, &text, key, 0);
    return tpl_undefined(undefined_hint(in, "'%s' has no attribute '%s'", object_name(object), text.data ? text.data : ""));
}

/* Python slice semantics for lists, tuples and strings. */
static tpl_value slice(tpl_interp *in, tpl_value object, const tpl_node *n) {
    if (object.type == TPL_UNDEFINED) undefined_error(in, object);
    int64_t bounds[3];
    bool given[3];
    const tpl_node *parts[3] = {n->b, n->c, n->d};
    for (int i = 0; i < 3; i++) {
        given[i] = false;
        if (!parts[i]) continue;
        tpl_value v = eval(in, parts[i]);
        if (v.type == TPL_NONE) continue;
        if (v.type != TPL_INT && v.type != TPL_BOOL)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "slice indices must be integers or None");
        bounds[i] = v.type == TPL_BOOL ? v.as.boolean : v.as.integer;
        given[i] = true;
    }
    int64_t step = given[2] ? bounds[2] : 1;
    if (step == 0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "slice step cannot be zero");
    int64_t length;
    if (object.type == TPL_LIST && !object.as.list->is_generator) length = (int64_t)object.as.list->length;
    else if (object.type == TPL_STRING) length = tpl_string_chars(object.as.string);
    else tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "'%s' object is not subscriptable", tpl_type_name(object));
    int64_t start, stop;
    if (step > 0) {
        start = given[0] ? bounds[0] : 0;
        stop = given[1] ? bounds[1] : length;
        if (start < 0) { start += length; if (start < 0) start = 0; }
        if (start > length) start = length;
        if (stop < 0) { stop += length; if (stop < 0) stop = 0; }
        if (stop > length) stop = length;
    } else {
        start = given[0] ? bounds[0] : length - 1;
        stop = given[1] ? bounds[1] : -1 - length;
        if (start < 0) { start += length; if (start < 0) start = -1; }
        if (start >= length) start = length - 1;
        if (stop < 0) { stop += length; if (stop < 0) stop = -1; }
        if (stop >= length) stop = length - 1;
    }
    if (object.type == TPL_LIST) {
        tpl_value out = tpl_list_new(in->rt, 0, object.as.list->is_tuple);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            tpl_list_push(in->rt, out.as.list, object.as.list->items[i]);
        return out;
    }
    tpl_string *s = object.as.string;
    tpl_buffer b = {0};
    if (step == 1 && start < stop) {
        size_t a = tpl_string_offset(s, start), z = tpl_string_offset(s, stop);
        return tpl_str(in->rt, s->data + a, z - a);
    }
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        size_t a = tpl_string_offset(s, i), z = a;
        tpl_utf8_next(s->data, s->length, &z);
        tpl_buffer_append(in->rt, &b, s->data + a, z - a);
    }
    return tpl_buffer_to_value(in->rt, &b);
}

/* ---- operators ---- */

static int64_t as_int(tpl_value v) { return v.type == TPL_BOOL ? v.as.boolean : v.as.integer; }

static tpl_value checked_int(tpl_interp *in, bool overflow, int64_t value) {
    if (overflow)
        tpl_fail(in->rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
    return tpl_int(value);
}

static tpl_value repeat_sequence(tpl_interp *in, tpl_value seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.type == TPL_STRING) {
        tpl_string *s = seq.as.string;
        if (s->length && (uint64_t)times > in->rt->limits.max_output / s->length)
            tpl_fail(in->rt, MLXE_ERR_LIMIT, "string repetition beyond the output limit (max_output_bytes)");
        tpl_buffer b = {0};
        for (int64_t i = 0; i < times; i++) tpl_buffer_append(in->rt, &b, s->data, s->length);
        return tpl_buffer_to_value(in->rt, &b);
    }
    tpl_list *l = seq.as.list;
    if (l->length && (uint64_t)times > in->rt->limits.max_output / l->length)
        tpl_fail(in->rt, MLXE_ERR_LIMIT, "list repetition beyond the limit (max_output_bytes items)");
    tpl_value out = tpl_list_new(in->rt, l->length * (size_t)times, l->is_tuple);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < l->length; k++) out.as.list->items[out.as.list->length++] = l->items[k];
    return out;
}

static tpl_value binary_op(tpl_interp *in, tpl_op op, tpl_value a, tpl_value b) {
    /* str % Undefined: Python formats without touching it (it looks like a mapping). */
    if (op == OP_MOD && a.type == TPL_STRING && b.type == TPL_UNDEFINED) return tpl_percent_format(in, a.as.string, b);
    if (a.type == TPL_UNDEFINED) undefined_error(in, a);
    if (b.type == TPL_UNDEFINED) undefined_error(in, b);
    bool numbers = tpl_is_number(a) && tpl_is_number(b);
    bool ints = numbers && a.type != TPL_FLOAT && b.type != TPL_FLOAT;
    int64_t r;
    switch (op) {
    case OP_ADD:
        if (ints) {
            bool overflow = __builtin_add_overflow(as_int(a), as_int(b), &r);
            return checked_int(in, overflow, r);
        }
        if (numbers) return tpl_float(tpl_as_double(a) + tpl_as_double(b));
        if (a.type == TPL_STRING && b.type == TPL_STRING) {
            /* markupsafe: Markup + str escapes the str, and the sum is Markup. */
            bool markup = a.as.string->is_markup || b.as.string->is_markup;
            if (markup && !a.as.string->is_markup) a = tpl_apply_filter(in, "escape", a, &(tpl_args){0});
            if (markup && !b.as.string->is_markup) b = tpl_apply_filter(in, "escape", b, &(tpl_args){0});
            tpl_buffer buf = {0};
            tpl_buffer_append(in->rt, &buf, a.as.string->data, a.as.string->length);
            tpl_buffer_append(in->rt, &buf, b.as.string->data, b.as.string->length);
            tpl_value sum = tpl_buffer_to_value(in->rt, &buf);
            sum.as.string->is_markup = markup;
            return sum;
        }
        if (a.type == TPL_LIST && b.type == TPL_LIST && a.as.list->is_tuple == b.as.list->is_tuple &&
            !a.as.list->is_generator && !b.as.list->is_generator) {
            tpl_value out = tpl_list_new(in->rt, a.as.list->length + b.as.list->length, a.as.list->is_tuple);
            for (size_t i = 0; i < a.as.list->length; i++) out.as.list->items[out.as.list->length++] = a.as.list->items[i];
            for (size_t i = 0; i < b.as.list->length; i++) out.as.list->items[out.as.list->length++] = b.as.list->items[i];
            return out;
        }
        break;
    case OP_SUB:
        if (ints) {
            bool overflow = __builtin_sub_overflow(as_int(a), as_int(b), &r);
            return checked_int(in, overflow, r);
        }
        if (numbers) return tpl_float(tpl_as_double(a) - tpl_as_double(b));
        break;
    case OP_MUL:
        if (ints) {
            bool overflow = __builtin_mul_overflow(as_int(a), as_int(b), &r);
            return checked_int(in, overflow, r);
        }
        if (numbers) return tpl_float(tpl_as_double(a) * tpl_as_double(b));
        if ((a.type == TPL_STRING || a.type == TPL_LIST) && (b.type == TPL_INT || b.type == TPL_BOOL))
            return repeat_sequence(in, a, as_int(b));
        if ((b.type == TPL_STRING || b.type == TPL_LIST) && (a.type == TPL_INT || a.type == TPL_BOOL))
            return repeat_sequence(in, b, as_int(a));
        break;
    case OP_DIV:
        if (numbers) {
            if (tpl_as_double(b) == 0.0) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "division by zero");
            if (ints) return tpl_float((double)as_int(a) / (double)as_int(b));
            return tpl_float(tpl_as_double(a) / tpl_as_double(b));
        }
        break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (a.type == TPL_STRING && op == OP_MOD) return tpl_percent_format(in, a.as.string, b);
        if (numbers) {
            if (tpl_as_double(b) == 0.0)
                tpl_fail(in->rt, MLXE_ERR_TEMPLATE, op == OP_MOD ? "modulo by zero" : "division by zero");
            if (ints) {
                int64_t x = as_int(a), y = as_int(b);
                if (x == INT64_MIN && y == -1) tpl_fail(in->rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) { q--; m += y; }
                return tpl_int(op == OP_MOD ? m : q);
            }
            double x = tpl_as_double(a), y = tpl_as_double(b);
            double m = fmod(x, y);
            if (m != 0.0 && ((m < 0) != (y < 0))) m += y;
            if (op == OP_MOD) return tpl_float(m);
            return tpl_float(floor(x / y));
        }
        break;
    case OP_POW:
        if (ints && as_int(b) >= 0) {
            int64_t base = as_int(a), exponent = as_int(b), result = 1;
            while (exponent-- > 0)
                if (__builtin_mul_overflow(result, base, &result) || (exponent > 64 && (base == 0 || base == 1 || base == -1))) {
                    if (base == 0 || base == 1) return tpl_int(base);
                    if (base == -1) return tpl_int((as_int(b) % 2) ? -1 : 1);
                    tpl_fail(in->rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
                }
            return tpl_int(result);
        }
        if (numbers) return tpl_float(pow(tpl_as_double(a), tpl_as_double(b)));
        break;
    default: break;
    }
    if (op == OP_ADD && (a.type == TPL_STRING || a.type == TPL_LIST))
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "can only concatenate %s (not \"%s\") to %s", tpl_type_name(a),
                 b.type == TPL_NONE ? "NoneType" : tpl_type_name(b), tpl_type_name(a));
    static const char *const symbols[] = {[OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/",
                                          [OP_FLOORDIV] = "//", [OP_MOD] = "%", [OP_POW] = "**"};
    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unsupported operand type(s) for %s: '%s' and '%s'",
             symbols[op] ? symbols[op] : "?", tpl_type_name(a), tpl_type_name(b));
}

bool tpl_contains(tpl_interp *in, tpl_value container, tpl_value item) {
    switch (container.type) {
    case TPL_STRING:
        if (item.type == TPL_UNDEFINED) undefined_error(in, item);
        if (item.type != TPL_STRING)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "'in <string>' requires string as left operand, not %s",
                     tpl_type_name(item));
        return item.as.string->length == 0 ||
               memmem(container.as.string->data, container.as.string->length, item.as.string->data,
                      item.as.string->length) != NULL;
    case TPL_LIST:
        for (size_t i = 0; i < container.as.list->length; i++)
            if (tpl_equal(in->rt, container.as.list->items[i], item)) return true;
        return false;
    case TPL_DICT:
        if ((item.type == TPL_LIST && !item.as.list->is_tuple) || item.type == TPL_DICT)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unhashable type: '%s'", tpl_type_name(item));
        return tpl_dict_get(in->rt, container.as.dict, item) != NULL;
    case TPL_UNDEFINED: return false;
    default:
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "argument of type '%s' is not iterable", tpl_type_name(container));
    }
}

static bool compare(tpl_interp *in, int op, tpl_value a, tpl_value b) {
    switch (op) {
    case OP_EQ: return tpl_equal(in->rt, a, b);
    case OP_NE: return !tpl_equal(in->rt, a, b);
    case TPL_CMP_IN: return tpl_contains(in, b, a);
    case TPL_CMP_NOT_IN: return !tpl_contains(in, b, a);
    default: break;
    }
    if (a.type == TPL_UNDEFINED) undefined_error(in, a);
    if (b.type == TPL_UNDEFINED) undefined_error(in, b);
    int c = tpl_compare(in->rt, a, b);
    switch (op) {
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    case OP_GE: return c >= 0;
    default: return false;
    }
}

/* ---- calls ---- */

static tpl_args eval_args(tpl_interp *in, const tpl_node *n, tpl_value *first) {
    tpl_args args = {0};
    size_t extra = first ? 1 : 0;
    args.n_positional = n->n_items + extra;
    args.positional = tpl_alloc(in->rt, (args.n_positional + 1) * sizeof(tpl_value));
    if (first) args.positional[0] = *first;
    for (size_t i = 0; i < n->n_items; i++) args.positional[i + extra] = eval(in, n->items[i]);
    args.n_named = n->n_names;
    args.names = n->names;
    args.named = tpl_alloc(in->rt, (n->n_names + 1) * sizeof(tpl_value));
    for (size_t i = 0; i < n->n_names; i++) args.named[i] = eval(in, n->items2[i]);
    return args;
}

static tpl_value call_macro(tpl_interp *in, tpl_macro *macro, const tpl_args *args) {
    const tpl_node *def = macro->definition;
    count_iteration(in);
    if (++in->rt->depth > in->rt->limits.max_depth)
        tpl_fail(in->rt, MLXE_ERR_LIMIT, "macros nested deeper than %d calls (max_recursion_depth)",
                 in->rt->limits.max_depth);
    tpl_scope *saved = in->scope;
    tpl_scope *scope = scope_new(in, macro->closure);
    in->scope = scope;
    size_t n_params = def->n_names;
    tpl_value varargs = tpl_list_new(in->rt, 0, true);
    for (size_t i = 0; i < args->n_positional; i++) {
        if (i < n_params) scope_set(in, scope, def->names[i], args->positional[i]);
        else tpl_list_push(in->rt, varargs.as.list, args->positional[i]);
    }
    tpl_value kwargs = tpl_dict_new(in->rt, 0);
    for (size_t k = 0; k < args->n_named; k++) {
        bool is_param = false;
        for (size_t i = 0; i < n_params; i++)
            if (!strcmp(def->names[i], args->names[k])) {
                if (i < args->n_positional)
                    tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "macro '%s' got multiple values for argument '%s'",
                             macro->name, args->names[k]);
                scope_set(in, scope, def->names[i], args->named[k]);
                is_param = true;
            }
        if (!is_param) {
            if (!strcmp(args->names[k], "caller") && def->kind == N_MACRO) {
                scope_set(in, scope, "caller", args->named[k]);
                continue;
            }
            tpl_dict_set(in->rt, kwargs.as.dict, tpl_cstr(in->rt, args->names[k]), args->named[k]);
        }
    }
    for (size_t i = 0; i < n_params; i++) {
        if (tpl_dict_get_cstr(scope->vars, def->names[i])) continue;
        tpl_value v = def->items2 && def->items2[i] ? eval(in, def->items2[i])
                                                   : tpl_undefined(undefined_hint(in, "parameter '%s' was not provided", def->names[i], NULL));
        scope_set(in, scope, def->names[i], v);
    }
    scope_set(in, scope, "varargs", varargs);
    scope_set(in, scope, "kwargs", kwargs);
    if (macro->caller.type != TPL_UNDEFINED) scope_set(in, scope, "caller", macro->caller);
    tpl_buffer out = {0};
    exec_body(in, scope, def->b, &out);
    in->scope = saved;
    in->rt->depth--;
    return tpl_buffer_to_value(in->rt, &out);
}

tpl_value tpl_call_value(tpl_interp *in, tpl_value callee, const tpl_args *args) {
    switch (callee.type) {
    case TPL_MACRO: return call_macro(in, callee.as.object, args);
    case TPL_FUNCTION: return tpl_call_function(in, callee.as.object, args);
    case TPL_METHOD: return tpl_call_method(in, callee.as.object, args);
    case TPL_UNDEFINED: undefined_error(in, callee);
    default: tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "'%s' object is not callable", tpl_type_name(callee));
    }
}

/* ---- expressions ---- */

static tpl_value eval(tpl_interp *in, const tpl_node *n) {
    switch (n->kind) {
    case N_CONST: return n->constant;
    case N_NAME: {
        tpl_value v = lookup(in, in->scope, n->name);
        if (v.type == TPL_UNDEFINED && !v.as.undefined_name)
            v.as.undefined_name = undefined_hint(in, "'%s' is undefined", n->name, NULL);
        return v;
    }
    case N_LIST:
    case N_TUPLE: {
        tpl_value out = tpl_list_new(in->rt, n->n_items, n->kind == N_TUPLE);
        for (size_t i = 0; i < n->n_items; i++) out.as.list->items[out.as.list->length++] = eval(in, n->items[i]);
        return out;
    }
    case N_DICT: {
        tpl_value out = tpl_dict_new(in->rt, n->n_items);
        for (size_t i = 0; i < n->n_items; i++) {
            tpl_value key = eval(in, n->items[i]);
            tpl_value value = eval(in, n->items2[i]);
            if (key.type == TPL_LIST && !key.as.list->is_tuple)
                tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unhashable type: 'list'");
            if (key.type == TPL_DICT) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "unhashable type: 'dict'");
            tpl_dict_set(in->rt, out.as.dict, key, value);
        }
        return out;
    }
    case N_ATTR: {
        tpl_value object = eval(in, n->a);
        locate(in, n);
        return tpl_get_attr(in, object, n->name);
    }
    case N_ITEM: {
        tpl_value object = eval(in, n->a);
        tpl_value key = eval(in, n->b);
        locate(in, n);
        return tpl_get_item(in, object, key);
    }
    case N_SLICE: {
        tpl_value object = eval(in, n->a);
        locate(in, n);
        return slice(in, object, n);
    }
    case N_CALL: {
        tpl_value callee = eval(in, n->a);
        tpl_args args = eval_args(in, n, NULL);
        locate(in, n);
        return tpl_call_value(in, callee, &args);
    }
    case N_FILTER: {
        tpl_value input = n->a ? eval(in, n->a) : in->block_input;
        tpl_args args = eval_args(in, n, NULL);
        locate(in, n);
        return tpl_apply_filter(in, n->name, input, &args);
    }
    case N_TEST: {
        tpl_value input = eval(in, n->a);
        tpl_args args = eval_args(in, n, NULL);
        locate(in, n);
        bool result = tpl_apply_test(in, n->name, input, &args);
        return tpl_bool(n->flag ? !result : result);
    }
    case N_UNARY: {
        tpl_value v = eval(in, n->a);
        locate(in, n);
        if (v.type == TPL_UNDEFINED) undefined_error(in, v);
        if (!tpl_is_number(v))
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "bad operand type for unary %s: '%s'", n->op == OP_SUB ? "-" : "+",
                     tpl_type_name(v));
        if (n->op == OP_ADD) return v.type == TPL_BOOL ? tpl_int(v.as.boolean) : v;
        if (v.type == TPL_FLOAT) return tpl_float(-v.as.number);
        if (as_int(v) == INT64_MIN) tpl_fail(in->rt, MLXE_ERR_LIMIT, "integer arithmetic overflowed 64 bits");
        return tpl_int(-as_int(v));
    }
    case N_NOT: return tpl_bool(!tpl_truthy(eval(in, n->a)));
    case N_AND: {
        tpl_value a = eval(in, n->a);
        return tpl_truthy(a) ? eval(in, n->b) : a;
    }
    case N_OR: {
        tpl_value a = eval(in, n->a);
        return tpl_truthy(a) ? a : eval(in, n->b);
    }
    case N_BINARY: {
        tpl_value a = eval(in, n->a);
        tpl_value b = eval(in, n->b);
        locate(in, n);
        return binary_op(in, n->op, a, b);
    }
    case N_COMPARE: {
        tpl_value left = eval(in, n->a);
        for (size_t i = 0; i < n->n_items; i++) {
            tpl_value right = eval(in, n->items[i]);
            locate(in, n);
            if (!compare(in, n->ops[i], left, right)) return tpl_bool(false);
            left = right;
        }
        return tpl_bool(true);
    }
    case N_CONCAT: {
        tpl_buffer b = {0};
        for (size_t i = 0; i < n->n_items; i++) tpl_write_str(in->rt, &b, eval(in, n->items[i]));
        return tpl_buffer_to_value(in->rt, &b);
    }
    case N_COND:
        if (tpl_truthy(eval(in, n->a))) return eval(in, n->b);
        return n->c ? eval(in, n->c) : tpl_undefined(NULL);
    default:
        locate(in, n);
        tpl_fail(in->rt, MLXE_ERR_INTERNAL, "statement used as an expression");
    }
}

/* ---- statements ---- */

static void assign(tpl_interp *in, tpl_scope *scope, const tpl_node *target, tpl_value value) {
    if (target->kind == N_NAME) {
        scope_set(in, scope, target->name, value);
        return;
    }
    if (target->kind == N_ATTR) {
        tpl_value ns = lookup(in, scope, target->a->name);
        if (ns.type != TPL_NAMESPACE)
            tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "cannot assign attribute on non-namespace object");
        tpl_dict_set(in->rt, ns.as.dict, tpl_cstr(in->rt, target->name), value);
        return;
    }
    /* tuple unpacking */
    tpl_list *items = tpl_iterate(in->rt, value);
    if (items->length != target->n_items)
        tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "%s values to unpack (expected %zu, got %zu)",
                 items->length > target->n_items ? "too many" : "not enough", target->n_items, items->length);
    for (size_t i = 0; i < target->n_items; i++) scope_set(in, scope, target->items[i]->name, items->items[i]);
}

static tpl_value make_macro(tpl_interp *in, const tpl_node *def, tpl_scope *scope, const char *name) {
    tpl_macro *m = tpl_alloc(in->rt, sizeof *m);
    m->definition = def;
    m->closure = scope;
    m->name = name;
    m->caller = tpl_undefined(NULL);
    tpl_value v = {TPL_MACRO, {.object = m}};
    return v;
}

/* Runs body into a string. A break or continue inside (the block sits in a
 * loop) leaves at once, dropping the text, as Jinja2's inline code does. */
static tpl_value capture(tpl_interp *in, tpl_scope *scope, const tpl_node *body, flow *f) {
    tpl_buffer b = {0};
    *f = exec_body(in, scope, body, &b);
    return tpl_buffer_to_value(in->rt, &b);
}

static tpl_value apply_chain(tpl_interp *in, const tpl_node *chain, tpl_value text) {
    tpl_value saved = in->block_input;
    in->block_input = text;
    tpl_value result = eval(in, chain);
    in->block_input = saved;
    return result;
}

static flow exec_for(tpl_interp *in, tpl_scope *scope, const tpl_node *n, tpl_buffer *out) {
    tpl_value iterable = eval(in, n->b);
    locate(in, n);
    if (n->flag) tpl_fail(in->rt, MLXE_ERR_UNSUPPORTED, "recursive for loops are not supported");
    tpl_list *items = tpl_iterate(in->rt, iterable);
    if (n->e) {
        /* `for x in xs if cond`: filter first, so loop.length counts the kept items. */
        tpl_list *kept = tpl_list_new(in->rt, items->length, false).as.list;
        tpl_scope *s = scope_new(in, scope);
        for (size_t i = 0; i < items->length; i++) {
            count_iteration(in);
            scope_clear(s);
            in->scope = s;
            assign(in, s, n->a, items->items[i]);
            if (tpl_truthy(eval(in, n->e))) kept->items[kept->length++] = items->items[i];
        }
        in->scope = scope;
        items = kept;
    }
    /* The else block has a scope of its own too (Jinja2's else_frame). */
    if (items->length == 0) {
        if (n->d) return exec_body(in, scope_new(in, scope), n->d, out);
        return FLOW_NORMAL;
    }
    /* Jinja2 clears its "no iteration" flag at the end of the body, so the
     * else block also runs when every iteration left by break or continue. */
    bool completed_an_iteration = false;
    tpl_loop *loop = tpl_alloc(in->rt, sizeof *loop);
    loop->items = items;
    loop->depth = 1;
    loop->last_changed = tpl_undefined(NULL);
    loop->changed_called = false;
    /* depth grows only in recursive loops (unsupported), so it is 1 here, as in Jinja2. */
    tpl_value loop_value = {TPL_LOOP, {.object = loop}};
    /* One scope for the whole loop, emptied each iteration: a `set` in the
     * body does not survive into the next iteration, as in Jinja2. */
    tpl_scope *s = scope_new(in, scope);
    for (size_t i = 0; i < items->length; i++) {
        count_iteration(in);
        loop->index0 = (int64_t)i;
        scope_clear(s);
        assign(in, s, n->a, items->items[i]);
        scope_set(in, s, "loop", loop_value);
        flow f = exec_body(in, s, n->c, out);
        if (f == FLOW_BREAK) break;
        if (f == FLOW_NORMAL) completed_an_iteration = true;
    }
    in->scope = scope;
    if (!completed_an_iteration && n->d) return exec_body(in, scope_new(in, scope), n->d, out);
    return FLOW_NORMAL;
}

static flow exec_statement(tpl_interp *in, tpl_scope *scope, const tpl_node *n, tpl_buffer *out) {
    in->scope = scope;
    switch (n->kind) {
    case N_TEXT: tpl_buffer_append(in->rt, out, n->constant.as.string->data, n->constant.as.string->length); return FLOW_NORMAL;
    case N_OUTPUT: {
        tpl_value v = eval(in, n->a);
        tpl_write_str(in->rt, out, v);
        return FLOW_NORMAL;
    }
    case N_IF:
        for (const tpl_node *branch = n; branch;) {
            if (branch->kind != N_IF) return exec_body(in, scope, branch, out);
            in->scope = scope;
            if (tpl_truthy(eval(in, branch->a))) return exec_body(in, scope, branch->b, out);
            branch = branch->c;
        }
        return FLOW_NORMAL;
    case N_FOR: return exec_for(in, scope, n, out);
    case N_SET: {
        tpl_value v = eval(in, n->b);
        locate(in, n);
        assign(in, scope, n->a, v);
        return FLOW_NORMAL;
    }
    case N_SET_BLOCK: {
        flow f;
        /* The block's body has its own scope: a `set` inside does not leak. */
        tpl_value v = capture(in, scope_new(in, scope), n->b, &f);
        if (f != FLOW_NORMAL) return f;
        in->scope = scope;
        if (n->c) v = apply_chain(in, n->c, v);
        locate(in, n);
        assign(in, scope, n->a, v);
        return FLOW_NORMAL;
    }
    case N_MACRO: scope_set(in, scope, n->name, make_macro(in, n, scope, n->name)); return FLOW_NORMAL;
    case N_CALL_BLOCK: {
        const tpl_node *call = n->a;
        tpl_value callee = eval(in, call->a);
        tpl_args args = eval_args(in, call, NULL);
        tpl_value caller = make_macro(in, n, scope, "caller");
        locate(in, n);
        if (callee.type != TPL_MACRO) tpl_fail(in->rt, MLXE_ERR_TEMPLATE, "{%% call %%} needs a macro");
        tpl_macro with_caller = *(tpl_macro *)callee.as.object;
        with_caller.caller = caller;
        tpl_value text = call_macro(in, &with_caller, &args);
        tpl_buffer_append(in->rt, out, text.as.string->data, text.as.string->length);
        return FLOW_NORMAL;
    }
    case N_FILTER_BLOCK: {
        flow f;
        tpl_value text = capture(in, scope_new(in, scope), n->b, &f);
        if (f != FLOW_NORMAL) return f;
        in->scope = scope;
        tpl_value v = apply_chain(in, n->a, text);
        tpl_write_str(in->rt, out, v);
        return FLOW_NORMAL;
    }
    case N_WITH: {
        tpl_scope *s = scope_new(in, scope);
        for (size_t i = 0; i < n->n_names; i++) {
            in->scope = scope;
            scope_set(in, s, n->names[i], eval(in, n->items[i]));
        }
        return exec_body(in, s, n->b, out);
    }
    case N_BODY: return exec_body(in, scope, n, out);
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    default:
        locate(in, n);
        tpl_fail(in->rt, MLXE_ERR_INTERNAL, "expression used as a statement");
    }
}

static flow exec_body(tpl_interp *in, tpl_scope *scope, const tpl_node *body, tpl_buffer *out) {
    for (size_t i = 0; i < body->n_items; i++) {
        flow f = exec_statement(in, scope, body->items[i], out);
        if (f != FLOW_NORMAL) return f;
    }
    in->scope = scope;
    return FLOW_NORMAL;
}

void tpl_render_body(tpl_runtime *rt, const tpl_node *body, tpl_dict *context, tpl_buffer *out) {
    tpl_interp in = {.rt = rt, .block_input = tpl_undefined(NULL)};
    in.globals = tpl_alloc(rt, sizeof *in.globals);
    in.globals->vars = context;
    in.globals->parent = NULL;
    tpl_scope *scope = scope_new(&in, in.globals);
    in.scope = scope;
    exec_body(&in, scope, body, out);
}
