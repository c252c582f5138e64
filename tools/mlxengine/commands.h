/* tools/mlxengine/commands.h — the subcommands of the mlxengine tool.
 *
 * Each command lives in its own cmd_<name>.c and is listed once in
 * commands.c. A command gets argv with argv[0] = its name and returns the
 * process exit code: 0 success, 1 failure, 2 bad usage. */
#ifndef MLXE_TOOL_COMMANDS_H
#define MLXE_TOOL_COMMANDS_H

typedef struct tool_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} tool_command;

/* The table, ended by an entry with a NULL name. */
extern const tool_command tool_commands[];

int cmd_version(int argc, char **argv);
int cmd_debug(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_du(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
