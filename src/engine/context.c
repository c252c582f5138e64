/* engine/context.c — mlxe_context: the KV cache, the forward scratch and the
 * logits of the last batch (include/mlxengine/context.h).
 *
 * decode() checks the whole batch before touching anything, then runs it in
 * forward passes of at most n_ubatch rows (prefill chunking), holding the
 * model's forward lock for the duration, and finally records the new
 * sequence lengths. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "engine/engine_internal.h"
#include "engine/kv_cache.h"
#include "mlxengine/context.h"

#define DEFAULT_N_CTX_CAP 4096

struct mlxe_context {
    mlxe_model *model;
    const mlxe_ops *ops;
    int64_t n_ctx, n_batch, n_ubatch, vocab;
    int32_t n_seq;
    mlxe_kv_cache kv;
    mlxe_forward_state *state;
    /* device_block: [mlxe_sample_params][3 * n_ubatch int32][adjust
     * entries]. A pass of n rows holds its tokens, positions and slots at
     * device_ints + 0, n and 2n; a step sampled on the device has its
     * parameters (the draw) just before them, so one copy from pass_block
     * uploads both (a one-token step always at the same addresses, as its
     * graph needs); the logit bias and penalty entries, when there are any,
     * take a second copy. */
    void *device_block;
    mlxe_sample_params *device_params;
    int32_t *device_ints;
    mlxe_sample_adjust *device_adjust;  /* [MLXE_SAMPLE_MAX_ADJUST] */
    unsigned char *pass_block;  /* host [params][3 * n_ubatch int32] */
    int32_t *pass_ints;         /* in pass_block */
    int32_t *host_slots;       /* [n_batch] seq id of each row, as int32 slots */
    int32_t *logit_rows;       /* [n_ubatch] rows of the current pass wanting logits */
    int64_t *row_logits;       /* [n_batch] index into logits per row of the last batch, -1 none */
    int64_t *next_position;    /* [n_seq] scratch for checking a batch */
    float *logits;             /* [logits_rows][vocab] host */
    int64_t logits_rows;
    /* The last batch ran with the greedy token chosen on the device: its one
     * logits row is still in the forward state, copied into logits[0] when
     * mlxe_context_logits first asks (mlxe_context_decode_greedy). */
    bool logits_on_device;
    /* The last batch ended with the row of choice_seq whose plain argmax the
     * device chose and still holds (-1: none): a pipelined step may embed
     * it (mlxe_context_decode_ahead). */
    int32_t choice_seq;
    /* Pipelined steps queued and not yet taken (at most 2, oldest first at
     * ahead_first): each one's hand-off slot (device, 2 int32 allocated on
     * first use), handle, and the token where the device downloaded it
     * instead (no ops->token_keep). */
    int32_t *ahead_slots;
    void *ahead_handle[2];
    int32_t ahead_token[2];
    int ahead_first, ahead_count;
    int64_t last_n_rows;       /* rows of the last decoded batch */
    size_t bytes;
};

void mlxe_context_options_init(mlxe_context_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->n_ctx = 0;
    options->n_seq = 1;
    options->n_batch = 512;
    options->n_ubatch = 128;
}

void mlxe_context_free(mlxe_context *ctx) {
    if (!ctx) return;
    const mlxe_model_family *family = ctx->model->family;
    mlxe_device *dev = ctx->model->dev;
    /* steps still queued write the state and their slots: wait for them first */
    if (ctx->ahead_count > 0) ctx->ops->synchronize(dev, NULL);
    for (int i = 0; i < ctx->ahead_count; i++) {
        const int k = (ctx->ahead_first + i) % 2;
        if (ctx->ahead_handle[k]) ctx->ops->token_take(dev, ctx->ahead_handle[k], ctx->ahead_slots + k);
    }
    if (ctx->ahead_slots) ctx->ops->free(dev, ctx->ahead_slots);
    if (ctx->state) family->state_free(ctx->state);
    if (ctx->device_block) ctx->ops->free(dev, ctx->device_block);
    free(ctx->pass_block);
    mlxe_kv_cache_release(&ctx->kv);
    free(ctx->host_slots);
    free(ctx->logit_rows);
    free(ctx->row_logits);
    free(ctx->next_position);
    free(ctx->logits);
    free(ctx);
}

