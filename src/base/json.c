/* base/json.c — cJSON parsing with located errors and typed field access. */
#include "base/json.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"

mlxe_status mlxe_json_parse(const char *text, size_t size, const char *what, cJSON **out,
                            mlxe_error *err) {
    *out = NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, size, &end, 0);
    if (!root) {
        if (!end) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory parsing JSON", what);
        size_t offset = (size_t)(end - text);
        size_t line = 1, column = 1;
        for (size_t i = 0; i < offset && i < size; i++) {
            if (text[i] == '\n') { line++; column = 1; } else column++;
        }
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: invalid JSON at line %zu, column %zu (byte %zu)", what, line,
                              column, offset);
    }
    *out = root;
    return MLXE_OK;
}

mlxe_status mlxe_json_parse_file(const char *path, size_t max_size, cJSON **out, mlxe_error *err) {
    char *text;
    size_t size;
    *out = NULL;
    mlxe_status status = mlxe_file_read_all(path, max_size, &text, &size, err);
    if (status != MLXE_OK) return status;
    status = mlxe_json_parse(text, size, path, out, err);
    free(text);
    return status;
}

static const cJSON *field(const cJSON *obj, const char *key, bool *found) {
    const cJSON *item = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    if (item && cJSON_IsNull(item)) item = NULL;
    if (found) *found = item != NULL;
    return item;
}

mlxe_status mlxe_json_get_int(const cJSON *obj, const char *key, const char *what, int64_t *out,
                              bool *found, mlxe_error *err) {
    const cJSON *item = field(obj, key, found);
    if (!item) return MLXE_OK;
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v != floor(v) || fabs(v) > 9007199254740992.0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: key '%s' must be an integer", what, key);
    *out = (int64_t)v;
    return MLXE_OK;
}

mlxe_status mlxe_json_get_double(const cJSON *obj, const char *key, const char *what, double *out,
                                 bool *found, mlxe_error *err) {
    const cJSON *item = field(obj, key, found);
    if (!item) return MLXE_OK;
    if (!cJSON_IsNumber(item))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: key '%s' must be a number", what, key);
    *out = item->valuedouble;
    return MLXE_OK;
}

mlxe_status mlxe_json_get_bool(const cJSON *obj, const char *key, const char *what, bool *out,
                               bool *found, mlxe_error *err) {
    const cJSON *item = field(obj, key, found);
    if (!item) return MLXE_OK;
    if (!cJSON_IsBool(item))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: key '%s' must be true or false", what, key);
    *out = cJSON_IsTrue(item);
    return MLXE_OK;
}

mlxe_status mlxe_json_get_string(const cJSON *obj, const char *key, const char *what,
                                 const char **out, bool *found, mlxe_error *err) {
    const cJSON *item = field(obj, key, found);
    if (!item) return MLXE_OK;
    if (!cJSON_IsString(item))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: key '%s' must be a string", what, key);
    *out = item->valuestring;
    return MLXE_OK;
}
