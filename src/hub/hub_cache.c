/* hub/hub_cache.c — writing the cache exactly as huggingface_hub does
 * (HUB.md §3, file_download.py): refs written atomically, flock() locks in
 * .locks/ (what Python's filelock uses, so the two interoperate), relative
 * snapshot symlinks into blobs/, .no_exist markers, trees/{commit}.json,
 * CACHEDIR.TAG — and resolving a revision from the cache alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "hub/hub_cache_scan.h"
#include "hub/hub_internal.h"

char *hub_repo_folder(const char *cache_dir, const char *repo_id) {
    char *folder = hub_cache_repo_folder_name("model", repo_id);
    char *path = folder ? mlxe_path_join(cache_dir, folder) : NULL;
    free(folder);
    return path;
}

mlxe_status hub_mkdirs(const char *path, mlxe_error *err) {
    char *copy = strdup(path);
    if (!copy) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(copy, 0775) != 0 && errno != EEXIST) {
            int e = errno;
            int prefix = (int)(p - copy);
            free(copy);
            return mlxe_error_set(err, MLXE_ERR_IO, "cannot create folder %.*s: %s", prefix, path,
                                  strerror(e));
        }
        *p = '/';
    }
    mlxe_status s = MLXE_OK;
    if (mkdir(copy, 0775) != 0 && errno != EEXIST)
        s = mlxe_error_set(err, MLXE_ERR_IO, "cannot create folder %s: %s (check HF_HUB_CACHE and "
                           "its permissions)", path, strerror(errno));
    free(copy);
    return s;
}

mlxe_status hub_mkdirs_for_file(const char *file_path, mlxe_error *err) {
    const char *slash = strrchr(file_path, '/');
    if (!slash || slash == file_path) return MLXE_OK;
    char *dir = strndup(file_path, (size_t)(slash - file_path));
    if (!dir) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    mlxe_status s = hub_mkdirs(dir, err);
    free(dir);
    return s;
}

mlxe_status hub_write_atomic(const char *path, const char *content, size_t size, mlxe_error *err) {
    mlxe_status s = hub_mkdirs_for_file(path, err);
    if (s) return s;
    char *tmp = hub_printf("%s.tmp.%d", path, (int)getpid());
    if (!tmp) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0664);
    bool ok = fd >= 0 && write(fd, content, size) == (ssize_t)size;
    if (fd >= 0 && close(fd) != 0) ok = false;
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        int e = errno;
        unlink(tmp);
        free(tmp);
        return mlxe_error_set(err, MLXE_ERR_IO, "cannot write %s: %s (disk full or read-only cache?)",
                              path, strerror(e));
    }
    free(tmp);
    return MLXE_OK;
}

char *hub_read_ref(const char *repo_folder, const char *revision) {
    if (!hub_relative_path_safe(revision)) return NULL;
    char *path = hub_printf("%s/refs/%s", repo_folder, revision);
    char *content = NULL;
    size_t size = 0;
    if (!path || !mlxe_file_exists(path) ||
        mlxe_file_read_all(path, 256, &content, &size, NULL) != MLXE_OK) {
        free(path);
        return NULL;
    }
    free(path);
    while (size && (content[size - 1] == '\n' || content[size - 1] == ' ')) content[--size] = 0;
    if (!hub_is_commit_hash(content)) {
        free(content);
        return NULL;
    }
    return content;
}

mlxe_status hub_write_ref(const char *repo_folder, const char *revision, const char *commit,
                          mlxe_error *err) {
    if (strcmp(revision, commit) == 0) return MLXE_OK;
    if (!hub_relative_path_safe(revision))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "revision '%s' is not a safe ref name",
                              revision);
    char *old = hub_read_ref(repo_folder, revision);
    bool same = old && strcmp(old, commit) == 0;
    free(old);
    if (same) return MLXE_OK;
    char *path = hub_printf("%s/refs/%s", repo_folder, revision);
    if (!path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    mlxe_status s = hub_write_atomic(path, commit, strlen(commit), err);
    free(path);
    return s;
}

void hub_write_cachedir_tag(const char *cache_dir) {
    char *path = mlxe_path_join(cache_dir, "CACHEDIR.TAG");
    if (path && !mlxe_file_exists(path)) {
        /* The tag of https://bford.info/cachedir/, as huggingface_hub writes it. */
        static const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
                                  "# This file is a cache directory tag created by huggingface_hub.\n"
                                  "# For information about cache directory tags, see:\n"
                                  "#\thttps://bford.info/cachedir/\n";
        if (hub_mkdirs(cache_dir, NULL) == MLXE_OK)
            (void)hub_write_atomic(path, tag, sizeof tag - 1, NULL);
    }
    free(path);
}

