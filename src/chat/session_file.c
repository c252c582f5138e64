/* chat/session_file.c — saving and loading a session: the conversation,
 * the cached token ids and their KV cache, under a header that names the
 * model, closed by a SHA-256 of everything before it.
 *
 * Layout (integers little-endian):
 *   "MLXESESS" | u32 version (1) | u32 0 | u64 file size
 *   | 32-byte model fingerprint | u32 n + model description
 *   | u64 n + conversation JSON {"messages":[...],"tools":"<json>"|null,
 *     "variables":{"name":"<json>"},"dropped":n}
 *   | u64 n + i32 token ids[n] | i64 gap_start | i64 gap_size | i64 rotated
 *   | u64 cached tokens | u64 n + KV state (mlxe_context_seq_state_read)
 *   | SHA-256 of all the above.
 * JSON values (tools, tool calls, variables) are kept as their text so they
 * come back byte for byte (1.0 stays a float). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "chat/chat_internal.h"

#define SESSION_MAGIC "MLXESESS"
#define SESSION_VERSION 1u

/* ---- writing ---- */

typedef struct file_writer {
    FILE *file;
    EVP_MD_CTX *md;
    bool failed;
} file_writer;

static void put(file_writer *w, const void *data, size_t size) {
    if (w->failed || size == 0) return;
    if (fwrite(data, 1, size, w->file) != size) w->failed = true;
    EVP_DigestUpdate(w->md, data, size);
}

static void put_u64(file_writer *w, uint64_t value) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(value >> (8 * i));
    put(w, bytes, 8);
}

static void put_u32(file_writer *w, uint32_t value) {
    unsigned char bytes[4];
    for (int i = 0; i < 4; i++) bytes[i] = (unsigned char)(value >> (8 * i));
    put(w, bytes, 4);
}

static bool add_opt_string(cJSON *object, const char *key, const char *value) {
    return !value || cJSON_AddStringToObject(object, key, value) != NULL;
}

static char *conversation_json(const mlxe_session *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "messages") : NULL;
    bool ok = list != NULL;
    for (size_t i = 0; ok && i < s->n_messages; i++) {
        const chat_message *m = &s->messages[i];
        cJSON *item = cJSON_CreateObject();
        ok = item != NULL;
        if (ok) cJSON_AddItemToArray(list, item);
        ok = ok && cJSON_AddStringToObject(item, "role", mlxe_role_name(m->role)) &&
             add_opt_string(item, "content", m->content) && add_opt_string(item, "name", m->name) &&
             add_opt_string(item, "tool_call_id", m->tool_call_id) &&
             add_opt_string(item, "tool_calls", m->tool_calls_json) &&
             add_opt_string(item, "reasoning_content", m->reasoning_content);
    }
    ok = ok && (s->tools_json ? cJSON_AddStringToObject(root, "tools", s->tools_json) != NULL
                              : cJSON_AddNullToObject(root, "tools") != NULL);
    cJSON *vars = ok ? cJSON_AddObjectToObject(root, "variables") : NULL;
    ok = vars != NULL;
    for (size_t i = 0; ok && i < s->n_variables; i++)
        ok = cJSON_AddStringToObject(vars, s->variables[i].name, s->variables[i].value_json) != NULL;
    ok = ok && cJSON_AddNumberToObject(root, "dropped", (double)s->dropped);
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

