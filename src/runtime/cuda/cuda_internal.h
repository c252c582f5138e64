/* runtime/cuda/cuda_internal.h — the CUDA backend's state and the ops its
 * .cu files implement, shared between cuda_device.c (creation, memory, the
 * ops table) and the kernels (cuda_matmul.cu, cuda_attention.cu,
 * cuda_elementwise.cu). Built only when CMake found nvcc (MLXE_CUDA). */
#ifndef MLXE_RUNTIME_CUDA_INTERNAL_H
#define MLXE_RUNTIME_CUDA_INTERNAL_H

#include <cuda_runtime.h>
#include <stdbool.h>
#include <stddef.h>

#include "runtime/cuda/cuda_blas.h"
#include "runtime/cuda/cuda_step_timing.h"

#ifdef __cplusplus
extern "C" {
#endif

#include "runtime/device_internal.h"
#include "runtime/ops.h"

/* How a GEMM (prefill) treats F32 activations against F16/BF16 or quantized
 * weights: round the activations to the weight type (BF16 for quantized
 * weights, expanded to BF16) and use the tensor cores (the default), or
 * widen the weights to F32 and run an F32 GEMM without TF32
 * (MLXE_CUDA_GEMM=f32: computes as the CPU does, ~10x slower; used by the
 * tests that compare greedy continuations with the CPU's). F32 weights
 * always take SGEMM in full float32. */
typedef enum mlxe_cuda_gemm_mode {
    MLXE_CUDA_GEMM_HALF_ACTIVATIONS = 0,
    MLXE_CUDA_GEMM_F32_WEIGHTS = 1,
} mlxe_cuda_gemm_mode;

/* A device buffer that only grows; reused by consecutive ops on the stream. */
typedef struct mlxe_cuda_buffer {
    void *ptr;
    size_t bytes;
} mlxe_cuda_buffer;

/* Kinds of kernels for state->overlap_launches. */
enum {
    MLXE_CUDA_OVERLAP_MATVEC = 1u,      /* decode matrix-vector products, float weights */
    MLXE_CUDA_OVERLAP_ELEMENTWISE = 2u, /* norms, RoPE, embedding, adds */
    MLXE_CUDA_OVERLAP_ATTENTION = 4u,   /* attention over the KV cache */
    /* decode matrix-vector products of quantized weights: not in the
     * default mask (measured slower overlapped: H200, 1B shape, 4-bit 657
     * -> 612 tok/s, 8-bit 723 -> 695; docs/CUDA.md version 6) */
    MLXE_CUDA_OVERLAP_QUANTIZED = 8u,
};

typedef struct mlxe_cuda_state {
    int ordinal;
    char name[32];              /* "cuda:N", the ops table's name */
    char gpu_name[256];
    int sm_count, cc_major, cc_minor;
    size_t total_memory;
    cudaStream_t stream;
    cudaStream_t take_stream; /* reads handed-over tokens back (cuda_device.c token_take) */
    const mlxe_cuda_blas *blas; /* cuBLAS, opened at run time (cuda_blas.h) */
    cublasHandle_t cublas;
    mlxe_cuda_gemm_mode gemm_mode;
    /* Batches up to this many rows use the matrix-vector kernels, above it a
     * GEMM: for float weights cuBLAS wins from 2 tokens on, for quantized
     * ones the matrix-vector kernels win up to 8 (bench_cuda_ops, H100). */
    int float_matvec_max_rows;
    int matvec_max_rows;
    /* Split an output row over several warps on small matrices
     * (MLXE_CUDA_MATVEC_SPLIT=auto); off by default: measured slower. */
    bool matvec_split_auto;
    /* MLXE_CUDA_MATVEC=v3: one token takes the version-3 kernels (one row
     * per warp) instead of several rows per warp; for side-by-side timing. */
    bool matvec_v3;
    /* One token, float weights: rows per block of the row-block kernel (-1
     * by default: 8 for rows of 4096 columns or more, else 4;
     * MLXE_CUDA_MATVEC=rowblock|rowblock2|rowblock4|rowblock8 for 1, 2, 4,
     * 8), 0 = the rows-per-warp kernel (MLXE_CUDA_MATVEC=warp). */
    int matvec_row_block;
    /* The row-block kernel issues its first weight loads before it waits
     * for x (overlapped launches); MLXE_CUDA_FLOAT_EARLY=0 after, to time. */
    bool float_early_weights;
    /* MLXE_CUDA_MATVEC_RPW=1|2|4: rows per warp of the one-token kernels,
     * forced (and taken wherever they apply); 0 = chosen by the row count. */
    int rows_per_warp;
    /* One-token products with 4/8-bit weights: 0 = not decided yet (read
     * from MLXE_CUDA_MATVEC at the first such product), 1 = int8 activations
     * (cuda_matvec_int8.cu, the default), 2 = float32 activations, exact
     * (MLXE_CUDA_MATVEC=float, or v3, or forced rows per warp). */
    int quantized_activations;
    /* Attention kernel: 0 = chosen by the batch, 1 = split, 2 = warp per
     * (token, head), 3 = flash where it applies (cuda_flash_attention.cu)
     * (MLXE_CUDA_ATTENTION=split|warp|flash, for tests and benches). */
    int attention_mode;
    /* Decode attention (grouped kernel): at least this many positions of
     * the announced span per split (MLXE_CUDA_ATTENTION_SPLIT_POSITIONS;
     * 0 = one step of 8 positions per warp: 64 with 8 warps, 32 with 4). */
    int attention_split_positions;
    /* Warps per block of the grouped decode kernel for head_dim up to 128:
     * 8 (the default), or 4 (MLXE_CUDA_ATTENTION_WARPS=4); head_dim 256
     * always takes 4. */
    int attention_warps;
    /* Decode attention on sm_90: the splits of a (token, kv head) as one
     * thread-block cluster of this many blocks (8), merged in distributed
     * shared memory; 0: merged through global memory by the last block
     * (MLXE_CUDA_ATTENTION_CLUSTER=0) */
    int attention_cluster;
    /* Decode attention with RoPE: the first cached rows read before waiting
     * for the previous kernel (MLXE_CUDA_ATTENTION_EARLY=0: after) */
    int attention_early_rows;
    /* Decode attention: o_proj scheduled as its blocks exit rather than
     * after their positions (MLXE_CUDA_ATTENTION_TRIGGER=late; for timing:
     * early placement may crowd o_proj onto the multiprocessors the
     * attention does not hold) */
    int attention_late_trigger;
    /* Decode attention, head_dim 64 or 128: 8 or 16 lanes per cached
     * position (lane groups, the default: 1) rather than a whole warp
     * (MLXE_CUDA_ATTENTION_LANES=0); 8: 8 lanes for head_dim 128 too (16
     * dimensions a lane, 2 positions a step; measured slower: 8B 8-bit
     * 298.2 -> 293.3 tok/s, docs/CUDA.md version 11) */
    int attention_lanes;
    /* One-token q/k/v products (3 matrices in one launch) let the next
     * kernel, the attention, start once all their blocks have started
     * rather than once their weights are read (MLXE_CUDA_QKV_TRIGGER=0) */
    int qkv_trigger_at_start;
    /* The float row-block SwiGLU kernel (BF16, 4 rows a block) compiled
     * for 6 resident blocks (the default) or as the compiler likes
     * (MLXE_CUDA_SWIGLU_MIN_BLOCKS=1; cuda_matmul.cu) */
    int swiglu_bounded;
    /* ops.h prefetch: at most this many bytes a call (cuda_prefetch.cu;
     * MLXE_CUDA_PREFETCH_MB, 8 by default); 0 = the op is off */
    size_t prefetch_cap;
    cudaStream_t prefetch_stream; /* the prefetches' branch off `stream` */
    cudaEvent_t prefetch_fork, prefetch_join;
    bool prefetch_forked; /* a prefetch was queued since the last join */
    /* MLXE_CUDA_STEP_TIMING=1: each decode graph's GPU time against the
     * host's period between replays (cuda_step_timing.h) */
    mlxe_cuda_step_timing step_timing;
    /* Kernels that start while the previous one finishes (programmatic
     * dependent launch, cuda_common.cuh launch_overlapped), a mask of
     * MLXE_CUDA_OVERLAP_* kinds: compute capability 9.0 on, the first three
     * kinds by default; MLXE_CUDA_PDL=0 none, =all every kind, or a sum of
     * the bits. */
    unsigned overlap_launches;
    /* MLXE_CUDA_ARGMAX_OVERLAP=0: the argmax launched after the logits,
     * not overlapped with the lm_head product (side-by-side timing) */
    bool argmax_after;
    /* The int8 form of a one-token activation vector, written by the kernel
     * that produced it (the decode attention's output, for o_proj;
     * cuda_int8_activations.cuh) into `prequantized`: prequantized_x is
     * that vector (NULL: none), taken by the next int8 product of it and
     * forgotten at every other launch check. int8_products: an int8 product
     * ran on this device, so producers write the int8 form (not for float
     * models). */
    const float *prequantized_x;
    int64_t prequantized_cols;
    unsigned long long prequantized_taken; /* int8 forms a product took (tests) */
    bool int8_products;
    mlxe_cuda_buffer prequantized;
    mlxe_cuda_buffer convert;   /* activations/weights converted for a GEMM */
    mlxe_cuda_buffer dequant;   /* quantized weights expanded to BF16 for a GEMM */
    mlxe_cuda_buffer partial;   /* split attention partial results */
    mlxe_cuda_buffer attention_counters; /* split attention: blocks done per (token, kv head), zero between launches */
    mlxe_cuda_buffer product;   /* matmul_add through a GEMM: the product before the add */
    mlxe_cuda_buffer sampling;  /* argmax partial results and their counters */
    mlxe_cuda_buffer sample;    /* sample: per-block top-k keys, argmax pairs, a counter */
    mlxe_cuda_buffer staging[3]; /* integer arrays passed from host memory */
    /* Graphs (ops.h graph_*): recording off with MLXE_CUDA_GRAPH=0; the
     * epoch counts buffer reallocations, which make older recordings stale. */
    bool graphs_disabled;
    bool capturing;
    unsigned buffer_epoch;
    cudaError_t error_before_capture;
    cudaError_t first_error;    /* first asynchronous or launch error, reported by synchronize */
    char first_error_where[96];
    mlxe_ops ops;               /* the table, named after this device */
} mlxe_cuda_state;

static inline mlxe_cuda_state *mlxe_cuda_state_of(const mlxe_device *dev) {
    return (mlxe_cuda_state *)dev->backend;
}

/* Fills a zeroed device struct for GPU `ordinal`; on failure says why the GPU
 * cannot be used (no driver, no such device, too old) with MLXE_ERR_DEVICE. */
mlxe_status mlxe_cuda_device_init(mlxe_device *dev, int ordinal, mlxe_error *err);
void mlxe_cuda_device_release(mlxe_device *dev);
/* cudaMemGetInfo on the device's GPU; false when the driver fails. */
bool mlxe_cuda_memory_info(const mlxe_device *dev, size_t *free_bytes, size_t *total_bytes);

/* Records the first error (ops return nothing; synchronize reports it). */
void mlxe_cuda_note_error(mlxe_cuda_state *state, cudaError_t error, const char *where);
/* Checks the last launch and records its error under `where`. */
void mlxe_cuda_check_launch(mlxe_cuda_state *state, const char *where);
/* Grows buffer to at least bytes; false (and the error recorded) if cudaMalloc fails. */
bool mlxe_cuda_buffer_reserve(mlxe_cuda_state *state, mlxe_cuda_buffer *buffer, size_t bytes);
/* A device pointer holding the n int32 at p: p itself when it is device
 * memory, else a copy in staging buffer `index` (0..2), made on the stream. */
const int32_t *mlxe_cuda_device_ints(mlxe_cuda_state *state, const int32_t *p, int64_t n, int index);
/* Same for floats (inv_freq). */
const float *mlxe_cuda_device_floats(mlxe_cuda_state *state, const float *p, int64_t n, int index);
/* Whether p is memory the GPU can address (device or managed). */
bool mlxe_cuda_is_device_pointer(const void *p);

/* The ops (runtime/ops.h) in the .cu files. */
void mlxe_cuda_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y);
void mlxe_cuda_matmul_add(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y);
void mlxe_cuda_matmul_swiglu(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                             float *normed, const mlxe_matrix *gate, const mlxe_matrix *up, float *out,
                             float *up_scratch);
