/* runtime/cpu/kernels_avx512_gemm.c — the avx512-int8 table's prefill
 * entries: route each weight to the GEMM that covers it (int8 activations
 * for MLX 4/8-bit, bf16 activations for BF16), or report 0 bytes so the op
 * keeps the float kernels. */
#if defined(__x86_64__)

#include "runtime/cpu/kernels_avx512_gemm.h"

size_t mlxe_avx512_prefill_x_bytes(const mlxe_matrix *w, int64_t n_x) {
    if (w->bits == 4 || w->bits == 8) return mlxe_avx512_int8_prefill_x_bytes(w, n_x);
    if (w->bits == 0) return mlxe_avx512_bf16_prefill_x_bytes(w, n_x);
    return 0;
}

bool mlxe_avx512_prefill_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer, size_t capacity) {
    if (w->bits == 4 || w->bits == 8) return mlxe_avx512_int8_prefill_quantize_x(x, n_x, w, buffer, capacity);
    if (w->bits == 0) return mlxe_avx512_bf16_prefill_prepare_x(x, n_x, w, buffer, capacity);
    return false;
}

void mlxe_avx512_prefill_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                  int64_t o_end, float *y) {
    if (w->bits == 0)
        mlxe_avx512_bf16_prefill_matmul_x(x_prepared, n_x, w, o_begin, o_end, y);
    else
        mlxe_avx512_int8_prefill_matmul_x(x_prepared, n_x, w, o_begin, o_end, y);
}

#endif
