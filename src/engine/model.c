/* engine/model.c — mlxe_model: config + mapped weights + device + the
 * family's weight binding, loaded from a folder (include/mlxengine/model.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "engine/engine_internal.h"
#include "engine/model_registry.h"
#include "format/quant_config.h"

void mlxe_model_options_init(mlxe_model_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->n_threads = 0;
    options->device = "cpu";
}

void mlxe_model_free(mlxe_model *model) {
    if (!model) return;
    mlxe_model_registry_remove(model);
    if (model->weights) model->family->free(model->weights);
    mlxe_device_free(model->dev);
    mlxe_weight_set_close(model->weight_set);
    pthread_mutex_destroy(&model->forward_lock);
    free(model);
}

static void list_supported_types(char *buf, size_t size) {
    buf[0] = '\0';
    size_t used = 0;
    for (int f = 0; mlxe_model_families[f]; f++)
        for (const char *const *t = mlxe_model_families[f]->model_types; *t; t++) {
            int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", *t);
            if (n < 0 || (size_t)n >= size - used) return;
            used += (size_t)n;
        }
}

/* On a GPU the weights are copied into its memory: refuse before copying
 * anything when they (plus the runtime's working memory) cannot fit, saying
 * how much is missing and what to change. The KV cache and scratch are
 * checked the same way when a context is created (context.c). */
static mlxe_status check_device_memory(const char *dir, const mlxe_model *model, mlxe_error *err) {
    size_t free_bytes = 0, total_bytes = 0;
    if (!mlxe_device_memory(model->dev, &free_bytes, &total_bytes)) return MLXE_OK;
    const size_t weights = mlxe_weight_set_total_bytes(model->weight_set);
    const size_t need = weights + MLXE_DEVICE_WORKING_BYTES;
    MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "%s (%s): %zu MiB free of %zu MiB; the weights need %zu MiB",
               mlxe_device_name(model->dev), mlxe_device_description(model->dev), free_bytes >> 20, total_bytes >> 20,
               weights >> 20);
    if (need <= free_bytes) return MLXE_OK;
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY,
                          "%s: the weights (%zu MiB) and %zu MiB of working memory do not fit in the %zu MiB free of "
                          "%zu MiB on %s (%s): %zu MiB missing; use a quantized model (mlxengine convert --quantize "
                          "--bits 4 or 8), a GPU with more free memory, or --device cpu",
                          dir, weights >> 20, (size_t)MLXE_DEVICE_WORKING_BYTES >> 20, free_bytes >> 20,
                          total_bytes >> 20, mlxe_device_name(model->dev), mlxe_device_description(model->dev),
                          (need - free_bytes + ((size_t)1 << 20) - 1) >> 20);
}

