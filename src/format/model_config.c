/* format/model_config.c — config.json and generation_config.json into typed
 * structs, with transformers' defaults and checks that keep impossible
 * shapes away from the model code.
 *
 * Defaults per model_type follow the transformers config classes
 * (models/llama/configuration_llama.py, mistral/configuration_mistral.py,
 * qwen2/configuration_qwen2.py, qwen3/configuration_qwen3.py); rope keys
 * follow modeling_rope_utils.py, in both the transformers 4 spelling
 * (rope_theta + rope_scaling{type|rope_type}) and the transformers 5 one
 * (rope_parameters{rope_type, rope_theta, ...}). */
#include "format/model_config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log_internal.h"

#define MAX_CONFIG_BYTES (16u * 1024u * 1024u)
#define SUPPORTED_TYPES_TEXT "llama, mistral, qwen2, qwen3"
#define SUPPORTED_ROPE_TEXT "default, linear, dynamic, llama3, yarn"

const char *const mlxe_supported_model_types[] = {"llama", "mistral", "qwen2", "qwen3", NULL};

typedef enum family { FAMILY_LLAMA, FAMILY_MISTRAL, FAMILY_QWEN2, FAMILY_QWEN3 } family;

/* The defaults of one transformers config class. -1 means "derived". */
typedef struct family_defaults {
    int64_t vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
    int64_t num_key_value_heads;      /* when the key is absent; -1: = num_attention_heads */
    int64_t head_dim;                 /* when absent; -1: hidden_size / num_attention_heads */
    int64_t max_position_embeddings;
    int64_t bos_token_id, eos_token_id; /* -1: none */
    int64_t sliding_window;           /* when absent (mistral, qwen with use_sliding_window) */
} family_defaults;

static const family_defaults defaults_table[] = {
    /* LlamaConfig: num_key_value_heads=None → heads, head_dim=None → hidden/heads */
    [FAMILY_LLAMA] = {32000, 4096, 11008, 32, 32, -1, -1, 2048, 1, 2, 0},
    /* MistralConfig: num_key_value_heads=8, max_position_embeddings=4096*32, sliding_window=4096 */
    [FAMILY_MISTRAL] = {32000, 4096, 14336, 32, 32, 8, -1, 4096 * 32, 1, 2, 4096},
    /* Qwen2Config: num_key_value_heads=32, no head_dim key (attention uses hidden/heads) */
    [FAMILY_QWEN2] = {151936, 4096, 22016, 32, 32, 32, -1, 32768, -1, -1, 4096},
    /* Qwen3Config: as Qwen2 plus head_dim=128 */
    [FAMILY_QWEN3] = {151936, 4096, 22016, 32, 32, 32, 128, 32768, -1, -1, 4096},
};

/* Whether key exists in obj, null included (json getters treat null as absent). */
static const cJSON *raw_item(const cJSON *obj, const char *key) {
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

static mlxe_status get_int_default(const cJSON *obj, const char *key, const char *what,
                                   int64_t fallback, int64_t *out, mlxe_error *err) {
    bool found = false;
    *out = fallback;
    return mlxe_json_get_int(obj, key, what, out, &found, err);
}

static mlxe_status get_double_default(const cJSON *obj, const char *key, const char *what,
                                      double fallback, double *out, mlxe_error *err) {
    bool found = false;
    *out = fallback;
    return mlxe_json_get_double(obj, key, what, out, &found, err);
}

static mlxe_status get_bool_default(const cJSON *obj, const char *key, const char *what,
                                    bool fallback, bool *out, mlxe_error *err) {
    bool found = false;
    *out = fallback;
    return mlxe_json_get_bool(obj, key, what, out, &found, err);
}

/* Reads a token id list that may be an int or a list of ints. A key that is
 * absent keeps *n as it is (the caller's default); null empties it. */
static mlxe_status get_token_ids(const cJSON *obj, const char *key, const char *what,
                                 int64_t *ids, int *n, mlxe_error *err) {
    const cJSON *item = raw_item(obj, key);
    if (!item) return MLXE_OK;
    if (cJSON_IsNull(item)) {
        *n = 0;
        return MLXE_OK;
    }
    int count = 0;
    const cJSON *single = NULL;
    if (cJSON_IsNumber(item)) {
        single = item;
        count = 1;
    } else if (cJSON_IsArray(item)) {
        count = cJSON_GetArraySize(item);
    } else {
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: key '%s' must be a token id or a list of token ids", what, key);
    }
    if (count > MLXE_MAX_EOS_TOKENS)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: key '%s' lists %d token ids; mlxengine handles at most %d", what,
                              key, count, MLXE_MAX_EOS_TOKENS);
    int i = 0;
    const cJSON *element = single ? single : (item->child);
    for (; i < count && element; i++, element = single ? NULL : element->next) {
        double v = element->valuedouble;
        if (!cJSON_IsNumber(element) || v != floor(v) || v < 0 || v > 2147483647.0)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: key '%s' must hold non-negative integer token ids", what, key);
        ids[i] = (int64_t)v;
    }
    *n = count;
    return MLXE_OK;
}

