/* tokenizer/tokenizer_json.c — tokenizer.json into an mlxe_tokenizer.
 *
 * The top level and the model object are walked with the raw scanner;
 * model.vocab and model.merges go straight into the hash maps (the load
 * time of an 11 MB file is dominated by them), every other member is small
 * and is parsed with cJSON (added_tokens, normalizer, pre_tokenizer,
 * post_processor, decoder, the model's scalar fields). Field names and
 * defaults follow the serde definitions of the Rust crate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "tokenizer/json_scan.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

typedef struct span {
    const char *start;
    size_t size;
} span;

static mlxe_status oom(mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "tokenizer.json: out of memory");
}

static mlxe_status scan_error(const char *what, json_scan *s, mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: invalid JSON at line %zu: %s (corrupt or truncated file? download it again)",
                          what, json_scan_line(s), s->error ? s->error : "malformed");
}

/* Calls member(key, value span) for each member of the object at s->p. */
typedef mlxe_status (*member_fn)(void *ctx, const char *key, json_scan *s, mlxe_error *err);

static mlxe_status scan_object(const char *what, json_scan *s, member_fn fn, void *ctx, mlxe_error *err) {
    tok_buffer key = {0};
    mlxe_status st = MLXE_OK;
    if (!json_scan_expect(s, '{')) {
        st = scan_error(what, s, err);
        goto done;
    }
    json_scan_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        goto done;
    }
    for (;;) {
        if (!json_scan_string(s, &key) || !json_scan_expect(s, ':')) {
            st = scan_error(what, s, err);
            goto done;
        }
        json_scan_ws(s);
        st = fn(ctx, key.data, s, err);
        if (st != MLXE_OK) goto done;
        json_scan_ws(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        s->error = "expected ',' or '}'";
        st = scan_error(what, s, err);
        goto done;
    }
done:
    tok_buffer_free(&key);
    return st;
}

static mlxe_status skip_into(json_scan *s, span *out, const char *what, mlxe_error *err) {
    const char *start = s->p;
    if (!json_scan_skip(s)) return scan_error(what, s, err);
    if (out) *out = (span){start, (size_t)(s->p - start)};
    return MLXE_OK;
}

/* ---- model ---- */
typedef struct model_members {
    const char *what;
    span vocab, merges;
    tok_buffer rest; /* the other members, as a JSON object text */
} model_members;

static mlxe_status model_member(void *ctx, const char *key, json_scan *s, mlxe_error *err) {
    model_members *m = ctx;
    if (strcmp(key, "vocab") == 0) return skip_into(s, &m->vocab, m->what, err);
    if (strcmp(key, "merges") == 0) return skip_into(s, &m->merges, m->what, err);
    span value = {NULL, 0};
    mlxe_status st = skip_into(s, &value, m->what, err);
    if (st != MLXE_OK) return st;
    /* re-serialise the key (plain ASCII names in practice) with its raw value */
    cJSON *key_json = cJSON_CreateString(key);
    char *key_text = key_json ? cJSON_PrintUnformatted(key_json) : NULL;
    cJSON_Delete(key_json);
    if (!key_text) return oom(err);
    bool ok = tok_buffer_append(&m->rest, m->rest.size > 1 ? "," : "", m->rest.size > 1 ? 1 : 0) &&
              tok_buffer_append(&m->rest, key_text, strlen(key_text)) && tok_buffer_append(&m->rest, ":", 1) &&
              tok_buffer_append(&m->rest, value.start, value.size);
    free(key_text);
    return ok ? MLXE_OK : oom(err);
}

/* ---- top level ---- */
typedef struct top_members {
    const char *what;
    span model, added_tokens, normalizer, pre_tokenizer, post_processor, decoder;
    model_members model_parts;
} top_members;

/* The model object is walked in place (one pass over the big file):
 * vocab and merges are only located here, the rest collected as text. */
static mlxe_status scan_model(top_members *m, json_scan *s, mlxe_error *err) {
    const char *start = s->p;
    mlxe_status st = scan_object(m->what, s, model_member, &m->model_parts, err);
    m->model = (span){start, (size_t)(s->p - start)};
    return st;
}

static mlxe_status top_member(void *ctx, const char *key, json_scan *s, mlxe_error *err) {
    top_members *m = ctx;
    span *target = NULL;
    if (strcmp(key, "model") == 0) return scan_model(m, s, err);
    else if (strcmp(key, "added_tokens") == 0) target = &m->added_tokens;
    else if (strcmp(key, "normalizer") == 0) target = &m->normalizer;
    else if (strcmp(key, "pre_tokenizer") == 0) target = &m->pre_tokenizer;
    else if (strcmp(key, "post_processor") == 0) target = &m->post_processor;
    else if (strcmp(key, "decoder") == 0) target = &m->decoder;
    return skip_into(s, target, m->what, err);
}

/* model.vocab: {"token": id, ...} straight into the hash map (keys may
 * contain NUL bytes, so their decoded length is used). */
/* Where each id's string sits in the vocab map, so merges can check a
 * guessed id with one comparison instead of a hash lookup. */
typedef struct vocab_index {
    uint32_t *offset, *size; /* size UINT32_MAX: no token */
    size_t n;
} vocab_index;

