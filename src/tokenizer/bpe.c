/* tokenizer/bpe.c — the BPE model on one pre-tokenized word, as tokenizers'
 * models/bpe/{model.rs,word.rs} does it: the word's characters become
 * symbols (unknown ones become <0xNN> byte tokens with byte_fallback, or
 * the unk token, fused when fuse_unk), then the lowest-ranked mergeable
 * pair is merged until none is left (a min-heap ordered by rank, then
 * position; stale entries are skipped when popped). Recent words are kept
 * in a small direct-mapped cache. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

typedef struct tok_bpe_symbol {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    uint32_t len;       /* bytes of the word it covers; 0 once merged away */
} tok_bpe_symbol;

typedef struct tok_bpe_merge {
    uint32_t rank;
    uint32_t pos;
    int32_t new_id;
    int32_t left, right; /* the pair when queued: unchanged means still valid */
} tok_bpe_merge;

static mlxe_status oom(mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory in BPE");
}

static inline bool merge_less(const tok_bpe_merge *a, const tok_bpe_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}

static void heap_push(tok_bpe_merge *heap, size_t *n, tok_bpe_merge m) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&m, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = m;
}

static tok_bpe_merge heap_pop(tok_bpe_merge *heap, size_t *n) {
    tok_bpe_merge top = heap[0];
    tok_bpe_merge last = heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && merge_less(&heap[child + 1], &heap[child])) child++;
        if (!merge_less(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n > 0) heap[i] = last;
    return top;
}

static inline bool lookup_merge(const tok_bpe *bpe, int32_t left, int32_t right, uint32_t *rank,
                                int32_t *new_id) {
    uint64_t value;
    if (!tok_pair_map_get(&bpe->merges, ((uint64_t)(uint32_t)left << 32) | (uint32_t)right, &value))
        return false;
    *rank = (uint32_t)(value >> 32);
    *new_id = (int32_t)(uint32_t)value;
    return true;
}

static bool add_symbol(tok_work *work, size_t *n, int32_t id, uint32_t len) {
    if (*n == work->symbols_capacity) {
        size_t capacity = work->symbols_capacity ? work->symbols_capacity * 2 : 64;
        tok_bpe_symbol *symbols = realloc(work->symbols, capacity * sizeof *symbols);
        if (!symbols) return false;
        work->symbols = symbols;
        work->symbols_capacity = capacity;
    }
    int32_t index = (int32_t)*n;
    work->symbols[index] = (tok_bpe_symbol){id, index - 1, -1, len};
    if (index > 0) work->symbols[index - 1].next = index;
    (*n)++;
    return true;
}

