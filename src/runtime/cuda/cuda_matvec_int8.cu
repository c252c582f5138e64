/* runtime/cuda/cuda_matvec_int8.cu — decode (one token) with MLX affine 4-
 * and 8-bit weights on int8 activations.
 *
 * Why: the float-activation kernels (cuda_matmul.cu, version 4) turn every
 * packed value into a float and multiply it with a float32 activation,
 * several instructions per value; on an H100 that kept 4-bit products at
 * 23-35% of the copy bandwidth (docs/CUDA.md). Here the activation vector is
 * quantized once per op to int8 in blocks of 32 values — d = max|x| / 127,
 * xq = round(x / d), and the exact float Σx of the block kept beside d — and
 * each 16-byte load of weights is multiplied with dp4a, four products per
 * instruction with no conversion per value (the idea of llama.cpp's mmvq
 * kernels with q8_1 activations; the MLX format differs: unsigned values
 * with a per-group scale and bias, so a block's sum is
 *   Σ (s·q + b)·x ≈ s · d · Σ q·xq + b · Σ x,
 * exact but for the rounding of x: |x − d·xq| ≤ d/2 per value).
 *
 * 4-bit values are taken from a packed word with two masks (low and high
 * nibbles of each byte, i.e. values 0,2,4,6 and 1,3,5,7 of the word), so the
 * quantized activations are stored in that order within each 8 values:
 * x0 x2 x4 x6 x1 x3 x5 x7; 8-bit values need no reordering.
 *
 * Two launches per op: the quantization, with the op's RMSNorm folded in
 * (q/k/v, gate/up, where the float path runs the norm as its own kernel
 * too), into the device's scratch, then the product; for o_proj the decode
 * attention writes the int8 form itself (one launch). (Quantizing x in every
 * block of the product instead, one launch, measured 2-4x slower on an
 * H200: each block's pass over all of x is a long chain of warp reductions;
 * docs/CUDA.md, version 5.) The product kernel is one block of 4
 * warps over R output rows per warp-set (R = 1, 2, 4, 8; for SwiGLU R ≤ 4
 * rows of gate and of up), S warps (1, 2, 4) sharing the columns of a row
 * set, each lane loading 16 bytes of each row per step and several steps' loads in
 * flight (8 loads of 16 bytes per lane, their scales and biases loaded with
 * them); the quantized activations are read from global memory (L1/L2: 1.25
 * bytes per value against 0.5 for 4-bit weights, shared by the R rows). R is
 * 8 and S 4 for 8-bit weights, else R 4 and S 1 or 2, by the shape
 * (choose_shape; the others are kept for the bench's sweep and the tests).
 * Segments of blocks serve up to 3 matrices of one input in one launch (q,
 * k, v). */
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_common.cuh"
#include "runtime/cuda/cuda_int8_activations.cuh"
#include "runtime/cuda/cuda_matvec_int8.h"

using namespace mlxe_cuda;

namespace {

constexpr int kThreads = 128;       /* product kernel: 4 warps per block */
constexpr int kWarps = kThreads / kWarp;
constexpr int kQuantizeThreads = 256;
constexpr int kLoads = 8;           /* 16-byte weight loads in flight per lane (16 measured slower) */

int forced_rows_per_warp = 0, forced_warps_per_row = 0, tuning_flags = 0;
/* MLXE_CUDA_INT8_OVERLAP=0 switches the overlapped launches off (read at
 * the device's first int8 product; see launch_kernel) */
bool overlap_by_default = true;

/* acc + Σ w_byte · x_byte over 4 bytes: unsigned weights (0..255), signed
 * activations (-127..127). */
__device__ __forceinline__ int dot4(uint32_t w, uint32_t x, int acc) {
    int out;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(out) : "r"(w), "r"(x), "r"(acc));
    return out;
}

/* Overlapped launches (programmatic dependent launch, sm_90; cuda_common.cuh
 * wait_for_previous_kernels and let_next_kernel_start), the default: the
 * quantization kernel waits for the kernel that wrote x, then lets the
 * product start at once; the product issues its first weight loads before
 * it waits for x; and once its weights are all read it lets the next
 * kernel start (attention, or the next quantization), which waits in turn
 * before it reads anything. Each kernel's launch and first memory round
 * trip so hide behind the tail of the one before: on an H100, 1B shape,
 * 4-bit 1225 -> 1290 tok/s, 8-bit 980 -> 1022; 8B 4-bit 344 -> 354
 * (docs/CUDA.md, version 7). */

