/* runtime/cpu/kernels_avx512_decode_packed.c — decode (1-3 tokens) against
 * MLX 4/8-bit matrices in the CPU's packed layout (cpu_pack.c: 16-row
 * tiles, each 64-byte chunk one 32-bit word of 16 rows) with int8
 * activations and VNNI dot products. Same numerics and same prepared
 * activations as kernels_avx512_decode.c (mlxe_avx512_int8_quantize_x):
 * for a group with scale s and bias b, and the activations of 8 columns
 * (4-bit; 4 columns at 8 bits) rounded as x_k ~= dx xq_k,
 *     sum_k (s q_k + b) x_k  ~=  s sum_chunks dx sum_k q_k xq_k  +  b sum_k x_k
 * with every integer sum exact; only the float summation order differs from
 * the row kernel (the bound sum_k |s q_k| dx_k / 2 is the same).
 *
 * Each 32-bit lane of a vector is one row of the tile: a chunk (16 rows ×
 * one word) meets the word's 4 activation bytes broadcast to every lane
 * (4-bit: low nibbles = even columns against the even bytes, high nibbles =
 * odd columns against the odd bytes, two vpdpbusd; 8-bit: one), the int32
 * sums are converted and scaled by the chunk's dx (broadcast), and at the
 * group's end the 16 rows' scales (one vector from the group header) and
 * the bias term are applied. The tile's 16 outputs come out as one vector:
 * no horizontal sums, no per-row setup, one stream per worker. Per 64
 * weight bytes: load, AND + GFNI shift (4-bit), one or two vpdpbusd,
 * convert, FMA. */
#if defined(__x86_64__)

#include <immintrin.h>

#include "runtime/cpu/cpu_kernels.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE_AVX512 AVX512 static inline __attribute__((always_inline))

/* 4-bit: each pair of 64-byte chunk loads prefetches the two lines this far
 * ahead in the stream; 8-bit: no software prefetch. Measured on the 2-core
 * Zen 4 VM (bench_decode_matmul --pack, branch cpudec3, bench/llamacpp/README.md):
 * one thread alone streams ~10% faster without it at both widths (8192 x 2048
 * cycled from memory: 4-bit 26-27 -> 29-30 GB/s, 8-bit 26-27 -> 29.5, huge
 * and 4 KiB pages alike), but with both threads streaming the 4-bit matmuls
 * of a token were as fast or ~5% faster with it (median ms of 4 alternated
 * runs, Qwen2.5-0.5B 8.2-9.1 against 8.5-9.7; Llama-3.2-1B 20.8-22.1
 * against 24.3-25.3 in 2 of 3, 13.3 in a quiet moment), and 8-bit alike
 * with and without: decode runs on both threads. */
#define PREFETCH_AHEAD 3072

/* GF2P8AFFINEQB matrix mapping each byte b to b >> 4 (kernels_avx512_decode.c). */
#define GFNI_SHIFT_RIGHT_4 0x1020408000000000LL

