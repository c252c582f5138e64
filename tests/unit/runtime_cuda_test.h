/* tests/unit/runtime_cuda_test.h — shared by the test_runtime_cuda_*.c
 * programs: opening the GPU or skipping (with the reason) when there is
 * none, copies between host and device, and the comparison with the CPU
 * implementation, the oracle of every CUDA op. MLXE_REQUIRE_GPU=1 (set by
 * scripts/gpu_check.sh) turns a skip into a failure. */
#ifndef MLXE_TEST_RUNTIME_CUDA_TEST_H
#define MLXE_TEST_RUNTIME_CUDA_TEST_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/device.h"
#include "test_util.h"

typedef struct cuda_rng {
    uint64_t state;
} cuda_rng;

static inline uint64_t cuda_rng_next(cuda_rng *rng) {
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline float cuda_rng_float(cuda_rng *rng, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(cuda_rng_next(rng) >> 11) * 0x1p-53);
}

static inline void cuda_fill(cuda_rng *rng, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = cuda_rng_float(rng, lo, hi);
}

/* n random elements of dtype (F32, F16 or BF16) in [lo, hi). */
static inline void *cuda_random_weights(cuda_rng *rng, mlxe_dtype dtype, size_t n, float lo, float hi) {
    size_t element = dtype == MLXE_DTYPE_F32 ? 4 : 2;
    void *data = malloc(n * element + 16);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) {
        float f = cuda_rng_float(rng, lo, hi);
        if (dtype == MLXE_DTYPE_F32) {
            ((float *)data)[i] = f;
        } else if (dtype == MLXE_DTYPE_F16) {
            _Float16 h = (_Float16)f;
            memcpy((uint16_t *)data + i, &h, 2);
        } else {
            uint32_t word;
            memcpy(&word, &f, 4);
            ((uint16_t *)data)[i] = (uint16_t)(word >> 16);
        }
    }
    return data;
}

static inline const char *cuda_dtype_name(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F16 ? "F16" : dtype == MLXE_DTYPE_BF16 ? "BF16" : dtype == MLXE_DTYPE_F32 ? "F32" : "?";
}

/* The first GPU, or a skipped test saying why there is none. */
static inline mlxe_device *cuda_device_or_skip(void) {
    mlxe_device *dev = NULL;
    mlxe_error err;
    if (mlxe_device_create_cuda(0, &dev, &err) == MLXE_OK) return dev;
    const char *require = getenv("MLXE_REQUIRE_GPU");
    if (require && strcmp(require, "1") == 0) fail_msg("MLXE_REQUIRE_GPU=1 but: %s", err.message);
    print_message("[  SKIP    ] no usable GPU: %s\n", err.message);
    skip();
    return NULL;
}

static inline mlxe_device *cuda_cpu_device(void) {
    mlxe_device *dev = NULL;
    mlxe_error err;
    if (mlxe_device_create_cpu(1, &dev, &err) != MLXE_OK) fail_msg("CPU device: %s", err.message);
    return dev;
}

/* Device memory holding a copy of bytes at host (bytes may be 0: room only). */
static inline void *cuda_to_device(mlxe_device *dev, const void *host, size_t bytes) {
    const mlxe_ops *ops = mlxe_device_ops(dev);
    void *p = NULL;
    mlxe_error err;
    if (ops->alloc(dev, bytes, &p, &err) != MLXE_OK) fail_msg("alloc %zu: %s", bytes, err.message);
    if (host) ops->upload(dev, p, host, bytes);
    return p;
}

static inline void *cuda_weights_to_device(mlxe_device *dev, const void *host, size_t bytes) {
    void *p = NULL;
    mlxe_error err;
    if (mlxe_device_ops(dev)->upload_weights(dev, host, bytes, &p, &err) != MLXE_OK)
        fail_msg("upload_weights %zu: %s", bytes, err.message);
    return p;
}

static inline void cuda_expect_synchronized(mlxe_device *dev) {
    mlxe_error err;
    if (mlxe_device_ops(dev)->synchronize(dev, &err) != MLXE_OK) fail_msg("GPU error: %s", err.message);
}

/* ‖got − want‖ / ‖want‖ <= tolerance, no NaN, every element written. */
static inline void cuda_assert_close(const float *got, const float *want, size_t n, double tolerance,
                                     const char *what) {
    double diff = 0.0, norm = 0.0, worst = 0.0;
    size_t worst_index = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(got[i]) || isnan(want[i])) fail_msg("%s: NaN at %zu (got %g, want %g)", what, i, got[i], want[i]);
        double d = (double)got[i] - (double)want[i];
        diff += d * d;
        norm += (double)want[i] * want[i];
        if (fabs(d) > worst) {
            worst = fabs(d);
            worst_index = i;
        }
    }
    double relative = norm > 0 ? sqrt(diff / norm) : sqrt(diff);
    if (!(relative <= tolerance))
        fail_msg("%s: relative error %.3g > %.3g (worst at %zu: got %.9g, want %.9g)", what, relative, tolerance,
                 worst_index, got[worst_index], want[worst_index]);
}

#endif
