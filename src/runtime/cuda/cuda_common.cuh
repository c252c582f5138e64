/* runtime/cuda/cuda_common.cuh — device helpers shared by the kernels:
 * reading stored weight types as float, warp and block sums, MLX affine
 * quantized values, and launches that overlap the previous kernel's tail
 * (programmatic dependent launch). Included by the .cu files only. */
#ifndef MLXE_RUNTIME_CUDA_COMMON_CUH
#define MLXE_RUNTIME_CUDA_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "runtime/cuda/cuda_internal.h"

namespace mlxe_cuda {

constexpr int kWarp = 32;

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. `shared` holds 32 floats. */
__device__ __forceinline__ float block_sum(float v, float *shared) {
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, n_warps = blockDim.x / kWarp;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    float total = lane < n_warps ? shared[lane] : 0.0f;
    return warp_sum(total);
}

/* Σ x[i]² over i = first, first + stride, ... < n, added in that order
 * (so the bits do not depend on how the loads are issued), with 16 loads
 * in flight at a time: a loop that waited for each load before the next was
 * one L2 round trip per step, 16-32 of them per block before any weight
 * streamed (ncu on an H100, 8B shape: the quantization kernel with the
 * norm 6.4 us against 3.1 us without; docs/CUDA.md, version 8); 16 rather
 * than 8 makes the 8B shape's quantization (4096 values, 256 threads) and
 * the 1B shape's float products (2048, 128) one round trip (version 10). */
__device__ __forceinline__ float strided_sum_of_squares(const float *x, int64_t first, int64_t n, int64_t stride) {
    constexpr int kInFlight = 16;
    float sum = 0.0f;
    int64_t i = first;
    for (; i + (kInFlight - 1) * stride < n; i += kInFlight * stride) {
        float v[kInFlight];
#pragma unroll
        for (int u = 0; u < kInFlight; u++) v[u] = x[i + u * stride];
#pragma unroll
        for (int u = 0; u < kInFlight; u++) sum += v[u] * v[u];
    }
    for (; i < n; i += stride) sum += x[i] * x[i];
    return sum;
}

/* 1 / sqrt(mean(x^2) + eps) over cols, in every thread of the block: as
 * rms_norm_block_kernel computes it. */
__device__ __forceinline__ float block_inverse_rms(const float *x, int cols, float eps) {
    __shared__ float shared[32];
    const float sum = strided_sum_of_squares(x, threadIdx.x, cols, blockDim.x);
    return 1.0f / sqrtf(block_sum(sum, shared) / (float)cols + eps);
}

/* A segment's value by selection (no dynamic indexing of the parameter
 * arrays, which would copy them to local memory). */
template <typename T> __device__ __forceinline__ T pick(int segment, T a, T b, T c) {
    return segment == 0 ? a : segment == 1 ? b : c;
}

/* What one launch of the one-token products computes (cuda_matmul.cu's
 * float-activation kernels, cuda_matvec_int8.cu's int8 ones): up to 3
 * segments of blocks, each its own matrix and output (q, k and v of one
 * input in one launch), or for SwiGLU one segment over gate (w[0]) and up
 * (w[1]). norm: when not NULL, x is RMS-normalised with these gains first
 * (folded into the projections that consume it). x: the input, for the
 * int8 quantization (the float kernels take it as a parameter). */
struct one_token_job {
    const uint4 *w[3];
    const void *scales[3];
    const void *biases[3];
    float *y[3];
    int rows[3];
    int first_block[3];
    int n_segments;
    int scale_dtype;
    const float *x;
    const void *norm;
    int norm_dtype;
    float eps;
};

/* Where block `block` of a one-token launch stands: its segment, that
 * segment's rows, and the block's number within it (plan_blocks set the
 * segments' first blocks). */
struct job_segment {
    int segment, rows, block;
};

__device__ __forceinline__ job_segment segment_of(const one_token_job &job, int block) {
    job_segment s;
    s.segment = job.n_segments > 2 && block >= job.first_block[2]   ? 2
                : job.n_segments > 1 && block >= job.first_block[1] ? 1
                                                                    : 0;
    s.rows = pick(s.segment, job.rows[0], job.rows[1], job.rows[2]);
    s.block = block - pick(s.segment, job.first_block[0], job.first_block[1], job.first_block[2]);
    return s;
}

/* Each segment's first block for launches of rows_per_block output rows a
 * block; returns the blocks of the launch. */
__host__ inline unsigned plan_blocks(one_token_job &job, int rows_per_block) {
    unsigned total = 0;
    for (int i = 0; i < job.n_segments; i++) {
        job.first_block[i] = (int)total;
        total += (unsigned)((job.rows[i] + rows_per_block - 1) / rows_per_block);
    }
    return total;
}

/* The matrices of a one-token launch: n matrices of one input, each a
 * segment with its output, or for SwiGLU one segment over gate (w[0]) and
 * up (w[1]) into y[0]; the norm (NULL: none) and eps. */
__host__ inline void fill_segments(one_token_job &job, int n, const mlxe_matrix *const *w, float *const *y, bool swiglu,
                                   const mlxe_vector *norm, float eps) {
    const int segments = swiglu ? 1 : n;
    for (int i = 0; i < n; i++) {
        job.w[i] = static_cast<const uint4 *>(w[i]->data);
        job.scales[i] = w[i]->scales;
        job.biases[i] = w[i]->biases;
        job.rows[i] = (int)w[i]->rows;
        job.y[i] = i < segments ? y[i] : nullptr;
    }
    job.n_segments = segments;
    job.scale_dtype = (int)w[0]->scale_dtype;
    job.norm = norm ? norm->data : nullptr;
    job.norm_dtype = norm ? (int)norm->dtype : 0;
    job.eps = eps;
}

__device__ __forceinline__ float bf16_bits_to_float(uint32_t bits16) {
    return __uint_as_float(bits16 << 16);
}

__device__ __forceinline__ float f16_bits_to_float(uint16_t bits) {
    return __half2float(__ushort_as_half(bits));
}

/* Element i of a stored F32/F16/BF16 array. */
__device__ __forceinline__ float load_as_float(int dtype, const void *data, int64_t i) {
    if (dtype == MLXE_DTYPE_F16) return f16_bits_to_float(static_cast<const uint16_t *>(data)[i]);
    if (dtype == MLXE_DTYPE_BF16) return bf16_bits_to_float(static_cast<const uint16_t *>(data)[i]);
    return static_cast<const float *>(data)[i];
}

/* The MLX affine-quantized weight (row, k) as float: rows are bit streams of
 * cols*bits/32 little-endian uint32 words, least significant bits first (for
 * 2/4/8 bits this is value j of a word at bits*j); w = scale * q + bias per
 * group (see /work/shared/docs/MLX_QUANT.md). */
__device__ __forceinline__ float quantized_at(const uint32_t *words, int64_t words_per_row, int bits, int group_size,
                                              int scale_dtype, const void *scales, const void *biases, int64_t cols,
                                              int64_t row, int64_t k) {
    const uint32_t *row_words = words + row * words_per_row;
    uint64_t bit = (uint64_t)k * (uint64_t)bits;
    uint64_t word = bit >> 5;
    uint32_t offset = (uint32_t)(bit & 31u);
    uint32_t value = row_words[word] >> offset;
    if (offset + (uint32_t)bits > 32u) value |= row_words[word + 1] << (32u - offset);
    value &= (1u << bits) - 1u;
    int64_t group = row * (cols / group_size) + k / group_size;
    return load_as_float(scale_dtype, scales, group) * (float)value + load_as_float(scale_dtype, biases, group);
}

/* Programmatic dependent launch (Hopper on): a kernel started by
 * launch_overlapped may begin while the kernel before it on the stream is
 * still finishing, so its launch latency (~2-4 us, most of a small decode
 * kernel's time) hides behind that tail. Every such kernel calls
 * wait_for_previous_kernels() before it reads anything an earlier kernel
 * wrote or writes anything an earlier kernel reads (only the weights may
 * be touched before), and let_next_kernel_start() once the next kernel
 * may be scheduled. Kernels that stream weights call it after their main
 * loop, not at their start: launched early, the next kernel's blocks are
 * placed on whichever multiprocessors have room while this one runs,
 * unevenly, and a bandwidth-bound matrix-vector product then runs slower
 * than without the overlap (measured: 1B 4-bit decode 658 -> 551 tok/s on
 * an H200). Both are no-ops before sm_90 and when the kernel was launched
 * the ordinary way. */
__device__ __forceinline__ void wait_for_previous_kernels() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void let_next_kernel_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* kernel<<<grid, block, shared_bytes, stream>>>(args...), allowed to
 * overlap the previous kernel when `overlap` (and the device has compute
 * capability 9.0 on: the caller checks). The kernel must follow the rules
 * above. */
template <typename... Params, typename... Args>
__host__ inline void launch_with_overlap(cudaStream_t stream, bool overlap, void (*kernel)(Params...), dim3 grid,
                                         dim3 block, size_t shared_bytes, Args... args) {
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.dynamicSmemBytes = shared_bytes;
    config.stream = stream;
    cudaLaunchAttribute attribute[1];
    attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attribute;
    config.numAttrs = overlap ? 1 : 0;
    cudaLaunchKernelEx(&config, kernel, static_cast<Params>(args)...);
}

/* The same where state->overlap_launches has the kernel's kind's bit
 * (MLXE_CUDA_OVERLAP_*; compute capability 9.0 on, MLXE_CUDA_PDL). */
template <typename... Params, typename... Args>
__host__ inline void launch_overlapped(const mlxe_cuda_state *state, unsigned kind, void (*kernel)(Params...), dim3 grid,
                                       dim3 block, size_t shared_bytes, Args... args) {
    launch_with_overlap(state->stream, (state->overlap_launches & kind) != 0, kernel, grid, block, shared_bytes,
                        args...);
}

/* One rotate_half pair of RoPE (ops.h rope): float32 angle, accurate
 * sincosf, every product rounded on its own (no FMA, as the CPU computes
 * it). Shared by every kernel that rotates, so they all get the same bits;
 * rope_cos_sin + rope_apply are the same steps for a kernel that rotates
 * several heads by one angle (the sines computed once). */
__device__ __forceinline__ void rope_cos_sin(int32_t position, float inv_freq, float attention_scale, float &c,
                                             float &s) {
    const float angle = __fmul_rn((float)position, inv_freq);
    sincosf(angle, &s, &c);
    c = __fmul_rn(c, attention_scale);
    s = __fmul_rn(s, attention_scale);
}

__device__ __forceinline__ void rope_apply(float c, float s, float &first, float &second) {
    const float a = first, b = second;
    first = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
    second = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
}

__device__ __forceinline__ void rope_rotate_pair(int32_t position, float inv_freq, float attention_scale, float &first,
                                                 float &second) {
    float c, s;
    rope_cos_sin(position, inv_freq, attention_scale, c, s);
    rope_apply(c, s, first, second);
}

__host__ __forceinline__ unsigned grid_for(int64_t n, int threads, int64_t max_blocks = 65535LL * 16) {
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks < 1) blocks = 1;
    if (blocks > max_blocks) blocks = max_blocks;
    return (unsigned)blocks;
}

}  // namespace mlxe_cuda

#endif
