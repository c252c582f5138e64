/* base/json.h — JSON through cJSON, with errors that name file, line and key.
 *
 * Library code parses with mlxe_json_parse*, then reads typed fields with the
 * getters below, which distinguish "absent" (returns false, no error) from
 * "present but the wrong type" (error naming the key and what was expected). */
#ifndef MLXE_BASE_JSON_H
#define MLXE_BASE_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/status.h"

/* Parses text of length size; `what` names the source in errors (a path). */
mlxe_status mlxe_json_parse(const char *text, size_t size, const char *what, cJSON **out,
                            mlxe_error *err);
/* Reads and parses a file of at most max_size bytes. */
mlxe_status mlxe_json_parse_file(const char *path, size_t max_size, cJSON **out, mlxe_error *err);

/* Typed getters: *found is set to whether the key exists and is not null.
 * On a type mismatch they return MLXE_ERR_FORMAT with "what: key 'k' ...". */
mlxe_status mlxe_json_get_int(const cJSON *obj, const char *key, const char *what, int64_t *out,
                              bool *found, mlxe_error *err);
mlxe_status mlxe_json_get_double(const cJSON *obj, const char *key, const char *what, double *out,
                                 bool *found, mlxe_error *err);
mlxe_status mlxe_json_get_bool(const cJSON *obj, const char *key, const char *what, bool *out,
                               bool *found, mlxe_error *err);
/* *out borrows from obj. */
mlxe_status mlxe_json_get_string(const cJSON *obj, const char *key, const char *what,
                                 const char **out, bool *found, mlxe_error *err);

#endif
