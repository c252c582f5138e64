/* bench/memory_bandwidth.c — this machine's memory read bandwidth, the
 * roofline for decode (each generated token reads every weight once).
 *
 *   bench_memory_bandwidth [--threads N] [--mb 512] [--passes 15]
 *
 * Reads only (no stores), as decode does: the threads, created once and
 * started together at a barrier for every pass, each read their contiguous
 * slice of a buffer far larger than the caches with 64-byte AVX-512 loads
 * (AVX2 or scalar where the processor lacks it) into 4 accumulators, one
 * stream per thread: several streams per thread or software prefetching
 * measured no faster on the 2-core Zen 4 VM, and scalar 8-byte loads
 * (this program's first method) reached ~20% less with one thread.
 *
 * Two buffers are read in alternation, pass after pass: one in 4 KiB pages
 * (what a model mapped from the page cache mostly gets) and one with
 * madvise(MADV_HUGEPAGE) (transparent 2 MiB pages, fewer TLB misses, when
 * the system grants them). The first line prints the larger of the two best
 * passes, the roofline; the next ones each buffer's best and median pass.
 * GB/s are 1e9 bytes/s. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "bench_clock.h"

#define MAX_THREADS 256
#define MAX_PASSES 64

typedef struct reader {
    pthread_t id;
    const uint8_t *data;
    size_t bytes;
    uint64_t sum;
} reader;

static pthread_barrier_t start_line, finish_line;
static reader readers[MAX_THREADS];
static long n_threads = 2;
static int stop = 0;
static int simd = 0; /* 2: AVX-512, 1: AVX2, 0: scalar */

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint8_t *p, size_t bytes) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= bytes; i += 256) {
        a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
        a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
        a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
        a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
    }
    return (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
}

__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t bytes) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 128 <= bytes; i += 128) {
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    return (uint64_t)_mm256_extract_epi64(s, 0) + (uint64_t)_mm256_extract_epi64(s, 1) +
           (uint64_t)_mm256_extract_epi64(s, 2) + (uint64_t)_mm256_extract_epi64(s, 3);
}
#endif

static uint64_t read_scalar(const uint8_t *p, size_t bytes) {
    const uint64_t *words = (const uint64_t *)p;
    uint64_t acc[4] = {0};
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4)
        for (int k = 0; k < 4; k++) acc[k] += words[i + k];
    return acc[0] + acc[1] + acc[2] + acc[3];
}

static void read_slice(reader *r) {
#if defined(__x86_64__)
    if (simd == 2) {
        r->sum += read_avx512(r->data, r->bytes);
        return;
    }
    if (simd == 1) {
        r->sum += read_avx2(r->data, r->bytes);
        return;
    }
#endif
    r->sum += read_scalar(r->data, r->bytes);
}

static void *worker(void *arg) {
    reader *r = arg;
    for (;;) {
        pthread_barrier_wait(&start_line);
        if (stop) return NULL;
        read_slice(r);
        pthread_barrier_wait(&finish_line);
    }
}

/* One read of data (bytes, split among the threads); GB/s. */
static double measure(const uint8_t *data, size_t bytes) {
    const size_t per_thread = bytes / (size_t)n_threads / 256 * 256;
    for (long t = 0; t < n_threads; t++) {
        readers[t].data = data + (size_t)t * per_thread;
        readers[t].bytes = per_thread;
    }
    double start = bench_now_seconds();
    pthread_barrier_wait(&start_line);
    read_slice(&readers[0]);
    pthread_barrier_wait(&finish_line);
    return (double)(per_thread * (size_t)n_threads) / (bench_now_seconds() - start) / 1e9;
}

int main(int argc, char **argv) {
    long mb = 512, passes = 15;
    for (int i = 1; i + 1 < argc; i += 2) {
        long *target = strcmp(argv[i], "--threads") == 0 ? &n_threads
                       : strcmp(argv[i], "--mb") == 0     ? &mb
                       : strcmp(argv[i], "--passes") == 0 ? &passes
                                                          : NULL;
        if (!target || (*target = strtol(argv[i + 1], NULL, 10)) <= 0) {
            fprintf(stderr, "usage: bench_memory_bandwidth [--threads N] [--mb MB] [--passes N]\n");
            return 2;
        }
    }
    if (n_threads > MAX_THREADS) n_threads = MAX_THREADS;
    if (passes > MAX_PASSES) passes = MAX_PASSES;
#if defined(__x86_64__)
    __builtin_cpu_init();
    simd = __builtin_cpu_supports("avx512f") ? 2 : __builtin_cpu_supports("avx2") ? 1 : 0;
#endif
    const size_t huge = (size_t)2 << 20, bytes = ((size_t)mb << 20) / huge * huge + huge;
    uint8_t *small_pages = aligned_alloc(huge, bytes), *huge_pages = aligned_alloc(huge, bytes);
    if (!small_pages || !huge_pages) {
        fprintf(stderr, "bench_memory_bandwidth: cannot allocate 2 x %ld MB\n", mb);
        return 1;
    }
    madvise(small_pages, bytes, MADV_NOHUGEPAGE);
    madvise(huge_pages, bytes, MADV_HUGEPAGE);
    for (size_t i = 0; i < bytes; i++) small_pages[i] = huge_pages[i] = (uint8_t)(i * 131u >> 3);
    pthread_barrier_init(&start_line, NULL, (unsigned)n_threads);
    pthread_barrier_init(&finish_line, NULL, (unsigned)n_threads);
    for (long t = 1; t < n_threads; t++) pthread_create(&readers[t].id, NULL, worker, &readers[t]);
    double small_rates[MAX_PASSES], huge_rates[MAX_PASSES];
    /* a warm-up read each, then the two buffers alternate pass by pass (the same neighbours for both) */
    measure(small_pages, bytes);
    measure(huge_pages, bytes);
    for (long p = 0; p < passes; p++) {
        small_rates[p] = measure(small_pages, bytes);
        huge_rates[p] = measure(huge_pages, bytes);
    }
    qsort(small_rates, (size_t)passes, sizeof(double), bench_compare_doubles);
    qsort(huge_rates, (size_t)passes, sizeof(double), bench_compare_doubles);
    stop = 1;
    pthread_barrier_wait(&start_line);
    uint64_t check = readers[0].sum;
    for (long t = 1; t < n_threads; t++) {
        pthread_join(readers[t].id, NULL);
        check += readers[t].sum;
    }
    const double best_small = small_rates[passes - 1], best_huge = huge_rates[passes - 1];
    const char *isa = simd == 2 ? "AVX-512" : simd == 1 ? "AVX2" : "scalar";
    printf("memory read bandwidth: %.2f GB/s (%ld threads, %ld MB, best of %ld passes, %s loads; checksum %llx)\n",
           best_huge > best_small ? best_huge : best_small, n_threads, mb, passes, isa,
           (unsigned long long)check);
    printf("  4 KiB pages: best %.2f, median %.2f GB/s\n", best_small, small_rates[passes / 2]);
    printf("  huge pages:  best %.2f, median %.2f GB/s\n", best_huge, huge_rates[passes / 2]);
    free(small_pages);
    free(huge_pages);
    return 0;
}
