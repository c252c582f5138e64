/* hub/hub_hash.c — content identity of Hub files (HUB.md §2 step 7): sha256
 * of the content for LFS files (their X-Linked-Etag), git's blob sha1
 * (sha1("blob {size}\0" + content)) for regular files (their ETag), through
 * OpenSSL's EVP interface, fed incrementally while bytes arrive (from the
 * download's write callback, hub_fetch.c). */
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
