/* Tests of mlxe_convert (include/mlxengine/convert.h) and `mlxengine
 * convert`, on the transformers fixtures (tests/fixtures/models):
 *  - quantized output: config.json's quantization keys, which tensors are
 *    quantized (mlx-lm's rule: 2-D .weight with input size a multiple of the
 *    group size; tied lm_head dropped), packed words / scales / biases equal
 *    to mlxe_quantize_affine of the source weights cast to the model type,
 *    the index (weight_map, total_size), side files copied;
 *  - round trips: convert --dequantize of the quantized folder gives exactly
 *    dequantize(quantize(w)); the quantized model loads and its logits and
 *    greedy tokens equal those of that dequantized float model;
 *  - dtype casts, sharding (same model in several shards), cancellation
 *    and every refusal leave nothing behind.
 * Agreement with transformers on quantized weights is test_models_quant. */
#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"
#include "base/file.h"
#include "base/json.h"
#include "format/mlx_quant.h"
#include "format/quant_config.h"
#include "format/safetensors.h"
#include "mlxengine/mlxengine.h"

#define MODELS MLXE_FIXTURES "/models"

static char work_dir[64];

static int setup(void **state) {
    (void)state;
    test_make_temp_dir(work_dir, sizeof work_dir);
    return 0;
}

static void remove_folder(const char *path) {
    DIR *dir = opendir(path);
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0'))) continue;
        char child[1024];
        snprintf(child, sizeof child, "%s/%s", path, e->d_name);
        struct stat info;
        if (lstat(child, &info) == 0 && S_ISDIR(info.st_mode)) remove_folder(child);
        else unlink(child);
    }
    closedir(dir);
    rmdir(path);
}

static int teardown(void **state) {
    (void)state;
    remove_folder(work_dir);
    return 0;
}

/* Entries in work_dir other than the named ones (a left-over temporary folder). */
static int count_entries(const char *dir_path) {
    DIR *dir = opendir(dir_path);
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.') n++;
    if (dir) closedir(dir);
    return n;
}

static void convert_or_fail(const char *src, const char *dst, const mlxe_convert_options *o) {
    mlxe_error err;
    if (mlxe_convert(src, dst, o, &err) != MLXE_OK) fail_msg("convert %s: %s", src, err.message);
}

