/* mlxengine/hub.h — the Hugging Face Hub: search, model info, downloads into
 * the cache shared with huggingface_hub, offline resolution, cache listing
 * and deletion, and the registry of curated models.
 *
 * The cache is exactly huggingface_hub's (shared/docs/HUB.md §3):
 * $HF_HUB_CACHE/models--org--name/{blobs,refs,snapshots,.no_exist,trees},
 * so what Python tools downloaded is used here without a request and the
 * other way round. Downloads resume across runs from blobs/{etag}.incomplete,
 * every finished file is checked (sha256 for LFS files, git blob sha1 for the
 * others) before it is linked into snapshots/, and the token is never logged.
 *
 * Thread-safety: an mlxe_hub may be used from several threads at once (it is
 * read-only after creation); results are owned by the caller. */
#ifndef MLXENGINE_HUB_H
#define MLXENGINE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_hub mlxe_hub;

typedef struct mlxe_hub_options {
    const char *endpoint;      /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    const char *cache_dir;     /* NULL: $HF_HUB_CACHE, $HUGGINGFACE_HUB_CACHE, $HF_HOME/hub */
    const char *token;         /* NULL: $HF_TOKEN, $HUGGING_FACE_HUB_TOKEN, $HF_TOKEN_PATH file;
                                  "" means anonymous */
    int offline;               /* -1 (default): $HF_HUB_OFFLINE; 0 online; 1 never a request.
                                  $HF_HUB_DISABLE_SYMLINKS makes snapshots hold copies of the
                                  blobs instead of symlinks */
    double etag_timeout_s;     /* metadata request timeout; default $HF_HUB_ETAG_TIMEOUT or 10 */
    double stall_timeout_s;    /* no byte for this long: reconnect and resume;
                                  default $HF_HUB_DOWNLOAD_TIMEOUT or 10 */
    int max_parallel;          /* files downloaded at once; default 8 */
    int max_retries;           /* attempts without progress per request; default 5 */
    double retry_base_delay_s; /* first backoff delay, doubled each time; default 1 */
    double retry_max_delay_s;  /* backoff cap; default 8 (Retry-After may ask for more, up to 60) */
    const char *user_agent;    /* NULL: "mlxengine/<version>" */
} mlxe_hub_options;

void mlxe_hub_options_init(mlxe_hub_options *options);

/* Creates a client; reads the environment for what options leaves NULL/-1.
 * Makes no request. options may be NULL (all defaults). */
mlxe_status mlxe_hub_create(const mlxe_hub_options *options, mlxe_hub **out, mlxe_error *err);
void mlxe_hub_free(mlxe_hub *hub);

/* Borrowed strings, valid until mlxe_hub_free. */
const char *mlxe_hub_endpoint(const mlxe_hub *hub);
const char *mlxe_hub_cache_dir(const mlxe_hub *hub);
bool mlxe_hub_is_offline(const mlxe_hub *hub);
bool mlxe_hub_has_token(const mlxe_hub *hub);

/* ---- model info, file tree, search ---- */

typedef struct mlxe_hub_file {
    char *path;       /* relative path in the repository */
    int64_t size;     /* bytes; -1 when unknown (siblings without blobs=true) */
    char *blob_id;    /* git blob sha1 (of the LFS pointer for LFS files); NULL when unknown */
    char *lfs_sha256; /* sha256 of the content for LFS files, else NULL */
} mlxe_hub_file;

typedef struct mlxe_hub_model {
    char *id;            /* "org/name" */
    char *sha;           /* resolved commit, NULL when the answer lacks it */
    char *last_modified; /* ISO 8601 or NULL */
    char *created_at;
    char *library_name;
    char *pipeline_tag;
    char *gated;         /* "false", "auto" or "manual" */
    bool is_private;
    int64_t downloads;
    int64_t likes;
    int64_t parameters;  /* safetensors.total, or -1 */
    char **tags;
    size_t n_tags;
    mlxe_hub_file *files; /* siblings (sizes when asked for) */
    size_t n_files;
    char *raw_json;       /* the item as the Hub sent it (unknown keys kept) */
} mlxe_hub_model;

void mlxe_hub_model_free(mlxe_hub_model *model);

/* GET /api/models/{repo_id}[/revision/{revision}]; with_sizes adds blobs=true.
 * revision NULL means "main". */
mlxe_status mlxe_hub_model_info(mlxe_hub *hub, const char *repo_id, const char *revision,
                                bool with_sizes, mlxe_hub_model **out, mlxe_error *err);

typedef struct mlxe_hub_file_list {
    mlxe_hub_file *files;
    size_t n_files;
} mlxe_hub_file_list;

void mlxe_hub_file_list_free(mlxe_hub_file_list *list);

/* The files (not directories) of the repository at revision, recursively,
 * following Link pagination. */
mlxe_status mlxe_hub_list_files(mlxe_hub *hub, const char *repo_id, const char *revision,
                                mlxe_hub_file_list **out, mlxe_error *err);