static bool index_set(vocab_index *index, int64_t id, uint32_t offset, uint32_t size) {
    if ((size_t)id >= index->n) {
        size_t n = index->n ? index->n : 1024;
        while (n <= (size_t)id) n *= 2;
        uint32_t *o = realloc(index->offset, n * sizeof *o);
        if (o) index->offset = o;
        uint32_t *z = realloc(index->size, n * sizeof *z);
        if (z) index->size = z;
        if (!o || !z) return false;
        for (size_t i = index->n; i < n; i++) z[i] = UINT32_MAX;
        index->n = n;
    }
    index->offset[id] = offset;
    index->size[id] = size;
    return true;
}

static bool insert_vocab(tok_bpe *bpe, const tok_buffer *key, int64_t id, vocab_index *index) {
    size_t before = bpe->vocab.count, offset = bpe->vocab.strings_size;
    return tok_string_map_put(&bpe->vocab, key->data, key->size, (int32_t)id) &&
           (bpe->vocab.count == before || index_set(index, id, (uint32_t)offset, (uint32_t)key->size));
}

static mlxe_status read_vocab(const char *what, span vocab, tok_bpe *bpe, int64_t *max_id, vocab_index *index,
                              mlxe_error *err) {
    json_scan s = {vocab.start, vocab.start + vocab.size, vocab.start, NULL};
    tok_buffer key = {0}, pending = {0};
    int64_t pending_id = 0;
    bool have_pending = false;
    mlxe_status st = MLXE_OK;
    size_t expected = vocab.size / 16 + 16;
    if (!tok_string_map_init(&bpe->vocab, expected)) return oom(err);
    /* the keys take at most as many bytes as their JSON text */
    bpe->vocab.strings = malloc(vocab.size + 1);
    if (!bpe->vocab.strings) return oom(err);
    bpe->vocab.strings_capacity = vocab.size + 1;
    *max_id = -1;
    if (!json_scan_expect(&s, '{')) {
        s.error = "model.vocab is not an object (a Unigram model?)";
        return scan_error(what, &s, err);
    }
    json_scan_ws(&s);
    if (s.p < s.end && *s.p == '}') return MLXE_OK;
    for (;;) {
        int64_t id;
        if (!json_scan_string(&s, &key) || !json_scan_expect(&s, ':') || !json_scan_int(&s, &id)) {
            st = scan_error(what, &s, err);
            break;
        }
        if (id < 0 || id >= INT32_MAX) {
            st = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: model.vocab token '%.100s' has id %lld, outside 0..2^31-1",
                                what, key.data, (long long)id);
            break;
        }
        if (tok_utf8_valid_prefix(key.data, key.size) != key.size) {
            st = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: model.vocab token with id %lld is not valid UTF-8", what,
                                (long long)id);
            break;
        }
        /* inserted one entry late, after prefetching its slot (maps.h) */
        tok_string_map_prefetch(&bpe->vocab, key.data, key.size);
        if (have_pending && !insert_vocab(bpe, &pending, pending_id, index)) {
            st = oom(err);
            break;
        }
        tok_buffer swap = pending;
        pending = key;
        key = swap;
        pending_id = id;
        have_pending = true;
        if (id > *max_id) *max_id = id;
        json_scan_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == '}') break;
        s.error = "expected ',' or '}' in model.vocab";
        st = scan_error(what, &s, err);
        break;
    }
    if (st == MLXE_OK && have_pending && !insert_vocab(bpe, &pending, pending_id, index)) st = oom(err);
    tok_buffer_free(&key);
    tok_buffer_free(&pending);
    return st;
}

typedef struct pending_merge {
    uint64_t key, value;
    bool valid;
} pending_merge;

static mlxe_status add_merge(const char *what, tok_bpe *bpe, const char *left, size_t left_size,
                             const char *right, size_t right_size, size_t rank, tok_buffer *joined,
                             const vocab_index *index, int32_t *last_merged, pending_merge *pending,
                             mlxe_error *err) {
    /* (a merge of tokens that are not valid UTF-8 cannot find them in the
     * vocabulary, which holds only valid UTF-8) */
    int32_t a = tok_string_map_get(&bpe->vocab, left, left_size);
    int32_t b = tok_string_map_get(&bpe->vocab, right, right_size);
    if (a < 0 || b < 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: merge #%zu ('%.60s' '%.60s') uses token '%.60s' that is not in model.vocab",
                              what, rank, left, right, a < 0 ? left : right);
    size_t skip = bpe->continuing_subword_prefix ? bpe->prefix_size : 0;
    if (skip > right_size) skip = right_size;
    joined->size = 0;
    if (!tok_buffer_append(joined, left, left_size) || !tok_buffer_append(joined, right + skip, right_size - skip))
        return oom(err);
    /* vocabularies built by BPE training list merged tokens in merge order,
     * so the next id is a good guess; verify it, else look it up */
    int32_t merged = -1, guess = *last_merged + 1;
    if (guess >= 0 && (size_t)guess < index->n && index->size[guess] == joined->size &&
        memcmp(bpe->vocab.strings + index->offset[guess], joined->data, joined->size) == 0)
        merged = guess;
    if (merged < 0) merged = tok_string_map_get(&bpe->vocab, joined->data, joined->size);
    *last_merged = merged;
    if (merged < 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: merge #%zu ('%.60s' '%.60s') makes '%.120s', which is not in model.vocab",
                              what, rank, left, right, joined->data);
    /* inserted one merge late, after prefetching its slot (see maps.h); a
     * repeated pair keeps the later rank, as collecting into a HashMap does */
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    tok_pair_map_prefetch(&bpe->merges, key);
    if (pending->valid && !tok_pair_map_put(&bpe->merges, pending->key, pending->value)) return oom(err);
    *pending = (pending_merge){key, ((uint64_t)rank << 32) | (uint32_t)merged, true};
    return MLXE_OK;
}