/* A single token id that may also be written as a one-element list; null → -1. */
static mlxe_status get_token_id(const cJSON *obj, const char *key, const char *what, int64_t *out,
                                mlxe_error *err) {
    int64_t ids[MLXE_MAX_EOS_TOKENS];
    int n = -1;
    mlxe_status status = get_token_ids(obj, key, what, ids, &n, err);
    if (status != MLXE_OK) return status;
    if (n == 0) *out = -1;
    else if (n > 0) *out = ids[0];
    return MLXE_OK;
}

static mlxe_status copy_string(const char *value, char *out, size_t size, const char *what,
                               const char *key, mlxe_error *err) {
    if (strlen(value) >= size)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED, "%s: key '%s' value '%.64s' is too long",
                              what, key, value);
    memcpy(out, value, strlen(value) + 1);
    return MLXE_OK;
}

static mlxe_status require_positive(int64_t value, const char *key, const char *what,
                                    mlxe_error *err) {
    if (value <= 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: %s is %lld; it must be a positive number (fix or re-download config.json)",
                              what, key, (long long)value);
    if (value > INT32_MAX)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: %s is %lld, larger than mlxengine allows (%d)",
                              what, key, (long long)value, INT32_MAX);
    return MLXE_OK;
}

/* Reads one rope description (a rope_scaling or rope_parameters object). */
static mlxe_status parse_rope_object(const cJSON *rope, const char *key, const char *what,
                                     mlxe_model_config *config, mlxe_error *err) {
    mlxe_rope_scaling *r = &config->rope_scaling;
    /* transformers 5 may key rope parameters by layer type; these models have
     * only full attention layers. */
    const cJSON *full = raw_item(rope, "full_attention");
    if (cJSON_IsObject(full) && !raw_item(rope, "rope_type") && !raw_item(rope, "type")) rope = full;

    char where[512];
    snprintf(where, sizeof where, "%s: %s", what, key);
    const char *type = NULL;
    bool found = false;
    mlxe_status status = mlxe_json_get_string(rope, "rope_type", where, &type, &found, err);
    if (status == MLXE_OK && !found) status = mlxe_json_get_string(rope, "type", where, &type, &found, err);
    if (status != MLXE_OK) return status;
    if (!found) {
        /* An object that only carries rope_theta (transformers 5's rope_parameters,
         * or a rope_scaling written by the versions in between) means default. */
        if (strcmp(key, "rope_parameters") == 0 || raw_item(rope, "rope_theta")) type = "default";
        else
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: %s has neither 'rope_type' nor 'type' (expected one of "
                                  SUPPORTED_ROPE_TEXT ")",
                                  what, key);
    }
    if (strcmp(type, "default") == 0) r->type = MLXE_ROPE_SCALING_NONE;
    else if (strcmp(type, "linear") == 0) r->type = MLXE_ROPE_SCALING_LINEAR;
    else if (strcmp(type, "dynamic") == 0) r->type = MLXE_ROPE_SCALING_DYNAMIC;
    else if (strcmp(type, "llama3") == 0) r->type = MLXE_ROPE_SCALING_LLAMA3;
    else if (strcmp(type, "yarn") == 0) r->type = MLXE_ROPE_SCALING_YARN;
    else
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: %s type '%s' is not supported (supported: " SUPPORTED_ROPE_TEXT ")",
                              what, key, type);
    if (r->type == MLXE_ROPE_SCALING_NONE) return MLXE_OK;

    int64_t original = 0;
    status = mlxe_json_get_int(rope, "original_max_position_embeddings", where, &original,
                               &r->has_original_max_position_embeddings, err);
    if (status != MLXE_OK) return status;
    if (r->has_original_max_position_embeddings && original <= 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: %s original_max_position_embeddings must be positive", what, key);
    r->original_max_position_embeddings =
        r->has_original_max_position_embeddings ? original : config->max_position_embeddings;
    bool has_factor = false;
    status = mlxe_json_get_double(rope, "factor", where, &r->factor, &has_factor, err);
    if (status != MLXE_OK) return status;
    /* modeling_rope_utils.py (yarn): without a factor, it is the ratio of
     * max_position_embeddings to the original length. */
    if (!has_factor && r->type == MLXE_ROPE_SCALING_YARN && r->has_original_max_position_embeddings) {
        r->factor = (double)config->max_position_embeddings / (double)original;
        has_factor = true;
    }
    if (!has_factor || !isfinite(r->factor) || r->factor <= 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: %s of type '%s' needs a positive 'factor'", what, key, type);

    if (r->type == MLXE_ROPE_SCALING_LLAMA3) {
        bool has_low = false, has_high = false;
        status = mlxe_json_get_double(rope, "low_freq_factor", where, &r->low_freq_factor, &has_low, err);
        if (status == MLXE_OK)
            status = mlxe_json_get_double(rope, "high_freq_factor", where, &r->high_freq_factor,
                                          &has_high, err);
        if (status != MLXE_OK) return status;
        if (!has_low || !has_high || !r->has_original_max_position_embeddings)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: %s of type 'llama3' needs low_freq_factor, high_freq_factor "
                                  "and original_max_position_embeddings",
                                  what, key);
        /* The smoothing step divides by (high - low); transformers warns, we refuse. */
        if (!(r->high_freq_factor > r->low_freq_factor) || !(r->low_freq_factor > 0))
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: %s needs 0 < low_freq_factor < high_freq_factor (got %g and %g)",
                                  what, key, r->low_freq_factor, r->high_freq_factor);
    } else if (r->type == MLXE_ROPE_SCALING_YARN) {
        /* modeling_rope_utils.py: beta_fast/beta_slow default to 32/1, attention_factor
         * is derived from factor (and mscale/mscale_all_dim) when absent. */
        status = get_double_default(rope, "beta_fast", where, 32.0, &r->beta_fast, err);
        if (status == MLXE_OK) status = get_double_default(rope, "beta_slow", where, 1.0, &r->beta_slow, err);
        if (status == MLXE_OK)
            status = get_double_default(rope, "attention_factor", where, 0.0, &r->attention_factor, err);
        if (status == MLXE_OK) status = get_double_default(rope, "mscale", where, 0.0, &r->mscale, err);
        if (status == MLXE_OK)
            status = get_double_default(rope, "mscale_all_dim", where, 0.0, &r->mscale_all_dim, err);
        if (status == MLXE_OK) status = get_bool_default(rope, "truncate", where, true, &r->truncate, err);
        if (status != MLXE_OK) return status;
        if (!(r->beta_fast > 0) || !(r->beta_slow > 0) || r->attention_factor < 0)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: %s needs positive beta_fast and beta_slow and a non-negative "
                                  "attention_factor",
                                  what, key);
    }
    return MLXE_OK;
}

