/* diag/system_info.c — facts about the library build, the OS, the CPU and
 * memory, for the debug report. Linux sources: uname(2), /etc/os-release,
 * /proc/cpuinfo, /proc/meminfo, sched_getaffinity(2) and the cgroup v2
 * limits (/sys/fs/cgroup/cpu.max, memory.max) that containers impose. */
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "base/file.h"
#include "diag/report_internal.h"
#include "mlxengine/version.h"

#define MAX_PROC_FILE (4u << 20)

/* Files under /proc and /sys report size 0, so mlxe_file_read_all (which
 * trusts the size) reads nothing: read to the end instead. NULL on failure. */
static char *read_proc_file(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t capacity = 16384, length = 0;
    char *text = malloc(capacity);
    while (text) {
        if (length + 1 == capacity) {
            if (capacity >= MAX_PROC_FILE) break;
            char *grown = realloc(text, capacity * 2);
            if (!grown) {
                free(text);
                text = NULL;
                break;
            }
            text = grown;
            capacity *= 2;
        }
        ssize_t got = read(fd, text + length, capacity - 1 - length);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        length += (size_t)got;
    }
    close(fd);
    if (text) text[length] = '\0';
    return text;
}

cJSON *mlxe_diag_collect_library(void) {
    const mlxe_build_info *info = mlxe_build_info_get();
    cJSON *library = cJSON_CreateObject();
    cJSON_AddStringToObject(library, "version", info->version);
    cJSON_AddStringToObject(library, "git_revision", info->git_revision);
    cJSON_AddStringToObject(library, "compiler", info->compiler);
    cJSON_AddStringToObject(library, "build_type", info->build_type);
    cJSON_AddBoolToObject(library, "cuda_compiled", info->cuda_compiled != 0);
    cJSON_AddStringToObject(library, "sanitizers", info->sanitizers);
    cJSON_AddStringToObject(library, "simd", info->simd);
    return library;
}

/* The value of `key=` in a KEY=VALUE file like os-release, unquoted, into out. */
static bool read_os_release(const char *key, char *out, size_t size) {
    char *text = NULL;
    size_t n = 0;
    if (mlxe_file_read_all("/etc/os-release", 64 * 1024, &text, &n, NULL) != MLXE_OK) return false;
    bool found = false;
    size_t key_len = strlen(key);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, key, key_len) != 0 || line[key_len] != '=') continue;
        char *value = line + key_len + 1;
        size_t len = strlen(value);
        if (len >= 2 && (value[0] == '"' || value[0] == '\'') && value[len - 1] == value[0]) {
            value[len - 1] = '\0';
            value++;
        }
        snprintf(out, size, "%s", value);
        found = true;
    }
    free(text);
    return found;
}

cJSON *mlxe_diag_collect_system(void) {
    cJSON *system = cJSON_CreateObject();
    struct utsname names;
    if (uname(&names) == 0) {
        cJSON_AddStringToObject(system, "os", names.sysname);
        cJSON_AddStringToObject(system, "kernel_release", names.release);
        cJSON_AddStringToObject(system, "kernel_version", names.version);
        cJSON_AddStringToObject(system, "machine", names.machine);
    } else {
        cJSON_AddStringToObject(system, "os", "unknown (uname failed)");
        cJSON_AddNullToObject(system, "kernel_release");
        cJSON_AddNullToObject(system, "kernel_version");
        cJSON_AddNullToObject(system, "machine");
    }
    char distribution[256];
    if (read_os_release("PRETTY_NAME", distribution, sizeof distribution))
        cJSON_AddStringToObject(system, "distribution", distribution);
    else
        cJSON_AddNullToObject(system, "distribution");
    cJSON_AddStringToObject(system, "libc", gnu_get_libc_version());
    return system;
}

