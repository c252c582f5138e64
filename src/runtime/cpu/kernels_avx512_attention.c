/* runtime/cpu/kernels_avx512_attention.c — the AVX-512 attention kernels
 * (cpu_kernels.h: attention_scores, attention_exp, attention_values) for one
 * block of cached positions and the query heads of one kv head.
 *
 * Scores: 16 positions at a time, one query head at a time: 16 accumulators
 * (one per position) gather q · k over head_dim, then a transpose-and-add
 * tree turns them into one vector of 16 scores. At head_dim 64 each row's
 * dot is one FMA chain read front to back, 8 rows at a time (tile_scores_by_row8);
 * other head dims go column by column (tile_scores); head_dim 128 uses the
 * AVX2 kernel (see mlxe_avx512_attention_scores). The key rows come from
 * memory for the first head and from L1 for the others. Values: the output
 * rows of a few heads stay in 16 registers while the block's value rows
 * stream past (at head_dim 64: 4 heads x 64 columns; 128: 2 x 128; else up
 * to 8 heads x 32 columns).
 *
 * Why rows front to back: in decode the cache comes from memory, and the
 * hardware prefetchers follow lines touched in address order. With rows
 * visited column by column (16 rows per 16-float step) Llama-3.2-1B's cache
 * at 2048 positions streamed at ~14-17 GB/s on 2 threads, ~25-28 in row
 * order (bench_cpu_attention on the 2-core Zen 4 VM). Head dims that are
 * not multiples of 16 use masked loads; rows past n are never read.
 *
 * exp(t) by mlxe_avx512_exp_ps (kernels_avx512_exp.h; degree 7, well under
 * a float ulp, saturating to 0). */
#if defined(__x86_64__)

#include <immintrin.h>
#include <math.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/kernels_avx512_exp.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#define INLINE_AVX512 AVX512 static inline __attribute__((always_inline))

#define BLOCK MLXE_CPU_ATTENTION_BLOCK

INLINE_AVX512 __mmask16 tail_mask(int64_t remaining) {
    return remaining >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << remaining) - 1u);
}

/* Element p of the result is the sum of the 16 elements of v[p]. */
INLINE_AVX512 __m512 sum16(const __m512 v[16]) {
    __m512 pairs[8], quads[4], halves[2];
    for (int i = 0; i < 8; i++) /* per 128-bit lane: v[2i] in elements 0, 2 and v[2i+1] in 1, 3 */
        pairs[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; i++) { /* per lane: the lane's sums of v[4i .. 4i+3] in order */
        __m512d a = _mm512_castps_pd(pairs[2 * i]), b = _mm512_castps_pd(pairs[2 * i + 1]);
        quads[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    for (int i = 0; i < 2; i++) /* lanes: v[8i..8i+3] of lanes 0+1, of 2+3, then v[8i+4..8i+7] alike */
        halves[i] = _mm512_add_ps(_mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], 0x88),
                                  _mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(halves[0], halves[1], 0x88),
                         _mm512_shuffle_f32x4(halves[0], halves[1], 0xDD));
}

/* dot(q, row p) for the rows p < rows of a tile (row p at tile + p * head_dim);
 * lanes from `rows` on repeat the last row (rows is 16 or a constant after
 * inlining in the full case, so the offsets fold). */
INLINE_AVX512 __m512 tile_scores(const float *q, const float *tile, int64_t head_dim, int rows) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int p = 0; p < 16; p++) acc[p] = _mm512_setzero_ps();
    for (int64_t c = 0; c < head_dim; c += 16) {
        const __mmask16 mask = tail_mask(head_dim - c);
        const __m512 query = _mm512_maskz_loadu_ps(mask, q + c);
#pragma GCC unroll 16
        for (int p = 0; p < 16; p++) {
            const float *row = tile + (p < rows ? p : rows - 1) * head_dim;
            acc[p] = _mm512_fmadd_ps(query, _mm512_maskz_loadu_ps(mask, row + c), acc[p]);
        }
    }
    return sum16(acc);
}

/* Element p of the result is the sum of the 16 elements of v[p], p < 8. */
INLINE_AVX512 __m256 sum8_of16(const __m512 v[8]) {
    __m256 halves[8], pairs[4], quads[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        halves[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i]), _mm512_extractf32x8_ps(v[i], 1));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        pairs[i] = _mm256_add_ps(_mm256_unpacklo_ps(halves[2 * i], halves[2 * i + 1]),
                                 _mm256_unpackhi_ps(halves[2 * i], halves[2 * i + 1]));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        __m256d a = _mm256_castps_pd(pairs[2 * i]), b = _mm256_castps_pd(pairs[2 * i + 1]);
        quads[i] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(a, b)), _mm256_castpd_ps(_mm256_unpackhi_pd(a, b)));
    }
    return _mm256_add_ps(_mm256_permute2f128_ps(quads[0], quads[1], 0x20),
                         _mm256_permute2f128_ps(quads[0], quads[1], 0x31));
}