/* rope_theta and rope scaling, from whichever spelling the file uses. */
static mlxe_status parse_rope(const cJSON *root, const char *what, mlxe_model_config *config,
                              mlxe_error *err) {
    mlxe_status status = get_double_default(root, "rope_theta", what, 10000.0, &config->rope_theta, err);
    if (status != MLXE_OK) return status;
    bool theta_given = false; /* by rope_parameters, which wins */
    const cJSON *parameters = raw_item(root, "rope_parameters");
    const cJSON *scaling = raw_item(root, "rope_scaling");
    if (parameters && !cJSON_IsNull(parameters)) {
        if (!cJSON_IsObject(parameters))
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: key 'rope_parameters' must be an object", what);
        const cJSON *p = parameters;
        const cJSON *full = raw_item(p, "full_attention");
        if (cJSON_IsObject(full) && !raw_item(p, "rope_type")) p = full;
        char where[512];
        snprintf(where, sizeof where, "%s: rope_parameters", what);
        status = mlxe_json_get_double(p, "rope_theta", where, &config->rope_theta, &theta_given, err);
        if (status == MLXE_OK) status = parse_rope_object(parameters, "rope_parameters", what, config, err);
        if (status != MLXE_OK) return status;
    }
    if (config->rope_scaling.type == MLXE_ROPE_SCALING_NONE && scaling && !cJSON_IsNull(scaling)) {
        if (!cJSON_IsObject(scaling))
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: key 'rope_scaling' must be an object or null", what);
        char where[512];
        snprintf(where, sizeof where, "%s: rope_scaling", what);
        if (!theta_given)
            status = get_double_default(scaling, "rope_theta", where, config->rope_theta, &config->rope_theta, err);
        if (status == MLXE_OK) status = parse_rope_object(scaling, "rope_scaling", what, config, err);
        if (status != MLXE_OK) return status;
    }
    if (!isfinite(config->rope_theta) || config->rope_theta <= 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: rope_theta is %g; it must be a positive number",
                              what, config->rope_theta);
    return MLXE_OK;
}

