/* mlxengine/log.h — the library's log: levels, categories, sinks and a ring
 * of recent records.
 *
 * The library never prints on its own: records go to the sinks the program
 * enables (a callback, standard error) and always to an in-memory ring of
 * the most recent records, which the debug report and the server's debug
 * panel read. Each category has its own threshold; a record below its
 * category's threshold is dropped everywhere.
 *
 * Thread-safety: every function here may be called from any thread. */
#ifndef MLXENGINE_LOG_H
#define MLXENGINE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef enum mlxe_log_level {
    MLXE_LOG_TRACE = 0,
    MLXE_LOG_DEBUG = 1,
    MLXE_LOG_INFO = 2,
    MLXE_LOG_WARN = 3,
    MLXE_LOG_ERROR = 4,
    MLXE_LOG_OFF = 5
} mlxe_log_level;

typedef enum mlxe_log_category {
    MLXE_LOG_CAT_GENERAL = 0,
    MLXE_LOG_CAT_FORMAT,
    MLXE_LOG_CAT_TOKENIZER,
    MLXE_LOG_CAT_TEMPLATE,
    MLXE_LOG_CAT_RUNTIME,
    MLXE_LOG_CAT_MODEL,
    MLXE_LOG_CAT_ENGINE,
    MLXE_LOG_CAT_CHAT,
    MLXE_LOG_CAT_HUB,
    MLXE_LOG_CAT_DIAG,
    MLXE_LOG_CAT_SERVER,
    MLXE_LOG_CAT_COUNT
} mlxe_log_category;

#define MLXE_LOG_MESSAGE_SIZE 512

typedef struct mlxe_log_record {
    uint64_t sequence;          /* 1 for the first record of the process, then +1 */
    double time_unix;           /* seconds since the Unix epoch, with microseconds */
    mlxe_log_level level;
    mlxe_log_category category;
    uint64_t thread_id;         /* the OS thread id (gettid) that wrote the record */
    char message[MLXE_LOG_MESSAGE_SIZE];
} mlxe_log_record;

/* "trace", "debug", "info", "warn", "error", "off"; NULL for other values. */
const char *mlxe_log_level_name(mlxe_log_level level);
/* "general", "format", "tokenizer", "template", "runtime", "model", "engine",
 * "chat", "hub", "diag", "server"; NULL for other values. */
const char *mlxe_log_category_name(mlxe_log_category category);

/* Sets the threshold of one category. Default: MLXE_LOG_INFO for all. */
void mlxe_log_set_level(mlxe_log_category category, mlxe_log_level level);
/* Sets the threshold of every category. */
void mlxe_log_set_level_all(mlxe_log_level level);
mlxe_log_level mlxe_log_get_level(mlxe_log_category category);

/* Applies a spec in the syntax of the MLXE_LOG variable: comma-separated
 * items, each either a level ("debug") or "category=level"
 * ("tokenizer=trace"). A bare level applies to every category the spec does
 * not name, whatever the order: "tokenizer=trace,info" sets the tokenizer to
 * trace and all others to info. On a bad item nothing changes and err names
 * the item and lists the valid names. NULL or "" changes nothing. */
mlxe_status mlxe_log_configure(const char *spec, mlxe_error *err);
/* mlxe_log_configure(getenv("MLXE_LOG")). */
mlxe_status mlxe_log_configure_from_env(mlxe_error *err);

typedef void (*mlxe_log_callback)(void *user, const mlxe_log_record *record);
/* Installs (or with NULL removes) the callback sink. The callback runs on the
 * logging thread while a lock is held: it must not log itself. */
void mlxe_log_set_callback(mlxe_log_callback callback, void *user);
/* Turns the standard-error sink on or off (off by default). */
void mlxe_log_set_stderr(bool enabled);

/* Writes one record (printf-style). Programs embedding the library may log
 * through it too. */
void mlxe_log_write(mlxe_log_level level, mlxe_log_category category, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Copies up to max of the most recent records, oldest first, into out and
 * returns how many were copied. The ring keeps the last MLXE_LOG_RING_SIZE. */
#define MLXE_LOG_RING_SIZE 1024
size_t mlxe_log_recent(mlxe_log_record *out, size_t max);
/* Empties the ring (tests and long-running servers use it). */
void mlxe_log_clear_recent(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
