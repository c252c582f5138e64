/* base/path_format.h — printf into a fixed path buffer, refusing to cut.
 * A cut path names another file, which a clean-up must never remove. */
#ifndef MLXE_BASE_PATH_FORMAT_H
#define MLXE_BASE_PATH_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

/* False (out set to "") when the result does not fit in size bytes. */
bool mlxe_path_format(char *out, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#endif
