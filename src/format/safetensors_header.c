/* format/safetensors_header.c — the validating safetensors header parser.
 *
 * Layout (huggingface/safetensors, README "Format" and
 * safetensors/src/tensor.rs): an 8-byte little-endian header length N, N
 * bytes of UTF-8 JSON mapping each tensor name to {dtype, shape,
 * data_offsets: [begin, end]} (offsets relative to the data area that
 * follows the header) plus an optional "__metadata__" string map, then the
 * data area. Like the reference reader we require the tensors, sorted by
 * offset, to cover the data area exactly: no overlap, no gap, nothing after
 * the last tensor. Every check names the file and, where there is one, the
 * tensor, and says what to do. */
#include "format/safetensors_header.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

/* Integers in the header are JSON numbers; cJSON holds them as doubles, which
 * are exact up to 2^53. Larger values cannot be trusted. */
#define MAX_EXACT_INTEGER 9007199254740992.0

#define REDOWNLOAD "truncated or damaged download? download the file again"

/* Scratch data for one tensor entry while the header is being checked. */
typedef struct pending_tensor {
    const char *name; /* borrowed from the cJSON tree */
    mlxe_dtype dtype;
    int n_dims;
    int64_t shape[MLXE_MAX_DIMS];
    uint64_t n_elements;
    uint64_t begin, end;
} pending_tensor;

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t mlxe_utf8_invalid_at(const unsigned char *s, size_t size) {
    size_t i = 0;
    while (i < size) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        uint32_t min;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { need = 1; min = 0x80; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; min = 0x800; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; min = 0x10000; cp = c & 0x07; }
        else return i;
        if (size - i <= need) return i;
        for (size_t k = 1; k <= need; k++) {
            unsigned char cc = s[i + k];
            if ((cc & 0xC0) != 0x80) return i;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
        i += need + 1;
    }
    return size;
}

static const char *json_type_name(const cJSON *item) {
    if (cJSON_IsObject(item)) return "object";
    if (cJSON_IsArray(item)) return "array";
    if (cJSON_IsString(item)) return "string";
    if (cJSON_IsNumber(item)) return "number";
    if (cJSON_IsBool(item)) return "boolean";
    if (cJSON_IsNull(item)) return "null";
    return "value";
}

/* A non-negative integer that a double represents exactly. */
static bool json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!isfinite(v) || v < 0 || v != floor(v) || v >= MAX_EXACT_INTEGER) return false;
    *out = (uint64_t)v;
    return true;
}

/* Formats a shape as "[a, b, c]" into buf. */
static const char *shape_text(const int64_t *shape, int n_dims, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* Dtypes the safetensors format defines that we do not handle. */
static bool is_known_unsupported_dtype(const char *name) {
    static const char *const names[] = {"F8_E5M2", "F8_E4M3", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                        "F4", "C64"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return true;
    return false;
}

static mlxe_status parse_metadata(const cJSON *meta, const char *what, mlxe_safetensors_header *out,
                                  mlxe_error *err) {
    if (cJSON_IsNull(meta)) return MLXE_OK;
    if (!cJSON_IsObject(meta))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: '__metadata__' is a JSON %s but must be an object of strings "
                              "(the file is damaged or was written by a non-conforming tool)",
                              what, json_type_name(meta));
    size_t n = (size_t)cJSON_GetArraySize(meta);
    if (n == 0) return MLXE_OK;
    out->metadata_keys = calloc(n, sizeof *out->metadata_keys);
    out->metadata_values = calloc(n, sizeof *out->metadata_values);
    if (!out->metadata_keys || !out->metadata_values)
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory reading metadata", what);
    const cJSON *item;
    cJSON_ArrayForEach(item, meta) {
        if (!cJSON_IsString(item))
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: '__metadata__' key '%s' is a JSON %s but must be a string "
                                  "(the file is damaged or was written by a non-conforming tool)",
                                  what, item->string, json_type_name(item));
        char *key = strdup(item->string);
        char *value = strdup(item->valuestring);
        if (!key || !value) {
            free(key);
            free(value);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory reading metadata",
                                  what);
        }
        out->metadata_keys[out->n_metadata] = key;
        out->metadata_values[out->n_metadata] = value;
        out->n_metadata++;
    }
    return MLXE_OK;
}

