/* tests/unit/format_test_helpers.h — small helpers shared by the format
 * tests: raw safetensors files and folder clean-up. */
#ifndef MLXE_TESTS_FORMAT_TEST_HELPERS_H
#define MLXE_TESTS_FORMAT_TEST_HELPERS_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st; (void)flag; (void)ftw;
    return remove(path);
}

/* rm -rf path */
static inline void remove_tree(const char *path) {
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes dir/name as: 8-byte little-endian header_len, header bytes (not
 * NUL-terminated in the file), then data_size bytes of pattern. The length
 * field is header_len unless length_override is non-zero. */
static inline void write_raw_safetensors(const char *path, const char *header, uint64_t length_override,
                                         size_t data_size) {
    size_t header_len = strlen(header);
    uint64_t length = length_override ? length_override : header_len;
    size_t total = 8 + header_len + data_size;
    unsigned char *bytes = malloc(total ? total : 1);
    if (!bytes) fail_msg("out of memory");
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(length >> (8 * i));
    memcpy(bytes + 8, header, header_len);
    for (size_t i = 0; i < data_size; i++) bytes[8 + header_len + i] = (unsigned char)(i * 7 + 1);
    test_write_file(path, bytes, total);
    free(bytes);
}

static inline char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) fail_msg("out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

#endif
