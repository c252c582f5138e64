/* hub/hub_hash.c — content identity of Hub files (HUB.md §2 step 7): sha256
 * of the content for LFS files (their X-Linked-Etag), git's blob sha1
 * (sha1("blob {size}\0" + content)) for regular files (their ETag), through
 * OpenSSL's EVP interface, fed incrementally while bytes arrive. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "hub/hub_cache_scan.h"
#include "hub/hub_internal.h"

struct hub_hasher {
    EVP_MD_CTX *context;
    bool lfs;
    uint64_t size;
};

void hub_hasher_reset(hub_hasher *h) {
    EVP_DigestInit_ex(h->context, h->lfs ? EVP_sha256() : EVP_sha1(), NULL);
    if (!h->lfs) {
        char prefix[48];
        int n = snprintf(prefix, sizeof prefix, "blob %llu", (unsigned long long)h->size);
        EVP_DigestUpdate(h->context, prefix, (size_t)n + 1); /* the NUL is part of the header */
    }
}

hub_hasher *hub_hasher_create(bool lfs, uint64_t size) {
    hub_hasher *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->context = EVP_MD_CTX_new();
    if (!h->context) {
        free(h);
        return NULL;
    }
    h->lfs = lfs;
    h->size = size;
    hub_hasher_reset(h);
    return h;
}

void hub_hasher_update(hub_hasher *h, const void *data, size_t size) {
    EVP_DigestUpdate(h->context, data, size);
}

void hub_hasher_final(hub_hasher *h, char hex[65]) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(h->context, digest, &n);
    for (unsigned int i = 0; i < n && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    hex[2 * (n < 32 ? n : 32)] = 0;
}

void hub_hasher_free(hub_hasher *h) {
    if (!h) return;
    EVP_MD_CTX_free(h->context);
    free(h);
}

bool hub_hasher_update_file(hub_hasher *h, const char *path, uint64_t size) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    static const size_t chunk = 1 << 20;
    unsigned char *buffer = malloc(chunk);
    uint64_t left = size;
    while (buffer && left > 0) {
        size_t want = left < chunk ? (size_t)left : chunk;
        size_t got = fread(buffer, 1, want, f);
        if (got == 0) break;
        hub_hasher_update(h, buffer, got);
        left -= got;
    }
    free(buffer);
    fclose(f);
    return left == 0;
}

/* ---- checking a cached blob against its name ----
 * A blob is named by its file's ETag: the git blob id for a regular file,
 * the sha256 for an LFS (or Xet) file (HUB.md §2.7), so a cached blob is
 * verified with no request. */

static bool is_lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