/* Checks one tensor entry and fills *t (name still borrowed from the tree). */
static mlxe_status parse_entry(const cJSON *entry, const char *what, uint64_t data_size,
                               pending_tensor *t, mlxe_error *err) {
    const char *name = entry->string;
    t->name = name;
    if (!cJSON_IsObject(entry))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' is described by a JSON %s, not an object with "
                              "dtype, shape and data_offsets (%s)",
                              what, name, json_type_name(entry), REDOWNLOAD);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: tensor '%s' has %s dtype; it must be a string such as \"BF16\" (%s)",
                              what, name, dtype ? "a non-string" : "no", REDOWNLOAD);
    t->dtype = mlxe_dtype_from_name(dtype->valuestring);
    /* Only the safetensors spelling is valid in a header ("F32", not "float32"). */
    if (t->dtype != MLXE_DTYPE_UNKNOWN && strcmp(mlxe_dtype_name(t->dtype), dtype->valuestring) != 0)
        t->dtype = MLXE_DTYPE_UNKNOWN;
    if (t->dtype == MLXE_DTYPE_UNKNOWN) {
        bool unsupported = is_known_unsupported_dtype(dtype->valuestring);
        return mlxe_error_set(err, unsupported ? MLXE_ERR_UNSUPPORTED : MLXE_ERR_FORMAT,
                              "%s: tensor '%s' has dtype '%s', which %s (known: F32, F16, BF16, "
                              "F64, I64, I32, I16, I8, U64, U32, U16, U8, BOOL)",
                              what, name, dtype->valuestring,
                              unsupported ? "mlxengine does not support yet"
                                          : "is not a safetensors dtype");
    }
    if (!cJSON_IsArray(shape))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' has %s shape; it must be an array of sizes (%s)", what,
                              name, shape ? "a non-array" : "no", REDOWNLOAD);
    int n_dims = cJSON_GetArraySize(shape);
    if (n_dims > MLXE_MAX_DIMS)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: tensor '%s' has %d dimensions; mlxengine handles at most %d", what,
                              name, n_dims, MLXE_MAX_DIMS);
    t->n_dims = n_dims;
    uint64_t n_elements = 1;
    bool overflow = false;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t size;
        if (!json_to_u64(dim, &size) || size > (uint64_t)INT64_MAX)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: tensor '%s' has shape entry %d that is not a non-negative "
                                  "integer (%s)",
                                  what, name, d, REDOWNLOAD);
        t->shape[d++] = (int64_t)size;
        if (size != 0 && n_elements > UINT64_MAX / size) overflow = true;
        else n_elements *= size;
    }
    size_t element_size = mlxe_dtype_size(t->dtype);
    char shape_buf[256];
    if (!overflow && n_elements > (uint64_t)INT64_MAX / element_size) overflow = true;
    if (overflow)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' has shape %s whose byte size overflows 64 bits (%s)",
                              what, name, shape_text(t->shape, n_dims, shape_buf, sizeof shape_buf),
                              REDOWNLOAD);
    t->n_elements = n_elements;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_to_u64(cJSON_GetArrayItem(offsets, 0), &t->begin) ||
        !json_to_u64(cJSON_GetArrayItem(offsets, 1), &t->end))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' needs data_offsets as [begin, end], two "
                              "non-negative integers (%s)",
                              what, name, REDOWNLOAD);
    if (t->begin > t->end)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' has data_offsets [%" PRIu64 ", %" PRIu64
                              "] that end before they begin (%s)",
                              what, name, t->begin, t->end, REDOWNLOAD);
    if (t->end > data_size)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' ends at byte %" PRIu64
                              " but the file's data area has %" PRIu64 " bytes (%s)",
                              what, name, t->end, data_size, REDOWNLOAD);
    uint64_t n_bytes = n_elements * element_size;
    if (t->end - t->begin != n_bytes)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: tensor '%s' is %s with shape %s, which needs %" PRIu64
                              " bytes, but its data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                              " bytes (%s)",
                              what, name, mlxe_dtype_name(t->dtype),
                              shape_text(t->shape, n_dims, shape_buf, sizeof shape_buf), n_bytes,
                              t->begin, t->end, t->end - t->begin, REDOWNLOAD);
    return MLXE_OK;
}

