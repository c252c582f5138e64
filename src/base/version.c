/* base/version.c — version string and build facts (filled in by CMake). */
#include "mlxengine/version.h"

#include "base/build_config.h"

#define MLXE_STR2(x) #x
#define MLXE_STR(x) MLXE_STR2(x)

const char *mlxe_version_string(void) {
    return MLXE_STR(MLXE_VERSION_MAJOR) "." MLXE_STR(MLXE_VERSION_MINOR) "." MLXE_STR(MLXE_VERSION_PATCH);
}

const mlxe_build_info *mlxe_build_info_get(void) {
    static const mlxe_build_info info = {
        .version = MLXE_STR(MLXE_VERSION_MAJOR) "." MLXE_STR(MLXE_VERSION_MINOR) "." MLXE_STR(MLXE_VERSION_PATCH),
        .git_revision = MLXE_BUILD_GIT_REVISION,
        .compiler = MLXE_BUILD_COMPILER,
        .build_type = MLXE_BUILD_TYPE,
        .cuda_compiled = MLXE_BUILD_CUDA,
        .sanitizers = MLXE_BUILD_SANITIZERS,
    };
    return &info;
}
