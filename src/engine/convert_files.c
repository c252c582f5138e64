/* engine/convert_files.c — the converter's folder chores: the temporary
 * output folder, publishing it under the final name, copying the tokenizer,
 * template and generation files, and cleaning up after a failure. */
#include "engine/convert_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The tokenizer, template and generation files: what mlx-lm's save()
 * writes or copies (tokenizer.save_pretrained, generation_config.json, *.py)
 * and its download patterns for tokenizers (tokenizer.model, *.tiktoken,
 * vocab/merges), not other JSON files (training state, evaluation...). */
static bool is_side_file(const char *name) {
    static const char *const prefixes[] = {"tokenizer", "special_tokens_map", "added_tokens", "chat_template",
                                           "vocab.", "merges.", "generation_config.json", "preprocessor_config.json",
                                           NULL};
    if (name[0] == '.') return false;
    for (int i = 0; prefixes[i]; i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    return has_suffix(name, ".jinja") || has_suffix(name, ".tiktoken") || has_suffix(name, ".py") ||
           (has_suffix(name, ".model") && strstr(name, "token") != NULL);
}

static mlxe_status copy_file(const char *from, const char *to, mlxe_error *err) {
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot open: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0) {
        close(in);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot create: %s", to, strerror(errno));
    }
    char buffer[1 << 16];
    mlxe_status st = MLXE_OK;
    for (;;) {
        ssize_t n = read(in, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            st = mlxe_error_set(err, MLXE_ERR_IO, "%s: read failed: %s", from, strerror(errno));
            break;
        }
        for (ssize_t done = 0; done < n && st == MLXE_OK;) {
            ssize_t w = write(out, buffer + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) st = mlxe_error_set(err, MLXE_ERR_IO, "%s: write failed: %s", to, strerror(errno));
            else done += w;
        }
        if (st != MLXE_OK) break;
    }
    close(in);
    if (close(out) != 0 && st == MLXE_OK)
        st = mlxe_error_set(err, MLXE_ERR_IO, "%s: close failed: %s", to, strerror(errno));
    return st;
}

mlxe_status convert_copy_side_files(const char *src, const char *dst, mlxe_error *err) {
    DIR *dir = opendir(src);
    if (!dir) return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot list: %s", src, strerror(errno));
    mlxe_status st = MLXE_OK;
    struct dirent *entry;
    while (st == MLXE_OK && (entry = readdir(dir)) != NULL) {
        if (!is_side_file(entry->d_name)) continue;
        char *from = mlxe_path_join(src, entry->d_name), *to = mlxe_path_join(dst, entry->d_name);
        struct stat info;
        if (!from || !to) st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
        else if (stat(from, &info) == 0 && S_ISREG(info.st_mode)) st = copy_file(from, to, err);
        free(from);
        free(to);
    }
    closedir(dir);
    return st;
}

mlxe_status convert_make_temp_dir(const char *dst, char **out, mlxe_error *err) {
    *out = NULL;
    size_t len = strlen(dst);
    while (len > 1 && dst[len - 1] == '/') len--;
    char *path = malloc(len + sizeof ".partial-XXXXXX");
    if (!path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(path, dst, len);
    memcpy(path + len, ".partial-XXXXXX", sizeof ".partial-XXXXXX");
    if (!mkdtemp(path)) {
        mlxe_status st = mlxe_error_set(err, MLXE_ERR_IO, "cannot create a folder next to %s: %s (does its parent "
                                                          "folder exist and is it writable?)",
                                        dst, strerror(errno));
        free(path);
        return st;
    }
    chmod(path, 0755); /* mkdtemp makes it private; a model folder is not */
    *out = path;
    return MLXE_OK;
}

void convert_remove_dir(const char *path) {
    DIR *dir = opendir(path);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
            unlinkat(dirfd(dir), entry->d_name, 0);
        }
        closedir(dir);
    }
    rmdir(path);
}

mlxe_status convert_publish(const char *tmp, const char *dst, mlxe_error *err) {
    /* RENAME_NOREPLACE: never replace a folder that appeared meanwhile
     * (a plain rename would replace an empty one). */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0) return MLXE_OK;
    return mlxe_error_set(err, MLXE_ERR_IO, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
}
