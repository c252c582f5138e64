/* hub/hub_snapshot.c — snapshot_download and hf_hub_download's logic
 * (HUB.md §2–§3, _snapshot_download.py, file_download.py): resolve the
 * revision to a commit, list its files (cached in trees/{commit}.json so a
 * complete commit needs no request), select, check the disk space, fetch what
 * is missing, and fall back to the cache when the Hub cannot be reached. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "base/error.h"
#include "base/file.h"
#include "base/log_internal.h"
#include "hub/hub_internal.h"

void mlxe_hub_download_options_init(mlxe_hub_download_options *options) {
    if (options) memset(options, 0, sizeof *options);
}

/* snapshots/{commit}/{path} resolves to a file of the expected size. */
static bool snapshot_has(const char *repo_folder, const char *commit, const mlxe_hub_file *f) {
    char *path = hub_printf("%s/snapshots/%s/%s", repo_folder, commit, f->path);
    struct stat st;
    bool ok = path && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
              (f->size < 0 || (uint64_t)st.st_size == (uint64_t)f->size);
    free(path);
    return ok;
}

static uint64_t file_size_or_zero(const char *path) {
    struct stat st;
    return path && stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Files of the list selected by options, with their paths checked. */
static mlxe_status select_files(const char *repo_id, const mlxe_hub_file_list *all,
                                const mlxe_hub_download_options *options, bool *chosen,
                                size_t *n_chosen, mlxe_error *err) {
    hub_selection selection;
    hub_selection_from_options(options, &selection);
    *n_chosen = 0;
    for (size_t i = 0; i < all->n_files; i++) {
        chosen[i] = hub_selection_matches(&selection, all->files[i].path);
        if (!chosen[i]) continue;
        if (!hub_relative_path_safe(all->files[i].path))
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "model '%s' lists the file name '%s', which leaves its folder; "
                                  "refusing to download it",
                                  repo_id, all->files[i].path);
        if (all->files[i].size < 0 || !hub_file_etag(&all->files[i]))
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "the Hub's file list of '%s' lacks the size or id of '%s'", repo_id,
                                  all->files[i].path);
        (*n_chosen)++;
    }
    if (selection.gguf_quant && *n_chosen == 0)
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "model '%s' has no .gguf file for quantization '%s'; list its files "
                              "with 'mlxengine show %s' and pick one of the quantizations there",
                              repo_id, selection.gguf_quant, repo_id);
    return MLXE_OK;
}

/* Fetches the chosen files that the snapshot lacks. */
static mlxe_status complete_snapshot(mlxe_hub *hub, const char *repo_id, const char *repo_folder,
                                     const char *commit, const mlxe_hub_file_list *all,
                                     const bool *chosen, size_t n_chosen,
                                     const mlxe_hub_download_options *options, mlxe_error *err) {
    hub_fetch_job *jobs = calloc(all->n_files + 1, sizeof *jobs);
    if (!jobs) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    size_t n_jobs = 0;
    uint64_t total = 0, done = 0, remaining = 0;
    mlxe_status s = MLXE_OK;
    for (size_t i = 0; i < all->n_files && s == MLXE_OK; i++) {
        if (!chosen[i]) continue;
        const mlxe_hub_file *f = &all->files[i];
        total += (uint64_t)f->size;
        if (snapshot_has(repo_folder, commit, f)) {
            done += (uint64_t)f->size;
            continue;
        }
        const char *etag = hub_file_etag(f);
        if (!hub_relative_path_safe(etag)) {
            s = mlxe_error_set(err, MLXE_ERR_FORMAT, "model '%s': file '%s' has a malformed id '%s'",
                               repo_id, f->path, etag);
            break;
        }
        char *incomplete = hub_printf("%s/blobs/%s.incomplete", repo_folder, etag);
        uint64_t have = file_size_or_zero(incomplete);
        free(incomplete);
        remaining += (uint64_t)f->size > have ? (uint64_t)f->size - have : 0;
        jobs[n_jobs++] = (hub_fetch_job){f->path, etag, f->lfs_sha256 != NULL, (uint64_t)f->size};
    }
    if (s == MLXE_OK && remaining > 0) {
        /* Checked before starting: free space against the bytes still to come. */
        struct statvfs vfs;
        char *blobs = hub_printf("%s/blobs", repo_folder);
        if (blobs && hub_mkdirs(blobs, err) != MLXE_OK) s = err ? err->status : MLXE_ERR_IO;
        if (s == MLXE_OK && blobs && statvfs(blobs, &vfs) == 0) {
            uint64_t free_bytes = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
            uint64_t margin = 64ull << 20;
            if (free_bytes < remaining + margin)
                s = mlxe_error_set(err, MLXE_ERR_IO,
                                   "not enough disk space for '%s': %.2f GB still to download but "
                                   "%.2f GB free in %s; free some space (mlxengine rm / list) or set "
                                   "HF_HUB_CACHE to a bigger disk",
                                   repo_id, (double)remaining / 1e9, (double)free_bytes / 1e9, blobs);
        }
        free(blobs);
    }
    if (s == MLXE_OK && n_jobs > 0) {
        MLXE_INFO(MLXE_LOG_CAT_HUB, "%s@%s: %zu of %zu files to fetch (%llu bytes)", repo_id, commit,
                  n_jobs, n_chosen, (unsigned long long)remaining);
        s = hub_fetch_files(hub, repo_id, commit, jobs, n_jobs, n_chosen, total, done, options, err);
    } else if (s == MLXE_OK && options && options->progress) {
        mlxe_hub_progress p = {.total_bytes = total, .done_bytes = total, .n_files = n_chosen,
                               .n_files_done = n_chosen, .finished = true};
        options->progress(options->progress_user, &p);
    }
    free(jobs);
    return s;
}

