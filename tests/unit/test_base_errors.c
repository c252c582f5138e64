/* The ring of recent errors (mlxe_recent_errors): what mlxe_error_set
 * records, the context mlxe_error_prefix adds to its record, the order and
 * size limit, clearing, and recording from many threads at once. */
#include "test_util.h"

#include <pthread.h>

#include "base/error.h"

static void test_records_and_context(void **state) {
    (void)state;
    mlxe_recent_errors_clear();
    mlxe_error_record records[MLXE_ERROR_RING_SIZE];
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), 0);
    assert_int_equal(mlxe_recent_errors(NULL, 4), 0);

    /* No err: the caller asked for no message, nothing is recorded. */
    assert_int_equal(mlxe_error_set(NULL, MLXE_ERR_IO, "not kept"), MLXE_ERR_IO);
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), 0);

    mlxe_error err, other;
    mlxe_error_set(&err, MLXE_ERR_FORMAT, "tensor %s has shape [3]", "lm_head.weight");
    mlxe_error_prefix(&err, "loading %s", "/models/x");
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), 1);
    assert_int_equal(records[0].status, MLXE_ERR_FORMAT);
    assert_string_equal(records[0].message, "loading /models/x: tensor lm_head.weight has shape [3]");
    assert_string_equal(records[0].message, err.message);
    assert_true(records[0].thread_id > 0 && records[0].time_unix > 1.7e9 && records[0].sequence >= 1);

    /* Prefixing an older error leaves the newer record alone. */
    mlxe_error_set(&other, MLXE_ERR_NOT_FOUND, "config.json is missing");
    mlxe_error_prefix(&err, "outer");
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), 2);
    assert_string_equal(records[1].message, "config.json is missing");
    assert_true(records[1].sequence == records[0].sequence + 1);

    /* The ring keeps the newest MLXE_ERROR_RING_SIZE, oldest first. */
    for (int i = 0; i < MLXE_ERROR_RING_SIZE + 5; i++) mlxe_error_set(&err, MLXE_ERR_LIMIT, "error %d", i);
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), MLXE_ERROR_RING_SIZE);
    assert_string_equal(records[0].message, "error 5");
    assert_string_equal(records[MLXE_ERROR_RING_SIZE - 1].message, "error 36");
    assert_int_equal(mlxe_recent_errors(records, 2), 2);
    assert_string_equal(records[1].message, "error 36");
    mlxe_recent_errors_clear();
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), 0);
}

#define N_THREADS 8
#define N_PER_THREAD 500

static void *set_errors(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < N_PER_THREAD; i++) {
        mlxe_error err;
        mlxe_error_set(&err, MLXE_ERR_IO, "thread %d error %d", id, i);
        mlxe_error_prefix(&err, "thread %d", id);
    }
    return NULL;
}

static void test_many_threads(void **state) {
    (void)state;
    mlxe_recent_errors_clear();
    pthread_t threads[N_THREADS];
    for (int t = 0; t < N_THREADS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, set_errors, (void *)(intptr_t)t), 0);
    for (int t = 0; t < N_THREADS; t++) pthread_join(threads[t], NULL);
    mlxe_error_record records[MLXE_ERROR_RING_SIZE];
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), MLXE_ERROR_RING_SIZE);
    for (size_t i = 0; i < MLXE_ERROR_RING_SIZE; i++) {
        if (i) assert_true(records[i].sequence > records[i - 1].sequence);
        /* Each record got its own thread's context, never another's. */
        int prefix_thread = -1, inner_thread = -1, index = -1;
        assert_int_equal(sscanf(records[i].message, "thread %d: thread %d error %d", &prefix_thread,
                                &inner_thread, &index), 3);
        assert_int_equal(prefix_thread, inner_thread);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_and_context),
        cmocka_unit_test(test_many_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
