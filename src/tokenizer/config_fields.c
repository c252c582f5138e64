/* tokenizer/config_fields.c — tokenizer_config.json fields (see the header). */
#include "tokenizer/config_fields.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

void tok_config_fields_init(tok_config_fields *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->add_bos_token = cfg->add_eos_token = -1;
}

void tok_config_fields_free(tok_config_fields *cfg) {
    free(cfg->bos_token);
    free(cfg->eos_token);
    free(cfg->pad_token);
    free(cfg->unk_token);
    tok_config_fields_init(cfg);
}

/* A special token is a string or an AddedToken dict {"content": ...}. */
static mlxe_status token_content(const cJSON *root, const char *key, const char *what, char **out, mlxe_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return MLXE_OK;
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    if (!cJSON_IsString(v))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: '%s' must be a string or {\"content\": string}", what, key);
    size_t n = strlen(v->valuestring);
    *out = malloc(n + 1);
    if (!*out) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
    memcpy(*out, v->valuestring, n + 1);
    return MLXE_OK;
}

static mlxe_status flag(const cJSON *root, const char *key, const char *what, int *out, mlxe_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return MLXE_OK;
    if (!cJSON_IsBool(v)) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: '%s' must be true or false", what, key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return MLXE_OK;
}

mlxe_status tok_config_fields_parse(const char *json, size_t size, const char *what, tok_config_fields *cfg,
                                    mlxe_error *err) {
    cJSON *root = cJSON_ParseWithLength(json, size);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: not a JSON object (corrupt file? download it again)", what);
    }
    mlxe_status st = token_content(root, "bos_token", what, &cfg->bos_token, err);
    if (st == MLXE_OK) st = token_content(root, "eos_token", what, &cfg->eos_token, err);
    if (st == MLXE_OK) st = token_content(root, "pad_token", what, &cfg->pad_token, err);
    if (st == MLXE_OK) st = token_content(root, "unk_token", what, &cfg->unk_token, err);
    if (st == MLXE_OK) st = flag(root, "add_bos_token", what, &cfg->add_bos_token, err);
    if (st == MLXE_OK) st = flag(root, "add_eos_token", what, &cfg->add_eos_token, err);
    cJSON_Delete(root);
    return st;
}

mlxe_status tok_config_merge_special_map(const char *config, size_t config_size, const char *map,
                                         size_t map_size, char **merged, size_t *merged_size, mlxe_error *err) {
    *merged = NULL;
    *merged_size = 0;
    if (!map) return MLXE_OK;
    cJSON *m = cJSON_ParseWithLength(map, map_size);
    if (!m || !cJSON_IsObject(m)) {
        cJSON_Delete(m);
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "special_tokens_map.json: not a JSON object (corrupt file? download it again)");
    }
    cJSON *c = config ? cJSON_ParseWithLength(config, config_size) : cJSON_CreateObject();
    if (!c || !cJSON_IsObject(c)) {
        cJSON_Delete(m);
        cJSON_Delete(c);
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "tokenizer_config.json: not a JSON object (corrupt file? download it again)");
    }
    static const char *const keys[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    mlxe_status st = MLXE_OK;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        cJSON *from = cJSON_GetObjectItemCaseSensitive(m, keys[i]);
        if (!from || cJSON_GetObjectItemCaseSensitive(c, keys[i])) continue;
        cJSON *copy = cJSON_Duplicate(from, true);
        if (!copy || !cJSON_AddItemToObject(c, keys[i], copy)) {
            cJSON_Delete(copy);
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer_config.json: out of memory");
            break;
        }
    }
    if (st == MLXE_OK) {
        *merged = cJSON_PrintUnformatted(c);
        if (!*merged) st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer_config.json: out of memory");
        else *merged_size = strlen(*merged);
    }
    cJSON_Delete(m);
    cJSON_Delete(c);
    return st;
}
