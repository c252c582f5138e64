/* bench/cuda/nccl_stub.c — stands in for libnccl.so.2 when the GPU machine has no NCCL.
 * llama.cpp's CUDA backend links NCCL when the build machine had it (GGML_CUDA_NCCL), but only
 * calls it to all-reduce across several GPUs; compare.sh benchmarks one GPU, so these entry
 * points (the ones ggml-cuda references) are never reached. If one were, it fails loudly
 * (ncclInternalError = 3) rather than doing nothing. Built by compare.sh with
 * `gcc -shared -fPIC -Wl,-soname,libnccl.so.2` only when the loader cannot find a real one. */
#include <stddef.h>

typedef struct nccl_comm *ncclComm_t;
enum { NCCL_STUB_ERROR = 3 };

int ncclCommInitAll(ncclComm_t *comms, int ndev, const int *devlist) {
    (void)comms, (void)ndev, (void)devlist;
    return NCCL_STUB_ERROR;
}
int ncclCommDestroy(ncclComm_t comm) {
    (void)comm;
    return NCCL_STUB_ERROR;
}
int ncclAllReduce(const void *send, void *recv, size_t count, int type, int op, ncclComm_t comm, void *stream) {
    (void)send, (void)recv, (void)count, (void)type, (void)op, (void)comm, (void)stream;
    return NCCL_STUB_ERROR;
}
int ncclGroupStart(void) { return NCCL_STUB_ERROR; }
int ncclGroupEnd(void) { return NCCL_STUB_ERROR; }
const char *ncclGetErrorString(int result) {
    (void)result;
    return "NCCL stub (bench/cuda/nccl_stub.c): no NCCL on this machine";
}