/* Block b of 32 activations, one per lane of a warp (x * inverse * gain with
 * a norm, the CPU's order of operations): its int8 values into xq in the
 * order of BITS' kernel and (d, Σx) into meta[b] (cuda_int8_activations.cuh). */
template <int BITS>
__device__ __forceinline__ void quantize_block(float v, int lane, int b, int8_t *xq, float2 *meta) {
    float amax, sum;
    const int q = int8_of_block(v, amax, sum);
    xq[b * kXBlock + (BITS == 4 ? nibble_order_position(lane) : lane)] = (int8_t)q;
    if (lane == 0) meta[b] = make_float2(amax / 127.0f, sum);
}

/* x (optionally RMS-normalised: every block computes 1/rms over all of x
 * itself) → xq [cols] int8 and meta [cols/32]; one warp per block of 32. */
template <int BITS, bool NORM>
__global__ void __launch_bounds__(kQuantizeThreads)
    quantize_kernel(const float *__restrict__ x, int cols, const void *__restrict__ norm, int norm_dtype, float eps,
                    int8_t *__restrict__ xq, float2 *__restrict__ meta) {
    const int lane = threadIdx.x % kWarp;
    const int n_blocks = cols / kXBlock;
    const int warps = blockDim.x / kWarp;
    const int first_b = blockIdx.x * warps + threadIdx.x / kWarp;
    /* the gain of the first value, which no kernel writes, before the wait */
    const float first_gain = NORM && first_b < n_blocks ? load_as_float(norm_dtype, norm, first_b * kXBlock + lane) : 0.0f;
    wait_for_previous_kernels(); /* x is the previous kernel's output (overlapped launches only) */
    let_next_kernel_start();     /* an overlapped product may load its weights meanwhile */
    const float inverse = NORM ? block_inverse_rms(x, cols, eps) : 1.0f;
    for (int b = first_b; b < n_blocks; b += gridDim.x * warps) {
        const int k = b * kXBlock + lane;
        float v = x[k];
        if (NORM) v = v * inverse * (b == first_b ? first_gain : load_as_float(norm_dtype, norm, k));
        quantize_block<BITS>(v, lane, b, xq, meta);
    }
}

enum { kStore = MLXE_CUDA_INT8_STORE, kAccumulate = MLXE_CUDA_INT8_ADD, kSwiglu = MLXE_CUDA_INT8_SWIGLU };

template <int EPILOGUE> __device__ __forceinline__ void finish(float *y, int row, float first, float second) {
    if (EPILOGUE == kStore) y[row] = first;
    if (EPILOGUE == kAccumulate) y[row] += first;
    if (EPILOGUE == kSwiglu) y[row] = first / (1.0f + expf(-first)) * second;
}

/* A scale or bias as stored (F32 bits, or F16/BF16 in the low half) and as float. */
__device__ __forceinline__ uint32_t load_raw(int dtype, const void *p, int64_t i) {
    return dtype == MLXE_DTYPE_F32 ? __ldg(static_cast<const uint32_t *>(p) + i)
                                   : (uint32_t)__ldg(static_cast<const unsigned short *>(p) + i);
}

__device__ __forceinline__ float raw_to_float(int dtype, uint32_t raw) {
    if (dtype == MLXE_DTYPE_BF16) return __uint_as_float(raw << 16);
    if (dtype == MLXE_DTYPE_F16) return __half2float(__ushort_as_half((unsigned short)raw));
    return __uint_as_float(raw);
}

/* The loads of one step of a lane: U column steps (clamped to the last
 * vector: results past it are dropped) of R rows of NM matrices, with
 * their scales and biases. */
