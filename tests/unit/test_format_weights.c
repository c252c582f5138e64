/* Tests of model-folder weight sets: single file, sharded with an index,
 * globbed shards, and the errors for broken folders. */
#include "test_util.h"

#include <sys/stat.h>

#include "format/safetensors.h"
#include "format/safetensors_write.h"
#include "format_test_helpers.h"
#include "mlxengine/mlxengine.h"

static char temp_dir[256];
static float values[64];

static int setup(void **state) {
    (void)state;
    test_make_temp_dir(temp_dir, sizeof temp_dir);
    for (int i = 0; i < 64; i++) values[i] = (float)i * 0.5f;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    remove_tree(temp_dir);
    return 0;
}

/* Writes dir/name holding tensors with the given names, each F32 [2, 3]. */
static void write_shard(const char *name, const char *const *tensor_names, size_t n) {
    mlxe_safetensors_write_tensor tensors[8];
    for (size_t i = 0; i < n; i++)
        tensors[i] = (mlxe_safetensors_write_tensor){tensor_names[i], MLXE_DTYPE_F32, 2, {2, 3}, values + 6 * i};
    char *path = join_path(temp_dir, name);
    mlxe_error err;
    if (mlxe_safetensors_write(path, tensors, n, NULL, 0, &err) != MLXE_OK) fail_msg("%s", err.message);
    free(path);
}

static void write_text(const char *name, const char *text) {
    char *path = join_path(temp_dir, name);
    test_write_file(path, text, strlen(text));
    free(path);
}

static void expect_set_error(mlxe_status status, const char *needle1, const char *needle2) {
    mlxe_weight_set *set = (mlxe_weight_set *)0x1;
    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_status got = mlxe_weight_set_open(temp_dir, &set, &err);
    if (got != status) fail_msg("expected %s, got %s: %s", mlxe_status_name(status), mlxe_status_name(got), err.message);
    assert_null(set);
    if (needle1) assert_message_contains(err.message, needle1);
    if (needle2) assert_message_contains(err.message, needle2);
}

static const char *const shard1_names[] = {"model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight"};
static const char *const shard2_names[] = {"model.layers.1.mlp.up_proj.weight", "model.norm.weight", "lm_head.weight"};

static const char *const index_json =
    "{\"metadata\": {\"total_size\": 120}, \"weight_map\": {"
    "\"model.embed_tokens.weight\": \"model-00001-of-00002.safetensors\","
    "\"model.layers.0.mlp.up_proj.weight\": \"model-00001-of-00002.safetensors\","
    "\"model.layers.1.mlp.up_proj.weight\": \"model-00002-of-00002.safetensors\","
    "\"model.norm.weight\": \"model-00002-of-00002.safetensors\","
    "\"lm_head.weight\": \"model-00002-of-00002.safetensors\"}}";

static void test_single_file(void **state) {
    (void)state;
    write_shard("model.safetensors", shard1_names, 2);
    /* A stray file next to model.safetensors is ignored (transformers reads model.safetensors). */
    write_shard("other.safetensors", shard1_names, 2);
    mlxe_weight_set *set = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_weight_set_open(temp_dir, &set, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_count(set), 2);
    assert_int_equal(mlxe_weight_set_file_count(set), 1);
    assert_non_null(mlxe_weight_set_file(set, 0));
    assert_null(mlxe_weight_set_file(set, 1));
    assert_int_equal(mlxe_weight_set_total_bytes(set), 2 * 6 * sizeof(float));
    const mlxe_tensor_info *t = mlxe_weight_set_find(set, "model.layers.0.mlp.up_proj.weight");
    assert_non_null(t);
    assert_memory_equal(t->data, values + 6, 6 * sizeof(float));
    assert_non_null(strstr(t->file, "model.safetensors"));
    mlxe_weight_set_close(set);
    mlxe_weight_set_close(NULL);
    assert_int_equal(mlxe_weight_set_count(NULL), 0);
}

