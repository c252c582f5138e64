/* runtime/cuda/cuda_matmul.cu — y = x · wᵀ on the GPU.
 *
 * Decode (a batch of at most state->matvec_max_rows tokens): matrix-vector
 * kernels, one warp per output row, that read each weight once with 16-byte
 * loads (four in flight per thread) and apply it to every token of the batch
 * — the step is bound by weight bytes, so that is the roofline:
 *   - F32/F16/BF16 weights: 4 or 8 elements per load, float32 accumulation;
 *   - MLX affine 4- and 8-bit: 32 or 16 values per load, summed per group as
 *     scale * Σ q·x + bias * Σ x (one multiply per value);
 *   - other bit widths, unaligned data or odd column counts: a scalar kernel.
 * Prefill (larger batches): cuBLAS. F16/BF16 weights stay as stored and the
 * activations are rounded to the weight type for a tensor-core GEMM with
 * float32 accumulation and output (MLXE_CUDA_GEMM=f32 instead widens the
 * weights to F32 per call, the alternative measured by scripts/gpu_check.sh);
 * quantized weights are expanded to BF16 in slices of rows into a scratch
 * buffer and multiplied the same way. F32 weights use SGEMM. */
#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_gemm_quant.h"

using namespace mlxe_cuda;

namespace {

constexpr int kMatvecWarps = 8;           /* output rows per block */
constexpr int kUnroll = 4;                /* 16-byte weight loads in flight per thread */
constexpr size_t kExpandBytes = (size_t)256 << 20; /* scratch for weights expanded for a GEMM */

/* ---- float weights ---- */

template <int DT> struct packed;
template <> struct packed<MLXE_DTYPE_F32> {
    static constexpr int count = 4;
    __device__ static void unpack(uint4 v, float *f) {
        f[0] = __uint_as_float(v.x); f[1] = __uint_as_float(v.y);
        f[2] = __uint_as_float(v.z); f[3] = __uint_as_float(v.w);
    }
};
template <> struct packed<MLXE_DTYPE_F16> {
    static constexpr int count = 8;
    __device__ static void unpack(uint4 v, float *f) {
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 pair = __half22float2(*reinterpret_cast<const __half2 *>(&words[i]));
            f[2 * i] = pair.x;
            f[2 * i + 1] = pair.y;
        }
    }
};
template <> struct packed<MLXE_DTYPE_BF16> {
    static constexpr int count = 8;
    __device__ static void unpack(uint4 v, float *f) {
        const uint32_t words[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            f[2 * i] = __uint_as_float(words[i] << 16);
            f[2 * i + 1] = __uint_as_float(words[i] & 0xffff0000u);
        }
    }
};

/* Each output row is shared by `split` consecutive warps of the block (a
 * power of two dividing 8), each taking every split-th 16-byte vector of the
 * row; the warps' sums meet in shared memory. Small matrices get a larger
 * split so enough loads are in flight to cover the memory latency. */