template <int BITS, int R, int NM, int U> struct step_loads {
    uint4 w[U][NM][R];
    uint32_t scale[U][NM][R], bias[U][NM][R];

    __device__ __forceinline__ void load(const uint4 *const *matrices, const void *const *scales,
                                         const void *const *biases, int scale_dtype, const int *row_of, int base,
                                         int stride, int n_vectors, int groups_per_row, int group_shift) {
        constexpr int V = 128 / BITS;
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = min(base + u * stride, n_vectors - 1);
            const int group = (v * V) >> group_shift;
#pragma unroll
            for (int m = 0; m < NM; m++)
#pragma unroll
                for (int r = 0; r < R; r++) {
                    w[u][m][r] = __ldg(matrices[m] + (int64_t)row_of[r] * n_vectors + v);
                    const int64_t g = (int64_t)row_of[r] * groups_per_row + group;
                    scale[u][m][r] = load_raw(scale_dtype, scales[m], g);
                    bias[u][m][r] = load_raw(scale_dtype, biases[m], g);
                }
        }
    }
};

template <int BITS, int R, int S, int EPILOGUE>
__global__ void __launch_bounds__(kThreads)
    matvec_int8_kernel(const uint4 *__restrict__ xq, const float2 *__restrict__ meta, one_token_job job, int cols,
                       int group_shift, int early_next) {
    constexpr int V = 128 / BITS;               /* weight values per 16-byte load */
    constexpr int X_VECTORS = V / 16;           /* 16-byte loads of xq under one weight load */
    constexpr int NM = EPILOGUE == kSwiglu ? 2 : 1;
    constexpr int U = R * NM >= kLoads ? 1 : kLoads / (R * NM); /* column steps whose loads are in flight together */
    constexpr int SETS = kWarps / S;            /* row sets per block */
    /* 2: q/k/v, whose next kernel (the attention, a block per
     * multiprocessor or less) may be placed as soon as every block of
     * this one has started: it reads what it can before its wait */
    if (early_next == 2) let_next_kernel_start();
    const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
    const job_segment place = segment_of(job, (int)blockIdx.x);
    const int segment = place.segment, rows = place.rows;
    const int set = warp / S, part = warp % S;
    const int row0 = (place.block * SETS + set) * R;
    const uint4 *w[2] = {pick(segment, job.w[0], job.w[1], job.w[2]), job.w[1]};
    const void *scales[2] = {pick(segment, job.scales[0], job.scales[1], job.scales[2]), job.scales[1]};
    const void *biases[2] = {pick(segment, job.biases[0], job.biases[1], job.biases[2]), job.biases[1]};
    float *y = pick(segment, job.y[0], job.y[1], job.y[2]);
    const int scale_dtype = job.scale_dtype;
    const int n_vectors = cols / V;
    const int groups_per_row = cols >> group_shift;
    const int stride = kWarp * S;
    /* rows past the end read the last row (results dropped): no predicate on the loads */
    int row_of[R];
#pragma unroll
    for (int r = 0; r < R; r++) row_of[r] = row0 + r < rows ? row0 + r : rows - 1;
    float acc[NM][R];
#pragma unroll
    for (int m = 0; m < NM; m++)
#pragma unroll
        for (int r = 0; r < R; r++) acc[m][r] = 0.0f;

    /* the first step's weights are on their way before x is looked at */
    const int first_base = part * kWarp + lane;
    step_loads<BITS, R, NM, U> loads;
    loads.load(w, scales, biases, scale_dtype, row_of, first_base, stride, n_vectors, groups_per_row, group_shift);
    wait_for_previous_kernels(); /* x is the previous kernel's output (overlapped launches only) */

    for (int base = first_base; base < n_vectors; base += stride * U) {
        if (base != first_base)
            loads.load(w, scales, biases, scale_dtype, row_of, base, stride, n_vectors, groups_per_row, group_shift);
        uint32_t xw[U][4 * X_VECTORS];
        float2 dm[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = min(base + u * stride, n_vectors - 1);
#pragma unroll
            for (int j = 0; j < X_VECTORS; j++) {
                const uint4 a = __ldg(xq + v * X_VECTORS + j);
                xw[u][4 * j] = a.x;
                xw[u][4 * j + 1] = a.y;
                xw[u][4 * j + 2] = a.z;
                xw[u][4 * j + 3] = a.w;
            }
            dm[u] = __ldg(meta + (BITS == 4 ? v : v >> 1));
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int v = base + u * stride;
            if (v >= n_vectors) break;
            /* 8-bit: a load is half a block of 32; its even half adds the block's Σx */
            const float x_sum = BITS == 4 || (v & 1) == 0 ? dm[u].y : 0.0f;
#pragma unroll
            for (int m = 0; m < NM; m++) {
#pragma unroll
                for (int r = 0; r < R; r++) {
                    const uint4 q = loads.w[u][m][r];
                    const uint32_t words[4] = {q.x, q.y, q.z, q.w};
                    int dot = 0;
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        if (BITS == 4) {
                            dot = dot4(words[i] & 0x0f0f0f0fu, xw[u][2 * i], dot);
                            dot = dot4((words[i] >> 4) & 0x0f0f0f0fu, xw[u][2 * i + 1], dot);
                        } else {
                            dot = dot4(words[i], xw[u][i], dot);
                        }
                    }
                    const float scale = raw_to_float(scale_dtype, loads.scale[u][m][r]);
                    const float bias = raw_to_float(scale_dtype, loads.bias[u][m][r]);
                    acc[m][r] += scale * (dm[u].x * (float)dot) + bias * x_sum;
                }
            }
        }
    }
    if (early_next) let_next_kernel_start(); /* the weights are all read: an overlapped next kernel may start */

