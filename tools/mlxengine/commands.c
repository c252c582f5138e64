/* tools/mlxengine/commands.c — the table of subcommands (one line each). */
#include "mlxengine/commands.h"

#include <stddef.h>

const tool_command tool_commands[] = {
    {"version", "print the version and build facts", cmd_version},
    {"debug", "debug report, cached models, cache clean-up, log export", cmd_debug},
    {"pull", "download a model into the Hugging Face cache", cmd_pull},
    {"search", "search models on the Hugging Face Hub", cmd_search},
    {"list", "list the models in the cache (or --registry aliases)", cmd_list},
    {"show", "show a model's config, files, template and memory needs", cmd_show},
    {"rm", "delete a model or one revision from the cache", cmd_rm},
    {"du", "disk use of the model cache", cmd_du},
    {"generate", "generate token ids from prompt ids with a model folder", cmd_generate},
    {"logits", "print the top-10 next-token logits for prompt ids", cmd_logits},
    {"convert", "write an MLX model folder from a HF/MLX one (quantize, dequantize, change dtype)", cmd_convert},
    {"bench", "prefill and decode tokens/s and peak RSS of a model folder (random prompt ids)", cmd_bench},
    {NULL, NULL, NULL},
};