static mlxe_status parse_model_type(const cJSON *root, const char *what, mlxe_model_config *out,
                                    family *fam, mlxe_error *err) {
    const char *type = NULL;
    bool found = false;
    mlxe_status status = mlxe_json_get_string(root, "model_type", what, &type, &found, err);
    if (status != MLXE_OK) return status;
    if (!found)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: no 'model_type' key; is this a transformers config.json? "
                              "(supported types: " SUPPORTED_TYPES_TEXT ")",
                              what);
    for (int i = 0; mlxe_supported_model_types[i]; i++) {
        if (strcmp(type, mlxe_supported_model_types[i]) == 0) {
            *fam = (family)i;
            snprintf(out->model_type, sizeof out->model_type, "%s", type);
            return MLXE_OK;
        }
    }
    return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                          "%s: model_type '%.64s' is not supported by the native backend (supported: "
                          SUPPORTED_TYPES_TEXT ")",
                          what, type);
}

/* Sizes, with the family's defaults for absent keys. */
static mlxe_status parse_sizes(const cJSON *root, const char *what, family fam,
                               mlxe_model_config *out, mlxe_error *err) {
    const family_defaults *d = &defaults_table[fam];
    mlxe_status status = get_int_default(root, "vocab_size", what, d->vocab_size, &out->vocab_size, err);
    if (status == MLXE_OK)
        status = get_int_default(root, "hidden_size", what, d->hidden_size, &out->hidden_size, err);
    if (status == MLXE_OK)
        status = get_int_default(root, "intermediate_size", what, d->intermediate_size,
                                 &out->intermediate_size, err);
    if (status == MLXE_OK)
        status = get_int_default(root, "num_hidden_layers", what, d->num_hidden_layers,
                                 &out->num_hidden_layers, err);
    if (status == MLXE_OK)
        status = get_int_default(root, "num_attention_heads", what, d->num_attention_heads,
                                 &out->num_attention_heads, err);
    if (status == MLXE_OK)
        status = get_int_default(root, "max_position_embeddings", what, d->max_position_embeddings,
                                 &out->max_position_embeddings, err);
    if (status != MLXE_OK) return status;

    static const char *const positive_keys[] = {"vocab_size", "hidden_size", "intermediate_size",
                                                "num_hidden_layers", "num_attention_heads",
                                                "max_position_embeddings"};
    const int64_t values[] = {out->vocab_size, out->hidden_size, out->intermediate_size,
                              out->num_hidden_layers, out->num_attention_heads,
                              out->max_position_embeddings};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        status = require_positive(values[i], positive_keys[i], what, err);
        if (status != MLXE_OK) return status;
    }

    /* An absent num_key_value_heads takes the class default; an explicit null
     * means "same as num_attention_heads" in every one of these classes. */
    const cJSON *kv = raw_item(root, "num_key_value_heads");
    if (!kv) out->num_key_value_heads = d->num_key_value_heads;
    else out->num_key_value_heads = -1;
    status = mlxe_json_get_int(root, "num_key_value_heads", what, &out->num_key_value_heads, NULL, err);
    if (status != MLXE_OK) return status;
    if (out->num_key_value_heads == -1) out->num_key_value_heads = out->num_attention_heads;
    status = require_positive(out->num_key_value_heads, "num_key_value_heads", what, err);
    if (status != MLXE_OK) return status;
    if (out->num_attention_heads % out->num_key_value_heads != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: num_attention_heads (%lld) is not a multiple of num_key_value_heads "
                              "(%lld), so the heads cannot be grouped (fix or re-download config.json)",
                              what, (long long)out->num_attention_heads,
                              (long long)out->num_key_value_heads);

    bool has_head_dim = false;
    out->head_dim = d->head_dim;
    status = mlxe_json_get_int(root, "head_dim", what, &out->head_dim, &has_head_dim, err);
    if (status != MLXE_OK) return status;
    if (out->head_dim == -1) {
        if (out->hidden_size % out->num_attention_heads != 0)
            return mlxe_error_set(err, MLXE_ERR_FORMAT,
                                  "%s: hidden_size (%lld) is not a multiple of num_attention_heads "
                                  "(%lld) and no head_dim is given",
                                  what, (long long)out->hidden_size, (long long)out->num_attention_heads);
        out->head_dim = out->hidden_size / out->num_attention_heads;
    }
    status = require_positive(out->head_dim, "head_dim", what, err);
    if (status != MLXE_OK) return status;
    if (out->head_dim % 2 != 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: head_dim is %lld; rotary embeddings need an even head_dim", what,
                              (long long)out->head_dim);
    return MLXE_OK;
}

