/* tools/mlxengine/memory_check.c — see memory_check.h. The numbers come from
 * mlxe_hub_estimate_memory (hub layer) and the debug report's memory section
 * (diag layer: /proc/meminfo and the cgroup v2 memory.max), not read again
 * here. */
#include "memory_check.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag/report_internal.h"
#include "mlxengine/hub.h"

bool tool_force_load;

bool tool_parse_force_load(const char *arg) {
    if (strcmp(arg, "--force-load") != 0) return false;
    tool_force_load = true;
    return true;
}

/* A number of bytes from the memory section; -1 when unknown. */
static double section_bytes(const cJSON *memory, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(memory, key);
    return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* MB from an environment variable overriding a measured value; -1 if unset. */
static double env_bytes(const char *name) {
    const char *text = getenv(name);
    if (!text || !*text) return -1;
    char *end = NULL;
    double mb = strtod(text, &end);
    return end != text && !*end && mb >= 0 ? mb * 1024 * 1024 : -1;
}

static double mb(double bytes) { return bytes / (1024.0 * 1024.0); }

bool tool_check_memory(const char *command, const char *folder, const char *device, int64_t n_ctx) {
    if (device && strncmp(device, "cpu", 3) != 0) return true;
    mlxe_memory_estimate estimate;
    mlxe_error err;
    mlxe_error_clear(&err);
    int context = n_ctx > 0 && n_ctx < INT32_MAX ? (int)n_ctx : 0;
    /* With no context asked for, the estimate takes the model's maximum
     * capped at 8192, the context (engine/context.c) caps at 4096: the
     * estimate errs high there, by the KV cache of at most 4096 tokens. */
    if (mlxe_hub_estimate_memory(folder, context, &estimate, &err) != MLXE_OK) return true;

    cJSON *memory = mlxe_diag_collect_memory();
    double available = section_bytes(memory, "available_bytes");
    double swap = section_bytes(memory, "swap_total_bytes");
    double cgroup = section_bytes(memory, "cgroup_limit_bytes");
    cJSON_Delete(memory);
    if (cgroup > 0 && (available < 0 || cgroup < available)) {
        available = cgroup;
        swap = 0; /* memory.max bounds the container whatever the host's swap */
    }
    double forced = env_bytes("MLXE_MEMORY_AVAILABLE_MB");
    if (forced >= 0) available = forced;
    forced = env_bytes("MLXE_MEMORY_SWAP_MB");
    if (forced >= 0) swap = forced;
    if (available < 0) return true;
    if (swap < 0) swap = 0;

    double total = (double)estimate.total_bytes;
    if (total <= available) return true;
    const char *prefix = command ? " " : "";
    char context_text[64];
    if (n_ctx > 0) snprintf(context_text, sizeof context_text, "%lld tokens", (long long)n_ctx);
    else snprintf(context_text, sizeof context_text, "the model's default");
    bool refuse = total > available + swap;
    fprintf(stderr,
            "mlxengine%s%s: %s: %s needs about %.0f MB (weights %.0f MB + KV cache %.0f MB at a context of %s "
            "+ overhead %.0f MB) but only %.0f MB of RAM is available (%.0f MB swap).\n",
            prefix, command ? command : "", refuse ? (tool_force_load ? "warning" : "error") : "warning", folder,
            mb(total), mb((double)estimate.weights_bytes), mb((double)estimate.kv_cache_bytes), context_text,
            mb((double)estimate.overhead_bytes), mb(available), mb(swap));
    fprintf(stderr, "  Use a smaller context (%s) or a quantized model (e.g. a 4-bit MLX build)%s.\n",
            command ? "--ctx" : "fewer tokens", refuse && !tool_force_load ? ", or pass --force-load to load anyway" : "");
    if (refuse && !tool_force_load) return false;
    if (!refuse) fprintf(stderr, "  Loading anyway: weights are memory-mapped and may page, which is slow.\n");
    return true;
}
