/* hub/hub_cache_scan.c — walks a hub cache folder and reports every repo's
 * revisions, files, blobs, partial downloads, download locks and integrity
 * problems (see hub_cache_scan.h).
 *
 * Layout (shared/docs/HUB.md §3, huggingface_hub's utils/_cache_manager.py):
 * `{type}s--{org}--{name}/` holding `blobs/{etag}`, `blobs/{name}.incomplete`,
 * `refs/{rev}` (a commit hash), `snapshots/{commit}/{path}` (relative links
 * into blobs/, or plain files when symlinks are disabled), `.no_exist/` and
 * our `trees/{commit}.json`. `.locks/` and `CACHEDIR.TAG` are not repos.
 *
 * Allocation failures are recorded in the walk's state and turned into one
 * MLXE_ERR_OUT_OF_MEMORY at the end, so the walk itself stays readable. */
#include "hub/hub_cache_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/grow.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "base/path_format.h"
#include "hub/hub_paths.h"

/* trees/{commit}.json files are small (one entry per file of a commit). */
#define MAX_TREE_RECORD_SIZE (64u << 20)

typedef struct walk {
    const hub_cache_scan_options *options;
    const char *cache_dir;
    bool out_of_memory;
    mlxe_status failure;  /* set on cancel or I/O failure while hashing */
    mlxe_error *err;
} walk;

const char *hub_cache_file_state_name(hub_cache_file_state state) {
    switch (state) {
    case HUB_CACHE_FILE_OK: return "ok";
    case HUB_CACHE_FILE_MISSING: return "missing";
    case HUB_CACHE_FILE_BROKEN_LINK: return "broken_link";
    case HUB_CACHE_FILE_SIZE_MISMATCH: return "size_mismatch";
    case HUB_CACHE_FILE_WRONG_BLOB: return "wrong_blob";
    case HUB_CACHE_FILE_HASH_MISMATCH: return "hash_mismatch";
    }
    return "unknown";
}

const char *hub_cache_repo_state_name(hub_cache_repo_state state) {
    switch (state) {
    case HUB_CACHE_REPO_COMPLETE: return "complete";
    case HUB_CACHE_REPO_PARTIAL: return "partial";
    case HUB_CACHE_REPO_CORRUPTED: return "corrupted";
    case HUB_CACHE_REPO_EMPTY: return "empty";
    }
    return "unknown";
}

void hub_cache_scan_options_init(hub_cache_scan_options *options) {
    memset(options, 0, sizeof *options);
}

static char *join(walk *w, const char *dir, const char *name) {
    char *path = mlxe_path_join(dir, name);
    if (!path) w->out_of_memory = true;
    return path;
}

static void add_problem(walk *w, hub_cache_repo *repo, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void add_problem(walk *w, hub_cache_repo *repo, const char *format, ...) {
    char text[1024];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    if (!mlxe_append_string(&repo->problems, &repo->n_problems, text)) w->out_of_memory = true;
}

char *hub_cache_repo_folder_name(const char *repo_type, const char *repo_id) {
    if (!repo_type || !repo_id || !*repo_id || repo_id[0] == '/') return NULL;
    size_t id_len = strlen(repo_id);
    if (id_len > 1024 || strstr(repo_id, "..") || strstr(repo_id, "//") || repo_id[id_len - 1] == '/')
        return NULL;
    size_t n_slashes = 0;
    for (const char *c = repo_id; *c; c++) n_slashes += *c == '/';
    size_t size = strlen(repo_type) + 3 + id_len + n_slashes + 1;
    char *folder = malloc(size);
    if (!folder) return NULL;
    size_t at = (size_t)snprintf(folder, size, "%ss--", repo_type);
    for (const char *c = repo_id; *c; c++) {
        if (*c == '/') {
            folder[at++] = '-';
            folder[at++] = '-';
        } else {
            folder[at++] = *c;
        }
    }
    folder[at] = '\0';
    return folder;
}

/* "models--org--name" -> type "model", id "org/name". False when the name is
 * not a repo folder. */
static bool parse_folder_name(walk *w, const char *folder, hub_cache_repo *repo) {
    static const char *const types[] = {"models", "datasets", "spaces"};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t n = strlen(types[t]);
        if (strncmp(folder, types[t], n) != 0 || strncmp(folder + n, "--", 2) != 0 || !folder[n + 2])
            continue;
        repo->repo_type = strndup(types[t], n - 1);
        const char *rest = folder + n + 2;
        char *id = malloc(strlen(rest) + 1);
        if (!repo->repo_type || !id) {
            free(id);
            w->out_of_memory = true;
            return true;
        }
        size_t at = 0;
        for (const char *c = rest; *c; c++) {
            if (c[0] == '-' && c[1] == '-') {
                id[at++] = '/';
                c++;
            } else {
                id[at++] = *c;
            }
        }
        id[at] = '\0';
        repo->repo_id = id;
        return true;
    }
    return false;
}

