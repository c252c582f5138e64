/* runtime/cuda/cuda_prefetch.cu — ops.h prefetch: the first rows of the
 * next product's weights pulled into the L2 cache while the stream does
 * something that leaves memory idle.
 *
 * Why: a one-token step streams every weight once, but the decode attention
 * (~7 us a layer on the 8B shape) reads only a few MB of cache, and
 * memory idles meanwhile. A small kernel on a branch off the stream —
 * nothing waits for it but the end of a recording — issues sm_90 bulk
 * prefetches (`cp.async.bulk.prefetch.L2`, 16 KB each, no registers held)
 * of o_proj's first rows, so o_proj starts on L2 hits.
 *
 * Measured (H100, docs/CUDA.md version 11): 8 MB a call gives +0.3-0.7%
 * decode (8B 8-bit 299.6 -> 301.0 tok/s, 1B BF16 942.7 -> 945.9, 8B BF16
 * 182.6 -> 183.9), 24 MB +0.3%; but -0.5% on 4-bit weights and -1% where
 * the whole matrix fits (1B 8-bit), so those are left alone. In the stream
 * itself (the kernel waiting for the one before, as the overlapped-launch
 * rules want) it cost up to 22%: the next kernel waits for the prefetch
 * kernel, which seems to last until its prefetches land. Before every product
 * rather than only o_proj it cost 2-45%: the prefetches queue ahead of the
 * latency-bound loads of the attention and the quantization kernels.
 * MLXE_CUDA_PREFETCH=0 turns it off,
 * MLXE_CUDA_PREFETCH_MB caps a call (default 8). sm_90 only. */
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_common.cuh"

using namespace mlxe_cuda;

namespace {

constexpr int kPrefetchThreads = 128;
constexpr int kMaxRegions = 3;      /* weights, scales, biases */
constexpr uint32_t kPiece = 16u << 10; /* bytes per bulk prefetch */

struct prefetch_regions {
    const char *start[kMaxRegions];
    uint64_t bytes[kMaxRegions]; /* multiples of 16 */
    int n;
};

__global__ void __launch_bounds__(kPrefetchThreads) prefetch_l2_kernel(prefetch_regions regions) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    const uint64_t thread = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const uint64_t threads = (uint64_t)gridDim.x * blockDim.x;
    for (int r = 0; r < regions.n; r++)
        for (uint64_t offset = thread * kPiece; offset < regions.bytes[r]; offset += threads * kPiece) {
            const uint64_t left = regions.bytes[r] - offset;
            const uint32_t size = left < kPiece ? (uint32_t)left : kPiece;
            asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(regions.start[r] + offset), "r"(size)
                         : "memory");
        }
#endif
}

size_t dtype_bytes(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F32 ? 4 : 2;
}

/* Bytes of one row of m: its values, and for MLX quantization its scale and bias per group. */
uint64_t row_bytes(const mlxe_matrix *m) {
    if (!m->bits) return (uint64_t)m->cols * dtype_bytes(m->dtype);
    return (uint64_t)m->cols * (uint64_t)m->bits / 8 +
           2 * (uint64_t)(m->cols / m->group_size) * dtype_bytes(m->scale_dtype);
}

/* Adds [p, p + bytes) rounded down to 16 bytes, when p is 16-byte aligned. */
void add_region(prefetch_regions &regions, const void *p, uint64_t bytes) {
    bytes &= ~(uint64_t)15;
    if (!p || bytes == 0 || ((uintptr_t)p & 15u) || regions.n == kMaxRegions) return;
    regions.start[regions.n] = static_cast<const char *>(p);
    regions.bytes[regions.n] = bytes;
    regions.n++;
}

}  // namespace

extern "C" size_t mlxe_cuda_prefetch_cap(void) {
    const char *value = getenv("MLXE_CUDA_PREFETCH_MB");
    const long mb = value ? atol(value) : 8;
    return mb > 0 && mb < (1L << 20) ? (size_t)mb << 20 : 0;
}

extern "C" void mlxe_cuda_prefetch(mlxe_device *dev, const mlxe_matrix *m) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    if (state->prefetch_cap == 0 || m->packed || m->rows < 1 || m->cols < 1 || (m->bits && m->group_size < 1)) return;
    /* where it measured faster (H100, version 11): float or 8-bit weights
     * larger than the cap (8B 8-bit, 1B and 8B BF16); 4-bit weights and
     * matrices that fit wholly (1B 8-bit) measured slower */
    const uint64_t per_row = row_bytes(m);
    if ((m->bits && m->bits < 8) || (uint64_t)m->rows * per_row <= state->prefetch_cap) return;
    const uint64_t rows = state->prefetch_cap / per_row;
    prefetch_regions regions = {};
    if (m->bits) {
        const uint64_t group_bytes = (uint64_t)(m->cols / m->group_size) * dtype_bytes(m->scale_dtype);
        add_region(regions, m->data, rows * (uint64_t)m->cols * (uint64_t)m->bits / 8);
        add_region(regions, m->scales, rows * group_bytes);
        add_region(regions, m->biases, rows * group_bytes);
    } else {
        add_region(regions, m->data, rows * per_row);
    }
    if (regions.n == 0) return;
    uint64_t total = 0;
    for (int i = 0; i < regions.n; i++) total += regions.bytes[i];
    /* a branch off the stream: only the end of a recording joins it
     * (cuda_device.c); weights are never written, so nothing else waits */
    cudaError_t error = cudaEventRecord(state->prefetch_fork, state->stream);
    if (error == cudaSuccess) error = cudaStreamWaitEvent(state->prefetch_stream, state->prefetch_fork, 0);
    if (error != cudaSuccess) {
        mlxe_cuda_note_error(state, error, "prefetch");
        return;
    }
    if (state->capturing) state->prefetch_forked = true;
    const uint64_t pieces = (total + kPiece - 1) / kPiece;
    unsigned blocks = (unsigned)((pieces + kPrefetchThreads - 1) / kPrefetchThreads);
    /* a block per multiprocessor at most */
    if (state->sm_count > 0 && blocks > (unsigned)state->sm_count) blocks = (unsigned)state->sm_count;
    prefetch_l2_kernel<<<blocks, kPrefetchThreads, 0, state->prefetch_stream>>>(regions);
    /* not mlxe_cuda_check_launch: an int8 form waiting for the next
     * product (prequantized_x) stays good across this branch */
    error = cudaGetLastError();
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "prefetch");
}
