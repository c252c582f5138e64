/* hub/hub_http.c — one HTTP request to the Hub with libcurl: the token sent
 * only to the Hub's host, retries with backoff on network errors, 408, 429
 * and 5xx (honouring Retry-After and RateLimit), the headers the Hub answers
 * with (HUB.md §2 step 3), and Hub errors turned into sentences that say
 * what to do (utils/_http.py hf_raise_for_status). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "hub/hub_internal.h"

double hub_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hub_sleep(double seconds, mlxe_cancel *cancel) {
    double end = hub_now() + seconds;
    while (!mlxe_cancel_is_requested(cancel)) {
        double left = end - hub_now();
        if (left <= 0) break;
        double step = left < 0.05 ? left : 0.05;
        struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

void hub_buffer_free(hub_buffer *buffer) {
    free(buffer->data);
    memset(buffer, 0, sizeof *buffer);
}

void hub_response_clear(hub_response *r) {
    hub_buffer_free(&r->body);
    free(r->repo_commit);
    free(r->etag);
    free(r->location);
    free(r->error_code);
    free(r->error_message);
    free(r->link_next);
    memset(r, 0, sizeof *r);
    r->size = -1;
    r->retry_after_s = -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    hub_buffer *b = user;
    size_t add = size * n;
    if (b->size + add + 1 > b->capacity) {
        size_t cap = b->capacity ? b->capacity * 2 : 4096;
        while (cap < b->size + add + 1) cap *= 2;
        if (cap > ((size_t)64 << 20)) return 0; /* an API answer over 64 MiB is not one */
        char *p = realloc(b->data, cap);
        if (!p) return 0;
        b->data = p;
        b->capacity = cap;
    }
    memcpy(b->data + b->size, data, add);
    b->size += add;
    b->data[b->size] = 0;
    return add;
}

/* Copies a header value, trimmed, or NULL. */
static char *header_value(const char *line, size_t size, const char *name) {
    size_t n = strlen(name);
    if (size <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') return NULL;
    const char *v = line + n + 1;
    const char *end = line + size;
    while (v < end && isspace((unsigned char)*v)) v++;
    while (end > v && isspace((unsigned char)end[-1])) end--;
    return strndup(v, (size_t)(end - v));
}

/* Strips W/ and quotes from an ETag. */
static char *normalize_etag(char *etag) {
    if (!etag) return NULL;
    char *p = etag;
    if (strncmp(p, "W/", 2) == 0) p += 2;
    size_t n = strlen(p);
    if (n >= 2 && p[0] == '"' && p[n - 1] == '"') {
        p++;
        n -= 2;
    }
    memmove(etag, p, n);
    etag[n] = 0;
    return etag;
}

static void replace(char **slot, char *value) {
    free(*slot);
    *slot = value;
}

void hub_response_header_line(hub_response *r, const char *line, size_t size) {
    char *v;
    if (size >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* A new answer (after a redirect): forget the previous one's headers. */
        hub_buffer body = r->body;
        r->body = (hub_buffer){0};
        hub_response_clear(r);
        r->body = body;
        const char *sp = memchr(line, ' ', size);
        if (sp) r->status = strtol(sp + 1, NULL, 10);
        return;
    }
    if ((v = header_value(line, size, "X-Repo-Commit"))) replace(&r->repo_commit, v);
    else if ((v = header_value(line, size, "X-Linked-Etag"))) {
        replace(&r->etag, normalize_etag(v));
        r->linked = true;
    } else if ((v = header_value(line, size, "ETag"))) {
        if (!r->linked) replace(&r->etag, normalize_etag(v));
        else free(v);
    } else if ((v = header_value(line, size, "X-Linked-Size"))) {
        r->size = strtoll(v, NULL, 10);
        r->linked = true;
        free(v);
    } else if ((v = header_value(line, size, "Content-Length"))) {
        if (!r->linked && r->size < 0 && !(r->status >= 300 && r->status < 400))
            r->size = strtoll(v, NULL, 10);
        free(v);
    } else if ((v = header_value(line, size, "Location"))) replace(&r->location, v);
    else if ((v = header_value(line, size, "X-Error-Code"))) replace(&r->error_code, v);
    else if ((v = header_value(line, size, "X-Error-Message"))) replace(&r->error_message, v);
    else if ((v = header_value(line, size, "Retry-After"))) {
        r->retry_after_s = strtod(v, NULL);
        free(v);
    } else if ((v = header_value(line, size, "RateLimit"))) {
        /* "api";r=0;t=55 — seconds until the window resets; wait t+1. */
        const char *t = strstr(v, ";t=");
        if (t && r->retry_after_s < 0) r->retry_after_s = strtod(t + 3, NULL) + 1;
        free(v);
    } else if ((v = header_value(line, size, "Link"))) {
        /* <url>; rel="next" (possibly among several links). */
        char *p = v;
        while (p && *p) {
            char *lt = strchr(p, '<'), *gt = lt ? strchr(lt, '>') : NULL;
            if (!gt) break;
            char *next = strchr(gt, ',');
            char *rel = strstr(gt, "rel=\"next\"");
            if (rel && (!next || rel < next)) {
                replace(&r->link_next, strndup(lt + 1, (size_t)(gt - lt - 1)));
                break;
            }
            p = next ? next + 1 : NULL;
        }
        free(v);
    }
}

static size_t on_header(char *data, size_t size, size_t n, void *user) {
    hub_response_header_line(user, data, size * n);
    return size * n;
}

void hub_curl_setup(const mlxe_hub *hub, CURL *curl, struct curl_slist **headers) {
    curl_easy_setopt(curl, CURLOPT_USERAGENT, hub->user_agent);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)(hub->etag_timeout_s * 1000));
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
    if (hub->token) {
        /* Bearer auth set this way is sent to the first host only, never to
         * the CDN a download is redirected to (no CURLOPT_UNRESTRICTED_AUTH). */
        curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BEARER);
        curl_easy_setopt(curl, CURLOPT_XOAUTH2_BEARER, hub->token);
    }
    *headers = curl_slist_append(*headers, "Accept-Encoding: identity");
}

