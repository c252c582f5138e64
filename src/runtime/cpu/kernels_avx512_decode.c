/* runtime/cpu/kernels_avx512_decode.c — decode (a few tokens) against MLX
 * 4/8-bit affine-quantized weights with int8 activations and AVX-512 VNNI
 * integer dot products, the way llama.cpp multiplies its Q4_0/Q8_0 weights
 * with Q8 activations; and one token against dense F32/F16/BF16 rows (at
 * the end).
 *
 * The op (cpu_matmul.c) calls the kernel table's decode_prepare_x (here
 * mlxe_avx512_int8_quantize_x) once per matmul on its own thread, then every
 * worker runs decode_matmul_x on its rows with the same prepared
 * activations, so the rounding is paid once per op, not per share.
 *
 * Numerics. For a weight group with scale s and bias b, and the activations
 * of an 8-column block quantized as x_k ~= dx * xq_k (dx = max|x| / 127,
 * xq_k = round-to-nearest-even(x_k * (127 / max|x|)) in [-127, 127]; 8
 * columns, one 32-bit lane of the 4-bit dot, rather than llama.cpp's 32:
 * it costs nothing in the dot loop and measured ~35% less logit movement
 * on the default 4-bit model):
 *     sum_k (s q_k + b) x_k  ~=  s dx sum_k q_k xq_k  +  b sum_k x_k
 * The first sum is exact in int32 (vpdpbusd: unsigned weight bytes × signed
 * activation bytes, four products per 32-bit lane); the bias term uses the
 * float activations' sums, so it is exact up to float rounding. The only
 * new error is the activation rounding: each x_k moves by at most dx / 2,
 * so an output moves by at most sum_k |s q_k| dx_k / 2 (checked as a bound
 * by tests/unit/test_runtime_cpu_quant.c, which also checks the result
 * equals this definition computed in double).
 *
 * Layout. The weights are read 64 bytes at a time (one "block": 128
 * columns of 4-bit, 64 of 8-bit) and never shuffled: 4-bit bytes are split
 * into their low nibbles (even columns) and high nibbles (odd columns) with
 * an AND and a shift (or, where the processor has GFNI, one vgf2p8affineqb
 * shifting each byte right by 4). The prepared activations of a token mirror that:
 * per block
 *   4-bit: xq of the 64 even columns, xq of the 64 odd columns, then
 *   8-bit: xq of the 64 columns,                                then
 *   16 floats: dx of each 32-bit lane (4-bit: lane l holds columns
 *   8l..8l+7; 8-bit: 4l..4l+3),
 * then the sum of x over each weight group (padded to 16 groups). A row's
 * scales and biases are converted 16 groups at a time: the bias term is
 * then one FMA with the group sums, and per 64 weight bytes the loop is:
 * load, AND (+ shift and AND, or one GFNI op), one or two vpdpbusd, convert, one vpermps
 * spreading the scales over the lanes (every lane lies in one weight group
 * and one activation block, whatever the group size: 32, 64 or 128), a
 * multiply by dx and an FMA. Rows past the last full block are masked
 * (columns a multiple of 32), with zero activations and zero dx there.
 *
 * Order. One token goes row after row (one contiguous stream per worker,
 * which the hardware prefetchers follow; 4-bit adds a software prefetch
 * ROW_PREFETCH_AHEAD bytes ahead); 2-3 tokens go in tiles of 4 rows sharing each weight load. */
#if defined(__x86_64__)

#include <immintrin.h>
#include <stdalign.h>
#include <string.h>

#include "runtime/cpu/cpu_kernels.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define INLINE_AVX512 AVX512 static inline __attribute__((always_inline))

/* Weight rows per pass (sharing the activation loads). */
#define ROWS 4

/* Scales and biases are read 16 groups (one vector) at a time. */
#define WINDOW 16

/* One token at 4 bits, row after row: each 64-byte weight load prefetches
 * the line this many bytes ahead in the stream (3-4 KiB measured best on the
 * Zen 4 VM, 2 KiB ~15% slower per core; 8 bits runs fastest without:
 * bench_decode_matmul --matvec 8192 2048 --threads 1 --cpu-time). */
#define ROW_PREFETCH_AHEAD 3072

/* GF2P8AFFINEQB matrix mapping each byte b to b >> 4: output bit i (row byte
 * 7 - i) takes input bit i + 4 for i < 4, nothing above. */
#define GFNI_SHIFT_RIGHT_4 0x1020408000000000LL

