/* hub/hub_cache_list.c — the public view of the cache as huggingface_hub's
 * utils/_cache_manager.py gives it (scan_cache_dir, delete_revisions), built
 * on the one cache reader (hub_cache_scan.c): model repos with a snapshots/
 * folder, sizes counting each blob once, partial downloads (blobs ending in
 * .incomplete), broken links and refs to missing snapshots reported; and
 * deleting a revision removes its snapshot, its refs, trees/ and .no_exist/
 * records, then the blobs no other revision uses. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "hub/hub_cache_scan.h"
#include "hub/hub_internal.h"

static void revision_clear(mlxe_hub_cached_revision *r) {
    free(r->commit);
    for (size_t i = 0; i < r->n_refs; i++) free(r->refs[i]);
    free(r->refs);
    free(r->snapshot_path);
}

static void repo_clear(mlxe_hub_cached_repo *r) {
    free(r->repo_id);
    free(r->path);
    for (size_t i = 0; i < r->n_revisions; i++) revision_clear(&r->revisions[i]);
    free(r->revisions);
    free(r->problem);
}

void mlxe_hub_cache_info_free(mlxe_hub_cache_info *info) {
    if (!info) return;
    for (size_t i = 0; i < info->n_repos; i++) repo_clear(&info->repos[i]);
    free(info->repos);
    free(info);
}

/* The first problem in words, or the first ref to a missing snapshot. */
static char *first_problem(const hub_cache_repo *repo) {
    if (repo->n_problems) return strdup(repo->problems[0]);
    if (!repo->n_dangling_refs) return NULL;
    return hub_printf("ref %s has no snapshot (download the model again)", repo->dangling_refs[0]);
}

/* Fills out from a scanned repo; false when out of memory (out then holds
 * what was filled, for repo_clear). */
static bool summarize_repo(const hub_cache_repo *repo, mlxe_hub_cached_repo *out) {
    memset(out, 0, sizeof *out);
    out->repo_id = strdup(repo->repo_id);
    out->path = strdup(repo->path);
    out->size_on_disk = repo->size_on_disk - repo->partial_bytes;
    out->incomplete_bytes = repo->partial_bytes;
    out->n_incomplete = repo->n_partial_downloads;
    out->last_modified = repo->last_modified;
    out->problem = first_problem(repo);
    bool ok = out->repo_id && out->path && (out->problem || !(repo->n_problems || repo->n_dangling_refs));
    out->revisions = calloc(repo->n_revisions + 1, sizeof *out->revisions);
    if (!out->revisions) return false;
    for (size_t r = 0; r < repo->n_revisions; r++) {
        const hub_cache_revision *from = &repo->revisions[r];
        mlxe_hub_cached_revision *to = &out->revisions[out->n_revisions++];
        to->commit = strdup(from->commit);
        to->snapshot_path = hub_printf("%s/snapshots/%s", repo->path, from->commit);
        to->refs = calloc(from->n_refs + 1, sizeof *to->refs);
        ok = ok && to->commit && to->snapshot_path && to->refs;
        for (size_t i = 0; to->refs && i < from->n_refs; i++)
            if (!(to->refs[to->n_refs++] = strdup(from->refs[i]))) ok = false;
        for (size_t f = 0; f < from->n_files; f++) to->n_files += from->files[f].state != HUB_CACHE_FILE_MISSING;
        to->size_on_disk = from->size;
        to->complete = from->n_bad_files == 0;
    }
    return ok;
}

mlxe_status mlxe_hub_cache_scan(const mlxe_hub *hub, mlxe_hub_cache_info **out, mlxe_error *err) {
    if (!hub || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_cache_scan: NULL argument");
    *out = NULL;
    hub_cache_scan *scan = NULL;
    mlxe_status s = hub_cache_scan_run(hub->cache_dir, NULL, &scan, err);
    if (s != MLXE_OK) return s;
    mlxe_hub_cache_info *info = calloc(1, sizeof *info);
    if (info) info->repos = calloc(scan->n_repos + 1, sizeof *info->repos);
    bool ok = info && info->repos;
    /* Repos come sorted by folder name, so by id. */
    for (size_t i = 0; ok && i < scan->n_repos; i++) {
        const hub_cache_repo *repo = &scan->repos[i];
        if (strcmp(repo->repo_type, "model") != 0 || !repo->has_snapshots_dir) continue;
        ok = summarize_repo(repo, &info->repos[info->n_repos]);
        info->size_on_disk += info->repos[info->n_repos].size_on_disk;
        info->n_repos++;
    }
    hub_cache_scan_free(scan);
    if (!ok) {
        mlxe_hub_cache_info_free(info);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cache scan: out of memory");
    }
    *out = info;
    return MLXE_OK;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT) return -1;
    return 0;
}

static mlxe_status remove_tree(const char *path, mlxe_error *err) {
    struct stat st;
    if (lstat(path, &st) != 0) return MLXE_OK;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return mlxe_error_set(err, MLXE_ERR_IO, "cannot delete %s: %s", path, strerror(errno));
    return MLXE_OK;
}

/* Whether a file of a revision other than skip links to blob. */
static bool blob_used_elsewhere(const hub_cache_repo *repo, size_t skip, const char *blob) {
    for (size_t r = 0; r < repo->n_revisions; r++) {
        if (r == skip) continue;
        for (size_t f = 0; f < repo->revisions[r].n_files; f++) {
            const hub_cache_file *file = &repo->revisions[r].files[f];
            if (file->blob && file->state != HUB_CACHE_FILE_BROKEN_LINK && strcmp(file->blob, blob) == 0)
                return true;
        }
    }
    return false;
}

