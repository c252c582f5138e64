/* tools/mlxengine/commands.c — the table of subcommands (one line each). */
#include "mlxengine/commands.h"

#include <stddef.h>

const tool_command tool_commands[] = {
    {"version", "print the version and build facts", cmd_version},
    {"debug", "debug report, cached models, cache clean-up, log export", cmd_debug},
    {NULL, NULL, NULL},
};
