/* mlxengine/version.h — the library's version and how it was built. */
#ifndef MLXENGINE_VERSION_H
#define MLXENGINE_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

#define MLXE_VERSION_MAJOR 0
#define MLXE_VERSION_MINOR 1
#define MLXE_VERSION_PATCH 0

/* "0.1.0". */
const char *mlxe_version_string(void);

typedef struct mlxe_build_info {
    const char *version;        /* as mlxe_version_string() */
    const char *git_revision;   /* short hash at build time, or "unknown" */
    const char *compiler;       /* e.g. "gcc 12.2.0" */
    const char *build_type;     /* CMake build type, e.g. "Release" */
    int cuda_compiled;          /* 1 when built with the CUDA backend */
    const char *sanitizers;     /* e.g. "address,undefined" or "none" */
    const char *simd;           /* vector extensions the C code was compiled for, e.g. "avx2 fma f16c" or "baseline (sse2)" */
} mlxe_build_info;

/* Facts fixed at build time. The pointers are static. */
const mlxe_build_info *mlxe_build_info_get(void);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
