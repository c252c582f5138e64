/* chat/reply.c — one assistant reply: render and tokenize the conversation,
 * apply the context policy, sync the KV cache (prefix reuse), then sample
 * → stop checks → stream → decode until a stop (the device choosing each
 * token after the first where it can); the stats of the reply. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "chat/chat_internal.h"

void mlxe_reply_options_init(mlxe_reply_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->max_tokens = 512;
    mlxe_sampler_options_init(&options->sampler);
    options->add_to_history = true;
}

const char *mlxe_chat_stop_reason_name(mlxe_chat_stop_reason reason) {
    switch (reason) {
    case MLXE_CHAT_STOP_NONE: return "none";
    case MLXE_CHAT_STOP_STOP: return "stop";
    case MLXE_CHAT_STOP_LENGTH: return "length";
    case MLXE_CHAT_STOP_CANCELLED: return "cancelled";
    case MLXE_CHAT_STOP_ERROR: return "error";
    }
    return "unknown";
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t peak_memory_bytes(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return (size_t)usage.ru_maxrss * 1024; /* Linux reports KiB */
}

/* The reply's text as it is released. */
typedef struct reply_text {
    char *data;
    size_t size, capacity;
    mlxe_chat_text_callback callback;
    void *user;
    bool stopped_by_callback;
    bool out_of_memory;
} reply_text;

static void emit(reply_text *r, const char *text, size_t size) {
    if (size == 0) return;
    if (r->size + size + 1 > r->capacity) {
        size_t capacity = (r->size + size + 1) * 2;
        char *grown = realloc(r->data, capacity);
        if (!grown) {
            r->out_of_memory = true;
            return;
        }
        r->data = grown;
        r->capacity = capacity;
    }
    memcpy(r->data + r->size, text, size);
    r->size += size;
    r->data[r->size] = '\0';
    if (r->callback && !r->stopped_by_callback && !r->callback(r->user, text, size)) r->stopped_by_callback = true;
}

static bool is_eos(const mlxe_session *s, const mlxe_reply_options *o, int32_t token) {
    if (o->ignore_eos) return false;
    for (int i = 0; i < s->n_eos_ids; i++)
        if (s->eos_ids[i] == token) return true;
    for (int i = 0; i < o->n_extra_eos_ids; i++)
        if (o->extra_eos_ids[i] == token) return true;
    return false;
}

/* Renders and tokenizes the prompt; with DROP_OLDEST leaves out the oldest
 * turns until the reply has room. *drop_messages: more messages to leave out
 * when the reply starts. */
static mlxe_status build_prompt(mlxe_session *s, const mlxe_reply_options *o, mlxe_token_list *ids,
                                size_t *drop_messages, mlxe_error *err) {
    *drop_messages = 0;
    mlxe_status st = chat_render_tokens(s, 0, ids, err);
    if (st != MLXE_OK) return st;
    int64_t n_ctx = s->options.n_ctx;
    if (s->options.context_policy == MLXE_CONTEXT_DROP_OLDEST) {
        int64_t reserve = o->max_tokens >= 0 && o->max_tokens < n_ctx / 2 ? o->max_tokens : n_ctx / 2;
        for (size_t turns = 1; (int64_t)ids->count + reserve > n_ctx; turns++) {
            size_t messages = chat_turn_messages(s, turns);
            if (messages == 0) break;
            st = chat_render_tokens(s, messages, ids, err);
            if (st != MLXE_OK) return st;
            *drop_messages = messages;
        }
    }
    if (s->options.context_policy != MLXE_CONTEXT_ROTATE && (int64_t)ids->count > n_ctx)
        return mlxe_error_set(err, MLXE_ERR_LIMIT,
                              "the prompt has %zu tokens but the session's context holds %lld%s; use a larger "
                              "context, remove messages or another context policy (drop oldest, rotate)",
                              ids->count, (long long)n_ctx,
                              s->options.context_policy == MLXE_CONTEXT_DROP_OLDEST ? " even with the oldest turns left out" : "");
    return MLXE_OK;
}

