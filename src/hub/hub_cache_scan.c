/* hub/hub_cache_scan.c — reading and pruning the cache as huggingface_hub's
 * utils/_cache_manager.py does (scan_cache_dir, delete_revisions): repos are
 * models--* folders with snapshots/, sizes count each blob once, partial
 * downloads are blobs ending in .incomplete, broken links and refs to missing
 * snapshots are reported, and deleting a revision removes its snapshot, its
 * refs and the blobs no other revision uses. */
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
#include "hub/hub_internal.h"

/* A growable set of strings (blob paths), linear: repos have few blobs. */
typedef struct string_set {
    char **items;
    size_t n, capacity;
} string_set;

static bool set_has(const string_set *s, const char *v) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->items[i], v) == 0) return true;
    return false;
}

static bool set_add(string_set *s, const char *v) {
    if (set_has(s, v)) return true;
    if (s->n == s->capacity) {
        size_t cap = s->capacity ? s->capacity * 2 : 16;
        char **p = realloc(s->items, cap * sizeof *p);
        if (!p) return false;
        s->items = p;
        s->capacity = cap;
    }
    s->items[s->n] = strdup(v);
    if (!s->items[s->n]) return false;
    s->n++;
    return true;
}

static void set_free(string_set *s) {
    for (size_t i = 0; i < s->n; i++) free(s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* Walks dir recursively calling visit(path, user) on every non-directory. */
static void walk_files(const char *dir, void (*visit)(const char *path, void *user), void *user) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char *path = hub_printf("%s/%s", dir, e->d_name);
        if (!path) continue;
        struct stat st;
        if (lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) walk_files(path, visit, user);
            else visit(path, user);
        }
        free(path);
    }
    closedir(d);
}

typedef struct snapshot_walk {
    string_set blobs; /* real paths of the files' targets */
    size_t n_files;
    char *broken;     /* first broken link */
} snapshot_walk;

static void visit_snapshot_file(const char *path, void *user) {
    snapshot_walk *w = user;
    w->n_files++;
    char *real = realpath(path, NULL);
    if (!real) {
        if (!w->broken) w->broken = strdup(path);
        return;
    }
    set_add(&w->blobs, real);
    free(real);
}

static uint64_t sum_sizes(const string_set *s) {
    uint64_t total = 0;
    struct stat st;
    for (size_t i = 0; i < s->n; i++)
        if (stat(s->items[i], &st) == 0) total += (uint64_t)st.st_size;
    return total;
}

typedef struct ref_walk {
    const char *refs_root;
    char **names;
    char **commits;
    size_t n;
} ref_walk;

static void visit_ref(const char *path, void *user) {
    ref_walk *w = user;
    char *content = NULL;
    size_t size = 0;
    if (mlxe_file_read_all(path, 256, &content, &size, NULL) != MLXE_OK) return;
    while (size && (content[size - 1] == '\n' || content[size - 1] == ' ')) content[--size] = 0;
    char **names = realloc(w->names, (w->n + 1) * sizeof *names);
    if (names) w->names = names;
    char **commits = realloc(w->commits, (w->n + 1) * sizeof *commits);
    if (commits) w->commits = commits;
    if (!names || !commits) {
        free(content);
        return;
    }
    w->names[w->n] = strdup(path + strlen(w->refs_root) + 1);
    w->commits[w->n] = content;
    w->n++;
}

static void ref_walk_free(ref_walk *w) {
    for (size_t i = 0; i < w->n; i++) {
        free(w->names[i]);
        free(w->commits[i]);
    }
    free(w->names);
    free(w->commits);
}

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

