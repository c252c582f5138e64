/* tokenizer/tokenizer.c — the public tokenizer API: loading a model
 * folder's tokenizer files and encoding text.
 *
 * Encoding follows tokenizers' Tokenizer::encode (tokenizer/mod.rs) and
 * AddedVocabulary::extract_and_normalize: (1) split out added tokens whose
 * "normalized" is false, matched on the raw text; (2) normalize each other
 * piece; (3) split out added tokens with "normalized" true, matched on the
 * normalized text (their contents normalized too); (4) pre-tokenize; (5)
 * BPE on each piece; (6) with add_special_tokens, the post-processor's
 * ids around the result. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "format/model_config.h"
#include "tokenizer/special_tokens_map.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

#define MAX_TOKENIZER_JSON_SIZE ((size_t)1 << 30)

void mlxe_token_list_init(mlxe_token_list *list) { memset(list, 0, sizeof *list); }

void mlxe_token_list_free(mlxe_token_list *list) {
    if (!list) return;
    free(list->ids);
    memset(list, 0, sizeof *list);
}

void mlxe_encode_options_init(mlxe_encode_options *options) {
    options->add_special_tokens = false;
    options->parse_special_tokens = false;
}

void mlxe_decode_options_init(mlxe_decode_options *options) { options->skip_special_tokens = false; }

void mlxe_tokenizer_free(mlxe_tokenizer *tk) {
    if (!tk) return;
    tok_bpe_free(&tk->bpe);
    for (size_t i = 0; i < tk->n_added; i++) free(tk->added[i].content);
    free(tk->added);
    tok_trie_free(&tk->trie_raw);
    tok_trie_free(&tk->trie_normalized);
    tok_normalizer_free(tk->normalizer);
    free(tk->normalizer);
    tok_pretokenizer_free(tk->pre_tokenizer);
    free(tk->pre_tokenizer);
    tok_decoder_free(tk->decoder);
    free(tk->decoder);
    free(tk->template_single.prefix);
    free(tk->template_single.suffix);
    free(tk->id_offset);
    free(tk->id_size);
    free(tk->id_strings);
    free(tk->special);
    free(tk->cache);
    pthread_mutex_destroy(&tk->cache_lock);
    free(tk->what);
    free(tk);
}

static mlxe_status oom(const char *what, mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
}

/* id -> token string table (added tokens override the model's strings). */
static mlxe_status build_id_table(mlxe_tokenizer *tk) {
    for (size_t i = 0; i < tk->n_added; i++)
        if ((size_t)tk->added[i].id + 1 > tk->vocab_size) tk->vocab_size = (size_t)tk->added[i].id + 1;
    size_t n = tk->vocab_size ? tk->vocab_size : 1;
    tk->id_offset = malloc(n * sizeof *tk->id_offset);
    tk->id_size = malloc(n * sizeof *tk->id_size);
    tk->special = calloc(n, 1);
    size_t total = tk->bpe.vocab.strings_size + 1;
    for (size_t i = 0; i < tk->n_added; i++) total += tk->added[i].content_size + 1;
    if (total >= UINT32_MAX) return MLXE_ERR_LIMIT;
    tk->id_strings = malloc(total);
    if (!tk->id_offset || !tk->id_size || !tk->special || !tk->id_strings) return MLXE_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < n; i++) tk->id_size[i] = UINT32_MAX;
    if (tk->bpe.vocab.strings_size) memcpy(tk->id_strings, tk->bpe.vocab.strings, tk->bpe.vocab.strings_size);
    size_t used = tk->bpe.vocab.strings_size;
    for (size_t s = 0; s < tk->bpe.vocab.n_slots; s++) {
        const tok_string_entry *e = &tk->bpe.vocab.slots[s];
        if (e->size == UINT32_MAX) continue;
        tk->id_offset[e->value] = e->offset;
        tk->id_size[e->value] = e->size;
    }
    for (size_t i = 0; i < tk->n_added; i++) {
        const tok_added_token *t = &tk->added[i];
        memcpy(tk->id_strings + used, t->content, t->content_size + 1);
        tk->id_offset[t->id] = (uint32_t)used;
        tk->id_size[t->id] = (uint32_t)t->content_size;
        tk->special[t->id] = t->special ? 1 : 0;
        used += t->content_size + 1;
    }
    return MLXE_OK;
}

