/* engine/engine_internal.h — the model struct shared by the engine's files
 * (model.c loads it; context.c and generate.c run it), and a clock. */
#ifndef MLXE_ENGINE_INTERNAL_H
#define MLXE_ENGINE_INTERNAL_H

#include <pthread.h>
#include <time.h>

#include "format/model_config.h"
#include "format/safetensors.h"
#include "mlxengine/context.h"
#include "mlxengine/model.h"
#include "mlxengine/sampler.h"
#include "models/models.h"
#include "runtime/device.h"
#include "runtime/sampling.h"

struct mlxe_model {
    mlxe_model_config config;
    mlxe_weight_set *weight_set;          /* the mapped safetensors files */
    mlxe_device *dev;
    const mlxe_model_family *family;
    mlxe_model_weights *weights;          /* the family's binding of weight_set */
    /* One forward at a time per device (runtime/ops.h): contexts sharing
     * the model take this lock around each forward pass. */
    pthread_mutex_t forward_lock;
    int32_t eos_ids[MLXE_MAX_EOS_TOKENS];
    int n_eos_ids;
    double load_seconds;
};

/* Device memory the runtime may need beyond weights, KV cache and scratch
 * (cuBLAS workspace, quantized weights expanded for a prefill GEMM: at most
 * 256 MiB, split attention partials, staging): kept free by the checks. */
#define MLXE_DEVICE_WORKING_BYTES ((size_t)384 << 20)

/* mlxe_context_decode of a batch with one row wanting logits, whose greedy
 * token (the argmax, the sampler's rule) is chosen on the device and copied
 * back alone: *token is that id, and the logits are fetched only when
 * mlxe_context_logits asks. Where the device cannot (no argmax op,
 * several logits rows), *token is -1 and the logits are there as after
 * mlxe_context_decode. */
mlxe_status mlxe_context_decode_greedy(mlxe_context *ctx, const mlxe_batch *batch, int32_t *token, mlxe_error *err);

/* mlxe_context_decode of a batch with one row wanting logits, whose token is
 * sampled on the device (ops.h sample) with params (random_bits included;
 * params->adjust is ignored: adjust holds its n_bias + n_penalty entries,
 * host memory) and copied back alone: *token is that id, and the logits are
 * fetched only when mlxe_context_logits asks. Where the device cannot (no
 * sample op, several logits rows), *token is -1 and the logits are there as
 * after mlxe_context_decode: sample them on the host with the same draw
 * (mlxe_sampler_sample_drawn). */
mlxe_status mlxe_context_decode_sample(mlxe_context *ctx, const mlxe_batch *batch, const mlxe_sample_params *params,
                                       const mlxe_sample_adjust *adjust, int32_t *token, mlxe_error *err);

/* Pipelined greedy decode (engine/generate.c): queues the step of seq at
 * its next position whose token is the plain argmax the device chose in
 * this context's last step (of seq: decode_greedy or decode_ahead),
 * without waiting for it or reading that token; the step's own choice is
 * read with mlxe_context_take_ahead, oldest first. At most 2 queued;
 * MLXE_ERR_INVALID_ARGUMENT when the last step left no device choice. */
mlxe_status mlxe_context_decode_ahead(mlxe_context *ctx, int32_t seq, mlxe_error *err);
/* The token of the oldest queued step (waits for that step only). */
mlxe_status mlxe_context_take_ahead(mlxe_context *ctx, int32_t *token, mlxe_error *err);
/* Waits for every step still queued (their tokens unread), with drop
 * their rows taken off seq again (a step queued for a token that then
 * stopped generation), and reports the device's errors. */
mlxe_status mlxe_context_finish_ahead(mlxe_context *ctx, int32_t seq, bool drop, mlxe_error *err);

/* Whether the context's device samples tokens itself (ops.h sample). */
bool mlxe_context_samples_on_device(const mlxe_context *ctx);

/* The sampler's draw for its next token (53 uniform bits; 0 without a draw
 * when temperature <= 0), advancing its generator: mlxe_sampler_sample is
 * mlxe_sampler_sample_drawn(s, logits, mlxe_sampler_draw(s)). */
uint64_t mlxe_sampler_draw(mlxe_sampler *sampler);
int32_t mlxe_sampler_sample_drawn(mlxe_sampler *sampler, const float *logits, uint64_t random_bits);

/* Fills params (but random_bits and adjust) and adjust ([MLXE_SAMPLE_MAX_ADJUST]:
 * the logit bias, then the penalty window's tokens as of now) for the
 * device's sample op; false, with *why, for options the device does not
 * take (the host samples then). */
bool mlxe_sampler_device_params(mlxe_sampler *sampler, mlxe_sample_params *params, mlxe_sample_adjust *adjust,
                                const char **why);

/* Whether the sampler's choice is the plain argmax of the logits (greedy,
 * no logit bias, no penalties): then a device may choose it. */
bool mlxe_sampler_is_plain_greedy(const mlxe_sampler *sampler);

/* Seconds on a monotonic clock. */
static inline double mlxe_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
