/* diag/cache_cleanup.c — turns a cache scan into a list of removals and
 * carries them out.
 *
 * Planning works per repo in the order removal must happen: files first
 * (partial downloads, broken links, corrupted files, then blobs nothing links
 * to any more), then snapshots the clean-up empties and the refs naming
 * them, then folders left empty (children before parents), and last the
 * repo folder itself when neither a snapshot nor a blob survives. Paths
 * planned for removal are kept in a sorted set so the emptiness of a folder
 * is judged as it will be after the earlier steps. */
#include "diag/cache_cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "base/grow.h"
#include "base/path_format.h"

const char *mlxe_cache_action_kind_name(mlxe_cache_action_kind kind) {
    switch (kind) {
    case MLXE_CACHE_REMOVE_PARTIAL_DOWNLOAD: return "partial_download";
    case MLXE_CACHE_REMOVE_ORPHAN_BLOB: return "orphan_blob";
    case MLXE_CACHE_REMOVE_BROKEN_LINK: return "broken_link";
    case MLXE_CACHE_REMOVE_CORRUPTED_FILE: return "corrupted_file";
    case MLXE_CACHE_REMOVE_DANGLING_REF: return "dangling_ref";
    case MLXE_CACHE_REMOVE_EMPTY_FOLDER: return "empty_folder";
    case MLXE_CACHE_REMOVE_REPO: return "repo";
    case MLXE_CACHE_SKIP_IN_USE: return "in_use";
    }
    return "unknown";
}

void mlxe_cache_cleanup_options_init(mlxe_cache_cleanup_options *options) {
    memset(options, 0, sizeof *options);
}

typedef struct planner {
    mlxe_cache_cleanup_plan *plan;
    char **removed;      /* sorted paths planned for removal */
    size_t n_removed;
    bool out_of_memory;
} planner;

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool is_removed(const planner *p, const char *path) {
    if (p->n_removed == 0) return false; /* bsearch wants a non-NULL array */
    return bsearch(&path, p->removed, p->n_removed, sizeof(char *), compare_strings) != NULL;
}

static void mark_removed(planner *p, const char *path) {
    size_t lo = 0, hi = p->n_removed;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(p->removed[mid], path);
        if (c == 0) return;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    char *copy = strdup(path);
    char **grown = copy ? realloc(p->removed, (p->n_removed + 1) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        p->out_of_memory = true;
        return;
    }
    p->removed = grown;
    memmove(p->removed + lo + 1, p->removed + lo, (p->n_removed - lo) * sizeof *grown);
    p->removed[lo] = copy;
    p->n_removed++;
}

static void add_action(planner *p, mlxe_cache_action_kind kind, const char *path,
                       const hub_cache_repo *repo, uint64_t bytes) {
    if (kind != MLXE_CACHE_SKIP_IN_USE && is_removed(p, path)) return;
    mlxe_cache_action *action =
        mlxe_append((void **)&p->plan->actions, &p->plan->n_actions, sizeof *action);
    if (!action) {
        p->out_of_memory = true;
        return;
    }
    action->kind = kind;
    action->path = strdup(path);
    action->repo_id = strdup(repo->repo_id);
    action->repo_folder = strdup(repo->folder);
    action->bytes = bytes;
    if (!action->path || !action->repo_id || !action->repo_folder) p->out_of_memory = true;
    if (kind != MLXE_CACHE_SKIP_IN_USE) {
        p->plan->bytes += bytes;
        mark_removed(p, path);
    }
}

/* repo->path/a[/b[/c]] into out; false when it does not fit. */
static bool repo_path(char *out, size_t size, const hub_cache_repo *repo, const char *a,
                      const char *b, const char *c) {
    return mlxe_path_format(out, size, "%s/%s%s%s%s%s", repo->path, a, b ? "/" : "", b ? b : "", c ? "/" : "",
             c ? c : "");
}

/* Whether dir will hold nothing once the planned removals are done; lists
 * the folders found empty (children first), dir itself when list_self. */
