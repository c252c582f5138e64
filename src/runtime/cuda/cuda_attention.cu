/* runtime/cuda/cuda_attention.cu — causal attention over the KV cache.
 *
 * One block of four warps per (token, head) pair and per split of the
 * positions that token attends to ([lo, pos], see runtime/ops.h). Each warp
 * takes every fourth position of its split: the score is a warp-wide dot
 * product (each lane holds head_dim/32 elements of q, pre-scaled), and the
 * softmax is computed online (running max, rescaled sum and accumulator,
 * as cpu_attention.c), so no score row and no T×T matrix ever exists. The
 * four warps merge in shared memory. When there are too few pairs to fill
 * the GPU (decode: one token), the positions are split across blocks
 * (flash-decoding) and a second kernel merges the splits' partial results
 * (max, sum, unnormalised accumulator) by the same rescaling. Decode
 * normally takes the grouped kernel instead: one block per (token, kv head,
 * split) serves every query head of the kv head's group, so each cached
 * row is read once per group, and the last block of a (token, kv head)
 * merges the splits itself (one launch). With many pairs a lighter kernel
 * gives each pair one warp (below). Prompts of at
 * least kFlashMinRows tokens with head_dim 64 or 128 take the tensor-core
 * kernel of cuda_flash_attention.cu instead (not in the MLXE_CUDA_GEMM=f32
 * mode, which computes as the CPU does). */
#include <atomic>
#include <cooperative_groups.h>
#include <math.h>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_flash_attention.h"
#include "runtime/cuda/cuda_int8_activations.cuh"
#include "runtime/cuda/cuda_matvec_int8.h"

using namespace mlxe_cuda;

namespace {

constexpr int kAttentionWarps = 4;
constexpr int kMaxHeadDim = 256;
constexpr int kMinSplitPositions = 64;
/* Blocks per multiprocessor the split kernel aims for (decode). */
constexpr int kSplitBlocksPerSm = 8;
/* From this many (token, head) pairs per multiprocessor on, one warp per pair. */
constexpr int kWarpKernelMinPairsPerSm = 8;
/* From this many tokens on, the flash kernel (its tiles hold 64 tokens). */
constexpr int64_t kFlashMinRows = 64;

struct attention_params {
    const float *q, *k_cache, *v_cache;
    const int32_t *slots, *positions;
    int64_t n_heads, n_kv_heads, head_dim, capacity, window;
    float scale;
    int64_t split_len;
    int n_splits;
    float *out;
    float *partial; /* [pairs][n_splits][head_dim + 2] when n_splits > 1 */
    /* grouped kernel only (rope_attention): when new_k is set, q is not
     * rotated yet and the token's own k and v are new_k / new_v
     * ([n_rows][n_kv_heads][head_dim], k unrotated): the kernel rotates q
     * and k (inv_freq, rope_scale) and writes k and v into the cache */
    const float *new_k, *new_v, *inv_freq;
    float rope_scale;
    /* grouped kernel only: the output's int8 form for the o_proj product
     * too (xq4 NULL: not), head_dim a multiple of 32 */
    int8_activations int8_out;
    /* grouped kernel, rope_attention only: the first step's cached rows
     * read before waiting for the previous kernel (MLXE_CUDA_ATTENTION_EARLY) */
    int early_rows;
    /* grouped kernel: the next kernel (o_proj) scheduled only as this
     * one's blocks exit, not after their positions (MLXE_CUDA_ATTENTION_TRIGGER=late) */
    int late_trigger;
};

/* out[i] = v, and with an int8 form wanted, its block of 32 (i = the
 * warp's 32 consecutive outputs: the whole warp calls this together). */
__device__ __forceinline__ void write_output(const attention_params &a, int64_t i, float v) {
    a.out[i] = v;
    if (a.int8_out.xq4) write_int8_block(v, (int)(i % kWarp), i / kXBlock, a.int8_out);
}

template <int DPL> /* head-dim elements per lane: ceil(head_dim / 32) */
__global__ void __launch_bounds__(kAttentionWarps * kWarp) attention_kernel(attention_params a) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    __shared__ float warp_max_shared[kAttentionWarps], warp_sum_shared[kAttentionWarps];
    __shared__ float warp_acc[kAttentionWarps][DPL * kWarp];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int64_t pair = blockIdx.x;
    const int64_t t = pair / a.n_heads, h = pair % a.n_heads;
    const int64_t kv_head = h / (a.n_heads / a.n_kv_heads);
    const int64_t pos = a.positions[t];
    const int64_t lo = a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : 0;
    const int64_t begin = lo + (int64_t)blockIdx.y * a.split_len;
    const int64_t end = begin + a.split_len < pos + 1 ? begin + a.split_len : pos + 1;
    const int64_t cache_base = ((int64_t)a.slots[t] * a.n_kv_heads + kv_head) * a.capacity * a.head_dim;
    const float *keys = a.k_cache + cache_base, *values = a.v_cache + cache_base;

    float q[DPL], acc[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        int64_t d = lane + j * kWarp;
        q[j] = d < a.head_dim ? a.q[pair * a.head_dim + d] * a.scale : 0.0f;
        acc[j] = 0.0f;
    }
    float running_max = -INFINITY, running_sum = 0.0f;
    for (int64_t p = begin + warp; p < end; p += kAttentionWarps) {
        const float *key = keys + p * a.head_dim, *value = values + p * a.head_dim;
        float score = 0.0f;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int64_t d = lane + j * kWarp;
            if (d < a.head_dim) score += q[j] * key[d];
        }
        score = warp_sum(score);
        float new_max = fmaxf(running_max, score);
        float correction = expf(running_max - new_max); /* 0 on the first position */
        float weight = expf(score - new_max);
        running_sum = running_sum * correction + weight;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int64_t d = lane + j * kWarp;
            acc[j] = acc[j] * correction + (d < a.head_dim ? weight * value[d] : 0.0f);
        }
        running_max = new_max;
    }
    if (lane == 0) {
        warp_max_shared[warp] = running_max;
        warp_sum_shared[warp] = running_sum;
    }
#pragma unroll
    for (int j = 0; j < DPL; j++) warp_acc[warp][lane + j * kWarp] = acc[j];
    __syncthreads();

    float block_max = -INFINITY;
