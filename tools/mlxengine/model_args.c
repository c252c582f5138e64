/* tools/mlxengine/model_args.c — see model_args.h. */
#include "model_args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "hub_cli.h"
#include "memory_check.h"

int tool_flag_value(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *arg = argv[*i];
    size_t len = strlen(name);
    if (strncmp(arg, name, len) != 0) return 0;
    if (arg[len] == '=') {
        *value = arg + len + 1;
        return 1;
    }
    if (arg[len] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "mlxengine %s: %s needs a value\n", argv[0], name);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

bool tool_parse_int(const char *flag, const char *text, long long min, long long max, long long *out) {
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno || end == text || *end || value < min || value > max) {
        fprintf(stderr, "mlxengine: %s expects an integer in [%lld, %lld], got '%s'\n", flag, min, max, text);
        return false;
    }
    *out = value;
    return true;
}

bool tool_parse_float(const char *flag, const char *text, double min, double max, double *out) {
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(value) || value < min || value > max) {
        fprintf(stderr, "mlxengine: %s expects a number in [%g, %g], got '%s'\n", flag, min, max, text);
        return false;
    }
    *out = value;
    return true;
}

bool tool_parse_u64(const char *flag, const char *text, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-') {
        fprintf(stderr, "mlxengine: %s expects a non-negative integer, got '%s'\n", flag, text);
        return false;
    }
    *out = value;
    return true;
}

bool tool_parse_ids(const char *flag, const char *text, int32_t **ids, int64_t *count) {
    *ids = NULL;
    *count = 0;
    size_t capacity = 1;
    for (const char *p = text; *p; p++)
        if (*p == ',') capacity++;
    int32_t *out = malloc(capacity * sizeof *out);
    if (!out) {
        fprintf(stderr, "mlxengine: out of memory\n");
        return false;
    }
    const char *p = text;
    int64_t n = 0;
    for (;;) {
        char *end = NULL;
        errno = 0;
        long long value = strtoll(p, &end, 10);
        if (errno || end == p || value < 0 || value > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "mlxengine: %s expects comma-separated token ids like 1,2,3, got '%s'\n", flag, text);
            free(out);
            return false;
        }
        out[n++] = (int32_t)value;
        if (!*end) break;
        p = end + 1;
    }
    *ids = out;
    *count = n;
    return true;
}

char *tool_resolve_model(const char *command, const char *name) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "mlxengine%s%s", command ? " " : "", command ? command : "");
    struct stat info;
    if (name[0] == '/' || name[0] == '.' || name[0] == '~' || stat(name, &info) == 0) {
        char *copy = strdup(name);
        if (!copy) fprintf(stderr, "%s: out of memory\n", prefix);
        return copy;
    }
    mlxe_hub *hub = hub_cli_open(command ? command : "model");
    mlxe_registry *registry = hub ? hub_cli_registry(command ? command : "model") : NULL;
    if (!registry) {
        mlxe_hub_free(hub);
        return NULL;
    }
    hub_cli_progress progress;
    hub_cli_progress_init(&progress);
    mlxe_hub_download_options download;
    mlxe_hub_download_options_init(&download);
    download.progress = hub_cli_on_progress;
    download.progress_user = &progress;
    char *folder = NULL;
    mlxe_error err;
    mlxe_error_clear(&err);
    if (mlxe_hub_resolve_model(hub, registry, name, true, &download, &folder, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", prefix, err.message);
        folder = NULL;
    }
    mlxe_registry_free(registry);
    mlxe_hub_free(hub);
    return folder;
}

bool tool_load_model(const char *name, int n_threads, int64_t n_tokens, mlxe_model **model, mlxe_context **ctx) {
    return tool_load_model_on(name, NULL, n_threads, n_tokens, model, ctx);
}

bool tool_load_model_on(const char *name, const char *device, int n_threads, int64_t n_tokens, mlxe_model **model,
                        mlxe_context **ctx) {
    *model = NULL;
    *ctx = NULL;
    char *dir = tool_resolve_model(NULL, name);
    if (!dir) return false;
    bool ok = tool_load_model_folder_on(dir, device, n_threads, n_tokens, model, ctx);
    free(dir);
    return ok;
}

bool tool_load_model_folder(const char *dir, int n_threads, int64_t n_tokens, mlxe_model **model, mlxe_context **ctx) {
    return tool_load_model_folder_on(dir, NULL, n_threads, n_tokens, model, ctx);
}

bool tool_load_model_folder_on(const char *dir, const char *device, int n_threads, int64_t n_tokens,
                               mlxe_model **model, mlxe_context **ctx) {
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_model_options options;
    mlxe_model_options_init(&options);
    options.n_threads = n_threads;
    if (device) options.device = device;
    tool_show_load_progress(&options);
    *ctx = NULL;
    *model = NULL;
    if (!tool_check_memory(NULL, dir, device, n_tokens > 0 ? n_tokens : 1)) return false;
    if (mlxe_model_load(dir, &options, model, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine: %s\n", err.message);
        return false;
    }
    mlxe_context_options context_options;
    mlxe_context_options_init(&context_options);
    context_options.n_ctx = n_tokens > 0 ? n_tokens : 1;
    if (mlxe_context_create(*model, &context_options, ctx, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine: %s\n", err.message);
        mlxe_model_free(*model);
        *model = NULL;
        return false;
    }
    return true;
}

bool tool_looks_like_model(const char *text) {
    struct stat info;
    if (stat(text, &info) == 0 && S_ISDIR(info.st_mode)) return true;
    for (const char *c = text; *c; c++)
        if (*c == ' ' || *c == '\t' || *c == '\n') return false;
    mlxe_registry *registry = NULL;
    mlxe_error err;
    bool alias = false;
    if (mlxe_registry_load(NULL, &registry, &err) == MLXE_OK) {
        alias = mlxe_registry_find(registry, text) != NULL;
        mlxe_registry_free(registry);
    }
    if (alias) return true;
    mlxe_hub_model_ref ref;
    bool hub_id = strchr(text, '/') && mlxe_hub_parse_model_ref(text, &ref, &err) == MLXE_OK;
    if (hub_id) mlxe_hub_model_ref_clear(&ref);
    return hub_id;
}

/* A line on stderr that follows the weights onto a GPU: "loading weights:
 * 45% (1.1 of 2.5 GB)", rewritten in place, ended when the load ends. */
static bool print_load_progress(void *user, size_t done_bytes, size_t total_bytes) {
    int *last_percent = user;
    const int percent = total_bytes ? (int)(100.0 * (double)done_bytes / (double)total_bytes) : 100;
    if (percent == *last_percent) return true;
    *last_percent = percent;
    fprintf(stderr, "\rloading weights: %3d%% (%.1f of %.1f GB)", percent, (double)done_bytes / 1e9,
            (double)total_bytes / 1e9);
    if (done_bytes >= total_bytes) fputc('\n', stderr);
    return true;
}

void tool_show_load_progress(mlxe_model_options *options) {
    static int last_percent;
    const char *device = options->device;
    if (!device || strncmp(device, "cpu", 3) == 0 || !isatty(STDERR_FILENO)) return;
    last_percent = -1;
    options->progress = print_load_progress;
    options->progress_user = &last_percent;
}
