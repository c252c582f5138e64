/* runtime/cpu/kernels_avx512_pointwise.c — AVX-512 element-wise kernels for
 * the CPU ops: the SwiGLU gate out = silu(gate) * up = gate / (1 + e^-gate)
 * * up, 16 lanes at a time. In decode it runs on one thread between two
 * matmuls (4864 elements per layer for Qwen2.5-0.5B), where libm's scalar
 * expf cost ~2% of a token. e^-gate by mlxe_avx512_exp_ps
 * (kernels_avx512_exp.h), which saturates: silu(-100) = -100 / inf = -0. */
#if defined(__x86_64__)

#include <immintrin.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/kernels_avx512_exp.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

AVX512 void mlxe_avx512_silu_mul(const float *gate, const float *up, float *out, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 g = _mm512_maskz_loadu_ps(mask, gate + i), u = _mm512_maskz_loadu_ps(mask, up + i);
        __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, mlxe_avx512_exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(silu, u));
    }
}

#endif
