/* bench/chat_reply.c — chat replies (mlxe_session_reply) against
 * mlxe_generate on the same model, prompt and sampler, each with the token
 * chosen on the device and with MLXE_DEVICE_CHOICE=0 (every token's logits
 * downloaded and sampled on the host, as replies did before), alternating
 * in one run. Prints generated tokens/s (tokens after the first over their
 * wall time; best and median of --repeat) per sampler.
 *
 *   bench_chat_reply --model DIR [--device cuda] [--gen-tokens 128] [--repeat 5]
 *
 * DIR needs tokenizer.json and a chat template besides the weights (a
 * random-weight folder of bench/make_random_model.py plus the chat test
 * model's tokenizer files does: ids the tokenizer lacks decode to nothing).
 * EOS is ignored so every run generates --gen-tokens tokens. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlxengine/mlxengine.h"
#include "bench_clock.h"

#define MAX_REPEAT 32

typedef struct bench_env {
    mlxe_model *model;
    mlxe_tokenizer *tokenizer;
    mlxe_chat_template *chat_template;
    long gen_tokens;
} bench_env;

static const char user_text[] = "Tell me the story of the north wind and the sun, in plain words.";

/* One reply in a fresh session: tokens/s after the first token, or -1. */
static double reply_rate(const bench_env *b, const mlxe_sampler_options *so) {
    mlxe_session_options o;
    mlxe_session_options_init(&o);
    o.n_ctx = 1024;
    mlxe_session *s = NULL;
    mlxe_error err;
    if (mlxe_session_create(b->model, b->tokenizer, b->chat_template, &o, &s, &err) != MLXE_OK) {
        fprintf(stderr, "session: %s\n", err.message);
        return -1;
    }
    mlxe_message m = {.role = MLXE_ROLE_USER, .content = user_text};
    mlxe_reply_options ro;
    mlxe_reply_options_init(&ro);
    ro.max_tokens = b->gen_tokens;
    ro.ignore_eos = true;
    ro.sampler = *so;
    mlxe_reply_stats stats;
    double rate = -1;
    if (mlxe_session_add_message(s, &m, &err) != MLXE_OK ||
        mlxe_session_reply(s, &ro, NULL, NULL, NULL, NULL, &stats, &err) != MLXE_OK)
        fprintf(stderr, "reply: %s\n", err.message);
    else
        rate = stats.generation_tokens_per_second;
    mlxe_session_free(s);
    return rate;
}

