/* runtime/cuda/cuda_step_timing.c — see cuda_step_timing.h. */
#include "runtime/cuda/cuda_step_timing.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log_internal.h"

enum { kReportEvery = 128 };

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void mlxe_cuda_step_timing_init(mlxe_cuda_step_timing *t) {
    memset(t, 0, sizeof *t);
    const char *value = getenv("MLXE_CUDA_STEP_TIMING");
    if (!value || strcmp(value, "1") != 0) return;
    for (int i = 0; i < 2; i++)
        if (cudaEventCreate(&t->start[i]) != cudaSuccess || cudaEventCreate(&t->stop[i]) != cudaSuccess) {
            cudaGetLastError();
            mlxe_cuda_step_timing_free(t);
            return;
        }
    t->on = true;
}

void mlxe_cuda_step_timing_before(mlxe_cuda_step_timing *t, cudaStream_t stream, const char *device_name) {
    if (!t->on) return;
    const double now = now_seconds();
    if (t->replays > 0) {
        const int previous = (int)((t->replays - 1) % 2);
        float ms = 0.0f;
        if (cudaEventSynchronize(t->stop[previous]) == cudaSuccess &&
            cudaEventElapsedTime(&ms, t->start[previous], t->stop[previous]) == cudaSuccess) {
            t->gpu_ms += ms;
            t->period_ms += (now - t->last_launch_seconds) * 1e3;
            t->summed++;
        } else {
            cudaGetLastError();
        }
        if (t->summed == kReportEvery) {
            const double gpu_us = t->gpu_ms * 1e3 / t->summed, period_us = t->period_ms * 1e3 / t->summed;
            MLXE_INFO(MLXE_LOG_CAT_RUNTIME,
                      "%s: decode graphs: %.1f us on the GPU per replay, %.1f us between replays (%.1f us, %.1f%% "
                      "outside the graph; %d replays)",
                      device_name, gpu_us, period_us, period_us - gpu_us,
                      period_us > 0 ? 100.0 * (period_us - gpu_us) / period_us : 0.0, t->summed);
            t->gpu_ms = t->period_ms = 0.0;
            t->summed = 0;
        }
    }
    t->last_launch_seconds = now;
    cudaEventRecord(t->start[t->replays % 2], stream);
}

void mlxe_cuda_step_timing_after(mlxe_cuda_step_timing *t, cudaStream_t stream) {
    if (!t->on) return;
    cudaEventRecord(t->stop[t->replays % 2], stream);
    t->replays++;
}

void mlxe_cuda_step_timing_free(mlxe_cuda_step_timing *t) {
    for (int i = 0; i < 2; i++) {
        if (t->start[i]) cudaEventDestroy(t->start[i]);
        if (t->stop[i]) cudaEventDestroy(t->stop[i]);
    }
    memset(t, 0, sizeof *t);
}
