/* chat/session.c — the mlxe_session handle (include/mlxengine/chat.h):
 * creation over a model, tokenizer and chat template, the message history,
 * tool specs and template variables. Replies are in reply.c, the cache in
 * cache_sync.c, files in session_file.c. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "chat/chat_internal.h"

const char *mlxe_role_name(mlxe_role role) {
    switch (role) {
    case MLXE_ROLE_SYSTEM: return "system";
    case MLXE_ROLE_USER: return "user";
    case MLXE_ROLE_ASSISTANT: return "assistant";
    case MLXE_ROLE_TOOL: return "tool";
    }
    return NULL;
}

void mlxe_session_options_init(mlxe_session_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->n_ctx = 0;
    options->n_batch = 512;
    options->n_ubatch = 128;
    options->context_policy = MLXE_CONTEXT_ERROR;
    options->keep_tokens = 4;
    options->template_name = NULL;
}

static void add_eos(mlxe_session *s, int32_t id) {
    if (id < 0 || s->n_eos_ids >= CHAT_MAX_EOS_IDS) return;
    for (int i = 0; i < s->n_eos_ids; i++)
        if (s->eos_ids[i] == id) return;
    s->eos_ids[s->n_eos_ids++] = id;
}

static char *dup_or_null(const char *text) { return text ? strdup(text) : NULL; }

mlxe_status mlxe_session_create(mlxe_model *model, const mlxe_tokenizer *tokenizer,
                                const mlxe_chat_template *chat_template, const mlxe_session_options *options,
                                mlxe_session **out, mlxe_error *err) {
    if (out) *out = NULL;
    if (!model || !tokenizer || !chat_template || !out)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "mlxe_session_create: a model, a tokenizer, a chat template and out are required");
    mlxe_session_options o;
    if (options)
        o = *options;
    else
        mlxe_session_options_init(&o);
    if (o.context_policy < MLXE_CONTEXT_ERROR || o.context_policy > MLXE_CONTEXT_ROTATE)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "session option context_policy %d is unknown",
                              (int)o.context_policy);
    if (o.keep_tokens < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "session option keep_tokens %lld must be >= 0",
                              (long long)o.keep_tokens);
    mlxe_tokenizer_info info;
    mlxe_tokenizer_get_info(tokenizer, &info);
    if ((int64_t)info.vocab_size > mlxe_model_vocab_size(model))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "the tokenizer has %zu tokens but the model only %lld logits: "
                              "tokenizer.json does not belong to this model",
                              info.vocab_size, (long long)mlxe_model_vocab_size(model));

    mlxe_session *s = calloc(1, sizeof *s);
    if (!s) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    s->model = model;
    s->tokenizer = tokenizer;
    s->chat_template = chat_template;
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = o.n_ctx;
    co.n_seq = 1;
    co.n_batch = o.n_batch;
    co.n_ubatch = o.n_ubatch;
    mlxe_status st = mlxe_context_create(model, &co, &s->ctx, err);
    if (st == MLXE_OK) st = mlxe_detokenizer_create(tokenizer, NULL, &s->detokenizer, err);
    if (st == MLXE_OK) {
        size_t n_batch = (size_t)mlxe_context_n_batch(s->ctx);
        s->batch_positions = malloc(n_batch * sizeof(int32_t));
        s->batch_seq_ids = calloc(n_batch, sizeof(int32_t));
        if (!s->batch_positions || !s->batch_seq_ids)
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    }
    if (st == MLXE_OK && o.template_name && !(s->template_name = strdup(o.template_name)))
        st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a session");
    if (st != MLXE_OK) {
        mlxe_session_free(s);
        return st;
    }
    o.n_ctx = mlxe_context_n_ctx(s->ctx);
    o.template_name = s->template_name;
    s->options = o;
    const int32_t *eos = NULL;
    int n_eos = mlxe_model_eos_ids(model, &eos);
    for (int i = 0; i < n_eos; i++) add_eos(s, eos[i]);
    /* mlx-lm adds the tokenizer's eos to generation_config's list too. */
    add_eos(s, info.eos_id);
    chat_model_identity_compute(model, tokenizer, &s->identity);
    MLXE_DEBUG(MLXE_LOG_CAT_CHAT, "session: n_ctx %lld, policy %d, %d eos ids, model %s", (long long)o.n_ctx,
               (int)o.context_policy, s->n_eos_ids, s->identity.description);
    *out = s;
    return MLXE_OK;
}