mlxe_status mlxe_session_save(mlxe_session *s, const char *path, mlxe_error *err) {
    if (!s || !path || !*path)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_save: a session and a path are required");
    int64_t cached = chat_cache_length(s);
    size_t kv_bytes = mlxe_context_seq_state_bytes(s->ctx, cached);
    void *kv = kv_bytes ? malloc(kv_bytes) : NULL;
    char *json = conversation_json(s);
    size_t tmp_size = strlen(path) + 16;
    char *tmp = malloc(tmp_size);
    if ((kv_bytes && !kv) || !json || !tmp) {
        free(kv);
        cJSON_free(json);
        free(tmp);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory saving the session to %s", path);
    }
    mlxe_status st = kv_bytes ? mlxe_context_seq_state_read(s->ctx, 0, cached, kv, kv_bytes, err) : MLXE_OK;
    snprintf(tmp, tmp_size, "%s.tmp%d", path, (int)getpid() % 100000);
    file_writer w = {0};
    if (st == MLXE_OK) {
        w.file = fopen(tmp, "wb");
        if (!w.file)
            st = mlxe_error_set(err, MLXE_ERR_IO, "cannot write the session file %s: %s", tmp, strerror(errno));
    }
    if (st == MLXE_OK) {
        w.md = EVP_MD_CTX_new();
        if (!w.md || EVP_DigestInit_ex(w.md, EVP_sha256(), NULL) != 1)
            st = mlxe_error_set(err, MLXE_ERR_INTERNAL, "SHA-256 is unavailable in libcrypto");
    }
    if (st == MLXE_OK) {
        size_t desc_len = strlen(s->identity.description), json_len = strlen(json);
        uint64_t total = 8 + 4 + 4 + 8 + 32 + 4 + desc_len + 8 + json_len + 8 + 4 * s->history.count + 24 + 8 + 8 +
                         kv_bytes + 32;
        put(&w, SESSION_MAGIC, 8);
        put_u32(&w, SESSION_VERSION);
        put_u32(&w, 0);
        put_u64(&w, total);
        put(&w, s->identity.fingerprint, 32);
        put_u32(&w, (uint32_t)desc_len);
        put(&w, s->identity.description, desc_len);
        put_u64(&w, json_len);
        put(&w, json, json_len);
        put_u64(&w, s->history.count);
        for (size_t i = 0; i < s->history.count; i++) put_u32(&w, (uint32_t)s->history.ids[i]);
        put_u64(&w, (uint64_t)s->gap_start);
        put_u64(&w, (uint64_t)s->gap_size);
        put_u64(&w, (uint64_t)s->rotated_total);
        put_u64(&w, (uint64_t)cached);
        put_u64(&w, kv_bytes);
        put(&w, kv, kv_bytes);
        unsigned char digest[32];
        unsigned int digest_len = 0;
        EVP_DigestFinal_ex(w.md, digest, &digest_len);
        if (!w.failed && fwrite(digest, 1, 32, w.file) != 32) w.failed = true;
        if (fflush(w.file) != 0 || fsync(fileno(w.file)) != 0) w.failed = true;
        if (w.failed) st = mlxe_error_set(err, MLXE_ERR_IO, "writing the session file %s failed: %s", tmp, strerror(errno));
    }
    if (w.file && fclose(w.file) != 0 && st == MLXE_OK)
        st = mlxe_error_set(err, MLXE_ERR_IO, "writing the session file %s failed: %s", tmp, strerror(errno));
    if (st == MLXE_OK && rename(tmp, path) != 0)
        st = mlxe_error_set(err, MLXE_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != MLXE_OK && w.file) remove(tmp);
    EVP_MD_CTX_free(w.md);
    free(kv);
    cJSON_free(json);
    free(tmp);
    return st;
}

/* ---- reading ---- */

typedef struct file_reader {
    const unsigned char *data;
    size_t size, at;
    bool short_read;
} file_reader;

static const unsigned char *take(file_reader *r, uint64_t size) {
    if (r->short_read || size > r->size - r->at) {
        r->short_read = true;
        return NULL;
    }
    const unsigned char *p = r->data + r->at;
    r->at += (size_t)size;
    return p;
}

static uint64_t take_u64(file_reader *r) {
    const unsigned char *p = take(r, 8);
    uint64_t value = 0;
    for (int i = 0; p && i < 8; i++) value |= (uint64_t)p[i] << (8 * i);
    return value;
}

static uint32_t take_u32(file_reader *r) {
    const unsigned char *p = take(r, 4);
    uint32_t value = 0;
    for (int i = 0; p && i < 4; i++) value |= (uint32_t)p[i] << (8 * i);
    return value;
}

/* The conversation parsed from the file, swapped in once everything checks. */
typedef struct loaded_conversation {
    chat_message *messages;
    size_t n_messages;
    char *tools_json;
    chat_variable *variables;
    size_t n_variables;
    size_t dropped;
} loaded_conversation;

static void loaded_free(loaded_conversation *c) {
    for (size_t i = 0; i < c->n_messages; i++) chat_message_clear(&c->messages[i]);
    free(c->messages);
    free(c->tools_json);
    for (size_t i = 0; i < c->n_variables; i++) {
        free(c->variables[i].name);
        free(c->variables[i].value_json);
    }
    free(c->variables);
    memset(c, 0, sizeof *c);
}

static bool opt_string(const cJSON *object, const char *key, char **out, bool *ok) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    if (!item || cJSON_IsNull(item)) return true;
    if (!cJSON_IsString(item)) return *ok = false;
    *out = strdup(item->valuestring);
    if (!*out) *ok = false;
    return *ok;
}

