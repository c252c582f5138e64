/* tokenizer/maps.h — the two hash maps the tokenizer lives on: token
 * string -> id (vocabulary) and (left id, right id) -> value (BPE merges,
 * trie edges). Open addressing with linear probing; built once at load, then
 * read-only, so lookups need no lock. */
#ifndef MLXE_TOKENIZER_MAPS_H
#define MLXE_TOKENIZER_MAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t tok_hash_bytes(const void *data, size_t size);

typedef struct tok_string_entry {
    uint32_t hash;    /* low bits of the 64-bit hash; slot empty when size == UINT32_MAX */
    uint32_t offset;  /* key bytes in strings */
    uint32_t size;
    int32_t value;
} tok_string_entry;

typedef struct tok_string_map {
    tok_string_entry *slots;
    size_t n_slots, count; /* n_slots is a power of two */
    char *strings;         /* all keys, back to back */
    size_t strings_size, strings_capacity;
} tok_string_map;

/* expected: a hint of the number of keys. */
bool tok_string_map_init(tok_string_map *map, size_t expected);
/* Inserts or overwrites key -> value. False when out of memory or the
 * key space (4 GiB) is exhausted. */
bool tok_string_map_put(tok_string_map *map, const char *key, size_t size, int32_t value);
/* value or -1 */
int32_t tok_string_map_get(const tok_string_map *map, const char *key, size_t size);
void tok_string_map_free(tok_string_map *map);

typedef struct tok_pair_entry {
    uint64_t key;     /* UINT64_MAX = empty */
    uint64_t value;
} tok_pair_entry;

typedef struct tok_pair_map {
    tok_pair_entry *slots;
    size_t n_slots, count;
} tok_pair_map;

bool tok_pair_map_init(tok_pair_map *map, size_t expected);
bool tok_pair_map_put(tok_pair_map *map, uint64_t key, uint64_t value);
static inline size_t tok_pair_slot(uint64_t key, size_t mask) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return (size_t)h & mask;
}

/* true and *value when found */
static inline bool tok_pair_map_get(const tok_pair_map *map, uint64_t key, uint64_t *value) {
    if (!map->n_slots) return false;
    size_t mask = map->n_slots - 1;
    for (size_t i = tok_pair_slot(key, mask);; i = (i + 1) & mask) {
        const tok_pair_entry *e = &map->slots[i];
        if (e->key == key) {
            *value = e->value;
            return true;
        }
        if (e->key == UINT64_MAX) return false;
    }
}
void tok_pair_map_free(tok_pair_map *map);

/* Loading inserts hundreds of thousands of keys at random slots: asking
 * for the next key's slot while the previous one is inserted hides most
 * of the cache misses. */
static inline void tok_pair_map_prefetch(const tok_pair_map *map, uint64_t key) {
    if (map->n_slots) __builtin_prefetch(&map->slots[tok_pair_slot(key, map->n_slots - 1)], 1);
}
static inline void tok_string_map_prefetch(const tok_string_map *map, const char *key, size_t size) {
    if (map->n_slots) __builtin_prefetch(&map->slots[(uint32_t)tok_hash_bytes(key, size) & (map->n_slots - 1)], 1);
}

#endif