void mlxe_cuda_matmul_multi(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                            float *normed, int n_out, const mlxe_matrix *const *w, float *const *y);
void mlxe_cuda_rope_kv_store(mlxe_device *dev, float *q, const float *k, const float *v, int64_t n_rows,
                             int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, const int32_t *positions,
                             const float *inv_freq, float attention_scale, float *k_cache, float *v_cache,
                             int64_t capacity, const int32_t *slots);
void mlxe_cuda_prefetch(mlxe_device *dev, const mlxe_matrix *w);
/* MLXE_CUDA_PREFETCH_MB in bytes (8 MB by default; 0 when set to 0). */
size_t mlxe_cuda_prefetch_cap(void);
void mlxe_cuda_argmax(mlxe_device *dev, const float *x, int64_t n_rows, int64_t n, int32_t *out);
void mlxe_cuda_sample(mlxe_device *dev, const float *x, int64_t vocab, const mlxe_sample_params *params,
                      int32_t *out_token);
void mlxe_cuda_add_bias(mlxe_device *dev, float *y, int64_t n_rows, const mlxe_vector *bias);
void mlxe_cuda_embedding(mlxe_device *dev, const mlxe_matrix *table, const int32_t *ids, int64_t n_rows, float *out);
void mlxe_cuda_rms_norm(mlxe_device *dev, const float *x, const mlxe_vector *weight, int64_t n_rows, int64_t dim,
                        float eps, float *y);
void mlxe_cuda_rope(mlxe_device *dev, float *x, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                    const int32_t *positions, const float *inv_freq, float attention_scale);
void mlxe_cuda_kv_store(mlxe_device *dev, const float *k, const float *v, int64_t n_rows, int64_t n_kv_heads,
                        int64_t head_dim, float *k_cache, float *v_cache, int64_t capacity, const int32_t *slots,
                        const int32_t *positions);
void mlxe_cuda_attention(mlxe_device *dev, const mlxe_attention_args *args);
void mlxe_cuda_rope_attention(mlxe_device *dev, const mlxe_attention_args *args, const float *k, const float *v,
                              const float *inv_freq, float attention_scale);
void mlxe_cuda_silu_mul(mlxe_device *dev, const float *gate, const float *up, float *out, int64_t n);
void mlxe_cuda_add(mlxe_device *dev, float *y, const float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif
