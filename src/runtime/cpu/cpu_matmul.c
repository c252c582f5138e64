/* runtime/cpu/cpu_matmul.c — the matmul op and its fused forms
 * (matmul_multi: q, k and v of one input; matmul_swiglu: gate and up with
 * silu(gate) * up): splits the output features (weight rows) among the
 * workers in blocks of 4 (the kernels' register tile; 16 for packed
 * matrices, 32 in prefill) and runs the kernel for the weight's dtype on
 * each share. Splitting over weight rows means every worker streams
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
/* Matrices of one fused op (q, k, v). */
#define MAX_PARTS 3

/* One matrix of the op, with its activations and its place among the
 * job's blocks. */
typedef struct matmul_part {
    const mlxe_matrix *w;
    float *y;
    const void *x_prepared; /* prefill activations prepared by kernels->prefill_prepare_x, or NULL */
    const void *x_decode;   /* decode activations prepared by kernels->decode_prepare_x, or NULL */
    int64_t block;          /* rows per scheduling block */
    long first_block, n_blocks;
} matmul_part;

/* The blocks of all parts are numbered one after the other (matmul_multi:
 * q's, then k's, then v's; matmul_swiglu: gate's, then up's), so the
 * workers' ranges and the stealing below span the whole op: one hand-off to
 * the pool instead of one per matrix, and the small k and v (Qwen2.5-0.5B:
 * 128 rows, 8 packed tiles) no longer each split in two. Each worker's
 * range stays one stream front to back. (Pairing gate's and up's rows block
 * by block instead, to apply the SwiGLU gate in the same pass, measured
 * alike and switched streams at every run; the gate is silu_mul after.) */
typedef struct matmul_job {
    const mlxe_cpu_kernels *kernels;
    const float *x;
    int64_t n_rows;
    int n_parts;
    matmul_part parts[MAX_PARTS];
    long n_blocks;
    atomic_long next_block; /* the first block no worker has taken (n_ranges 0) */
    /* Per worker: the blocks [front, back) of its range not taken yet, as
     * front | back << 32 (one word, so owner and thieves agree by CAS). */
    int n_ranges;
    _Atomic uint64_t ranges[MAX_RANGES];
} matmul_job;

