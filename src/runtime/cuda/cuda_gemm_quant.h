/* runtime/cuda/cuda_gemm_quant.h — quantized weights expanded to BF16 for the
 * prefill GEMM (cuda_gemm_quant.cu), used by cuda_matmul.cu. Built only with
 * CUDA. */
#ifndef MLXE_RUNTIME_CUDA_GEMM_QUANT_H
#define MLXE_RUNTIME_CUDA_GEMM_QUANT_H

#include "runtime/cuda/cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows of w expanded per slice (and GEMM): a slice small enough to stay in
 * the L2 cache between its expansion and its GEMM (MLXE_CUDA_EXPAND_MB,
 * default 16), a multiple of 128 rows, at most w->rows. */
int64_t mlxe_cuda_expand_slice_rows(const mlxe_matrix *w);

/* Queues rows [row0, row0 + n_rows) of the 4- or 8-bit matrix w as BF16
 * (row-major, n_rows × w->cols) into out; false (nothing queued) when w is
 * not one this kernel takes (other bit widths, group sizes that are not
 * powers of two or below 32 values at 4 bits, unaligned data). */
bool mlxe_cuda_expand_quantized_bf16(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0, int64_t n_rows,
                                     void *out);

/* For benches: the slice size in MB (0: MLXE_CUDA_EXPAND_MB or the default)
 * and whether this file's kernel expands (false: cuda_matmul.cu's older
 * word-per-thread kernel). Process-wide, not thread-safe. */
void mlxe_cuda_expand_tuning(int64_t slice_mb, bool vector_kernel);

#ifdef __cplusplus
}
#endif
#endif
