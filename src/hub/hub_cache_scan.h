/* hub/hub_cache_scan.h — the one reader of a Hugging Face hub cache, in the
 * layout huggingface_hub writes (shared/docs/HUB.md §3), with an optional
 * integrity check of every cached model. Internal to the library: the hub's
 * public listing and deletion (mlxe_hub_cache_scan, mlxe_hub_cache_delete in
 * hub_cache_list.c, behind `mlxengine list|du|rm`) and diagnostics
 * (`list-models`, `show-model-info`, `cleanup-cache`, the report's cache
 * section) all build on it.
 *
 * The scan walks `models--*` (and `datasets--*`, `spaces--*`) folders: refs,
 * snapshots (recursively), blobs and `trees/{commit}.json` (our record of a
 * commit's file list with sizes and blob ids), and probes the download locks
 * in `.locks/`. It never writes. A file that is present, whose size matches
 * the tree record and (when verify_hashes is on) whose content hashes to its
 * blob's name (the git blob sha1 for regular files, the sha256 for LFS
 * files) is OK; anything else is reported with the reason. */
#ifndef MLXE_HUB_CACHE_SCAN_H
#define MLXE_HUB_CACHE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/status.h"

typedef enum hub_cache_file_state {
    HUB_CACHE_FILE_OK = 0,
    HUB_CACHE_FILE_MISSING,        /* needed and absent: config.json listed in trees/{commit}.json,
                                       or a shard named by model.safetensors.index.json */
    HUB_CACHE_FILE_BROKEN_LINK,    /* a snapshot link whose target does not exist */
    HUB_CACHE_FILE_SIZE_MISMATCH,  /* size differs from trees/{commit}.json */
    HUB_CACHE_FILE_WRONG_BLOB,     /* links to another blob than trees/{commit}.json names */
    HUB_CACHE_FILE_HASH_MISMATCH   /* content does not hash to the blob's name */
} hub_cache_file_state;

/* "ok", "missing", "broken_link", "size_mismatch", "wrong_blob", "hash_mismatch". */
const char *hub_cache_file_state_name(hub_cache_file_state state);

typedef struct hub_cache_file {
    char *path;              /* relative to the snapshot folder, '/'-separated */
    char *blob;              /* name in blobs/ the link points to; NULL for a plain file or a missing one */
    uint64_t size;           /* bytes on disk (0 when missing or broken) */
    int64_t expected_size;   /* from trees/{commit}.json; -1 when unknown */
    hub_cache_file_state state;
    bool hash_checked;       /* the content was hashed and matched (state OK) or not (HASH_MISMATCH) */
} hub_cache_file;

typedef struct hub_cache_revision {
    char *commit;            /* the snapshot folder's name */
    char **refs;             /* refs naming this commit ("main", "refs/pr/1") */
    size_t n_refs;
    hub_cache_file *files;
    size_t n_files;
    uint64_t size;           /* bytes of its distinct blobs and plain files (a blob two paths
                                link to counts once, as scan_cache_dir counts it) */
    bool has_tree_record;    /* trees/{commit}.json was found and read */
    size_t n_bad_files;      /* files not OK */
    size_t n_not_downloaded; /* other files of trees/{commit}.json not in the snapshot (not
                                selected by the download: not a problem) */
} hub_cache_revision;

typedef struct hub_cache_blob {
    char *name;              /* file name in blobs/ */
    uint64_t size;
    bool referenced;         /* some snapshot links to it */
} hub_cache_blob;

typedef enum hub_cache_repo_state {
    HUB_CACHE_REPO_COMPLETE = 0, /* every revision's files present and sound, no partial download */
    HUB_CACHE_REPO_PARTIAL,      /* a download was started and not finished */
    HUB_CACHE_REPO_CORRUPTED,    /* broken links, wrong sizes or hashes, or a malformed layout */
    HUB_CACHE_REPO_EMPTY         /* no file in any snapshot */
} hub_cache_repo_state;

/* "complete", "partial", "corrupted", "empty". */
const char *hub_cache_repo_state_name(hub_cache_repo_state state);

typedef struct hub_cache_repo {
    char *folder;            /* "models--org--name" */
    char *path;              /* cache_dir/folder */
    char *repo_type;         /* "model", "dataset", "space" */
    char *repo_id;           /* "org/name" */
    hub_cache_revision *revisions;
    size_t n_revisions;
    hub_cache_blob *blobs;  /* complete blobs */
    size_t n_blobs;
    hub_cache_blob *partial_downloads; /* blobs/{name}.incomplete */
    size_t n_partial_downloads;
    char **dangling_refs;    /* "main -> <commit>" for refs whose snapshot is missing */
    size_t n_dangling_refs;
    char **problems;         /* one sentence per problem found, for people */
    size_t n_problems;
    uint64_t size_on_disk;   /* blobs, partial downloads and plain snapshot files */
    uint64_t partial_bytes;
    size_t n_orphan_blobs;   /* blobs no snapshot links to */
    uint64_t orphan_bytes;
    hub_cache_repo_state state;
    bool has_snapshots_dir;  /* snapshots/ exists (huggingface_hub skips a repo without it) */
    bool in_use;             /* a download holds one of its .locks/ files (see hub_cache_repo_in_use) */
    double last_modified;    /* unix time of the newest complete blob; 0 when none */
} hub_cache_repo;

typedef struct hub_cache_scan {
    char *cache_dir;
    bool exists;             /* false: the folder is absent (a fresh machine), no repos */
    hub_cache_repo *repos;  /* sorted by folder name */
    size_t n_repos;
    uint64_t total_size;
    size_t n_partial_downloads;
    uint64_t partial_bytes;
    char **warnings;         /* entries of the cache folder that are not repos */
    size_t n_warnings;
} hub_cache_scan;

typedef struct hub_cache_scan_options {
    bool verify_hashes;      /* hash every blob (reads all bytes); default false */
    const char *repo_id;     /* only this repo ("org/name", models); NULL: all */
    mlxe_cancel *cancel;     /* stops hashing early; may be NULL */
} hub_cache_scan_options;

void hub_cache_scan_options_init(hub_cache_scan_options *options);

/* Scans cache_dir (NULL: the default location, hub_paths.h). A missing
 * folder is not an error (exists = false). Fails only when cache_dir exists
 * but cannot be read, on cancel, or when out of memory. */
mlxe_status hub_cache_scan_run(const char *cache_dir, const hub_cache_scan_options *options,
                                hub_cache_scan **out, mlxe_error *err);
void hub_cache_scan_free(hub_cache_scan *scan);

/* "models--org--name" for ("model", "org/name") in a malloc'd string; NULL
 * when the id is malformed (empty, absolute, "..") or out of memory. */
char *hub_cache_repo_folder_name(const char *repo_type, const char *repo_id);

/* Hashes the file at path and compares it with blob_name: a 40-hex name is a
 * git blob sha1 (sha1("blob <size>\0" + content)), a 64-hex name a sha256.
 * *known is false for other names (nothing to compare). */
mlxe_status hub_cache_blob_verify(const char *path, const char *blob_name, bool *known,
                                   bool *matches, mlxe_cancel *cancel, mlxe_error *err);

/* True when a download holds one of cache_dir/.locks/{folder}/{etag}.lock:
 * probed with flock(LOCK_EX|LOCK_NB), the lock hub_fetch.c and
 * huggingface_hub's filelock take while a blob is written. */
bool hub_cache_repo_in_use(const char *cache_dir, const char *folder);

#endif
