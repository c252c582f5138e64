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
 * One token with 4/8-bit weights (groups 32/64/128) takes int8 activations
 * and dp4a instead (cuda_matvec_int8.cu) unless MLXE_CUDA_MATVEC=float (the
 * exact float32 kernels below, kept for tests and side-by-side timing).
 * Prefill (larger batches): cuBLAS. F16/BF16 weights stay as stored and the
 * activations are rounded to the weight type for a tensor-core GEMM with
 * float32 accumulation and output (MLXE_CUDA_GEMM=f32 instead widens the
 * weights to F32 per call, the alternative measured by scripts/gpu_check.sh);
 * quantized weights are expanded to BF16 in slices of rows into a scratch
 * buffer and multiplied the same way. F32 weights use SGEMM. */
#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_gemm_quant.h"
#include "runtime/cuda/cuda_matvec_int8.h"

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
                  float *__restrict__ y, int split, bool accumulate) {
    constexpr int E = packed<DT>::count;
    __shared__ float partial[kMatvecWarps][NR];
    wait_for_previous_kernels();
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
    let_next_kernel_start(); /* late: the next kernel's blocks then find the SMs free (see cuda_common.cuh) */
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float sum = warp_sum(acc[r]);
        if (lane == 0) partial[warp][r] = sum;
    }
    __syncthreads();
    if (o < rows && part == 0 && lane < NR && lane < n_rows) {
        float total = 0.0f;
        for (int p = 0; p < split; p++) total += partial[warp + p][lane];
        y[lane * rows + o] = accumulate ? y[lane * rows + o] + total : total;
    }
}

/* Any dtype, alignment and column count; also the quantized fallback. */
__global__ void matvec_scalar_kernel(const float *x, const void *w, int dtype, int bits, int group_size,
                                     int scale_dtype, const void *scales, const void *biases, int64_t rows,
                                     int64_t cols, int n_rows, float *y, bool accumulate) {
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
            if (lane == 0 && r0 + r < n_rows) y[(r0 + r) * rows + o] = accumulate ? y[(r0 + r) * rows + o] + sum : sum;
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
                            float *__restrict__ y, int split, bool accumulate) {
    constexpr int V = 128 / BITS;          /* values per 16-byte load */
    constexpr int PER_WORD = 32 / BITS;
    constexpr uint32_t MASK = (1u << BITS) - 1u;
    __shared__ float partial[kMatvecWarps][NR];
    wait_for_previous_kernels();
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
    let_next_kernel_start();
#pragma unroll
    for (int r = 0; r < NR; r++) {
        float total = warp_sum(acc[r]);
        if (lane == 0) partial[warp][r] = total;
    }
    __syncthreads();
    if (o < rows && part == 0 && lane < NR && lane < n_rows) {
        float total = 0.0f;
        for (int p = 0; p < split; p++) total += partial[warp + p][lane];
        y[lane * rows + o] = accumulate ? y[lane * rows + o] + total : total;
    }
}

/* ---- one token: several output rows per warp ----
 *
 * Decode of a single sequence. Each warp computes R output rows (R = 1, 2
 * or 4, chosen by the row count so small matrices still fill the GPU) and
 * keeps the slice of x under its lanes' weight loads in registers, so x is
 * read once per R rows (version 3 read it once per row: for 4-bit weights
 * 8x the weight bytes, which bound the kernel on L1). The weight loads of
 * the warp's rows (and, for float weights, of several column steps: 8
 * loads of 16 bytes per lane in all) are issued before any arithmetic.
 *
 * Quantized values become floats without a shift per value: a value of a
 * 16-bit half word, masked in place (one LOP3 with the exponent bits of
 * 2^23), is the float 2^23 + q * 2^(b*j) for the j-th value of that half;
 * subtracting 2^23 is exact, and the 2^(b*j) is cancelled by scaling x's
 * element by 2^-(b*j) once when it is loaded (exact: a power of two). So
 * each value costs the LOP3, an FADD and the FMA, in float32 as before:
 * the same products as the CPU's, only summed in another order.
 *
 * Epilogues: store y, add to y (the residual), or SwiGLU over two matrices
 * of the same shape and format read by the same warp (gate and up share
 * the x registers): y = silu(x·gate) * (x·up). */
constexpr int kOneTokenWarps = 4;          /* warps per block */
constexpr int kLoadsPerLane = 8;           /* float weights: 16-byte loads in flight per lane */

enum epilogue { kStore = 0, kAccumulate = 1, kSwiglu = 2 };

__device__ __forceinline__ float masked_value(uint32_t half_word, uint32_t mask) {
    return __uint_as_float((half_word & mask) | 0x4b000000u) - 8388608.0f;
}

/* x[k..k+N) as the projection sees it: normed (x * inverse * gain, the
 * CPU's order of operations) or as is. */
