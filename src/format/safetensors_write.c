/* format/safetensors_write.c — serializing tensors to the safetensors format
 * the way the reference writer does (see safetensors_write.h). */
#include "format/safetensors_write.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "format/safetensors_header.h"

/* Position of each dtype in the reference's Dtype enum, which is declared in
 * increasing alignment order (BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16,
 * BF16, I32, U32, F32, F64, I64, U64); the writer sorts by it, descending. */
static int reference_rank(mlxe_dtype dtype) {
    switch (dtype) {
    case MLXE_DTYPE_BOOL: return 0;
    case MLXE_DTYPE_U8: return 1;
    case MLXE_DTYPE_I8: return 2;
    case MLXE_DTYPE_I16: return 5;
    case MLXE_DTYPE_U16: return 6;
    case MLXE_DTYPE_F16: return 7;
    case MLXE_DTYPE_BF16: return 8;
    case MLXE_DTYPE_I32: return 9;
    case MLXE_DTYPE_U32: return 10;
    case MLXE_DTYPE_F32: return 11;
    case MLXE_DTYPE_F64: return 12;
    case MLXE_DTYPE_I64: return 13;
    case MLXE_DTYPE_U64: return 14;
    default: return -1;
    }
}

typedef struct text_buffer {
    char *data;
    size_t size, capacity;
    bool failed;
} text_buffer;

static void append(text_buffer *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->size + n + 1 > b->capacity) {
        size_t grown = b->capacity ? b->capacity : 256;
        while (grown < b->size + n + 1) grown *= 2;
        char *bigger = realloc(b->data, grown);
        if (!bigger) {
            b->failed = true;
            return;
        }
        b->data = bigger;
        b->capacity = grown;
    }
    memcpy(b->data + b->size, s, n);
    b->size += n;
    b->data[b->size] = '\0';
}

static void append_text(text_buffer *b, const char *s) { append(b, s, strlen(s)); }

static void append_u64(text_buffer *b, uint64_t v) {
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    append(b, digits, (size_t)n);
}

/* A JSON string escaped as serde_json escapes it: quote, backslash and the
 * short forms \b \t \n \f \r, other control bytes as \u00xx, the rest as is. */
static void append_json_string(text_buffer *b, const char *s) {
    append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"': append(b, "\\\"", 2); break;
        case '\\': append(b, "\\\\", 2); break;
        case '\b': append(b, "\\b", 2); break;
        case '\t': append(b, "\\t", 2); break;
        case '\n': append(b, "\\n", 2); break;
        case '\f': append(b, "\\f", 2); break;
        case '\r': append(b, "\\r", 2); break;
        default:
            if (*p < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *p);
                append(b, esc, 6);
            } else {
                append(b, (const char *)p, 1);
            }
        }
    }
    append(b, "\"", 1);
}

typedef struct sort_context {
    const mlxe_safetensors_write_tensor *tensors;
} sort_context;

static int compare_write_order(const void *a, const void *b, void *context) {
    const mlxe_safetensors_write_tensor *t = ((const sort_context *)context)->tensors;
    const mlxe_safetensors_write_tensor *x = &t[*(const size_t *)a], *y = &t[*(const size_t *)b];
    int rx = reference_rank(x->dtype), ry = reference_rank(y->dtype);
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int compare_names(const void *a, const void *b, void *context) {
    const mlxe_safetensors_write_tensor *t = ((const sort_context *)context)->tensors;
    return strcmp(t[*(const size_t *)a].name, t[*(const size_t *)b].name);
}

/* The planned file: tensors in write order with their byte sizes, and the
 * padded header. */
typedef struct write_plan {
    size_t *order;
    uint64_t *n_bytes; /* indexed like the caller's array */
    text_buffer header;
    uint64_t data_size;
} write_plan;

static void plan_free(write_plan *plan) {
    free(plan->order);
    free(plan->n_bytes);
    free(plan->header.data);
    memset(plan, 0, sizeof *plan);
}

static bool valid_utf8(const char *s) {
    size_t n = strlen(s);
    return mlxe_utf8_invalid_at((const unsigned char *)s, n) == n;
}

static mlxe_status check_tensor(const mlxe_safetensors_write_tensor *t, size_t index,
                                uint64_t *n_bytes, mlxe_error *err) {
    if (!t->name)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "safetensors writer: tensor %zu has no name", index);
    if (strcmp(t->name, "__metadata__") == 0 || !valid_utf8(t->name))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "safetensors writer: '%s' cannot be a tensor name (reserved or not UTF-8)", t->name);
    if (reference_rank(t->dtype) < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "safetensors writer: tensor '%s' has no valid dtype", t->name);
    if (t->n_dims < 0 || t->n_dims > MLXE_MAX_DIMS)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "safetensors writer: tensor '%s' has %d dimensions (0 to %d allowed)",
                              t->name, t->n_dims, MLXE_MAX_DIMS);
    uint64_t elements = 1;
    for (int d = 0; d < t->n_dims; d++) {
        if (t->shape[d] < 0)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "safetensors writer: tensor '%s' has a negative size in dimension %d",
                                  t->name, d);
        uint64_t s = (uint64_t)t->shape[d];
        if (s && elements > (UINT64_MAX / 16) / s)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "safetensors writer: tensor '%s' is too large", t->name);
        elements *= s;
    }
    *n_bytes = elements * mlxe_dtype_size(t->dtype);
    if (*n_bytes && !t->data)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "safetensors writer: tensor '%s' has no data", t->name);
    return MLXE_OK;
}

