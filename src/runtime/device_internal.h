/* runtime/device_internal.h — the device struct, shared by the backends.
 *
 * Each backend (cpu/ now, cuda/ later) fills one of these; the ops receive
 * the device pointer and reach their own state through it. */
#ifndef MLXE_RUNTIME_DEVICE_INTERNAL_H
#define MLXE_RUNTIME_DEVICE_INTERNAL_H

#include "base/thread_pool.h"
#include "runtime/device.h"

typedef enum mlxe_device_kind {
    MLXE_DEVICE_CPU = 1,
    MLXE_DEVICE_CUDA = 2,
} mlxe_device_kind;

struct mlxe_device {
    mlxe_device_kind kind;
    const mlxe_ops *ops;
    int n_threads;
    mlxe_thread_pool *pool;      /* CPU: the workers (NULL when single-threaded) */
    const void *cpu_kernels;     /* CPU: the kernel table in use (cpu/cpu_kernels.h) */
    void *backend;               /* other backends' private state */
};

#endif