template <int N>
__device__ __forceinline__ void load_x(const float *x, int k, const one_token_job &job, float inverse, float *xs) {
    const float4 *xv = reinterpret_cast<const float4 *>(x + k);
#pragma unroll
    for (int j = 0; j < N / 4; j++) {
        float4 a = xv[j];
        xs[4 * j] = a.x;
        xs[4 * j + 1] = a.y;
        xs[4 * j + 2] = a.z;
        xs[4 * j + 3] = a.w;
    }
    if (job.norm) {
#pragma unroll
        for (int j = 0; j < N; j++) xs[j] = xs[j] * inverse * load_as_float(job.norm_dtype, job.norm, k + j);
    }
}

template <int R, int EPILOGUE>
__device__ __forceinline__ void one_token_store(const float (&acc)[2][R], int lane, int row0, int rows, float *y) {
#pragma unroll
    for (int r = 0; r < R; r++) {
        float total = warp_sum(acc[0][r]);
        float second = EPILOGUE == kSwiglu ? warp_sum(acc[1][r]) : 0.0f;
        if (lane == 0 && row0 + r < rows) {
            if (EPILOGUE == kStore) y[row0 + r] = total;
            if (EPILOGUE == kAccumulate) y[row0 + r] += total;
            if (EPILOGUE == kSwiglu) y[row0 + r] = total / (1.0f + expf(-total)) * second;
        }
    }
}

/* The block's segment, this warp's first row, and the norm. */
struct one_token_place {
    int segment, rows, row0;
    float inverse;
};

template <int R>
__device__ __forceinline__ one_token_place place_of(const one_token_job &job, const float *x, int cols) {
    one_token_place p;
    const job_segment s = segment_of(job, (int)blockIdx.x);
    p.segment = s.segment;
    p.rows = s.rows;
    p.row0 = (s.block * kOneTokenWarps + (int)threadIdx.x / kWarp) * R;
    p.inverse = job.norm ? block_inverse_rms(x, cols, job.eps) : 1.0f; /* every thread, before any return */
    return p;
}

template <int BITS, int R, int EPILOGUE>
__global__ void __launch_bounds__(kOneTokenWarps * kWarp)
    matvec_quantized_one_kernel(const float *__restrict__ x, one_token_job job, int cols, int group_shift) {
    constexpr int V = 128 / BITS;          /* values per 16-byte load: one group or part of one */
    constexpr int PER_HALF = 16 / BITS;    /* values per 16-bit half word */
    constexpr int N_MATRICES = EPILOGUE == kSwiglu ? 2 : 1;
    wait_for_previous_kernels();
    const int lane = threadIdx.x % kWarp;
    const one_token_place at = place_of<R>(job, x, cols);
    const int rows = at.rows, row0 = at.row0;
    if (row0 >= rows) return;
    const uint4 *w[2] = {pick(at.segment, job.w[0], job.w[1], job.w[2]), job.w[1]};
    const void *scales[2] = {pick(at.segment, job.scales[0], job.scales[1], job.scales[2]), job.scales[1]};
    const void *biases[2] = {pick(at.segment, job.biases[0], job.biases[1], job.biases[2]), job.biases[1]};
    float *y = pick(at.segment, job.y[0], job.y[1], job.y[2]);
    const int n_vectors = cols / V;
    const int groups_per_row = cols >> group_shift;
    float acc[2][R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[0][r] = acc[1][r] = 0.0f;
    for (int v = lane; v < n_vectors; v += kWarp) {
        uint4 loaded[N_MATRICES][R];
#pragma unroll
        for (int m_i = 0; m_i < N_MATRICES; m_i++)
#pragma unroll
            for (int r = 0; r < R; r++)
                loaded[m_i][r] = row0 + r < rows ? __ldg(w[m_i] + (int64_t)(row0 + r) * n_vectors + v)
                                                 : make_uint4(0, 0, 0, 0);
        /* x under this load, then scaled by 2^-(BITS * position in its half word) */
        float xs[V];
        load_x<V>(x, v * V, job, at.inverse, xs);
        float sum = 0.0f;
#pragma unroll
        for (int j = 0; j < V; j += 4) sum += (xs[j] + xs[j + 1]) + (xs[j + 2] + xs[j + 3]);
        const int group = (v * V) >> group_shift;
#pragma unroll
        for (int j = 0; j < V; j++) xs[j] *= __uint_as_float((uint32_t)(127 - BITS * (j % PER_HALF)) << 23);
#pragma unroll
        for (int m_i = 0; m_i < N_MATRICES; m_i++) {
#pragma unroll
            for (int r = 0; r < R; r++) {
                const int g = (row0 + r < rows ? row0 + r : row0) * groups_per_row + group;
                const float scale = load_as_float(job.scale_dtype, scales[m_i], g);
                const float bias = load_as_float(job.scale_dtype, biases[m_i], g);
                const uint32_t words[4] = {loaded[m_i][r].x, loaded[m_i][r].y, loaded[m_i][r].z, loaded[m_i][r].w};
                float dot0 = 0.0f, dot1 = 0.0f;
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const uint32_t low = words[i], high = words[i] >> 16;
#pragma unroll
                    for (int j = 0; j < PER_HALF; j++) {
                        const uint32_t mask = ((1u << BITS) - 1u) << (BITS * j);
                        dot0 += masked_value(low, mask) * xs[i * 2 * PER_HALF + j];
                        dot1 += masked_value(high, mask) * xs[i * 2 * PER_HALF + PER_HALF + j];
                    }
                }
                acc[m_i][r] += scale * (dot0 + dot1) + bias * sum;
            }
        }
    }
    let_next_kernel_start();
    one_token_store<R, EPILOGUE>(acc, lane, row0, rows, y);
}