static int64_t block_columns(int bits) { return bits == 4 ? 128 : 64; }
static int64_t block_bytes(int bits) { return (bits == 4 ? 128 : 64) + 64; }
static int64_t n_blocks(int bits, int64_t cols) { return (cols + block_columns(bits) - 1) / block_columns(bits); }
/* The group sums after the blocks, padded to whole windows. */
static int64_t n_sums(int64_t cols, int64_t group_size) {
    return (cols / group_size + WINDOW - 1) / WINDOW * WINDOW;
}
static int64_t token_bytes(int bits, int64_t cols, int64_t group_size) {
    return n_blocks(bits, cols) * block_bytes(bits) + n_sums(cols, group_size) * (int64_t)sizeof(float);
}

size_t mlxe_avx512_int8_x_bytes(const mlxe_matrix *w, int64_t n_x) {
    const bool mlx_group = w->group_size == 32 || w->group_size == 64 || w->group_size == 128;
    if ((w->bits != 4 && w->bits != 8) || w->cols % 32 != 0 || !mlx_group || n_x <= 0) return 0;
    return (size_t)(n_x * token_bytes(w->bits, w->cols, w->group_size));
}

/* One token's prepared activations (layout above). */
AVX512 static void quantize_token(int bits, const float *x, int64_t cols, int64_t group_size, uint8_t *out) {
    const int64_t per_block = block_columns(bits), lane_columns = bits == 4 ? 8 : 4;
    const int64_t xq_bytes = bits == 4 ? 128 : 64;
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int64_t b0 = 0; b0 < cols; b0 += per_block) {
        uint8_t *block = out + (b0 / per_block) * block_bytes(bits);
        int8_t *xq = (int8_t *)block;
        float *lane_dx = (float *)(block + xq_bytes);
        memset(block, 0, (size_t)block_bytes(bits));
        const int64_t n = cols - b0 < per_block ? cols - b0 : per_block; /* a multiple of 32 */
        for (int64_t c = 0; c < n; c += 32) {
            const float *xs = x + b0 + c;
            __m512 a = _mm512_loadu_ps(xs), b = _mm512_loadu_ps(xs + 16);
            /* max |x| over each 8 columns, in all 8 of its lanes: pairs, quads, then 128-bit halves */
            __m512 ma = _mm512_abs_ps(a), mb = _mm512_abs_ps(b);
            ma = _mm512_max_ps(ma, _mm512_permute_ps(ma, 0xB1));
            mb = _mm512_max_ps(mb, _mm512_permute_ps(mb, 0xB1));
            ma = _mm512_max_ps(ma, _mm512_permute_ps(ma, 0x4E));
            mb = _mm512_max_ps(mb, _mm512_permute_ps(mb, 0x4E));
            ma = _mm512_max_ps(ma, _mm512_shuffle_f32x4(ma, ma, 0xB1));
            mb = _mm512_max_ps(mb, _mm512_shuffle_f32x4(mb, mb, 0xB1));
            /* xq = round(x * (127 / max)) to nearest (the default MXCSR mode), 0 where max is 0 */
            const __m512 top = _mm512_set1_ps(127.0f);
            __m512 ia = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(ma, _mm512_setzero_ps(), _CMP_GT_OQ), top, ma);
            __m512 ib = _mm512_maskz_div_ps(_mm512_cmp_ps_mask(mb, _mm512_setzero_ps(), _CMP_GT_OQ), top, mb);
            __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, ia));
            __m512i qb = _mm512_cvtps_epi32(_mm512_mul_ps(b, ib));
            if (bits == 8) {
                _mm_storeu_si128((__m128i *)(xq + c), _mm512_cvtepi32_epi8(qa));
                _mm_storeu_si128((__m128i *)(xq + c + 16), _mm512_cvtepi32_epi8(qb));
            } else {
                /* columns c..c+31 of the block: evens go to xq[c/2..], odds to xq[64 + c/2..] */
                __m512i even = _mm512_permutex2var_epi32(qa, evens, qb);
                __m512i odd = _mm512_permutex2var_epi32(qa, odds, qb);
                _mm_storeu_si128((__m128i *)(xq + c / 2), _mm512_cvtepi32_epi8(even));
                _mm_storeu_si128((__m128i *)(xq + 64 + c / 2), _mm512_cvtepi32_epi8(odd));
            }
            alignas(64) float maxima[32];
            _mm512_store_ps(maxima, ma);
            _mm512_store_ps(maxima + 16, mb);
            for (int64_t l = c / lane_columns; l < (c + 32) / lane_columns; l++)
                lane_dx[l] = maxima[l * lane_columns - c] / 127.0f;
        }
    }
    /* sum of x per weight group, for the bias term */
    float *sums = (float *)(out + n_blocks(bits, cols) * block_bytes(bits));
    memset(sums, 0, (size_t)n_sums(cols, group_size) * sizeof(float));
    for (int64_t g = 0; g < cols / group_size; g++) {
        __m512 total = _mm512_setzero_ps();
        for (int64_t k = g * group_size; k < (g + 1) * group_size; k += 16) total = _mm512_add_ps(total, _mm512_loadu_ps(x + k));
        sums[g] = _mm512_reduce_add_ps(total);
    }
}