/* 16 rows as two halves of 8, each row's dot one FMA chain with the query
 * from L1. */
INLINE_AVX512 __m512 tile_scores_by_row8(const float *q, const float *tile, int chunks, int rows) {
    __m256 half[2];
#pragma GCC unroll 2
    for (int hf = 0; hf < 2; hf++) {
        __m512 acc[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const int p = 8 * hf + i;
            const float *row = tile + (p < rows ? p : rows - 1) * 16 * chunks;
            __m512 sum = _mm512_mul_ps(_mm512_loadu_ps(q), _mm512_loadu_ps(row));
#pragma GCC unroll 8
            for (int c = 1; c < chunks; c++) sum = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16 * c), _mm512_loadu_ps(row + 16 * c), sum);
            acc[i] = sum;
        }
        half[hf] = sum8_of16(acc);
    }
    return _mm512_insertf32x8(_mm512_castps256_ps512(half[0]), half[1], 1);
}

AVX512 void mlxe_avx512_attention_scores(const float *q, int n_q, const float *keys, int64_t n, int64_t head_dim,
                                         float scale, float *scores, float *block_max) {
    if (head_dim == 128) {
        /* 8-row tiles of ymm FMA chains stream 512-byte rows from memory
         * ~1.4x faster here than any 16-row zmm tile tried (Llama-3.1-8B
         * shape, bench_cpu_attention); the reason is not understood. */
        mlxe_avx2_attention_scores(q, n_q, keys, n, head_dim, scale, scores, block_max);
        return;
    }
    const __m512 factor = _mm512_set1_ps(scale);
    __m512 maxima[MLXE_CPU_ATTENTION_MAX_QUERIES];
    for (int g = 0; g < n_q; g++) maxima[g] = _mm512_set1_ps(-INFINITY);
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        const int rows = n - j0 >= 16 ? 16 : (int)(n - j0);
        const __mmask16 mask = tail_mask(rows);
        const float *tile = keys + j0 * head_dim;
        for (int g = 0; g < n_q; g++) {
            __m512 s = head_dim == 64 ? (rows == 16 ? tile_scores_by_row8(q + g * head_dim, tile, 4, 16)
                                                    : tile_scores_by_row8(q + g * head_dim, tile, 4, rows))
                                      : (rows == 16 ? tile_scores(q + g * head_dim, tile, head_dim, 16)
                                                    : tile_scores(q + g * head_dim, tile, head_dim, rows));
            s = _mm512_mul_ps(s, factor);
            _mm512_mask_storeu_ps(scores + g * BLOCK + j0, mask, s);
            maxima[g] = _mm512_mask_max_ps(maxima[g], mask, maxima[g], s);
        }
    }
    for (int g = 0; g < n_q; g++) block_max[g] = _mm512_reduce_max_ps(maxima[g]);
}

