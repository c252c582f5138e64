/* format/safetensors.c — one safetensors file: mmap it, validate its header
 * (safetensors_header.c), then hand out tensor views into the mapping. */
#include "format/safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "format/safetensors_header.h"

struct mlxe_safetensors_file {
    char *path;
    mlxe_mapped_file map;
    mlxe_safetensors_header header;
};

static mlxe_status open_file(const char *path, bool in_memory, mlxe_safetensors_file **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_safetensors_open: out is NULL");
    *out = NULL;
    if (!path) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_safetensors_open: path is NULL");
    mlxe_safetensors_file *file = calloc(1, sizeof *file);
    if (!file || !(file->path = strdup(path))) {
        free(file);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    mlxe_status status = in_memory ? mlxe_file_map_in_memory(path, &file->map, err)
                                   : mlxe_file_map(path, &file->map, err);
    if (status == MLXE_OK)
        status = mlxe_safetensors_parse_header(file->map.data, file->map.size, file->path,
                                               &file->header, err);
    if (status != MLXE_OK) {
        mlxe_safetensors_close(file);
        return status;
    }
    MLXE_DEBUG(MLXE_LOG_CAT_FORMAT, "%s: %zu tensors, %zu data bytes", path, file->header.n_tensors,
               file->header.data_size);
    *out = file;
    return MLXE_OK;
}

mlxe_status mlxe_safetensors_open(const char *path, mlxe_safetensors_file **out, mlxe_error *err) {
    return open_file(path, false, out, err);
}

mlxe_status mlxe_safetensors_open_in_memory(const char *path, mlxe_safetensors_file **out, mlxe_error *err) {
    return open_file(path, true, out, err);
}

void mlxe_safetensors_close(mlxe_safetensors_file *file) {
    if (!file) return;
    mlxe_safetensors_header_free(&file->header);
    mlxe_file_unmap(&file->map);
    free(file->path);
    free(file);
}

size_t mlxe_safetensors_count(const mlxe_safetensors_file *file) {
    return file ? file->header.n_tensors : 0;
}

const mlxe_tensor_info *mlxe_safetensors_at(const mlxe_safetensors_file *file, size_t index) {
    if (!file || index >= file->header.n_tensors) return NULL;
    return &file->header.tensors[index];
}

const mlxe_tensor_info *mlxe_safetensors_find(const mlxe_safetensors_file *file, const char *name) {
    if (!file || !name) return NULL;
    size_t index = mlxe_safetensors_header_find(&file->header, name);
    return index == SIZE_MAX ? NULL : &file->header.tensors[index];
}

const char *mlxe_safetensors_metadata(const mlxe_safetensors_file *file, const char *key) {
    if (!file || !key) return NULL;
    for (size_t i = 0; i < file->header.n_metadata; i++)
        if (strcmp(file->header.metadata_keys[i], key) == 0) return file->header.metadata_values[i];
    return NULL;
}

const char *mlxe_safetensors_path(const mlxe_safetensors_file *file) {
    return file ? file->path : NULL;
}