#pragma unroll
    for (int m = 0; m < NM; m++)
#pragma unroll
        for (int r = 0; r < R; r++) acc[m][r] = warp_sum(acc[m][r]);
    if (S == 1) {
        if (lane == 0) {
#pragma unroll
            for (int r = 0; r < R; r++)
                if (row0 + r < rows) finish<EPILOGUE>(y, row0 + r, acc[0][r], acc[NM - 1][r]);
        }
    } else {
        __shared__ float partial[kWarps][NM * R];
        if (lane == 0) {
#pragma unroll
            for (int m = 0; m < NM; m++)
#pragma unroll
                for (int r = 0; r < R; r++) partial[warp][m * R + r] = acc[m][r];
        }
        __syncthreads();
        if (part == 0 && lane < R && row0 + lane < rows) {
            float first_sum = 0.0f, second_sum = 0.0f;
#pragma unroll
            for (int p = 0; p < S; p++) {
                first_sum += partial[warp + p][lane];
                second_sum += partial[warp + p][(NM - 1) * R + lane];
            }
            finish<EPILOGUE>(y, row0 + lane, first_sum, second_sum);
        }
    }
}

/* ---- host side ---- */

bool aligned16(const void *p) {
    return ((uintptr_t)p & 15u) == 0;
}

int group_shift_of(int group_size) {
    return group_size == 32 ? 5 : group_size == 64 ? 6 : group_size == 128 ? 7 : -1;
}

bool same_format(const mlxe_matrix *a, const mlxe_matrix *b) {
    return a->cols == b->cols && a->bits == b->bits && a->group_size == b->group_size &&
           a->scale_dtype == b->scale_dtype;
}

/* R and S for a launch of `rows` output rows (per matrix for SwiGLU, nm = 2)
 * over n_vectors 16-byte loads per row of `bits`-bit weights.
 * - 8-bit weights, one matrix, rows of 4 * 32 loads or more: R = 8, S = 4
 *   (8 rows a block, each warp a quarter of the columns). Each load of x
 *   serves 8 rows, as in the SwiGLU product (4 rows of 2 matrices); on an
 *   H100, 8B 8-bit 300.5 -> 301.4 tok/s, 1B 8-bit 1279 -> 1297, against
 *   4-bit 465 -> 462.5 and 1682 -> 1645, which stay below (docs/CUDA.md,
 *   version 12).
 * - Else R = 4: x is shared by more rows, and every shape measured fastest
 *   with R = 4 or within 0.1 us among R = 1, 2, 4. S = 2 (the columns over
 *   2 warps) where the warps would be few (up to ~32 rows per
 *   multiprocessor: 4096 and fewer on an H100/H200) or each lane would walk
 *   more than 2 steps of loads in flight, as long as every lane still gets
 *   a full step; else 1. The H200 sweep is in docs/CUDA.md, version 5.
 * SwiGLU takes R up to 4 (R = 8 would hold 16 loads in flight a lane). */
