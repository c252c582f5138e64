/* mlxengine/chat.h — chat sessions: a conversation rendered with the
 * model's own chat template, answered by the model, with the KV cache kept
 * between turns.
 *
 * A session holds the messages (system / user / assistant / tool), the tool
 * specs and extra template variables, one KV cache sequence and the token
 * ids that cache holds. A reply renders the whole conversation with
 * add_generation_prompt, tokenizes it, compares the ids with the cached ones
 * and keeps the common prefix: only the tokens after it are prefilled. So a
 * new turn costs only its new tokens, and editing or removing an earlier
 * message rolls the cache back to where the new prompt first differs.
 *
 * Text is streamed through the tokenizer's incremental detokenizer (never
 * half a UTF-8 character). Stop strings are matched on the text across
 * token boundaries and are never streamed: text that could be the start of
 * a stop string is held back until it is known not to be one.
 *
 * Ownership: the session borrows the model, tokenizer and chat template
 * given at creation (they must outlive it) and copies every message and
 * string passed in.
 *
 * Thread-safety: a session is used by one thread at a time; the cancel
 * token of a reply may be requested from any thread (e.g. a SIGINT handler
 * through mlxe_cancel_request). Sessions of one model may run on different
 * threads. */
#ifndef MLXENGINE_CHAT_H
#define MLXENGINE_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/cancel.h"
#include "mlxengine/model.h"
#include "mlxengine/sampler.h"
#include "mlxengine/status.h"
#include "mlxengine/template.h"
#include "mlxengine/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_session mlxe_session;

typedef enum mlxe_role {
    MLXE_ROLE_SYSTEM = 0,
    MLXE_ROLE_USER,
    MLXE_ROLE_ASSISTANT,
    MLXE_ROLE_TOOL
} mlxe_role;

/* "system", "user", "assistant", "tool"; NULL for a value outside the enum. */
const char *mlxe_role_name(mlxe_role role);

/* One message as the chat template sees it (transformers' message dicts).
 * Only role and content are required; the other fields may be NULL. */
typedef struct mlxe_message {
    mlxe_role role;
    const char *content;           /* UTF-8 text; NULL renders as None */
    const char *name;              /* tool: the function that produced this result */
    const char *tool_call_id;      /* tool: the id of the call this answers */
    /* assistant: the calls it made, as a JSON array in transformers' form,
     * e.g. [{"type":"function","id":"c1","function":{"name":"f",
     * "arguments":{"x":1}}}]; passed to the template as it is. */
    const char *tool_calls_json;
    const char *reasoning_content; /* assistant: its thinking, for templates that render it */
} mlxe_message;

typedef enum mlxe_context_policy {
    /* The conversation must fit: a reply whose prompt does not fit fails
     * with MLXE_ERR_LIMIT; a reply that fills the context stops with
     * "length". Default. */
    MLXE_CONTEXT_ERROR = 0,
    /* Leave out the oldest turns (a user message and the answers after it),
     * never the system message nor the last turn, until the prompt leaves
     * room for the reply (max_tokens, at most half the context). Left-out
     * messages stay in the session (mlxe_session_message_count) but are no
     * longer rendered; the count only grows until the session is reset. */
    MLXE_CONTEXT_DROP_OLDEST,
    /* A rotating window over the tokens, like mlx-lm's max_kv_size: the
     * first keep_tokens tokens stay, the oldest tokens after them are
     * dropped when the cache is full. Unlike mlx-lm (whose rotating cache
     * keeps the old keys as computed), the kept tokens are prefilled again
     * at compacted positions, half a window at a time, so the result is
     * what the model computes on the window's tokens alone. */
    MLXE_CONTEXT_ROTATE
} mlxe_context_policy;

typedef struct mlxe_session_options {
    /* KV cache size in tokens (the window for MLXE_CONTEXT_ROTATE, i.e.
     * max_kv_size). 0 (default): the model's context length, capped at 4096. */
    int64_t n_ctx;
    int64_t n_batch;               /* prefill rows per decode call. Default 512 */
    int64_t n_ubatch;              /* rows per forward pass. Default 128 */
    mlxe_context_policy context_policy; /* Default MLXE_CONTEXT_ERROR */
    int64_t keep_tokens;           /* MLXE_CONTEXT_ROTATE: tokens kept at the start. Default 4 */
    /* A named chat template ("default", "tool_use"); NULL (default): "tool_use"
     * when tools are set and the model has one, else "default". */
    const char *template_name;
} mlxe_session_options;

