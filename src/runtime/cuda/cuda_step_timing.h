/* runtime/cuda/cuda_step_timing.h — MLXE_CUDA_STEP_TIMING=1: the GPU's
 * time in each replayed decode graph against the host's period between
 * replays, so the share of a decode step the GPU waits for the host (the
 * token copied back, the next launch) can be read off (docs/CUDA.md,
 * version 10). Reported in the runtime log at info level
 * (MLXE_LOG=runtime=info) every 128 replays. */
#ifndef MLXE_RUNTIME_CUDA_STEP_TIMING_H
#define MLXE_RUNTIME_CUDA_STEP_TIMING_H

#include <stdbool.h>

#include <cuda_runtime_api.h>

typedef struct mlxe_cuda_step_timing {
    bool on;
    cudaEvent_t start[2], stop[2]; /* the last two replays' brackets */
    long replays;
    double last_launch_seconds;
    double gpu_ms, period_ms; /* sums since the last report */
    int summed;
} mlxe_cuda_step_timing;

/* Reads MLXE_CUDA_STEP_TIMING; off (and nothing allocated) unless "1". */
void mlxe_cuda_step_timing_init(mlxe_cuda_step_timing *t);
/* Around each cudaGraphLaunch on stream: before accounts the previous
 * replay (its events have fired: the host read its token since) and
 * records this one's start; after records its end. */
void mlxe_cuda_step_timing_before(mlxe_cuda_step_timing *t, cudaStream_t stream, const char *device_name);
void mlxe_cuda_step_timing_after(mlxe_cuda_step_timing *t, cudaStream_t stream);
void mlxe_cuda_step_timing_free(mlxe_cuda_step_timing *t);

#endif
