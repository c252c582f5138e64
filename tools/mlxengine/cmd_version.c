/* tools/mlxengine/cmd_version.c — `mlxengine version`. */
#include <stdio.h>

#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"

int cmd_version(int argc, char **argv) {
    (void)argc;
    (void)argv;
    const mlxe_build_info *info = mlxe_build_info_get();
    printf("mlxengine %s (git %s, %s, %s, CUDA %s, sanitizers %s)\n", info->version,
           info->git_revision, info->compiler, info->build_type, info->cuda_compiled ? "on" : "off",
           info->sanitizers);
    return 0;
}
