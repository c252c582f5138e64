/* chat/render.c — the conversation as the chat template's context (the
 * dicts transformers' apply_chat_template passes: messages, tools,
 * add_generation_prompt, extra variables) and the prompt's token ids.
 * The rendered text is tokenized with special tokens parsed and none
 * added, as apply_chat_template(tokenize=True) does: the template writes
 * its own BOS. */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "chat/chat_internal.h"

static size_t lead_messages(const mlxe_session *s) {
    return s->n_messages && s->messages[0].role == MLXE_ROLE_SYSTEM ? 1 : 0;
}

size_t chat_turn_messages(const mlxe_session *s, size_t skip_turns) {
    size_t start = lead_messages(s) + s->dropped, i = start;
    for (size_t t = 0; t < skip_turns; t++) {
        if (i >= s->n_messages) return 0;
        i++;
        while (i < s->n_messages && s->messages[i].role != MLXE_ROLE_USER) i++;
        if (i >= s->n_messages) return 0; /* that would leave out the last turn */
    }
    return i - start;
}

static bool add_string(cJSON *object, const char *key, const char *value) {
    if (!value) return true;
    return cJSON_AddStringToObject(object, key, value) != NULL;
}

static bool add_message(cJSON *list, const chat_message *m) {
    cJSON *item = cJSON_CreateObject();
    if (!item) return false;
    cJSON_AddItemToArray(list, item);
    bool ok = cJSON_AddStringToObject(item, "role", mlxe_role_name(m->role)) != NULL;
    ok = ok && (m->content ? cJSON_AddStringToObject(item, "content", m->content) != NULL
                           : cJSON_AddNullToObject(item, "content") != NULL);
    if (ok && m->tool_calls_json) {
        cJSON *raw = cJSON_CreateRaw(m->tool_calls_json);
        ok = raw && cJSON_AddItemToObject(item, "tool_calls", raw);
    }
    ok = ok && add_string(item, "tool_call_id", m->tool_call_id) && add_string(item, "name", m->name) &&
         add_string(item, "reasoning_content", m->reasoning_content);
    return ok;
}

mlxe_status chat_render_text(const mlxe_session *s, size_t skip_extra, char **text, size_t *size, mlxe_error *err) {
    *text = NULL;
    if (size) *size = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = root ? cJSON_AddArrayToObject(root, "messages") : NULL;
    bool ok = list != NULL;
    size_t lead = lead_messages(s);
    for (size_t i = 0; ok && i < s->n_messages; i++) {
        if (i >= lead && i < lead + s->dropped + skip_extra) continue;
        ok = add_message(list, &s->messages[i]);
    }
    if (ok && s->tools_json) {
        cJSON *raw = cJSON_CreateRaw(s->tools_json);
        ok = raw && cJSON_AddItemToObject(root, "tools", raw);
    }
    ok = ok && cJSON_AddTrueToObject(root, "add_generation_prompt") != NULL;
    for (size_t i = 0; ok && i < s->n_variables; i++) {
        cJSON *raw = cJSON_CreateRaw(s->variables[i].value_json);
        ok = raw && cJSON_AddItemToObject(root, s->variables[i].name, raw);
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory building the chat template context");
    char *rendered = NULL;
    size_t rendered_size = 0;
    mlxe_status st = mlxe_chat_template_render_json(s->chat_template, s->template_name, json, strlen(json), &rendered,
                                                    &rendered_size, err);
    cJSON_free(json);
    if (st != MLXE_OK) return mlxe_error_prefix(err, "rendering the chat template");
    /* Hand out plain malloc'd memory (the template's text has its own free). */
    *text = malloc(rendered_size + 1);
    if (*text) {
        memcpy(*text, rendered, rendered_size + 1);
        if (size) *size = rendered_size;
    }
    mlxe_template_text_free(rendered);
    if (!*text) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the rendered prompt");
    return MLXE_OK;
}

mlxe_status chat_render_tokens(const mlxe_session *s, size_t skip_extra, mlxe_token_list *ids, mlxe_error *err) {
    char *text = NULL;
    size_t size = 0;
    mlxe_status st = chat_render_text(s, skip_extra, &text, &size, err);
    if (st != MLXE_OK) return st;
    mlxe_encode_options options;
    mlxe_encode_options_init(&options);
    options.add_special_tokens = false;
    options.parse_special_tokens = true;
    ids->count = 0;
    st = mlxe_tokenizer_encode(s->tokenizer, text, size, &options, ids, err);
    free(text);
    if (st != MLXE_OK) return mlxe_error_prefix(err, "tokenizing the rendered prompt");
    return MLXE_OK;
}

mlxe_status mlxe_session_render(const mlxe_session *s, char **text, size_t *size, mlxe_error *err) {
    if (!s || !text) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_render: session and text are required");
    return chat_render_text(s, 0, text, size, err);
}