/* Makes room for rows logits rows (grows only; no allocation in steady state). */
static mlxe_status reserve_logits(mlxe_context *ctx, int64_t rows, mlxe_error *err) {
    if (rows <= ctx->logits_rows) return MLXE_OK;
    float *grown = realloc(ctx->logits, (size_t)rows * (size_t)ctx->vocab * sizeof(float));
    if (!grown)
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory for %lld rows of logits",
                              (long long)rows);
    ctx->bytes += (size_t)(rows - ctx->logits_rows) * (size_t)ctx->vocab * sizeof(float);
    ctx->logits = grown;
    ctx->logits_rows = rows;
    return MLXE_OK;
}

/* Bytes of the device block for passes of n_ubatch rows (see the struct). */
static size_t device_block_bytes(int64_t n_ubatch) {
    return sizeof(mlxe_sample_params) + 3 * (size_t)n_ubatch * sizeof(int32_t) +
           MLXE_SAMPLE_MAX_ADJUST * sizeof(mlxe_sample_adjust);
}

/* On a GPU: refuses before allocating when the KV cache and scratch do not
 * fit in its free memory, saying how much is missing and the largest n_ctx
 * that would fit. */
static mlxe_status check_device_memory(const mlxe_model *model, const mlxe_context_options *o, mlxe_error *err) {
    size_t free_bytes = 0, total_bytes = 0;
    if (!mlxe_device_memory(model->dev, &free_bytes, &total_bytes)) return MLXE_OK;
    const mlxe_model_config *c = &model->config;
    /* float32 K and V per token of each sequence, every layer */
    const double per_token = 2.0 * (double)c->num_hidden_layers * (double)c->num_key_value_heads *
                             (double)c->head_dim * sizeof(float) * (double)o->n_seq;
    const double kv = per_token * (double)o->n_ctx;
    const double scratch = (double)model->family->state_bytes(model->weights, o->n_ubatch) +
                           (double)device_block_bytes(o->n_ubatch);
    const double need = kv + scratch + (double)MLXE_DEVICE_WORKING_BYTES;
    if (need <= (double)free_bytes) return MLXE_OK;
    double room = (double)free_bytes - scratch - (double)MLXE_DEVICE_WORKING_BYTES;
    long long fits = room > 0 ? (long long)(room / per_token) : 0;
    return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY,
                          "the KV cache (%lld tokens x %d sequences: %.0f MiB) and %.0f MiB of scratch for batches of "
                          "%lld tokens do not fit in the %zu MiB left free of %zu MiB on %s (%s), keeping %zu MiB "
                          "working memory: %.0f MiB missing; use a smaller context (n_ctx / --ctx: %lld tokens fit), "
                          "fewer sequences, a quantized model, or --device cpu",
                          (long long)o->n_ctx, (int)o->n_seq, kv / 1048576.0, scratch / 1048576.0,
                          (long long)o->n_ubatch, free_bytes >> 20, total_bytes >> 20, mlxe_device_name(model->dev),
                          mlxe_device_description(model->dev), (size_t)MLXE_DEVICE_WORKING_BYTES >> 20,
                          (need - (double)free_bytes) / 1048576.0 + 0.5, fits);
}

