/* engine/kv_cache.h — the KV cache of a context: per layer one K and one V
 * buffer in device memory, [n_slots][n_kv_heads][capacity][head_dim]
 * (runtime/ops.h's layout), and the length of each slot's sequence. */
#ifndef MLXE_ENGINE_KV_CACHE_H
#define MLXE_ENGINE_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "models/models.h"
#include "runtime/device.h"

typedef struct mlxe_kv_cache {
    mlxe_device *dev;
    mlxe_kv_view view;      /* what the forward reads and writes */
    int64_t *lengths;       /* [n_slots] tokens held per slot */
    size_t bytes;           /* device memory held */
} mlxe_kv_cache;

/* Allocates (zeroed) for n_layers layers. On error the cache is left empty. */
mlxe_status mlxe_kv_cache_init(mlxe_kv_cache *cache, mlxe_device *dev, int64_t n_layers,
                               int64_t n_slots, int64_t capacity, int64_t n_kv_heads,
                               int64_t head_dim, mlxe_error *err);
/* Accepts a zeroed or failed cache. */
void mlxe_kv_cache_release(mlxe_kv_cache *cache);

#endif
