/* diag/report_sections.c — the report's environment, Hugging Face cache,
 * loaded-models, returned-errors and log sections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/file.h"
#include "hub/hub_cache_scan.h"
#include "hub/hub_paths.h"
#include "diag/redact.h"
#include "diag/report_internal.h"
#include "engine/model_registry.h"

extern char **environ;

/* Variables that change what mlxengine or huggingface_hub do. */
static bool is_relevant_variable(const char *name) {
    static const char *const prefixes[] = {"MLXE_", "HF_", "HUGGINGFACE_", "HUGGING_FACE_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    static const char *const exact[] = {"CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES",
                                        "LD_LIBRARY_PATH", "OMP_NUM_THREADS", "XDG_CACHE_HOME",
                                        "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                                        "NO_PROXY", "no_proxy"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(name, exact[i]) == 0) return true;
    return false;
}

static int compare_by_name(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

cJSON *mlxe_diag_collect_environment(void) {
    cJSON *environment = cJSON_CreateArray();
    size_t n = 0;
    for (char **entry = environ; entry && *entry; entry++) n++;
    const char **relevant = calloc(n + 1, sizeof *relevant);
    if (!relevant) return environment;
    size_t n_relevant = 0;
    for (char **entry = environ; entry && *entry; entry++) {
        const char *eq = strchr(*entry, '=');
        if (!eq || (size_t)(eq - *entry) >= 256) continue;
        char name[256];
        memcpy(name, *entry, (size_t)(eq - *entry));
        name[eq - *entry] = '\0';
        if (is_relevant_variable(name)) relevant[n_relevant++] = *entry;
    }
    qsort(relevant, n_relevant, sizeof *relevant, compare_by_name);
    for (size_t i = 0; i < n_relevant; i++) {
        const char *eq = strchr(relevant[i], '=');
        char name[256];
        memcpy(name, relevant[i], (size_t)(eq - relevant[i]));
        name[eq - relevant[i]] = '\0';
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "name", name);
        if (mlxe_redact_is_secret_name(name)) {
            cJSON_AddStringToObject(item, "value", eq[1] ? "[REDACTED]" : "");
            cJSON_AddBoolToObject(item, "redacted", true);
        } else {
            char *value = mlxe_redact_dup(eq + 1);
            cJSON_AddStringToObject(item, "value", value ? value : "[REDACTED]");
            cJSON_AddBoolToObject(item, "redacted", !value || strcmp(value, eq + 1) != 0);
            free(value);
        }
        cJSON_AddItemToArray(environment, item);
    }
    free(relevant);
    return environment;
}

cJSON *mlxe_diag_collect_hub_cache(const char *cache_dir, bool scan_it) {
    cJSON *cache = cJSON_CreateObject();
    char *default_dir = cache_dir ? NULL : hub_default_cache_dir();
    const char *dir = cache_dir ? cache_dir : default_dir;
    cJSON_AddStringToObject(cache, "path", dir ? dir : "");
    char *token_path = hub_token_path();
    cJSON *token = cJSON_AddObjectToObject(cache, "token_file");
    cJSON_AddStringToObject(token, "path", token_path ? token_path : "");
    cJSON_AddBoolToObject(token, "present", token_path && mlxe_file_exists(token_path));
    free(token_path);

    hub_cache_scan *scan = NULL;
    mlxe_error err;
    mlxe_error_clear(&err);
    bool scanned = scan_it && dir && hub_cache_scan_run(dir, NULL, &scan, &err) == MLXE_OK;
    cJSON_AddBoolToObject(cache, "exists", scan ? scan->exists : dir && mlxe_dir_exists(dir));
    cJSON_AddBoolToObject(cache, "scanned", scanned);
    if (!scanned) {
        cJSON_AddStringToObject(cache, "error", scan_it ? err.message : "not scanned (turned off for this report)");
        free(default_dir);
        return cache;
    }
    cJSON_AddNullToObject(cache, "error");
    size_t n_models = 0, n_corrupted = 0, n_partial = 0;
    cJSON *repos = cJSON_CreateArray();
    for (size_t i = 0; i < scan->n_repos; i++) {
        const hub_cache_repo *repo = &scan->repos[i];
        n_models += strcmp(repo->repo_type, "model") == 0;
        n_corrupted += repo->state == HUB_CACHE_REPO_CORRUPTED;
        n_partial += repo->state == HUB_CACHE_REPO_PARTIAL;
        cJSON *item = cJSON_CreateObject();
        cJSON_AddStringToObject(item, "id", repo->repo_id);
        cJSON_AddStringToObject(item, "type", repo->repo_type);
        cJSON_AddStringToObject(item, "state", hub_cache_repo_state_name(repo->state));
        cJSON_AddNumberToObject(item, "size_bytes", (double)repo->size_on_disk);
        cJSON_AddNumberToObject(item, "revisions", (double)repo->n_revisions);
        cJSON_AddNumberToObject(item, "partial_downloads", (double)repo->n_partial_downloads);
        cJSON_AddNumberToObject(item, "problems", (double)repo->n_problems);
        cJSON_AddItemToArray(repos, item);
    }
    cJSON_AddNumberToObject(cache, "size_bytes", (double)scan->total_size);
    cJSON_AddNumberToObject(cache, "repo_count", (double)scan->n_repos);
    cJSON_AddNumberToObject(cache, "model_count", (double)n_models);
    cJSON_AddNumberToObject(cache, "partial_repos", (double)n_partial);
    cJSON_AddNumberToObject(cache, "corrupted_repos", (double)n_corrupted);
    cJSON_AddNumberToObject(cache, "partial_downloads", (double)scan->n_partial_downloads);
    cJSON_AddNumberToObject(cache, "partial_bytes", (double)scan->partial_bytes);
    cJSON_AddItemToObject(cache, "repos", repos);
    hub_cache_scan_free(scan);
    free(default_dir);
    return cache;
}

static void add_loaded_model(void *user, const mlxe_loaded_model_info *info) {
    cJSON *models = user;
    cJSON *item = cJSON_CreateObject();
    char loaded_at[40];
    mlxe_diag_format_time(info->loaded_at_unix, loaded_at, sizeof loaded_at);
    cJSON_AddStringToObject(item, "path", info->path);
    cJSON_AddStringToObject(item, "model_type", info->model_type);
    cJSON_AddStringToObject(item, "device", info->device);
    cJSON_AddNumberToObject(item, "memory_bytes", (double)info->memory_bytes);
    cJSON_AddStringToObject(item, "loaded_at", loaded_at);
    cJSON_AddNumberToObject(item, "load_seconds", info->load_seconds);
    cJSON_AddItemToArray(models, item);
}

cJSON *mlxe_diag_collect_loaded_models(void) {
    cJSON *loaded = cJSON_CreateObject();
    cJSON_AddBoolToObject(loaded, "tracked", true);
    cJSON_AddStringToObject(loaded, "detail",
                            "models this process loaded with mlxe_model_load and has not freed; memory "
                            "counts weights and the model's own device buffers, not contexts' KV caches");
    cJSON *models = cJSON_CreateArray();
    mlxe_model_registry_visit(add_loaded_model, models);
    double total = 0;
    const cJSON *model;
    cJSON_ArrayForEach(model, models) total += cJSON_GetObjectItemCaseSensitive(model, "memory_bytes")->valuedouble;
    cJSON_AddNumberToObject(loaded, "memory_bytes", total);
    cJSON_AddItemToObject(loaded, "models", models);
    return loaded;
}

cJSON *mlxe_diag_collect_returned_errors(size_t n) {
    cJSON *list = cJSON_CreateArray();
    if (n == 0) return list;
    mlxe_error_record *records = calloc(MLXE_ERROR_RING_SIZE, sizeof *records);
    if (!records) return list;
    size_t count = mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE);
    for (size_t i = count > n ? count - n : 0; i < count; i++) {
        cJSON *item = cJSON_CreateObject();
        char time_text[40];
        mlxe_diag_format_time(records[i].time_unix, time_text, sizeof time_text);
        cJSON_AddNumberToObject(item, "sequence", (double)records[i].sequence);
        cJSON_AddStringToObject(item, "time", time_text);
        cJSON_AddNumberToObject(item, "time_unix", records[i].time_unix);
        cJSON_AddNumberToObject(item, "thread_id", (double)records[i].thread_id);
        cJSON_AddStringToObject(item, "status", mlxe_status_name(records[i].status));
        /* Redacted by mlxe_recent_errors already; again here, as every cell is. */
        char *message = mlxe_redact_dup(records[i].message);
        cJSON_AddStringToObject(item, "message", message ? message : "[message dropped: out of memory]");
        free(message);
        cJSON_AddItemToArray(list, item);
    }
    free(records);
    return list;
}

