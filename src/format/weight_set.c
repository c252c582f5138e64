/* format/weight_set.c — all the safetensors files of a model folder seen as
 * one set of uniquely named tensors.
 *
 * Which files: model.safetensors when present (what transformers tries
 * first); else the shards named by model.safetensors.index.json, whose
 * weight_map must agree with the shards' contents; else, as mlx-lm does
 * (mlx_lm/utils.py globs "model*.safetensors"), the model*.safetensors
 * files, or failing those every *.safetensors file, in name order. */
#include "format/safetensors.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log_internal.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
/* An index for thousands of tensors is a few hundred KB; refuse silly sizes. */
#define MAX_INDEX_BYTES (64u * 1024u * 1024u)

struct mlxe_weight_set {
    char *dir;
    bool in_memory; /* files copied into huge-page memory instead of mapped */
    mlxe_safetensors_file **files;
    size_t n_files;
    const mlxe_tensor_info **tensors; /* file by file, each in offset order */
    size_t n_tensors;
    const mlxe_tensor_info **by_name; /* the same, sorted by name */
    size_t total_bytes;
};

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_tensor_names(const void *a, const void *b) {
    const mlxe_tensor_info *x = *(const mlxe_tensor_info *const *)a;
    const mlxe_tensor_info *y = *(const mlxe_tensor_info *const *)b;
    return strcmp(x->name, y->name);
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Opens dir/name and appends it to set->files (capacity already reserved). */
static mlxe_status open_file(mlxe_weight_set *set, const char *name, mlxe_error *err) {
    char *path = mlxe_path_join(set->dir, name);
    if (!path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", set->dir);
    mlxe_safetensors_file *file = NULL;
    mlxe_status status = set->in_memory ? mlxe_safetensors_open_in_memory(path, &file, err)
                                        : mlxe_safetensors_open(path, &file, err);
    free(path);
    if (status != MLXE_OK) return status;
    set->files[set->n_files++] = file;
    return MLXE_OK;
}

/* Gathers every tensor of every file, sorts by name and rejects names that
 * appear in two files. */
static mlxe_status build_tables(mlxe_weight_set *set, mlxe_error *err) {
    size_t n = 0;
    for (size_t f = 0; f < set->n_files; f++) n += mlxe_safetensors_count(set->files[f]);
    if (n) {
        set->tensors = calloc(n, sizeof *set->tensors);
        set->by_name = calloc(n, sizeof *set->by_name);
        if (!set->tensors || !set->by_name)
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", set->dir);
    }
    for (size_t f = 0; f < set->n_files; f++) {
        size_t count = mlxe_safetensors_count(set->files[f]);
        for (size_t i = 0; i < count; i++) {
            const mlxe_tensor_info *t = mlxe_safetensors_at(set->files[f], i);
            set->tensors[set->n_tensors++] = t;
            set->total_bytes += t->n_bytes;
        }
    }
    if (n) memcpy(set->by_name, set->tensors, n * sizeof *set->tensors);
    if (n > 1) qsort(set->by_name, n, sizeof *set->by_name, compare_tensor_names);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(set->by_name[i - 1]->name, set->by_name[i]->name) == 0)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: tensor '%s' is in both %s and %s; a tensor may be stored only "
                                  "once (remove the stray file, or download the model again)",
                                  set->dir, set->by_name[i]->name, set->by_name[i - 1]->file,
                                  set->by_name[i]->file);
    }
    return MLXE_OK;
}

