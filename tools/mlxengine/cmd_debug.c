/* tools/mlxengine/cmd_debug.c — `mlxengine debug ...`: the subcommands of
 * mlxengine-debug-report (tools/mlxengine-debug-report/debug_cli.c), under
 * the main tool's name (main.c has already run debug_cli_start). */
#include "mlxengine-debug-report/debug_cli.h"
#include "mlxengine/commands.h"

int cmd_debug(int argc, char **argv) {
    return debug_cli_main("mlxengine debug", argc, argv);
}
