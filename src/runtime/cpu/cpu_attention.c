/* runtime/cpu/cpu_attention.c — the KV cache write and causal attention.
 *
 * Attention works per (token, kv head): the query heads that share a kv
 * head (the group of grouped-query attention: n_heads / n_kv_heads of them,
 * taken in passes of at most MLXE_CPU_ATTENTION_MAX_QUERIES) go through the
 * cached positions together, in blocks of MLXE_CPU_ATTENTION_BLOCK, so each
 * key and value row is read from memory once per pass instead of once per
 * head, and the kernels (cpu_kernels.h) compute a block's scores, exps and
 * value sums with SIMD. Each pass runs a one-pass ("online") softmax: after
 * a block's scores the running maximum is raised if needed and what was
 * accumulated so far is rescaled by exp(old_max - new_max), so every exp()
 * has a non-positive argument (the max-subtraction of a stable softmax)
 * without a scores buffer as long as the context. Accumulation is float32,
 * straight into the output rows, which are divided by the sums at the end.
 *
 * Work is split over the workers by (token, kv head), handed out
 * dynamically (attention_worker). When there are few of those (decode: one
 * token, 2 kv heads for Qwen2.5-0.5B) and long spans, each span is also cut
 * into chunks of consecutive positions; a chunk leaves its unnormalised
 * outputs, maximum and sum per head, and the calling thread merges the
 * chunks of a head afterwards (the same rescaling as between blocks). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/cpu_ops.h"

#define BLOCK MLXE_CPU_ATTENTION_BLOCK
#define MAX_QUERIES MLXE_CPU_ATTENTION_MAX_QUERIES
/* Spans are cut into chunks of no fewer positions than this (a chunk of 256
 * is ~10 us of work at head_dim 64 and 7 heads per kv head; the merge costs
 * one pass over the group's outputs per chunk). */
#define SPLIT_MIN_POSITIONS 256
/* Aim for this many work units per worker when splitting spans, so a
 * worker the system deschedules holds back a small share. */
#define UNITS_PER_WORKER 4
/* Below this many multiply-adds (scores alone) an op stays on the calling
 * thread: the hand-off to the workers costs more than it saves. */
#define PARALLEL_MIN_WORK 32768
/* Chunk results up to this many floats live on the stack. */
#define STACK_PARTIAL_FLOATS 4096

void mlxe_cpu_kv_store(mlxe_device *dev, const float *k, const float *v, int64_t n_rows, int64_t n_kv_heads,
                       int64_t head_dim, float *k_cache, float *v_cache, int64_t capacity, const int32_t *slots,
                       const int32_t *positions) {
    size_t head_bytes = (size_t)head_dim * sizeof(float);
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t h = 0; h < n_kv_heads; h++) {
            int64_t cache_index = (((int64_t)slots[r] * n_kv_heads + h) * capacity + positions[r]) * head_dim;
            int64_t source_index = (r * n_kv_heads + h) * head_dim;
            memcpy(k_cache + cache_index, k + source_index, head_bytes);
            memcpy(v_cache + cache_index, v + source_index, head_bytes);
        }
    }
}

/* The first position token t attends to (its sliding window's start). */
static int64_t span_start(const mlxe_attention_args *a, int64_t t) {
    const int64_t pos = a->positions[t];
    return a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
}

typedef struct attention_job {
    const mlxe_attention_args *args;
    const mlxe_cpu_kernels *kernels;
    int64_t group;       /* query heads per kv head */
    int64_t chunks;      /* chunks per (token, kv head) span; 1: whole spans, written to args->out */
    long n_units;        /* n_rows * n_kv_heads * chunks */
    float *partial;      /* chunks > 1: per unit, [group][head_dim] outputs, [group] maxima, [group] sums */
    atomic_long next_unit; /* units handed out so far (counted from the last token back) */
} attention_job;

static int64_t unit_floats(const attention_job *job) {
    return job->group * (job->args->head_dim + 2);
}

/* Heads [first, first + n_q) of kv head `kv_head`'s group for token t over
 * positions [begin, end) of its slot: out (n_q rows of head_dim) receives
 * the softmax-weighted values, divided by the sums when maxima is NULL, else
 * unnormalised with the running maxima and sums in maxima and sums. */