int hub_lock_blob(const char *cache_dir, const char *repo_id, const char *etag, bool nonblocking,
                  mlxe_error *err) {
    char *folder = hub_cache_repo_folder_name("model", repo_id);
    char *path = folder ? hub_printf("%s/.locks/%s/%s.lock", cache_dir, folder, etag) : NULL;
    free(folder);
    if (!path) {
        mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
        return -1;
    }
    if (hub_mkdirs_for_file(path, err) != MLXE_OK) {
        free(path);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (fd < 0) {
        mlxe_error_set(err, MLXE_ERR_IO, "cannot open lock file %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    fchmod(fd, 0664); /* filelock sets 0o664 whatever the umask */
    if (flock(fd, LOCK_EX | (nonblocking ? LOCK_NB : 0)) != 0) {
        int e = errno;
        close(fd);
        if (nonblocking && e == EWOULDBLOCK) {
            free(path);
            return -2;
        }
        mlxe_error_set(err, MLXE_ERR_IO, "cannot lock %s: %s", path, strerror(e));
        free(path);
        return -1;
    }
    free(path);
    return fd;
}

void hub_unlock_blob(int fd) {
    if (fd < 0) return;
    flock(fd, LOCK_UN);
    close(fd);
}

/* Copies src to dst (a new file). */
static bool copy_file(const char *src, const char *dst) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = in >= 0 ? open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666) : -1;
    struct stat st;
    bool ok = out >= 0 && fstat(in, &st) == 0;
    off_t left = ok ? st.st_size : 0;
    while (ok && left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n <= 0) ok = false;
        else left -= n;
    }
    if (out >= 0 && close(out) != 0) ok = false;
    if (in >= 0) close(in);
    return ok;
}

mlxe_status hub_link_snapshot(const char *repo_folder, const char *commit, const char *path,
                              const char *etag, bool copy, mlxe_error *err) {
    if (!hub_relative_path_safe(path))
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "refusing file name '%s' from the Hub: it leaves the snapshot folder", path);
    char *link_path = hub_printf("%s/snapshots/%s/%s", repo_folder, commit, path);
    if (!link_path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    mlxe_status s = hub_mkdirs_for_file(link_path, err);
    /* ../../blobs/etag from snapshots/{commit}/, one more ../ per subfolder. */
    size_t depth = 0;
    for (const char *p = path; *p; p++) depth += *p == '/';
    size_t target_size = (depth + 2) * 3 + strlen("blobs/") + strlen(etag) + 1;
    char *target = malloc(target_size);
    char *tmp = hub_printf("%s.tmp.%d", link_path, (int)getpid());
    if (s == MLXE_OK && (!target || !tmp)) s = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    if (s == MLXE_OK) {
        target[0] = 0;
        for (size_t i = 0; i < depth + 2; i++) strcat(target, "../");
        strcat(target, "blobs/");
        strcat(target, etag);
        unlink(tmp);
        bool made;
        if (copy) {
            char *blob = hub_printf("%s/blobs/%s", repo_folder, etag);
            made = blob && copy_file(blob, tmp);
            free(blob);
        } else {
            made = symlink(target, tmp) == 0;
        }
        if (!made || rename(tmp, link_path) != 0) {
            int e = errno;
            unlink(tmp);
            s = mlxe_error_set(err, MLXE_ERR_IO, "cannot link %s -> %s: %s", link_path, target,
                               strerror(e));
        }
    }
    free(target);
    free(tmp);
    free(link_path);
    return s;
}

void hub_mark_no_exist(const char *repo_folder, const char *commit, const char *path) {
    if (!hub_relative_path_safe(path)) return;
    char *marker = hub_printf("%s/.no_exist/%s/%s", repo_folder, commit, path);
    if (marker && hub_mkdirs_for_file(marker, NULL) == MLXE_OK) {
        int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0664);
        if (fd >= 0) close(fd);
    }
    free(marker);
}

const char *hub_file_etag(const mlxe_hub_file *file) {
    return file->lfs_sha256 ? file->lfs_sha256 : file->blob_id;
}

