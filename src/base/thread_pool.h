/* base/thread_pool.h — a fixed set of worker threads for data-parallel ops.
 *
 * mlxe_thread_pool_run(pool, fn, ctx) calls fn(ctx, i, n) once for every
 * worker index i in [0, n) — the caller's thread is worker 0 — and returns
 * when all have finished. Kernels split their work by i and n. Workers spin
 * briefly between runs before sleeping, because the decode step dispatches
 * hundreds of small ops per token and a condition-variable wake-up each
 * time would cost more than the op. */
#ifndef MLXE_BASE_THREAD_POOL_H
#define MLXE_BASE_THREAD_POOL_H

#include "mlxengine/status.h"

typedef struct mlxe_thread_pool mlxe_thread_pool;
typedef void (*mlxe_parallel_fn)(void *ctx, int index, int count);

/* The default worker count: MLXE_NUM_THREADS when set to a positive number,
 * else the number of CPUs this process may run on. */
int mlxe_thread_pool_default_size(void);

/* n_threads <= 0 means mlxe_thread_pool_default_size(). */
mlxe_status mlxe_thread_pool_create(int n_threads, mlxe_thread_pool **out, mlxe_error *err);
void mlxe_thread_pool_free(mlxe_thread_pool *pool);
int mlxe_thread_pool_size(const mlxe_thread_pool *pool);

/* Runs fn on every worker and waits. Not reentrant: fn must not call run on
 * the same pool, and one thread at a time may call run. A NULL pool runs
 * fn(ctx, 0, 1) on the calling thread. */
void mlxe_thread_pool_run(mlxe_thread_pool *pool, mlxe_parallel_fn fn, void *ctx);

/* Splits [0, total) into count nearly equal parts; sets part index's range. */
static inline void mlxe_split_range(long total, int index, int count, long *begin, long *end) {
    long base = total / count, extra = total % count;
    *begin = index * base + (index < extra ? index : extra);
    *end = *begin + base + (index < extra ? 1 : 0);
}

#endif
