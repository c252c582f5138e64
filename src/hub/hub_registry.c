/* hub/hub_registry.c — the registry of curated models: short aliases
 * (ollama-style "qwen3:0.6b") for mlx-community 4-bit builds with their
 * size, context and default sampling, plus the user's own file
 * ($XDG_CONFIG_HOME/mlxengine/models.json) adding or overriding entries.
 * Sampling defaults follow each model's generation_config.json; sizes are the
 * approximate download sizes of the 4-bit builds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "hub/hub_internal.h"

static const char *const stop_llama3[] = {"<|eot_id|>", "<|eom_id|>", NULL};
static const char *const stop_chatml[] = {"<|im_end|>", "<|endoftext|>", NULL};
static const char *const stop_mistral[] = {"</s>", NULL};
static const char *const stop_gemma[] = {"<end_of_turn>", NULL};
static const char *const stop_phi3[] = {"<|end|>", "<|endoftext|>", NULL};

#define GB(x) ((uint64_t)((x) * 1e9))
static const mlxe_registry_entry builtin_entries[] = {
    {"llama3.2:1b", "mlx-community/Llama-3.2-1B-Instruct-4bit", "llama", 1.24, "4bit", GB(0.70), 131072, 0.6, 0.9, 0, stop_llama3},
    {"llama3.2:3b", "mlx-community/Llama-3.2-3B-Instruct-4bit", "llama", 3.21, "4bit", GB(1.82), 131072, 0.6, 0.9, 0, stop_llama3},
    {"llama3.1:8b", "mlx-community/Meta-Llama-3.1-8B-Instruct-4bit", "llama", 8.03, "4bit", GB(4.52), 131072, 0.6, 0.9, 0, stop_llama3},
    {"qwen2.5:0.5b", "mlx-community/Qwen2.5-0.5B-Instruct-4bit", "qwen2", 0.49, "4bit", GB(0.28), 32768, 0.7, 0.8, 20, stop_chatml},
    {"qwen2.5:1.5b", "mlx-community/Qwen2.5-1.5B-Instruct-4bit", "qwen2", 1.54, "4bit", GB(0.87), 32768, 0.7, 0.8, 20, stop_chatml},
    {"qwen2.5:7b", "mlx-community/Qwen2.5-7B-Instruct-4bit", "qwen2", 7.62, "4bit", GB(4.28), 32768, 0.7, 0.8, 20, stop_chatml},
    {"qwen3:0.6b", "mlx-community/Qwen3-0.6B-4bit", "qwen3", 0.60, "4bit", GB(0.34), 40960, 0.6, 0.95, 20, stop_chatml},
    {"qwen3:1.7b", "mlx-community/Qwen3-1.7B-4bit", "qwen3", 1.72, "4bit", GB(0.97), 40960, 0.6, 0.95, 20, stop_chatml},
    {"qwen3:4b", "mlx-community/Qwen3-4B-4bit", "qwen3", 4.02, "4bit", GB(2.26), 40960, 0.6, 0.95, 20, stop_chatml},
    {"qwen3:8b", "mlx-community/Qwen3-8B-4bit", "qwen3", 8.19, "4bit", GB(4.62), 40960, 0.6, 0.95, 20, stop_chatml},
    {"mistral:7b", "mlx-community/Mistral-7B-Instruct-v0.3-4bit", "mistral", 7.25, "4bit", GB(4.08), 32768, 0.7, 1.0, 0, stop_mistral},
    {"smollm2:135m", "mlx-community/SmolLM2-135M-Instruct-4bit", "llama", 0.135, "4bit", GB(0.08), 8192, 0.2, 0.9, 0, stop_chatml},
    {"smollm2:360m", "mlx-community/SmolLM2-360M-Instruct-4bit", "llama", 0.362, "4bit", GB(0.20), 8192, 0.2, 0.9, 0, stop_chatml},
    {"smollm2:1.7b", "mlx-community/SmolLM2-1.7B-Instruct-4bit", "llama", 1.71, "4bit", GB(0.96), 8192, 0.2, 0.9, 0, stop_chatml},
    {"gemma3:1b", "mlx-community/gemma-3-1b-it-4bit", "gemma3", 1.0, "4bit", GB(0.73), 32768, 1.0, 0.95, 64, stop_gemma},
    {"phi3.5:mini", "mlx-community/Phi-3.5-mini-instruct-4bit", "phi3", 3.82, "4bit", GB(2.15), 131072, 0.7, 1.0, 0, stop_phi3},
};
#undef GB

/* A user entry owns its strings. */
typedef struct owned_entry {
    mlxe_registry_entry entry;
    char *strings[5];
    char **stop;
} owned_entry;

struct mlxe_registry {
    mlxe_registry_entry *entries;
    size_t n_entries;
    owned_entry **owned;
    size_t n_owned;
};

void mlxe_registry_free(mlxe_registry *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n_owned; i++) {
        for (int j = 0; j < 5; j++) free(r->owned[i]->strings[j]);
        for (char **s = r->owned[i]->stop; s && *s; s++) free(*s);
        free(r->owned[i]->stop);
        free(r->owned[i]);
    }
    free(r->owned);
    free(r->entries);
    free(r);
}

size_t mlxe_registry_count(const mlxe_registry *r) { return r ? r->n_entries : 0; }

const mlxe_registry_entry *mlxe_registry_at(const mlxe_registry *r, size_t index) {
    return r && index < r->n_entries ? &r->entries[index] : NULL;
}