#pragma unroll
    for (int w = 0; w < kAttentionWarps; w++) block_max = fmaxf(block_max, warp_max_shared[w]);
    float factors[kAttentionWarps], block_sum_value = 0.0f;
#pragma unroll
    for (int w = 0; w < kAttentionWarps; w++) {
        factors[w] = block_max == -INFINITY ? 0.0f : expf(warp_max_shared[w] - block_max);
        block_sum_value += factors[w] * warp_sum_shared[w];
    }
    if (a.n_splits == 1) {
        float inverse = block_sum_value > 0.0f ? 1.0f / block_sum_value : 0.0f;
        for (int64_t d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
            float v = 0.0f;
#pragma unroll
            for (int w = 0; w < kAttentionWarps; w++) v += factors[w] * warp_acc[w][d];
            a.out[pair * a.head_dim + d] = v * inverse;
        }
    } else {
        float *partial = a.partial + (pair * a.n_splits + blockIdx.y) * (a.head_dim + 2);
        if (threadIdx.x == 0) {
            partial[0] = block_max;
            partial[1] = block_sum_value;
        }
        for (int64_t d = threadIdx.x; d < a.head_dim; d += blockDim.x) {
            float v = 0.0f;
#pragma unroll
            for (int w = 0; w < kAttentionWarps; w++) v += factors[w] * warp_acc[w][d];
            partial[2 + d] = v;
        }
    }
}

/* Decode: grid (n_rows * n_kv_heads, n_splits). The block's GT query heads
 * (the group of its kv head; GT a power of two at least the group, heads
 * past the group masked) share every key and value row the block reads.
 * The split length follows the token's real position (read on the GPU),
 * so a recorded graph sized for a longer span still divides the work
 * evenly. Each warp takes every WARPS-th position, P at a time (all the
 * rows' loads in flight before the arithmetic), with the online softmax
 * per head; the warps merge in shared memory, then either write the
 * output (one split) or their partial result, and the last block of the
 * (token, kv head) to finish (atomic counter, reset by it for the next
 * launch or replay) merges the splits; or the splits are one cluster
 * (below). */
constexpr int kMaxGroupedSplits = 64;

/* CLUSTER > 0 (sm_90): the grid's splits of a (token, kv head) are one
 * thread-block cluster of CLUSTER blocks (gridDim.y == CLUSTER) and merge
 * through distributed shared memory instead: each block stores its (max,
 * sum, unnormalised accumulator) straight into the shared memory of the
 * block that merges that slice of the group's outputs (32-aligned, one
 * slice per block), the cluster passes one barrier, and each block merges
 * its slice from its own memory. No partial results in global memory, no
 * fence, no atomic counter, no round trip to read another block's values,
 * no last block merging everything alone: on the 8B shape (H100) the
 * global merge ended ~5 us after the blocks' own work (docs/CUDA.md,
 * version 9). P: positions per lane group (below) and step.
 *
 * LPP: lanes per position. 32: each warp takes one position at a time,
 * lane l holding dimensions l, l + 32, ... (DPL of them), and a score is a
 * warp-wide sum. 8 or 16 (head_dim = 32 * DPL = 8 * LPP): a warp takes
 * 32 / LPP positions at once, each lane holding 8 dimensions in two
 * 16-byte runs (4i.. and head_dim/2 + 4i.., so RoPE's pairs stay in the
 * lane), and a score is a sum over LPP lanes: per position 3-4 shuffles
 * over a quarter or half of a warp instead of 5 over a whole one, and one
 * exponential per LPP lanes, where the 32-lane layout spent most of its
 * time (docs/CUDA.md, version 10). The lane groups of a warp merge before
 * the warps do. */
