/* base/grow.h — appending to malloc'd arrays, for the cache survey's lists
 * (tens to thousands of items, so one realloc per item is fine). */
#ifndef MLXE_BASE_GROW_H
#define MLXE_BASE_GROW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* Appends one zeroed item to *items (holding *count items of item_size) and
 * returns it, with *count incremented; NULL when out of memory (*items and
 * *count unchanged). */
static inline void *mlxe_append(void **items, size_t *count, size_t item_size) {
    void *grown = realloc(*items, (*count + 1) * item_size);
    if (!grown) return NULL;
    *items = grown;
    void *slot = (char *)grown + *count * item_size;
    memset(slot, 0, item_size);
    (*count)++;
    return slot;
}

/* Appends a copy of text to a string array; false when out of memory. */
static inline bool mlxe_append_string(char ***strings, size_t *count, const char *text) {
    char *copy = strdup(text);
    if (!copy) return false;
    char **slot = (char **)mlxe_append((void **)strings, count, sizeof(char *));
    if (!slot) {
        free(copy);
        return false;
    }
    *slot = copy;
    return true;
}

static inline void mlxe_free_strings(char **strings, size_t count) {
    for (size_t i = 0; i < count; i++) free(strings[i]);
    free(strings);
}

#endif
