/* engine/generate.c — the generation loop (include/mlxengine/generate.h):
 * prefill the prompt in n_ubatch chunks (logits only for the last token),
 * then sample → callback → stop checks → decode the token, until a stop. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "engine/engine_internal.h"
#include "engine/token_choice.h"
#include "mlxengine/generate.h"

void mlxe_generate_options_init(mlxe_generate_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->max_tokens = 128;
    mlxe_sampler_options_init(&options->sampler);
    options->seq_id = 0;
    options->eos_ids = NULL;
    options->n_eos_ids = 0;
    options->ignore_eos = false;
}

const char *mlxe_stop_reason_name(mlxe_stop_reason reason) {
    switch (reason) {
    case MLXE_STOP_NONE: return "none";
    case MLXE_STOP_MAX_TOKENS: return "max_tokens";
    case MLXE_STOP_EOS: return "eos";
    case MLXE_STOP_CALLBACK: return "callback";
    case MLXE_STOP_CONTEXT_FULL: return "context_full";
    case MLXE_STOP_CANCELLED: return "cancelled";
    }
    return "unknown";
}

static bool is_stop_id(const int32_t *ids, int32_t n, int32_t token) {
    for (int32_t i = 0; i < n; i++)
        if (ids[i] == token) return true;
    return false;
}

static void finish_stats(mlxe_generate_stats *stats) {
    if (stats->prefill_seconds > 0)
        stats->prefill_tokens_per_second = (double)stats->n_prompt_tokens / stats->prefill_seconds;
    /* The first generated token comes from the prefill's logits: decode
     * passes are the tokens after it that were fed back. */
    int64_t decoded = stats->n_generated_tokens > 1 ? stats->n_generated_tokens - 1 : 0;
    if (stats->decode_seconds > 0 && decoded > 0)
        stats->decode_tokens_per_second = (double)decoded / stats->decode_seconds;
}

/* Prefills prompt into seq in decode calls of up to n_batch rows (each run
 * as passes of n_ubatch rows), checking cancel between calls; only the last
 * row asks for logits. With choice, the last call chooses the first token
 * the token_choice way (on the device where it can: a pipelined loop then
 * embeds it from there). */
static mlxe_status prefill(mlxe_context *ctx, int32_t seq, const int32_t *prompt, int64_t n_prompt,
                           int64_t chunk, const mlxe_cancel *cancel, mlxe_token_choice *choice, mlxe_error *err) {
    int32_t *positions = malloc((size_t)chunk * 2 * sizeof(int32_t));
    if (!positions) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the prompt batch");
    int32_t *seq_ids = positions + chunk;
    mlxe_status st = MLXE_OK;
    for (int64_t first = 0; first < n_prompt; first += chunk) {
        if (mlxe_cancel_is_requested(cancel)) {
            st = mlxe_error_set(err, MLXE_ERR_CANCELLED, "generation cancelled during the prompt");
            break;
        }
        int64_t n = n_prompt - first < chunk ? n_prompt - first : chunk;
        for (int64_t i = 0; i < n; i++) {
            positions[i] = (int32_t)(first + i);
            seq_ids[i] = seq;
        }
        mlxe_batch batch = {.n_tokens = n, .tokens = prompt + first, .positions = positions, .seq_ids = seq_ids,
                            .logits = NULL};
        st = choice && first + n == n_prompt ? mlxe_token_choice_decode(choice, ctx, &batch, err)
                                             : mlxe_context_decode(ctx, &batch, err);
        if (st != MLXE_OK) break;
    }
    free(positions);
    return st;
}

/* Plain greedy generation queues each decode step before the host has
 * read the token the step before chose (mlxe_context_decode_ahead), so the
 * device does not wait for the host between steps (on an H100, +0.5-2.6%
 * decode: docs/CUDA.md, version 11). MLXE_DECODE_PIPELINE=0 turns it off,
 * for side-by-side timing. */
