/* format/quant_config.c — parsing config.json's "quantization" and
 * "quantization_config" (MLX affine settings, per-module overrides). The
 * rules are in quant_config.h. */
#include "format/quant_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"

/* config.json files are small; this bounds a corrupt one. */
#define MAX_CONFIG_BYTES (16u * 1024u * 1024u)

bool mlxe_quant_bits_supported(int bits) {
    return bits == 2 || bits == 3 || bits == 4 || bits == 5 || bits == 6 || bits == 8;
}

bool mlxe_quant_group_size_supported(int group_size) {
    return group_size == 32 || group_size == 64 || group_size == 128;
}

void mlxe_quant_config_free(mlxe_quant_config *config) {
    if (!config) return;
    for (size_t i = 0; i < config->n_modules; i++) free(config->modules[i].path);
    free(config->modules);
    memset(config, 0, sizeof *config);
}

/* Reads an integer field that must be one of the supported values. */
static mlxe_status read_setting(const cJSON *obj, const char *key, const char *what, const char *where,
                                int fallback, bool (*supported)(int), const char *allowed, int *out,
                                mlxe_error *err) {
    int64_t value = 0;
    bool found = false;
    mlxe_status st = mlxe_json_get_int(obj, key, what, &value, &found, err);
    if (st != MLXE_OK) return st;
    if (!found) {
        *out = fallback;
        return MLXE_OK;
    }
    if (value < 0 || value > 1024 || !supported((int)value))
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: %s '%s' is %lld; MLX affine quantization supports %s", what, where,
                              key, (long long)value, allowed);
    *out = (int)value;
    return MLXE_OK;
}

/* "mode" must be absent or "affine"; the others MLX has are named. */
static mlxe_status check_mode(const cJSON *obj, const char *what, const char *where, mlxe_error *err) {
    const char *mode = NULL;
    bool found = false;
    mlxe_status st = mlxe_json_get_string(obj, "mode", what, &mode, &found, err);
    if (st != MLXE_OK || !found || strcmp(mode, "affine") == 0) return st;
    if (strcmp(mode, "mxfp4") == 0 || strcmp(mode, "nvfp4") == 0 || strcmp(mode, "mxfp8") == 0)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: %s uses quantization mode '%s', which mlxengine does not run yet "
                              "(only 'affine'); use a model quantized with mode 'affine' or convert "
                              "the original weights with 'mlxengine convert --quantize'",
                              what, where, mode);
    return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                          "%s: %s has unknown quantization mode '%s' (only 'affine' is supported)", what,
                          where, mode);
}

static bool is_setting_key(const char *key) {
    return strcmp(key, "group_size") == 0 || strcmp(key, "bits") == 0 || strcmp(key, "mode") == 0;
}

static mlxe_status add_module(mlxe_quant_config *config, const char *path, mlxe_quant_params params,
                              const char *what, mlxe_error *err) {
    mlxe_quant_module *grown = realloc(config->modules, (config->n_modules + 1) * sizeof *grown);
    if (!grown) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    config->modules = grown;
    char *copy = strdup(path);
    if (!copy) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    config->modules[config->n_modules].path = copy;
    config->modules[config->n_modules].params = params;
    config->n_modules++;
    return MLXE_OK;
}

/* One per-module entry: an object with its own settings, or a bool. */
static mlxe_status parse_module(mlxe_quant_config *config, const cJSON *item, const char *section,
                                const char *what, mlxe_error *err) {
    mlxe_quant_params params = {.explicit_entry = true};
    char where[512];
    snprintf(where, sizeof where, "'%s' entry '%s'", section, item->string);
    if (cJSON_IsBool(item)) {
        params.quantized = cJSON_IsTrue(item);
        if (params.quantized) {
            params.bits = config->bits;
            params.group_size = config->group_size;
        }
        return add_module(config, item->string, params, what, err);
    }
    mlxe_status st = check_mode(item, what, where, err);
    /* Missing fields take MLX's defaults for the mode, as nn.quantize
     * passes the entry straight to to_quantized(). */
    if (st == MLXE_OK)
        st = read_setting(item, "bits", what, where, MLXE_QUANT_DEFAULT_BITS, mlxe_quant_bits_supported,
                          "2, 3, 4, 5, 6 and 8", &params.bits, err);
    if (st == MLXE_OK)
        st = read_setting(item, "group_size", what, where, MLXE_QUANT_DEFAULT_GROUP_SIZE,
                          mlxe_quant_group_size_supported, "32, 64 and 128", &params.group_size, err);
    if (st != MLXE_OK) return st;
    params.quantized = true;
    return add_module(config, item->string, params, what, err);
}