template <int DT, int NR>
__global__ void __launch_bounds__(kMatvecWarps * kWarp)
    matvec_kernel(const float *__restrict__ x, const uint4 *__restrict__ w, int64_t rows, int64_t cols, int n_rows,
                  float *__restrict__ y, int split) {
    constexpr int E = packed<DT>::count;
    __shared__ float partial[kMatvecWarps][NR];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int64_t o = (int64_t)blockIdx.x * (kMatvecWarps / split) + warp / split;
    const int part = warp % split;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = 0.0f;
    if (o < rows) {
        const int64_t n_vectors = cols / E;
        const int64_t stride = (int64_t)kWarp * split;
        const uint4 *row = w + o * n_vectors;
        for (int64_t base = (int64_t)part * kWarp + lane; base < n_vectors; base += stride * kUnroll) {
            uint4 loaded[kUnroll];
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                int64_t v = base + u * stride;
                loaded[u] = v < n_vectors ? __ldg(row + v) : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                int64_t v = base + u * stride;
                if (v >= n_vectors) break;
                float wf[E];
                packed<DT>::unpack(loaded[u], wf);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    if (r >= n_rows) break;
                    const float4 *xv = reinterpret_cast<const float4 *>(x + r * cols + v * E);
#pragma unroll
                    for (int j = 0; j < E / 4; j++) {
                        float4 a = xv[j];
                        acc[r] += wf[4 * j] * a.x + wf[4 * j + 1] * a.y + wf[4 * j + 2] * a.z + wf[4 * j + 3] * a.w;
                    }
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float sum = warp_sum(acc[r]);
        if (lane == 0) partial[warp][r] = sum;
    }
    __syncthreads();
    if (o < rows && part == 0 && lane < NR && lane < n_rows) {
        float total = 0.0f;
        for (int p = 0; p < split; p++) total += partial[warp + p][lane];
        y[lane * rows + o] = total;
    }
}

/* Any dtype, alignment and column count; also the quantized fallback. */
__global__ void matvec_scalar_kernel(const float *x, const void *w, int dtype, int bits, int group_size,
                                     int scale_dtype, const void *scales, const void *biases, int64_t rows,
                                     int64_t cols, int n_rows, float *y) {
    const int lane = threadIdx.x % kWarp;
    const int64_t o = (int64_t)blockIdx.x * kMatvecWarps + threadIdx.x / kWarp;
    if (o >= rows) return;
    const int64_t words_per_row = bits ? cols * bits / 32 : 0;
    for (int r0 = 0; r0 < n_rows; r0 += 8) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t k = lane; k < cols; k += kWarp) {
            float wk = bits ? quantized_at(static_cast<const uint32_t *>(w), words_per_row, bits, group_size,
                                           scale_dtype, scales, biases, cols, o, k)
                            : load_as_float(dtype, w, o * cols + k);
#pragma unroll
            for (int r = 0; r < 8; r++)
                if (r0 + r < n_rows) acc[r] += wk * x[(r0 + r) * cols + k];
        }
#pragma unroll
        for (int r = 0; r < 8; r++) {
            float sum = warp_sum(acc[r]);
            if (lane == 0 && r0 + r < n_rows) y[(r0 + r) * rows + o] = sum;
        }
    }
}

/* ---- MLX affine 4- and 8-bit ---- */

template <int SDT> __device__ __forceinline__ float scale_at(const void *p, int64_t i) {
    return load_as_float(SDT, p, i);
}

/* q as float without an int-to-float conversion (a quarter-rate
 * instruction): the bits become the mantissa of 2^23 + q, then 2^23 is
 * subtracted — exact for q < 2^23. */
__device__ __forceinline__ float small_uint_to_float(uint32_t q) {
    return __uint_as_float(0x4b000000u | q) - 8388608.0f;
}

template <int BITS, int SDT, int NR>
__global__ void __launch_bounds__(kMatvecWarps * kWarp)
    matvec_quantized_kernel(const float *__restrict__ x, const uint4 *__restrict__ w, const void *__restrict__ scales,
                            const void *__restrict__ biases, int64_t rows, int64_t cols, int group_shift, int n_rows,
                            float *__restrict__ y, int split) {
    constexpr int V = 128 / BITS;          /* values per 16-byte load */
    constexpr int PER_WORD = 32 / BITS;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    __shared__ float partial[kMatvecWarps][NR];
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const int64_t o = (int64_t)blockIdx.x * (kMatvecWarps / split) + warp / split;
    const int part = warp % split;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = 0.0f;
    if (o < rows) {
        const int n_vectors = (int)(cols / V);
        const int stride = kWarp * split;
        const int64_t group_base = o * (cols >> group_shift);
        const uint4 *row = w + o * n_vectors;
        for (int base = part * kWarp + lane; base < n_vectors; base += stride * kUnroll) {
            uint4 loaded[kUnroll];
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                int v = base + u * stride;
                loaded[u] = v < n_vectors ? __ldg(row + v) : make_uint4(0, 0, 0, 0);
            }
#pragma unroll
            for (int u = 0; u < kUnroll; u++) {
                int v = base + u * stride;
                if (v >= n_vectors) break;
                /* V divides every group size (32, 64, 128), so a load is one group */
                int64_t group = group_base + ((v * V) >> group_shift);
                float scale = load_as_float(SDT, scales, group), bias = load_as_float(SDT, biases, group);
                const uint32_t words[4] = {loaded[u].x, loaded[u].y, loaded[u].z, loaded[u].w};
                float q[V];
#pragma unroll
                for (int j = 0; j < V; j++) q[j] = small_uint_to_float((words[j / PER_WORD] >> ((j % PER_WORD) * BITS)) & MASK);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    if (r >= n_rows) break;
                    const float4 *xv = reinterpret_cast<const float4 *>(x + r * cols + (int64_t)v * V);
                    float dot = 0.0f, sum = 0.0f;
#pragma unroll
                    for (int j = 0; j < V / 4; j++) {
                        float4 a = xv[j];
                        dot += q[4 * j] * a.x + q[4 * j + 1] * a.y + q[4 * j + 2] * a.z + q[4 * j + 3] * a.w;
                        sum += (a.x + a.y) + (a.z + a.w);
                    }
                    acc[r] += scale * dot + bias * sum;
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float total = warp_sum(acc[r]);
        if (lane == 0) partial[warp][r] = total;
    }
    __syncthreads();
    if (o < rows && part == 0 && lane < NR && lane < n_rows) {
        float total = 0.0f;
        for (int p = 0; p < split; p++) total += partial[warp + p][lane];
        y[lane * rows + o] = total;
    }
}

/* ---- conversions for the GEMM path ---- */

__global__ void f32_to_bf16_kernel(const float *x, __nv_bfloat16 *out, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2bfloat16_rn(x[i]);
}

__global__ void f32_to_f16_kernel(const float *x, __half *out, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = __float2half_rn(x[i]);
}

__global__ void weights_to_f32_kernel(const void *w, int dtype, int64_t n, float *out) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = load_as_float(dtype, w, i);
}

