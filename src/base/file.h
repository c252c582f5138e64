/* base/file.h — reading and mapping files, with errors that name the path. */
#ifndef MLXE_BASE_FILE_H
#define MLXE_BASE_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/status.h"

typedef struct mlxe_mapped_file {
    const unsigned char *data; /* read-only mapping of the whole file; NULL when size is 0 */
    size_t size;
    size_t mapped_size; /* bytes to unmap when the file was copied to huge pages; 0 for a file mapping */
} mlxe_mapped_file;

/* Maps path read-only. On error *out is zeroed. */
mlxe_status mlxe_file_map(const char *path, mlxe_mapped_file *out, mlxe_error *err);
/* Like mlxe_file_map, but the bytes are copied into anonymous memory marked
 * for transparent huge pages (madvise MADV_HUGEPAGE, 2 MiB aligned), then
 * made read-only. For model weights the CPU streams every token: with 4 KiB
 * page-cache pages each decode step walks ~250 page tables per MB, and
 * huge pages measured +4-13% decode in most paired runs on this project's
 * CPU benchmarks (engine/model.c: opt-in, MLXE_WEIGHTS_HUGEPAGES=1).
 * Falls back to the file mapping when the memory cannot be had. */
mlxe_status mlxe_file_map_in_memory(const char *path, mlxe_mapped_file *out, mlxe_error *err);
/* Accepts a zeroed struct. */
void mlxe_file_unmap(mlxe_mapped_file *file);

/* Drops from this process's memory the pages lying wholly inside
 * [start, start + bytes) (madvise MADV_DONTNEED). For a private file
 * mapping (mlxe_file_map) the bytes stay valid: a later read faults them
 * back in from the file; anonymous memory reads back as zeros, so only
 * memory about to be freed may be passed then. What the caller gains is
 * resident memory, e.g. while copying weights into another layout. */
void mlxe_release_pages(const void *start, size_t bytes);

/* Reads the whole file into a NUL-terminated malloc'd buffer (*size excludes
 * the NUL). Refuses files larger than max_size with MLXE_ERR_LIMIT. */
mlxe_status mlxe_file_read_all(const char *path, size_t max_size, char **out, size_t *size,
                               mlxe_error *err);

bool mlxe_file_exists(const char *path);
bool mlxe_dir_exists(const char *path);

/* Joins dir and name with one '/' into a malloc'd string; NULL when out of memory. */
char *mlxe_path_join(const char *dir, const char *name);

#endif
