/* runtime/device.c — creating devices and reaching their ops table; the
 * backend-specific work is in cpu/ (and cuda/ later). */
#include "runtime/device.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "runtime/cpu/cpu_ops.h"
#include "runtime/device_internal.h"
#if MLXE_CUDA_ENABLED
#include "runtime/cuda/cuda_internal.h"
#endif

mlxe_status mlxe_device_create_cpu(int n_threads, mlxe_device **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_device_create_cpu: out is NULL");
    *out = NULL;
    mlxe_device *dev = calloc(1, sizeof *dev);
    if (!dev) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating the CPU device");
    mlxe_status status = mlxe_cpu_device_init(dev, n_threads, err);
    if (status != MLXE_OK) {
        free(dev);
        return status;
    }
    *out = dev;
    return MLXE_OK;
}

mlxe_status mlxe_device_create_cuda(int ordinal, mlxe_device **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_device_create_cuda: out is NULL");
    *out = NULL;
    if (ordinal < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "CUDA device number %d is negative; use cuda:0, cuda:1, ...",
                              ordinal);
#if MLXE_CUDA_ENABLED
    mlxe_device *dev = calloc(1, sizeof *dev);
    if (!dev) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating the CUDA device");
    mlxe_status status = mlxe_cuda_device_init(dev, ordinal, err);
    if (status != MLXE_OK) {
        free(dev);
        return status;
    }
    *out = dev;
    return MLXE_OK;
#else
    return mlxe_error_set(err, MLXE_ERR_DEVICE,
                          "CUDA is not compiled into this build of mlxengine (nvcc was not found when it was "
                          "configured); rebuild with the CUDA toolkit and -DMLXE_CUDA=ON, or use the CPU");
#endif
}

mlxe_status mlxe_device_create(const char *spec, mlxe_device **out, mlxe_error *err) {
    return mlxe_device_create_threads(spec, 0, out, err);
}

mlxe_status mlxe_device_create_threads(const char *spec, int n_threads, mlxe_device **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_device_create: out is NULL");
    *out = NULL;
    if (!spec || !*spec || strcmp(spec, "auto") == 0) {
        mlxe_error cuda_err;
        if (mlxe_device_create_cuda(0, out, &cuda_err) == MLXE_OK) return MLXE_OK;
        MLXE_INFO(MLXE_LOG_CAT_RUNTIME, "running on the CPU: %s", cuda_err.message);
        return mlxe_device_create_cpu(n_threads, out, err);
    }
    if (strcmp(spec, "cpu") == 0) return mlxe_device_create_cpu(n_threads, out, err);
    if (strcmp(spec, "cuda") == 0) return mlxe_device_create_cuda(0, out, err);
    if (strncmp(spec, "cuda:", 5) == 0 && spec[5] >= '0' && spec[5] <= '9') {
        char *end = NULL;
        errno = 0;
        long ordinal = strtol(spec + 5, &end, 10);
        if (errno == 0 && *end == '\0' && ordinal <= 1024) return mlxe_device_create_cuda((int)ordinal, out, err);
    }
    return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                          "unknown device \"%s\"; use cpu, cuda, cuda:N (N = 0, 1, ...) or auto", spec);
}

void mlxe_device_free(mlxe_device *dev) {
    if (!dev) return;
    if (dev->kind == MLXE_DEVICE_CPU) mlxe_cpu_device_release(dev);
#if MLXE_CUDA_ENABLED
    if (dev->kind == MLXE_DEVICE_CUDA) mlxe_cuda_device_release(dev);
#endif
    free(dev);
}

const mlxe_ops *mlxe_device_ops(const mlxe_device *dev) {
    return dev ? dev->ops : NULL;
}

const char *mlxe_device_name(const mlxe_device *dev) {
    return dev && dev->ops ? dev->ops->name : "none";
}

int mlxe_device_threads(const mlxe_device *dev) {
    return dev ? dev->n_threads : 0;
}

bool mlxe_device_has_own_memory(const mlxe_device *dev) {
    return dev && dev->kind != MLXE_DEVICE_CPU;
}

bool mlxe_device_memory(const mlxe_device *dev, size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = *total_bytes = 0;
    if (!mlxe_device_has_own_memory(dev)) return false;
#if MLXE_CUDA_ENABLED
    if (dev->kind == MLXE_DEVICE_CUDA && !mlxe_cuda_memory_info(dev, free_bytes, total_bytes)) return false;
#endif
    /* MLXE_GPU_MEMORY_LIMIT_MB caps what counts as free: a share of a GPU
     * used by other processes, and the tests of the refusals below. */
    const char *limit = getenv("MLXE_GPU_MEMORY_LIMIT_MB");
    if (limit && *limit) {
        char *end = NULL;
        unsigned long long mb = strtoull(limit, &end, 10);
        if (end && *end == '\0' && mb < (SIZE_MAX >> 20) && ((size_t)mb << 20) < *free_bytes)
            *free_bytes = (size_t)mb << 20;
    }
    return true;
}

const char *mlxe_device_description(const mlxe_device *dev) {
#if MLXE_CUDA_ENABLED
    if (dev && dev->kind == MLXE_DEVICE_CUDA) return mlxe_cuda_state_of(dev)->gpu_name;
#endif
    return mlxe_device_name(dev);
}
