/* hub/hub_hash.c — content identity of Hub files (HUB.md §2 step 7): sha256
 * of the content for LFS files (their X-Linked-Etag), git's blob sha1
 * (sha1("blob {size}\0" + content)) for regular files (their ETag), through
 * OpenSSL's EVP interface, fed incrementally while bytes arrive. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

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