static mlxe_token_id lookup(const mlxe_tokenizer *tk, const char *token, size_t size) {
    for (size_t i = 0; i < tk->n_added; i++)
        if (tk->added[i].content_size == size && memcmp(tk->added[i].content, token, size) == 0)
            return tk->added[i].id;
    return tok_string_map_get(&tk->bpe.vocab, token, size);
}

mlxe_token_id mlxe_tokenizer_token_to_id(const mlxe_tokenizer *tk, const char *token) {
    if (!tk || !token) return -1;
    return lookup(tk, token, strlen(token));
}

const char *mlxe_tokenizer_id_to_token(const mlxe_tokenizer *tk, mlxe_token_id id) {
    if (!tk || id < 0 || (size_t)id >= tk->vocab_size || tk->id_size[id] == UINT32_MAX) return NULL;
    return tk->id_strings + tk->id_offset[id];
}

bool mlxe_tokenizer_is_special(const mlxe_tokenizer *tk, mlxe_token_id id) {
    if (!tk || id < 0 || (size_t)id >= tk->vocab_size) return false;
    return tk->special[id] != 0;
}

void mlxe_tokenizer_get_info(const mlxe_tokenizer *tk, mlxe_tokenizer_info *info) {
    *info = tk->info;
}

/* Builds the tries of added tokens: raw text for normalized=false, and
 * normalized text (content normalized first) for normalized=true. */
static mlxe_status build_tries(mlxe_tokenizer *tk, mlxe_error *err) {
    tk->trie_raw.empty = tk->trie_normalized.empty = true;
    tok_work work = {0};
    tok_buffer normalized = {0};
    mlxe_status st = MLXE_OK;
    for (size_t i = 0; st == MLXE_OK && i < tk->n_added; i++) {
        const tok_added_token *t = &tk->added[i];
        if (t->normalized && tk->normalizer) {
            st = tok_normalize(tk->normalizer, t->content, t->content_size, &work, &normalized, err);
            if (st == MLXE_OK && tok_trie_add(&tk->trie_normalized, normalized.data, normalized.size, (int32_t)i) != MLXE_OK)
                st = oom(tk->what, err);
        } else if (t->normalized) {
            if (tok_trie_add(&tk->trie_normalized, t->content, t->content_size, (int32_t)i) != MLXE_OK)
                st = oom(tk->what, err);
        } else if (tok_trie_add(&tk->trie_raw, t->content, t->content_size, (int32_t)i) != MLXE_OK) {
            st = oom(tk->what, err);
        }
    }
    tok_buffer_free(&normalized);
    tok_work_free(&work);
    return st;
}

/* Decides which ids add_special_tokens puts around the text. transformers'
 * LlamaTokenizerFast and GemmaTokenizerFast rebuild the post-processor
 * from add_bos_token/add_eos_token (update_post_processor in
 * tokenization_llama_fast.py); we do so whenever tokenizer_config.json sets
 * either flag, and keep tokenizer.json's post_processor otherwise. */