static void attend_pass(const mlxe_cpu_kernels *kernels, const mlxe_attention_args *a, int64_t t, int64_t kv_head,
                        int64_t first, int n_q, int64_t begin, int64_t end, float *out, float *maxima, float *sums) {
    const int64_t head_dim = a->head_dim, group = a->n_heads / a->n_kv_heads;
    const int64_t cache_base = (((int64_t)a->slots[t] * a->n_kv_heads + kv_head) * a->capacity) * head_dim;
    const float *keys = a->k_cache + cache_base;
    const float *values = a->v_cache + cache_base;
    const float *q = a->q + (t * a->n_heads + kv_head * group + first) * head_dim;

    float scores[MAX_QUERIES * BLOCK], block_max[MAX_QUERIES];
    float running_max[MAX_QUERIES], running_sum[MAX_QUERIES];
    for (int g = 0; g < n_q; g++) {
        running_max[g] = -INFINITY;
        running_sum[g] = 0.0f;
    }
    memset(out, 0, (size_t)(n_q * head_dim) * sizeof(float));
    for (int64_t p0 = begin; p0 < end; p0 += BLOCK) {
        const int64_t n = end - p0 < BLOCK ? end - p0 : BLOCK;
        kernels->attention_scores(q, n_q, keys + p0 * head_dim, n, head_dim, a->scale, scores, block_max);
        for (int g = 0; g < n_q; g++) {
            if (block_max[g] > running_max[g]) {
                if (running_sum[g] > 0.0f) {
                    const float correction = expf(running_max[g] - block_max[g]);
                    running_sum[g] *= correction;
                    kernels->scale(out + g * head_dim, correction, head_dim);
                }
                running_max[g] = block_max[g];
            }
            running_sum[g] += kernels->attention_exp(scores + g * BLOCK, n, running_max[g]);
        }
        kernels->attention_values(scores, n_q, values + p0 * head_dim, n, head_dim, out);
    }
    for (int g = 0; g < n_q; g++) {
        if (maxima) {
            maxima[g] = running_max[g];
            sums[g] = running_sum[g];
        } else if (running_sum[g] > 0.0f) {
            kernels->scale(out + g * head_dim, 1.0f / running_sum[g], head_dim);
        }
    }
}

/* One (token, kv head, chunk) unit: every head of the group, in passes of
 * at most MAX_QUERIES heads of near-equal size. */
static void attend_unit(const attention_job *job, long unit) {
    const mlxe_attention_args *a = job->args;
    const int64_t chunk = unit % job->chunks;
    const int64_t kv_head = (unit / job->chunks) % a->n_kv_heads;
    const int64_t t = unit / job->chunks / a->n_kv_heads;
    const int64_t lo = span_start(a, t), span = (int64_t)a->positions[t] + 1 - lo;
    const int64_t begin = lo + span * chunk / job->chunks, end = lo + span * (chunk + 1) / job->chunks;
    const int64_t group = job->group, head_dim = a->head_dim;
    float *out = a->out + (t * a->n_heads + kv_head * group) * head_dim;
    float *maxima = NULL, *sums = NULL;
    if (job->chunks > 1) {
        out = job->partial + unit * unit_floats(job);
        maxima = out + group * head_dim;
        sums = maxima + group;
    }
    const int64_t passes = (group + MAX_QUERIES - 1) / MAX_QUERIES;
    for (int64_t pass = 0; pass < passes; pass++) {
        const int64_t first = group * pass / passes, n_q = group * (pass + 1) / passes - first;
        attend_pass(job->kernels, a, t, kv_head, first, (int)n_q, begin, end, out + first * head_dim,
                    maxima ? maxima + first : NULL, sums ? sums + first : NULL);
    }
}

/* A unit costs in proportion to its token's span, which grows along a
 * causal prefill: equal static shares would give the last worker most of
 * the work (3/4 of it with 2 workers). So the units are handed out from an
 * atomic counter in runs, the last tokens (the longest spans) first, and a
 * worker the system deschedules holds back only its run. */