mlxe_status mlxe_context_create(mlxe_model *model, const mlxe_context_options *options,
                                mlxe_context **out, mlxe_error *err) {
    if (out) *out = NULL;
    if (!model || !out)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_context_create: model and out are required");
    mlxe_context_options o;
    if (options)
        o = *options;
    else
        mlxe_context_options_init(&o);
    const mlxe_model_config *c = &model->config;
    if (o.n_ctx == 0) {
        o.n_ctx = c->max_position_embeddings > 0 ? c->max_position_embeddings : DEFAULT_N_CTX_CAP;
        if (o.n_ctx > DEFAULT_N_CTX_CAP) o.n_ctx = DEFAULT_N_CTX_CAP;
    }
    if (o.n_ctx < 1 || o.n_ctx > INT32_MAX)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "context option n_ctx %lld must be in [1, %d]",
                              (long long)o.n_ctx, INT32_MAX);
    if (o.n_seq < 1 || o.n_seq > 4096)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "context option n_seq %d must be in [1, 4096]",
                              (int)o.n_seq);
    if (o.n_batch < 1 || o.n_batch > 1 << 20)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "context option n_batch %lld must be in [1, 1048576]",
                              (long long)o.n_batch);
    if (o.n_ubatch < 1 || o.n_ubatch > o.n_batch)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "context option n_ubatch %lld must be in [1, n_batch = %lld]",
                              (long long)o.n_ubatch, (long long)o.n_batch);

    mlxe_status st = check_device_memory(model, &o, err);
    if (st != MLXE_OK) return st;

    mlxe_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    ctx->model = model;
    ctx->ops = mlxe_device_ops(model->dev);
    ctx->choice_seq = -1;
    ctx->n_ctx = o.n_ctx;
    ctx->n_seq = o.n_seq;
    ctx->n_batch = o.n_batch;
    ctx->n_ubatch = o.n_ubatch;
    ctx->vocab = c->vocab_size;

    st = mlxe_kv_cache_init(&ctx->kv, model->dev, c->num_hidden_layers, o.n_seq, o.n_ctx,
                                        c->num_key_value_heads, c->head_dim, err);
    if (st == MLXE_OK) st = model->family->state_create(model->weights, o.n_ubatch, &ctx->state, err);
    void *block = NULL;
    if (st == MLXE_OK) st = ctx->ops->alloc(model->dev, device_block_bytes(o.n_ubatch), &block, err);
    ctx->device_block = block;
    if (block) {
        ctx->device_params = block;
        ctx->device_ints = (int32_t *)(void *)((unsigned char *)block + sizeof(mlxe_sample_params));
        ctx->device_adjust = (mlxe_sample_adjust *)(void *)(ctx->device_ints + 3 * o.n_ubatch);
    }
    if (st == MLXE_OK) {
        ctx->pass_block = malloc(sizeof(mlxe_sample_params) + 3 * (size_t)o.n_ubatch * sizeof(int32_t));
        ctx->pass_ints = ctx->pass_block ? (int32_t *)(void *)(ctx->pass_block + sizeof(mlxe_sample_params)) : NULL;
        ctx->host_slots = malloc((size_t)o.n_batch * sizeof(int32_t));
        ctx->logit_rows = malloc((size_t)o.n_ubatch * sizeof(int32_t));
        ctx->row_logits = malloc((size_t)o.n_batch * sizeof(int64_t));
        ctx->next_position = malloc((size_t)o.n_seq * sizeof(int64_t));
        if (!ctx->pass_ints || !ctx->host_slots || !ctx->logit_rows || !ctx->row_logits || !ctx->next_position)
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a context");
    }
    if (st == MLXE_OK) st = reserve_logits(ctx, o.n_seq, err);
    if (st != MLXE_OK) {
        mlxe_context_free(ctx);
        return st;
    }
    ctx->bytes += ctx->kv.bytes + model->family->state_bytes(model->weights, o.n_ubatch) +
                  device_block_bytes(o.n_ubatch);
    MLXE_DEBUG(MLXE_LOG_CAT_ENGINE, "context: %d sequences x %lld tokens, batch %lld, ubatch %lld, %zu MB",
               (int)ctx->n_seq, (long long)ctx->n_ctx, (long long)ctx->n_batch, (long long)ctx->n_ubatch,
               ctx->bytes >> 20);
    *out = ctx;
    return MLXE_OK;
}

