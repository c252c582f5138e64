/* mlxengine/generate.h — the generation loop: prefill a prompt, then decode
 * token by token until max_tokens, an end-of-sequence id, the callback
 * asking to stop, a full context, or cancellation.
 *
 * The prompt is prefilled in decode calls of the context's n_batch tokens,
 * each run as forward passes of n_ubatch tokens (cancellation is checked
 * between calls and between tokens). Each new
 * token is passed to the callback as soon as it is chosen; an EOS token is
 * passed too (as transformers' generate() returns it) and then ends the loop.
 *
 * Thread-safety: as the context (one thread at a time); the cancel token may
 * be requested from any thread. */
#ifndef MLXENGINE_GENERATE_H
#define MLXENGINE_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/context.h"
#include "mlxengine/sampler.h"
#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef enum mlxe_stop_reason {
    MLXE_STOP_NONE = 0,
    MLXE_STOP_MAX_TOKENS,   /* max_tokens generated */
    MLXE_STOP_EOS,          /* an end-of-sequence id was generated */
    MLXE_STOP_CALLBACK,     /* the callback returned false */
    MLXE_STOP_CONTEXT_FULL, /* the sequence reached n_ctx */
    MLXE_STOP_CANCELLED     /* the cancel token was requested (status MLXE_ERR_CANCELLED) */
} mlxe_stop_reason;

typedef struct mlxe_generate_options {
    int64_t max_tokens;            /* Default 128 */
    mlxe_sampler_options sampler;  /* Default: mlxe_sampler_options_init's (greedy) */
    int32_t seq_id;                /* the context sequence to use; it is cleared first. Default 0 */
    /* Stop ids: NULL/0 means the model's EOS ids (mlxe_model_eos_ids). */
    const int32_t *eos_ids;
    int32_t n_eos_ids;
    bool ignore_eos;               /* keep going past EOS ids. Default false */
} mlxe_generate_options;

void mlxe_generate_options_init(mlxe_generate_options *options);

typedef struct mlxe_generate_stats {
    int64_t n_prompt_tokens;
    int64_t n_generated_tokens;
    double load_seconds;               /* the model's load time */
    double prefill_seconds;            /* prompt forward passes, up to the first token's logits */
    double decode_seconds;             /* forward passes of generated tokens */
    double sample_seconds;             /* time in the sampler */
    double prefill_tokens_per_second;
    double decode_tokens_per_second;   /* generated tokens after the first / decode_seconds */
    mlxe_stop_reason stop_reason;
    uint64_t seed;                     /* the sampler's seed */
} mlxe_generate_stats;

/* Called with each generated token; return false to stop (a normal stop:
 * MLXE_OK, stop_reason MLXE_STOP_CALLBACK). */
typedef bool (*mlxe_token_callback)(void *user, int32_t token);

/* Generates from prompt (n_prompt >= 1 ids) in ctx. options, callback,
 * cancel and stats may be NULL. Errors: as mlxe_context_decode (bad ids,
 * MLXE_ERR_LIMIT when the prompt does not fit in n_ctx), bad sampler
 * options, MLXE_ERR_CANCELLED. stats is filled on success and on error. */
mlxe_status mlxe_generate(mlxe_context *ctx, const int32_t *prompt, int64_t n_prompt,
                          const mlxe_generate_options *options, mlxe_token_callback callback,
                          void *user, const mlxe_cancel *cancel, mlxe_generate_stats *stats,
                          mlxe_error *err);

/* A stable lower-case name for a stop reason ("eos", "max_tokens", ...). */
const char *mlxe_stop_reason_name(mlxe_stop_reason reason);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