static mlxe_status parse_section(const cJSON *section, const char *name, bool with_modules,
                                 const char *what, mlxe_quant_config *out, mlxe_error *err) {
    char where[64];
    snprintf(where, sizeof where, "'%s'", name);
    mlxe_status st = check_mode(section, what, where, err);
    if (st == MLXE_OK)
        st = read_setting(section, "bits", what, where, MLXE_QUANT_DEFAULT_BITS, mlxe_quant_bits_supported,
                          "2, 3, 4, 5, 6 and 8", &out->bits, err);
    if (st == MLXE_OK)
        st = read_setting(section, "group_size", what, where, MLXE_QUANT_DEFAULT_GROUP_SIZE,
                          mlxe_quant_group_size_supported, "32, 64 and 128", &out->group_size, err);
    if (st != MLXE_OK || !with_modules) return st;
    for (const cJSON *item = section->child; item; item = item->next) {
        if (!item->string || is_setting_key(item->string)) continue;
        if (!cJSON_IsObject(item) && !cJSON_IsBool(item)) continue; /* other annotations */
        if ((st = parse_module(out, item, name, what, err)) != MLXE_OK) return st;
    }
    return MLXE_OK;
}

mlxe_status mlxe_quant_config_parse(const cJSON *root, const char *what, mlxe_quant_config *out,
                                    mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_quant_config_parse: out is required");
    memset(out, 0, sizeof *out);
    if (!what) what = "config.json";
    if (!cJSON_IsObject(root))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: expected a JSON object", what);
    const cJSON *quantization = cJSON_GetObjectItemCaseSensitive(root, "quantization");
    const cJSON *hf_config = cJSON_GetObjectItemCaseSensitive(root, "quantization_config");
    if (cJSON_IsNull(quantization)) quantization = NULL;
    if (cJSON_IsNull(hf_config)) hf_config = NULL;
    if (quantization && !cJSON_IsObject(quantization))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: 'quantization' must be an object", what);
    if (hf_config && !cJSON_IsObject(hf_config))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: 'quantization_config' must be an object", what);
    if (!quantization && !hf_config) return MLXE_OK;

    /* A Hugging Face quantizer (transformers' quantization_config) is a
     * different storage format altogether. */
    if (hf_config && !quantization) {
        const char *method = NULL;
        bool found = false;
        mlxe_status st = mlxe_json_get_string(hf_config, "quant_method", what, &method, &found, err);
        if (st != MLXE_OK) return st;
        if (found)
            return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                                  "%s: 'quantization_config' uses quant_method '%s', a Hugging Face "
                                  "quantizer mlxengine cannot read; use the unquantized model or an MLX "
                                  "quantized one (config.json with 'quantization')",
                                  what, method);
    }

    mlxe_status st;
    if (hf_config && quantization) {
        /* Defaults from quantization_config (mlx-lm reads it first), then
         * the per-module entries from quantization. */
        st = parse_section(hf_config, "quantization_config", false, what, out, err);
        mlxe_quant_config defaults = *out;
        if (st == MLXE_OK) st = parse_section(quantization, "quantization", true, what, out, err);
        if (st == MLXE_OK && (defaults.bits != out->bits || defaults.group_size != out->group_size)) {
            st = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                "%s: 'quantization' (bits %d, group_size %d) and 'quantization_config' "
                                "(bits %d, group_size %d) disagree",
                                what, out->bits, out->group_size, defaults.bits, defaults.group_size);
        }
    } else {
        st = parse_section(quantization ? quantization : hf_config,
                           quantization ? "quantization" : "quantization_config", true, what, out, err);
    }
    if (st != MLXE_OK) {
        mlxe_quant_config_free(out);
        return st;
    }
    out->present = true;
    return MLXE_OK;
}

mlxe_status mlxe_quant_config_load(const char *dir, mlxe_quant_config *out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_quant_config_load: out is required");
    memset(out, 0, sizeof *out);
    if (!dir) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_quant_config_load: dir is required");
    char *path = mlxe_path_join(dir, "config.json");
    if (!path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    cJSON *root = NULL;
    mlxe_status st = mlxe_json_parse_file(path, MAX_CONFIG_BYTES, &root, err);
    if (st == MLXE_OK) st = mlxe_quant_config_parse(root, path, out, err);
    cJSON_Delete(root);
    free(path);
    return st;
}

mlxe_quant_params mlxe_quant_config_lookup(const mlxe_quant_config *config, const char *path) {
    mlxe_quant_params params = {0};
    if (!config || !config->present || !path) return params;
    for (size_t i = 0; i < config->n_modules; i++)
        if (strcmp(config->modules[i].path, path) == 0) return config->modules[i].params;
    params.quantized = true;
    params.bits = config->bits;
    params.group_size = config->group_size;
    return params;
}

static cJSON *settings_object(int bits, int group_size) {
    cJSON *obj = cJSON_CreateObject();
    if (!obj) return NULL;
    if (!cJSON_AddNumberToObject(obj, "group_size", group_size) || !cJSON_AddNumberToObject(obj, "bits", bits) ||
        !cJSON_AddStringToObject(obj, "mode", "affine")) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

cJSON *mlxe_quant_config_to_json(const mlxe_quant_config *config) {
    if (!config) return NULL;
    cJSON *obj = settings_object(config->bits, config->group_size);
    if (!obj) return NULL;
    for (size_t i = 0; i < config->n_modules; i++) {
        const mlxe_quant_module *m = &config->modules[i];
        cJSON *entry = m->params.quantized ? settings_object(m->params.bits, m->params.group_size)
                                           : cJSON_CreateFalse();
        if (!entry || !cJSON_AddItemToObject(obj, m->path, entry)) {
            cJSON_Delete(entry);
            cJSON_Delete(obj);
            return NULL;
        }
    }
    return obj;
}
