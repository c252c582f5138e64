/* models/models.c — the registry of model families, found by model_type. */
#include "models/models.h"

#include <string.h>

const mlxe_model_family *const mlxe_model_families[] = {
    &mlxe_llama_family,
    NULL,
};

const mlxe_model_family *mlxe_model_family_find(const char *model_type) {
    if (!model_type) return NULL;
    for (int f = 0; mlxe_model_families[f]; f++)
        for (const char *const *t = mlxe_model_families[f]->model_types; *t; t++)
            if (strcmp(*t, model_type) == 0) return mlxe_model_families[f];
    return NULL;
}