static bool row_wants_logits(const mlxe_batch *batch, int64_t row) {
    return batch->logits ? batch->logits[row] != 0 : row == batch->n_tokens - 1;
}

/* Checks every row; fills next_position with the lengths after the batch
 * and returns how many rows want logits. */
static mlxe_status check_batch(mlxe_context *ctx, const mlxe_batch *batch, int64_t *n_logits,
                               mlxe_error *err) {
    if (!batch || batch->n_tokens < 1 || !batch->tokens || !batch->positions || !batch->seq_ids)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "decode: the batch needs at least one row with tokens, positions and seq_ids");
    if (batch->n_tokens > ctx->n_batch)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "decode: batch of %lld rows exceeds the context's n_batch %lld",
                              (long long)batch->n_tokens, (long long)ctx->n_batch);
    memcpy(ctx->next_position, ctx->kv.lengths, (size_t)ctx->n_seq * sizeof(int64_t));
    *n_logits = 0;
    for (int64_t r = 0; r < batch->n_tokens; r++) {
        int32_t token = batch->tokens[r], seq = batch->seq_ids[r], position = batch->positions[r];
        if (token < 0 || token >= ctx->vocab)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "decode: row %lld has token id %d outside the vocabulary [0, %lld)",
                                  (long long)r, (int)token, (long long)ctx->vocab);
        if (seq < 0 || seq >= ctx->n_seq)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "decode: row %lld has sequence id %d but the context has %d sequences",
                                  (long long)r, (int)seq, (int)ctx->n_seq);
        if (position != ctx->next_position[seq])
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "decode: row %lld has position %d but sequence %d continues at %lld "
                                  "(positions must follow on; truncate or clear the sequence first)",
                                  (long long)r, (int)position, (int)seq, (long long)ctx->next_position[seq]);
        if (position >= ctx->n_ctx)
            return mlxe_error_set(err, MLXE_ERR_LIMIT,
                                  "decode: sequence %d is full (%lld tokens, the context's n_ctx); "
                                  "create the context with a larger n_ctx",
                                  (int)seq, (long long)ctx->n_ctx);
        ctx->next_position[seq]++;
        ctx->host_slots[r] = seq;
        if (row_wants_logits(batch, r)) (*n_logits)++;
    }
    return MLXE_OK;
}

static bool one_sequence(const mlxe_batch *batch) {
    for (int64_t r = 1; r < batch->n_tokens; r++)
        if (batch->seq_ids[r] != batch->seq_ids[0]) return false;
    return true;
}

/* A pipelined step (mlxe_context_decode_ahead): its token is the device's
 * previous choice; its own choice goes to slot (handle in *handle), and
 * nothing waits for it. */
typedef struct ahead_step {
    int32_t *slot;
    void **handle;
} ahead_step;

/* decode; with greedy_token (batches with one row wanting logits), the
 * token is chosen on the device where it can be (else -1): the argmax, or
 * with sample (and its adjust entries, host memory) the sampled token;
 * with ahead, a pipelined step (above). */