INLINE_AVX512 __m512i high_nibbles_gfni(__m512i packed, __m512i matrix) {
    __m512i out;
    __asm__("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(packed), "v"(matrix));
    return out;
}

/* 16 F16/BF16 group values of a header as floats. */
INLINE_AVX512 __m512 header_values(int bf16, const uint8_t *values) {
    __m256i halves = _mm256_load_si256((const __m256i *)(const void *)values);
    if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
    return _mm512_cvtph_ps(halves);
}

INLINE_AVX512 __m512i broadcast_word(const uint8_t *p) {
    return _mm512_set1_epi32(*(const int32_t *)(const void *)p);
}

/* Tiles of rows [o_begin, o_end) × n_x tokens (constants after inlining). */
INLINE_AVX512 void packed_tiles(int bits, int gfni, int bf16, int n_x, const uint8_t *xprep, int64_t x_stride,
                                const mlxe_matrix *w, int64_t o_begin, int64_t o_end, float *y) {
    const int64_t groups = w->cols / w->group_size, group_bytes = mlxe_cpu_packed_group_bytes(w);
    const int64_t tile_bytes = groups * group_bytes, chunks = w->group_size * bits / 32;
    /* the prepared activations: per block of 128 (4-bit) or 64 (8-bit)
     * columns the bytes of 16 lanes (4-bit: even columns, then odd), then 16
     * dx; after the blocks the sums of x per group */
    const int64_t block_bytes = bits == 4 ? 192 : 128, dx_offset = bits == 4 ? 128 : 64;
    const int64_t blocks = bits == 4 ? (w->cols + 127) / 128 : (w->cols + 63) / 64;
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F), shift_right_4 = _mm512_set1_epi64(GFNI_SHIFT_RIGHT_4);
    for (int64_t o = o_begin; o < o_end; o += MLXE_CPU_PACK_ROWS) {
        const uint8_t *tile = (const uint8_t *)w->packed + (o / MLXE_CPU_PACK_ROWS) * tile_bytes;
        __m512 acc[3], acc_bias[3];
        for (int t = 0; t < n_x; t++) acc[t] = acc_bias[t] = _mm512_setzero_ps();
        int64_t chunk_index = 0; /* the word's index in the row: 8 (4-bit) or 4 columns each */
        for (int64_t g = 0; g < groups; g++) {
            const uint8_t *group = tile + g * group_bytes;
            __m512 sum0[3], sum1[3];
            for (int t = 0; t < n_x; t++) sum0[t] = sum1[t] = _mm512_setzero_ps();
            /* two chunks a step (chunks per group: 4 to 32, even; an even
             * chunk index and the next share one activation block) */
            for (int64_t c = 0; c < chunks; c += 2, chunk_index += 2) {
                const uint8_t *chunk = group + MLXE_CPU_PACK_HEADER + c * 64;
                if (bits == 4) {
                    _mm_prefetch((const char *)chunk + PREFETCH_AHEAD, _MM_HINT_T0);
                    _mm_prefetch((const char *)chunk + PREFETCH_AHEAD + 64, _MM_HINT_T0);
                }
                const __m512i v0 = _mm512_load_si512(chunk), v1 = _mm512_load_si512(chunk + 64);
                __m512i lo0 = v0, lo1 = v1, hi0 = v0, hi1 = v1;
                if (bits == 4) {
                    lo0 = _mm512_and_si512(v0, low_nibbles);
                    lo1 = _mm512_and_si512(v1, low_nibbles);
                    if (gfni) {
                        hi0 = high_nibbles_gfni(v0, shift_right_4);
                        hi1 = high_nibbles_gfni(v1, shift_right_4);
                    } else {
                        hi0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low_nibbles);
                        hi1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low_nibbles);
                    }
                }
                const int64_t x_offset = (chunk_index >> 4) * block_bytes + (chunk_index & 15) * 4;
                for (int t = 0; t < n_x; t++) {
                    const uint8_t *xt = xprep + t * x_stride + x_offset;
                    __m512i dot0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo0, broadcast_word(xt));
                    __m512i dot1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo1, broadcast_word(xt + 4));
                    if (bits == 4) {
                        dot0 = _mm512_dpbusd_epi32(dot0, hi0, broadcast_word(xt + 64));
                        dot1 = _mm512_dpbusd_epi32(dot1, hi1, broadcast_word(xt + 68));
                    }
                    const float *dx = (const float *)(const void *)(xt + dx_offset);
                    sum0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot0), _mm512_set1_ps(dx[0]), sum0[t]);
                    sum1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot1), _mm512_set1_ps(dx[1]), sum1[t]);
                }
            }
            const __m512 scales = header_values(bf16, group), biases = header_values(bf16, group + 32);
            for (int t = 0; t < n_x; t++) {
                const float *sums = (const float *)(const void *)(xprep + t * x_stride + blocks * block_bytes);
                acc[t] = _mm512_fmadd_ps(_mm512_add_ps(sum0[t], sum1[t]), scales, acc[t]);
                acc_bias[t] = _mm512_fmadd_ps(biases, _mm512_set1_ps(sums[g]), acc_bias[t]);
            }
        }
        const int64_t n_rows = o_end - o < MLXE_CPU_PACK_ROWS ? o_end - o : MLXE_CPU_PACK_ROWS;
        const __mmask16 mask = (__mmask16)((1u << n_rows) - 1u);
        for (int t = 0; t < n_x; t++) _mm512_mask_storeu_ps(y + t * w->rows + o, mask, _mm512_add_ps(acc[t], acc_bias[t]));
    }
}

#define TOKEN_CASES(bits, gfni, bf16)                                                              \
    do {                                                                                           \
        if (n == 1) packed_tiles(bits, gfni, bf16, 1, xt, stride, w, o_begin, o_end, yt);          \
        else if (n == 2) packed_tiles(bits, gfni, bf16, 2, xt, stride, w, o_begin, o_end, yt);     \
        else packed_tiles(bits, gfni, bf16, 3, xt, stride, w, o_begin, o_end, yt);                 \
    } while (0)

AVX512 static void packed_4bit_gfni(int64_t n, const uint8_t *xt, int64_t stride, const mlxe_matrix *w,
                                    int64_t o_begin, int64_t o_end, float *yt) {
    if (w->scale_dtype == MLXE_DTYPE_BF16) TOKEN_CASES(4, 1, 1);
    else TOKEN_CASES(4, 1, 0);
}

AVX512 static void packed_plain(int64_t n, const uint8_t *xt, int64_t stride, const mlxe_matrix *w, int64_t o_begin,
                                int64_t o_end, float *yt) {
    const bool bf16 = w->scale_dtype == MLXE_DTYPE_BF16;
    if (w->bits == 4) {
        if (bf16) TOKEN_CASES(4, 0, 1);
        else TOKEN_CASES(4, 0, 0);
    } else {
        if (bf16) TOKEN_CASES(8, 0, 1);
        else TOKEN_CASES(8, 0, 0);
    }
}

void mlxe_avx512_int8_packed_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                      int64_t o_end, float *y) {
    static int has_gfni = -1; /* benign race: every thread computes the same answer */
    if (has_gfni < 0) {
        __builtin_cpu_init();
        has_gfni = __builtin_cpu_supports("gfni");
    }
    const int64_t stride = (int64_t)mlxe_avx512_int8_x_bytes(w, 1);
    for (int64_t t0 = 0; t0 < n_x; t0 += 3) {
        const int64_t n = n_x - t0 < 3 ? n_x - t0 : 3;
        const uint8_t *xt = (const uint8_t *)x_prepared + t0 * stride;
        float *yt = y + t0 * w->rows;
        if (w->bits == 4 && has_gfni) packed_4bit_gfni(n, xt, stride, w, o_begin, o_end, yt);
        else packed_plain(n, xt, stride, w, o_begin, o_end, yt);
    }
}
#endif