static mlxe_status apply_config(mlxe_tokenizer *tk, const mlxe_tokenizer_config *cfg, mlxe_error *err) {
    mlxe_tokenizer_info *info = &tk->info;
    info->vocab_size = tk->vocab_size;
    info->model_type = "BPE";
    info->byte_fallback = tk->bpe.byte_fallback;
    info->byte_level = false;
    const tok_pretokenizer *pre = tk->pre_tokenizer;
    if (pre && pre->kind == TOK_PRE_BYTE_LEVEL) info->byte_level = true;
    for (size_t i = 0; pre && pre->kind == TOK_PRE_SEQUENCE && i < pre->n_children; i++)
        if (pre->children[i].kind == TOK_PRE_BYTE_LEVEL) info->byte_level = true;
    info->bos_id = cfg->bos_token ? mlxe_tokenizer_token_to_id(tk, cfg->bos_token) : -1;
    info->eos_id = cfg->eos_token ? mlxe_tokenizer_token_to_id(tk, cfg->eos_token) : -1;
    info->pad_id = cfg->pad_token ? mlxe_tokenizer_token_to_id(tk, cfg->pad_token) : -1;
    info->unk_id = cfg->unk_token ? mlxe_tokenizer_token_to_id(tk, cfg->unk_token) : tk->bpe.unk_id;
    tok_template *t = &tk->template_single;
    if (cfg->add_bos_token >= 0 || cfg->add_eos_token >= 0) {
        free(t->prefix);
        free(t->suffix);
        t->prefix = t->suffix = NULL;
        t->n_prefix = t->n_suffix = 0;
        t->prefix = malloc(sizeof *t->prefix);
        t->suffix = malloc(sizeof *t->suffix);
        if (!t->prefix || !t->suffix) return oom(tk->what, err);
        if (cfg->add_bos_token == 1 && info->bos_id >= 0) t->prefix[t->n_prefix++] = info->bos_id;
        if (cfg->add_eos_token == 1 && info->eos_id >= 0) t->suffix[t->n_suffix++] = info->eos_id;
        info->special_tokens_rule = "tokenizer_config.json add_bos_token/add_eos_token";
    } else {
        info->special_tokens_rule = (t->n_prefix || t->n_suffix) ? "tokenizer.json post_processor" : "none";
    }
    info->n_prefix_special = t->n_prefix;
    info->n_suffix_special = t->n_suffix;
    info->adds_bos = false;
    info->adds_eos = false;
    for (int i = 0; i < t->n_prefix; i++)
        if (t->prefix[i] == info->bos_id && info->bos_id >= 0) info->adds_bos = true;
    for (int i = 0; i < t->n_suffix; i++)
        if (t->suffix[i] == info->eos_id && info->eos_id >= 0) info->adds_eos = true;
    for (int i = 0; i < t->n_prefix + t->n_suffix; i++) {
        mlxe_token_id id = i < t->n_prefix ? t->prefix[i] : t->suffix[i - t->n_prefix];
        if (id < 0 || (size_t)id >= tk->vocab_size)
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: post-processor special token id %d is outside the vocabulary (%zu)",
                                  tk->what, id, tk->vocab_size);
    }
    return MLXE_OK;
}

mlxe_status mlxe_tokenizer_load_memory(const char *json, size_t size, const char *config_json,
                                       size_t config_size, const char *what, mlxe_tokenizer **out,
                                       mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_load_memory: out is NULL");
    *out = NULL;
    if (!json) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_load_memory: json is NULL");
    if (!what) what = "tokenizer.json";
    mlxe_tokenizer *tk = calloc(1, sizeof *tk);
    if (!tk) return oom(what, err);
    pthread_mutex_init(&tk->cache_lock, NULL);
    tk->trie_raw.empty = tk->trie_normalized.empty = true;
    size_t what_size = strlen(what);
    tk->what = malloc(what_size + 1);
    if (!tk->what) {
        mlxe_tokenizer_free(tk);
        return oom(what, err);
    }
    memcpy(tk->what, what, what_size + 1);
    mlxe_tokenizer_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.add_bos_token = cfg.add_eos_token = -1;
    mlxe_status st = tok_load_tokenizer_json(tk, json, size, err);
    if (st == MLXE_OK) {
        st = build_id_table(tk);
        if (st == MLXE_ERR_LIMIT) st = mlxe_error_set(err, st, "%s: vocabulary strings exceed 4 GiB", what);
        else if (st != MLXE_OK) st = oom(what, err);
    }
    if (st == MLXE_OK) st = build_tries(tk, err);
    if (st == MLXE_OK && config_json) {
        cJSON *root = cJSON_ParseWithLength(config_json, config_size);
        if (!root)
            st = mlxe_error_set(err, MLXE_ERR_FORMAT, "tokenizer_config.json: not valid JSON (corrupt file? download it again)");
        else
            st = mlxe_tokenizer_config_parse(root, "tokenizer_config.json", &cfg, err);
        cJSON_Delete(root);
    }
    if (st == MLXE_OK) st = apply_config(tk, &cfg, err);
    if (st == MLXE_OK) {
        tk->cache = calloc(TOK_CACHE_SLOTS, sizeof *tk->cache);
        if (!tk->cache) st = oom(what, err);
    }
    mlxe_tokenizer_config_free(&cfg);
    if (st != MLXE_OK) {
        mlxe_tokenizer_free(tk);
        return st;
    }
    MLXE_DEBUG(MLXE_LOG_CAT_TOKENIZER, "%s: %zu ids, %zu merges, %zu added tokens, special tokens: %s",
               what, tk->vocab_size, tk->bpe.merges.count, tk->n_added, tk->info.special_tokens_rule);
    *out = tk;
    return MLXE_OK;
}

