/* runtime/cuda/cuda_gemm_quant.cu — MLX affine 8-bit weights expanded to
 * BF16 for the prefill GEMM (cuda_matmul.cu multiplies the slices), and the
 * size of those slices.
 *
 * The expansion writes the whole matrix in BF16 and the GEMM reads it back:
 * twice its BF16 bytes of DRAM traffic (~1.3 ms of a 512-token prefill of a
 * 1B model on an H100). cuda_matmul.cu's kernel (one 32-bit word per thread)
 * already moves those bytes at ~90% of the copy bandwidth, so a faster kernel
 * can only gain a little; measured on an H100 (docs/CUDA.md, version 4):
 *  - this kernel, one thread per 16-byte vector of packed words (16 values),
 *    one scale and bias per thread, values formed without int-to-float
 *    conversions, two 16-byte stores: 2-4% faster than the word kernel at
 *    8 bits, so it is used there; at 4 bits (32 values, four stores 64 bytes
 *    apart across the warp) it was 20% slower, so 4-bit stays on the word
 *    kernel;
 *  - slices small enough to stay in the L2 cache between expansion and GEMM
 *    (8-40 MB instead of 256): slower everywhere (up to 2x at 8 MB), the
 *    smaller GEMMs fill fewer multiprocessors than the DRAM traffic saved.
 *    MLXE_CUDA_EXPAND_MB keeps the size tunable; 256 MB stays the default.
 * Removing the round trip needs a GEMM that dequantizes inside its tiles. */
#include <stdlib.h>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_gemm_quant.h"

using namespace mlxe_cuda;

namespace {

constexpr int kExpandThreads = 256;
constexpr int64_t kDefaultSliceMb = 256;

/* q as float without an int-to-float conversion: the bits become the
 * mantissa of 2^23 + q, then 2^23 is subtracted (exact for q < 2^23). */
__device__ __forceinline__ float small_uint_as_float(uint32_t q) {
    return __uint_as_float(0x4b000000u | q) - 8388608.0f;
}

__device__ __forceinline__ uint32_t pack_bf16(float low, float high) {
    __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
    return *reinterpret_cast<const uint32_t *>(&pair);
}

/* Rows [row0, row0 + n_rows) of the matrix as BF16, row-major, into out. */
template <int BITS, int SDT>
__global__ void __launch_bounds__(kExpandThreads)
    expand_vectors_kernel(const uint4 *__restrict__ words, const void *__restrict__ scales,
                          const void *__restrict__ biases, int vectors_per_row, int groups_per_row, int group_shift,
                          int64_t row0, int n_rows, uint4 *__restrict__ out) {
    constexpr int V = 128 / BITS; /* values per 16-byte vector */
    constexpr int PER_WORD = 32 / BITS;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    const int64_t index = (int64_t)blockIdx.x * kExpandThreads + threadIdx.x;
    if (index >= (int64_t)n_rows * vectors_per_row) return;
    const int r = (int)(index / vectors_per_row), v = (int)(index - (int64_t)r * vectors_per_row);
    const int64_t row = row0 + r;
    const uint4 packed = __ldg(words + row * vectors_per_row + v);
    const int64_t group = row * groups_per_row + ((v * V) >> group_shift);
    const float scale = load_as_float(SDT, scales, group), bias = load_as_float(SDT, biases, group);
    const uint32_t w[4] = {packed.x, packed.y, packed.z, packed.w};
    uint32_t pairs[V / 2];
#pragma unroll
    for (int j = 0; j < V; j += 2) {
        const uint32_t q0 = (w[j / PER_WORD] >> ((j % PER_WORD) * BITS)) & MASK;
        const uint32_t q1 = (w[(j + 1) / PER_WORD] >> (((j + 1) % PER_WORD) * BITS)) & MASK;
        pairs[j / 2] = pack_bf16(fmaf(scale, small_uint_as_float(q0), bias), fmaf(scale, small_uint_as_float(q1), bias));
    }
    /* V bf16 = V/8 vectors of 16 bytes */
    uint4 *dst = out + index * (V / 8);
#pragma unroll
    for (int i = 0; i < V / 8; i++)
        dst[i] = make_uint4(pairs[4 * i], pairs[4 * i + 1], pairs[4 * i + 2], pairs[4 * i + 3]);
}

int log2_of(int64_t n) {
    for (int shift = 0; shift < 31; shift++)
        if (((int64_t)1 << shift) == n) return shift;
    return -1;
}

template <int BITS, int SDT>
void launch(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0, int64_t n_rows, __nv_bfloat16 *out) {
    const int vectors_per_row = (int)(w->cols * BITS / 128);
    const int64_t n = n_rows * vectors_per_row;
    const unsigned blocks = (unsigned)((n + kExpandThreads - 1) / kExpandThreads);
    expand_vectors_kernel<BITS, SDT><<<blocks, kExpandThreads, 0, state->stream>>>(
        static_cast<const uint4 *>(w->data), w->scales, w->biases, vectors_per_row, (int)(w->cols / w->group_size),
        log2_of(w->group_size), row0, (int)n_rows, reinterpret_cast<uint4 *>(out));
}

template <int BITS>
void launch_bits(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0, int64_t n_rows, __nv_bfloat16 *out) {
    if (w->scale_dtype == MLXE_DTYPE_F16) launch<BITS, MLXE_DTYPE_F16>(state, w, row0, n_rows, out);
    else if (w->scale_dtype == MLXE_DTYPE_BF16) launch<BITS, MLXE_DTYPE_BF16>(state, w, row0, n_rows, out);
    else launch<BITS, MLXE_DTYPE_F32>(state, w, row0, n_rows, out);
}

/* 0 until first read from MLXE_CUDA_EXPAND_MB (or set by a bench). */
int64_t slice_bytes = 0;
bool word_kernel = false; /* a bench's switch back to cuda_matmul.cu's word-per-thread kernel */

}  // namespace

