/* tests/unit/test_models_cuda.c — the fixture models on a GPU
 * (mlxe_model_options.device = "cuda"), against transformers' references and
 * against the CPU backend:
 *  - tests/fixtures/models/<name>/reference.json and, converted with
 *    mlxe_convert --quantize as test_models_quant_transformers does,
 *    tests/fixtures/quant/<name>/reference.json: logits at every position of
 *    every sequence, prefilled in one batch (GEMM path) and token by token
 *    (matrix-vector path). Token by token computes in float32 throughout: 1e-4
 *    of max |logit|, as the CPU tests. Prefill rounds the activations to BF16
 *    for F16/BF16/quantized weights (tensor-core GEMM): 5e-2 of max |logit|
 *    (the bound test_models_fixtures.c gives BF16 rounding over two layers;
 *    the measured worst is printed, 0.024 on an H100); with MLXE_CUDA_GEMM=f32 (weights widened
 *    to F32, SGEMM without TF32) 1e-4 again. F32 models take SGEMM always.
 *  - greedy continuations (mlxe_generate) identical to the CPU backend's on
 *    every F32 fixture in the default mode, and on every fixture (BF16,
 *    quantized) in the F32 GEMM mode; mismatches of the default mode on
 *    BF16/quantized fixtures are counted and printed, not failed (BF16
 *    rounding may flip near-ties);
 *  - all of the above with the float32-activation one-token kernels
 *    (MLXE_CUDA_MATVEC=float, set in main); the default for 4/8-bit weights,
 *    int8 activations (runtime/cuda/cuda_matvec_int8.cu), is checked on the
 *    4/8-bit fixtures on its own: token by token within 0.35 of max |logit|
 *    of transformers' logits, its logits different from the float path's
 *    (it ran), greedy departures from the CPU counted and printed. 0.35 is a
 *    guard against errors of layout or scale (of the order of the logits),
 *    not a derived bound: int8 blocks of 32 with d = max/127 round a value by
 *    up to max/254, ~2-6x BF16's |x|/512 for the magnitudes of a block, and
 *    these tiny random models (hidden 64: two blocks per vector) average
 *    little of it out — 0.05-0.19 measured on an H200, every fixture printed.
 *    The accuracy check of this path on a real model is
 *    test_models_cuda_int8.c (decode perplexity and greedy agreement), the
 *    kernels' bound test_runtime_cuda_matvec_int8.c;
 *  - token by token and mlxe_generate take the recorded decode-step graphs
 *    (scripts/gpu_check.sh runs this test again with MLXE_CUDA_GRAPH=0);
 *  - sampling on the GPU (temperature, top-k, top-p, min-p, penalties, bias):
 *    mlxe_generate with a seed gives exactly the tokens of the GPU's logits
 *    sampled on the host, with and without graphs, and the CPU's;
 *  - the memory checks: a GPU with too little free memory (capped with
 *    MLXE_GPU_MEMORY_LIMIT_MB) refuses the model, or a too large context,
 *    before allocating, saying how much is missing;
 *  - device strings (these run without a GPU too).
 * Without a usable GPU the GPU tests skip, saying why; MLXE_REQUIRE_GPU=1
 * makes that a failure (scripts/gpu_check.sh). */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime_cuda_test.h"
#include "test_util.h"
#include "fixture_reference.h"
#include "base/json.h"
#include "engine/engine_internal.h"
#include "mlxengine/mlxengine.h"
#include "runtime/device.h"

#define MODELS MLXE_FIXTURES "/models"
#define QUANT_REFS MLXE_FIXTURES "/quant"
#define MAX_IDS 256

/* Skips the calling test (with the reason) when no GPU is usable. */
static void require_gpu(void) { mlxe_device_free(cuda_device_or_skip()); }

static char work_dir[64];

static void remove_folder(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        struct stat info;
        if (lstat(child, &info) == 0 && S_ISDIR(info.st_mode))
            remove_folder(child);
        else
            unlink(child);
    }
    closedir(dir);
    rmdir(path);
}

static mlxe_model *load_on(const char *dir, const char *device, bool f32_gemm) {
    if (f32_gemm) setenv("MLXE_CUDA_GEMM", "f32", 1);
    mlxe_model_options o;
    mlxe_model_options_init(&o);
    o.device = device;
    o.n_threads = 2;
    mlxe_model *model = NULL;
    mlxe_error err;
    mlxe_status st = mlxe_model_load(dir, &o, &model, &err);
    unsetenv("MLXE_CUDA_GEMM");
    if (st != MLXE_OK) fail_msg("load %s on %s: %s", dir, device, err.message);
    return model;
}

static mlxe_context *context_for(mlxe_model *model, int64_t n_ubatch) {
    mlxe_context_options o;
    mlxe_context_options_init(&o);
    o.n_ctx = 256;
    o.n_batch = 256;
    o.n_ubatch = n_ubatch;
    mlxe_context *ctx = NULL;
    mlxe_error err;
    if (mlxe_context_create(model, &o, &ctx, &err) != MLXE_OK) fail_msg("context: %s", err.message);
    return ctx;
}