template <int DPL, int GT, int WARPS, int CLUSTER, int P, int LPP>
__global__ void __launch_bounds__(WARPS * kWarp)
    attention_grouped_kernel(attention_params a, unsigned *counters) {
    constexpr int G = kWarp / LPP;               /* positions a warp takes at once */
    constexpr int D = DPL * kWarp / LPP;         /* dimensions a lane holds */
    constexpr int VW = LPP == kWarp ? 1 : 4;     /* of them contiguous */
    static_assert(LPP == kWarp || D == 8 || D == 16, "lane groups hold 8 or 16 dimensions per lane");
    __shared__ float warp_max_shared[WARPS][GT], warp_sum_shared[WARPS][GT];
    __shared__ float warp_acc[WARPS][GT][DPL * kWarp];
    __shared__ float factor_shared[WARPS][GT], inverse_shared[GT];
    __shared__ float split_weight[GT][kMaxGroupedSplits], split_sum[GT][kMaxGroupedSplits];
    __shared__ bool last_block;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    /* this block's arrival says its shared memory exists: the others may
     * write into it once all have arrived (waited for before the merge) */
    if constexpr (CLUSTER > 0) asm volatile("barrier.cluster.arrive.relaxed.aligned;" ::: "memory");
#endif
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int sub = lane % LPP, lane_group = lane / LPP;
    /* the head dimension of this lane's element j */
    auto dim_of = [&](int j) { return (j / VW) * (LPP * VW) + sub * VW + j % VW; };
    /* a row's elements of this lane (zeros where `in` is false or past head_dim) */
    auto load_row = [&](const float *row, bool in, float(&out)[D]) {
        if constexpr (VW == 4) {
#pragma unroll
            for (int c = 0; c < D / 4; c++) {
                const float4 v = in ? *reinterpret_cast<const float4 *>(row + dim_of(4 * c)) : make_float4(0, 0, 0, 0);
                out[4 * c] = v.x;
                out[4 * c + 1] = v.y;
                out[4 * c + 2] = v.z;
                out[4 * c + 3] = v.w;
            }
        } else {
#pragma unroll
            for (int j = 0; j < D; j++) out[j] = in && dim_of(j) < a.head_dim ? row[dim_of(j)] : 0.0f;
        }
    };
    const int64_t t = blockIdx.x / a.n_kv_heads, kv_head = blockIdx.x % a.n_kv_heads;
    const int group = (int)(a.n_heads / a.n_kv_heads);
    const int split = blockIdx.y, n_splits = gridDim.y;
    /* Before the wait: what no kernel of this step writes (the positions
     * and slots, uploaded before the step's first kernel; RoPE's sines);
     * and for rope_attention (one token, its own row from registers) the
     * first step's cached rows, written by earlier steps. After it, one
     * round trip for everything the previous kernel wrote (q, k, v). Each
     * of these was a round trip of its own: ~3.3 us from the wait to q
     * rotated, 8B shape on an H100 (docs/CUDA.md, version 9). */
    const int64_t pos = a.positions[t];
    const int64_t lo = a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : 0;
    const int64_t split_len = (pos + 1 - lo + n_splits - 1) / n_splits;
    const int64_t begin = lo + split * split_len;
    const int64_t end = begin + split_len < pos + 1 ? begin + split_len : pos + 1;
    const int64_t cache_base = ((int64_t)a.slots[t] * a.n_kv_heads + kv_head) * a.capacity * a.head_dim;
    const float *keys = a.k_cache + cache_base, *values = a.v_cache + cache_base;
    const int64_t first_pair = t * a.n_heads + kv_head * group;
    /* rope_attention: the token's own k and v, k rotated here (head_dim is
     * 32 * DPL there, so a lane's element j has its partner in j + D/2) */
    const bool rope = a.new_k != nullptr;
    constexpr int HALF = D / 2 > 0 ? D / 2 : 1;
    float rope_c[HALF], rope_s[HALF];
    if (rope) {
#pragma unroll
        for (int j = 0; j < D / 2; j++)
            rope_cos_sin((int32_t)pos, a.inv_freq[dim_of(j)], a.rope_scale, rope_c[j], rope_s[j]);
    }
    /* P positions per lane group and step (a warp's first position, then
     * every WARPS * G-th), all their loads issued before any arithmetic:
     * one memory round trip per step instead of one per position */
    constexpr int STRIDE = WARPS * G;
    float keys_step[P][D], values_step[P][D];
    auto load_step = [&](int64_t p) {
#pragma unroll
        for (int i = 0; i < P; i++) {
            const int64_t at = p + lane_group + i * STRIDE;
            load_row(keys + at * a.head_dim, at < end, keys_step[i]);
            load_row(values + at * a.head_dim, at < end, values_step[i]);
        }
    };
    const bool early_rows = rope && a.early_rows;
    const int64_t first_position = begin + warp * G;
    if (early_rows) load_step(first_position);
    wait_for_previous_kernels();
    float q[GT][D], acc[GT][D], running_max[GT], running_sum[GT], own_k[D], own_v[D];
#pragma unroll
    for (int g = 0; g < GT; g++) load_row(a.q + (first_pair + g) * a.head_dim, g < group, q[g]);
    if (rope) {
        const int64_t own = (t * a.n_kv_heads + kv_head) * a.head_dim;
        load_row(a.new_k + own, true, own_k);
        load_row(a.new_v + own, true, own_v);
#pragma unroll
        for (int j = 0; j < D / 2; j++) {
            rope_apply(rope_c[j], rope_s[j], own_k[j], own_k[j + D / 2]);
#pragma unroll
            for (int g = 0; g < GT; g++) rope_apply(rope_c[j], rope_s[j], q[g][j], q[g][j + D / 2]);
        }
        if (warp == 0 && lane < LPP && begin <= pos && pos < end) {
            float *k_row = const_cast<float *>(keys) + pos * a.head_dim;
            float *v_row = const_cast<float *>(values) + pos * a.head_dim;
#pragma unroll
            for (int j = 0; j < D; j++) {
                k_row[dim_of(j)] = own_k[j];
                v_row[dim_of(j)] = own_v[j];
            }
        }
    }
#pragma unroll
    for (int g = 0; g < GT; g++) {
        running_max[g] = -INFINITY;
        running_sum[g] = 0.0f;
#pragma unroll
        for (int j = 0; j < D; j++) {
            q[g][j] *= a.scale; /* after the rotation, as attention_kernel reads it */
            acc[g][j] = 0.0f;
        }
    }
    for (int64_t p = first_position; p < end; p += P * STRIDE) { /* warp-uniform */
        if (!early_rows || p != first_position) load_step(p);
        if (rope) {
#pragma unroll
            for (int i = 0; i < P; i++)
                if (p + lane_group + i * STRIDE == pos) { /* the row this launch writes, from registers */
#pragma unroll
                    for (int j = 0; j < D; j++) {
                        keys_step[i][j] = own_k[j];
                        values_step[i][j] = own_v[j];
                    }
                }
        }
#pragma unroll
        for (int g = 0; g < GT; g++) {
            float score[P];
#pragma unroll
            for (int i = 0; i < P; i++) {
                float dot = 0.0f;
#pragma unroll
                for (int j = 0; j < D; j++) dot += q[g][j] * keys_step[i][j];
#pragma unroll
                for (int offset = LPP / 2; offset > 0; offset >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
                score[i] = dot;
            }
            float new_max = running_max[g];
#pragma unroll
            for (int i = 0; i < P; i++)
                if (p + lane_group + i * STRIDE < end) new_max = fmaxf(new_max, score[i]);
            /* 0 on the group's first position; 1 while it has none yet */
            const float correction = new_max == -INFINITY ? 1.0f : expf(running_max[g] - new_max);
            float weight[P], step_sum = 0.0f;
#pragma unroll
            for (int i = 0; i < P; i++) {
                weight[i] = p + lane_group + i * STRIDE < end ? expf(score[i] - new_max) : 0.0f;
                step_sum += weight[i];
            }
            running_sum[g] = running_sum[g] * correction + step_sum;
#pragma unroll
            for (int j = 0; j < D; j++) {
                float value = acc[g][j] * correction;
#pragma unroll
                for (int i = 0; i < P; i++) value += weight[i] * values_step[i][j];
                acc[g][j] = value;
            }
            running_max[g] = new_max;
        }
    }
    /* the warp's lane groups merge: (max, sum, accumulator) into lanes 0 .. LPP-1 */
    if constexpr (G > 1) {
#pragma unroll
        for (int g = 0; g < GT; g++) {
            float warp_max_value = running_max[g];
#pragma unroll
            for (int offset = LPP; offset < kWarp; offset <<= 1)
                warp_max_value = fmaxf(warp_max_value, __shfl_xor_sync(0xffffffffu, warp_max_value, offset));
            const float factor = running_max[g] == -INFINITY ? 0.0f : expf(running_max[g] - warp_max_value);
            float sum = running_sum[g] * factor;
#pragma unroll
            for (int offset = LPP; offset < kWarp; offset <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
#pragma unroll
            for (int j = 0; j < D; j++) {
                float v = acc[g][j] * factor;
#pragma unroll
                for (int offset = LPP; offset < kWarp; offset <<= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
                acc[g][j] = v;
            }
            running_max[g] = warp_max_value;
            running_sum[g] = sum;
        }
    }
    /* o_proj's blocks may be placed now, where this kernel leaves room
     * (late_trigger: only once its blocks exit, so they spread evenly) */
    if (!a.late_trigger) let_next_kernel_start();
#pragma unroll
    for (int g = 0; g < GT; g++) {
        if (lane == 0) {
            warp_max_shared[warp][g] = running_max[g];
            warp_sum_shared[warp][g] = running_sum[g];
        }
        if (lane < LPP) {
#pragma unroll
            for (int j = 0; j < D; j++) warp_acc[warp][g][dim_of(j)] = acc[g][j];
        }
    }
    __syncthreads();
    /* per head: the block's max, each warp's factor, the block's sum */
    if (threadIdx.x < GT) {
        const int g = threadIdx.x;
        float block_max = -INFINITY;
        for (int w = 0; w < WARPS; w++) block_max = fmaxf(block_max, warp_max_shared[w][g]);
        float block_sum_value = 0.0f;
        for (int w = 0; w < WARPS; w++) {
            factor_shared[w][g] = block_max == -INFINITY ? 0.0f : expf(warp_max_shared[w][g] - block_max);
            block_sum_value += factor_shared[w][g] * warp_sum_shared[w][g];
        }
        warp_max_shared[0][g] = block_max; /* read back below, after the barrier */
        inverse_shared[g] = n_splits > 1 ? block_sum_value : block_sum_value > 0.0f ? 1.0f / block_sum_value : 0.0f;
    }
    __syncthreads();
    if constexpr (CLUSTER > 0) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        namespace cg = cooperative_groups;
        cg::cluster_group cluster = cg::this_cluster();
        const int heads = group < GT ? group : GT;
        const int outputs = heads * (int)a.head_dim;
        const int slice = ((outputs + CLUSTER * kWarp - 1) / (CLUSTER * kWarp)) * kWarp;
        /* each block stores its values into the merging blocks' memory */
        constexpr int kMaxSlice = ((GT * DPL * kWarp + CLUSTER * kWarp - 1) / (CLUSTER * kWarp)) * kWarp;
        __shared__ float recv_acc[CLUSTER][kMaxSlice], recv_max[CLUSTER][GT], recv_sum[CLUSTER][GT];
        asm volatile("barrier.cluster.wait.aligned;" ::: "memory"); /* every block has started */
        for (int i = threadIdx.x; i < outputs; i += blockDim.x) {
            const int g = i / (int)a.head_dim, d = i % (int)a.head_dim;
            float v = 0.0f;
#pragma unroll
            for (int w = 0; w < WARPS; w++) v += factor_shared[w][g] * warp_acc[w][g][d];
            *cluster.map_shared_rank(&recv_acc[split][i % slice], i / slice) = v;
        }
        if ((int)threadIdx.x < heads * CLUSTER) {
            const int g = threadIdx.x % heads, r = threadIdx.x / heads;
            *cluster.map_shared_rank(&recv_max[split][g], r) = warp_max_shared[0][g];
            *cluster.map_shared_rank(&recv_sum[split][g], r) = inverse_shared[g];
        }
        asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
        asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory"); /* every block's stores are in */
        const int first = split * slice, last = first + slice < outputs ? first + slice : outputs;
        for (int i = first + threadIdx.x; i < last; i += blockDim.x) {
            const int g = i / (int)a.head_dim, d = i % (int)a.head_dim;
            float max_value = -INFINITY;
#pragma unroll
            for (int c = 0; c < CLUSTER; c++) max_value = fmaxf(max_value, recv_max[c][g]);
            float total = 0.0f, v = 0.0f;
#pragma unroll
            for (int c = 0; c < CLUSTER; c++) {
                const float m = recv_max[c][g];
                const float weight = m == -INFINITY ? 0.0f : expf(m - max_value);
                total += weight * recv_sum[c][g];
                v += weight * recv_acc[c][i - first];
            }
            write_output(a, (first_pair + g) * a.head_dim + d, v * (total > 0.0f ? 1.0f / total : 0.0f));
        }
#endif
        return;
    }
    const int64_t stride = a.head_dim + 2;
    for (int i = threadIdx.x; i < group * a.head_dim && i < GT * a.head_dim; i += blockDim.x) {
        const int g = i / (int)a.head_dim, d = i % (int)a.head_dim;
        float v = 0.0f;
#pragma unroll
        for (int w = 0; w < WARPS; w++) v += factor_shared[w][g] * warp_acc[w][g][d];
        if (n_splits == 1) {
            write_output(a, (first_pair + g) * a.head_dim + d, v * inverse_shared[g]);
        } else {
            float *partial = a.partial + ((first_pair + g) * n_splits + split) * stride;
            if (d == 0) {
                partial[0] = warp_max_shared[0][g];
                partial[1] = inverse_shared[g]; /* the block's sum */
            }
            partial[2 + d] = v;
        }
    }
    if (n_splits == 1) return;

    /* the last block of this (token, kv head) merges the splits */
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) last_block = atomicAdd(&counters[blockIdx.x], 1u) == (unsigned)n_splits - 1;
    __syncthreads();
    if (!last_block) return;
    __threadfence();
    /* every split's (max, sum) at once, one load per thread: a loop per
     * head over the splits waited one L2 round trip per split, most of the
     * kernel's time (docs/CUDA.md, version 7) */
    const int heads = group < GT ? group : GT;
    for (int i = threadIdx.x; i < heads * n_splits; i += blockDim.x) {
        const int g = i / n_splits, s = i % n_splits;
        const float *split_stats = a.partial + ((first_pair + g) * n_splits + s) * stride;
        split_weight[g][s] = __ldcg(split_stats); /* the split's max, made its weight below */
        split_sum[g][s] = __ldcg(split_stats + 1);
    }
    __syncthreads();
    if ((int)threadIdx.x < heads) {
        const int g = threadIdx.x;
        float max_value = -INFINITY;
        for (int s = 0; s < n_splits; s++) max_value = fmaxf(max_value, split_weight[g][s]);
        float total = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            const float m = split_weight[g][s];
            const float weight = m == -INFINITY ? 0.0f : expf(m - max_value);
            split_weight[g][s] = weight;
            total += weight * split_sum[g][s];
        }
        inverse_shared[g] = total > 0.0f ? 1.0f / total : 0.0f;
    }
    __syncthreads();
    constexpr int kMergeLoads = 8; /* splits' values in flight per output */
    for (int i = threadIdx.x; i < group * a.head_dim && i < GT * a.head_dim; i += blockDim.x) {
        const int g = i / (int)a.head_dim, d = i % (int)a.head_dim;
        const float *first = a.partial + (first_pair + g) * n_splits * stride + 2 + d;
        float v = 0.0f;
        int s = 0;
        for (; s + kMergeLoads <= n_splits; s += kMergeLoads) {
            float values[kMergeLoads];
#pragma unroll
            for (int u = 0; u < kMergeLoads; u++) values[u] = __ldcg(first + (s + u) * stride);
#pragma unroll
            for (int u = 0; u < kMergeLoads; u++)
                if (split_weight[g][s + u] != 0.0f) v += split_weight[g][s + u] * values[u];
        }
        for (; s < n_splits; s++)
            if (split_weight[g][s] != 0.0f) v += split_weight[g][s] * __ldcg(first + s * stride);
        write_output(a, (first_pair + g) * a.head_dim + d, v * inverse_shared[g]);
    }
    if (threadIdx.x == 0) counters[blockIdx.x] = 0;
}

