/* tests/fixture_reference.h — reading the transformers reference fixtures
 * (tests/fixtures/models/NAME/reference.json and tests/fixtures/quant/):
 * walking the fixture folders and reading id lists. Shared by the model
 * tests on the CPU, on CUDA and with quantized weights. */
#ifndef MLXE_TEST_FIXTURE_REFERENCE_H
#define MLXE_TEST_FIXTURE_REFERENCE_H

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"

/* Calls fn(name) for each folder of root holding a reference.json, in name
 * order; returns how many there were. */
static inline int fixture_for_each_reference(const char *root, void (*fn)(const char *name)) {
    struct dirent **entries = NULL;
    int n = scandir(root, &entries, NULL, alphasort), count = 0;
    if (n < 0) fail_msg("cannot list %s", root);
    for (int i = 0; i < n; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s/reference.json", root, entries[i]->d_name);
        if (entries[i]->d_name[0] != '.' && access(path, R_OK) == 0) {
            fn(entries[i]->d_name);
            count++;
        }
        free(entries[i]);
    }
    free(entries);
    return count;
}

/* Copies a JSON list of token ids into out (at most max); returns the count. */
static inline int fixture_json_ids(const cJSON *array, int32_t *out, int max) {
    int n = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, array) {
        if (n >= max) fail_msg("id list too long");
        out[n++] = (int32_t)item->valuedouble;
    }
    return n;
}

#endif
