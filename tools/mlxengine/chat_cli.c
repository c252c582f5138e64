/* tools/mlxengine/chat_cli.c — see chat_cli.h. */
#include "chat_cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hub_cli.h"
#include "memory_check.h"
#include "model_args.h"

static volatile sig_atomic_t interrupted;
static mlxe_cancel *sigint_cancel;

static void on_sigint(int signo) {
    (void)signo;
    interrupted = 1;
    if (sigint_cancel) mlxe_cancel_request(sigint_cancel);
}

void chat_cli_install_sigint(chat_cli *cli) {
    sigint_cancel = cli->cancel;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART: a read at the prompt returns EINTR */
    sigaction(SIGINT, &action, NULL);
}

bool chat_cli_take_interrupt(void) {
    bool was = interrupted != 0;
    interrupted = 0;
    return was;
}

void chat_cli_init(chat_cli *cli, const char *command) {
    memset(cli, 0, sizeof *cli);
    cli->command = command;
    mlxe_session_options_init(&cli->session_options);
    mlxe_reply_options_init(&cli->reply);
    cli->reply.max_tokens = -1;
    cli->cancel = mlxe_cancel_create();
}

void chat_cli_free(chat_cli *cli) {
    if (sigint_cancel == cli->cancel) sigint_cancel = NULL;
    mlxe_session_free(cli->session);
    mlxe_chat_template_free(cli->chat_template);
    mlxe_tokenizer_free(cli->tokenizer);
    mlxe_model_free(cli->model);
    free(cli->folder);
    for (int i = 0; i < cli->n_stops; i++) free(cli->stops[i]);
    mlxe_cancel_free(cli->cancel);
    memset(cli, 0, sizeof *cli);
}

void chat_cli_print_flags(FILE *out) {
    fprintf(out,
            "  --system TEXT          system message\n"
            "  --max-tokens N         most tokens per reply (default: until the model stops)\n"
            "  --temp T --top-p P --top-k K --min-p M --seed S\n"
            "  --repeat-penalty R --presence-penalty P --frequency-penalty F\n"
            "                         sampling (default greedy, or the registry's defaults for an alias)\n"
            "  --stop TEXT            stop string (repeatable)\n"
            "  --eos TOKEN            a token that also ends replies, e.g. \"<|eot_id|>\" (repeatable)\n"
            "  --ctx N                context tokens (default: the model's, at most 4096)\n"
            "  --context-policy P     error | drop (oldest turns; chat's default) | rotate (max_kv_size window)\n"
            "  --keep N               tokens the rotating window keeps at the start (default 4)\n"
            "  --var NAME=JSON        extra chat template variable, e.g. enable_thinking=false\n"
            "  --threads N            compute threads\n"
            "  --device D             cpu (default), cuda, cuda:N or auto (a GPU when usable, else the CPU)\n"
            "  --force-load           load even when the memory estimate exceeds RAM + swap\n"
            "  --ignore-eos           keep going past end-of-sequence tokens (max tokens and stops still stop)\n"
            "  --no-stats             no stats line after replies\n"
            "MODEL is a model folder, a registry alias (mlxengine list --registry) or a Hub id;\n"
            "a cached model is used without network access.\n");
}

static bool parse_number(const char *name, const char *value, double min, double max, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "mlxengine: %s expects a number in [%g, %g], got '%s'\n", name, min, max, value);
        return false;
    }
    *out = v;
    return true;
}

