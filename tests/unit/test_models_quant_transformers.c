/* tests/unit/test_models_quant_transformers.c — MLX-quantized fixture models against
 * transformers (tests/fixtures/quant/<fixture>-b<bits>g<group>/reference.json,
 * made by scripts/quant/make_quant_references.py on the GPU machine: the
 * fixture with each weight mlx-lm quantizes replaced by float32(scale) * q +
 * float32(bias) from the numpy reference quantizer).
 *
 * For each reference: `mlxe_convert --quantize` of the fixture, then
 *  - the quantized modules are exactly those transformers' run replaced;
 *  - our logits at every position of the reference sequences are within
 *    1e-4 of the largest |logit| (both compute in float32; the weights differ
 *    only by our kernels' fused multiply-add);
 *  - the greedy continuation (mlxe_generate, KV cache) equals
 *    model.generate()'s when the reference has no near-ties. */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "fixture_reference.h"
#include "base/json.h"
#include "format/safetensors.h"
#include "mlxengine/mlxengine.h"

#define QUANT_REFS MLXE_FIXTURES "/quant"
#define MODELS MLXE_FIXTURES "/models"

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
        if (lstat(child, &info) == 0 && S_ISDIR(info.st_mode)) remove_folder(child);
        else unlink(child);
    }
    closedir(dir);
    rmdir(path);
}

typedef struct token_list {
    int32_t ids[64];
    int n;
} token_list;

static bool keep_token(void *user, int32_t token) {
    token_list *list = user;
    if (list->n < 64) list->ids[list->n++] = token;
    return true;
}

static double worst_relative = 0;

static void check_reference(const char *name) {
    char path[512], model_dir[512];
    snprintf(path, sizeof path, "%s/%s/reference.json", QUANT_REFS, name);
    cJSON *ref = NULL;
    mlxe_error err;
    if (mlxe_json_parse_file(path, 64 << 20, &ref, &err) != MLXE_OK) fail_msg("%s", err.message);
    const char *fixture = cJSON_GetObjectItem(ref, "fixture")->valuestring;
    int bits = (int)cJSON_GetObjectItem(ref, "bits")->valuedouble;
    int group = (int)cJSON_GetObjectItem(ref, "group_size")->valuedouble;

    char src[512];
    snprintf(src, sizeof src, "%s/%s", MODELS, fixture);
    snprintf(model_dir, sizeof model_dir, "%s/%s", work_dir, name);
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.quantize = true;
    o.bits = bits;
    o.group_size = group;
    if (mlxe_convert(src, model_dir, &o, &err) != MLXE_OK) fail_msg("%s: convert: %s", name, err.message);

    /* the same modules are quantized */
    mlxe_weight_set *set = NULL;
    assert_int_equal(mlxe_weight_set_open(model_dir, &set, &err), MLXE_OK);
    int n_ours = 0, n_theirs = 0;
    for (size_t i = 0; i < mlxe_weight_set_count(set); i++) {
        const char *tensor = mlxe_weight_set_at(set, i)->name;
        size_t len = strlen(tensor);
        if (len > 7 && strcmp(tensor + len - 7, ".scales") == 0) n_ours++;
    }
    const cJSON *module;
    cJSON_ArrayForEach(module, cJSON_GetObjectItem(ref, "quantized_modules")) {
        char scales[400];
        snprintf(scales, sizeof scales, "%s.scales", module->valuestring);
        if (!mlxe_weight_set_find(set, scales)) fail_msg("%s: '%s' is not quantized by our converter", name, module->valuestring);
        n_theirs++;
    }
    assert_int_equal(n_ours, n_theirs);
    mlxe_weight_set_close(set);

    mlxe_model *model = NULL;
    mlxe_context *ctx = NULL;
    if (mlxe_model_load(model_dir, NULL, &model, &err) != MLXE_OK) fail_msg("%s: load: %s", name, err.message);
    mlxe_context_options co;
    mlxe_context_options_init(&co);
    co.n_ctx = 128;
    assert_int_equal(mlxe_context_create(model, &co, &ctx, &err), MLXE_OK);
    const int64_t vocab = mlxe_model_vocab_size(model);

    const cJSON *seq;
    cJSON_ArrayForEach(seq, cJSON_GetObjectItem(ref, "sequences")) {
        int32_t ids[64], positions[64], seqs[64] = {0};
        int8_t want[64];
        int n = fixture_json_ids(cJSON_GetObjectItem(seq, "input_ids"), ids, 64);
        for (int i = 0; i < n; i++) {
            positions[i] = i;
            want[i] = 1;
        }
        mlxe_context_seq_clear(ctx, 0);
        mlxe_batch b = {.n_tokens = n, .tokens = ids, .positions = positions, .seq_ids = seqs, .logits = want};
        assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
        double max_err = 0, max_ref = 0;
        int row = 0;
        const cJSON *position;
        cJSON_ArrayForEach(position, cJSON_GetObjectItem(seq, "logits")) {
            const float *ours = mlxe_context_logits(ctx, row);
            int64_t v = 0;
            const cJSON *value;
            cJSON_ArrayForEach(value, position) {
                if (v >= vocab) fail_msg("%s: reference row longer than the vocabulary", name);
                double d = fabs(ours[v] - value->valuedouble);
                max_err = isfinite(ours[v]) ? fmax(max_err, d) : INFINITY;
                max_ref = fmax(max_ref, fabs(value->valuedouble));
                v++;
            }
            assert_int_equal(v, vocab);
            row++;
        }
        assert_int_equal(row, n);
        worst_relative = fmax(worst_relative, max_err / max_ref);
        if (max_err > 1e-4 * max_ref)
            fail_msg("%s: sequence of %d tokens: logits differ from transformers' by %g (max |logit| %g)", name, n,
                     max_err, max_ref);
    }

    const cJSON *greedy = cJSON_GetObjectItem(ref, "greedy");
    const char *rule = cJSON_GetObjectItem(greedy, "near_tie_rule")->valuestring;
    if (!strstr(rule, "NOT MET")) {
        int32_t prompt[64], expected[64];
        int n_prompt = fixture_json_ids(cJSON_GetObjectItem(greedy, "prompt"), prompt, 64);
        int n_expected = fixture_json_ids(cJSON_GetObjectItem(greedy, "generate"), expected, 64);
        mlxe_generate_options g;
        mlxe_generate_options_init(&g);
        g.max_tokens = n_expected;
        g.ignore_eos = true;
        token_list got = {0};
        if (mlxe_generate(ctx, prompt, n_prompt, &g, keep_token, &got, NULL, NULL, &err) != MLXE_OK)
            fail_msg("%s: %s", name, err.message);
        assert_int_equal(got.n, n_expected);
        for (int i = 0; i < n_expected; i++)
            if (got.ids[i] != expected[i])
                fail_msg("%s: greedy token %d is %d, transformers generated %d", name, i, got.ids[i], expected[i]);
    }
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    cJSON_Delete(ref);
}

static void test_quantized_fixtures(void **state) {
    (void)state;
    test_make_temp_dir(work_dir, sizeof work_dir);
    int count = fixture_for_each_reference(QUANT_REFS, check_reference);
    remove_folder(work_dir);
    print_message("%d quantized fixtures; worst logit error %.3g of max |logit|\n", count, worst_relative);
    assert_true(count >= 8);
}

int main(void) {
    /* exact float-activation kernels: the int8-activation decode default of
     * AVX-512 VNNI processors would move logits past this test's tolerance
     * (runtime/cpu/cpu_kernels.h, precision policy) */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