/* Merges the splits of one (token, head) pair. */
__global__ void attention_merge_kernel(const float *partial, int n_splits, int64_t head_dim, float *out) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int64_t pair = blockIdx.x;
    const float *first = partial + pair * n_splits * (head_dim + 2);
    float max_value = -INFINITY;
    for (int s = 0; s < n_splits; s++) max_value = fmaxf(max_value, first[s * (head_dim + 2)]);
    float total = 0.0f;
    for (int s = 0; s < n_splits; s++) {
        const float *p = first + s * (head_dim + 2);
        if (p[0] != -INFINITY) total += expf(p[0] - max_value) * p[1];
    }
    float inverse = total > 0.0f ? 1.0f / total : 0.0f;
    for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float v = 0.0f;
        for (int s = 0; s < n_splits; s++) {
            const float *p = first + s * (head_dim + 2);
            if (p[0] != -INFINITY) v += expf(p[0] - max_value) * p[2 + d];
        }
        out[pair * head_dim + d] = v * inverse;
    }
}

/* Many pairs (prefill): one warp per (token, head) over all its positions,
 * no split and no merge. Warps are numbered (kv head, token, head of the
 * group), so the warps of a block — the query heads sharing a kv head, for
 * neighbouring tokens of a sequence — read the same key and value rows at
 * about the same time and most of those reads hit L1 instead of L2. Four
 * positions per step, so four independent warp sums overlap. */
