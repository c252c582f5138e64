/* tools/mlxengine/cmd_du.c — `mlxengine du`: disk use of the Hugging Face
 * cache, per model and in total, with partial downloads. */
#include <stdio.h>
#include <string.h>

#include "hub_cli.h"
#include "mlxengine/commands.h"

int cmd_du(int argc, char **argv) {
    bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) {
        fprintf(stderr, "usage: mlxengine du [--json]\n");
        return 2;
    }
    mlxe_hub *hub = hub_cli_open("du");
    if (!hub) return 1;
    mlxe_hub_cache_info *info = NULL;
    mlxe_error err;
    if (mlxe_hub_cache_scan(hub, &info, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine du: %s\n", err.message);
        mlxe_hub_free(hub);
        return 1;
    }
    uint64_t partial = 0;
    if (json) printf("{\"cache\":"), hub_cli_json_string(stdout, mlxe_hub_cache_dir(hub)), printf(",\"models\":[");
    for (size_t i = 0; i < info->n_repos; i++) {
        const mlxe_hub_cached_repo *r = &info->repos[i];
        partial += r->incomplete_bytes;
        char size[32], inc[32];
        hub_cli_format_size(r->size_on_disk, size, sizeof size);
        hub_cli_format_size(r->incomplete_bytes, inc, sizeof inc);
        if (json) {
            printf("%s{\"id\":", i ? "," : "");
            hub_cli_json_string(stdout, r->repo_id);
            printf(",\"size_on_disk\":%llu,\"incomplete_bytes\":%llu,\"revisions\":%zu,\"problem\":",
                   (unsigned long long)r->size_on_disk, (unsigned long long)r->incomplete_bytes, r->n_revisions);
            hub_cli_json_string(stdout, r->problem);
            printf("}");
        } else {
            printf("%10s  %s%s%s%s%s\n", size, r->repo_id, r->n_incomplete ? " (+" : "",
                   r->n_incomplete ? inc : "", r->n_incomplete ? " partial)" : "",
                   r->problem ? "  [problem]" : "");
            if (r->problem) printf("            %s\n", r->problem);
        }
    }
    char total[32];
    hub_cli_format_size(info->size_on_disk + partial, total, sizeof total);
    if (json) printf("],\"size_on_disk\":%llu,\"incomplete_bytes\":%llu}\n",
                     (unsigned long long)info->size_on_disk, (unsigned long long)partial);
    else printf("%10s  total in %s\n", total, mlxe_hub_cache_dir(hub));
    mlxe_hub_cache_info_free(info);
    mlxe_hub_free(hub);
    return 0;
}
