/* tools/mlxengine/main.c — dispatches `mlxengine COMMAND ...` to a command.
 * Sets up logging to standard error (level from MLXE_LOG, default warn) so
 * that standard output carries only the command's result, and to
 * MLXE_LOG_FILE when set (debug_cli_start). */
#include <stdio.h>
#include <string.h>

#include "mlxengine-debug-report/debug_cli.h"
#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"

static void print_usage(FILE *out) {
    fprintf(out, "usage: mlxengine COMMAND [OPTIONS]\n\ncommands:\n");
    for (const tool_command *c = tool_commands; c->name; c++)
        fprintf(out, "  %-12s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'mlxengine COMMAND --help' for a command's options.\n"
                 "MLXE_LOG=debug (or e.g. tokenizer=trace,info) shows the library's log.\n");
}

int main(int argc, char **argv) {
    int code = debug_cli_start("mlxengine"); /* also MLXE_LOG_FILE and redaction */
    if (code != 0) return code;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) return cmd_version(argc - 1, argv + 1);
    for (const tool_command *c = tool_commands; c->name; c++)
        if (strcmp(c->name, argv[1]) == 0) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "mlxengine: unknown command '%s'\n\n", argv[1]);
    print_usage(stderr);
    return 2;
}
