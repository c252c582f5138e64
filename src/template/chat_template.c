/* template/chat_template.c — the chat template of a model folder: which
 * file it comes from, the special tokens it is rendered with, the choice
 * between named templates, and the fallback for folders without one.
 *
 * Sources, in transformers' order of precedence: chat_template.jinja, then
 * chat_template.json (the processor format: {"chat_template": "..."}), then
 * tokenizer_config.json's "chat_template" (a string or a list of named
 * templates). tokenizer_config.json is read by the formats layer
 * (mlxe_tokenizer_config_load), which already applies chat_template.jinja
 * and additional_chat_templates/. Rendering mirrors apply_chat_template:
 * tools and documents default to None, add_generation_prompt to false, and
 * the special tokens map is merged under the caller's variables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "format/model_config.h"
#include "template/template_internal.h"

#define MAX_CHAT_TEMPLATE_JSON_BYTES (16u * 1024u * 1024u)

/* mlx-swift-lm's fallback when a model has no template: the message texts,
 * one per line. */
static const char FALLBACK_SOURCE[] =
    "{%- for message in messages -%}"
    "{%- if not loop.first %}{{ '\\n' }}{% endif -%}"
    "{%- if message.content is string -%}{{ message.content }}"
    "{%- else -%}{%- for part in message.content if part.type == 'text' -%}{{ part.text }}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endfor -%}";

typedef struct named_compiled {
    char *name;
    mlxe_template *tpl;
} named_compiled;

struct mlxe_chat_template {
    named_compiled *templates;
    int n_templates;
    const char *origin;
    char *bos_token, *eos_token, *unk_token, *pad_token;
};

void mlxe_chat_template_free(mlxe_chat_template *chat) {
    if (!chat) return;
    for (int i = 0; i < chat->n_templates; i++) {
        free(chat->templates[i].name);
        mlxe_template_free(chat->templates[i].tpl);
    }
    free(chat->templates);
    free(chat->bos_token);
    free(chat->eos_token);
    free(chat->unk_token);
    free(chat->pad_token);
    free(chat);
}

static mlxe_status add_template(mlxe_chat_template *chat, const char *name, const char *source,
                                const char *label, mlxe_error *err) {
    named_compiled *bigger = realloc(chat->templates, (size_t)(chat->n_templates + 1) * sizeof *bigger);
    if (!bigger) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    chat->templates = bigger;
    named_compiled *slot = &chat->templates[chat->n_templates];
    slot->name = strdup(name);
    slot->tpl = NULL;
    if (!slot->name) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", label);
    mlxe_status status = mlxe_template_compile(source, strlen(source), label, NULL, &slot->tpl, err);
    if (status != MLXE_OK) {
        free(slot->name);
        return status;
    }
    chat->n_templates++;
    return MLXE_OK;
}

/* chat_template.json: {"chat_template": "..."} or a list of {name, template}. */
static mlxe_status load_json_templates(mlxe_chat_template *chat, const char *path, mlxe_error *err) {
    cJSON *root = NULL;
    mlxe_status status = mlxe_json_parse_file(path, MAX_CHAT_TEMPLATE_JSON_BYTES, &root, err);
    if (status != MLXE_OK) return status;
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (cJSON_IsString(item)) {
        status = add_template(chat, "default", item->valuestring, path, err);
    } else if (cJSON_IsArray(item)) {
        const cJSON *entry;
        cJSON_ArrayForEach(entry, item) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
            const cJSON *source = cJSON_GetObjectItemCaseSensitive(entry, "template");
            if (!cJSON_IsString(name) || !cJSON_IsString(source)) {
                status = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                        "%s: each chat_template entry needs a 'name' and a 'template' string", path);
                break;
            }
            status = add_template(chat, name->valuestring, source->valuestring, path, err);
            if (status != MLXE_OK) break;
        }
    } else {
        status = mlxe_error_set(err, MLXE_ERR_FORMAT,
                                "%s: key 'chat_template' must be a string or a list of {name, template}", path);
    }
    cJSON_Delete(root);
    return status;
}

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

