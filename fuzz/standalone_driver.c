/* fuzz/standalone_driver.c — runs a libFuzzer-style target without
 * libFuzzer: random mutations (byte flips, inserts, deletions, cuts,
 * splices) of the target's seeds for a bounded time, so the fuzz targets
 * also run in ordinary (gcc, sanitizer) builds under CTest.
 * usage: fuzz_X_standalone [SECONDS] [RANDOM_SEED] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *mlxe_fuzz_seed(size_t index, size_t *size);

static uint64_t rng_state;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : 5.0;
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 0x9E3779B97F4A7C15ull;
    if (!rng_state) rng_state = 1;
    size_t n_seeds = 0, size;
    while (mlxe_fuzz_seed(n_seeds, &size)) n_seeds++;
    for (size_t i = 0; i < n_seeds; i++) {
        const char *seed = mlxe_fuzz_seed(i, &size);
        LLVMFuzzerTestOneInput((const uint8_t *)seed, size);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    size_t runs = 0, capacity = 1 << 16;
    uint8_t *buffer = malloc(capacity);
    if (!buffer) return 1;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > seconds) break;
        const char *seed = mlxe_fuzz_seed(next_random() % n_seeds, &size);
        if (size > capacity / 2) size = capacity / 2;
        memcpy(buffer, seed, size);
        int mutations = 1 + (int)(next_random() % 8);
        for (int m = 0; m < mutations; m++) {
            size_t at = size ? next_random() % size : 0;
            switch (next_random() % 6) {
            case 0: if (size) buffer[at] ^= (uint8_t)(1u << (next_random() % 8)); break;
            case 1: if (size) buffer[at] = (uint8_t)next_random(); break;
            case 2: if (size + 1 < capacity) { memmove(buffer + at + 1, buffer + at, size - at); buffer[at] = (uint8_t)next_random(); size++; } break;
            case 3: if (size) { memmove(buffer + at, buffer + at + 1, size - at - 1); size--; } break;
            case 4: size = at; break;
            case 5: { /* duplicate a chunk */
                size_t len = size ? 1 + next_random() % (size - at < 64 ? size - at : 64) : 0;
                if (len && size + len < capacity) { memmove(buffer + at + len, buffer + at, size - at); size += len; }
                break;
            }
            }
        }
        LLVMFuzzerTestOneInput(buffer, size);
        runs++;
    }
    free(buffer);
    printf("%zu runs in %.0f s without a failure\n", runs, seconds);
    return 0;
}
