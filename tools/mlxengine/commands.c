/* tools/mlxengine/commands.c — the table of subcommands (one line each). */
#include "mlxengine/commands.h"

#include <stddef.h>

const tool_command tool_commands[] = {
    {"version", "print the version and build facts", cmd_version},
    {"generate", "generate token ids from prompt ids with a model folder", cmd_generate},
    {"logits", "print the top-10 next-token logits for prompt ids", cmd_logits},
    {"convert", "write an MLX model folder from a HF/MLX one (quantize, dequantize, change dtype)", cmd_convert},
    {NULL, NULL, NULL},
};
