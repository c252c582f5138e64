/* tests/unit/test_models_load.c — mlxe_model_load on good and bad folders:
 * the getters, and a clear error (naming the tensor, key or folder, no
 * leak) for a missing tensor, a wrong shape, zero heads, a model_type we do
 * not run, an unsupported device, a U32 weight without quantization scales
 * and a missing folder; the load progress callback and cancelling through
 * it. */
#include "test_model_util.h"
#include "mlxengine/mlxengine.h"

static mlxe_status load_spec(const test_model_spec *spec, mlxe_model **model, mlxe_error *err) {
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    test_write_model(dir, spec, 99);
    mlxe_status st = mlxe_model_load(dir, NULL, model, err);
    test_remove_model(dir);
    return st;
}

static void test_getters(void **state) {
    (void)state;
    test_model_spec spec;
    test_model_spec_init(&spec, "qwen2");
    spec.extra_config = ", \"max_window_layers\": 1";
    mlxe_model *model = NULL;
    mlxe_error err;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    test_write_model(dir, &spec, 5);
    mlxe_model_options options;
    mlxe_model_options_init(&options);
    assert_string_equal(options.device, "cpu");
    options.n_threads = 1;
    assert_int_equal(mlxe_model_load(dir, &options, &model, &err), MLXE_OK);
    assert_int_equal(mlxe_model_vocab_size(model), 64);
    assert_int_equal(mlxe_model_context_length(model), 256);
    assert_string_equal(mlxe_model_type(model), "qwen2");
    const int32_t *eos = NULL;
    assert_int_equal(mlxe_model_eos_ids(model, &eos), 1);
    assert_int_equal(eos[0], 2);
    /* weights: every tensor the spec wrote, in float32 */
    size_t expected = 0;
    int64_t q = 32, kv = 16;
    expected += 64 * 32 + 64 * 32 + 32;                                    /* embed, lm_head, norm */
    expected += 2 * (32 + 32 * q + 2 * 32 * kv + q * 32 + q + 2 * kv + 32 + 3 * 32 * 48); /* layers */
    assert_int_equal(mlxe_model_weight_bytes(model), expected * sizeof(float));
    assert_true(mlxe_model_memory_bytes(model) >= mlxe_model_weight_bytes(model));
    assert_true(mlxe_model_load_seconds(model) > 0);
    assert_true(strncmp(mlxe_model_device_name(model), "cpu", 3) == 0);
    mlxe_model_free(model);
    mlxe_model_free(NULL);
    test_remove_model(dir);
}

/* What the progress callback saw; it answers false once cancel_at calls
 * have been made (0: never). */
typedef struct progress_log {
    int calls, cancel_at;
    size_t last_done, total;
    bool decreased, total_changed;
} progress_log;

static bool log_progress(void *user, size_t done_bytes, size_t total_bytes) {
    progress_log *log = user;
    if (log->calls > 0 && done_bytes < log->last_done) log->decreased = true;
    if (log->calls > 0 && total_bytes != log->total) log->total_changed = true;
    log->calls++;
    log->last_done = done_bytes;
    log->total = total_bytes;
    return log->cancel_at == 0 || log->calls < log->cancel_at;
}

static void test_load_progress(void **state) {
    (void)state;
    test_model_spec spec;
    test_model_spec_init(&spec, "qwen2");
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    test_write_model(dir, &spec, 5);
    mlxe_model_options options;
    mlxe_model_options_init(&options);
    assert_null(options.progress);
    options.progress = log_progress;
    progress_log log = {0};
    options.progress_user = &log;
    mlxe_model *model = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_model_load(dir, &options, &model, &err), MLXE_OK);
    /* one call per tensor placed and one at the end, never going back,
     * ending at the weights' total */
    assert_true(log.calls > 10);
    assert_false(log.decreased);
    assert_false(log.total_changed);
    assert_int_equal(log.total, mlxe_model_weight_bytes(model));
    assert_int_equal(log.last_done, log.total);
    const int calls = log.calls;
    mlxe_model_free(model);

    /* false in the middle: the load fails as cancelled, frees what it made, says so */
    progress_log cancel = {.cancel_at = calls / 2};
    options.progress_user = &cancel;
    model = NULL;
    assert_int_equal(mlxe_model_load(dir, &options, &model, &err), MLXE_ERR_CANCELLED);
    assert_null(model);
    assert_int_equal(cancel.calls, calls / 2);
    assert_non_null(strstr(err.message, "cancelled"));
    test_remove_model(dir);
}

