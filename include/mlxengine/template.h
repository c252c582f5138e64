/* mlxengine/template.h — chat templates: the Jinja a model ships to turn a
 * conversation into its prompt text, rendered the way Hugging Face
 * transformers renders it.
 *
 * transformers renders chat templates with Python's Jinja2 in an
 * ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks on, the
 * loopcontrols extension, a `tojson` filter that is json.dumps with
 * ensure_ascii=False, and the globals raise_exception() and strftime_now().
 * mlxe_template implements that subset of Jinja2 in C so that the rendered
 * prompt is byte for byte what transformers produces: Python's printing rules
 * (None, True, 1.0, dict and list repr), Python's truthiness, Jinja2's
 * undefined values (print as nothing, iterate as empty), its scoping (a `set`
 * inside a loop does not leak; namespace() does).
 *
 * Not supported (errors, never silently wrong): include, extends, import and
 * template blocks (a chat template has no other templates to load),
 * recursive for loops, star-args in calls, a few rare filters.
 *
 * Hostile templates: every render is bounded by mlxe_template_limits (loop
 * iterations plus macro calls, macro nesting, syntax and data nesting, output
 * size, memory); going past one fails with MLXE_ERR_LIMIT, never a hang or a
 * stack overflow.
 *
 * Thread-safety: a compiled mlxe_template (and mlxe_chat_template) is
 * immutable; any number of threads may render it at once. */
#ifndef MLXENGINE_TEMPLATE_H
#define MLXENGINE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_template mlxe_template;

typedef struct mlxe_template_limits {
    int64_t max_loop_iterations; /* for-loop iterations + macro calls in one render (1000000) */
    int max_recursion_depth;     /* macro calls nested in each other (100) */
    int max_nesting;             /* nesting of the template's syntax and of the context JSON (200) */
    size_t max_output_bytes;     /* the rendered text, and any string built on the way (64 MiB) */
    size_t max_memory_bytes;     /* all memory of one render, the parsed context included (1 GiB) */
} mlxe_template_limits;

/* Fills the defaults given above. */
void mlxe_template_limits_init(mlxe_template_limits *limits);

/* Compiles template source (length bytes of UTF-8; need not be
 * NUL-terminated). name labels error messages ("chat_template.jinja");
 * NULL gives "template". limits NULL means the defaults; they are kept for
 * every render. Syntax errors give MLXE_ERR_TEMPLATE with "NAME, line L,
 * column C: what"; unknown filters and tests are errors here, as in Jinja2. */
mlxe_status mlxe_template_compile(const char *source, size_t length, const char *name,
                                  const mlxe_template_limits *limits, mlxe_template **out,
                                  mlxe_error *err);

/* Renders with a context given as JSON text: an object whose keys become the
 * template's variables (messages, tools, add_generation_prompt, bos_token,
 * enable_thinking, ...). JSON ints and floats stay distinct as in Python.
 * On success *out_text is a NUL-terminated malloc'd string owned by the
 * caller (free with mlxe_template_text_free) and *out_length its length
 * (out_length may be NULL). Errors: MLXE_ERR_FORMAT for bad JSON,
 * MLXE_ERR_TEMPLATE when the template fails or calls raise_exception (the
 * message then ends with the template's own message, after "NAME, line L,
 * column C: "), MLXE_ERR_LIMIT past a limit. */
mlxe_status mlxe_template_render_json(const mlxe_template *tpl, const char *context_json,
                                      size_t context_length, char **out_text, size_t *out_length,
                                      mlxe_error *err);

void mlxe_template_free(mlxe_template *tpl);
void mlxe_template_text_free(char *text);

/* ---- the chat template of a model folder ----
 *
 * Looked up as transformers does: DIR/chat_template.jinja, else
 * DIR/chat_template.json ({"chat_template": "..."}), else the
 * "chat_template" of DIR/tokenizer_config.json (a string, or a list of
 * {"name", "template"} such as "default" and "tool_use"). A folder with
 * none gets a fallback that joins the message contents with newlines (as
 * mlx-swift-lm does), and a warning in the log says so. The special tokens
 * of tokenizer_config.json (bos_token, eos_token, unk_token, pad_token) are
 * kept for rendering. */
typedef struct mlxe_chat_template mlxe_chat_template;

mlxe_status mlxe_chat_template_load(const char *model_dir, mlxe_chat_template **out, mlxe_error *err);

/* Renders a conversation. context_json is an object holding "messages" and
 * optionally "tools", "documents", "add_generation_prompt" and any other
 * variables (enable_thinking, reasoning_effort, date_string...). As in
 * transformers' apply_chat_template: tools, documents default to None and
 * add_generation_prompt to false; bos_token/eos_token/unk_token/pad_token come
 * from tokenizer_config.json unless the context sets them. template_name
 * picks a named template; NULL picks "tool_use" when tools are given and the
 * folder has one, else "default". Output and errors as
 * mlxe_template_render_json. */
mlxe_status mlxe_chat_template_render_json(const mlxe_chat_template *chat, const char *template_name,
                                           const char *context_json, size_t context_length,
                                           char **out_text, size_t *out_length, mlxe_error *err);

/* Where the template came from: "chat_template.jinja", "chat_template.json",
 * "tokenizer_config.json" or "fallback". */
const char *mlxe_chat_template_origin(const mlxe_chat_template *chat);
/* Number of named templates and the i-th name ("default" for a single one). */
int mlxe_chat_template_count(const mlxe_chat_template *chat);
const char *mlxe_chat_template_name(const mlxe_chat_template *chat, int index);

void mlxe_chat_template_free(mlxe_chat_template *chat);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
