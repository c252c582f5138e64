/* engine/token_choice.h — choosing each generated token on the device or
 * on the host, shared by the generation loop (generate.c) and chat replies
 * (chat/reply.c), so both draw in the same order and give the same tokens.
 *
 * The device chooses the token of a decode step itself and copies back only
 * its id; the logits stay there unless mlxe_context_logits asks. Plain
 * greedy: the argmax (mlxe_context_decode_greedy). Otherwise, where the
 * device samples and takes the sampler's options
 * (mlxe_context_decode_sample): the step's draw is made before the decode
 * and goes up with its tokens, so the draws come in the same order as on
 * the host (one per token). Where the device cannot, the logits are sampled
 * on the host, with the step's draw when one was made.
 *
 * Use: after the sampler accepted token i, decode it with
 * mlxe_token_choice_decode; mlxe_token_choice_next then gives token i + 1
 * (the device's choice, else sampled from the logits row). A step decoded
 * any other way (a prompt, a rotated window) leaves no choice pending:
 * next samples its logits on the host, drawing then.
 *
 * MLXE_DEVICE_CHOICE=0 in the environment (read at init) makes the host
 * sample every token, for side-by-side timing in one binary. */
#ifndef MLXE_ENGINE_TOKEN_CHOICE_H
#define MLXE_ENGINE_TOKEN_CHOICE_H

#include <stdbool.h>
#include <stdint.h>

#include "mlxengine/context.h"
#include "mlxengine/sampler.h"
#include "runtime/sampling.h"

typedef struct mlxe_token_choice {
    mlxe_sampler *sampler;          /* borrowed */
    bool device_greedy;             /* plain greedy: the device's argmax */
    bool device_sample;             /* the device samples with params/adjust */
    mlxe_sample_params params;
    mlxe_sample_adjust *adjust;     /* [MLXE_SAMPLE_MAX_ADJUST] when device_sample */
    int32_t device_token;           /* the last decode's choice; -1: none */
    bool drawn;                     /* random_bits is the pending token's draw */
    uint64_t random_bits;
    int64_t device_tokens;          /* tokens the device chose so far */
} mlxe_token_choice;

/* Sets up the choice for sampler on ctx's device (what the device takes is
 * logged under who, e.g. "generate"). Cannot fail: without memory for the
 * sampling parameters the host samples. */
void mlxe_token_choice_init(mlxe_token_choice *choice, mlxe_context *ctx, mlxe_sampler *sampler, const char *who);
void mlxe_token_choice_free(mlxe_token_choice *choice);

/* Decodes batch (one row, its last, wanting logits: the token the sampler
 * accepted last) letting the device choose the next token where it can. */
mlxe_status mlxe_token_choice_decode(mlxe_token_choice *choice, mlxe_context *ctx, const mlxe_batch *batch,
                                     mlxe_error *err);

/* The next token: the device's choice of the last decode, else sampled on
 * the host from ctx's logits row (with the pending draw). Does not accept
 * it into the sampler. */
int32_t mlxe_token_choice_next(mlxe_token_choice *choice, const mlxe_context *ctx, int64_t row);

#endif
