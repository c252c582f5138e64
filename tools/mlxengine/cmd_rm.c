/* tools/mlxengine/cmd_rm.c — `mlxengine rm ID[@rev]`: deletes a model or one
 * revision from the cache the way huggingface_hub does (blobs another
 * revision uses stay). */
#include <stdio.h>
#include <string.h>

#include "hub_cli.h"
#include "mlxengine/commands.h"

int cmd_rm(int argc, char **argv) {
    const char *name = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else name = NULL, i = argc;
    }
    if (!name) {
        fprintf(stderr, "usage: mlxengine rm ID[@REVISION] [--json]\n");
        return 2;
    }
    mlxe_hub *hub = hub_cli_open("rm");
    mlxe_registry *reg = hub ? hub_cli_registry("rm") : NULL;
    if (!reg) {
        mlxe_hub_free(hub);
        return 1;
    }
    const mlxe_registry_entry *entry = mlxe_registry_find(reg, name);
    mlxe_hub_model_ref ref;
    mlxe_error err;
    int code = 0;
    uint64_t freed = 0;
    if (mlxe_hub_parse_model_ref(entry ? entry->repo_id : name, &ref, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine rm: %s\n", err.message);
        code = 2;
    } else if (mlxe_hub_cache_delete(hub, ref.repo_id, ref.revision, &freed, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine rm: %s\n", err.message);
        code = 1;
    } else if (json) {
        printf("{\"id\":");
        hub_cli_json_string(stdout, ref.repo_id);
        printf(",\"revision\":");
        hub_cli_json_string(stdout, ref.revision);
        printf(",\"freed_bytes\":%llu}\n", (unsigned long long)freed);
    } else {
        char size[32];
        hub_cli_format_size(freed, size, sizeof size);
        printf("deleted %s%s%s, freed %s\n", ref.repo_id, ref.revision ? "@" : "",
               ref.revision ? ref.revision : "", size);
    }
    mlxe_hub_model_ref_clear(&ref);
    mlxe_registry_free(reg);
    mlxe_hub_free(hub);
    return code;
}
