/* diag/cache_verify.c — checks a cached blob's content against its name.
 *
 * In huggingface_hub's cache a blob is named by the file's ETag: for a
 * regular git file that is its git blob id, sha1("blob <size>\0" + bytes);
 * for an LFS (or Xet) file the X-Linked-Etag, the sha256 of its bytes
 * (shared/docs/HUB.md §2.7). So a blob can be verified with no network. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "diag/cache_scan.h"

#define READ_CHUNK (1u << 20)

static bool is_lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

mlxe_status mlxe_cache_blob_verify(const char *path, const char *blob_name, bool *known,
                                   bool *matches, mlxe_cancel *cancel, mlxe_error *err) {
    *known = false;
    *matches = false;
    const EVP_MD *md = NULL;
    bool git_blob = false;
    if (is_lower_hex(blob_name, 40)) {
        md = EVP_sha1();
        git_blob = true;
    } else if (is_lower_hex(blob_name, 64)) {
        md = EVP_sha256();
    } else {
        return MLXE_OK;
    }
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
    unsigned char *buffer = malloc(READ_CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    mlxe_status status = MLXE_OK;
    if (!buffer || !ctx || EVP_DigestInit_ex(ctx, md, NULL) != 1) {
        status = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: cannot start hashing", path);
        goto done;
    }
    if (git_blob) {
        char header[64];
        int n = snprintf(header, sizeof header, "blob %lld", (long long)st.st_size);
        EVP_DigestUpdate(ctx, header, (size_t)n + 1); /* the NUL is part of the header */
    }
    for (;;) {
        if (mlxe_cancel_is_requested(cancel)) {
            status = mlxe_error_set(err, MLXE_ERR_CANCELLED, "%s: verification cancelled", path);
            goto done;
        }
        ssize_t got = read(fd, buffer, READ_CHUNK);
        if (got < 0) {
            if (errno == EINTR) continue;
            status = mlxe_error_set(err, MLXE_ERR_IO, "%s: read failed: %s", path, strerror(errno));
            goto done;
        }
        if (got == 0) break;
        EVP_DigestUpdate(ctx, buffer, (size_t)got);
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    EVP_DigestFinal_ex(ctx, digest, &digest_len);
    char hex[2 * EVP_MAX_MD_SIZE + 1];
    for (unsigned int i = 0; i < digest_len; i++) snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    *known = true;
    *matches = strcmp(hex, blob_name) == 0;
done:
    EVP_MD_CTX_free(ctx);
    free(buffer);
    close(fd);
    return status;
}
