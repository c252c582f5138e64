/* base/error.h — filling an mlxe_error from inside the library. */
#ifndef MLXE_BASE_ERROR_H
#define MLXE_BASE_ERROR_H

#include "mlxengine/status.h"

/* Sets err (if not NULL) to status with a printf-style message and returns
 * status, so call sites can write `return mlxe_error_set(err, ...)`. */
mlxe_status mlxe_error_set(mlxe_error *err, mlxe_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prepends "prefix: " to an error already set, to add context on the way up
 * (e.g. the model folder around a file error). Returns err's status. */
mlxe_status mlxe_error_prefix(mlxe_error *err, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