typedef struct mlxe_hub_search_options {
    const char *search;         /* text in the id; NULL: any */
    const char *author;         /* NULL: any */
    const char *const *filters; /* tags that must all be present, e.g. "mlx", "gguf" */
    size_t n_filters;
    const char *sort;           /* downloads, likes, createdAt, lastModified, trendingScore; NULL */
    size_t limit;               /* 0: the default, 20 */
    bool with_files;            /* expand siblings with sizes (blobs=true) */
} mlxe_hub_search_options;

void mlxe_hub_search_options_init(mlxe_hub_search_options *options);

typedef struct mlxe_hub_model_list {
    mlxe_hub_model **models;
    size_t n_models;
} mlxe_hub_model_list;

void mlxe_hub_model_list_free(mlxe_hub_model_list *list);

/* GET /api/models with the filters, following `Link: rel="next"` until limit
 * models are collected or the pages end. */
mlxe_status mlxe_hub_search(mlxe_hub *hub, const mlxe_hub_search_options *options,
                            mlxe_hub_model_list **out, mlxe_error *err);

/* ---- downloads ---- */

typedef struct mlxe_hub_progress {
    uint64_t total_bytes;      /* bytes of every selected file (cached ones included) */
    uint64_t done_bytes;       /* bytes present and verified or received so far */
    double bytes_per_second;   /* received bytes per second over the last seconds */
    double eta_seconds;        /* -1 when unknown */
    size_t n_files;            /* selected files */
    size_t n_files_done;
    const char *file_path;     /* the file this update is about (borrowed), or NULL */
    uint64_t file_size;
    uint64_t file_done;
    bool finished;             /* the last call, once everything is in place */
} mlxe_hub_progress;

typedef void (*mlxe_hub_progress_fn)(void *user, const mlxe_hub_progress *progress);

typedef struct mlxe_hub_download_options {
    const char *revision;                /* branch, tag, refs/pr/N or commit; NULL: "main" */
    const char *const *allow_patterns;   /* fnmatch patterns; NULL/0: mlx-lm's defaults
                                            (*.json, model*.safetensors, *.jinja,
                                            tokenizer.model, *.tiktoken, *.txt) */
    size_t n_allow_patterns;
    const char *const *ignore_patterns;
    size_t n_ignore_patterns;
    bool all_files;                      /* ignore the default allow patterns: every file */
    const char *gguf_quant;              /* e.g. "Q4_K_M": download only the .gguf files whose
                                            names carry it (case-insensitive; a split model's
                                            shards all match); NOT_FOUND when none does */
    mlxe_hub_progress_fn progress;
    void *progress_user;
    mlxe_cancel *cancel;                 /* stops with MLXE_ERR_CANCELLED; partial files kept
                                            for resuming */
} mlxe_hub_download_options;

void mlxe_hub_download_options_init(mlxe_hub_download_options *options);

/* Downloads the selected files of repo_id at the revision into the cache and
 * writes the snapshot folder's path to *snapshot_dir (malloc'd).
 * A commit already complete in the cache (trees/{commit}.json lists it) makes
 * no request; offline, the revision is resolved through refs/. When the Hub
 * cannot be reached and the cache has the revision, the cached snapshot is
 * returned. */
mlxe_status mlxe_hub_snapshot_download(mlxe_hub *hub, const char *repo_id,
                                       const mlxe_hub_download_options *options,
                                       char **snapshot_dir, mlxe_error *err);

/* Downloads one file (HEAD then GET, as huggingface_hub's hf_hub_download)
 * and writes its snapshot path to *path (malloc'd). A file missing from the
 * repository is recorded under .no_exist/ and reported as MLXE_ERR_NOT_FOUND. */
mlxe_status mlxe_hub_download_file(mlxe_hub *hub, const char *repo_id, const char *revision,
                                   const char *filename, char **path, mlxe_error *err);

/* ---- the cache ---- */

typedef struct mlxe_hub_cached_revision {
    char *commit;
    char **refs;          /* branch/tag names pointing at it */
    size_t n_refs;
    char *snapshot_path;
    size_t n_files;
    uint64_t size_on_disk; /* bytes of its distinct blobs */
    bool complete;         /* every file of trees/{commit}.json present (true when unknown) */
} mlxe_hub_cached_revision;

typedef struct mlxe_hub_cached_repo {
    char *repo_id;
    char *path;
    uint64_t size_on_disk;     /* distinct blobs */
    uint64_t incomplete_bytes; /* bytes in the blobs ending in .incomplete */
    size_t n_incomplete;
    mlxe_hub_cached_revision *revisions;
    size_t n_revisions;
    char *problem;             /* a broken link or a ref to a missing snapshot; NULL if none */
    double last_modified;      /* unix time of the newest blob */
} mlxe_hub_cached_repo;

typedef struct mlxe_hub_cache_info {
    mlxe_hub_cached_repo *repos;
    size_t n_repos;
    uint64_t size_on_disk;
} mlxe_hub_cache_info;