/* One token, float weights: one step of a thread's share of the products
 * of R rows of N_MATRICES matrices — STEPS 16-byte vectors per row and
 * matrix (first, first + stride, ... of each row), all loaded before any
 * arithmetic (load), then dotted with x, normalised by `inverse` and
 * job.norm's gains when job.norm is set, into acc (add). */
template <int DT, int R, int N_MATRICES, int STEPS> struct float_rows_step {
    uint4 loaded[STEPS][N_MATRICES][R];

    __device__ __forceinline__ void load(const uint4 *const (&w)[2], int row0, int rows, int n_vectors, int base,
                                         int stride) {
#pragma unroll
        for (int u = 0; u < STEPS; u++) {
            const int v = base + u * stride;
#pragma unroll
            for (int m_i = 0; m_i < N_MATRICES; m_i++)
#pragma unroll
                for (int r = 0; r < R; r++)
                    loaded[u][m_i][r] = v < n_vectors && row0 + r < rows
                                            ? __ldg(w[m_i] + (int64_t)(row0 + r) * n_vectors + v)
                                            : make_uint4(0, 0, 0, 0);
        }
    }

    __device__ __forceinline__ void add(const float *x, const one_token_job &job, float inverse, int n_vectors,
                                        int base, int stride, float (&acc)[2][R]) const {
        constexpr int E = packed<DT>::count;
#pragma unroll
        for (int u = 0; u < STEPS; u++) {
            const int v = base + u * stride;
            if (v >= n_vectors) break;
            float xs[E];
            load_x<E>(x, v * E, job, inverse, xs);
#pragma unroll
            for (int m_i = 0; m_i < N_MATRICES; m_i++)
#pragma unroll
                for (int r = 0; r < R; r++) {
                    float wf[E];
                    packed<DT>::unpack(loaded[u][m_i][r], wf);
                    float dot = 0.0f;
#pragma unroll
                    for (int j = 0; j < E; j++) dot += wf[j] * xs[j];
                    acc[m_i][r] += dot;
                }
        }
    }
};

/* Rows row0 .. row0 + R - 1 (those below `rows`) dotted with x (normalised
 * by `inverse` and job.norm's gains when job.norm is set), for each
 * of N_MATRICES matrices (the 16-byte vectors first, first + stride, ...
 * of each row), added into acc; STEPS vectors per row and matrix are
 * loaded before any arithmetic. The rows-per-warp kernel (lanes of a warp)
 * calls this; the row-block kernel (all threads of a block) walks the
 * same steps with its first loads issued before it waits for x. */
template <int DT, int R, int N_MATRICES, int STEPS>
__device__ __forceinline__ void float_rows_dot(const uint4 *const (&w)[2], const float *x, const one_token_job &job,
                                               float inverse, int row0, int rows, int n_vectors, int first, int stride,
                                               float (&acc)[2][R]) {
    float_rows_step<DT, R, N_MATRICES, STEPS> step;
    for (int base = first; base < n_vectors; base += stride * STEPS) {
        step.load(w, row0, rows, n_vectors, base, stride);
        step.add(x, job, inverse, n_vectors, base, stride, acc);
    }
}

template <int DT, int R, int EPILOGUE>
__global__ void __launch_bounds__(kOneTokenWarps * kWarp)
    matvec_one_kernel(const float *__restrict__ x, one_token_job job, int cols) {
    constexpr int E = packed<DT>::count;
    constexpr int N_MATRICES = EPILOGUE == kSwiglu ? 2 : 1;
    constexpr int STEPS = kLoadsPerLane / (R * N_MATRICES) > 0 ? kLoadsPerLane / (R * N_MATRICES) : 1;
    wait_for_previous_kernels();
    const int lane = threadIdx.x % kWarp;
    const one_token_place at = place_of<R>(job, x, cols);
    const int rows = at.rows, row0 = at.row0;
    if (row0 >= rows) return;
    const uint4 *w[2] = {pick(at.segment, job.w[0], job.w[1], job.w[2]), job.w[1]};
    float *y = pick(at.segment, job.y[0], job.y[1], job.y[2]);
    const int n_vectors = cols / E;
    float acc[2][R];
#pragma unroll
    for (int r = 0; r < R; r++) acc[0][r] = acc[1][r] = 0.0f;
    float_rows_dot<DT, R, N_MATRICES, STEPS>(w, x, job, at.inverse, row0, rows, n_vectors, lane, kWarp, acc);
    let_next_kernel_start();
    one_token_store<R, EPILOGUE>(acc, lane, row0, rows, y);
}

