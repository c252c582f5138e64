/* engine/model_registry.h — the models loaded in this process, for
 * diagnostics (the debug report's "Loaded models" section).
 *
 * mlxe_model_load registers a model once it is ready and mlxe_model_free
 * unregisters it before releasing anything, so a visit never sees a freed
 * model. One mutex guards the list; visits run under it. */
#ifndef MLXE_ENGINE_MODEL_REGISTRY_H
#define MLXE_ENGINE_MODEL_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "mlxengine/model.h"

/* What a visit sees of one loaded model; strings are borrowed for the call. */
typedef struct mlxe_loaded_model_info {
    const char *path;       /* the folder it was loaded from */
    const char *model_type; /* config.json's model_type */
    const char *device;     /* the compute device's name, e.g. "cpu-avx2" */
    size_t memory_bytes;    /* mlxe_model_memory_bytes */
    double loaded_at_unix;  /* when the load finished */
    double load_seconds;
} mlxe_loaded_model_info;

/* Records model (loaded from path). MLXE_ERR_OUT_OF_MEMORY (the load then
 * fails, like any other allocation it makes). */
mlxe_status mlxe_model_registry_add(const mlxe_model *model, const char *path, mlxe_error *err);
/* Forgets model; nothing happens when it was not recorded. */
void mlxe_model_registry_remove(const mlxe_model *model);
/* Calls visit once per loaded model, oldest first, with the registry's lock
 * held (visit must not load or free a model). Returns the count. */
size_t mlxe_model_registry_visit(void (*visit)(void *user, const mlxe_loaded_model_info *info), void *user);

#endif