extern "C" void mlxe_cuda_expand_tuning(int64_t slice_mb, bool vector_kernel) {
    slice_bytes = slice_mb > 0 ? slice_mb << 20 : 0;
    word_kernel = !vector_kernel;
}

extern "C" int64_t mlxe_cuda_expand_slice_rows(const mlxe_matrix *w) {
    if (slice_bytes == 0) {
        /* MLXE_CUDA_EXPAND_MB: the slice size (benches compare sizes) */
        const char *text = getenv("MLXE_CUDA_EXPAND_MB");
        int64_t mb = text ? atoll(text) : 0;
        if (mb < 1 || mb > 4096) mb = kDefaultSliceMb;
        slice_bytes = mb << 20;
    }
    int64_t rows = slice_bytes / (w->cols * 2);
    /* whole multiples of 128 rows (the GEMM's tiles), at least one tile */
    if (rows >= 256) rows -= rows % 128;
    if (rows < 128) rows = 128;
    if (rows > 65535) rows = 65535 - 65535 % 128;
    return rows < w->rows ? rows : w->rows;
}

extern "C" bool mlxe_cuda_expand_quantized_bf16(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0,
                                                int64_t n_rows, void *out) {
    if (w->bits != 8 || word_kernel) return false;
    const int values_per_vector = 128 / w->bits;
    if (log2_of(w->group_size) < 0 || w->group_size % values_per_vector != 0 || w->cols % w->group_size != 0 ||
        w->cols * 2 >= (1LL << 31) || ((uintptr_t)w->data & 15u) || ((uintptr_t)out & 15u) ||
        n_rows * (w->cols / values_per_vector) >= (1LL << 40))
        return false;
    launch_bits<8>(state, w, row0, n_rows, static_cast<__nv_bfloat16 *>(out));
    return true;
}
