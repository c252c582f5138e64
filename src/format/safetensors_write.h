/* format/safetensors_write.h — writing safetensors files.
 *
 * The output matches what the reference writer (huggingface/safetensors,
 * safetensors/src/tensor.rs, serialize/serialize_to_file) produces for the
 * same tensors: tensors ordered by descending dtype alignment then by name,
 * a compact JSON header ("__metadata__" first) padded with spaces to a
 * multiple of 8 bytes, then the tensors' bytes back to back. Files are
 * written under a temporary name in the same folder and renamed over the
 * target only when complete, so a reader never sees half a file. */
#ifndef MLXE_FORMAT_SAFETENSORS_WRITE_H
#define MLXE_FORMAT_SAFETENSORS_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"
#include "format/safetensors.h"
#include "mlxengine/status.h"

typedef struct mlxe_safetensors_write_tensor {
    const char *name;                 /* unique, not "__metadata__" */
    mlxe_dtype dtype;
    int n_dims;                       /* 0..MLXE_MAX_DIMS (0 = a scalar) */
    int64_t shape[MLXE_MAX_DIMS];
    const void *data;                 /* product(shape) * dtype size bytes, little-endian,
                                         row-major; may be NULL when that is 0 */
} mlxe_safetensors_write_tensor;

typedef struct mlxe_safetensors_metadata_entry {
    const char *key;
    const char *value;
} mlxe_safetensors_metadata_entry;

/* Builds the whole file in memory: *out is malloc'd (caller frees), *size
 * its length. Arguments are checked (unique names, known dtypes, sizes that
 * do not overflow) with MLXE_ERR_INVALID_ARGUMENT naming the tensor. */
mlxe_status mlxe_safetensors_serialize(const mlxe_safetensors_write_tensor *tensors,
                                       size_t n_tensors,
                                       const mlxe_safetensors_metadata_entry *metadata,
                                       size_t n_metadata, unsigned char **out, size_t *size,
                                       mlxe_error *err);

/* Writes the file at path (temporary name, then rename). On error nothing is
 * left at path that was not there before, and the temporary file is removed. */
mlxe_status mlxe_safetensors_write(const char *path, const mlxe_safetensors_write_tensor *tensors,
                                   size_t n_tensors,
                                   const mlxe_safetensors_metadata_entry *metadata,
                                   size_t n_metadata, mlxe_error *err);

#endif
