/* runtime/cuda/cuda_flash_attention.cu — causal attention of a prompt on the
 * tensor cores, without a T×T score matrix in memory (the flash-attention
 * scheme: Dao et al., "FlashAttention-2", 2023).
 *
 * One block of four warps per tile of 64 rows: heads_per_block query heads
 * that share a kv head (grouped-query attention: the largest power of two
 * dividing the group, at most 8) × 64 / heads_per_block consecutive tokens,
 * so the heads of a group share each key and value tile loaded instead of
 * loading it once each. Each warp owns 16 rows. The keys the tile attends to
 * are walked in tiles of 64: the block converts them (and the values, transposed)
 * from the float32 cache to BF16 in shared memory; each warp then computes its
 * 16×64 scores with mma.sync (BF16 inputs, float32 accumulation), masks them
 * per token ([lo, pos] as runtime/ops.h defines it: causal, sliding window, a
 * cache prefix when the prompt continues a sequence), updates its running
 * maximum and sum (online softmax, as cpu_attention.c, in base 2 with the
 * scale folded into q), and adds P·V to its output with mma.sync again, P
 * rounded to BF16 straight from the score registers. Outputs stay in
 * registers until the last key tile.
 *
 * Fragment layouts are those of PTX's mma.m16n8k16 (PTX ISA, "Matrix
 * fragments for mma.m16n8k16 with floating point type"): lane = 4·group +
 * thread_in_group; A rows group and group+8, columns 2·thread_in_group (+1,
 * +8, +9); B rows (k) 2·thread_in_group (+1, +8, +9), column group; C rows
 * group and group+8, columns 2·thread_in_group (+1). So a score fragment is
 * already the A fragment of P·V, and the values are stored transposed
 * (head dim × keys) so that B fragments are 32-bit reads. Shared rows are
 * padded to 4 words mod 32 so those reads hit 32 different banks.
 *
 * The tile's key range is that of its first token's slot; tokens of another
 * slot in the same tile (a batch of several sequences) are masked out of the
 * tensor-core pass and done afterwards one warp per (token, head), float32. */
#include <limits.h>
#include <math.h>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_flash_attention.h"

using namespace mlxe_cuda;