template <int DPL>
__global__ void __launch_bounds__(256) attention_warp_kernel(attention_params a, int64_t n_rows) {
    wait_for_previous_kernels();
    let_next_kernel_start();
    const int lane = threadIdx.x % kWarp;
    const int64_t group = a.n_heads / a.n_kv_heads;
    const int64_t global_warp = (int64_t)blockIdx.x * (blockDim.x / kWarp) + threadIdx.x / kWarp;
    if (global_warp >= n_rows * a.n_heads) return;
    const int64_t g = global_warp % group;
    const int64_t t = (global_warp / group) % n_rows;
    const int64_t kv_head = global_warp / (group * n_rows);
    const int64_t pair = t * a.n_heads + kv_head * group + g;
    const int64_t pos = a.positions[t];
    const int64_t lo = a.window > 0 && pos - a.window + 1 > 0 ? pos - a.window + 1 : 0;
    const int64_t cache_base = ((int64_t)a.slots[t] * a.n_kv_heads + kv_head) * a.capacity * a.head_dim;
    const float *keys = a.k_cache + cache_base, *values = a.v_cache + cache_base;

    float q[DPL], acc[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        int64_t d = lane + j * kWarp;
        q[j] = d < a.head_dim ? a.q[pair * a.head_dim + d] * a.scale : 0.0f;
        acc[j] = 0.0f;
    }
    float running_max = -INFINITY, running_sum = 0.0f;
    int64_t p = lo;
    for (; p + 4 <= pos + 1; p += 4) {
        float score[4];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const float *key = keys + (p + k) * a.head_dim;
            score[k] = 0.0f;
#pragma unroll
            for (int j = 0; j < DPL; j++) {
                int64_t d = lane + j * kWarp;
                if (d < a.head_dim) score[k] += q[j] * key[d];
            }
        }
#pragma unroll
        for (int k = 0; k < 4; k++) score[k] = warp_sum(score[k]);
        float new_max = fmaxf(fmaxf(running_max, fmaxf(score[0], score[1])), fmaxf(score[2], score[3]));
        float correction = expf(running_max - new_max);
        float weight[4];
#pragma unroll
        for (int k = 0; k < 4; k++) weight[k] = expf(score[k] - new_max);
        running_sum = running_sum * correction + ((weight[0] + weight[1]) + (weight[2] + weight[3]));
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int64_t d = lane + j * kWarp;
            if (d < a.head_dim) {
                const float *value = values + p * a.head_dim + d;
                acc[j] = acc[j] * correction + weight[0] * value[0] + weight[1] * value[a.head_dim] +
                         weight[2] * value[2 * a.head_dim] + weight[3] * value[3 * a.head_dim];
            }
        }
        running_max = new_max;
    }
    for (; p <= pos; p++) {
        const float *key = keys + p * a.head_dim, *value = values + p * a.head_dim;
        float score = 0.0f;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int64_t d = lane + j * kWarp;
            if (d < a.head_dim) score += q[j] * key[d];
        }
        score = warp_sum(score);
        float new_max = fmaxf(running_max, score);
        float correction = expf(running_max - new_max);
        float weight = expf(score - new_max);
        running_sum = running_sum * correction + weight;