AVX512 float mlxe_avx512_attention_exp(float *x, int64_t n, float shift) {
    const __m512 offset = _mm512_set1_ps(shift);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 mask = tail_mask(n - i);
        __m512 e = mlxe_avx512_exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), offset));
        _mm512_mask_storeu_ps(x + i, mask, e);
        sum = _mm512_mask_add_ps(sum, mask, sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

/* Columns [c, c + 32) of the n_q output rows (masked past head_dim). */
INLINE_AVX512 void values_columns(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                                  float *out, int64_t c) {
    const __mmask16 mask0 = tail_mask(head_dim - c), mask1 = head_dim - c > 16 ? tail_mask(head_dim - c - 16) : 0;
    __m512 acc[MLXE_CPU_ATTENTION_MAX_QUERIES][2];
#pragma GCC unroll 8
    for (int g = 0; g < n_q; g++) {
        acc[g][0] = _mm512_maskz_loadu_ps(mask0, out + g * head_dim + c);
        acc[g][1] = _mm512_maskz_loadu_ps(mask1, out + g * head_dim + c + 16);
    }
    for (int64_t j = 0; j < n; j++) {
        const float *row = values + j * head_dim + c;
        const __m512 v0 = _mm512_maskz_loadu_ps(mask0, row), v1 = _mm512_maskz_loadu_ps(mask1, row + 16);
#pragma GCC unroll 8
        for (int g = 0; g < n_q; g++) {
            const __m512 w = _mm512_set1_ps(weights[g * BLOCK + j]);
            acc[g][0] = _mm512_fmadd_ps(w, v0, acc[g][0]);
            acc[g][1] = _mm512_fmadd_ps(w, v1, acc[g][1]);
        }
    }
#pragma GCC unroll 8
    for (int g = 0; g < n_q; g++) {
        _mm512_mask_storeu_ps(out + g * head_dim + c, mask0, acc[g][0]);
        _mm512_mask_storeu_ps(out + g * head_dim + c + 16, mask1, acc[g][1]);
    }
}

/* n_q a constant after inlining, so the accumulators stay in registers. */
INLINE_AVX512 void values_all(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                              float *out) {
    for (int64_t c = 0; c < head_dim; c += 32) values_columns(weights, n_q, values, n, head_dim, out, c);
}

/* Whole rows of head_dim = 16 * width (64 or 128: width 4 or 8) for n_h
 * (<= 16 / width) output rows, both constants after inlining: 16
 * accumulators, each value row read front to back. */
INLINE_AVX512 void values_whole_rows(const float *weights, int n_h, const float *values, int64_t n, int width,
                                     float *out) {
    const int64_t head_dim = 16 * width;
    __m512 acc[4][8];
#pragma GCC unroll 4
    for (int h = 0; h < n_h; h++)
#pragma GCC unroll 8
        for (int w = 0; w < width; w++) acc[h][w] = _mm512_loadu_ps(out + h * head_dim + 16 * w);
    for (int64_t j = 0; j < n; j++) {
        const float *row = values + j * head_dim;
        __m512 v[8];
#pragma GCC unroll 8
        for (int w = 0; w < width; w++) v[w] = _mm512_loadu_ps(row + 16 * w);
#pragma GCC unroll 4
        for (int h = 0; h < n_h; h++) {
            const __m512 weight = _mm512_set1_ps(weights[h * BLOCK + j]);
#pragma GCC unroll 8
            for (int w = 0; w < width; w++) acc[h][w] = _mm512_fmadd_ps(weight, v[w], acc[h][w]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < n_h; h++)
#pragma GCC unroll 8
        for (int w = 0; w < width; w++) _mm512_storeu_ps(out + h * head_dim + 16 * w, acc[h][w]);
}

AVX512 void mlxe_avx512_attention_values(const float *weights, int n_q, const float *values, int64_t n,
                                         int64_t head_dim, float *out) {
    /* Head dims of 64 and 128: rows read in address order (the hardware
     * prefetchers follow that when the cache comes from memory), 4 (64) or
     * 2 (128) heads at a time; the block's rows (16-32 KiB) come from L1 for
     * the next heads. */
    if (head_dim == 64) {
        for (int h0 = 0; h0 < n_q; h0 += 4) {
            const float *w = weights + h0 * BLOCK;
            float *o = out + h0 * head_dim;
            switch (n_q - h0 < 4 ? n_q - h0 : 4) {
            case 1: values_whole_rows(w, 1, values, n, 4, o); break;
            case 2: values_whole_rows(w, 2, values, n, 4, o); break;
            case 3: values_whole_rows(w, 3, values, n, 4, o); break;
            default: values_whole_rows(w, 4, values, n, 4, o); break;
            }
        }
        return;
    }
    if (head_dim == 128) {
        for (int h0 = 0; h0 < n_q; h0 += 2) {
            if (n_q - h0 == 1)
                values_whole_rows(weights + h0 * BLOCK, 1, values, n, 8, out + h0 * head_dim);
            else
                values_whole_rows(weights + h0 * BLOCK, 2, values, n, 8, out + h0 * head_dim);
        }
        return;
    }
    switch (n_q) {
    case 1: values_all(weights, 1, values, n, head_dim, out); break;
    case 2: values_all(weights, 2, values, n, head_dim, out); break;
    case 3: values_all(weights, 3, values, n, head_dim, out); break;
    case 4: values_all(weights, 4, values, n, head_dim, out); break;
    case 5: values_all(weights, 5, values, n, head_dim, out); break;
    case 6: values_all(weights, 6, values, n, head_dim, out); break;
    case 7: values_all(weights, 7, values, n, head_dim, out); break;
    default: values_all(weights, 8, values, n, head_dim, out); break;
    }
}

#endif
