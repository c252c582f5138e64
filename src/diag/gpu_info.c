/* diag/gpu_info.c — lists NVIDIA GPUs for the debug report without linking
 * to the driver: NVML (libnvidia-ml.so.1) is loaded with dlopen first, as
 * nvidia-smi uses it (names, memory total and free, driver and CUDA driver
 * versions); without it the CUDA driver API (libcuda.so.1) gives names,
 * total memory and compute capability. Neither present means no NVIDIA
 * driver, and the report says so with the loader's reason.
 *
 * The function signatures are those of nvml.h and cuda.h (both C ABIs that
 * NVIDIA keeps stable); only plain int, char and size types cross the
 * boundary, so no NVIDIA header is needed to build. MLXE_NVML_LIBRARY and
 * MLXE_CUDA_DRIVER_LIBRARY name other files to load (for tests, or a driver
 * outside the loader's path). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/report_internal.h"

#if MLXE_CUDA_ENABLED
/* From the CUDA runtime linked into the library (cuda_runtime_api.h). */
extern int cudaRuntimeGetVersion(int *runtime_version);
#endif

typedef struct nvml_memory {
    unsigned long long total, free, used;
} nvml_memory;

typedef struct nvml_api {
    int (*init)(void);
    int (*shutdown)(void);
    int (*driver_version)(char *, unsigned int);
    int (*cuda_driver_version)(int *);
    int (*device_count)(unsigned int *);
    int (*device_by_index)(unsigned int, void **);
    int (*device_name)(void *, char *, unsigned int);
    int (*device_memory)(void *, nvml_memory *);
    int (*device_compute_capability)(void *, int *, int *);
    const char *(*error_string)(int);
} nvml_api;

/* "12.4" from CUDA's 12040 encoding. */
static void cuda_version_string(int version, char *out, size_t size) {
    snprintf(out, size, "%d.%d", version / 1000, (version % 1000) / 10);
}

static void *load_symbol(void *library, const char *name, bool *ok) {
    void *symbol = dlsym(library, name);
    if (!symbol) *ok = false;
    return symbol;
}

static const char *library_name(const char *env, const char *fallback) {
    const char *name = getenv(env);
    return name && *name ? name : fallback;
}

/* Fills gpus from NVML; false (with *why) when NVML is unusable. */
static bool probe_nvml(cJSON *gpus, cJSON *devices, char *why, size_t why_size) {
    const char *name = library_name("MLXE_NVML_LIBRARY", "libnvidia-ml.so.1");
    void *library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(why, why_size, "%s", dlerror());
        return false;
    }
    nvml_api api;
    bool ok = true;
    api.init = (__typeof__(api.init))load_symbol(library, "nvmlInit_v2", &ok);
    api.shutdown = (__typeof__(api.shutdown))load_symbol(library, "nvmlShutdown", &ok);
    api.driver_version = (__typeof__(api.driver_version))load_symbol(library, "nvmlSystemGetDriverVersion", &ok);
    api.cuda_driver_version = (__typeof__(api.cuda_driver_version))load_symbol(library, "nvmlSystemGetCudaDriverVersion_v2", &ok);
    api.device_count = (__typeof__(api.device_count))load_symbol(library, "nvmlDeviceGetCount_v2", &ok);
    api.device_by_index = (__typeof__(api.device_by_index))load_symbol(library, "nvmlDeviceGetHandleByIndex_v2", &ok);
    api.device_name = (__typeof__(api.device_name))load_symbol(library, "nvmlDeviceGetName", &ok);
    api.device_memory = (__typeof__(api.device_memory))load_symbol(library, "nvmlDeviceGetMemoryInfo", &ok);
    api.device_compute_capability = (__typeof__(api.device_compute_capability))load_symbol(library, "nvmlDeviceGetCudaComputeCapability", &ok);
    api.error_string = (__typeof__(api.error_string))load_symbol(library, "nvmlErrorString", &ok);
    if (!ok) {
        snprintf(why, why_size, "%s lacks an NVML function this report needs (driver too old?)", name);
        dlclose(library);
        return false;
    }
    int rc = api.init();
    if (rc != 0) {
        snprintf(why, why_size, "%s: nvmlInit failed: %s", name, api.error_string(rc));
        dlclose(library);
        return false;
    }
    char text[96];
    if (api.driver_version(text, sizeof text) == 0) cJSON_AddStringToObject(gpus, "driver_version", text);
    int cuda_driver = 0;
    if (api.cuda_driver_version(&cuda_driver) == 0) {
        cuda_version_string(cuda_driver, text, sizeof text);
        cJSON_AddStringToObject(gpus, "cuda_driver_version", text);
    }
    unsigned int count = 0;
    rc = api.device_count(&count);
    if (rc != 0) {
        snprintf(why, why_size, "%s: nvmlDeviceGetCount failed: %s", name, api.error_string(rc));
        count = 0;
    }
    for (unsigned int i = 0; i < count; i++) {
        void *device = NULL;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "index", i);
        rc = api.device_by_index(i, &device);
        char device_name[256] = "unknown";
        if (rc == 0) api.device_name(device, device_name, sizeof device_name);
        cJSON_AddStringToObject(entry, "name", device_name);
        nvml_memory memory;
        if (rc == 0 && api.device_memory(device, &memory) == 0) {
            cJSON_AddNumberToObject(entry, "memory_total_bytes", (double)memory.total);
            cJSON_AddNumberToObject(entry, "memory_free_bytes", (double)memory.free);
        } else {
            cJSON_AddNullToObject(entry, "memory_total_bytes");
            cJSON_AddNullToObject(entry, "memory_free_bytes");
        }
        int major = 0, minor = 0;
        if (rc == 0 && api.device_compute_capability(device, &major, &minor) == 0) {
            snprintf(text, sizeof text, "%d.%d", major, minor);
            cJSON_AddStringToObject(entry, "compute_capability", text);
        } else {
            cJSON_AddNullToObject(entry, "compute_capability");
        }
        cJSON_AddItemToArray(devices, entry);
    }
    api.shutdown();
    dlclose(library);
    cJSON_AddStringToObject(gpus, "source", "nvml");
    return true;
}

