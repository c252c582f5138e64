/* runtime/cpu/cpu_matmul.c — the matmul op: splits the output features
 * (weight rows) among the workers in blocks of 4 (the kernels' register tile;
 * 16 for packed matrices, 32 in prefill) and runs the kernel for the weight's
 * dtype on each share. Splitting over weight rows means every worker streams
 * a disjoint part of the matrix, which is what bounds decode, and each reuses
 * its rows for all the batch's tokens.
 *
 * Shares are handed out dynamically, in runs of blocks, so a worker the
 * system deschedules mid-op (more runnable threads than CPUs) holds back
 * only the run it has, and the others finish the matrix. Each worker owns
 * one contiguous range of the blocks and takes its runs from the range's
 * front, so what it reads is one stream front to back (runs handed out in
 * turn from one counter interleave the workers' streams: ~3-8% slower
 * decode on 2 cores); a worker done with its range takes runs from the back
 * of the others'. Runs are a quarter of what is left of the range (guided
 * self-scheduling): large at first, one block at the end. */
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "runtime/cpu/cpu_ops.h"

/* Weight rows per scheduling block; a multiple of the kernels' tile. */
#define ROW_BLOCK 4
/* The prefill GEMMs' panel height (kernels_avx512_gemm_*.c). */
#define PREFILL_ROW_BLOCK 32
#define CHUNKS_PER_WORKER 8
/* A run taken from a worker's range is this fraction of what is left of it. */
#define RUN_DIVISOR 4
/* Workers with a range of their own (more share one counter, the former way). */
#define MAX_RANGES 64
/* Prepared decode activations up to this size live on the stack (one token
 * of 8192 columns at 4 bits or in bf16), larger ones on the heap. */
#define DECODE_STACK_BYTES 16384

typedef struct matmul_job {
    const mlxe_cpu_kernels *kernels;
    const float *x;
    int64_t n_rows;
    const mlxe_matrix *w;
    float *y;
    const void *x_prepared; /* prefill activations prepared by kernels->prefill_prepare_x, or NULL */
    const void *x_decode;   /* decode activations prepared by kernels->decode_prepare_x, or NULL */
    atomic_long next_block; /* the first block no worker has taken (n_ranges 0) */
    /* Per worker: the blocks [front, back) of its range not taken yet, as
     * front | back << 32 (one word, so owner and thieves agree by CAS). */
    int n_ranges;
    _Atomic uint64_t ranges[MAX_RANGES];
} matmul_job;

static void matmul_rows(const matmul_job *job, int64_t o_begin, int64_t o_end) {
    const mlxe_matrix *w = job->w;
    if (job->x_decode) {
        job->kernels->decode_matmul_x(job->x_decode, job->n_rows, w, o_begin, o_end, job->y);
        return;
    }
    if (job->x_prepared) {
        job->kernels->prefill_matmul_x(job->x_prepared, job->n_rows, w, o_begin, o_end, job->y);
        return;
    }
    if (w->bits != 0) {
        /* a packed matrix (cpu_pack.c) is read here only by the portable path */
        if (job->kernels->matmul_quantized && (w->bits == 4 || w->bits == 8) && !w->packed)
            job->kernels->matmul_quantized(job->x, job->n_rows, w, o_begin, o_end, job->y);
        else
            mlxe_cpu_matmul_quantized(job->kernels, job->x, job->n_rows, w, o_begin, o_end, job->y);
        return;
    }
    mlxe_matmul_kernel kernel = w->dtype == MLXE_DTYPE_F16    ? job->kernels->matmul_f16
                                : w->dtype == MLXE_DTYPE_BF16 ? job->kernels->matmul_bf16
                                                              : job->kernels->matmul_f32;
    kernel(job->x, job->n_rows, w->data, w->cols, o_begin, o_end, job->y, w->rows);
}

static int64_t row_block(const matmul_job *job) {
    return job->x_prepared ? PREFILL_ROW_BLOCK : job->w->packed ? MLXE_CPU_PACK_ROWS : ROW_BLOCK;
}

/* Takes a run from the front (the owner) or the back (a thief) of a
 * range: a RUN_DIVISOR-th of what is left (at least one block), so runs
 * shrink as the range empties and the workers finish within about one
 * block of each other. False when the range is empty. */
