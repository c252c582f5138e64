/* tools/mlxengine/cmd_chat.c — `mlxengine chat MODEL`: an interactive
 * conversation. On a terminal, lines are read with libedit (line editing,
 * history kept in $XDG_STATE_HOME/mlxengine/chat_history); from a pipe,
 * plain lines. A line ending in '\' continues on the next one, and text
 * between two lines of """ is one message. Ctrl-C stops the reply being
 * written and returns to the prompt; at the prompt it clears the line.
 * Slash commands change the session (see /help). The context policy
 * defaults to leaving out the oldest turns. */
#include <editline/readline.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "chat_cli.h"
#include "mlxengine/commands.h"

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine chat MODEL [options]\n"
                 "Talk with the model; type /help in the conversation for its commands.\n");
    chat_cli_print_flags(out);
}

static void print_help(void) {
    printf("/system TEXT      set the system message (no TEXT: show it)\n"
           "/set NAME VALUE   temp, top_p, top_k, min_p, repeat_penalty, presence_penalty,\n"
           "                  frequency_penalty, seed, max_tokens, stop (no NAME: show them)\n"
           "/reset            forget the conversation (the system message stays)\n"
           "/undo             remove the last message you sent and the reply to it\n"
           "/save FILE        save the conversation and its KV cache\n"
           "/load FILE        load a saved conversation (same model only)\n"
           "/stats            the last reply's stats and the session's state\n"
           "/help             this list\n"
           "/quit             leave (also /exit, /bye, Ctrl-D)\n"
           "End a line with \\ to continue it; put a message between lines of \"\"\" to write several lines.\n");
}

/* ---- reading lines ---- */

typedef struct line_reader {
    bool tty;
    char history_path[1024];
    char *buffer;  /* getline's */
    size_t buffer_size;
} line_reader;

static void reader_open(line_reader *r) {
    memset(r, 0, sizeof *r);
    r->tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    if (!r->tty) return;
    const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    char dir[900] = "";
    if (state && *state) snprintf(dir, sizeof dir, "%s/mlxengine", state);
    else if (home && *home) snprintf(dir, sizeof dir, "%s/.local/state/mlxengine", home);
    using_history();
    if (*dir) {
        char parent[900];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash) {
            *slash = '\0';
            mkdir(parent, 0755);
        }
        mkdir(dir, 0755);
        snprintf(r->history_path, sizeof r->history_path, "%s/chat_history", dir);
        read_history(r->history_path);
    }
}

static void reader_close(line_reader *r) {
    if (r->tty && r->history_path[0]) write_history(r->history_path);
    free(r->buffer);
}

/* One line without its newline (malloc'd), or NULL at end of input or on
 * Ctrl-C (chat_cli_take_interrupt tells which). */
static char *read_line(line_reader *r, const char *prompt) {
    if (r->tty) return readline(prompt);
    errno = 0;
    ssize_t n = getline(&r->buffer, &r->buffer_size, stdin);
    if (n < 0) {
        if (errno == EINTR) clearerr(stdin); /* Ctrl-C while waiting: the next read goes on */
        return NULL;
    }
    while (n > 0 && (r->buffer[n - 1] == '\n' || r->buffer[n - 1] == '\r')) r->buffer[--n] = '\0';
    return strdup(r->buffer);
}

static bool append(char **text, size_t *size, const char *line, bool newline) {
    size_t len = strlen(line);
    char *grown = realloc(*text, *size + len + 2);
    if (!grown) return false;
    *text = grown;
    if (newline && *size) (*text)[(*size)++] = '\n';
    memcpy(*text + *size, line, len + 1);
    *size += len;
    return true;
}

/* A whole message: continuation lines and """ blocks joined. NULL at the
 * end of input; "" (malloc'd) after Ctrl-C. */
