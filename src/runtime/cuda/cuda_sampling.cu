/* runtime/cuda/cuda_sampling.cu — token choice on the GPU: the argmax of a
 * row of logits (ops.h argmax) and the host sampler's draw (ops.h sample),
 * so a decode step copies one int32 back instead of a vocabulary of floats,
 * and can be recorded in the decode graph.
 *
 * sample: one launch. Each block takes 2048 logits into shared memory,
 * applies the logit bias and penalty entries that fall in it (bias first,
 * then penalties, in the host's float operations), keeps the argmax pair
 * (greedy, and the answer when no token is left), divides by the
 * temperature, and sorts 64-bit keys (logit made orderable, then the
 * complement of the id: larger is better, ties to the lower id, the host's
 * rank) with a bitonic sort, writing its best top_k keys. The last block to
 * finish merges those lists 2048 keys at a time (sort, keep the top_k,
 * load more) into the global top_k, sorted, and finishes as the host's
 * sorted path does: integer weights (runtime/sampling.h) in parallel, their
 * running sums, the top-p cut, the min-p cut, and the token whose running
 * weight first exceeds the draw's target. top_k is at most 128
 * (MLXE_SAMPLE_MAX_TOP_K): other options are sampled on the host.
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

/* The block's best pair (blocks of Threads threads), in every thread. */
template <int Threads>
__device__ best_pair block_best(best_pair mine) {
    __shared__ float values[Threads / kWarp];
    __shared__ int indices[Threads / kWarp];
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
    for (int w = 1; w < Threads / kWarp; w++) keep_better(total, values[w], indices[w]);
    return total;
}

/* grid (blocks, n_rows); partial: [n_rows][blocks] pairs; counters: [n_rows] zeroed. */
__global__ void __launch_bounds__(kThreads)
    argmax_kernel(const float *__restrict__ x, int n, best_pair *partial, unsigned *counters, int32_t *out) {
    wait_for_previous_kernels(); /* x: the logits just written (overlapped launch) */
    const int row = blockIdx.y;
    const float *values = x + (int64_t)row * n;
    best_pair mine = {__int_as_float(0x7fc00000), 0x7fffffff}; /* NaN at no index: loses to anything */
    for (int i = blockIdx.x * kThreads + threadIdx.x; i < n; i += gridDim.x * kThreads) keep_better(mine, values[i], i);
    best_pair best = block_best<kThreads>(mine);
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
    total = block_best<kThreads>(total);
    if (threadIdx.x == 0) {
        out[row] = total.index < n ? total.index : 0;
        counters[row] = 0;
    }
}

}  // namespace

/* The argmax waits for the logits inside the kernel, so it may be placed
 * while the lm_head product streams its last weights (an overlapped
 * launch, with the elementwise kernels) unless state->argmax_after
 * (MLXE_CUDA_ARGMAX_OVERLAP=0). */
static unsigned argmax_overlap_kind(const mlxe_cuda_state *state) {
    return state->argmax_after ? 0u : MLXE_CUDA_OVERLAP_ELEMENTWISE;
}

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
        launch_overlapped(state, argmax_overlap_kind(state), argmax_kernel, dim3((unsigned)blocks, (unsigned)n_rows),
                          dim3(kThreads), 0, x, (int)n, reinterpret_cast<best_pair *>(base + counter_bytes),
                          reinterpret_cast<unsigned *>(base), out);
    } else {
        launch_overlapped(state, argmax_overlap_kind(state), argmax_kernel, dim3(1, (unsigned)n_rows), dim3(kThreads), 0,
                          x, (int)n, static_cast<best_pair *>(nullptr), static_cast<unsigned *>(nullptr), out);
    }
    mlxe_cuda_check_launch(state, "argmax");
}

/* ---- sample ---- */

namespace {

constexpr int kSampleThreads = 1024;
constexpr int kSampleChunk = 2 * kSampleThreads; /* keys a block sorts */
constexpr int kSampleMaxK = MLXE_SAMPLE_MAX_TOP_K;
constexpr size_t kSampleCounterBytes = 256;

typedef unsigned long long sample_key;
#define kMinusInfinity (__uint_as_float(0xff800000u))

/* The host's rank as one integer: logit descending (-0 counts as +0, as
 * the host's comparisons do), then id ascending. 0 is no candidate: a
 * valid logit (not NaN, not -inf) always has a nonzero high word. */
__device__ __forceinline__ sample_key make_key(float logit, int id) {
    uint32_t bits = __float_as_uint(logit == 0.0f ? 0.0f : logit);
    bits = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return ((sample_key)bits << 32) | (sample_key)(0xffffffffu - (uint32_t)id);
}

__device__ __forceinline__ float key_logit(sample_key key) {
    uint32_t bits = (uint32_t)(key >> 32);
    bits = (bits & 0x80000000u) ? (bits & 0x7fffffffu) : ~bits;
    return __uint_as_float(bits);
}

__device__ __forceinline__ int key_id(sample_key key) { return (int)(0xffffffffu - (uint32_t)key); }

/* Bitonic sort of kSampleChunk keys, largest first, by the whole block
 * (one pair per thread per step). Starts and ends with a barrier. */
__device__ void sort_descending(sample_key *keys) {
    for (int size = 2; size <= kSampleChunk; size <<= 1)
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            __syncthreads();
            const int t = threadIdx.x;
            const int lo = 2 * t - (t & (stride - 1)), hi = lo + stride;
            const bool descending = (lo & size) == 0;
            const sample_key a = keys[lo], b = keys[hi];
            if ((a < b) == descending) {
                keys[lo] = b;
                keys[hi] = a;
            }
        }
    __syncthreads();
}