static mlxe_status snapshot_path_out(const char *repo_folder, const char *commit, char **out,
                                     mlxe_error *err) {
    *out = hub_printf("%s/snapshots/%s", repo_folder, commit);
    if (!*out) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    if (hub_mkdirs(*out, err) != MLXE_OK) {
        free(*out);
        *out = NULL;
        return err ? err->status : MLXE_ERR_IO;
    }
    return MLXE_OK;
}

/* From the cache alone: all chosen files of a cached tree present, or (no
 * tree recorded) the snapshot folder exists. */
static mlxe_status from_cache(mlxe_hub *hub, const char *repo_id, const char *repo_folder,
                              const char *revision, const mlxe_hub_download_options *options,
                              char **out, bool *complete) {
    *complete = false;
    char *commit = hub_is_commit_hash(revision) ? strdup(revision) : hub_read_ref(repo_folder, revision);
    if (!commit) return MLXE_ERR_NOT_FOUND;
    char *snap = hub_printf("%s/snapshots/%s", repo_folder, commit);
    if (!snap || !mlxe_dir_exists(snap)) {
        free(snap);
        free(commit);
        return MLXE_ERR_NOT_FOUND;
    }
    mlxe_hub_file_list *tree = hub_read_tree(repo_folder, commit);
    bool ok = tree == NULL;
    if (tree) {
        bool *chosen = calloc(tree->n_files + 1, sizeof *chosen);
        size_t n_chosen = 0;
        ok = chosen && select_files(repo_id, tree, options, chosen, &n_chosen, NULL) == MLXE_OK;
        for (size_t i = 0; ok && i < tree->n_files; i++)
            if (chosen[i] && !snapshot_has(repo_folder, commit, &tree->files[i])) ok = false;
        free(chosen);
        mlxe_hub_file_list_free(tree);
        *complete = ok;
    }
    free(commit);
    *out = snap;
    (void)hub;
    return ok ? MLXE_OK : MLXE_ERR_FORMAT; /* FORMAT: cached but some chosen file is missing */
}