/* Decodes ids into a fresh sequence 0, batch_rows per call, every row
 * wanting logits; out [n][vocab]. */
static void decode_all(mlxe_context *ctx, const int32_t *ids, int n, int batch_rows, float *out) {
    int64_t vocab = mlxe_model_vocab_size(mlxe_context_model(ctx));
    mlxe_context_seq_clear(ctx, 0);
    for (int first = 0; first < n; first += batch_rows) {
        int rows = n - first < batch_rows ? n - first : batch_rows;
        int32_t positions[MAX_IDS], seqs[MAX_IDS] = {0};
        int8_t want[MAX_IDS];
        for (int r = 0; r < rows; r++) {
            positions[r] = first + r;
            want[r] = 1;
        }
        mlxe_batch b = {.n_tokens = rows, .tokens = ids + first, .positions = positions, .seq_ids = seqs, .logits = want};
        mlxe_error err;
        if (mlxe_context_decode(ctx, &b, &err) != MLXE_OK) fail_msg("decode: %s", err.message);
        for (int r = 0; r < rows; r++)
            memcpy(out + (size_t)(first + r) * vocab, mlxe_context_logits(ctx, r), (size_t)vocab * sizeof(float));
    }
}

/* max |ours - ref| / max |ref| over a [n][vocab] reference array. */
static double relative_error(const float *ours, const cJSON *reference, int64_t vocab, int n) {
    double max_error = 0, max_ref = 0;
    int row = 0;
    const cJSON *position;
    cJSON_ArrayForEach(position, reference) {
        int64_t v = 0;
        const cJSON *value;
        cJSON_ArrayForEach(value, position) {
            if (v >= vocab) fail_msg("reference row longer than the vocabulary");
            double got = ours[(size_t)row * vocab + v];
            max_error = isfinite(got) ? fmax(max_error, fabs(got - value->valuedouble)) : INFINITY;
            max_ref = fmax(max_ref, fabs(value->valuedouble));
            v++;
        }
        if (v != vocab) fail_msg("reference row has %lld logits, the model %lld", (long long)v, (long long)vocab);
        row++;
    }
    if (row != n) fail_msg("reference has %d rows for %d tokens", row, n);
    return max_error / max_ref;
}

typedef struct token_list {
    int32_t ids[MAX_IDS];
    int n;
} token_list;

static bool keep_token(void *user, int32_t token) {
    token_list *list = user;
    if (list->n < MAX_IDS) list->ids[list->n++] = token;
    return true;
}

static void greedy(mlxe_model *model, const int32_t *prompt, int n_prompt, int n_new, token_list *out) {
    mlxe_context *ctx = context_for(model, 64);
    mlxe_generate_options g;
    mlxe_generate_options_init(&g);
    g.max_tokens = n_new;
    g.ignore_eos = true;
    memset(out, 0, sizeof *out);
    mlxe_error err;
    if (mlxe_generate(ctx, prompt, n_prompt, &g, keep_token, out, NULL, NULL, &err) != MLXE_OK)
        fail_msg("generate: %s", err.message);
    assert_int_equal(out->n, n_new);
    mlxe_context_free(ctx);
}

/* The first of n tokens where two greedy continuations part, or -1. */
static int first_departure(const token_list *a, const token_list *b, int n) {
    for (int i = 0; i < n; i++)
        if (a->ids[i] != b->ids[i]) return i;
    return -1;
}

/* The reference's greedy prompt (its length returned) and how many tokens
 * to generate (at most 64). */
static int greedy_prompt(const cJSON *ref, int32_t *prompt, int *n_new) {
    const cJSON *greedy_ref = cJSON_GetObjectItem(ref, "greedy");
    const cJSON *max_new = cJSON_GetObjectItem(greedy_ref, "max_new_tokens");
    *n_new = cJSON_IsNumber(max_new) ? (int)max_new->valuedouble : 32;
    if (*n_new > 64) *n_new = 64;
    return fixture_json_ids(cJSON_GetObjectItem(greedy_ref, "prompt"), prompt, MAX_IDS);
}

/* Worst errors seen, printed at the end. */
static double worst_prefill_default = 0, worst_prefill_f32 = 0, worst_decode = 0, worst_f32_models = 0;
static int greedy_checked = 0, greedy_default_mismatches = 0;

/* One model folder against its reference: `logits_key` names the reference
 * logits of each sequence; exact_default: the default mode computes in
 * float32 (F32 weights), so its greedy run must equal the CPU's. */
