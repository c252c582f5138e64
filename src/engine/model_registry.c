/* engine/model_registry.c — the list of loaded models (model_registry.h). */
#include "engine/model_registry.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

typedef struct entry {
    const mlxe_model *model;
    char *path;
    double loaded_at_unix;
} entry;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;
static size_t n_entries;

mlxe_status mlxe_model_registry_add(const mlxe_model *model, const char *path, mlxe_error *err) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char *copy = strdup(path ? path : "");
    pthread_mutex_lock(&registry_lock);
    entry *grown = copy ? realloc(entries, (n_entries + 1) * sizeof *grown) : NULL;
    if (grown) {
        entries = grown;
        entries[n_entries++] = (entry){model, copy, (double)now.tv_sec + (double)now.tv_nsec * 1e-9};
    }
    pthread_mutex_unlock(&registry_lock);
    if (grown) return MLXE_OK;
    free(copy);
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory recording %s among the loaded models",
                          path ? path : "a model");
}

void mlxe_model_registry_remove(const mlxe_model *model) {
    if (!model) return;
    pthread_mutex_lock(&registry_lock);
    for (size_t i = 0; i < n_entries; i++) {
        if (entries[i].model != model) continue;
        free(entries[i].path);
        memmove(entries + i, entries + i + 1, (n_entries - i - 1) * sizeof *entries);
        n_entries--;
        break;
    }
    if (n_entries == 0) {
        free(entries);
        entries = NULL;
    }
    pthread_mutex_unlock(&registry_lock);
}

size_t mlxe_model_registry_visit(void (*visit)(void *user, const mlxe_loaded_model_info *info), void *user) {
    pthread_mutex_lock(&registry_lock);
    size_t n = n_entries;
    for (size_t i = 0; visit && i < n_entries; i++) {
        const mlxe_model *model = entries[i].model;
        mlxe_loaded_model_info info = {
            .path = entries[i].path,
            .model_type = mlxe_model_type(model),
            .device = mlxe_model_device_name(model),
            .memory_bytes = mlxe_model_memory_bytes(model),
            .loaded_at_unix = entries[i].loaded_at_unix,
            .load_seconds = mlxe_model_load_seconds(model),
        };
        visit(user, &info);
    }
    pthread_mutex_unlock(&registry_lock);
    return n;
}