static int compare_blobs(const void *a, const void *b) {
    return strcmp(((const hub_cache_blob *)a)->name, ((const hub_cache_blob *)b)->name);
}
static int compare_files(const void *a, const void *b) {
    return strcmp(((const hub_cache_file *)a)->path, ((const hub_cache_file *)b)->path);
}
static int compare_revisions(const void *a, const void *b) {
    return strcmp(((const hub_cache_revision *)a)->commit, ((const hub_cache_revision *)b)->commit);
}
static int compare_repos(const void *a, const void *b) {
    return strcmp(((const hub_cache_repo *)a)->folder, ((const hub_cache_repo *)b)->folder);
}

static hub_cache_blob *find_blob(hub_cache_repo *repo, const char *name) {
    if (repo->n_blobs == 0) return NULL; /* bsearch wants a non-NULL array */
    hub_cache_blob key = {.name = (char *)name};
    return bsearch(&key, repo->blobs, repo->n_blobs, sizeof key, compare_blobs);
}

static void read_blobs(walk *w, hub_cache_repo *repo) {
    char *dir_path = join(w, repo->path, "blobs");
    DIR *dir = dir_path ? opendir(dir_path) : NULL;
    if (!dir) {
        free(dir_path);
        return; /* a repo may have no blobs yet (or snapshots of plain files) */
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.' && (!entry->d_name[1] || strcmp(entry->d_name, "..") == 0)) continue;
        char *path = join(w, dir_path, entry->d_name);
        struct stat st;
        if (!path || lstat(path, &st) != 0) {
            free(path);
            continue;
        }
        free(path);
        if (!S_ISREG(st.st_mode)) {
            add_problem(w, repo, "blobs/%s is not a regular file", entry->d_name);
            continue;
        }
        size_t name_len = strlen(entry->d_name);
        bool incomplete = name_len > 11 && strcmp(entry->d_name + name_len - 11, ".incomplete") == 0;
        hub_cache_blob *blob =
            incomplete ? mlxe_append((void **)&repo->partial_downloads, &repo->n_partial_downloads, sizeof *blob)
                       : mlxe_append((void **)&repo->blobs, &repo->n_blobs, sizeof *blob);
        if (!blob || !(blob->name = strdup(entry->d_name))) {
            w->out_of_memory = true;
            break;
        }
        blob->size = (uint64_t)st.st_size;
        repo->size_on_disk += blob->size;
        if (incomplete) repo->partial_bytes += blob->size;
        double modified = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec * 1e-9;
        if (!incomplete && modified > repo->last_modified) repo->last_modified = modified;
    }
    closedir(dir);
    free(dir_path);
    if (repo->n_blobs) qsort(repo->blobs, repo->n_blobs, sizeof *repo->blobs, compare_blobs);
    if (repo->n_partial_downloads)
        qsort(repo->partial_downloads, repo->n_partial_downloads, sizeof *repo->partial_downloads, compare_blobs);
}

