/* engine/kv_cache.c — allocation of the KV cache buffers. Dropping a
 * sequence only resets its length: positions past the length are never read
 * (attention reads [lo, position] of rows being written in order). */
#include "engine/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "base/error.h"

void mlxe_kv_cache_release(mlxe_kv_cache *cache) {
    if (!cache) return;
    const mlxe_ops *ops = cache->dev ? mlxe_device_ops(cache->dev) : NULL;
    for (int64_t l = 0; ops && l < cache->view.n_layers; l++) {
        if (cache->view.k && cache->view.k[l]) ops->free(cache->dev, cache->view.k[l]);
        if (cache->view.v && cache->view.v[l]) ops->free(cache->dev, cache->view.v[l]);
    }
    free(cache->view.k);
    free(cache->view.v);
    free(cache->lengths);
    memset(cache, 0, sizeof *cache);
}

mlxe_status mlxe_kv_cache_init(mlxe_kv_cache *cache, mlxe_device *dev, int64_t n_layers,
                               int64_t n_slots, int64_t capacity, int64_t n_kv_heads,
                               int64_t head_dim, mlxe_error *err) {
    memset(cache, 0, sizeof *cache);
    cache->dev = dev;
    cache->view.n_layers = n_layers;
    cache->view.n_slots = n_slots;
    cache->view.capacity = capacity;
    cache->view.k = calloc((size_t)n_layers, sizeof(float *));
    cache->view.v = calloc((size_t)n_layers, sizeof(float *));
    cache->lengths = calloc((size_t)n_slots, sizeof(int64_t));
    if (!cache->view.k || !cache->view.v || !cache->lengths) {
        mlxe_kv_cache_release(cache);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating the KV cache");
    }
    /* Overflow-checked size of one layer's K (or V) buffer. */
    size_t bytes = sizeof(float);
    const int64_t dims[4] = {n_slots, n_kv_heads, capacity, head_dim};
    for (int i = 0; i < 4; i++) {
        if (dims[i] <= 0 || bytes > SIZE_MAX / (size_t)dims[i]) {
            mlxe_kv_cache_release(cache);
            return mlxe_error_set(err, MLXE_ERR_LIMIT,
                                  "KV cache of %lld sequences x %lld tokens is too large",
                                  (long long)n_slots, (long long)capacity);
        }
        bytes *= (size_t)dims[i];
    }
    const mlxe_ops *ops = mlxe_device_ops(dev);
    for (int64_t l = 0; l < n_layers; l++) {
        void *k = NULL, *v = NULL;
        mlxe_status st = ops->alloc(dev, bytes, &k, err);
        if (st == MLXE_OK) {
            cache->view.k[l] = k;
            st = ops->alloc(dev, bytes, &v, err);
        }
        if (st != MLXE_OK) {
            mlxe_kv_cache_release(cache);
            return mlxe_error_prefix(err, "allocating the KV cache (%lld layers x 2 x %zu bytes)",
                                     (long long)n_layers, bytes);
        }
        cache->view.v[l] = v;
        cache->bytes += 2 * bytes;
    }
    return MLXE_OK;
}