static cJSON *read_json(const char *dir, const char *name) {
    char path[768];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cJSON *root = NULL;
    mlxe_error err;
    if (mlxe_json_parse_file(path, 64 << 20, &root, &err) != MLXE_OK) fail_msg("%s", err.message);
    return root;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- the quantized folder ---- */

static void check_quantized_folder(const char *fixture, int bits, int group) {
    char src[256], dst[512];
    snprintf(src, sizeof src, "%s/%s", MODELS, fixture);
    snprintf(dst, sizeof dst, "%s/%s-q%d-%d", work_dir, fixture, bits, group);
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.quantize = true;
    o.bits = bits;
    o.group_size = group;
    convert_or_fail(src, dst, &o);

    mlxe_error err;
    mlxe_quant_config quant;
    assert_int_equal(mlxe_quant_config_load(dst, &quant, &err), MLXE_OK);
    assert_true(quant.present);
    assert_int_equal(quant.bits, bits);
    assert_int_equal(quant.group_size, group);
    mlxe_quant_config_free(&quant);
    cJSON *config = read_json(dst, "config.json"), *src_config = read_json(src, "config.json");
    const cJSON *q = cJSON_GetObjectItem(config, "quantization");
    assert_string_equal(cJSON_GetObjectItem(q, "mode")->valuestring, "affine");
    assert_non_null(cJSON_GetObjectItem(config, "quantization_config"));
    bool tied = cJSON_IsTrue(cJSON_GetObjectItem(src_config, "tie_word_embeddings"));
    const cJSON *dtype_item = cJSON_GetObjectItem(src_config, "torch_dtype");
    if (!dtype_item) dtype_item = cJSON_GetObjectItem(src_config, "dtype");
    mlxe_dtype model_dtype = mlxe_dtype_from_name(dtype_item->valuestring);

    mlxe_weight_set *in = NULL, *out = NULL;
    assert_int_equal(mlxe_weight_set_open(src, &in, &err), MLXE_OK);
    if (mlxe_weight_set_open(dst, &out, &err) != MLXE_OK) fail_msg("%s", err.message);
    size_t n_quantized = 0, expected_outputs = 0;
    for (size_t i = 0; i < mlxe_weight_set_count(in); i++) {
        const mlxe_tensor_info *w = mlxe_weight_set_at(in, i);
        char name[400];
        if (tied && strncmp(w->name, "lm_head.", 8) == 0) {
            assert_null(mlxe_weight_set_find(out, w->name));
            continue;
        }
        bool quantize = ends_with(w->name, ".weight") && w->n_dims == 2 && w->shape[1] % group == 0;
        expected_outputs += quantize ? 3 : 1;
        const mlxe_tensor_info *o_w = mlxe_weight_set_find(out, w->name);
        assert_non_null(o_w);
        if (!quantize) {
            /* norms, biases, and matrices the group size does not divide: same type, same bytes */
            assert_int_equal(o_w->dtype, model_dtype);
            assert_int_equal(o_w->dtype, w->dtype);
            assert_memory_equal(o_w->data, w->data, w->n_bytes);
            snprintf(name, sizeof name, "%.*s.scales", (int)(strlen(w->name) - 7), w->name);
            assert_null(mlxe_weight_set_find(out, name));
            continue;
        }
        n_quantized++;
        int64_t rows = w->shape[0], cols = w->shape[1], groups = cols / group;
        size_t esize = mlxe_dtype_size(w->dtype);
        uint32_t *packed = malloc((size_t)(rows * cols * bits / 32) * 4);
        void *scales = malloc((size_t)(rows * groups) * esize), *biases = malloc((size_t)(rows * groups) * esize);
        assert_int_equal(mlxe_quantize_affine(w->data, w->dtype, rows, cols, bits, group, packed, scales, biases,
                                              w->name, &err),
                         MLXE_OK);
        assert_int_equal(o_w->dtype, MLXE_DTYPE_U32);
        assert_int_equal(o_w->shape[1], cols * bits / 32);
        assert_memory_equal(o_w->data, packed, o_w->n_bytes);
        snprintf(name, sizeof name, "%.*s.scales", (int)(strlen(w->name) - 7), w->name);
        const mlxe_tensor_info *o_s = mlxe_weight_set_find(out, name);
        snprintf(name, sizeof name, "%.*s.biases", (int)(strlen(w->name) - 7), w->name);
        const mlxe_tensor_info *o_b = mlxe_weight_set_find(out, name);
        assert_non_null(o_s);
        assert_non_null(o_b);
        assert_int_equal(o_s->dtype, w->dtype);
        assert_int_equal(o_s->shape[1], groups);
        assert_memory_equal(o_s->data, scales, o_s->n_bytes);
        assert_memory_equal(o_b->data, biases, o_b->n_bytes);
        free(packed);
        free(scales);
        free(biases);
    }
    assert_true(n_quantized > 0);
    assert_int_equal(mlxe_weight_set_count(out), expected_outputs);

    /* index: every tensor, the total size of the file's tensors */
    cJSON *index = read_json(dst, "model.safetensors.index.json");
    const cJSON *map = cJSON_GetObjectItem(index, "weight_map");
    assert_int_equal(cJSON_GetArraySize(map), (int)expected_outputs);
    assert_int_equal((size_t)cJSON_GetObjectItem(cJSON_GetObjectItem(index, "metadata"), "total_size")->valuedouble,
                     mlxe_weight_set_total_bytes(out));
    const cJSON *entry;
    cJSON_ArrayForEach(entry, map) assert_string_equal(entry->valuestring, "model.safetensors");
    /* side files */
    char side[768];
    snprintf(side, sizeof side, "%s/generation_config.json", dst);
    assert_true(mlxe_file_exists(side));
    snprintf(side, sizeof side, "%s/reference.json", dst);
    assert_false(mlxe_file_exists(side));
    cJSON_Delete(index);
    cJSON_Delete(config);
    cJSON_Delete(src_config);
    mlxe_weight_set_close(in);
    mlxe_weight_set_close(out);
}

static void test_quantized_folders(void **state) {
    (void)state;
    check_quantized_folder("llama-f32", 4, 64);
    check_quantized_folder("llama-bf16-llama3rope-tied", 3, 32);
    check_quantized_folder("qwen2-f32", 6, 64);
    check_quantized_folder("qwen3-bf16", 8, 128); /* 64-wide projections stay float */
    check_quantized_folder("mistral-f32-sliding", 5, 32);
    check_quantized_folder("qwen3-f32", 2, 64);
}

/* ---- round trips ---- */

/* Logits of every position of ids, [n][vocab]. */
static float *all_logits(const char *dir, const int32_t *ids, int n) {
    mlxe_model *model = NULL;
    mlxe_context *ctx = NULL;
    mlxe_error err;
    if (mlxe_model_load(dir, NULL, &model, &err) != MLXE_OK) fail_msg("load %s: %s", dir, err.message);
    assert_int_equal(mlxe_context_create(model, NULL, &ctx, &err), MLXE_OK);
    int64_t vocab = mlxe_model_vocab_size(model);
    float *out = malloc((size_t)(n * vocab) * sizeof(float));
    int32_t positions[64], seqs[64] = {0};
    int8_t want[64];
    for (int i = 0; i < n; i++) {
        positions[i] = i;
        want[i] = 1;
    }
    mlxe_batch b = {.n_tokens = n, .tokens = ids, .positions = positions, .seq_ids = seqs, .logits = want};
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * vocab, mlxe_context_logits(ctx, i), (size_t)vocab * sizeof(float));
    mlxe_context_free(ctx);
    mlxe_model_free(model);
    return out;
}

