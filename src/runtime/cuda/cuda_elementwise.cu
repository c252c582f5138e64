/* runtime/cuda/cuda_elementwise.cu — the row-wise and element-wise ops on
 * the GPU: embedding lookup, bias, RMS norm, rotary embedding, KV cache
 * write, SwiGLU gate, residual add. All memory-bound: one pass over their
 * data, grid-stride loops, float32 arithmetic as on the CPU. */
#include "runtime/cuda/cuda_common.cuh"

using namespace mlxe_cuda;

namespace {

constexpr int kThreads = 256;

/* grid (column blocks, rows): each thread gathers one value of a row, so
 * one token's row is one memory round trip, not cols / 256 of them. */
__global__ void embedding_kernel(const void *table, int dtype, int64_t cols, const int32_t *ids, int64_t n_rows,
                                 float *out) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    for (int64_t r = blockIdx.y; r < n_rows; r += gridDim.y) {
        const int64_t row = ids[r];
        for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (int64_t)gridDim.x * blockDim.x)
            out[r * cols + c] = load_as_float(dtype, table, row * cols + c);
    }
}

__global__ void embedding_quantized_kernel(const uint32_t *words, int bits, int group_size, int scale_dtype,
                                           const void *scales, const void *biases, int64_t cols, const int32_t *ids,
                                           int64_t n_rows, float *out) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int64_t words_per_row = cols * bits / 32;
    for (int64_t r = blockIdx.y; r < n_rows; r += gridDim.y) {
        const int64_t row = ids[r];
        for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < cols; c += (int64_t)gridDim.x * blockDim.x)
            out[r * cols + c] =
                quantized_at(words, words_per_row, bits, group_size, scale_dtype, scales, biases, cols, row, c);
    }
}

__global__ void add_bias_kernel(float *y, int64_t n_rows, const void *bias, int dtype, int64_t size) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int64_t n = n_rows * size;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += load_as_float(dtype, bias, i % size);
}

/* One block per row: a block sum of squares, then the scaled write. */
__global__ void rms_norm_block_kernel(const float *x, const void *weight, int dtype, int64_t n_rows, int64_t dim,
                                      float eps, float *y) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    __shared__ float shared[32];
    for (int64_t r = blockIdx.x; r < n_rows; r += gridDim.x) {
        const float *row = x + r * dim;
        const float sum = strided_sum_of_squares(row, threadIdx.x, dim, blockDim.x);
        float inverse = 1.0f / sqrtf(block_sum(sum, shared) / (float)dim + eps);
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x)
            y[r * dim + i] = row[i] * inverse * load_as_float(dtype, weight, i);
    }
}

/* One warp per row, for short rows (per-head norms of qwen3). */
__global__ void rms_norm_warp_kernel(const float *x, const void *weight, int dtype, int64_t n_rows, int64_t dim,
                                     float eps, float *y) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int lane = threadIdx.x % kWarp;
    const int64_t warps = (int64_t)gridDim.x * (blockDim.x / kWarp);
    for (int64_t r = (int64_t)blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp; r < n_rows; r += warps) {
        const float *row = x + r * dim;
        const float sum = strided_sum_of_squares(row, lane, dim, kWarp);
        float inverse = 1.0f / sqrtf(warp_sum(sum) / (float)dim + eps);
        for (int64_t i = lane; i < dim; i += kWarp) y[r * dim + i] = row[i] * inverse * load_as_float(dtype, weight, i);
    }
}

/* One thread per (row, head, i < head_dim/2) pair of rotate_half. */
__global__ void rope_kernel(float *x, int64_t n_rows, int64_t n_heads, int64_t head_dim, const int32_t *positions,
                            const float *inv_freq, float attention_scale) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int64_t half = head_dim / 2;
    const int64_t n = n_rows * n_heads * half;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t % half;
        int64_t head = t / half;   /* row * n_heads + h */
        int64_t r = head / n_heads;
        /* float32 angle, accurate sin/cos: as the CPU (and transformers) */
        float *p = x + head * head_dim;
        float first = p[i], second = p[i + half];
        rope_rotate_pair(positions[r], inv_freq[i], attention_scale, first, second);
        p[i] = first;
        p[i + half] = second;
    }
}