const mlxe_registry_entry *mlxe_registry_find(const mlxe_registry *r, const char *name) {
    if (!r || !name) return NULL;
    for (size_t i = 0; i < r->n_entries; i++)
        if (strcasecmp(r->entries[i].alias, name) == 0 || strcmp(r->entries[i].repo_id, name) == 0)
            return &r->entries[i];
    return NULL;
}

static char *default_user_file(void) {
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg) return hub_printf("%s/mlxengine/models.json", xdg);
    const char *home = getenv("HOME");
    return home && *home ? hub_printf("%s/.config/mlxengine/models.json", home) : NULL;
}

static double number_or(const cJSON *obj, const char *key, double fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static mlxe_status add_user_entry(mlxe_registry *r, const cJSON *item, const char *path, size_t index,
                                  mlxe_error *err) {
    const cJSON *alias = cJSON_GetObjectItemCaseSensitive(item, "alias");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
    if (!cJSON_IsString(alias) || !cJSON_IsString(id) || !hub_repo_id_valid(id->valuestring))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: models[%zu] needs a string 'alias' and an 'id' of the form "
                              "'org/name'",
                              path, index);
    owned_entry *o = calloc(1, sizeof *o);
    if (!o) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    const mlxe_registry_entry *base = mlxe_registry_find(r, alias->valuestring);
    mlxe_registry_entry e = base ? *base : (mlxe_registry_entry){0};
    if (!base) {
        e.context_length = 4096;
        e.temperature = 0.7;
        e.top_p = 1.0;
    }
    const cJSON *family = cJSON_GetObjectItemCaseSensitive(item, "family");
    const cJSON *quant = cJSON_GetObjectItemCaseSensitive(item, "quantization");
    o->strings[0] = strdup(alias->valuestring);
    o->strings[1] = strdup(id->valuestring);
    o->strings[2] = strdup(cJSON_IsString(family) ? family->valuestring : (e.family ? e.family : ""));
    o->strings[3] = strdup(cJSON_IsString(quant) ? quant->valuestring : (e.quantization ? e.quantization : ""));
    e.alias = o->strings[0];
    e.repo_id = o->strings[1];
    e.family = o->strings[2];
    e.quantization = o->strings[3];
    e.parameters_billion = number_or(item, "parameters_billion", e.parameters_billion);
    e.size_bytes = (uint64_t)number_or(item, "size_bytes", (double)e.size_bytes);
    e.context_length = (int)number_or(item, "context_length", e.context_length);
    e.temperature = number_or(item, "temperature", e.temperature);
    e.top_p = number_or(item, "top_p", e.top_p);
    e.top_k = (int)number_or(item, "top_k", e.top_k);
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(item, "stop");
    if (cJSON_IsArray(stop)) {
        o->stop = calloc((size_t)cJSON_GetArraySize(stop) + 1, sizeof *o->stop);
        size_t n = 0;
        const cJSON *s;
        cJSON_ArrayForEach(s, stop) if (o->stop && cJSON_IsString(s)) o->stop[n++] = strdup(s->valuestring);
        e.stop = (const char *const *)o->stop;
    }
    o->entry = e;
    owned_entry **owned = realloc(r->owned, (r->n_owned + 1) * sizeof *owned);
    if (!owned || !o->strings[0] || !o->strings[1] || !o->strings[2] || !o->strings[3]) {
        if (owned) r->owned = owned;
        for (int j = 0; j < 5; j++) free(o->strings[j]);
        for (char **s = o->stop; s && *s; s++) free(*s);
        free(o->stop);
        free(o);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    r->owned = owned;
    r->owned[r->n_owned++] = o;
    if (base) {
        r->entries[base - r->entries] = e;
        return MLXE_OK;
    }
    mlxe_registry_entry *entries = realloc(r->entries, (r->n_entries + 1) * sizeof *entries);
    if (!entries) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    r->entries = entries;
    r->entries[r->n_entries++] = e;
    return MLXE_OK;
}

mlxe_status mlxe_registry_load(const char *user_file, mlxe_registry **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_registry_load: out is NULL");
    *out = NULL;
    mlxe_registry *r = calloc(1, sizeof *r);
    size_t n = sizeof builtin_entries / sizeof builtin_entries[0];
    if (r) r->entries = malloc(n * sizeof *r->entries);
    if (!r || !r->entries) {
        mlxe_registry_free(r);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    memcpy(r->entries, builtin_entries, sizeof builtin_entries);
    r->n_entries = n;
    char *path = user_file ? strdup(user_file) : default_user_file();
    mlxe_status s = MLXE_OK;
    if (path && mlxe_file_exists(path)) {
        cJSON *root = NULL;
        s = mlxe_json_parse_file(path, 1 << 20, &root, err);
        const cJSON *models = s == MLXE_OK ? cJSON_GetObjectItemCaseSensitive(root, "models") : NULL;
        if (s == MLXE_OK && !cJSON_IsArray(models))
            s = mlxe_error_set(err, MLXE_ERR_FORMAT,
                               "%s: expected {\"models\": [{\"alias\": ..., \"id\": ...}, ...]}", path);
        size_t index = 0;
        const cJSON *item;
        if (s == MLXE_OK) cJSON_ArrayForEach(item, models) {
                s = add_user_entry(r, item, path, index++, err);
                if (s) break;
            }
        cJSON_Delete(root);
    } else if (user_file && !mlxe_file_exists(user_file)) {
        s = mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "registry file %s does not exist", user_file);
    }
    free(path);
    if (s) {
        mlxe_registry_free(r);
        return s;
    }
    *out = r;
    return MLXE_OK;
}
