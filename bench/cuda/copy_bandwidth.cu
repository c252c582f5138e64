// bench/cuda/copy_bandwidth.cu — the device-to-device copy bandwidth of GPU 0, the roofline the
// side-by-side comparison (bench/cuda/compare.sh) divides decode traffic by. Independent of both
// engines: built by compare.sh with nvcc on the GPU machine. Copies 1 GiB between two device
// buffers 20 times on one stream, timed by CUDA events, and prints the median and the best as
// bytes read + written per second (as bench/cuda_ops.c's copy_bandwidth counts them, and as
// issue 7 quotes 3028 GB/s for the H100).
//
//   copy_bandwidth            -> "copy GB/s median 2985.1 best 2990.2 (NVIDIA H100 80GB HBM3)"
#include <algorithm>
#include <cstdio>
#include <vector>

#include <cuda_runtime.h>

static bool check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    std::fprintf(stderr, "copy_bandwidth: %s: %s\n", what, cudaGetErrorString(e));
    return false;
}

int main() {
    const size_t bytes = size_t(1) << 30;
    cudaDeviceProp prop;
    if (!check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties")) return 1;
    void *a = nullptr, *b = nullptr;
    if (!check(cudaMalloc(&a, bytes), "cudaMalloc") || !check(cudaMalloc(&b, bytes), "cudaMalloc")) return 1;
    cudaMemset(a, 0x5a, bytes);  // touched memory: no lazily mapped pages in the timed copies
    cudaMemset(b, 0, bytes);
    cudaStream_t stream;
    cudaStreamCreate(&stream);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream);  // warm-up
    std::vector<float> ms(20);
    for (float &t : ms) {
        cudaEventRecord(start, stream);
        cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream);
        cudaEventRecord(stop, stream);
        if (!check(cudaEventSynchronize(stop), "copy")) return 1;
        cudaEventElapsedTime(&t, start, stop);
    }
    std::sort(ms.begin(), ms.end());
    const double moved = 2.0 * double(bytes);  // read + written
    std::printf("copy GB/s median %.1f best %.1f (%s)\n", moved / (ms[ms.size() / 2] * 1e-3) / 1e9,
                moved / (ms[0] * 1e-3) / 1e9, prop.name);
    cudaFree(a);
    cudaFree(b);
    return 0;
}