bool chat_cli_set_option(chat_cli *cli, const char *name, const char *value) {
    mlxe_sampler_options *s = &cli->reply.sampler;
    double v = 0;
    if (strcmp(name, "temp") == 0 || strcmp(name, "temperature") == 0) {
        if (!parse_number(name, value, 0, 100, &v)) return false;
        s->temperature = (float)v;
    } else if (strcmp(name, "top_p") == 0) {
        if (!parse_number(name, value, 1e-9, 1, &v)) return false;
        s->top_p = (float)v;
    } else if (strcmp(name, "top_k") == 0) {
        if (!parse_number(name, value, 0, 1e9, &v)) return false;
        if (v != floor(v)) {
            fprintf(stderr, "mlxengine: top_k must be an integer, got '%s'\n", value);
            return false;
        }
        s->top_k = (int32_t)v;
    } else if (strcmp(name, "min_p") == 0) {
        if (!parse_number(name, value, 0, 1, &v)) return false;
        s->min_p = (float)v;
    } else if (strcmp(name, "repeat_penalty") == 0 || strcmp(name, "repetition_penalty") == 0) {
        if (!parse_number(name, value, 1e-6, 1e6, &v)) return false;
        s->repetition_penalty = (float)v;
    } else if (strcmp(name, "presence_penalty") == 0) {
        if (!parse_number(name, value, -100, 100, &v)) return false;
        s->presence_penalty = (float)v;
    } else if (strcmp(name, "frequency_penalty") == 0) {
        if (!parse_number(name, value, -100, 100, &v)) return false;
        s->frequency_penalty = (float)v;
    } else if (strcmp(name, "seed") == 0) {
        uint64_t seed = 0;
        if (!tool_parse_u64("seed", value, &seed)) return false;
        s->seed = seed;
    } else if (strcmp(name, "max_tokens") == 0) {
        if (!parse_number(name, value, -1, 1e9, &v)) return false;
        if (v != floor(v)) {
            fprintf(stderr, "mlxengine: max_tokens must be an integer (-1: no limit), got '%s'\n", value);
            return false;
        }
        cli->reply.max_tokens = (int64_t)v;
    } else if (strcmp(name, "stop") == 0) {
        if (!*value || cli->n_stops >= CHAT_CLI_MAX_STOPS) {
            fprintf(stderr, "mlxengine: stop strings must be non-empty, at most %d\n", CHAT_CLI_MAX_STOPS);
            return false;
        }
        if (!(cli->stops[cli->n_stops] = strdup(value))) {
            fprintf(stderr, "mlxengine: out of memory\n");
            return false;
        }
        cli->n_stops++;
        cli->reply.stop = (const char *const *)cli->stops;
        cli->reply.n_stop = cli->n_stops;
    } else {
        fprintf(stderr, "mlxengine: unknown option '%s' (temp, top_p, top_k, min_p, repeat_penalty, "
                        "presence_penalty, frequency_penalty, seed, max_tokens, stop)\n", name);
        return false;
    }
    return true;
}

void chat_cli_print_options(const chat_cli *cli, FILE *out) {
    const mlxe_sampler_options *s = &cli->reply.sampler;
    fprintf(out, "temp %g, top_p %g, top_k %d, min_p %g, repeat_penalty %g, presence_penalty %g, "
                 "frequency_penalty %g, seed %s, max_tokens %lld, stop",
            (double)s->temperature, (double)s->top_p, (int)s->top_k, (double)s->min_p,
            (double)s->repetition_penalty, (double)s->presence_penalty, (double)s->frequency_penalty,
            s->seed == MLXE_SEED_RANDOM ? "random" : "fixed", (long long)cli->reply.max_tokens);
    if (cli->n_stops == 0) fprintf(out, " none");
    for (int i = 0; i < cli->n_stops; i++) fprintf(out, " \"%s\"", cli->stops[i]);
    fprintf(out, "\n");
}

/* Flags that map onto a /set option. */
static const struct {
    const char *flag, *option;
} option_flags[] = {{"--temp", "temp"},
                    {"--top-p", "top_p"},
                    {"--top-k", "top_k"},
                    {"--min-p", "min_p"},
                    {"--seed", "seed"},
                    {"--repeat-penalty", "repeat_penalty"},
                    {"--presence-penalty", "presence_penalty"},
                    {"--frequency-penalty", "frequency_penalty"},
                    {"--max-tokens", "max_tokens"},
                    {"--stop", "stop"}};

/* Registry defaults apply only to what flags left alone. */
static bool flag_given[sizeof option_flags / sizeof option_flags[0]];

static char *pending_vars[32];
static int n_pending_vars;

