/* format/tokenizer_config.c — tokenizer_config.json (special tokens, bos/eos
 * flags, chat templates) plus the separate template files transformers
 * saves next to it (chat_template.jinja, additional_chat_templates/).
 *
 * Token fields are either a string or an AddedToken dict whose "content" is
 * the string (transformers tokenization_utils_base.py writes both forms). */
#include "format/model_config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"

#define MAX_TOKENIZER_CONFIG_BYTES (64u * 1024u * 1024u)
#define MAX_TEMPLATE_BYTES (16u * 1024u * 1024u)
/* HF writes 1e30 (VERY_LARGE_INTEGER) when a tokenizer has no limit. */
#define ABSURD_MAX_LENGTH 1e15

static mlxe_status out_of_memory(const char *what, mlxe_error *err) {
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", what);
}

static mlxe_status get_token(const cJSON *root, const char *key, const char *what, char **out,
                             mlxe_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item || cJSON_IsNull(item)) return MLXE_OK;
    const char *content = NULL;
    if (cJSON_IsString(item)) content = item->valuestring;
    else if (cJSON_IsObject(item)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(item, "content");
        if (cJSON_IsString(c)) content = c->valuestring;
    }
    if (!content)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: key '%s' must be a string or an object with a 'content' string",
                              what, key);
    if (!(*out = strdup(content))) return out_of_memory(what, err);
    return MLXE_OK;
}

static mlxe_status get_tristate(const cJSON *root, const char *key, const char *what, int *out,
                                mlxe_error *err) {
    bool value = false, found = false;
    *out = -1;
    mlxe_status status = mlxe_json_get_bool(root, key, what, &value, &found, err);
    if (status == MLXE_OK && found) *out = value ? 1 : 0;
    return status;
}

/* Sets template name to source (taking ownership of source on success). */
static mlxe_status set_template(mlxe_tokenizer_config *config, const char *name, char *source,
                                const char *what, mlxe_error *err) {
    for (int i = 0; i < config->n_chat_templates; i++) {
        if (strcmp(config->chat_templates[i].name, name) == 0) {
            free(config->chat_templates[i].source);
            config->chat_templates[i].source = source;
            return MLXE_OK;
        }
    }
    mlxe_named_template *bigger =
        realloc(config->chat_templates, (size_t)(config->n_chat_templates + 1) * sizeof *bigger);
    if (!bigger) return out_of_memory(what, err);
    config->chat_templates = bigger;
    char *name_copy = strdup(name);
    if (!name_copy) return out_of_memory(what, err);
    bigger[config->n_chat_templates].name = name_copy;
    bigger[config->n_chat_templates].source = source;
    config->n_chat_templates++;
    return MLXE_OK;
}

static mlxe_status set_template_copy(mlxe_tokenizer_config *config, const char *name,
                                     const char *source, const char *what, mlxe_error *err) {
    char *copy = strdup(source);
    if (!copy) return out_of_memory(what, err);
    mlxe_status status = set_template(config, name, copy, what, err);
    if (status != MLXE_OK) free(copy);
    return status;
}

static void free_templates(mlxe_tokenizer_config *config) {
    for (int i = 0; i < config->n_chat_templates; i++) {
        free(config->chat_templates[i].name);
        free(config->chat_templates[i].source);
    }
    free(config->chat_templates);
    config->chat_templates = NULL;
    config->n_chat_templates = 0;
}

static mlxe_status parse_chat_templates(const cJSON *root, const char *what,
                                        mlxe_tokenizer_config *out, mlxe_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (!item || cJSON_IsNull(item)) return MLXE_OK;
    if (cJSON_IsString(item)) return set_template_copy(out, "default", item->valuestring, what, err);
    if (!cJSON_IsArray(item))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: key 'chat_template' must be a string or a list of {name, template}",
                              what);
    int index = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, item) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(entry, "name");
        const cJSON *source = cJSON_GetObjectItemCaseSensitive(entry, "template");
        if (!cJSON_IsString(name) || !cJSON_IsString(source))
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: chat_template entry %d needs a 'name' and a 'template' string",
                                  what, index);
        mlxe_status status = set_template_copy(out, name->valuestring, source->valuestring, what, err);
        if (status != MLXE_OK) return status;
        index++;
    }
    return MLXE_OK;
}

mlxe_status mlxe_tokenizer_config_parse(const cJSON *root, const char *what,
                                        mlxe_tokenizer_config *out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_config_parse: out is NULL");
    memset(out, 0, sizeof *out);
    out->add_bos_token = out->add_eos_token = -1;
    if (!what) what = "tokenizer_config.json";
    if (!cJSON_IsObject(root))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: the file must hold a JSON object", what);
    mlxe_status status = get_token(root, "bos_token", what, &out->bos_token, err);
    if (status == MLXE_OK) status = get_token(root, "eos_token", what, &out->eos_token, err);
    if (status == MLXE_OK) status = get_token(root, "unk_token", what, &out->unk_token, err);
    if (status == MLXE_OK) status = get_token(root, "pad_token", what, &out->pad_token, err);
    if (status == MLXE_OK) status = get_tristate(root, "add_bos_token", what, &out->add_bos_token, err);
    if (status == MLXE_OK) status = get_tristate(root, "add_eos_token", what, &out->add_eos_token, err);
    bool found = false;
    if (status == MLXE_OK)
        status = mlxe_json_get_bool(root, "clean_up_tokenization_spaces", what,
                                    &out->clean_up_tokenization_spaces, &found, err);
    double max_length = 0;
    if (status == MLXE_OK)
        status = mlxe_json_get_double(root, "model_max_length", what, &max_length, &found, err);
    if (status == MLXE_OK && found && isfinite(max_length) && max_length > 0 &&
        max_length <= ABSURD_MAX_LENGTH)
        out->model_max_length = (int64_t)max_length;
    const char *tokenizer_class = NULL;
    if (status == MLXE_OK)
        status = mlxe_json_get_string(root, "tokenizer_class", what, &tokenizer_class, &found, err);
    if (status == MLXE_OK && found && !(out->tokenizer_class = strdup(tokenizer_class)))
        status = out_of_memory(what, err);
    if (status == MLXE_OK) status = parse_chat_templates(root, what, out, err);
    if (status != MLXE_OK) {
        mlxe_tokenizer_config_free(out);
        return status;
    }
    out->present = true;
    return MLXE_OK;
}