static bool pipeline_wanted(void) {
    const char *value = getenv("MLXE_DECODE_PIPELINE");
    return !(value && strcmp(value, "0") == 0);
}

mlxe_status mlxe_generate(mlxe_context *ctx, const int32_t *prompt, int64_t n_prompt,
                          const mlxe_generate_options *options, mlxe_token_callback callback, void *user,
                          const mlxe_cancel *cancel, mlxe_generate_stats *stats, mlxe_error *err) {
    mlxe_generate_stats local_stats;
    if (!stats) stats = &local_stats;
    memset(stats, 0, sizeof *stats);
    if (!ctx || !prompt || n_prompt < 1)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "generate: a context and a prompt of at least one token are required");
    mlxe_generate_options defaults;
    mlxe_generate_options_init(&defaults);
    if (!options) options = &defaults;
    if (options->max_tokens < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "generate: max_tokens %lld must be >= 0",
                              (long long)options->max_tokens);
    const mlxe_model *model = mlxe_context_model(ctx);
    int64_t vocab = mlxe_model_vocab_size(model);
    const int32_t *eos_ids = options->eos_ids;
    int32_t n_eos = options->n_eos_ids;
    if (!eos_ids || n_eos <= 0) n_eos = mlxe_model_eos_ids(model, &eos_ids);
    if (options->ignore_eos) n_eos = 0;
    int32_t seq = options->seq_id;
    if (seq < 0 || seq >= mlxe_context_n_seq(ctx))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "generate: seq_id %d but the context has %d sequences",
                              (int)seq, (int)mlxe_context_n_seq(ctx));
    if (n_prompt > mlxe_context_n_ctx(ctx))
        return mlxe_error_set(err, MLXE_ERR_LIMIT,
                              "generate: the prompt has %lld tokens but the context holds %lld per sequence",
                              (long long)n_prompt, (long long)mlxe_context_n_ctx(ctx));

    stats->n_prompt_tokens = n_prompt;
    stats->load_seconds = mlxe_model_load_seconds(model);
    mlxe_sampler *sampler = NULL;
    mlxe_status st = mlxe_sampler_create(&options->sampler, vocab, &sampler, err);
    if (st != MLXE_OK) return st;
    stats->seed = mlxe_sampler_seed(sampler);
    for (int64_t i = 0; i < n_prompt; i++) mlxe_sampler_accept(sampler, prompt[i]);

    mlxe_context_seq_clear(ctx, seq);
    double start = mlxe_now_seconds();
    int64_t chunk = mlxe_context_n_batch(ctx);
    /* Each decode step's token is chosen on the device where it can be
     * (token_choice.h); the first comes from the prefill's logits (chosen
     * on the device too when the loop is pipelined). */
    mlxe_token_choice choice;
    mlxe_token_choice_init(&choice, ctx, sampler, "generate");
    const bool pipelined = choice.device_greedy && pipeline_wanted();
    st = prefill(ctx, seq, prompt, n_prompt, chunk, cancel, pipelined ? &choice : NULL, err);
    stats->prefill_seconds = mlxe_now_seconds() - start;
    /* the row holding logits: the last of the prefill's last chunk, then 0 */
    int64_t last_row = (n_prompt - 1) % chunk;

    /* Pipelined: steps queued (mlxe_context_decode_ahead) whose tokens the
     * host has not taken yet; at most 2, the one this iteration takes and
     * the one after it. */
    int queued = 0;
    int64_t queued_steps = 0;
    bool drop_queued = false;
    int64_t position = n_prompt;
    while (st == MLXE_OK) {
        if (stats->n_generated_tokens >= options->max_tokens) {
            stats->stop_reason = MLXE_STOP_MAX_TOKENS;
            break;
        }
        if (mlxe_cancel_is_requested(cancel)) {
            st = mlxe_error_set(err, MLXE_ERR_CANCELLED, "generation cancelled after %lld tokens",
                                (long long)stats->n_generated_tokens);
            break;
        }
        /* this iteration's token: from a queued step, or chosen by the last
         * sequential step (on the device or from its logits) */
        const bool take = queued > 0;
        const bool chosen_on_device = take || choice.device_token >= 0;
        const bool more_wanted =
            stats->n_generated_tokens + 1 < options->max_tokens && position < mlxe_context_n_ctx(ctx);
        /* Pipelined: the step after this token, which embeds it from the
         * device, is queued before the host waits for the token, so the
         * device runs it while the host takes, reports and checks this one;
         * a stop below drops it again (mlxe_context_finish_ahead). */
        if (pipelined && chosen_on_device && more_wanted) {
            double decode_start = mlxe_now_seconds();
            st = mlxe_context_decode_ahead(ctx, seq, err);
            stats->decode_seconds += mlxe_now_seconds() - decode_start;
            if (st != MLXE_OK) break;
            queued++;
            queued_steps++;
        }
        int32_t token = -1;
        if (take) { /* waiting for the step that chose it: decode time */
            double take_start = mlxe_now_seconds();
            st = mlxe_context_take_ahead(ctx, &token, err);
            stats->decode_seconds += mlxe_now_seconds() - take_start;
            queued--;
            if (st != MLXE_OK) break;
        }
        double sample_start = mlxe_now_seconds();
        if (!take) token = mlxe_token_choice_next(&choice, ctx, last_row);
        mlxe_sampler_accept(sampler, token);
        stats->sample_seconds += mlxe_now_seconds() - sample_start;
        stats->n_generated_tokens++;
        /* a stop here drops the step queued for this token */
        drop_queued = queued > 0;
        if (callback && !callback(user, token)) {
            stats->stop_reason = MLXE_STOP_CALLBACK;
            break;
        }
        if (is_stop_id(eos_ids, n_eos, token)) {
            stats->stop_reason = MLXE_STOP_EOS;
            break;
        }
        if (stats->n_generated_tokens >= options->max_tokens) {
            stats->stop_reason = MLXE_STOP_MAX_TOKENS;
            break;
        }
        if (position >= mlxe_context_n_ctx(ctx)) {
            stats->stop_reason = MLXE_STOP_CONTEXT_FULL;
            break;
        }
        drop_queued = false;
        if (queued == 0) {
            int32_t pos32 = (int32_t)position;
            mlxe_batch batch = {.n_tokens = 1, .tokens = &token, .positions = &pos32, .seq_ids = &seq, .logits = NULL};
            double decode_start = mlxe_now_seconds();
            st = mlxe_token_choice_decode(&choice, ctx, &batch, err);
            stats->decode_seconds += mlxe_now_seconds() - decode_start;
        }
        last_row = 0;
        position++;
    }
    if (pipelined) {
        MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "generate: %lld steps queued ahead of the host", (long long)queued_steps);
        /* a step queued for a token that stopped generation is dropped
         * (one queued before a cancellation has a token that did not: it
         * stays, as the sequential loop would have run it); the device's
         * errors */
        mlxe_error finish_err;
        mlxe_status finished = mlxe_context_finish_ahead(ctx, seq, drop_queued, &finish_err);
        if (st == MLXE_OK && finished != MLXE_OK) {
            st = finished;
            if (err) *err = finish_err;
        }
    }
    if (st == MLXE_ERR_CANCELLED) stats->stop_reason = MLXE_STOP_CANCELLED;
    finish_stats(stats);
    MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "generate: %lld prompt tokens (%.1f tok/s), %lld generated (%.1f tok/s), stop %s",
               (long long)stats->n_prompt_tokens, stats->prefill_tokens_per_second,
               (long long)stats->n_generated_tokens, stats->decode_tokens_per_second,
               mlxe_stop_reason_name(stats->stop_reason));
    mlxe_token_choice_free(&choice);
    mlxe_sampler_free(sampler);
    return st;
}