void mlxe_session_options_init(mlxe_session_options *options);

/* Creates a session over model, tokenizer and template (borrowed; they must
 * outlive the session), with its own KV cache. options may be NULL. */
mlxe_status mlxe_session_create(mlxe_model *model, const mlxe_tokenizer *tokenizer,
                                const mlxe_chat_template *chat_template,
                                const mlxe_session_options *options, mlxe_session **out,
                                mlxe_error *err);
/* Accepts NULL. */
void mlxe_session_free(mlxe_session *session);

/* ---- the conversation ---- */

/* Appends a copy of message. MLXE_ERR_INVALID_ARGUMENT for a bad role or
 * tool_calls_json that is not a JSON array. */
mlxe_status mlxe_session_add_message(mlxe_session *session, const mlxe_message *message,
                                     mlxe_error *err);
/* Inserts a copy of message before index (index = count appends). */
mlxe_status mlxe_session_insert_message(mlxe_session *session, size_t index,
                                        const mlxe_message *message, mlxe_error *err);
/* Replaces message index (copied). The cache rolls back at the next reply
 * to where the rendered prompt first differs. */
mlxe_status mlxe_session_set_message(mlxe_session *session, size_t index,
                                     const mlxe_message *message, mlxe_error *err);
/* Removes messages [first, first + count) (clamped to the history). */
void mlxe_session_remove_messages(mlxe_session *session, size_t first, size_t count);
size_t mlxe_session_message_count(const mlxe_session *session);
/* Fills *message with borrowed pointers (valid until the message is
 * changed or removed). False when index is out of range. */
bool mlxe_session_message_at(const mlxe_session *session, size_t index, mlxe_message *message);
/* Messages left out of the prompt by MLXE_CONTEXT_DROP_OLDEST (the oldest
 * non-system ones). */
size_t mlxe_session_dropped_messages(const mlxe_session *session);

/* Tool specs given to the template as `tools`: a JSON array of JSON schemas
 * in the OpenAI/transformers form; NULL removes them. */
mlxe_status mlxe_session_set_tools(mlxe_session *session, const char *tools_json, mlxe_error *err);
/* An extra template variable (enable_thinking, reasoning_effort, ...) as a
 * JSON value ("true", "\"low\"", "1.0"); value_json NULL removes it. The
 * names messages, tools and add_generation_prompt are the session's own. */
mlxe_status mlxe_session_set_variable(mlxe_session *session, const char *name,
                                      const char *value_json, mlxe_error *err);

/* Forgets messages, tools, variables, dropped messages and the cache. */
void mlxe_session_reset(mlxe_session *session);

/* Renders the conversation as the next reply would see it (with
 * add_generation_prompt) into a malloc'd string (free()). */
mlxe_status mlxe_session_render(const mlxe_session *session, char **text, size_t *size,
                                mlxe_error *err);

/* ---- replies ---- */

typedef enum mlxe_chat_stop_reason {
    MLXE_CHAT_STOP_NONE = 0,
    MLXE_CHAT_STOP_STOP,      /* an end-of-sequence id or a stop string */
    MLXE_CHAT_STOP_LENGTH,    /* max_tokens, or the context is full */
    MLXE_CHAT_STOP_CANCELLED, /* the cancel token, or the callback returned false */
    MLXE_CHAT_STOP_ERROR      /* the call failed (see its status) */
} mlxe_chat_stop_reason;

/* "stop", "length", "cancelled", "error" ("none" before a reply). */
const char *mlxe_chat_stop_reason_name(mlxe_chat_stop_reason reason);

