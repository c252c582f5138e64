/* bench/bench_clock.h — what the bench programs share for timing: the
 * monotonic clock in seconds and a comparison for qsort-ing samples (the
 * median of timed repeats is what they report). */
#ifndef MLXE_BENCH_CLOCK_H
#define MLXE_BENCH_CLOCK_H

#include <time.h>

static inline double bench_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* qsort order of doubles, ascending. */
static inline int bench_compare_doubles(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
