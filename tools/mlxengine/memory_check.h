/* tools/mlxengine/memory_check.h — the RAM check the commands make before
 * loading a model on the CPU (issue 6): the hub's memory estimate (weights +
 * KV cache at the context the command will use + overhead) against what the
 * machine has, so a model that cannot fit is refused with a clear message
 * instead of an out-of-memory kill. */
#ifndef MLXE_TOOLS_MEMORY_CHECK_H
#define MLXE_TOOLS_MEMORY_CHECK_H

#include <stdbool.h>
#include <stdint.h>

/* Set by --force-load (tool_parse_force_load): load even when the estimate
 * exceeds available RAM + swap. */
extern bool tool_force_load;

/* True (and sets tool_force_load) when arg is "--force-load". */
bool tool_parse_force_load(const char *arg);

/* Checks folder's estimate at n_ctx tokens (0: the model's maximum, capped
 * as the context does) on device (NULL or "cpu..."; other devices are not
 * checked here: the CUDA backend checks its VRAM at load). Available memory
 * is MemAvailable, lowered to the cgroup memory limit when one is set, swap
 * is SwapTotal; MLXE_MEMORY_AVAILABLE_MB and MLXE_MEMORY_SWAP_MB override
 * them (for tests). Above available: prints a warning on stderr and returns
 * true (weights are mmap'd and may page). Above available + swap: prints
 * the refusal and returns false, unless tool_force_load. An estimate that
 * cannot be made is not a reason to refuse: returns true. */
bool tool_check_memory(const char *command, const char *folder, const char *device, int64_t n_ctx);

#endif
