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

/* Prefill against MLX 4/8-bit weights with int8 activations
 * (kernels_avx512_gemm_int8.c; the table entries int8_prefill_*). */
size_t mlxe_avx512_int8_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x);
bool mlxe_avx512_int8_prefill_quantize_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                         size_t capacity);
void mlxe_avx512_int8_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                       int64_t o_end, float *y);

#endif
#endif