/* Rows [row0, row0 + n_rows) of a quantized matrix as BF16. */
__global__ void dequantize_bf16_kernel(const uint32_t *words, int bits, int group_size, int scale_dtype,
                                       const void *scales, const void *biases, int64_t cols, int64_t row0,
                                       int64_t n_rows, __nv_bfloat16 *out) {
    const int64_t words_per_row = cols * bits / 32;
    const int64_t n = n_rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, k = i % cols;
        out[i] = __float2bfloat16_rn(
            quantized_at(words, words_per_row, bits, group_size, scale_dtype, scales, biases, cols, row0 + r, k));
    }
}

/* Same as float32: the F32 GEMM mode (MLXE_CUDA_GEMM=f32), where prefill of
 * a quantized matrix computes like the CPU (no BF16 rounding anywhere). */
__global__ void dequantize_f32_kernel(const uint32_t *words, int bits, int group_size, int scale_dtype,
                                      const void *scales, const void *biases, int64_t cols, int64_t row0,
                                      int64_t n_rows, float *out) {
    const int64_t words_per_row = cols * bits / 32;
    const int64_t n = n_rows * cols;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, k = i % cols;
        out[i] = quantized_at(words, words_per_row, bits, group_size, scale_dtype, scales, biases, cols, row0 + r, k);
    }
}

/* Rows [row0, row0 + gridDim.y) of a 4- or 8-bit matrix as BF16, one packed
 * word per thread (32-bit index arithmetic, no divisions). */
template <int BITS, int SDT>
__global__ void expand_bf16_kernel(const uint32_t *__restrict__ words, const void *__restrict__ scales,
                                   const void *__restrict__ biases, int64_t cols, int group_shift, int64_t row0,
                                   __nv_bfloat16 *__restrict__ out) {
    constexpr int PER_WORD = 32 / BITS;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    const int words_per_row = (int)(cols / PER_WORD);
    const int word = blockIdx.x * blockDim.x + threadIdx.x;
    if (word >= words_per_row) return;
    const int64_t row = row0 + blockIdx.y;
    const uint32_t packed_word = words[row * words_per_row + word];
    const int k0 = word * PER_WORD;
    const int64_t group = row * (cols >> group_shift) + (k0 >> group_shift);
    const float scale = load_as_float(SDT, scales, group), bias = load_as_float(SDT, biases, group);
    __align__(16) __nv_bfloat16 values[PER_WORD];
#pragma unroll
    for (int j = 0; j < PER_WORD; j++)
        values[j] = __float2bfloat16_rn(scale * (float)((packed_word >> (j * BITS)) & MASK) + bias);
    __nv_bfloat16 *dst = out + (int64_t)blockIdx.y * cols + k0;
    if (PER_WORD == 8) *reinterpret_cast<uint4 *>(dst) = *reinterpret_cast<const uint4 *>(values);
    else *reinterpret_cast<uint2 *>(dst) = *reinterpret_cast<const uint2 *>(values);
}

/* log2(n) when n is a power of two, else -1. */
int log2_exact(int64_t n) {
    for (int shift = 0; shift < 31; shift++)
        if (((int64_t)1 << shift) == n) return shift;
    return -1;
}

/* Output rows per block share: a power of two (1..8) raising the warps in
 * flight to about 48 per multiprocessor on small matrices. */
