/* tokenizer/pattern.c — Split/Replace patterns: a literal string or a
 * regex, cut into matching and non-matching segments (tokenizers'
 * Pattern::find_matches in utils/pattern.rs). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"

static bool segment_push(tok_segment_list *list, size_t start, size_t end, bool is_match) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 32;
        tok_segment *items = realloc(list->items, capacity * sizeof *items);
        if (!items) return false;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = (tok_segment){start, end, is_match};
    return true;
}

mlxe_status tok_pattern_find(const tok_pattern *pattern, const char *text, size_t size,
                             tok_regex_matcher *matcher, tok_segment_list *out, mlxe_error *err) {
    out->count = 0;
    if (size == 0) {
        if (!segment_push(out, 0, 0, false)) goto oom;
        return MLXE_OK;
    }
    size_t previous = 0;
    if (pattern->literal) {
        size_t n = pattern->literal_size;
        if (n == 0) { /* an empty literal never matches */
            if (!segment_push(out, 0, size, false)) goto oom;
            return MLXE_OK;
        }
        size_t i = 0;
        while (i + n <= size) {
            const char *hit = memmem(text + i, size - i, pattern->literal, n);
            if (!hit) break;
            size_t start = (size_t)(hit - text);
            if (start > previous && !segment_push(out, previous, start, false)) goto oom;
            if (!segment_push(out, start, start + n, true)) goto oom;
            previous = i = start + n;
        }
    } else {
        size_t position = 0, last_end = SIZE_MAX, start, end;
        for (;;) {
            int found = tok_regex_next(pattern->regex, matcher, text, size, &position, &last_end,
                                       &start, &end, err);
            if (found < 0) return err ? err->status : MLXE_ERR_LIMIT;
            if (found == 0) break;
            if (start > previous && !segment_push(out, previous, start, false)) goto oom;
            if (!segment_push(out, start, end, true)) goto oom;
            previous = end;
        }
    }
    if (previous < size && !segment_push(out, previous, size, false)) goto oom;
    return MLXE_OK;
oom:
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory splitting text");
}

void tok_pattern_free(tok_pattern *pattern) {
    free(pattern->literal);
    tok_regex_free(pattern->regex);
    memset(pattern, 0, sizeof *pattern);
}
