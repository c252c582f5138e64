/* mlxengine/sampler.h — choosing the next token from logits.
 *
 * A sampler applies, in this order (transformers' LogitsProcessorList
 * order for generate()):
 *   1. logit bias: logit[id] += bias;
 *   2. penalties over the last penalty_last_n accepted tokens:
 *      repetition (transformers' RepetitionPenaltyLogitsProcessor: a seen
 *      token's logit is divided by the penalty when positive, multiplied
 *      when negative), then frequency and presence (OpenAI:
 *      logit -= count * frequency_penalty + (count > 0) * presence_penalty);
 *   3. temperature <= 0: greedy, the argmax (lowest id on ties), done;
 *   4. logit /= temperature;
 *   5. top_k (keep the k highest), top_p (keep the smallest set of highest
 *      probabilities whose sum reaches top_p), min_p (drop tokens whose
 *      probability is below min_p times the highest);
 *   6. draw from the softmax of what is left with the sampler's PRNG
 *      (probabilities as integer weights floor(2^40 * p / p_max), so a
 *      token under 2^-40 of the most likely one is never drawn).
 * The PRNG is xoshiro256** (Blackman & Vigna) seeded by splitmix64, so the
 * same seed, options and logits give the same tokens on every platform,
 * and on a GPU that samples itself (mlxe_generate on CUDA). With
 * temperature > 0 each sampled token takes exactly one draw.
 *
 * Thread-safety: a sampler is used by one thread at a time. */
#ifndef MLXENGINE_SAMPLER_H
#define MLXENGINE_SAMPLER_H

#include <stdint.h>

#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef struct mlxe_sampler mlxe_sampler;

/* Seed meaning "pick one at random" (from the clock and process id). */
#define MLXE_SEED_RANDOM UINT64_MAX

typedef struct mlxe_logit_bias {
    int32_t token;
    float bias;
} mlxe_logit_bias;

typedef struct mlxe_sampler_options {
    float temperature;         /* <= 0: greedy. Default 0 */
    int32_t top_k;             /* 0: off. Default 0 */
    float top_p;               /* 1: off. Default 1 */
    float min_p;               /* 0: off. Default 0 */
    float repetition_penalty;  /* 1: off. Default 1 */
    float presence_penalty;    /* 0: off. Default 0 */
    float frequency_penalty;   /* 0: off. Default 0 */
    int32_t penalty_last_n;    /* tokens of history the penalties look at. Default 64 */
    uint64_t seed;             /* Default MLXE_SEED_RANDOM */
    const mlxe_logit_bias *logit_bias; /* copied by create; may be NULL */
    int32_t n_logit_bias;
} mlxe_sampler_options;

void mlxe_sampler_options_init(mlxe_sampler_options *options);

/* A sampler for logits of vocab_size entries. Checks the options
 * (temperature finite, top_p in (0, 1], min_p in [0, 1], penalties
 * finite and repetition > 0, bias ids in the vocabulary):
 * MLXE_ERR_INVALID_ARGUMENT naming the option otherwise. */
mlxe_status mlxe_sampler_create(const mlxe_sampler_options *options, int64_t vocab_size,
                                mlxe_sampler **out, mlxe_error *err);
/* Accepts NULL. */
void mlxe_sampler_free(mlxe_sampler *sampler);

/* Picks a token from logits (vocab_size floats, left unchanged). Does not
 * record it: call mlxe_sampler_accept with the token kept. */
int32_t mlxe_sampler_sample(mlxe_sampler *sampler, const float *logits);
/* Adds a token to the penalty history (prompt tokens too, as transformers
 * penalises them). Ids outside the vocabulary are ignored. */
void mlxe_sampler_accept(mlxe_sampler *sampler, int32_t token);
/* Empties the history and reseeds the PRNG with the options' seed. */
void mlxe_sampler_reset(mlxe_sampler *sampler);
/* The seed in use (the drawn one when created with MLXE_SEED_RANDOM). */
uint64_t mlxe_sampler_seed(const mlxe_sampler *sampler);

/* Applies steps 1-2 (bias and penalties) to logits in place: what sample()
 * sees before choosing. For tests and for showing adjusted scores. */
void mlxe_sampler_apply_penalties(const mlxe_sampler *sampler, float *logits);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
