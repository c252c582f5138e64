/* tools/mlxengine-debug-report/main.c — `mlxengine-debug-report`, the
 * program users are asked to run when something goes wrong. Logging goes to
 * standard error at warn (MLXE_LOG changes it), so standard output carries
 * only the report or the listing. */
#include <stdio.h>

#include "mlxengine-debug-report/debug_cli.h"
#include "mlxengine/mlxengine.h"

int main(int argc, char **argv) {
    int code = debug_cli_start("mlxengine-debug-report");
    if (code != 0) return code;
    return debug_cli_main("mlxengine-debug-report", argc, argv);
}
