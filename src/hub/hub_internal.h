/* hub/hub_internal.h — what the hub's files share: the client struct, HTTP
 * requests with retries and Hub error mapping, cache paths, hashing. */
#ifndef MLXE_HUB_INTERNAL_H
#define MLXE_HUB_INTERNAL_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/hub.h"

struct mlxe_hub {
    char *endpoint;  /* no trailing '/' */
    char *cache_dir; /* the hub cache (…/huggingface/hub) */
    char *token;     /* NULL when anonymous; never logged */
    bool offline;
    double etag_timeout_s;
    double stall_timeout_s;
    int max_parallel;
    int max_retries;
    double retry_base_delay_s;
    double retry_max_delay_s;
    char *user_agent;
    bool disable_symlinks; /* HF_HUB_DISABLE_SYMLINKS: snapshots hold copies */
};

/* ---- strings ---- */
char *hub_strdup(const char *s);
char *hub_printf(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* Percent-encodes s; keeps unreserved characters and those in `safe`. */
char *hub_url_quote(const char *s, const char *safe);
bool hub_is_commit_hash(const char *s);
/* "org/name" with two non-empty segments of [A-Za-z0-9._-] not starting with '.'. */
bool hub_repo_id_valid(const char *repo_id);
/* A relative path with no empty, "." or ".." segment and no backslash. */
bool hub_relative_path_safe(const char *path);

/* ---- HTTP ---- */
typedef struct hub_buffer {
    char *data;
    size_t size;
    size_t capacity;
} hub_buffer;
void hub_buffer_free(hub_buffer *buffer);

typedef struct hub_response {
    long status;
    hub_buffer body;
    char *repo_commit;   /* X-Repo-Commit */
    char *etag;          /* X-Linked-Etag else ETag, unquoted, W/ stripped */
    int64_t size;        /* X-Linked-Size else Content-Length (-1) */
    char *location;
    char *error_code;    /* X-Error-Code */
    char *error_message; /* X-Error-Message */
    char *link_next;     /* Link rel="next" */
    double retry_after_s; /* Retry-After or RateLimit t (+1); -1 when absent */
    bool linked;         /* X-Linked-Etag was present */
} hub_response;
void hub_response_clear(hub_response *response);

/* Header parsing shared with the download engine. */
void hub_response_header_line(hub_response *response, const char *line, size_t size);

/* What a request is about, for error messages. */
typedef struct hub_request_context {
    const char *repo_id;
    const char *revision;
    const char *filename;
} hub_request_context;

/* Performs a GET (or HEAD when head is true; a POST when post_body is set)
 * with the token, retrying network errors, 408, 429 and 5xx with backoff.
 * follow: follow redirects (only relative ones are followed for HEAD).
 * On a non-2xx/3xx final answer, maps it to an error through hub_http_error.
 * *response is filled in every case (clear it). */
mlxe_status hub_http_request(mlxe_hub *hub, const char *url, bool head, const char *post_body,
                             const hub_request_context *context, hub_response *response,
                             mlxe_error *err);

/* The error for a failed Hub answer, in words that say what to do. */
mlxe_status hub_http_error(const mlxe_hub *hub, const hub_response *response, const char *url,
                           const hub_request_context *context, mlxe_error *err);

/* Common curl settings: user agent, token (only to the first host), timeouts. */
void hub_curl_setup(const mlxe_hub *hub, CURL *curl, struct curl_slist **headers);
/* Delay before retry number attempt (0-based), honouring retry_after_s. */
double hub_retry_delay(const mlxe_hub *hub, int attempt, double retry_after_s);
bool hub_status_retryable(long status);
void hub_sleep(double seconds, mlxe_cancel *cancel);
double hub_now(void);

/* ---- API answers ---- */
mlxe_status hub_model_from_json(const cJSON *item, mlxe_hub_model **out, mlxe_error *err);
/* Appends tree entries (files only) from a JSON array. */
mlxe_status hub_files_from_tree_json(const cJSON *array, mlxe_hub_file_list *list, mlxe_error *err);

/* ---- cache ---- */
/* cache_dir/models--org--name (hub_cache_repo_folder_name); NULL when the id
 * is malformed or out of memory. The cache is read by hub_cache_scan.h. */
char *hub_repo_folder(const char *cache_dir, const char *repo_id);
/* mkdir -p. */
mlxe_status hub_mkdirs(const char *path, mlxe_error *err);
mlxe_status hub_mkdirs_for_file(const char *file_path, mlxe_error *err);
/* Writes content to path atomically (temporary file + rename). */
mlxe_status hub_write_atomic(const char *path, const char *content, size_t size, mlxe_error *err);
/* refs/{revision} -> commit; NULL when absent or malformed. */
char *hub_read_ref(const char *repo_folder, const char *revision);
mlxe_status hub_write_ref(const char *repo_folder, const char *revision, const char *commit,
                          mlxe_error *err);
/* Writes CACHEDIR.TAG at the cache root when missing. */
void hub_write_cachedir_tag(const char *cache_dir);
/* Opens and flock(LOCK_EX)s .locks/models--x/{etag}.lock. nonblocking: returns
 * -2 when another process holds it. Returns the fd (>= 0) or -1 on error. */
int hub_lock_blob(const char *cache_dir, const char *repo_id, const char *etag, bool nonblocking,
                  mlxe_error *err);
void hub_unlock_blob(int fd);
/* Creates snapshots/{commit}/{path} -> ../../blobs/{etag} (relative), replacing
 * what was there, atomically (link at a temporary name, then rename); with
 * copy, a copy of the blob instead (HF_HUB_DISABLE_SYMLINKS). */
mlxe_status hub_link_snapshot(const char *repo_folder, const char *commit, const char *path,
                              const char *etag, bool copy, mlxe_error *err);
/* Records a missing file under .no_exist/{commit}/{path}. */
void hub_mark_no_exist(const char *repo_folder, const char *commit, const char *path);
/* trees/{commit}.json. */
mlxe_status hub_write_tree(const char *repo_folder, const char *commit,
                           const mlxe_hub_file_list *files, mlxe_error *err);
/* Reads trees/{commit}.json; NULL when absent or unreadable. */
mlxe_hub_file_list *hub_read_tree(const char *repo_folder, const char *commit);
/* The etag a file is stored under: lfs sha256, else blob id. */
const char *hub_file_etag(const mlxe_hub_file *file);

/* ---- file selection ---- */
typedef struct hub_selection {
    const char *const *allow;
    size_t n_allow;
    const char *const *ignore;
    size_t n_ignore;
    bool all_files;
    const char *gguf_quant;
} hub_selection;
void hub_selection_from_options(const mlxe_hub_download_options *options, hub_selection *out);
/* Whether path is selected (fnmatch, huggingface_hub's filter_repo_objects:
 * a pattern ending in '/' matches everything below). */
bool hub_selection_matches(const hub_selection *selection, const char *path);

/* ---- hashing (OpenSSL EVP) ---- */
typedef struct hub_hasher hub_hasher;
/* lfs: sha256 of the content; else git blob sha1 with the "blob {size}\0" prefix. */
hub_hasher *hub_hasher_create(bool lfs, uint64_t size);
void hub_hasher_update(hub_hasher *hasher, const void *data, size_t size);
/* Writes lower-case hex into hex (65 bytes). */
void hub_hasher_final(hub_hasher *hasher, char hex[65]);
void hub_hasher_reset(hub_hasher *hasher);
void hub_hasher_free(hub_hasher *hasher);
/* Hashes a file's first `size` bytes into the hasher; false on read error. */
bool hub_hasher_update_file(hub_hasher *hasher, const char *path, uint64_t size);

/* ---- downloading a set of files ---- */
typedef struct hub_fetch_job {
    const char *path;   /* in the repo */
    const char *etag;   /* sha256 or blob sha1 */
    bool lfs;
    uint64_t size;
} hub_fetch_job;

/* Downloads jobs of repo_id at commit into blobs/ with resume, verification,
 * retries and stall detection, and links each into snapshots/{commit}.
 * total/done_already feed the progress callback. */
mlxe_status hub_fetch_files(mlxe_hub *hub, const char *repo_id, const char *commit,
                            hub_fetch_job *jobs, size_t n_jobs, size_t n_selected,
                            uint64_t total_bytes, uint64_t done_already,
                            const mlxe_hub_download_options *options, mlxe_error *err);

#endif
