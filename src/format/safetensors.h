/* format/safetensors.h — safetensors files and a model folder's weight set.
 *
 * A file is mmap'd and its header validated before anything in it is
 * trusted (sane header length, valid JSON, known dtypes, offsets inside the
 * data area, shape × dtype size equal to the byte span, no overlaps, unique
 * names). Tensor data is then used in place: the mapping lives as long as
 * the file (or weight set) object. Errors name the file and the tensor.
 *
 * _at(i) walks a file's tensors in data-offset order (a weight set: file by
 * file); _find is a binary search over names sorted once at open.
 * Thread-safety: a file or weight set is read-only after open, so any
 * number of threads may query it at once; close it once, after all use. */
#ifndef MLXE_FORMAT_SAFETENSORS_H
#define MLXE_FORMAT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"
#include "mlxengine/status.h"

#define MLXE_MAX_DIMS 8

typedef struct mlxe_tensor_info {
    const char *name;              /* borrowed from the owning file */
    mlxe_dtype dtype;
    int n_dims;
    int64_t shape[MLXE_MAX_DIMS];
    int64_t n_elements;
    const void *data;              /* inside the mapping; NULL only when n_bytes is 0 */
    size_t n_bytes;
    const char *file;              /* path of the file holding it (borrowed) */
    /* Added after the first contract: */
    bool aligned;                  /* data is aligned to its element size. Files from the
                                      reference writer always are; files from MLX's
                                      save_safetensors (mlx-community models) often are not:
                                      it neither pads the header nor orders tensors by
                                      alignment. Kernels that need aligned loads must copy
                                      tensors where this is false. */
} mlxe_tensor_info;

/* ---- one file ---- */
typedef struct mlxe_safetensors_file mlxe_safetensors_file;

mlxe_status mlxe_safetensors_open(const char *path, mlxe_safetensors_file **out, mlxe_error *err);
/* The same with the file copied into huge-page memory (base/file.h,
 * mlxe_file_map_in_memory): for weights the CPU multiplies in place. */
mlxe_status mlxe_safetensors_open_in_memory(const char *path, mlxe_safetensors_file **out, mlxe_error *err);
void mlxe_safetensors_close(mlxe_safetensors_file *file);
size_t mlxe_safetensors_count(const mlxe_safetensors_file *file);
const mlxe_tensor_info *mlxe_safetensors_at(const mlxe_safetensors_file *file, size_t index);
/* NULL when absent. */
const mlxe_tensor_info *mlxe_safetensors_find(const mlxe_safetensors_file *file, const char *name);
/* A "__metadata__" string value, or NULL. */
const char *mlxe_safetensors_metadata(const mlxe_safetensors_file *file, const char *key);
/* The path the file was opened with (borrowed). */
const char *mlxe_safetensors_path(const mlxe_safetensors_file *file);

/* ---- a model folder ---- */
/* Opens model.safetensors, or the shards listed by model.safetensors.index.json
 * (checking every listed tensor is in the shard the index names), or, as MLX
 * does, every *.safetensors file in the folder. Tensor names must be unique
 * across files. */
typedef struct mlxe_weight_set mlxe_weight_set;

mlxe_status mlxe_weight_set_open(const char *dir, mlxe_weight_set **out, mlxe_error *err);
/* The same with every file copied into huge-page memory (see above). */
mlxe_status mlxe_weight_set_open_in_memory(const char *dir, mlxe_weight_set **out, mlxe_error *err);
void mlxe_weight_set_close(mlxe_weight_set *set);
size_t mlxe_weight_set_count(const mlxe_weight_set *set);
const mlxe_tensor_info *mlxe_weight_set_at(const mlxe_weight_set *set, size_t index);
const mlxe_tensor_info *mlxe_weight_set_find(const mlxe_weight_set *set, const char *name);
/* Whether the set was opened with _open_in_memory (anonymous copies). */
bool mlxe_weight_set_in_memory(const mlxe_weight_set *set);
/* Sum of all tensors' bytes. */
size_t mlxe_weight_set_total_bytes(const mlxe_weight_set *set);
/* The files of the set, in the order their tensors are numbered by _at. */
size_t mlxe_weight_set_file_count(const mlxe_weight_set *set);
const mlxe_safetensors_file *mlxe_weight_set_file(const mlxe_weight_set *set, size_t index);
/* Finds name and checks its shape (n_dims dims equal to shape); errors say
 * "missing tensor 'X' in DIR" or "tensor 'X' in FILE has shape [a, b] but
 * the config implies [c, d]". */
mlxe_status mlxe_weight_set_require(const mlxe_weight_set *set, const char *name, int n_dims,
                                    const int64_t *shape, const mlxe_tensor_info **out,
                                    mlxe_error *err);

#endif