static mlxe_status parse_conversation(const char *text, size_t size, const char *path, loaded_conversation *c,
                                      mlxe_error *err) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_ParseWithLength(text, size);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "messages");
    const cJSON *vars = cJSON_GetObjectItemCaseSensitive(root, "variables");
    const cJSON *dropped = cJSON_GetObjectItemCaseSensitive(root, "dropped");
    bool ok = cJSON_IsArray(list) && cJSON_IsObject(vars) && cJSON_IsNumber(dropped) && dropped->valuedouble >= 0;
    size_t n = ok ? (size_t)cJSON_GetArraySize(list) : 0;
    if (ok && n) ok = (c->messages = calloc(n, sizeof *c->messages)) != NULL;
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, (ok ? list : NULL)) {
        chat_message *m = &c->messages[c->n_messages];
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(item, "role");
        int found = -1;
        for (int r = MLXE_ROLE_SYSTEM; cJSON_IsString(role) && r <= MLXE_ROLE_TOOL; r++)
            if (strcmp(role->valuestring, mlxe_role_name((mlxe_role)r)) == 0) found = r;
        if (found < 0) {
            ok = false;
            break;
        }
        m->role = (mlxe_role)found;
        c->n_messages++;
        opt_string(item, "content", &m->content, &ok);
        opt_string(item, "name", &m->name, &ok);
        opt_string(item, "tool_call_id", &m->tool_call_id, &ok);
        opt_string(item, "tool_calls", &m->tool_calls_json, &ok);
        opt_string(item, "reasoning_content", &m->reasoning_content, &ok);
        if (!ok) break;
    }
    if (ok) opt_string(root, "tools", &c->tools_json, &ok);
    size_t n_vars = ok ? (size_t)cJSON_GetArraySize(vars) : 0;
    if (ok && n_vars) ok = (c->variables = calloc(n_vars, sizeof *c->variables)) != NULL;
    cJSON_ArrayForEach(item, (ok ? vars : NULL)) {
        if (!cJSON_IsString(item)) {
            ok = false;
            break;
        }
        chat_variable *v = &c->variables[c->n_variables++];
        v->name = strdup(item->string);
        v->value_json = strdup(item->valuestring);
        if (!v->name || !v->value_json) {
            ok = false;
            break;
        }
    }
    if (ok) c->dropped = (size_t)dropped->valuedouble;
    if (ok && c->dropped > c->n_messages) ok = false;
    cJSON_Delete(root);
    if (!ok) {
        loaded_free(c);
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "session file %s: its conversation is malformed", path);
    }
    return MLXE_OK;
}

