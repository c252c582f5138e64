/* tokenizer/json_scan.h — a minimal JSON scanner for the two huge members
 * of tokenizer.json (model.vocab and model.merges, up to ~500k entries),
 * which a DOM parser would turn into a million small allocations. It
 * walks raw text: skip a value, read a string (escapes decoded), read an
 * integer, iterate object members. Everything else goes through cJSON. */
#ifndef MLXE_TOKENIZER_JSON_SCAN_H
#define MLXE_TOKENIZER_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer_internal.h"

typedef struct json_scan {
    const char *text, *end;
    const char *p;
    const char *error;   /* static message once something failed */
} json_scan;

void json_scan_ws(json_scan *s);
/* Skips one value (any type); false on malformed input. */
bool json_scan_skip(json_scan *s);
/* Reads a string at s->p into out (replacing its content). */
bool json_scan_string(json_scan *s, tok_buffer *out);
/* Reads an integer (no fraction or exponent). */
bool json_scan_int(json_scan *s, int64_t *value);
/* Consumes c after optional whitespace. */
bool json_scan_expect(json_scan *s, char c);
/* Line number of s->p, for messages. */
size_t json_scan_line(const json_scan *s);

#endif
