/* runtime/cpu/kernels_avx512_gemm.h — the AVX-512 prefill GEMMs
 * (kernels_avx512_gemm_*.c), entries of the avx512 kernel tables.
 *
 * Callable only on a processor with AVX-512 F/BW/VL/DQ and VNNI (the tables
 * that use them are chosen only then). */
#ifndef MLXE_RUNTIME_CPU_KERNELS_AVX512_GEMM_H
#define MLXE_RUNTIME_CPU_KERNELS_AVX512_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/ops.h"

#if defined(__x86_64__)

/* The kernel table entries prefill_x_bytes / prefill_prepare_x /
 * prefill_matmul_x (cpu_kernels.h) of the avx512-int8 table: int8
 * activations for MLX 4/8-bit weights (kernels_avx512_gemm_int8.c), bf16
 * activations for BF16 weights where the processor has AVX512_BF16
 * (kernels_avx512_gemm_bf16.c); 0 bytes for other weights. */
size_t mlxe_avx512_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x);
bool mlxe_avx512_prefill_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer, size_t capacity);
void mlxe_avx512_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                  int64_t o_end, float *y);

size_t mlxe_avx512_int8_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x);
bool mlxe_avx512_int8_prefill_quantize_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                         size_t capacity);
void mlxe_avx512_int8_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                       int64_t o_end, float *y);

size_t mlxe_avx512_bf16_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x);
bool mlxe_avx512_bf16_prefill_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                        size_t capacity);
void mlxe_avx512_bf16_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                       int64_t o_end, float *y);

#endif
#endif
