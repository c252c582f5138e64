/* tokenizer/special_tokens_map.c — folds special_tokens_map.json into the
 * tokenizer_config.json text (see the header). */
#include "tokenizer/special_tokens_map.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

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
