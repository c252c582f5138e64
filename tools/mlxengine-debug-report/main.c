/* tools/mlxengine-debug-report/main.c — `mlxengine-debug-report`, the
 * program users are asked to run when something goes wrong. Logging goes to
 * standard error at warn (MLXE_LOG changes it), so standard output carries
 * only the report or the listing. */
#include <stdio.h>

#include "mlxengine-debug-report/debug_cli.h"
#include "mlxengine/mlxengine.h"

int main(int argc, char **argv) {
    mlxe_log_set_level_all(MLXE_LOG_WARN);
    mlxe_error err;
    if (mlxe_log_configure_from_env(&err) != MLXE_OK) {
        fprintf(stderr, "mlxengine-debug-report: %s\n", err.message);
        return 2;
    }
    mlxe_log_set_stderr(true);
    debug_cli_setup();
    return debug_cli_main("mlxengine-debug-report", argc, argv);
}
