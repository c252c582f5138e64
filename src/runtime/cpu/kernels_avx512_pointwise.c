/* runtime/cpu/kernels_avx512_pointwise.c — AVX-512 element-wise kernels for
 * the CPU ops: the SwiGLU gate out = silu(gate) * up = gate / (1 + e^-gate)
 * * up, 16 lanes at a time. In decode it runs on one thread between two
 * matmuls (4864 elements per layer for Qwen2.5-0.5B), where libm's scalar
 * expf cost ~2% of a token.
 *
 * exp(t) as 2^n * e^r with n = round(t / ln 2) and r = t - n ln 2 (ln 2 in
 * two parts, Cody-Waite, so r is exact to float rounding), |r| <= ln(2) / 2,
 * e^r by its degree-6 Taylor polynomial (truncation below 2e-8 relative, under
 * one float ulp), and vscalefps for the 2^n (it saturates to 0 and infinity,
 * so large |t| need no special case: silu(-100) = -100 / inf = -0). */
#if defined(__x86_64__)

#include <immintrin.h>

#include "runtime/cpu/cpu_kernels.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))

AVX512 static inline __m512 exp_ps(__m512 t) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    /* keep n finite (vscalef saturates the result anyway) */
    t = _mm512_max_ps(_mm512_min_ps(t, _mm512_set1_ps(100.0f)), _mm512_set1_ps(-100.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2_hi, t);
    r = _mm512_fnmadd_ps(n, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

AVX512 void mlxe_avx512_silu_mul(const float *gate, const float *up, float *out, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 g = _mm512_maskz_loadu_ps(mask, gate + i), u = _mm512_maskz_loadu_ps(mask, up + i);
        __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g))));
        _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(silu, u));
    }
}

#endif