/* tokenizers' BPE::merge_word: the initial symbols of a word. */
static mlxe_status initial_symbols(const tok_bpe *bpe, const char *word, size_t size, tok_work *work,
                                   size_t *n_symbols, mlxe_error *err) {
    size_t n = 0;
    int32_t unk_id = -1;
    uint32_t unk_len = 0;
    bool have_unk = false;
    char stack_key[64];
    for (size_t i = 0; i < size;) {
        uint32_t c;
        size_t char_size = tok_utf8_decode(word + i, size - i, &c);
        bool is_first = i == 0, is_last = i + char_size == size;
        const char *key = word + i;
        size_t key_size = char_size;
        char *heap_key = NULL;
        size_t prefix = (!is_first && bpe->continuing_subword_prefix) ? bpe->prefix_size : 0;
        size_t suffix = (is_last && bpe->end_of_word_suffix) ? bpe->suffix_size : 0;
        if (prefix || suffix) {
            key_size = prefix + char_size + suffix;
            char *buffer = stack_key;
            if (key_size > sizeof stack_key) {
                buffer = heap_key = malloc(key_size);
                if (!buffer) return oom(err);
            }
            if (prefix) memcpy(buffer, bpe->continuing_subword_prefix, prefix);
            memcpy(buffer + prefix, word + i, char_size);
            if (suffix) memcpy(buffer + prefix + char_size, bpe->end_of_word_suffix, suffix);
            key = buffer;
        }
        int32_t id = (c < TOK_SMALL_CHARS && !prefix && !suffix && bpe->has_small_char_ids)
                         ? bpe->small_char_ids[c]
                         : tok_string_map_get(&bpe->vocab, key, key_size);
        bool done = false;
        if (id >= 0) {
            if (have_unk) {
                if (!add_symbol(work, &n, unk_id, unk_len)) goto fail;
                have_unk = false;
            }
            if (!add_symbol(work, &n, id, (uint32_t)char_size)) goto fail;
            done = true;
        } else if (bpe->byte_fallback) {
            bool all = true;
            for (size_t b = 0; b < key_size; b++)
                if (bpe->byte_fallback_ids[(unsigned char)key[b]] < 0) all = false;
            if (all) {
                /* as in tokenizers, a pending unk is not flushed first */
                for (size_t b = 0; b < key_size; b++)
                    if (!add_symbol(work, &n, bpe->byte_fallback_ids[(unsigned char)key[b]], 1)) goto fail;
                done = true;
            }
        }
        if (!done && bpe->unk_token) {
            if (bpe->unk_id < 0) {
                free(heap_key);
                return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                      "tokenizer.json: model.unk_token '%s' is not in model.vocab",
                                      bpe->unk_token);
            }
            if (have_unk && bpe->fuse_unk) {
                unk_len += (uint32_t)char_size;
            } else {
                if (have_unk && !add_symbol(work, &n, unk_id, unk_len)) goto fail;
                have_unk = true;
                unk_id = bpe->unk_id;
                unk_len = (uint32_t)char_size;
            }
        }
        free(heap_key);
        i += char_size;
        continue;
    fail:
        free(heap_key);
        return oom(err);
    }
    if (have_unk && !add_symbol(work, &n, unk_id, unk_len)) return oom(err);
    *n_symbols = n;
    return MLXE_OK;
}

/* tokenizers' Word::merge_all without dropout. */
static mlxe_status merge_all(const tok_bpe *bpe, tok_work *work, size_t n, mlxe_error *err) {
    if (n < 2) return MLXE_OK;
    if (work->heap_capacity < n * 2) {
        size_t capacity = n * 2;
        tok_bpe_merge *heap = realloc(work->heap, capacity * sizeof *heap);
        if (!heap) return oom(err);
        work->heap = heap;
        work->heap_capacity = capacity;
    }
    tok_bpe_symbol *sym = work->symbols;
    tok_bpe_merge *heap = work->heap;
    size_t heap_size = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t rank;
        int32_t new_id;
        if (lookup_merge(bpe, sym[i].id, sym[i + 1].id, &rank, &new_id))
            heap_push(heap, &heap_size, (tok_bpe_merge){rank, (uint32_t)i, new_id, sym[i].id, sym[i + 1].id});
    }
    while (heap_size > 0) {
        tok_bpe_merge top = heap_pop(heap, &heap_size);
        tok_bpe_symbol *cur = &sym[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int32_t next_pos = cur->next;
        tok_bpe_symbol right = sym[next_pos];
        uint32_t rank;
        int32_t new_id;
        /* skip entries whose pair changed since they were queued (the same
         * test as word.rs: the current pair must merge into the queued id;
         * an unchanged pair trivially does, without a lookup) */
        if ((cur->id != top.left || right.id != top.right) &&
            (!lookup_merge(bpe, cur->id, right.id, &rank, &new_id) || new_id != top.new_id))
            continue;
        cur->id = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        sym[next_pos].len = 0;
        if (right.next >= 0) sym[right.next].prev = (int32_t)top.pos;
        /* each merge adds at most two entries; the heap never holds more
         * than the pairs of n symbols plus two per merge (< 3n) */
        if (heap_size + 2 > work->heap_capacity) {
            size_t capacity = work->heap_capacity * 2 + 4;
            tok_bpe_merge *grown = realloc(work->heap, capacity * sizeof *grown);
            if (!grown) return oom(err);
            work->heap = heap = grown;
            work->heap_capacity = capacity;
        }
        if (cur->prev >= 0 && lookup_merge(bpe, sym[cur->prev].id, cur->id, &rank, &new_id))
            heap_push(heap, &heap_size, (tok_bpe_merge){rank, (uint32_t)cur->prev, new_id, sym[cur->prev].id, cur->id});
        if (cur->next >= 0 && lookup_merge(bpe, cur->id, sym[cur->next].id, &rank, &new_id))
            heap_push(heap, &heap_size, (tok_bpe_merge){rank, top.pos, new_id, cur->id, sym[cur->next].id});
    }
    return MLXE_OK;
}