int matvec_split(const mlxe_cuda_state *state, int64_t rows) {
    /* Measured 1-2 us slower wherever it applied on an H100 (docs/CUDA.md,
     * version 2): off unless MLXE_CUDA_MATVEC_SPLIT=auto. */
    if (!state->matvec_split_auto) return 1;
    const int64_t target_warps = 48LL * state->sm_count;
    int split = 1;
    while (split < kMatvecWarps && rows * split < target_warps) split *= 2;
    return split;
}

bool aligned16(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

/* ---- launchers ---- */

template <int DT>
void launch_matvec(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y) {
    const int split = matvec_split(state, w->rows);
    const int rows_per_block = kMatvecWarps / split;
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block)), block(kMatvecWarps * kWarp);
    const uint4 *data = static_cast<const uint4 *>(w->data);
#define MLXE_MV(NR) matvec_kernel<DT, NR><<<grid, block, 0, state->stream>>>(x, data, w->rows, w->cols, n_rows, y, split)
    if (n_rows == 1) MLXE_MV(1);
    else if (n_rows == 2) MLXE_MV(2);
    else if (n_rows <= 4) MLXE_MV(4);
    else MLXE_MV(8);
#undef MLXE_MV
}

template <int BITS, int SDT>
void launch_matvec_quantized(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y) {
    const int split = matvec_split(state, w->rows);
    const int rows_per_block = kMatvecWarps / split;
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block)), block(kMatvecWarps * kWarp);
    const uint4 *data = static_cast<const uint4 *>(w->data);
    const int group_shift = log2_exact(w->group_size);
#define MLXE_QMV(NR)                                                                                   \
    matvec_quantized_kernel<BITS, SDT, NR><<<grid, block, 0, state->stream>>>(                         \
        x, data, w->scales, w->biases, w->rows, w->cols, group_shift, n_rows, y, split)
    if (n_rows == 1) MLXE_QMV(1);
    else if (n_rows == 2) MLXE_QMV(2);
    else if (n_rows <= 4) MLXE_QMV(4);
    else MLXE_QMV(8);
#undef MLXE_QMV
}

template <int BITS>
void launch_matvec_quantized_bits(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y) {
    if (w->scale_dtype == MLXE_DTYPE_F16) launch_matvec_quantized<BITS, MLXE_DTYPE_F16>(state, x, n_rows, w, y);
    else if (w->scale_dtype == MLXE_DTYPE_BF16) launch_matvec_quantized<BITS, MLXE_DTYPE_BF16>(state, x, n_rows, w, y);
    else launch_matvec_quantized<BITS, MLXE_DTYPE_F32>(state, x, n_rows, w, y);
}

/* One launch for up to 8 rows of x (the batch tiles of the kernels). */
void matvec(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y) {
    const bool x_ok = aligned16(x) && aligned16(w->data);
    if (w->bits) {
        const bool fast = (w->bits == 4 || w->bits == 8) && x_ok && w->group_size % (128 / w->bits) == 0 &&
                          log2_exact(w->group_size) >= 0 && w->cols % w->group_size == 0 && w->cols < (1LL << 30);
        if (fast && w->bits == 4) return launch_matvec_quantized_bits<4>(state, x, n_rows, w, y);
        if (fast && w->bits == 8) return launch_matvec_quantized_bits<8>(state, x, n_rows, w, y);
    } else {
        const int per_load = w->dtype == MLXE_DTYPE_F32 ? 4 : 8;
        if (x_ok && w->cols % per_load == 0) {
            if (w->dtype == MLXE_DTYPE_F32) return launch_matvec<MLXE_DTYPE_F32>(state, x, n_rows, w, y);
            if (w->dtype == MLXE_DTYPE_F16) return launch_matvec<MLXE_DTYPE_F16>(state, x, n_rows, w, y);
            if (w->dtype == MLXE_DTYPE_BF16) return launch_matvec<MLXE_DTYPE_BF16>(state, x, n_rows, w, y);
        }
    }
    dim3 grid((unsigned)((w->rows + kMatvecWarps - 1) / kMatvecWarps)), block(kMatvecWarps * kWarp);
    matvec_scalar_kernel<<<grid, block, 0, state->stream>>>(x, w->data, w->dtype, w->bits, w->group_size,
                                                            w->scale_dtype, w->scales, w->biases, w->rows, w->cols,
                                                            n_rows, y);
}

void matvec_batches(mlxe_cuda_state *state, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
        int64_t n = n_rows - r0 < 8 ? n_rows - r0 : 8;
        matvec(state, x + r0 * w->cols, (int)n, w, y + r0 * w->rows);
    }
}

