/* tokenizer/unicode.h — UTF-8 and character classes with the meanings the
 * Rust library gives them (char::is_whitespace, is_numeric, ...), on
 * utf8proc's Unicode tables. */
#ifndef MLXE_TOKENIZER_UNICODE_H
#define MLXE_TOKENIZER_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes one character of valid UTF-8 at text[0..size); returns its
 * length (>= 1) and sets *codepoint. */
size_t tok_utf8_decode(const char *text, size_t size, uint32_t *codepoint);
/* Writes codepoint as UTF-8 into out (4 bytes room); returns the length. */
size_t tok_utf8_encode(uint32_t codepoint, char *out);
/* Length of the valid UTF-8 prefix of text. */
size_t tok_utf8_valid_prefix(const char *text, size_t size);
/* Length of the invalid sequence at text (a "maximal subpart" in Unicode's
 * terms, as Rust's from_utf8_lossy and Python's "replace" count them),
 * given that text does not start with a valid character. */
size_t tok_utf8_invalid_length(const char *text, size_t size);
/* Whether text[0..size) is a proper prefix of some valid multi-byte
 * character (so more bytes could still complete it). */
bool tok_utf8_incomplete(const char *text, size_t size);

bool tok_char_is_whitespace(uint32_t c);   /* Rust char::is_whitespace (White_Space) */
bool tok_char_is_numeric(uint32_t c);      /* Rust char::is_numeric: Nd, Nl, No */
bool tok_char_is_punctuation(uint32_t c);  /* ASCII punctuation or category P* */
bool tok_char_is_word(uint32_t c);         /* letters, marks, numbers, connector punctuation */
bool tok_char_is_combining_mark(uint32_t c); /* categories Mn, Mc, Me (StripAccents) */

#endif
