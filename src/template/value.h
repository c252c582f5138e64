/* template/value.h — the values a chat template computes with, and the render
 * runtime they live in.
 *
 * Values follow Python's object model as Jinja2 sees it, because chat
 * templates are written against transformers, which renders them with Python's
 * Jinja2: ints and floats are distinct (4/2 is 2.0), bool is an int, strings
 * are sequences of code points, dicts keep insertion order, and printing
 * follows str()/repr(). Undefined is Jinja2's default Undefined: it prints as
 * nothing, iterates as empty, is false, and fails on attribute access.
 *
 * All memory comes from the runtime's arena (template/arena.h); values are
 * never freed one by one. Errors unwind with longjmp to the render entry
 * point (tpl_fail), which is safe because nothing but the arena owns memory. */
#ifndef MLXE_TEMPLATE_VALUE_H
#define MLXE_TEMPLATE_VALUE_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/status.h"
#include "template/arena.h"

typedef enum tpl_type {
    TPL_UNDEFINED = 0,
    TPL_NONE,
    TPL_BOOL,
    TPL_INT,
    TPL_FLOAT,
    TPL_STRING,
    TPL_LIST,      /* also tuples (list->is_tuple) */
    TPL_DICT,
    TPL_NAMESPACE, /* namespace(): a dict whose attributes `set ns.x` may change */
    TPL_MACRO,
    TPL_FUNCTION,  /* a builtin global (range, namespace, raise_exception...) */
    TPL_METHOD,    /* a bound method: self + name, e.g. "abc".upper */
    TPL_LOOP       /* the `loop` variable of a for loop */
} tpl_type;

typedef struct tpl_string tpl_string;
typedef struct tpl_list tpl_list;
typedef struct tpl_dict tpl_dict;
typedef struct tpl_value tpl_value;

struct tpl_value {
    tpl_type type;
    union {
        bool boolean;
        int64_t integer;
        double number;
        tpl_string *string;
        tpl_list *list;
        tpl_dict *dict;        /* dict and namespace */
        const char *undefined_name; /* what was undefined, for messages (may be NULL) */
        void *object;          /* macro, function, method, loop */
    } as;
};

struct tpl_string {
    size_t length;        /* bytes, not counting the terminating NUL */
    int64_t n_chars;      /* code points as tpl_utf8_next steps (a stray byte is one) */
    bool is_markup;       /* markupsafe.Markup (from |safe or |escape): `+` escapes plain strings */
    char data[];          /* UTF-8, NUL-terminated */
};

struct tpl_list {
    size_t length, capacity;
    bool is_tuple;
    bool is_generator;    /* what map/select/selectattr/unique... return in Jinja2: always true,
                             no len(), not JSON-serialisable, empty once iterated */
    bool consumed;
    tpl_value *items;
};

struct tpl_dict {
    size_t length, capacity;
    size_t filled;        /* key slots ever written (a reused scope may hold old keys past length) */
    tpl_value *keys;
    tpl_value *values;
};

typedef struct tpl_limits_internal {
    int64_t max_iterations;   /* loop iterations + macro calls per render */
    int max_depth;            /* nested macro calls; nesting when printing values */
    int max_nesting;          /* syntax nesting at compile, JSON nesting of the context */
    size_t max_output;        /* bytes of any string or output */
    size_t max_memory;        /* arena bytes per render */
} tpl_limits_internal;

/* The render (or compile) runtime: arena, limits, error and the jump back. */
typedef struct tpl_runtime {
    tpl_arena arena;
    tpl_limits_internal limits;
    jmp_buf *fail_jump;
    mlxe_status status;
    char message[768];
    const char *template_name;
    int line, column;         /* where evaluation is, for messages */
    int64_t iterations;
    int depth;
} tpl_runtime;