static void check_model(const char *name, const char *dir, const cJSON *ref, const char *logits_key,
                        bool float32_weights) {
    mlxe_model *cpu = load_on(dir, "cpu", false);
    for (int mode = 0; mode < 2; mode++) {
        const bool f32_gemm = mode == 1;
        mlxe_model *gpu = load_on(dir, "cuda", f32_gemm);
        assert_string_equal(mlxe_model_device_name(gpu), "cuda:0");
        assert_true(mlxe_model_memory_bytes(gpu) > 0);
        const int64_t vocab = mlxe_model_vocab_size(gpu);
        mlxe_context *ctx = context_for(gpu, 64);
        const cJSON *sequence;
        cJSON_ArrayForEach(sequence, cJSON_GetObjectItem(ref, "sequences")) {
            int32_t ids[MAX_IDS];
            int n = fixture_json_ids(cJSON_GetObjectItem(sequence, "input_ids"), ids, MAX_IDS);
            const cJSON *expected = cJSON_GetObjectItem(sequence, logits_key);
            if (!expected) fail_msg("%s: no '%s' in the reference", name, logits_key);
            float *logits = malloc((size_t)n * (size_t)vocab * sizeof(float));
            assert_non_null(logits);
            /* prefill: one batch (passes of 64 rows: the GEMM path) */
            decode_all(ctx, ids, n, n, logits);
            double error = relative_error(logits, expected, vocab, n);
            double tolerance = f32_gemm || float32_weights ? 1e-4 : 5e-2;
            if (float32_weights) worst_f32_models = fmax(worst_f32_models, error);
            if (f32_gemm)
                worst_prefill_f32 = fmax(worst_prefill_f32, error);
            else
                worst_prefill_default = fmax(worst_prefill_default, error);
            if (!(error <= tolerance))
                fail_msg("%s (%s GEMM, %d tokens in one batch): logits differ from transformers by %.3g of max "
                         "|logit| (tolerance %g)",
                         name, f32_gemm ? "F32" : "default", n, error, tolerance);
            /* token by token: the matrix-vector kernels, float32 throughout
             * (dynamic NTK excepted past max_position_embeddings: there the
             * frequencies depend on each forward's length, in transformers too) */
            const bool dynamic = gpu->config.rope_scaling.type == MLXE_ROPE_SCALING_DYNAMIC;
            if (mode == 0 && (!dynamic || n <= gpu->config.max_position_embeddings)) {
                decode_all(ctx, ids, n, 1, logits);
                error = relative_error(logits, expected, vocab, n);
                worst_decode = fmax(worst_decode, error);
                if (!(error <= 1e-4))
                    fail_msg("%s (token by token, %d tokens): logits differ from transformers by %.3g of max |logit|",
                             name, n, error);
            }
            free(logits);
        }
        mlxe_context_free(ctx);

        /* greedy continuation: the CPU backend's tokens */
        int32_t prompt[MAX_IDS];
        int n_new = 0, n_prompt = greedy_prompt(ref, prompt, &n_new);
        token_list on_cpu, on_gpu;
        greedy(cpu, prompt, n_prompt, n_new, &on_cpu);
        greedy(gpu, prompt, n_prompt, n_new, &on_gpu);
        greedy_checked++;
        const int i = first_departure(&on_cpu, &on_gpu, n_new);
        if (i >= 0) {
            if (f32_gemm || float32_weights)
                fail_msg("%s (%s GEMM): greedy token %d is %d on the GPU, %d on the CPU", name,
                         f32_gemm ? "F32" : "default", i, on_gpu.ids[i], on_cpu.ids[i]);
            print_message("%s (default GEMM): greedy continuation departs from the CPU's at token %d (%d vs %d)\n",
                          name, i, on_gpu.ids[i], on_cpu.ids[i]);
            greedy_default_mismatches++;
        }
        mlxe_model_free(gpu);
    }
    mlxe_model_free(cpu);
}

/* The int8-activation path (see the top of the file) on a quantized model:
 * `exact` is loaded while MLXE_CUDA_MATVEC=float is set and makes its first
 * product then (the device reads the switch there), `int8` after it is
 * unset. */
static double worst_decode_int8 = 0, largest_int8_float_difference = 0;
static int int8_checked = 0, int8_greedy_departures = 0;

