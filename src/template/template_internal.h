/* template/template_internal.h — what chat_template.c needs from template.c:
 * rendering with a hook that fills default variables into the context. */
#ifndef MLXE_TEMPLATE_INTERNAL_H
#define MLXE_TEMPLATE_INTERNAL_H

#include "mlxengine/template.h"
#include "template/value.h"

/* Called with the parsed context object before rendering. */
typedef void (*tpl_context_hook)(tpl_runtime *rt, tpl_dict *context, void *user);

mlxe_status tpl_template_render(const mlxe_template *tpl, const char *context_json, size_t context_length,
                                tpl_context_hook hook, void *user, char **out_text, size_t *out_length,
                                mlxe_error *err);

#endif