/* First "key : value" line of /proc/cpuinfo for key, into out. */
static bool cpuinfo_field(const char *cpuinfo, const char *key, char *out, size_t size) {
    size_t key_len = strlen(key);
    for (const char *line = cpuinfo; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, key, key_len) == 0 && (line[key_len] == '\t' || line[key_len] == ' ' || line[key_len] == ':')) {
            const char *colon = memchr(line, ':', len);
            if (colon) {
                const char *value = colon + 1;
                while (*value == ' ') value++;
                size_t value_len = len - (size_t)(value - line);
                snprintf(out, size, "%.*s", (int)value_len, value);
                return true;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

/* "max period" from cgroup v2 cpu.max as a number of CPUs; < 0 when unlimited or unknown. */
static double cgroup_cpu_limit(void) {
    char *text = read_proc_file("/sys/fs/cgroup/cpu.max");
    if (!text) return -1;
    double limit = -1;
    long long quota = 0, period = 0;
    if (strncmp(text, "max", 3) != 0 && sscanf(text, "%lld %lld", &quota, &period) == 2 && period > 0)
        limit = (double)quota / (double)period;
    free(text);
    return limit;
}

cJSON *mlxe_diag_collect_cpu(void) {
    cJSON *cpu = cJSON_CreateObject();
    char *cpuinfo = read_proc_file("/proc/cpuinfo");
    char model[256] = "", vendor[128] = "";
    if (cpuinfo) {
        if (!cpuinfo_field(cpuinfo, "model name", model, sizeof model))
            cpuinfo_field(cpuinfo, "Model", model, sizeof model); /* some ARM boards */
        if (!cpuinfo_field(cpuinfo, "vendor_id", vendor, sizeof vendor))
            cpuinfo_field(cpuinfo, "CPU implementer", vendor, sizeof vendor);
    }
    if (*model) cJSON_AddStringToObject(cpu, "model", model);
    else cJSON_AddNullToObject(cpu, "model");
    if (*vendor) cJSON_AddStringToObject(cpu, "vendor", vendor);
    else cJSON_AddNullToObject(cpu, "vendor");
    cJSON_AddNumberToObject(cpu, "logical_cores_online", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        cJSON_AddNumberToObject(cpu, "cores_available", CPU_COUNT(&set));
    else
        cJSON_AddNullToObject(cpu, "cores_available");
    double limit = cgroup_cpu_limit();
    if (limit > 0) cJSON_AddNumberToObject(cpu, "cgroup_cpu_limit", limit);
    else cJSON_AddNullToObject(cpu, "cgroup_cpu_limit");

    cJSON *features = cJSON_AddArrayToObject(cpu, "features");
#if defined(__x86_64__) || defined(__i386__)
    /* What the kernels may dispatch on at run time. */
    __builtin_cpu_init();
    static const char *const names[] = {"sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw",
                                        "avx512vl", "avx512vnni", "avx512bf16", "avx512fp16", "avxvnni"};
    bool supported[sizeof names / sizeof names[0]] = {
        __builtin_cpu_supports("sse4.2"),     __builtin_cpu_supports("avx"),
        __builtin_cpu_supports("avx2"),       __builtin_cpu_supports("fma"),
        __builtin_cpu_supports("f16c"),       __builtin_cpu_supports("avx512f"),
        __builtin_cpu_supports("avx512bw"),   __builtin_cpu_supports("avx512vl"),
        __builtin_cpu_supports("avx512vnni"), __builtin_cpu_supports("avx512bf16"),
        __builtin_cpu_supports("avx512fp16"), __builtin_cpu_supports("avxvnni")};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (supported[i]) cJSON_AddItemToArray(features, cJSON_CreateString(names[i]));
#else
    /* Elsewhere (aarch64) the kernel's list: keep the flags kernels care about. */
    char flags[4096] = "";
    if (cpuinfo && cpuinfo_field(cpuinfo, "Features", flags, sizeof flags)) {
        static const char *const wanted[] = {"asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2",
                                             "i8mm", "bf16", "sme"};
        char *save = NULL;
        for (char *flag = strtok_r(flags, " ", &save); flag; flag = strtok_r(NULL, " ", &save))
            for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
                if (strcmp(flag, wanted[i]) == 0) cJSON_AddItemToArray(features, cJSON_CreateString(flag));
    }
#endif
    free(cpuinfo);
    return cpu;
}

/* "Key:   123 kB" from /proc/meminfo in bytes; -1 when absent. */
static long long meminfo_bytes(const char *meminfo, const char *key) {
    char value[128];
    if (!cpuinfo_field(meminfo, key, value, sizeof value)) return -1;
    long long kib = atoll(value);
    return kib * 1024;
}

cJSON *mlxe_diag_collect_memory(void) {
    cJSON *memory = cJSON_CreateObject();
    char *meminfo = read_proc_file("/proc/meminfo");
    long long total = -1, available = -1, swap = -1;
    if (meminfo) {
        total = meminfo_bytes(meminfo, "MemTotal");
        available = meminfo_bytes(meminfo, "MemAvailable");
        swap = meminfo_bytes(meminfo, "SwapTotal");
        free(meminfo);
    }
    if (total >= 0) cJSON_AddNumberToObject(memory, "total_bytes", (double)total);
    else cJSON_AddNullToObject(memory, "total_bytes");
    if (available >= 0) cJSON_AddNumberToObject(memory, "available_bytes", (double)available);
    else cJSON_AddNullToObject(memory, "available_bytes");
    if (swap >= 0) cJSON_AddNumberToObject(memory, "swap_total_bytes", (double)swap);
    else cJSON_AddNullToObject(memory, "swap_total_bytes");
    char *limit = read_proc_file("/sys/fs/cgroup/memory.max");
    if (limit && strncmp(limit, "max", 3) != 0 && atoll(limit) > 0)
        cJSON_AddNumberToObject(memory, "cgroup_limit_bytes", (double)atoll(limit));
    else
        cJSON_AddNullToObject(memory, "cgroup_limit_bytes");
    free(limit);
    return memory;
}
