/* Tests of errors, cancellation, the thread pool, files and JSON helpers. */
#include "test_util.h"

#include <stdatomic.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/thread_pool.h"
#include "mlxengine/mlxengine.h"

static void test_error_set_and_prefix(void **state) {
    (void)state;
    mlxe_error err;
    mlxe_error_clear(&err);
    assert_int_equal(err.status, MLXE_OK);
    assert_int_equal(mlxe_error_set(&err, MLXE_ERR_FORMAT, "tensor '%s' bad", "w"), MLXE_ERR_FORMAT);
    assert_string_equal(err.message, "tensor 'w' bad");
    mlxe_error_prefix(&err, "model.safetensors");
    assert_string_equal(err.message, "model.safetensors: tensor 'w' bad");
    assert_int_equal(mlxe_error_set(NULL, MLXE_ERR_IO, "x"), MLXE_ERR_IO);
    assert_string_equal(mlxe_status_name(MLXE_ERR_CANCELLED), "cancelled");
    assert_string_equal(mlxe_status_name((mlxe_status)999), "unknown");
    /* A long message is cut without leaving half a UTF-8 character. */
    char big[3000];
    for (int i = 0; i < 1499; i++) { big[2 * i] = (char)0xC3; big[2 * i + 1] = (char)0xA9; }
    big[2998] = '\0';
    mlxe_error_set(&err, MLXE_ERR_IO, "x%s", big);
    size_t len = strlen(err.message);
    assert_true(len < MLXE_ERROR_MESSAGE_SIZE);
    assert_true(len % 2 == 1); /* 'x' + whole two-byte characters */
}

static void test_cancel(void **state) {
    (void)state;
    mlxe_cancel *c = mlxe_cancel_create();
    assert_non_null(c);
    assert_false(mlxe_cancel_is_requested(c));
    mlxe_cancel_request(c);
    assert_true(mlxe_cancel_is_requested(c));
    mlxe_cancel_reset(c);
    assert_false(mlxe_cancel_is_requested(c));
    assert_false(mlxe_cancel_is_requested(NULL));
    mlxe_cancel_request(NULL);
    mlxe_cancel_free(c);
    mlxe_cancel_free(NULL);
}

typedef struct sum_ctx {
    long total;
    atomic_long sum;
    atomic_int calls;
} sum_ctx;

static void sum_part(void *ctx_ptr, int index, int count) {
    sum_ctx *ctx = ctx_ptr;
    long begin, end, local = 0;
    mlxe_split_range(ctx->total, index, count, &begin, &end);
    for (long i = begin; i < end; i++) local += i;
    atomic_fetch_add(&ctx->sum, local);
    atomic_fetch_add(&ctx->calls, 1);
}

static void test_thread_pool(void **state) {
    (void)state;
    mlxe_error err;
    for (int threads = 1; threads <= 5; threads += 2) {
        mlxe_thread_pool *pool;
        assert_int_equal(mlxe_thread_pool_create(threads, &pool, &err), MLXE_OK);
        assert_int_equal(mlxe_thread_pool_size(pool), threads);
        for (int round = 0; round < 200; round++) {
            sum_ctx ctx = {.total = 1000 + round};
            atomic_init(&ctx.sum, 0);
            atomic_init(&ctx.calls, 0);
            mlxe_thread_pool_run(pool, sum_part, &ctx);
            assert_int_equal(atomic_load(&ctx.calls), threads);
            assert_int_equal(atomic_load(&ctx.sum), ctx.total * (ctx.total - 1) / 2);
        }
        mlxe_thread_pool_free(pool);
    }
    setenv("MLXE_NUM_THREADS", "3", 1);
    assert_int_equal(mlxe_thread_pool_default_size(), 3);
    setenv("MLXE_NUM_THREADS", "zero", 1);
    assert_true(mlxe_thread_pool_default_size() >= 1);
    unsetenv("MLXE_NUM_THREADS");
    sum_ctx ctx = {.total = 10};
    mlxe_thread_pool_run(NULL, sum_part, &ctx);
    assert_int_equal(atomic_load(&ctx.sum), 45);
}

