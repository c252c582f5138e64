/* runtime/cpu/cpu_ops.h — the CPU backend's ops, shared between its files.
 *
 * Each cpu_*.c implements a few ops of runtime/ops.h on host memory; they
 * reach the chosen kernels and the thread pool through the device. */
#ifndef MLXE_RUNTIME_CPU_OPS_H
#define MLXE_RUNTIME_CPU_OPS_H

#include <stdbool.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/device_internal.h"
#include "runtime/ops.h"

/* Fills a zeroed device struct for the CPU (called by mlxe_device_create_cpu). */
mlxe_status mlxe_cpu_device_init(mlxe_device *dev, int n_threads, mlxe_error *err);
void mlxe_cpu_device_release(mlxe_device *dev);

static inline const mlxe_cpu_kernels *mlxe_cpu_kernels_of(const mlxe_device *dev) {
    return (const mlxe_cpu_kernels *)dev->cpu_kernels;
}

/* Runs fn on every worker when worth it (parallel true and a pool exists),
 * else fn(ctx, 0, 1) on this thread. */
static inline void mlxe_cpu_run(mlxe_device *dev, bool parallel, mlxe_parallel_fn fn, void *ctx) {
    if (parallel && dev->pool)
        mlxe_thread_pool_run(dev->pool, fn, ctx);
    else
        fn(ctx, 0, 1);
}

/* Converts n elements of a weight vector/row starting at element `first`. */
void mlxe_cpu_vector_to_float(mlxe_dtype dtype, const void *data, int64_t first, int64_t n, float *out);
/* Elements [k0, k0 + n) of row `row` of w as floats: converted (F16/BF16),
 * copied (F32) or dequantized (MLX affine). */
void mlxe_cpu_matrix_row_to_float(const mlxe_matrix *w, int64_t row, int64_t k0, int64_t n, float *out);
/* ops->pack_matrix (cpu_pack.c). */
mlxe_status mlxe_cpu_pack_matrix(mlxe_device *dev, mlxe_matrix *w, bool release_bound, void **owned, mlxe_error *err);
/* The quantized matmul for output rows [o_begin, o_end) (cpu_quant.c). */
void mlxe_cpu_matmul_quantized(const mlxe_cpu_kernels *kernels, const float *x, int64_t n_x, const mlxe_matrix *w,
                               int64_t o_begin, int64_t o_end, float *y);

void mlxe_cpu_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y);
/* ops->matmul_multi and ops->matmul_swiglu (cpu_matmul.c): one run of the
 * pool over all the matrices (then silu_mul), the same results as
 * mlxe_cpu_matmul's, bit for bit. */
void mlxe_cpu_matmul_multi(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                           float *normed, int n_out, const mlxe_matrix *const *w, float *const *y);
void mlxe_cpu_matmul_swiglu(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                            float *normed, const mlxe_matrix *gate, const mlxe_matrix *up, float *out,
                            float *up_scratch);
void mlxe_cpu_add_bias(mlxe_device *dev, float *y, int64_t n_rows, const mlxe_vector *bias);
void mlxe_cpu_embedding(mlxe_device *dev, const mlxe_matrix *table, const int32_t *ids, int64_t n_rows, float *out);
void mlxe_cpu_rms_norm(mlxe_device *dev, const float *x, const mlxe_vector *weight, int64_t n_rows, int64_t dim,
                       float eps, float *y);
void mlxe_cpu_rope(mlxe_device *dev, float *x, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                   const int32_t *positions, const float *inv_freq, float attention_scale);
void mlxe_cpu_kv_store(mlxe_device *dev, const float *k, const float *v, int64_t n_rows, int64_t n_kv_heads,
                       int64_t head_dim, float *k_cache, float *v_cache, int64_t capacity, const int32_t *slots,
                       const int32_t *positions);
void mlxe_cpu_attention(mlxe_device *dev, const mlxe_attention_args *args);
void mlxe_cpu_silu_mul(mlxe_device *dev, const float *gate, const float *up, float *out, int64_t n);
void mlxe_cpu_add(mlxe_device *dev, float *y, const float *x, int64_t n);
/* ops.h argmax: the sampler's greedy rule (lowest index among equal
 * maxima, NaN never beats a number, 0 when all are NaN) */
void mlxe_cpu_argmax(mlxe_device *dev, const float *x, int64_t n_rows, int64_t n, int32_t *out);

#endif
