/* fuzz/fuzz_seeds.h — libFuzzer start-up shared by the fuzz targets: with
 * MLXE_FUZZ_SEED_DIR set, the target's built-in seeds (its mlxe_fuzz_seed)
 * are written there first, so scripts/fuzz_*.sh start from them. Each
 * target includes this once; standalone_driver.c reads the same seeds. */
#ifndef MLXE_FUZZ_SEEDS_H
#define MLXE_FUZZ_SEEDS_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
const char *mlxe_fuzz_seed(size_t index, size_t *size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("MLXE_FUZZ_SEED_DIR");
    size_t size;
    for (size_t i = 0; dir && mlxe_fuzz_seed(i, &size); i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%zu", dir, i);
        FILE *f = fopen(path, "wb");
        if (!f) break;
        fwrite(mlxe_fuzz_seed(i, &size), 1, size, f);
        fclose(f);
    }
    return 0;
}

#endif