#pragma unroll
        for (int j = 0; j < DPL; j++) {
            int64_t d = lane + j * kWarp;
            if (d < a.head_dim) acc[j] = acc[j] * correction + weight * value[d];
        }
        running_max = new_max;
    }
    const float inverse = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        int64_t d = lane + j * kWarp;
        if (d < a.head_dim) a.out[pair * a.head_dim + d] = acc[j] * inverse;
    }
}

template <int DPL>
void launch_warp(int64_t n_rows, int64_t pairs, mlxe_cuda_state *state, const attention_params &params) {
    const int threads = 256;
    const int64_t blocks = (pairs * kWarp + threads - 1) / threads;
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ATTENTION, attention_warp_kernel<DPL>, (unsigned)blocks, threads, 0, params, n_rows);
}

template <int DPL> void launch(dim3 grid, mlxe_cuda_state *state, const attention_params &params) {
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ATTENTION, attention_kernel<DPL>, grid, kAttentionWarps * kWarp, 0, params);
}

/* The kernels' parameters for args (slots and positions on the device; no
 * split, no RoPE yet). */
attention_params params_of(mlxe_cuda_state *state, const mlxe_attention_args *args) {
    attention_params params;
    params.q = args->q;
    params.k_cache = args->k_cache;
    params.v_cache = args->v_cache;
    params.slots = mlxe_cuda_device_ints(state, args->slots, args->n_rows, 0);
    params.positions = mlxe_cuda_device_ints(state, args->positions, args->n_rows, 1);
    params.n_heads = args->n_heads;
    params.n_kv_heads = args->n_kv_heads;
    params.head_dim = args->head_dim;
    params.capacity = args->capacity;
    params.window = args->window;
    params.scale = args->scale;
    params.split_len = args->capacity;
    params.n_splits = 1;
    params.out = args->out;
    params.partial = NULL;
    params.new_k = params.new_v = params.inv_freq = NULL;
    params.rope_scale = 1.0f;
    params.int8_out = int8_activations{nullptr, nullptr, nullptr};
    params.early_rows = state->attention_early_rows;
    params.late_trigger = state->attention_late_trigger;
    return params;
}

/* Positions one token may attend to, at most: the caller's hint, else the
 * capacity, within the window. */
int64_t span_of(const mlxe_attention_args *args) {
    int64_t span = args->kv_length > 0 && args->kv_length < args->capacity ? args->kv_length : args->capacity;
    if (args->window > 0 && args->window < span) span = args->window;
    return span < 1 ? 1 : span;
}

/* GPUs whose cluster placement is remembered (cluster_placeable); a higher
 * ordinal shares ordinal 0's answer. */
constexpr int kMaxClusterOrdinals = 16;

/* Whether the GPU can place at least one cluster of a launch of kernel
 * with config (its cluster dimension attribute first), asked once per
 * kernel and GPU, not at every launch (without graphs that would be every
 * token): answers is the kernel's own static array (0 not asked, 1 yes,
 * -1 no). */
template <typename... Params>
bool cluster_placeable(const mlxe_cuda_state *state, void (*kernel)(Params...),
                                       const cudaLaunchConfig_t &config, std::atomic<signed char> *answers) {
    const int slot = state->ordinal >= 0 && state->ordinal < kMaxClusterOrdinals ? state->ordinal : 0;
    if (answers[slot].load(std::memory_order_relaxed) == 0) {
        int clusters = 0;
        const bool yes = cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) == cudaSuccess && clusters >= 1;
        if (!yes) cudaGetLastError();
        answers[slot].store(yes ? 1 : -1, std::memory_order_relaxed);
    }
    return answers[slot].load(std::memory_order_relaxed) > 0;
}

/* The grouped kernel with its splits as one cluster (CLUSTER > 0): false
 * when the device cannot place such a cluster (then the caller merges
 * through global memory; cluster_placeable asks once per kernel and GPU). */