static mlxe_status read_merges(const char *what, span merges, tok_bpe *bpe, const vocab_index *index,
                               mlxe_error *err) {
    if (!tok_pair_map_init(&bpe->merges, merges.size / 16 + 16)) return oom(err);
    int32_t last_merged = -2;
    pending_merge pending = {0, 0, false};
    if (!merges.start) return MLXE_OK;
    json_scan s = {merges.start, merges.start + merges.size, merges.start, NULL};
    tok_buffer a = {0}, b = {0}, joined = {0};
    mlxe_status st = MLXE_OK;
    if (!json_scan_expect(&s, '[')) {
        s.error = "model.merges is not an array";
        return scan_error(what, &s, err);
    }
    json_scan_ws(&s);
    if (s.p < s.end && *s.p == ']') return MLXE_OK;
    for (size_t rank = 0;; rank++) {
        if (rank >= UINT32_MAX) {
            st = mlxe_error_set(err, MLXE_ERR_LIMIT, "%s: too many merges", what);
            break;
        }
        json_scan_ws(&s);
        if (s.p < s.end && *s.p == '"') {
            /* "left right", split at the first space */
            if (!json_scan_string(&s, &a)) {
                st = scan_error(what, &s, err);
                break;
            }
            char *space = memchr(a.data, ' ', a.size);
            if (!space) {
                st = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: merge #%zu '%.100s' is not two tokens separated by a space",
                                    what, rank, a.data);
                break;
            }
            size_t left_size = (size_t)(space - a.data);
            *space = '\0';
            st = add_merge(what, bpe, a.data, left_size, space + 1, a.size - left_size - 1, rank, &joined, index,
                           &last_merged, &pending, err);
        } else {
            /* ["left", "right"] */
            if (!json_scan_expect(&s, '[') || !json_scan_string(&s, &a) || !json_scan_expect(&s, ',') ||
                !json_scan_string(&s, &b) || !json_scan_expect(&s, ']')) {
                if (!s.error) s.error = "a merge must be \"a b\" or [\"a\", \"b\"]";
                st = scan_error(what, &s, err);
                break;
            }
            st = add_merge(what, bpe, a.data, a.size, b.data, b.size, rank, &joined, index, &last_merged, &pending, err);
        }
        if (st != MLXE_OK) break;
        json_scan_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == ']') break;
        s.error = "expected ',' or ']' in model.merges";
        st = scan_error(what, &s, err);
        break;
    }
    if (st == MLXE_OK && pending.valid && !tok_pair_map_put(&bpe->merges, pending.key, pending.value)) st = oom(err);
    tok_buffer_free(&a);
    tok_buffer_free(&b);
    tok_buffer_free(&joined);
    return st;
}

/* ---- cJSON helpers ---- */
static cJSON *parse_span(span sp) {
    if (!sp.start) return NULL;
    return cJSON_ParseWithLength(sp.start, sp.size);
}

static bool get_bool(const cJSON *obj, const char *key, bool fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return fallback;
}

static const char *get_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *dup_string(const char *s, size_t *size) {
    size_t n = strlen(s);
    char *copy = malloc(n + 1);
    if (copy) memcpy(copy, s, n + 1);
    if (size) *size = n;
    return copy;
}

static mlxe_status read_pattern(const cJSON *obj, const char *what, const char *where, tok_pattern *out,
                                mlxe_error *err) {
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(obj, "pattern");
    const char *literal = get_string(pattern, "String");
    const char *regex = get_string(pattern, "Regex");
    if (literal) {
        out->literal = dup_string(literal, &out->literal_size);
        return out->literal ? MLXE_OK : oom(err);
    }
    if (regex) {
        char name[160];
        snprintf(name, sizeof name, "%s: %s", what, where);
        return tok_regex_compile(regex, strlen(regex), name, &out->regex, err);
    }
    return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: %s needs a pattern {\"String\": ...} or {\"Regex\": ...}",
                          what, where);
}

static mlxe_status read_char(const cJSON *obj, const char *key, const char *fallback, const char *what,
                             const char *where, char *utf8, size_t *utf8_size, uint32_t *codepoint,
                             mlxe_error *err) {
    const char *s = get_string(obj, key);
    if (!s) s = fallback;
    size_t n = strlen(s);
    if (n == 0 || n > 4 || tok_utf8_valid_prefix(s, n) != n || tok_utf8_decode(s, n, codepoint) != n)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: %s.%s must be one character", what, where, key);
    memcpy(utf8, s, n);
    utf8[n] = '\0';
    if (utf8_size) *utf8_size = n;
    return MLXE_OK;
}

