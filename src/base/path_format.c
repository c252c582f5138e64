/* base/path_format.c — see path_format.h. */
#include "base/path_format.h"

#include <stdarg.h>
#include <stdio.h>

bool mlxe_path_format(char *out, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int n = vsnprintf(out, size, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= size) {
        if (size) out[0] = '\0';
        return false;
    }
    return true;
}