static void check_int8(const char *name, const char *dir, const cJSON *ref) {
    mlxe_model *exact = load_on(dir, "cuda", false);
    mlxe_context *exact_ctx = context_for(exact, 64);
    const int64_t vocab = mlxe_model_vocab_size(exact);
    const int32_t first_token = 1;
    float *scratch = malloc((size_t)vocab * sizeof(float));
    decode_all(exact_ctx, &first_token, 1, 1, scratch); /* its first product: the float path */
    free(scratch);
    unsetenv("MLXE_CUDA_MATVEC");
    mlxe_model *int8 = load_on(dir, "cuda", false);
    mlxe_context *int8_ctx = context_for(int8, 64);
    const cJSON *sequence;
    cJSON_ArrayForEach(sequence, cJSON_GetObjectItem(ref, "sequences")) {
        int32_t ids[MAX_IDS];
        int n = fixture_json_ids(cJSON_GetObjectItem(sequence, "input_ids"), ids, MAX_IDS);
        if (int8->config.rope_scaling.type == MLXE_ROPE_SCALING_DYNAMIC && n > int8->config.max_position_embeddings)
            continue; /* as the float path's token-by-token check */
        float *ours = malloc((size_t)n * (size_t)vocab * sizeof(float));
        float *floats = malloc((size_t)n * (size_t)vocab * sizeof(float));
        assert_non_null(ours);
        assert_non_null(floats);
        decode_all(int8_ctx, ids, n, 1, ours);
        decode_all(exact_ctx, ids, n, 1, floats);
        double error = relative_error(ours, cJSON_GetObjectItem(sequence, "logits"), vocab, n);
        worst_decode_int8 = fmax(worst_decode_int8, error);
        print_message("%s (int8 activations, token by token, %d tokens): %.3g of max |logit| from transformers\n",
                      name, n, error);
        if (!(error <= 0.35))
            fail_msg("%s (int8 activations, token by token, %d tokens): logits differ from transformers by %.3g of "
                     "max |logit| (tolerance 0.35)",
                     name, n, error);
        for (size_t i = 0; i < (size_t)n * (size_t)vocab; i++)
            largest_int8_float_difference = fmax(largest_int8_float_difference, fabs((double)ours[i] - floats[i]));
        free(ours);
        free(floats);
    }
    mlxe_context_free(int8_ctx);
    mlxe_context_free(exact_ctx);
    mlxe_model_free(exact);

    int32_t prompt[MAX_IDS];
    int n_new = 0, n_prompt = greedy_prompt(ref, prompt, &n_new);
    mlxe_model *cpu = load_on(dir, "cpu", false);
    token_list on_cpu, on_gpu;
    greedy(cpu, prompt, n_prompt, n_new, &on_cpu);
    greedy(int8, prompt, n_prompt, n_new, &on_gpu);
    int8_checked++;
    const int departure = first_departure(&on_cpu, &on_gpu, n_new);
    if (departure >= 0) {
        print_message("%s (int8 activations): greedy continuation departs from the CPU's at token %d (%d vs %d)\n",
                      name, departure, on_gpu.ids[departure], on_cpu.ids[departure]);
        int8_greedy_departures++;
    }
    mlxe_model_free(cpu);
    mlxe_model_free(int8);
    setenv("MLXE_CUDA_MATVEC", "float", 1);
}

static cJSON *read_reference(const char *root, const char *name) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s/reference.json", root, name);
    cJSON *ref = NULL;
    mlxe_error err;
    if (mlxe_json_parse_file(path, 64 << 20, &ref, &err) != MLXE_OK) fail_msg("%s", err.message);
    return ref;
}

static void check_float_fixture(const char *name) {
    cJSON *ref = read_reference(MODELS, name);
    const cJSON *dtype = cJSON_GetObjectItem(ref, "weights_dtype");
    bool bf16 = cJSON_IsString(dtype) && strcmp(dtype->valuestring, "bfloat16") == 0;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", MODELS, name);
    /* bf16 weights: we compute in float32, as transformers' float32-compute run */
    check_model(name, dir, ref, bf16 ? "logits_float32_compute" : "logits", !bf16);
    cJSON_Delete(ref);
}

static void check_quant_fixture(const char *name) {
    cJSON *ref = read_reference(QUANT_REFS, name);
    char src[600], dir[600];
    snprintf(src, sizeof src, "%s/%s", MODELS, cJSON_GetObjectItem(ref, "fixture")->valuestring);
    snprintf(dir, sizeof dir, "%s/%s", work_dir, name);
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.quantize = true;
    o.bits = (int)cJSON_GetObjectItem(ref, "bits")->valuedouble;
    o.group_size = (int)cJSON_GetObjectItem(ref, "group_size")->valuedouble;
    mlxe_error err;
    if (mlxe_convert(src, dir, &o, &err) != MLXE_OK) fail_msg("%s: convert: %s", name, err.message);
    check_model(name, dir, ref, "logits", false);
    if (o.bits == 4 || o.bits == 8) check_int8(name, dir, ref);
    cJSON_Delete(ref);
}

static void test_fixtures_on_gpu(void **state) {
    (void)state;
    require_gpu();
    int n_float = fixture_for_each_reference(MODELS, check_float_fixture);
    test_make_temp_dir(work_dir, sizeof work_dir);
    int n_quant = fixture_for_each_reference(QUANT_REFS, check_quant_fixture);
    remove_folder(work_dir);
    assert_true(n_float >= 1);
    print_message("GPU: %d float + %d quantized fixtures; worst |ours - transformers| / max|logit|: F32 models %.3g, "
                  "prefill default GEMM %.3g, prefill F32 GEMM %.3g, token by token %.3g; greedy runs %d, default-mode "
                  "departures from the CPU on BF16/quantized models %d\n",
                  n_float, n_quant, worst_f32_models, worst_prefill_default, worst_prefill_f32, worst_decode,
                  greedy_checked, greedy_default_mismatches);
    print_message("GPU, int8 activations: %d quantized fixtures; worst token by token |ours - transformers| / "
                  "max|logit| %.3g; largest |int8 - float path| logit difference %.3g; greedy departures from the "
                  "CPU %d\n",
                  int8_checked, worst_decode_int8, largest_int8_float_difference, int8_greedy_departures);
    if (n_quant > 0) {
        assert_true(int8_checked > 0);
        assert_true(largest_int8_float_difference > 1e-6); /* the int8 path ran */
    }
}