static mlxe_status scan_repo(const char *folder, const char *repo_id, mlxe_hub_cached_repo *repo) {
    memset(repo, 0, sizeof *repo);
    repo->repo_id = strdup(repo_id);
    repo->path = strdup(folder);
    char *blobs_dir = hub_printf("%s/blobs", folder);
    char *refs_dir = hub_printf("%s/refs", folder);
    char *snaps_dir = hub_printf("%s/snapshots", folder);
    if (!repo->repo_id || !repo->path || !blobs_dir || !refs_dir || !snaps_dir) {
        free(blobs_dir);
        free(refs_dir);
        free(snaps_dir);
        return MLXE_ERR_OUT_OF_MEMORY;
    }
    DIR *d = opendir(blobs_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = hub_printf("%s/%s", blobs_dir, e->d_name);
        struct stat st;
        if (p && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
            size_t n = strlen(e->d_name);
            if (n > 11 && strcmp(e->d_name + n - 11, ".incomplete") == 0) {
                repo->n_incomplete++;
                repo->incomplete_bytes += (uint64_t)st.st_size;
            } else {
                repo->size_on_disk += (uint64_t)st.st_size;
                double t = (double)st.st_mtim.tv_sec;
                if (t > repo->last_modified) repo->last_modified = t;
            }
        }
        free(p);
    }
    if (d) closedir(d);
    ref_walk refs = {refs_dir, NULL, NULL, 0};
    walk_files(refs_dir, visit_ref, &refs);
    d = opendir(snaps_dir);
    size_t cap = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (repo->n_revisions == cap) {
            cap = cap ? cap * 2 : 4;
            mlxe_hub_cached_revision *p = realloc(repo->revisions, cap * sizeof *p);
            if (!p) break;
            repo->revisions = p;
        }
        mlxe_hub_cached_revision *rev = &repo->revisions[repo->n_revisions++];
        memset(rev, 0, sizeof *rev);
        rev->commit = strdup(e->d_name);
        rev->snapshot_path = hub_printf("%s/%s", snaps_dir, e->d_name);
        snapshot_walk w = {0};
        if (rev->snapshot_path) walk_files(rev->snapshot_path, visit_snapshot_file, &w);
        rev->n_files = w.n_files;
        rev->size_on_disk = sum_sizes(&w.blobs);
        rev->complete = w.broken == NULL;
        if (w.broken && !repo->problem)
            repo->problem = hub_printf("broken link %s (its blob is missing: run the pull again)", w.broken);
        free(w.broken);
        set_free(&w.blobs);
        rev->refs = calloc(refs.n + 1, sizeof *rev->refs);
        for (size_t i = 0; rev->refs && i < refs.n; i++)
            if (rev->commit && strcmp(refs.commits[i], rev->commit) == 0)
                rev->refs[rev->n_refs++] = strdup(refs.names[i]);
    }
    if (d) closedir(d);
    for (size_t i = 0; i < refs.n && !repo->problem; i++) {
        bool found = false;
        for (size_t j = 0; j < repo->n_revisions; j++)
            if (repo->revisions[j].commit && strcmp(repo->revisions[j].commit, refs.commits[i]) == 0)
                found = true;
        if (!found)
            repo->problem = hub_printf("ref '%s' points to %s, which has no snapshot", refs.names[i],
                                       refs.commits[i]);
    }
    ref_walk_free(&refs);
    free(blobs_dir);
    free(refs_dir);
    free(snaps_dir);
    return MLXE_OK;
}

static int compare_repos(const void *a, const void *b) {
    return strcmp(((const mlxe_hub_cached_repo *)a)->repo_id, ((const mlxe_hub_cached_repo *)b)->repo_id);
}

