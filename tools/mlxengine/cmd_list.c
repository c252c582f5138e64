/* tools/mlxengine/cmd_list.c — `mlxengine list`: the models in the Hugging
 * Face cache (ours and the Python tools'), with revision, size on disk,
 * quantization, architecture and whether they are complete; `--registry`
 * lists the curated aliases instead. */
#include <stdio.h>
#include <string.h>

#include "hub_cli.h"
#include "mlxengine/commands.h"

static int list_registry(bool json) {
    mlxe_registry *reg = hub_cli_registry("list");
    if (!reg) return 1;
    if (json) printf("[");
    else printf("%-14s %-48s %8s %-6s %9s %8s\n", "ALIAS", "ID", "PARAMS", "QUANT", "SIZE", "CONTEXT");
    for (size_t i = 0; i < mlxe_registry_count(reg); i++) {
        const mlxe_registry_entry *e = mlxe_registry_at(reg, i);
        char size[32];
        hub_cli_format_size(e->size_bytes, size, sizeof size);
        if (json) {
            printf("%s{\"alias\":", i ? "," : "");
            hub_cli_json_string(stdout, e->alias);
            printf(",\"id\":");
            hub_cli_json_string(stdout, e->repo_id);
            printf(",\"parameters_billion\":%g,\"quantization\":", e->parameters_billion);
            hub_cli_json_string(stdout, e->quantization);
            printf(",\"size_bytes\":%llu,\"context_length\":%d,\"temperature\":%g,\"top_p\":%g,\"top_k\":%d}",
                   (unsigned long long)e->size_bytes, e->context_length, e->temperature, e->top_p, e->top_k);
        } else {
            printf("%-14s %-48s %7.2fB %-6s %9s %8d\n", e->alias, e->repo_id, e->parameters_billion,
                   e->quantization, size, e->context_length);
        }
    }
    if (json) printf("]\n");
    mlxe_registry_free(reg);
    return 0;
}

int cmd_list(int argc, char **argv) {
    bool json = false, registry = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--registry") == 0) registry = true;
        else {
            fprintf(strcmp(argv[i], "--help") == 0 ? stdout : stderr,
                    "usage: mlxengine list [--registry] [--json]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (registry) return list_registry(json);
    mlxe_hub *hub = hub_cli_open("list");
    if (!hub) return 1;
    mlxe_hub_cache_info *info = NULL;
    mlxe_error err;
    if (mlxe_hub_cache_scan(hub, &info, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine list: %s\n", err.message);
        mlxe_hub_free(hub);
        return 1;
    }
    if (json) printf("[");
    else printf("%-44s %-12s %10s %-6s %-10s %s\n", "ID", "REVISION", "SIZE", "QUANT", "ARCH", "STATE");
    bool first = true;
    for (size_t i = 0; i < info->n_repos; i++) {
        const mlxe_hub_cached_repo *r = &info->repos[i];
        for (size_t j = 0; j < r->n_revisions; j++) {
            const mlxe_hub_cached_revision *rev = &r->revisions[j];
            char quant[32], arch[64], size[32];
            hub_cli_describe_folder(rev->snapshot_path, quant, sizeof quant, arch, sizeof arch);
            hub_cli_format_size(rev->size_on_disk, size, sizeof size);
            bool complete = rev->complete && r->n_incomplete == 0;
            const char *name = rev->n_refs ? rev->refs[0] : rev->commit;
            if (json) {
                printf("%s{\"id\":", first ? "" : ",");
                hub_cli_json_string(stdout, r->repo_id);
                printf(",\"commit\":");
                hub_cli_json_string(stdout, rev->commit);
                printf(",\"refs\":[");
                for (size_t k = 0; k < rev->n_refs; k++) {
                    if (k) printf(",");
                    hub_cli_json_string(stdout, rev->refs[k]);
                }
                printf("],\"size_on_disk\":%llu,\"files\":%zu,\"quantization\":",
                       (unsigned long long)rev->size_on_disk, rev->n_files);
                hub_cli_json_string(stdout, quant);
                printf(",\"architecture\":");
                hub_cli_json_string(stdout, arch);
                printf(",\"complete\":%s,\"path\":", complete ? "true" : "false");
                hub_cli_json_string(stdout, rev->snapshot_path);
                printf("}");
            } else {
                printf("%-44s %-12.12s %10s %-6s %-10s %s\n", r->repo_id, name, size, quant, arch,
                       complete ? "complete" : "partial");
            }
            first = false;
        }
    }
    if (json) printf("]\n");
    else if (info->n_repos == 0) fprintf(stderr, "no model in the cache %s\n", mlxe_hub_cache_dir(hub));
    mlxe_hub_cache_info_free(info);
    mlxe_hub_free(hub);
    return 0;
}