/* mlxe_context_decode_greedy: the token chosen on the GPU is the CPU
 * sampler's greedy choice over the logits of a plain decode of the same
 * tokens, and those logits, fetched on demand, are the plain decode's. */
static void test_greedy_on_device(void **state) {
    (void)state;
    require_gpu();
    mlxe_model *gpu = load_on(MODELS "/llama-f32", "cuda", false);
    const int64_t vocab = mlxe_model_vocab_size(gpu);
    mlxe_context *plain = context_for(gpu, 8), *greedy = context_for(gpu, 8);
    mlxe_sampler_options so;
    mlxe_sampler_options_init(&so);
    mlxe_sampler *sampler = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_sampler_create(&so, vocab, &sampler, &err), MLXE_OK);
    assert_true(mlxe_sampler_is_plain_greedy(sampler));
    int32_t token = 3, seq = 0;
    for (int32_t position = 0; position < 20; position++) {
        mlxe_batch b = {.n_tokens = 1, .tokens = &token, .positions = &position, .seq_ids = &seq, .logits = NULL};
        assert_int_equal(mlxe_context_decode(plain, &b, &err), MLXE_OK);
        int32_t on_device = -2;
        assert_int_equal(mlxe_context_decode_greedy(greedy, &b, &on_device, &err), MLXE_OK);
        const float *want = mlxe_context_logits(plain, 0);
        int32_t expected = mlxe_sampler_sample(sampler, want);
        assert_int_equal(on_device, expected);
        if (position % 3 == 0) { /* the kept logits, fetched now */
            const float *got = mlxe_context_logits(greedy, 0);
            assert_non_null(got);
            for (int64_t i = 0; i < vocab; i++) assert_true(fabsf(got[i] - want[i]) <= 1e-6f * (1.0f + fabsf(want[i])));
        }
        token = on_device;
    }
    /* a batch of two rows wanting logits: no device choice, logits as usual */
    int32_t tokens[2] = {5, 6}, positions[2] = {20, 21}, seqs[2] = {0, 0};
    int8_t want_logits[2] = {1, 1};
    mlxe_batch two = {.n_tokens = 2, .tokens = tokens, .positions = positions, .seq_ids = seqs, .logits = want_logits};
    int32_t none = 0;
    assert_int_equal(mlxe_context_decode_greedy(greedy, &two, &none, &err), MLXE_OK);
    assert_int_equal(none, -1);
    assert_non_null(mlxe_context_logits(greedy, 1));
    mlxe_sampler_free(sampler);
    mlxe_context_free(plain);
    mlxe_context_free(greedy);
    mlxe_model_free(gpu);
}

/* Greedy generation with MLXE_DECODE_PIPELINE=1 (each step queued before
 * the host reads the token the step before chose, handed over by
 * token_keep / token_take, the steps replayed from graphs that embed the
 * device's choice) gives the sequential loop's tokens and sequence length:
 * to max_tokens and to an EOS id (the step queued past it dropped). */
static int32_t pipelined_tokens[64];
static int n_pipelined_tokens;

static bool keep_pipelined_token(void *user, int32_t token) {
    (void)user;
    if (n_pipelined_tokens < 64) pipelined_tokens[n_pipelined_tokens++] = token;
    return true;
}

static int64_t generate_greedy(mlxe_context *ctx, const int32_t *prompt, int n_prompt, int max_tokens,
                               const int32_t *eos, bool pipelined, int32_t *tokens) {
    mlxe_generate_options g;
    mlxe_generate_options_init(&g);
    g.max_tokens = max_tokens;
    g.ignore_eos = eos == NULL;
    g.eos_ids = eos;
    g.n_eos_ids = eos ? 1 : 0;
    setenv("MLXE_DECODE_PIPELINE", pipelined ? "1" : "0", 1);
    n_pipelined_tokens = 0;
    mlxe_error err;
    if (mlxe_generate(ctx, prompt, n_prompt, &g, keep_pipelined_token, NULL, NULL, NULL, &err) != MLXE_OK)
        fail_msg("generate: %s", err.message);
    unsetenv("MLXE_DECODE_PIPELINE");
    memcpy(tokens, pipelined_tokens, sizeof pipelined_tokens);
    return n_pipelined_tokens;
}

static void test_pipelined_generate_on_device(void **state) {
    (void)state;
    require_gpu();
    mlxe_model *gpu = load_on(MODELS "/llama-f32", "cuda", false);
    mlxe_context *ctx = context_for(gpu, 8);
    const int32_t prompt[5] = {3, 17, 5, 9, 2};
    int32_t want[64], got[64];
    const int64_t n_want = generate_greedy(ctx, prompt, 5, 40, NULL, false, want);
    const int64_t length_want = mlxe_context_seq_length(ctx, 0);
    for (int round = 0; round < 2; round++) { /* the second replays the graphs recorded in the first */
        const int64_t n_got = generate_greedy(ctx, prompt, 5, 40, NULL, true, got);
        assert_int_equal(n_got, n_want);
        assert_memory_equal(got, want, (size_t)n_want * sizeof(int32_t));
        assert_int_equal(mlxe_context_seq_length(ctx, 0), length_want);
    }
    const int32_t eos = want[12];
    const int64_t n_eos = generate_greedy(ctx, prompt, 5, 40, &eos, false, want);
    const int64_t length_eos = mlxe_context_seq_length(ctx, 0);
    assert_int_equal(generate_greedy(ctx, prompt, 5, 40, &eos, true, got), n_eos);
    assert_memory_equal(got, want, (size_t)n_eos * sizeof(int32_t));
    assert_int_equal(mlxe_context_seq_length(ctx, 0), length_eos);
    mlxe_context_free(ctx);
    mlxe_model_free(gpu);
}

