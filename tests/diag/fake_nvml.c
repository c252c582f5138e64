/* tests/diag/fake_nvml.c — a stand-in for libnvidia-ml.so.1 with two GPUs,
 * loaded by the diagnostics through MLXE_NVML_LIBRARY, so the NVML binding
 * (symbol names, argument order, version decoding) is exercised on machines
 * without an NVIDIA driver. Signatures follow nvml.h. FAKE_NVML_FAIL=1 makes
 * nvmlInit fail as it does when the kernel module is not loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { unsigned long long total, free, used; } fake_memory;

int nvmlInit_v2(void);
int nvmlShutdown(void);
int nvmlSystemGetDriverVersion(char *version, unsigned int length);
int nvmlSystemGetCudaDriverVersion_v2(int *version);
int nvmlDeviceGetCount_v2(unsigned int *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device);
int nvmlDeviceGetName(void *device, char *name, unsigned int length);
int nvmlDeviceGetMemoryInfo(void *device, fake_memory *memory);
int nvmlDeviceGetCudaComputeCapability(void *device, int *major, int *minor);
const char *nvmlErrorString(int result);

int nvmlInit_v2(void) {
    const char *fail = getenv("FAKE_NVML_FAIL");
    return fail && strcmp(fail, "1") == 0 ? 9 /* NVML_ERROR_DRIVER_NOT_LOADED */ : 0;
}
int nvmlShutdown(void) { return 0; }
int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    snprintf(version, length, "%s", "550.54.15");
    return 0;
}
int nvmlSystemGetCudaDriverVersion_v2(int *version) {
    *version = 12040;
    return 0;
}
int nvmlDeviceGetCount_v2(unsigned int *count) {
    *count = 2;
    return 0;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void **device) {
    *device = (void *)(size_t)(index + 1);
    return 0;
}
int nvmlDeviceGetName(void *device, char *name, unsigned int length) {
    snprintf(name, length, "Fake GPU %zu", (size_t)device - 1);
    return 0;
}
int nvmlDeviceGetMemoryInfo(void *device, fake_memory *memory) {
    memory->total = 85899345920ull;
    memory->free = 80000000000ull - (size_t)device;
    memory->used = memory->total - memory->free;
    return 0;
}
int nvmlDeviceGetCudaComputeCapability(void *device, int *major, int *minor) {
    (void)device;
    *major = 9;
    *minor = 0;
    return 0;
}
const char *nvmlErrorString(int result) { return result == 9 ? "Driver Not Loaded" : "Unknown Error"; }
