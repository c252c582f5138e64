/* template/arena.c — chunked bump allocation with a byte limit (see arena.h). */
#include "template/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct tpl_arena_chunk {
    tpl_arena_chunk *next;
    size_t size;
    /* followed by the data, aligned to 16 by the header size below */
};

#define CHUNK_HEADER 16
#define CHUNK_SIZE (64 * 1024)

void tpl_arena_init(tpl_arena *arena, size_t limit) {
    arena->chunks = NULL;
    arena->cursor = NULL;
    arena->remaining = 0;
    arena->used = 0;
    arena->limit = limit;
}

void tpl_arena_free(tpl_arena *arena) {
    tpl_arena_chunk *chunk = arena->chunks;
    while (chunk) {
        tpl_arena_chunk *next = chunk->next;
        free(chunk);
        chunk = next;
    }
    tpl_arena_init(arena, arena->limit);
}

void *tpl_arena_alloc(tpl_arena *arena, size_t size, bool *over_limit) {
    if (over_limit) *over_limit = false;
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    if (size <= arena->remaining) {
        void *p = arena->cursor;
        arena->cursor += size;
        arena->remaining -= size;
        return p;
    }
    /* Big blocks get a chunk of their own so the current chunk keeps its room. */
    size_t data_size = size > CHUNK_SIZE / 4 ? size : CHUNK_SIZE;
    if (data_size > SIZE_MAX - CHUNK_HEADER) return NULL;
    size_t total = data_size + CHUNK_HEADER;
    if (arena->limit && (arena->used + total > arena->limit)) {
        if (over_limit) *over_limit = true;
        return NULL;
    }
    tpl_arena_chunk *chunk = calloc(1, total); /* zeroed: every arena block starts as zeros */
    if (!chunk) return NULL;
    arena->used += total;
    chunk->size = data_size;
    char *data = (char *)chunk + CHUNK_HEADER;
    if (data_size == CHUNK_SIZE && size < CHUNK_SIZE) {
        chunk->next = arena->chunks;
        arena->chunks = chunk;
        arena->cursor = data + size;
        arena->remaining = data_size - size;
    } else {
        /* Keep the current chunk current: link the big one behind it. */
        if (arena->chunks) {
            chunk->next = arena->chunks->next;
            arena->chunks->next = chunk;
        } else {
            chunk->next = NULL;
            arena->chunks = chunk;
        }
    }
    return data;
}
