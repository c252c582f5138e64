/* tools/mlxengine/cmd_run.c — `mlxengine run MODEL "prompt"`: one reply
 * to one user message, rendered with the model's chat template, streamed
 * to stdout; the stats line goes to stderr. With no prompt argument the
 * prompt is read from standard input. Ctrl-C stops the reply (exit 130). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat_cli.h"
#include "mlxengine/commands.h"

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine run MODEL [\"prompt\"] [options]\n"
                 "Answers one message with the model's chat template and streams the reply.\n"
                 "Without a prompt argument the prompt is read from standard input.\n");
    chat_cli_print_flags(out);
}

static char *read_stdin(void) {
    size_t size = 0, capacity = 4096;
    char *text = malloc(capacity);
    size_t got;
    while (text && (got = fread(text + size, 1, capacity - size - 1, stdin)) > 0) {
        size += got;
        if (capacity - size - 1 == 0) {
            char *grown = realloc(text, capacity * 2);
            if (!grown) {
                free(text);
                return NULL;
            }
            text = grown;
            capacity *= 2;
        }
    }
    if (text) text[size] = '\0';
    return text;
}

int cmd_run(int argc, char **argv) {
    chat_cli cli;
    chat_cli_init(&cli, "run");
    const char *prompt = NULL;
    bool ok = true;
    for (int i = 1; i < argc && ok; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            chat_cli_free(&cli);
            return 0;
        }
        int got = chat_cli_parse_flag(&cli, argc, argv, &i);
        if (got < 0) ok = false;
        else if (got > 0) continue;
        else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mlxengine run: unknown option '%s'\n", argv[i]);
            ok = false;
        } else if (!cli.model_name) cli.model_name = argv[i];
        else if (!prompt) prompt = argv[i];
        else {
            fprintf(stderr, "mlxengine run: one prompt only (quote it), got '%s' too\n", argv[i]);
            ok = false;
        }
    }
    if (!ok) {
        usage(stderr);
        chat_cli_free(&cli);
        return 2;
    }
    char *stdin_prompt = NULL;
    if (cli.model_name && !prompt) {
        if (isatty(STDIN_FILENO)) {
            fprintf(stderr, "mlxengine run: give a prompt: mlxengine run %s \"your message\" (or pipe it in)\n",
                    cli.model_name);
            chat_cli_free(&cli);
            return 2;
        }
        prompt = stdin_prompt = read_stdin();
        /* the newline that ends the piped text is not part of the message */
        size_t len = stdin_prompt ? strlen(stdin_prompt) : 0;
        if (len && stdin_prompt[len - 1] == '\n') stdin_prompt[--len] = '\0';
    }
    if (!chat_cli_open(&cli)) {
        free(stdin_prompt);
        chat_cli_free(&cli);
        return 1;
    }
    mlxe_message user = {.role = MLXE_ROLE_USER, .content = prompt ? prompt : ""};
    mlxe_error err;
    int code = 0;
    chat_cli_install_sigint(&cli);
    if (mlxe_session_add_message(cli.session, &user, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine run: %s\n", err.message);
        code = 1;
    } else if (chat_cli_reply(&cli) != MLXE_OK) {
        code = 1;
    } else if (cli.last_stats.stop_reason == MLXE_CHAT_STOP_CANCELLED) {
        code = 130;
    }
    free(stdin_prompt);
    chat_cli_free(&cli);
    return code;
}