/* A shard name from the index must be a plain file name in the folder. */
static bool is_plain_file_name(const char *name) {
    return name[0] != '\0' && strchr(name, '/') == NULL && strchr(name, '\\') == NULL &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

static mlxe_status open_indexed(mlxe_weight_set *set, const char *index_path, mlxe_error *err) {
    cJSON *root = NULL;
    const char **shards = NULL;
    mlxe_status status = mlxe_json_parse_file(index_path, MAX_INDEX_BYTES, &root, err);
    if (status != MLXE_OK) return status;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    size_t n_entries = cJSON_IsObject(map) ? (size_t)cJSON_GetArraySize(map) : 0;
    if (!cJSON_IsObject(map) || n_entries == 0) {
        status = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                "%s: %s; download the model again",
                                index_path, cJSON_IsObject(map) ? "'weight_map' lists no tensors"
                                                                 : "no 'weight_map' object");
        goto done;
    }
    shards = calloc(n_entries, sizeof *shards);
    if (!shards) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    size_t n_shards = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, map) {
        if (!cJSON_IsString(entry) || !is_plain_file_name(entry->valuestring)) {
            status = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                    "%s: 'weight_map' entry for tensor '%s' must be the file name "
                                    "of a shard in the same folder",
                                    index_path, entry->string);
            goto done;
        }
        shards[n_shards++] = entry->valuestring;
    }
    qsort(shards, n_shards, sizeof *shards, compare_strings);
    size_t unique = 0;
    for (size_t i = 0; i < n_shards; i++)
        if (unique == 0 || strcmp(shards[unique - 1], shards[i]) != 0) shards[unique++] = shards[i];
    n_shards = unique;

    set->files = calloc(n_shards, sizeof *set->files);
    if (!set->files) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", index_path);
        goto done;
    }
    for (size_t i = 0; i < n_shards; i++) {
        char *path = mlxe_path_join(set->dir, shards[i]);
        bool exists = path && mlxe_file_exists(path);
        free(path);
        if (!exists) {
            status = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                                    "%s lists shard '%s' but %s has no such file (incomplete "
                                    "download? download the model again)",
                                    index_path, shards[i], set->dir);
            goto done;
        }
        status = open_file(set, shards[i], err);
        if (status != MLXE_OK) goto done;
    }
    /* Every tensor the index names must be in the shard it names. */
    cJSON_ArrayForEach(entry, map) {
        const char **slot = bsearch(&entry->valuestring, shards, n_shards, sizeof *shards,
                                    compare_strings);
        const mlxe_safetensors_file *file = set->files[slot - shards];
        if (!mlxe_safetensors_find(file, entry->string)) {
            status = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                    "%s says tensor '%s' is in '%s' but that file has no such "
                                    "tensor (mismatched or partial download? download the model again)",
                                    index_path, entry->string, entry->valuestring);
            goto done;
        }
    }
    status = build_tables(set, err);
    if (status == MLXE_OK && set->n_tensors != n_entries)
        MLXE_WARN(MLXE_LOG_CAT_FORMAT, "%s lists %zu tensors but its shards hold %zu; using them all",
                  index_path, n_entries, set->n_tensors);
done:
    free(shards);
    cJSON_Delete(root);
    return status;
}

/* Lists the *.safetensors files of the folder: model*.safetensors if there
 * are any, else all of them; sorted. */
static mlxe_status open_globbed(mlxe_weight_set *set, mlxe_error *err) {
    DIR *dir = opendir(set->dir);
    if (!dir)
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot list the folder", set->dir);
    char **names = NULL;
    size_t n_names = 0, capacity = 0, n_model = 0;
    mlxe_status status = MLXE_OK;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL) {
        if (d->d_name[0] == '.' || !has_suffix(d->d_name, ".safetensors")) continue;
        if (n_names == capacity) {
            size_t grown = capacity ? capacity * 2 : 8;
            char **bigger = realloc(names, grown * sizeof *names);
            if (!bigger) {
                status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", set->dir);
                goto done;
            }
            names = bigger;
            capacity = grown;
        }
        if (!(names[n_names] = strdup(d->d_name))) {
            status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", set->dir);
            goto done;
        }
        if (strncmp(names[n_names], "model", 5) == 0) n_model++;
        n_names++;
    }
    if (n_names == 0) {
        status = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                                "%s has no " SINGLE_NAME ", no " INDEX_NAME
                                " and no other *.safetensors file; is this a model folder? (download "
                                "the model again, or convert it to safetensors)",
                                set->dir);
        goto done;
    }
    qsort(names, n_names, sizeof *names, compare_strings);
    set->files = calloc(n_names, sizeof *set->files);
    if (!set->files) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", set->dir);
        goto done;
    }
    for (size_t i = 0; i < n_names && status == MLXE_OK; i++) {
        if (n_model && strncmp(names[i], "model", 5) != 0) continue;
        status = open_file(set, names[i], err);
    }
    if (status == MLXE_OK) status = build_tables(set, err);
done:
    for (size_t i = 0; i < n_names; i++) free(names[i]);
    free(names);
    closedir(dir);
    return status;
}