/* Float weights, one token: a block per RB rows (the default: RB = 8 for
 * matrices of 4096 rows or more of 4096 columns or more, else 4;
 * MLXE_CUDA_MATVEC=rowblock|
 * rowblock2|rowblock4|rowblock8 for 1, 2, 4 or 8, =warp for the
 * rows-per-warp kernel above). All the block's threads stride over
 * the same rows with 16-byte loads, so each row is read by 128 threads in
 * 2 KB runs instead of by one warp in 512-byte runs, and the block sums it
 * in shared memory. Measured on an H200 against rows per warp: 1B shape
 * decode 770 -> 886 tok/s, 8B shape 170 -> 196 (RB = 2: 828 / 180,
 * RB = 1: 673 on 1B). */
constexpr int kRowBlockThreads = 128;

template <int DT, int RB, int EPILOGUE, int MIN_BLOCKS = 1>
__global__ void __launch_bounds__(kRowBlockThreads, MIN_BLOCKS)
    matvec_row_block_kernel(const float *__restrict__ x, one_token_job job, int cols, int early_weights) {
    constexpr int E = packed<DT>::count;
    constexpr int N_MATRICES = EPILOGUE == kSwiglu ? 2 : 1;
    constexpr int STEPS = kLoadsPerLane / (RB * N_MATRICES) > 0 ? kLoadsPerLane / (RB * N_MATRICES) : 1;
    constexpr int WARPS = kRowBlockThreads / kWarp;
    __shared__ float partial[WARPS][2][RB];
    const job_segment place = segment_of(job, (int)blockIdx.x);
    const int segment = place.segment, rows = place.rows, row0 = place.block * RB;
    const uint4 *w[2] = {pick(segment, job.w[0], job.w[1], job.w[2]), job.w[1]};
    float *y = pick(segment, job.y[0], job.y[1], job.y[2]);
    const int n_vectors = cols / E;
    /* the first step's weights are on their way before x (the previous
     * kernel's output, with overlapped launches) and its norm are read */
    float_rows_step<DT, RB, N_MATRICES, STEPS> step;
    const int first = threadIdx.x;
    /* bit 2: q/k/v, the attention next (see cuda_matvec_int8.cu) */
    if (early_weights & 2) let_next_kernel_start();
    if (early_weights & 1) step.load(w, row0, rows, n_vectors, first, kRowBlockThreads);
    wait_for_previous_kernels();
    const float inverse = job.norm ? block_inverse_rms(x, cols, job.eps) : 1.0f;
    float acc[2][RB];
#pragma unroll
    for (int r = 0; r < RB; r++) acc[0][r] = acc[1][r] = 0.0f;
    for (int base = first; base < n_vectors; base += kRowBlockThreads * STEPS) {
        if (base != first || !(early_weights & 1)) step.load(w, row0, rows, n_vectors, base, kRowBlockThreads);
        step.add(x, job, inverse, n_vectors, base, kRowBlockThreads, acc);
    }
    let_next_kernel_start();
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
#pragma unroll
    for (int m_i = 0; m_i < N_MATRICES; m_i++)
#pragma unroll
        for (int r = 0; r < RB; r++) {
            const float sum = warp_sum(acc[m_i][r]);
            if (lane == 0) partial[warp][m_i][r] = sum;
        }
    __syncthreads();
    if (threadIdx.x < RB && row0 + (int)threadIdx.x < rows) {
        const int r = threadIdx.x;
        float total = 0.0f, second = 0.0f;
#pragma unroll
        for (int i = 0; i < WARPS; i++) {
            total += partial[i][0][r];
            if (EPILOGUE == kSwiglu) second += partial[i][1][r];
        }
        if (EPILOGUE == kStore) y[row0 + r] = total;
        if (EPILOGUE == kAccumulate) y[row0 + r] += total;
        if (EPILOGUE == kSwiglu) y[row0 + r] = total / (1.0f + expf(-total)) * second;
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
void launch_matvec(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y,
                   bool accumulate) {
    const int split = matvec_split(state, w->rows);
    const int rows_per_block = kMatvecWarps / split;
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block)), block(kMatvecWarps * kWarp);
    const uint4 *data = static_cast<const uint4 *>(w->data);
#define MLXE_MV(NR)                                                                                    \
    launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_kernel<DT, NR>, grid, block, 0, x, data, w->rows, w->cols, n_rows, y, split,     \
                      accumulate)
    if (n_rows == 1) MLXE_MV(1);
    else if (n_rows == 2) MLXE_MV(2);
    else if (n_rows <= 4) MLXE_MV(4);
    else MLXE_MV(8);
#undef MLXE_MV
}

template <int BITS, int SDT>
void launch_matvec_quantized(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y,
                             bool accumulate) {
    const uint4 *data = static_cast<const uint4 *>(w->data);
    const int group_shift = log2_exact(w->group_size);
    const int split = matvec_split(state, w->rows);
    const int rows_per_block = kMatvecWarps / split;
    dim3 grid((unsigned)((w->rows + rows_per_block - 1) / rows_per_block)), block(kMatvecWarps * kWarp);
#define MLXE_QMV(NR)                                                                                   \
    launch_overlapped(state, MLXE_CUDA_OVERLAP_QUANTIZED, matvec_quantized_kernel<BITS, SDT, NR>, grid, block, 0, x, data, w->scales, w->biases, \
                      w->rows, w->cols, group_shift, n_rows, y, split, accumulate)
    if (n_rows == 1) MLXE_QMV(1);
    else if (n_rows == 2) MLXE_QMV(2);
    else if (n_rows <= 4) MLXE_QMV(4);
    else MLXE_QMV(8);
#undef MLXE_QMV
}

