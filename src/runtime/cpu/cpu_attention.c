/* runtime/cpu/cpu_attention.c — the KV cache write and causal attention.
 *
 * Attention is split over (token, head) pairs, handed out dynamically (see
 * attention_worker). Each pair runs a one-pass
 * ("online") softmax over its positions in blocks of SCORE_BLOCK: the block's
 * scores are computed, the running maximum is raised if needed and what was
 * accumulated so far is rescaled by exp(old_max - new_max), so every exp()
 * has a non-positive argument (the max-subtraction of a stable softmax)
 * without a scores buffer as long as the context. Accumulation is float32,
 * straight into the output row, which is divided by the sum at the end. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "runtime/cpu/cpu_ops.h"

#define SCORE_BLOCK 64

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

typedef struct attention_job {
    const mlxe_attention_args *args;
    const mlxe_cpu_kernels *kernels;
    atomic_long next_pair; /* pairs handed out so far (counted from the last token back) */
} attention_job;

static void attend_one(const mlxe_cpu_kernels *kernels, const mlxe_attention_args *a, int64_t t, int64_t h) {
    const int64_t head_dim = a->head_dim;
    const int64_t kv_head = h / (a->n_heads / a->n_kv_heads);
    const int64_t pos = a->positions[t];
    const int64_t lo = a->window > 0 && pos - a->window + 1 > 0 ? pos - a->window + 1 : 0;
    const int64_t cache_base = (((int64_t)a->slots[t] * a->n_kv_heads + kv_head) * a->capacity) * head_dim;
    const float *keys = a->k_cache + cache_base;
    const float *values = a->v_cache + cache_base;
    const float *q = a->q + (t * a->n_heads + h) * head_dim;
    float *out = a->out + (t * a->n_heads + h) * head_dim;

    memset(out, 0, (size_t)head_dim * sizeof(float));
    float running_max = -INFINITY, running_sum = 0.0f;
    float scores[SCORE_BLOCK];
    for (int64_t p0 = lo; p0 <= pos; p0 += SCORE_BLOCK) {
        int64_t n = pos - p0 + 1 < SCORE_BLOCK ? pos - p0 + 1 : SCORE_BLOCK;
        float block_max = -INFINITY;
        for (int64_t j = 0; j < n; j++) {
            scores[j] = kernels->dot(q, keys + (p0 + j) * head_dim, head_dim) * a->scale;
            if (scores[j] > block_max) block_max = scores[j];
        }
        if (block_max > running_max) {
            if (running_sum > 0.0f) {
                float correction = expf(running_max - block_max);
                running_sum *= correction;
                kernels->scale(out, correction, head_dim);
            }
            running_max = block_max;
        }
        for (int64_t j = 0; j < n; j++) {
            float weight = expf(scores[j] - running_max);
            running_sum += weight;
            kernels->axpy(out, weight, values + (p0 + j) * head_dim, head_dim);
        }
    }
    if (running_sum > 0.0f) kernels->scale(out, 1.0f / running_sum, head_dim);
}

/* A (token, head) pair costs in proportion to the token's span, which grows
 * along a causal prefill: equal static shares would give the last worker
 * most of the work (3/4 of it with 2 workers). So the pairs are handed out
 * from an atomic counter in runs, the last tokens (the longest spans)
 * first, and a worker the system deschedules holds back only its run. */
static void attention_worker(void *ctx, int index, int count) {
    (void)index;
    attention_job *job = ctx;
    const mlxe_attention_args *a = job->args;
    const long total = (long)(a->n_rows * a->n_heads);
    long run = total / ((long)count * 16);
    if (run < 1) run = 1;
    for (;;) {
        long first = atomic_fetch_add_explicit(&job->next_pair, run, memory_order_relaxed);
        if (first >= total) return;
        long last = first + run < total ? first + run : total;
        for (long k = first; k < last; k++) {
            long pair = total - 1 - k;
            attend_one(job->kernels, a, pair / a->n_heads, pair % a->n_heads);
        }
    }
}

void mlxe_cpu_attention(mlxe_device *dev, const mlxe_attention_args *args) {
    if (args->n_rows <= 0 || args->n_heads <= 0) return;
    attention_job job = {args, mlxe_cpu_kernels_of(dev), 0};
    mlxe_cpu_run(dev, args->n_rows * args->n_heads > 1, attention_worker, &job);
}
