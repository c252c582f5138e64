/* models/rope.h — rotary embedding frequencies (inv_freq) and the attention
 * scaling of every RoPE variant the llama family uses.
 *
 * The numbers follow Hugging Face transformers' modeling_rope_utils.py
 * (_compute_default/linear/dynamic_ntk/llama3/yarn_parameters), computed in
 * float32 where transformers computes in float32 tensors and in double where
 * it uses Python floats, so our cos/sin tables match the reference. */
#ifndef MLXE_MODELS_ROPE_H
#define MLXE_MODELS_ROPE_H

#include <stdint.h>

#include "format/model_config.h"

/* Parameters fixed at load; the dynamic-NTK variant also needs the largest
 * position of each forward (see mlxe_rope_frequencies). */
typedef struct mlxe_rope_params {
    int64_t dim;                     /* rotary dims = head_dim (no partial rotary in this family) */
    double theta;                    /* rope_theta */
    mlxe_rope_scaling scaling;
    int64_t max_position_embeddings; /* config.json's, used by dynamic NTK */
} mlxe_rope_params;

void mlxe_rope_params_from_config(const mlxe_model_config *config, mlxe_rope_params *out);

/* Fills inv_freq[dim/2] and *attention_scale (the factor transformers
 * multiplies cos and sin by: 1, except yarn's mscale).
 * seq_len is the largest position in the current forward plus one; only
 * dynamic NTK uses it: as transformers' dynamic_rope_update, the base is
 * rescaled when seq_len exceeds max_position_embeddings and the plain
 * frequencies are used otherwise. */
void mlxe_rope_frequencies(const mlxe_rope_params *params, int64_t seq_len, float *inv_freq,
                           float *attention_scale);

/* True when the frequencies depend on the forward's positions (dynamic NTK). */
int mlxe_rope_is_dynamic(const mlxe_rope_params *params);

#endif
