/* runtime/cpu/cpu_kernels.c — choosing the kernel table for this processor
 * (and honouring MLXE_CPU_KERNELS, which tests use to compare the paths). */
#include "runtime/cpu/cpu_kernels.h"

#include <stdlib.h>
#include <string.h>

#include "base/log_internal.h"

bool mlxe_cpu_has_avx2(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

const mlxe_cpu_kernels *mlxe_cpu_kernels_select(void) {
    const char *request = getenv("MLXE_CPU_KERNELS");
    bool has_avx2 = mlxe_cpu_has_avx2();
    if (request && *request && strcmp(request, "auto") != 0) {
        if (strcmp(request, "generic") == 0) {
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: generic (MLXE_CPU_KERNELS=generic)");
            return &mlxe_cpu_kernels_generic;
        }
        if (strcmp(request, "avx2") != 0)
            MLXE_WARN(MLXE_LOG_CAT_RUNTIME, "MLXE_CPU_KERNELS=%s is not known (use generic, avx2 or auto); choosing automatically",
                      request);
        else if (!has_avx2)
            MLXE_WARN(MLXE_LOG_CAT_RUNTIME, "MLXE_CPU_KERNELS=avx2 but this processor lacks AVX2/FMA/F16C; using generic kernels");
    }
#if defined(__x86_64__)
    if (has_avx2) {
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: avx2 (processor has AVX2, FMA and F16C)");
        return &mlxe_cpu_kernels_avx2;
    }
#endif
    MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: generic (no AVX2/FMA/F16C on this processor)");
    return &mlxe_cpu_kernels_generic;
}
