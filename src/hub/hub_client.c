/* hub/hub_client.c — the Hub client handle: options, the environment of
 * huggingface_hub's constants.py (HUB.md §4; the paths come from hub_paths.c),
 * the token, and small string helpers the other hub files share. */
#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "hub/hub_internal.h"
#include "hub/hub_paths.h"
#include "mlxengine/version.h"

char *hub_strdup(const char *s) { return s ? strdup(s) : NULL; }

char *hub_printf(const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *out = NULL;
    if (vasprintf(&out, format, args) < 0) out = NULL;
    va_end(args);
    return out;
}

char *hub_url_quote(const char *s, const char *safe) {
    size_t n = strlen(s);
    char *out = malloc(n * 3 + 1);
    if (!out) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (c && strchr(safe, c))) {
            out[j++] = (char)c;
        } else {
            snprintf(out + j, 4, "%%%02X", c);
            j += 3;
        }
    }
    out[j] = 0;
    return out;
}

bool hub_is_commit_hash(const char *s) {
    if (!s || strlen(s) != 40) return false;
    for (int i = 0; i < 40; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) return false;
    return true;
}

static bool segment_ok(const char *s, size_t n) {
    if (n == 0 || n > 96 || s[0] == '.' || s[0] == '-') return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '-' && c != '_' && c != '.') return false;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '.' && s[i + 1] == '.') return false;
    return true;
}

bool hub_repo_id_valid(const char *repo_id) {
    if (!repo_id) return false;
    const char *slash = strchr(repo_id, '/');
    if (!slash || strchr(slash + 1, '/')) return false;
    return segment_ok(repo_id, (size_t)(slash - repo_id)) && segment_ok(slash + 1, strlen(slash + 1));
}

bool hub_relative_path_safe(const char *path) {
    if (!path || !*path || path[0] == '/' || strchr(path, '\\')) return false;
    const char *p = path;
    while (*p) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) return false;
        if (!end) break;
        p = end + 1;
        if (!*p) return false;
    }
    return true;
}

/* Truthy as huggingface_hub's _is_true: 1, ON, YES, TRUE in any case. */
static bool env_truthy(const char *name) {
    const char *v = getenv(name);
    if (!v) return false;
    return strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "true") == 0;
}

static double env_seconds(const char *name, double fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end = NULL;
    double d = strtod(v, &end);
    return (end && *end == 0 && d > 0) ? d : fallback;
}

static char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return (v && *v) ? strdup(v) : NULL;
}

/* Strips surrounding whitespace in place; returns NULL for an empty result (and frees). */
static char *strip_token(char *token) {
    if (!token) return NULL;
    char *start = token;
    while (*start && isspace((unsigned char)*start)) start++;
    size_t n = strlen(start);
    while (n && isspace((unsigned char)start[n - 1])) n--;
    if (n == 0) {
        free(token);
        return NULL;
    }
    memmove(token, start, n);
    token[n] = 0;
    return token;
}

/* HF_TOKEN, HUGGING_FACE_HUB_TOKEN, then the token file (auth.get_token). */
static char *token_from_environment(void) {
    char *token = strip_token(env_nonempty("HF_TOKEN"));
    if (token) return token;
    token = strip_token(env_nonempty("HUGGING_FACE_HUB_TOKEN"));
    if (token) return token;
    char *path = hub_token_path();
    if (!path) return NULL;
    char *content = NULL;
    size_t size = 0;
    if (mlxe_file_exists(path) && mlxe_file_read_all(path, 4096, &content, &size, NULL) == MLXE_OK)
        token = strip_token(content);
    free(path);
    return token;
}

static void init_curl(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void mlxe_hub_options_init(mlxe_hub_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->offline = -1;
    options->max_parallel = 8;
    options->max_retries = 5;
    options->retry_base_delay_s = 1.0;
    options->retry_max_delay_s = 8.0;
}

mlxe_status mlxe_hub_create(const mlxe_hub_options *options, mlxe_hub **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_create: out is NULL");
    *out = NULL;
    mlxe_hub_options defaults;
    mlxe_hub_options_init(&defaults);
    if (!options) options = &defaults;
    /* curl_global_init is not thread-safe before curl 7.84: once per process. */
    static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
    pthread_once(&curl_once, init_curl);
    mlxe_hub *hub = calloc(1, sizeof *hub);
    if (!hub) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "hub client: out of memory");

    const char *endpoint = options->endpoint ? options->endpoint : getenv("HF_ENDPOINT");
    hub->endpoint = strdup(endpoint && *endpoint ? endpoint : "https://huggingface.co");
    if (hub->endpoint) {
        size_t n = strlen(hub->endpoint);
        while (n && hub->endpoint[n - 1] == '/') hub->endpoint[--n] = 0;
    }
    hub->cache_dir = options->cache_dir ? strdup(options->cache_dir) : hub_default_cache_dir();
    if (options->token)
        hub->token = strip_token(strdup(options->token));
    else
        hub->token = token_from_environment();
    hub->disable_symlinks = env_truthy("HF_HUB_DISABLE_SYMLINKS");
    hub->offline = options->offline < 0 ? env_truthy("HF_HUB_OFFLINE") : options->offline != 0;
    hub->etag_timeout_s = options->etag_timeout_s > 0 ? options->etag_timeout_s
                                                        : env_seconds("HF_HUB_ETAG_TIMEOUT", 10);
    hub->stall_timeout_s = options->stall_timeout_s > 0 ? options->stall_timeout_s
                                                         : env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
    hub->max_parallel = options->max_parallel > 0 ? options->max_parallel : 8;
    hub->max_retries = options->max_retries > 0 ? options->max_retries : 5;
    hub->retry_base_delay_s = options->retry_base_delay_s >= 0 ? options->retry_base_delay_s : 1.0;
    hub->retry_max_delay_s = options->retry_max_delay_s > 0 ? options->retry_max_delay_s : 8.0;
    hub->user_agent = options->user_agent ? strdup(options->user_agent)
                                          : hub_printf("mlxengine/%s", mlxe_version_string());
    if (!hub->endpoint || !hub->cache_dir || !hub->user_agent) {
        mlxe_hub_free(hub);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "hub client: out of memory");
    }
    /* The token itself is never logged; only whether there is one. */
    MLXE_DEBUG(MLXE_LOG_CAT_HUB, "hub: endpoint %s, cache %s, %s, %s", hub->endpoint,
               hub->cache_dir, hub->token ? "with a token" : "anonymous",
               hub->offline ? "offline" : "online");
    *out = hub;
    return MLXE_OK;
}

void mlxe_hub_free(mlxe_hub *hub) {
    if (!hub) return;
    free(hub->endpoint);
    free(hub->cache_dir);
    if (hub->token) {
        explicit_bzero(hub->token, strlen(hub->token));
        free(hub->token);
    }
    free(hub->user_agent);
    free(hub);
}

const char *mlxe_hub_endpoint(const mlxe_hub *hub) { return hub ? hub->endpoint : NULL; }
const char *mlxe_hub_cache_dir(const mlxe_hub *hub) { return hub ? hub->cache_dir : NULL; }
bool mlxe_hub_is_offline(const mlxe_hub *hub) { return hub && hub->offline; }
bool mlxe_hub_has_token(const mlxe_hub *hub) { return hub && hub->token; }
