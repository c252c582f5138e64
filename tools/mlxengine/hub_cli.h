/* tools/mlxengine/hub_cli.h — what the Hub commands (pull, search, list,
 * show, rm, du) share: making the client from the environment, the
 * registry, the progress display, and size formatting. */
#ifndef MLXE_TOOL_HUB_CLI_H
#define MLXE_TOOL_HUB_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mlxengine/mlxengine.h"

/* Creates the client from the environment; prints the error and returns NULL on failure. */
mlxe_hub *hub_cli_open(const char *command);
/* Loads the registry (built-in + user file); prints and returns NULL on failure. */
mlxe_registry *hub_cli_registry(const char *command);
/* "1.23 GB", "456 MB", "12 KB", "7 B". */
void hub_cli_format_size(uint64_t bytes, char *out, size_t size);
/* A progress callback: a redrawn bar on a terminal, one line per finished file otherwise,
 * nothing with HF_HUB_DISABLE_PROGRESS_BARS. user: a hub_cli_progress. */
typedef struct hub_cli_progress {
    bool tty;
    bool quiet;
    size_t files_reported;
    double last_draw;
} hub_cli_progress;
void hub_cli_progress_init(hub_cli_progress *p);
void hub_cli_on_progress(void *user, const mlxe_hub_progress *progress);
/* Prints a string as a JSON string literal. */
void hub_cli_json_string(FILE *out, const char *s);
/* The quantization and architecture of a snapshot folder from its config.json
 * ("4bit", "llama"); "-" when unknown. */
void hub_cli_describe_folder(const char *folder, char *quant, size_t quant_size, char *arch,
                             size_t arch_size);

#endif