/* Removes revision `victim` of repo and the blobs only it uses. */
static mlxe_status delete_revision(const hub_cache_repo *repo, size_t victim, uint64_t *freed,
                                   mlxe_error *err) {
    const hub_cache_revision *rev = &repo->revisions[victim];
    uint64_t plain_bytes = 0;
    for (size_t f = 0; f < rev->n_files; f++)
        if (!rev->files[f].blob && rev->files[f].state != HUB_CACHE_FILE_MISSING) plain_bytes += rev->files[f].size;
    char *snapshot = hub_printf("%s/snapshots/%s", repo->path, rev->commit);
    if (!snapshot) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    mlxe_status s = remove_tree(snapshot, err);
    free(snapshot);
    if (s != MLXE_OK) return s;
    *freed = plain_bytes;
    for (size_t i = 0; i < rev->n_refs; i++) {
        char *ref = hub_printf("%s/refs/%s", repo->path, rev->refs[i]);
        if (ref) unlink(ref);
        free(ref);
    }
    char *tree = hub_printf("%s/trees/%s.json", repo->path, rev->commit);
    if (tree) unlink(tree);
    free(tree);
    char *no_exist = hub_printf("%s/.no_exist/%s", repo->path, rev->commit);
    if (no_exist) (void)remove_tree(no_exist, NULL);
    free(no_exist);
    for (size_t f = 0; f < rev->n_files; f++) {
        const hub_cache_file *file = &rev->files[f];
        if (!file->blob || file->state == HUB_CACHE_FILE_BROKEN_LINK) continue;
        bool seen = false; /* two paths of the revision may share a blob */
        for (size_t g = 0; g < f && !seen; g++) seen = rev->files[g].blob && strcmp(rev->files[g].blob, file->blob) == 0;
        if (seen || blob_used_elsewhere(repo, victim, file->blob)) continue;
        char *blob = hub_printf("%s/blobs/%s", repo->path, file->blob);
        struct stat st;
        if (blob && stat(blob, &st) == 0 && unlink(blob) == 0) *freed += (uint64_t)st.st_size;
        free(blob);
    }
    return MLXE_OK;
}

mlxe_status mlxe_hub_cache_delete(mlxe_hub *hub, const char *repo_id, const char *revision,
                                  uint64_t *freed_bytes, mlxe_error *err) {
    if (freed_bytes) *freed_bytes = 0;
    if (!hub) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_cache_delete: NULL hub");
    if (!hub_repo_id_valid(repo_id))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "'%s' is not a Hub model id (org/name)",
                              repo_id ? repo_id : "(null)");
    if (revision && !hub_relative_path_safe(revision))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "revision '%s' is not a valid name", revision);
    hub_cache_scan_options options;
    hub_cache_scan_options_init(&options);
    options.repo_id = repo_id;
    hub_cache_scan *scan = NULL;
    mlxe_status s = hub_cache_scan_run(hub->cache_dir, &options, &scan, err);
    if (s != MLXE_OK) return s;
    if (scan->n_repos == 0) {
        hub_cache_scan_free(scan);
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "model '%s' is not in the cache %s; 'mlxengine list' shows what is", repo_id,
                              hub->cache_dir);
    }
    const hub_cache_repo *repo = &scan->repos[0];
    if (repo->in_use) {
        s = mlxe_error_set(err, MLXE_ERR_IO,
                           "model '%s' is being downloaded by another process (it holds a lock in "
                           "%s/.locks/%s); let the download finish or stop it, then delete again",
                           repo_id, hub->cache_dir, repo->folder);
        hub_cache_scan_free(scan);
        return s;
    }
    size_t victim = repo->n_revisions;
    if (revision) {
        char *commit = hub_is_commit_hash(revision) ? strdup(revision) : hub_read_ref(repo->path, revision);
        for (size_t i = 0; commit && i < repo->n_revisions; i++)
            if (strcmp(repo->revisions[i].commit, commit) == 0) victim = i;
        free(commit);
        if (victim == repo->n_revisions)
            s = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                               "revision '%s' of model '%s' is not in the cache; 'mlxengine list' "
                               "shows the cached revisions",
                               revision, repo_id);
    }
    uint64_t freed = 0;
    if (s == MLXE_OK && (!revision || repo->n_revisions == 1)) {
        freed = repo->size_on_disk; /* blobs, partial downloads and plain files */
        s = remove_tree(repo->path, err);
        char *locks = hub_printf("%s/.locks/%s", hub->cache_dir, repo->folder);
        if (s == MLXE_OK && locks) s = remove_tree(locks, err);
        free(locks);
    } else if (s == MLXE_OK) {
        s = delete_revision(repo, victim, &freed, err);
    }
    if (s == MLXE_OK) {
        MLXE_INFO(MLXE_LOG_CAT_HUB, "deleted %s%s%s from the cache (%llu bytes freed)", repo_id,
                  revision ? "@" : "", revision ? revision : "", (unsigned long long)freed);
        if (freed_bytes) *freed_bytes = freed;
    }
    hub_cache_scan_free(scan);
    return s;
}
