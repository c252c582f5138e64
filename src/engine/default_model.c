/* engine/default_model.c — finds the embedded default model's folder
 * (include/mlxengine/default_model.h): environment, source tree, install. */
#include "mlxengine/default_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"

/* CMake passes both; a build without them (another build system) still
 * finds the model through the environment variable. */
#ifndef MLXE_DEFAULT_MODEL_SOURCE_DIR
#define MLXE_DEFAULT_MODEL_SOURCE_DIR ""
#endif
#ifndef MLXE_DEFAULT_MODEL_INSTALL_DIR
#define MLXE_DEFAULT_MODEL_INSTALL_DIR ""
#endif

/* True when dir/config.json is a regular file. */
static int holds_model(const char *dir) {
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/config.json", dir);
    if (n < 0 || (size_t)n >= sizeof path) return 0;
    struct stat info;
    return stat(path, &info) == 0 && S_ISREG(info.st_mode);
}

static mlxe_status copy_path(const char *path, char **out, mlxe_error *err) {
    *out = strdup(path);
    if (!*out) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the default model's path");
    return MLXE_OK;
}

mlxe_status mlxe_default_model_path(mlxe_default_model_variant variant, char **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_default_model_path: out is NULL");
    *out = NULL;
    const char *folder, *env_name;
    switch (variant) {
    case MLXE_DEFAULT_MODEL_BF16:
        folder = "default";
        env_name = "MLXENGINE_DEFAULT_MODEL";
        break;
    case MLXE_DEFAULT_MODEL_4BIT:
        folder = "default-4bit";
        env_name = "MLXENGINE_DEFAULT_MODEL_4BIT";
        break;
    default:
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_default_model_path: unknown variant %d",
                              (int)variant);
    }
    /* The environment wins and is taken as given: a user who names a
     * folder wants that one or a clear error from the loader. */
    const char *env = getenv(env_name);
    if (env && *env) return copy_path(env, out, err);

    const char *roots[2] = {MLXE_DEFAULT_MODEL_SOURCE_DIR, MLXE_DEFAULT_MODEL_INSTALL_DIR};
    char candidates[2][4096];
    for (int i = 0; i < 2; i++) {
        candidates[i][0] = '\0';
        if (!roots[i][0]) continue;
        int n = snprintf(candidates[i], sizeof candidates[i], "%s/%s", roots[i], folder);
        if (n < 0 || (size_t)n >= sizeof candidates[i]) {
            candidates[i][0] = '\0';
            continue;
        }
        if (holds_model(candidates[i])) return copy_path(candidates[i], out, err);
    }
    return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                          "the default model (%s) is not in %s nor %s and %s is not set: install mlxengine "
                          "('cmake --install build'), set %s to a model folder, or name a model",
                          folder, candidates[0][0] ? candidates[0] : "(no source tree)",
                          candidates[1][0] ? candidates[1] : "(no install path)", env_name, env_name);
}