/* mlxe_generate over the same rendered prompt: tokens/s after the first. */
static double generate_rate(const bench_env *b, const mlxe_sampler_options *so) {
    char *prompt_text = NULL;
    size_t size = 0;
    mlxe_token_list ids;
    mlxe_token_list_init(&ids);
    mlxe_error err;
    double rate = -1;
    mlxe_context *ctx = NULL;
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = 1024;
    mlxe_encode_options eo;
    mlxe_encode_options_init(&eo);
    eo.parse_special_tokens = true; /* the rendered template's, as the session encodes it */
    static const char context[] = "{\"messages\": [{\"role\": \"user\", \"content\": \"Tell me the story of the "
                                  "north wind and the sun, in plain words.\"}], \"add_generation_prompt\": true}";
    if (mlxe_chat_template_render_json(b->chat_template, NULL, context, strlen(context), &prompt_text, &size, &err) !=
            MLXE_OK ||
        mlxe_tokenizer_encode(b->tokenizer, prompt_text, size, &eo, &ids, &err) != MLXE_OK ||
        mlxe_context_create(b->model, &co, &ctx, &err) != MLXE_OK) {
        fprintf(stderr, "generate setup: %s\n", err.message);
    } else {
        mlxe_generate_options g;
        mlxe_generate_options_init(&g);
        g.max_tokens = b->gen_tokens;
        g.ignore_eos = true;
        g.sampler = *so;
        mlxe_generate_stats stats;
        double start = bench_now_seconds();
        if (mlxe_generate(ctx, ids.ids, (int64_t)ids.count, &g, NULL, NULL, NULL, &stats, &err) != MLXE_OK)
            fprintf(stderr, "generate: %s\n", err.message);
        else
            rate = (double)(stats.n_generated_tokens - 1) / (bench_now_seconds() - start - stats.prefill_seconds);
    }
    mlxe_context_free(ctx);
    mlxe_token_list_free(&ids);
    free(prompt_text);
    return rate;
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *device = "cuda";
    long gen_tokens = 128, repeat = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model") == 0) model_dir = argv[i + 1];
        else if (strcmp(argv[i], "--device") == 0) device = argv[i + 1];
        else if (strcmp(argv[i], "--gen-tokens") == 0) gen_tokens = strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--repeat") == 0) repeat = strtol(argv[i + 1], NULL, 10);
    }
    if (!model_dir || gen_tokens < 2 || repeat < 1 || repeat > MAX_REPEAT) {
        fprintf(stderr, "usage: %s --model DIR [--device cuda] [--gen-tokens N >= 2] [--repeat 1..%d]\n", argv[0],
                MAX_REPEAT);
        return 2;
    }
    bench_env b = {.gen_tokens = gen_tokens};
    mlxe_model_options mo;
    mlxe_model_options_init(&mo);
    mo.device = device;
    mlxe_error err;
    if (mlxe_model_load(model_dir, &mo, &b.model, &err) != MLXE_OK ||
        mlxe_tokenizer_load(model_dir, &b.tokenizer, &err) != MLXE_OK ||
        mlxe_chat_template_load(model_dir, &b.chat_template, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", model_dir, err.message);
        mlxe_tokenizer_free(b.tokenizer);
        mlxe_model_free(b.model);
        return 1;
    }
    printf("model %s on %s, vocabulary %lld, %ld generated tokens, best / median of %ld\n\n", model_dir,
           mlxe_model_device_name(b.model), (long long)mlxe_model_vocab_size(b.model), gen_tokens, repeat);
    mlxe_sampler_options samplers[2];
    const char *names[2] = {"greedy", "t=0.8 top_k=40 top_p=0.9 min_p=0.05"};
    mlxe_sampler_options_init(&samplers[0]);
    mlxe_sampler_options_init(&samplers[1]);
    samplers[1].temperature = 0.8f, samplers[1].top_k = 40, samplers[1].top_p = 0.9f, samplers[1].min_p = 0.05f;
    samplers[1].seed = 7;
    printf("| sampler | loop | device chooses tok/s | host samples (MLXE_DEVICE_CHOICE=0) tok/s | ms/token saved |\n");
    printf("|---|---|---|---|---|\n");
    int status = 0;
    for (int k = 0; k < 2; k++)
        for (int loop = 0; loop < 2; loop++) {
            double rates[2][MAX_REPEAT];
            for (long r = 0; r < repeat; r++)
                for (int host = 0; host < 2; host++) { /* alternating */
                    if (host) setenv("MLXE_DEVICE_CHOICE", "0", 1);
                    rates[host][r] = loop == 0 ? reply_rate(&b, &samplers[k]) : generate_rate(&b, &samplers[k]);
                    unsetenv("MLXE_DEVICE_CHOICE");
                    if (rates[host][r] <= 0) status = 1;
                }
            qsort(rates[0], (size_t)repeat, sizeof(double), bench_compare_doubles);
            qsort(rates[1], (size_t)repeat, sizeof(double), bench_compare_doubles);
            double best0 = rates[0][repeat - 1], best1 = rates[1][repeat - 1];
            printf("| %s | %s | %.1f / %.1f | %.1f / %.1f | %.3f |\n", names[k], loop == 0 ? "reply" : "generate",
                   best0, rates[0][repeat / 2], best1, rates[1][repeat / 2], 1000.0 / best1 - 1000.0 / best0);
        }
    mlxe_chat_template_free(b.chat_template);
    mlxe_tokenizer_free(b.tokenizer);
    mlxe_model_free(b.model);
    return status;
}