static bool take_blocks(_Atomic uint64_t *range, bool from_front, uint32_t *begin, uint32_t *end) {
    uint64_t bounds = atomic_load_explicit(range, memory_order_relaxed);
    for (;;) {
        const uint32_t front = (uint32_t)bounds, back = (uint32_t)(bounds >> 32);
        if (front >= back) return false;
        const uint32_t n = (back - front) / RUN_DIVISOR > 1 ? (back - front) / RUN_DIVISOR : 1;
        const uint64_t next = from_front ? ((uint64_t)back << 32 | (front + n)) : ((uint64_t)(back - n) << 32 | front);
        if (atomic_compare_exchange_weak_explicit(range, &bounds, next, memory_order_relaxed, memory_order_relaxed)) {
            *begin = from_front ? front : back - n;
            *end = from_front ? front + n : back;
            return true;
        }
    }
}

static void matmul_blocks(const matmul_job *job, long begin, long end) {
    const int64_t rows = job->w->rows, block = row_block(job);
    const int64_t o_begin = (int64_t)begin * block, o_end = (int64_t)end * block;
    matmul_rows(job, o_begin, o_end < rows ? o_end : rows);
}

static void matmul_worker(void *ctx, int index, int count) {
    matmul_job *job = ctx;
    const int64_t rows = job->w->rows, block = row_block(job);
    const long n_blocks = (long)((rows + block - 1) / block);
    if (job->n_ranges == count) {
        uint32_t begin, end;
        for (int i = 0; i < count; i++) {
            _Atomic uint64_t *range = &job->ranges[(index + i) % count];
            while (take_blocks(range, i == 0, &begin, &end)) matmul_blocks(job, begin, end);
        }
        return;
    }
    long chunk = n_blocks / ((long)count * CHUNKS_PER_WORKER);
    if (chunk < 1) chunk = 1;
    for (;;) {
        long begin = atomic_fetch_add_explicit(&job->next_block, chunk, memory_order_relaxed);
        if (begin >= n_blocks) return;
        matmul_blocks(job, begin, begin + chunk < n_blocks ? begin + chunk : n_blocks);
    }
}

void mlxe_cpu_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    if (n_rows <= 0 || w->rows <= 0) return;
    const mlxe_cpu_kernels *kernels = mlxe_cpu_kernels_of(dev);
    matmul_job job = {kernels, x, n_rows, w, y, NULL, NULL, 0, 0, {0}};
    /* Lower-precision activations (when the table has them and covers w;
     * see the precision policy in cpu_kernels.h), prepared once here, on
     * this thread, and shared by every worker. A failed allocation falls
     * back to the float kernels. Decode: int8 for 4/8-bit weights, bf16 for
     * one token against BF16 weights. */
    alignas(64) unsigned char stack_buffer[DECODE_STACK_BYTES];
    void *prepared = NULL, *allocated = NULL;
    if (kernels->decode_matmul_x && n_rows < MLXE_CPU_INT8_MAX_TOKENS) {
        size_t bytes = kernels->decode_x_bytes(w, n_rows);
        if (bytes > sizeof stack_buffer) prepared = allocated = aligned_alloc(64, (bytes + 63) / 64 * 64);
        else if (bytes) prepared = stack_buffer;
        if (prepared && kernels->decode_prepare_x(x, n_rows, w, prepared, bytes)) job.x_decode = prepared;
    } else if (kernels->prefill_matmul_x && n_rows >= MLXE_CPU_PREFILL_MIN_TOKENS) {
        /* Prefill: int8 for 4/8-bit weights, bf16 for BF16 weights. */
        size_t bytes = kernels->prefill_x_bytes(w, n_rows);
        if (bytes) prepared = allocated = malloc(bytes);
        if (prepared && kernels->prefill_prepare_x(x, n_rows, w, prepared, bytes)) job.x_prepared = prepared;
    }
    /* Below ~64K multiply-adds the hand-off to the workers costs more than it saves. */
    bool parallel = n_rows * w->rows * w->cols >= 65536 && w->rows >= 2 * ROW_BLOCK;
    /* one contiguous range of blocks per worker (the split above) */
    const int workers = parallel && dev->pool ? dev->n_threads : 1;
    const int64_t block = row_block(&job), n_blocks = (w->rows + block - 1) / block;
    if (workers <= MAX_RANGES && n_blocks < (int64_t)UINT32_MAX) {
        job.n_ranges = workers;
        for (int i = 0; i < workers; i++) {
            const uint64_t front = (uint64_t)(n_blocks * i / workers), back = (uint64_t)(n_blocks * (i + 1) / workers);
            atomic_init(&job.ranges[i], back << 32 | front);
        }
    }
    mlxe_cpu_run(dev, parallel, matmul_worker, &job);
    free(allocated);
}