static mlxe_status open_set(const char *dir, bool in_memory, mlxe_weight_set **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_weight_set_open: out is NULL");
    *out = NULL;
    if (!dir) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_weight_set_open: dir is NULL");
    if (!mlxe_dir_exists(dir))
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "%s: no such folder", dir);
    mlxe_weight_set *set = calloc(1, sizeof *set);
    if (!set || !(set->dir = strdup(dir))) {
        free(set);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    }
    set->in_memory = in_memory;
    char *single = mlxe_path_join(dir, SINGLE_NAME);
    char *index = mlxe_path_join(dir, INDEX_NAME);
    mlxe_status status;
    if (!single || !index) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    } else if (mlxe_file_exists(single)) {
        set->files = calloc(1, sizeof *set->files);
        status = set->files ? open_file(set, SINGLE_NAME, err)
                            : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        if (status == MLXE_OK) status = build_tables(set, err);
    } else if (mlxe_file_exists(index)) {
        status = open_indexed(set, index, err);
    } else {
        status = open_globbed(set, err);
    }
    free(single);
    free(index);
    if (status != MLXE_OK) {
        mlxe_weight_set_close(set);
        return status;
    }
    MLXE_DEBUG(MLXE_LOG_CAT_FORMAT, "%s: %zu tensors in %zu files, %zu bytes", dir, set->n_tensors,
               set->n_files, set->total_bytes);
    *out = set;
    return MLXE_OK;
}

mlxe_status mlxe_weight_set_open(const char *dir, mlxe_weight_set **out, mlxe_error *err) {
    return open_set(dir, false, out, err);
}

mlxe_status mlxe_weight_set_open_in_memory(const char *dir, mlxe_weight_set **out, mlxe_error *err) {
    return open_set(dir, true, out, err);
}

void mlxe_weight_set_close(mlxe_weight_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n_files; i++) mlxe_safetensors_close(set->files[i]);
    free(set->files);
    free(set->tensors);
    free(set->by_name);
    free(set->dir);
    free(set);
}

size_t mlxe_weight_set_count(const mlxe_weight_set *set) { return set ? set->n_tensors : 0; }

const mlxe_tensor_info *mlxe_weight_set_at(const mlxe_weight_set *set, size_t index) {
    if (!set || index >= set->n_tensors) return NULL;
    return set->tensors[index];
}

const mlxe_tensor_info *mlxe_weight_set_find(const mlxe_weight_set *set, const char *name) {
    if (!set || !name) return NULL;
    size_t lo = 0, hi = set->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(set->by_name[mid]->name, name);
        if (c == 0) return set->by_name[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

size_t mlxe_weight_set_total_bytes(const mlxe_weight_set *set) { return set ? set->total_bytes : 0; }

bool mlxe_weight_set_in_memory(const mlxe_weight_set *set) { return set && set->in_memory; }

size_t mlxe_weight_set_file_count(const mlxe_weight_set *set) { return set ? set->n_files : 0; }

const mlxe_safetensors_file *mlxe_weight_set_file(const mlxe_weight_set *set, size_t index) {
    if (!set || index >= set->n_files) return NULL;
    return set->files[index];
}

/* "[a, b]" for error messages. */
static void format_shape(char *buf, size_t size, int n_dims, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

mlxe_status mlxe_weight_set_require(const mlxe_weight_set *set, const char *name, int n_dims,
                                    const int64_t *shape, const mlxe_tensor_info **out,
                                    mlxe_error *err) {
    if (out) *out = NULL;
    if (!set || !name || n_dims < 0 || n_dims > MLXE_MAX_DIMS || (n_dims > 0 && !shape))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "mlxe_weight_set_require: invalid arguments");
    const mlxe_tensor_info *t = mlxe_weight_set_find(set, name);
    if (!t)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "missing tensor '%s' in %s (incomplete download, or a model variant "
                              "mlxengine does not know?)",
                              name, set->dir);
    bool same = t->n_dims == n_dims;
    for (int d = 0; same && d < n_dims; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[200], want[200];
        format_shape(have, sizeof have, t->n_dims, t->shape);
        format_shape(want, sizeof want, n_dims, shape);
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "tensor '%s' in %s has shape %s but the config implies %s (config.json "
                              "and the weights disagree: download the model again)",
                              name, t->file, have, want);
    }
    if (out) *out = t;
    return MLXE_OK;
}