static char *read_message(line_reader *r) {
    char *line = read_line(r, ">>> ");
    if (!line) return chat_cli_take_interrupt() ? strdup("") : NULL;
    char *text = NULL;
    size_t size = 0;
    if (strncmp(line, "\"\"\"", 3) == 0) {
        /* """ block: up to a line ending with """ */
        char *rest = line + 3;
        bool done = false;
        if (strlen(rest) >= 3 && strcmp(rest + strlen(rest) - 3, "\"\"\"") == 0) {
            rest[strlen(rest) - 3] = '\0';
            done = true;
        }
        append(&text, &size, rest, false);
        free(line);
        while (!done) {
            line = read_line(r, "... ");
            if (!line) break;
            size_t len = strlen(line);
            if (len >= 3 && strcmp(line + len - 3, "\"\"\"") == 0) {
                line[len - 3] = '\0';
                done = true;
            }
            append(&text, &size, line, true);
            free(line);
        }
        if (chat_cli_take_interrupt()) {
            free(text);
            return strdup("");
        }
    } else {
        for (;;) {
            size_t len = strlen(line);
            bool more = len > 0 && line[len - 1] == '\\';
            if (more) line[len - 1] = '\0';
            append(&text, &size, line, text != NULL);
            free(line);
            if (!more) break;
            line = read_line(r, "... ");
            if (!line) break;
        }
    }
    if (r->tty && text && *text) add_history(text);
    return text ? text : strdup("");
}

/* ---- commands ---- */

static void set_system(chat_cli *cli, const char *text) {
    mlxe_message first;
    bool has = mlxe_session_message_at(cli->session, 0, &first) && first.role == MLXE_ROLE_SYSTEM;
    if (!*text) {
        printf("%s\n", has ? first.content : "(no system message)");
        return;
    }
    mlxe_message system = {.role = MLXE_ROLE_SYSTEM, .content = text};
    mlxe_error err;
    mlxe_status st = has ? mlxe_session_set_message(cli->session, 0, &system, &err)
                         : mlxe_session_insert_message(cli->session, 0, &system, &err);
    if (st != MLXE_OK) fprintf(stderr, "mlxengine chat: %s\n", err.message);
    else printf("system message set\n");
}

static void undo(chat_cli *cli) {
    size_t n = mlxe_session_message_count(cli->session);
    mlxe_message m;
    for (size_t i = n; i-- > 0;) {
        if (mlxe_session_message_at(cli->session, i, &m) && m.role == MLXE_ROLE_USER) {
            mlxe_session_remove_messages(cli->session, i, n - i);
            printf("removed %zu message%s\n", n - i, n - i == 1 ? "" : "s");
            return;
        }
    }
    printf("nothing to undo\n");
}

static void reset(chat_cli *cli) {
    mlxe_message first;
    char *system = NULL;
    if (mlxe_session_message_at(cli->session, 0, &first) && first.role == MLXE_ROLE_SYSTEM && first.content)
        system = strdup(first.content);
    mlxe_session_remove_messages(cli->session, system ? 1 : 0, mlxe_session_message_count(cli->session));
    printf("conversation cleared\n");
    free(system);
}

static void print_stats(chat_cli *cli) {
    if (cli->have_stats) chat_cli_print_stats(&cli->last_stats, stdout);
    else printf("no reply yet\n");
    printf("session: %zu messages (%zu left out), %lld of %lld context tokens cached\n",
           mlxe_session_message_count(cli->session), mlxe_session_dropped_messages(cli->session),
           (long long)mlxe_session_cached_tokens(cli->session), (long long)mlxe_session_n_ctx(cli->session));
}

