/* mlxengine/tokenizer.h — Hugging Face tokenizers (tokenizer.json) in C.
 *
 * Loads a model folder's tokenizer.json (+ tokenizer_config.json and
 * special_tokens_map.json when present) and encodes text to token ids and
 * back exactly as the Rust `tokenizers` library does (the one transformers
 * uses): BPE models (byte-level as in GPT-2 / Llama 3 / Qwen / DeepSeek /
 * gpt-oss, and SentencePiece-style with "▁" and byte fallback as in Llama 2,
 * Mistral, Gemma), their normalizers, pre-tokenizers, post-processors,
 * decoders and added tokens. WordPiece and Unigram models are refused with
 * an error naming them.
 *
 * Thread-safety: a loaded mlxe_tokenizer is immutable and may be used by any
 * number of threads at once (encode and decode take it const; its internal
 * word cache is locked). An mlxe_detokenizer belongs to one thread at a time.
 */
#ifndef MLXENGINE_TOKENIZER_H
#define MLXENGINE_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef int32_t mlxe_token_id;
typedef struct mlxe_tokenizer mlxe_tokenizer;

/* A growable list of token ids. Zero-initialise it (or call _init), pass it
 * to encode (which appends), release with mlxe_token_list_free. */
typedef struct mlxe_token_list {
    mlxe_token_id *ids;
    size_t count;
    size_t capacity;
} mlxe_token_list;

void mlxe_token_list_init(mlxe_token_list *list);
/* Frees ids and zeroes the list. Accepts NULL. */
void mlxe_token_list_free(mlxe_token_list *list);

/* Loads DIR/tokenizer.json, and DIR/tokenizer_config.json and
 * DIR/special_tokens_map.json when they exist. */
mlxe_status mlxe_tokenizer_load(const char *dir, mlxe_tokenizer **out, mlxe_error *err);

/* Loads from explicit paths; config_path may be NULL (no tokenizer_config). */
mlxe_status mlxe_tokenizer_load_files(const char *tokenizer_json_path, const char *config_path,
                                      mlxe_tokenizer **out, mlxe_error *err);

/* Loads from memory (used by tests and fuzzers). config_json may be NULL.
 * `what` names the source in error messages. The buffers are not retained. */
mlxe_status mlxe_tokenizer_load_memory(const char *tokenizer_json, size_t tokenizer_json_size,
                                       const char *config_json, size_t config_json_size,
                                       const char *what, mlxe_tokenizer **out, mlxe_error *err);

void mlxe_tokenizer_free(mlxe_tokenizer *tokenizer);

typedef struct mlxe_encode_options {
    /* Apply the post-processor: add BOS/EOS etc. (transformers'
     * add_special_tokens). Default false. */
    bool add_special_tokens;
    /* Recognise special added tokens (e.g. "<|im_start|>") written in the
     * text. Default false, so user text cannot inject control tokens; set it
     * for text you produced yourself (a rendered chat template), which is
     * what transformers' tokenizer.encode does. Non-special added tokens are
     * always recognised, as in transformers. */
    bool parse_special_tokens;
} mlxe_encode_options;

void mlxe_encode_options_init(mlxe_encode_options *options);

/* Encodes text[0..size) and appends the ids to out. Text that is not valid
 * UTF-8 is first converted the way Python's bytes.decode("utf-8",
 * "replace") and Rust's String::from_utf8_lossy do (each maximal invalid
 * sequence becomes U+FFFD). options may be NULL (defaults). On error out is
 * left as it was. */
mlxe_status mlxe_tokenizer_encode(const mlxe_tokenizer *tokenizer, const char *text, size_t size,
                                  const mlxe_encode_options *options, mlxe_token_list *out,
                                  mlxe_error *err);

typedef struct mlxe_decode_options {
    bool skip_special_tokens; /* drop special added tokens (default false) */
} mlxe_decode_options;

void mlxe_decode_options_init(mlxe_decode_options *options);

