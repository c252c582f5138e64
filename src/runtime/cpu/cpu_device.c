/* runtime/cpu/cpu_device.c — the CPU device: its thread pool, the kernel
 * table chosen for this processor, host memory, and the ops tables (one per
 * kernel set, so the name tells which is in use). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "runtime/cpu/cpu_ops.h"

/* Cache-line alignment keeps SIMD loads of activations within one line. */
#define CPU_ALIGNMENT 64

static mlxe_status cpu_alloc(mlxe_device *dev, size_t bytes, void **out, mlxe_error *err) {
    size_t rounded = bytes == 0 ? CPU_ALIGNMENT : (bytes + CPU_ALIGNMENT - 1) / CPU_ALIGNMENT * CPU_ALIGNMENT;
    if (rounded < bytes) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "cpu alloc: %zu bytes is too large", bytes);
    void *p = aligned_alloc(CPU_ALIGNMENT, rounded);
    if (!p)
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY,
                              "out of memory allocating %zu bytes of activations (try a smaller context or batch)", bytes);
    memset(p, 0, rounded);
    *out = p;
    return MLXE_OK;
}

static void cpu_free(mlxe_device *dev, void *ptr) {
    free(ptr);
}

static void cpu_copy(mlxe_device *dev, void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

/* Weights are used in place from the mapping. */
static mlxe_status cpu_upload_weights(mlxe_device *dev, const void *host, size_t bytes, void **device_ptr,
                                      mlxe_error *err) {
    *device_ptr = (void *)host;
    return MLXE_OK;
}

static void cpu_free_weights(mlxe_device *dev, void *device_ptr) {
}

/* Every CPU op has finished when it returns. */
static mlxe_status cpu_synchronize(mlxe_device *dev, mlxe_error *err) {
    return MLXE_OK;
}

#define CPU_OPS_TABLE(table_name, display_name)   \
    static const mlxe_ops table_name = {          \
        .name = display_name,                     \
        .alloc = cpu_alloc,                       \
        .free = cpu_free,                         \
        .upload = cpu_copy,                       \
        .download = cpu_copy,                     \
        .matmul = mlxe_cpu_matmul,                \
        .add_bias = mlxe_cpu_add_bias,            \
        .embedding = mlxe_cpu_embedding,          \
        .rms_norm = mlxe_cpu_rms_norm,            \
        .rope = mlxe_cpu_rope,                    \
        .kv_store = mlxe_cpu_kv_store,            \
        .attention = mlxe_cpu_attention,          \
        .silu_mul = mlxe_cpu_silu_mul,            \
        .add = mlxe_cpu_add,                      \
        .argmax = mlxe_cpu_argmax,                \
        .upload_weights = cpu_upload_weights,     \
        .free_weights = cpu_free_weights,         \
        .synchronize = cpu_synchronize,           \
        .pack_matrix = mlxe_cpu_pack_matrix,      \
        .matmul_multi = mlxe_cpu_matmul_multi,    \
        .matmul_swiglu = mlxe_cpu_matmul_swiglu,  \
    }

CPU_OPS_TABLE(cpu_ops_generic, "cpu-generic");
#if defined(__x86_64__)
CPU_OPS_TABLE(cpu_ops_avx2, "cpu-avx2");
CPU_OPS_TABLE(cpu_ops_avx512, "cpu-avx512");
CPU_OPS_TABLE(cpu_ops_avx512_int8, "cpu-avx512-int8");
CPU_OPS_TABLE(cpu_ops_avx512_int8_split, "cpu-avx512-int8-split");
#endif

mlxe_status mlxe_cpu_device_init(mlxe_device *dev, int n_threads, mlxe_error *err) {
    if (n_threads <= 0) n_threads = mlxe_thread_pool_default_size();
    dev->kind = MLXE_DEVICE_CPU;
    dev->n_threads = n_threads;
    const mlxe_cpu_kernels *kernels = mlxe_cpu_kernels_select();
    dev->cpu_kernels = kernels;
    dev->ops = &cpu_ops_generic;
#if defined(__x86_64__)
    if (kernels == &mlxe_cpu_kernels_avx2) dev->ops = &cpu_ops_avx2;
    if (kernels == &mlxe_cpu_kernels_avx512) dev->ops = &cpu_ops_avx512;
    if (kernels == &mlxe_cpu_kernels_avx512_int8) dev->ops = &cpu_ops_avx512_int8;
    if (kernels == &mlxe_cpu_kernels_avx512_int8_split) dev->ops = &cpu_ops_avx512_int8_split;
#endif
    if (n_threads > 1) {
        mlxe_status status = mlxe_thread_pool_create(n_threads, &dev->pool, err);
        if (status != MLXE_OK) {
            mlxe_error_prefix(err, "creating the CPU device");
            return status;
        }
    }
    MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "device %s with %d thread%s", dev->ops->name, n_threads, n_threads == 1 ? "" : "s");
    return MLXE_OK;
}

void mlxe_cpu_device_release(mlxe_device *dev) {
    mlxe_thread_pool_free(dev->pool);
    dev->pool = NULL;
}
