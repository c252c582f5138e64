/* tools/mlxengine-debug-report/debug_cli_hub.c — list-remote-models and
 * download-model: thin wrappers over the hub layer (mlxengine/hub.h), so a
 * user can check that the Hub is reachable and a download works, with the
 * same client mlxengine uses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine-debug-report/debug_cli.h"
#include "mlxengine/mlxengine.h"

static int usage_error(const char *program, const char *subcommand, const char *message) {
    fprintf(stderr, "%s %s: %s (see '%s --help')\n", program, subcommand, message, program);
    return 2;
}

#define MAX_FILTERS 8

int debug_cli_list_remote_models(const char *program, int argc, char **argv) {
    mlxe_hub_search_options search;
    mlxe_hub_search_options_init(&search);
    const char *filters[MAX_FILTERS];
    size_t n_filters = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end = NULL;
            long limit = strtol(argv[++i], &end, 10);
            if (*end || limit <= 0) return usage_error(program, "list-remote-models", "--limit wants a positive number");
            search.limit = (size_t)limit;
        } else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) {
            if (n_filters == MAX_FILTERS) return usage_error(program, "list-remote-models", "too many --filter");
            filters[n_filters++] = argv[++i];
        } else if (argv[i][0] != '-' && !search.search) {
            search.search = argv[i];
        } else {
            return usage_error(program, "list-remote-models", "unexpected argument");
        }
    }
    if (!search.search) return usage_error(program, "list-remote-models", "what to search for? e.g. 'qwen3 4bit'");
    search.filters = filters;
    search.n_filters = n_filters;
    search.sort = "downloads";
    mlxe_hub *hub = NULL;
    mlxe_hub_model_list *list = NULL;
    mlxe_error err;
    if (mlxe_hub_create(NULL, &hub, &err) != MLXE_OK || mlxe_hub_search(hub, &search, &list, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        mlxe_hub_free(hub);
        return 1;
    }
    printf("%-60s %12s %8s\n", "ID", "DOWNLOADS", "LIKES");
    for (size_t i = 0; i < list->n_models; i++) {
        const mlxe_hub_model *model = list->models[i];
        printf("%-60s %12lld %8lld\n", model->id, (long long)model->downloads, (long long)model->likes);
    }
    fprintf(stderr, "%zu model(s) from %s\n", list->n_models, mlxe_hub_endpoint(hub));
    mlxe_hub_model_list_free(list);
    mlxe_hub_free(hub);
    return 0;
}

static void print_progress(void *user, const mlxe_hub_progress *progress) {
    (void)user;
    char done[32], total[32];
    debug_cli_format_bytes(progress->done_bytes, done, sizeof done);
    debug_cli_format_bytes(progress->total_bytes, total, sizeof total);
    fprintf(stderr, "\r%zu/%zu files, %s of %s%s", progress->n_files_done, progress->n_files, done, total,
            progress->finished ? "\n" : "   ");
}

int debug_cli_download_model(const char *program, int argc, char **argv) {
    mlxe_hub_download_options options;
    mlxe_hub_download_options_init(&options);
    const char *repo_id = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--revision") == 0 && i + 1 < argc) options.revision = argv[++i];
        else if (strcmp(argv[i], "--all-files") == 0) options.all_files = true;
        else if (argv[i][0] != '-' && !repo_id) repo_id = argv[i];
        else return usage_error(program, "download-model", "unexpected argument");
    }
    if (!repo_id) return usage_error(program, "download-model", "which model? give its id, e.g. org/name");
    options.progress = print_progress;
    mlxe_hub *hub = NULL;
    mlxe_error err;
    char *snapshot = NULL;
    if (mlxe_hub_create(NULL, &hub, &err) != MLXE_OK ||
        mlxe_hub_snapshot_download(hub, repo_id, &options, &snapshot, &err) != MLXE_OK) {
        fprintf(stderr, "\n%s: %s\n", program, err.message);
        mlxe_hub_free(hub);
        return 1;
    }
    printf("%s\n", snapshot);
    free(snapshot);
    mlxe_hub_free(hub);
    return 0;
}
