/* runtime/cpu/cpu_matmul.c — the matmul op: splits the output features
 * (weight rows) among the workers in blocks of 4 (the kernels' register tile)
 * and runs the kernel for the weight's dtype on each share. Splitting over
 * weight rows means every worker streams a disjoint part of the matrix, which
 * is what bounds decode, and each reuses its rows for all the batch's tokens. */
#include "runtime/cpu/cpu_ops.h"

/* Weight rows per scheduling block; a multiple of the kernels' tile. */
#define ROW_BLOCK 4

typedef struct matmul_job {
    const mlxe_cpu_kernels *kernels;
    const float *x;
    int64_t n_rows;
    const mlxe_matrix *w;
    float *y;
} matmul_job;

static void matmul_worker(void *ctx, int index, int count) {
    const matmul_job *job = ctx;
    const mlxe_matrix *w = job->w;
    int64_t n_blocks = (w->rows + ROW_BLOCK - 1) / ROW_BLOCK;
    long begin, end;
    mlxe_split_range((long)n_blocks, index, count, &begin, &end);
    int64_t o_begin = (int64_t)begin * ROW_BLOCK;
    int64_t o_end = (int64_t)end * ROW_BLOCK;
    if (o_end > w->rows) o_end = w->rows;
    if (o_begin >= o_end) return;
    if (w->bits != 0) {
        if (job->kernels->matmul_quantized && (w->bits == 4 || w->bits == 8))
            job->kernels->matmul_quantized(job->x, job->n_rows, w, o_begin, o_end, job->y);
        else
            mlxe_cpu_matmul_quantized(job->kernels, job->x, job->n_rows, w, o_begin, o_end, job->y);
        return;
    }
    mlxe_matmul_kernel kernel = w->dtype == MLXE_DTYPE_F16    ? job->kernels->matmul_f16
                                : w->dtype == MLXE_DTYPE_BF16 ? job->kernels->matmul_bf16
                                                              : job->kernels->matmul_f32;
    kernel(job->x, job->n_rows, w->data, w->cols, o_begin, o_end, job->y, w->rows);
}

void mlxe_cpu_matmul(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y) {
    if (n_rows <= 0 || w->rows <= 0) return;
    matmul_job job = {mlxe_cpu_kernels_of(dev), x, n_rows, w, y};
    /* Below ~64K multiply-adds the hand-off to the workers costs more than it saves. */
    bool parallel = n_rows * w->rows * w->cols >= 65536 && w->rows >= 2 * ROW_BLOCK;
    mlxe_cpu_run(dev, parallel, matmul_worker, &job);
}
