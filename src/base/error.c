/* base/error.c — status names and the helpers that fill mlxe_error. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void mlxe_error_clear(mlxe_error *err) {
    if (!err) return;
    err->status = MLXE_OK;
    err->message[0] = '\0';
}

const char *mlxe_status_name(mlxe_status status) {
    switch (status) {
    case MLXE_OK: return "ok";
    case MLXE_ERR_INVALID_ARGUMENT: return "invalid_argument";
    case MLXE_ERR_IO: return "io";
    case MLXE_ERR_FORMAT: return "format";
    case MLXE_ERR_UNSUPPORTED: return "unsupported";
    case MLXE_ERR_OUT_OF_MEMORY: return "out_of_memory";
    case MLXE_ERR_NOT_FOUND: return "not_found";
    case MLXE_ERR_CANCELLED: return "cancelled";
    case MLXE_ERR_NETWORK: return "network";
    case MLXE_ERR_TEMPLATE: return "template";
    case MLXE_ERR_LIMIT: return "limit";
    case MLXE_ERR_DEVICE: return "device";
    case MLXE_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

/* Cuts s so it does not end inside a UTF-8 sequence (vsnprintf cuts bytes). */
static void trim_partial_utf8(char *s) {
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < want) s[i - 1] = '\0';
}

mlxe_status mlxe_error_set(mlxe_error *err, mlxe_status status, const char *format, ...) {
    if (!err) return status;
    err->status = status;
    va_list args;
    va_start(args, format);
    int written = vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
    if (written >= (int)sizeof err->message) trim_partial_utf8(err->message);
    return status;
}

mlxe_status mlxe_error_prefix(mlxe_error *err, const char *format, ...) {
    if (!err) return MLXE_OK;
    char prefix[MLXE_ERROR_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(prefix, sizeof prefix, format, args);
    va_end(args);
    char joined[MLXE_ERROR_MESSAGE_SIZE];
    int written = snprintf(joined, sizeof joined, "%s: %s", prefix, err->message);
    memcpy(err->message, joined, sizeof joined);
    if (written >= (int)sizeof joined) trim_partial_utf8(err->message);
    return err->status;
}
