/* tokenizer/maps.c — string -> id and pair -> value hash maps (see maps.h). */
#include "tokenizer/maps.h"

#include <stdlib.h>
#include <string.h>

/* 64-bit FNV-1a variant that eats 8 bytes at a time, then a final mix
 * (splitmix64); good enough for token strings and fast on short keys. */
uint64_t tok_hash_bytes(const void *data, size_t size) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ (uint64_t)size;
    while (size >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        h = (h ^ word) * 0x100000001b3ull;
        h ^= h >> 32;
        p += 8;
        size -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, size);
    h = (h ^ tail) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static size_t slots_for(size_t expected) {
    size_t n = 16;
    while (n < expected * 2) n <<= 1;
    return n;
}

bool tok_string_map_init(tok_string_map *map, size_t expected) {
    memset(map, 0, sizeof *map);
    map->n_slots = slots_for(expected);
    map->slots = malloc(map->n_slots * sizeof *map->slots);
    if (!map->slots) return false;
    for (size_t i = 0; i < map->n_slots; i++) map->slots[i].size = UINT32_MAX;
    return true;
}

static bool string_map_grow(tok_string_map *map) {
    size_t n = map->n_slots * 2;
    tok_string_entry *slots = malloc(n * sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < n; i++) slots[i].size = UINT32_MAX;
    for (size_t i = 0; i < map->n_slots; i++) {
        tok_string_entry e = map->slots[i];
        if (e.size == UINT32_MAX) continue;
        size_t j = e.hash & (n - 1);
        while (slots[j].size != UINT32_MAX) j = (j + 1) & (n - 1);
        slots[j] = e;
    }
    free(map->slots);
    map->slots = slots;
    map->n_slots = n;
    return true;
}

bool tok_string_map_put(tok_string_map *map, const char *key, size_t size, int32_t value) {
    if (size >= UINT32_MAX || map->strings_size + size >= UINT32_MAX) return false;
    if ((map->count + 1) * 2 > map->n_slots && !string_map_grow(map)) return false;
    uint32_t hash = (uint32_t)tok_hash_bytes(key, size);
    size_t mask = map->n_slots - 1;
    size_t i = hash & mask;
    for (;; i = (i + 1) & mask) {
        tok_string_entry *e = &map->slots[i];
        if (e->size == UINT32_MAX) break;
        if (e->hash == hash && e->size == size && memcmp(map->strings + e->offset, key, size) == 0) {
            e->value = value;
            return true;
        }
    }
    if (map->strings_size + size + 1 > map->strings_capacity) {
        size_t capacity = map->strings_capacity ? map->strings_capacity * 2 : 4096;
        while (capacity < map->strings_size + size + 1) capacity *= 2;
        char *strings = realloc(map->strings, capacity);
        if (!strings) return false;
        map->strings = strings;
        map->strings_capacity = capacity;
    }
    if (size) memcpy(map->strings + map->strings_size, key, size);
    map->strings[map->strings_size + size] = '\0';
    map->slots[i] = (tok_string_entry){hash, (uint32_t)map->strings_size, (uint32_t)size, value};
    map->strings_size += size + 1;
    map->count++;
    return true;
}

int32_t tok_string_map_get(const tok_string_map *map, const char *key, size_t size) {
    if (!map->n_slots) return -1;
    uint32_t hash = (uint32_t)tok_hash_bytes(key, size);
    size_t mask = map->n_slots - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        const tok_string_entry *e = &map->slots[i];
        if (e->size == UINT32_MAX) return -1;
        if (e->hash == hash && e->size == size && memcmp(map->strings + e->offset, key, size) == 0)
            return e->value;
    }
}

void tok_string_map_free(tok_string_map *map) {
    free(map->slots);
    free(map->strings);
    memset(map, 0, sizeof *map);
}

bool tok_pair_map_init(tok_pair_map *map, size_t expected) {
    memset(map, 0, sizeof *map);
    map->n_slots = slots_for(expected);
    map->slots = malloc(map->n_slots * sizeof *map->slots);
    if (!map->slots) return false;
    for (size_t i = 0; i < map->n_slots; i++) map->slots[i].key = UINT64_MAX;
    return true;
}

static bool pair_map_grow(tok_pair_map *map) {
    size_t n = map->n_slots * 2;
    tok_pair_entry *slots = malloc(n * sizeof *slots);
    if (!slots) return false;
    for (size_t i = 0; i < n; i++) slots[i].key = UINT64_MAX;
    for (size_t i = 0; i < map->n_slots; i++) {
        tok_pair_entry e = map->slots[i];
        if (e.key == UINT64_MAX) continue;
        size_t j = tok_pair_slot(e.key, n - 1);
        while (slots[j].key != UINT64_MAX) j = (j + 1) & (n - 1);
        slots[j] = e;
    }
    free(map->slots);
    map->slots = slots;
    map->n_slots = n;
    return true;
}

bool tok_pair_map_put(tok_pair_map *map, uint64_t key, uint64_t value) {
    if (key == UINT64_MAX) return false;
    if ((map->count + 1) * 2 > map->n_slots && !pair_map_grow(map)) return false;
    size_t mask = map->n_slots - 1;
    size_t i = tok_pair_slot(key, mask);
    for (;; i = (i + 1) & mask) {
        if (map->slots[i].key == key) {
            map->slots[i].value = value;
            return true;
        }
        if (map->slots[i].key == UINT64_MAX) break;
    }
    map->slots[i].key = key;
    map->slots[i].value = value;
    map->count++;
    return true;
}

void tok_pair_map_free(tok_pair_map *map) {
    free(map->slots);
    memset(map, 0, sizeof *map);
}
