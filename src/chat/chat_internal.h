/* chat/chat_internal.h — the session struct shared by the chat layer's
 * files: session.c (messages, options), render.c (template context and
 * tokens), cache_sync.c (prefix reuse, rotation), reply.c (the generation
 * loop), session_file.c (save/load), model_identity.c (fingerprint). */
#ifndef MLXE_CHAT_INTERNAL_H
#define MLXE_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/token_choice.h"
#include "mlxengine/chat.h"
#include "mlxengine/context.h"

typedef struct chat_message {
    mlxe_role role;
    char *content;            /* NULL renders as None */
    char *name;
    char *tool_call_id;
    char *tool_calls_json;
    char *reasoning_content;
} chat_message;

typedef struct chat_variable {
    char *name;
    char *value_json;
} chat_variable;

/* What identifies a model in session files. */
typedef struct chat_model_identity {
    unsigned char fingerprint[32];  /* SHA-256 over sizes, tensor names/shapes and sampled bytes */
    char description[256];          /* "qwen2: 2 layers, 4 heads (2 KV) x 8, vocab 320, weights 0123abcd" */
} chat_model_identity;

#define CHAT_MAX_EOS_IDS 40

struct mlxe_session {
    mlxe_model *model;
    const mlxe_tokenizer *tokenizer;
    const mlxe_chat_template *chat_template;
    mlxe_context *ctx;
    mlxe_detokenizer *detokenizer;
    mlxe_session_options options;
    char *template_name;

    chat_message *messages;
    size_t n_messages, messages_capacity;
    size_t dropped;           /* DROP_OLDEST: messages after the leading system one left out */
    char *tools_json;
    chat_variable *variables;
    size_t n_variables;

    /* The token ids the KV cache stands for. With ROTATE the cache holds
     * history[0, gap_start) and history[gap_start + gap_size, end): the
     * ids in the gap were rotated out. cache length = count - gap_size. */
    mlxe_token_list history;
    int64_t gap_start, gap_size;
    int64_t rotated_total;
    int64_t last_reused;
    /* Row of the last decoded batch holding the logits of history's last id. */
    int64_t logits_row;
    bool logits_valid;
    int32_t *batch_positions, *batch_seq_ids; /* [n_batch] scratch, made once */
    /* Tokens of the last reply chosen on the device (the others were
     * sampled on the host from downloaded logits). */
    int64_t last_device_tokens;

    int32_t eos_ids[CHAT_MAX_EOS_IDS];
    int n_eos_ids;
    chat_model_identity identity;
};

/* Frees a message's strings. */
void chat_message_clear(chat_message *message);

/* model_identity.c */
void chat_model_identity_compute(const mlxe_model *model, const mlxe_tokenizer *tokenizer,
                                 chat_model_identity *out);

/* render.c: the template context JSON of the conversation (messages left
 * out by DROP_OLDEST skipped; `skip_extra` more turns dropped on top) and
 * its token ids. */
mlxe_status chat_render_text(const mlxe_session *session, size_t skip_extra, char **text,
                             size_t *size, mlxe_error *err);
mlxe_status chat_render_tokens(const mlxe_session *session, size_t skip_extra,
                               mlxe_token_list *ids, mlxe_error *err);
/* How many messages skip_extra turns amount to after those already
 * dropped; 0 when no further turn may be dropped (the last turn stays). */
size_t chat_turn_messages(const mlxe_session *session, size_t skip_turns);

/* cache_sync.c */
/* Makes the cache hold ids[0, n) with the logits of ids[n-1] ready,
 * reusing the common prefix with what is cached (rolling back past it).
 * *reused receives the prefix kept. Cancellation between prefill calls. */
mlxe_status chat_cache_sync(mlxe_session *session, const int32_t *ids, int64_t n,
                            const mlxe_cancel *cancel, int64_t *reused, mlxe_error *err);
/* Appends one generated token (rotating first when the cache is full and
 * the policy allows; MLXE_ERR_LIMIT otherwise). With choice (may be NULL),
 * a plain one-token append lets the device choose the token after it
 * (mlxe_token_choice_next); after a rotation the logits are left for the
 * host to sample. */
mlxe_status chat_cache_append(mlxe_session *session, int32_t token, mlxe_token_choice *choice,
                              mlxe_error *err);
int64_t chat_cache_length(const mlxe_session *session);
/* Forgets the cache. */
void chat_cache_clear(mlxe_session *session);

/* stop_strings.c: the stop-string matcher over streamed text. */
typedef struct chat_stop_matcher {
    const char *const *stop;
    int n_stop;
    char *pending;            /* text not yet released */
    size_t pending_size, pending_capacity;
} chat_stop_matcher;

void chat_stop_matcher_init(chat_stop_matcher *m, const char *const *stop, int n_stop);
void chat_stop_matcher_free(chat_stop_matcher *m);
/* Adds text; *release (borrowed until the next call) / *release_size is
 * the text that can no longer be part of a stop string. Returns the index
 * of the stop string found (the release then ends just before it), or -1;
 * -2 when out of memory. */
int chat_stop_matcher_feed(chat_stop_matcher *m, const char *text, size_t size, const char **release,
                           size_t *release_size);
/* End of the stream: everything held back is released. */
void chat_stop_matcher_finish(chat_stop_matcher *m, const char **release, size_t *release_size);

#endif
