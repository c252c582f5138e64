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

bool mlxe_cpu_has_avx512(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return mlxe_cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni");
#else
    return false;
#endif
}

/* The fastest table with float activations (exact quantized kernels). */
static const mlxe_cpu_kernels *fastest_float(bool has_avx2, bool has_avx512) {
#if defined(__x86_64__)
    if (has_avx512) return &mlxe_cpu_kernels_avx512;
    if (has_avx2) return &mlxe_cpu_kernels_avx2;
#else
    (void)has_avx2;
    (void)has_avx512;
#endif
    return &mlxe_cpu_kernels_generic;
}

const mlxe_cpu_kernels *mlxe_cpu_kernels_select(void) {
    const char *request = getenv("MLXE_CPU_KERNELS");
    bool has_avx2 = mlxe_cpu_has_avx2(), has_avx512 = mlxe_cpu_has_avx512();
    if (request && *request && strcmp(request, "auto") != 0) {
        if (strcmp(request, "generic") == 0) {
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: generic (MLXE_CPU_KERNELS=generic)");
            return &mlxe_cpu_kernels_generic;
        }
        if (strcmp(request, "float") == 0) {
            const mlxe_cpu_kernels *chosen = fastest_float(has_avx2, has_avx512);
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: %s (MLXE_CPU_KERNELS=float)", chosen->name);
            return chosen;
        }
#if defined(__x86_64__)
        if (strcmp(request, "avx2") == 0 && has_avx2) {
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: avx2 (MLXE_CPU_KERNELS=avx2)");
            return &mlxe_cpu_kernels_avx2;
        }
        if (strcmp(request, "avx512") == 0 && has_avx512) {
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: avx512 (MLXE_CPU_KERNELS=avx512)");
            return &mlxe_cpu_kernels_avx512;
        }
        if (strcmp(request, "avx512-int8") == 0 && has_avx512) {
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: avx512-int8 (MLXE_CPU_KERNELS=avx512-int8)");
            return &mlxe_cpu_kernels_avx512_int8;
        }
        if (strcmp(request, "avx512-int8-split") == 0 && has_avx512) {
            MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: avx512-int8-split (MLXE_CPU_KERNELS=avx512-int8-split)");
            return &mlxe_cpu_kernels_avx512_int8_split;
        }
#endif
        bool wants_avx512 = strcmp(request, "avx512") == 0 || strcmp(request, "avx512-int8") == 0 ||
                            strcmp(request, "avx512-int8-split") == 0;
        if (strcmp(request, "avx2") != 0 && !wants_avx512)
            MLXE_WARN(MLXE_LOG_CAT_RUNTIME,
                      "MLXE_CPU_KERNELS=%s is not known (use generic, avx2, avx512, avx512-int8, avx512-int8-split, "
                      "float or auto); "
                      "choosing automatically",
                      request);
        else if (strcmp(request, "avx2") == 0)
            MLXE_WARN(MLXE_LOG_CAT_RUNTIME, "MLXE_CPU_KERNELS=avx2 but this processor lacks AVX2/FMA/F16C; using generic kernels");
        else if (!has_avx512)
            MLXE_WARN(MLXE_LOG_CAT_RUNTIME,
                      "MLXE_CPU_KERNELS=%s but this processor lacks AVX-512 F/BW/VL/DQ/VNNI; choosing automatically",
                      request);
    }
#if defined(__x86_64__)
    if (has_avx512) {
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME,
                   "cpu kernels: avx512-int8 (processor has AVX-512 F/BW/VL/DQ/VNNI; MLXE_CPU_KERNELS=float for "
                   "float activations)");
        return &mlxe_cpu_kernels_avx512_int8;
    }
    if (has_avx2) {
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: avx2 (processor has AVX2, FMA and F16C)");
        return &mlxe_cpu_kernels_avx2;
    }
#endif
    MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "cpu kernels: generic (no AVX2/FMA/F16C on this processor)");
    return &mlxe_cpu_kernels_generic;
}
