/* tools/mlxengine/cmd_search.c — `mlxengine search QUERY`: models on the Hub
 * with filters (--mlx, --gguf, --filter TAG, --author), sorted and limited. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_cli.h"
#include "mlxengine/commands.h"

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine search [QUERY] [--mlx|--gguf] [--filter TAG]... [--author A]\n"
                 "                        [--sort downloads|likes|createdAt|lastModified|trendingScore]\n"
                 "                        [--limit N] [--json]\n");
}

int cmd_search(int argc, char **argv) {
    mlxe_hub_search_options o;
    mlxe_hub_search_options_init(&o);
    const char **filters = calloc((size_t)argc + 1, sizeof *filters);
    size_t n_filters = 0;
    bool json = false, bad = !filters;
    o.sort = "downloads";
    o.limit = 20;
    for (int i = 1; i < argc && !bad; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(filters);
            return 0;
        } else if (strcmp(argv[i], "--mlx") == 0) filters[n_filters++] = "mlx";
        else if (strcmp(argv[i], "--gguf") == 0) filters[n_filters++] = "gguf";
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filters[n_filters++] = argv[++i];
        else if (strcmp(argv[i], "--author") == 0 && i + 1 < argc) o.author = argv[++i];
        else if (strcmp(argv[i], "--sort") == 0 && i + 1 < argc) o.sort = argv[++i];
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (!end || *end || n <= 0 || n > 10000) bad = true;
            else o.limit = (size_t)n;
        } else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] != '-' && !o.search) o.search = argv[i];
        else bad = true;
    }
    if (bad) {
        usage(stderr);
        free(filters);
        return 2;
    }
    o.filters = filters;
    o.n_filters = n_filters;
    mlxe_hub *hub = hub_cli_open("search");
    if (!hub) {
        free(filters);
        return 1;
    }
    mlxe_hub_model_list *list = NULL;
    mlxe_error err;
    int code = 0;
    if (mlxe_hub_search(hub, &o, &list, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine search: %s\n", err.message);
        code = 1;
    } else if (json) {
        printf("[");
        for (size_t i = 0; i < list->n_models; i++)
            printf("%s%s", i ? "," : "", list->models[i]->raw_json ? list->models[i]->raw_json : "{}");
        printf("]\n");
    } else {
        printf("%-50s %10s %7s %8s %-10s %s\n", "ID", "DOWNLOADS", "LIKES", "PARAMS", "MODIFIED", "GATED");
        for (size_t i = 0; i < list->n_models; i++) {
            const mlxe_hub_model *m = list->models[i];
            char params[32] = "-";
            if (m->parameters > 0) snprintf(params, sizeof params, "%.2fB", (double)m->parameters / 1e9);
            printf("%-50s %10lld %7lld %8s %-10.10s %s\n", m->id, (long long)m->downloads,
                   (long long)m->likes, params, m->last_modified ? m->last_modified : "-",
                   strcmp(m->gated, "false") == 0 ? "no" : m->gated);
        }
        if (list->n_models == 0) fprintf(stderr, "no model matches\n");
    }
    mlxe_hub_model_list_free(list);
    mlxe_hub_free(hub);
    free(filters);
    return code;
}
