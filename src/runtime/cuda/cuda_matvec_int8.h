/* runtime/cuda/cuda_matvec_int8.h — one-token products with MLX affine 4-
 * and 8-bit weights on int8 activations (dp4a), cuda_matvec_int8.cu; called
 * by the quantized dispatch of cuda_matmul.cu. Built only with CUDA. */
#ifndef MLXE_RUNTIME_CUDA_MATVEC_INT8_H
#define MLXE_RUNTIME_CUDA_MATVEC_INT8_H

#include "runtime/cuda/cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the kernel does with its sums (the values of cuda_matmul.cu's
 * one-token epilogues). */
enum {
    MLXE_CUDA_INT8_STORE = 0,  /* y[i] = x · w[i]ᵀ */
    MLXE_CUDA_INT8_ADD = 1,    /* y[i] += x · w[i]ᵀ */
    MLXE_CUDA_INT8_SWIGLU = 2, /* y[0] = silu(x · w[0]ᵀ) * (x · w[1]ᵀ) */
};

/* Whether one-token products with 4/8-bit weights take the int8 path on
 * this device: yes unless MLXE_CUDA_MATVEC=float (or v3) was set when the
 * device made its first such product, or the device forces the version-3
 * or version-4 float kernels (MLXE_CUDA_MATVEC=v3, MLXE_CUDA_MATVEC_RPW). */
bool mlxe_cuda_int8_enabled(mlxe_cuda_state *state);

/* Queues, for one token (x: cols floats on the device), the products of n
 * (1 to 3) matrices of the same columns and storage — y[i] = x · w[i]ᵀ
 * stored or added — or SwiGLU of w[0] (gate) and w[1] (up) into y[0]. With
 * norm (not NULL) x is rms_norm(x, norm, eps) first. x is quantized to int8
 * in blocks of 32 values (one float scale and the exact float sum per block,
 * cuda_int8_activations.cuh) into the device's scratch by a kernel before
 * the product, unless the kernel that wrote x wrote that form too
 * (mlxe_cuda_prequantized_ready: the same bits); each group's product is
 * then scale_w · d · Σ q·xq (dp4a) + bias_w · Σ x. The result differs from
 * the float32 product by the rounding of x: at most Σ_blocks |scale_w| ·
 * d/2 · Σ q per output, plus float rounding
 * (tests/unit/test_runtime_cuda_matvec_int8.c). Returns false, queuing
 * nothing, where this path does not apply (other bit widths, group sizes
 * other than 32/64/128, columns not a multiple of the group, unaligned
 * weights, matrices of differing storage, no scratch, or switched off):
 * the caller then takes the float-activation kernels. */
bool mlxe_cuda_matvec_int8(mlxe_cuda_state *state, const float *x, int n, const mlxe_matrix *const *w,
                           float *const *y, int epilogue, const mlxe_vector *norm, float eps);

/* For a kernel that produces a one-token activation vector of cols values
 * (n_rows 1) that an int8 product may read next (the decode attention,
 * for o_proj): where to write its int8 form as well (layout:
 * cuda_int8_activations.cuh; xq4, xq8 int8 [cols], meta float2 [cols/32]).
 * False (write nothing) where no int8 product has run on this device, cols
 * is not a multiple of 32, the producers' form is switched off
 * (MLXE_CUDA_INT8_FUSE=0, MLXE_CUDA_INT8_UNFUSED) or there is no scratch. After queuing the kernel the producer calls
 * mlxe_cuda_prequantized_ready after its launch check (which forgets any
 * int8 form waiting: it is good only for the very next op). */
bool mlxe_cuda_prequantized_buffer(mlxe_cuda_state *state, int64_t cols, void **xq4, void **xq8, void **meta);
void mlxe_cuda_prequantized_ready(mlxe_cuda_state *state, const float *x, int64_t cols);

/* For benches and tests (process-wide, not thread-safe): force the kernel's
 * rows per warp (1, 2, 4, 8; SwiGLU takes 4 for 8) and warps sharing a
 * row's columns (1, 2, 4), 0 =
 * chosen by the shape; flags: force the overlapped launches on (OVERLAP:
 * programmatic dependent launch on sm_90, the default there unless
 * MLXE_CUDA_INT8_OVERLAP=0) or off (SERIAL: each kernel after the one
 * before), queue only one of the two kernels (timings of the parts; the
 * results are then wrong), or keep the quantization kernel where a
 * producer would have written the int8 form (UNFUSED: the same bits, one
 * more kernel). */
enum {
    MLXE_CUDA_INT8_OVERLAP = 1,
    MLXE_CUDA_INT8_QUANTIZE_ONLY = 2,
    MLXE_CUDA_INT8_PRODUCT_ONLY = 4,
    MLXE_CUDA_INT8_UNFUSED = 8,
    MLXE_CUDA_INT8_SERIAL = 16,
};
void mlxe_cuda_int8_tuning(int rows_per_warp, int warps_per_row, int flags);

#ifdef __cplusplus
}
#endif
#endif