/* transformers 5 writes Qwen's per-layer attention kinds as layer_types,
 * derived from use_sliding_window and max_window_layers (Qwen2Config
 * __post_init__). We model only that rule, so a list that says otherwise
 * is refused rather than silently run with the wrong masks. */
static mlxe_status check_layer_types(const cJSON *root, const char *what,
                                     const mlxe_model_config *out, mlxe_error *err) {
    const cJSON *types = raw_item(root, "layer_types");
    if (!types || cJSON_IsNull(types)) return MLXE_OK;
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) != out->num_hidden_layers)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: layer_types must be a list with one entry per layer (%lld)", what,
                              (long long)out->num_hidden_layers);
    int64_t layer = 0;
    const cJSON *type;
    cJSON_ArrayForEach(type, types) {
        bool sliding = out->sliding_window > 0 && layer >= out->max_window_layers;
        const char *expected = sliding ? "sliding_attention" : "full_attention";
        if (!cJSON_IsString(type) || strcmp(type->valuestring, expected) != 0)
            return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                                  "%s: layer_types[%lld] is %s%s%s but use_sliding_window, "
                                  "sliding_window and max_window_layers imply '%s'; other per-layer "
                                  "attention patterns are not supported",
                                  what, (long long)layer, cJSON_IsString(type) ? "'" : "a non-string",
                                  cJSON_IsString(type) ? type->valuestring : "",
                                  cJSON_IsString(type) ? "'" : "", expected);
        layer++;
    }
    return MLXE_OK;
}

/* Biases, q/k norms and sliding windows: what differs between the families. */
static mlxe_status parse_family_traits(const cJSON *root, const char *what, family fam,
                                       mlxe_model_config *out, mlxe_error *err) {
    const family_defaults *d = &defaults_table[fam];
    mlxe_status status = MLXE_OK;
    bool attention_bias = false;
    switch (fam) {
    case FAMILY_LLAMA:
        /* LlamaAttention: attention_bias applies to q, k, v and o. */
        status = get_bool_default(root, "attention_bias", what, false, &attention_bias, err);
        if (status == MLXE_OK) status = get_bool_default(root, "mlp_bias", what, false, &out->mlp_bias, err);
        out->attention_bias = out->attention_output_bias = attention_bias;
        break;
    case FAMILY_MISTRAL:
        /* MistralAttention has no biases whatever the config says. */
        break;
    case FAMILY_QWEN2:
        /* Qwen2Attention: q/k/v always have biases, o never. */
        out->attention_bias = true;
        break;
    case FAMILY_QWEN3:
        /* Qwen3Attention: attention_bias (default false) on q, k, v and o; q_norm/k_norm always. */
        status = get_bool_default(root, "attention_bias", what, false, &attention_bias, err);
        out->attention_bias = out->attention_output_bias = attention_bias;
        out->qk_norm = true;
        break;
    }
    if (status != MLXE_OK) return status;

    /* Sliding windows. Mistral: sliding_window (default 4096; null = none)
     * applies to every layer. Qwen2/3: only when use_sliding_window is true,
     * and then only to layers >= max_window_layers. */
    bool use_window = fam == FAMILY_MISTRAL;
    if (fam == FAMILY_QWEN2 || fam == FAMILY_QWEN3) {
        status = get_bool_default(root, "use_sliding_window", what, false, &use_window, err);
        if (status == MLXE_OK)
            status = get_int_default(root, "max_window_layers", what, 28, &out->max_window_layers, err);
        if (status != MLXE_OK) return status;
        if (out->max_window_layers < 0)
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: max_window_layers is %lld; it must be 0 or more",
                                  what, (long long)out->max_window_layers);
    }
    out->sliding_window = 0;
    if (use_window) {
        const cJSON *window = raw_item(root, "sliding_window");
        out->sliding_window = window ? 0 : d->sliding_window;
        status = mlxe_json_get_int(root, "sliding_window", what, &out->sliding_window, NULL, err);
        if (status != MLXE_OK) return status;
        if (out->sliding_window < 0)
            return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: sliding_window is %lld; it must be 0 or more",
                                  what, (long long)out->sliding_window);
    }
    if (fam == FAMILY_QWEN2 || fam == FAMILY_QWEN3) return check_layer_types(root, what, out, err);
    return MLXE_OK;
}