template <int BITS>
void launch_matvec_quantized_bits(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y,
                                  bool accumulate) {
    if (w->scale_dtype == MLXE_DTYPE_F16)
        launch_matvec_quantized<BITS, MLXE_DTYPE_F16>(state, x, n_rows, w, y, accumulate);
    else if (w->scale_dtype == MLXE_DTYPE_BF16)
        launch_matvec_quantized<BITS, MLXE_DTYPE_BF16>(state, x, n_rows, w, y, accumulate);
    else
        launch_matvec_quantized<BITS, MLXE_DTYPE_F32>(state, x, n_rows, w, y, accumulate);
}

/* ---- one-token launchers ---- */

/* Rows per warp: small matrices need the warps more than the x reuse.
 * The thresholds are the H100 measurements of docs/CUDA.md (version 4),
 * scaled by the multiprocessor count: quantized weights 4 rows from ~31
 * rows per SM (4096 on 132 SMs), float weights (x costs them less) from
 * ~93 (12288); 2 rows from ~8 per SM (1024), else 1 (8-bit: 1 below 4). */
int one_token_rows_per_warp(const mlxe_cuda_state *state, const mlxe_matrix *w) {
    if (state->rows_per_warp) return state->rows_per_warp;
    const int64_t per_sm = w->rows / (state->sm_count > 0 ? state->sm_count : 1);
    if (per_sm >= (w->bits ? 31 : 93)) return 4;
    if (w->bits == 8) return 1; /* 8-bit with 2 rows measured slower than 1 (512 to 4096 rows) */
    if (per_sm >= 7) return 2;
    return 1;
}


template <int BITS, int R>
void launch_quantized_one(mlxe_cuda_state *state, const float *x, one_token_job job, const mlxe_matrix *w,
                          int epilogue) {
    const unsigned blocks = plan_blocks(job, kOneTokenWarps * R);
    const int shift = log2_exact(w->group_size), cols = (int)w->cols;
    const int threads = kOneTokenWarps * kWarp;
    if (epilogue == kStore)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_QUANTIZED, matvec_quantized_one_kernel<BITS, R, kStore>, blocks, threads, 0, x, job, cols, shift);
    else if (epilogue == kAccumulate)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_QUANTIZED, matvec_quantized_one_kernel<BITS, R, kAccumulate>, blocks, threads, 0, x, job, cols, shift);
    else
        launch_overlapped(state, MLXE_CUDA_OVERLAP_QUANTIZED, matvec_quantized_one_kernel<BITS, R, kSwiglu>, blocks, threads, 0, x, job, cols, shift);
}

/* SwiGLU, BF16 weights, 4 rows a block: compiled for 6 resident blocks
 * (92 -> 72 registers, 5 -> 7 blocks per multiprocessor; 1B shape, gate/up
 * 2048 blocks: 910 -> 927 tok/s on an H100, one call) unless
 * MLXE_CUDA_SWIGLU_MIN_BLOCKS=1; false: the unbounded kernel. (With 8 rows,
 * the 8B shape, 4 blocks was slower: 179.3 against 180.3; 7 with 4 rows no
 * better than 6; docs/CUDA.md, version 10.) */
template <int DT, int RB>
bool launch_swiglu_bounded(mlxe_cuda_state *state, unsigned blocks, const float *x, const one_token_job &job, int cols,
                           int early) {
    if constexpr (DT == MLXE_DTYPE_BF16 && RB == 4) {
        if (state->swiglu_bounded) {
            launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_row_block_kernel<DT, RB, kSwiglu, 6>, blocks,
                              kRowBlockThreads, 0, x, job, cols, early);
            return true;
        }
    }
    return false;
}

template <int DT, int RB>
void launch_float_row_block(mlxe_cuda_state *state, const float *x, one_token_job job, const mlxe_matrix *w,
                            int epilogue) {
    const unsigned blocks = plan_blocks(job, RB);
    const int cols = (int)w->cols;
    const int early = (state->float_early_weights ? 1 : 0) |
                      (job.n_segments == 3 && state->qkv_trigger_at_start ? 2 : 0);
    if (epilogue == kStore)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_row_block_kernel<DT, RB, kStore>, blocks,
                          kRowBlockThreads, 0, x, job, cols, early);
    else if (epilogue == kAccumulate)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_row_block_kernel<DT, RB, kAccumulate>, blocks,
                          kRowBlockThreads, 0, x, job, cols, early);
    else if (!launch_swiglu_bounded<DT, RB>(state, blocks, x, job, cols, early))
        launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_row_block_kernel<DT, RB, kSwiglu>, blocks,
                          kRowBlockThreads, 0, x, job, cols, early);
}

