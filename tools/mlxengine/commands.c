/* tools/mlxengine/commands.c — the table of subcommands (one line each). */
#include "mlxengine/commands.h"

#include <stddef.h>

const tool_command tool_commands[] = {
    {"version", "print the version and build facts", cmd_version},
    {"tokenize", "encode text to token ids with a model's tokenizer", cmd_tokenize},
    {"detokenize", "decode token ids to text with a model's tokenizer", cmd_detokenize},
    {NULL, NULL, NULL},
};