template <int DPL, int GT, int WARPS, int CLUSTER, int P, int LPP>
bool launch_grouped_cluster(mlxe_cuda_state *state, dim3 grid, const attention_params &params) {
    static std::atomic<signed char> placeable[kMaxClusterOrdinals];
    void (*kernel)(attention_params, unsigned *) = attention_grouped_kernel<DPL, GT, WARPS, CLUSTER, P, LPP>;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = dim3(WARPS * kWarp);
    config.stream = state->stream;
    cudaLaunchAttribute attribute[2];
    attribute[0].id = cudaLaunchAttributeClusterDimension;
    attribute[0].val.clusterDim.x = 1;
    attribute[0].val.clusterDim.y = CLUSTER;
    attribute[0].val.clusterDim.z = 1;
    attribute[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[1].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attribute;
    config.numAttrs = 1;
    if (!cluster_placeable(state, kernel, config, placeable)) return false;
    if (state->overlap_launches & MLXE_CUDA_OVERLAP_ATTENTION) config.numAttrs = 2;
    cudaLaunchKernelEx(&config, kernel, params, static_cast<unsigned *>(nullptr));
    return true;
}

/* LPP lanes per position (see the kernel). Positions per warp and step:
 * 12 in a cluster (its 8 splits of a 640-position context then take one
 * step each: 8B 8-bit 286 -> 288 tok/s, docs/CUDA.md version 9), 8 through
 * global memory, 4 for head_dim above 128 (registers); with lane groups
 * those per warp, so 32 / LPP times fewer per lane group. */
template <int DPL, int GT, int WARPS, int LPP, int P_CLUSTER = ((DPL >= 8 ? 4 : 12) * LPP) / kWarp>
void launch_grouped_lanes(mlxe_cuda_state *state, int cluster, dim3 grid, const attention_params &params,
                          unsigned *counters) {
    constexpr int P_GLOBAL = ((DPL >= 8 ? 4 : 8) * LPP + kWarp - 1) / kWarp;
    if (cluster == 8 && launch_grouped_cluster<DPL, GT, WARPS, 8, P_CLUSTER, LPP>(state, grid, params)) return;
    launch_overlapped(state, MLXE_CUDA_OVERLAP_ATTENTION, attention_grouped_kernel<DPL, GT, WARPS, 0, P_GLOBAL, LPP>,
                      grid, dim3(WARPS * kWarp), 0, params, counters);
}

/* Lane groups where head_dim is 64 or 128 (32 * DPL) unless
 * MLXE_CUDA_ATTENTION_LANES=0; else a position per warp. (Not for 8
 * heads of 128: their q and accumulators would spill.) With
 * MLXE_CUDA_ATTENTION_LANES=8, head_dim 128 takes 8 lanes a position too:
 * 16 dimensions a lane (4 runs of 4), 2 positions a lane group and step
 * (253 registers, no spill; 3 spilled 220 bytes), for timing against 16
 * lanes (docs/CUDA.md, version 10). */
template <int DPL, int GT, int WARPS>
void launch_grouped_group(mlxe_cuda_state *state, int cluster, dim3 grid, const attention_params &params,
                          unsigned *counters) {
    if constexpr (DPL == 4 && GT <= 4)
        if (state->attention_lanes == 8 && params.head_dim == 32 * DPL)
            return launch_grouped_lanes<DPL, GT, WARPS, 8, 2>(state, cluster, grid, params, counters);
    if constexpr (DPL == 2 || (DPL == 4 && GT <= 4))
        if (state->attention_lanes && params.head_dim == 32 * DPL)
            return launch_grouped_lanes<DPL, GT, WARPS, 4 * DPL>(state, cluster, grid, params, counters);
    launch_grouped_lanes<DPL, GT, WARPS, kWarp>(state, cluster, grid, params, counters);
}

template <int DPL, int WARPS>
void launch_grouped_warps(mlxe_cuda_state *state, int group, int cluster, dim3 grid, const attention_params &params,
                          unsigned *counters) {
    if (group <= 1) launch_grouped_group<DPL, 1, WARPS>(state, cluster, grid, params, counters);
    else if (group <= 2) launch_grouped_group<DPL, 2, WARPS>(state, cluster, grid, params, counters);
    else if (group <= 4) launch_grouped_group<DPL, 4, WARPS>(state, cluster, grid, params, counters);
    else launch_grouped_group<DPL, 8, WARPS>(state, cluster, grid, params, counters);
}

/* 8 warps per block for head_dim up to 128 (MLXE_CUDA_ATTENTION_WARPS=4
 * for 4): a split twice as long in the same one step per warp, half as
 * many splits for the last block to merge. H100, same call: 1B shape BF16
 * 846 -> 862 tok/s, 4-bit 1425 -> 1487; 8B BF16 171.1 -> 173.6, 4-bit
 * 404 -> 419 (docs/CUDA.md, version 8). */
template <int DPL>
void launch_grouped_dpl(mlxe_cuda_state *state, int warps, int group, int cluster, dim3 grid,
                        const attention_params &params, unsigned *counters) {
    if constexpr (DPL <= 4) /* 8 warps x 8 heads x 256 dimensions would not fit the static shared memory */
        if (warps == 8) return launch_grouped_warps<DPL, 8>(state, group, cluster, grid, params, counters);
    launch_grouped_warps<DPL, kAttentionWarps>(state, group, cluster, grid, params, counters);
}

/* The grouped decode kernel where it applies (groups of at most 8 query
 * heads); false to take the per-pair split kernel. Splits: about four
 * blocks per multiprocessor, at least state->attention_split_positions
 * positions each over the span the caller announced. */

bool attention_grouped(mlxe_cuda_state *state, const mlxe_attention_args *args, attention_params params,
                       int64_t span) {
    if (args->n_kv_heads <= 0 || args->n_heads % args->n_kv_heads != 0 || args->n_heads / args->n_kv_heads > 8)
        return false;
    const int64_t base = args->n_rows * args->n_kv_heads;
    if (base > 65535) return false;
    int64_t n_splits = (4 * (int64_t)state->sm_count + base - 1) / base;
    const int64_t per_lane = (args->head_dim + kWarp - 1) / kWarp;
    const int warps = per_lane <= 4 ? state->attention_warps : kAttentionWarps;
    const int64_t per_split = state->attention_split_positions > 0 ? state->attention_split_positions
                              : per_lane <= 4                      ? 8 * warps /* one step of 8 per warp */
                                                                   : 32;
    const int64_t most = (span + per_split - 1) / per_split;
    if (n_splits > most) n_splits = most;
    if (n_splits > kMaxGroupedSplits) n_splits = kMaxGroupedSplits;
    if (n_splits < 1) n_splits = 1;
    /* sm_90: 2 to 32 splits become one cluster of 8 blocks, merged in
     * shared memory (longer spans: the global merge) */
    int cluster = 0;
    if (state->cc_major >= 9 && state->attention_cluster >= 8 && n_splits > 1 && n_splits <= 32)
        cluster = 8;
    if (cluster > 0) n_splits = cluster;
    unsigned *counters = nullptr;
    if (n_splits > 1) {
        const size_t partial_bytes = (size_t)(args->n_rows * args->n_heads * n_splits * (args->head_dim + 2)) *
                                     sizeof(float);
        const void *before = state->attention_counters.ptr;
        if (mlxe_cuda_buffer_reserve(state, &state->partial, partial_bytes) &&
            mlxe_cuda_buffer_reserve(state, &state->attention_counters, (size_t)base * sizeof(unsigned))) {
            /* a new buffer's counters start at zero; the kernel leaves them zero */
            if (state->attention_counters.ptr != before)
                cudaMemsetAsync(state->attention_counters.ptr, 0, state->attention_counters.bytes, state->stream);
            params.partial = static_cast<float *>(state->partial.ptr);
            counters = static_cast<unsigned *>(state->attention_counters.ptr);
        } else {
            n_splits = 1; /* no scratch (first use while recording a graph): one block per kv head */
            cluster = 0;
        }
    }
    params.n_splits = (int)n_splits;
    /* one token, whole blocks of 32 per head: the int8 form of the output
     * for an int8 o_proj, where a quantized model runs (cuda_matvec_int8.h) */
    const int64_t cols = args->n_heads * args->head_dim;
    void *xq4 = nullptr, *xq8 = nullptr, *meta = nullptr;
    const bool int8_out = args->n_rows == 1 && args->head_dim % kXBlock == 0 &&
                          mlxe_cuda_prequantized_buffer(state, cols, &xq4, &xq8, &meta);
    if (int8_out)
        params.int8_out = int8_activations{static_cast<int8_t *>(xq4), static_cast<int8_t *>(xq8),
                                           static_cast<float2 *>(meta)};
    const dim3 grid((unsigned)base, (unsigned)n_splits);
    const int group = (int)(args->n_heads / args->n_kv_heads);
    if (per_lane <= 2) launch_grouped_dpl<2>(state, warps, group, cluster, grid, params, counters);
    else if (per_lane <= 4) launch_grouped_dpl<4>(state, warps, group, cluster, grid, params, counters);
    else launch_grouped_dpl<8>(state, warps, group, cluster, grid, params, counters);
    mlxe_cuda_check_launch(state, "attention (grouped decode)");
    if (int8_out) mlxe_cuda_prequantized_ready(state, args->out, cols);
    return true;
}

}  // namespace