static mlxe_status read_template_file(const char *path, char **out, mlxe_error *err) {
    size_t size = 0;
    mlxe_status status = mlxe_file_read_all(path, MAX_TEMPLATE_BYTES, out, &size, err);
    if (status == MLXE_OK && strlen(*out) != size) {
        free(*out);
        *out = NULL;
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: the template contains a NUL byte", path);
    }
    return status;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* additional_chat_templates/NAME.jinja → template NAME, in name order. */
static mlxe_status load_additional_templates(const char *dir, mlxe_tokenizer_config *out,
                                             mlxe_error *err) {
    char *folder = mlxe_path_join(dir, "additional_chat_templates");
    if (!folder) return out_of_memory(dir, err);
    DIR *d = opendir(folder);
    if (!d) {
        free(folder);
        return MLXE_OK;
    }
    char **names = NULL;
    size_t n = 0, capacity = 0;
    mlxe_status status = MLXE_OK;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        size_t len = strlen(entry->d_name);
        if (entry->d_name[0] == '.' || len <= 6 || strcmp(entry->d_name + len - 6, ".jinja") != 0)
            continue;
        if (n == capacity) {
            capacity = capacity ? capacity * 2 : 4;
            char **bigger = realloc(names, capacity * sizeof *names);
            if (!bigger) {
                status = out_of_memory(folder, err);
                break;
            }
            names = bigger;
        }
        if (!(names[n] = strdup(entry->d_name))) {
            status = out_of_memory(folder, err);
            break;
        }
        n++;
    }
    closedir(d);
    if (status == MLXE_OK && n > 1) qsort(names, n, sizeof *names, compare_names);
    for (size_t i = 0; i < n && status == MLXE_OK; i++) {
        char *path = mlxe_path_join(folder, names[i]);
        char *source = NULL;
        if (!path) {
            status = out_of_memory(folder, err);
            break;
        }
        status = read_template_file(path, &source, err);
        if (status == MLXE_OK) {
            names[i][strlen(names[i]) - 6] = '\0'; /* drop ".jinja" */
            status = set_template(out, names[i], source, path, err);
            if (status != MLXE_OK) free(source);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(folder);
    return status;
}

mlxe_status mlxe_tokenizer_config_load(const char *dir, mlxe_tokenizer_config *out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_config_load: out is NULL");
    memset(out, 0, sizeof *out);
    out->add_bos_token = out->add_eos_token = -1;
    if (!dir) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_tokenizer_config_load: dir is NULL");
    char *path = mlxe_path_join(dir, "tokenizer_config.json");
    char *jinja_path = mlxe_path_join(dir, "chat_template.jinja");
    mlxe_status status = MLXE_OK;
    if (!path || !jinja_path) status = out_of_memory(dir, err);
    if (status == MLXE_OK && mlxe_file_exists(path)) {
        cJSON *root = NULL;
        status = mlxe_json_parse_file(path, MAX_TOKENIZER_CONFIG_BYTES, &root, err);
        if (status == MLXE_OK) status = mlxe_tokenizer_config_parse(root, path, out, err);
        cJSON_Delete(root);
    }
    /* transformers' chat-template docs: a root chat_template.jinja overrides
     * the "default" entry; additional_chat_templates/<name>.jinja add named
     * ones (the file name's stem is the template name). */
    if (status == MLXE_OK && mlxe_file_exists(jinja_path)) {
        char *source = NULL;
        status = read_template_file(jinja_path, &source, err);
        if (status == MLXE_OK) {
            status = set_template(out, "default", source, jinja_path, err);
            if (status != MLXE_OK) free(source);
        }
    }
    if (status == MLXE_OK) status = load_additional_templates(dir, out, err);
    free(path);
    free(jinja_path);
    if (status != MLXE_OK) mlxe_tokenizer_config_free(out);
    return status;
}

void mlxe_tokenizer_config_free(mlxe_tokenizer_config *config) {
    if (!config) return;
    free(config->bos_token);
    free(config->eos_token);
    free(config->unk_token);
    free(config->pad_token);
    free(config->tokenizer_class);
    free_templates(config);
    memset(config, 0, sizeof *config);
    config->add_bos_token = config->add_eos_token = -1;
}

const char *mlxe_tokenizer_config_chat_template(const mlxe_tokenizer_config *config,
                                                const char *name) {
    if (!config) return NULL;
    if (!name) name = "default";
    for (int i = 0; i < config->n_chat_templates; i++)
        if (strcmp(config->chat_templates[i].name, name) == 0) return config->chat_templates[i].source;
    return NULL;
}