template <int DT, int R>
void launch_float_one(mlxe_cuda_state *state, const float *x, one_token_job job, const mlxe_matrix *w, int epilogue) {
    /* a block per 1-8 rows unless the rows per warp were forced (MLXE_CUDA_MATVEC_RPW) */
    if (!state->rows_per_warp) {
        /* 8 rows on long rows when that still leaves 512 blocks or more:
         * H100, Llama-3.1-8B shape (4096 and 14336 columns, 4096 rows and
         * more) 154 -> 156 tok/s; the 1B shape's down_proj (8192 columns,
         * 2048 rows: 256 blocks of 8) 832 -> 843 with 4 (docs/CUDA.md,
         * versions 7 and 8) */
        if (state->matvec_row_block < 0) {
            if (w->cols >= 4096 && w->rows >= 4096) return launch_float_row_block<DT, 8>(state, x, job, w, epilogue);
            return launch_float_row_block<DT, 4>(state, x, job, w, epilogue);
        }
        if (state->matvec_row_block == 1) return launch_float_row_block<DT, 1>(state, x, job, w, epilogue);
        if (state->matvec_row_block == 2) return launch_float_row_block<DT, 2>(state, x, job, w, epilogue);
        if (state->matvec_row_block == 4) return launch_float_row_block<DT, 4>(state, x, job, w, epilogue);
        if (state->matvec_row_block == 8) return launch_float_row_block<DT, 8>(state, x, job, w, epilogue);
    }
    const unsigned blocks = plan_blocks(job, kOneTokenWarps * R);
    const int cols = (int)w->cols;
    if (epilogue == kStore)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_one_kernel<DT, R, kStore>, blocks, kOneTokenWarps * kWarp, 0, x, job, cols);
    else if (epilogue == kAccumulate)
        launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_one_kernel<DT, R, kAccumulate>, blocks, kOneTokenWarps * kWarp, 0, x, job, cols);
    else
        launch_overlapped(state, MLXE_CUDA_OVERLAP_MATVEC, matvec_one_kernel<DT, R, kSwiglu>, blocks, kOneTokenWarps * kWarp, 0, x, job, cols);
}

template <int R>
void launch_one(mlxe_cuda_state *state, const float *x, const one_token_job &job, const mlxe_matrix *w, int epilogue) {
    if (w->bits == 4) return launch_quantized_one<4, R>(state, x, job, w, epilogue);
    if (w->bits == 8) return launch_quantized_one<8, R>(state, x, job, w, epilogue);
    if (w->dtype == MLXE_DTYPE_F32) return launch_float_one<MLXE_DTYPE_F32, R>(state, x, job, w, epilogue);
    if (w->dtype == MLXE_DTYPE_F16) return launch_float_one<MLXE_DTYPE_F16, R>(state, x, job, w, epilogue);
    return launch_float_one<MLXE_DTYPE_BF16, R>(state, x, job, w, epilogue);
}

/* Same columns and storage (the rows may differ). */
bool same_format(const mlxe_matrix *a, const mlxe_matrix *b) {
    return a->cols == b->cols && a->dtype == b->dtype && a->bits == b->bits &&
           (!a->bits || (a->group_size == b->group_size && a->scale_dtype == b->scale_dtype));
}

/* One token through the several-rows-per-warp kernels, in one launch:
 * n matrices (1 to 3) of the same input, each into its y (epilogue store
 * or add), or SwiGLU of w[0] (gate) and w[1] (up) into y[0]; norm: x
 * RMS-normalised first (NULL: as is). False where the kernels do not apply,
 * or for a single plain matrix where the version-3 kernels measured faster
 * (the caller then takes the general path). */
bool matvec_one(mlxe_cuda_state *state, const float *x, int n, const mlxe_matrix *const *w, float *const *y,
                int epilogue, const mlxe_vector *norm, float eps) {
    const int forced = state->rows_per_warp;
    if (state->matvec_v3 && !forced) return false;
    const mlxe_matrix *first = w[0];
    if (n < 1 || n > 3 || first->cols >= (1LL << 30) || !aligned16(x)) return false;
    int64_t total_rows = 0;
    for (int i = 0; i < n; i++) {
        if (w[i]->rows <= 0 || w[i]->rows >= (1LL << 30) || !aligned16(w[i]->data) || !same_format(first, w[i]))
            return false;
        total_rows += w[i]->rows;
    }
    if (epilogue == kSwiglu && (n != 2 || w[1]->rows != first->rows)) return false;
    if (norm && (norm->size != first->cols || !norm->data ||
                 (norm->dtype != MLXE_DTYPE_F32 && norm->dtype != MLXE_DTYPE_F16 && norm->dtype != MLXE_DTYPE_BF16)))
        return false;
    const bool fused = n > 1 || norm || epilogue == kSwiglu;
    if (first->bits) {
        if ((first->bits != 4 && first->bits != 8) || first->group_size % (128 / first->bits) != 0 ||
            log2_exact(first->group_size) < 0 || first->cols % first->group_size != 0)
            return false;
        /* 8-bit below 4096 rows: version 3 measured faster on an H100 (docs/CUDA.md, version 4) */
        if (!forced && !fused && first->bits == 8 && first->rows < 4096) return false;
    } else {
        if (first->dtype != MLXE_DTYPE_F32 && first->dtype != MLXE_DTYPE_F16 && first->dtype != MLXE_DTYPE_BF16)
            return false;
        if (first->cols % (first->dtype == MLXE_DTYPE_F32 ? 4 : 8) != 0) return false;
    }
    one_token_job job = {};
    fill_segments(job, n, w, y, epilogue == kSwiglu, norm, eps);
    mlxe_matrix sized = *first;
    sized.rows = epilogue == kSwiglu ? first->rows : total_rows; /* the rows per warp follow the launch's rows */
    const int rows_per_warp = one_token_rows_per_warp(state, &sized);
    if (rows_per_warp == 4) launch_one<4>(state, x, job, first, epilogue);
    else if (rows_per_warp == 2) launch_one<2>(state, x, job, first, epilogue);
    else launch_one<1>(state, x, job, first, epilogue);
    return true;
}

