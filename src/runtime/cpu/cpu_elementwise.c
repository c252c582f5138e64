/* runtime/cpu/cpu_elementwise.c — the row-wise and element-wise ops:
 * embedding lookup, bias, RMS norm, rotary embedding, SwiGLU gate, residual
 * add. They are memory-bound and cheap, so they use the workers only when a
 * batch is large enough for the hand-off to pay. */
#include <math.h>
#include <string.h>

#include "runtime/cpu/cpu_ops.h"
#include "runtime/cpu/half.h"
#include "runtime/sampling.h"

/* Elements below which an op stays on the calling thread. */
#define PARALLEL_MIN_ELEMENTS 32768

static inline float vector_at(const mlxe_vector *v, int64_t i) {
    switch (v->dtype) {
    case MLXE_DTYPE_F16: return mlxe_f16_to_f32(((const uint16_t *)v->data)[i]);
    case MLXE_DTYPE_BF16: return mlxe_bf16_to_f32(((const uint16_t *)v->data)[i]);
    default: return ((const float *)v->data)[i];
    }
}

/* ---- embedding ---- */

typedef struct embedding_job {
    const mlxe_matrix *table;
    const int32_t *ids;
    int64_t n_rows;
    float *out;
} embedding_job;

static void embedding_worker(void *ctx, int index, int count) {
    const embedding_job *job = ctx;
    long begin, end;
    mlxe_split_range((long)job->n_rows, index, count, &begin, &end);
    for (long r = begin; r < end; r++)
        mlxe_cpu_matrix_row_to_float(job->table, job->ids[r], 0, job->table->cols, job->out + r * job->table->cols);
}

void mlxe_cpu_embedding(mlxe_device *dev, const mlxe_matrix *table, const int32_t *ids, int64_t n_rows, float *out) {
    embedding_job job = {table, ids, n_rows, out};
    mlxe_cpu_run(dev, n_rows > 1 && n_rows * table->cols >= PARALLEL_MIN_ELEMENTS, embedding_worker, &job);
}

/* ---- bias ---- */

void mlxe_cpu_add_bias(mlxe_device *dev, float *y, int64_t n_rows, const mlxe_vector *bias) {
    for (int64_t r = 0; r < n_rows; r++) {
        float *row = y + r * bias->size;
        for (int64_t i = 0; i < bias->size; i++) row[i] += vector_at(bias, i);
    }
}

/* ---- RMS norm ---- */

typedef struct rms_norm_job {
    const mlxe_cpu_kernels *kernels;
    const float *x;
    const mlxe_vector *weight;
    int64_t n_rows, dim;
    float eps;
    float *y;
} rms_norm_job;

static void rms_norm_worker(void *ctx, int index, int count) {
    const rms_norm_job *job = ctx;
    long begin, end;
    mlxe_split_range((long)job->n_rows, index, count, &begin, &end);
    for (long r = begin; r < end; r++) {
        const float *x = job->x + r * job->dim;
        float *y = job->y + r * job->dim;
        float mean_square = job->kernels->dot(x, x, job->dim) / (float)job->dim;
        float inverse = 1.0f / sqrtf(mean_square + job->eps);
        for (int64_t i = 0; i < job->dim; i++) y[i] = x[i] * inverse * vector_at(job->weight, i);
    }
}

void mlxe_cpu_rms_norm(mlxe_device *dev, const float *x, const mlxe_vector *weight, int64_t n_rows, int64_t dim,
                       float eps, float *y) {
    rms_norm_job job = {mlxe_cpu_kernels_of(dev), x, weight, n_rows, dim, eps, y};
    mlxe_cpu_run(dev, n_rows > 1 && n_rows * dim >= PARALLEL_MIN_ELEMENTS, rms_norm_worker, &job);
}

/* ---- rotary embedding ---- */

typedef struct rope_job {
    float *x;
    int64_t n_rows, n_heads, head_dim;
    const int32_t *positions;
    const float *inv_freq;
    float attention_scale;
} rope_job;

static void rope_worker(void *ctx, int index, int count) {
    const rope_job *job = ctx;
    const int64_t half = job->head_dim / 2;
    long begin, end;
    mlxe_split_range((long)job->n_rows, index, count, &begin, &end);
    for (long r = begin; r < end; r++) {
        float *row = job->x + r * job->n_heads * job->head_dim;
        /* float32 angle like transformers' LlamaRotaryEmbedding (inv_freq @ position_ids in float32) */
        float position = (float)job->positions[r];
        for (int64_t i = 0; i < half; i++) {
            float angle = position * job->inv_freq[i];
            float c = cosf(angle) * job->attention_scale;
            float s = sinf(angle) * job->attention_scale;
            for (int64_t h = 0; h < job->n_heads; h++) {
                float *head = row + h * job->head_dim;
                float first = head[i], second = head[i + half];
                /* rotate_half(x) = cat(-x[half:], x[:half]) */
                head[i] = first * c - second * s;
                head[i + half] = second * c + first * s;
            }
        }
    }
}

void mlxe_cpu_rope(mlxe_device *dev, float *x, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                   const int32_t *positions, const float *inv_freq, float attention_scale) {
    rope_job job = {x, n_rows, n_heads, head_dim, positions, inv_freq, attention_scale};
    mlxe_cpu_run(dev, n_rows > 1 && n_rows * n_heads * head_dim >= PARALLEL_MIN_ELEMENTS / 2, rope_worker, &job);
}

/* ---- SwiGLU gate and residual add ---- */

typedef struct pointwise_job {
    float *out;
    const float *a, *b;
    int64_t n;
    const mlxe_cpu_kernels *kernels;
} pointwise_job;

static void silu_mul_worker(void *ctx, int index, int count) {
    const pointwise_job *job = ctx;
    long begin, end;
    mlxe_split_range((long)job->n, index, count, &begin, &end);
    if (job->kernels->silu_mul) {
        job->kernels->silu_mul(job->a + begin, job->b + begin, job->out + begin, end - begin);
        return;
    }
    for (long i = begin; i < end; i++) {
        float gate = job->a[i];
        job->out[i] = gate / (1.0f + expf(-gate)) * job->b[i];
    }
}

void mlxe_cpu_silu_mul(mlxe_device *dev, const float *gate, const float *up, float *out, int64_t n) {
    pointwise_job job = {out, gate, up, n, mlxe_cpu_kernels_of(dev)};
    mlxe_cpu_run(dev, n >= PARALLEL_MIN_ELEMENTS, silu_mul_worker, &job);
}

static void add_worker(void *ctx, int index, int count) {
    const pointwise_job *job = ctx;
    long begin, end;
    mlxe_split_range((long)job->n, index, count, &begin, &end);
    for (long i = begin; i < end; i++) job->out[i] += job->a[i];
}

void mlxe_cpu_add(mlxe_device *dev, float *y, const float *x, int64_t n) {
    pointwise_job job = {y, x, NULL, n, NULL};
    mlxe_cpu_run(dev, n >= 4 * PARALLEL_MIN_ELEMENTS, add_worker, &job);
}

void mlxe_cpu_argmax(mlxe_device *dev, const float *x, int64_t n_rows, int64_t n, int32_t *out) {
    (void)dev;
    for (int64_t r = 0; r < n_rows; r++) out[r] = mlxe_sample_argmax(x + r * n, n);
}
