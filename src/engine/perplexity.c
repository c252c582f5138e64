/* engine/perplexity.c — perplexity over contiguous windows
 * (include/mlxengine/perplexity.h). Windows are prefilled in chunks whose
 * every row keeps its logits, so memory stays at CHUNK_ROWS vocab rows. */
#include "mlxengine/perplexity.h"

#include <math.h>
#include <stdlib.h>

#include "base/error.h"
#include "mlxengine/model.h"

#define CHUNK_ROWS 64

void mlxe_perplexity_options_init(mlxe_perplexity_options *options) {
    if (!options) return;
    options->window = 0;
    options->seq_id = 0;
}

/* -log softmax(logits)[target], in double. */
static double token_nll(const float *logits, int64_t vocab, int32_t target) {
    double max = logits[0];
    for (int64_t v = 1; v < vocab; v++)
        if (logits[v] > max) max = logits[v];
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; v++) sum += exp((double)logits[v] - max);
    return log(sum) + max - (double)logits[target];
}

mlxe_status mlxe_perplexity(mlxe_context *ctx, const int32_t *ids, int64_t n_ids,
                            const mlxe_perplexity_options *options, const mlxe_cancel *cancel,
                            mlxe_perplexity_result *result, mlxe_error *err) {
    if (!ctx || !ids || !result)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_perplexity: ctx, ids and result must be given");
    mlxe_perplexity_options o;
    mlxe_perplexity_options_init(&o);
    if (options) o = *options;
    int64_t n_ctx = mlxe_context_n_ctx(ctx);
    int64_t window = o.window ? o.window : n_ctx;
    if (n_ids < 2)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "perplexity needs at least 2 tokens, got %lld: give a longer text", (long long)n_ids);
    if (window < 2 || window > n_ctx)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "perplexity window %lld is outside 2..%lld (the context's size)", (long long)window,
                              (long long)n_ctx);
    if (o.seq_id < 0 || o.seq_id >= mlxe_context_n_seq(ctx))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "perplexity: sequence %d is outside 0..%d",
                              (int)o.seq_id, (int)mlxe_context_n_seq(ctx) - 1);
    int64_t vocab = mlxe_model_vocab_size(mlxe_context_model(ctx));
    for (int64_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "perplexity: token %lld is id %d, outside the vocabulary 0..%lld", (long long)i,
                                  (int)ids[i], (long long)vocab - 1);

    int64_t chunk_max = mlxe_context_n_batch(ctx) < CHUNK_ROWS ? mlxe_context_n_batch(ctx) : CHUNK_ROWS;
    int32_t positions[CHUNK_ROWS], seq_ids[CHUNK_ROWS];
    int8_t wants[CHUNK_ROWS];
    for (int i = 0; i < CHUNK_ROWS; i++) {
        seq_ids[i] = o.seq_id;
        wants[i] = 1;
    }
    double sum_nll = 0.0;
    int64_t scored = 0, windows = 0;
    for (int64_t start = 0; start < n_ids; start += window) {
        int64_t len = n_ids - start < window ? n_ids - start : window;
        if (len < 2) break;
        mlxe_context_seq_clear(ctx, o.seq_id);
        for (int64_t done = 0; done < len; done += chunk_max) {
            if (cancel && mlxe_cancel_is_requested(cancel))
                return mlxe_error_set(err, MLXE_ERR_CANCELLED, "perplexity cancelled");
            int64_t rows = len - done < chunk_max ? len - done : chunk_max;
            for (int64_t r = 0; r < rows; r++) positions[r] = (int32_t)(done + r);
            mlxe_batch batch = {.n_tokens = rows, .tokens = ids + start + done, .positions = positions,
                                .seq_ids = seq_ids, .logits = wants};
            mlxe_status st = mlxe_context_decode(ctx, &batch, err);
            if (st != MLXE_OK) return st;
            /* Row r predicts token done + r + 1 of the window. */
            for (int64_t r = 0; r < rows && done + r + 1 < len; r++) {
                sum_nll += token_nll(mlxe_context_logits(ctx, r), vocab, ids[start + done + r + 1]);
                scored++;
            }
        }
        windows++;
    }
    result->sum_nll = sum_nll;
    result->n_scored = scored;
    result->n_windows = windows;
    result->perplexity = exp(sum_nll / (double)scored);
    return MLXE_OK;
}