static void matmul_rows(const matmul_job *job, const matmul_part *part, int64_t o_begin, int64_t o_end) {
    const mlxe_matrix *w = part->w;
    if (part->x_decode) {
        job->kernels->decode_matmul_x(part->x_decode, job->n_rows, w, o_begin, o_end, part->y);
        return;
    }
    if (part->x_prepared) {
        job->kernels->prefill_matmul_x(part->x_prepared, job->n_rows, w, o_begin, o_end, part->y);
        return;
    }
    if (w->bits != 0) {
        /* a packed matrix (cpu_pack.c) is read here only by the portable path */
        if (job->kernels->matmul_quantized && (w->bits == 4 || w->bits == 8) && !w->packed)
            job->kernels->matmul_quantized(job->x, job->n_rows, w, o_begin, o_end, part->y);
        else
            mlxe_cpu_matmul_quantized(job->kernels, job->x, job->n_rows, w, o_begin, o_end, part->y);
        return;
    }
    mlxe_matmul_kernel kernel = w->dtype == MLXE_DTYPE_F16    ? job->kernels->matmul_f16
                                : w->dtype == MLXE_DTYPE_BF16 ? job->kernels->matmul_bf16
                                                              : job->kernels->matmul_f32;
    kernel(job->x, job->n_rows, w->data, w->cols, o_begin, o_end, part->y, w->rows);
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

/* The job's blocks [begin, end): each part's share of them, in order. */
static void matmul_blocks(const matmul_job *job, long begin, long end) {
    for (int p = 0; p < job->n_parts; p++) {
        const matmul_part *part = &job->parts[p];
        const long first = begin > part->first_block ? begin : part->first_block;
        const long last = end < part->first_block + part->n_blocks ? end : part->first_block + part->n_blocks;
        if (first >= last) continue;
        const int64_t rows = part->w->rows, o_begin = (int64_t)(first - part->first_block) * part->block;
        const int64_t o_end = (int64_t)(last - part->first_block) * part->block;
        matmul_rows(job, part, o_begin, o_end < rows ? o_end : rows);
    }
}

static void matmul_worker(void *ctx, int index, int count) {
    matmul_job *job = ctx;
    const long n_blocks = job->n_blocks;
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

/* Whether w prepares its activations exactly as `other` does (the same
 * kernels read them: dtype, bits, group and columns alike), so the parts of
 * one input share one preparation. */
static bool same_preparation(const mlxe_matrix *w, const mlxe_matrix *other) {
    return w->dtype == other->dtype && w->bits == other->bits && w->group_size == other->group_size &&
           w->cols == other->cols && w->scale_dtype == other->scale_dtype && (w->packed != NULL) == (other->packed != NULL);
}

/* Activations of the parts prepared once per op, on this thread, and
 * shared by every worker (and by parts that prepare alike); what it
 * allocates goes to allocated[] (MAX_PARTS entries) for the caller to free. */
typedef struct prepared_inputs {
    alignas(64) unsigned char stack_buffer[DECODE_STACK_BYTES];
    void *allocated[MAX_PARTS];
} prepared_inputs;

/* Lower-precision activations (when the table has them and covers the
 * part's matrix; see the precision policy in cpu_kernels.h). A failed
 * allocation leaves the part on the float kernels. Decode: int8 for 4/8-bit
 * weights, bf16 for one token against BF16 weights; prefill: int8 for 4/8-bit
 * weights, bf16 for BF16 weights. */
static void prepare_parts(matmul_job *job, prepared_inputs *inputs) {
    const mlxe_cpu_kernels *kernels = job->kernels;
    const int64_t n_rows = job->n_rows;
    bool stack_used = false;
    for (int p = 0; p < job->n_parts; p++) {
        matmul_part *part = &job->parts[p];
        inputs->allocated[p] = NULL;
        for (int q = 0; q < p; q++)
            if (same_preparation(part->w, job->parts[q].w)) {
                part->x_decode = job->parts[q].x_decode;
                part->x_prepared = job->parts[q].x_prepared;
                break;
            }
        if (part->x_decode || part->x_prepared) continue;
        void *prepared = NULL;
        if (kernels->decode_matmul_x && n_rows < MLXE_CPU_INT8_MAX_TOKENS) {
            const size_t bytes = kernels->decode_x_bytes(part->w, n_rows);
            if (bytes > sizeof inputs->stack_buffer || (bytes && stack_used))
                prepared = inputs->allocated[p] = aligned_alloc(64, (bytes + 63) / 64 * 64);
            else if (bytes) {
                prepared = inputs->stack_buffer;
                stack_used = true;
            }
            if (prepared && kernels->decode_prepare_x(job->x, n_rows, part->w, prepared, bytes)) part->x_decode = prepared;
        } else if (kernels->prefill_matmul_x && n_rows >= MLXE_CPU_PREFILL_MIN_TOKENS) {
            const size_t bytes = kernels->prefill_x_bytes(part->w, n_rows);
            if (bytes) prepared = inputs->allocated[p] = malloc(bytes);
            if (prepared && kernels->prefill_prepare_x(job->x, n_rows, part->w, prepared, bytes)) part->x_prepared = prepared;
        }
    }
}

/* Numbers the parts' blocks, prepares their activations, splits the blocks
 * among the workers (one contiguous range each) and runs the job. */
static void run_job(mlxe_device *dev, matmul_job *job) {
    atomic_init(&job->next_block, 0);
    prepared_inputs inputs;
    prepare_parts(job, &inputs);
    int64_t multiply_adds = 0, rows = 0;
    long n_blocks = 0;
    for (int p = 0; p < job->n_parts; p++) {
        matmul_part *part = &job->parts[p];
        const mlxe_matrix *w = part->w;
        part->block = part->x_prepared ? PREFILL_ROW_BLOCK : w->packed ? MLXE_CPU_PACK_ROWS : ROW_BLOCK;
        part->n_blocks = (long)((w->rows + part->block - 1) / part->block);
        part->first_block = n_blocks;
        n_blocks += part->n_blocks;
        multiply_adds += job->n_rows * w->rows * w->cols;
        rows += w->rows;
    }
    job->n_blocks = n_blocks;
    /* Below ~64K multiply-adds the hand-off to the workers costs more than it saves. */
    const bool parallel = multiply_adds >= 65536 && rows >= 2 * ROW_BLOCK;
    /* one contiguous range of blocks per worker (the split above) */
    const int workers = parallel && dev->pool ? dev->n_threads : 1;
    if (workers <= MAX_RANGES && n_blocks < (long)UINT32_MAX) {
        job->n_ranges = workers;
        for (int i = 0; i < workers; i++) {
            const uint64_t front = (uint64_t)(n_blocks * i / workers), back = (uint64_t)(n_blocks * (i + 1) / workers);
            atomic_init(&job->ranges[i], back << 32 | front);
        }
    }
    mlxe_cpu_run(dev, parallel, matmul_worker, job);
    for (int p = 0; p < job->n_parts; p++) free(inputs.allocated[p]);
}

/* The input of a fused op: x, or rms_norm(x) into normed. */
static const float *fused_input(mlxe_device *dev, const float *x, int64_t n_rows, int64_t cols,
                                const mlxe_vector *norm, float eps, float *normed) {
    if (!norm) return x;
    mlxe_cpu_rms_norm(dev, x, norm, n_rows, cols, eps, normed);
    return normed;
}

void mlxe_cpu_matmul_multi(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                           float *normed, int n_out, const mlxe_matrix *const *w, float *const *y) {
    if (n_rows <= 0 || n_out <= 0) return;
    if (n_out > MAX_PARTS) {
        /* not what ops.h promises; each its own op rather than nothing */
        const float *input = fused_input(dev, x, n_rows, w[0]->cols, norm, eps, normed);
        for (int i = 0; i < n_out; i++) mlxe_cpu_matmul(dev, input, n_rows, w[i], y[i]);
        return;
    }
    matmul_job job = {.kernels = mlxe_cpu_kernels_of(dev), .n_rows = n_rows};
    job.x = fused_input(dev, x, n_rows, w[0]->cols, norm, eps, normed);
    for (int i = 0; i < n_out; i++)
        if (w[i]->rows > 0) job.parts[job.n_parts++] = (matmul_part){.w = w[i], .y = y[i]};
    if (job.n_parts == 0) return;
    run_job(dev, &job);
}

void mlxe_cpu_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    mlxe_cpu_matmul_multi(dev, x, n_rows, NULL, 0.0f, NULL, 1, &w, &y);
}

void mlxe_cpu_matmul_swiglu(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                            float *normed, const mlxe_matrix *gate, const mlxe_matrix *up, float *out,
                            float *up_scratch) {
    if (n_rows <= 0 || gate->rows <= 0) return;
    const mlxe_matrix *const projections[2] = {gate, up};
    float *const outputs[2] = {out, up_scratch};
    mlxe_cpu_matmul_multi(dev, x, n_rows, norm, eps, normed, 2, projections, outputs);
    mlxe_cpu_silu_mul(dev, out, up_scratch, out, n_rows * gate->rows);
}