void mlxe_diag_format_time(double time_unix, char *out, size_t size) {
    time_t seconds = (time_t)time_unix;
    int millis = (int)((time_unix - (double)seconds) * 1000.0);
    if (millis < 0) millis = 0;
    if (millis > 999) millis = 999;
    struct tm tm;
    gmtime_r(&seconds, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, size, "%s.%03dZ", base, millis);
}

cJSON *mlxe_diag_log_record_to_json(const mlxe_log_record *record) {
    cJSON *item = cJSON_CreateObject();
    char time_text[40];
    mlxe_diag_format_time(record->time_unix, time_text, sizeof time_text);
    cJSON_AddNumberToObject(item, "sequence", (double)record->sequence);
    cJSON_AddStringToObject(item, "time", time_text);
    cJSON_AddNumberToObject(item, "time_unix", record->time_unix);
    const char *level = mlxe_log_level_name(record->level);
    const char *category = mlxe_log_category_name(record->category);
    cJSON_AddStringToObject(item, "level", level ? level : "unknown");
    cJSON_AddStringToObject(item, "category", category ? category : "unknown");
    cJSON_AddNumberToObject(item, "thread_id", (double)record->thread_id);
    char *message = mlxe_redact_dup(record->message);
    cJSON_AddStringToObject(item, "message", message ? message : "[message dropped: out of memory]");
    free(message);
    return item;
}

cJSON *mlxe_diag_collect_log(size_t n, bool errors_only) {
    cJSON *list = cJSON_CreateArray();
    if (n == 0) return list;
    mlxe_log_record *records = calloc(MLXE_LOG_RING_SIZE, sizeof *records);
    if (!records) return list;
    size_t count = mlxe_log_recent(records, MLXE_LOG_RING_SIZE);
    /* Walk back from the newest to find the n wanted, then emit oldest first. */
    size_t first = count, taken = 0;
    while (first > 0 && taken < n) {
        first--;
        if (!errors_only || records[first].level >= MLXE_LOG_WARN) taken++;
    }
    for (size_t i = first; i < count; i++)
        if (!errors_only || records[i].level >= MLXE_LOG_WARN)
            cJSON_AddItemToArray(list, mlxe_diag_log_record_to_json(&records[i]));
    free(records);
    return list;
}