/* grid: ceil(vocab / kSampleChunk) blocks. counter: zero between launches;
 * best: [blocks]; partial: [blocks][kSampleMaxK]. */
__global__ void __launch_bounds__(kSampleThreads)
    sample_kernel(const float *__restrict__ logits, int vocab, const mlxe_sample_params *__restrict__ params,
                  unsigned *counter, best_pair *best, sample_key *partial, int32_t *out) {
    __shared__ sample_key keys[kSampleChunk];
    __shared__ float values[kSampleChunk];
    __shared__ uint64_t weights[kSampleMaxK];
    __shared__ uint64_t running[kSampleMaxK + 1];
    __shared__ int n_candidates, cut, min_p_cut, chosen;
    __shared__ bool last;
    const mlxe_sample_params p = *params;
    const int base = blockIdx.x * kSampleChunk;
    for (int j = threadIdx.x; j < kSampleChunk; j += kSampleThreads)
        values[j] = base + j < vocab ? logits[base + j] : 0.0f;
    __syncthreads();
    /* logit bias, then penalties (engine/sampler.c apply_penalties): each
     * token at most once per list, so threads never share a value */
    if (p.n_bias > 0 || p.n_penalty > 0) {
        for (int e = threadIdx.x; e < p.n_bias; e += kSampleThreads) {
            const mlxe_sample_adjust a = p.adjust[e];
            const int j = a.token - base;
            if (j >= 0 && j < kSampleChunk) values[j] = __fadd_rn(values[j], a.bias);
        }
        __syncthreads();
        const bool repetition = p.repetition_penalty != 1.0f;
        const bool additive = p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
        for (int e = threadIdx.x; e < p.n_penalty; e += kSampleThreads) {
            const mlxe_sample_adjust a = p.adjust[p.n_bias + e];
            const int j = a.token - base;
            if (j < 0 || j >= kSampleChunk) continue;
            float logit = values[j];
            if (repetition)
                logit = logit < 0 ? __fmul_rn(logit, p.repetition_penalty) : __fdiv_rn(logit, p.repetition_penalty);
            if (additive)
                logit = __fsub_rn(logit, __fadd_rn(__fmul_rn((float)a.count, p.frequency_penalty), p.presence_penalty));
            values[j] = logit;
        }
        __syncthreads();
    }
    const bool sampling = p.temperature > 0.0f;
    int k = p.top_k < 1 ? 1 : p.top_k;
    if (k > kSampleMaxK) k = kSampleMaxK;
    best_pair mine = {__int_as_float(0x7fc00000), 0x7fffffff};
    for (int j = threadIdx.x; j < kSampleChunk; j += kSampleThreads) {
        const int i = base + j;
        sample_key key = 0;
        if (i < vocab) {
            keep_better(mine, values[j], i);
            const float logit = __fdiv_rn(values[j], p.temperature);
            if (sampling && !isnan(logit) && logit != kMinusInfinity) key = make_key(logit, i);
        }
        keys[j] = key;
    }
    best_pair overall = block_best<kSampleThreads>(mine);
    if (sampling) {
        sort_descending(keys);
        for (int j = threadIdx.x; j < k; j += kSampleThreads) partial[blockIdx.x * kSampleMaxK + j] = keys[j];
    }
    if (gridDim.x > 1) {
        if (threadIdx.x == 0) best[blockIdx.x] = overall;
        __threadfence();
        __syncthreads();
        if (threadIdx.x == 0) last = atomicAdd(counter, 1u) == gridDim.x - 1;
        __syncthreads();
        if (!last) return;
        __threadfence();
        best_pair gathered = {__int_as_float(0x7fc00000), 0x7fffffff};
        for (int b = threadIdx.x; b < (int)gridDim.x; b += kSampleThreads) {
            volatile best_pair *other = &best[b];
            keep_better(gathered, other->value, other->index);
        }
        overall = block_best<kSampleThreads>(gathered);
    }
    /* from here one block: the argmax, or the merge and the draw */
    const int argmax = overall.index < vocab ? overall.index : 0;
    if (!sampling) {
        if (threadIdx.x == 0) {
            out[0] = argmax;
            *counter = 0;
        }
        return;
    }
    const int n_entries = (int)gridDim.x * k;
    int next = 0, filled = 0;
    do {
        __syncthreads();
        const int room = kSampleChunk - filled;
        for (int j = threadIdx.x; j < room; j += kSampleThreads) {
            const int e = next + j;
            keys[filled + j] = e < n_entries ? __ldcg(&partial[(e / k) * kSampleMaxK + e % k]) : 0;
        }
        next += room;
        sort_descending(keys);
        filled = k;
    } while (next < n_entries);
    /* keys[0..k): the top k candidates, best first (0: none) */
    const sample_key top = keys[0];
    if (top == 0 || key_logit(top) == -kMinusInfinity) {
        /* no candidate: the greedy choice; +inf: the first of them */
        if (threadIdx.x == 0) {
            out[0] = top == 0 ? argmax : key_id(top);
            *counter = 0;
        }
        return;
    }
    const float max = key_logit(top);
    for (int j = threadIdx.x; j < k; j += kSampleThreads)
        weights[j] = keys[j] ? mlxe_sample_weight(__fsub_rn(key_logit(keys[j]), max), p.weight_shift) : 0;
    __syncthreads();
    if (threadIdx.x == 0) {
        int m = 0;
        running[0] = 0;
        while (m < k && keys[m]) {
            running[m + 1] = running[m] + weights[m];
            m++;
        }
        n_candidates = m;
        cut = m;
        min_p_cut = m;
        chosen = -1;
    }
    __syncthreads();
    const int m = n_candidates;
    if (p.top_p < 1.0f) {
        for (int j = threadIdx.x; j < m; j += kSampleThreads)
            if (mlxe_sample_top_p_stops(running[j], running[m], p.top_p)) atomicMin(&cut, j > 0 ? j : 1);
        __syncthreads();
    }
    const int after_top_p = cut;
    if (p.min_p > 0.0f) {
        const double threshold = __dadd_rn((double)max, p.log_min_p);
        for (int j = threadIdx.x; j < after_top_p; j += kSampleThreads)
            if ((double)key_logit(keys[j]) < threshold) atomicMin(&min_p_cut, j);
        __syncthreads();
    }
    const int n = after_top_p < min_p_cut ? after_top_p : min_p_cut;
    const uint64_t target = mlxe_sample_target(p.random_bits, running[n]);
    for (int j = threadIdx.x; j < n; j += kSampleThreads)
        if (running[j] <= target && target < running[j + 1]) chosen = j;
    __syncthreads();
    if (threadIdx.x == 0) {
        out[0] = key_id(keys[chosen >= 0 ? chosen : n - 1]);
        *counter = 0;
    }
}