static bool will_be_empty(planner *p, const hub_cache_repo *repo, const char *dir_path, bool list_self) {
    DIR *dir = opendir(dir_path);
    if (!dir) return false;
    bool empty = true;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char path[PATH_MAX];
        if (!mlxe_path_format(path, sizeof path, "%s/%s", dir_path, entry->d_name)) {
            empty = false;
            continue;
        }
        if (is_removed(p, path)) continue;
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && will_be_empty(p, repo, path, true)) continue;
        empty = false;
    }
    closedir(dir);
    if (empty && list_self) add_action(p, MLXE_CACHE_REMOVE_EMPTY_FOLDER, dir_path, repo, 0);
    return empty;
}

static bool file_is_corrupted(hub_cache_file_state state) {
    return state == HUB_CACHE_FILE_HASH_MISMATCH || state == HUB_CACHE_FILE_SIZE_MISMATCH ||
           state == HUB_CACHE_FILE_WRONG_BLOB;
}

static void plan_repo(planner *p, const hub_cache_repo *repo, bool remove_corrupted) {
    char path[PATH_MAX];
    for (size_t i = 0; i < repo->n_partial_downloads; i++) {
        if (!repo_path(path, sizeof path, repo, "blobs", repo->partial_downloads[i].name, NULL)) continue;
        add_action(p, MLXE_CACHE_REMOVE_PARTIAL_DOWNLOAD, path, repo, repo->partial_downloads[i].size);
    }
    /* Snapshot files that go; a blob survives when a surviving file links to it. */
    bool *blob_kept = calloc(repo->n_blobs + 1, sizeof *blob_kept);
    bool *blob_corrupted = calloc(repo->n_blobs + 1, sizeof *blob_corrupted);
    if (!blob_kept || !blob_corrupted) {
        p->out_of_memory = true;
        free(blob_kept);
        free(blob_corrupted);
        return;
    }
    for (size_t r = 0; r < repo->n_revisions; r++) {
        const hub_cache_revision *revision = &repo->revisions[r];
        for (size_t f = 0; f < revision->n_files; f++) {
            const hub_cache_file *file = &revision->files[f];
            if (file->state == HUB_CACHE_FILE_MISSING) continue;
            if (!repo_path(path, sizeof path, repo, "snapshots", revision->commit, file->path)) continue;
            ptrdiff_t blob_index = -1;
            for (size_t b = 0; file->blob && b < repo->n_blobs; b++)
                if (strcmp(repo->blobs[b].name, file->blob) == 0) blob_index = (ptrdiff_t)b;
            if (file->state == HUB_CACHE_FILE_BROKEN_LINK) {
                add_action(p, MLXE_CACHE_REMOVE_BROKEN_LINK, path, repo, 0);
            } else if (remove_corrupted && file_is_corrupted(file->state)) {
                add_action(p, MLXE_CACHE_REMOVE_CORRUPTED_FILE, path, repo, file->blob ? 0 : file->size);
                if (blob_index >= 0 && file->state == HUB_CACHE_FILE_HASH_MISMATCH)
                    blob_corrupted[blob_index] = true;
            } else if (blob_index >= 0) {
                blob_kept[blob_index] = true;
            }
        }
    }
    for (size_t b = 0; b < repo->n_blobs; b++) {
        if (blob_kept[b] && !blob_corrupted[b]) continue;
        if (!repo_path(path, sizeof path, repo, "blobs", repo->blobs[b].name, NULL)) continue;
        add_action(p, blob_corrupted[b] ? MLXE_CACHE_REMOVE_CORRUPTED_FILE : MLXE_CACHE_REMOVE_ORPHAN_BLOB,
                   path, repo, repo->blobs[b].size);
    }
    /* A link to a corrupted blob that another (sound-looking) file shared goes too. */
    for (size_t r = 0; r < repo->n_revisions; r++)
        for (size_t f = 0; f < repo->revisions[r].n_files; f++) {
            const hub_cache_file *file = &repo->revisions[r].files[f];
            for (size_t b = 0; file->blob && b < repo->n_blobs; b++)
                if (blob_corrupted[b] && strcmp(repo->blobs[b].name, file->blob) == 0) {
                    if (!repo_path(path, sizeof path, repo, "snapshots", repo->revisions[r].commit, file->path)) continue;
                    add_action(p, MLXE_CACHE_REMOVE_CORRUPTED_FILE, path, repo, 0);
                }
        }
    size_t blobs_left = 0;
    for (size_t b = 0; b < repo->n_blobs; b++) {
        if (!repo_path(path, sizeof path, repo, "blobs", repo->blobs[b].name, NULL)) { blobs_left++; continue; }
        if (!is_removed(p, path)) blobs_left++;
    }
    free(blob_kept);
    free(blob_corrupted);

    /* Snapshots left empty go, and so do the refs naming them or a missing one. */
    size_t revisions_left = 0;
    for (size_t r = 0; r < repo->n_revisions; r++) {
        const hub_cache_revision *revision = &repo->revisions[r];
        if (!repo_path(path, sizeof path, repo, "snapshots", revision->commit, NULL)) { revisions_left++; continue; }
        if (!will_be_empty(p, repo, path, true)) {
            revisions_left++;
            continue;
        }
        for (size_t i = 0; i < revision->n_refs; i++) {
            if (!repo_path(path, sizeof path, repo, "refs", revision->refs[i], NULL)) continue;
            add_action(p, MLXE_CACHE_REMOVE_DANGLING_REF, path, repo, 0);
        }
    }
    for (size_t i = 0; i < repo->n_dangling_refs; i++) {
        /* "name -> commit" */
        char name[PATH_MAX];
        if (!mlxe_path_format(name, sizeof name, "%s", repo->dangling_refs[i])) continue;
        char *arrow = strstr(name, " -> ");
        if (arrow) *arrow = '\0';
        if (!repo_path(path, sizeof path, repo, "refs", name, NULL)) continue;
        add_action(p, MLXE_CACHE_REMOVE_DANGLING_REF, path, repo, 0);
    }

    if (revisions_left == 0 && blobs_left == 0) {
        /* Nothing worth keeping: the whole folder goes (after the steps above). */
        add_action(p, MLXE_CACHE_REMOVE_REPO, repo->path, repo, 0);
        return;
    }
    /* Folders left empty, but not the repo's own blobs/, refs/ and snapshots/,
     * which scanners expect to find. */
    DIR *dir = opendir(repo->path);
    if (!dir) return;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        struct stat st;
        if (!mlxe_path_format(path, sizeof path, "%s/%s", repo->path, entry->d_name) || lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        bool keep_self = strcmp(entry->d_name, "blobs") == 0 || strcmp(entry->d_name, "refs") == 0 ||
                         strcmp(entry->d_name, "snapshots") == 0;
        will_be_empty(p, repo, path, !keep_self);
    }
    closedir(dir);
}

