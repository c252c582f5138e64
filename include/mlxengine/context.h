/* mlxengine/context.h — a KV cache and the forward pass over batches.
 *
 * A context holds the KV cache of up to n_seq sequences of up to n_ctx
 * tokens each, plus the scratch memory of the forward pass, all allocated at
 * creation: decoding allocates nothing per token.
 *
 * mlxe_context_decode runs a batch of rows (token, position, sequence id,
 * wants-logits). Each sequence grows by appending: its rows in a batch must
 * have consecutive positions starting at the sequence's current length
 * (mlxe_context_seq_length). Batches longer than n_ubatch rows are run as
 * several forward passes of at most n_ubatch rows (prefill chunking); the
 * result is the same as one pass (the batch's largest position is what
 * dynamic NTK RoPE sees in every pass). Rows of several sequences may be mixed in
 * one batch (the server batches conversations this way).
 *
 * Thread-safety: a context is used by one thread at a time. Contexts of the
 * same model may be used on different threads concurrently; their forward
 * passes take turns on the model's device. */
#ifndef MLXENGINE_CONTEXT_H
#define MLXENGINE_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlxengine/model.h"
#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_context mlxe_context;

typedef struct mlxe_context_options {
    /* Tokens per sequence (KV cache capacity). 0 (default): the model's
     * context length, capped at 4096. */
    int64_t n_ctx;
    /* Sequences (KV cache slots), ids 0 .. n_seq-1. Default 1. */
    int32_t n_seq;
    /* Most rows one mlxe_context_decode call accepts. Default 512. */
    int64_t n_batch;
    /* Rows per forward pass (prefill chunk size), <= n_batch. Default 128. */
    int64_t n_ubatch;
} mlxe_context_options;

void mlxe_context_options_init(mlxe_context_options *options);

/* Creates a context over model (which must outlive it). options may be NULL.
 * Errors: MLXE_ERR_INVALID_ARGUMENT for out-of-range options,
 * MLXE_ERR_OUT_OF_MEMORY when the cache does not fit. */
mlxe_status mlxe_context_create(mlxe_model *model, const mlxe_context_options *options,
                                mlxe_context **out, mlxe_error *err);
/* Accepts NULL. */
void mlxe_context_free(mlxe_context *ctx);

/* A batch of n_tokens rows; the arrays are the caller's. logits may be NULL,
 * meaning only the last row wants logits. */
typedef struct mlxe_batch {
    int64_t n_tokens;
    const int32_t *tokens;     /* each in [0, vocab size) */
    const int32_t *positions;  /* per sequence consecutive from its current length */
    const int32_t *seq_ids;    /* each in [0, n_seq) */
    const int8_t *logits;      /* nonzero: keep this row's logits */
} mlxe_batch;

/* Runs the batch through the model, appending each row's K/V to its
 * sequence. Checks everything first and changes nothing on error:
 * MLXE_ERR_INVALID_ARGUMENT for a token id outside the vocabulary, a bad
 * sequence id, a position that does not continue its sequence, an empty or
 * too long batch; MLXE_ERR_LIMIT when a sequence would exceed n_ctx. */
mlxe_status mlxe_context_decode(mlxe_context *ctx, const mlxe_batch *batch, mlxe_error *err);

/* The logits (vocab size floats) of row `row` of the last decoded batch,
 * or NULL if that row did not ask for logits. Valid until the next decode,
 * clear or free on this context. */
const float *mlxe_context_logits(const mlxe_context *ctx, int64_t row);

/* Tokens held for sequence seq_id (the next position to decode). */
int64_t mlxe_context_seq_length(const mlxe_context *ctx, int32_t seq_id);
/* Forgets the sequence (length 0). Bad ids are ignored. */
void mlxe_context_seq_clear(mlxe_context *ctx, int32_t seq_id);
/* Keeps the first n tokens of the sequence (n >= its length: no change). */
void mlxe_context_seq_truncate(mlxe_context *ctx, int32_t seq_id, int64_t n);

/* ---- a sequence's KV cache as bytes (saving and restoring sessions) ----
 * The state of the first n_tokens tokens of a sequence is, per layer, K then
 * V, each per KV head n_tokens x head_dim float32 values:
 * n_layers * 2 * n_kv_heads * n_tokens * head_dim * 4 bytes. It is only
 * meaningful for a context of the same model. */
size_t mlxe_context_seq_state_bytes(const mlxe_context *ctx, int64_t n_tokens);
/* Copies the state of tokens [0, n_tokens) of seq_id into dst (size must be
 * mlxe_context_seq_state_bytes(ctx, n_tokens)); n_tokens <= the sequence's
 * length. MLXE_ERR_INVALID_ARGUMENT otherwise. */
mlxe_status mlxe_context_seq_state_read(mlxe_context *ctx, int32_t seq_id, int64_t n_tokens, void *dst,
                                        size_t size, mlxe_error *err);
/* Replaces seq_id's cache with n_tokens tokens of state from src (as _read
 * wrote it); the sequence's length becomes n_tokens. MLXE_ERR_LIMIT when
 * n_tokens exceeds n_ctx, MLXE_ERR_INVALID_ARGUMENT for a size mismatch; on
 * error the sequence is unchanged. */
mlxe_status mlxe_context_seq_state_write(mlxe_context *ctx, int32_t seq_id, int64_t n_tokens, const void *src,
                                         size_t size, mlxe_error *err);

int64_t mlxe_context_n_ctx(const mlxe_context *ctx);
int32_t mlxe_context_n_seq(const mlxe_context *ctx);
int64_t mlxe_context_n_batch(const mlxe_context *ctx);
int64_t mlxe_context_n_ubatch(const mlxe_context *ctx);
/* The model the context was made from (borrowed). */
mlxe_model *mlxe_context_model(const mlxe_context *ctx);
/* Bytes the context holds (KV cache, scratch, logits). */
size_t mlxe_context_memory_bytes(const mlxe_context *ctx);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
