/* runtime/cpu/kernels_avx512_gemm_internal.h — pieces shared by the
 * AVX-512 prefill GEMMs (kernels_avx512_gemm_*.c): the 16×16 transpose of
 * 32-bit elements that repacks weight rows into micro-kernel panels, and
 * the lane mask of a partial 16-row vector, and the store of a tile's sums.
 * Included only by files
 * compiled for AVX-512. */
#ifndef MLXE_RUNTIME_CPU_KERNELS_AVX512_GEMM_INTERNAL_H
#define MLXE_RUNTIME_CPU_KERNELS_AVX512_GEMM_INTERNAL_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define MLXE_GEMM_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

MLXE_GEMM_AVX512 static inline __mmask16 mlxe_avx512_lanes_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* dst[i * dst_stride + j] = src[j * src_stride + i] (32-bit elements) for
 * i, j < 16; src and dst 64-byte aligned rows. Unpacks within 128-bit
 * lanes, then two rounds of 128-bit lane shuffles. */
MLXE_GEMM_AVX512 static inline __attribute__((always_inline)) void
mlxe_avx512_transpose16x32(const uint32_t *src, int64_t src_stride, uint32_t *dst, int64_t dst_stride) {
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = _mm512_castsi512_ps(_mm512_load_si512(src + i * src_stride));
    /* per 128-bit lane L: t[2p] = rows 2p, 2p+1 interleaved at elements 4L, 4L+1; t[2p+1] at 4L+2, 4L+3 */
    for (int p = 0; p < 8; p++) {
        t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
        t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
    }
    /* u[4g + c], lane L: rows 4g .. 4g+3 at element 4L + c */
    for (int g = 0; g < 4; g++) {
        __m512d a0 = _mm512_castps_pd(t[4 * g]), a1 = _mm512_castps_pd(t[4 * g + 1]);
        __m512d b0 = _mm512_castps_pd(t[4 * g + 2]), b1 = _mm512_castps_pd(t[4 * g + 3]);
        u[4 * g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
        u[4 * g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
        u[4 * g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
        u[4 * g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
    }
    /* element 4L + c takes lane L of u[c], u[4 + c], u[8 + c], u[12 + c] */
    for (int c = 0; c < 4; c++) {
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 v2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 v3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        _mm512_store_si512(dst + (0 + c) * dst_stride, _mm512_castps_si512(_mm512_shuffle_f32x4(v0, v2, 0x88)));
        _mm512_store_si512(dst + (8 + c) * dst_stride, _mm512_castps_si512(_mm512_shuffle_f32x4(v0, v2, 0xdd)));
        _mm512_store_si512(dst + (4 + c) * dst_stride, _mm512_castps_si512(_mm512_shuffle_f32x4(v1, v3, 0x88)));
        _mm512_store_si512(dst + (12 + c) * dst_stride, _mm512_castps_si512(_mm512_shuffle_f32x4(v1, v3, 0xdd)));
    }
}

/* Stores the sums of n_t tokens × 32 rows (sum0: rows 0-15 under mask m0,
 * sum1: rows 16-31 under m1) at y + t * ldy, added to what is there when
 * accumulate (a later column block of the same rows). */
MLXE_GEMM_AVX512 static inline __attribute__((always_inline)) void
mlxe_avx512_store_tile(int n_t, __m512 *sum0, __m512 *sum1, float *y, int64_t ldy, __mmask16 m0, __mmask16 m1,
                       bool accumulate) {
    for (int t = 0; t < n_t; t++) {
        if (accumulate) {
            sum0[t] = _mm512_add_ps(sum0[t], _mm512_maskz_loadu_ps(m0, y + t * ldy));
            sum1[t] = _mm512_add_ps(sum1[t], _mm512_maskz_loadu_ps(m1, y + t * ldy + 16));
        }
        _mm512_mask_storeu_ps(y + t * ldy, m0, sum0[t]);
        _mm512_mask_storeu_ps(y + t * ldy + 16, m1, sum1[t]);
    }
}

/* n_x rows of cols floats rounded to bf16 (nearest even), row t at out + t * stride. */
void mlxe_avx512_bf16_round_rows(const float *x, int64_t n_x, int64_t cols, uint8_t *out, int64_t stride);

#endif