namespace {

constexpr int kFlashWarps = 4;
constexpr int kRowsPerWarp = 16;
constexpr int kBlockRows = kFlashWarps * kRowsPerWarp; /* tokens per block */
constexpr int kBlockKeys = 64;                          /* keys per shared tile */
constexpr int kThreads = kFlashWarps * kWarp;
constexpr float kLog2e = 1.4426950408889634f;

struct flash_params {
    const float *q, *k_cache, *v_cache;
    const int32_t *slots, *positions;
    int n_rows, n_heads, n_kv_heads;
    int heads_per_block, tokens_per_block; /* product kBlockRows */
    int64_t capacity, window;
    float scale_log2; /* scale · log2(e): scores in base 2 */
    float *out;
};

__device__ __forceinline__ uint32_t pack_bf16(float low, float high) {
    __nv_bfloat162 pair = __floats2bfloat162_rn(low, high); /* .x (low half) = first column */
    return *reinterpret_cast<const uint32_t *>(&pair);
}

/* d (16×8 float) += a (16×16 BF16, row-major) · b (16×8 BF16, column-major) */
__device__ __forceinline__ void mma_bf16(float *d, const uint32_t *a, uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#else
    (void)d, (void)a, (void)b0, (void)b1;
    __trap(); /* the host never launches this below compute capability 8.0 */
#endif
}

__device__ __forceinline__ int window_start(int64_t pos, int64_t window) {
    return window > 0 && pos - window + 1 > 0 ? (int)(pos - window + 1) : 0;
}

/* One (token, head) by one warp in float32: the tokens of another slot than
 * their tile's first token. */
template <int D>
__device__ void attend_row(const flash_params &a, int row, int h, int kv_head, int lane) {
    constexpr int kPerLane = D / kWarp;
    const int64_t pos = a.positions[row];
    const int64_t lo = window_start(pos, a.window);
    const int64_t base = ((int64_t)a.slots[row] * a.n_kv_heads + kv_head) * a.capacity * D;
    const float *keys = a.k_cache + base, *values = a.v_cache + base;
    const float *q_row = a.q + ((int64_t)row * a.n_heads + h) * D;
    float q[kPerLane], acc[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; j++) {
        q[j] = q_row[lane + j * kWarp] * a.scale_log2;
        acc[j] = 0.0f;
    }
    float running_max = -INFINITY, running_sum = 0.0f;
    for (int64_t p = lo; p <= pos; p++) {
        float score = 0.0f;
#pragma unroll
        for (int j = 0; j < kPerLane; j++) score += q[j] * keys[p * D + lane + j * kWarp];
        score = warp_sum(score);
        const float new_max = fmaxf(running_max, score);
        const float correction = exp2f(running_max - new_max), weight = exp2f(score - new_max);
        running_sum = running_sum * correction + weight;
#pragma unroll
        for (int j = 0; j < kPerLane; j++) acc[j] = acc[j] * correction + weight * values[p * D + lane + j * kWarp];
        running_max = new_max;
    }
    const float inverse = running_sum > 0.0f ? 1.0f / running_sum : 0.0f;
    float *out_row = a.out + ((int64_t)row * a.n_heads + h) * D;
#pragma unroll
    for (int j = 0; j < kPerLane; j++) out_row[lane + j * kWarp] = acc[j] * inverse;
}

template <int D>
__global__ void __launch_bounds__(kThreads) flash_attention_kernel(flash_params a) {
    constexpr int kKeyStride = D + 8;            /* BF16 per key row of key_tile */
    constexpr int kValueStride = kBlockKeys + 8; /* BF16 per head-dim row of value_tile */
    constexpr int kDimSteps = D / 16;            /* k steps of Q·Kᵀ */
    constexpr int kDimTiles = D / 8;             /* n tiles of the output */
    constexpr int kKeyTiles = kBlockKeys / 8;    /* n tiles of the scores */
    constexpr int kVectors = D / 4;              /* float4 per cache row */
    __shared__ __align__(16) __nv_bfloat16 key_tile[kBlockKeys * kKeyStride];
    __shared__ __align__(16) __nv_bfloat16 value_tile[D * kValueStride];
    /* row r of the tile: token token0 + r / heads_per_block, head head0 + r % heads_per_block */
    __shared__ int row_lo[kBlockRows], row_hi[kBlockRows]; /* hi = -1: not in the tensor-core pass */
    __shared__ int stray_rows[kBlockRows];
    __shared__ int range_begin, range_end, n_strays;

    const int tid = threadIdx.x, lane = tid % kWarp, warp = tid / kWarp;
    const int group = lane >> 2, thread_in_group = lane & 3;
    const int hb = a.heads_per_block;
    const int token0 = (gridDim.x - 1 - blockIdx.x) * a.tokens_per_block; /* the longest tiles first */
    const int head0 = blockIdx.y * hb;
    const int kv_head = head0 / (a.n_heads / a.n_kv_heads);
    const int32_t slot = a.slots[token0];

    if (tid == 0) {
        range_begin = INT_MAX;
        range_end = 0;
        n_strays = 0;
    }
    __syncthreads();
    if (tid < kBlockRows) {
        const int token = token0 + tid / hb;
        int lo = 0, hi = -1;
        if (token < a.n_rows) {
            if (a.slots[token] == slot) {
                const int64_t pos = a.positions[token];
                hi = (int)pos;
                lo = window_start(pos, a.window);
                atomicMin(&range_begin, lo);
                atomicMax(&range_end, hi + 1);
            } else {
                stray_rows[atomicAdd(&n_strays, 1)] = tid;
            }
        }
        row_lo[tid] = lo;
        row_hi[tid] = hi;
    }
    __syncthreads();

    /* This thread's two tokens: rows group and group + 8 of its warp's 16. */
    const int r_a = warp * kRowsPerWarp + group, r_b = r_a + 8;
    const int lo_a = row_lo[r_a], hi_a = row_hi[r_a], lo_b = row_lo[r_b], hi_b = row_hi[r_b];
    uint32_t q_frag[kDimSteps][4];
    {
        const float *q_a = a.q + ((int64_t)(token0 + r_a / hb) * a.n_heads + head0 + r_a % hb) * D;
        const float *q_b = a.q + ((int64_t)(token0 + r_b / hb) * a.n_heads + head0 + r_b % hb) * D;
        const float2 zero = make_float2(0.0f, 0.0f);
        const float s = a.scale_log2;
#pragma unroll
        for (int step = 0; step < kDimSteps; step++) {
            const int c = step * 16 + 2 * thread_in_group;
            const float2 x0 = hi_a >= 0 ? *reinterpret_cast<const float2 *>(q_a + c) : zero;
            const float2 x1 = hi_b >= 0 ? *reinterpret_cast<const float2 *>(q_b + c) : zero;
            const float2 x2 = hi_a >= 0 ? *reinterpret_cast<const float2 *>(q_a + c + 8) : zero;
            const float2 x3 = hi_b >= 0 ? *reinterpret_cast<const float2 *>(q_b + c + 8) : zero;
            q_frag[step][0] = pack_bf16(x0.x * s, x0.y * s);
            q_frag[step][1] = pack_bf16(x1.x * s, x1.y * s);
            q_frag[step][2] = pack_bf16(x2.x * s, x2.y * s);
            q_frag[step][3] = pack_bf16(x3.x * s, x3.y * s);
        }
    }

    float o[kDimTiles][4];
#pragma unroll
    for (int j = 0; j < kDimTiles; j++) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    float max_a = -INFINITY, max_b = -INFINITY, sum_a = 0.0f, sum_b = 0.0f;

    const int64_t cache_base = ((int64_t)slot * a.n_kv_heads + kv_head) * a.capacity * D;
    const float *keys = a.k_cache + cache_base, *values = a.v_cache + cache_base;
    const int begin = range_begin, end = range_end;
    const uint32_t *key_words = reinterpret_cast<const uint32_t *>(key_tile);
    const uint32_t *value_words = reinterpret_cast<const uint32_t *>(value_tile);
    uint32_t *value_store = reinterpret_cast<uint32_t *>(value_tile);
    const float4 zero4 = make_float4(0.0f, 0.0f, 0.0f, 0.0f);

    for (int k0 = begin; k0 < end; k0 += kBlockKeys) {
        __syncthreads(); /* every warp is done with the previous tile */
        /* keys: a warp reads whole rows (coalesced), stores 8 bytes per lane */
        for (int idx = tid; idx < kBlockKeys * kVectors; idx += kThreads) {
            const int i = idx / kVectors, v = idx % kVectors;
            const float4 k = k0 + i < end ? *reinterpret_cast<const float4 *>(keys + (int64_t)(k0 + i) * D + v * 4)
                                          : zero4;
            *reinterpret_cast<uint2 *>(&key_tile[i * kKeyStride + v * 4]) =
                make_uint2(pack_bf16(k.x, k.y), pack_bf16(k.z, k.w));
        }
        /* values, transposed: lanes take consecutive key pairs, so each lane
         * stores one word (two keys) per head-dim row, conflict-free */
        for (int idx = tid; idx < (kBlockKeys / 2) * kVectors; idx += kThreads) {
            const int i = (idx % (kBlockKeys / 2)) * 2, v = idx / (kBlockKeys / 2);
            const float4 v0 = k0 + i < end ? *reinterpret_cast<const float4 *>(values + (int64_t)(k0 + i) * D + v * 4)
                                           : zero4;
            const float4 v1 = k0 + i + 1 < end
                                  ? *reinterpret_cast<const float4 *>(values + (int64_t)(k0 + i + 1) * D + v * 4)
                                  : zero4;
            const int word = ((v * 4) * kValueStride + i) / 2;
            value_store[word] = pack_bf16(v0.x, v1.x);
            value_store[word + kValueStride / 2] = pack_bf16(v0.y, v1.y);
            value_store[word + kValueStride] = pack_bf16(v0.z, v1.z);
            value_store[word + 3 * (kValueStride / 2)] = pack_bf16(v0.w, v1.w);
        }
        __syncthreads();

        /* scores S = (q · scale · log2 e) Kᵀ: 16 tokens × 64 keys per warp */
        float s[kKeyTiles][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int step = 0; step < kDimSteps; step++) {
#pragma unroll
            for (int j = 0; j < kKeyTiles; j++) {
                const uint32_t *w = key_words + (j * 8 + group) * (kKeyStride / 2) + step * 8 + thread_in_group;
                mma_bf16(s[j], q_frag[step], w[0], w[4]);
            }
        }

        /* mask, then the online softmax of rows a and b (a row's 64 scores
         * are spread over the 4 lanes of a group: max over the group) */
        float tile_max_a = -INFINITY, tile_max_b = -INFINITY;
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) {
#pragma unroll
            for (int e = 0; e < 2; e++) {
                const int p = k0 + j * 8 + 2 * thread_in_group + e;
                if (p < lo_a || p > hi_a) s[j][e] = -INFINITY;
                if (p < lo_b || p > hi_b) s[j][2 + e] = -INFINITY;
                tile_max_a = fmaxf(tile_max_a, s[j][e]);
                tile_max_b = fmaxf(tile_max_b, s[j][2 + e]);
            }
        }
#pragma unroll
        for (int offset = 1; offset < 4; offset <<= 1) {
            tile_max_a = fmaxf(tile_max_a, __shfl_xor_sync(0xffffffffu, tile_max_a, offset));
            tile_max_b = fmaxf(tile_max_b, __shfl_xor_sync(0xffffffffu, tile_max_b, offset));
        }
        const float new_max_a = fmaxf(max_a, tile_max_a), new_max_b = fmaxf(max_b, tile_max_b);
        /* no key yet: subtract 0 (every weight is then exp2(-inf) = 0) */
        const float base_a = new_max_a == -INFINITY ? 0.0f : new_max_a;
        const float base_b = new_max_b == -INFINITY ? 0.0f : new_max_b;
        const float correction_a = exp2f(max_a - base_a), correction_b = exp2f(max_b - base_b);
        max_a = new_max_a;
        max_b = new_max_b;
        sum_a *= correction_a;
        sum_b *= correction_b;
#pragma unroll
        for (int j = 0; j < kDimTiles; j++) {
            o[j][0] *= correction_a;
            o[j][1] *= correction_a;
            o[j][2] *= correction_b;
            o[j][3] *= correction_b;
        }
        /* weights P, as the A fragments of P·V (keys 16·step .. 16·step + 15) */
        uint32_t p_frag[kBlockKeys / 16][4];
#pragma unroll
        for (int j = 0; j < kKeyTiles; j++) {
            const float p0 = exp2f(s[j][0] - base_a), p1 = exp2f(s[j][1] - base_a);
            const float p2 = exp2f(s[j][2] - base_b), p3 = exp2f(s[j][3] - base_b);
            sum_a += p0 + p1;
            sum_b += p2 + p3;
            p_frag[j / 2][(j % 2) * 2] = pack_bf16(p0, p1);
            p_frag[j / 2][(j % 2) * 2 + 1] = pack_bf16(p2, p3);
        }
        /* O += P · V */
#pragma unroll
        for (int step = 0; step < kBlockKeys / 16; step++) {
#pragma unroll
            for (int j = 0; j < kDimTiles; j++) {
                const uint32_t *w = value_words + (j * 8 + group) * (kValueStride / 2) + step * 8 + thread_in_group;
                mma_bf16(o[j], p_frag[step], w[0], w[4]);
            }
        }
    }

