/* diag/redact.h — secret redaction shared by the log filter, the debug
 * report and the tools (public entry points are in mlxengine/diag.h). */
#ifndef MLXE_DIAG_REDACT_H
#define MLXE_DIAG_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/diag.h"

/* A malloc'd redacted copy of text (NULL text counts as ""); NULL when out of
 * memory. */
char *mlxe_redact_dup(const char *text);
/* Redacts a NUL-terminated buffer of capacity bytes in place (the log
 * filter's signature). Out of memory blanks the text instead. */
void mlxe_redact_in_place(char *text, size_t capacity);
/* Whether an environment variable or key of this name holds a secret
 * (HF_TOKEN, *_API_KEY, *_PASSWORD, ...; *_PATH names never do). */
bool mlxe_redact_is_secret_name(const char *name);
/* Drops every registered secret (tests). */
void mlxe_redact_forget_secrets(void);

#endif
