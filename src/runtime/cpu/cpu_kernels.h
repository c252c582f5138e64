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
    const char *name;              /* "generic", "avx2", "avx512", "avx512-int8", "avx512-int8-split" */
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
    /* Decode (n_x < MLXE_CPU_INT8_MAX_TOKENS) with activations prepared
     * once per op in a lower precision: decode_x_bytes says how many bytes
     * the prepared activations of n_x tokens take for w (0: w or n_x not
     * covered, use the float kernels), decode_prepare_x prepares them into
     * a 64-byte aligned buffer, and decode_matmul_x computes output rows
     * [o_begin, o_end) from them (y's row stride is w->rows). NULL in
     * tables without them; the avx512-int8 table covers 4/8-bit weights
     * (int8 activations, kernels_avx512_decode.c) and one token against
     * BF16 weights (bf16 activations, kernels_avx512_decode_bf16.c). */
    size_t (*decode_x_bytes)(const mlxe_matrix *w, int64_t n_x);
    bool (*decode_prepare_x)(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer, size_t capacity);
    void (*decode_matmul_x)(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin, int64_t o_end,
                            float *y);
    /* out[i] = silu(gate[i]) * up[i] (out may be gate or up); NULL: libm's expf in cpu_elementwise.c. */
    void (*silu_mul)(const float *gate, const float *up, float *out, int64_t n);
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
    /* The table reads MLX 4/8-bit matrices in the CPU's packed layout
     * (cpu_pack.c: ops->pack_matrix packs them at load only for such
     * tables) in its decode_* and prefill_* entries; everything else in
     * the CPU backend reads a packed matrix through the portable readers
     * below (mlxe_cpu_matrix_row_to_float). */
    bool packs_quantized;
    /* Decode and prefill attention (cpu_attention.c) over one block of n
     * (<= MLXE_CPU_ATTENTION_BLOCK) consecutive cached positions for n_q
     * (1 to MLXE_CPU_ATTENTION_MAX_QUERIES) query heads that share one kv
     * head; q and out hold n_q rows of head_dim floats, keys and values n
     * rows, scores and weights n_q rows of MLXE_CPU_ATTENTION_BLOCK floats.
     * Each cached row is read from memory once for all n_q heads.
     * attention_scores: scores[g][j] = scale * dot(q[g], keys[j]), and
     *   block_max[g] = the largest of scores[g][0 .. n).
     * attention_exp: x[i] = exp(x[i] - shift) for i < n (shift >= every x[i]);
     *   returns their sum.
     * attention_values: out[g][i] += sum over j < n of weights[g][j] * values[j][i]. */
    void (*attention_scores)(const float *q, int n_q, const float *keys, int64_t n, int64_t head_dim, float scale,
                             float *scores, float *block_max);
    float (*attention_exp)(float *x, int64_t n, float shift);
    void (*attention_values)(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                             float *out);
} mlxe_cpu_kernels;

/* The attention kernels' block of positions and most query heads per call. */
#define MLXE_CPU_ATTENTION_BLOCK 64
#define MLXE_CPU_ATTENTION_MAX_QUERIES 8

/* ---- the packed layout of MLX 4/8-bit matrices (cpu_pack.c) ----
 * Tiles of MLXE_CPU_PACK_ROWS rows; per group a MLXE_CPU_PACK_HEADER-byte
 * header (the rows' F16/BF16 scales, then biases) and then 64-byte chunks,
 * each one uint32 word of the group for every row of the tile. */
#define MLXE_CPU_PACK_ROWS 16
#define MLXE_CPU_PACK_HEADER 64
/* w is one the CPU packs (4/8 bits, group 32/64/128, columns a multiple of
 * 32, F16/BF16 scales). */
