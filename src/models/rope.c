/* models/rope.c — inv_freq and attention scaling per RoPE variant.
 *
 * Mirrors transformers' modeling_rope_utils.py. Where transformers works on
 * float32 tensors we compute in float (so the tables agree to the last
 * bit or so); where it uses Python floats (yarn's correction range, the
 * attention factor) we use double. */
#include "models/rope.h"

#include <math.h>

void mlxe_rope_params_from_config(const mlxe_model_config *config, mlxe_rope_params *out) {
    out->dim = config->head_dim;
    out->theta = config->rope_theta;
    out->scaling = config->rope_scaling;
    out->max_position_embeddings = config->max_position_embeddings;
}

int mlxe_rope_is_dynamic(const mlxe_rope_params *params) {
    return params->scaling.type == MLXE_ROPE_SCALING_DYNAMIC;
}

/* _compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim), in float32. */
static void default_frequencies(float base, int64_t dim, float *inv_freq) {
    for (int64_t i = 0; i < dim / 2; i++) {
        float exponent = (float)(2 * i) / (float)dim;
        inv_freq[i] = 1.0f / powf(base, exponent);
    }
}

static int64_t original_max_positions(const mlxe_rope_params *params) {
    int64_t original = params->scaling.original_max_position_embeddings;
    return original > 0 ? original : params->max_position_embeddings;
}

/* _compute_llama3_parameters: keep high frequencies, divide low ones by
 * factor, blend in between. */
static void llama3_frequencies(const mlxe_rope_params *params, float *inv_freq) {
    const mlxe_rope_scaling *s = &params->scaling;
    default_frequencies((float)params->theta, params->dim, inv_freq);
    double old_context = (double)original_max_positions(params);
    float low_freq_wavelen = (float)(old_context / s->low_freq_factor);
    float high_freq_wavelen = (float)(old_context / s->high_freq_factor);
    float factor = (float)s->factor;
    float two_pi = (float)(2.0 * M_PI);
    for (int64_t i = 0; i < params->dim / 2; i++) {
        float wavelen = two_pi / inv_freq[i];
        float scaled = wavelen > low_freq_wavelen ? inv_freq[i] / factor : inv_freq[i];
        float smooth = ((float)old_context / wavelen - (float)s->low_freq_factor) /
                       (float)(s->high_freq_factor - s->low_freq_factor);
        float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
        int medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        inv_freq[i] = medium ? smoothed : scaled;
    }
}

/* _compute_dynamic_ntk_parameters with seq_len = max(seq_len, max_position):
 * base *= (factor * seq_len / max_position - (factor - 1)) ^ (dim / (dim - 2)).
 * transformers evaluates this on a tensor seq_len, i.e. in float32. */
static void dynamic_frequencies(const mlxe_rope_params *params, int64_t seq_len, float *inv_freq) {
    int64_t max_position = params->max_position_embeddings;
    if (seq_len <= max_position) {
        default_frequencies((float)params->theta, params->dim, inv_freq);
        return;
    }
    float factor = (float)params->scaling.factor;
    float ratio = factor * (float)seq_len / (float)max_position - (float)(params->scaling.factor - 1.0);
    float exponent = (float)((double)params->dim / (double)(params->dim - 2));
    float base = (float)params->theta * powf(ratio, exponent);
    default_frequencies(base, params->dim, inv_freq);
}

/* yarn's "get_mscale": 0.1 * mscale * ln(scale) + 1 above 1. */
static double yarn_mscale(double scale, double mscale) {
    return scale <= 1.0 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

/* find_correction_dim: the dimension whose wavelength makes num_rotations
 * turns over the original context. */
static double yarn_correction_dim(double num_rotations, int64_t dim, double base, double max_position) {
    return ((double)dim * log(max_position / (num_rotations * 2.0 * M_PI))) / (2.0 * log(base));
}

/* _compute_yarn_parameters: blend of interpolated (1/(factor*freq)) and
 * extrapolated (1/freq) frequencies by a linear ramp between the correction
 * dimensions of beta_fast and beta_slow. */
static void yarn_frequencies(const mlxe_rope_params *params, float *inv_freq, float *attention_scale) {
    const mlxe_rope_scaling *s = &params->scaling;
    int64_t dim = params->dim;
    double factor = s->factor;
    /* attention_factor when given, else get_mscale(factor, mscale) /
     * get_mscale(factor, mscale_all_dim) when both are set (DeepSeek), else
     * get_mscale(factor). */
    double attention = s->attention_factor;
    if (!(attention > 0)) {
        if (s->mscale != 0 && s->mscale_all_dim != 0)
            attention = yarn_mscale(factor, s->mscale) / yarn_mscale(factor, s->mscale_all_dim);
        else
            attention = yarn_mscale(factor, 1.0);
    }
    double beta_fast = s->beta_fast > 0 ? s->beta_fast : 32.0;
    double beta_slow = s->beta_slow > 0 ? s->beta_slow : 1.0;
    double original = (double)original_max_positions(params);

    /* find_correction_range, rounded outwards unless truncate is false */
    double low = yarn_correction_dim(beta_fast, dim, params->theta, original);
    double high = yarn_correction_dim(beta_slow, dim, params->theta, original);
    if (s->truncate) {
        low = floor(low);
        high = ceil(high);
    }
    if (low < 0) low = 0;
    if (high > (double)(dim - 1)) high = (double)(dim - 1);
    if (low == high) high += 0.001; /* transformers: "prevent singularity" */

    float base = (float)params->theta;
    for (int64_t i = 0; i < dim / 2; i++) {
        float pos_freq = powf(base, (float)(2 * i) / (float)dim);
        float extrapolation = 1.0f / pos_freq;
        float interpolation = 1.0f / ((float)factor * pos_freq);
        float ramp = ((float)i - (float)low) / (float)(high - low);
        if (ramp < 0) ramp = 0;
        if (ramp > 1) ramp = 1;
        float extrapolation_factor = 1.0f - ramp;
        inv_freq[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
    }
    *attention_scale = (float)attention;
}

void mlxe_rope_frequencies(const mlxe_rope_params *params, int64_t seq_len, float *inv_freq,
                           float *attention_scale) {
    *attention_scale = 1.0f;
    switch (params->scaling.type) {
    case MLXE_ROPE_SCALING_LINEAR:
        default_frequencies((float)params->theta, params->dim, inv_freq);
        for (int64_t i = 0; i < params->dim / 2; i++) inv_freq[i] /= (float)params->scaling.factor;
        break;
    case MLXE_ROPE_SCALING_DYNAMIC:
        dynamic_frequencies(params, seq_len, inv_freq);
        break;
    case MLXE_ROPE_SCALING_LLAMA3:
        llama3_frequencies(params, inv_freq);
        break;
    case MLXE_ROPE_SCALING_YARN:
        yarn_frequencies(params, inv_freq, attention_scale);
        break;
    case MLXE_ROPE_SCALING_NONE:
    default:
        default_frequencies((float)params->theta, params->dim, inv_freq);
        break;
    }
}