/* One ref: refs/<name> holding a commit hash (refs/pr/1 lives in refs/refs/pr/1). */
typedef struct ref_entry {
    char *name;
    char *commit;
    bool matched;
} ref_entry;

static void read_refs_dir(walk *w, hub_cache_repo *repo, const char *dir_path, const char *prefix,
                          ref_entry **refs, size_t *n_refs) {
    DIR *dir = opendir(dir_path);
    if (!dir) return;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char *path = join(w, dir_path, entry->d_name);
        char name[PATH_MAX];
        struct stat st;
        if (path && mlxe_path_format(name, sizeof name, "%s%s", prefix, entry->d_name) && stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode)) {
                char sub_prefix[PATH_MAX];
                if (mlxe_path_format(sub_prefix, sizeof sub_prefix, "%s/", name))
                    read_refs_dir(w, repo, path, sub_prefix, refs, n_refs);
            } else {
                char *text = NULL;
                size_t size = 0;
                if (mlxe_file_read_all(path, 4096, &text, &size, NULL) == MLXE_OK) {
                    while (size > 0 && (text[size - 1] == '\n' || text[size - 1] == ' ' || text[size - 1] == '\r'))
                        text[--size] = '\0';
                    ref_entry *ref = mlxe_append((void **)refs, n_refs, sizeof *ref);
                    if (!ref || !(ref->name = strdup(name))) {
                        w->out_of_memory = true;
                        free(text);
                    } else {
                        ref->commit = text;
                    }
                } else {
                    add_problem(w, repo, "refs/%s cannot be read", name);
                }
            }
        }
        free(path);
    }
    closedir(dir);
}

