/* tokenizer/tokenizer_internal.h — the loaded tokenizer and the pieces
 * shared by its stages (normalizers, pre-tokenizers, BPE, decoders).
 *
 * The pipeline follows the Rust `tokenizers` crate (tokenizer/mod.rs,
 * added_vocabulary.rs): split out added tokens that are matched on raw text,
 * normalize the rest, split out added tokens matched on normalized text,
 * pre-tokenize, run the model on each piece, then post-process. Text moves
 * between stages as a list of pieces pointing into one byte arena. */
#ifndef MLXE_TOKENIZER_INTERNAL_H
#define MLXE_TOKENIZER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/tokenizer.h"
#include "tokenizer/maps.h"
#include "tokenizer/regex.h"

/* ---- growable byte buffer ---- */
typedef struct tok_buffer {
    char *data;
    size_t size, capacity;
} tok_buffer;

bool tok_buffer_reserve(tok_buffer *buffer, size_t extra);
bool tok_buffer_append(tok_buffer *buffer, const void *data, size_t size);
void tok_buffer_free(tok_buffer *buffer);

/* ---- pieces of text moving through the pipeline ---- */
typedef struct tok_piece {
    size_t start, len;   /* bytes in the work arena */
    int32_t token_id;    /* >= 0: an added token, final */
    bool at_origin;      /* begins at offset 0 of the original text (Metaspace "first") */
} tok_piece;

typedef struct tok_piece_list {
    tok_piece *items;
    size_t count, capacity;
} tok_piece_list;

bool tok_piece_list_push(tok_piece_list *list, tok_piece piece);

/* Scratch space of one encode call (never shared between threads). */
typedef struct tok_work {
    tok_buffer arena;            /* all piece text */
    tok_piece_list pieces, next; /* current pieces, and the list being built */
    tok_buffer scratch;          /* temporary text for one transformation */
    tok_regex_matcher matcher;
    /* BPE scratch */
    struct tok_bpe_symbol *symbols;
    size_t symbols_capacity;
    struct tok_bpe_merge *heap;
    size_t heap_capacity;
} tok_work;

void tok_work_free(tok_work *work);

/* ---- patterns (Split, Replace): a literal string or a regex ---- */
typedef struct tok_pattern {
    char *literal;        /* NULL for a regex */
    size_t literal_size;
    tok_regex *regex;
} tok_pattern;

/* ---- normalizers ---- */
typedef enum tok_normalizer_kind {
    TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD,
    TOK_NORM_LOWERCASE, TOK_NORM_STRIP, TOK_NORM_STRIP_ACCENTS,
    TOK_NORM_REPLACE, TOK_NORM_PREPEND, TOK_NORM_SEQUENCE
} tok_normalizer_kind;

typedef struct tok_normalizer {
    tok_normalizer_kind kind;
    bool strip_left, strip_right;     /* Strip */
    tok_pattern pattern;              /* Replace */
    char *content;                    /* Replace content, Prepend text */
    size_t content_size;
    struct tok_normalizer *children;  /* Sequence */
    size_t n_children;
} tok_normalizer;

/* ---- pre-tokenizers ---- */
typedef enum tok_split_behavior {
    TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_WITH_PREVIOUS,
    TOK_SPLIT_MERGED_WITH_NEXT, TOK_SPLIT_CONTIGUOUS
} tok_split_behavior;

typedef enum tok_prepend_scheme { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER } tok_prepend_scheme;

typedef enum tok_pretokenizer_kind {
    TOK_PRE_SPLIT, TOK_PRE_BYTE_LEVEL, TOK_PRE_METASPACE, TOK_PRE_DIGITS, TOK_PRE_PUNCTUATION,
    TOK_PRE_WHITESPACE, TOK_PRE_WHITESPACE_SPLIT, TOK_PRE_CHAR_DELIMITER, TOK_PRE_SEQUENCE
} tok_pretokenizer_kind;

typedef struct tok_pretokenizer {
    tok_pretokenizer_kind kind;
    tok_pattern pattern;             /* Split; Whitespace uses its fixed regex here */
    tok_split_behavior behavior;     /* Split, Punctuation */
    bool invert;                     /* Split */
    bool add_prefix_space, use_regex;/* ByteLevel */
    char replacement[8];             /* Metaspace, UTF-8 */
    size_t replacement_size;
    uint32_t replacement_char;
    tok_prepend_scheme prepend_scheme;
    bool split;                      /* Metaspace */
    bool individual_digits;          /* Digits */
    uint32_t delimiter;              /* CharDelimiterSplit */
    struct tok_pretokenizer *children;
    size_t n_children;
} tok_pretokenizer;

/* ---- decoders ---- */
typedef enum tok_decoder_kind {
    TOK_DEC_BYTE_LEVEL, TOK_DEC_METASPACE, TOK_DEC_REPLACE, TOK_DEC_BYTE_FALLBACK, TOK_DEC_FUSE,
    TOK_DEC_STRIP, TOK_DEC_BPE_SUFFIX, TOK_DEC_SEQUENCE
} tok_decoder_kind;

typedef struct tok_decoder {
    tok_decoder_kind kind;
    tok_pattern pattern;            /* Replace */
    char *content;                  /* Replace content; BPEDecoder suffix */
    size_t content_size;
    uint32_t strip_char;            /* Strip */
    size_t strip_start, strip_stop;
    uint32_t replacement_char;      /* Metaspace */
    tok_prepend_scheme prepend_scheme;
    struct tok_decoder *children;
    size_t n_children;
} tok_decoder;

