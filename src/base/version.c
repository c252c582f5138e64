/* base/version.c — version string and build facts (filled in by CMake). */
#include "mlxengine/version.h"

#include "base/build_config.h"

#define MLXE_STR2(x) #x
#define MLXE_STR(x) MLXE_STR2(x)

const char *mlxe_version_string(void) {
    return MLXE_STR(MLXE_VERSION_MAJOR) "." MLXE_STR(MLXE_VERSION_MINOR) "." MLXE_STR(MLXE_VERSION_PATCH);
}

/* The compiler's target macros: what the library's C code may use without a
 * run-time check (-march=native with MLXE_NATIVE=ON, else the baseline). */
#if defined(__AVX512F__)
#define MLXE_SIMD_X86_512 " avx512f"
#else
#define MLXE_SIMD_X86_512 ""
#endif
#if defined(__AVX2__)
#define MLXE_SIMD_X86_AVX2 " avx2"
#else
#define MLXE_SIMD_X86_AVX2 ""
#endif
#if defined(__FMA__)
#define MLXE_SIMD_X86_FMA " fma"
#else
#define MLXE_SIMD_X86_FMA ""
#endif
#if defined(__F16C__)
#define MLXE_SIMD_X86_F16C " f16c"
#else
#define MLXE_SIMD_X86_F16C ""
#endif
#if defined(__x86_64__)
#if defined(__AVX2__) || defined(__AVX512F__) || defined(__FMA__) || defined(__F16C__)
#define MLXE_SIMD_NAME "x86-64:" MLXE_SIMD_X86_512 MLXE_SIMD_X86_AVX2 MLXE_SIMD_X86_FMA MLXE_SIMD_X86_F16C
#else
#define MLXE_SIMD_NAME "x86-64: baseline (sse2)"
#endif
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#define MLXE_SIMD_NAME "aarch64: neon dotprod"
#elif defined(__aarch64__)
#define MLXE_SIMD_NAME "aarch64: neon"
#else
#define MLXE_SIMD_NAME "generic"
#endif

const mlxe_build_info *mlxe_build_info_get(void) {
    static const mlxe_build_info info = {
        .version = MLXE_STR(MLXE_VERSION_MAJOR) "." MLXE_STR(MLXE_VERSION_MINOR) "." MLXE_STR(MLXE_VERSION_PATCH),
        .git_revision = MLXE_BUILD_GIT_REVISION,
        .compiler = MLXE_BUILD_COMPILER,
        .build_type = MLXE_BUILD_TYPE,
        .cuda_compiled = MLXE_BUILD_CUDA,
        .sanitizers = MLXE_BUILD_SANITIZERS,
        .simd = MLXE_SIMD_NAME,
    };
    return &info;
}