/* trees/{commit}.json: {"format_version":1,"files":{path:{size,blob_id[,lfs_sha256,lfs_size]}}}. */
static cJSON *read_tree_record(walk *w, hub_cache_repo *repo, const char *commit) {
    char name[PATH_MAX];
    if (!mlxe_path_format(name, sizeof name, "trees/%s.json", commit)) return NULL;
    char *path = join(w, repo->path, name);
    if (!path || !mlxe_file_exists(path)) {
        free(path);
        return NULL;
    }
    cJSON *root = NULL;
    mlxe_error err;
    if (mlxe_json_parse_file(path, MAX_TREE_RECORD_SIZE, &root, &err) != MLXE_OK) {
        add_problem(w, repo, "%s", err.message);
        free(path);
        return NULL;
    }
    free(path);
    cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    if (!cJSON_IsObject(files)) {
        add_problem(w, repo, "trees/%s.json has no \"files\" object", commit);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* The blob a tree record expects for one file: the LFS sha256, else the git blob id. */
static const char *expected_blob(const cJSON *record) {
    const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(record, "lfs_sha256");
    if (cJSON_IsString(lfs)) return lfs->valuestring;
    const cJSON *blob_id = cJSON_GetObjectItemCaseSensitive(record, "blob_id");
    return cJSON_IsString(blob_id) ? blob_id->valuestring : NULL;
}

static void scan_snapshot_dir(walk *w, hub_cache_repo *repo, hub_cache_revision *revision,
                              const char *blobs_real, const char *dir_path, const char *relative) {
    DIR *dir = opendir(dir_path);
    if (!dir) {
        add_problem(w, repo, "snapshot %s: cannot read %s", revision->commit, dir_path);
        return;
    }
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char *path = join(w, dir_path, entry->d_name);
        char rel[PATH_MAX];
        bool fits = mlxe_path_format(rel, sizeof rel, "%s%s%s", relative, *relative ? "/" : "", entry->d_name);
        struct stat link_st, st;
        if (!path || !fits || lstat(path, &link_st) != 0) {
            free(path);
            continue;
        }
        if (S_ISDIR(link_st.st_mode)) {
            scan_snapshot_dir(w, repo, revision, blobs_real, path, rel);
            free(path);
            continue;
        }
        hub_cache_file *file = mlxe_append((void **)&revision->files, &revision->n_files, sizeof *file);
        if (!file || !(file->path = strdup(rel))) {
            w->out_of_memory = true;
            free(path);
            break;
        }
        file->expected_size = -1;
        if (S_ISLNK(link_st.st_mode)) {
            char target[PATH_MAX];
            ssize_t n = readlink(path, target, sizeof target - 1);
            target[n > 0 ? n : 0] = '\0';
            if (stat(path, &st) != 0) {
                file->state = HUB_CACHE_FILE_BROKEN_LINK;
                const char *base = strrchr(target, '/');
                file->blob = strdup(base ? base + 1 : target);
                if (!file->blob) w->out_of_memory = true;
                add_problem(w, repo, "snapshot %s: %s links to %s, which does not exist "
                            "(download the model again to fetch it)", revision->commit, rel, target);
            } else {
                file->size = (uint64_t)st.st_size;
                char real[PATH_MAX];
                if (blobs_real && realpath(path, real)) {
                    char *slash = strrchr(real, '/');
                    *slash = '\0';
                    if (strcmp(real, blobs_real) == 0) {
                        file->blob = strdup(slash + 1);
                        if (!file->blob) w->out_of_memory = true;
                    }
                }
            }
        } else {
            file->size = (uint64_t)link_st.st_size;
            repo->size_on_disk += file->size; /* a plain copy is not counted among blobs */
        }
        free(path);
    }
    closedir(dir);
}

/* Bytes of a revision's distinct blobs plus its plain files. */
static void sum_revision_size(hub_cache_repo *repo, hub_cache_revision *revision, bool *blob_counted) {
    memset(blob_counted, 0, (repo->n_blobs + 1) * sizeof *blob_counted);
    for (size_t i = 0; i < revision->n_files; i++) {
        const hub_cache_file *file = &revision->files[i];
        if (file->state == HUB_CACHE_FILE_MISSING || file->state == HUB_CACHE_FILE_BROKEN_LINK) continue;
        hub_cache_blob *blob = file->blob ? find_blob(repo, file->blob) : NULL;
        if (blob) {
            size_t index = (size_t)(blob - repo->blobs);
            if (blob_counted[index]) continue;
            blob_counted[index] = true;
        }
        revision->size += file->size;
    }
}

static ptrdiff_t file_index(const hub_cache_revision *revision, const char *path) {
    for (size_t i = 0; i < revision->n_files; i++)
        if (strcmp(revision->files[i].path, path) == 0) return (ptrdiff_t)i;
    return -1;
}

static void add_missing(walk *w, hub_cache_revision *revision, const char *path, int64_t expected_size) {
    hub_cache_file *file = mlxe_append((void **)&revision->files, &revision->n_files, sizeof *file);
    if (!file || !(file->path = strdup(path))) {
        w->out_of_memory = true;
        return;
    }
    file->expected_size = expected_size;
    file->state = HUB_CACHE_FILE_MISSING;
}

/* Compares the files found with trees/{commit}.json (sizes, blobs) and adds
 * config.json when it is absent. */
static void check_tree_record(walk *w, hub_cache_repo *repo, hub_cache_revision *revision,
                              const cJSON *tree) {
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(tree, "files");
    for (size_t i = 0; i < revision->n_files; i++) {
        hub_cache_file *file = &revision->files[i];
        const cJSON *record = cJSON_GetObjectItemCaseSensitive(files, file->path);
        if (!cJSON_IsObject(record)) continue;
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(record, "size");
        if (cJSON_IsNumber(size)) file->expected_size = (int64_t)size->valuedouble;
        if (file->state != HUB_CACHE_FILE_OK) continue;
        const char *expected = expected_blob(record);
        if (file->blob && expected && strcmp(file->blob, expected) != 0) {
            file->state = HUB_CACHE_FILE_WRONG_BLOB;
            add_problem(w, repo, "snapshot %s: %s links to blob %s but the commit's file is %s",
                        revision->commit, file->path, file->blob, expected);
        } else if (file->expected_size >= 0 && (uint64_t)file->expected_size != file->size) {
            file->state = HUB_CACHE_FILE_SIZE_MISMATCH;
            add_problem(w, repo, "snapshot %s: %s has %llu bytes, the commit's file has %lld",
                        revision->commit, file->path, (unsigned long long)file->size,
                        (long long)file->expected_size);
        }
    }
    /* A download fetches a selection of the commit's files (mlx-lm's
     * patterns, or one GGUF), so an absent file is missing only when the
     * model cannot work without it: config.json. Shards are checked against
     * the index (check_weight_index). The others are only counted. */
    const cJSON *record;
    cJSON_ArrayForEach(record, files) {
        if (file_index(revision, record->string) >= 0) continue;
        if (strcmp(record->string, "config.json") != 0) {
            revision->n_not_downloaded++;
            continue;
        }
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(record, "size");
        add_missing(w, revision, record->string, cJSON_IsNumber(size) ? (int64_t)size->valuedouble : -1);
    }
}

/* model.safetensors.index.json names every weight shard: each must be there. */
static void check_weight_index(walk *w, hub_cache_repo *repo, hub_cache_revision *revision,
                               const cJSON *tree) {
    static const char *const index_name = "model.safetensors.index.json";
    ptrdiff_t at = file_index(revision, index_name);
    if (at < 0 || revision->files[at].state != HUB_CACHE_FILE_OK) return;
    char relative[PATH_MAX];
    if (!mlxe_path_format(relative, sizeof relative, "snapshots/%s/%s", revision->commit, index_name)) return;
    char *path = join(w, repo->path, relative);
    cJSON *index = NULL;
    mlxe_error err;
    if (!path || mlxe_json_parse_file(path, 64u << 20, &index, &err) != MLXE_OK) {
        if (path) add_problem(w, repo, "snapshot %s: %s", revision->commit, err.message);
        free(path);
        return;
    }
    free(path);
    const cJSON *weight_map = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
    const cJSON *entry;
    cJSON_ArrayForEach(entry, weight_map) {
        if (!cJSON_IsString(entry) || file_index(revision, entry->valuestring) >= 0) continue;
        const cJSON *files = tree ? cJSON_GetObjectItemCaseSensitive(tree, "files") : NULL;
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(files, entry->valuestring), "size");
        if (revision->n_not_downloaded > 0 && cJSON_GetObjectItemCaseSensitive(files, entry->valuestring))
            revision->n_not_downloaded--;
        add_missing(w, revision, entry->valuestring, cJSON_IsNumber(size) ? (int64_t)size->valuedouble : -1);
        add_problem(w, repo, "snapshot %s: weight shard %s named by %s is not downloaded",
                    revision->commit, entry->valuestring, index_name);
    }
    cJSON_Delete(index);
}

