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

template <int DT, int NR>
__global__ void __launch_bounds__(kMatvecWarps * kWarp)
    matvec_kernel(const float *__restrict__ x, const uint4 *__restrict__ w, int64_t rows, int64_t cols, int n_rows,
                  float *__restrict__ y) {
    constexpr int E = packed<DT>::count;
    const int lane = threadIdx.x % kWarp;
    const int64_t o = (int64_t)blockIdx.x * kMatvecWarps + threadIdx.x / kWarp;
    if (o >= rows) return;
    const int64_t n_vectors = cols / E;
    const uint4 *row = w + o * n_vectors;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = 0.0f;
    for (int64_t base = 0; base < n_vectors; base += kWarp * kUnroll) {
        uint4 loaded[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int64_t v = base + u * kWarp + lane;
            loaded[u] = v < n_vectors ? __ldg(row + v) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int64_t v = base + u * kWarp + lane;
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
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float sum = warp_sum(acc[r]);
        if (lane == 0 && r < n_rows) y[r * rows + o] = sum;
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

template <int BITS, int SDT, int NR>
__global__ void __launch_bounds__(kMatvecWarps * kWarp)
    matvec_quantized_kernel(const float *__restrict__ x, const uint4 *__restrict__ w, const void *__restrict__ scales,
                            const void *__restrict__ biases, int64_t rows, int64_t cols, int group_size, int n_rows,
                            float *__restrict__ y) {
    constexpr int V = 128 / BITS;          /* values per 16-byte load */
    constexpr int PER_WORD = 32 / BITS;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    const int lane = threadIdx.x % kWarp;
    const int64_t o = (int64_t)blockIdx.x * kMatvecWarps + threadIdx.x / kWarp;
    if (o >= rows) return;
    const int64_t n_vectors = cols / V;
    const int64_t groups_per_row = cols / group_size;
    const uint4 *row = w + o * n_vectors;
    float acc[NR];
#pragma unroll
    for (int r = 0; r < NR; r++) acc[r] = 0.0f;
    for (int64_t base = 0; base < n_vectors; base += kWarp * kUnroll) {
        uint4 loaded[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int64_t v = base + u * kWarp + lane;
            loaded[u] = v < n_vectors ? __ldg(row + v) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; u++) {
            int64_t v = base + u * kWarp + lane;
            if (v >= n_vectors) break;
            /* V divides every group size (32, 64, 128), so a load is one group */
            int64_t group = o * groups_per_row + v * V / group_size;
            float scale = scale_at<SDT>(scales, group), bias = scale_at<SDT>(biases, group);
            const uint32_t words[4] = {loaded[u].x, loaded[u].y, loaded[u].z, loaded[u].w};
#pragma unroll
            for (int r = 0; r < NR; r++) {
                if (r >= n_rows) break;
                const float4 *xv = reinterpret_cast<const float4 *>(x + r * cols + v * V);
                float dot = 0.0f, sum = 0.0f;
#pragma unroll
                for (int j = 0; j < V / 4; j++) {
                    float4 a = xv[j];
                    const uint32_t word = words[(4 * j) / PER_WORD];
                    const int shift = ((4 * j) % PER_WORD) * BITS;
                    dot += (float)((word >> shift) & MASK) * a.x + (float)((word >> (shift + BITS)) & MASK) * a.y +
                           (float)((word >> (shift + 2 * BITS)) & MASK) * a.z +
                           (float)((word >> (shift + 3 * BITS)) & MASK) * a.w;
                    sum += (a.x + a.y) + (a.z + a.w);
                }
                acc[r] += scale * dot + bias * sum;
            }
        }
    }
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float total = warp_sum(acc[r]);
        if (lane == 0 && r < n_rows) y[r * rows + o] = total;
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

bool aligned16(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

/* ---- launchers ---- */

template <int DT>
void launch_matvec(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y) {
    dim3 grid((unsigned)((w->rows + kMatvecWarps - 1) / kMatvecWarps)), block(kMatvecWarps * kWarp);
    const uint4 *data = static_cast<const uint4 *>(w->data);
    if (n_rows == 1) matvec_kernel<DT, 1><<<grid, block, 0, state->stream>>>(x, data, w->rows, w->cols, n_rows, y);
    else if (n_rows == 2) matvec_kernel<DT, 2><<<grid, block, 0, state->stream>>>(x, data, w->rows, w->cols, n_rows, y);
    else if (n_rows <= 4) matvec_kernel<DT, 4><<<grid, block, 0, state->stream>>>(x, data, w->rows, w->cols, n_rows, y);
    else matvec_kernel<DT, 8><<<grid, block, 0, state->stream>>>(x, data, w->rows, w->cols, n_rows, y);
}

template <int BITS, int SDT>
void launch_matvec_quantized(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y) {
    dim3 grid((unsigned)((w->rows + kMatvecWarps - 1) / kMatvecWarps)), block(kMatvecWarps * kWarp);
    const uint4 *data = static_cast<const uint4 *>(w->data);
#define MLXE_QMV(NR)                                                                                   \
    matvec_quantized_kernel<BITS, SDT, NR><<<grid, block, 0, state->stream>>>(x, data, w->scales, w->biases, \
                                                                            w->rows, w->cols, w->group_size, n_rows, y)
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
                          w->cols % w->group_size == 0;
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
    int64_t slice = slice_rows(w, 2);
    if (!mlxe_cuda_buffer_reserve(state, &state->dequant, (size_t)(slice * w->cols) * 2))
        return matvec_batches(state, x, n_rows, w, y);
    __nv_bfloat16 *expanded = static_cast<__nv_bfloat16 *>(state->dequant.ptr);
    for (int64_t o0 = 0; o0 < w->rows; o0 += slice) {
        int64_t rows = w->rows - o0 < slice ? w->rows - o0 : slice;
        dequantize_bf16_kernel<<<grid_for(rows * w->cols, threads), threads, 0, state->stream>>>(
            static_cast<const uint32_t *>(w->data), w->bits, w->group_size, w->scale_dtype, w->scales, w->biases,
            w->cols, o0, rows, expanded);
        gemm_ex(state, expanded, CUDA_R_16BF, rows, state->convert.ptr, CUDA_R_16BF, n_rows, w->cols, y + o0, w->rows);
    }
}

}  // namespace

extern "C" void mlxe_cuda_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    if (n_rows <= 0 || w->rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (n_rows <= state->matvec_max_rows || w->cols <= 0)
        matvec_batches(state, x, n_rows, w, y);
    else
        gemm(state, x, n_rows, w, y);
    mlxe_cuda_check_launch(state, "matmul");
}