int chat_cli_parse_flag(chat_cli *cli, int argc, char **argv, int *i) {
    const char *value = NULL;
    int got;
    for (size_t k = 0; k < sizeof option_flags / sizeof option_flags[0]; k++) {
        if ((got = tool_flag_value(argc, argv, i, option_flags[k].flag, &value))) {
            if (got < 0 || !chat_cli_set_option(cli, option_flags[k].option, value)) return -1;
            flag_given[k] = true;
            return 1;
        }
    }
    long long number = 0;
    if ((got = tool_flag_value(argc, argv, i, "--system", &value))) {
        if (got < 0) return -1;
        cli->system = value;
    } else if ((got = tool_flag_value(argc, argv, i, "--ctx", &value))) {
        if (got < 0 || !tool_parse_int("--ctx", value, 1, INT32_MAX, &number)) return -1;
        cli->session_options.n_ctx = number;
    } else if (tool_parse_force_load(argv[*i])) {
        return 1;
    } else if ((got = tool_flag_value(argc, argv, i, "--keep", &value))) {
        if (got < 0 || !tool_parse_int("--keep", value, 0, INT32_MAX, &number)) return -1;
        cli->session_options.keep_tokens = number;
    } else if ((got = tool_flag_value(argc, argv, i, "--threads", &value))) {
        if (got < 0 || !tool_parse_int("--threads", value, 0, 1024, &number)) return -1;
        cli->threads = (int)number;
    } else if ((got = tool_flag_value(argc, argv, i, "--device", &value))) {
        if (got < 0) return -1;
        cli->device = value;
    } else if ((got = tool_flag_value(argc, argv, i, "--context-policy", &value))) {
        if (got < 0) return -1;
        if (strcmp(value, "error") == 0) cli->session_options.context_policy = MLXE_CONTEXT_ERROR;
        else if (strcmp(value, "drop") == 0) cli->session_options.context_policy = MLXE_CONTEXT_DROP_OLDEST;
        else if (strcmp(value, "rotate") == 0) cli->session_options.context_policy = MLXE_CONTEXT_ROTATE;
        else {
            fprintf(stderr, "mlxengine %s: --context-policy is error, drop or rotate, not '%s'\n", cli->command, value);
            return -1;
        }
    } else if ((got = tool_flag_value(argc, argv, i, "--var", &value))) {
        if (got < 0) return -1;
        if (!strchr(value, '=') || n_pending_vars >= 32) {
            fprintf(stderr, "mlxengine %s: --var expects NAME=JSON, got '%s'\n", cli->command, value);
            return -1;
        }
        pending_vars[n_pending_vars++] = (char *)value;
    } else if (strcmp(argv[*i], "--no-stats") == 0) {
        cli->no_stats = true;
    } else if ((got = tool_flag_value(argc, argv, i, "--eos", &value))) {
        if (got < 0) return -1;
        if (cli->n_eos_tokens >= CHAT_CLI_MAX_STOPS) {
            fprintf(stderr, "mlxengine %s: at most %d --eos tokens\n", cli->command, CHAT_CLI_MAX_STOPS);
            return -1;
        }
        cli->eos_tokens[cli->n_eos_tokens++] = value;
    } else if (strcmp(argv[*i], "--ignore-eos") == 0) {
        cli->reply.ignore_eos = true;
    } else {
        return 0;
    }
    return 1;
}

char *chat_cli_resolve(const char *command, const char *name) { return tool_resolve_model(command, name); }

/* Sampling defaults and stop strings of a registry alias. */
static void apply_registry_defaults(chat_cli *cli) {
    mlxe_error err;
    mlxe_registry *registry = NULL;
    if (mlxe_registry_load(NULL, &registry, &err) != MLXE_OK) return;
    const mlxe_registry_entry *entry = mlxe_registry_find(registry, cli->model_name);
    struct stat info;
    if (entry && stat(cli->model_name, &info) != 0) {
        char value[64];
        if (!flag_given[0] && entry->temperature > 0) {
            snprintf(value, sizeof value, "%g", entry->temperature);
            chat_cli_set_option(cli, "temp", value);
        }
        if (!flag_given[1] && entry->top_p > 0 && entry->top_p <= 1) {
            snprintf(value, sizeof value, "%g", entry->top_p);
            chat_cli_set_option(cli, "top_p", value);
        }
        if (!flag_given[2] && entry->top_k > 0) {
            snprintf(value, sizeof value, "%d", entry->top_k);
            chat_cli_set_option(cli, "top_k", value);
        }
        for (const char *const *stop = entry->stop; stop && *stop; stop++)
            if (**stop) chat_cli_set_option(cli, "stop", *stop);
    }
    mlxe_registry_free(registry);
}