mlxe_status mlxe_chat_template_load(const char *model_dir, mlxe_chat_template **out, mlxe_error *err) {
    if (out) *out = NULL;
    if (!model_dir || !out)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_chat_template_load: model_dir and out are required");
    if (!mlxe_dir_exists(model_dir))
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "%s: no such model folder", model_dir);
    mlxe_tokenizer_config config;
    mlxe_status status = mlxe_tokenizer_config_load(model_dir, &config, err);
    if (status != MLXE_OK) return status;
    mlxe_chat_template *chat = calloc(1, sizeof *chat);
    if (!chat) {
        mlxe_tokenizer_config_free(&config);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", model_dir);
    }
    chat->bos_token = dup_or_null(config.bos_token);
    chat->eos_token = dup_or_null(config.eos_token);
    chat->unk_token = dup_or_null(config.unk_token);
    chat->pad_token = dup_or_null(config.pad_token);
    char *jinja_path = mlxe_path_join(model_dir, "chat_template.jinja");
    char *json_path = mlxe_path_join(model_dir, "chat_template.json");
    char *config_path = mlxe_path_join(model_dir, "tokenizer_config.json");
    if (!jinja_path || !json_path || !config_path) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", model_dir);
    } else if (mlxe_file_exists(jinja_path) || (config.n_chat_templates > 0 && !mlxe_file_exists(json_path))) {
        chat->origin = mlxe_file_exists(jinja_path) ? "chat_template.jinja" : "tokenizer_config.json";
        for (int i = 0; i < config.n_chat_templates && status == MLXE_OK; i++) {
            const char *label = !strcmp(config.chat_templates[i].name, "default") && mlxe_file_exists(jinja_path)
                                    ? jinja_path : config_path;
            status = add_template(chat, config.chat_templates[i].name, config.chat_templates[i].source, label, err);
        }
    } else if (mlxe_file_exists(json_path)) {
        chat->origin = "chat_template.json";
        status = load_json_templates(chat, json_path, err);
    } else {
        chat->origin = "fallback";
        MLXE_WARN(MLXE_LOG_CAT_TEMPLATE,
                  "%s has no chat template (no chat_template.jinja, chat_template.json or 'chat_template' in "
                  "tokenizer_config.json): prompts are the message contents joined by newlines",
                  model_dir);
        status = add_template(chat, "default", FALLBACK_SOURCE, "fallback chat template", err);
    }
    if (status == MLXE_OK)
        MLXE_DEBUG(MLXE_LOG_CAT_TEMPLATE, "%s: %d chat template(s) from %s", model_dir, chat->n_templates, chat->origin);
    free(jinja_path);
    free(json_path);
    free(config_path);
    mlxe_tokenizer_config_free(&config);
    if (status != MLXE_OK) {
        mlxe_chat_template_free(chat);
        return status;
    }
    *out = chat;
    return MLXE_OK;
}

typedef struct hook_data {
    const mlxe_chat_template *chat;
} hook_data;

static void set_default(tpl_runtime *rt, tpl_dict *context, const char *key, tpl_value value) {
    if (!tpl_dict_get_cstr(context, key)) tpl_dict_set(rt, context, tpl_cstr(rt, key), value);
}

static void fill_defaults(tpl_runtime *rt, tpl_dict *context, void *user) {
    const mlxe_chat_template *chat = ((hook_data *)user)->chat;
    set_default(rt, context, "tools", tpl_none());
    set_default(rt, context, "documents", tpl_none());
    set_default(rt, context, "add_generation_prompt", tpl_bool(false));
    const char *names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    const char *values[] = {chat->bos_token, chat->eos_token, chat->unk_token, chat->pad_token};
    for (int i = 0; i < 4; i++)
        if (values[i]) set_default(rt, context, names[i], tpl_cstr(rt, values[i]));
}

/* Whether the context JSON has a non-null "tools" (a cheap check that
 * avoids parsing twice: the JSON is parsed again, fully, by the render). */
static bool context_has_tools(const char *json, size_t length) {
    cJSON *root = cJSON_ParseWithLength(json, length);
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(root, "tools");
    bool has = tools && !cJSON_IsNull(tools);
    cJSON_Delete(root);
    return has;
}

mlxe_status mlxe_chat_template_render_json(const mlxe_chat_template *chat, const char *template_name,
                                           const char *context_json, size_t context_length, char **out_text,
                                           size_t *out_length, mlxe_error *err) {
    if (out_text) *out_text = NULL;
    if (!chat) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_chat_template_render_json: chat is NULL");
    const mlxe_template *tpl = NULL;
    if (template_name) {
        for (int i = 0; i < chat->n_templates; i++)
            if (!strcmp(chat->templates[i].name, template_name)) tpl = chat->templates[i].tpl;
        if (!tpl) return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "no chat template named '%s' (from %s)", template_name, chat->origin);
    } else {
        /* transformers' get_chat_template: tool_use when tools are given, else default. */
        const mlxe_template *default_tpl = NULL, *tool_tpl = NULL;
        for (int i = 0; i < chat->n_templates; i++) {
            if (!strcmp(chat->templates[i].name, "default")) default_tpl = chat->templates[i].tpl;
            if (!strcmp(chat->templates[i].name, "tool_use")) tool_tpl = chat->templates[i].tpl;
        }
        if (tool_tpl && context_json && context_has_tools(context_json, context_length)) tpl = tool_tpl;
        else if (default_tpl) tpl = default_tpl;
        else if (chat->n_templates == 1) tpl = chat->templates[0].tpl;
        else
            return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                                  "the model has %d named chat templates and none is called 'default': pick one by name",
                                  chat->n_templates);
    }
    hook_data data = {chat};
    return tpl_template_render(tpl, context_json, context_length, fill_defaults, &data, out_text, out_length, err);
}

const char *mlxe_chat_template_origin(const mlxe_chat_template *chat) { return chat ? chat->origin : NULL; }
int mlxe_chat_template_count(const mlxe_chat_template *chat) { return chat ? chat->n_templates : 0; }
const char *mlxe_chat_template_name(const mlxe_chat_template *chat, int index) {
    if (!chat || index < 0 || index >= chat->n_templates) return NULL;
    return chat->templates[index].name;
}