template <int BITS>
void launch_expand(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0, int64_t n_rows, __nv_bfloat16 *out) {
    const int threads = 128;
    const int64_t words_per_row = w->cols * BITS / 32;
    dim3 grid((unsigned)((words_per_row + threads - 1) / threads), (unsigned)n_rows);
    const uint32_t *words = static_cast<const uint32_t *>(w->data);
    const int shift = log2_exact(w->group_size);
    if (w->scale_dtype == MLXE_DTYPE_F16)
        expand_bf16_kernel<BITS, MLXE_DTYPE_F16><<<grid, threads, 0, state->stream>>>(words, w->scales, w->biases, w->cols, shift, row0, out);
    else if (w->scale_dtype == MLXE_DTYPE_BF16)
        expand_bf16_kernel<BITS, MLXE_DTYPE_BF16><<<grid, threads, 0, state->stream>>>(words, w->scales, w->biases, w->cols, shift, row0, out);
    else
        expand_bf16_kernel<BITS, MLXE_DTYPE_F32><<<grid, threads, 0, state->stream>>>(words, w->scales, w->biases, w->cols, shift, row0, out);
}

/* Rows [row0, row0 + n_rows) of a quantized matrix as BF16 into out. */
void expand(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0, int64_t n_rows, __nv_bfloat16 *out) {
    const bool fast = (w->bits == 4 || w->bits == 8) && log2_exact(w->group_size) >= 0 &&
                      w->group_size >= 32 / w->bits && w->cols % w->group_size == 0 && w->cols < (1LL << 30);
    if (fast && w->bits == 4) return launch_expand<4>(state, w, row0, n_rows, out);
    if (fast && w->bits == 8) return launch_expand<8>(state, w, row0, n_rows, out);
    const int threads = 256;
    dequantize_bf16_kernel<<<grid_for(n_rows * w->cols, threads), threads, 0, state->stream>>>(
        static_cast<const uint32_t *>(w->data), w->bits, w->group_size, w->scale_dtype, w->scales, w->biases, w->cols,
        row0, n_rows, out);
}

void note_blas(mlxe_cuda_state *state, cublasStatus_t status, const char *where) {
    if (status != CUBLAS_STATUS_SUCCESS) mlxe_cuda_note_error(state, cudaErrorUnknown, where);
}

/* Y (n × rows, row-major) = X (n × cols) · A (rows × cols)ᵀ, in cuBLAS's
 * column-major terms Yᵀ = Aᵀ·Xᵀ with A read transposed (lda = cols). */
