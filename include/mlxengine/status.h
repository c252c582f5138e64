/* mlxengine/status.h — result codes and error messages shared by every call.
 *
 * Every function that can fail returns an mlxe_status and, when the caller
 * passes a non-NULL mlxe_error, fills it with one human sentence that names
 * the file, tensor, key or URL at fault and says what to do next. The error
 * struct is plain caller-owned memory: nothing to free, safe on the stack. */
#ifndef MLXENGINE_STATUS_H
#define MLXENGINE_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef enum mlxe_status {
    MLXE_OK = 0,
    MLXE_ERR_INVALID_ARGUMENT = 1, /* the caller passed something unusable */
    MLXE_ERR_IO = 2,               /* a file could not be opened, read or written */
    MLXE_ERR_FORMAT = 3,           /* a file's content is malformed or inconsistent */
    MLXE_ERR_UNSUPPORTED = 4,      /* valid input we do not handle (yet) */
    MLXE_ERR_OUT_OF_MEMORY = 5,
    MLXE_ERR_NOT_FOUND = 6,        /* a named file, tensor, key or model does not exist */
    MLXE_ERR_CANCELLED = 7,        /* stopped through an mlxe_cancel token */
    MLXE_ERR_NETWORK = 8,
    MLXE_ERR_TEMPLATE = 9,         /* a chat template failed to parse or raised */
    MLXE_ERR_LIMIT = 10,           /* a configured limit (context, loop count, size) was hit */
    MLXE_ERR_DEVICE = 11,          /* the GPU or its driver failed or is missing */
    MLXE_ERR_INTERNAL = 12         /* a bug in mlxengine: please report it */
} mlxe_status;

/* Room for one message; longer messages are cut at a UTF-8 boundary. */
#define MLXE_ERROR_MESSAGE_SIZE 1024

typedef struct mlxe_error {
    mlxe_status status;
    char message[MLXE_ERROR_MESSAGE_SIZE];
} mlxe_error;

/* Resets err to MLXE_OK with an empty message. Accepts NULL. */
void mlxe_error_clear(mlxe_error *err);

/* The stable lower-case name of a status, e.g. "format" for MLXE_ERR_FORMAT;
 * "unknown" for a value outside the enum. Never NULL. */
const char *mlxe_status_name(mlxe_status status);

/* ---- the most recent errors, for diagnostics ----
 * Every error the library reports through an mlxe_error (a non-NULL err
 * argument) is also kept in a small process-wide ring, with the context
 * added on its way up to the caller (the "while loading X: " prefixes), so
 * a debug report can show what failed even when the program dropped the
 * message. Recording takes a lock and copies the message: no allocation. */
#define MLXE_ERROR_RING_SIZE 32

typedef struct mlxe_error_record {
    uint64_t sequence;   /* 1 for the first error of the process, then +1 */
    double time_unix;    /* seconds since the Unix epoch, with microseconds */
    uint64_t thread_id;  /* the OS thread id (gettid) that set the error */
    mlxe_status status;
    char message[MLXE_ERROR_MESSAGE_SIZE]; /* secrets redacted when diagnostics
                                              redaction is installed (it is by default) */
} mlxe_error_record;

/* Copies up to max of the most recent errors, oldest first, into out and
 * returns how many were copied (at most MLXE_ERROR_RING_SIZE). Thread-safe. */
size_t mlxe_recent_errors(mlxe_error_record *out, size_t max);
/* Empties the ring (tests, long-running servers). Thread-safe. */
void mlxe_recent_errors_clear(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