mlxe_status mlxe_model_config_parse(const cJSON *root, const char *what, mlxe_model_config *out,
                                    mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_model_config_parse: out is NULL");
    memset(out, 0, sizeof *out);
    if (!what) what = "config.json";
    if (!cJSON_IsObject(root))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: the file must hold a JSON object", what);
    family fam = FAMILY_LLAMA;
    mlxe_status status = parse_model_type(root, what, out, &fam, err);
    if (status == MLXE_OK) status = parse_sizes(root, what, fam, out, err);
    if (status == MLXE_OK) status = parse_family_traits(root, what, fam, out, err);
    if (status == MLXE_OK) status = parse_rope(root, what, out, err);
    if (status != MLXE_OK) return status;

    const cJSON *architectures = raw_item(root, "architectures");
    if (cJSON_IsArray(architectures) && cJSON_IsString(cJSON_GetArrayItem(architectures, 0)))
        snprintf(out->architecture, sizeof out->architecture, "%s",
                 cJSON_GetArrayItem(architectures, 0)->valuestring);

    status = get_double_default(root, "rms_norm_eps", what, 1e-6, &out->rms_norm_eps, err);
    if (status != MLXE_OK) return status;
    if (!isfinite(out->rms_norm_eps) || out->rms_norm_eps <= 0)
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: rms_norm_eps is %g; it must be a positive number",
                              what, out->rms_norm_eps);
    status = get_bool_default(root, "tie_word_embeddings", what, false, &out->tie_word_embeddings, err);
    if (status != MLXE_OK) return status;

    const char *act = "silu";
    bool found = false;
    status = mlxe_json_get_string(root, "hidden_act", what, &act, &found, err);
    if (status == MLXE_OK)
        status = copy_string(act, out->hidden_act, sizeof out->hidden_act, what, "hidden_act", err);
    if (status != MLXE_OK) return status;

    /* transformers 5 writes "dtype" where 4 wrote "torch_dtype". */
    const char *dtype = NULL;
    status = mlxe_json_get_string(root, "torch_dtype", what, &dtype, &found, err);
    if (status == MLXE_OK && !found) status = mlxe_json_get_string(root, "dtype", what, &dtype, &found, err);
    if (status != MLXE_OK) return status;
    out->torch_dtype = found ? mlxe_dtype_from_name(dtype) : MLXE_DTYPE_UNKNOWN;

    const family_defaults *d = &defaults_table[fam];
    out->bos_token_id = d->bos_token_id;
    out->pad_token_id = -1;
    out->n_eos_token_ids = 0;
    if (d->eos_token_id >= 0) {
        out->eos_token_ids[0] = d->eos_token_id;
        out->n_eos_token_ids = 1;
    }
    status = get_token_id(root, "bos_token_id", what, &out->bos_token_id, err);
    if (status == MLXE_OK) status = get_token_id(root, "pad_token_id", what, &out->pad_token_id, err);
    if (status == MLXE_OK)
        status = get_token_ids(root, "eos_token_id", what, out->eos_token_ids, &out->n_eos_token_ids, err);
    return status;
}

void mlxe_generation_config_init(mlxe_generation_config *gen) {
    if (!gen) return;
    memset(gen, 0, sizeof *gen);
    gen->temperature = 1.0;
    gen->top_p = 1.0;
    gen->repetition_penalty = 1.0;
    gen->bos_token_id = -1;
}