__global__ void no_device_choice_kernel(int32_t *out) { out[0] = -1; }

}  // namespace

extern "C" void mlxe_cuda_sample(mlxe_device *dev, const float *x, int64_t vocab, const mlxe_sample_params *params,
                                 int32_t *out_token) {
    if (vocab <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (vocab > INT32_MAX - kSampleChunk) {
        mlxe_cuda_note_error(state, cudaErrorInvalidValue, "sample (a vocabulary of 2^31 tokens or more)");
        return;
    }
    const int64_t blocks = (vocab + kSampleChunk - 1) / kSampleChunk;
    const size_t best_bytes = ((size_t)blocks * sizeof(best_pair) + 255) & ~(size_t)255;
    const size_t bytes = kSampleCounterBytes + best_bytes + (size_t)blocks * kSampleMaxK * sizeof(sample_key);
    void *before = state->sample.ptr;
    if (!mlxe_cuda_buffer_reserve(state, &state->sample, bytes)) {
        /* no scratch (first use while recording a graph): the host samples */
        no_device_choice_kernel<<<1, 1, 0, state->stream>>>(out_token);
        mlxe_cuda_check_launch(state, "sample (no scratch)");
        return;
    }
    char *base = static_cast<char *>(state->sample.ptr);
    /* a new buffer's counter starts at zero; launches leave it zero */
    if (state->sample.ptr != before) cudaMemsetAsync(base, 0, kSampleCounterBytes, state->stream);
    sample_kernel<<<(unsigned)blocks, kSampleThreads, 0, state->stream>>>(
        x, (int)vocab, params, reinterpret_cast<unsigned *>(base),
        reinterpret_cast<best_pair *>(base + kSampleCounterBytes),
        reinterpret_cast<sample_key *>(base + kSampleCounterBytes + best_bytes), out_token);
    mlxe_cuda_check_launch(state, "sample");
}