/* Hashes each OK file's blob once (blobs shared by revisions are hashed once). */
static void verify_revision(walk *w, hub_cache_repo *repo, hub_cache_revision *revision,
                            signed char *blob_verdicts) {
    for (size_t i = 0; i < revision->n_files && w->failure == MLXE_OK; i++) {
        hub_cache_file *file = &revision->files[i];
        if (file->state != HUB_CACHE_FILE_OK || !file->blob) continue;
        hub_cache_blob *blob = find_blob(repo, file->blob);
        if (!blob) continue;
        size_t index = (size_t)(blob - repo->blobs);
        if (blob_verdicts[index] == 0) {
            char rel[PATH_MAX];
            char *path = mlxe_path_format(rel, sizeof rel, "blobs/%s", blob->name) ? join(w, repo->path, rel) : NULL;
            bool known = false, matches = false;
            if (path) w->failure = hub_cache_blob_verify(path, blob->name, &known, &matches,
                                                           w->options->cancel, w->err);
            free(path);
            blob_verdicts[index] = !known ? 3 : matches ? 1 : 2;
        }
        if (blob_verdicts[index] == 1 || blob_verdicts[index] == 2) file->hash_checked = true;
        if (blob_verdicts[index] == 2) {
            file->state = HUB_CACHE_FILE_HASH_MISMATCH;
            add_problem(w, repo, "snapshot %s: %s: the content of blobs/%s does not hash to its name "
                        "(corrupted download)", revision->commit, file->path, blob->name);
        }
    }
}

