/* template/arena.h — the bump allocator behind one compile or one render.
 *
 * Everything a template compile (tokens, syntax tree) or a render (values,
 * strings, scopes) allocates comes from one arena that is freed at once at the
 * end. This makes error unwinding trivial (no per-value ownership) and lets us
 * bound the memory a hostile template can take: past `limit` bytes an
 * allocation fails and the caller reports MLXE_ERR_LIMIT. */
#ifndef MLXE_TEMPLATE_ARENA_H
#define MLXE_TEMPLATE_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct tpl_arena_chunk tpl_arena_chunk;

typedef struct tpl_arena {
    tpl_arena_chunk *chunks;
    char *cursor;       /* next free byte in the current chunk */
    size_t remaining;   /* bytes left in the current chunk */
    size_t used;        /* bytes taken from malloc so far */
    size_t limit;       /* 0 = no limit */
} tpl_arena;

void tpl_arena_init(tpl_arena *arena, size_t limit);
void tpl_arena_free(tpl_arena *arena);

/* 16-byte aligned, zero-filled block, or NULL when out of memory or over the limit
 * (*over_limit tells which; may be NULL). */
void *tpl_arena_alloc(tpl_arena *arena, size_t size, bool *over_limit);

#endif