static mlxe_status decode_batch(mlxe_context *ctx, const mlxe_batch *batch, int32_t *greedy_token,
                                const mlxe_sample_params *sample, const mlxe_sample_adjust *adjust,
                                const ahead_step *ahead, mlxe_error *err) {
    if (!ctx) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "decode: context is NULL");
    ctx->logits_on_device = false;
    ctx->choice_seq = -1;
    if (greedy_token) *greedy_token = -1;
    int64_t n_logits = 0;
    mlxe_status st = check_batch(ctx, batch, &n_logits, err);
    if (st == MLXE_OK) st = reserve_logits(ctx, n_logits, err);
    if (st != MLXE_OK) return st;

    mlxe_model *model = ctx->model;
    mlxe_device *dev = model->dev;
    int64_t logits_done = 0;
    /* The largest position of the whole batch goes to every pass, so a
     * batch behaves as one transformers forward whatever n_ubatch is (it
     * matters to dynamic NTK RoPE, whose frequencies depend on it). */
    int64_t max_position = 0;
    for (int64_t r = 0; r < batch->n_tokens; r++)
        if (batch->positions[r] > max_position) max_position = batch->positions[r];
    pthread_mutex_lock(&model->forward_lock);
    for (int64_t first = 0; first < batch->n_tokens; first += ctx->n_ubatch) {
        int64_t n = batch->n_tokens - first;
        if (n > ctx->n_ubatch) n = ctx->n_ubatch;
        int64_t n_pass_logits = 0;
        for (int64_t r = 0; r < n; r++) {
            int64_t row = first + r;
            if (row_wants_logits(batch, row)) {
                ctx->row_logits[row] = logits_done + n_pass_logits;
                ctx->logit_rows[n_pass_logits++] = (int32_t)r;
            } else {
                ctx->row_logits[row] = -1;
            }
        }
        /* only a batch whose single logits row is in this pass */
        const bool device_choice = greedy_token && n_logits == 1 && n_pass_logits == 1 &&
                                   model->family->copy_logits && (!sample || ctx->ops->sample);
        const bool device_sample = device_choice && sample;
        memcpy(ctx->pass_ints, batch->tokens + first, (size_t)n * sizeof(int32_t));
        memcpy(ctx->pass_ints + n, batch->positions + first, (size_t)n * sizeof(int32_t));
        memcpy(ctx->pass_ints + 2 * n, ctx->host_slots + first, (size_t)n * sizeof(int32_t));
        if (device_sample) {
            const int32_t n_adjust = sample->n_bias + sample->n_penalty;
            mlxe_sample_params params = *sample;
            params.adjust = ctx->device_adjust;
            memcpy(ctx->pass_block, &params, sizeof params);
            if (n_adjust > 0)
                ctx->ops->upload(dev, ctx->device_adjust, adjust, (size_t)n_adjust * sizeof(mlxe_sample_adjust));
            ctx->ops->upload(dev, ctx->device_params, ctx->pass_block,
                             sizeof(mlxe_sample_params) + 3 * (size_t)n * sizeof(int32_t));
        } else {
            ctx->ops->upload(dev, ctx->device_ints, ctx->pass_ints, 3 * (size_t)n * sizeof(int32_t));
        }
        mlxe_forward_batch pass = {
            .n_rows = n,
            .tokens = ctx->device_ints,
            .positions = ctx->device_ints + n,
            .slots = ctx->device_ints + 2 * n,
            .max_position = max_position,
            .n_logit_rows = n_pass_logits,
            .logit_rows = ctx->logit_rows,
            .logits = ctx->logits + logits_done * ctx->vocab,
        };
        if (device_choice) pass.greedy_token = greedy_token;
        if (device_sample) pass.sample_params = ctx->device_params;
        if (ahead) {
            pass.token_from_choice = true;
            if (device_choice) {
                pass.keep_slot = ahead->slot;
                pass.keep_handle = ahead->handle;
            }
        }
        model->family->forward(model->weights, ctx->state, &ctx->kv.view, &pass);
        /* chosen on the device: handed over by ops->token_keep, or downloaded */
        const bool chose = device_choice && ((ahead && *ahead->handle) || *greedy_token >= 0);
        if (chose) ctx->logits_on_device = true;
        /* the chosen token follows its row: the batch's last, of one sequence */
        if (chose && !device_sample && first + n == batch->n_tokens && row_wants_logits(batch, batch->n_tokens - 1) &&
            one_sequence(batch))
            ctx->choice_seq = batch->seq_ids[0];
        logits_done += n_pass_logits;
    }
    /* A GPU runs the ops asynchronously and reports their errors here (the
     * CPU has none to report). The sequences keep their old lengths. A
     * pipelined step is not waited for: its errors come with a later wait
     * (mlxe_context_finish_ahead). */
    st = ahead ? MLXE_OK : ctx->ops->synchronize(dev, err);
    pthread_mutex_unlock(&model->forward_lock);
    if (st != MLXE_OK) {
        ctx->last_n_rows = 0;
        ctx->choice_seq = -1;
        return mlxe_error_prefix(err, "decode");
    }
    memcpy(ctx->kv.lengths, ctx->next_position, (size_t)ctx->n_seq * sizeof(int64_t));
    ctx->last_n_rows = batch->n_tokens;
    return MLXE_OK;
}

