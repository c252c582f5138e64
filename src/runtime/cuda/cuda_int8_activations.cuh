/* runtime/cuda/cuda_int8_activations.cuh — the int8 form of an activation
 * vector that the one-token products with 4/8-bit weights read
 * (cuda_matvec_int8.cu): blocks of 32 values, each d = max|x| / 127,
 * xq = round(x / d) and the exact float Σx. Shared by the quantization
 * kernel and by a kernel that writes it as it produces x (the decode
 * attention's output: one kernel fewer before o_proj), so every path gives
 * the same bits. (SwiGLU writing down_proj's input this way measured
 * slower on the 8B shape: blocks counting the rows done per 32, clusters of
 * 32 rows, or blocks of 8 values; docs/CUDA.md, versions 7 and 12.)
 * Included by the .cu files only. */
#ifndef MLXE_RUNTIME_CUDA_INT8_ACTIVATIONS_CUH
#define MLXE_RUNTIME_CUDA_INT8_ACTIVATIONS_CUH

#include "runtime/cuda/cuda_common.cuh"

namespace mlxe_cuda {

constexpr int kXBlock = 32; /* activations per int8 block (one scale, one sum) */

/* Where a producer writes the int8 form (state->prequantized, laid out by
 * mlxe_cuda_prequantized_layout): the values in the order of the 4-bit
 * kernel (x0 x2 x4 x6 x1 x3 x5 x7 within each 8: its two nibble masks), in
 * natural order (8-bit), and (d, Σx) per block. xq4 NULL: write nothing. */
struct int8_activations {
    int8_t *xq4;
    int8_t *xq8;
    float2 *meta;
};

/* The lane's value within its 8 in the 4-bit kernel's order. */
__device__ __forceinline__ int nibble_order_position(int lane) {
    const int p = lane & 7;
    return (lane & ~7) | ((p & 1) ? 4 + (p >> 1) : (p >> 1));
}

/* One value per lane of a block of 32 (the whole warp calls it): the
 * lane's int8 value; amax and the block's sum in every lane. */
__device__ __forceinline__ int int8_of_block(float v, float &amax, float &sum) {
    amax = warp_max(fabsf(v));
    sum = warp_sum(v); /* NaN in x stays NaN here (fmaxf would drop it from amax) */
    const float inverse_d = amax > 0.0f ? 127.0f / amax : 0.0f;
    int q = __float2int_rn(v * inverse_d);
    return q > 127 ? 127 : q < -127 ? -127 : q;
}

/* Block b of 32 values (one per lane) in both orders and its (d, Σx). */
__device__ __forceinline__ void write_int8_block(float v, int lane, int64_t b, const int8_activations &out) {
    float amax, sum;
    const int q = int8_of_block(v, amax, sum);
    out.xq8[b * kXBlock + lane] = (int8_t)q;
    out.xq4[b * kXBlock + nibble_order_position(lane)] = (int8_t)q;
    if (lane == 0) out.meta[b] = make_float2(amax / 127.0f, sum);
}

}  // namespace mlxe_cuda

#endif