static void scan_repo(walk *w, hub_cache_repo *repo) {
    read_blobs(w, repo);

    ref_entry *refs = NULL;
    size_t n_refs = 0;
    char *refs_path = join(w, repo->path, "refs");
    if (refs_path) read_refs_dir(w, repo, refs_path, "", &refs, &n_refs);
    free(refs_path);

    char *blobs_path = join(w, repo->path, "blobs");
    char blobs_real_buffer[PATH_MAX];
    const char *blobs_real = blobs_path && realpath(blobs_path, blobs_real_buffer) ? blobs_real_buffer : NULL;
    free(blobs_path);

    signed char *blob_verdicts = calloc(repo->n_blobs + 1, 1);
    bool *blob_counted = calloc(repo->n_blobs + 1, sizeof *blob_counted);
    if (!blob_verdicts || !blob_counted) w->out_of_memory = true;

    char *snapshots_path = join(w, repo->path, "snapshots");
    DIR *dir = snapshots_path ? opendir(snapshots_path) : NULL;
    bool has_snapshots_dir = dir != NULL;
    repo->has_snapshots_dir = has_snapshots_dir;
    if (!dir && snapshots_path)
        add_problem(w, repo, "no snapshots folder (huggingface_hub treats the repo as corrupted)");
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) && !w->out_of_memory) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char *path = join(w, snapshots_path, entry->d_name);
        struct stat st;
        if (!path || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            add_problem(w, repo, "snapshots/%s is not a folder", entry->d_name);
            free(path);
            continue;
        }
        hub_cache_revision *revision =
            mlxe_append((void **)&repo->revisions, &repo->n_revisions, sizeof *revision);
        if (!revision || !(revision->commit = strdup(entry->d_name))) {
            w->out_of_memory = true;
            free(path);
            break;
        }
        scan_snapshot_dir(w, repo, revision, blobs_real, path, "");
        free(path);
        cJSON *tree = read_tree_record(w, repo, revision->commit);
        if (tree) {
            revision->has_tree_record = true;
            check_tree_record(w, repo, revision, tree);
        }
        check_weight_index(w, repo, revision, tree);
        cJSON_Delete(tree);
        if (revision->n_files)
            qsort(revision->files, revision->n_files, sizeof *revision->files, compare_files);
        for (size_t i = 0; i < revision->n_files; i++) {
            hub_cache_blob *blob = revision->files[i].blob ? find_blob(repo, revision->files[i].blob) : NULL;
            if (blob && revision->files[i].state != HUB_CACHE_FILE_BROKEN_LINK) blob->referenced = true;
        }
        if (blob_counted) sum_revision_size(repo, revision, blob_counted);
        if (w->options->verify_hashes && blob_verdicts) verify_revision(w, repo, revision, blob_verdicts);
        for (size_t i = 0; i < revision->n_files; i++)
            if (revision->files[i].state != HUB_CACHE_FILE_OK) revision->n_bad_files++;
        for (size_t r = 0; r < n_refs; r++)
            if (refs[r].commit && strcmp(refs[r].commit, revision->commit) == 0) {
                refs[r].matched = true;
                if (!mlxe_append_string(&revision->refs, &revision->n_refs, refs[r].name))
                    w->out_of_memory = true;
            }
    }
    if (dir) closedir(dir);
    free(snapshots_path);
    free(blob_verdicts);
    free(blob_counted);
    if (repo->n_revisions)
        qsort(repo->revisions, repo->n_revisions, sizeof *repo->revisions, compare_revisions);

    for (size_t r = 0; r < n_refs; r++) {
        if (!refs[r].matched && refs[r].commit) {
            char text[2 * PATH_MAX];
            snprintf(text, sizeof text, "%.4000s -> %.4000s", refs[r].name, refs[r].commit);
            if (!mlxe_append_string(&repo->dangling_refs, &repo->n_dangling_refs, text))
                w->out_of_memory = true;
        }
        free(refs[r].name);
        free(refs[r].commit);
    }
    free(refs);

    for (size_t b = 0; b < repo->n_blobs; b++)
        if (!repo->blobs[b].referenced) {
            repo->n_orphan_blobs++;
            repo->orphan_bytes += repo->blobs[b].size;
        }

    bool corrupted = !has_snapshots_dir && (n_refs > 0 || repo->n_blobs > 0);
    bool partial = repo->n_partial_downloads > 0 || repo->n_dangling_refs > 0;
    size_t n_files = 0;
    for (size_t i = 0; i < repo->n_revisions; i++)
        for (size_t f = 0; f < repo->revisions[i].n_files; f++) {
            hub_cache_file_state state = repo->revisions[i].files[f].state;
            n_files++;
            if (state == HUB_CACHE_FILE_MISSING) partial = true;
            else if (state != HUB_CACHE_FILE_OK) corrupted = true;
        }
    repo->in_use = hub_cache_repo_in_use(w->cache_dir, repo->folder);
    if (corrupted) repo->state = HUB_CACHE_REPO_CORRUPTED;
    else if (partial) repo->state = HUB_CACHE_REPO_PARTIAL;
    else if (n_files == 0) repo->state = HUB_CACHE_REPO_EMPTY; /* snapshot folders with nothing in them */
    else repo->state = HUB_CACHE_REPO_COMPLETE;
}

