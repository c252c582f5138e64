/* engine/token_choice.c — each generated token chosen on the device or on
 * the host, in the same draw order either way (token_choice.h). */
#include "engine/token_choice.h"

#include <stdlib.h>
#include <string.h>

#include "base/log_internal.h"
#include "engine/engine_internal.h"

void mlxe_token_choice_init(mlxe_token_choice *choice, mlxe_context *ctx, mlxe_sampler *sampler, const char *who) {
    memset(choice, 0, sizeof *choice);
    choice->sampler = sampler;
    choice->device_token = -1;
    /* MLXE_DEVICE_CHOICE=0: every token sampled on the host from the
     * downloaded logits, as before the device chose (side-by-side timing). */
    const char *switch_value = getenv("MLXE_DEVICE_CHOICE");
    if (switch_value && strcmp(switch_value, "0") == 0) {
        MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "%s: tokens sampled on the host (MLXE_DEVICE_CHOICE=0)", who);
        return;
    }
    choice->device_greedy = mlxe_sampler_is_plain_greedy(sampler);
    if (choice->device_greedy || !mlxe_context_samples_on_device(ctx)) return;
    const char *device = mlxe_model_device_name(mlxe_context_model(ctx));
    choice->adjust = malloc(MLXE_SAMPLE_MAX_ADJUST * sizeof *choice->adjust);
    const char *why = "out of memory for the sampling parameters";
    choice->device_sample =
        choice->adjust && mlxe_sampler_device_params(sampler, &choice->params, choice->adjust, &why);
    if (choice->device_sample)
        MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "%s: tokens sampled on %s", who, device);
    else
        MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "%s: tokens sampled on the host, not on %s: %s", who, device, why);
}

void mlxe_token_choice_free(mlxe_token_choice *choice) {
    if (!choice) return;
    free(choice->adjust);
    choice->adjust = NULL;
}

mlxe_status mlxe_token_choice_decode(mlxe_token_choice *choice, mlxe_context *ctx, const mlxe_batch *batch,
                                     mlxe_error *err) {
    choice->device_token = -1;
    choice->drawn = false;
    mlxe_status st;
    if (choice->device_sample) {
        /* the penalty window as of now (the token just accepted in) */
        mlxe_sampler_device_params(choice->sampler, &choice->params, choice->adjust, NULL);
        choice->params.random_bits = choice->random_bits = mlxe_sampler_draw(choice->sampler);
        choice->drawn = true;
        st = mlxe_context_decode_sample(ctx, batch, &choice->params, choice->adjust, &choice->device_token, err);
    } else if (choice->device_greedy) {
        st = mlxe_context_decode_greedy(ctx, batch, &choice->device_token, err);
    } else {
        st = mlxe_context_decode(ctx, batch, err);
    }
    return st;
}

int32_t mlxe_token_choice_next(mlxe_token_choice *choice, const mlxe_context *ctx, int64_t row) {
    int32_t token = choice->device_token;
    if (token >= 0) {
        choice->device_tokens++;
    } else {
        const float *logits = mlxe_context_logits(ctx, row);
        token = choice->drawn ? mlxe_sampler_sample_drawn(choice->sampler, logits, choice->random_bits)
                              : mlxe_sampler_sample(choice->sampler, logits);
    }
    choice->device_token = -1;
    choice->drawn = false;
    return token;
}