static void attention_worker(void *ctx, int index, int count) {
    (void)index;
    attention_job *job = ctx;
    const long total = job->n_units;
    long run = total / ((long)count * 16);
    if (run < 1) run = 1;
    for (;;) {
        long first = atomic_fetch_add_explicit(&job->next_unit, run, memory_order_relaxed);
        if (first >= total) return;
        long last = first + run < total ? first + run : total;
        for (long k = first; k < last; k++) attend_unit(job, total - 1 - k);
    }
}

/* Combines the chunks of every (token, head) into args->out: with M the
 * largest chunk maximum, out = sum_c e^(m_c - M) o_c / sum_c e^(m_c - M) l_c
 * (chunks with no positions, l_c = 0, take no part). */
static void merge_chunks(const attention_job *job) {
    const mlxe_attention_args *a = job->args;
    const int64_t group = job->group, head_dim = a->head_dim, stride = unit_floats(job);
    for (int64_t t = 0; t < a->n_rows; t++) {
        for (int64_t kv_head = 0; kv_head < a->n_kv_heads; kv_head++) {
            const float *first_chunk = job->partial + (t * a->n_kv_heads + kv_head) * job->chunks * stride;
            for (int64_t g = 0; g < group; g++) {
                float *out = a->out + (t * a->n_heads + kv_head * group + g) * head_dim;
                float largest = -INFINITY, total = 0.0f;
                for (int64_t c = 0; c < job->chunks; c++) {
                    const float *maxima = first_chunk + c * stride + group * head_dim, *sums = maxima + group;
                    if (sums[g] > 0.0f && maxima[g] > largest) largest = maxima[g];
                }
                for (int64_t c = 0; c < job->chunks; c++) {
                    const float *maxima = first_chunk + c * stride + group * head_dim, *sums = maxima + group;
                    if (sums[g] > 0.0f) total += expf(maxima[g] - largest) * sums[g];
                }
                memset(out, 0, (size_t)head_dim * sizeof(float));
                if (!(total > 0.0f)) continue;
                for (int64_t c = 0; c < job->chunks; c++) {
                    const float *outputs = first_chunk + c * stride;
                    const float *maxima = outputs + group * head_dim, *sums = maxima + group;
                    if (sums[g] > 0.0f)
                        job->kernels->axpy(out, expf(maxima[g] - largest) / total, outputs + g * head_dim, head_dim);
                }
            }
        }
    }
}

void mlxe_cpu_attention(mlxe_device *dev, const mlxe_attention_args *args) {
    if (args->n_rows <= 0 || args->n_heads <= 0) return;
    attention_job job = {.args = args, .kernels = mlxe_cpu_kernels_of(dev),
                         .group = args->n_heads / args->n_kv_heads, .chunks = 1};
    atomic_init(&job.next_unit, 0);
    int64_t work = 0, longest = 0;
    for (int64_t t = 0; t < args->n_rows; t++) {
        const int64_t span = (int64_t)args->positions[t] + 1 - span_start(args, t);
        work += span * args->n_heads * args->head_dim;
        if (span > longest) longest = span;
    }
    const bool parallel = dev->pool && work >= PARALLEL_MIN_WORK;
    const int64_t spans = args->n_rows * args->n_kv_heads;
    float stack_partial[STACK_PARTIAL_FLOATS];
    float *allocated = NULL;
    if (parallel && spans < (int64_t)UNITS_PER_WORKER * dev->n_threads) {
        int64_t chunks = ((int64_t)UNITS_PER_WORKER * dev->n_threads + spans - 1) / spans;
        if (chunks > longest / SPLIT_MIN_POSITIONS) chunks = longest / SPLIT_MIN_POSITIONS;
        if (chunks > 1) {
            const size_t floats = (size_t)(spans * chunks * job.group * (args->head_dim + 2));
            job.partial = floats <= STACK_PARTIAL_FLOATS ? stack_partial : (allocated = malloc(floats * sizeof(float)));
            if (job.partial) job.chunks = chunks; /* else (out of memory) whole spans */
        }
    }
    job.n_units = (long)(spans * job.chunks);
    mlxe_cpu_run(dev, parallel && job.n_units > 1, attention_worker, &job);
    if (job.chunks > 1) merge_chunks(&job);
    free(allocated);
}