mlxe_status mlxe_context_decode(mlxe_context *ctx, const mlxe_batch *batch, mlxe_error *err) {
    return decode_batch(ctx, batch, NULL, NULL, NULL, NULL, err);
}

mlxe_status mlxe_context_decode_greedy(mlxe_context *ctx, const mlxe_batch *batch, int32_t *token, mlxe_error *err) {
    if (!token) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "decode_greedy: token is NULL");
    mlxe_status st = decode_batch(ctx, batch, token, NULL, NULL, NULL, err);
    if (st != MLXE_OK) *token = -1;
    return st;
}

mlxe_status mlxe_context_decode_sample(mlxe_context *ctx, const mlxe_batch *batch, const mlxe_sample_params *params,
                                       const mlxe_sample_adjust *adjust, int32_t *token, mlxe_error *err) {
    if (!token || !params)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "decode_sample: params and token are required");
    const int32_t n_adjust = params->n_bias + params->n_penalty;
    if (params->n_bias < 0 || params->n_penalty < 0 || n_adjust > MLXE_SAMPLE_MAX_ADJUST || (n_adjust > 0 && !adjust))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "decode_sample: %d bias and %d penalty entries (at most %d in all, given in adjust)",
                              (int)params->n_bias, (int)params->n_penalty, MLXE_SAMPLE_MAX_ADJUST);
    mlxe_status st = decode_batch(ctx, batch, token, params, adjust, NULL, err);
    if (st != MLXE_OK) *token = -1;
    return st;
}

mlxe_status mlxe_context_decode_ahead(mlxe_context *ctx, int32_t seq, mlxe_error *err) {
    if (!ctx || seq < 0 || seq >= ctx->n_seq || ctx->choice_seq != seq || ctx->ahead_count >= 2)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "decode_ahead: sequence %d's last step has no device choice to embed, or 2 steps "
                              "are queued already (take one first)",
                              (int)seq);
    if (!ctx->ahead_slots && ctx->ops->token_keep) {
        mlxe_status st = ctx->ops->alloc(ctx->model->dev, 2 * sizeof(int32_t), (void **)&ctx->ahead_slots, err);
        if (st != MLXE_OK) return mlxe_error_prefix(err, "decode_ahead");
    }
    const int k = (ctx->ahead_first + ctx->ahead_count) % 2;
    ctx->ahead_handle[k] = NULL;
    const int32_t token = 0; /* not read: the row embeds the device's choice */
    const int32_t position = (int32_t)ctx->kv.lengths[seq];
    const mlxe_batch batch = {.n_tokens = 1, .tokens = &token, .positions = &position, .seq_ids = &seq, .logits = NULL};
    const ahead_step ahead = {.slot = ctx->ahead_slots ? ctx->ahead_slots + k : NULL, .handle = &ctx->ahead_handle[k]};
    mlxe_status st = decode_batch(ctx, &batch, &ctx->ahead_token[k], NULL, NULL, &ahead, err);
    if (st != MLXE_OK) return st;
    ctx->ahead_count++;
    return MLXE_OK;
}