bool hub_cache_repo_in_use(const char *cache_dir, const char *folder) {
    char locks[PATH_MAX];
    DIR *dir = mlxe_path_format(locks, sizeof locks, "%s/.locks/%s", cache_dir, folder) ? opendir(locks) : NULL;
    if (!dir) return false;
    bool in_use = false;
    struct dirent *entry;
    while (!in_use && (entry = readdir(dir))) {
        size_t n = strlen(entry->d_name);
        if (n < 6 || strcmp(entry->d_name + n - 5, ".lock") != 0) continue;
        char path[PATH_MAX];
        int fd = mlxe_path_format(path, sizeof path, "%s/%s", locks, entry->d_name)
                     ? open(path, O_RDONLY | O_CLOEXEC) : -1;
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno == EWOULDBLOCK) in_use = true;
        } else {
            flock(fd, LOCK_UN);
        }
        close(fd);
    }
    closedir(dir);
    return in_use;
}

static void free_repo(hub_cache_repo *repo) {
    free(repo->folder);
    free(repo->path);
    free(repo->repo_type);
    free(repo->repo_id);
    for (size_t r = 0; r < repo->n_revisions; r++) {
        hub_cache_revision *revision = &repo->revisions[r];
        free(revision->commit);
        mlxe_free_strings(revision->refs, revision->n_refs);
        for (size_t f = 0; f < revision->n_files; f++) {
            free(revision->files[f].path);
            free(revision->files[f].blob);
        }
        free(revision->files);
    }
    free(repo->revisions);
    for (size_t b = 0; b < repo->n_blobs; b++) free(repo->blobs[b].name);
    free(repo->blobs);
    for (size_t b = 0; b < repo->n_partial_downloads; b++) free(repo->partial_downloads[b].name);
    free(repo->partial_downloads);
    mlxe_free_strings(repo->dangling_refs, repo->n_dangling_refs);
    mlxe_free_strings(repo->problems, repo->n_problems);
}

void hub_cache_scan_free(hub_cache_scan *scan) {
    if (!scan) return;
    for (size_t i = 0; i < scan->n_repos; i++) free_repo(&scan->repos[i]);
    free(scan->repos);
    mlxe_free_strings(scan->warnings, scan->n_warnings);
    free(scan->cache_dir);
    free(scan);
}

