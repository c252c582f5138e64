/* diag/cache_cleanup.h — plans and applies the clean-up of a hub cache.
 *
 * A plan is computed from a scan (hub/hub_cache_scan.h) and lists every path it
 * would remove, with the reason; applying it removes exactly those paths.
 * `cleanup-cache --dry-run` prints the plan, `cleanup-cache` applies it, so
 * the two cannot disagree. Removed: partial downloads (blobs/{name}.incomplete),
 * blobs no snapshot links to, snapshot links whose blob is missing, refs
 * naming a snapshot that is absent (or emptied by the clean-up), folders
 * left empty, and a repo folder with nothing left in it. With
 * remove_corrupted, files whose size, blob or content hash is wrong go too,
 * so the next download fetches them again. A complete model is never removed
 * unless named in remove_repo_id. A repo whose download lock
 * (.locks/{repo}/{etag}.lock, flock as huggingface_hub's filelock takes it) is
 * held by a running download is skipped and listed as in use. */
#ifndef MLXE_DIAG_CACHE_CLEANUP_H
#define MLXE_DIAG_CACHE_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub/hub_cache_scan.h"
#include "mlxengine/status.h"

typedef enum mlxe_cache_action_kind {
    MLXE_CACHE_REMOVE_PARTIAL_DOWNLOAD = 0,
    MLXE_CACHE_REMOVE_ORPHAN_BLOB,
    MLXE_CACHE_REMOVE_BROKEN_LINK,
    MLXE_CACHE_REMOVE_CORRUPTED_FILE,   /* a snapshot file, or its blob, failing the integrity check */
    MLXE_CACHE_REMOVE_DANGLING_REF,
    MLXE_CACHE_REMOVE_EMPTY_FOLDER,
    MLXE_CACHE_REMOVE_REPO,             /* the whole repo folder: named, or nothing left in it */
    MLXE_CACHE_SKIP_IN_USE              /* not an action: the repo is being downloaded */
} mlxe_cache_action_kind;

/* "partial_download", "orphan_blob", "broken_link", "corrupted_file",
 * "dangling_ref", "empty_folder", "repo", "in_use". */
const char *mlxe_cache_action_kind_name(mlxe_cache_action_kind kind);

typedef struct mlxe_cache_action {
    mlxe_cache_action_kind kind;
    char *path;        /* absolute (cache_dir + relative) */
    char *repo_id;     /* "org/name" */
    char *repo_folder; /* "models--org--name", the folder under cache_dir */
    uint64_t bytes;    /* freed by this action (files only; a repo: its size on disk) */
    bool done;         /* set by apply */
    char *error;       /* set by apply when the removal failed */
} mlxe_cache_action;

typedef struct mlxe_cache_cleanup_plan {
    char *cache_dir;
    mlxe_cache_action *actions; /* in the order apply runs them */
    size_t n_actions;
    uint64_t bytes;             /* total freed (SKIP entries excluded) */
} mlxe_cache_cleanup_plan;

typedef struct mlxe_cache_cleanup_options {
    bool remove_corrupted;      /* hash every blob and remove what fails; default false */
    const char *remove_repo_id; /* remove this model whole ("org/name"); NULL: none */
    mlxe_cancel *cancel;
} mlxe_cache_cleanup_options;

void mlxe_cache_cleanup_options_init(mlxe_cache_cleanup_options *options);

/* Scans cache_dir (NULL: default) and computes the plan; writes nothing.
 * MLXE_ERR_NOT_FOUND when remove_repo_id is not in the cache. */
mlxe_status mlxe_cache_cleanup_plan_make(const char *cache_dir, const mlxe_cache_cleanup_options *options,
                                         mlxe_cache_cleanup_plan **out, mlxe_error *err);

/* Runs the plan's actions in order, marking each done or with its error.
 * Re-checks each repo's download locks first and skips (error "in use") a
 * repo locked since the plan was made. Returns MLXE_ERR_IO naming the first
 * failure when some action failed; the others still run. */
mlxe_status mlxe_cache_cleanup_apply(mlxe_cache_cleanup_plan *plan, mlxe_error *err);

void mlxe_cache_cleanup_plan_free(mlxe_cache_cleanup_plan *plan);

#endif
