/* mlxengine/perplexity.h — perplexity of a token sequence under a model.
 *
 * The method (matching scripts/embedded/train.py's perplexity_contiguous,
 * which recorded the transformers reference in tests/embedded/golden.json):
 * the ids are cut into consecutive, non-overlapping windows of `window`
 * tokens (the last may be shorter); each window runs alone from an empty
 * sequence; within a window token j >= 1 is scored by its log-probability
 * given tokens 0..j-1 of the same window, the window's first token is not
 * scored; perplexity = exp(sum of negative log-probabilities / scored
 * tokens). Log-softmax in double precision over the float32 logits.
 *
 * Thread-safety: as the context (one thread at a time). */
#ifndef MLXENGINE_PERPLEXITY_H
#define MLXENGINE_PERPLEXITY_H

#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/context.h"
#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_perplexity_options {
    /* Tokens per window; 0 (default): the context's n_ctx. At least 2 and
     * at most n_ctx. */
    int64_t window;
    /* The context sequence to use; it is cleared before each window and
     * left holding the last one. Default 0. */
    int32_t seq_id;
} mlxe_perplexity_options;

void mlxe_perplexity_options_init(mlxe_perplexity_options *options);

typedef struct mlxe_perplexity_result {
    double perplexity;       /* exp(sum_nll / n_scored) */
    double sum_nll;          /* natural-log negative log-likelihood, summed */
    int64_t n_scored;        /* tokens scored */
    int64_t n_windows;       /* windows run (a last window of one token is skipped) */
} mlxe_perplexity_result;

/* Computes the perplexity of ids[0..n_ids) (n_ids >= 2) in ctx. options and
 * cancel may be NULL. Errors: MLXE_ERR_INVALID_ARGUMENT (too few ids, a bad
 * window or sequence, an id outside the vocabulary), errors of
 * mlxe_context_decode, MLXE_ERR_CANCELLED. */
mlxe_status mlxe_perplexity(mlxe_context *ctx, const int32_t *ids, int64_t n_ids,
                            const mlxe_perplexity_options *options, const mlxe_cancel *cancel,
                            mlxe_perplexity_result *result, mlxe_error *err);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif

#endif