mlxe_status mlxe_hub_cache_scan(const mlxe_hub *hub, mlxe_hub_cache_info **out, mlxe_error *err) {
    if (!hub || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_cache_scan: NULL argument");
    *out = NULL;
    mlxe_hub_cache_info *info = calloc(1, sizeof *info);
    if (!info) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    DIR *d = opendir(hub->cache_dir);
    if (!d) {
        *out = info; /* no cache yet: nothing cached */
        return MLXE_OK;
    }
    size_t cap = 0;
    mlxe_status s = MLXE_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *repo_id = hub_repo_id_from_folder(e->d_name);
        if (!repo_id) continue;
        char *folder = hub_printf("%s/%s", hub->cache_dir, e->d_name);
        char *snaps = folder ? hub_printf("%s/snapshots", folder) : NULL;
        if (snaps && mlxe_dir_exists(snaps)) {
            if (info->n_repos == cap) {
                cap = cap ? cap * 2 : 8;
                mlxe_hub_cached_repo *p = realloc(info->repos, cap * sizeof *p);
                if (!p) s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
                else info->repos = p;
            }
            if (s == MLXE_OK) {
                if (scan_repo(folder, repo_id, &info->repos[info->n_repos]) != MLXE_OK)
                    s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
                info->size_on_disk += info->repos[info->n_repos].size_on_disk;
                info->n_repos++;
            }
        }
        free(snaps);
        free(folder);
        free(repo_id);
        if (s) break;
    }
    closedir(d);
    if (s) {
        mlxe_hub_cache_info_free(info);
        return s;
    }
    if (info->n_repos) qsort(info->repos, info->n_repos, sizeof *info->repos, compare_repos);
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

mlxe_status mlxe_hub_cache_delete(mlxe_hub *hub, const char *repo_id, const char *revision,
                                  uint64_t *freed_bytes, mlxe_error *err) {
    if (freed_bytes) *freed_bytes = 0;
    if (!hub) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_cache_delete: NULL hub");
    if (!hub_repo_id_valid(repo_id))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "'%s' is not a Hub model id (org/name)",
                              repo_id ? repo_id : "(null)");
    if (revision && !hub_relative_path_safe(revision))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "revision '%s' is not a valid name", revision);
    char *folder = hub_repo_folder(hub->cache_dir, repo_id);
    if (!folder) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    if (!mlxe_dir_exists(folder)) {
        free(folder);
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                              "model '%s' is not in the cache %s; 'mlxengine list' shows what is", repo_id,
                              hub->cache_dir);
    }
    mlxe_hub_cached_repo repo;
    mlxe_status s = scan_repo(folder, repo_id, &repo) == MLXE_OK
                        ? MLXE_OK
                        : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    size_t victim = repo.n_revisions;
    if (s == MLXE_OK && revision) {
        char *commit = hub_is_commit_hash(revision) ? strdup(revision) : hub_read_ref(folder, revision);
        for (size_t i = 0; commit && i < repo.n_revisions; i++)
            if (repo.revisions[i].commit && strcmp(repo.revisions[i].commit, commit) == 0) victim = i;
        free(commit);
        if (victim == repo.n_revisions)
            s = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                               "revision '%s' of model '%s' is not in the cache; 'mlxengine list' "
                               "shows the cached revisions",
                               revision, repo_id);
    }
    bool whole = s == MLXE_OK && (!revision || repo.n_revisions == 1);
    if (s == MLXE_OK && whole) {
        uint64_t freed = repo.size_on_disk + repo.incomplete_bytes;
        s = remove_tree(folder, err);
        const char *slash = strchr(repo_id, '/');
        char *locks = hub_printf("%s/.locks/models--%.*s--%s", hub->cache_dir, (int)(slash - repo_id),
                                 repo_id, slash + 1);
        if (s == MLXE_OK && locks) s = remove_tree(locks, err);
        free(locks);
        if (s == MLXE_OK && freed_bytes) *freed_bytes = freed;
    } else if (s == MLXE_OK) {
        /* Blobs used by the other revisions stay. */
        string_set keep = {0}, drop = {0};
        for (size_t i = 0; i < repo.n_revisions; i++) {
            snapshot_walk w = {0};
            walk_files(repo.revisions[i].snapshot_path, visit_snapshot_file, &w);
            string_set *target = i == victim ? &drop : &keep;
            for (size_t j = 0; j < w.blobs.n; j++) set_add(target, w.blobs.items[j]);
            free(w.broken);
            set_free(&w.blobs);
        }
        const mlxe_hub_cached_revision *rev = &repo.revisions[victim];
        s = remove_tree(rev->snapshot_path, err);
        for (size_t i = 0; s == MLXE_OK && i < rev->n_refs; i++) {
            char *ref = hub_printf("%s/refs/%s", folder, rev->refs[i]);
            if (ref) unlink(ref);
            free(ref);
        }
        char *tree = hub_printf("%s/trees/%s.json", folder, rev->commit);
        if (tree) unlink(tree);
        free(tree);
        char *no_exist = hub_printf("%s/.no_exist/%s", folder, rev->commit);
        if (no_exist) (void)remove_tree(no_exist, NULL);
        free(no_exist);
        uint64_t freed = 0;
        struct stat st;
        for (size_t i = 0; s == MLXE_OK && i < drop.n; i++) {
            if (set_has(&keep, drop.items[i])) continue;
            if (stat(drop.items[i], &st) == 0) freed += (uint64_t)st.st_size;
            unlink(drop.items[i]);
        }
        if (freed_bytes) *freed_bytes = freed;
        set_free(&keep);
        set_free(&drop);
    }
    repo_clear(&repo);
    free(folder);
    return s;
}