void choose_shape(const mlxe_cuda_state *state, int64_t rows, int n_vectors, int bits, int nm, int *rows_per_warp,
                  int *warps_per_row) {
    const int64_t sms = state->sm_count > 0 ? state->sm_count : 1;
    if (!forced_rows_per_warp && !forced_warps_per_row && bits == 8 && nm == 1 && n_vectors >= 4 * kWarp) {
        *rows_per_warp = 8;
        *warps_per_row = 4;
        return;
    }
    const int r = forced_rows_per_warp == 8 && nm == 2 ? 4 : forced_rows_per_warp ? forced_rows_per_warp : 4;
    const int steps = r * nm >= kLoads ? 1 : kLoads / (r * nm); /* the kernel's U */
    const bool few_warps = rows <= 32 * sms, long_rows = n_vectors > 2 * kWarp * steps;
    const bool room = n_vectors >= 2 * kWarp * steps;
    *rows_per_warp = r;
    *warps_per_row = forced_warps_per_row ? forced_warps_per_row : (few_warps || long_rows) && room ? 2 : 1;
}

/* What a product launch reads: x in int8 and its (d, Σx) per block. */
struct product_io {
    const uint4 *xq;
    const float2 *meta;
};

/* Whether this launch overlaps the kernel before it (see the top). */
bool overlapped(const mlxe_cuda_state *state) {
    if (state->cc_major < 9) return false;
    if (tuning_flags & MLXE_CUDA_INT8_OVERLAP) return true;
    return overlap_by_default && !(tuning_flags & MLXE_CUDA_INT8_SERIAL);
}

/* The product kernel, overlapped (the top of this file) or after the
 * kernel before it. (Version 5 kept the overlap off: test_models_cuda had
 * once given non-finite logits with it in recorded graphs; it did not
 * recur in 17 runs of the CUDA model tests with it, docs/CUDA.md version 7.) */
template <int BITS, int R, int S, int EPILOGUE>
void launch_kernel(mlxe_cuda_state *state, unsigned blocks, const product_io &io, const one_token_job &job, int cols,
                   int group_shift) {
    const bool overlap = overlapped(state);
    const int early_next = !overlap ? 0 : job.n_segments == 3 && state->qkv_trigger_at_start ? 2 : 1;
    launch_with_overlap(state->stream, overlap, matvec_int8_kernel<BITS, R, S, EPILOGUE>, dim3(blocks),
                        dim3(kThreads), 0, io.xq, io.meta, job, cols, group_shift, early_next);
}

template <int BITS, int R, int S>
void launch_product(mlxe_cuda_state *state, const product_io &io, one_token_job job, int cols, int group_shift,
                    int epilogue) {
    const unsigned blocks = plan_blocks(job, (kWarps / S) * R);
    if (epilogue == kStore)
        launch_kernel<BITS, R, S, kStore>(state, blocks, io, job, cols, group_shift);
    else if (epilogue == kAccumulate)
        launch_kernel<BITS, R, S, kAccumulate>(state, blocks, io, job, cols, group_shift);
    else if constexpr (R <= 4) /* choose_shape's rule: SwiGLU never takes R = 8 */
        launch_kernel<BITS, R, S, kSwiglu>(state, blocks, io, job, cols, group_shift);
}

template <int BITS, int R>
void launch_product_s(mlxe_cuda_state *state, const product_io &io, const one_token_job &job, int cols, int group_shift,
                      int epilogue, int warps_per_row) {
    if (warps_per_row == 4) return launch_product<BITS, R, 4>(state, io, job, cols, group_shift, epilogue);
    if (warps_per_row == 2) return launch_product<BITS, R, 2>(state, io, job, cols, group_shift, epilogue);
    launch_product<BITS, R, 1>(state, io, job, cols, group_shift, epilogue);
}