static int compare_by_offset(const void *a, const void *b) {
    const pending_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int compare_by_name(const void *a, const void *b, void *context) {
    const mlxe_tensor_info *tensors = context;
    return strcmp(tensors[*(const size_t *)a].name, tensors[*(const size_t *)b].name);
}

/* Checks that the tensors (sorted by offset) tile the data area exactly. */
static mlxe_status check_layout(const pending_tensor *p, size_t n, const char *what,
                                uint64_t data_size, mlxe_error *err) {
    uint64_t covered = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i].begin < covered)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' [%" PRIu64
                                  ", %" PRIu64 ") overlap in the data area (%s)",
                                  what, p[i - 1].name, p[i - 1].begin, p[i - 1].end, p[i].name,
                                  p[i].begin, p[i].end, REDOWNLOAD);
        if (p[i].begin > covered)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: tensor '%s' starts at data byte %" PRIu64
                                  " but the bytes before it end at %" PRIu64
                                  "; safetensors data must be contiguous (%s)",
                                  what, p[i].name, p[i].begin, covered, REDOWNLOAD);
        covered = p[i].end;
    }
    if (covered != data_size)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the data area has %" PRIu64 " bytes but the tensors cover only %" PRIu64
                              "; the file has extra bytes at its end (damaged file? download it again)",
                              what, data_size, covered);
    return MLXE_OK;
}

