/* hub/hub_resolve.c — turning what a user typed into a model folder (a path,
 * a registry alias, or "org/name[@rev][:QUANT]"), and the memory estimate
 * made before loading (weights + KV cache at the context + overhead, against
 * MemAvailable). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "hub/hub_internal.h"

void mlxe_hub_model_ref_clear(mlxe_hub_model_ref *ref) {
    if (!ref) return;
    free(ref->repo_id);
    free(ref->revision);
    free(ref->quant);
    memset(ref, 0, sizeof *ref);
}

mlxe_status mlxe_hub_parse_model_ref(const char *text, mlxe_hub_model_ref *out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_parse_model_ref: out is NULL");
    memset(out, 0, sizeof *out);
    if (!text) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "no model name given");
    char *copy = strdup(text);
    if (!copy) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    /* The quantization follows the last ':' after the id (revisions have no ':'). */
    char *colon = strrchr(copy, ':');
    if (colon) {
        *colon = 0;
        out->quant = strdup(colon + 1);
    }
    char *at = strchr(copy, '@');
    if (at) {
        *at = 0;
        out->revision = strdup(at + 1);
    }
    out->repo_id = strdup(copy);
    free(copy);
    mlxe_status s = MLXE_OK;
    if (!out->repo_id || (colon && !out->quant) || (at && !out->revision))
        s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    else if (!hub_repo_id_valid(out->repo_id))
        s = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                           "'%s' is not a model: expected a folder, a registry alias (see 'mlxengine "
                           "list --registry') or a Hub id 'org/name[@revision][:QUANT]'",
                           text);
    else if (out->revision && (!*out->revision || !hub_relative_path_safe(out->revision)))
        s = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "'%s': the revision after '@' is not valid", text);
    else if (out->quant && !*out->quant)
        s = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "'%s': nothing after ':' (expected e.g. Q4_K_M)", text);
    if (s) mlxe_hub_model_ref_clear(out);
    return s;
}

mlxe_status mlxe_hub_resolve_model(mlxe_hub *hub, const mlxe_registry *registry, const char *name,
                                   bool download, const mlxe_hub_download_options *download_options,
                                   char **folder, mlxe_error *err) {
    if (!hub || !name || !folder)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_resolve_model: NULL argument");
    *folder = NULL;
    if (mlxe_dir_exists(name)) {
        *folder = strdup(name);
        return *folder ? MLXE_OK : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const mlxe_registry_entry *entry = mlxe_registry_find(registry, name);
    mlxe_hub_model_ref ref;
    mlxe_status s = mlxe_hub_parse_model_ref(entry ? entry->repo_id : name, &ref, err);
    if (s) return s;
    mlxe_hub_download_options options;
    if (download_options) options = *download_options;
    else mlxe_hub_download_options_init(&options);
    if (ref.revision) options.revision = ref.revision;
    if (ref.quant) options.gguf_quant = ref.quant;
    if (download && !hub->offline) {
        s = mlxe_hub_snapshot_download(hub, ref.repo_id, &options, folder, err);
    } else if (hub->offline) {
        s = mlxe_hub_snapshot_download(hub, ref.repo_id, &options, folder, err); /* cache only */
    } else {
        s = mlxe_hub_cache_resolve(hub, ref.repo_id, options.revision, folder, err);
    }
    mlxe_hub_model_ref_clear(&ref);
    return s;
}

static int64_t config_int(const cJSON *config, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
    if (cJSON_IsNumber(v)) return (int64_t)v->valuedouble;
    /* Multimodal configs (gemma3, qwen2-vl...) keep the LM's numbers in text_config. */
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(config, "text_config");
    v = cJSON_IsObject(text) ? cJSON_GetObjectItemCaseSensitive(text, key) : NULL;
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static uint64_t mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

mlxe_status mlxe_hub_estimate_memory(const char *folder, int context_length,
                                     mlxe_memory_estimate *out, mlxe_error *err) {
    if (!folder || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_estimate_memory: NULL argument");
    memset(out, 0, sizeof *out);
    DIR *d = opendir(folder);
    if (!d) return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "model folder %s cannot be opened", folder);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        bool weights = (n > 12 && strcmp(e->d_name + n - 12, ".safetensors") == 0) ||
                       (n > 5 && strcasecmp(e->d_name + n - 5, ".gguf") == 0);
        if (!weights) continue;
        char *p = hub_printf("%s/%s", folder, e->d_name);
        struct stat st;
        if (p && stat(p, &st) == 0) out->weights_bytes += (uint64_t)st.st_size;
        free(p);
    }
    closedir(d);
    char *config_path = mlxe_path_join(folder, "config.json");
    cJSON *config = NULL;
    if (config_path && mlxe_file_exists(config_path)) {
        mlxe_status s = mlxe_json_parse_file(config_path, 1 << 22, &config, err);
        if (s) {
            free(config_path);
            return s;
        }
        int64_t layers = config_int(config, "num_hidden_layers");
        int64_t heads = config_int(config, "num_attention_heads");
        int64_t kv_heads = config_int(config, "num_key_value_heads");
        int64_t hidden = config_int(config, "hidden_size");
        int64_t head_dim = config_int(config, "head_dim");
        int64_t max_pos = config_int(config, "max_position_embeddings");
        if (kv_heads <= 0) kv_heads = heads;
        if (head_dim <= 0 && heads > 0 && hidden > 0) head_dim = hidden / heads;
        int64_t ctx = context_length > 0 ? context_length : (max_pos > 0 ? (max_pos < 8192 ? max_pos : 8192) : 4096);
        if (layers > 0 && kv_heads > 0 && head_dim > 0)
            out->kv_cache_bytes = (uint64_t)(2 * layers * kv_heads * head_dim * ctx * 2);
    }
    cJSON_Delete(config);
    free(config_path);
    out->overhead_bytes = out->weights_bytes / 10 + (256ull << 20);
    out->total_bytes = out->weights_bytes + out->kv_cache_bytes + out->overhead_bytes;
    out->available_bytes = mem_available();
    out->fits = out->available_bytes == 0 || out->total_bytes <= out->available_bytes;
    return MLXE_OK;
}