void chat_message_clear(chat_message *m) {
    free(m->content);
    free(m->name);
    free(m->tool_call_id);
    free(m->tool_calls_json);
    free(m->reasoning_content);
    memset(m, 0, sizeof *m);
}

static void clear_conversation(mlxe_session *s) {
    for (size_t i = 0; i < s->n_messages; i++) chat_message_clear(&s->messages[i]);
    s->n_messages = 0;
    s->dropped = 0;
    free(s->tools_json);
    s->tools_json = NULL;
    for (size_t i = 0; i < s->n_variables; i++) {
        free(s->variables[i].name);
        free(s->variables[i].value_json);
    }
    s->n_variables = 0;
}

void mlxe_session_free(mlxe_session *s) {
    if (!s) return;
    clear_conversation(s);
    free(s->messages);
    free(s->variables);
    mlxe_token_list_free(&s->history);
    mlxe_detokenizer_free(s->detokenizer);
    mlxe_context_free(s->ctx);
    free(s->template_name);
    free(s->batch_positions);
    free(s->batch_seq_ids);
    free(s);
}

void mlxe_session_reset(mlxe_session *s) {
    if (!s) return;
    clear_conversation(s);
    chat_cache_clear(s);
    s->rotated_total = 0;
}

/* Copies message into *out after checking it. */
static mlxe_status copy_message(const mlxe_message *message, chat_message *out, mlxe_error *err) {
    memset(out, 0, sizeof *out);
    if (!message || !mlxe_role_name(message->role))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "a message needs a role (system, user, assistant, tool)");
    if (message->tool_calls_json) {
        cJSON *calls = cJSON_Parse(message->tool_calls_json);
        bool array = cJSON_IsArray(calls);
        cJSON_Delete(calls);
        if (!array)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "a message's tool_calls_json must be a JSON array of calls, got '%.80s'",
                                  message->tool_calls_json);
    }
    out->role = message->role;
    out->content = dup_or_null(message->content);
    out->name = dup_or_null(message->name);
    out->tool_call_id = dup_or_null(message->tool_call_id);
    out->tool_calls_json = dup_or_null(message->tool_calls_json);
    out->reasoning_content = dup_or_null(message->reasoning_content);
    if ((message->content && !out->content) || (message->name && !out->name) ||
        (message->tool_call_id && !out->tool_call_id) || (message->tool_calls_json && !out->tool_calls_json) ||
        (message->reasoning_content && !out->reasoning_content)) {
        chat_message_clear(out);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory copying a message");
    }
    return MLXE_OK;
}

mlxe_status mlxe_session_add_message(mlxe_session *s, const mlxe_message *message, mlxe_error *err) {
    if (!s) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_add_message: session is NULL");
    return mlxe_session_insert_message(s, s->n_messages, message, err);
}

mlxe_status mlxe_session_insert_message(mlxe_session *s, size_t index, const mlxe_message *message, mlxe_error *err) {
    if (!s || index > s->n_messages)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_insert_message: no position %zu (the session has %zu messages)",
                              index, s ? s->n_messages : 0);
    if (s->n_messages == s->messages_capacity) {
        size_t capacity = s->messages_capacity ? 2 * s->messages_capacity : 8;
        chat_message *grown = realloc(s->messages, capacity * sizeof *grown);
        if (!grown) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory adding a message");
        s->messages = grown;
        s->messages_capacity = capacity;
    }
    chat_message copy;
    mlxe_status st = copy_message(message, &copy, err);
    if (st != MLXE_OK) return st;
    /* A message inserted before the left-out ones starts the range afresh. */
    size_t lead = s->n_messages && s->messages[0].role == MLXE_ROLE_SYSTEM ? 1 : 0;
    if (index < lead + s->dropped && index < s->n_messages) s->dropped = 0;
    memmove(s->messages + index + 1, s->messages + index, (s->n_messages - index) * sizeof *s->messages);
    s->messages[index] = copy;
    s->n_messages++;
    return MLXE_OK;
}

mlxe_status mlxe_session_set_message(mlxe_session *s, size_t index, const mlxe_message *message, mlxe_error *err) {
    if (!s || index >= s->n_messages)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_set_message: no message %zu (the session has %zu)",
                              index, s ? s->n_messages : 0);
    chat_message copy;
    mlxe_status st = copy_message(message, &copy, err);
    if (st != MLXE_OK) return st;
    chat_message_clear(&s->messages[index]);
    s->messages[index] = copy;
    return MLXE_OK;
}