template <int BITS>
void launch_product_rs(mlxe_cuda_state *state, const product_io &io, const one_token_job &job, int cols,
                       int group_shift, int epilogue, int rows_per_warp, int warps_per_row) {
    if (rows_per_warp == 8)
        launch_product_s<BITS, 8>(state, io, job, cols, group_shift, epilogue, warps_per_row);
    else if (rows_per_warp == 4)
        launch_product_s<BITS, 4>(state, io, job, cols, group_shift, epilogue, warps_per_row);
    else if (rows_per_warp == 2)
        launch_product_s<BITS, 2>(state, io, job, cols, group_shift, epilogue, warps_per_row);
    else
        launch_product_s<BITS, 1>(state, io, job, cols, group_shift, epilogue, warps_per_row);
}

/* The quantization kernel into scratch (xq [cols], then meta), unless x's
 * int8 form is already there (io.xq set: a producer wrote it), then the
 * product. */
template <int BITS>
void launch_bits(mlxe_cuda_state *state, int cols, void *scratch, product_io io, const one_token_job &job,
                 int group_shift, int epilogue, int rows_per_warp, int warps_per_row) {
    if (!io.xq) {
        int8_t *xq = static_cast<int8_t *>(scratch);
        float2 *meta = reinterpret_cast<float2 *>(xq + cols);
        const int n_blocks = cols / kXBlock;
        const int warps = kQuantizeThreads / kWarp;
        /* with a norm every block reads all of x: fewer, fuller blocks */
        unsigned grid = (unsigned)((n_blocks + warps - 1) / warps);
        if (job.norm && grid > 16) grid = 16;
        if (!(tuning_flags & MLXE_CUDA_INT8_PRODUCT_ONLY)) {
            const bool overlap = overlapped(state);
            if (job.norm)
                launch_with_overlap(state->stream, overlap, quantize_kernel<BITS, true>, dim3(grid),
                                    dim3(kQuantizeThreads), 0, job.x, cols, job.norm, job.norm_dtype, job.eps, xq, meta);
            else
                launch_with_overlap(state->stream, overlap, quantize_kernel<BITS, false>, dim3(grid),
                                    dim3(kQuantizeThreads), 0, job.x, cols, nullptr, 0, job.eps, xq, meta);
        }
        io.xq = reinterpret_cast<const uint4 *>(xq);
        io.meta = meta;
    }
    if (tuning_flags & MLXE_CUDA_INT8_QUANTIZE_ONLY) return;
    launch_product_rs<BITS>(state, io, job, cols, group_shift, epilogue, rows_per_warp, warps_per_row);
}

/* The layout of state->prequantized for cols values (cuda_int8_activations.cuh). */
size_t prequantized_bytes(int64_t cols) {
    return 2 * (size_t)cols + (size_t)(cols / kXBlock) * sizeof(float2);
}

/* MLXE_CUDA_INT8_FUSE=0: the attention never writes the int8 form (read
 * with MLXE_CUDA_MATVEC at the device's first int8 product). */
bool producers_fuse = true;

}  // namespace


extern "C" bool mlxe_cuda_int8_enabled(mlxe_cuda_state *state) {
    if (state->quantized_activations == 0) {
        const char *mode = getenv("MLXE_CUDA_MATVEC");
        const bool float_path = mode && (strcmp(mode, "float") == 0 || strcmp(mode, "v3") == 0);
        state->quantized_activations = float_path ? 2 : 1;
        /* MLXE_CUDA_INT8_WARPS_PER_ROW=1|2|4: the product's warps per row
         * set, forced (timing experiments) */
        const char *warps = getenv("MLXE_CUDA_INT8_WARPS_PER_ROW");
        if (warps && (atoi(warps) == 1 || atoi(warps) == 2 || atoi(warps) == 4)) forced_warps_per_row = atoi(warps);
        const char *fuse = getenv("MLXE_CUDA_INT8_FUSE");
        producers_fuse = !(fuse && strcmp(fuse, "0") == 0);
        const char *overlap = getenv("MLXE_CUDA_INT8_OVERLAP");
        overlap_by_default = !(overlap && strcmp(overlap, "0") == 0);
    }
    return state->quantized_activations == 1 && !state->matvec_v3 && !state->rows_per_warp;
}

extern "C" void mlxe_cuda_int8_tuning(int rows_per_warp, int warps_per_row, int flags) {
    forced_rows_per_warp =
        rows_per_warp == 1 || rows_per_warp == 2 || rows_per_warp == 4 || rows_per_warp == 8 ? rows_per_warp : 0;
    forced_warps_per_row = warps_per_row == 1 || warps_per_row == 2 || warps_per_row == 4 ? warps_per_row : 0;
    tuning_flags = flags;
}

