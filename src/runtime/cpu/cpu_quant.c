/* runtime/cpu/cpu_quant.c — matmul against an MLX affine-quantized matrix,
 * portable: a chunk of one weight row is dequantized into a stack buffer and
 * dotted (with the chosen kernel) with up to TOKEN_TILE tokens, so each
 * packed weight is unpacked once per tile and the matrix is never expanded.
 * A SIMD dequantizing dot product is future work. */
#include "runtime/cpu/cpu_ops.h"

/* A multiple of every MLX group size (32, 64, 128). */
#define CHUNK 256
#define TOKEN_TILE 8

void mlxe_cpu_matmul_quantized(const mlxe_cpu_kernels *kernels, const float *x, int64_t n_x, const mlxe_matrix *w,
                               int64_t o_begin, int64_t o_end, float *y) {
    float buffer[CHUNK];
    const int64_t cols = w->cols;
    for (int64_t o = o_begin; o < o_end; o++) {
        for (int64_t r0 = 0; r0 < n_x; r0 += TOKEN_TILE) {
            int64_t tile = n_x - r0 < TOKEN_TILE ? n_x - r0 : TOKEN_TILE;
            float acc[TOKEN_TILE] = {0};
            for (int64_t k0 = 0; k0 < cols; k0 += CHUNK) {
                int64_t n = cols - k0 < CHUNK ? cols - k0 : CHUNK;
                mlxe_cpu_matrix_row_to_float(w, o, k0, n, buffer);
                for (int64_t t = 0; t < tile; t++) acc[t] += kernels->dot(buffer, x + (r0 + t) * cols + k0, n);
            }
            for (int64_t t = 0; t < tile; t++) y[(r0 + t) * w->rows + o] = acc[t];
        }
    }
}