    /* each lane summed its own columns: add the group's four partial sums */
#pragma unroll
    for (int offset = 1; offset < 4; offset <<= 1) {
        sum_a += __shfl_xor_sync(0xffffffffu, sum_a, offset);
        sum_b += __shfl_xor_sync(0xffffffffu, sum_b, offset);
    }
    const float inverse_a = sum_a > 0.0f ? 1.0f / sum_a : 0.0f, inverse_b = sum_b > 0.0f ? 1.0f / sum_b : 0.0f;
    if (hi_a >= 0) {
        float *out = a.out + ((int64_t)(token0 + r_a / hb) * a.n_heads + head0 + r_a % hb) * D + 2 * thread_in_group;
#pragma unroll
        for (int j = 0; j < kDimTiles; j++)
            *reinterpret_cast<float2 *>(out + j * 8) = make_float2(o[j][0] * inverse_a, o[j][1] * inverse_a);
    }
    if (hi_b >= 0) {
        float *out = a.out + ((int64_t)(token0 + r_b / hb) * a.n_heads + head0 + r_b % hb) * D + 2 * thread_in_group;
#pragma unroll
        for (int j = 0; j < kDimTiles; j++)
            *reinterpret_cast<float2 *>(out + j * 8) = make_float2(o[j][2] * inverse_b, o[j][3] * inverse_b);
    }