mlxe_status mlxe_context_take_ahead(mlxe_context *ctx, int32_t *token, mlxe_error *err) {
    if (!ctx || !token || ctx->ahead_count == 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "take_ahead: no step queued by decode_ahead");
    const int k = ctx->ahead_first;
    if (ctx->ahead_handle[k]) {
        *token = ctx->ops->token_take(ctx->model->dev, ctx->ahead_handle[k], ctx->ahead_slots + k);
        ctx->ahead_handle[k] = NULL;
    } else {
        *token = ctx->ahead_token[k];
    }
    ctx->ahead_first = (k + 1) % 2;
    ctx->ahead_count--;
    if (*token < 0 || *token >= ctx->vocab) {
        /* only a failed step gives no id: its error, from the device */
        mlxe_status st = ctx->ops->synchronize(ctx->model->dev, err);
        if (st != MLXE_OK) return mlxe_error_prefix(err, "take_ahead");
        return mlxe_error_set(err, MLXE_ERR_DEVICE, "take_ahead: the device chose token id %d", (int)*token);
    }
    return MLXE_OK;
}

mlxe_status mlxe_context_finish_ahead(mlxe_context *ctx, int32_t seq, bool drop, mlxe_error *err) {
    if (!ctx) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "finish_ahead: context is NULL");
    mlxe_status st = MLXE_OK;
    int dropped = 0;
    while (ctx->ahead_count > 0) {
        int32_t token;
        mlxe_status taken = mlxe_context_take_ahead(ctx, &token, err);
        if (st == MLXE_OK) st = taken;
        dropped++;
    }
    if (drop && dropped > 0 && seq >= 0 && seq < ctx->n_seq) {
        ctx->kv.lengths[seq] -= dropped;
        if (ctx->kv.lengths[seq] < 0) ctx->kv.lengths[seq] = 0;
        ctx->choice_seq = -1;
    }
    mlxe_status synced = ctx->ops->synchronize(ctx->model->dev, err);
    return st != MLXE_OK ? st : synced;
}

bool mlxe_context_samples_on_device(const mlxe_context *ctx) {
    return ctx && ctx->ops->sample && ctx->model->family->copy_logits;
}

const float *mlxe_context_logits(const mlxe_context *ctx, int64_t row) {
    if (!ctx || row < 0 || row >= ctx->last_n_rows || ctx->row_logits[row] < 0) return NULL;
    if (ctx->logits_on_device) {
        /* the row a device-greedy decode left on the device (logically
         * const: the context's logits were only not fetched yet) */
        mlxe_context *mutable_ctx = (mlxe_context *)(uintptr_t)ctx;
        pthread_mutex_lock(&ctx->model->forward_lock);
        ctx->model->family->copy_logits(ctx->model->weights, ctx->state, ctx->logits);
        pthread_mutex_unlock(&ctx->model->forward_lock);
        mutable_ctx->logits_on_device = false;
    }
    return ctx->logits + ctx->row_logits[row] * ctx->vocab;
}

int64_t mlxe_context_seq_length(const mlxe_context *ctx, int32_t seq_id) {
    if (!ctx || seq_id < 0 || seq_id >= ctx->n_seq) return 0;
    return ctx->kv.lengths[seq_id];
}

void mlxe_context_seq_truncate(mlxe_context *ctx, int32_t seq_id, int64_t n) {
    if (!ctx || seq_id < 0 || seq_id >= ctx->n_seq || n < 0) return;
    if (n < ctx->kv.lengths[seq_id]) {
        ctx->kv.lengths[seq_id] = n;
        if (seq_id == ctx->choice_seq) ctx->choice_seq = -1; /* its choice follows a row now gone */
    }
}

void mlxe_context_seq_clear(mlxe_context *ctx, int32_t seq_id) { mlxe_context_seq_truncate(ctx, seq_id, 0); }

size_t mlxe_context_seq_state_bytes(const mlxe_context *ctx, int64_t n_tokens) {
    if (!ctx || n_tokens < 0) return 0;
    const mlxe_model_config *c = &ctx->model->config;
    return (size_t)c->num_hidden_layers * 2 * (size_t)c->num_key_value_heads * (size_t)n_tokens *
           (size_t)c->head_dim * sizeof(float);
}

/* Copies between host bytes and the cache rows [0, n_tokens) of one slot,
 * layer by layer (K then V), head by head: the slot's rows of a head are
 * contiguous in the [slot][head][capacity][head_dim] layout. */
