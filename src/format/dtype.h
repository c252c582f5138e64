/* format/dtype.h — element types of stored tensors, named as safetensors names them. */
#ifndef MLXE_FORMAT_DTYPE_H
#define MLXE_FORMAT_DTYPE_H

#include <stddef.h>

typedef enum mlxe_dtype {
    MLXE_DTYPE_UNKNOWN = 0,
    MLXE_DTYPE_F32,
    MLXE_DTYPE_F16,
    MLXE_DTYPE_BF16,
    MLXE_DTYPE_F64,
    MLXE_DTYPE_I64,
    MLXE_DTYPE_I32,
    MLXE_DTYPE_I16,
    MLXE_DTYPE_I8,
    MLXE_DTYPE_U64,
    MLXE_DTYPE_U32,
    MLXE_DTYPE_U16,
    MLXE_DTYPE_U8,
    MLXE_DTYPE_BOOL,
    MLXE_DTYPE_COUNT
} mlxe_dtype;

/* Bytes per element; 0 for UNKNOWN. */
size_t mlxe_dtype_size(mlxe_dtype dtype);
/* The safetensors spelling: "F32", "BF16", "U32", ... ; "unknown" otherwise. */
const char *mlxe_dtype_name(mlxe_dtype dtype);
/* Parses the safetensors spelling (also "float32", "bfloat16", "float16" as
 * config.json's torch_dtype writes them); MLXE_DTYPE_UNKNOWN if not known. */
mlxe_dtype mlxe_dtype_from_name(const char *name);

#endif