mlxe_status hub_cache_scan_run(const char *cache_dir, const hub_cache_scan_options *options,
                                hub_cache_scan **out, mlxe_error *err) {
    *out = NULL;
    hub_cache_scan_options defaults;
    if (!options) {
        hub_cache_scan_options_init(&defaults);
        options = &defaults;
    }
    hub_cache_scan *scan = calloc(1, sizeof *scan);
    if (!scan) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cache scan: out of memory");
    scan->cache_dir = cache_dir ? strdup(cache_dir) : hub_default_cache_dir();
    if (!scan->cache_dir) {
        free(scan);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cache scan: out of memory");
    }
    walk w = {.options = options, .cache_dir = scan->cache_dir, .failure = MLXE_OK, .err = err};
    char *only_folder = NULL;
    if (options->repo_id && !(only_folder = hub_cache_repo_folder_name("model", options->repo_id))) {
        hub_cache_scan_free(scan);
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "'%s' is not a model id: expected 'org/name' (e.g. mlx-community/Qwen3-0.6B-4bit)",
                              options->repo_id);
    }
    DIR *dir = opendir(scan->cache_dir);
    if (!dir) {
        int e = errno;
        free(only_folder);
        if (e == ENOENT) {
            *out = scan;
            return MLXE_OK;
        }
        mlxe_status status = mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot read the hub cache folder: %s",
                                            scan->cache_dir, strerror(e));
        hub_cache_scan_free(scan);
        return status;
    }
    scan->exists = true;
    struct dirent *entry;
    while ((entry = readdir(dir)) && !w.out_of_memory && w.failure == MLXE_OK) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, ".locks") == 0 ||
            strcmp(name, "CACHEDIR.TAG") == 0 || strcmp(name, "version.txt") == 0)
            continue;
        if (only_folder && strcmp(name, only_folder) != 0) continue;
        char *path = mlxe_path_join(scan->cache_dir, name);
        struct stat st;
        if (!path || stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            char text[512];
            snprintf(text, sizeof text, "%.300s: not a repo folder (ignored)", name);
            if (!path || !mlxe_append_string(&scan->warnings, &scan->n_warnings, text)) w.out_of_memory = true;
            free(path);
            continue;
        }
        hub_cache_repo *repo = mlxe_append((void **)&scan->repos, &scan->n_repos, sizeof *repo);
        if (!repo) {
            free(path);
            w.out_of_memory = true;
            break;
        }
        repo->path = path;
        repo->folder = strdup(name);
        if (!repo->folder) w.out_of_memory = true;
        if (!w.out_of_memory && !parse_folder_name(&w, name, repo)) {
            char text[512];
            snprintf(text, sizeof text, "%.300s: not a repo folder (expected models--org--name; ignored)", name);
            if (!mlxe_append_string(&scan->warnings, &scan->n_warnings, text)) w.out_of_memory = true;
            free_repo(repo);
            scan->n_repos--;
            continue;
        }
        if (!w.out_of_memory) scan_repo(&w, repo);
        scan->total_size += repo->size_on_disk;
        scan->n_partial_downloads += repo->n_partial_downloads;
        scan->partial_bytes += repo->partial_bytes;
    }
    closedir(dir);
    free(only_folder);
    if (w.out_of_memory || w.failure != MLXE_OK) {
        hub_cache_scan_free(scan);
        if (w.failure != MLXE_OK) return w.failure;
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cache scan: out of memory");
    }
    if (scan->n_repos) qsort(scan->repos, scan->n_repos, sizeof *scan->repos, compare_repos);
    MLXE_DEBUG(MLXE_LOG_CAT_HUB, "cache scan of %s: %zu repos, %llu bytes", scan->cache_dir,
               scan->n_repos, (unsigned long long)scan->total_size);
    *out = scan;
    return MLXE_OK;
}
