/* diag/backends_info.c — which inference backends this build can use, and
 * why one cannot: the native CPU backend (always), the native CUDA backend
 * (compiled in, and a GPU visible), and llama.cpp for GGUF files, which this
 * version does not have yet; for it the report still says where a libllama
 * would be looked for and whether one is there, without loading it (loading
 * would run its initialisers just to write a report). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diag/report_internal.h"
#include "mlxengine/version.h"

static cJSON *backend(const char *name, bool available, const char *detail) {
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "name", name);
    cJSON_AddBoolToObject(entry, "available", available);
    cJSON_AddStringToObject(entry, "detail", detail);
    return entry;
}

static void add_candidate(cJSON *searched, const char *path) {
    struct stat st;
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "path", path);
    cJSON_AddBoolToObject(entry, "found", stat(path, &st) == 0 && S_ISREG(st.st_mode));
    cJSON_AddItemToArray(searched, entry);
}

/* The places the dynamic loader would find "libllama.so": $MLXE_LLAMA_LIBRARY
 * first (our override), then LD_LIBRARY_PATH, then the usual system and
 * /usr/local folders (those ld.so.cache normally covers). */
static cJSON *llama_candidates(void) {
    cJSON *searched = cJSON_CreateArray();
    const char *override = getenv("MLXE_LLAMA_LIBRARY");
    if (override && *override) add_candidate(searched, override);
    const char *ld_path = getenv("LD_LIBRARY_PATH");
    if (ld_path && *ld_path) {
        char *copy = strdup(ld_path);
        char *save = NULL;
        for (char *dir = copy ? strtok_r(copy, ":", &save) : NULL; dir; dir = strtok_r(NULL, ":", &save)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/libllama.so", dir);
            add_candidate(searched, path);
        }
        free(copy);
    }
    static const char *const dirs[] = {"/usr/local/lib", "/usr/lib/x86_64-linux-gnu",
                                       "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/libllama.so", dirs[i]);
        add_candidate(searched, path);
    }
    return searched;
}

cJSON *mlxe_diag_collect_backends(const cJSON *gpus) {
    const mlxe_build_info *info = mlxe_build_info_get();
    cJSON *backends = cJSON_CreateArray();
    char detail[1400];
    snprintf(detail, sizeof detail, "built in; C code compiled for %s", info->simd);
    cJSON *cpu = backend("cpu", true, detail);
    cJSON_AddItemToArray(backends, cpu);

    const cJSON *status = cJSON_GetObjectItemCaseSensitive(gpus, "status");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(gpus, "reason");
    bool gpu_found = cJSON_IsString(status) && strcmp(status->valuestring, "found") == 0;
    bool cuda_available = info->cuda_compiled && gpu_found;
    if (!info->cuda_compiled)
        snprintf(detail, sizeof detail,
                 "not compiled in: the build found no CUDA toolkit (rebuild with the toolkit installed, "
                 "or -DMLXE_CUDA=ON to make its absence an error)");
    else if (!gpu_found)
        snprintf(detail, sizeof detail, "compiled in, but %s",
                 cJSON_IsString(reason) ? reason->valuestring : "no GPU was found");
    else
        snprintf(detail, sizeof detail, "compiled in; %d GPU(s) visible",
                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(gpus, "devices")));
    cJSON_AddItemToArray(backends, backend("cuda", cuda_available, detail));

    cJSON *llama = backend("llama.cpp", false,
                           "not built yet: this version of mlxengine has no llama.cpp backend, so GGUF "
                           "files cannot be run; \"searched\" lists where it will look for libllama");
    cJSON_AddItemToObject(llama, "searched", llama_candidates());
    cJSON_AddItemToArray(backends, llama);
    return backends;
}
