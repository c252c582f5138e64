/* tests/test_util.h — helpers shared by the cmocka unit tests. */
#ifndef MLXE_TEST_UTIL_H
#define MLXE_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fails the test unless err's message contains needle. */
#define assert_message_contains(message, needle)                                   \
    do {                                                                           \
        if (!strstr((message), (needle)))                                          \
            fail_msg("error message \"%s\" does not mention \"%s\"", (message), (needle)); \
    } while (0)

/* A fresh temporary directory (mkdtemp) whose path is written into buf. */
static inline void test_make_temp_dir(char *buf, size_t size) {
    snprintf(buf, size, "/tmp/mlxe-test-XXXXXX");
    if (!mkdtemp(buf)) fail_msg("mkdtemp failed");
}

static inline void test_write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    if (size && fwrite(data, 1, size, f) != size) fail_msg("short write to %s", path);
    fclose(f);
}

#endif