static mlxe_status read_prepend_scheme(const cJSON *obj, tok_prepend_scheme *out, const char *what,
                                       const char *where, mlxe_error *err) {
    const char *scheme = get_string(obj, "prepend_scheme");
    if (!scheme) {
        /* older files: add_prefix_space (default true) */
        *out = get_bool(obj, "add_prefix_space", true) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER;
        return MLXE_OK;
    }
    if (strcmp(scheme, "always") == 0) *out = TOK_PREPEND_ALWAYS;
    else if (strcmp(scheme, "first") == 0) *out = TOK_PREPEND_FIRST;
    else if (strcmp(scheme, "never") == 0) *out = TOK_PREPEND_NEVER;
    else
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: %s.prepend_scheme '%s' is not always, first or never",
                              what, where, scheme);
    return MLXE_OK;
}

/* ---- normalizers ---- */
static mlxe_status build_normalizer(const cJSON *obj, const char *what, tok_normalizer *out, mlxe_error *err) {
    memset(out, 0, sizeof *out);
    const char *type = get_string(obj, "type");
    if (!type) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: a normalizer has no \"type\"", what);
    if (strcmp(type, "NFC") == 0) out->kind = TOK_NORM_NFC;
    else if (strcmp(type, "NFD") == 0) out->kind = TOK_NORM_NFD;
    else if (strcmp(type, "NFKC") == 0) out->kind = TOK_NORM_NFKC;
    else if (strcmp(type, "NFKD") == 0) out->kind = TOK_NORM_NFKD;
    else if (strcmp(type, "Lowercase") == 0) out->kind = TOK_NORM_LOWERCASE;
    else if (strcmp(type, "StripAccents") == 0) out->kind = TOK_NORM_STRIP_ACCENTS;
    else if (strcmp(type, "Strip") == 0) {
        out->kind = TOK_NORM_STRIP;
        out->strip_left = get_bool(obj, "strip_left", true);
        out->strip_right = get_bool(obj, "strip_right", true);
    } else if (strcmp(type, "Replace") == 0) {
        out->kind = TOK_NORM_REPLACE;
        const char *content = get_string(obj, "content");
        if (!content) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: normalizer Replace has no \"content\"", what);
        out->content = dup_string(content, &out->content_size);
        if (!out->content) return oom(err);
        return read_pattern(obj, what, "normalizer Replace", &out->pattern, err);
    } else if (strcmp(type, "Prepend") == 0) {
        out->kind = TOK_NORM_PREPEND;
        const char *prepend = get_string(obj, "prepend");
        if (!prepend) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: normalizer Prepend has no \"prepend\"", what);
        out->content = dup_string(prepend, &out->content_size);
        if (!out->content) return oom(err);
    } else if (strcmp(type, "Sequence") == 0) {
        out->kind = TOK_NORM_SEQUENCE;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "normalizers");
        if (!cJSON_IsArray(list))
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: normalizer Sequence has no \"normalizers\" list", what);
        size_t n = (size_t)cJSON_GetArraySize(list);
        out->children = calloc(n ? n : 1, sizeof *out->children);
        if (!out->children) return oom(err);
        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
            mlxe_status st = build_normalizer(item, what, &out->children[out->n_children++], err);
            if (st != MLXE_OK) return st;
        }
    } else {
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: normalizer type '%s' is not supported (supported: NFC, NFD, NFKC, NFKD, "
                              "Lowercase, Strip, StripAccents, Replace, Prepend, Sequence)", what, type);
    }
    return MLXE_OK;
}

/* ---- pre-tokenizers ---- */
/* GPT-2's pattern, which ByteLevel uses when use_regex is true
 * (tokenizers pre_tokenizers/byte_level.rs). */
static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/* Whitespace is `\w+|[^\w\s]+` compiled by the Rust regex crate, whose \w is
 * Alphabetic + marks + decimal digits + connector punctuation + joiners. */
static const char WHITESPACE_PATTERN[] =
    "[\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]+|[^\\p{L}\\p{Nl}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}\\s]+";

static mlxe_status read_behavior(const cJSON *obj, const char *what, tok_split_behavior fallback,
                                 tok_split_behavior *out, mlxe_error *err) {
    const char *b = get_string(obj, "behavior");
    if (!b) {
        *out = fallback;
        return MLXE_OK;
    }
    if (strcmp(b, "Removed") == 0) *out = TOK_SPLIT_REMOVED;
    else if (strcmp(b, "Isolated") == 0) *out = TOK_SPLIT_ISOLATED;
    else if (strcmp(b, "MergedWithPrevious") == 0) *out = TOK_SPLIT_MERGED_WITH_PREVIOUS;
    else if (strcmp(b, "MergedWithNext") == 0) *out = TOK_SPLIT_MERGED_WITH_NEXT;
    else if (strcmp(b, "Contiguous") == 0) *out = TOK_SPLIT_CONTIGUOUS;
    else return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: split behavior '%s' is unknown", what, b);
    return MLXE_OK;
}

