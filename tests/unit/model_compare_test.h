/* tests/unit/model_compare_test.h — shared by the tests that run one model
 * two ways token by token and compare them (test_runtime_cpu_int8_model.c,
 * test_models_cuda_int8.c: int8 against float activations): encoding a
 * text file, reading id arrays of the golden files, one decode step, a
 * token's negative log-likelihood, the top token and its margin. */
#ifndef MLXE_TEST_MODEL_COMPARE_TEST_H
#define MLXE_TEST_MODEL_COMPARE_TEST_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/file.h"
#include "mlxengine/mlxengine.h"
#include "test_util.h"

/* The text file at path (up to 1 MiB) encoded by model_dir's tokenizer
 * into ids (initialised here; free with mlxe_token_list_free). */
static inline void compare_encode_file(const char *model_dir, const char *path, mlxe_token_list *ids) {
    char *text = NULL;
    size_t size = 0;
    mlxe_error err;
    if (mlxe_file_read_all(path, 1 << 20, &text, &size, &err) != MLXE_OK) fail_msg("%s", err.message);
    mlxe_tokenizer *tokenizer = NULL;
    if (mlxe_tokenizer_load(model_dir, &tokenizer, &err) != MLXE_OK) fail_msg("%s", err.message);
    mlxe_token_list_init(ids);
    mlxe_encode_options encode;
    mlxe_encode_options_init(&encode);
    if (mlxe_tokenizer_encode(tokenizer, text, size, &encode, ids, &err) != MLXE_OK) fail_msg("%s", err.message);
    free(text);
    mlxe_tokenizer_free(tokenizer);
}

/* A JSON array of ids as int32 (malloc'ed; count set). */
static inline int32_t *compare_ids_of(const cJSON *array, int64_t *count) {
    int n = cJSON_GetArraySize(array);
    int32_t *ids = malloc((size_t)(n ? n : 1) * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < n; i++) ids[i] = (int32_t)cJSON_GetArrayItem(array, i)->valuedouble;
    *count = n;
    return ids;
}

/* Feeds ids[i] at position i of sequence 0 to ctx and returns its logits. */
static inline const float *compare_decode_one(mlxe_context *ctx, const int32_t *ids, int64_t i) {
    int32_t position = (int32_t)i, seq = 0;
    int8_t want = 1;
    mlxe_batch batch = {.n_tokens = 1, .tokens = &ids[i], .positions = &position, .seq_ids = &seq, .logits = &want};
    mlxe_error err;
    if (mlxe_context_decode(ctx, &batch, &err) != MLXE_OK) fail_msg("%s", err.message);
    const float *logits = mlxe_context_logits(ctx, 0);
    assert_non_null(logits);
    return logits;
}

/* -log softmax(logits)[target] */
static inline double compare_nll_of(const float *logits, int64_t vocab, int32_t target) {
    double max = logits[0], total = 0;
    for (int64_t v = 1; v < vocab; v++) max = fmax(max, logits[v]);
    for (int64_t v = 0; v < vocab; v++) total += exp((double)logits[v] - max);
    return max + log(total) - logits[target];
}

/* Index of the largest logit, and its margin over the second largest. */
static inline int32_t compare_top_of(const float *logits, int64_t vocab, double *margin) {
    int32_t best = 0;
    for (int64_t v = 1; v < vocab; v++)
        if (logits[v] > logits[best]) best = (int32_t)v;
    double second = -INFINITY;
    for (int64_t v = 0; v < vocab; v++)
        if (v != best) second = fmax(second, logits[v]);
    *margin = logits[best] - second;
    return best;
}

#endif