static mlxe_status check_options(const mlxe_reply_options *o, mlxe_error *err) {
    if (o->n_stop < 0 || (o->n_stop > 0 && !o->stop) || o->n_extra_eos_ids < 0 ||
        (o->n_extra_eos_ids > 0 && !o->extra_eos_ids))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "reply options: stop/extra_eos_ids counts do not match their arrays");
    for (int i = 0; i < o->n_stop; i++)
        if (!o->stop[i] || !o->stop[i][0])
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "reply options: stop string %d is empty", i);
    return MLXE_OK;
}

mlxe_status mlxe_session_reply(mlxe_session *s, const mlxe_reply_options *options, mlxe_chat_text_callback callback,
                               void *user, const mlxe_cancel *cancel, char **reply_out, mlxe_reply_stats *stats,
                               mlxe_error *err) {
    mlxe_reply_stats local_stats;
    if (!stats) stats = &local_stats;
    memset(stats, 0, sizeof *stats);
    stats->stop_token = -1;
    stats->stop_string_index = -1;
    stats->stop_reason = MLXE_CHAT_STOP_ERROR;
    if (reply_out) *reply_out = NULL;
    if (!s) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_session_reply: session is NULL");
    s->last_device_tokens = 0;
    mlxe_reply_options defaults;
    mlxe_reply_options_init(&defaults);
    const mlxe_reply_options *o = options ? options : &defaults;
    mlxe_status st = check_options(o, err);
    if (st != MLXE_OK) return st;
    double start = now_seconds();

    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    size_t drop_messages = 0;
    mlxe_sampler *sampler = NULL;
    st = build_prompt(s, o, &ids, &drop_messages, err);
    if (st == MLXE_OK) st = mlxe_sampler_create(&o->sampler, mlxe_model_vocab_size(s->model), &sampler, err);
    if (st != MLXE_OK) {
        mlxe_token_list_free(&ids);
        return st;
    }
    s->dropped += drop_messages;
    stats->seed = mlxe_sampler_seed(sampler);
    stats->prompt_tokens = (int64_t)ids.count;
    /* transformers penalises prompt tokens too; the sampler keeps the last penalty_last_n. */
    size_t history = o->sampler.penalty_last_n > 0 ? (size_t)o->sampler.penalty_last_n : 0;
    for (size_t i = ids.count > history ? ids.count - history : 0; i < ids.count; i++)
        mlxe_sampler_accept(sampler, ids.ids[i]);

    int64_t reused = 0;
    st = chat_cache_sync(s, ids.ids, (int64_t)ids.count, cancel, &reused, err);
    double prefill_end = now_seconds();
    stats->cached_prompt_tokens = reused;
    s->last_reused = reused;
    if (prefill_end > start && (int64_t)ids.count > reused)
        stats->prompt_tokens_per_second = (double)((int64_t)ids.count - reused) / (prefill_end - start);
    mlxe_token_list_free(&ids);
    if (st == MLXE_ERR_CANCELLED) {
        mlxe_sampler_free(sampler);
        stats->stop_reason = MLXE_CHAT_STOP_CANCELLED;
        stats->dropped_messages = (int64_t)s->dropped;
        stats->peak_memory_bytes = peak_memory_bytes();
        if (reply_out && !(*reply_out = strdup("")))
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the reply text");
        return MLXE_OK;
    }
    if (st != MLXE_OK) {
        mlxe_sampler_free(sampler);
        return st;
    }

    /* The first token comes from the prompt's logits; each appended one
     * lets the device choose the next where it can (token_choice.h: the
     * same tokens and draws as mlxe_generate). */
    mlxe_token_choice choice;
    mlxe_token_choice_init(&choice, s->ctx, sampler, "reply");
    reply_text text = {.callback = callback, .user = user};
    chat_stop_matcher matcher;
    chat_stop_matcher_init(&matcher, o->stop, o->n_stop);
    mlxe_detokenizer_reset(s->detokenizer);
    mlxe_chat_stop_reason reason = MLXE_CHAT_STOP_NONE;
    double first_token_time = 0;
    const char *piece = NULL, *release = NULL;
    size_t piece_size = 0, release_size = 0;
    for (;;) {
        if (o->max_tokens >= 0 && stats->generated_tokens >= o->max_tokens) {
            reason = MLXE_CHAT_STOP_LENGTH;
            break;
        }
        if (mlxe_cancel_is_requested(cancel) || text.stopped_by_callback) {
            reason = MLXE_CHAT_STOP_CANCELLED;
            break;
        }
        if (!s->logits_valid) {
            st = mlxe_error_set(err, MLXE_ERR_INTERNAL, "reply: no logits after the prompt (please report)");
            break;
        }
        int32_t token = mlxe_token_choice_next(&choice, s->ctx, s->logits_row);
        mlxe_sampler_accept(sampler, token);
        if (stats->generated_tokens++ == 0) {
            first_token_time = now_seconds();
            stats->time_to_first_token_s = first_token_time - start;
        }
        if (is_eos(s, o, token)) {
            reason = MLXE_CHAT_STOP_STOP;
            stats->stop_token = token;
            break;
        }
        st = mlxe_detokenizer_push(s->detokenizer, token, &piece, &piece_size, err);
        if (st != MLXE_OK) break;
        int found = chat_stop_matcher_feed(&matcher, piece, piece_size, &release, &release_size);
        if (found == -2) {
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory matching stop strings");
            break;
        }
        emit(&text, release, release_size);
        if (found >= 0) {
            reason = MLXE_CHAT_STOP_STOP;
            stats->stop_string_index = found;
            break;
        }
        if (text.stopped_by_callback) {
            reason = MLXE_CHAT_STOP_CANCELLED;
            break;
        }
        if (o->max_tokens >= 0 && stats->generated_tokens >= o->max_tokens) {
            reason = MLXE_CHAT_STOP_LENGTH;
            break;
        }
        if (s->options.context_policy != MLXE_CONTEXT_ROTATE && chat_cache_length(s) >= s->options.n_ctx) {
            reason = MLXE_CHAT_STOP_LENGTH;
            break;
        }
        st = chat_cache_append(s, token, &choice, err);
        if (st != MLXE_OK) break;
    }
    /* Whatever the detokenizer and the matcher still hold ends the text,
     * unless a stop string cut it. */
    if (st == MLXE_OK && stats->stop_string_index < 0) {
        st = mlxe_detokenizer_flush(s->detokenizer, &piece, &piece_size, err);
        if (st == MLXE_OK) {
            int found = chat_stop_matcher_feed(&matcher, piece, piece_size, &release, &release_size);
            emit(&text, release, release_size);
            if (found >= 0) {
                reason = MLXE_CHAT_STOP_STOP;
                stats->stop_string_index = found;
            } else {
                chat_stop_matcher_finish(&matcher, &release, &release_size);
                emit(&text, release, release_size);
            }
        }
    }
    chat_stop_matcher_free(&matcher);
    s->last_device_tokens = choice.device_tokens;
    mlxe_token_choice_free(&choice);
    mlxe_sampler_free(sampler);
    if (st == MLXE_OK && text.out_of_memory) st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the reply text");
    double end = now_seconds();
    if (stats->generated_tokens > 1 && end > first_token_time)
        stats->generation_tokens_per_second = (double)(stats->generated_tokens - 1) / (end - first_token_time);
    stats->dropped_messages = (int64_t)s->dropped;
    stats->rotated_tokens = s->rotated_total;
    stats->peak_memory_bytes = peak_memory_bytes();
    if (st != MLXE_OK) {
        free(text.data);
        return st;
    }
    stats->stop_reason = reason;
    if (o->add_to_history) {
        mlxe_message message = {.role = MLXE_ROLE_ASSISTANT, .content = text.data ? text.data : ""};
        st = mlxe_session_add_message(s, &message, err);
        if (st != MLXE_OK) stats->stop_reason = MLXE_CHAT_STOP_ERROR;
    }
    MLXE_DEBUG(MLXE_LOG_CAT_CHAT, "reply: %lld prompt tokens (%lld cached), %lld generated, stop %s",
               (long long)stats->prompt_tokens, (long long)stats->cached_prompt_tokens,
               (long long)stats->generated_tokens, mlxe_chat_stop_reason_name(stats->stop_reason));
    if (reply_out && st == MLXE_OK) {
        *reply_out = text.data ? text.data : strdup("");
        if (!*reply_out) st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for the reply text");
    } else {
        free(text.data);
    }
    return st;
}