static mlxe_status build_pretokenizer(const cJSON *obj, const char *what, tok_pretokenizer *out, mlxe_error *err) {
    memset(out, 0, sizeof *out);
    const char *type = get_string(obj, "type");
    if (!type) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: a pre_tokenizer has no \"type\"", what);
    if (strcmp(type, "Split") == 0) {
        out->kind = TOK_PRE_SPLIT;
        out->invert = get_bool(obj, "invert", false);
        mlxe_status st = read_behavior(obj, what, TOK_SPLIT_REMOVED, &out->behavior, err);
        if (st != MLXE_OK) return st;
        return read_pattern(obj, what, "pre_tokenizer Split", &out->pattern, err);
    }
    if (strcmp(type, "ByteLevel") == 0) {
        out->kind = TOK_PRE_BYTE_LEVEL;
        out->add_prefix_space = get_bool(obj, "add_prefix_space", true);
        out->use_regex = get_bool(obj, "use_regex", true);
        if (!out->use_regex) return MLXE_OK;
        return tok_regex_compile(GPT2_PATTERN, sizeof GPT2_PATTERN - 1, "ByteLevel", &out->pattern.regex, err);
    }
    if (strcmp(type, "Metaspace") == 0) {
        out->kind = TOK_PRE_METASPACE;
        out->split = get_bool(obj, "split", true);
        mlxe_status st = read_char(obj, "replacement", "\xE2\x96\x81", what, "pre_tokenizer Metaspace",
                                   out->replacement, &out->replacement_size, &out->replacement_char, err);
        if (st != MLXE_OK) return st;
        return read_prepend_scheme(obj, &out->prepend_scheme, what, "pre_tokenizer Metaspace", err);
    }
    if (strcmp(type, "Digits") == 0) {
        out->kind = TOK_PRE_DIGITS;
        out->individual_digits = get_bool(obj, "individual_digits", false);
        return MLXE_OK;
    }
    if (strcmp(type, "Punctuation") == 0) {
        out->kind = TOK_PRE_PUNCTUATION;
        return read_behavior(obj, what, TOK_SPLIT_ISOLATED, &out->behavior, err);
    }
    if (strcmp(type, "Whitespace") == 0) {
        out->kind = TOK_PRE_WHITESPACE;
        return tok_regex_compile(WHITESPACE_PATTERN, sizeof WHITESPACE_PATTERN - 1, "Whitespace",
                                 &out->pattern.regex, err);
    }
    if (strcmp(type, "WhitespaceSplit") == 0) {
        out->kind = TOK_PRE_WHITESPACE_SPLIT;
        return MLXE_OK;
    }
    if (strcmp(type, "CharDelimiterSplit") == 0) {
        out->kind = TOK_PRE_CHAR_DELIMITER;
        char utf8[8];
        return read_char(obj, "delimiter", "", what, "pre_tokenizer CharDelimiterSplit", utf8, NULL,
                         &out->delimiter, err);
    }
    if (strcmp(type, "Sequence") == 0) {
        out->kind = TOK_PRE_SEQUENCE;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "pretokenizers");
        if (!cJSON_IsArray(list))
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: pre_tokenizer Sequence has no \"pretokenizers\" list", what);
        size_t n = (size_t)cJSON_GetArraySize(list);
        out->children = calloc(n ? n : 1, sizeof *out->children);
        if (!out->children) return oom(err);
        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
            mlxe_status st = build_pretokenizer(item, what, &out->children[out->n_children++], err);
            if (st != MLXE_OK) return st;
        }
        return MLXE_OK;
    }
    return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                          "%s: pre_tokenizer type '%s' is not supported (supported: Split, ByteLevel, Metaspace, "
                          "Digits, Punctuation, Whitespace, WhitespaceSplit, CharDelimiterSplit, Sequence)", what, type);
}

