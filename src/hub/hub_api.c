/* hub/hub_api.c — the Hub's JSON API (HUB.md §1): model info at a revision,
 * the recursive file tree with Link pagination, and search with filters,
 * sort and limit. Items keep their raw JSON so unknown keys are not lost. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "hub/hub_internal.h"

static char *json_string_copy(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? hub_strdup(v->valuestring) : NULL;
}

static int64_t json_int(const cJSON *obj, const char *key, int64_t fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : fallback;
}

static void file_clear(mlxe_hub_file *f) {
    free(f->path);
    free(f->blob_id);
    free(f->lfs_sha256);
}

void mlxe_hub_model_free(mlxe_hub_model *m) {
    if (!m) return;
    free(m->id);
    free(m->sha);
    free(m->last_modified);
    free(m->created_at);
    free(m->library_name);
    free(m->pipeline_tag);
    free(m->gated);
    for (size_t i = 0; i < m->n_tags; i++) free(m->tags[i]);
    free(m->tags);
    for (size_t i = 0; i < m->n_files; i++) file_clear(&m->files[i]);
    free(m->files);
    free(m->raw_json);
    free(m);
}

void mlxe_hub_file_list_free(mlxe_hub_file_list *list) {
    if (!list) return;
    for (size_t i = 0; i < list->n_files; i++) file_clear(&list->files[i]);
    free(list->files);
    free(list);
}

void mlxe_hub_model_list_free(mlxe_hub_model_list *list) {
    if (!list) return;
    for (size_t i = 0; i < list->n_models; i++) mlxe_hub_model_free(list->models[i]);
    free(list->models);
    free(list);
}

mlxe_status hub_model_from_json(const cJSON *item, mlxe_hub_model **out, mlxe_error *err) {
    *out = NULL;
    if (!cJSON_IsObject(item))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "Hub answer: a model is not a JSON object");
    mlxe_hub_model *m = calloc(1, sizeof *m);
    if (!m) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    m->id = json_string_copy(item, "id");
    if (!m->id) m->id = json_string_copy(item, "modelId");
    if (!m->id) {
        mlxe_hub_model_free(m);
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "Hub answer: a model has no 'id'");
    }
    m->sha = json_string_copy(item, "sha");
    m->last_modified = json_string_copy(item, "lastModified");
    m->created_at = json_string_copy(item, "createdAt");
    m->library_name = json_string_copy(item, "library_name");
    m->pipeline_tag = json_string_copy(item, "pipeline_tag");
    const cJSON *gated = cJSON_GetObjectItemCaseSensitive(item, "gated");
    m->gated = strdup(cJSON_IsString(gated) ? gated->valuestring : "false");
    m->is_private = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "private"));
    m->downloads = json_int(item, "downloads", 0);
    m->likes = json_int(item, "likes", 0);
    m->parameters = -1;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(item, "safetensors");
    if (cJSON_IsObject(st)) m->parameters = json_int(st, "total", -1);
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(item, "tags");
    if (cJSON_IsArray(tags)) {
        int n = cJSON_GetArraySize(tags);
        m->tags = calloc((size_t)n + 1, sizeof *m->tags);
        const cJSON *t;
        cJSON_ArrayForEach(t, tags) if (m->tags && cJSON_IsString(t)) m->tags[m->n_tags++] =
            strdup(t->valuestring);
    }
    const cJSON *siblings = cJSON_GetObjectItemCaseSensitive(item, "siblings");
    if (cJSON_IsArray(siblings)) {
        int n = cJSON_GetArraySize(siblings);
        m->files = calloc((size_t)n + 1, sizeof *m->files);
        const cJSON *s;
        cJSON_ArrayForEach(s, siblings) {
            if (!m->files) break;
            char *name = json_string_copy(s, "rfilename");
            if (!name) continue;
            mlxe_hub_file *f = &m->files[m->n_files++];
            f->path = name;
            f->size = json_int(s, "size", -1);
            f->blob_id = json_string_copy(s, "blobId");
            const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(s, "lfs");
            if (cJSON_IsObject(lfs)) f->lfs_sha256 = json_string_copy(lfs, "sha256");
        }
    }
    m->raw_json = cJSON_PrintUnformatted(item);
    if (!m->gated || (cJSON_IsArray(tags) && !m->tags) || (cJSON_IsArray(siblings) && !m->files)) {
        mlxe_hub_model_free(m);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *out = m;
    return MLXE_OK;
}

mlxe_status hub_files_from_tree_json(const cJSON *array, mlxe_hub_file_list *list, mlxe_error *err) {
    if (!cJSON_IsArray(array))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "Hub answer: the file tree is not a JSON array");
    size_t add = (size_t)cJSON_GetArraySize(array);
    mlxe_hub_file *files = realloc(list->files, (list->n_files + add + 1) * sizeof *files);
    if (!files) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    list->files = files;
    const cJSON *e;
    cJSON_ArrayForEach(e, array) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(e, "type");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "file") != 0) continue;
        mlxe_hub_file f = {0};
        f.path = json_string_copy(e, "path");
        f.size = json_int(e, "size", -1);
        f.blob_id = json_string_copy(e, "oid");
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(e, "lfs");
        if (cJSON_IsObject(lfs)) {
            f.lfs_sha256 = json_string_copy(lfs, "oid");
            if (!f.lfs_sha256) f.lfs_sha256 = json_string_copy(lfs, "sha256");
            f.size = json_int(lfs, "size", f.size);
        }
        if (!f.path || !f.blob_id) {
            file_clear(&f);
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "Hub answer: a file tree entry lacks 'path' or 'oid'");
        }
        list->files[list->n_files++] = f;
    }
    return MLXE_OK;
}

static mlxe_status get_json(mlxe_hub *hub, const char *url, const hub_request_context *context,
                            cJSON **json, char **next, mlxe_error *err) {
    hub_response r;
    memset(&r, 0, sizeof r);
    mlxe_status s = hub_http_request(hub, url, false, NULL, context, &r, err);
    if (s == MLXE_OK)
        s = mlxe_json_parse(r.body.data ? r.body.data : "", r.body.size, url, json, err);
    if (s == MLXE_OK && next) {
        *next = r.link_next;
        r.link_next = NULL;
    }
    hub_response_clear(&r);
    return s;
}

static mlxe_status check_repo(const char *repo_id, mlxe_error *err) {
    if (!hub_repo_id_valid(repo_id))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "'%s' is not a Hub model id: expected 'org/name' (letters, digits, "
                              "'-', '_', '.')",
                              repo_id ? repo_id : "(null)");
    return MLXE_OK;
}

mlxe_status mlxe_hub_model_info(mlxe_hub *hub, const char *repo_id, const char *revision,
                                bool with_sizes, mlxe_hub_model **out, mlxe_error *err) {
    if (!hub || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_model_info: NULL argument");
    *out = NULL;
    mlxe_status s = check_repo(repo_id, err);
    if (s) return s;
    char *url;
    if (revision) {
        char *rev = hub_url_quote(revision, "");
        url = rev ? hub_printf("%s/api/models/%s/revision/%s%s", hub->endpoint, repo_id, rev,
                               with_sizes ? "?blobs=true" : "")
                  : NULL;
        free(rev);
    } else {
        url = hub_printf("%s/api/models/%s%s", hub->endpoint, repo_id, with_sizes ? "?blobs=true" : "");
    }
    if (!url) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    hub_request_context context = {repo_id, revision, NULL};
    cJSON *json = NULL;
    s = get_json(hub, url, &context, &json, NULL, err);
    if (s == MLXE_OK) s = hub_model_from_json(json, out, err);
    cJSON_Delete(json);
    free(url);
    return s;
}

mlxe_status mlxe_hub_list_files(mlxe_hub *hub, const char *repo_id, const char *revision,
                                mlxe_hub_file_list **out, mlxe_error *err) {
    if (!hub || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_list_files: NULL argument");
    *out = NULL;
    mlxe_status s = check_repo(repo_id, err);
    if (s) return s;
    char *rev = hub_url_quote(revision ? revision : "main", "");
    char *url = rev ? hub_printf("%s/api/models/%s/tree/%s?recursive=true&expand=false", hub->endpoint,
                                 repo_id, rev)
                    : NULL;
    free(rev);
    mlxe_hub_file_list *list = calloc(1, sizeof *list);
    if (!url || !list) {
        free(url);
        free(list);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    hub_request_context context = {repo_id, revision, NULL};
    for (int page = 0; url && s == MLXE_OK; page++) {
        if (page > 10000) {
            s = mlxe_error_set(err, MLXE_ERR_LIMIT, "%s: more than 10000 pages of files", repo_id);
            break;
        }
        cJSON *json = NULL;
        char *next = NULL;
        s = get_json(hub, url, &context, &json, &next, err);
        if (s == MLXE_OK) s = hub_files_from_tree_json(json, list, err);
        cJSON_Delete(json);
        free(url);
        url = next;
    }
    free(url);
    if (s) {
        mlxe_hub_file_list_free(list);
        return s;
    }
    *out = list;
    return MLXE_OK;
}

void mlxe_hub_search_options_init(mlxe_hub_search_options *options) {
    if (options) memset(options, 0, sizeof *options);
}

/* Appends "&key=quoted(value)" to *url. */
static bool append_param(char **url, const char *key, const char *value) {
    if (!*url) return false;
    char *q = hub_url_quote(value, "");
    char *next = q ? hub_printf("%s%s%s=%s", *url, strchr(*url, '?') ? "&" : "?", key, q) : NULL;
    free(q);
    free(*url);
    *url = next;
    return next != NULL;
}

