/* tokenizer/special_tokens_map.h — special_tokens_map.json, the older
 * place for the special token contents, folded into tokenizer_config.json
 * before the formats layer parses it (transformers reads both, the config
 * winning). */
#ifndef MLXE_TOKENIZER_SPECIAL_TOKENS_MAP_H
#define MLXE_TOKENIZER_SPECIAL_TOKENS_MAP_H

#include <stddef.h>

#include "mlxengine/status.h"

/* Makes a tokenizer_config JSON text in which the special tokens missing
 * from config (bos/eos/pad/unk) are taken from map. *merged is NULL
 * (nothing to merge: map is NULL) or a malloc'd string. config may be
 * NULL. */
mlxe_status tok_config_merge_special_map(const char *config, size_t config_size, const char *map,
                                         size_t map_size, char **merged, size_t *merged_size,
                                         mlxe_error *err);

#endif
