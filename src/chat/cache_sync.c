/* chat/cache_sync.c — the session's KV cache against the prompt: keep the
 * longest common prefix of the new prompt's ids and the cached ones, roll
 * the cache back to it, prefill the rest (llama.cpp's server and mlx-lm's
 * prompt cache do the same). With MLXE_CONTEXT_ROTATE a full cache drops
 * half of its tokens after the first keep_tokens and prefills the kept
 * ones again at their new positions (mlx-lm's max_kv_size keeps the first
 * tokens too, but rotates keys in place; our cache indexes positions
 * directly, so the window is recomputed instead). */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "chat/chat_internal.h"

int64_t chat_cache_length(const mlxe_session *s) { return (int64_t)s->history.count - s->gap_size; }

void chat_cache_clear(mlxe_session *s) {
    s->history.count = 0;
    s->gap_start = s->gap_size = 0;
    s->logits_valid = false;
    mlxe_context_seq_clear(s->ctx, 0);
}

static mlxe_status reserve_history(mlxe_session *s, size_t more, mlxe_error *err) {
    mlxe_token_list *h = &s->history;
    if (h->count + more <= h->capacity) return MLXE_OK;
    size_t capacity = h->capacity ? h->capacity : 256;
    while (capacity < h->count + more) capacity *= 2;
    mlxe_token_id *grown = realloc(h->ids, capacity * sizeof *grown);
    if (!grown) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the session's token history");
    h->ids = grown;
    h->capacity = capacity;
    return MLXE_OK;
}

/* Decodes ids at the end of the cache in calls of n_batch rows; only the
 * last row wants logits. With record, the ids are appended to the history
 * as each call succeeds (so a cancelled prefill leaves a consistent cache).
 * With choice (one id), the device may choose the token after it. */
static mlxe_status decode_ids(mlxe_session *s, const int32_t *ids, int64_t n, bool record, const mlxe_cancel *cancel,
                              mlxe_token_choice *choice, mlxe_error *err) {
    int64_t chunk = mlxe_context_n_batch(s->ctx);
    if (record) {
        mlxe_status st = reserve_history(s, (size_t)n, err);
        if (st != MLXE_OK) return st;
    }
    for (int64_t first = 0; first < n; first += chunk) {
        if (mlxe_cancel_is_requested(cancel))
            return mlxe_error_set(err, MLXE_ERR_CANCELLED, "reply cancelled during the prompt");
        int64_t take = n - first < chunk ? n - first : chunk;
        int64_t position = mlxe_context_seq_length(s->ctx, 0);
        for (int64_t i = 0; i < take; i++) s->batch_positions[i] = (int32_t)(position + i);
        mlxe_batch batch = {.n_tokens = take, .tokens = ids + first, .positions = s->batch_positions,
                            .seq_ids = s->batch_seq_ids, .logits = NULL};
        s->logits_valid = false;
        mlxe_status st = choice ? mlxe_token_choice_decode(choice, s->ctx, &batch, err)
                                : mlxe_context_decode(s->ctx, &batch, err);
        if (st != MLXE_OK) return st;
        s->logits_row = take - 1;
        s->logits_valid = true;
        if (record) {
            memcpy(s->history.ids + s->history.count, ids + first, (size_t)take * sizeof(int32_t));
            s->history.count += (size_t)take;
        }
    }
    return MLXE_OK;
}

/* Drops half of the rotating part of a full cache and prefills what stays. */
static mlxe_status rotate(mlxe_session *s, mlxe_error *err) {
    int64_t length = chat_cache_length(s);
    if (s->gap_size == 0) {
        int64_t keep = s->options.keep_tokens < s->options.n_ctx / 2 ? s->options.keep_tokens : s->options.n_ctx / 2;
        s->gap_start = keep < length ? keep : length;
    }
    int64_t window = length - s->gap_start, discard = window / 2 > 0 ? window / 2 : 1;
    if (discard > window)
        return mlxe_error_set(err, MLXE_ERR_LIMIT, "the context of %lld tokens is too small to rotate",
                              (long long)s->options.n_ctx);
    s->gap_size += discard;
    s->rotated_total += discard;
    mlxe_context_seq_truncate(s->ctx, 0, s->gap_start);
    int64_t first = s->gap_start + s->gap_size, count = (int64_t)s->history.count - first;
    MLXE_DEBUG(MLXE_LOG_CAT_CHAT, "rotate: dropped %lld tokens after the first %lld, prefilling %lld again",
               (long long)discard, (long long)s->gap_start, (long long)count);
    s->logits_valid = false;
    if (count == 0) return MLXE_OK;
    mlxe_status st = decode_ids(s, s->history.ids + first, count, false, NULL, NULL, err);
    if (st != MLXE_OK) chat_cache_clear(s); /* the cache no longer matches the history */
    return st;
}

/* Appends ids to the cache, rotating when full if the policy says so.
 * choice (one id): see chat_cache_append. */
static mlxe_status append_ids(mlxe_session *s, const int32_t *ids, int64_t n, const mlxe_cancel *cancel,
                              mlxe_token_choice *choice, mlxe_error *err) {
    while (n > 0) {
        int64_t room = s->options.n_ctx - chat_cache_length(s);
        if (room <= 0) {
            if (s->options.context_policy != MLXE_CONTEXT_ROTATE)
                return mlxe_error_set(err, MLXE_ERR_LIMIT,
                                      "the conversation needs more than the session's %lld tokens of context; "
                                      "use a larger n_ctx or another context policy (drop oldest, rotate)",
                                      (long long)s->options.n_ctx);
            mlxe_status st = rotate(s, err);
            if (st != MLXE_OK) return st;
            /* Not a plain one-token append any more: the logits decide. */
            choice = NULL;
            continue;
        }
        int64_t take = n < room ? n : room;
        mlxe_status st = decode_ids(s, ids, take, true, cancel, choice, err);
        if (st != MLXE_OK) return st;
        ids += take;
        n -= take;
    }
    return MLXE_OK;
}

mlxe_status chat_cache_sync(mlxe_session *s, const int32_t *ids, int64_t n, const mlxe_cancel *cancel,
                            int64_t *reused, mlxe_error *err) {
    *reused = 0;
    if (n < 1) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "the rendered prompt has no tokens");
    int64_t common = 0, limit = (int64_t)s->history.count < n ? (int64_t)s->history.count : n;
    while (common < limit && s->history.ids[common] == ids[common]) common++;
    /* The last prompt token is decoded again when everything matches: its
     * logits are what the reply starts from. */
    if (common >= n) common = n - 1;
    if (s->gap_size > 0 && common < s->gap_start + s->gap_size) {
        /* Inside the rotated-out gap only the tokens before it still match. */
        if (common > s->gap_start) common = s->gap_start;
        s->gap_start = s->gap_size = 0;
        mlxe_context_seq_truncate(s->ctx, 0, common);
    } else {
        mlxe_context_seq_truncate(s->ctx, 0, common - s->gap_size);
    }
    if ((int64_t)s->history.count != common) s->logits_valid = false;
    s->history.count = (size_t)common;
    *reused = common;
    MLXE_DEBUG(MLXE_LOG_CAT_CHAT, "prompt: %lld tokens, %lld reused from the cache, %lld to prefill", (long long)n,
               (long long)common, (long long)(n - common));
    return append_ids(s, ids + common, n - common, cancel, NULL, err);
}

mlxe_status chat_cache_append(mlxe_session *s, int32_t token, mlxe_token_choice *choice, mlxe_error *err) {
    return append_ids(s, &token, 1, NULL, choice, err);
}