bool mlxe_avx512_int8_quantize_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer, size_t capacity) {
    size_t need = mlxe_avx512_int8_x_bytes(w, n_x);
    if (need == 0 || need > capacity || ((uintptr_t)buffer & 63) != 0) return false;
    const int64_t stride = token_bytes(w->bits, w->cols, w->group_size);
    for (int64_t t = 0; t < n_x; t++) {
        if (w->bits == 4)
            quantize_token(4, x + t * w->cols, w->cols, w->group_size, (uint8_t *)buffer + t * stride);
        else
            quantize_token(8, x + t * w->cols, w->cols, w->group_size, (uint8_t *)buffer + t * stride);
    }
    return true;
}

/* Scales (or biases) of groups [first, first + count), count <= WINDOW, as
 * floats (the rest zero). */
INLINE_AVX512 __m512 window_values(mlxe_dtype dtype, const void *values, int64_t first, int64_t count) {
    const __mmask16 mask = count >= WINDOW ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1u);
    if (dtype == MLXE_DTYPE_BF16)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)values + first)), 16));
    if (dtype == MLXE_DTYPE_F16) return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, (const uint16_t *)values + first));
    return _mm512_maskz_loadu_ps(mask, (const float *)values + first);
}

/* vgf2p8affineqb by hand: the table's target has no GFNI (VNNI processors
 * without it exist), and this runs only where the processor has it. */
INLINE_AVX512 __m512i high_nibbles_gfni(__m512i packed, __m512i matrix) {
    __m512i out;
    __asm__("vgf2p8affineqb $0, %2, %1, %0" : "=v"(out) : "v"(packed), "v"(matrix));
    return out;
}

/* What every tile of a call shares: log2 of the group size (32, 64 or 128;
 * no divisions in the loops) and the lane -> group-within-block map. */
typedef struct int8_shape {
    int group_shift;
    __m512i lane_group;
} int8_shape;

/* n_w rows from o × n_x tokens (constants after inlining). Per window of
 * 16 groups and row, the scales and biases are loaded and converted once;
 * the bias term is one FMA of the biases with the token's group sums, and
 * each 64-byte block spreads the window's scales over its lanes with one
 * vpermps. With several tokens the next tile's bytes are prefetched (short
 * rows side by side defeat the hardware prefetchers); one token at 4 bits
 * prefetches ROW_PREFETCH_AHEAD bytes ahead in its stream (no gain for 8
 * bits, which the hardware follows). Only a partial last block is masked. */
