/* base/file.h — reading and mapping files, with errors that name the path. */
#ifndef MLXE_BASE_FILE_H
#define MLXE_BASE_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/status.h"

typedef struct mlxe_mapped_file {
    const unsigned char *data; /* read-only mapping of the whole file; NULL when size is 0 */
    size_t size;
} mlxe_mapped_file;

/* Maps path read-only. On error *out is zeroed. */
mlxe_status mlxe_file_map(const char *path, mlxe_mapped_file *out, mlxe_error *err);
/* Accepts a zeroed struct. */
void mlxe_file_unmap(mlxe_mapped_file *file);

/* Reads the whole file into a NUL-terminated malloc'd buffer (*size excludes
 * the NUL). Refuses files larger than max_size with MLXE_ERR_LIMIT. */
mlxe_status mlxe_file_read_all(const char *path, size_t max_size, char **out, size_t *size,
                               mlxe_error *err);

bool mlxe_file_exists(const char *path);
bool mlxe_dir_exists(const char *path);

/* Joins dir and name with one '/' into a malloc'd string; NULL when out of memory. */
char *mlxe_path_join(const char *dir, const char *name);

#endif