mlxe_status mlxe_generation_config_parse(const cJSON *root, const char *what,
                                         mlxe_generation_config *out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_generation_config_parse: out is NULL");
    mlxe_generation_config_init(out);
    if (!what) what = "generation_config.json";
    if (!cJSON_IsObject(root))
        return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: the file must hold a JSON object", what);
    mlxe_status status = get_bool_default(root, "do_sample", what, false, &out->do_sample, err);
    if (status == MLXE_OK) status = get_double_default(root, "temperature", what, 1.0, &out->temperature, err);
    if (status == MLXE_OK) status = get_int_default(root, "top_k", what, 0, &out->top_k, err);
    if (status == MLXE_OK) status = get_double_default(root, "top_p", what, 1.0, &out->top_p, err);
    if (status == MLXE_OK) status = get_double_default(root, "min_p", what, 0.0, &out->min_p, err);
    if (status == MLXE_OK)
        status = get_double_default(root, "repetition_penalty", what, 1.0, &out->repetition_penalty, err);
    if (status == MLXE_OK) status = get_int_default(root, "max_new_tokens", what, 0, &out->max_new_tokens, err);
    if (status == MLXE_OK) status = get_token_id(root, "bos_token_id", what, &out->bos_token_id, err);
    if (status == MLXE_OK)
        status = get_token_ids(root, "eos_token_id", what, out->eos_token_ids, &out->n_eos_token_ids, err);
    if (status != MLXE_OK) return status;
    const char *bad = NULL;
    if (!(out->temperature >= 0)) bad = "temperature must be 0 or more";
    else if (out->top_k < 0) bad = "top_k must be 0 or more";
    else if (!(out->top_p >= 0 && out->top_p <= 1)) bad = "top_p must be between 0 and 1";
    else if (!(out->min_p >= 0 && out->min_p <= 1)) bad = "min_p must be between 0 and 1";
    else if (!(out->repetition_penalty > 0)) bad = "repetition_penalty must be positive";
    else if (out->max_new_tokens < 0) bad = "max_new_tokens must be 0 or more";
    if (bad) return mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: %s", what, bad);
    out->present = true;
    return MLXE_OK;
}

static mlxe_status parse_file(const char *dir, const char *name, cJSON **root, char **path,
                              mlxe_error *err) {
    *root = NULL;
    *path = mlxe_path_join(dir, name);
    if (!*path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    return mlxe_json_parse_file(*path, MAX_CONFIG_BYTES, root, err);
}

mlxe_status mlxe_model_config_load(const char *dir, mlxe_model_config *config,
                                   mlxe_generation_config *gen, mlxe_error *err) {
    if (!dir || !config)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_model_config_load: dir or config is NULL");
    memset(config, 0, sizeof *config);
    mlxe_generation_config local;
    mlxe_generation_config_init(&local);
    if (gen) mlxe_generation_config_init(gen);

    cJSON *root = NULL;
    char *path = NULL;
    mlxe_status status = parse_file(dir, "config.json", &root, &path, err);
    if (status == MLXE_OK) status = mlxe_model_config_parse(root, path, config, err);
    cJSON_Delete(root);
    free(path);
    if (status != MLXE_OK) return status;

    path = mlxe_path_join(dir, "generation_config.json");
    if (!path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
    if (mlxe_file_exists(path)) {
        status = mlxe_json_parse_file(path, MAX_CONFIG_BYTES, &root, err);
        if (status == MLXE_OK) status = mlxe_generation_config_parse(root, path, &local, err);
        cJSON_Delete(root);
    }
    free(path);
    if (status != MLXE_OK) return status;
    /* generation_config.json's eos list is what generate() stops on (transformers
     * and mlx-lm both prefer it), so it replaces config.json's. */
    if (local.present && local.n_eos_token_ids > 0) {
        memcpy(config->eos_token_ids, local.eos_token_ids, sizeof config->eos_token_ids);
        config->n_eos_token_ids = local.n_eos_token_ids;
    }
    if (gen) *gen = local;
    MLXE_DEBUG(MLXE_LOG_CAT_FORMAT, "%s: %s, %lld layers, hidden %lld, heads %lld/%lld, head_dim %lld",
               dir, config->model_type, (long long)config->num_hidden_layers,
               (long long)config->hidden_size, (long long)config->num_attention_heads,
               (long long)config->num_key_value_heads, (long long)config->head_dim);
    return MLXE_OK;
}
