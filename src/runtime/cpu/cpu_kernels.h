/* runtime/cpu/cpu_kernels.h — the inner loops the CPU ops are built from, in
 * one table per instruction set (portable C, AVX2+FMA+F16C, AVX-512 with
 * VNNI), chosen once at device creation.
 *
 * The ops (cpu_ops_*.c) do the threading and call these on their share of the
 * work; kernels never allocate and never fail. */
#ifndef MLXE_RUNTIME_CPU_KERNELS_H
#define MLXE_RUNTIME_CPU_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/ops.h"

/* y[r * ldy + o] = dot(x[r * cols ..], w[o * cols ..]) for r < n_x and
 * o in [o_begin, o_end). w is row-major rows × cols in the kernel's dtype
 * (float, or uint16 bits of F16 / BF16) and is read in place. */
typedef void (*mlxe_matmul_kernel)(const float *x, int64_t n_x, const void *w, int64_t cols,
                                   int64_t o_begin, int64_t o_end, float *y, int64_t ldy);

typedef struct mlxe_cpu_kernels {
    const char *name;              /* "generic", "avx2", "avx512", "avx512-int8" */
    mlxe_matmul_kernel matmul_f32;
    mlxe_matmul_kernel matmul_f16;
    mlxe_matmul_kernel matmul_bf16;
    float (*dot)(const float *a, const float *b, int64_t n);
    void (*axpy)(float *y, float a, const float *x, int64_t n);   /* y += a * x */
    void (*scale)(float *y, float a, int64_t n);                  /* y *= a */
    /* Like mlxe_matmul_kernel for an MLX affine-quantized w with 4 or 8 bits
     * (y's row stride is w->rows); NULL when the table has none, and then
     * cpu_quant.c's portable path is used. */
    void (*matmul_quantized)(const float *x, int64_t n_x, const mlxe_matrix *w, int64_t o_begin, int64_t o_end,
                             float *y);
    /* Prefill (n_x >= MLXE_CPU_PREFILL_MIN_TOKENS) with activations
     * prepared once per op in a lower precision: prefill_x_bytes says how
     * many bytes the prepared activations of n_x tokens take for w (0: w
     * not covered, use the float kernels), prefill_prepare_x prepares them,
     * and prefill_matmul_x computes output rows [o_begin, o_end) from them
     * (y's row stride is w->rows). NULL in tables without them; the
     * avx512-int8 table has them (int8 activations for 4/8-bit weights,
     * bf16 for BF16 weights; numerics in kernels_avx512_gemm_*.c). */
    size_t (*prefill_x_bytes)(const mlxe_matrix *w, int64_t n_x);
    bool (*prefill_prepare_x)(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer, size_t capacity);
    void (*prefill_matmul_x)(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                             int64_t o_end, float *y);
} mlxe_cpu_kernels;

/* From this many tokens a matmul is prefill-shaped (compute-bound). */
#define MLXE_CPU_PREFILL_MIN_TOKENS 4

extern const mlxe_cpu_kernels mlxe_cpu_kernels_generic;
#if defined(__x86_64__)
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx2;
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx512;
/* avx512 with int8 activations for 4/8-bit weights (kernels_avx512.c). */
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx512_int8;
#endif

/* The fastest table this processor runs, unless MLXE_CPU_KERNELS=generic
 * (or =avx2 / =avx512 / =avx512-int8, honoured only when the processor has
 * it) says otherwise. avx512-int8 is never chosen automatically. */
const mlxe_cpu_kernels *mlxe_cpu_kernels_select(void);
bool mlxe_cpu_has_avx2(void);
/* AVX-512 F, BW, VL, DQ and VNNI, on top of AVX2/FMA/F16C. */
bool mlxe_cpu_has_avx512(void);

#endif