__global__ void kv_store_kernel(const float *k, const float *v, int64_t n_rows, int64_t n_kv_heads, int64_t head_dim,
                                float *k_cache, float *v_cache, int64_t capacity, const int32_t *slots,
                                const int32_t *positions) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int64_t n = n_rows * n_kv_heads * head_dim;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t d = t % head_dim;
        int64_t h = t / head_dim % n_kv_heads;
        int64_t r = t / (head_dim * n_kv_heads);
        int64_t index = (((int64_t)slots[r] * n_kv_heads + h) * capacity + positions[r]) * head_dim + d;
        k_cache[index] = k[t];
        v_cache[index] = v[t];
    }
}

/* rope on q and on k with the cache write of rotated k and of v: one
 * thread per (row, q or kv head, pair i); the rotation is rope_kernel's
 * (rope_rotate_pair), so the results are the same bits. */
__global__ void rope_kv_store_kernel(float *q, const float *k, const float *v, int64_t n_rows, int64_t n_heads,
                                     int64_t n_kv_heads, int64_t head_dim, const int32_t *positions,
                                     const float *inv_freq, float attention_scale, float *k_cache, float *v_cache,
                                     int64_t capacity, const int32_t *slots) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int64_t half = head_dim / 2, heads = n_heads + n_kv_heads;
    const int64_t n = n_rows * heads * half;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < n; t += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = t % half;
        int64_t h = t / half % heads;
        int64_t r = t / (half * heads);
        if (h < n_heads) {
            float *p = q + (r * n_heads + h) * head_dim;
            float first = p[i], second = p[i + half];
            rope_rotate_pair(positions[r], inv_freq[i], attention_scale, first, second);
            p[i] = first;
            p[i + half] = second;
        } else {
            const int64_t kh = h - n_heads;
            const float *src = k + (r * n_kv_heads + kh) * head_dim;
            const float *src_v = v + (r * n_kv_heads + kh) * head_dim;
            const int64_t index = (((int64_t)slots[r] * n_kv_heads + kh) * capacity + positions[r]) * head_dim;
            float first = src[i], second = src[i + half];
            rope_rotate_pair(positions[r], inv_freq[i], attention_scale, first, second);
            k_cache[index + i] = first;
            k_cache[index + i + half] = second;
            v_cache[index + i] = src_v[i];
            v_cache[index + i + half] = src_v[i + half];
        }
    }
}

__global__ void silu_mul_kernel(const float *gate, const float *up, float *out, int64_t n) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void add_kernel(float *y, const float *x, int64_t n) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

}  // namespace

extern "C" void mlxe_cuda_embedding(mlxe_device *dev, const mlxe_matrix *table, const int32_t *ids, int64_t n_rows,
                                    float *out) {
    if (n_rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int32_t *device_ids = mlxe_cuda_device_ints(state, ids, n_rows, 0);
    /* a block per 256 columns of a row (at most 64 per row), a row per grid row */
    const int64_t column_blocks = (table->cols + kThreads - 1) / kThreads;
    const dim3 blocks((unsigned)(column_blocks < 64 ? column_blocks : 64), (unsigned)(n_rows < 65535 ? n_rows : 65535));
    if (table->bits)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, embedding_quantized_kernel, blocks, kThreads, 0, 
            static_cast<const uint32_t *>(table->data), table->bits, table->group_size, table->scale_dtype,
            table->scales, table->biases, table->cols, device_ids, n_rows, out);
    else
        launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, embedding_kernel, blocks, kThreads, 0, table->data, table->dtype, table->cols, device_ids,
                                                                 n_rows, out);
    mlxe_cuda_check_launch(state, "embedding");
}

extern "C" void mlxe_cuda_add_bias(mlxe_device *dev, float *y, int64_t n_rows, const mlxe_vector *bias) {
    if (n_rows <= 0 || bias->size <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, add_bias_kernel, grid_for(n_rows * bias->size, kThreads), kThreads, 0, y, n_rows, bias->data,
                                                                                            bias->dtype, bias->size);
    mlxe_cuda_check_launch(state, "add_bias");
}