static void test_sharded_with_index(void **state) {
    (void)state;
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_shard("model-00002-of-00002.safetensors", shard2_names, 3);
    write_text("model.safetensors.index.json", index_json);
    mlxe_weight_set *set = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_weight_set_open(temp_dir, &set, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_count(set), 5);
    assert_int_equal(mlxe_weight_set_file_count(set), 2);
    assert_int_equal(mlxe_weight_set_total_bytes(set), 5 * 6 * sizeof(float));
    for (size_t i = 0; i < 2; i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_find(set, shard1_names[i]);
        assert_non_null(t);
        assert_non_null(strstr(t->file, "model-00001-of-00002.safetensors"));
        assert_memory_equal(t->data, values + 6 * i, 6 * sizeof(float));
    }
    for (size_t i = 0; i < 3; i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_find(set, shard2_names[i]);
        assert_non_null(t);
        assert_non_null(strstr(t->file, "model-00002-of-00002.safetensors"));
        assert_memory_equal(t->data, values + 6 * i, 6 * sizeof(float));
    }
    /* The same set copied into huge-page memory (what a CPU model loads):
     * the same tensors and bytes, none of them inside the files' mappings. */
    mlxe_weight_set *copied = NULL;
    assert_int_equal(mlxe_weight_set_open_in_memory(temp_dir, &copied, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_count(copied), 5);
    for (size_t i = 0; i < 5; i++) {
        const char *name = i < 2 ? shard1_names[i] : shard2_names[i - 2];
        const mlxe_tensor_info *a = mlxe_weight_set_find(set, name), *b = mlxe_weight_set_find(copied, name);
        assert_non_null(b);
        assert_true(a->data != b->data);
        assert_int_equal(a->n_bytes, b->n_bytes);
        assert_memory_equal(a->data, b->data, b->n_bytes);
    }
    mlxe_weight_set_close(copied);
    /* _at covers every tensor once, file by file. */
    size_t seen_second = 0;
    for (size_t i = 0; i < mlxe_weight_set_count(set); i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_at(set, i);
        assert_non_null(t);
        assert_ptr_equal(mlxe_weight_set_find(set, t->name), t);
        if (strstr(t->file, "00002-of")) seen_second++;
        else assert_int_equal(seen_second, 0);
    }
    assert_int_equal(seen_second, 3);
    assert_null(mlxe_weight_set_at(set, 5));
    assert_null(mlxe_weight_set_find(set, "nope"));

    /* require: right shape, missing tensor, wrong shape. */
    const mlxe_tensor_info *t = NULL;
    const int64_t good[2] = {2, 3}, wrong[2] = {3, 2}, three[3] = {2, 3, 1};
    assert_int_equal(mlxe_weight_set_require(set, "model.norm.weight", 2, good, &t, &err), MLXE_OK);
    assert_non_null(t);
    assert_string_equal(t->name, "model.norm.weight");
    assert_int_equal(mlxe_weight_set_require(set, "model.layers.7.self_attn.q_proj.weight", 2, good, &t, &err),
                     MLXE_ERR_NOT_FOUND);
    assert_null(t);
    assert_message_contains(err.message, "missing tensor 'model.layers.7.self_attn.q_proj.weight'");
    assert_message_contains(err.message, temp_dir);
    assert_int_equal(mlxe_weight_set_require(set, "lm_head.weight", 2, wrong, &t, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "tensor 'lm_head.weight'");
    assert_message_contains(err.message, "model-00002-of-00002.safetensors");
    assert_message_contains(err.message, "has shape [2, 3] but the config implies [3, 2]");
    assert_int_equal(mlxe_weight_set_require(set, "lm_head.weight", 3, three, NULL, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "[2, 3, 1]");
    assert_int_equal(mlxe_weight_set_require(set, "lm_head.weight", 2, NULL, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_weight_set_close(set);
}

static void test_glob(void **state) {
    (void)state;
    /* Without model*.safetensors, every *.safetensors file, in name order. */
    write_shard("b.safetensors", shard2_names, 3);
    write_shard("a.safetensors", shard1_names, 2);
    write_text("notes.txt", "not weights");
    mlxe_weight_set *set = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_weight_set_open(temp_dir, &set, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_count(set), 5);
    assert_int_equal(mlxe_weight_set_file_count(set), 2);
    assert_non_null(strstr(mlxe_safetensors_path(mlxe_weight_set_file(set, 0)), "a.safetensors"));
    assert_non_null(strstr(mlxe_weight_set_at(set, 0)->file, "a.safetensors"));
    mlxe_weight_set_close(set);

    /* With model*.safetensors present, only those (as mlx-lm's glob). */
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_shard("model-00002-of-00002.safetensors", shard2_names, 3);
    assert_int_equal(mlxe_weight_set_open(temp_dir, &set, &err), MLXE_OK);
    assert_int_equal(mlxe_weight_set_file_count(set), 2);
    assert_non_null(strstr(mlxe_weight_set_at(set, 0)->file, "model-00001"));
    mlxe_weight_set_close(set);
}

static void test_duplicate_across_files(void **state) {
    (void)state;
    static const char *const overlap[] = {"model.norm.weight"};
    write_shard("model-a.safetensors", shard1_names, 2);
    write_shard("model-b.safetensors", overlap, 1);
    write_shard("model-c.safetensors", shard2_names, 3);
    expect_set_error(MLXE_ERR_FORMAT, "tensor 'model.norm.weight' is in both", "model-b.safetensors");
}

static void test_missing_shard(void **state) {
    (void)state;
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_text("model.safetensors.index.json", index_json);
    expect_set_error(MLXE_ERR_NOT_FOUND, "shard 'model-00002-of-00002.safetensors'", "model.safetensors.index.json");
}

static void test_index_tensor_absent_from_shard(void **state) {
    (void)state;
    static const char *const short_shard2[] = {"model.layers.1.mlp.up_proj.weight", "model.norm.weight"};
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_shard("model-00002-of-00002.safetensors", short_shard2, 2);
    write_text("model.safetensors.index.json", index_json);
    expect_set_error(MLXE_ERR_FORMAT, "tensor 'lm_head.weight' is in 'model-00002-of-00002.safetensors'",
                     "no such tensor");
}

static void test_truncated_shard(void **state) {
    (void)state;
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_shard("model-00002-of-00002.safetensors", shard2_names, 3);
    write_text("model.safetensors.index.json", index_json);
    char *path = join_path(temp_dir, "model-00002-of-00002.safetensors");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 4), 0);
    free(path);
    /* Names the shard and the tensor that runs past the end. */
    expect_set_error(MLXE_ERR_FORMAT, "model-00002-of-00002.safetensors: tensor 'model.norm.weight' ends at byte 72",
                     "data area has 68 bytes");
}

static void test_bad_index(void **state) {
    (void)state;
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_text("model.safetensors.index.json", "{\"metadata\": {}}");
    expect_set_error(MLXE_ERR_FORMAT, "model.safetensors.index.json", "weight_map");
    write_text("model.safetensors.index.json", "{\"weight_map\": {}}");
    expect_set_error(MLXE_ERR_FORMAT, "model.safetensors.index.json", "no tensors");
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"x\": \"../evil.safetensors\"}}");
    expect_set_error(MLXE_ERR_FORMAT, "tensor 'x'", "file name");
    write_text("model.safetensors.index.json", "{\"weight_map\": {\"x\": 3}}");
    expect_set_error(MLXE_ERR_FORMAT, "tensor 'x'", NULL);
    write_text("model.safetensors.index.json", "{\"weight_map\": ");
    expect_set_error(MLXE_ERR_FORMAT, "model.safetensors.index.json", "invalid JSON");
}

static void test_empty_and_missing_folders(void **state) {
    (void)state;
    write_text("config.json", "{}");
    expect_set_error(MLXE_ERR_NOT_FOUND, temp_dir, "no model.safetensors");
    mlxe_weight_set *set = NULL;
    mlxe_error err;
    char *missing = join_path(temp_dir, "absent");
    assert_int_equal(mlxe_weight_set_open(missing, &set, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, missing);
    free(missing);
    assert_int_equal(mlxe_weight_set_open(NULL, &set, &err), MLXE_ERR_INVALID_ARGUMENT);
}

/* Good and broken folders opened many times: LSan checks nothing leaks. */
static void test_open_close_repeatedly(void **state) {
    (void)state;
    write_shard("model-00001-of-00002.safetensors", shard1_names, 2);
    write_shard("model-00002-of-00002.safetensors", shard2_names, 3);
    write_text("model.safetensors.index.json", index_json);
    mlxe_error err;
    for (int i = 0; i < 100; i++) {
        mlxe_weight_set *set = NULL;
        assert_int_equal(mlxe_weight_set_open(temp_dir, &set, &err), MLXE_OK);
        mlxe_weight_set_close(set);
    }
    char *path = join_path(temp_dir, "model-00002-of-00002.safetensors");
    assert_int_equal(truncate(path, 20), 0);
    free(path);
    for (int i = 0; i < 100; i++) {
        mlxe_weight_set *set = NULL;
        assert_int_equal(mlxe_weight_set_open(temp_dir, &set, &err), MLXE_ERR_FORMAT);
        assert_null(set);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_single_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharded_with_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_across_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_tensor_absent_from_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_shard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_missing_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_close_repeatedly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