/* ---- added tokens ---- */
typedef struct tok_added_token {
    char *content;
    size_t content_size;
    int32_t id;
    bool special, single_word, lstrip, rstrip, normalized;
} tok_added_token;

/* A byte trie over added-token contents for leftmost-longest matching. */
typedef struct tok_trie {
    tok_pair_map edges;        /* (node, byte) -> child node */
    int32_t *node_token;       /* node -> index into added tokens, or -1 */
    size_t n_nodes, capacity;
    uint8_t first_bytes[32];   /* bitmap of bytes that start some token */
    bool empty;
} tok_trie;

/* ---- BPE ---- */
#define TOK_SMALL_CHARS 512
typedef struct tok_bpe {
    tok_string_map vocab;        /* token string -> id */
    tok_pair_map merges;         /* (left id, right id) -> rank << 32 | merged id */
    char *unk_token;             /* NULL when none */
    int32_t unk_id;              /* -1 when none */
    char *continuing_subword_prefix, *end_of_word_suffix; /* NULL when none */
    size_t prefix_size, suffix_size;
    bool fuse_unk, byte_fallback, ignore_merges;
    int32_t byte_fallback_ids[256]; /* <0xNN> ids, -1 when missing */
    /* ids of the one-character tokens below U+0200 (covers ASCII and the
     * GPT-2 byte characters), -1 when absent: saves a hash per character */
    int32_t small_char_ids[512];
    bool has_small_char_ids;
} tok_bpe;

/* ---- post-processing ---- */
typedef struct tok_template {
    mlxe_token_id *prefix, *suffix;     /* ids around $A */
    int n_prefix, n_suffix;
} tok_template;

/* ---- the word cache (BPE results for recent words) ---- */
#define TOK_CACHE_SLOTS 8192
#define TOK_CACHE_MAX_KEY 40
#define TOK_CACHE_MAX_IDS 12
typedef struct tok_cache_slot {
    uint64_t hash;
    uint8_t key_size, n_ids;    /* key_size 0 = empty slot */
    char key[TOK_CACHE_MAX_KEY];
    int32_t ids[TOK_CACHE_MAX_IDS];
} tok_cache_slot;

struct mlxe_tokenizer {
    char *what;                      /* source name for messages */
    tok_bpe bpe;
    tok_added_token *added;
    size_t n_added;
    tok_trie trie_raw, trie_normalized;
    tok_normalizer *normalizer;      /* NULL when none */
    tok_pretokenizer *pre_tokenizer; /* NULL when none */
    tok_decoder *decoder;            /* NULL: tokens joined with " " */
    tok_template template_single;
    /* id -> token string (added tokens override the model's) */
    uint32_t *id_offset, *id_size;   /* into id_strings; size UINT32_MAX = no token */
    char *id_strings;
    size_t vocab_size;
    uint8_t *special;                /* per id: 1 = special added token */
    mlxe_tokenizer_info info;
    pthread_mutex_t cache_lock;
    tok_cache_slot *cache;
};

/* ---- stage entry points ---- */
/* GPT-2's byte <-> unicode table (bytes_to_unicode in openai/gpt-2 encoder.py). */
uint32_t tok_byte_to_char(uint8_t byte);
int tok_char_to_byte(uint32_t codepoint); /* -1 when not in the table */

mlxe_status tok_normalize(const tok_normalizer *normalizer, const char *text, size_t size,
                          tok_work *work, tok_buffer *out, mlxe_error *err);
void tok_normalizer_free(tok_normalizer *normalizer);

/* Rewrites work->pieces (pieces with token_id >= 0 are left alone). */
mlxe_status tok_pretokenize(const tok_pretokenizer *pre, tok_work *work, mlxe_error *err);
void tok_pretokenizer_free(tok_pretokenizer *pre);

/* Splits a text span with a pattern into (start, end, is_match) segments
 * covering it, the way tokenizers' Pattern::find_matches does. */
typedef struct tok_segment {
    size_t start, end;
    bool is_match;
} tok_segment;
typedef struct tok_segment_list {
    tok_segment *items;
    size_t count, capacity;
} tok_segment_list;
mlxe_status tok_pattern_find(const tok_pattern *pattern, const char *text, size_t size,
                             tok_regex_matcher *matcher, tok_segment_list *out, mlxe_error *err);
void tok_pattern_free(tok_pattern *pattern);

/* BPE on one word; appends ids. */
mlxe_status tok_bpe_encode_word(const mlxe_tokenizer *tokenizer, const char *word, size_t size,
                                tok_work *work, mlxe_token_list *out, mlxe_error *err);
void tok_bpe_free(tok_bpe *bpe);

/* Decodes the token strings of ids through the decoder chain into out.
 * continuation: the ids follow earlier ones (no start-of-text rules). */
mlxe_status tok_decode_ids(const mlxe_tokenizer *tokenizer, const mlxe_token_id *ids, size_t n_ids,
                           bool skip_special, bool continuation, tok_buffer *out,
                           tok_piece_list *pieces, tok_buffer *arena, mlxe_error *err);
void tok_decoder_free(tok_decoder *decoder);

/* Added tokens: builds the tries; splits work->pieces around matches. */
mlxe_status tok_trie_add(tok_trie *trie, const char *content, size_t size, int32_t token_index);
void tok_trie_free(tok_trie *trie);
mlxe_status tok_split_added(const mlxe_tokenizer *tokenizer, const tok_trie *trie,
                            bool parse_special, tok_work *work, mlxe_error *err);

/* Loading (tokenizer_json.c): fills tokenizer from tokenizer.json text. */
mlxe_status tok_load_tokenizer_json(mlxe_tokenizer *tokenizer, const char *json, size_t size,
                                    mlxe_error *err);

#endif