/* Fills gpus from the CUDA driver API; false (with *why) when unusable. */
static bool probe_cuda_driver(cJSON *gpus, cJSON *devices, char *why, size_t why_size) {
    const char *name = library_name("MLXE_CUDA_DRIVER_LIBRARY", "libcuda.so.1");
    void *library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(why, why_size, "%s", dlerror());
        return false;
    }
    int (*init)(unsigned int);
    int (*driver_version)(int *);
    int (*device_count)(int *);
    int (*device_get)(int *, int);
    int (*device_name)(char *, int, int);
    int (*device_total_memory)(size_t *, int);
    int (*device_attribute)(int *, int, int);
    bool ok = true;
    init = (__typeof__(init))load_symbol(library, "cuInit", &ok);
    driver_version = (__typeof__(driver_version))load_symbol(library, "cuDriverGetVersion", &ok);
    device_count = (__typeof__(device_count))load_symbol(library, "cuDeviceGetCount", &ok);
    device_get = (__typeof__(device_get))load_symbol(library, "cuDeviceGet", &ok);
    device_name = (__typeof__(device_name))load_symbol(library, "cuDeviceGetName", &ok);
    device_total_memory = (__typeof__(device_total_memory))load_symbol(library, "cuDeviceTotalMem_v2", &ok);
    device_attribute = (__typeof__(device_attribute))load_symbol(library, "cuDeviceGetAttribute", &ok);
    if (!ok) {
        snprintf(why, why_size, "%s lacks a CUDA driver function this report needs", name);
        dlclose(library);
        return false;
    }
    int rc = init(0);
    if (rc != 0) {
        /* 100 = CUDA_ERROR_NO_DEVICE, 35 = CUDA_ERROR_INSUFFICIENT_DRIVER. */
        snprintf(why, why_size, "%s: cuInit failed with CUDA error %d%s", name, rc,
                 rc == 100 ? " (no CUDA-capable device is visible: check CUDA_VISIBLE_DEVICES)"
                 : rc == 35 ? " (the driver is older than the CUDA runtime)" : "");
        dlclose(library);
        return false;
    }
    char text[64];
    int version = 0;
    if (driver_version(&version) == 0) {
        cuda_version_string(version, text, sizeof text);
        cJSON_AddStringToObject(gpus, "cuda_driver_version", text);
    }
    int count = 0;
    if (device_count(&count) != 0) count = 0;
    for (int i = 0; i < count; i++) {
        int device = 0;
        if (device_get(&device, i) != 0) continue;
        cJSON *entry = cJSON_CreateObject();
        cJSON_AddNumberToObject(entry, "index", i);
        char device_name_text[256] = "unknown";
        device_name(device_name_text, sizeof device_name_text, device);
        cJSON_AddStringToObject(entry, "name", device_name_text);
        size_t total = 0;
        if (device_total_memory(&total, device) == 0)
            cJSON_AddNumberToObject(entry, "memory_total_bytes", (double)total);
        else
            cJSON_AddNullToObject(entry, "memory_total_bytes");
        /* Free memory needs a context, which costs time and memory: left out. */
        cJSON_AddNullToObject(entry, "memory_free_bytes");
        int major = 0, minor = 0;
        /* 75, 76 = CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR. */
        if (device_attribute(&major, 75, device) == 0 && device_attribute(&minor, 76, device) == 0) {
            snprintf(text, sizeof text, "%d.%d", major, minor);
            cJSON_AddStringToObject(entry, "compute_capability", text);
        } else {
            cJSON_AddNullToObject(entry, "compute_capability");
        }
        cJSON_AddItemToArray(devices, entry);
    }
    dlclose(library);
    cJSON_AddStringToObject(gpus, "source", "cuda_driver");
    return true;
}

