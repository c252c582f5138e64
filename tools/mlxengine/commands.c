/* tools/mlxengine/commands.c — the table of subcommands (one line each). */
#include "mlxengine/commands.h"

#include <stddef.h>

const tool_command tool_commands[] = {
    {"version", "print the version and build facts", cmd_version},
    {"template", "print the prompt a model's chat template renders", cmd_template},
    {NULL, NULL, NULL},
};