/* ---- decoders ---- */
static mlxe_status build_decoder(const cJSON *obj, const char *what, tok_decoder *out, mlxe_error *err) {
    memset(out, 0, sizeof *out);
    const char *type = get_string(obj, "type");
    if (!type) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: a decoder has no \"type\"", what);
    if (strcmp(type, "ByteLevel") == 0) out->kind = TOK_DEC_BYTE_LEVEL;
    else if (strcmp(type, "ByteFallback") == 0) out->kind = TOK_DEC_BYTE_FALLBACK;
    else if (strcmp(type, "Fuse") == 0) out->kind = TOK_DEC_FUSE;
    else if (strcmp(type, "Metaspace") == 0) {
        out->kind = TOK_DEC_METASPACE;
        char utf8[8];
        mlxe_status st = read_char(obj, "replacement", "\xE2\x96\x81", what, "decoder Metaspace", utf8, NULL,
                                   &out->replacement_char, err);
        if (st != MLXE_OK) return st;
        return read_prepend_scheme(obj, &out->prepend_scheme, what, "decoder Metaspace", err);
    } else if (strcmp(type, "Replace") == 0) {
        out->kind = TOK_DEC_REPLACE;
        const char *content = get_string(obj, "content");
        if (!content) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: decoder Replace has no \"content\"", what);
        out->content = dup_string(content, &out->content_size);
        if (!out->content) return oom(err);
        return read_pattern(obj, what, "decoder Replace", &out->pattern, err);
    } else if (strcmp(type, "Strip") == 0) {
        out->kind = TOK_DEC_STRIP;
        char utf8[8];
        mlxe_status st = read_char(obj, "content", " ", what, "decoder Strip", utf8, NULL, &out->strip_char, err);
        if (st != MLXE_OK) return st;
        const cJSON *start = cJSON_GetObjectItemCaseSensitive(obj, "start");
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(obj, "stop");
        out->strip_start = cJSON_IsNumber(start) && start->valuedouble > 0 ? (size_t)start->valuedouble : 0;
        out->strip_stop = cJSON_IsNumber(stop) && stop->valuedouble > 0 ? (size_t)stop->valuedouble : 0;
    } else if (strcmp(type, "BPEDecoder") == 0) {
        out->kind = TOK_DEC_BPE_SUFFIX;
        const char *suffix = get_string(obj, "suffix");
        out->content = dup_string(suffix ? suffix : "</w>", &out->content_size);
        if (!out->content) return oom(err);
    } else if (strcmp(type, "Sequence") == 0) {
        out->kind = TOK_DEC_SEQUENCE;
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "decoders");
        if (!cJSON_IsArray(list))
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: decoder Sequence has no \"decoders\" list", what);
        size_t n = (size_t)cJSON_GetArraySize(list);
        out->children = calloc(n ? n : 1, sizeof *out->children);
        if (!out->children) return oom(err);
        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
            mlxe_status st = build_decoder(item, what, &out->children[out->n_children++], err);
            if (st != MLXE_OK) return st;
        }
    } else {
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: decoder type '%s' is not supported (supported: ByteLevel, Metaspace, Replace, "
                              "ByteFallback, Fuse, Strip, BPEDecoder, Sequence)", what, type);
    }
    return MLXE_OK;
}

/* ---- post-processors: reduced to the ids around the single sequence ---- */
static mlxe_status template_add(tok_template *t, bool prefix, const mlxe_token_id *ids, int n, mlxe_error *err) {
    mlxe_token_id **list = prefix ? &t->prefix : &t->suffix;
    int *count = prefix ? &t->n_prefix : &t->n_suffix;
    mlxe_token_id *grown = realloc(*list, (size_t)(*count + n + 1) * sizeof **list);
    if (!grown) return oom(err);
    memcpy(grown + *count, ids, (size_t)n * sizeof *ids);
    *list = grown;
    *count += n;
    return MLXE_OK;
}

static mlxe_status build_post(const cJSON *obj, const char *what, tok_template *t, mlxe_error *err) {
    const char *type = get_string(obj, "type");
    if (!type) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: a post_processor has no \"type\"", what);
    if (strcmp(type, "ByteLevel") == 0) return MLXE_OK; /* offsets only */
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(obj, "processors");
        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
            mlxe_status st = build_post(item, what, t, err);
            if (st != MLXE_OK) return st;
        }
        return MLXE_OK;
    }
    if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        const cJSON *cls = cJSON_GetObjectItemCaseSensitive(obj, "cls");
        const cJSON *sep = cJSON_GetObjectItemCaseSensitive(obj, "sep");
        const cJSON *cls_id = cJSON_GetArrayItem(cls, 1), *sep_id = cJSON_GetArrayItem(sep, 1);
        if (!cJSON_IsNumber(cls_id) || !cJSON_IsNumber(sep_id))
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: post_processor %s needs cls and sep as [token, id]", what, type);
        mlxe_token_id c = (mlxe_token_id)cls_id->valuedouble, s = (mlxe_token_id)sep_id->valuedouble;
        mlxe_status st = template_add(t, true, &c, 1, err);
        return st == MLXE_OK ? template_add(t, false, &s, 1, err) : st;
    }
    if (strcmp(type, "TemplateProcessing") == 0) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(obj, "single");
        const cJSON *specials = cJSON_GetObjectItemCaseSensitive(obj, "special_tokens");
        bool seen_sequence = false;
        const cJSON *item;
        cJSON_ArrayForEach(item, single) {
            const cJSON *special = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
            if (cJSON_GetObjectItemCaseSensitive(item, "Sequence")) {
                seen_sequence = true;
                continue;
            }
            const char *name = special ? get_string(special, "id") : NULL;
            if (!name)
                return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: post_processor TemplateProcessing has an item that is neither SpecialToken nor Sequence", what);
            const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name);
            const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids");
            if (!cJSON_IsArray(ids))
                return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: post_processor TemplateProcessing uses '%s' missing from special_tokens", what, name);
            const cJSON *id;
            cJSON_ArrayForEach(id, ids) {
                if (!cJSON_IsNumber(id)) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: special_tokens '%s' has a non-numeric id", what, name);
                mlxe_token_id value = (mlxe_token_id)id->valuedouble;
                mlxe_status st = template_add(t, !seen_sequence, &value, 1, err);
                if (st != MLXE_OK) return st;
            }
        }
        return MLXE_OK;
    }
    return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                          "%s: post_processor type '%s' is not supported (supported: TemplateProcessing, ByteLevel, "
                          "RobertaProcessing, BertProcessing, Sequence)", what, type);
}