void gemm_ex(mlxe_cuda_state *state, const void *a, cudaDataType a_type, int64_t a_rows, const void *x,
             cudaDataType x_type, int64_t n, int64_t cols, float *y, int64_t ldy) {
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t status = cublasGemmEx(state->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a_rows, (int)n, (int)cols,
                                         &one, a, a_type, (int)cols, x, x_type, (int)cols, &zero, y, CUDA_R_32F,
                                         (int)ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    note_blas(state, status, "cuBLAS GEMM");
}

/* Largest slice of rows whose expansion to `element` bytes fits the scratch. */
int64_t slice_rows(const mlxe_matrix *w, size_t element) {
    int64_t rows = (int64_t)(kExpandBytes / ((size_t)w->cols * element));
    if (rows < 1) rows = 1;
    if (rows > 65535) rows = 65535; /* one grid row per matrix row in the expansion */
    return rows < w->rows ? rows : w->rows;
}

void gemm(mlxe_cuda_state *state, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    const int threads = 256;
    const int64_t n_x = n_rows * w->cols;
    if (!w->bits && w->dtype == MLXE_DTYPE_F32) {
        const float one = 1.0f, zero = 0.0f;
        note_blas(state,
                  cublasSgemm(state->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, (int)n_rows, (int)w->cols, &one,
                              static_cast<const float *>(w->data), (int)w->cols, x, (int)w->cols, &zero, y,
                              (int)w->rows),
                  "cuBLAS SGEMM");
        return;
    }
    if (w->bits && state->gemm_mode == MLXE_CUDA_GEMM_F32_WEIGHTS) {
        int64_t slice = slice_rows(w, sizeof(float));
        if (!mlxe_cuda_buffer_reserve(state, &state->dequant, (size_t)(slice * w->cols) * sizeof(float)))
            return matvec_batches(state, x, n_rows, w, y);
        float *wide = static_cast<float *>(state->dequant.ptr);
        for (int64_t o0 = 0; o0 < w->rows; o0 += slice) {
            int64_t rows = w->rows - o0 < slice ? w->rows - o0 : slice;
            dequantize_f32_kernel<<<grid_for(rows * w->cols, threads), threads, 0, state->stream>>>(
                static_cast<const uint32_t *>(w->data), w->bits, w->group_size, w->scale_dtype, w->scales, w->biases,
                w->cols, o0, rows, wide);
            const float one = 1.0f, zero = 0.0f;
            note_blas(state,
                      cublasSgemm(state->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n_rows, (int)w->cols, &one,
                                  wide, (int)w->cols, x, (int)w->cols, &zero, y + o0, (int)w->rows),
                      "cuBLAS SGEMM");
        }
        return;
    }
    if (!w->bits && state->gemm_mode == MLXE_CUDA_GEMM_F32_WEIGHTS) {
        int64_t slice = slice_rows(w, sizeof(float));
        if (!mlxe_cuda_buffer_reserve(state, &state->dequant, (size_t)(slice * w->cols) * sizeof(float)))
            return matvec_batches(state, x, n_rows, w, y);
        float *wide = static_cast<float *>(state->dequant.ptr);
        const size_t element = w->dtype == MLXE_DTYPE_F32 ? 4 : 2;
        for (int64_t o0 = 0; o0 < w->rows; o0 += slice) {
            int64_t rows = w->rows - o0 < slice ? w->rows - o0 : slice;
            weights_to_f32_kernel<<<grid_for(rows * w->cols, threads), threads, 0, state->stream>>>(
                static_cast<const char *>(w->data) + (size_t)(o0 * w->cols) * element, w->dtype, rows * w->cols, wide);
            const float one = 1.0f, zero = 0.0f;
            note_blas(state,
                      cublasSgemm(state->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n_rows, (int)w->cols, &one,
                                  wide, (int)w->cols, x, (int)w->cols, &zero, y + o0, (int)w->rows),
                      "cuBLAS SGEMM");
        }
        return;
    }
    /* Activations rounded to the weight type (BF16 for quantized weights). */
    const bool f16 = !w->bits && w->dtype == MLXE_DTYPE_F16;
    if (!mlxe_cuda_buffer_reserve(state, &state->convert, (size_t)n_x * 2)) return matvec_batches(state, x, n_rows, w, y);
    if (f16)
        f32_to_f16_kernel<<<grid_for(n_x, threads), threads, 0, state->stream>>>(x, static_cast<__half *>(state->convert.ptr), n_x);
    else
        f32_to_bf16_kernel<<<grid_for(n_x, threads), threads, 0, state->stream>>>(
            x, static_cast<__nv_bfloat16 *>(state->convert.ptr), n_x);
    const cudaDataType type = f16 ? CUDA_R_16F : CUDA_R_16BF;
    if (!w->bits) {
        gemm_ex(state, w->data, type, w->rows, state->convert.ptr, type, n_rows, w->cols, y, w->rows);
        return;
    }
    /* slice size and the 8-bit kernel: cuda_gemm_quant.cu */
    int64_t slice = mlxe_cuda_expand_slice_rows(w);
    if (!mlxe_cuda_buffer_reserve(state, &state->dequant, (size_t)(slice * w->cols) * 2))
        return matvec_batches(state, x, n_rows, w, y);
    __nv_bfloat16 *expanded = static_cast<__nv_bfloat16 *>(state->dequant.ptr);
    for (int64_t o0 = 0; o0 < w->rows; o0 += slice) {
        int64_t rows = w->rows - o0 < slice ? w->rows - o0 : slice;
        if (!mlxe_cuda_expand_quantized_bf16(state, w, o0, rows, expanded)) expand(state, w, o0, rows, expanded);
        gemm_ex(state, expanded, CUDA_R_16BF, rows, state->convert.ptr, CUDA_R_16BF, n_rows, w->cols, y + o0, w->rows);
    }
}

}  // namespace

extern "C" void mlxe_cuda_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    if (n_rows <= 0 || w->rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int matvec_max_rows = w->bits ? state->matvec_max_rows : state->float_matvec_max_rows;
    if (n_rows <= matvec_max_rows || w->cols <= 0)
        matvec_batches(state, x, n_rows, w, y);
    else
        gemm(state, x, n_rows, w, y);
    mlxe_cuda_check_launch(state, "matmul");
}
