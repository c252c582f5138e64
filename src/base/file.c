/* base/file.c — mmap and whole-file reads. */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"

#define HUGE_PAGE_BYTES ((size_t)2 << 20)

/* The file's bytes copied into anonymous memory aligned to 2 MiB and marked
 * for transparent huge pages; MAP_FAILED if any step fails (the caller then
 * maps the file). */
static void *copy_to_huge_pages(int fd, size_t size, size_t *mapped_size) {
    size_t length = (size + HUGE_PAGE_BYTES - 1) / HUGE_PAGE_BYTES * HUGE_PAGE_BYTES;
    unsigned char *raw = mmap(NULL, length + HUGE_PAGE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return MAP_FAILED;
    unsigned char *start = (unsigned char *)(((uintptr_t)raw + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1));
    if (start > raw) munmap(raw, (size_t)(start - raw));
    munmap(start + length, (size_t)(raw + HUGE_PAGE_BYTES - start));
    madvise(start, length, MADV_HUGEPAGE);
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, start + done, size - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            munmap(start, length);
            return MAP_FAILED;
        }
        done += (size_t)n;
    }
    mprotect(start, length, PROT_READ);
    *mapped_size = length;
    return start;
}

static mlxe_status map_file(const char *path, bool in_memory, mlxe_mapped_file *out, mlxe_error *err) {
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
    void *data = MAP_FAILED;
    if (in_memory) data = copy_to_huge_pages(fd, (size_t)st.st_size, &out->mapped_size);
    if (data == MAP_FAILED) {
        /* not asked, or no anonymous memory for it: the file mapping serves the same bytes */
        data = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        out->mapped_size = 0;
    }
    int e = errno;
    close(fd);
    if (data == MAP_FAILED)
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot map %lld bytes: %s", path,
                              (long long)st.st_size, strerror(e));
    out->data = data;
    out->size = (size_t)st.st_size;
    return MLXE_OK;
}

mlxe_status mlxe_file_map(const char *path, mlxe_mapped_file *out, mlxe_error *err) {
    return map_file(path, false, out, err);
}

mlxe_status mlxe_file_map_in_memory(const char *path, mlxe_mapped_file *out, mlxe_error *err) {
    return map_file(path, true, out, err);
}

void mlxe_file_unmap(mlxe_mapped_file *file) {
    if (file->data) munmap((void *)file->data, file->mapped_size ? file->mapped_size : file->size);
    file->data = NULL;
    file->size = 0;
    file->mapped_size = 0;
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

void mlxe_release_pages(const void *start, size_t bytes) {
    if (!start || !bytes) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), begin = (uintptr_t)start;
    const uintptr_t first = (begin + page - 1) / page * page, end = (begin + bytes) / page * page;
    if (end > first) (void)madvise((void *)first, end - first, MADV_DONTNEED);
}