    for (int i = warp; i < n_strays; i += kFlashWarps)
        attend_row<D>(a, token0 + stray_rows[i] / hb, head0 + stray_rows[i] % hb, kv_head, lane);
}

bool aligned_to(const void *p, uintptr_t bytes) {
    return ((uintptr_t)p & (bytes - 1)) == 0;
}

}  // namespace

extern "C" bool mlxe_cuda_flash_attention_supported(const mlxe_attention_args *args) {
    return (args->head_dim == 64 || args->head_dim == 128) && args->n_kv_heads > 0 &&
           args->n_heads % args->n_kv_heads == 0 && args->n_heads <= 65535 && args->n_rows < INT_MAX / 2 &&
           args->capacity < INT_MAX / 2 && aligned_to(args->q, 8) && aligned_to(args->out, 8) &&
           aligned_to(args->k_cache, 16) && aligned_to(args->v_cache, 16);
}

extern "C" void mlxe_cuda_flash_attention(mlxe_cuda_state *state, const mlxe_attention_args *args,
                                          const int32_t *slots, const int32_t *positions) {
    flash_params params;
    params.q = args->q;
    params.k_cache = args->k_cache;
    params.v_cache = args->v_cache;
    params.slots = slots;
    params.positions = positions;
    params.n_rows = (int)args->n_rows;
    params.n_heads = (int)args->n_heads;
    params.n_kv_heads = (int)args->n_kv_heads;
    params.capacity = args->capacity;
    params.window = args->window;
    params.scale_log2 = args->scale * kLog2e;
    params.out = args->out;
    const int group = params.n_heads / params.n_kv_heads;
    params.heads_per_block = 1;
    while (params.heads_per_block < 8 && group % (params.heads_per_block * 2) == 0) params.heads_per_block *= 2;
    params.tokens_per_block = kBlockRows / params.heads_per_block;
    dim3 grid((unsigned)((args->n_rows + params.tokens_per_block - 1) / params.tokens_per_block),
              (unsigned)(params.n_heads / params.heads_per_block));
    if (args->head_dim == 64)
        flash_attention_kernel<64><<<grid, kThreads, 0, state->stream>>>(params);
    else
        flash_attention_kernel<128><<<grid, kThreads, 0, state->stream>>>(params);
    mlxe_cuda_check_launch(state, "flash attention");
}