/* One launch for up to 8 rows of x (the batch tiles of the kernels). */
void matvec(mlxe_cuda_state *state, const float *x, int n_rows, const mlxe_matrix *w, float *y, bool accumulate) {
    /* one token, 4/8-bit weights: int8 activations (cuda_matvec_int8.cu) unless switched off */
    if (n_rows == 1 && w->bits &&
        mlxe_cuda_matvec_int8(state, x, 1, &w, &y, accumulate ? MLXE_CUDA_INT8_ADD : MLXE_CUDA_INT8_STORE, nullptr,
                              0.0f))
        return;
    if (n_rows == 1 && matvec_one(state, x, 1, &w, &y, accumulate ? kAccumulate : kStore, nullptr, 0.0f)) return;
    const bool x_ok = aligned16(x) && aligned16(w->data);
    if (w->bits) {
        const bool fast = (w->bits == 4 || w->bits == 8) && x_ok && w->group_size % (128 / w->bits) == 0 &&
                          log2_exact(w->group_size) >= 0 && w->cols % w->group_size == 0 && w->cols < (1LL << 30);
        if (fast && w->bits == 4) return launch_matvec_quantized_bits<4>(state, x, n_rows, w, y, accumulate);
        if (fast && w->bits == 8) return launch_matvec_quantized_bits<8>(state, x, n_rows, w, y, accumulate);
    } else {
        const int per_load = w->dtype == MLXE_DTYPE_F32 ? 4 : 8;
        if (x_ok && w->cols % per_load == 0) {
            if (w->dtype == MLXE_DTYPE_F32) return launch_matvec<MLXE_DTYPE_F32>(state, x, n_rows, w, y, accumulate);
            if (w->dtype == MLXE_DTYPE_F16) return launch_matvec<MLXE_DTYPE_F16>(state, x, n_rows, w, y, accumulate);
            if (w->dtype == MLXE_DTYPE_BF16) return launch_matvec<MLXE_DTYPE_BF16>(state, x, n_rows, w, y, accumulate);
        }
    }
    dim3 grid((unsigned)((w->rows + kMatvecWarps - 1) / kMatvecWarps)), block(kMatvecWarps * kWarp);
    matvec_scalar_kernel<<<grid, block, 0, state->stream>>>(x, w->data, w->dtype, w->bits, w->group_size,
                                                            w->scale_dtype, w->scales, w->biases, w->rows, w->cols,
                                                            n_rows, y, accumulate);
}

void matvec_batches(mlxe_cuda_state *state, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y,
                    bool accumulate = false) {
    for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
        int64_t n = n_rows - r0 < 8 ? n_rows - r0 : 8;
        matvec(state, x + r0 * w->cols, (int)n, w, y + r0 * w->rows, accumulate);
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
    cublasStatus_t status =
        state->blas->gemm_ex(state->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)a_rows, (int)n, (int)cols, &one, a, a_type,
                             (int)cols, x, x_type, (int)cols, &zero, y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                             CUBLAS_GEMM_DEFAULT);
    note_blas(state, status, "cuBLAS GEMM");
}

/* Y rows [0, n) of ldy floats = X (n × cols) · A (rows × cols, float32)ᵀ:
 * the F32 GEMM of every float32 path (SGEMM, no TF32). */
void sgemm_rows(mlxe_cuda_state *state, const float *a, int64_t rows, const float *x, int64_t n, int64_t cols,
                float *y, int64_t ldy) {
    const float one = 1.0f, zero = 0.0f;
    note_blas(state,
              state->blas->sgemm(state->cublas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)n, (int)cols, &one, a,
                                 (int)cols, x, (int)cols, &zero, y, (int)ldy),
              "cuBLAS SGEMM");
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
        sgemm_rows(state, static_cast<const float *>(w->data), w->rows, x, n_rows, w->cols, y, w->rows);
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
            sgemm_rows(state, wide, rows, x, n_rows, w->cols, y + o0, w->rows);
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
            sgemm_rows(state, wide, rows, x, n_rows, w->cols, y + o0, w->rows);
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

