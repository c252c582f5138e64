/* base/file.c — mmap and whole-file reads. */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

mlxe_status mlxe_file_map(const char *path, mlxe_mapped_file *out, mlxe_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mlxe_error_set(err, errno == ENOENT ? MLXE_ERR_NOT_FOUND : MLXE_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return MLXE_OK;
    }
    void *data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (data == MAP_FAILED)
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot map %lld bytes: %s", path,
                              (long long)st.st_size, strerror(e));
    out->data = data;
    out->size = (size_t)st.st_size;
    return MLXE_OK;
}

void mlxe_file_unmap(mlxe_mapped_file *file) {
    if (file->data) munmap((void *)file->data, file->size);
    file->data = NULL;
    file->size = 0;
}

mlxe_status mlxe_file_read_all(const char *path, size_t max_size, char **out, size_t *size,
                               mlxe_error *err) {
    *out = NULL;
    if (size) *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mlxe_error_set(err, errno == ENOENT ? MLXE_ERR_NOT_FOUND : MLXE_ERR_IO,
                              "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: not a readable regular file", path);
    }
    if ((unsigned long long)st.st_size > max_size) {
        close(fd);
        return mlxe_error_set(err, MLXE_ERR_LIMIT, "%s: %lld bytes is more than the %zu allowed",
                              path, (long long)st.st_size, max_size);
    }
    size_t capacity = (size_t)st.st_size;
    char *buffer = malloc(capacity + 1);
    if (!buffer) {
        close(fd);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory reading %zu bytes",
                              path, capacity);
    }
    size_t total = 0;
    while (total < capacity) {
        ssize_t n = read(fd, buffer + total, capacity - total);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            free(buffer);
            close(fd);
            return mlxe_error_set(err, MLXE_ERR_IO, "%s: read failed: %s", path, strerror(e));
        }
        if (n == 0) break;
        total += (size_t)n;
    }
    close(fd);
    buffer[total] = '\0';
    *out = buffer;
    if (size) *size = total;
    return MLXE_OK;
}

bool mlxe_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

bool mlxe_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *mlxe_path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    bool slash = a > 0 && dir[a - 1] != '/';
    char *path = malloc(a + b + 2);
    if (!path) return NULL;
    memcpy(path, dir, a);
    if (slash) path[a++] = '/';
    memcpy(path + a, name, b + 1);
    return path;
}