mlxe_status mlxe_model_load(const char *dir, const mlxe_model_options *options, mlxe_model **out,
                            mlxe_error *err) {
    if (out) *out = NULL;
    if (!dir || !out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_model_load: dir and out are required");
    mlxe_model_options defaults;
    mlxe_model_options_init(&defaults);
    if (!options) options = &defaults;
    const char *device = options->device && *options->device ? options->device : "cpu";

    double start = mlxe_now_seconds();
    mlxe_model *model = calloc(1, sizeof *model);
    if (!model) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory loading %s", dir);
    if (pthread_mutex_init(&model->forward_lock, NULL) != 0) {
        free(model);
        return mlxe_error_set(err, MLXE_ERR_INTERNAL, "cannot create a mutex");
    }

    mlxe_generation_config generation;
    mlxe_status st = mlxe_model_config_load(dir, &model->config, &generation, err);
    if (st == MLXE_OK) {
        model->family = mlxe_model_family_find(model->config.model_type);
        if (!model->family) {
            char supported[256];
            list_supported_types(supported, sizeof supported);
            st = mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                                "%s/config.json: model_type '%s' is not supported by the native "
                                "backend (supported: %s)",
                                dir, model->config.model_type, supported);
        }
    }
    if (st == MLXE_OK) {
        /* Quantization the binding cannot run (modes mxfp4, nvfp4, mxfp8; Hugging
         * Face quantizers) is refused here by name (format/quant_config.h). */
        mlxe_quant_config quant;
        st = mlxe_quant_config_load(dir, &quant, err);
        mlxe_quant_config_free(&quant);
    }
    if (st == MLXE_OK) {
        st = mlxe_device_create_threads(device, options->n_threads, &model->dev, err);
        if (st != MLXE_OK) mlxe_error_prefix(err, "creating the %s device", device);
    }
    if (st == MLXE_OK) {
        /* MLXE_WEIGHTS_HUGEPAGES=1 copies the weights of a CPU model into
         * transparent huge pages (base/file.h): decode measured +4-13% in
         * most paired runs on the 2-core development VM, but the copy costs
         * load time (0.06-0.7 s for 290 MB, 3-6 s for 2.5 GB there, against
         * a lazy mapping's milliseconds), so it is opt-in. Without it the
         * CPU copies each matrix into huge pages at bind time instead
         * (ops->pack_matrix, runtime/cpu/cpu_pack.c), releasing the mapped
         * pages as it goes; =0 turns that off too (models/llama.c). A GPU
         * reads the weights once for the upload: always mapped. */
        const char *huge = getenv("MLXE_WEIGHTS_HUGEPAGES");
        bool in_memory = !mlxe_device_has_own_memory(model->dev) && huge && strcmp(huge, "1") == 0;
        st = in_memory ? mlxe_weight_set_open_in_memory(dir, &model->weight_set, err)
                       : mlxe_weight_set_open(dir, &model->weight_set, err);
    }
    if (st == MLXE_OK) st = check_device_memory(dir, model, err);
    if (st == MLXE_OK) {
        st = model->family->load(&model->config, model->weight_set, model->dev, options->progress,
                                 options->progress_user, &model->weights, err);
        if (st != MLXE_OK) mlxe_error_prefix(err, "%s", dir);
    }
    if (st == MLXE_OK) st = mlxe_model_registry_add(model, dir, err);
    if (st != MLXE_OK) {
        mlxe_model_free(model);
        return st;
    }
    for (int i = 0; i < model->config.n_eos_token_ids && model->n_eos_ids < MLXE_MAX_EOS_TOKENS; i++) {
        int64_t id = model->config.eos_token_ids[i];
        if (id >= 0 && id < model->config.vocab_size) model->eos_ids[model->n_eos_ids++] = (int32_t)id;
    }
    model->load_seconds = mlxe_now_seconds() - start;
    const bool gpu = mlxe_device_has_own_memory(model->dev);
    MLXE_INFO(MLXE_LOG_CAT_ENGINE, "loaded %s (%s, %zu MB of weights) in %.3f s on %s%s%s%s", dir,
              model->config.model_type, mlxe_weight_set_total_bytes(model->weight_set) >> 20,
              model->load_seconds, mlxe_device_name(model->dev), gpu ? " (" : "",
              gpu ? mlxe_device_description(model->dev) : "", gpu ? ")" : "");
    *out = model;
    return MLXE_OK;
}

int64_t mlxe_model_vocab_size(const mlxe_model *model) { return model ? model->config.vocab_size : 0; }

int64_t mlxe_model_context_length(const mlxe_model *model) {
    return model ? model->config.max_position_embeddings : 0;
}

int mlxe_model_eos_ids(const mlxe_model *model, const int32_t **ids) {
    if (!model) {
        if (ids) *ids = NULL;
        return 0;
    }
    if (ids) *ids = model->eos_ids;
    return model->n_eos_ids;
}

const char *mlxe_model_type(const mlxe_model *model) { return model ? model->config.model_type : ""; }

size_t mlxe_model_weight_bytes(const mlxe_model *model) {
    return model ? mlxe_weight_set_total_bytes(model->weight_set) : 0;
}

size_t mlxe_model_memory_bytes(const mlxe_model *model) {
    /* The CPU device computes from the mapping in place: the weights are
     * the model's memory, plus aligned copies of misaligned tensors. A GPU
     * holds its own copy of every tensor the model uses. */
    if (!model) return 0;
    if (mlxe_device_has_own_memory(model->dev)) return model->family->owned_bytes(model->weights);
    return mlxe_model_weight_bytes(model) + model->family->owned_bytes(model->weights);
}

double mlxe_model_load_seconds(const mlxe_model *model) { return model ? model->load_seconds : 0; }

const char *mlxe_model_device_name(const mlxe_model *model) {
    return model && model->dev ? mlxe_device_name(model->dev) : "";
}