mlxe_status mlxe_session_load(mlxe_session *s, const char *path, mlxe_error *err) {
    if (!s || !path || !*path)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_load: a session and a path are required");
    mlxe_mapped_file file;
    mlxe_status st = mlxe_file_map(path, &file, err);
    if (st != MLXE_OK) return st;
    file_reader r = {.data = file.data, .size = file.size};
    const size_t fixed = 8 + 4 + 4 + 8 + 32;
    loaded_conversation conv = {0};
    int32_t *ids = NULL;
    if (file.size < fixed + 32 || memcmp(file.data, SESSION_MAGIC, 8) != 0) {
        st = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s is not an mlxengine session file (%s)", path,
                            file.size < fixed + 32 ? "too short" : "wrong magic bytes");
        goto done;
    }
    take(&r, 8);
    uint32_t version = take_u32(&r);
    take_u32(&r);
    uint64_t total = take_u64(&r);
    if (version != SESSION_VERSION) {
        st = mlxe_error_set(err, MLXE_ERR_UNSUPPORTED, "session file %s has version %u; this build reads version %u",
                            path, version, SESSION_VERSION);
        goto done;
    }
    if (total != file.size) {
        st = mlxe_error_set(err, MLXE_ERR_FORMAT,
                            "session file %s is %s: its header says %llu bytes but it has %zu (save it again)", path,
                            total > file.size ? "truncated" : "damaged", (unsigned long long)total, file.size);
        goto done;
    }
    unsigned char digest[32];
    unsigned int digest_len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    bool hashed = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                  EVP_DigestUpdate(md, file.data, file.size - 32) == 1 && EVP_DigestFinal_ex(md, digest, &digest_len) == 1;
    EVP_MD_CTX_free(md);
    if (!hashed || memcmp(digest, file.data + file.size - 32, 32) != 0) {
        st = mlxe_error_set(err, MLXE_ERR_FORMAT, "session file %s is corrupt: its SHA-256 does not match its content",
                            path);
        goto done;
    }
    r.size = file.size - 32;
    const unsigned char *fingerprint = take(&r, 32);
    uint32_t desc_len = take_u32(&r);
    const unsigned char *desc = take(&r, desc_len);
    if (r.short_read) goto malformed;
    if (memcmp(fingerprint, s->identity.fingerprint, 32) != 0) {
        st = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                            "session file %s was saved with another model (%.*s); this session's model is %s", path,
                            (int)(desc_len < 300 ? desc_len : 300), (const char *)desc, s->identity.description);
        goto done;
    }
    uint64_t json_len = take_u64(&r);
    const unsigned char *json = take(&r, json_len);
    uint64_t n_ids = take_u64(&r);
    if (r.short_read || n_ids > (r.size - r.at) / 4) goto malformed;
    ids = malloc(n_ids ? (size_t)n_ids * sizeof *ids : 1);
    if (!ids) {
        st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory loading %s", path);
        goto done;
    }
    int64_t vocab = mlxe_model_vocab_size(s->model);
    for (uint64_t i = 0; i < n_ids; i++) {
        ids[i] = (int32_t)take_u32(&r);
        if (ids[i] < 0 || ids[i] >= vocab) goto malformed;
    }
    int64_t gap_start = (int64_t)take_u64(&r), gap_size = (int64_t)take_u64(&r), rotated = (int64_t)take_u64(&r);
    int64_t cached = (int64_t)take_u64(&r);
    uint64_t kv_bytes = take_u64(&r);
    const unsigned char *kv = take(&r, kv_bytes);
    if (r.short_read || r.at != r.size || gap_start < 0 || gap_size < 0 || rotated < 0 || cached < 0 ||
        gap_start + gap_size > (int64_t)n_ids || cached != (int64_t)n_ids - gap_size)
        goto malformed;
    if (cached > s->options.n_ctx) {
        st = mlxe_error_set(err, MLXE_ERR_LIMIT,
                            "session file %s holds %lld cached tokens but this session's context has %lld; "
                            "load it into a session with a larger n_ctx",
                            path, (long long)cached, (long long)s->options.n_ctx);
        goto done;
    }
    if (kv_bytes != mlxe_context_seq_state_bytes(s->ctx, cached)) goto malformed;
    st = parse_conversation((const char *)json, (size_t)json_len, path, &conv, err);
    if (st != MLXE_OK) goto done;
    if (n_ids > s->history.capacity) {
        mlxe_token_id *grown = realloc(s->history.ids, (size_t)n_ids * sizeof *grown);
        if (!grown) {
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory loading %s", path);
            goto done;
        }
        s->history.ids = grown;
        s->history.capacity = (size_t)n_ids;
    }
    if (cached > 0) {
        st = mlxe_context_seq_state_write(s->ctx, 0, cached, kv, (size_t)kv_bytes, err);
        if (st != MLXE_OK) goto done;
    } else {
        mlxe_context_seq_clear(s->ctx, 0);
    }
    /* Everything checked: the session takes the file's state. */
    if (n_ids) memcpy(s->history.ids, ids, (size_t)n_ids * sizeof *ids);
    s->history.count = (size_t)n_ids;
    s->gap_start = gap_start;
    s->gap_size = gap_size;
    s->rotated_total = rotated;
    s->logits_valid = false;
    {
        for (size_t i = 0; i < s->n_messages; i++) chat_message_clear(&s->messages[i]);
        free(s->messages);
        free(s->tools_json);
        for (size_t i = 0; i < s->n_variables; i++) {
            free(s->variables[i].name);
            free(s->variables[i].value_json);
        }
        free(s->variables);
        s->messages = conv.messages;
        s->n_messages = s->messages_capacity = conv.n_messages;
        s->tools_json = conv.tools_json;
        s->variables = conv.variables;
        s->n_variables = conv.n_variables;
        s->dropped = conv.dropped;
        memset(&conv, 0, sizeof conv);
    }
    goto done;
malformed:
    st = mlxe_error_set(err, MLXE_ERR_FORMAT, "session file %s is malformed (its sizes do not add up); save it again",
                        path);
done:
    loaded_free(&conv);
    free(ids);
    mlxe_file_unmap(&file);
    return st;
}