mlxe_status mlxe_hub_snapshot_download(mlxe_hub *hub, const char *repo_id,
                                       const mlxe_hub_download_options *options,
                                       char **snapshot_dir, mlxe_error *err) {
    if (!hub || !snapshot_dir)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_snapshot_download: NULL argument");
    *snapshot_dir = NULL;
    if (!hub_repo_id_valid(repo_id))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "'%s' is not a Hub model id: expected 'org/name'", repo_id ? repo_id : "(null)");
    const char *revision = options && options->revision ? options->revision : "main";
    if (!hub_relative_path_safe(revision))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "revision '%s' is not a valid name", revision);
    char *repo_folder = hub_repo_folder(hub->cache_dir, repo_id);
    if (!repo_folder) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");

    mlxe_status s;
    char *cached = NULL;
    bool complete = false;
    mlxe_status cache_status = from_cache(hub, repo_id, repo_folder, revision, options, &cached, &complete);
    /* A commit already complete in the cache: no request at all. */
    if (cache_status == MLXE_OK && complete && hub_is_commit_hash(revision)) {
        MLXE_DEBUG(MLXE_LOG_CAT_HUB, "%s@%s: complete in the cache, no request", repo_id, revision);
        *snapshot_dir = cached;
        free(repo_folder);
        return MLXE_OK;
    }
    if (hub->offline) {
        free(repo_folder);
        if (cache_status == MLXE_OK) {
            *snapshot_dir = cached;
            return MLXE_OK;
        }
        free(cached);
        if (cache_status == MLXE_ERR_FORMAT)
            return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                                  "model '%s' at '%s' is only partly in the cache %s and offline mode "
                                  "(HF_HUB_OFFLINE) forbids fetching the rest; unset HF_HUB_OFFLINE "
                                  "and run 'mlxengine pull %s'",
                                  repo_id, revision, hub->cache_dir, repo_id);
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "model '%s' at '%s' is not in the cache %s and offline mode "
                              "(HF_HUB_OFFLINE) forbids downloading it; unset HF_HUB_OFFLINE and run "
                              "'mlxengine pull %s'",
                              repo_id, revision, hub->cache_dir, repo_id);
    }

    mlxe_hub_model *info = NULL;
    s = mlxe_hub_model_info(hub, repo_id, revision, false, &info, err);
    if (s == MLXE_ERR_NETWORK && cache_status == MLXE_OK) {
        /* The Hub is unreachable or failing; the cache has this revision. */
        MLXE_WARN(MLXE_LOG_CAT_HUB, "%s; using the cached snapshot %s", err ? err->message : "network error",
                  cached);
        mlxe_error_clear(err);
        *snapshot_dir = cached;
        free(repo_folder);
        return MLXE_OK;
    }
    free(cached);
    if (s == MLXE_OK && !hub_is_commit_hash(info->sha))
        s = mlxe_error_set(err, MLXE_ERR_FORMAT,
                           "the Hub's answer for '%s' at '%s' has no commit id (sha); is %s a Hub?",
                           repo_id, revision, hub->endpoint);
    char *commit = s == MLXE_OK ? strdup(info->sha) : NULL;
    mlxe_hub_model_free(info);
    if (s == MLXE_OK && !commit) s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");

    mlxe_hub_file_list *tree = NULL;
    if (s == MLXE_OK) {
        tree = hub_read_tree(repo_folder, commit);
        if (!tree) {
            s = mlxe_hub_list_files(hub, repo_id, commit, &tree, err);
            if (s == MLXE_OK) s = hub_write_tree(repo_folder, commit, tree, err);
        }
    }
    if (s == MLXE_OK) {
        hub_write_cachedir_tag(hub->cache_dir);
        s = hub_write_ref(repo_folder, revision, commit, err);
    }
    bool *chosen = NULL;
    size_t n_chosen = 0;
    if (s == MLXE_OK) {
        chosen = calloc(tree->n_files + 1, sizeof *chosen);
        s = chosen ? select_files(repo_id, tree, options, chosen, &n_chosen, err)
                   : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (s == MLXE_OK && n_chosen == 0)
        MLXE_WARN(MLXE_LOG_CAT_HUB, "%s: no file matches the patterns; the snapshot is empty", repo_id);
    if (s == MLXE_OK)
        s = complete_snapshot(hub, repo_id, repo_folder, commit, tree, chosen, n_chosen, options, err);
    if (s == MLXE_OK) s = snapshot_path_out(repo_folder, commit, snapshot_dir, err);
    free(chosen);
    mlxe_hub_file_list_free(tree);
    free(commit);
    free(repo_folder);
    return s;
}