mlxe_status mlxe_hub_search(mlxe_hub *hub, const mlxe_hub_search_options *options,
                            mlxe_hub_model_list **out, mlxe_error *err) {
    if (!hub || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_search: NULL argument");
    *out = NULL;
    mlxe_hub_search_options defaults;
    mlxe_hub_search_options_init(&defaults);
    if (!options) options = &defaults;
    size_t limit = options->limit ? options->limit : 20;
    char limit_text[32];
    snprintf(limit_text, sizeof limit_text, "%zu", limit);
    char *url = hub_printf("%s/api/models", hub->endpoint);
    if (options->search) append_param(&url, "search", options->search);
    if (options->author) append_param(&url, "author", options->author);
    for (size_t i = 0; i < options->n_filters; i++) append_param(&url, "filter", options->filters[i]);
    if (options->sort) {
        append_param(&url, "sort", options->sort);
        append_param(&url, "direction", "-1");
    }
    append_param(&url, "limit", limit_text);
    if (options->with_files) {
        append_param(&url, "full", "true");
        append_param(&url, "blobs", "true");
    }
    mlxe_hub_model_list *list = calloc(1, sizeof *list);
    if (!url || !list || !(list->models = calloc(limit, sizeof *list->models))) {
        free(url);
        mlxe_hub_model_list_free(list);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    mlxe_status s = MLXE_OK;
    hub_request_context context = {NULL, NULL, NULL};
    while (url && s == MLXE_OK && list->n_models < limit) {
        cJSON *json = NULL;
        char *next = NULL;
        s = get_json(hub, url, &context, &json, &next, err);
        if (s == MLXE_OK && !cJSON_IsArray(json))
            s = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: search answer is not a JSON array", url);
        const cJSON *item;
        if (s == MLXE_OK) cJSON_ArrayForEach(item, json) {
                if (list->n_models >= limit) break;
                s = hub_model_from_json(item, &list->models[list->n_models], err);
                if (s) break;
                list->n_models++;
            }
        cJSON_Delete(json);
        free(url);
        url = next;
    }
    free(url);
    if (s) {
        mlxe_hub_model_list_free(list);
        return s;
    }
    *out = list;
    return MLXE_OK;
}