static mlxe_status load_paths(const char *json_path, const char *config_path, const char *map_path,
                              mlxe_tokenizer **out, mlxe_error *err) {
    mlxe_mapped_file json = {0};
    char *config = NULL, *map = NULL;
    size_t config_size = 0, map_size = 0;
    mlxe_status st = mlxe_file_map(json_path, &json, err);
    if (st == MLXE_OK && config_path && mlxe_file_exists(config_path))
        st = mlxe_file_read_all(config_path, 64u << 20, &config, &config_size, err);
    if (st == MLXE_OK && map_path && mlxe_file_exists(map_path))
        st = mlxe_file_read_all(map_path, 16u << 20, &map, &map_size, err);
    if (st == MLXE_OK && json.size > MAX_TOKENIZER_JSON_SIZE)
        st = mlxe_error_set(err, MLXE_ERR_LIMIT, "%s: %zu bytes is larger than the 1 GiB limit", json_path, json.size);
    if (st == MLXE_OK) {
        /* special_tokens_map.json fills what tokenizer_config.json leaves out */
        char *merged = NULL;
        size_t merged_size = 0;
        st = tok_config_merge_special_map(config, config_size, map, map_size, &merged, &merged_size, err);
        if (st == MLXE_OK)
            st = mlxe_tokenizer_load_memory(json.data ? (const char *)json.data : "", json.size,
                                            merged ? merged : config, merged ? merged_size : config_size,
                                            json_path, out, err);
        free(merged);
    }
    mlxe_file_unmap(&json);
    free(config);
    free(map);
    return st;
}

mlxe_status mlxe_tokenizer_load_files(const char *json_path, const char *config_path, mlxe_tokenizer **out,
                                      mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_load_files: out is NULL");
    *out = NULL;
    if (!json_path) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_load_files: path is NULL");
    return load_paths(json_path, config_path, NULL, out, err);
}

mlxe_status mlxe_tokenizer_load(const char *dir, mlxe_tokenizer **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_load: out is NULL");
    *out = NULL;
    if (!dir) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_load: dir is NULL");
    char *json = mlxe_path_join(dir, "tokenizer.json");
    char *config = mlxe_path_join(dir, "tokenizer_config.json");
    char *map = mlxe_path_join(dir, "special_tokens_map.json");
    mlxe_status st;
    if (!json || !config || !map) st = oom(dir, err);
    else if (!mlxe_file_exists(json))
        st = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                            "%s: no tokenizer.json in this folder (models with only a SentencePiece tokenizer.model "
                            "are not supported; use a repository that ships tokenizer.json)", dir);
    else st = load_paths(json, config, map, out, err);
    free(json);
    free(config);
    free(map);
    return st;
}