INLINE_AVX512 void int8_tile(int bits, int gfni, int n_w, int n_x, const uint8_t *xprep, int64_t x_stride,
                             const mlxe_matrix *w, const int8_shape *shape, int64_t o, float *y) {
    const int64_t cols = w->cols, groups = cols >> shape->group_shift;
    const int64_t row_bytes = cols * bits / 8, per_block = block_columns(bits), bb = block_bytes(bits);
    const int64_t xq_bytes = bits == 4 ? 128 : 64, blocks = n_blocks(bits, cols), full_blocks = cols / per_block;
    const float *sums = (const float *)(xprep + blocks * bb);
    const uint8_t *rows = (const uint8_t *)w->data + o * row_bytes;
    const __m512i low_nibbles = _mm512_set1_epi8(0x0F), shift_right_4 = _mm512_set1_epi64(GFNI_SHIFT_RIGHT_4);
    /* two accumulators per output (scaled dots, bias terms) */
    __m512 acc[3][ROWS], acc_bias[3][ROWS];
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) acc[t][j] = acc_bias[t][j] = _mm512_setzero_ps();
    int64_t b = 0;
    for (int64_t g0 = 0; g0 < groups; g0 += WINDOW) {
        const int64_t count = groups - g0 < WINDOW ? groups - g0 : WINDOW;
        __m512 scales[ROWS];
        for (int j = 0; j < n_w; j++) {
            const int64_t first = (o + j) * groups + g0;
            scales[j] = window_values(w->scale_dtype, w->scales, first, count);
            __m512 biases = window_values(w->scale_dtype, w->biases, first, count);
            for (int t = 0; t < n_x; t++)
                acc_bias[t][j] = _mm512_fmadd_ps(biases, _mm512_load_ps(sums + t * x_stride / 4 + g0), acc_bias[t][j]);
        }
        /* the blocks starting in this window */
        const int64_t b_end = ((g0 + count) << shape->group_shift) / per_block +
                              (((g0 + count) << shape->group_shift) % per_block != 0);
        for (; b < b_end && b < blocks; b++) {
            const int64_t b0 = b * per_block;
            /* only a last, partial block is masked */
            const __mmask64 mask = b < full_blocks ? ~(__mmask64)0 : (((__mmask64)1 << ((cols - b0) * bits / 8)) - 1);
            const __m512i lanes = _mm512_add_epi32(shape->lane_group, _mm512_set1_epi32((int)((b0 >> shape->group_shift) - g0)));
            const uint8_t *xb = xprep + b * bb;
            for (int j = 0; j < n_w; j++) {
                const uint8_t *row = rows + j * row_bytes + b * 64;
                if (n_w == ROWS && n_x > 1) _mm_prefetch((const char *)row + ROWS * row_bytes, _MM_HINT_T0);
                if (n_w == 1 && bits == 4) _mm_prefetch((const char *)row + ROW_PREFETCH_AHEAD, _MM_HINT_T0);
                __m512i packed = _mm512_maskz_loadu_epi8(mask, row);
                __m512 scale = _mm512_permutexvar_ps(lanes, scales[j]);
                __m512i lo, hi = _mm512_setzero_si512();
                if (bits == 4) {
                    lo = _mm512_and_si512(packed, low_nibbles);
                    /* the high nibbles: one GF(2) affine byte transform (a shift right by 4) where GFNI exists */
                    if (gfni) hi = high_nibbles_gfni(packed, shift_right_4);
                    else hi = _mm512_and_si512(_mm512_srli_epi16(packed, 4), low_nibbles);
                } else {
                    lo = packed;
                }
                for (int t = 0; t < n_x; t++) {
                    const uint8_t *xt = xb + t * x_stride;
                    __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, _mm512_load_si512(xt));
                    if (bits == 4) dot = _mm512_dpbusd_epi32(dot, hi, _mm512_load_si512(xt + 64));
                    const __m512 dx = _mm512_load_ps((const float *)(xt + xq_bytes));
                    acc[t][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(scale, dx), acc[t][j]);
                }
            }
        }
    }
    for (int t = 0; t < n_x; t++)
        for (int j = 0; j < n_w; j++) y[t * w->rows + j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][j], acc_bias[t][j]));
}

INLINE_AVX512 void int8_rows(int bits, int gfni, int n_x, const uint8_t *xprep, const mlxe_matrix *w, int64_t o_begin,
                             int64_t o_end, float *y) {
    const int64_t stride = token_bytes(bits, w->cols, w->group_size), lane_columns = bits == 4 ? 8 : 4;
    int8_shape shape;
    shape.group_shift = __builtin_ctz((unsigned)w->group_size);
    alignas(64) int32_t lane_group_values[16];
    for (int l = 0; l < 16; l++) lane_group_values[l] = (int32_t)((l * lane_columns) >> shape.group_shift);
    shape.lane_group = _mm512_load_si512(lane_group_values);
    int64_t o = o_begin;
    /* One token: row after row, one contiguous stream for the hardware
     * prefetchers (4 rows side by side measured slower per core); several
     * tokens: 4-row tiles share each weight load among them. */
    if (n_x > 1)
        for (; o + ROWS <= o_end; o += ROWS) int8_tile(bits, gfni, ROWS, n_x, xprep, stride, w, &shape, o, y + o);
    for (; o < o_end; o++) int8_tile(bits, gfni, 1, n_x, xprep, stride, w, &shape, o, y + o);
}

/* 4-bit weights on processors with GFNI. */
AVX512 static void int8_rows_4bit_gfni(int64_t n, const uint8_t *xt, const mlxe_matrix *w, int64_t o_begin,
                                            int64_t o_end, float *yt) {
    if (n == 1) int8_rows(4, 1, 1, xt, w, o_begin, o_end, yt);
    else if (n == 2) int8_rows(4, 1, 2, xt, w, o_begin, o_end, yt);
    else int8_rows(4, 1, 3, xt, w, o_begin, o_end, yt);
}