bool hub_status_retryable(long status) {
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

double hub_retry_delay(const mlxe_hub *hub, int attempt, double retry_after_s) {
    if (retry_after_s >= 0) return retry_after_s > 60 ? 60 : retry_after_s;
    double d = hub->retry_base_delay_s * pow(2.0, attempt);
    return d > hub->retry_max_delay_s ? hub->retry_max_delay_s : d;
}

static bool is_absolute_url(const char *s) {
    return strncasecmp(s, "http://", 7) == 0 || strncasecmp(s, "https://", 8) == 0;
}

/* Resolves a relative Location against url (scheme://host[:port] kept). */
static char *join_location(const char *url, const char *location) {
    if (is_absolute_url(location)) return strdup(location);
    const char *host = strstr(url, "://");
    const char *path = host ? strchr(host + 3, '/') : NULL;
    size_t origin = path ? (size_t)(path - url) : strlen(url);
    if (location[0] == '/') return hub_printf("%.*s%s", (int)origin, url, location);
    const char *last = strrchr(url, '/');
    return hub_printf("%.*s/%s", (int)(last - url), url, location);
}

mlxe_status hub_http_request(mlxe_hub *hub, const char *url, bool head, const char *post_body,
                             const hub_request_context *context, hub_response *response,
                             mlxe_error *err) {
    hub_response_clear(response);
    if (hub->offline)
        return mlxe_error_set(err, MLXE_ERR_NETWORK,
                              "offline mode (HF_HUB_OFFLINE) forbids the request to %s; unset "
                              "HF_HUB_OFFLINE or use a model already in the cache",
                              url);
    char *current = strdup(url);
    if (!current) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    int attempt = 0, redirects = 0;
    mlxe_status status = MLXE_OK;
    for (;;) {
        CURL *curl = curl_easy_init();
        if (!curl) {
            status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "curl_easy_init failed");
            break;
        }
        struct curl_slist *headers = NULL;
        hub_curl_setup(hub, curl, &headers);
        if (post_body) headers = curl_slist_append(headers, "Content-Type: application/json");
        char curl_error[CURL_ERROR_SIZE] = "";
        hub_response_clear(response);
        curl_easy_setopt(curl, CURLOPT_URL, current);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, response);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response->body);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)ceil(hub->etag_timeout_s));
        /* HEAD follows only relative redirects (renamed repos), by hand below,
         * so that the LFS headers of the 302 are the ones read. */
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, head ? 0L : 1L);
        if (head) curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
        if (post_body) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post_body);
        CURLcode code = curl_easy_perform(curl);
        curl_easy_cleanup(curl);
        curl_slist_free_all(headers);
        MLXE_DEBUG(MLXE_LOG_CAT_HUB, "%s %s -> %ld (%s)", head ? "HEAD" : post_body ? "POST" : "GET",
                   current, response->status, code == CURLE_OK ? "ok" : curl_easy_strerror(code));
        bool retry = false;
        if (code != CURLE_OK) {
            retry = true;
            if (attempt + 1 >= hub->max_retries) {
                status = mlxe_error_set(err, MLXE_ERR_NETWORK,
                                        "cannot reach %s: %s (after %d attempts); check your "
                                        "network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use the cache",
                                        current, curl_error[0] ? curl_error : curl_easy_strerror(code),
                                        attempt + 1);
                break;
            }
        } else if (hub_status_retryable(response->status)) {
            retry = attempt + 1 < hub->max_retries;
            if (!retry) {
                status = hub_http_error(hub, response, current, context, err);
                break;
            }
        } else if (head && response->status >= 300 && response->status < 400 && response->location &&
                   !is_absolute_url(response->location) && redirects < 10) {
            char *next = join_location(current, response->location);
            if (!next) {
                status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
                break;
            }
            free(current);
            current = next;
            redirects++;
            continue;
        } else if (response->status >= 400) {
            status = hub_http_error(hub, response, current, context, err);
            break;
        } else {
            break;
        }
        if (retry) {
            double delay = hub_retry_delay(hub, attempt, response->retry_after_s);
            MLXE_INFO(MLXE_LOG_CAT_HUB, "retrying %s in %.1f s (answer %ld)", current, delay,
                      response->status);
            hub_sleep(delay, NULL);
            attempt++;
        }
    }
    free(current);
    return status;
}