static mlxe_status make_plan(const mlxe_safetensors_write_tensor *tensors, size_t n_tensors,
                             const mlxe_safetensors_metadata_entry *metadata, size_t n_metadata,
                             write_plan *plan, mlxe_error *err) {
    memset(plan, 0, sizeof *plan);
    if ((n_tensors && !tensors) || (n_metadata && !metadata))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "safetensors writer: NULL array");
    for (size_t i = 0; i < n_metadata; i++) {
        if (!metadata[i].key || !metadata[i].value || !valid_utf8(metadata[i].key) ||
            !valid_utf8(metadata[i].value))
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "safetensors writer: metadata entry %zu needs a UTF-8 key and value", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(metadata[i].key, metadata[j].key) == 0)
                return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                      "safetensors writer: metadata key '%s' given twice", metadata[i].key);
    }
    mlxe_status status = MLXE_OK;
    size_t count = n_tensors ? n_tensors : 1;
    plan->order = calloc(count, sizeof *plan->order);
    plan->n_bytes = calloc(count, sizeof *plan->n_bytes);
    if (!plan->order || !plan->n_bytes) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_tensors; i++) {
        status = check_tensor(&tensors[i], i, &plan->n_bytes[i], err);
        if (status != MLXE_OK) goto fail;
        plan->order[i] = i;
    }
    sort_context context = {tensors};
    qsort_r(plan->order, n_tensors, sizeof *plan->order, compare_names, &context);
    for (size_t i = 1; i < n_tensors; i++) {
        if (strcmp(tensors[plan->order[i - 1]].name, tensors[plan->order[i]].name) == 0) {
            status = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                    "safetensors writer: tensor '%s' given twice",
                                    tensors[plan->order[i]].name);
            goto fail;
        }
    }
    qsort_r(plan->order, n_tensors, sizeof *plan->order, compare_write_order, &context);

    text_buffer *h = &plan->header;
    append_text(h, "{");
    bool first = true;
    if (n_metadata) {
        append_text(h, "\"__metadata__\":{");
        for (size_t i = 0; i < n_metadata; i++) {
            if (i) append_text(h, ",");
            append_json_string(h, metadata[i].key);
            append_text(h, ":");
            append_json_string(h, metadata[i].value);
        }
        append_text(h, "}");
        first = false;
    }
    uint64_t offset = 0;
    for (size_t k = 0; k < n_tensors; k++) {
        const mlxe_safetensors_write_tensor *t = &tensors[plan->order[k]];
        if (!first) append_text(h, ",");
        first = false;
        append_json_string(h, t->name);
        append_text(h, ":{\"dtype\":\"");
        append_text(h, mlxe_dtype_name(t->dtype));
        append_text(h, "\",\"shape\":[");
        for (int d = 0; d < t->n_dims; d++) {
            if (d) append_text(h, ",");
            append_u64(h, (uint64_t)t->shape[d]);
        }
        append_text(h, "],\"data_offsets\":[");
        append_u64(h, offset);
        append_text(h, ",");
        uint64_t n = plan->n_bytes[plan->order[k]];
        if (n > UINT64_MAX - offset) {
            status = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "safetensors writer: tensors too large");
            goto fail;
        }
        offset += n;
        append_u64(h, offset);
        append_text(h, "]}");
    }
    append_text(h, "}");
    /* Pad so the data area starts 8-byte aligned, as the reference does. */
    while (!h->failed && h->size % 8 != 0) append_text(h, " ");
    if (h->failed) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "safetensors writer: out of memory");
        goto fail;
    }
    if (h->size > MLXE_SAFETENSORS_MAX_HEADER) {
        status = mlxe_error_set(err, MLXE_ERR_LIMIT,
                                "safetensors writer: the header would be %zu bytes, more than the "
                                "%u readers accept; split the tensors over several files",
                                h->size, MLXE_SAFETENSORS_MAX_HEADER);
        goto fail;
    }
    plan->data_size = offset;
    return MLXE_OK;
