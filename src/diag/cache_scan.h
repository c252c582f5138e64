/* diag/cache_scan.h — a read-only survey of a Hugging Face hub cache, in the
 * layout huggingface_hub writes (shared/docs/HUB.md §3), with an integrity
 * check of every cached model.
 *
 * The scan walks `models--*` (and `datasets--*`, `spaces--*`) folders: refs,
 * snapshots (recursively), blobs and `trees/{commit}.json` (our record of a
 * commit's file list with sizes and blob ids). It never writes. A file that
 * is present, whose size matches the tree record and (when verify_hashes is
 * on) whose content hashes to its blob's name (the git blob sha1 for regular
 * files, the sha256 for LFS files) is OK; anything else is reported with the
 * reason. The hub layer will own cache access; this survey lets diagnostics
 * and clean-up work without it. */
#ifndef MLXE_DIAG_CACHE_SCAN_H
#define MLXE_DIAG_CACHE_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/status.h"

typedef enum mlxe_cache_file_state {
    MLXE_CACHE_FILE_OK = 0,
    MLXE_CACHE_FILE_MISSING,        /* needed and absent: config.json listed in trees/{commit}.json,
                                       or a shard named by model.safetensors.index.json */
    MLXE_CACHE_FILE_BROKEN_LINK,    /* a snapshot link whose target does not exist */
    MLXE_CACHE_FILE_SIZE_MISMATCH,  /* size differs from trees/{commit}.json */
    MLXE_CACHE_FILE_WRONG_BLOB,     /* links to another blob than trees/{commit}.json names */
    MLXE_CACHE_FILE_HASH_MISMATCH   /* content does not hash to the blob's name */
} mlxe_cache_file_state;

/* "ok", "missing", "broken_link", "size_mismatch", "wrong_blob", "hash_mismatch". */
const char *mlxe_cache_file_state_name(mlxe_cache_file_state state);

typedef struct mlxe_cache_file {
    char *path;              /* relative to the snapshot folder, '/'-separated */
    char *blob;              /* name in blobs/ the link points to; NULL for a plain file or a missing one */
    uint64_t size;           /* bytes on disk (0 when missing or broken) */
    int64_t expected_size;   /* from trees/{commit}.json; -1 when unknown */
    mlxe_cache_file_state state;
    bool hash_checked;       /* the content was hashed and matched (state OK) or not (HASH_MISMATCH) */
} mlxe_cache_file;

typedef struct mlxe_cache_revision {
    char *commit;            /* the snapshot folder's name */
    char **refs;             /* refs naming this commit ("main", "refs/pr/1") */
    size_t n_refs;
    mlxe_cache_file *files;
    size_t n_files;
    uint64_t size;           /* sum of the files' sizes */
    bool has_tree_record;    /* trees/{commit}.json was found and read */
    size_t n_bad_files;      /* files not OK */
    size_t n_not_downloaded; /* other files of trees/{commit}.json not in the snapshot (not
                                selected by the download: not a problem) */
} mlxe_cache_revision;

typedef struct mlxe_cache_blob {
    char *name;              /* file name in blobs/ */
    uint64_t size;
    bool referenced;         /* some snapshot links to it */
} mlxe_cache_blob;

typedef enum mlxe_cache_repo_state {
    MLXE_CACHE_REPO_COMPLETE = 0, /* every revision's files present and sound, no partial download */
    MLXE_CACHE_REPO_PARTIAL,      /* a download was started and not finished */
    MLXE_CACHE_REPO_CORRUPTED,    /* broken links, wrong sizes or hashes, or a malformed layout */
    MLXE_CACHE_REPO_EMPTY         /* no file in any snapshot */
} mlxe_cache_repo_state;

/* "complete", "partial", "corrupted", "empty". */
const char *mlxe_cache_repo_state_name(mlxe_cache_repo_state state);

typedef struct mlxe_cache_repo {
    char *folder;            /* "models--org--name" */
    char *path;              /* cache_dir/folder */
    char *repo_type;         /* "model", "dataset", "space" */
    char *repo_id;           /* "org/name" */
    mlxe_cache_revision *revisions;
    size_t n_revisions;
    mlxe_cache_blob *blobs;  /* complete blobs */
    size_t n_blobs;
    mlxe_cache_blob *partial_downloads; /* blobs/{name}.incomplete */
    size_t n_partial_downloads;
    char **dangling_refs;    /* "main -> <commit>" for refs whose snapshot is missing */
    size_t n_dangling_refs;
    char **problems;         /* one sentence per problem found, for people */
    size_t n_problems;
    uint64_t size_on_disk;   /* blobs, partial downloads and plain snapshot files */
    uint64_t partial_bytes;
    size_t n_orphan_blobs;   /* blobs no snapshot links to */
    uint64_t orphan_bytes;
    mlxe_cache_repo_state state;
} mlxe_cache_repo;

typedef struct mlxe_cache_scan {
    char *cache_dir;
    bool exists;             /* false: the folder is absent (a fresh machine), no repos */
    mlxe_cache_repo *repos;  /* sorted by folder name */
    size_t n_repos;
    uint64_t total_size;
    size_t n_partial_downloads;
    uint64_t partial_bytes;
    char **warnings;         /* entries of the cache folder that are not repos */
    size_t n_warnings;
} mlxe_cache_scan;

typedef struct mlxe_cache_scan_options {
    bool verify_hashes;      /* hash every blob (reads all bytes); default false */
    const char *repo_id;     /* only this repo ("org/name", models); NULL: all */
    mlxe_cancel *cancel;     /* stops hashing early; may be NULL */
} mlxe_cache_scan_options;

void mlxe_cache_scan_options_init(mlxe_cache_scan_options *options);

/* Scans cache_dir (NULL: the default location, see hf_paths.h). A missing
 * folder is not an error (exists = false). Fails only when cache_dir exists
 * but cannot be read, on cancel, or when out of memory. */
mlxe_status mlxe_cache_scan_run(const char *cache_dir, const mlxe_cache_scan_options *options,
                                mlxe_cache_scan **out, mlxe_error *err);
void mlxe_cache_scan_free(mlxe_cache_scan *scan);

/* "models--org--name" for ("model", "org/name") in a malloc'd string; NULL
 * when the id is malformed (empty, absolute, "..") or out of memory. */
char *mlxe_cache_repo_folder_name(const char *repo_type, const char *repo_id);

/* Hashes the file at path and compares it with blob_name: a 40-hex name is a
 * git blob sha1 (sha1("blob <size>\0" + content)), a 64-hex name a sha256.
 * *known is false for other names (nothing to compare). */
mlxe_status mlxe_cache_blob_verify(const char *path, const char *blob_name, bool *known,
                                   bool *matches, mlxe_cancel *cancel, mlxe_error *err);

#endif