/* ---- added tokens ---- */

/* The id of the newest added token t, as the Rust library assigns it when it
 * loads added_tokens: it ignores the ids written in the file (and only warns
 * when they differ; tokenizers/src/tokenizer/serialization.rs and
 * added_vocabulary.rs add_tokens). A content already in the model's
 * vocabulary keeps that id, a content added before keeps its first id, and a
 * new one takes the model's vocabulary size, or one past the largest added id
 * once that is at or beyond it. Real files agree with this; hand-edited ones
 * with colliding ids would otherwise be read differently from the reference. */
static int32_t assign_added_id(const mlxe_tokenizer *tk, const tok_added_token *t, int32_t file_id, const char *what) {
    int32_t id = tok_string_map_get(&tk->bpe.vocab, t->content, t->content_size);
    int32_t max_added = -1;
    for (size_t i = 0; id < 0 && i + 1 < tk->n_added; i++) {
        const tok_added_token *earlier = &tk->added[i];
        if (earlier->content_size == t->content_size && memcmp(earlier->content, t->content, t->content_size) == 0)
            id = earlier->id;
    }
    if (id < 0) {
        for (size_t i = 0; i + 1 < tk->n_added; i++)
            if (tk->added[i].id > max_added) max_added = tk->added[i].id;
        int32_t model_size = (int32_t)tk->bpe.vocab.count;
        id = (max_added >= model_size || model_size == 0) ? max_added + 1 : model_size;
    }
    if (id != file_id)
        MLXE_WARN(MLXE_LOG_CAT_TOKENIZER, "%s: added token '%s' is given id %d but gets id %d, as the reference library "
                  "assigns it", what, t->content, (int)file_id, (int)id);
    return id;
}
static mlxe_status read_added(mlxe_tokenizer *tk, const cJSON *list, const char *what, mlxe_error *err) {
    if (!list) return MLXE_OK;
    if (!cJSON_IsArray(list)) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: added_tokens is not a list", what);
    size_t n = (size_t)cJSON_GetArraySize(list);
    tk->added = calloc(n ? n : 1, sizeof *tk->added);
    if (!tk->added) return oom(err);
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        const char *content = get_string(item, "content");
        if (!cJSON_IsNumber(id) || !content || id->valuedouble < 0 || id->valuedouble >= INT32_MAX)
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: added_tokens[%zu] needs an \"id\" (0..2^31-1) and a \"content\"",
                                  what, tk->n_added);
        tok_added_token *t = &tk->added[tk->n_added++];
        t->content = dup_string(content, &t->content_size);
        if (!t->content) return oom(err);
        t->id = assign_added_id(tk, t, (int32_t)id->valuedouble, what);
        t->special = get_bool(item, "special", false);
        t->single_word = get_bool(item, "single_word", false);
        t->lstrip = get_bool(item, "lstrip", false);
        t->rstrip = get_bool(item, "rstrip", false);
        t->normalized = get_bool(item, "normalized", !t->special);
    }
    return MLXE_OK;
}

typedef struct parsed_parts {
    cJSON *model_rest, *added, *normalizer, *pre, *post, *decoder;
} parsed_parts;