static void test_files_and_json(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    char *path = mlxe_path_join(dir, "config.json");
    const char *text = "{\"a\": 3, \"b\": 2.5, \"c\": true, \"d\": \"x\", \"e\": null,\n \"f\": 1.5}";
    test_write_file(path, text, strlen(text));
    mlxe_error err;
    cJSON *root;
    assert_int_equal(mlxe_json_parse_file(path, 1 << 20, &root, &err), MLXE_OK);
    int64_t i = 0; double d = 0; bool b = false, found = false; const char *s = NULL;
    assert_int_equal(mlxe_json_get_int(root, "a", "config.json", &i, &found, &err), MLXE_OK);
    assert_true(found); assert_int_equal(i, 3);
    assert_int_equal(mlxe_json_get_double(root, "b", "config.json", &d, &found, &err), MLXE_OK);
    assert_true(d == 2.5);
    assert_int_equal(mlxe_json_get_bool(root, "c", "config.json", &b, &found, &err), MLXE_OK);
    assert_true(b);
    assert_int_equal(mlxe_json_get_string(root, "d", "config.json", &s, &found, &err), MLXE_OK);
    assert_string_equal(s, "x");
    assert_int_equal(mlxe_json_get_int(root, "e", "config.json", &i, &found, &err), MLXE_OK);
    assert_false(found);
    assert_int_equal(mlxe_json_get_int(root, "f", "config.json", &i, &found, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "'f'");
    assert_int_equal(mlxe_json_get_string(root, "a", "config.json", &s, &found, &err), MLXE_ERR_FORMAT);
    cJSON_Delete(root);

    const char *bad = "{\n  \"a\": 1,\n  oops\n}";
    test_write_file(path, bad, strlen(bad));
    assert_int_equal(mlxe_json_parse_file(path, 1 << 20, &root, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "line 3");
    assert_message_contains(err.message, "config.json");
    assert_int_equal(mlxe_json_parse_file(path, 4, &root, &err), MLXE_ERR_LIMIT);

    mlxe_mapped_file map;
    assert_int_equal(mlxe_file_map(path, &map, &err), MLXE_OK);
    assert_int_equal(map.size, strlen(bad));
    assert_memory_equal(map.data, bad, map.size);
    mlxe_file_unmap(&map);
    assert_null(map.data);
    /* The in-memory copy (huge pages for weights): the same bytes, at a 2 MiB
     * boundary, read-only, and unmapped whole. */
    assert_int_equal(mlxe_file_map_in_memory(path, &map, &err), MLXE_OK);
    assert_int_equal(map.size, strlen(bad));
    assert_memory_equal(map.data, bad, map.size);
    assert_int_equal((uintptr_t)map.data % ((uintptr_t)2 << 20), 0);
    assert_int_equal(map.mapped_size, (size_t)2 << 20);
    mlxe_file_unmap(&map);
    assert_null(map.data);
    assert_int_equal(map.mapped_size, 0);
    assert_true(mlxe_file_exists(path));
    assert_true(mlxe_dir_exists(dir));
    assert_false(mlxe_file_exists(dir));
    unlink(path);
    assert_int_equal(mlxe_file_map(path, &map, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, path);
    assert_null(map.data);
    assert_int_equal(mlxe_file_map_in_memory(path, &map, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, path);
    assert_null(map.data);
    free(path);
    rmdir(dir);
}

static void test_version(void **state) {
    (void)state;
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", MLXE_VERSION_MAJOR, MLXE_VERSION_MINOR, MLXE_VERSION_PATCH);
    assert_string_equal(mlxe_version_string(), expect);
    const mlxe_build_info *info = mlxe_build_info_get();
    assert_string_equal(info->version, expect);
    assert_non_null(info->compiler);
    assert_true(strlen(info->git_revision) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_set_and_prefix),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_thread_pool),
        cmocka_unit_test(test_files_and_json),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