/* ---- encode ---- */
static bool push_id(mlxe_token_list *out, mlxe_token_id id) {
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

/* Replaces every maximal invalid UTF-8 sequence with U+FFFD. */
static bool make_valid_utf8(const char *text, size_t size, tok_buffer *out) {
    size_t i = 0;
    while (i < size) {
        size_t valid = tok_utf8_valid_prefix(text + i, size - i);
        if (!tok_buffer_append(out, text + i, valid)) return false;
        i += valid;
        if (i < size) {
            if (!tok_buffer_append(out, "\xEF\xBF\xBD", 3)) return false;
            i += tok_utf8_invalid_length(text + i, size - i);
        }
    }
    return true;
}

static mlxe_status encode_pieces(const mlxe_tokenizer *tk, tok_work *work, const mlxe_encode_options *opt,
                                 mlxe_token_list *out, mlxe_error *err) {
    mlxe_status st = tok_split_added(tk, &tk->trie_raw, opt->parse_special_tokens, work, err);
    if (st != MLXE_OK) return st;
    if (tk->normalizer) {
        work->next.count = 0;
        for (size_t p = 0; p < work->pieces.count; p++) {
            tok_piece piece = work->pieces.items[p];
            if (piece.token_id < 0) {
                /* normalize into scratch, then append to the arena */
                st = tok_normalize(tk->normalizer, work->arena.data + piece.start, piece.len, work, &work->scratch, err);
                if (st != MLXE_OK) return st;
                piece.start = work->arena.size;
                piece.len = work->scratch.size;
                if (!tok_buffer_append(&work->arena, work->scratch.data, work->scratch.size)) return oom(tk->what, err);
                if (piece.len == 0) continue;
            }
            if (!tok_piece_list_push(&work->next, piece)) return oom(tk->what, err);
        }
        tok_piece_list swap = work->pieces;
        work->pieces = work->next;
        work->next = swap;
    }
    st = tok_split_added(tk, &tk->trie_normalized, opt->parse_special_tokens, work, err);
    if (st != MLXE_OK) return st;
    if (tk->pre_tokenizer) {
        st = tok_pretokenize(tk->pre_tokenizer, work, err);
        if (st != MLXE_OK) return st;
    }
    for (size_t p = 0; p < work->pieces.count; p++) {
        const tok_piece *piece = &work->pieces.items[p];
        if (piece->token_id >= 0) {
            if (!push_id(out, piece->token_id)) return oom(tk->what, err);
            continue;
        }
        st = tok_bpe_encode_word(tk, work->arena.data + piece->start, piece->len, work, out, err);
        if (st != MLXE_OK) return st;
    }
    return MLXE_OK;
}

mlxe_status mlxe_tokenizer_encode(const mlxe_tokenizer *tk, const char *text, size_t size,
                                  const mlxe_encode_options *options, mlxe_token_list *out, mlxe_error *err) {
    if (!tk || !out || (!text && size))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_encode: NULL argument");
    mlxe_encode_options defaults;
    mlxe_encode_options_init(&defaults);
    const mlxe_encode_options *opt = options ? options : &defaults;
    size_t before = out->count;
    tok_work work = {0};
    mlxe_status st = MLXE_OK;
    if (opt->add_special_tokens)
        for (int i = 0; st == MLXE_OK && i < tk->template_single.n_prefix; i++)
            if (!push_id(out, tk->template_single.prefix[i])) st = oom(tk->what, err);
    if (st == MLXE_OK && size > 0) {
        bool ok = tok_buffer_reserve(&work.arena, size * 4 + 64);
        if (ok) ok = tok_utf8_valid_prefix(text, size) == size ? tok_buffer_append(&work.arena, text, size)
                                                               : make_valid_utf8(text, size, &work.arena);
        if (ok) ok = tok_piece_list_push(&work.pieces, (tok_piece){0, work.arena.size, -1, true});
        st = ok ? encode_pieces(tk, &work, opt, out, err) : oom(tk->what, err);
    }
    if (st == MLXE_OK && opt->add_special_tokens)
        for (int i = 0; st == MLXE_OK && i < tk->template_single.n_suffix; i++)
            if (!push_id(out, tk->template_single.suffix[i])) st = oom(tk->what, err);
    tok_work_free(&work);
    if (st != MLXE_OK) out->count = before;
    return st;
}

/* ---- decode ---- */
mlxe_status mlxe_tokenizer_decode(const mlxe_tokenizer *tk, const mlxe_token_id *ids, size_t n_ids,
                                  const mlxe_decode_options *options, char **text, size_t *size, mlxe_error *err) {
    if (!tk || !text || (!ids && n_ids))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_decode: NULL argument");
    *text = NULL;
    if (size) *size = 0;
    tok_buffer out = {0}, arena = {0};
    tok_piece_list pieces = {0};
    mlxe_status st = tok_decode_ids(tk, ids, n_ids, options && options->skip_special_tokens, false, &out,
                                    &pieces, &arena, err);
    tok_buffer_free(&arena);
    free(pieces.items);
    if (st != MLXE_OK) {
        tok_buffer_free(&out);
        return st;
    }
    *text = out.data;
    if (size) *size = out.size;
    return MLXE_OK;
}