mlxe_status hub_write_tree(const char *repo_folder, const char *commit,
                           const mlxe_hub_file_list *list, mlxe_error *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON *files = cJSON_CreateObject();
    if (!root || !files) {
        cJSON_Delete(root);
        cJSON_Delete(files);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    cJSON_AddNumberToObject(root, "format_version", 1);
    cJSON_AddItemToObject(root, "files", files);
    for (size_t i = 0; i < list->n_files; i++) {
        const mlxe_hub_file *f = &list->files[i];
        cJSON *e = cJSON_AddObjectToObject(files, f->path);
        if (!e) continue;
        cJSON_AddNumberToObject(e, "size", (double)f->size);
        cJSON_AddStringToObject(e, "blob_id", f->blob_id ? f->blob_id : "");
        if (f->lfs_sha256) {
            cJSON_AddStringToObject(e, "lfs_sha256", f->lfs_sha256);
            cJSON_AddNumberToObject(e, "lfs_size", (double)f->size);
        }
    }
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    char *path = hub_printf("%s/trees/%s.json", repo_folder, commit);
    mlxe_status s = path ? hub_write_atomic(path, text, strlen(text), err)
                         : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    free(path);
    free(text);
    return s;
}

mlxe_hub_file_list *hub_read_tree(const char *repo_folder, const char *commit) {
    char *path = hub_printf("%s/trees/%s.json", repo_folder, commit);
    cJSON *root = NULL;
    if (!path || !mlxe_file_exists(path) ||
        mlxe_json_parse_file(path, (size_t)64 << 20, &root, NULL) != MLXE_OK) {
        free(path);
        return NULL;
    }
    free(path);
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(root, "files");
    mlxe_hub_file_list *list = calloc(1, sizeof *list);
    if (!list || !cJSON_IsObject(files)) {
        free(list);
        cJSON_Delete(root);
        return NULL;
    }
    list->files = calloc((size_t)cJSON_GetArraySize(files) + 1, sizeof *list->files);
    const cJSON *e;
    cJSON_ArrayForEach(e, files) {
        if (!list->files) break;
        const cJSON *size = cJSON_GetObjectItemCaseSensitive(e, "size");
        const cJSON *blob = cJSON_GetObjectItemCaseSensitive(e, "blob_id");
        const cJSON *lfs = cJSON_GetObjectItemCaseSensitive(e, "lfs_sha256");
        if (!e->string || !cJSON_IsNumber(size) || !cJSON_IsString(blob)) continue;
        mlxe_hub_file *f = &list->files[list->n_files++];
        f->path = strdup(e->string);
        f->size = (int64_t)size->valuedouble;
        f->blob_id = strdup(blob->valuestring);
        f->lfs_sha256 = cJSON_IsString(lfs) ? strdup(lfs->valuestring) : NULL;
    }
    cJSON_Delete(root);
    if (!list->files) {
        free(list);
        return NULL;
    }
    return list;
}

mlxe_status mlxe_hub_cache_resolve(const mlxe_hub *hub, const char *repo_id, const char *revision,
                                   char **snapshot_dir, mlxe_error *err) {
    if (!hub || !snapshot_dir)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_hub_cache_resolve: NULL argument");
    *snapshot_dir = NULL;
    if (!hub_repo_id_valid(repo_id))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "'%s' is not a Hub model id (org/name)",
                              repo_id ? repo_id : "(null)");
    const char *rev = revision ? revision : "main";
    char *folder = hub_repo_folder(hub->cache_dir, repo_id);
    if (!folder) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    char *commit = hub_is_commit_hash(rev) ? strdup(rev) : hub_read_ref(folder, rev);
    char *snap = commit ? hub_printf("%s/snapshots/%s", folder, commit) : NULL;
    mlxe_status s = MLXE_OK;
    if (!snap || !mlxe_dir_exists(snap)) {
        s = mlxe_error_set(err, MLXE_ERR_NOT_FOUND,
                           "model '%s' at revision '%s' is not in the cache %s%s; download it first "
                           "with 'mlxengine pull %s'%s",
                           repo_id, rev, hub->cache_dir,
                           hub->offline ? " and offline mode (HF_HUB_OFFLINE) forbids fetching it" : "",
                           repo_id, hub->offline ? " without HF_HUB_OFFLINE" : "");
        free(snap);
        snap = NULL;
    }
    free(commit);
    free(folder);
    *snapshot_dir = snap;
    return s;
}