/* The same call on the CPU (runs without a GPU): the CPU's argmax op
 * chooses, the argmax of the logits mlxe_context_logits then fetches; a
 * NULL token is refused. */
static void test_greedy_on_cpu(void **state) {
    (void)state;
    mlxe_model *cpu = load_on(MODELS "/llama-f32", "cpu", false);
    mlxe_context *on_cpu = context_for(cpu, 8);
    mlxe_error err;
    int32_t token = 3, position = 0, seq = 0, none = 0;
    mlxe_batch b = {.n_tokens = 1, .tokens = &token, .positions = &position, .seq_ids = &seq, .logits = NULL};
    assert_int_equal(mlxe_context_decode_greedy(on_cpu, &b, &none, &err), MLXE_OK);
    const float *logits = mlxe_context_logits(on_cpu, 0);
    assert_non_null(logits);
    int32_t best = 0;
    for (int32_t i = 1; i < (int32_t)mlxe_model_vocab_size(cpu); i++)
        if (logits[i] > logits[best]) best = i;
    assert_int_equal(none, best);
    assert_int_equal(mlxe_context_decode_greedy(on_cpu, &b, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    /* sampling: the CPU has no sample op */
    assert_false(mlxe_context_samples_on_device(on_cpu));
    mlxe_sample_params params;
    memset(&params, 0, sizeof params);
    params.temperature = 1.0f;
    params.top_k = 5;
    params.top_p = 1.0f;
    position = 1;
    none = 0;
    assert_int_equal(mlxe_context_decode_sample(on_cpu, &b, &params, NULL, &none, &err), MLXE_OK);
    assert_int_equal(none, -1);
    assert_non_null(mlxe_context_logits(on_cpu, 0));
    assert_int_equal(mlxe_context_decode_sample(on_cpu, &b, NULL, NULL, &none, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_context_free(on_cpu);
    mlxe_model_free(cpu);
}

/* Tokens of mlxe_generate with sampler options so. */
static void generate_sampled(mlxe_model *model, const mlxe_sampler_options *so, const int32_t *prompt, int n_prompt,
                             int n_new, token_list *out) {
    mlxe_context *ctx = context_for(model, 64);
    mlxe_generate_options g;
    mlxe_generate_options_init(&g);
    g.max_tokens = n_new;
    g.ignore_eos = true;
    g.sampler = *so;
    memset(out, 0, sizeof *out);
    mlxe_error err;
    if (mlxe_generate(ctx, prompt, n_prompt, &g, keep_token, out, NULL, NULL, &err) != MLXE_OK)
        fail_msg("generate: %s", err.message);
    assert_int_equal(out->n, n_new);
    mlxe_context_free(ctx);
}

/* The same loop by hand on the host: decode, download the logits, sample
 * them with the public sampler. */
static void host_sampled(mlxe_model *model, const mlxe_sampler_options *so, const int32_t *prompt, int n_prompt,
                         int n_new, token_list *out) {
    mlxe_context *ctx = context_for(model, 64);
    mlxe_sampler *sampler = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_sampler_create(so, mlxe_model_vocab_size(model), &sampler, &err), MLXE_OK);
    for (int i = 0; i < n_prompt; i++) mlxe_sampler_accept(sampler, prompt[i]);
    int32_t positions[MAX_IDS], seqs[MAX_IDS] = {0};
    for (int i = 0; i < n_prompt; i++) positions[i] = i;
    mlxe_batch b = {.n_tokens = n_prompt, .tokens = prompt, .positions = positions, .seq_ids = seqs, .logits = NULL};
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
    int64_t last = n_prompt - 1;
    memset(out, 0, sizeof *out);
    for (int32_t position = n_prompt; out->n < n_new; position++) {
        int32_t token = mlxe_sampler_sample(sampler, mlxe_context_logits(ctx, last));
        mlxe_sampler_accept(sampler, token);
        out->ids[out->n++] = token;
        int32_t seq = 0;
        mlxe_batch step = {.n_tokens = 1, .tokens = &token, .positions = &position, .seq_ids = &seq, .logits = NULL};
        assert_int_equal(mlxe_context_decode(ctx, &step, &err), MLXE_OK);
        last = 0;
    }
    mlxe_sampler_free(sampler);
    mlxe_context_free(ctx);
}

static void assert_same_tokens(const token_list *got, const token_list *want, const char *what) {
    for (int i = 0; i < want->n; i++)
        if (got->ids[i] != want->ids[i]) fail_msg("%s: token %d is %d, want %d", what, i, got->ids[i], want->ids[i]);
    assert_int_equal(got->n, want->n);
}

/* Sampling on the GPU (ops.h sample, in the decode graph): mlxe_generate
 * with a seed gives the tokens of the same loop sampled on the host from
 * the GPU's own logits, exactly, with the recorded graphs and without
 * (MLXE_CUDA_GRAPH=0), and the CPU backend's tokens (F32 fixture); options
 * the device does not take (top_k 0) are sampled on the host and agree too. */
static void test_sampling_on_device(void **state) {
    (void)state;
    require_gpu();
    const char *dir = MODELS "/llama-f32";
    mlxe_model *cpu = load_on(dir, "cpu", false), *gpu = load_on(dir, "cuda", false);
    setenv("MLXE_CUDA_GRAPH", "0", 1);
    mlxe_model *direct = load_on(dir, "cuda", false);
    unsetenv("MLXE_CUDA_GRAPH");
    static const int32_t prompt[] = {1, 2, 3, 4, 5};
    mlxe_logit_bias bias[2] = {{.token = 3, .bias = 2.0f}, {.token = 10, .bias = -INFINITY}};
    mlxe_sampler_options sets[5];
    for (int i = 0; i < 5; i++) mlxe_sampler_options_init(&sets[i]);
    sets[0].temperature = 0.8f, sets[0].top_k = 40, sets[0].top_p = 0.9f, sets[0].min_p = 0.02f, sets[0].seed = 1234;
    sets[1].temperature = 1.2f, sets[1].top_k = 20, sets[1].repetition_penalty = 1.3f;
    sets[1].presence_penalty = 0.3f, sets[1].frequency_penalty = 0.2f, sets[1].penalty_last_n = 16;
    sets[1].logit_bias = bias, sets[1].n_logit_bias = 2, sets[1].seed = 99;
    sets[2].temperature = 0.7f, sets[2].top_p = 0.9f, sets[2].seed = 5; /* top_k 0: on the host */
    sets[3].temperature = 0.0f, sets[3].repetition_penalty = 1.5f;     /* greedy with a penalty: on the GPU */
    sets[4].temperature = 1.0f, sets[4].top_k = 128, sets[4].seed = 42;
    for (int i = 0; i < 5; i++) {
        token_list on_cpu, on_gpu, on_gpu_direct, by_hand;
        generate_sampled(cpu, &sets[i], prompt, 5, 40, &on_cpu);
        generate_sampled(gpu, &sets[i], prompt, 5, 40, &on_gpu);
        generate_sampled(direct, &sets[i], prompt, 5, 40, &on_gpu_direct);
        host_sampled(gpu, &sets[i], prompt, 5, 40, &by_hand);
        char what[96];
        snprintf(what, sizeof what, "option set %d, GPU against its logits sampled on the host", i);
        assert_same_tokens(&on_gpu, &by_hand, what);
        snprintf(what, sizeof what, "option set %d, GPU without graphs", i);
        assert_same_tokens(&on_gpu_direct, &by_hand, what);
        snprintf(what, sizeof what, "option set %d, GPU against the CPU", i);
        assert_same_tokens(&on_gpu, &on_cpu, what);
    }
    mlxe_model_free(cpu);
    mlxe_model_free(gpu);
    mlxe_model_free(direct);
}

/* mlxe_context_decode_sample: the token sampled on the GPU is the host
 * sampler's over the logits of a plain decode of the same tokens with the
 * same draw, and those logits, fetched on demand, are the plain decode's. */
static void test_decode_sample_on_device(void **state) {
    (void)state;
    require_gpu();
    mlxe_model *gpu = load_on(MODELS "/llama-f32", "cuda", false);
    const int64_t vocab = mlxe_model_vocab_size(gpu);
    mlxe_context *plain = context_for(gpu, 8), *sampled = context_for(gpu, 8);
    assert_true(mlxe_context_samples_on_device(sampled));
    mlxe_sampler_options so;
    mlxe_sampler_options_init(&so);
    so.temperature = 1.5f;
    so.top_k = 50;
    so.top_p = 0.95f;
    so.repetition_penalty = 1.2f;
    so.seed = 8;
    mlxe_sampler *sampler = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_sampler_create(&so, vocab, &sampler, &err), MLXE_OK);
    static mlxe_sample_adjust adjust[MLXE_SAMPLE_MAX_ADJUST];
    int32_t token = 3, seq = 0;
    for (int32_t position = 0; position < 20; position++) {
        mlxe_batch b = {.n_tokens = 1, .tokens = &token, .positions = &position, .seq_ids = &seq, .logits = NULL};
        assert_int_equal(mlxe_context_decode(plain, &b, &err), MLXE_OK);
        mlxe_sample_params params;
        assert_true(mlxe_sampler_device_params(sampler, &params, adjust, NULL));
        params.random_bits = mlxe_sampler_draw(sampler);
        int32_t on_device = -2;
        assert_int_equal(mlxe_context_decode_sample(sampled, &b, &params, adjust, &on_device, &err), MLXE_OK);
        const float *want = mlxe_context_logits(plain, 0);
        assert_int_equal(on_device, mlxe_sampler_sample_drawn(sampler, want, params.random_bits));
        if (position % 3 == 0) {
            const float *got = mlxe_context_logits(sampled, 0);
            assert_non_null(got);
            for (int64_t i = 0; i < vocab; i++) assert_true(fabsf(got[i] - want[i]) <= 1e-6f * (1.0f + fabsf(want[i])));
        }
        mlxe_sampler_accept(sampler, on_device);
        token = on_device;
    }
    mlxe_sample_params params;
    assert_true(mlxe_sampler_device_params(sampler, &params, adjust, NULL));
    params.n_penalty = MLXE_SAMPLE_MAX_ADJUST;
    params.n_bias = 1;
    int32_t none = 0, position = 20;
    mlxe_batch b = {.n_tokens = 1, .tokens = &token, .positions = &position, .seq_ids = &seq, .logits = NULL};
    assert_int_equal(mlxe_context_decode_sample(sampled, &b, &params, adjust, &none, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_sampler_free(sampler);
    mlxe_context_free(plain);
    mlxe_context_free(sampled);
    mlxe_model_free(gpu);
}

/* Free memory capped below what the weights need: the load refuses before
 * allocating; capped just above it: the load works and a context whose KV
 * cache cannot fit is refused, naming the n_ctx that would fit. */
static void test_memory_checks(void **state) {
    (void)state;
    require_gpu();
    const char *dir = MODELS "/llama-f32";
    mlxe_model_options o;
    mlxe_model_options_init(&o);
    o.device = "cuda";
    mlxe_model *model = NULL;
    mlxe_error err;
    setenv("MLXE_GPU_MEMORY_LIMIT_MB", "1", 1);
    assert_int_equal(mlxe_model_load(dir, &o, &model, &err), MLXE_ERR_OUT_OF_MEMORY);
    assert_null(model);
    assert_non_null(strstr(err.message, "MiB missing"));
    assert_non_null(strstr(err.message, "quantize"));

    unsetenv("MLXE_GPU_MEMORY_LIMIT_MB");
    assert_int_equal(mlxe_model_load(dir, &o, &model, &err), MLXE_OK);
    size_t weights = mlxe_model_weight_bytes(model);
    mlxe_model_free(model);
    char limit[32];
    /* weights + the 384 MiB kept for the runtime + 4 MiB */
    snprintf(limit, sizeof limit, "%zu", (weights >> 20) + 384 + 4);
    setenv("MLXE_GPU_MEMORY_LIMIT_MB", limit, 1);
    assert_int_equal(mlxe_model_load(dir, &o, &model, &err), MLXE_OK);
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = 1 << 24;
    mlxe_context *ctx = NULL;
    assert_int_equal(mlxe_context_create(model, &co, &ctx, &err), MLXE_ERR_OUT_OF_MEMORY);
    assert_null(ctx);
    assert_non_null(strstr(err.message, "MiB missing"));
    assert_non_null(strstr(err.message, "tokens fit"));
    co.n_ctx = 64;
    assert_int_equal(mlxe_context_create(model, &co, &ctx, &err), MLXE_OK);
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    unsetenv("MLXE_GPU_MEMORY_LIMIT_MB");
}

/* Device strings: a bad one is refused by name; "auto" runs (GPU or CPU). */
static void test_device_strings(void **state) {
    (void)state;
    const char *dir = MODELS "/llama-f32";
    mlxe_model_options o;
    mlxe_model_options_init(&o);
    assert_string_equal(o.device, "cpu");
    mlxe_model *model = NULL;
    mlxe_error err;
    o.device = "tpu";
    assert_int_equal(mlxe_model_load(dir, &o, &model, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "tpu"));
    o.device = "cuda:99";
    assert_int_equal(mlxe_model_load(dir, &o, &model, &err), MLXE_ERR_DEVICE);
    assert_null(model);
    o.device = "auto";
    assert_int_equal(mlxe_model_load(dir, &o, &model, &err), MLXE_OK);
    const char *name = mlxe_model_device_name(model);
    assert_true(strncmp(name, "cpu", 3) == 0 || strcmp(name, "cuda:0") == 0);
    mlxe_model_free(model);
}

int main(void) {
    /* The CPU is the reference here: its float-activation kernels (the default
     * ones multiply int8/bf16 activations on AVX-512 VNNI processors,
     * runtime/cpu/cpu_kernels.h). */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    /* ... and the GPU's float-activation one-token kernels (the int8 path:
     * check_int8) */
    setenv("MLXE_CUDA_MATVEC", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_strings),
        cmocka_unit_test(test_memory_checks),
        cmocka_unit_test(test_fixtures_on_gpu),
        cmocka_unit_test(test_greedy_on_device),
        cmocka_unit_test(test_pipelined_generate_on_device),
        cmocka_unit_test(test_greedy_on_cpu),
        cmocka_unit_test(test_sampling_on_device),
        cmocka_unit_test(test_decode_sample_on_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