/* Runs a slash command; false means quit. */
static bool command(chat_cli *cli, char *line) {
    char *name = line + 1, *arg = name;
    while (*arg && *arg != ' ' && *arg != '\t') arg++;
    if (*arg) *arg++ = '\0';
    while (*arg == ' ' || *arg == '\t') arg++;
    mlxe_error err;
    if (strcmp(name, "quit") == 0 || strcmp(name, "exit") == 0 || strcmp(name, "bye") == 0) return false;
    if (strcmp(name, "help") == 0 || strcmp(name, "?") == 0) {
        print_help();
    } else if (strcmp(name, "system") == 0) {
        set_system(cli, arg);
    } else if (strcmp(name, "set") == 0) {
        char *value = arg;
        while (*value && *value != ' ' && *value != '\t') value++;
        if (*value) *value++ = '\0';
        while (*value == ' ' || *value == '\t') value++;
        if (!*arg) chat_cli_print_options(cli, stdout);
        else if (chat_cli_set_option(cli, arg, value)) printf("%s set to %s\n", arg, value);
    } else if (strcmp(name, "reset") == 0 || strcmp(name, "clear") == 0) {
        reset(cli);
    } else if (strcmp(name, "undo") == 0) {
        undo(cli);
    } else if (strcmp(name, "save") == 0 || strcmp(name, "load") == 0) {
        if (!*arg) {
            printf("usage: /%s FILE\n", name);
        } else if (name[0] == 's') {
            if (mlxe_session_save(cli->session, arg, &err) != MLXE_OK) fprintf(stderr, "mlxengine chat: %s\n", err.message);
            else printf("saved to %s\n", arg);
        } else {
            if (mlxe_session_load(cli->session, arg, &err) != MLXE_OK) fprintf(stderr, "mlxengine chat: %s\n", err.message);
            else printf("loaded %s: %zu messages\n", arg, mlxe_session_message_count(cli->session));
        }
    } else if (strcmp(name, "stats") == 0) {
        print_stats(cli);
    } else {
        printf("unknown command /%s; /help lists them\n", name);
    }
    return true;
}

int cmd_chat(int argc, char **argv) {
    chat_cli cli;
    chat_cli_init(&cli, "chat");
    cli.session_options.context_policy = MLXE_CONTEXT_DROP_OLDEST;
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
        else if (argv[i][0] == '-') {
            fprintf(stderr, "mlxengine chat: unknown option '%s'\n", argv[i]);
            ok = false;
        } else if (!cli.model_name) cli.model_name = argv[i];
        else {
            fprintf(stderr, "mlxengine chat: one model only, got '%s' too\n", argv[i]);
            ok = false;
        }
    }
    if (!ok) {
        usage(stderr);
        chat_cli_free(&cli);
        return 2;
    }
    if (!chat_cli_open(&cli)) {
        chat_cli_free(&cli);
        return 1;
    }
    chat_cli_install_sigint(&cli);
    line_reader reader;
    reader_open(&reader);
    if (reader.tty) printf("Chatting with %s. /help for commands, /quit or Ctrl-D to leave.\n", cli.model_name);
    int code = 0;
    for (;;) {
        char *text = read_message(&reader);
        if (!text) break;
        if (text[0] == '/') {
            bool go_on = command(&cli, text);
            free(text);
            if (!go_on) break;
            continue;
        }
        if (!text[0]) {
            free(text);
            continue;
        }
        mlxe_message user = {.role = MLXE_ROLE_USER, .content = text};
        mlxe_error err;
        if (mlxe_session_add_message(cli.session, &user, &err) != MLXE_OK) {
            fprintf(stderr, "mlxengine chat: %s\n", err.message);
        } else if (chat_cli_reply(&cli) != MLXE_OK) {
            /* the reply failed: take the message back so the user can rephrase */
            mlxe_session_remove_messages(cli.session, mlxe_session_message_count(cli.session) - 1, 1);
        } else if (cli.last_stats.stop_reason == MLXE_CHAT_STOP_CANCELLED) {
            fprintf(stderr, "(reply stopped)\n");
        }
        free(text);
    }
    if (reader.tty) printf("\n");
    reader_close(&reader);
    chat_cli_free(&cli);
    return code;
}
