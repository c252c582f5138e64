/* runtime/device.h — creating a compute device and reaching its ops table.
 *
 * A device owns whatever a backend needs to run the ops of runtime/ops.h
 * (the CPU: a thread pool and the kernels chosen for this processor). Models
 * hold a device pointer and call mlxe_device_ops(dev)->op(dev, ...).
 *
 * Thread-safety: create/free from one thread; one model forward at a time per
 * device (the ops are not reentrant on the same device). */
#ifndef MLXE_RUNTIME_DEVICE_H
#define MLXE_RUNTIME_DEVICE_H

#include "mlxengine/status.h"
#include "runtime/ops.h"

/* A CPU device with n_threads workers (n_threads <= 0: the thread pool
 * default, MLXE_NUM_THREADS or the CPUs this process may use). Kernels are
 * chosen at run time: AVX2/FMA/F16C when the processor has them, else
 * portable C; MLXE_CPU_KERNELS=generic forces the portable path. */
mlxe_status mlxe_device_create_cpu(int n_threads, mlxe_device **out, mlxe_error *err);
/* Frees the device and its threads. Accepts NULL. */
void mlxe_device_free(mlxe_device *dev);

/* The ops table; valid for the device's lifetime. */
const mlxe_ops *mlxe_device_ops(const mlxe_device *dev);
/* e.g. "cpu-avx2", "cpu-generic" (the ops table's name). */
const char *mlxe_device_name(const mlxe_device *dev);
/* Worker threads the device computes with (1 for a single-threaded device). */
int mlxe_device_threads(const mlxe_device *dev);

#endif