mlxe_status mlxe_hub_download_file(mlxe_hub *hub, const char *repo_id, const char *revision,
                                   const char *filename, char **path, mlxe_error *err) {
    if (!hub || !path || !filename)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_download_file: NULL argument");
    *path = NULL;
    if (!hub_repo_id_valid(repo_id))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "'%s' is not a Hub model id: expected 'org/name'", repo_id ? repo_id : "(null)");
    if (!hub_relative_path_safe(filename))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "file name '%s' is not a relative path inside the model", filename);
    const char *rev = revision ? revision : "main";
    if (!hub_relative_path_safe(rev))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "revision '%s' is not a valid name", rev);
    char *repo_folder = hub_repo_folder(hub->cache_dir, repo_id);
    if (!repo_folder) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    mlxe_hub_file probe = {(char *)filename, -1, NULL, NULL};

    /* 1. A commit with the file in its snapshot: no network. */
    char *cached_commit = hub_is_commit_hash(rev) ? strdup(rev) : hub_read_ref(repo_folder, rev);
    char *cached_path = NULL;
    if (cached_commit && snapshot_has(repo_folder, cached_commit, &probe))
        cached_path = hub_printf("%s/snapshots/%s/%s", repo_folder, cached_commit, filename);
    free(cached_commit);
    if (cached_path && (hub_is_commit_hash(rev) || hub->offline)) {
        *path = cached_path;
        free(repo_folder);
        return MLXE_OK;
    }
    if (hub->offline) {
        free(repo_folder);
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "'%s' of model '%s' at '%s' is not in the cache %s and offline mode "
                              "(HF_HUB_OFFLINE) forbids downloading it; unset HF_HUB_OFFLINE",
                              filename, repo_id, rev, hub->cache_dir);
    }
    /* 2. HEAD the resolve URL for commit, etag and size. */
    char *rev_q = hub_url_quote(rev, "");
    char *file_q = hub_url_quote(filename, "/");
    char *url = rev_q && file_q ? hub_printf("%s/%s/resolve/%s/%s", hub->endpoint, repo_id, rev_q, file_q) : NULL;
    free(rev_q);
    free(file_q);
    hub_response r;
    memset(&r, 0, sizeof r);
    hub_request_context context = {repo_id, rev, filename};
    mlxe_status s = url ? hub_http_request(hub, url, true, NULL, &context, &r, err)
                        : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    if (s == MLXE_ERR_NOT_FOUND && r.error_code && strcmp(r.error_code, "EntryNotFound") == 0 &&
        hub_is_commit_hash(r.repo_commit)) {
        hub_mark_no_exist(repo_folder, r.repo_commit, filename);
        (void)hub_write_ref(repo_folder, rev, r.repo_commit, NULL);
    }
    if (s == MLXE_OK && (!hub_is_commit_hash(r.repo_commit) || !r.etag || r.size < 0)) {
        s = mlxe_error_set(err, MLXE_ERR_NETWORK,
                           "%s: the answer lacks %s; a proxy may be stripping the Hub's headers (check "
                           "HF_ENDPOINT)",
                           url, !hub_is_commit_hash(r.repo_commit) ? "X-Repo-Commit" : !r.etag ? "an ETag" : "the size");
    }
    if (s == MLXE_ERR_NETWORK && cached_path) {
        MLXE_WARN(MLXE_LOG_CAT_HUB, "%s; using the cached %s", err ? err->message : "network error", cached_path);
        mlxe_error_clear(err);
        *path = cached_path;
        cached_path = NULL;
        hub_response_clear(&r);
        free(url);
        free(repo_folder);
        return MLXE_OK;
    }
    free(cached_path);
    if (s == MLXE_OK && !hub_relative_path_safe(r.etag))
        s = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: malformed ETag '%s'", url, r.etag);
    if (s == MLXE_OK) {
        hub_write_cachedir_tag(hub->cache_dir);
        s = hub_write_ref(repo_folder, rev, r.repo_commit, err);
    }
    if (s == MLXE_OK) {
        hub_fetch_job job = {filename, r.etag, strlen(r.etag) == 64, (uint64_t)r.size};
        mlxe_hub_file f = {(char *)filename, r.size, NULL, NULL};
        if (!snapshot_has(repo_folder, r.repo_commit, &f))
            s = hub_fetch_files(hub, repo_id, r.repo_commit, &job, 1, 1, (uint64_t)r.size, 0, NULL, err);
        if (s == MLXE_OK) {
            *path = hub_printf("%s/snapshots/%s/%s", repo_folder, r.repo_commit, filename);
            if (!*path) s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    hub_response_clear(&r);
    free(url);
    free(repo_folder);
    return s;
}
