/* tokenizer/added_tokens.c — finding added tokens in text, as tokenizers'
 * AddedVocabulary does (added_vocabulary.rs): leftmost-longest matching
 * (there an Aho-Corasick automaton, here a byte trie walked from each
 * position), non-overlapping, with single_word (no word character on either
 * side), lstrip/rstrip (the match swallows neighbouring whitespace) and,
 * when special tokens are not to be parsed, special tokens ignored. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

static mlxe_status oom(mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer: out of memory matching added tokens");
}

static bool trie_new_node(tok_trie *trie, int32_t *node) {
    if (trie->n_nodes == trie->capacity) {
        size_t capacity = trie->capacity ? trie->capacity * 2 : 64;
        int32_t *tokens = realloc(trie->node_token, capacity * sizeof *tokens);
        if (!tokens) return false;
        trie->node_token = tokens;
        trie->capacity = capacity;
    }
    trie->node_token[trie->n_nodes] = -1;
    *node = (int32_t)trie->n_nodes++;
    return true;
}

mlxe_status tok_trie_add(tok_trie *trie, const char *content, size_t size, int32_t token_index) {
    if (size == 0) return MLXE_OK; /* an empty token can never be matched */
    if (!trie->edges.slots && !tok_pair_map_init(&trie->edges, 64)) return MLXE_ERR_OUT_OF_MEMORY;
    int32_t root;
    if (trie->n_nodes == 0 && !trie_new_node(trie, &root)) return MLXE_ERR_OUT_OF_MEMORY;
    int32_t node = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char b = (unsigned char)content[i];
        uint64_t key = ((uint64_t)(uint32_t)node << 8) | b;
        uint64_t child;
        if (tok_pair_map_get(&trie->edges, key, &child)) {
            node = (int32_t)child;
        } else {
            int32_t fresh;
            if (!trie_new_node(trie, &fresh) || !tok_pair_map_put(&trie->edges, key, (uint64_t)fresh))
                return MLXE_ERR_OUT_OF_MEMORY;
            node = fresh;
        }
    }
    /* the first token with a given content wins, like a map insert that
     * keeps the earlier id */
    if (trie->node_token[node] < 0) trie->node_token[node] = token_index;
    trie->first_bytes[(unsigned char)content[0] >> 3] |= (uint8_t)(1u << ((unsigned char)content[0] & 7));
    trie->empty = false;
    return MLXE_OK;
}

void tok_trie_free(tok_trie *trie) {
    tok_pair_map_free(&trie->edges);
    free(trie->node_token);
    memset(trie, 0, sizeof *trie);
    trie->empty = true;
}

/* Longest token starting at text[0]: its index and length, or -1. */
static int32_t longest_match(const tok_trie *trie, const char *text, size_t size, size_t *length) {
    int32_t node = 0, best = -1;
    for (size_t i = 0; i < size; i++) {
        uint64_t child;
        uint64_t key = ((uint64_t)(uint32_t)node << 8) | (unsigned char)text[i];
        if (!tok_pair_map_get(&trie->edges, key, &child)) break;
        node = (int32_t)child;
        if (trie->node_token[node] >= 0) {
            best = trie->node_token[node];
            *length = i + 1;
        }
    }
    return best;
}

static bool last_char_is_word(const char *text, size_t size) {
    if (size == 0) return false;
    size_t k = size - 1;
    while (k > 0 && ((unsigned char)text[k] & 0xC0) == 0x80) k--;
    uint32_t c;
    tok_utf8_decode(text + k, size - k, &c);
    return tok_char_is_word(c);
}

static bool first_char_is_word(const char *text, size_t size) {
    if (size == 0) return false;
    uint32_t c;
    tok_utf8_decode(text, size, &c);
    return tok_char_is_word(c);
}

/* Start of the whitespace run that ends text[0..size). */
static size_t trailing_space_start(const char *text, size_t size) {
    size_t end = size;
    while (end > 0) {
        size_t k = end - 1;
        while (k > 0 && ((unsigned char)text[k] & 0xC0) == 0x80) k--;
        uint32_t c;
        tok_utf8_decode(text + k, end - k, &c);
        if (!tok_char_is_whitespace(c)) break;
        end = k;
    }
    return end;
}

static size_t leading_space_length(const char *text, size_t size) {
    size_t i = 0;
    while (i < size) {
        uint32_t c;
        size_t n = tok_utf8_decode(text + i, size - i, &c);
        if (!tok_char_is_whitespace(c)) break;
        i += n;
    }
    return i;
}

mlxe_status tok_split_added(const mlxe_tokenizer *tk, const tok_trie *trie, bool parse_special,
                            tok_work *work, mlxe_error *err) {
    if (trie->empty) return MLXE_OK;
    work->next.count = 0;
    for (size_t p = 0; p < work->pieces.count; p++) {
        tok_piece piece = work->pieces.items[p];
        if (piece.token_id >= 0 || piece.len == 0) {
            if (piece.len && !tok_piece_list_push(&work->next, piece)) return oom(err);
            continue;
        }
        const char *text = work->arena.data + piece.start;
        size_t size = piece.len, emitted = 0;
        for (size_t i = 0; i < size;) {
            unsigned char b = (unsigned char)text[i];
            if (!(trie->first_bytes[b >> 3] & (1u << (b & 7)))) {
                i++;
                continue;
            }
            size_t length = 0;
            int32_t index = longest_match(trie, text + i, size - i, &length);
            if (index < 0) {
                i++;
                continue;
            }
            const tok_added_token *token = &tk->added[index];
            size_t start = i, stop = i + length;
            /* the automaton resumes after the match even when it is discarded */
            i = stop;
            if (!parse_special && token->special) continue;
            if (token->single_word &&
                (last_char_is_word(text, start) || first_char_is_word(text + stop, size - stop)))
                continue;
            if (token->lstrip) {
                size_t new_start = trailing_space_start(text, start);
                start = new_start > emitted ? new_start : emitted;
            }
            if (token->rstrip) stop += leading_space_length(text + stop, size - stop);
            if (emitted < start &&
                !tok_piece_list_push(&work->next, (tok_piece){piece.start + emitted, start - emitted, -1,
                                                              piece.at_origin && emitted == 0}))
                return oom(err);
            if (!tok_piece_list_push(&work->next, (tok_piece){piece.start + start, stop - start, token->id, false}))
                return oom(err);
            emitted = i = stop;
        }
        if (emitted < size &&
            !tok_piece_list_push(&work->next, (tok_piece){piece.start + emitted, size - emitted, -1,
                                                          piece.at_origin && emitted == 0}))
            return oom(err);
    }
    tok_piece_list swap = work->pieces;
    work->pieces = work->next;
    work->next = swap;
    return MLXE_OK;
}
