/* tokenizer/regex.h — the regexes of tokenizer.json (written for
 * Oniguruma, which the Rust library uses) compiled with PCRE2.
 *
 * The few places where PCRE2's Unicode classes differ from Oniguruma's are
 * rewritten before compiling: \s (Oniguruma: U+0009-000D, U+0085 and the
 * Z categories; PCRE2 adds U+180E) and \w (Oniguruma: letters, marks,
 * decimal digits, connector punctuation; PCRE2 10.42 uses letters, all
 * numbers and '_'). Iteration follows onig's FindMatches: an empty match
 * right where the previous match ended is skipped by one character. */
#ifndef MLXE_TOKENIZER_REGEX_H
#define MLXE_TOKENIZER_REGEX_H

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/status.h"

typedef struct tok_regex tok_regex;

/* Per-thread matching state (PCRE2 match data), grown on demand. */
typedef struct tok_regex_matcher {
    void *match_data;
} tok_regex_matcher;

/* what names the pattern's place in errors ("pre_tokenizer.Split"). */
mlxe_status tok_regex_compile(const char *pattern, size_t size, const char *what, tok_regex **out,
                              mlxe_error *err);
void tok_regex_free(tok_regex *regex);

/* Finds the next match in text[0..size) starting the search at *position
 * (with the whole text as context for look-behind/ahead). Returns 1 and
 * [*match_start, *match_end) when found, 0 when none, -1 on a matching
 * error (message in err). *position and *last_match_end (SIZE_MAX before
 * the first call) carry the iteration state. */
int tok_regex_next(const tok_regex *regex, tok_regex_matcher *matcher, const char *text,
                   size_t size, size_t *position, size_t *last_match_end, size_t *match_start,
                   size_t *match_end, mlxe_error *err);

void tok_regex_matcher_free(tok_regex_matcher *matcher);

#endif
