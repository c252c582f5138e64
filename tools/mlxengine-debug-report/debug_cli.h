/* tools/mlxengine-debug-report/debug_cli.h — the subcommands of
 * `mlxengine-debug-report`, shared with `mlxengine debug` (both programs
 * link these files, so the two spellings behave the same).
 *
 * Results go to standard output, messages to standard error. Exit codes:
 * 0 success, 1 failure, 2 bad usage. */
#ifndef MLXE_TOOL_DEBUG_CLI_H
#define MLXE_TOOL_DEBUG_CLI_H

/* Runs one subcommand: argv[0] is the program's name as the user typed it
 * ("mlxengine-debug-report" or "mlxengine debug", for messages), argv[1..]
 * the subcommand and its options; no subcommand means `report`. */
int debug_cli_main(const char *program, int argc, char **argv);

/* Sets up what every command of both programs needs (mlxengine's main calls
 * it before any command, so `mlxengine pull` keeps its log too): the log to
 * standard error at warn unless MLXE_LOG says otherwise, redaction of
 * secrets, and MLXE_LOG_FILE (when set) as a log file that `export-log`
 * reads later. Returns 0, or 2 (bad usage) after printing why MLXE_LOG is
 * wrong. */
int debug_cli_start(const char *program);

/* The subcommands (argv[0] = the subcommand's name). */
int debug_cli_report(const char *program, int argc, char **argv);
int debug_cli_list_models(const char *program, int argc, char **argv);
int debug_cli_show_model_info(const char *program, int argc, char **argv);
int debug_cli_cleanup_cache(const char *program, int argc, char **argv);
int debug_cli_export_log(const char *program, int argc, char **argv);
int debug_cli_list_remote_models(const char *program, int argc, char **argv);
int debug_cli_download_model(const char *program, int argc, char **argv);

/* "1.5 GiB" into out. */
void debug_cli_format_bytes(unsigned long long bytes, char *out, unsigned long size);

#endif
