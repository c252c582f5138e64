/* tokenizer/config_fields.h — the few tokenizer_config.json and
 * special_tokens_map.json fields the tokenizer needs (special token
 * contents, add_bos_token, add_eos_token).
 * TODO(formats): switch to mlxe_tokenizer_config_* of src/format once that
 * lands on main, and delete this file. */
#ifndef MLXE_TOKENIZER_CONFIG_FIELDS_H
#define MLXE_TOKENIZER_CONFIG_FIELDS_H

#include <stddef.h>

#include "mlxengine/status.h"

typedef struct tok_config_fields {
    char *bos_token, *eos_token, *pad_token, *unk_token; /* NULL when absent or null */
    int add_bos_token, add_eos_token;                    /* -1 absent, 0, 1 */
} tok_config_fields;

void tok_config_fields_init(tok_config_fields *cfg);
mlxe_status tok_config_fields_parse(const char *json, size_t size, const char *what, tok_config_fields *cfg,
                                    mlxe_error *err);
void tok_config_fields_free(tok_config_fields *cfg);

/* Makes a tokenizer_config JSON text in which special tokens missing from
 * config are taken from special_tokens_map. *merged is NULL (nothing to
 * merge) or a malloc'd string. Either input may be NULL. */
mlxe_status tok_config_merge_special_map(const char *config, size_t config_size, const char *map,
                                         size_t map_size, char **merged, size_t *merged_size,
                                         mlxe_error *err);

#endif