/* y += x · wᵀ: the matrix-vector kernels add in their epilogue; a GEMM
 * writes into scratch, then one add (prefill only, never recorded). */
extern "C" void mlxe_cuda_matmul_add(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w,
                                     float *y) {
    if (n_rows <= 0 || w->rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const int matvec_max_rows = w->bits ? state->matvec_max_rows : state->float_matvec_max_rows;
    if (n_rows <= matvec_max_rows || w->cols <= 0) {
        matvec_batches(state, x, n_rows, w, y, true);
    } else if (mlxe_cuda_buffer_reserve(state, &state->product, (size_t)(n_rows * w->rows) * sizeof(float))) {
        float *product = static_cast<float *>(state->product.ptr);
        gemm(state, x, n_rows, w, product);
        mlxe_cuda_add(dev, y, product, n_rows * w->rows);
    } else {
        matvec_batches(state, x, n_rows, w, y, true);
    }
    mlxe_cuda_check_launch(state, "matmul_add");
}

/* unfold_norm_for_quantized: the 4/8-bit one-token kernels are bound by
 * their instructions per weight byte, and the folded norm adds a load and
 * two multiplies per x element in every block. On an H100 the version with
 * the norm folded everywhere decoded the 1B shape at 562 tok/s (4-bit) and
 * 612 (8-bit) against 666 and 663 before it, while BF16 rose from 561 to
 * 599 (docs/CUDA.md, version 4). So quantized weights get the norm as its
 * own kernel first; float weights keep it folded (the norm as a kernel
 * first measured 910 -> 818 tok/s on the 1B shape, 181.4 -> 176.8 on the
 * 8B, H100, version 10). */

/* x, or rms_norm(x) written to normed: the input of the unfused paths. */
const float *normed_input(mlxe_device *dev, const float *x, int64_t n_rows, int64_t cols, const mlxe_vector *norm,
                          float eps, float *normed) {
    if (!norm) return x;
    mlxe_cuda_rms_norm(dev, x, norm, n_rows, cols, eps, normed);
    return normed;
}

/* out = silu(norm(x) · gateᵀ) * (norm(x) · upᵀ): one launch for a token
 * (gate and up read by the same warps, the norm computed by each block),
 * else the norm, the two products and the gate. */
extern "C" void mlxe_cuda_matmul_swiglu(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm,
                                        float eps, float *normed, const mlxe_matrix *gate, const mlxe_matrix *up,
                                        float *out, float *up_scratch) {
    if (n_rows <= 0 || gate->rows <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    const mlxe_matrix *pair[2] = {gate, up};
    /* 4/8-bit weights: the norm folded into the quantization of x (cuda_matvec_int8.cu) */
    if (n_rows == 1 && gate->bits && mlxe_cuda_matvec_int8(state, x, 2, pair, &out, MLXE_CUDA_INT8_SWIGLU, norm, eps)) {
        mlxe_cuda_check_launch(state, "matmul_swiglu");
        return;
    }
    if (n_rows == 1 && norm && gate->bits) { /* see unfold_norm_for_quantized */
        x = normed_input(dev, x, n_rows, gate->cols, norm, eps, normed);
        norm = nullptr;
    }
    if (n_rows == 1 && gate->cols > 0 && matvec_one(state, x, 2, pair, &out, kSwiglu, norm, eps)) {
        mlxe_cuda_check_launch(state, "matmul_swiglu");
        return;
    }
    const float *in = normed_input(dev, x, n_rows, gate->cols, norm, eps, normed);
    mlxe_cuda_matmul(dev, in, n_rows, gate, out);
    mlxe_cuda_matmul(dev, in, n_rows, up, up_scratch);
    mlxe_cuda_silu_mul(dev, out, up_scratch, out, n_rows * gate->rows);
}

/* y[i] = norm(x) · w[i]ᵀ for up to 3 matrices of one input (q, k, v):
 * one launch for a token, else the norm and one matmul each. */
extern "C" void mlxe_cuda_matmul_multi(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm,
                                       float eps, float *normed, int n_out, const mlxe_matrix *const *w,
                                       float *const *y) {
    if (n_rows <= 0 || n_out <= 0) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (n_rows == 1 && w[0]->bits && mlxe_cuda_matvec_int8(state, x, n_out, w, y, MLXE_CUDA_INT8_STORE, norm, eps)) {
        mlxe_cuda_check_launch(state, "matmul_multi");
        return;
    }
    if (n_rows == 1 && norm && w[0]->bits) { /* see unfold_norm_for_quantized */
        x = normed_input(dev, x, n_rows, w[0]->cols, norm, eps, normed);
        norm = nullptr;
    }
    if (n_rows == 1 && w[0]->cols > 0 && matvec_one(state, x, n_out, w, y, kStore, norm, eps)) {
        mlxe_cuda_check_launch(state, "matmul_multi");
        return;
    }
    const float *in = normed_input(dev, x, n_rows, w[0]->cols, norm, eps, normed);
    for (int i = 0; i < n_out; i++) mlxe_cuda_matmul(dev, in, n_rows, w[i], y[i]);
}
