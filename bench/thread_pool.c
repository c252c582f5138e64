/* bench/thread_pool.c — the cost of one fork/join of the CPU thread pool
 * (base/thread_pool.c), which a decode step pays ~200 times per token: back
 * to back runs of an empty job and of a job of 5 us per share, with and
 * without 5 us of serial work between runs (as between two ops). Prints min and median microseconds per run over --runs runs.
 *
 *   bench_thread_pool [--threads N] [--runs N]
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/thread_pool.h"
#include "bench_clock.h"

static void empty_job(void *ctx, int index, int count) {
    (void)ctx;
    (void)index;
    (void)count;
}

/* About 5 us of work per share: a run ideally takes 5 us, 5 * threads if
 * the shares run one after another. */
static void busy_job(void *ctx, int index, int count) {
    (void)count;
    atomic_long *lines = ctx;
    double until = bench_now_seconds() + 5e-6;
    while (bench_now_seconds() < until) atomic_fetch_add_explicit(&lines[index * 8], 1, memory_order_relaxed);
}

int main(int argc, char **argv) {
    int threads = 2, runs = 20000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--threads N] [--runs N]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 10) runs = 10;
    mlxe_thread_pool *pool = NULL;
    mlxe_error err;
    if (mlxe_thread_pool_create(threads, &pool, &err) != MLXE_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    atomic_long *lines = calloc((size_t)threads * 8, sizeof *lines);
    double *times = malloc((size_t)runs * sizeof *times);
    if (!lines || !times) return 1;
    printf("thread pool of %d, %d runs per case\n\n| case | min us | median us |\n| --- | ---: | ---: |\n", threads,
           runs);
    for (int c = 0; c < 4; c++) {
        mlxe_parallel_fn fn = c % 2 == 0 ? empty_job : busy_job;
        double gap = c < 2 ? 0 : 5e-6; /* serial work between two ops */
        for (int r = 0; r < runs; r++) {
            if (gap > 0) {
                double until = bench_now_seconds() + gap;
                while (bench_now_seconds() < until) {
                }
            }
            double t0 = bench_now_seconds();
            mlxe_thread_pool_run(pool, fn, lines);
            times[r] = bench_now_seconds() - t0;
        }
        qsort(times, (size_t)runs, sizeof *times, bench_compare_doubles);
        printf("| %s job, %s | %.2f | %.2f |\n", c % 2 == 0 ? "empty" : "5 us", c < 2 ? "back to back" : "5 us apart",
               times[0] * 1e6, times[runs / 2] * 1e6);
    }
    mlxe_thread_pool_free(pool);
    free(lines);
    free(times);
    return 0;
}