bool mlxe_cpu_packable(const mlxe_matrix *w);
size_t mlxe_cpu_packed_bytes(const mlxe_matrix *w);
int64_t mlxe_cpu_packed_group_bytes(const mlxe_matrix *w);
int64_t mlxe_cpu_packed_tile_bytes(const mlxe_matrix *w);
/* Word `word` of row `row` as the file stores it, and the row's group values. */
uint32_t mlxe_cpu_packed_word(const mlxe_matrix *w, int64_t row, int64_t word);
float mlxe_cpu_packed_scale(const mlxe_matrix *w, int64_t row, int64_t group);
float mlxe_cpu_packed_bias(const mlxe_matrix *w, int64_t row, int64_t group);
/* Elements [k0, k0 + n) of a row of a packed matrix, dequantized. */
void mlxe_cpu_packed_row_to_float(const mlxe_matrix *w, int64_t row, int64_t k0, int64_t n, float *out);

/* Below this many tokens a matmul is decode-shaped (memory-bound). */
#define MLXE_CPU_INT8_MAX_TOKENS 4

/* From this many tokens a matmul is prefill-shaped (compute-bound). */
#define MLXE_CPU_PREFILL_MIN_TOKENS 4

extern const mlxe_cpu_kernels mlxe_cpu_kernels_generic;
#if defined(__x86_64__)
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx2;
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx512;
/* avx512 with lower-precision activations (the default on these processors; the policy below). */
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx512_int8;
/* avx512-int8 with one-token BF16 rows on hi/lo-split activations
 * (MLXE_CPU_KERNELS=avx512-int8-split: 2^-17 instead of 2^-9 relative). */
extern const mlxe_cpu_kernels mlxe_cpu_kernels_avx512_int8_split;
/* The int8-activation decode entries (kernels_avx512_decode.c). */
size_t mlxe_avx512_int8_x_bytes(const mlxe_matrix *w, int64_t n_x);
bool mlxe_avx512_int8_quantize_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer, size_t capacity);
void mlxe_avx512_int8_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                               int64_t o_end, float *y);
/* The same on a packed matrix (kernels_avx512_decode_packed.c): o_begin a
 * multiple of MLXE_CPU_PACK_ROWS, o_end too or w->rows. */
void mlxe_avx512_int8_packed_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                      int64_t o_end, float *y);
/* One token against dense rows [o_begin, o_end) (y[o], unit stride; kernels_avx512_decode.c). */
void mlxe_avx512_decode_dense(mlxe_dtype dtype, const float *x, const void *w, int64_t cols, int64_t o_begin,
                              int64_t o_end, float *y);
/* One token against BF16 rows with vdpbf16ps (kernels_avx512_decode_bf16.c):
 * the decode_* entries for BF16 weights (bf16-rounded activations; 0 bytes
 * when w is not BF16, n_x != 1 or the processor lacks AVX512_BF16) ... */
size_t mlxe_avx512_bf16_decode_x_bytes(const mlxe_matrix *w, int64_t n_x);
bool mlxe_avx512_bf16_decode_prepare_x(const float *x, int64_t n_x, const mlxe_matrix *w, void *buffer,
                                       size_t capacity);
void mlxe_avx512_bf16_decode_matmul_x(const void *x_prepared, int64_t n_x, const mlxe_matrix *w, int64_t o_begin,
                                      int64_t o_end, float *y);
/* ... and the split-activation kernel of the avx512-int8-split table (~2^-17
 * relative): false when the processor lacks AVX512_BF16 or the row is wider
 * than it handles. */
bool mlxe_avx512_decode_bf16_split(const float *x, const uint16_t *w, int64_t cols, int64_t o_begin, int64_t o_end,
                                   float *y);
/* The attention entries of the AVX2 and AVX-512 tables
 * (kernels_avx2_attention.c, kernels_avx512_attention.c). */
void mlxe_avx2_attention_scores(const float *q, int n_q, const float *keys, int64_t n, int64_t head_dim, float scale,
                                float *scores, float *block_max);
float mlxe_avx2_attention_exp(float *x, int64_t n, float shift);
void mlxe_avx2_attention_values(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                                float *out);
void mlxe_avx512_attention_scores(const float *q, int n_q, const float *keys, int64_t n, int64_t head_dim,
                                  float scale, float *scores, float *block_max);