/* The schema wants every key present, null when unknown. */
static cJSON *with_all_keys(cJSON *gpus) {
    static const char *const keys[] = {"driver_version", "cuda_driver_version", "source", "reason"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (!cJSON_GetObjectItemCaseSensitive(gpus, keys[i])) cJSON_AddNullToObject(gpus, keys[i]);
    return gpus;
}

cJSON *mlxe_diag_collect_gpus(bool probe) {
    cJSON *gpus = cJSON_CreateObject();
    const char *visible = getenv("CUDA_VISIBLE_DEVICES");
    if (visible) cJSON_AddStringToObject(gpus, "cuda_visible_devices", visible);
    else cJSON_AddNullToObject(gpus, "cuda_visible_devices");
#if MLXE_CUDA_ENABLED
    int runtime = 0;
    char runtime_text[32];
    if (cudaRuntimeGetVersion(&runtime) == 0) {
        cuda_version_string(runtime, runtime_text, sizeof runtime_text);
        cJSON_AddStringToObject(gpus, "cuda_runtime_version", runtime_text);
    } else {
        cJSON_AddNullToObject(gpus, "cuda_runtime_version");
    }
#else
    cJSON_AddNullToObject(gpus, "cuda_runtime_version");
#endif
    cJSON *devices = cJSON_CreateArray();
    if (!probe) {
        cJSON_AddStringToObject(gpus, "status", "not_probed");
        cJSON_AddStringToObject(gpus, "reason", "GPU probing was turned off for this report");
        cJSON_AddItemToObject(gpus, "devices", devices);
        return with_all_keys(gpus);
    }
    char nvml_why[512] = "", cuda_why[512] = "";
    bool probed = probe_nvml(gpus, devices, nvml_why, sizeof nvml_why);
    if (!probed) probed = probe_cuda_driver(gpus, devices, cuda_why, sizeof cuda_why);
    cJSON_AddItemToObject(gpus, "devices", devices);
    if (probed && cJSON_GetArraySize(devices) > 0) {
        cJSON_AddStringToObject(gpus, "status", "found");
        if (*nvml_why) cJSON_AddStringToObject(gpus, "reason", nvml_why);
        return with_all_keys(gpus);
    }
    char reason[1200];
    if (probed)
        snprintf(reason, sizeof reason, "no GPU found: the NVIDIA driver is installed but reports no device%s",
                 visible ? " (CUDA_VISIBLE_DEVICES is set)" : "");
    else
        snprintf(reason, sizeof reason,
                 "no GPU found: no NVIDIA driver library could be loaded (NVML: %s; CUDA driver: %s). "
                 "Install the NVIDIA driver to use a GPU; mlxengine runs on the CPU meanwhile",
                 nvml_why, cuda_why);
    cJSON_AddStringToObject(gpus, "status", "none");
    cJSON_AddStringToObject(gpus, "reason", reason);
    return with_all_keys(gpus);
}
