/* tools/mlxengine-debug-report/debug_cli.c — dispatch of the debug
 * subcommands, and `report` and `export-log`. */
#include "mlxengine-debug-report/debug_cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag/log_export.h"
#include "mlxengine/mlxengine.h"

typedef struct subcommand {
    const char *name;
    const char *usage;
    int (*run)(const char *program, int argc, char **argv);
} subcommand_entry;

static const subcommand_entry subcommands[] = {
    {"report", "report [--json] [--output FILE] [--no-gpu] [--no-cache] [--log N]\n"
               "      the debug report to attach to an issue (the default subcommand)",
     debug_cli_report},
    {"list-models", "list-models [--quick] [--json] [--cache-dir DIR]\n"
                    "      cached models with an integrity check (--quick: no content hashing)",
     debug_cli_list_models},
    {"show-model-info", "show-model-info ID [--quick] [--remote] [--cache-dir DIR]\n"
                        "      one cached model: revisions, files, problems, config (--remote: also the Hub's view)",
     debug_cli_show_model_info},
    {"list-remote-models", "list-remote-models QUERY [--limit N] [--filter TAG]\n"
                           "      search the Hugging Face Hub",
     debug_cli_list_remote_models},
    {"download-model", "download-model ID [--revision REV] [--all-files]\n"
                       "      download a model into the cache",
     debug_cli_download_model},
    {"cleanup-cache", "cleanup-cache [--dry-run] [--verify] [--model ID] [--cache-dir DIR]\n"
                      "      remove partial downloads, orphaned blobs, broken links, empty folders\n"
                      "      (--verify: also files failing their hash; --model: that model whole)",
     debug_cli_cleanup_cache},
    {"export-log", "export-log [--level L] [--since T] [--file F] [--json]\n"
                   "      log records kept in MLXE_LOG_FILE (or F); T: 10m, 2h, 1d, ISO time or epoch",
     debug_cli_export_log},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void print_usage(const char *program, FILE *out) {
    fprintf(out, "usage: %s [SUBCOMMAND] [OPTIONS]\n\nsubcommands:\n", program);
    for (size_t i = 0; i < N_SUBCOMMANDS; i++) fprintf(out, "  %s\n", subcommands[i].usage);
    fprintf(out, "\nThe cache is $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.\n"
                 "Set MLXE_LOG_FILE=path when running mlxengine to keep its log for export-log.\n"
                 "Tokens and passwords are redacted from everything printed.\n");
}

int debug_cli_start(const char *program) {
    mlxe_log_set_level_all(MLXE_LOG_WARN);
    mlxe_error err;
    if (mlxe_log_configure_from_env(&err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 2;
    }
    mlxe_log_set_stderr(true);
    mlxe_diag_install_redaction();
    const char *log_path = getenv("MLXE_LOG_FILE");
    if (log_path && *log_path) {
        if (mlxe_diag_log_to_file(log_path, &err) != MLXE_OK) fprintf(stderr, "warning: %s\n", err.message);
    }
    return 0;
}

void debug_cli_format_bytes(unsigned long long bytes, char *out, unsigned long size) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = (double)bytes;
    size_t unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        unit++;
    }
    if (unit == 0) snprintf(out, size, "%llu B", bytes);
    else snprintf(out, size, "%.1f %s", value, units[unit]);
}

int debug_cli_main(const char *program, int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            print_usage(program, stdout);
            return 0;
        }
        /* No subcommand: the report, with whatever options follow. */
        return debug_cli_report(program, argc, argv);
    }
    if (strcmp(argv[1], "help") == 0) {
        print_usage(program, stdout);
        return 0;
    }
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        if (strcmp(subcommands[i].name, argv[1]) == 0) return subcommands[i].run(program, argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown subcommand '%s'\n\n", program, argv[1]);
    print_usage(program, stderr);
    return 2;
}

static int usage_error(const char *program, const char *subcommand, const char *message) {
    fprintf(stderr, "%s %s: %s (see '%s --help')\n", program, subcommand, message, program);
    return 2;
}

int debug_cli_report(const char *program, int argc, char **argv) {
    mlxe_debug_report_options options;
    mlxe_debug_report_options_init(&options);
    const char *output = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            options.format = MLXE_REPORT_JSON;
        } else if (strcmp(argv[i], "--output") == 0 && i + 1 < argc) {
            output = argv[++i];
        } else if (strcmp(argv[i], "--no-gpu") == 0) {
            options.probe_gpus = false;
        } else if (strcmp(argv[i], "--no-cache") == 0) {
            options.include_cache = false;
        } else if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc) {
            options.hub_cache_dir = argv[++i];
        } else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 0) return usage_error(program, "report", "--log wants a number of records");
            options.n_log_records = (size_t)n;
        } else {
            char message[256];
            snprintf(message, sizeof message, "unknown option '%.200s'", argv[i]);
            return usage_error(program, "report", message);
        }
    }
    char *report = NULL;
    mlxe_error err;
    if (mlxe_debug_report(&options, &report, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    FILE *out = stdout;
    if (output) {
        out = fopen(output, "w");
        if (!out) {
            fprintf(stderr, "%s: cannot write %s: %s\n", program, output, strerror(errno));
            mlxe_debug_report_free(report);
            return 1;
        }
    }
    fputs(report, out);
    size_t length = strlen(report);
    if (length == 0 || report[length - 1] != '\n') fputc('\n', out);
    int status = 0;
    if (output) {
        if (fclose(out) != 0) {
            fprintf(stderr, "%s: cannot write %s: %s\n", program, output, strerror(errno));
            status = 1;
        } else {
            fprintf(stderr, "report written to %s\n", output);
        }
    }
    mlxe_debug_report_free(report);
    return status;
}

int debug_cli_export_log(const char *program, int argc, char **argv) {
    mlxe_log_export_options options;
    mlxe_log_export_options_init(&options);
    options.file = getenv("MLXE_LOG_FILE");
    if (options.file && !*options.file) options.file = NULL;
    mlxe_error err;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--level") == 0 && i + 1 < argc) {
            if (mlxe_diag_parse_level(argv[++i], &options.min_level, &err) != MLXE_OK)
                return usage_error(program, "export-log", err.message);
        } else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
            if (mlxe_diag_parse_since(argv[++i], (double)time(NULL), &options.since_unix, &err) != MLXE_OK)
                return usage_error(program, "export-log", err.message);
        } else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
            options.file = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            options.json = true;
        } else {
            char message[256];
            snprintf(message, sizeof message, "unknown option '%.200s'", argv[i]);
            return usage_error(program, "export-log", message);
        }
    }
    if (!options.file)
        fprintf(stderr, "%s export-log: no log file (set MLXE_LOG_FILE=path when running mlxengine, "
                        "or pass --file); showing this process's records only\n", program);
    char *text = NULL;
    if (mlxe_log_export(&options, &text, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    fputs(text, stdout);
    mlxe_debug_report_free(text);
    return 0;
}
