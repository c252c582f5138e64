/* engine/convert_shard.c — writing the converter's safetensors shards one
 * tensor at a time, and the shard index.
 *
 * The header is known before any tensor is computed (names, types, shapes,
 * offsets come from the plan), so a shard is written front to back: the
 * 8-byte header length, the JSON header padded with spaces to a multiple of
 * 8 (as huggingface/safetensors pads), then each tensor's bytes as they are
 * produced. Only one tensor's output is in memory at a time, so converting a
 * model needs about one tensor of memory, not one shard. */
#include "engine/convert_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"

static cJSON *header_json(convert_tensor **tensors, size_t n_tensors) {
    cJSON *root = cJSON_CreateObject();
    cJSON *metadata = root ? cJSON_AddObjectToObject(root, "__metadata__") : NULL;
    if (!metadata || !cJSON_AddStringToObject(metadata, "format", "mlx")) goto fail;
    for (size_t i = 0; i < n_tensors; i++) {
        const convert_tensor *t = tensors[i];
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON *shape = entry ? cJSON_AddArrayToObject(entry, "shape") : NULL;
        cJSON *offsets = NULL;
        if (!shape || !cJSON_AddStringToObject(entry, "dtype", mlxe_dtype_name(t->dtype))) goto fail;
        for (int d = 0; d < t->n_dims; d++) {
            cJSON *dim = cJSON_CreateNumber((double)t->shape[d]);
            if (!dim || !cJSON_AddItemToArray(shape, dim)) {
                cJSON_Delete(dim);
                goto fail;
            }
        }
        offsets = cJSON_AddArrayToObject(entry, "data_offsets");
        cJSON *begin = cJSON_CreateNumber((double)t->offset);
        cJSON *end = cJSON_CreateNumber((double)(t->offset + t->n_bytes));
        if (!offsets || !begin || !end || !cJSON_AddItemToArray(offsets, begin)) {
            cJSON_Delete(begin);
            cJSON_Delete(end);
            goto fail;
        }
        if (!cJSON_AddItemToArray(offsets, end)) {
            cJSON_Delete(end);
            goto fail;
        }
    }
    return root;
fail:
    cJSON_Delete(root);
    return NULL;
}

static mlxe_status write_all(FILE *f, const void *data, size_t size, const char *path, mlxe_error *err) {
    if (size && fwrite(data, 1, size, f) != size)
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: write failed: %s (disk full?)", path, strerror(errno));
    return MLXE_OK;
}

mlxe_status convert_write_shard(const char *path, convert_tensor **tensors, size_t n_tensors,
                                convert_produce_fn produce, convert_written_fn written, void *ctx,
                                mlxe_error *err) {
    cJSON *header = header_json(tensors, n_tensors);
    char *text = header ? cJSON_PrintUnformatted(header) : NULL;
    cJSON_Delete(header);
    if (!text) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory building the header", path);
    size_t text_len = strlen(text), padded = (text_len + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(text);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    }
    unsigned char length[8];
    for (int i = 0; i < 8; i++) length[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    mlxe_status st = write_all(f, length, 8, path, err);
    if (st == MLXE_OK) st = write_all(f, text, text_len, path, err);
    for (size_t i = text_len; st == MLXE_OK && i < padded; i++) st = write_all(f, " ", 1, path, err);
    free(text);

    for (size_t i = 0; st == MLXE_OK && i < n_tensors; i++) {
        convert_tensor *t = tensors[i];
        void *buffer = malloc(t->n_bytes ? t->n_bytes : 1);
        if (!buffer) {
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory converting '%s' (%zu bytes)", t->name,
                                t->n_bytes);
            break;
        }
        st = produce(ctx, t, buffer, err);
        if (st == MLXE_OK) st = write_all(f, buffer, t->n_bytes, path, err);
        free(buffer);
        if (st == MLXE_OK && written) st = written(ctx, t, err);
    }
    if (fflush(f) != 0 && st == MLXE_OK)
        st = mlxe_error_set(err, MLXE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    if (st == MLXE_OK && fsync(fileno(f)) != 0)
        st = mlxe_error_set(err, MLXE_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && st == MLXE_OK)
        st = mlxe_error_set(err, MLXE_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return st;
}

static int compare_tensor_names(const void *a, const void *b) {
    return strcmp((*(const convert_tensor *const *)a)->name, (*(const convert_tensor *const *)b)->name);
}

static mlxe_status write_text_file(const char *path, const char *text, mlxe_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    size_t len = strlen(text);
    bool ok = fwrite(text, 1, len, f) == len && fwrite("\n", 1, 1, f) == 1;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return mlxe_error_set(err, MLXE_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return MLXE_OK;
}

mlxe_status convert_write_index(const char *dir, convert_tensor *tensors, size_t n_tensors, char **shard_names,
                                uint64_t total_parameters, mlxe_error *err) {
    convert_tensor **sorted = malloc((n_tensors ? n_tensors : 1) * sizeof *sorted);
    cJSON *root = cJSON_CreateObject();
    mlxe_status st = MLXE_OK;
    if (!sorted || !root) {
        st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing the index");
        goto done;
    }
    uint64_t total_size = 0;
    for (size_t i = 0; i < n_tensors; i++) {
        sorted[i] = &tensors[i];
        total_size += tensors[i].n_bytes;
    }
    qsort(sorted, n_tensors, sizeof *sorted, compare_tensor_names);
    cJSON *metadata = cJSON_AddObjectToObject(root, "metadata");
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    bool ok = metadata && map && cJSON_AddNumberToObject(metadata, "total_size", (double)total_size) &&
              cJSON_AddNumberToObject(metadata, "total_parameters", (double)total_parameters);
    for (size_t i = 0; ok && i < n_tensors; i++)
        ok = cJSON_AddStringToObject(map, sorted[i]->name, shard_names[sorted[i]->shard]) != NULL;
    char *text = ok ? cJSON_Print(root) : NULL;
    if (!text) {
        st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing the index");
        goto done;
    }
    char *path = mlxe_path_join(dir, "model.safetensors.index.json");
    st = path ? write_text_file(path, text, err) : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    free(path);
    free(text);
done:
    cJSON_Delete(root);
    free(sorted);
    return st;
}

static int compare_items(const void *a, const void *b) {
    return strcmp((*(cJSON *const *)a)->string, (*(cJSON *const *)b)->string);
}

mlxe_status convert_write_config(const char *dir, cJSON *root, mlxe_error *err) {
    /* mlx-lm's save_config sorts the top-level keys. */
    size_t n = 0;
    for (cJSON *item = root->child; item; item = item->next) n++;
    cJSON **items = malloc((n ? n : 1) * sizeof *items);
    if (!items) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing config.json");
    n = 0;
    while (root->child) items[n++] = cJSON_DetachItemViaPointer(root, root->child);
    qsort(items, n, sizeof *items, compare_items);
    for (size_t i = 0; i < n; i++) cJSON_AddItemToObject(root, items[i]->string, items[i]);
    free(items);
    char *text = cJSON_Print(root);
    char *path = mlxe_path_join(dir, "config.json");
    mlxe_status st = text && path ? write_text_file(path, text, err)
                                  : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing config.json");
    free(text);
    free(path);
    return st;
}