static void copy_seq_state(mlxe_context *ctx, int32_t seq, int64_t n_tokens, unsigned char *host, bool to_host) {
    const mlxe_model_config *c = &ctx->model->config;
    size_t row_bytes = (size_t)c->head_dim * sizeof(float), head_bytes = (size_t)n_tokens * row_bytes;
    pthread_mutex_lock(&ctx->model->forward_lock);
    for (int64_t l = 0; l < c->num_hidden_layers; l++)
        for (int kv = 0; kv < 2; kv++) {
            float *base = kv == 0 ? ctx->kv.view.k[l] : ctx->kv.view.v[l];
            for (int64_t h = 0; h < c->num_key_value_heads; h++) {
                float *rows = base + ((int64_t)seq * c->num_key_value_heads + h) * ctx->n_ctx * c->head_dim;
                if (to_host)
                    ctx->ops->download(ctx->model->dev, host, rows, head_bytes);
                else
                    ctx->ops->upload(ctx->model->dev, rows, host, head_bytes);
                host += head_bytes;
            }
        }
    pthread_mutex_unlock(&ctx->model->forward_lock);
}

mlxe_status mlxe_context_seq_state_read(mlxe_context *ctx, int32_t seq_id, int64_t n_tokens, void *dst,
                                        size_t size, mlxe_error *err) {
    if (!ctx || !dst || seq_id < 0 || seq_id >= ctx->n_seq || n_tokens < 0 || n_tokens > ctx->kv.lengths[seq_id])
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "seq_state_read: sequence %d holds %lld tokens, asked for %lld",
                              (int)seq_id, ctx && seq_id >= 0 && seq_id < ctx->n_seq ? (long long)ctx->kv.lengths[seq_id] : 0LL,
                              (long long)n_tokens);
    if (size != mlxe_context_seq_state_bytes(ctx, n_tokens))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "seq_state_read: %zu bytes given, %zu needed", size,
                              mlxe_context_seq_state_bytes(ctx, n_tokens));
    copy_seq_state(ctx, seq_id, n_tokens, dst, true);
    return MLXE_OK;
}

mlxe_status mlxe_context_seq_state_write(mlxe_context *ctx, int32_t seq_id, int64_t n_tokens, const void *src,
                                         size_t size, mlxe_error *err) {
    if (!ctx || !src || seq_id < 0 || seq_id >= ctx->n_seq || n_tokens < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "seq_state_write: bad sequence %d or token count %lld",
                              (int)seq_id, (long long)n_tokens);
    if (n_tokens > ctx->n_ctx)
        return mlxe_error_set(err, MLXE_ERR_LIMIT,
                              "seq_state_write: %lld tokens do not fit in the context's n_ctx %lld; "
                              "create the context with a larger n_ctx",
                              (long long)n_tokens, (long long)ctx->n_ctx);
    if (size != mlxe_context_seq_state_bytes(ctx, n_tokens))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "seq_state_write: %zu bytes given, %zu needed", size,
                              mlxe_context_seq_state_bytes(ctx, n_tokens));
    copy_seq_state(ctx, seq_id, n_tokens, (unsigned char *)(uintptr_t)src, false);
    ctx->kv.lengths[seq_id] = n_tokens;
    return MLXE_OK;
}

int64_t mlxe_context_n_ctx(const mlxe_context *ctx) { return ctx ? ctx->n_ctx : 0; }
int32_t mlxe_context_n_seq(const mlxe_context *ctx) { return ctx ? ctx->n_seq : 0; }
int64_t mlxe_context_n_batch(const mlxe_context *ctx) { return ctx ? ctx->n_batch : 0; }
int64_t mlxe_context_n_ubatch(const mlxe_context *ctx) { return ctx ? ctx->n_ubatch : 0; }
mlxe_model *mlxe_context_model(const mlxe_context *ctx) { return ctx ? ctx->model : NULL; }
size_t mlxe_context_memory_bytes(const mlxe_context *ctx) { return ctx ? ctx->bytes : 0; }
