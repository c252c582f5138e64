/* runtime/device.c — creating devices and reaching their ops table; the
 * backend-specific work is in cpu/ (and cuda/ later). */
#include "runtime/device.h"

#include <stdlib.h>

#include "base/error.h"
#include "runtime/cpu/cpu_ops.h"
#include "runtime/device_internal.h"

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

void mlxe_device_free(mlxe_device *dev) {
    if (!dev) return;
    if (dev->kind == MLXE_DEVICE_CPU) mlxe_cpu_device_release(dev);
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