bool chat_cli_open(chat_cli *cli) {
    mlxe_error err;
    mlxe_error_clear(&err);
    if (!cli->model_name) {
        /* No model named: the embedded default model (docs/DEFAULT_MODEL.md). */
        if (mlxe_default_model_path(MLXE_DEFAULT_MODEL_BF16, &cli->folder, &err) != MLXE_OK) {
            fprintf(stderr, "mlxengine %s: %s\n", cli->command, err.message);
            return false;
        }
        cli->model_name = "the default model";
    } else {
        cli->folder = chat_cli_resolve(cli->command, cli->model_name);
        if (!cli->folder) return false;
        apply_registry_defaults(cli);
    }
    mlxe_model_options model_options;
    mlxe_model_options_init(&model_options);
    model_options.n_threads = cli->threads;
    if (cli->device) model_options.device = cli->device;
    tool_show_load_progress(&model_options);
    if (!tool_check_memory(cli->command, cli->folder, cli->device, cli->session_options.n_ctx)) return false;
    mlxe_status st = mlxe_model_load(cli->folder, &model_options, &cli->model, &err);
    if (st == MLXE_OK) st = mlxe_tokenizer_load(cli->folder, &cli->tokenizer, &err);
    if (st == MLXE_OK) st = mlxe_chat_template_load(cli->folder, &cli->chat_template, &err);
    if (st == MLXE_OK)
        st = mlxe_session_create(cli->model, cli->tokenizer, cli->chat_template, &cli->session_options, &cli->session,
                                 &err);
    for (int i = 0; st == MLXE_OK && i < n_pending_vars; i++) {
        char *eq = strchr(pending_vars[i], '=');
        *eq = '\0';
        st = mlxe_session_set_variable(cli->session, pending_vars[i], eq + 1, &err);
        *eq = '=';
    }
    for (int i = 0; st == MLXE_OK && i < cli->n_eos_tokens; i++) {
        cli->eos_ids[i] = mlxe_tokenizer_token_to_id(cli->tokenizer, cli->eos_tokens[i]);
        if (cli->eos_ids[i] < 0) {
            fprintf(stderr, "mlxengine %s: --eos '%s' is not a token of this model's tokenizer\n", cli->command,
                    cli->eos_tokens[i]);
            return false;
        }
    }
    cli->reply.extra_eos_ids = cli->eos_ids;
    cli->reply.n_extra_eos_ids = cli->n_eos_tokens;
    if (st == MLXE_OK && cli->system) {
        mlxe_message system = {.role = MLXE_ROLE_SYSTEM, .content = cli->system};
        st = mlxe_session_add_message(cli->session, &system, &err);
    }
    if (st != MLXE_OK) {
        fprintf(stderr, "mlxengine %s: %s\n", cli->command, err.message);
        return false;
    }
    return true;
}

static bool write_text(void *user, const char *text, size_t size) {
    (void)user;
    fwrite(text, 1, size, stdout);
    fflush(stdout);
    return true;
}

void chat_cli_print_stats(const mlxe_reply_stats *st, FILE *out) {
    fprintf(out,
            "[prompt %lld tokens (%lld cached), %.1f tok/s | reply %lld tokens, %.1f tok/s | first token %.3f s | "
            "stop %s | peak memory %.1f MB",
            (long long)st->prompt_tokens, (long long)st->cached_prompt_tokens, st->prompt_tokens_per_second,
            (long long)st->generated_tokens, st->generation_tokens_per_second, st->time_to_first_token_s,
            mlxe_chat_stop_reason_name(st->stop_reason), (double)st->peak_memory_bytes / (1024.0 * 1024.0));
    if (st->dropped_messages) fprintf(out, " | %lld messages left out", (long long)st->dropped_messages);
    if (st->rotated_tokens) fprintf(out, " | %lld tokens rotated out", (long long)st->rotated_tokens);
    fprintf(out, "]\n");
}

mlxe_status chat_cli_reply(chat_cli *cli) {
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_cancel_reset(cli->cancel);
    chat_cli_take_interrupt();
    mlxe_status st = mlxe_session_reply(cli->session, &cli->reply, write_text, NULL, cli->cancel, NULL,
                                        &cli->last_stats, &err);
    fputc('\n', stdout);
    fflush(stdout);
    cli->have_stats = true;
    if (st != MLXE_OK) {
        fprintf(stderr, "mlxengine %s: %s\n", cli->command, err.message);
        return st;
    }
    if (!cli->no_stats) chat_cli_print_stats(&cli->last_stats, stderr);
    return MLXE_OK;
}