void mlxe_session_remove_messages(mlxe_session *s, size_t first, size_t count) {
    if (!s || first >= s->n_messages || count == 0) return;
    if (count > s->n_messages - first) count = s->n_messages - first;
    /* Left-out messages are [lead, lead + dropped): removing some of them
     * shrinks the range; removing the system message starts it afresh. */
    size_t lead = s->messages[0].role == MLXE_ROLE_SYSTEM ? 1 : 0;
    if (lead && first == 0) {
        s->dropped = 0;
    } else if (s->dropped) {
        size_t start = first > lead ? first : lead, end = first + count;
        if (end > lead + s->dropped) end = lead + s->dropped;
        if (end > start) s->dropped -= end - start;
    }
    for (size_t i = first; i < first + count; i++) chat_message_clear(&s->messages[i]);
    memmove(s->messages + first, s->messages + first + count,
            (s->n_messages - first - count) * sizeof *s->messages);
    s->n_messages -= count;
}

size_t mlxe_session_message_count(const mlxe_session *s) { return s ? s->n_messages : 0; }
size_t mlxe_session_dropped_messages(const mlxe_session *s) { return s ? s->dropped : 0; }

bool mlxe_session_message_at(const mlxe_session *s, size_t index, mlxe_message *message) {
    if (!s || !message || index >= s->n_messages) return false;
    const chat_message *m = &s->messages[index];
    message->role = m->role;
    message->content = m->content;
    message->name = m->name;
    message->tool_call_id = m->tool_call_id;
    message->tool_calls_json = m->tool_calls_json;
    message->reasoning_content = m->reasoning_content;
    return true;
}

mlxe_status mlxe_session_set_tools(mlxe_session *s, const char *tools_json, mlxe_error *err) {
    if (!s) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_set_tools: session is NULL");
    char *copy = NULL;
    if (tools_json) {
        cJSON *tools = cJSON_Parse(tools_json);
        bool array = cJSON_IsArray(tools);
        cJSON_Delete(tools);
        if (!array)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "tools must be a JSON array of tool specs (JSON schemas), got '%.80s'", tools_json);
        if (!(copy = strdup(tools_json))) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    free(s->tools_json);
    s->tools_json = copy;
    return MLXE_OK;
}

mlxe_status mlxe_session_set_variable(mlxe_session *s, const char *name, const char *value_json, mlxe_error *err) {
    if (!s || !name || !*name)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_set_variable: a session and a name are required");
    if (strcmp(name, "messages") == 0 || strcmp(name, "tools") == 0 || strcmp(name, "add_generation_prompt") == 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "template variable '%s' is set by the session (use messages/set_tools)", name);
    size_t index = 0;
    while (index < s->n_variables && strcmp(s->variables[index].name, name) != 0) index++;
    if (!value_json) {
        if (index < s->n_variables) {
            free(s->variables[index].name);
            free(s->variables[index].value_json);
            s->variables[index] = s->variables[--s->n_variables];
        }
        return MLXE_OK;
    }
    cJSON *value = cJSON_Parse(value_json);
    bool ok = value != NULL;
    cJSON_Delete(value);
    if (!ok)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "template variable '%s': '%.80s' is not a JSON value (strings need quotes)", name,
                              value_json);
    char *copy = strdup(value_json);
    if (!copy) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    if (index < s->n_variables) {
        free(s->variables[index].value_json);
        s->variables[index].value_json = copy;
        return MLXE_OK;
    }
    chat_variable *grown = realloc(s->variables, (s->n_variables + 1) * sizeof *grown);
    char *name_copy = strdup(name);
    if (grown) s->variables = grown;
    if (!grown || !name_copy) {
        free(copy);
        free(name_copy);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    s->variables[s->n_variables].name = name_copy;
    s->variables[s->n_variables].value_json = copy;
    s->n_variables++;
    return MLXE_OK;
}

int64_t mlxe_session_cached_tokens(const mlxe_session *s) { return s ? chat_cache_length(s) : 0; }
int64_t mlxe_session_n_ctx(const mlxe_session *s) { return s ? s->options.n_ctx : 0; }