static void check_round_trip(const char *fixture, int bits, int group) {
    char src[256], q_dir[512], d_dir[512];
    snprintf(src, sizeof src, "%s/%s", MODELS, fixture);
    snprintf(q_dir, sizeof q_dir, "%s/rt-%s-q", work_dir, fixture);
    snprintf(d_dir, sizeof d_dir, "%s/rt-%s-d", work_dir, fixture);
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.quantize = true;
    o.bits = bits;
    o.group_size = group;
    convert_or_fail(src, q_dir, &o);
    mlxe_convert_options_init(&o);
    o.dequantize = true;
    convert_or_fail(q_dir, d_dir, &o);

    /* --dequantize gives exactly dequantize(quantize(w)), with no quantization keys left */
    mlxe_error err;
    mlxe_weight_set *q = NULL, *d = NULL;
    assert_int_equal(mlxe_weight_set_open(q_dir, &q, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_open(d_dir, &d, &err), MLXE_OK);
    size_t n_dequantized = 0;
    for (size_t i = 0; i < mlxe_weight_set_count(d); i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_at(d, i);
        assert_false(ends_with(t->name, ".scales") || ends_with(t->name, ".biases"));
        const mlxe_tensor_info *qt = mlxe_weight_set_find(q, t->name);
        assert_non_null(qt);
        if (qt->dtype != MLXE_DTYPE_U32) {
            assert_int_equal(qt->dtype, t->dtype);
            assert_memory_equal(qt->data, t->data, t->n_bytes);
            continue;
        }
        char name[400];
        snprintf(name, sizeof name, "%.*s.scales", (int)(strlen(t->name) - 7), t->name);
        const mlxe_tensor_info *s = mlxe_weight_set_find(q, name);
        snprintf(name, sizeof name, "%.*s.biases", (int)(strlen(t->name) - 7), t->name);
        const mlxe_tensor_info *b = mlxe_weight_set_find(q, name);
        void *expected = malloc(t->n_bytes);
        assert_int_equal(mlxe_dequantize_affine(qt->data, s->data, b->data, s->dtype, t->shape[0], t->shape[1], bits,
                                                group, expected, s->dtype, t->name, &err),
                         MLXE_OK);
        assert_int_equal(t->dtype, s->dtype);
        assert_memory_equal(t->data, expected, t->n_bytes);
        free(expected);
        n_dequantized++;
    }
    assert_true(n_dequantized > 0);
    mlxe_weight_set_close(q);
    mlxe_weight_set_close(d);
    mlxe_quant_config quant;
    assert_int_equal(mlxe_quant_config_load(d_dir, &quant, &err), MLXE_OK);
    assert_false(quant.present);

    /* the quantized model computes what the float model of its dequantized
     * weights computes; for bf16 models that float model is dequantized in
     * float32 (scales and biases cast first), as the kernels do not round
     * scale * q + bias to bf16 */
    bool bf16 = strstr(fixture, "bf16") != NULL;
    if (bf16) {
        snprintf(d_dir, sizeof d_dir, "%s/rt-%s-d32", work_dir, fixture);
        o.dtype = MLXE_CONVERT_DTYPE_F32;
        convert_or_fail(q_dir, d_dir, &o);
    }
    const int32_t ids[] = {1, 17, 200, 45, 3, 99, 128, 250, 7, 64, 31, 12};
    const int n = (int)(sizeof ids / sizeof ids[0]);
    float *lq = all_logits(q_dir, ids, n), *ld = all_logits(d_dir, ids, n);
    double max_ref = 0, max_err = 0;
    for (int i = 0; i < n * 256; i++) {
        max_ref = fmax(max_ref, fabs(ld[i]));
        max_err = fmax(max_err, fabs(lq[i] - ld[i]));
    }
    /* only the order of float operations (and fused multiply-adds) differ */
    if (max_err > 1e-5 * max_ref)
        fail_msg("%s: quantized vs dequantized logits differ by %g (max |logit| %g)", fixture, max_err, max_ref);
    free(lq);
    free(ld);
}

static void test_round_trips(void **state) {
    (void)state;
    check_round_trip("llama-f32", 4, 64);
    check_round_trip("qwen2-f32", 8, 32);
    check_round_trip("llama-bf16-llama3rope-tied", 4, 32);
    check_round_trip("qwen3-f32", 3, 32);
}

/* ---- dtype, shards ---- */

static void test_dtype_and_shards(void **state) {
    (void)state;
    char src[256], one[512], many[512];
    snprintf(src, sizeof src, "%s/llama-f32", MODELS);
    snprintf(one, sizeof one, "%s/bf16-one", work_dir);
    snprintf(many, sizeof many, "%s/bf16-many", work_dir);
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.dtype = MLXE_CONVERT_DTYPE_BF16;
    convert_or_fail(src, one, &o);
    o.max_shard_bytes = 40000; /* llama-f32 in bf16 is ~215 KB: several shards */
    convert_or_fail(src, many, &o);

    struct stat info;
    assert_int_equal(stat(one, &info), 0);
    assert_int_equal(info.st_mode & 0777, 0755); /* not mkdtemp's private 0700 */
    mlxe_error err;
    mlxe_weight_set *in = NULL, *a = NULL, *b = NULL;
    assert_int_equal(mlxe_weight_set_open(src, &in, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_open(one, &a, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_open(many, &b, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_file_count(a), 1);
    assert_true(mlxe_weight_set_file_count(b) >= 4);
    assert_int_equal(mlxe_weight_set_count(a), mlxe_weight_set_count(in));
    assert_int_equal(mlxe_weight_set_count(b), mlxe_weight_set_count(in));
    for (size_t i = 0; i < mlxe_weight_set_count(in); i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_at(in, i);
        const mlxe_tensor_info *x = mlxe_weight_set_find(a, t->name), *y = mlxe_weight_set_find(b, t->name);
        assert_non_null(x);
        assert_non_null(y);
        assert_int_equal(x->dtype, MLXE_DTYPE_BF16);
        assert_memory_equal(x->data, y->data, x->n_bytes);
        for (int64_t k = 0; k < t->n_elements; k++) {
            float f = ((const float *)t->data)[k];
            uint32_t bits;
            memcpy(&bits, &f, 4);
            uint16_t rne = (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
            if (((const uint16_t *)x->data)[k] != rne) fail_msg("%s[%lld] not rounded to nearest even", t->name, (long long)k);
        }
    }
    char path[768];
    snprintf(path, sizeof path, "%s/model-00001-of-%05zu.safetensors", many, mlxe_weight_set_file_count(b));
    assert_true(mlxe_file_exists(path));
    snprintf(path, sizeof path, "%s/model.safetensors", many);
    assert_false(mlxe_file_exists(path));
    mlxe_weight_set_close(in);
    mlxe_weight_set_close(a);
    mlxe_weight_set_close(b);

    const int32_t ids[] = {1, 5, 9, 200, 31};
    float *la = all_logits(one, ids, 5), *lb = all_logits(many, ids, 5);
    assert_memory_equal(la, lb, 5 * 256 * sizeof(float));
    free(la);
    free(lb);

    /* a sharded source converts like the single file */
    char from_one[512], from_many[512];
    snprintf(from_one, sizeof from_one, "%s/q-from-one", work_dir);
    snprintf(from_many, sizeof from_many, "%s/q-from-many", work_dir);
    mlxe_convert_options_init(&o);
    o.quantize = true;
    convert_or_fail(one, from_one, &o);
    convert_or_fail(many, from_many, &o);
    mlxe_weight_set *x = NULL, *y = NULL;
    assert_int_equal(mlxe_weight_set_open(from_one, &x, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_open(from_many, &y, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_count(x), mlxe_weight_set_count(y));
    for (size_t i = 0; i < mlxe_weight_set_count(x); i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_at(x, i), *u = mlxe_weight_set_find(y, t->name);
        assert_non_null(u);
        assert_int_equal(t->n_bytes, u->n_bytes);
        assert_memory_equal(t->data, u->data, t->n_bytes);
    }
    mlxe_weight_set_close(x);
    mlxe_weight_set_close(y);

    /* quantizing in f16: scales in f16 */
    char q16[512];
    snprintf(q16, sizeof q16, "%s/q-f16", work_dir);
    mlxe_convert_options_init(&o);
    o.quantize = true;
    o.dtype = MLXE_CONVERT_DTYPE_F16;
    convert_or_fail(src, q16, &o);
    mlxe_weight_set *q = NULL;
    assert_int_equal(mlxe_weight_set_open(q16, &q, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_find(q, "lm_head.scales")->dtype, MLXE_DTYPE_F16);
    assert_int_equal(mlxe_weight_set_find(q, "model.norm.weight")->dtype, MLXE_DTYPE_F16);
    mlxe_weight_set_close(q);
}

/* ---- refusals, cancellation ---- */

static bool stop_after_three(void *user, const mlxe_convert_progress *p) {
    int *calls = user;
    assert_non_null(p->stage);
    assert_true(p->tensors_done <= p->tensors_total);
    return ++*calls < 3;
}

static bool count_calls(void *user, const mlxe_convert_progress *p) {
    int *calls = user;
    (*calls)++;
    if (strcmp(p->stage, "done") == 0) {
        assert_int_equal(p->tensors_done, p->tensors_total);
        assert_int_equal(p->bytes_done, p->bytes_total);
    }
    return true;
}

static void expect_failure(const char *src, const char *dst, const mlxe_convert_options *o, mlxe_status status,
                           const char *needle) {
    mlxe_error err;
    mlxe_error_clear(&err);
    int before = count_entries(work_dir);
    assert_int_equal(mlxe_convert(src, dst, o, &err), status);
    assert_message_contains(err.message, needle);
    assert_int_equal(count_entries(work_dir), before); /* nothing left: no DST, no temporary folder */
}

static void test_refusals_and_cancel(void **state) {
    (void)state;
    char src[256], dst[512], quantized[512];
    snprintf(src, sizeof src, "%s/qwen2-f32", MODELS);
    snprintf(dst, sizeof dst, "%s/out", work_dir);
    snprintf(quantized, sizeof quantized, "%s/quantized", work_dir);
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.quantize = true;
    int calls = 0;
    o.progress = count_calls;
    o.progress_user = &calls;
    convert_or_fail(src, quantized, &o);
    assert_true(calls > 3);

    expect_failure(src, quantized, &o, MLXE_ERR_INVALID_ARGUMENT, "already exists");
    expect_failure(quantized, dst, &o, MLXE_ERR_INVALID_ARGUMENT, "already quantized");
    o.bits = 7;
    expect_failure(src, dst, &o, MLXE_ERR_INVALID_ARGUMENT, "7-bit");
    o.bits = 4;
    o.group_size = 48;
    expect_failure(src, dst, &o, MLXE_ERR_INVALID_ARGUMENT, "group size 48");
    o.group_size = 64;
    o.dequantize = true;
    expect_failure(src, dst, &o, MLXE_ERR_INVALID_ARGUMENT, "not both");
    o.dequantize = false;
    expect_failure(MODELS "/no-such-model", dst, &o, MLXE_ERR_NOT_FOUND, "no-such-model");

    calls = 0;
    o.progress = stop_after_three;
    expect_failure(src, dst, &o, MLXE_ERR_CANCELLED, "cancelled");
    assert_int_equal(calls, 3);
    o.progress = NULL;
    mlxe_cancel *cancel = mlxe_cancel_create();
    mlxe_cancel_request(cancel);
    o.cancel = cancel;
    expect_failure(src, dst, &o, MLXE_ERR_CANCELLED, "cancelled");
    mlxe_cancel_free(cancel);
    o.cancel = NULL;

    /* a model type whose quantizable layers we do not know */
    char odd[512], path[700];
    snprintf(odd, sizeof odd, "%s/odd", work_dir);
    mkdir(odd, 0755);
    snprintf(path, sizeof path, "%s/config.json", odd);
    test_write_file(path, "{\"model_type\": \"gemma3\"}", 24);
    expect_failure(odd, dst, &o, MLXE_ERR_UNSUPPORTED, "gemma3");
    /* an unsupported quantization mode is named */
    test_write_file(path, "{\"model_type\": \"llama\", \"quantization\": {\"mode\": \"mxfp4\"}}", 59);
    o.quantize = false;
    expect_failure(odd, dst, &o, MLXE_ERR_UNSUPPORTED, "mxfp4");
    /* the model loader refuses them too, by name */
    snprintf(path, sizeof path, "%s/config.json", quantized);
    cJSON *config = read_json(quantized, "config.json");
    cJSON_ReplaceItemInObject(config, "quantization",
                              cJSON_Parse("{\"group_size\": 32, \"bits\": 4, \"mode\": \"nvfp4\"}"));
    char *text = cJSON_Print(config);
    test_write_file(path, text, strlen(text));
    free(text);
    cJSON_Delete(config);
    mlxe_model *model = NULL;
    mlxe_error load_err;
    assert_int_equal(mlxe_model_load(quantized, NULL, &model, &load_err), MLXE_ERR_UNSUPPORTED);
    assert_message_contains(load_err.message, "'nvfp4'");
    assert_null(model);
    /* no weights */
    test_write_file(path, "{\"model_type\": \"llama\"}", 23);
    mlxe_error err;
    assert_int_not_equal(mlxe_convert(odd, dst, &o, &err), MLXE_OK);
    assert_false(mlxe_dir_exists(dst));

    assert_int_equal(mlxe_convert(NULL, dst, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_convert_dtype dtype;
    assert_true(mlxe_convert_dtype_from_name("bf16", &dtype) && dtype == MLXE_CONVERT_DTYPE_BF16);
    assert_true(mlxe_convert_dtype_from_name("float16", &dtype) && dtype == MLXE_CONVERT_DTYPE_F16);
    assert_true(mlxe_convert_dtype_from_name("f32", &dtype) && dtype == MLXE_CONVERT_DTYPE_F32);
    assert_false(mlxe_convert_dtype_from_name("int8", &dtype));
    assert_false(mlxe_convert_dtype_from_name(NULL, &dtype));
}

/* ---- misaligned sources (MLX's writer does not align tensors) ---- */

typedef struct raw_tensor {
    const char *name, *dtype;
    int64_t rows, cols;
    const void *data;
    size_t bytes;
} raw_tensor;

/* A safetensors file with the tensors back to back in the given order. */
static void write_unaligned(const char *dir, const raw_tensor *t, int n, const char *config) {
    char header[2048] = "{", path[768];
    size_t offset = 0;
    for (int i = 0; i < n; i++) {
        char entry[256];
        snprintf(entry, sizeof entry, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                 i ? "," : "", t[i].name, t[i].dtype, (long long)t[i].rows, (long long)t[i].cols, offset,
                 offset + t[i].bytes);
        strcat(header, entry);
        offset += t[i].bytes;
    }
    strcat(header, "}");
    size_t header_len = strlen(header);
    unsigned char *file = calloc(1, 8 + header_len + offset);
    for (int b = 0; b < 8; b++) file[b] = (unsigned char)((uint64_t)header_len >> (8 * b));
    memcpy(file + 8, header, header_len);
    offset = 8 + header_len;
    for (int i = 0; i < n; i++) {
        memcpy(file + offset, t[i].data, t[i].bytes);
        offset += t[i].bytes;
    }
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    test_write_file(path, file, offset);
    snprintf(path, sizeof path, "%s/config.json", dir);
    test_write_file(path, config, strlen(config));
    free(file);
}

static void test_misaligned_sources(void **state) {
    (void)state;
    uint16_t small[3] = {0x3f80, 0x4000, 0xbf80};
    float w[128];
    for (int i = 0; i < 128; i++) w[i] = sinf((float)i * 0.37f) * 0.3f;
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/unaligned-float", work_dir);
    snprintf(dst, sizeof dst, "%s/unaligned-float-q", work_dir);
    raw_tensor floats[] = {{"a.weight", "BF16", 1, 3, small, 6}, {"b.weight", "F32", 2, 64, w, sizeof w}};
    write_unaligned(src, floats, 2, "{\"model_type\": \"llama\", \"torch_dtype\": \"float32\"}");
    mlxe_convert_options o;
    mlxe_convert_options_init(&o);
    o.quantize = true;
    convert_or_fail(src, dst, &o);
    uint32_t packed[16];
    float scales[2], biases[2];
    mlxe_error err;
    assert_int_equal(mlxe_quantize_affine(w, MLXE_DTYPE_F32, 2, 64, 4, 64, packed, scales, biases, "b", &err), MLXE_OK);
    mlxe_weight_set *set = NULL;
    assert_int_equal(mlxe_weight_set_open(dst, &set, &err), MLXE_OK);
    assert_memory_equal(mlxe_weight_set_find(set, "b.weight")->data, packed, sizeof packed);
    assert_memory_equal(mlxe_weight_set_find(set, "b.scales")->data, scales, sizeof scales);
    const mlxe_tensor_info *a = mlxe_weight_set_find(set, "a.weight");
    assert_int_equal(a->dtype, MLXE_DTYPE_F32); /* cast to the config's float32 */
    assert_true(((const float *)a->data)[1] == 2.0f);
    mlxe_weight_set_close(set);

    /* a quantized source stored misaligned, dequantized */
    snprintf(src, sizeof src, "%s/unaligned-quant", work_dir);
    snprintf(dst, sizeof dst, "%s/unaligned-quant-d", work_dir);
    raw_tensor quant[] = {{"a.weight", "BF16", 1, 3, small, 6}, {"q.scales", "F32", 2, 1, scales, sizeof scales},
                          {"q.biases", "F32", 2, 1, biases, sizeof biases}, {"q.weight", "U32", 2, 8, packed, sizeof packed}};
    write_unaligned(src, quant, 4,
                    "{\"model_type\": \"llama\", \"quantization\": {\"group_size\": 64, \"bits\": 4}}");
    mlxe_convert_options_init(&o);
    o.dequantize = true;
    convert_or_fail(src, dst, &o);
    float expected[128];
    assert_int_equal(mlxe_dequantize_affine(packed, scales, biases, MLXE_DTYPE_F32, 2, 64, 4, 64, expected,
                                            MLXE_DTYPE_F32, "q", &err),
                     MLXE_OK);
    assert_int_equal(mlxe_weight_set_open(dst, &set, &err), MLXE_OK);
    const mlxe_tensor_info *q = mlxe_weight_set_find(set, "q.weight");
    assert_int_equal(q->dtype, MLXE_DTYPE_F32);
    assert_memory_equal(q->data, expected, sizeof expected);
    assert_null(mlxe_weight_set_find(set, "q.scales"));
    assert_int_equal(mlxe_weight_set_find(set, "a.weight")->dtype, MLXE_DTYPE_BF16); /* no dtype in config: kept */
    mlxe_weight_set_close(set);
}

/* ---- the command ---- */

static int run_tool(const char *args) {
    char command[1600];
    snprintf(command, sizeof command, "%s/mlxengine convert %s >/dev/null 2>&1", MLXE_BINARY_DIR, args);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_command(void **state) {
    (void)state;
    char args[1200], dst[512];
    snprintf(dst, sizeof dst, "%s/cli", work_dir);
    snprintf(args, sizeof args, "%s/qwen3-f32 %s --quantize --bits 8 --group-size 32 --dtype bf16", MODELS, dst);
    assert_int_equal(run_tool(args), 0);
    mlxe_quant_config quant;
    mlxe_error err;
    assert_int_equal(mlxe_quant_config_load(dst, &quant, &err), MLXE_OK);
    assert_int_equal(quant.bits, 8);
    assert_int_equal(quant.group_size, 32);
    mlxe_quant_config_free(&quant);
    assert_int_equal(run_tool(args), 1); /* DST exists */
    assert_int_equal(run_tool("--dtype f8 a b"), 2);
    assert_int_equal(run_tool("only-one"), 2);
    assert_int_equal(run_tool("a b c"), 2);
    assert_int_equal(run_tool("--bits 9 a b"), 2);
    assert_int_equal(run_tool("--help"), 0);
}

int main(void) {
    /* exact float-activation kernels: the int8-activation decode default of
     * AVX-512 VNNI processors would move logits past this test's tolerance
     * (runtime/cpu/cpu_kernels.h, precision policy) */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantized_folders),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_dtype_and_shards),
        cmocka_unit_test(test_refusals_and_cancel),
        cmocka_unit_test(test_misaligned_sources),
        cmocka_unit_test(test_command),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