typedef struct mlxe_reply_options {
    int64_t max_tokens;           /* < 0: until a stop or a full context. Default 512 */
    mlxe_sampler_options sampler; /* Default: mlxe_sampler_options_init's (greedy) */
    /* Stop strings (UTF-8, non-empty), matched across token boundaries;
     * the text from the stop string on is neither streamed nor kept. */
    const char *const *stop;
    int n_stop;
    /* Ids that end the reply besides the model's end-of-sequence ids
     * (generation_config.json, config.json) and the tokenizer's eos. */
    const int32_t *extra_eos_ids;
    int n_extra_eos_ids;
    bool ignore_eos;              /* only max_tokens and stop strings stop. Default false */
    /* Append the reply to the conversation as an assistant message (also
     * when cancelled: the text streamed so far). Default true. */
    bool add_to_history;
} mlxe_reply_options;

void mlxe_reply_options_init(mlxe_reply_options *options);

typedef struct mlxe_reply_stats {
    int64_t prompt_tokens;        /* the rendered prompt's tokens */
    int64_t cached_prompt_tokens; /* of them, reused from the KV cache */
    int64_t generated_tokens;     /* sampled tokens (an end-of-sequence id included) */
    double time_to_first_token_s; /* from the call to the first sampled token */
    double prompt_tokens_per_second;     /* prefilled (not cached) tokens / prefill time */
    double generation_tokens_per_second; /* tokens after the first / their time */
    size_t peak_memory_bytes;     /* the process's peak resident memory so far */
    mlxe_chat_stop_reason stop_reason;
    int32_t stop_token;           /* the end-of-sequence id that stopped it, else -1 */
    int stop_string_index;        /* the stop string that matched, else -1 */
    int64_t dropped_messages;     /* messages left out of the prompt (DROP_OLDEST) */
    int64_t rotated_tokens;       /* tokens dropped from the window so far (ROTATE) */
    uint64_t seed;                /* the sampler's seed */
} mlxe_reply_stats;

/* Receives each piece of reply text as soon as it is final (whole UTF-8
 * characters, never part of a stop string). Return false to stop: the
 * reply ends with stop reason "cancelled". */
typedef bool (*mlxe_chat_text_callback)(void *user, const char *text, size_t size);

/* Answers the conversation: renders it with add_generation_prompt, reuses
 * the cached prefix, prefills the rest, samples until a stop, streams the
 * text to callback (may be NULL) and, with add_to_history, appends the
 * reply. options, callback, cancel and stats may be NULL; *reply (may be
 * NULL) receives the full reply text, malloc'd (free()).
 * A cancelled reply returns MLXE_OK with stop reason "cancelled". Errors:
 * template errors (MLXE_ERR_TEMPLATE with the template's message),
 * MLXE_ERR_LIMIT when the prompt does not fit (MLXE_CONTEXT_ERROR, or even
 * after dropping every turn it may), bad sampler options; the stats then
 * say "error" and the conversation is unchanged. */
mlxe_status mlxe_session_reply(mlxe_session *session, const mlxe_reply_options *options,
                               mlxe_chat_text_callback callback, void *user,
                               const mlxe_cancel *cancel, char **reply, mlxe_reply_stats *stats,
                               mlxe_error *err);

/* Tokens in the KV cache now. */
int64_t mlxe_session_cached_tokens(const mlxe_session *session);
/* The session's KV cache size in tokens. */
int64_t mlxe_session_n_ctx(const mlxe_session *session);

/* ---- save and load ----
 * A session file holds a header naming the model (its model_type, sizes
 * and a fingerprint of its config and weights), the conversation (messages,
 * tools, variables, dropped count), the cached token ids and their KV
 * cache, and a SHA-256 of all of it. Written to a temporary file and
 * renamed, so a crash never leaves half a file under the name. */
mlxe_status mlxe_session_save(mlxe_session *session, const char *path, mlxe_error *err);
/* Replaces the session's conversation and cache with the file's. Refuses a
 * file saved with another model (MLXE_ERR_INVALID_ARGUMENT naming both),
 * and a truncated or corrupt one (MLXE_ERR_FORMAT); a cache larger than
 * this session's n_ctx gives MLXE_ERR_LIMIT. On error the session is
 * unchanged. */
mlxe_status mlxe_session_load(mlxe_session *session, const char *path, mlxe_error *err);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