void mlxe_hub_cache_info_free(mlxe_hub_cache_info *info);

/* Scans the cache (no request). A missing cache folder gives an empty list. */
mlxe_status mlxe_hub_cache_scan(const mlxe_hub *hub, mlxe_hub_cache_info **out, mlxe_error *err);

/* Deletes one revision (a commit or a ref name) of repo_id, or every revision
 * when revision is NULL, the way huggingface_hub's delete strategy does:
 * snapshots, the refs pointing at them, then blobs no remaining snapshot uses.
 * *freed_bytes (optional) receives the bytes freed. */
mlxe_status mlxe_hub_cache_delete(mlxe_hub *hub, const char *repo_id, const char *revision,
                                  uint64_t *freed_bytes, mlxe_error *err);

/* Resolves repo_id at revision (NULL: main) from the cache alone and writes
 * the snapshot folder to *snapshot_dir. MLXE_ERR_NOT_FOUND with what to do
 * when it is not cached. */
mlxe_status mlxe_hub_cache_resolve(const mlxe_hub *hub, const char *repo_id, const char *revision,
                                   char **snapshot_dir, mlxe_error *err);

/* ---- model references and the registry ---- */

typedef struct mlxe_hub_model_ref {
    char *repo_id;  /* "org/name" */
    char *revision; /* after '@', else NULL */
    char *quant;    /* after ':', e.g. "Q4_K_M", else NULL */
} mlxe_hub_model_ref;

/* Parses "org/name[@revision][:QUANT]". Rejects ids that are not two safe
 * path segments. Free with mlxe_hub_model_ref_clear. */
mlxe_status mlxe_hub_parse_model_ref(const char *text, mlxe_hub_model_ref *out, mlxe_error *err);
void mlxe_hub_model_ref_clear(mlxe_hub_model_ref *ref);

typedef struct mlxe_registry_entry {
    const char *alias;          /* e.g. "qwen3:0.6b" */
    const char *repo_id;        /* e.g. "mlx-community/Qwen3-0.6B-4bit" */
    const char *family;         /* e.g. "qwen3" */
    double parameters_billion;
    const char *quantization;   /* e.g. "4bit" */
    uint64_t size_bytes;        /* approximate download size */
    int context_length;
    double temperature;
    double top_p;
    int top_k;                  /* 0: off */
    const char *const *stop;    /* extra stop strings, NULL-terminated (may be NULL) */
} mlxe_registry_entry;

typedef struct mlxe_registry mlxe_registry;

/* Loads the built-in entries, then user_file (NULL:
 * $XDG_CONFIG_HOME/mlxengine/models.json, else ~/.config/mlxengine/models.json;
 * a missing file is fine) whose entries add to or override built-ins by alias:
 * {"models":[{"alias":..,"id":..,"parameters_billion":..,"quantization":..,
 * "size_bytes":..,"context_length":..,"temperature":..,"top_p":..,"top_k":..,
 * "stop":[..]}]}. */
mlxe_status mlxe_registry_load(const char *user_file, mlxe_registry **out, mlxe_error *err);
void mlxe_registry_free(mlxe_registry *registry);
size_t mlxe_registry_count(const mlxe_registry *registry);
/* Borrowed, valid until mlxe_registry_free; NULL when index is out of range. */
const mlxe_registry_entry *mlxe_registry_at(const mlxe_registry *registry, size_t index);
/* Finds an entry by alias (case-insensitive) or by repo id; NULL if none. */
const mlxe_registry_entry *mlxe_registry_find(const mlxe_registry *registry, const char *name);

/* Resolves what a user typed where a model is named: an existing folder, a
 * registry alias, or a Hub id "org/name[@rev][:QUANT]". Folders are returned
 * as they are; Hub models come from the cache when present (no request for a
 * commit, none offline), else are downloaded when download is true. registry
 * and download_options may be NULL. Writes a malloc'd folder path. */
mlxe_status mlxe_hub_resolve_model(mlxe_hub *hub, const mlxe_registry *registry, const char *name,
                                   bool download, const mlxe_hub_download_options *download_options,
                                   char **folder, mlxe_error *err);

/* ---- memory estimate ---- */

typedef struct mlxe_memory_estimate {
    uint64_t weights_bytes;  /* sum of the *.safetensors / *.gguf files */
    uint64_t kv_cache_bytes; /* at the context length asked for, 16-bit */
    uint64_t overhead_bytes; /* activations and runtime, a fixed share */
    uint64_t total_bytes;
    uint64_t available_bytes; /* MemAvailable of this machine */
    bool fits;
} mlxe_memory_estimate;

/* Estimates the memory to run the model in folder (its config.json and
 * weight files) with context_length tokens (0: the model's maximum, capped at
 * 8192). */
mlxe_status mlxe_hub_estimate_memory(const char *folder, int context_length,
                                     mlxe_memory_estimate *out, mlxe_error *err);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