static void test_missing_tensor(void **state) {
    (void)state;
    test_model_spec spec;
    test_model_spec_init(&spec, "llama");
    spec.skip_tensor = "model.layers.1.mlp.up_proj.weight";
    mlxe_model *model = (mlxe_model *)1;
    mlxe_error err;
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_NOT_FOUND);
    assert_null(model);
    assert_message_contains(err.message, "model.layers.1.mlp.up_proj.weight");

    test_model_spec_init(&spec, "qwen3");
    spec.skip_tensor = "model.layers.0.self_attn.k_norm.weight";
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "k_norm");

    test_model_spec_init(&spec, "qwen2");
    spec.skip_tensor = "model.layers.0.self_attn.v_proj.bias";
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "v_proj.bias");

    /* untied models need lm_head.weight */
    test_model_spec_init(&spec, "llama");
    spec.skip_tensor = "lm_head.weight";
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "lm_head.weight");
}

static void test_wrong_shape(void **state) {
    (void)state;
    test_model_spec spec;
    test_model_spec_init(&spec, "mistral");
    spec.wrong_tensor = "model.layers.0.self_attn.k_proj.weight";
    mlxe_model *model = NULL;
    mlxe_error err;
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_FORMAT);
    assert_null(model);
    assert_message_contains(err.message, "model.layers.0.self_attn.k_proj.weight");
    assert_message_contains(err.message, "shape");
    test_model_spec_init(&spec, "llama");
    spec.wrong_tensor = "model.norm.weight";
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "model.norm.weight");
}