float mlxe_avx512_attention_exp(float *x, int64_t n, float shift);
void mlxe_avx512_attention_values(const float *weights, int n_q, const float *values, int64_t n, int64_t head_dim,
                                  float *out);
/* kernels_avx512_pointwise.c */
void mlxe_avx512_silu_mul(const float *gate, const float *up, float *out, int64_t n);
#endif

/* The fastest table this processor runs, unless MLXE_CPU_KERNELS says
 * otherwise: generic, avx2, avx512, avx512-int8, avx512-int8-split (each
 * honoured only when the processor has it), or float (the fastest table with float
 * activations).
 *
 * Precision policy. On AVX-512 VNNI processors the avx512-int8 table is
 * chosen automatically and multiplies lower-precision activations, as
 * llama.cpp does for Q4_0/Q8_0 (Q8 activations) and BF16 (BF16 activations):
 * - MLX 4/8-bit weights, decode (fewer than MLXE_CPU_INT8_MAX_TOKENS
 *   tokens): int8 activations per 8 columns and integer dot products; each
 *   output moves by at most sum_k |scale q_k| dx_k / 2 against the exact
 *   product (kernels_avx512_decode.c). ~1.6x (4-bit) and ~1.4x (8-bit) the
 *   float kernels' bandwidth per core. On the default 4-bit model it moves
 *   logits by up to ~3-4% of the largest and decode perplexity by +0.3%
 *   with the packed layout (+1.6% with the row kernel: the int8 roundings
 *   make these model-level figures samples of a chaotic process, see
 *   docs/ARCHITECTURE.md; test_runtime_cpu_int8_model.c prints both).
 *   Matrices the CPU packs at load (cpu_pack.c) go through
 *   kernels_avx512_decode_packed.c, same numerics and bound.
 * - MLX 4/8-bit weights, prefill (MLXE_CPU_PREFILL_MIN_TOKENS tokens or
 *   more): int8 activations per weight group, vpdpbusd GEMM tiles
 *   (kernels_avx512_gemm_int8.c, bound in its comment); BF16 weights,
 *   prefill: activations rounded to BF16, vdpbf16ps (relative 2^-9 of
 *   sum |w x|, kernels_avx512_gemm_bf16.c). ~3-4x the float tiles.
 * - BF16 weights, one token (AVX512_BF16): activations rounded to bf16
 *   once per op (round to nearest even, like the prefill GEMM, llama.cpp's
 *   BF16 path and MLX's bf16 arithmetic), one vdpbf16ps per 32 weights
 *   (kernels_avx512_decode_bf16.c): each output moves by at most
 *   2^-9 sum_k |w_k x_k| beyond float32 summation (denormal bf16 inputs
 *   count as zero: at most 2^-126 sum_k |w_k| more). Per core ~15-20%
 *   faster on the 1B shape than the split below: half the activation
 *   bytes, which must stay in L1 (8192-column rows: 16 instead of 32 KiB).
 *   On the embedded BF16 model it moves logits by up to 0.26 of 53 and
 *   decode perplexity by +0.31% (test_runtime_cpu_int8_model.c prints both).
 *   MLXE_CPU_KERNELS=avx512-int8-split keeps everything else of this table
 *   but splits the activations into two bf16 halves instead (two vdpbf16ps,
 *   2^-17 relative).
 * - Everything else (F32/F16 weights, BF16 at 2-3 tokens, other tables)
 *   multiplies float activations in float32.
 * MLXE_CPU_KERNELS=float selects the fastest float-activation table on any
 * processor; the tests comparing logits with transformers at 1e-4 set it,
 * and the kernel tests check each lower-precision path against its bound. */
const mlxe_cpu_kernels *mlxe_cpu_kernels_select(void);
bool mlxe_cpu_has_avx2(void);
/* AVX-512 F, BW, VL, DQ and VNNI, on top of AVX2/FMA/F16C. */
bool mlxe_cpu_has_avx512(void);

#endif