mlxe_status mlxe_cache_cleanup_plan_make(const char *cache_dir, const mlxe_cache_cleanup_options *options,
                                         mlxe_cache_cleanup_plan **out, mlxe_error *err) {
    *out = NULL;
    mlxe_cache_cleanup_options defaults;
    if (!options) {
        mlxe_cache_cleanup_options_init(&defaults);
        options = &defaults;
    }
    char *wanted_folder = NULL;
    if (options->remove_repo_id && !(wanted_folder = hub_cache_repo_folder_name("model", options->remove_repo_id)))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "'%s' is not a model id: expected 'org/name'", options->remove_repo_id);
    hub_cache_scan_options scan_options;
    hub_cache_scan_options_init(&scan_options);
    scan_options.verify_hashes = options->remove_corrupted;
    scan_options.cancel = options->cancel;
    hub_cache_scan *scan = NULL;
    mlxe_status status = hub_cache_scan_run(cache_dir, &scan_options, &scan, err);
    if (status != MLXE_OK) {
        free(wanted_folder);
        return status;
    }
    planner p = {0};
    p.plan = calloc(1, sizeof *p.plan);
    if (!p.plan || !(p.plan->cache_dir = strdup(scan->cache_dir))) {
        free(p.plan);
        free(wanted_folder);
        hub_cache_scan_free(scan);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cache clean-up: out of memory");
    }
    bool wanted_found = false;
    for (size_t i = 0; i < scan->n_repos && !p.out_of_memory; i++) {
        const hub_cache_repo *repo = &scan->repos[i];
        bool wanted = wanted_folder && strcmp(repo->folder, wanted_folder) == 0;
        wanted_found |= wanted;
        if (repo->in_use) {
            add_action(&p, MLXE_CACHE_SKIP_IN_USE, repo->path, repo, 0);
            continue;
        }
        if (wanted)
            add_action(&p, MLXE_CACHE_REMOVE_REPO, repo->path, repo, repo->size_on_disk);
        else
            plan_repo(&p, repo, options->remove_corrupted);
    }
    mlxe_free_strings(p.removed, p.n_removed);
    hub_cache_scan_free(scan);
    if (p.out_of_memory) {
        free(wanted_folder);
        mlxe_cache_cleanup_plan_free(p.plan);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cache clean-up: out of memory");
    }
    if (wanted_folder && !wanted_found) {
        status = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                                "model '%s' is not in the cache %s (folder %s): see 'list-models'",
                                options->remove_repo_id, p.plan->cache_dir, wanted_folder);
        free(wanted_folder);
        mlxe_cache_cleanup_plan_free(p.plan);
        return status;
    }
    free(wanted_folder);
    *out = p.plan;
    return MLXE_OK;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

