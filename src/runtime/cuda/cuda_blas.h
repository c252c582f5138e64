/* runtime/cuda/cuda_blas.h — the cuBLAS functions the CUDA backend calls,
 * from the library opened at run time (dlopen) instead of linked: a
 * CUDA-enabled build then starts without cuBLAS's pages (~220 MB of
 * resident memory for `mlxengine --help`, against ~9 MB) and runs on the CPU
 * where cuBLAS is not installed. Built only with CUDA. */
#ifndef MLXE_RUNTIME_CUDA_BLAS_H
#define MLXE_RUNTIME_CUDA_BLAS_H

#include <cublas_v2.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The functions' C signatures (cuda_blas.c checks them against the
 * headers' declarations, so a mismatch does not compile; in C++ the
 * headers overload some of the names). */
typedef cublasStatus_t (*mlxe_cublas_create_fn)(cublasHandle_t *handle);
typedef cublasStatus_t (*mlxe_cublas_destroy_fn)(cublasHandle_t handle);
typedef cublasStatus_t (*mlxe_cublas_set_stream_fn)(cublasHandle_t handle, cudaStream_t stream);
typedef cublasStatus_t (*mlxe_cublas_gemm_ex_fn)(cublasHandle_t handle, cublasOperation_t transa,
                                                 cublasOperation_t transb, int m, int n, int k, const void *alpha,
                                                 const void *a, cudaDataType a_type, int lda, const void *b,
                                                 cudaDataType b_type, int ldb, const void *beta, void *c,
                                                 cudaDataType c_type, int ldc, cublasComputeType_t compute_type,
                                                 cublasGemmAlgo_t algo);
typedef cublasStatus_t (*mlxe_cublas_sgemm_fn)(cublasHandle_t handle, cublasOperation_t transa,
                                               cublasOperation_t transb, int m, int n, int k, const float *alpha,
                                               const float *a, int lda, const float *b, int ldb, const float *beta,
                                               float *c, int ldc);

typedef struct mlxe_cuda_blas {
    mlxe_cublas_create_fn create;
    mlxe_cublas_destroy_fn destroy;
    mlxe_cublas_set_stream_fn set_stream;
    mlxe_cublas_gemm_ex_fn gemm_ex;
    mlxe_cublas_sgemm_fn sgemm;
} mlxe_cuda_blas;

/* The table, opening the library on the first call (thread-safe; the
 * library stays open for the process). NULL when it cannot be opened or
 * lacks a function; then `why` (when not NULL) says which library was
 * looked for, where, and what the loader said. */
const mlxe_cuda_blas *mlxe_cuda_blas_open(char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif
