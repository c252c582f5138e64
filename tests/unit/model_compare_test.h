/* tests/unit/model_compare_test.h — shared by the tests that run one model
 * two ways token by token and compare them (test_runtime_cpu_int8_model.c,
 * test_models_cuda_int8.c: int8 against float activations): encoding a
 * text file, reading id arrays of the golden files, one decode step, a
 * token's negative log-likelihood, the top token and its margin, and the
 * golden prompts' greedy continuations on both in lockstep. */
#ifndef MLXE_TEST_MODEL_COMPARE_TEST_H
#define MLXE_TEST_MODEL_COMPARE_TEST_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* What compare_greedy_golden found over the golden prompts. */
typedef struct compare_agreement {
    int prompts;    /* prompts read */
    int tokens;     /* greedy tokens both picked alike, over all prompts */
    int throughout; /* prompts whose n_new tokens all agreed */
} compare_agreement;

/* Greedy continuations of the golden file's prompts on ctx_a and ctx_b in
 * lockstep: each prompt but its last token as one batch, then n_new
 * tokens one at a time, both fed ctx_a's pick, until the two pick
 * different tokens; that step is printed with ctx_a's top-2 margin and the
 * largest logit difference. label names ctx_b's way in the messages. */
static inline compare_agreement compare_greedy_golden(const char *golden_path, mlxe_context *ctx_a,
                                                      mlxe_context *ctx_b, int64_t vocab, int n_new,
                                                      const char *label) {
    char *text = NULL;
    size_t size = 0;
    mlxe_error err;
    if (mlxe_file_read_all(golden_path, 1 << 24, &text, &size, &err) != MLXE_OK) fail_msg("%s", err.message);
    cJSON *golden = cJSON_ParseWithLength(text, size);
    free(text);
    assert_non_null(golden);
    compare_agreement found = {0, 0, 0};
    const cJSON *prompt;
    cJSON_ArrayForEach(prompt, cJSON_GetObjectItem(golden, "prompts")) {
        int64_t n_prompt = 0;
        int32_t *prompt_ids = compare_ids_of(cJSON_GetObjectItem(prompt, "prompt_ids"), &n_prompt);
        assert_true(n_prompt >= 2 && n_prompt + n_new <= 128);
        int32_t seq[128];
        memcpy(seq, prompt_ids, (size_t)n_prompt * sizeof *seq);
        int64_t n = n_prompt;
        mlxe_context *both[2] = {ctx_a, ctx_b};
        for (int c = 0; c < 2; c++) { /* the prompt but its last token: one batch */
            int32_t positions[128], seqs[128] = {0};
            int8_t want[128] = {0};
            for (int64_t i = 0; i < n_prompt; i++) positions[i] = (int32_t)i;
            mlxe_batch batch = {.n_tokens = (int32_t)(n_prompt - 1), .tokens = prompt_ids, .positions = positions,
                                .seq_ids = seqs, .logits = want};
            mlxe_context_seq_clear(both[c], 0);
            if (mlxe_context_decode(both[c], &batch, &err) != MLXE_OK) fail_msg("%s", err.message);
        }
        int agree = 0;
        for (; agree < n_new; agree++) {
            const float *a = compare_decode_one(ctx_a, seq, n - 1), *b = compare_decode_one(ctx_b, seq, n - 1);
            double margin_a, margin_b, worst = 0;
            int32_t ta = compare_top_of(a, vocab, &margin_a), tb = compare_top_of(b, vocab, &margin_b);
            for (int64_t v = 0; v < vocab; v++) worst = fmax(worst, fabs((double)a[v] - b[v]));
            if (ta != tb) {
                print_message("prompt %d: step %d: float picks %d by a margin of %.4f, %s picks %d (largest logit "
                              "difference %.4f)\n",
                              found.prompts, agree, ta, margin_a, label, tb, worst);
                break;
            }
            seq[n++] = ta;
        }
        print_message("prompt %d: %s agree with float for %d of %d greedy tokens\n", found.prompts, label, agree,
                      n_new);
        found.tokens += agree;
        found.throughout += agree == n_new;
        free(prompt_ids);
        found.prompts++;
    }
    cJSON_Delete(golden);
    return found;
}

#endif
