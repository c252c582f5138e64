/* base/thread_pool.c — workers wait on a generation counter: spin for a
 * while (cheap hand-off between consecutive ops), then sleep on a condition
 * variable (no CPU burnt when idle).
 *
 * Every worker index of a run is a slot that one thread claims (atomic
 * compare-exchange on a state tagged with the run's generation): a worker
 * claims its own slot when it wakes, and the caller, once its own share is
 * done, claims and runs every slot no worker has started. So a run never
 * waits for a thread the system has not scheduled yet (a machine with more
 * runnable threads than CPUs), only for shares already under way. */
#include "base/thread_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* About 50-100 µs of spinning before a worker goes to sleep. */
#define SPIN_ITERATIONS 20000
/* While waiting for a share under way, yield the CPU now and then (the
 * thread running it may be waiting for this CPU). */
#define WAIT_SPINS_BEFORE_YIELD 256

/* Slot states, tagged with the run's generation: (generation << 2) | state. */
enum { SLOT_OPEN = 0, SLOT_RUNNING = 1, SLOT_DONE = 2, SLOT_TAKEN = 3 };

struct mlxe_thread_pool {
    int size;
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_uint generation;   /* bumped once per run */
    _Atomic(unsigned) *slots; /* per worker index >= 1: the state of its share in the current run */
    atomic_bool stopping;
    mlxe_parallel_fn fn;
    void *ctx;
};

typedef struct worker_arg {
    mlxe_thread_pool *pool;
    int index;
} worker_arg;

int mlxe_thread_pool_default_size(void) {
    const char *env = getenv("MLXE_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (*end == '\0' && n > 0 && n <= 1024) return (int)n;
    }
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void *worker_main(void *arg_ptr) {
    worker_arg arg = *(worker_arg *)arg_ptr;
    free(arg_ptr);
    mlxe_thread_pool *pool = arg.pool;
    unsigned seen = 0; /* the generation at creation: a run may start before this thread does */
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool->generation, memory_order_acquire) == seen &&
               !atomic_load(&pool->stopping)) {
            if (++spins < SPIN_ITERATIONS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&pool->lock);
            while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stopping))
                pthread_cond_wait(&pool->wake, &pool->lock);
            pthread_mutex_unlock(&pool->lock);
        }
        if (atomic_load(&pool->stopping)) return NULL;
        seen = atomic_load_explicit(&pool->generation, memory_order_acquire);
        /* Claim this index's share of run `seen`; fails when the caller took it, or
         * when the caller has already moved on to a later run (then the loop sees it). */
        unsigned expected = (seen << 2) | SLOT_OPEN;
        if (atomic_compare_exchange_strong_explicit(&pool->slots[arg.index], &expected, (seen << 2) | SLOT_RUNNING,
                                                    memory_order_acq_rel, memory_order_acquire)) {
            pool->fn(pool->ctx, arg.index, pool->size);
            atomic_store_explicit(&pool->slots[arg.index], (seen << 2) | SLOT_DONE, memory_order_release);
        }
    }
}

mlxe_status mlxe_thread_pool_create(int n_threads, mlxe_thread_pool **out, mlxe_error *err) {
    *out = NULL;
    if (n_threads <= 0) n_threads = mlxe_thread_pool_default_size();
    mlxe_thread_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
    pool->size = n_threads;
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->stopping, false);
    if (n_threads > 1) {
        pool->slots = calloc((size_t)n_threads, sizeof *pool->slots);
        if (!pool->slots) {
            pool->size = 1; /* nothing started yet */
            mlxe_thread_pool_free(pool);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
        }
        for (int i = 0; i < n_threads; i++) atomic_init(&pool->slots[i], SLOT_DONE);
        pool->threads = calloc((size_t)n_threads - 1, sizeof *pool->threads);
        if (!pool->threads) {
            mlxe_thread_pool_free(pool);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "thread pool: out of memory");
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *arg = malloc(sizeof *arg);
            int rc = arg ? 0 : -1;
            if (arg) {
                arg->pool = pool;
                arg->index = i;
                rc = pthread_create(&pool->threads[i - 1], NULL, worker_main, arg);
                if (rc != 0) free(arg);
            }
            if (rc != 0) {
                pool->size = i; /* only the started ones are joined */
                mlxe_thread_pool_free(pool);
                return mlxe_error_set(err, MLXE_ERR_INTERNAL,
                                      "thread pool: could not start worker %d of %d (set "
                                      "MLXE_NUM_THREADS lower)", i, n_threads);
            }
        }
    }
    *out = pool;
    return MLXE_OK;
}

void mlxe_thread_pool_free(mlxe_thread_pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->lock);
    atomic_store(&pool->stopping, true);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    if (pool->threads)
        for (int i = 1; i < pool->size; i++) pthread_join(pool->threads[i - 1], NULL);
    free(pool->threads);
    free((void *)pool->slots);
    pthread_mutex_destroy(&pool->lock);
    pthread_cond_destroy(&pool->wake);
    free(pool);
}

int mlxe_thread_pool_size(const mlxe_thread_pool *pool) { return pool ? pool->size : 1; }

void mlxe_thread_pool_run(mlxe_thread_pool *pool, mlxe_parallel_fn fn, void *ctx) {
    if (!pool || pool->size == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    unsigned generation = atomic_load_explicit(&pool->generation, memory_order_relaxed) + 1;
    for (int i = 1; i < pool->size; i++)
        atomic_store_explicit(&pool->slots[i], (generation << 2) | SLOT_OPEN, memory_order_relaxed);
    pthread_mutex_lock(&pool->lock);
    atomic_store_explicit(&pool->generation, generation, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    fn(ctx, 0, pool->size);
    /* Shares no worker has started: run them here rather than wait for a wake-up. */
    for (int i = 1; i < pool->size; i++) {
        unsigned expected = (generation << 2) | SLOT_OPEN;
        if (atomic_compare_exchange_strong_explicit(&pool->slots[i], &expected, (generation << 2) | SLOT_TAKEN,
                                                    memory_order_acq_rel, memory_order_acquire))
            fn(ctx, i, pool->size);
    }
    for (int i = 1; i < pool->size; i++) {
        int spins = 0;
        while (atomic_load_explicit(&pool->slots[i], memory_order_acquire) == ((generation << 2) | SLOT_RUNNING)) {
            if (++spins % WAIT_SPINS_BEFORE_YIELD == 0)
                sched_yield();
            else
                cpu_relax();
        }
    }
}