mlxe_status hub_http_error(const mlxe_hub *hub, const hub_response *r, const char *url,
                           const hub_request_context *context, mlxe_error *err) {
    const char *repo = context && context->repo_id ? context->repo_id : "?";
    const char *revision = context && context->revision ? context->revision : "main";
    const char *file = context ? context->filename : NULL;
    const char *code = r->error_code ? r->error_code : "";
    const char *message = r->error_message ? r->error_message : "";
    if (strcmp(code, "RevisionNotFound") == 0)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "revision '%s' of model '%s' not found on %s: check the branch, tag "
                              "or commit (or leave it out for 'main')",
                              revision, repo, hub->endpoint);
    if (strcmp(code, "EntryNotFound") == 0)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "file '%s' not found in model '%s' at revision '%s' (%s): check the "
                              "file name in the model's file list",
                              file ? file : "?", repo, revision, url);
    if (strcmp(code, "GatedRepo") == 0) {
        if (r->status == 401 || !hub->token)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "model '%s' is gated: request access at %s/%s and log in (set "
                                  "HF_TOKEN or write your token to $HF_HOME/token)",
                                  repo, hub->endpoint, repo);
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "model '%s' is gated and your token is not on its access list: request "
                              "access at %s/%s (approval may take time)",
                              repo, hub->endpoint, repo);
    }
    if (strcmp(message, "Access to this resource is disabled.") == 0)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "model '%s' has been disabled on %s; use another model", repo,
                              hub->endpoint);
    if (r->status == 401 && strcmp(message, "Invalid credentials in Authorization header") == 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "the Hub rejected your token as invalid (%s): check HF_TOKEN or the "
                              "token file ($HF_TOKEN_PATH or $HF_HOME/token), or unset it to go "
                              "anonymous",
                              url);
    if (strcmp(code, "RepoNotFound") == 0 || r->status == 401)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "model '%s' not found on %s, or it is private: check the id (try "
                              "'mlxengine search'), and for a private model set HF_TOKEN",
                              repo, hub->endpoint);
    if (r->status == 404)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "%s: not found (404) for model '%s'", url,
                              repo);
    if (r->status == 429)
        return mlxe_error_set(err, MLXE_ERR_NETWORK,
                              "%s: the Hub keeps rate-limiting us (429); wait a few minutes and "
                              "try again, or log in (HF_TOKEN) for higher limits",
                              url);
    if (r->status >= 500)
        return mlxe_error_set(err, MLXE_ERR_NETWORK,
                              "%s: the Hub answered %ld (server error) after %d attempts; try again "
                              "later, or set HF_HUB_OFFLINE=1 to use the cache",
                              url, r->status, hub->max_retries);
    return mlxe_error_set(err, MLXE_ERR_NETWORK, "%s: unexpected answer %ld%s%s", url, r->status,
                          message[0] ? ": " : "", message);
}
