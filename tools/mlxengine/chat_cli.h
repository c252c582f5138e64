/* tools/mlxengine/chat_cli.h — what `run` and `chat` share: naming a model
 * (folder, registry alias or Hub id, resolved through the Hub cache),
 * loading model + tokenizer + chat template into a session, the flags for
 * sampling, context and stops, Ctrl-C as a cancel token, and the stats
 * line printed after each reply. */
#ifndef MLXE_TOOL_CHAT_CLI_H
#define MLXE_TOOL_CHAT_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "mlxengine/mlxengine.h"

#define CHAT_CLI_MAX_STOPS 16

typedef struct chat_cli {
    const char *command;          /* "run", "chat" */
    const char *model_name;       /* as typed */
    char *folder;                 /* resolved */
    mlxe_model *model;
    mlxe_tokenizer *tokenizer;
    mlxe_chat_template *chat_template;
    mlxe_session *session;
    mlxe_session_options session_options;
    mlxe_reply_options reply;
    char *stops[CHAT_CLI_MAX_STOPS];
    int n_stops;
    const char *system;           /* --system */
    int threads;
    const char *device;           /* --device (NULL: the CPU) */
    bool no_stats;
    mlxe_cancel *cancel;          /* requested by SIGINT */
    const char *eos_tokens[CHAT_CLI_MAX_STOPS]; /* --eos TOKEN, mapped to ids at open */
    int n_eos_tokens;
    int32_t eos_ids[CHAT_CLI_MAX_STOPS];
    mlxe_reply_stats last_stats;
    bool have_stats;
} chat_cli;

void chat_cli_init(chat_cli *cli, const char *command);
void chat_cli_free(chat_cli *cli);

/* Parses the common flag at argv[*i] (advancing *i past its value). Returns
 * 1 when it was one, 0 when not, -1 on a bad value (message printed). */
int chat_cli_parse_flag(chat_cli *cli, int argc, char **argv, int *i);
/* Usage text of the common flags. */
void chat_cli_print_flags(FILE *out);

/* Sets a sampling option by name ("temp", "top_p", "top_k", "min_p",
 * "repeat_penalty", "presence_penalty", "frequency_penalty", "seed",
 * "max_tokens", "stop"); false with a message on a bad name or value. */
bool chat_cli_set_option(chat_cli *cli, const char *name, const char *value);
/* Prints the current sampling options. */
void chat_cli_print_options(const chat_cli *cli, FILE *out);

/* Resolves and loads the model and creates the session (with the system
 * message when --system was given); prints the error and returns false on
 * failure. Registry aliases bring their sampling defaults and stop strings
 * unless flags set them. */
bool chat_cli_open(chat_cli *cli);

/* Installs the SIGINT handler that requests cli->cancel (a second Ctrl-C
 * while nothing is running ends the process as usual in `run`). */
void chat_cli_install_sigint(chat_cli *cli);
/* Whether SIGINT arrived since the last call (and forgets it). */
bool chat_cli_take_interrupt(void);

/* Streams one reply to stdout; prints the stats line on stderr unless
 * --no-stats. Returns the library status. */
mlxe_status chat_cli_reply(chat_cli *cli);
void chat_cli_print_stats(const mlxe_reply_stats *stats, FILE *out);

/* Resolves a model name for generate/logits (folder, alias or Hub id);
 * prints the error and returns NULL on failure. malloc'd. */
char *chat_cli_resolve(const char *command, const char *name);

#endif