extern "C" void mlxe_cuda_attention(mlxe_device *dev, const mlxe_attention_args *args) {
    if (args->n_rows <= 0 || args->n_heads <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (args->head_dim > kMaxHeadDim || args->head_dim <= 0) {
        mlxe_cuda_note_error(state, cudaErrorInvalidValue, "attention (head_dim above 256 is not supported on CUDA)");
        return;
    }
    attention_params params = params_of(state, args);

    /* attention_mode 3: MLXE_CUDA_ATTENTION=flash (tests, benches) */
    const bool flash_wanted = state->attention_mode == 3 ||
                              (state->attention_mode == 0 && state->gemm_mode != MLXE_CUDA_GEMM_F32_WEIGHTS &&
                               args->n_rows >= kFlashMinRows);
    if (flash_wanted && state->cc_major >= 8 && mlxe_cuda_flash_attention_supported(args)) {
        mlxe_cuda_flash_attention(state, args, params.slots, params.positions);
        return;
    }

    const int64_t pairs = args->n_rows * args->n_heads;
    const bool warp_per_pair = state->attention_mode == 2 ||
                               (state->attention_mode == 0 && pairs >= kWarpKernelMinPairsPerSm * state->sm_count);
    if (warp_per_pair) {
        params.n_splits = 1;
        params.split_len = args->capacity;
        switch ((args->head_dim + kWarp - 1) / kWarp) {
        case 1: launch_warp<1>(args->n_rows, pairs, state, params); break;
        case 2: launch_warp<2>(args->n_rows, pairs, state, params); break;
        case 3: launch_warp<3>(args->n_rows, pairs, state, params); break;
        case 4: launch_warp<4>(args->n_rows, pairs, state, params); break;
        case 5: launch_warp<5>(args->n_rows, pairs, state, params); break;
        case 6: launch_warp<6>(args->n_rows, pairs, state, params); break;
        case 7: launch_warp<7>(args->n_rows, pairs, state, params); break;
        default: launch_warp<8>(args->n_rows, pairs, state, params); break;
        }
        mlxe_cuda_check_launch(state, "attention");
        return;
    }

    const int64_t span = span_of(args);
    /* attention_mode 1: MLXE_CUDA_ATTENTION=split keeps the per-pair kernel */
    if (state->attention_mode != 1 && attention_grouped(state, args, params, span)) return;
    const int64_t wanted_blocks = kSplitBlocksPerSm * state->sm_count;
    int64_t n_splits = 1;
    if (pairs < wanted_blocks) {
        n_splits = (wanted_blocks + pairs - 1) / pairs;
        int64_t split_len = (span + n_splits - 1) / n_splits;
        if (split_len < kMinSplitPositions) split_len = kMinSplitPositions;
        n_splits = (span + split_len - 1) / split_len;
    }
    if (n_splits > 1) {
        size_t bytes = (size_t)(pairs * n_splits * (args->head_dim + 2)) * sizeof(float);
        if (mlxe_cuda_buffer_reserve(state, &state->partial, bytes))
            params.partial = static_cast<float *>(state->partial.ptr);
        else
            n_splits = 1;
    }
    params.n_splits = (int)n_splits;
    params.split_len = n_splits > 1 ? (span + n_splits - 1) / n_splits : span;
    if (n_splits == 1) params.split_len = args->capacity; /* the whole range, whatever the hint said */

    dim3 grid((unsigned)pairs, (unsigned)n_splits);
    switch ((args->head_dim + kWarp - 1) / kWarp) {
    case 1: launch<1>(grid, state, params); break;
    case 2: launch<2>(grid, state, params); break;
    case 3: launch<3>(grid, state, params); break;
    case 4: launch<4>(grid, state, params); break;
    case 5: launch<5>(grid, state, params); break;
    case 6: launch<6>(grid, state, params); break;
    case 7: launch<7>(grid, state, params); break;
    default: launch<8>(grid, state, params); break;
    }
    mlxe_cuda_check_launch(state, "attention");
    if (n_splits > 1) {
        launch_overlapped(state, MLXE_CUDA_OVERLAP_ATTENTION, attention_merge_kernel, (unsigned)pairs, 128, 0, params.partial, (int)n_splits,
                                                                           args->head_dim, args->out);
        mlxe_cuda_check_launch(state, "attention (merging splits)");
    }
}

/* ops.h rope_attention: one launch of the grouped kernel where it applies
 * (one token, head_dim 64, 128 or 256, groups up to 8), else rope_kv_store
 * then attention. */
extern "C" void mlxe_cuda_rope_attention(mlxe_device *dev, const mlxe_attention_args *args, const float *k,
                                         const float *v, const float *inv_freq, float attention_scale) {
    if (args->n_rows <= 0 || args->n_heads <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int64_t hd = args->head_dim;
    const bool fused = args->n_rows == 1 && (hd == 64 || hd == 128 || hd == 256) && args->n_kv_heads > 0 &&
                       args->n_heads % args->n_kv_heads == 0 && args->n_heads / args->n_kv_heads <= 8 &&
                       state->attention_mode == 0;
    if (!fused) {
        mlxe_cuda_rope_kv_store(dev, const_cast<float *>(args->q), k, v, args->n_rows, args->n_heads,
                                args->n_kv_heads, hd, args->positions, inv_freq, attention_scale,
                                const_cast<float *>(args->k_cache), const_cast<float *>(args->v_cache),
                                args->capacity, args->slots);
        mlxe_cuda_attention(dev, args);
        return;
    }
    attention_params params = params_of(state, args);
    params.new_k = k;
    params.new_v = v;
    params.inv_freq = mlxe_cuda_device_floats(state, inv_freq, hd / 2, 2);
    params.rope_scale = attention_scale;
    attention_grouped(state, args, params, span_of(args));
}