static bool list_push(mlxe_token_list *out, mlxe_token_id id) {
    if (out->count == out->capacity) {
        size_t capacity = out->capacity ? out->capacity * 2 : 64;
        mlxe_token_id *ids = realloc(out->ids, capacity * sizeof *ids);
        if (!ids) return false;
        out->ids = ids;
        out->capacity = capacity;
    }
    out->ids[out->count++] = id;
    return true;
}

static bool cache_get(const mlxe_tokenizer *tk, const char *word, size_t size, uint64_t hash,
                      mlxe_token_list *out) {
    if (!tk->cache || size > TOK_CACHE_MAX_KEY) return false;
    pthread_mutex_t *lock = (pthread_mutex_t *)&tk->cache_lock;
    if (pthread_mutex_trylock(lock) != 0) return false;
    const tok_cache_slot *slot = &tk->cache[hash & (TOK_CACHE_SLOTS - 1)];
    bool hit = slot->key_size == size && slot->hash == hash && memcmp(slot->key, word, size) == 0;
    mlxe_token_id ids[TOK_CACHE_MAX_IDS];
    size_t n = hit ? slot->n_ids : 0;
    if (hit) memcpy(ids, slot->ids, n * sizeof *ids);
    pthread_mutex_unlock(lock);
    if (!hit) return false;
    size_t before = out->count;
    for (size_t i = 0; i < n; i++)
        if (!list_push(out, ids[i])) {
            out->count = before;
            return false;
        }
    return true;
}

static void cache_put(const mlxe_tokenizer *tk, const char *word, size_t size, uint64_t hash,
                      const mlxe_token_id *ids, size_t n) {
    if (!tk->cache || size > TOK_CACHE_MAX_KEY || size == 0 || n > TOK_CACHE_MAX_IDS) return;
    pthread_mutex_t *lock = (pthread_mutex_t *)&tk->cache_lock;
    if (pthread_mutex_trylock(lock) != 0) return;
    tok_cache_slot *slot = &tk->cache[hash & (TOK_CACHE_SLOTS - 1)];
    slot->hash = hash;
    slot->key_size = (uint8_t)size;
    slot->n_ids = (uint8_t)n;
    memcpy(slot->key, word, size);
    memcpy(slot->ids, ids, n * sizeof *ids);
    pthread_mutex_unlock(lock);
}

mlxe_status tok_bpe_encode_word(const mlxe_tokenizer *tk, const char *word, size_t size, tok_work *work,
                                mlxe_token_list *out, mlxe_error *err) {
    const tok_bpe *bpe = &tk->bpe;
    if (size == 0) return MLXE_OK;
    if (bpe->ignore_merges) {
        int32_t id = tok_string_map_get(&bpe->vocab, word, size);
        if (id >= 0) return list_push(out, id) ? MLXE_OK : oom(err);
    }
    uint64_t hash = 0;
    if (size <= TOK_CACHE_MAX_KEY) {
        hash = tok_hash_bytes(word, size);
        if (cache_get(tk, word, size, hash, out)) return MLXE_OK;
    }
    size_t n = 0;
    mlxe_status st = initial_symbols(bpe, word, size, work, &n, err);
    if (st == MLXE_OK) st = merge_all(bpe, work, n, err);
    if (st != MLXE_OK) return st;
    size_t before = out->count;
    for (int32_t i = n ? 0 : -1; i >= 0; i = work->symbols[i].next)
        if (!list_push(out, work->symbols[i].id)) {
            out->count = before;
            return oom(err);
        }
    if (size <= TOK_CACHE_MAX_KEY && out->count > before)
        cache_put(tk, word, size, hash, out->ids + before, out->count - before);
    return MLXE_OK;
}

void tok_bpe_free(tok_bpe *bpe) {
    tok_string_map_free(&bpe->vocab);
    tok_pair_map_free(&bpe->merges);
    free(bpe->unk_token);
    free(bpe->continuing_subword_prefix);
    free(bpe->end_of_word_suffix);
    memset(bpe, 0, sizeof *bpe);
}
