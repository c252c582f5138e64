/* mlxengine/status.h — result codes and error messages shared by every call.
 *
 * Every function that can fail returns an mlxe_status and, when the caller
 * passes a non-NULL mlxe_error, fills it with one human sentence that names
 * the file, tensor, key or URL at fault and says what to do next. The error
 * struct is plain caller-owned memory: nothing to free, safe on the stack. */
#ifndef MLXENGINE_STATUS_H
#define MLXENGINE_STATUS_H

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

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