static void test_bad_configs(void **state) {
    (void)state;
    test_model_spec spec;
    mlxe_model *model = NULL;
    mlxe_error err;
    test_model_spec_init(&spec, "llama");
    spec.heads = 0;
    spec.kv_heads = 0;
    mlxe_status st = load_spec(&spec, &model, &err);
    assert_true(st == MLXE_ERR_FORMAT || st == MLXE_ERR_INVALID_ARGUMENT);
    assert_null(model);
    assert_message_contains(err.message, "num_attention_heads");

    test_model_spec_init(&spec, "llama");
    spec.kv_heads = 3; /* 4 heads are not a multiple of 3 */
    st = load_spec(&spec, &model, &err);
    assert_true(st == MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "num_key_value_heads");

    test_model_spec_init(&spec, "gpt2");
    assert_int_equal(load_spec(&spec, &model, &err), MLXE_ERR_UNSUPPORTED);
    assert_message_contains(err.message, "gpt2");
    assert_message_contains(err.message, "llama");

    test_model_spec_init(&spec, "llama");
    mlxe_model_options options;
    mlxe_model_options_init(&options);
    options.device = "tpu";
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    test_write_model(dir, &spec, 1);
    assert_int_equal(mlxe_model_load(dir, &options, &model, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "tpu");
    test_remove_model(dir);

    assert_int_equal(mlxe_model_load("/nonexistent/mlxe-model", NULL, &model, &err) != MLXE_OK, 1);
    assert_null(model);
    assert_message_contains(err.message, "/nonexistent/mlxe-model");
    assert_int_equal(mlxe_model_load(NULL, NULL, &model, &err), MLXE_ERR_INVALID_ARGUMENT);
}

static void test_u32_without_scales_refused(void **state) {
    (void)state;
    /* a U32 tensor without the .scales/.biases of MLX quantization where a
     * float matrix is expected: a clear "unsupported" naming the tensor
     * (the shape check comes first, so give it the float shape) */
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    test_model_spec spec;
    test_model_spec_init(&spec, "llama");
    test_write_model(dir, &spec, 3);
    /* rewrite model.safetensors with embed_tokens as U32 */
    mlxe_weight_set *set = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_weight_set_open(dir, &set, &err), MLXE_OK);
    size_t n = mlxe_weight_set_count(set);
    mlxe_safetensors_write_tensor *tensors = calloc(n, sizeof *tensors);
    for (size_t i = 0; i < n; i++) {
        const mlxe_tensor_info *info = mlxe_weight_set_at(set, i);
        tensors[i].name = info->name;
        tensors[i].dtype = strcmp(info->name, "model.embed_tokens.weight") == 0 ? MLXE_DTYPE_U32 : info->dtype;
        tensors[i].n_dims = info->n_dims;
        memcpy(tensors[i].shape, info->shape, sizeof info->shape);
        tensors[i].data = info->data;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unsigned char *bytes = NULL;
    size_t size = 0;
    assert_int_equal(mlxe_safetensors_serialize(tensors, n, NULL, 0, &bytes, &size, &err), MLXE_OK);
    mlxe_weight_set_close(set);
    test_write_file(path, bytes, size);
    free(bytes);
    free(tensors);
    mlxe_model *model = NULL;
    assert_int_equal(mlxe_model_load(dir, NULL, &model, &err), MLXE_ERR_UNSUPPORTED);
    assert_message_contains(err.message, "model.embed_tokens.weight");
    assert_message_contains(err.message, "U32");
    test_remove_model(dir);
}

/* Rewrites DIR/model.safetensors with one more byte of header (a space),
 * so every tensor starts one byte later: misaligned, as files written by
 * MLX often are. */
static void misalign_weights(const char *dir) {
    char path[128];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bytes = malloc((size_t)size + 1);
    assert_int_equal(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | bytes[i];
    memmove(bytes + 8 + header + 1, bytes + 8 + header, (size_t)size - 8 - header);
    bytes[8 + header] = ' ';
    header++;
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(header >> (8 * i));
    test_write_file(path, bytes, (size_t)size + 1);
    free(bytes);
}

static float *last_logits(mlxe_model *model) {
    mlxe_context *ctx = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_context_create(model, NULL, &ctx, &err), MLXE_OK);
    int32_t ids[6] = {1, 9, 17, 33, 2, 60}, positions[6] = {0, 1, 2, 3, 4, 5}, seqs[6] = {0};
    mlxe_batch b = {.n_tokens = 6, .tokens = ids, .positions = positions, .seq_ids = seqs};
    assert_int_equal(mlxe_context_decode(ctx, &b, &err), MLXE_OK);
    size_t bytes = (size_t)mlxe_model_vocab_size(model) * sizeof(float);
    float *out = malloc(bytes);
    memcpy(out, mlxe_context_logits(ctx, 5), bytes);
    mlxe_context_free(ctx);
    return out;
}

static void test_misaligned_tensors(void **state) {
    (void)state;
    test_model_spec spec;
    test_model_spec_init(&spec, "qwen2");
    char aligned_dir[64], misaligned_dir[64];
    test_make_temp_dir(aligned_dir, sizeof aligned_dir);
    test_make_temp_dir(misaligned_dir, sizeof misaligned_dir);
    test_write_model(aligned_dir, &spec, 21);
    test_write_model(misaligned_dir, &spec, 21);
    misalign_weights(misaligned_dir);
    mlxe_model *aligned = NULL, *misaligned = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_model_load(aligned_dir, NULL, &aligned, &err), MLXE_OK);
    if (mlxe_model_load(misaligned_dir, NULL, &misaligned, &err) != MLXE_OK) fail_msg("%s", err.message);
    /* same weights, computed from aligned copies: the same logits */
    float *a = last_logits(aligned), *b = last_logits(misaligned);
    assert_memory_equal(a, b, (size_t)mlxe_model_vocab_size(aligned) * sizeof(float));
    assert_int_equal(mlxe_model_memory_bytes(aligned), mlxe_model_weight_bytes(aligned));
    assert_int_equal(mlxe_model_memory_bytes(misaligned), 2 * mlxe_model_weight_bytes(misaligned));
    free(a);
    free(b);
    mlxe_model_free(aligned);
    mlxe_model_free(misaligned);
    test_remove_model(aligned_dir);
    test_remove_model(misaligned_dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_getters),
        cmocka_unit_test(test_load_progress),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_u32_without_scales_refused),
        cmocka_unit_test(test_misaligned_tensors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
