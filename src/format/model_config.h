/* format/model_config.h — config.json, generation_config.json and
 * tokenizer_config.json parsed into typed structs.
 *
 * Parsing validates what the forward pass relies on (positive sizes, heads
 * dividing evenly, known rope scaling) so the model code never sees a config
 * that would make it divide by zero or index out of bounds. Unknown
 * model_type values give an error listing the supported ones. */
#ifndef MLXE_FORMAT_MODEL_CONFIG_H
#define MLXE_FORMAT_MODEL_CONFIG_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "format/dtype.h"
#include "mlxengine/status.h"

#define MLXE_MAX_EOS_TOKENS 16

typedef enum mlxe_rope_scaling_type {
    MLXE_ROPE_SCALING_NONE = 0,
    MLXE_ROPE_SCALING_LINEAR,
    MLXE_ROPE_SCALING_DYNAMIC,   /* dynamic NTK */
    MLXE_ROPE_SCALING_LLAMA3,
    MLXE_ROPE_SCALING_YARN
} mlxe_rope_scaling_type;

typedef struct mlxe_rope_scaling {
    mlxe_rope_scaling_type type;
    double factor;                            /* all types */
    double low_freq_factor, high_freq_factor; /* llama3 */
    int64_t original_max_position_embeddings; /* llama3, yarn, dynamic */
    double beta_fast, beta_slow;              /* yarn (defaults 32, 1) */
    double attention_factor;                  /* yarn mscale; 0 = derive from factor */
    /* Added after the first contract: */
    bool has_original_max_position_embeddings; /* given in the file (else it holds
                                                  max_position_embeddings, transformers' fallback) */
    double mscale, mscale_all_dim;            /* yarn (DeepSeek-style); 0 when absent */
    bool truncate;                            /* yarn; default true */
} mlxe_rope_scaling;

typedef struct mlxe_model_config {
    char model_type[32];          /* "llama", "mistral", "qwen2", "qwen3" */
    char architecture[64];        /* architectures[0], e.g. "LlamaForCausalLM" ("" if absent) */
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t intermediate_size;
    int64_t num_hidden_layers;
    int64_t num_attention_heads;
    int64_t num_key_value_heads;  /* defaults to num_attention_heads */
    int64_t head_dim;             /* given, or hidden_size / num_attention_heads */
    int64_t max_position_embeddings;
    double rms_norm_eps;
    double rope_theta;            /* default 10000 */
    mlxe_rope_scaling rope_scaling;
    bool tie_word_embeddings;
    bool attention_bias;          /* q/k/v projections have biases (qwen2: always) */
    bool attention_output_bias;   /* o_proj has a bias (llama attention_bias=true) */
    bool mlp_bias;                /* llama mlp_bias */
    bool qk_norm;                 /* per-head RMSNorm of q and k (qwen3) */
    int64_t sliding_window;       /* 0 = none */
    int64_t max_window_layers;    /* qwen2/3: layers >= this use the window */
    char hidden_act[16];          /* "silu" */
    mlxe_dtype torch_dtype;       /* dtype the checkpoint declares, UNKNOWN if absent */
    int64_t bos_token_id;         /* -1 if absent */
    int64_t pad_token_id;         /* -1 if absent */
    int64_t eos_token_ids[MLXE_MAX_EOS_TOKENS]; /* generation_config's list wins over config's */
    int n_eos_token_ids;
} mlxe_model_config;

typedef struct mlxe_generation_config {
    bool present;                 /* generation_config.json existed */
    bool do_sample;
    double temperature;           /* NaN-free; 1.0 when absent */
    int64_t top_k;                /* 0 = off */
    double top_p;                 /* 1.0 = off */
    double min_p;                 /* 0 = off */
    double repetition_penalty;    /* 1.0 = off */
    int64_t max_new_tokens;       /* 0 = not set */
    int64_t bos_token_id;         /* -1 if absent */
    int64_t eos_token_ids[MLXE_MAX_EOS_TOKENS];
    int n_eos_token_ids;
} mlxe_generation_config;

/* Model types the native backend runs, for error messages and checks;
 * NULL-terminated. */
extern const char *const mlxe_supported_model_types[];

/* Parses a config.json object; what names the source in errors.
 * Absent keys take the defaults of the transformers config class of the
 * model_type (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config). Both
 * the transformers 4 keys (rope_theta, rope_scaling with "type" or
 * "rope_type") and transformers 5's rope_parameters are read. Unknown
 * model_type → MLXE_ERR_UNSUPPORTED listing the supported ones; impossible
 * sizes → MLXE_ERR_FORMAT naming the key. */
mlxe_status mlxe_model_config_parse(const cJSON *root, const char *what, mlxe_model_config *out,
                                    mlxe_error *err);
/* Fills the values used when generation_config.json is absent (present=false). */
void mlxe_generation_config_init(mlxe_generation_config *gen);
mlxe_status mlxe_generation_config_parse(const cJSON *root, const char *what,
                                         mlxe_generation_config *out, mlxe_error *err);
/* Loads DIR/config.json and, if present, DIR/generation_config.json (whose
 * eos list then overrides config.json's). gen may be NULL. */
mlxe_status mlxe_model_config_load(const char *dir, mlxe_model_config *config,
                                   mlxe_generation_config *gen, mlxe_error *err);

/* ---- tokenizer_config.json ---- */
typedef struct mlxe_named_template {
    char *name;                   /* "default", "tool_use", ... */
    char *source;
} mlxe_named_template;

typedef struct mlxe_tokenizer_config {
    bool present;
    char *bos_token, *eos_token, *unk_token, *pad_token; /* content strings, NULL if absent
                                                          (AddedToken dicts reduced to content) */
    int add_bos_token;            /* -1 absent, 0 false, 1 true */
    int add_eos_token;            /* -1 absent, 0 false, 1 true */
    bool clean_up_tokenization_spaces;
    int64_t model_max_length;     /* 0 when absent or absurd (HF writes 1e30) */
    char *tokenizer_class;        /* NULL if absent */
    mlxe_named_template *chat_templates; /* a plain string becomes one named "default" */
    int n_chat_templates;
} mlxe_tokenizer_config;

mlxe_status mlxe_tokenizer_config_parse(const cJSON *root, const char *what,
                                        mlxe_tokenizer_config *out, mlxe_error *err);
/* Loads DIR/tokenizer_config.json (absent → present=false, MLXE_OK). As
 * transformers documents, DIR/chat_template.jinja, when present, replaces
 * the "default" template, and each DIR/additional_chat_templates/NAME.jinja
 * adds (or replaces) template NAME; the others from tokenizer_config.json
 * stay. On error *out is left empty (nothing to free). */
mlxe_status mlxe_tokenizer_config_load(const char *dir, mlxe_tokenizer_config *out, mlxe_error *err);
/* Frees what parse/load allocated and resets the struct to empty
 * (present=false, add_*_token=-1). Accepts NULL. */
void mlxe_tokenizer_config_free(mlxe_tokenizer_config *config);
/* The template named name ("default" when name is NULL), or NULL. */
const char *mlxe_tokenizer_config_chat_template(const mlxe_tokenizer_config *config,
                                                const char *name);

#endif
