/* runtime/cuda/cuda_gemm_quant.h — quantized weights expanded to BF16 for the
 * prefill GEMM (cuda_gemm_quant.cu), used by cuda_matmul.cu. Built only with
 * CUDA. */
#ifndef MLXE_RUNTIME_CUDA_GEMM_QUANT_H
#define MLXE_RUNTIME_CUDA_GEMM_QUANT_H

#include "runtime/cuda/cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Rows of w expanded per slice (and GEMM): MLXE_CUDA_EXPAND_MB of BF16
 * (default 256; L2-sized slices measured slower), a multiple of 128 rows,
 * at most w->rows. */
int64_t mlxe_cuda_expand_slice_rows(const mlxe_matrix *w);

/* Queues rows [row0, row0 + n_rows) of the 8-bit matrix w as BF16
 * (row-major, n_rows × w->cols) into out; false (nothing queued) when w is
 * not one this kernel takes (other bit widths, where cuda_matmul.cu's kernel
 * measured faster; group sizes that are not powers of two; unaligned data). */
bool mlxe_cuda_expand_quantized_bf16(mlxe_cuda_state *state, const mlxe_matrix *w, int64_t row0, int64_t n_rows,
                                     void *out);

/* For benches: the slice size in MB (0: MLXE_CUDA_EXPAND_MB or the default)
 * and whether this file's kernel expands 8-bit weights (false: cuda_matmul.cu's
 * word-per-thread kernel). Process-wide, not thread-safe. */
void mlxe_cuda_expand_tuning(int64_t slice_mb, bool vector_kernel);

#ifdef __cplusplus
}
#endif
#endif
