/* runtime/cuda/cuda_sampling.cu — token choice on the GPU: the argmax of a
 * row of logits (ops.h argmax), so a greedy decode step copies one int32
 * back instead of a vocabulary of floats, and can be recorded in the decode
 * graph.
 *
 * The order is the CPU sampler's greedy scan (engine/sampler.c argmax):
 * a number beats NaN, a larger value beats a smaller one, and among equals
 * the lower index wins; with only NaN the answer is index 0. That order is
 * total, so any reduction tree gives the scan's answer.
 *
 * One launch per row batch: each block reduces a stretch of the row and
 * writes its best pair; the last block to finish (an atomic counter per
 * row, reset by that block for the next launch or graph replay) reduces the
 * blocks' pairs. When the scratch cannot be had (first use during a graph
 * recording) a single block does the whole row. */
#include "runtime/cuda/cuda_common.cuh"

using namespace mlxe_cuda;

namespace {

constexpr int kThreads = 256;
constexpr int kMaxBlocks = 128;
constexpr int kMaxCounterRows = 1024; /* rows of the multi-block path; more take one block each */

struct best_pair {
    float value;
    int index;
};

__device__ __forceinline__ bool beats(float value, int index, float other_value, int other_index) {
    const bool nan = isnan(value), other_nan = isnan(other_value);
    if (nan != other_nan) return other_nan;
    if (!nan && value != other_value) return value > other_value;
    return index < other_index;
}

__device__ __forceinline__ void keep_better(best_pair &mine, float value, int index) {
    if (beats(value, index, mine.value, mine.index)) {
        mine.value = value;
        mine.index = index;
    }
}

/* The block's best pair, in every thread. */
__device__ best_pair block_best(best_pair mine) {
    __shared__ float values[kThreads / kWarp];
    __shared__ int indices[kThreads / kWarp];
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        float value = __shfl_xor_sync(0xffffffffu, mine.value, offset);
        int index = __shfl_xor_sync(0xffffffffu, mine.index, offset);
        keep_better(mine, value, index);
    }
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    __syncthreads();
    if (lane == 0) {
        values[warp] = mine.value;
        indices[warp] = mine.index;
    }
    __syncthreads();
    best_pair total = {values[0], indices[0]};
    for (int w = 1; w < kThreads / kWarp; w++) keep_better(total, values[w], indices[w]);
    return total;
}

/* grid (blocks, n_rows); partial: [n_rows][blocks] pairs; counters: [n_rows] zeroed. */
__global__ void __launch_bounds__(kThreads)
    argmax_kernel(const float *__restrict__ x, int n, best_pair *partial, unsigned *counters, int32_t *out) {
    const int row = blockIdx.y;
    const float *values = x + (int64_t)row * n;
    best_pair mine = {__int_as_float(0x7fc00000), 0x7fffffff}; /* NaN at no index: loses to anything */
    for (int i = blockIdx.x * kThreads + threadIdx.x; i < n; i += gridDim.x * kThreads) keep_better(mine, values[i], i);
    best_pair best = block_best(mine);
    if (gridDim.x == 1) {
        if (threadIdx.x == 0) out[row] = best.index < n ? best.index : 0;
        return;
    }
    __shared__ bool last;
    if (threadIdx.x == 0) {
        partial[row * gridDim.x + blockIdx.x] = best;
        __threadfence();
        last = atomicAdd(&counters[row], 1u) == gridDim.x - 1;
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    best_pair total = {__int_as_float(0x7fc00000), 0x7fffffff};
    for (int b = threadIdx.x; b < (int)gridDim.x; b += kThreads) {
        volatile best_pair *other = &partial[row * gridDim.x + b];
        keep_better(total, other->value, other->index);
    }
    total = block_best(total);
    if (threadIdx.x == 0) {
        out[row] = total.index < n ? total.index : 0;
        counters[row] = 0;
    }
}

}  // namespace

extern "C" void mlxe_cuda_argmax(mlxe_device *dev, const float *x, int64_t n_rows, int64_t n, int32_t *out) {
    if (n_rows <= 0 || n <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (n > INT32_MAX || n_rows > 65535) {
        mlxe_cuda_note_error(state, cudaErrorInvalidValue, "argmax (row longer than 2^31 or more than 65535 rows)");
        return;
    }
    int blocks = (int)((n + kThreads * 8 - 1) / (kThreads * 8)); /* about 8 values per thread */
    if (blocks > kMaxBlocks) blocks = kMaxBlocks;
    /* the counters first, at a place that does not depend on n_rows (the
     * invariant "all zero between launches" must hold for any later call) */
    const size_t counter_bytes = kMaxCounterRows * sizeof(unsigned);
    const size_t bytes = counter_bytes + (size_t)n_rows * kMaxBlocks * sizeof(best_pair);
    void *before = state->sampling.ptr;
    if (blocks > 1 && n_rows <= kMaxCounterRows && mlxe_cuda_buffer_reserve(state, &state->sampling, bytes)) {
        char *base = static_cast<char *>(state->sampling.ptr);
        /* a new buffer's counters start at zero; later launches leave them zero */
        if (state->sampling.ptr != before) cudaMemsetAsync(base, 0, counter_bytes, state->stream);
        argmax_kernel<<<dim3((unsigned)blocks, (unsigned)n_rows), kThreads, 0, state->stream>>>(
            x, (int)n, reinterpret_cast<best_pair *>(base + counter_bytes), reinterpret_cast<unsigned *>(base), out);
    } else {
        argmax_kernel<<<dim3(1, (unsigned)n_rows), kThreads, 0, state->stream>>>(x, (int)n, nullptr, nullptr, out);
    }
    mlxe_cuda_check_launch(state, "argmax");
}
