/* runtime/cuda/cuda_blas.c — cuBLAS opened at the first CUDA device
 * (cuda_blas.h says why). Looked for first in the toolkit's library folder
 * that CMake found at build time (MLXE_CUBLAS_DIR), then by the loader's
 * own search (LD_LIBRARY_PATH, the cache), under the soname of the toolkit
 * the kernels were built with (MLXE_CUBLAS_SONAME). libcublas finds its
 * libcublasLt beside itself ($ORIGIN). */
#include "runtime/cuda/cuda_blas.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef MLXE_CUBLAS_SONAME
#define MLXE_CUBLAS_SONAME "libcublas.so"
#endif
#ifndef MLXE_CUBLAS_DIR
#define MLXE_CUBLAS_DIR ""
#endif

/* the table's types are the headers' declarations */
_Static_assert(__builtin_types_compatible_p(__typeof__(&cublasCreate_v2), mlxe_cublas_create_fn), "cublasCreate");
_Static_assert(__builtin_types_compatible_p(__typeof__(&cublasDestroy_v2), mlxe_cublas_destroy_fn), "cublasDestroy");
_Static_assert(__builtin_types_compatible_p(__typeof__(&cublasSetStream_v2), mlxe_cublas_set_stream_fn),
               "cublasSetStream");
_Static_assert(__builtin_types_compatible_p(__typeof__(&cublasGemmEx), mlxe_cublas_gemm_ex_fn), "cublasGemmEx");
_Static_assert(__builtin_types_compatible_p(__typeof__(&cublasSgemm_v2), mlxe_cublas_sgemm_fn), "cublasSgemm");

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static mlxe_cuda_blas blas_table;
static const mlxe_cuda_blas *blas_opened;
static char blas_why[512];

/* Symbol `name` of `library` into *slot; false (and blas_why) when missing. */
static int resolve(void *library, const char *name, void **slot) {
    *slot = dlsym(library, name);
    if (*slot) return 1;
    snprintf(blas_why, sizeof blas_why, "%s has no %s: install the cuBLAS of the CUDA toolkit this build used",
             MLXE_CUBLAS_SONAME, name);
    return 0;
}

static void open_once(void) {
    char path[512];
    void *library = NULL;
    const char *first_error = NULL;
    char first_error_copy[256] = "";
    if (MLXE_CUBLAS_DIR[0]) {
        snprintf(path, sizeof path, "%s/%s", MLXE_CUBLAS_DIR, MLXE_CUBLAS_SONAME);
        library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!library && (first_error = dlerror())) snprintf(first_error_copy, sizeof first_error_copy, "%s", first_error);
    }
    if (!library) library = dlopen(MLXE_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *error = dlerror();
        snprintf(blas_why, sizeof blas_why,
                 "cuBLAS (%s) could not be opened from %s nor the loader's path (%s%s%s): install CUDA's cuBLAS or "
                 "add its folder to LD_LIBRARY_PATH",
                 MLXE_CUBLAS_SONAME, MLXE_CUBLAS_DIR[0] ? MLXE_CUBLAS_DIR : "(no build-time folder)",
                 error ? error : "no message", first_error_copy[0] ? "; " : "", first_error_copy);
        return;
    }
    /* dlsym hands back void *; the table's types are the headers' */
    void *create, *destroy, *set_stream, *gemm_ex, *sgemm;
    if (!resolve(library, "cublasCreate_v2", &create) || !resolve(library, "cublasDestroy_v2", &destroy) ||
        !resolve(library, "cublasSetStream_v2", &set_stream) || !resolve(library, "cublasGemmEx", &gemm_ex) ||
        !resolve(library, "cublasSgemm_v2", &sgemm)) {
        dlclose(library);
        return;
    }
    memcpy(&blas_table.create, &create, sizeof create);
    memcpy(&blas_table.destroy, &destroy, sizeof destroy);
    memcpy(&blas_table.set_stream, &set_stream, sizeof set_stream);
    memcpy(&blas_table.gemm_ex, &gemm_ex, sizeof gemm_ex);
    memcpy(&blas_table.sgemm, &sgemm, sizeof sgemm);
    blas_opened = &blas_table;
}

const mlxe_cuda_blas *mlxe_cuda_blas_open(char *why, size_t why_size) {
    pthread_once(&blas_once, open_once);
    if (!blas_opened && why && why_size) snprintf(why, why_size, "%s", blas_why);
    return blas_opened;
}
