/* format/dtype.c — sizes and names of stored element types.
 *
 * Spellings follow the safetensors specification (huggingface/safetensors,
 * safetensors/src/tensor.rs, enum Dtype); config.json's torch_dtype uses
 * PyTorch's names ("bfloat16"), accepted here too. */
#include "format/dtype.h"

#include <string.h>

typedef struct dtype_entry {
    const char *name;       /* safetensors spelling */
    const char *torch_name; /* torch.<name> spelling */
    size_t size;
} dtype_entry;

static const dtype_entry dtype_table[MLXE_DTYPE_COUNT] = {
    [MLXE_DTYPE_UNKNOWN] = {"unknown", NULL, 0},
    [MLXE_DTYPE_F32] = {"F32", "float32", 4},
    [MLXE_DTYPE_F16] = {"F16", "float16", 2},
    [MLXE_DTYPE_BF16] = {"BF16", "bfloat16", 2},
    [MLXE_DTYPE_F64] = {"F64", "float64", 8},
    [MLXE_DTYPE_I64] = {"I64", "int64", 8},
    [MLXE_DTYPE_I32] = {"I32", "int32", 4},
    [MLXE_DTYPE_I16] = {"I16", "int16", 2},
    [MLXE_DTYPE_I8] = {"I8", "int8", 1},
    [MLXE_DTYPE_U64] = {"U64", "uint64", 8},
    [MLXE_DTYPE_U32] = {"U32", "uint32", 4},
    [MLXE_DTYPE_U16] = {"U16", "uint16", 2},
    [MLXE_DTYPE_U8] = {"U8", "uint8", 1},
    [MLXE_DTYPE_BOOL] = {"BOOL", "bool", 1},
};

size_t mlxe_dtype_size(mlxe_dtype dtype) {
    if ((int)dtype <= MLXE_DTYPE_UNKNOWN || dtype >= MLXE_DTYPE_COUNT) return 0;
    return dtype_table[dtype].size;
}

const char *mlxe_dtype_name(mlxe_dtype dtype) {
    if ((int)dtype <= MLXE_DTYPE_UNKNOWN || dtype >= MLXE_DTYPE_COUNT) return "unknown";
    return dtype_table[dtype].name;
}

mlxe_dtype mlxe_dtype_from_name(const char *name) {
    if (!name) return MLXE_DTYPE_UNKNOWN;
    for (int i = MLXE_DTYPE_UNKNOWN + 1; i < MLXE_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) return (mlxe_dtype)i;
        if (strcmp(name, dtype_table[i].torch_name) == 0) return (mlxe_dtype)i;
    }
    /* Older configs and some tools also write the short aliases. */
    if (strcmp(name, "half") == 0) return MLXE_DTYPE_F16;
    if (strcmp(name, "float") == 0) return MLXE_DTYPE_F32;
    return MLXE_DTYPE_UNKNOWN;
}