mlxe_status mlxe_cache_cleanup_apply(mlxe_cache_cleanup_plan *plan, mlxe_error *err) {
    if (!plan) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "cache clean-up: no plan");
    mlxe_status status = MLXE_OK;
    const char *last_checked_repo = NULL;
    bool repo_busy = false;
    for (size_t i = 0; i < plan->n_actions; i++) {
        mlxe_cache_action *action = &plan->actions[i];
        if (action->kind == MLXE_CACHE_SKIP_IN_USE) continue;
        if (!last_checked_repo || strcmp(last_checked_repo, action->repo_folder) != 0) {
            repo_busy = hub_cache_repo_in_use(plan->cache_dir, action->repo_folder);
            last_checked_repo = action->repo_folder;
        }
        int result = 0;
        int e = 0;
        if (repo_busy) {
            result = -1;
            e = EBUSY;
        } else if (action->kind == MLXE_CACHE_REMOVE_REPO) {
            result = nftw(action->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
            e = errno;
        } else if (action->kind == MLXE_CACHE_REMOVE_EMPTY_FOLDER) {
            result = rmdir(action->path);
            e = errno;
        } else {
            result = unlink(action->path);
            e = errno;
        }
        if (result == 0 || (e == ENOENT && !repo_busy)) {
            action->done = true;
            MLXE_INFO(MLXE_LOG_CAT_DIAG, "cache clean-up: removed %s (%s)", action->path,
                      mlxe_cache_action_kind_name(action->kind));
            continue;
        }
        action->error = strdup(repo_busy ? "in use by a running download" : strerror(e));
        if (status == MLXE_OK)
            status = mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot remove: %s", action->path, action->error ? action->error : "out of memory");
    }
    return status;
}

void mlxe_cache_cleanup_plan_free(mlxe_cache_cleanup_plan *plan) {
    if (!plan) return;
    for (size_t i = 0; i < plan->n_actions; i++) {
        free(plan->actions[i].path);
        free(plan->actions[i].repo_id);
        free(plan->actions[i].repo_folder);
        free(plan->actions[i].error);
    }
    free(plan->actions);
    free(plan->cache_dir);
    free(plan);
}