/* Decodes ids into a malloc'd NUL-terminated UTF-8 string (*text, length
 * *size; release with free()). Ids outside the vocabulary are skipped, as
 * the Rust library does. options may be NULL. */
mlxe_status mlxe_tokenizer_decode(const mlxe_tokenizer *tokenizer, const mlxe_token_id *ids,
                                  size_t n_ids, const mlxe_decode_options *options, char **text,
                                  size_t *size, mlxe_error *err);

/* What the tokenizer is and which special tokens encode adds. */
typedef struct mlxe_tokenizer_info {
    size_t vocab_size;          /* largest id + 1, added tokens included */
    mlxe_token_id bos_id;       /* -1 when the tokenizer has none */
    mlxe_token_id eos_id;       /* first EOS from tokenizer_config/special_tokens_map; -1 if none */
    mlxe_token_id pad_id;       /* -1 if none */
    mlxe_token_id unk_id;       /* -1 if none */
    /* With add_special_tokens: how many ids go before and after the text,
     * and which rule decided it: "tokenizer_config.json add_bos_token/add_eos_token"
     * (transformers' Llama/Gemma tokenizers rebuild the template from these
     * flags), "tokenizer.json post_processor" or "none". */
    int n_prefix_special;
    int n_suffix_special;
    bool adds_bos;              /* the prefix contains bos_id */
    bool adds_eos;              /* the suffix contains eos_id */
    const char *special_tokens_rule;
    const char *model_type;     /* "BPE" */
    bool byte_level;            /* byte-level alphabet (GPT-2 style) */
    bool byte_fallback;         /* SentencePiece-style <0xNN> tokens */
} mlxe_tokenizer_info;

void mlxe_tokenizer_get_info(const mlxe_tokenizer *tokenizer, mlxe_tokenizer_info *info);

/* The id of a token string (added tokens first, then the model's
 * vocabulary), or -1. */
mlxe_token_id mlxe_tokenizer_token_to_id(const mlxe_tokenizer *tokenizer, const char *token);

/* The token string of an id, borrowed from the tokenizer (valid until it
 * is freed), or NULL when the id is unknown. Raw vocabulary form (e.g.
 * "Ġhello", "▁hello", "<0x0A>"). */
const char *mlxe_tokenizer_id_to_token(const mlxe_tokenizer *tokenizer, mlxe_token_id id);

/* Whether id is a special added token (skipped by skip_special_tokens). */
bool mlxe_tokenizer_is_special(const mlxe_tokenizer *tokenizer, mlxe_token_id id);

/* ---- streaming detokenizer ----
 * Turns ids produced one at a time into text pieces such that the
 * concatenation of all pieces (push results then flush) equals
 * mlxe_tokenizer_decode of all the ids at once, and no piece ends inside a
 * UTF-8 character: bytes that may still become part of a character are
 * held back until the next ids complete it (or flush releases them). */
typedef struct mlxe_detokenizer mlxe_detokenizer;

/* options may be NULL. The tokenizer must outlive the detokenizer. */
mlxe_status mlxe_detokenizer_create(const mlxe_tokenizer *tokenizer,
                                    const mlxe_decode_options *options, mlxe_detokenizer **out,
                                    mlxe_error *err);
/* Adds one id; *piece (borrowed until the next call, not NUL-terminated
 * when size is 0) receives the text that became final, possibly empty. */
mlxe_status mlxe_detokenizer_push(mlxe_detokenizer *detokenizer, mlxe_token_id id,
                                  const char **piece, size_t *piece_size, mlxe_error *err);
/* Releases everything held back (end of stream) and resets for a new one. */
mlxe_status mlxe_detokenizer_flush(mlxe_detokenizer *detokenizer, const char **piece,
                                   size_t *piece_size, mlxe_error *err);
/* Forgets all ids (start of a new stream). */
void mlxe_detokenizer_reset(mlxe_detokenizer *detokenizer);
void mlxe_detokenizer_free(mlxe_detokenizer *detokenizer);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
