/* base/grow.h — appending to malloc'd arrays, for the cache reader's lists
 * (tens to thousands of items, so one realloc per item is fine), and a
 * growable text (doubling) for reports and exports. */
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

/* Text built by appending; data is NUL-terminated once anything was
 * appended. An allocation failure sets out_of_memory and later appends do
 * nothing, so callers check once at the end. Zero-initialise to start. */
typedef struct mlxe_text {
    char *data;
    size_t length, capacity;
    bool out_of_memory;
} mlxe_text;

static inline void mlxe_text_append(mlxe_text *text, const char *bytes, size_t n) {
    if (text->out_of_memory) return;
    if (text->length + n + 1 > text->capacity) {
        size_t capacity = text->capacity ? text->capacity : 4096;
        while (capacity < text->length + n + 1) capacity *= 2;
        char *grown = (char *)realloc(text->data, capacity);
        if (!grown) {
            text->out_of_memory = true;
            return;
        }
        text->data = grown;
        text->capacity = capacity;
    }
    memcpy(text->data + text->length, bytes, n);
    text->length += n;
    text->data[text->length] = '\0';
}

#endif
