/* format/safetensors_header.h — parsing and validating a safetensors header
 * held in memory (internal).
 *
 * The parser takes the whole file as a byte buffer (an mmap, or a fuzzer's
 * input) and trusts nothing in it: the 8-byte length, the JSON, every
 * tensor entry and the layout of the data area are checked before any
 * tensor_info is handed out. It never reads outside [buffer, buffer+size). */
#ifndef MLXE_FORMAT_SAFETENSORS_HEADER_H
#define MLXE_FORMAT_SAFETENSORS_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "format/safetensors.h"

/* Largest header accepted, as the reference reader (safetensors/src/tensor.rs,
 * MAX_HEADER_SIZE) does. */
#define MLXE_SAFETENSORS_MAX_HEADER 100000000u

typedef struct mlxe_safetensors_header {
    mlxe_tensor_info *tensors;   /* sorted by data offset; data points into the buffer */
    size_t n_tensors;
    size_t *by_name;             /* indices into tensors, sorted by name (strcmp) */
    size_t data_start;           /* 8 + header length: where the data area begins */
    size_t data_size;            /* bytes in the data area */
    char **metadata_keys;        /* "__metadata__" entries, in file order */
    char **metadata_values;
    size_t n_metadata;
    char *strings;               /* one block holding every tensor name */
} mlxe_safetensors_header;

/* Parses and validates buffer (the whole file, size bytes). what names the
 * file in errors and becomes each tensor_info's `file` (it must outlive
 * out). On error *out is left empty and nothing leaks. */
mlxe_status mlxe_safetensors_parse_header(const unsigned char *buffer, size_t size,
                                          const char *what, mlxe_safetensors_header *out,
                                          mlxe_error *err);
/* Index of name in header->tensors, or SIZE_MAX. */
size_t mlxe_safetensors_header_find(const mlxe_safetensors_header *header, const char *name);
/* Offset of the first byte of s that is not valid UTF-8 (RFC 3629), or size
 * when all of it is. Shared with the writer. */
size_t mlxe_utf8_invalid_at(const unsigned char *s, size_t size);
/* Accepts a zeroed struct; leaves it zeroed. */
void mlxe_safetensors_header_free(mlxe_safetensors_header *header);

#endif
