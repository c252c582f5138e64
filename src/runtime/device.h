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

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/status.h"
#include "runtime/ops.h"

/* A CPU device with n_threads workers (n_threads <= 0: the thread pool
 * default, MLXE_NUM_THREADS or the CPUs this process may use). Kernels are
 * chosen at run time: AVX2/FMA/F16C when the processor has them, else
 * portable C; MLXE_CPU_KERNELS=generic forces the portable path. */
mlxe_status mlxe_device_create_cpu(int n_threads, mlxe_device **out, mlxe_error *err);
/* NVIDIA GPU number `ordinal` (0 = the first, as CUDA counts them). Fails
 * with MLXE_ERR_DEVICE and a message saying why the GPU cannot be used:
 * CUDA not compiled in, no NVIDIA driver, no such GPU, a GPU older than
 * compute capability 8.0, or the driver failing to start it. Never crashes
 * on a machine without a GPU. */
mlxe_status mlxe_device_create_cuda(int ordinal, mlxe_device **out, mlxe_error *err);
/* A device from its spelling on the command line: "cpu", "cuda" (= "cuda:0"),
 * "cuda:N", or "auto" (cuda:0 when usable, else the CPU, logging at info
 * level why the GPU was not used). NULL or "" mean "auto". CPU devices get
 * the default thread count. */
mlxe_status mlxe_device_create(const char *spec, mlxe_device **out, mlxe_error *err);
/* Same, with n_threads for a CPU device (<= 0: the default). */
mlxe_status mlxe_device_create_threads(const char *spec, int n_threads, mlxe_device **out, mlxe_error *err);
/* Frees the device and its threads. Accepts NULL. */
void mlxe_device_free(mlxe_device *dev);

/* The ops table; valid for the device's lifetime. */
const mlxe_ops *mlxe_device_ops(const mlxe_device *dev);
/* e.g. "cpu-avx2", "cpu-generic" (the ops table's name). */
const char *mlxe_device_name(const mlxe_device *dev);
/* Worker threads the device computes with (1 for a single-threaded device). */
int mlxe_device_threads(const mlxe_device *dev);
/* Whether the device computes from its own memory (a GPU): weights must be
 * copied there with ops->upload_weights; false for the CPU. */
bool mlxe_device_has_own_memory(const mlxe_device *dev);
/* Free and total bytes of the device's own memory, the free part capped by
 * MLXE_GPU_MEMORY_LIMIT_MB when set; false (and zeros) for the CPU or when
 * the driver cannot tell. */
bool mlxe_device_memory(const mlxe_device *dev, size_t *free_bytes, size_t *total_bytes);
/* What the device is, for logs: the GPU's name ("NVIDIA H100 80GB HBM3"),
 * else the ops table's name. */
const char *mlxe_device_description(const mlxe_device *dev);

#endif
