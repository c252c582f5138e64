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
    {"generate", "generate from prompt ids (ids out) or --prompt text (text out)", cmd_generate},
    {"logits", "print the top-10 next-token logits for prompt ids", cmd_logits},
    {"tokenize", "encode text to token ids with a model's tokenizer", cmd_tokenize},
    {"detokenize", "decode token ids to text with a model's tokenizer", cmd_detokenize},
    {"run", "answer one prompt with a model (folder, alias or Hub id), streamed", cmd_run},
    {"chat", "talk with a model in the terminal (line editing, /help)", cmd_chat},
    {"template", "print the prompt a model's chat template renders", cmd_template},
    {"convert", "write an MLX model folder from a HF/MLX one (quantize, dequantize, change dtype)", cmd_convert},
    {"perplexity", "perplexity of a text file under a model (default: the embedded model)", cmd_perplexity},
    {"bench", "prefill and decode tokens/s and peak RSS of a model folder (random prompt ids)", cmd_bench},
    {NULL, NULL, NULL},
};