mlxe_status mlxe_safetensors_parse_header(const unsigned char *buffer, size_t size,
                                          const char *what, mlxe_safetensors_header *out,
                                          mlxe_error *err) {
    memset(out, 0, sizeof *out);
    if (size < 8)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the file has %zu bytes, too few for safetensors (which starts "
                              "with an 8-byte header length); %s",
                              what, size, REDOWNLOAD);
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | buffer[i];
    if (header_len < 2)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the header length is %" PRIu64
                              " bytes, too small for a JSON header (the file is not safetensors or is damaged)",
                              what, header_len);
    if (header_len > MLXE_SAFETENSORS_MAX_HEADER)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the header length is %" PRIu64
                              " bytes, more than the %u allowed (the file is not safetensors or is damaged)",
                              what, header_len, MLXE_SAFETENSORS_MAX_HEADER);
    if (header_len > size - 8)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the header length is %" PRIu64 " bytes but the file has only %zu "
                              "bytes after the length field (%s)",
                              what, header_len, size - 8, REDOWNLOAD);
    const char *text = (const char *)buffer + 8;
    size_t text_len = (size_t)header_len;
    size_t bad = mlxe_utf8_invalid_at((const unsigned char *)text, text_len);
    if (bad != text_len)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the header is not valid UTF-8 (at header byte %zu); %s", what,
                              bad, REDOWNLOAD);

    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, text_len, &parse_end, 0);
    if (!root) {
        if (!parse_end)
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory parsing the header", what);
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the header is not valid JSON (error near header byte %zu); %s",
                              what, (size_t)(parse_end - text), REDOWNLOAD);
    }
    /* The reference writer pads the header with spaces; anything else after
     * the JSON value is an error, as in the reference reader. */
    for (const char *p = parse_end; p < text + text_len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            cJSON_Delete(root);
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: the header has unexpected bytes after its JSON (at header "
                                  "byte %zu); %s",
                                  what, (size_t)(p - text), REDOWNLOAD);
        }
    }
    if (!cJSON_IsObject(root)) {
        mlxe_status s = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                       "%s: the header is a JSON %s, not an object; %s", what,
                                       json_type_name(root), REDOWNLOAD);
        cJSON_Delete(root);
        return s;
    }

    mlxe_status status = MLXE_OK;
    pending_tensor *pending = NULL;
    size_t n_entries = (size_t)cJSON_GetArraySize(root);
    uint64_t data_size = (uint64_t)(size - 8 - text_len);
    size_t n = 0, name_bytes = 0;
    bool seen_metadata = false;
    if (n_entries) {
        pending = calloc(n_entries, sizeof *pending);
        if (!pending) {
            status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory reading the header", what);
            goto done;
        }
    }
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (strcmp(entry->string, "__metadata__") == 0) {
            if (seen_metadata) {
                status = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: the header has two '__metadata__' keys; %s",
                                        what, REDOWNLOAD);
                goto done;
            }
            seen_metadata = true;
            status = parse_metadata(entry, what, out, err);
            if (status != MLXE_OK) goto done;
            continue;
        }
        status = parse_entry(entry, what, data_size, &pending[n], err);
        if (status != MLXE_OK) goto done;
        name_bytes += strlen(entry->string) + 1;
        n++;
    }
    if (n > 1) qsort(pending, n, sizeof *pending, compare_by_offset);
    status = check_layout(pending, n, what, data_size, err);
    if (status != MLXE_OK) goto done;

    if (n) {
        out->tensors = calloc(n, sizeof *out->tensors);
        out->by_name = calloc(n, sizeof *out->by_name);
        out->strings = malloc(name_bytes);
        if (!out->tensors || !out->by_name || !out->strings) {
            status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory reading the header", what);
            goto done;
        }
    }
    char *cursor = out->strings;
    size_t data_start = 8 + text_len;
    for (size_t i = 0; i < n; i++) {
        mlxe_tensor_info *t = &out->tensors[i];
        size_t len = strlen(pending[i].name) + 1;
        memcpy(cursor, pending[i].name, len);
        t->name = cursor;
        cursor += len;
        t->dtype = pending[i].dtype;
        t->n_dims = pending[i].n_dims;
        memcpy(t->shape, pending[i].shape, sizeof t->shape);
        t->n_elements = (int64_t)pending[i].n_elements;
        t->n_bytes = (size_t)(pending[i].end - pending[i].begin);
        t->data = t->n_bytes ? buffer + data_start + pending[i].begin : NULL;
        t->aligned = (uintptr_t)t->data % mlxe_dtype_size(t->dtype) == 0;
        t->file = what;
        out->by_name[i] = i;
    }
    out->n_tensors = n;
    if (n > 1) qsort_r(out->by_name, n, sizeof *out->by_name, compare_by_name, out->tensors);
    for (size_t i = 1; i < n; i++) {
        const char *a = out->tensors[out->by_name[i - 1]].name;
        const char *b = out->tensors[out->by_name[i]].name;
        if (strcmp(a, b) == 0) {
            status = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                    "%s: tensor '%s' appears twice in the header; names must be unique (%s)",
                                    what, a, REDOWNLOAD);
            goto done;
        }
    }
    out->data_start = data_start;
    out->data_size = (size_t)data_size;

done:
    free(pending);
    cJSON_Delete(root);
    if (status != MLXE_OK) mlxe_safetensors_header_free(out);
    return status;
}

size_t mlxe_safetensors_header_find(const mlxe_safetensors_header *header, const char *name) {
    size_t lo = 0, hi = header->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        size_t index = header->by_name[mid];
        int c = strcmp(header->tensors[index].name, name);
        if (c == 0) return index;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return SIZE_MAX;
}

void mlxe_safetensors_header_free(mlxe_safetensors_header *header) {
    if (!header) return;
    for (size_t i = 0; i < header->n_metadata; i++) {
        free(header->metadata_keys[i]);
        free(header->metadata_values[i]);
    }
    free(header->metadata_keys);
    free(header->metadata_values);
    free(header->tensors);
    free(header->by_name);
    free(header->strings);
    memset(header, 0, sizeof *header);
}