fail:
    plan_free(plan);
    return status;
}

static void put_le64(unsigned char *out, uint64_t v) {
    for (int i = 0; i < 8; i++) out[i] = (unsigned char)(v >> (8 * i));
}

mlxe_status mlxe_safetensors_serialize(const mlxe_safetensors_write_tensor *tensors,
                                       size_t n_tensors,
                                       const mlxe_safetensors_metadata_entry *metadata,
                                       size_t n_metadata, unsigned char **out, size_t *size,
                                       mlxe_error *err) {
    if (!out || !size)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_safetensors_serialize: out or size is NULL");
    *out = NULL;
    *size = 0;
    write_plan plan;
    mlxe_status status = make_plan(tensors, n_tensors, metadata, n_metadata, &plan, err);
    if (status != MLXE_OK) return status;
    uint64_t total = 8 + (uint64_t)plan.header.size + plan.data_size;
    unsigned char *buffer = total <= SIZE_MAX ? malloc((size_t)total) : NULL;
    if (!buffer) {
        plan_free(&plan);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY,
                              "safetensors writer: out of memory for %" PRIu64 " bytes", total);
    }
    put_le64(buffer, plan.header.size);
    memcpy(buffer + 8, plan.header.data, plan.header.size);
    size_t at = 8 + plan.header.size;
    for (size_t k = 0; k < n_tensors; k++) {
        size_t i = plan.order[k];
        if (plan.n_bytes[i]) memcpy(buffer + at, tensors[i].data, (size_t)plan.n_bytes[i]);
        at += (size_t)plan.n_bytes[i];
    }
    plan_free(&plan);
    *out = buffer;
    *size = (size_t)total;
    return MLXE_OK;
}

static bool write_all(int fd, const void *data, uint64_t size) {
    const unsigned char *p = data;
    while (size > 0) {
        size_t chunk = size > (1u << 30) ? (1u << 30) : (size_t)size;
        ssize_t n = write(fd, p, chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        size -= (uint64_t)n;
    }
    return true;
}

mlxe_status mlxe_safetensors_write(const char *path, const mlxe_safetensors_write_tensor *tensors,
                                   size_t n_tensors,
                                   const mlxe_safetensors_metadata_entry *metadata,
                                   size_t n_metadata, mlxe_error *err) {
    if (!path) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_safetensors_write: path is NULL");
    write_plan plan;
    mlxe_status status = make_plan(tensors, n_tensors, metadata, n_metadata, &plan, err);
    if (status != MLXE_OK) return status;
    size_t path_len = strlen(path);
    char *temp = malloc(path_len + 16);
    if (!temp) {
        plan_free(&plan);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    snprintf(temp, path_len + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(temp);
    if (fd < 0) {
        int e = errno;
        free(temp);
        plan_free(&plan);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot create a temporary file next to it: %s",
                              path, strerror(e));
    }
    unsigned char length[8];
    put_le64(length, plan.header.size);
    bool ok = fchmod(fd, 0644) == 0 && write_all(fd, length, 8) &&
              write_all(fd, plan.header.data, plan.header.size);
    for (size_t k = 0; ok && k < n_tensors; k++) {
        size_t i = plan.order[k];
        if (plan.n_bytes[i]) ok = write_all(fd, tensors[i].data, plan.n_bytes[i]);
    }
    if (ok) ok = fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (ok && rename(temp, path) != 0) {
        ok = false;
        e = errno;
    }
    if (!ok) {
        unlink(temp);
        status = mlxe_error_set(err, MLXE_ERR_IO, "%s: writing failed: %s (disk full?)", path, strerror(e));
    }
    free(temp);
    plan_free(&plan);
    return status;
}