static mlxe_status load_parts(mlxe_tokenizer *tk, const char *what, top_members *top, parsed_parts *pp,
                              mlxe_error *err) {
    /* the model */
    if (!top->model.start) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: no \"model\" member (is this a tokenizer.json?)", what);
    model_members mm = top->model_parts;
    mlxe_status st = MLXE_OK;
    if (!tok_buffer_append(&top->model_parts.rest, "}", 1)) return oom(err);
    mm = top->model_parts;
    if (tok_utf8_valid_prefix(mm.rest.data, mm.rest.size) != mm.rest.size)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: \"model\" contains bytes that are not valid UTF-8", what);
    pp->model_rest = cJSON_ParseWithLength(mm.rest.data, mm.rest.size);
    if (!pp->model_rest) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: \"model\" is not valid JSON", what);
    const char *type = get_string(pp->model_rest, "type");
    if (!type) type = mm.merges.start ? "BPE" : "unknown";
    if (strcmp(type, "BPE") != 0)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: model type '%s' is not supported (only BPE tokenizers are: byte-level like GPT-2/Llama 3/Qwen, "
                              "or SentencePiece-style BPE like Llama 2/Mistral/Gemma)", what, type);
    tok_bpe *bpe = &tk->bpe;
    const char *unk = get_string(pp->model_rest, "unk_token");
    const char *prefix = get_string(pp->model_rest, "continuing_subword_prefix");
    const char *suffix = get_string(pp->model_rest, "end_of_word_suffix");
    if ((unk && !(bpe->unk_token = dup_string(unk, NULL))) ||
        (prefix && !(bpe->continuing_subword_prefix = dup_string(prefix, &bpe->prefix_size))) ||
        (suffix && !(bpe->end_of_word_suffix = dup_string(suffix, &bpe->suffix_size))))
        return oom(err);
    bpe->fuse_unk = get_bool(pp->model_rest, "fuse_unk", false);
    bpe->byte_fallback = get_bool(pp->model_rest, "byte_fallback", false);
    bpe->ignore_merges = get_bool(pp->model_rest, "ignore_merges", false);
    const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(pp->model_rest, "dropout");
    if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
        MLXE_WARN(MLXE_LOG_CAT_TOKENIZER, "%s: BPE dropout %g ignored (inference never drops merges)", what, dropout->valuedouble);
    if (!mm.vocab.start) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: model has no \"vocab\"", what);
    int64_t max_id = -1;
    vocab_index index = {0};
    st = read_vocab(what, mm.vocab, bpe, &max_id, &index, err);
    if (st == MLXE_OK) st = read_merges(what, mm.merges, bpe, &index, err);
    free(index.offset);
    free(index.size);
    if (st != MLXE_OK) return st;
    bpe->unk_id = bpe->unk_token ? tok_string_map_get(&bpe->vocab, bpe->unk_token, strlen(bpe->unk_token)) : -1;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        bpe->byte_fallback_ids[b] = tok_string_map_get(&bpe->vocab, name, 6);
    }
    for (uint32_t c = 0; c < TOK_SMALL_CHARS; c++) {
        char utf8[4];
        size_t n = tok_utf8_encode(c, utf8);
        bpe->small_char_ids[c] = tok_string_map_get(&bpe->vocab, utf8, n);
    }
    bpe->has_small_char_ids = true;
    tk->vocab_size = (size_t)(max_id + 1);

    /* the other parts (their strings become text and patterns: they must
     * be valid UTF-8, as serde_json would insist) */
    const span *parts[] = {&top->added_tokens, &top->normalizer, &top->pre_tokenizer, &top->post_processor, &top->decoder};
    static const char *const part_names[] = {"added_tokens", "normalizer", "pre_tokenizer", "post_processor", "decoder"};
    for (size_t i = 0; i < 5; i++)
        if (parts[i]->start && tok_utf8_valid_prefix(parts[i]->start, parts[i]->size) != parts[i]->size)
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: \"%s\" contains bytes that are not valid UTF-8", what,
                                  part_names[i]);
    pp->added = parse_span(top->added_tokens);
    pp->normalizer = parse_span(top->normalizer);
    pp->pre = parse_span(top->pre_tokenizer);
    pp->post = parse_span(top->post_processor);
    pp->decoder = parse_span(top->decoder);
    if ((top->added_tokens.start && !pp->added) || (top->normalizer.start && !pp->normalizer) ||
        (top->pre_tokenizer.start && !pp->pre) || (top->post_processor.start && !pp->post) ||
        (top->decoder.start && !pp->decoder))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: a top-level member is not valid JSON", what);
    st = read_added(tk, pp->added, what, err);
    if (st != MLXE_OK) return st;
    if (pp->normalizer && !cJSON_IsNull(pp->normalizer)) {
        tk->normalizer = calloc(1, sizeof *tk->normalizer);
        if (!tk->normalizer) return oom(err);
        st = build_normalizer(pp->normalizer, what, tk->normalizer, err);
        if (st != MLXE_OK) return st;
    }
    if (pp->pre && !cJSON_IsNull(pp->pre)) {
        tk->pre_tokenizer = calloc(1, sizeof *tk->pre_tokenizer);
        if (!tk->pre_tokenizer) return oom(err);
        st = build_pretokenizer(pp->pre, what, tk->pre_tokenizer, err);
        if (st != MLXE_OK) return st;
    }
    if (pp->post && !cJSON_IsNull(pp->post)) {
        st = build_post(pp->post, what, &tk->template_single, err);
        if (st != MLXE_OK) return st;
    }
    if (pp->decoder && !cJSON_IsNull(pp->decoder)) {
        tk->decoder = calloc(1, sizeof *tk->decoder);
        if (!tk->decoder) return oom(err);
        st = build_decoder(pp->decoder, what, tk->decoder, err);
        if (st != MLXE_OK) return st;
    }
    return MLXE_OK;
}

mlxe_status tok_load_tokenizer_json(mlxe_tokenizer *tk, const char *json, size_t size, mlxe_error *err) {
    const char *what = tk->what;
    top_members top;
    memset(&top, 0, sizeof top);
    top.what = top.model_parts.what = what;
    if (!tok_buffer_append(&top.model_parts.rest, "{", 1)) return oom(err);
    json_scan s = {json, json + size, json, NULL};
    mlxe_status st = scan_object(what, &s, top_member, &top, err);
    json_scan_ws(&s);
    if (st == MLXE_OK && s.p != s.end) {
        s.error = "extra text after the top-level object";
        st = scan_error(what, &s, err);
    }
    if (st != MLXE_OK) {
        tok_buffer_free(&top.model_parts.rest);
        return st;
    }
    parsed_parts pp = {0};
    st = load_parts(tk, what, &top, &pp, err);
    tok_buffer_free(&top.model_parts.rest);
    cJSON_Delete(pp.model_rest);
    cJSON_Delete(pp.added);
    cJSON_Delete(pp.normalizer);
    cJSON_Delete(pp.pre);
    cJSON_Delete(pp.post);
    cJSON_Delete(pp.decoder);
    return st;
}
