/* runtime/cpu/kernels_avx512_exp.h — e^t for 16 floats with AVX-512, shared
 * by the SwiGLU gate (kernels_avx512_pointwise.c) and the attention's
 * softmax (kernels_avx512_attention.c). Included by those .c files only.
 *
 * e^t = 2^k * e^r with k = round(t / ln 2) and r = t - k ln 2 (ln 2 in two
 * parts, Cody-Waite, so r is exact to float rounding), |r| <= ln(2) / 2,
 * e^r by its degree-7 Taylor polynomial (truncation below 1e-8 relative),
 * and vscalefps for the 2^k: it saturates to 0 and infinity, so large |t|
 * need no special case (t is clamped to ±100 only to keep k finite). */
#ifndef MLXE_RUNTIME_CPU_KERNELS_AVX512_EXP_H
#define MLXE_RUNTIME_CPU_KERNELS_AVX512_EXP_H

#if defined(__x86_64__)

#include <immintrin.h>

__attribute__((target("avx512f"))) static inline __attribute__((always_inline)) __m512 mlxe_avx512_exp_ps(__m512 t) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    t = _mm512_max_ps(_mm512_min_ps(t, _mm512_set1_ps(100.0f)), _mm512_set1_ps(-100.0f));
    __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(t, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(k, ln2_hi, t);
    r = _mm512_fnmadd_ps(k, ln2_lo, r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

#endif
#endif
