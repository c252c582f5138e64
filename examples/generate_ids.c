/* examples/generate_ids.c — the smallest program that runs a model with the
 * public API: load a model folder, make a context, generate greedily from a
 * few prompt ids and print the new ids as they come.
 *
 *   example_generate_ids MODEL_DIR [ID ...] */
#include <mlxengine/mlxengine.h>
#include <stdio.h>
#include <stdlib.h>

static bool print_token(void *user, int32_t token) {
    (void)user;
    printf("%d ", token);
    fflush(stdout);
    return true; /* keep going */
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL_DIR [PROMPT_ID ...]\n", argv[0]);
        return 2;
    }
    int32_t prompt[64];
    int64_t n_prompt = 0;
    for (int i = 2; i < argc && n_prompt < 64; i++) prompt[n_prompt++] = (int32_t)atoi(argv[i]);
    if (n_prompt == 0) prompt[n_prompt++] = 1; /* no ids given: start from id 1 */

    mlxe_error err;
    mlxe_model_options model_options;
    mlxe_model_options_init(&model_options);
    mlxe_model *model = NULL;
    if (mlxe_model_load(argv[1], &model_options, &model, &err) != MLXE_OK) {
        fprintf(stderr, "load failed: %s\n", err.message);
        return 1;
    }
    mlxe_context_options context_options;
    mlxe_context_options_init(&context_options);
    mlxe_context *ctx = NULL;
    if (mlxe_context_create(model, &context_options, &ctx, &err) != MLXE_OK) {
        fprintf(stderr, "context failed: %s\n", err.message);
        mlxe_model_free(model);
        return 1;
    }
    mlxe_generate_options options;
    mlxe_generate_options_init(&options);
    options.max_tokens = 16;
    mlxe_generate_stats stats;
    mlxe_status status = mlxe_generate(ctx, prompt, n_prompt, &options, print_token, NULL, NULL,
                                       &stats, &err);
    printf("\n");
    if (status != MLXE_OK) fprintf(stderr, "generate failed: %s\n", err.message);
    else fprintf(stderr, "%lld tokens, stop: %s\n", (long long)stats.n_generated_tokens,
                 mlxe_stop_reason_name(stats.stop_reason));
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    return status == MLXE_OK ? 0 : 1;
}