extern "C" bool mlxe_cuda_prequantized_buffer(mlxe_cuda_state *state, int64_t cols, void **xq4, void **xq8,
                                              void **meta) {
    if (!state->int8_products || !producers_fuse || (tuning_flags & MLXE_CUDA_INT8_UNFUSED) || cols <= 0 ||
        cols % kXBlock != 0 || cols >= (1LL << 28) ||
        !mlxe_cuda_buffer_reserve(state, &state->prequantized, prequantized_bytes(cols)))
        return false;
    int8_t *base = static_cast<int8_t *>(state->prequantized.ptr);
    *xq4 = base;
    *xq8 = base + cols;
    *meta = base + 2 * cols;
    return true;
}

extern "C" void mlxe_cuda_prequantized_ready(mlxe_cuda_state *state, const float *x, int64_t cols) {
    state->prequantized_x = x;
    state->prequantized_cols = cols;
}

extern "C" bool mlxe_cuda_matvec_int8(mlxe_cuda_state *state, const float *x, int n, const mlxe_matrix *const *w,
                                      float *const *y, int epilogue, const mlxe_vector *norm, float eps) {
    if (!mlxe_cuda_int8_enabled(state) || n < 1 || n > 3) return false;
    const mlxe_matrix *first = w[0];
    const int group_shift = group_shift_of(first->group_size);
    if ((first->bits != 4 && first->bits != 8) || group_shift < 0 || first->cols <= 0 ||
        first->cols % first->group_size != 0 || first->cols >= (1LL << 28))
        return false;
    int64_t total_rows = 0;
    for (int i = 0; i < n; i++) {
        if (w[i]->rows <= 0 || w[i]->rows >= (1LL << 28) || !aligned16(w[i]->data) || !w[i]->scales ||
            !w[i]->biases || !same_format(first, w[i]))
            return false;
        total_rows += w[i]->rows;
    }
    if (total_rows >= (1LL << 28)) return false;
    if (epilogue == kSwiglu && (n != 2 || w[1]->rows != first->rows)) return false;
    if (norm && (norm->size != first->cols || !norm->data ||
                 (norm->dtype != MLXE_DTYPE_F32 && norm->dtype != MLXE_DTYPE_F16 && norm->dtype != MLXE_DTYPE_BF16)))
        return false;
    const int cols = (int)first->cols;
    /* the quantized x and its (d, Σx) per block: the GEMM's conversion
     * buffer, idle during a one-token step */
    const size_t bytes = (size_t)cols + (size_t)(cols / kXBlock) * sizeof(float2);
    if (!mlxe_cuda_buffer_reserve(state, &state->convert, bytes)) return false;
    state->int8_products = true;

    /* x's int8 form from the kernel that wrote x (the attention output),
     * else the quantization kernel makes it */
    product_io io = {};
    const bool prequantized = x && state->prequantized_x == x && state->prequantized_cols == cols && !norm;
    state->prequantized_x = NULL;
    if (prequantized) {
        state->prequantized_taken++;
        const int8_t *base = static_cast<const int8_t *>(state->prequantized.ptr);
        io.xq = reinterpret_cast<const uint4 *>(first->bits == 4 ? base : base + cols);
        io.meta = reinterpret_cast<const float2 *>(base + 2 * cols);
    }

    one_token_job job = {};
    fill_segments(job, n, w, y, epilogue == kSwiglu, norm, eps);
    job.x = x;
    int rows_per_warp = 4, warps_per_row = 1;
    choose_shape(state, epilogue == kSwiglu ? first->rows : total_rows, cols / (128 / first->bits), first->bits,
                 epilogue == kSwiglu ? 2 : 1, &rows_per_warp, &warps_per_row);
    if (first->bits == 4)
        launch_bits<4>(state, cols, state->convert.ptr, io, job, group_shift, epilogue, rows_per_warp, warps_per_row);
    else
        launch_bits<8>(state, cols, state->convert.ptr, io, job, group_shift, epilogue, rows_per_warp, warps_per_row);
    return true;
}