mlxe_status hub_cache_blob_verify(const char *path, const char *blob_name, bool *known, bool *matches,
                                  mlxe_cancel *cancel, mlxe_error *err) {
    *known = false;
    *matches = false;
    bool lfs = is_lower_hex(blob_name, 64);
    if (!lfs && !is_lower_hex(blob_name, 40)) return MLXE_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mlxe_error_set(err, errno == ENOENT ? MLXE_ERR_NOT_FOUND : MLXE_ERR_IO,
                              "%s: cannot open to verify: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    static const size_t chunk = 1 << 20;
    unsigned char *buffer = malloc(chunk);
    hub_hasher *hasher = hub_hasher_create(lfs, (uint64_t)st.st_size);
    mlxe_status status = MLXE_OK;
    if (!buffer || !hasher) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: cannot start hashing", path);
        goto done;
    }
    for (;;) {
        if (mlxe_cancel_is_requested(cancel)) {
            status = mlxe_error_set(err, MLXE_ERR_CANCELLED, "%s: verification cancelled", path);
            goto done;
        }
        ssize_t got = read(fd, buffer, chunk);
        if (got < 0) {
            if (errno == EINTR) continue;
            status = mlxe_error_set(err, MLXE_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        hub_hasher_update(hasher, buffer, (size_t)got);
    }
    char hex[65];
    hub_hasher_final(hasher, hex);
    *known = true;
    *matches = strcmp(hex, blob_name) == 0;
done:
    hub_hasher_free(hasher);
    free(buffer);
    close(fd);
    return status;
}

/* ---- hashing on a second thread, following a file as it is written ----
 * The download thread only writes; this thread reads the new bytes back
 * (from the page cache) and hashes them, so verification costs no wall time
 * on a machine with a spare core. */
#include <pthread.h>
#include <sys/mman.h>

struct hub_hash_follower {
    hub_hasher *hasher;
    int fd;
    const unsigned char *map; /* the file's final extent mapped read-only, or NULL: pread */
    size_t map_size;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t available; /* bytes the writer has written */
    uint64_t hashed;
    bool finishing;
    bool stop;
    bool failed;
};

static void *follow(void *arg) {
    hub_hash_follower *f = arg;
    const size_t chunk = 1 << 20;
    unsigned char *buffer = f->map ? NULL : malloc(chunk);
    if (!f->map && !buffer) f->failed = true;
    pthread_mutex_lock(&f->lock);
    while (!f->failed && !f->stop) {
        if (f->hashed == f->available) {
            if (f->finishing) break;
            pthread_cond_wait(&f->changed, &f->lock);
            continue;
        }
        uint64_t want = f->available - f->hashed;
        size_t n = want < chunk ? (size_t)want : chunk;
        uint64_t at = f->hashed;
        pthread_mutex_unlock(&f->lock);
        ssize_t got;
        if (f->map) { /* only bytes below `available`, already written, are touched */
            hub_hasher_update(f->hasher, f->map + at, n);
            got = (ssize_t)n;
        } else {
            got = pread(f->fd, buffer, n, (off_t)at);
            if (got > 0) hub_hasher_update(f->hasher, buffer, (size_t)got);
        }
        pthread_mutex_lock(&f->lock);
        if (got <= 0) f->failed = true;
        else f->hashed += (uint64_t)got;
        pthread_cond_broadcast(&f->changed);
    }
    pthread_mutex_unlock(&f->lock);
    free(buffer);
    return NULL;
}

hub_hash_follower *hub_hash_follower_start(hub_hasher *hasher, const char *path, uint64_t available,
                                           uint64_t final_size) {
    hub_hash_follower *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->hasher = hasher;
    f->available = available;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        free(f);
        return NULL;
    }
    /* Mapping the final size up front is allowed past the current end of
     * file; reading there would fault, and the follower never does. */
    if (final_size > 0 && final_size <= SIZE_MAX) {
        void *map = mmap(NULL, (size_t)final_size, PROT_READ, MAP_SHARED, f->fd, 0);
        if (map != MAP_FAILED) {
            f->map = map;
            f->map_size = (size_t)final_size;
            madvise(map, f->map_size, MADV_SEQUENTIAL);
        }
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->changed, NULL);
    if (pthread_create(&f->thread, NULL, follow, f) != 0) {
        if (f->map) munmap((void *)f->map, f->map_size);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->changed);
        close(f->fd);
        free(f);
        return NULL;
    }
    return f;
}

void hub_hash_follower_advance(hub_hash_follower *f, uint64_t available) {
    pthread_mutex_lock(&f->lock);
    f->available = available;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
}

static bool follower_end(hub_hash_follower *f, bool stop) {
    if (!f) return false;
    pthread_mutex_lock(&f->lock);
    if (stop) f->stop = true;
    f->finishing = true;
    pthread_cond_broadcast(&f->changed);
    pthread_mutex_unlock(&f->lock);
    pthread_join(f->thread, NULL);
    bool ok = !f->failed && f->hashed == f->available;
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->changed);
    if (f->map) munmap((void *)f->map, f->map_size);
    close(f->fd);
    free(f);
    return ok;
}

bool hub_hash_follower_finish(hub_hash_follower *f) { return follower_end(f, false); }

void hub_hash_follower_abort(hub_hash_follower *f) { (void)follower_end(f, true); }
