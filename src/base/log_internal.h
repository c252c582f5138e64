/* base/log_internal.h — logging shorthands for library code.
 *
 * MLXE_DEBUG(MLXE_LOG_CAT_FORMAT, "...", ...) etc. check the threshold
 * before formatting, so disabled trace calls cost one atomic load. */
#ifndef MLXE_BASE_LOG_INTERNAL_H
#define MLXE_BASE_LOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/log.h"

bool mlxe_log_enabled(mlxe_log_level level, mlxe_log_category category);

/* A hook run on every message before it is stored or shown (under the log's
 * lock); the diagnostics layer installs its secret redaction here. */
typedef void (*mlxe_log_filter)(char *message, size_t capacity);
void mlxe_log_set_filter(mlxe_log_filter filter);
/* Runs the installed filter (if any) on message, as records get it; the
 * error ring uses it so its messages are redacted like the log's. */
void mlxe_log_apply_filter(char *message, size_t capacity);

#define MLXE_LOG_AT(level, category, ...)                                        \
    do {                                                                         \
        if (mlxe_log_enabled((level), (category))) mlxe_log_write((level), (category), __VA_ARGS__); \
    } while (0)
#define MLXE_TRACE(category, ...) MLXE_LOG_AT(MLXE_LOG_TRACE, category, __VA_ARGS__)
#define MLXE_DEBUG(category, ...) MLXE_LOG_AT(MLXE_LOG_DEBUG, category, __VA_ARGS__)
#define MLXE_INFO(category, ...) MLXE_LOG_AT(MLXE_LOG_INFO, category, __VA_ARGS__)
#define MLXE_WARN(category, ...) MLXE_LOG_AT(MLXE_LOG_WARN, category, __VA_ARGS__)
#define MLXE_ERROR(category, ...) MLXE_LOG_AT(MLXE_LOG_ERROR, category, __VA_ARGS__)

#endif
