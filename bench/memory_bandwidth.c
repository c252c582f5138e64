/* bench/memory_bandwidth.c — this machine's memory read bandwidth, the
 * roofline for decode (each generated token reads every weight once).
 *
 *   bench_memory_bandwidth [--threads N] [--mb 512] [--passes 5]
 *
 * Each thread sums its slice of a buffer far larger than the caches with
 * 8 independent 64-bit accumulators; prints the best pass in GB/s (1e9). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct slice {
    const uint64_t *data;
    size_t count;
    uint64_t sum;
} slice;

static void *read_slice(void *arg) {
    slice *s = arg;
    uint64_t acc[8] = {0};
    size_t i = 0;
    for (; i + 8 <= s->count; i += 8)
        for (int k = 0; k < 8; k++) acc[k] += s->data[i + k];
    for (; i < s->count; i++) acc[0] += s->data[i];
    s->sum = acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    long threads = 2, mb = 512, passes = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        long *target = strcmp(argv[i], "--threads") == 0 ? &threads
                       : strcmp(argv[i], "--mb") == 0   ? &mb
                       : strcmp(argv[i], "--passes") == 0 ? &passes
                                                          : NULL;
        if (!target || (*target = strtol(argv[i + 1], NULL, 10)) <= 0) {
            fprintf(stderr, "usage: bench_memory_bandwidth [--threads N] [--mb MB] [--passes N]\n");
            return 2;
        }
    }
    if (threads > 256) threads = 256;
    size_t count = (size_t)mb * 1024 * 1024 / sizeof(uint64_t);
    uint64_t *data = malloc(count * sizeof *data);
    if (!data) {
        fprintf(stderr, "bench_memory_bandwidth: cannot allocate %ld MB\n", mb);
        return 1;
    }
    for (size_t i = 0; i < count; i++) data[i] = i;
    double best = 0;
    uint64_t check = 0;
    for (long p = 0; p < passes; p++) {
        pthread_t ids[256];
        slice slices[256];
        double start = now();
        for (long t = 0; t < threads; t++) {
            size_t begin = count * (size_t)t / (size_t)threads, end = count * (size_t)(t + 1) / (size_t)threads;
            slices[t] = (slice){data + begin, end - begin, 0};
            pthread_create(&ids[t], NULL, read_slice, &slices[t]);
        }
        for (long t = 0; t < threads; t++) {
            pthread_join(ids[t], NULL);
            check += slices[t].sum;
        }
        double rate = (double)(count * sizeof *data) / (now() - start) / 1e9;
        if (rate > best) best = rate;
    }
    printf("memory read bandwidth: %.2f GB/s (%ld threads, %ld MB, best of %ld; checksum %llu)\n", best, threads, mb,
           passes, (unsigned long long)(check & 0xffff));
    free(data);
    return 0;
}
