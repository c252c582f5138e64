/* Tests of the log: spec parsing, thresholds, ring and callback sink. */
#include "test_util.h"

#include "base/log_internal.h"
#include "mlxengine/mlxengine.h"

static int callback_count;
static char callback_last[MLXE_LOG_MESSAGE_SIZE];
static void count_callback(void *user, const mlxe_log_record *record) {
    (void)user;
    callback_count++;
    snprintf(callback_last, sizeof callback_last, "%s", record->message);
}

static void test_configure_spec(void **state) {
    (void)state;
    mlxe_error err;
    assert_int_equal(mlxe_log_configure("tokenizer=trace,info", &err), MLXE_OK);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_TOKENIZER), MLXE_LOG_TRACE);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_HUB), MLXE_LOG_INFO);
    assert_int_equal(mlxe_log_configure("debug", &err), MLXE_OK);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_TOKENIZER), MLXE_LOG_DEBUG);
    assert_int_equal(mlxe_log_configure(" warn , hub=error ", &err), MLXE_OK);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_HUB), MLXE_LOG_ERROR);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_ENGINE), MLXE_LOG_WARN);
    /* A bad item changes nothing and is named. */
    assert_int_equal(mlxe_log_configure("info,tokenizr=trace", &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "tokenizr=trace");
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_ENGINE), MLXE_LOG_WARN);
    assert_int_equal(mlxe_log_configure("loud", &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "loud");
    assert_int_equal(mlxe_log_configure("hub=loud", &err), MLXE_ERR_INVALID_ARGUMENT);
    setenv("MLXE_LOG", "server=trace,error", 1);
    assert_int_equal(mlxe_log_configure_from_env(&err), MLXE_OK);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_SERVER), MLXE_LOG_TRACE);
    assert_int_equal(mlxe_log_get_level(MLXE_LOG_CAT_GENERAL), MLXE_LOG_ERROR);
    unsetenv("MLXE_LOG");
}

static void test_threshold_ring_and_callback(void **state) {
    (void)state;
    mlxe_log_set_level_all(MLXE_LOG_INFO);
    mlxe_log_set_level(MLXE_LOG_CAT_FORMAT, MLXE_LOG_TRACE);
    mlxe_log_clear_recent();
    callback_count = 0;
    mlxe_log_set_callback(count_callback, NULL);
    mlxe_log_write(MLXE_LOG_DEBUG, MLXE_LOG_CAT_ENGINE, "dropped %d", 1);
    MLXE_TRACE(MLXE_LOG_CAT_FORMAT, "kept %s", "trace");
    mlxe_log_write(MLXE_LOG_WARN, MLXE_LOG_CAT_HUB, "kept warn");
    assert_int_equal(callback_count, 2);
    assert_string_equal(callback_last, "kept warn");
    mlxe_log_record records[4];
    size_t n = mlxe_log_recent(records, 4);
    assert_int_equal(n, 2);
    assert_string_equal(records[0].message, "kept trace");
    assert_int_equal(records[0].level, MLXE_LOG_TRACE);
    assert_int_equal(records[0].category, MLXE_LOG_CAT_FORMAT);
    assert_true(records[1].sequence == records[0].sequence + 1);
    assert_true(records[0].time_unix > 1.6e9);
    assert_true(records[0].thread_id > 0);
    mlxe_log_set_callback(NULL, NULL);
    mlxe_log_write(MLXE_LOG_ERROR, MLXE_LOG_CAT_HUB, "no callback");
    assert_int_equal(callback_count, 2);
}

static void test_ring_keeps_last_records(void **state) {
    (void)state;
    mlxe_log_set_level_all(MLXE_LOG_INFO);
    mlxe_log_clear_recent();
    for (int i = 0; i < MLXE_LOG_RING_SIZE + 10; i++) mlxe_log_write(MLXE_LOG_INFO, MLXE_LOG_CAT_GENERAL, "record %d", i);
    mlxe_log_record *records = calloc(MLXE_LOG_RING_SIZE + 5, sizeof *records);
    size_t n = mlxe_log_recent(records, MLXE_LOG_RING_SIZE + 5);
    assert_int_equal(n, MLXE_LOG_RING_SIZE);
    assert_string_equal(records[0].message, "record 10");
    char last[32];
    snprintf(last, sizeof last, "record %d", MLXE_LOG_RING_SIZE + 9);
    assert_string_equal(records[n - 1].message, last);
    n = mlxe_log_recent(records, 3);
    assert_int_equal(n, 3);
    assert_string_equal(records[2].message, last);
    free(records);
}

static void test_names(void **state) {
    (void)state;
    assert_string_equal(mlxe_log_level_name(MLXE_LOG_WARN), "warn");
    assert_null(mlxe_log_level_name((mlxe_log_level)42));
    assert_string_equal(mlxe_log_category_name(MLXE_LOG_CAT_TOKENIZER), "tokenizer");
    assert_null(mlxe_log_category_name(MLXE_LOG_CAT_COUNT));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_configure_spec),
        cmocka_unit_test(test_threshold_ring_and_callback),
        cmocka_unit_test(test_ring_keeps_last_records),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