extern "C" void mlxe_cuda_rms_norm(mlxe_device *dev, const float *x, const mlxe_vector *weight, int64_t n_rows,
                                   int64_t dim, float eps, float *y) {
    if (n_rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (dim <= 512) {
        const int warps_per_block = kThreads / kWarp;
        launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, rms_norm_warp_kernel, grid_for(n_rows, warps_per_block), kThreads, 0, 
            x, weight->data, weight->dtype, n_rows, dim, eps, y);
    } else {
        unsigned blocks = (unsigned)(n_rows < 65535 ? n_rows : 65535);
        int threads = dim >= 4096 ? 1024 : 256;
        launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, rms_norm_block_kernel, blocks, threads, 0, x, weight->data, weight->dtype, n_rows, dim,
                                                                     eps, y);
    }
    mlxe_cuda_check_launch(state, "rms_norm");
}

extern "C" void mlxe_cuda_rope(mlxe_device *dev, float *x, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                               const int32_t *positions, const float *inv_freq, float attention_scale) {
    if (n_rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int32_t *device_positions = mlxe_cuda_device_ints(state, positions, n_rows, 0);
    const float *device_inv_freq = mlxe_cuda_device_floats(state, inv_freq, head_dim / 2, 1);
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, rope_kernel, grid_for(n_rows * n_heads * (head_dim / 2), kThreads), kThreads, 0, 
        x, n_rows, n_heads, head_dim, device_positions, device_inv_freq, attention_scale);
    mlxe_cuda_check_launch(state, "rope");
}

extern "C" void mlxe_cuda_kv_store(mlxe_device *dev, const float *k, const float *v, int64_t n_rows,
                                   int64_t n_kv_heads, int64_t head_dim, float *k_cache, float *v_cache,
                                   int64_t capacity, const int32_t *slots, const int32_t *positions) {
    if (n_rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int32_t *device_slots = mlxe_cuda_device_ints(state, slots, n_rows, 0);
    const int32_t *device_positions = mlxe_cuda_device_ints(state, positions, n_rows, 1);
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, kv_store_kernel, grid_for(n_rows * n_kv_heads * head_dim, kThreads), kThreads, 0, 
        k, v, n_rows, n_kv_heads, head_dim, k_cache, v_cache, capacity, device_slots, device_positions);
    mlxe_cuda_check_launch(state, "kv_store");
}

extern "C" void mlxe_cuda_rope_kv_store(mlxe_device *dev, float *q, const float *k, const float *v, int64_t n_rows,
                                        int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                        const int32_t *positions, const float *inv_freq, float attention_scale,
                                        float *k_cache, float *v_cache, int64_t capacity, const int32_t *slots) {
    if (n_rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int32_t *device_positions = mlxe_cuda_device_ints(state, positions, n_rows, 0);
    const int32_t *device_slots = mlxe_cuda_device_ints(state, slots, n_rows, 1);
    const float *device_inv_freq = mlxe_cuda_device_floats(state, inv_freq, head_dim / 2, 2);
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, rope_kv_store_kernel, grid_for(n_rows * (n_heads + n_kv_heads) * (head_dim / 2), kThreads), kThreads, 0, q, k, v, n_rows, n_heads, n_kv_heads, head_dim, device_positions,
                                            device_inv_freq, attention_scale, k_cache, v_cache, capacity,
                                            device_slots);
    mlxe_cuda_check_launch(state, "rope_kv_store");
}

extern "C" void mlxe_cuda_silu_mul(mlxe_device *dev, const float *gate, const float *up, float *out, int64_t n) {
    if (n <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, silu_mul_kernel, grid_for(n, kThreads), kThreads, 0, gate, up, out, n);
    mlxe_cuda_check_launch(state, "silu_mul");
}

extern "C" void mlxe_cuda_add(mlxe_device *dev, float *y, const float *x, int64_t n) {
    if (n <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ELEMENTWISE, add_kernel, grid_for(n, kThreads), kThreads, 0, y, x, n);
    mlxe_cuda_check_launch(state, "add");
}