/* Sets the error (naming template, line and column) and jumps out. */
_Noreturn void tpl_fail(tpl_runtime *rt, mlxe_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

void *tpl_alloc(tpl_runtime *rt, size_t size);

/* ---- constructors ---- */
static inline tpl_value tpl_undefined(const char *name) {
    tpl_value v = {TPL_UNDEFINED, {.undefined_name = name}};
    return v;
}
static inline tpl_value tpl_none(void) {
    tpl_value v = {TPL_NONE, {.integer = 0}};
    return v;
}
static inline tpl_value tpl_bool(bool b) {
    tpl_value v = {TPL_BOOL, {.boolean = b}};
    return v;
}
static inline tpl_value tpl_int(int64_t i) {
    tpl_value v = {TPL_INT, {.integer = i}};
    return v;
}
static inline tpl_value tpl_float(double d) {
    tpl_value v = {TPL_FLOAT, {.number = d}};
    return v;
}
tpl_value tpl_str(tpl_runtime *rt, const char *data, size_t length);
tpl_value tpl_cstr(tpl_runtime *rt, const char *text);
tpl_string *tpl_string_new(tpl_runtime *rt, const char *data, size_t length);
tpl_value tpl_list_new(tpl_runtime *rt, size_t capacity, bool is_tuple);
void tpl_list_push(tpl_runtime *rt, tpl_list *list, tpl_value item);
tpl_value tpl_dict_new(tpl_runtime *rt, size_t capacity);
/* Sets key to value, replacing an equal key in place (insertion order kept). */
void tpl_dict_set(tpl_runtime *rt, tpl_dict *dict, tpl_value key, tpl_value value);
/* Pointer to the value for key, or NULL. */
tpl_value *tpl_dict_get(tpl_runtime *rt, const tpl_dict *dict, tpl_value key);
tpl_value *tpl_dict_get_cstr(const tpl_dict *dict, const char *key);

/* ---- growable byte buffer (arena-backed, bounded by max_output) ---- */
typedef struct tpl_buffer {
    char *data;
    size_t length, capacity;
} tpl_buffer;
void tpl_buffer_append(tpl_runtime *rt, tpl_buffer *buffer, const char *data, size_t length);
void tpl_buffer_append_cstr(tpl_runtime *rt, tpl_buffer *buffer, const char *text);
void tpl_buffer_printf(tpl_runtime *rt, tpl_buffer *buffer, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
tpl_value tpl_buffer_to_value(tpl_runtime *rt, const tpl_buffer *buffer);

/* ---- Python semantics ---- */
const char *tpl_type_name(tpl_value v);      /* Python's type name: 'str', 'dict object'... */
bool tpl_truthy(tpl_value v);
bool tpl_is_number(tpl_value v);             /* int, float or bool */
double tpl_as_double(tpl_value v);
bool tpl_equal(tpl_runtime *rt, tpl_value a, tpl_value b);
/* <0, 0, >0 like Python's ordering; fails (TypeError) for unorderable types. */
int tpl_compare(tpl_runtime *rt, tpl_value a, tpl_value b);
/* str(v) appended to buffer (Jinja prints with str()). */
void tpl_write_str(tpl_runtime *rt, tpl_buffer *out, tpl_value v);
/* repr(v) appended to buffer. */
void tpl_write_repr(tpl_runtime *rt, tpl_buffer *out, tpl_value v, int depth);
tpl_value tpl_to_string(tpl_runtime *rt, tpl_value v);
/* Python's repr of a float ("1.0", "1e+16", "0.1"). buffer needs 32 bytes. */
void tpl_format_float(double d, char *buffer, size_t size);

/* ---- strings as code points ---- */
int64_t tpl_string_chars(tpl_string *s);
/* Byte offset of code point index (clamped to [0, n_chars]). */
size_t tpl_string_offset(tpl_string *s, int64_t char_index);
/* Decodes one code point at *pos (advancing it); invalid bytes decode as themselves. */
uint32_t tpl_utf8_next(const char *data, size_t length, size_t *pos);
size_t tpl_utf8_encode(uint32_t cp, char *out);
bool tpl_is_space(uint32_t cp);              /* Python's str.isspace for one code point */

/* Iteration as Jinja does it: lists/tuples by item, dicts by key, strings by
 * character, undefined as empty; anything else fails ("'int' object is not
 * iterable"). Returns a list (maybe the same one). */
tpl_list *tpl_iterate(tpl_runtime *rt, tpl_value v);

#endif