AVX512 static void int8_rows_plain(int64_t n, const uint8_t *xt, const mlxe_matrix *w, int64_t o_begin, int64_t o_end,
                                   float *yt) {
    if (w->bits == 4) {
        if (n == 1) int8_rows(4, 0, 1, xt, w, o_begin, o_end, yt);
        else if (n == 2) int8_rows(4, 0, 2, xt, w, o_begin, o_end, yt);
        else int8_rows(4, 0, 3, xt, w, o_begin, o_end, yt);
    } else {
        if (n == 1) int8_rows(8, 0, 1, xt, w, o_begin, o_end, yt);
        else if (n == 2) int8_rows(8, 0, 2, xt, w, o_begin, o_end, yt);
        else int8_rows(8, 0, 3, xt, w, o_begin, o_end, yt);
    }
}

void mlxe_avx512_int8_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                               int64_t o_end, float *y) {
    if (w->packed) {
        mlxe_avx512_int8_packed_matmul_x(x_prepared, n_x, w, o_begin, o_end, y);
        return;
    }
    static int has_gfni = -1; /* benign race: every thread computes the same answer */
    if (has_gfni < 0) {
        __builtin_cpu_init();
        has_gfni = __builtin_cpu_supports("gfni");
    }
    const uint8_t *xp = x_prepared;
    const int64_t stride = token_bytes(w->bits, w->cols, w->group_size);
    for (int64_t t0 = 0; t0 < n_x; t0 += 3) {
        int64_t n = n_x - t0 < 3 ? n_x - t0 : 3;
        const uint8_t *xt = xp + t0 * stride;
        float *yt = y + t0 * w->rows;
        if (w->bits == 4 && has_gfni) int8_rows_4bit_gfni(n, xt, w, o_begin, o_end, yt);
        else int8_rows_plain(n, xt, w, o_begin, o_end, yt);
    }
}


/* ---- dense weights (F32, F16, BF16), one token ----
 * One row at a time, front to back: each worker's rows are one contiguous
 * stream, which the hardware prefetchers follow best: BF16 19 GB/s per core
 * against 12-13 for the 4-row tile (bench/decode_matmul.c, one thread;
 * software prefetching lowered it). Four accumulators hide the FMA
 * latency; float32 FMAs on the exact weights as the tiled kernel, only the
 * summation order differs. */

INLINE_AVX512 __m512 load_dense(int kind, const void *row, int64_t i, __mmask16 mask) {
    if (kind == 0) return _mm512_maskz_loadu_ps(mask, (const float *)row + i);
    __m256i halves = _mm256_maskz_loadu_epi16(mask, (const uint16_t *)row + i);
    if (kind == 1) return _mm512_cvtph_ps(halves);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

INLINE_AVX512 void dense_rows(int kind, const float *x, const void *w, int64_t cols, int64_t o_begin, int64_t o_end,
                              float *y) {
    const size_t row_bytes = (size_t)cols * (kind == 0 ? 4 : 2);
    for (int64_t o = o_begin; o < o_end; o++) {
        const char *row = (const char *)w + (size_t)o * row_bytes;
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(),
               acc3 = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 64 <= cols; k += 64) {
            acc0 = _mm512_fmadd_ps(load_dense(kind, row, k, 0xFFFF), _mm512_loadu_ps(x + k), acc0);
            acc1 = _mm512_fmadd_ps(load_dense(kind, row, k + 16, 0xFFFF), _mm512_loadu_ps(x + k + 16), acc1);
            acc2 = _mm512_fmadd_ps(load_dense(kind, row, k + 32, 0xFFFF), _mm512_loadu_ps(x + k + 32), acc2);
            acc3 = _mm512_fmadd_ps(load_dense(kind, row, k + 48, 0xFFFF), _mm512_loadu_ps(x + k + 48), acc3);
        }
        for (; k < cols; k += 16) {
            __mmask16 mask = cols - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - k)) - 1u);
            acc0 = _mm512_fmadd_ps(load_dense(kind, row, k, mask), _mm512_maskz_loadu_ps(mask, x + k), acc0);
        }
        y[o] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc0, acc1), _mm512_add_ps(acc2, acc3)));
    }
}

AVX512 void mlxe_avx512_decode_dense(mlxe_dtype dtype, const float *x, const void *w, int64_t cols, int64_t o_begin,
                                     int64_t o_end, float *y) {
    if (dtype == MLXE_DTYPE_BF16) dense_rows(2, x, w, cols, o_begin, o_end, y);
    else if (dtype == MLXE_DTYPE_F16) dense_rows(1, x, w, cols, o_begin, o_end, y);
    else dense_rows(0, x, w, cols, o_begin, o_end, y);
}
#endif
