/* Tests of the debug report built in-process (options, limits on log
 * records, errors listed apart, Markdown fences that a message cannot
 * close, GPUs through a stand-in NVML), the errors returned to callers with
 * their context and secrets redacted, the loaded models with their memory,
 * of the log file sink and export with their filters, and of the --since /
 * --level parsers. */
#include "test_util.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "diag/log_export.h"
#include "diag/redact.h"
#include "mlxengine/mlxengine.h"

static cJSON *json_report(const mlxe_debug_report_options *options) {
    mlxe_debug_report_options copy = *options;
    copy.format = MLXE_REPORT_JSON;
    char *text = NULL;
    mlxe_error err;
    if (mlxe_debug_report(&copy, &text, &err) != MLXE_OK) fail_msg("report: %s", err.message);
    cJSON *json = cJSON_Parse(text);
    if (!json) fail_msg("the JSON report does not parse: %.200s", text);
    mlxe_debug_report_free(text);
    return json;
}

static void test_arguments_and_defaults(void **state) {
    (void)state;
    mlxe_error err;
    assert_int_equal(mlxe_debug_report(NULL, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_debug_report_options options;
    mlxe_debug_report_options_init(&options);
    assert_int_equal(options.format, MLXE_REPORT_MARKDOWN);
    assert_int_equal(options.n_log_records, 50);
    assert_true(options.include_cache && options.probe_gpus);
    options.format = (mlxe_report_format)7;
    char *text = NULL;
    assert_int_equal(mlxe_debug_report(&options, &text, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "format 7");
    assert_null(text);
    mlxe_debug_report_options_init(NULL); /* accepted */
    setenv("HF_HUB_CACHE", "/nonexistent/mlxe-test-cache", 1);
    assert_int_equal(mlxe_debug_report(NULL, &text, &err), MLXE_OK);
    assert_true(strncmp(text, "# mlxengine debug report\n", 25) == 0);
    mlxe_debug_report_free(text);
    unsetenv("HF_HUB_CACHE");
}

static void test_log_sections(void **state) {
    (void)state;
    mlxe_log_set_level_all(MLXE_LOG_DEBUG);
    mlxe_log_clear_recent();
    mlxe_log_write(MLXE_LOG_ERROR, MLXE_LOG_CAT_HUB, "first error");
    for (int i = 0; i < 10; i++) mlxe_log_write(MLXE_LOG_INFO, MLXE_LOG_CAT_ENGINE, "info %d", i);
    mlxe_log_write(MLXE_LOG_WARN, MLXE_LOG_CAT_TOKENIZER, "a warning with ```` backticks");
    mlxe_log_write(MLXE_LOG_DEBUG, MLXE_LOG_CAT_SERVER, "last debug");
    mlxe_debug_report_options options;
    mlxe_debug_report_options_init(&options);
    options.probe_gpus = false;
    options.include_cache = false;
    options.n_log_records = 3;
    options.n_errors = 1;
    cJSON *report = json_report(&options);
    const cJSON *recent = cJSON_GetObjectItem(report, "recent_log");
    /* The 3 newest (the report's own debug records come after ours). */
    assert_int_equal(cJSON_GetArraySize(recent), 3);
    const cJSON *errors = cJSON_GetObjectItem(report, "recent_errors");
    assert_int_equal(cJSON_GetArraySize(errors), 1);
    const cJSON *warning = cJSON_GetArrayItem(errors, 0);
    assert_string_equal(cJSON_GetObjectItem(warning, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(warning, "category")->valuestring, "tokenizer");
    assert_true(cJSON_GetObjectItem(warning, "thread_id")->valuedouble > 0);
    options.n_errors = 5;
    cJSON_Delete(report);
    report = json_report(&options);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(report, "recent_errors")), 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(report, "recent_errors"), 0), "message")->valuestring,
                        "first error");
    cJSON_Delete(report);

    /* Markdown: the fence is longer than any run of backticks in a message. */
    options.format = MLXE_REPORT_MARKDOWN;
    char *text = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_debug_report(&options, &text, &err), MLXE_OK);
    assert_non_null(strstr(text, "## Recent errors\n\n`````text\n"));
    assert_non_null(strstr(text, "a warning with ```` backticks\n`````\n"));
    mlxe_debug_report_free(text);
    mlxe_log_set_level_all(MLXE_LOG_INFO);
}

/* The errors the library returned, redacted, in both formats. */
static void test_returned_errors(void **state) {
    (void)state;
    static const char secret[] = "s3cr3t-Pa55word-for-the-ring";
    assert_int_equal(mlxe_redact_add_secret(secret, NULL), MLXE_OK);
    mlxe_recent_errors_clear();
    mlxe_error err;
    /* A real failure: the context the caller adds reaches the record too. */
    mlxe_model *model = NULL;
    assert_int_equal(mlxe_model_load("/nonexistent/mlxe-model", NULL, &model, &err), MLXE_ERR_NOT_FOUND);
    char expected[MLXE_ERROR_MESSAGE_SIZE];
    snprintf(expected, sizeof expected, "%s", err.message);
    mlxe_error_set(&err, MLXE_ERR_NETWORK, "GET https://user:%s@example.com/x?token=hf_AbCdEf1234567890 failed",
                   secret);
    mlxe_debug_report_options options;
    mlxe_debug_report_options_init(&options);
    options.probe_gpus = false;
    options.include_cache = false;
    cJSON *report = json_report(&options);
    const cJSON *returned = cJSON_GetObjectItem(report, "returned_errors");
    assert_int_equal(cJSON_GetArraySize(returned), 2);
    const cJSON *first = cJSON_GetArrayItem(returned, 0);
    assert_string_equal(cJSON_GetObjectItem(first, "status")->valuestring, "not_found");
    assert_string_equal(cJSON_GetObjectItem(first, "message")->valuestring, expected);
    assert_true(cJSON_GetObjectItem(first, "thread_id")->valuedouble > 0);
    const char *second = cJSON_GetObjectItem(cJSON_GetArrayItem(returned, 1), "message")->valuestring;
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(returned, 1), "status")->valuestring, "network");
    assert_non_null(strstr(second, "example.com"));
    assert_null(strstr(second, secret));
    assert_null(strstr(second, "hf_AbCdEf1234567890"));
    cJSON_Delete(report);
    /* Read directly, the ring is redacted too. */
    mlxe_error_record records[MLXE_ERROR_RING_SIZE];
    assert_int_equal(mlxe_recent_errors(records, MLXE_ERROR_RING_SIZE), 2);
    assert_null(strstr(records[1].message, secret));
    assert_non_null(strstr(records[1].message, "[REDACTED]"));
    options.format = MLXE_REPORT_MARKDOWN;
    char *text = NULL;
    assert_int_equal(mlxe_debug_report(&options, &text, &err), MLXE_OK);
    assert_non_null(strstr(text, "## Errors returned to callers\n\n|"));
    assert_non_null(strstr(text, "/nonexistent/mlxe-model"));
    assert_null(strstr(text, secret));
    mlxe_debug_report_free(text);
    mlxe_recent_errors_clear();
    assert_int_equal(mlxe_debug_report(&options, &text, &err), MLXE_OK);
    assert_non_null(strstr(text, "No error was returned to a caller."));
    mlxe_debug_report_free(text);
}

static const cJSON *loaded_models(const cJSON *report) {
    return cJSON_GetObjectItem(cJSON_GetObjectItem(report, "loaded_models"), "models");
}

/* A loaded model is listed with its memory until it is freed. */
static void test_loaded_models(void **state) {
    (void)state;
    mlxe_debug_report_options options;
    mlxe_debug_report_options_init(&options);
    options.probe_gpus = false;
    options.include_cache = false;
    cJSON *report = json_report(&options);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(report, "loaded_models"), "tracked")));
    assert_int_equal(cJSON_GetArraySize(loaded_models(report)), 0);
    cJSON_Delete(report);

    const char *dir = MLXE_FIXTURES "/models/qwen3-f32";
    mlxe_model *model = NULL;
    mlxe_error err;
    if (mlxe_model_load(dir, NULL, &model, &err) != MLXE_OK) fail_msg("load %s: %s", dir, err.message);
    report = json_report(&options);
    assert_int_equal(cJSON_GetArraySize(loaded_models(report)), 1);
    const cJSON *entry = cJSON_GetArrayItem(loaded_models(report), 0);
    assert_string_equal(cJSON_GetObjectItem(entry, "path")->valuestring, dir);
    assert_string_equal(cJSON_GetObjectItem(entry, "model_type")->valuestring, "qwen3");
    assert_string_equal(cJSON_GetObjectItem(entry, "device")->valuestring, mlxe_model_device_name(model));
    assert_true(mlxe_model_memory_bytes(model) > 0);
    assert_true(cJSON_GetObjectItem(entry, "memory_bytes")->valuedouble == (double)mlxe_model_memory_bytes(model));
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(report, "loaded_models"), "memory_bytes")->valuedouble ==
                (double)mlxe_model_memory_bytes(model));
    cJSON_Delete(report);
    options.format = MLXE_REPORT_MARKDOWN;
    char *text = NULL;
    assert_int_equal(mlxe_debug_report(&options, &text, &err), MLXE_OK);
    const char *section = strstr(text, "## Loaded models");
    assert_non_null(section);
    assert_non_null(strstr(section, "qwen3-f32"));
    mlxe_debug_report_free(text);
    options.format = MLXE_REPORT_JSON;

    mlxe_model_free(model);
    report = json_report(&options);
    assert_int_equal(cJSON_GetArraySize(loaded_models(report)), 0);
    cJSON_Delete(report);
}

static void test_gpus_through_nvml(void **state) {
    (void)state;
    mlxe_debug_report_options options;
    mlxe_debug_report_options_init(&options);
    options.include_cache = false;
    setenv("MLXE_NVML_LIBRARY", MLXE_FAKE_NVML, 1);
    cJSON *report = json_report(&options);
    const cJSON *gpus = cJSON_GetObjectItem(report, "gpus");
    assert_string_equal(cJSON_GetObjectItem(gpus, "status")->valuestring, "found");
    assert_string_equal(cJSON_GetObjectItem(gpus, "driver_version")->valuestring, "550.54.15");
    assert_string_equal(cJSON_GetObjectItem(gpus, "cuda_driver_version")->valuestring, "12.4");
    const cJSON *devices = cJSON_GetObjectItem(gpus, "devices");
    assert_int_equal(cJSON_GetArraySize(devices), 2);
    const cJSON *second = cJSON_GetArrayItem(devices, 1);
    assert_string_equal(cJSON_GetObjectItem(second, "name")->valuestring, "Fake GPU 1");
    assert_true(cJSON_GetObjectItem(second, "memory_total_bytes")->valuedouble == 85899345920.0);
    assert_true(cJSON_GetObjectItem(second, "memory_free_bytes")->valuedouble == 80000000000.0 - 2);
    const cJSON *cuda = cJSON_GetArrayItem(cJSON_GetObjectItem(report, "backends"), 1);
    assert_string_equal(cJSON_GetObjectItem(cuda, "name")->valuestring, "cuda");
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(cuda, "available")), mlxe_build_info_get()->cuda_compiled);
    cJSON_Delete(report);

    /* NVML present but its driver not loaded, and no CUDA driver: a reason. */
    setenv("FAKE_NVML_FAIL", "1", 1);
    setenv("MLXE_CUDA_DRIVER_LIBRARY", "/nonexistent/libcuda.so.1", 1);
    report = json_report(&options);
    gpus = cJSON_GetObjectItem(report, "gpus");
    assert_string_equal(cJSON_GetObjectItem(gpus, "status")->valuestring, "none");
    const char *reason = cJSON_GetObjectItem(gpus, "reason")->valuestring;
    assert_message_contains(reason, "no GPU found");
    assert_message_contains(reason, "nvmlInit failed: Driver Not Loaded");
    assert_message_contains(reason, "/nonexistent/libcuda.so.1");
    cJSON_Delete(report);
    unsetenv("FAKE_NVML_FAIL");
    unsetenv("MLXE_CUDA_DRIVER_LIBRARY");
    unsetenv("MLXE_NVML_LIBRARY");
}

static size_t count_lines(const char *text) {
    size_t n = 0;
    for (const char *c = text; *c; c++) n += *c == '\n';
    return n;
}

static void test_log_file_and_export(void **state) {
    (void)state;
    char dir[64], path[128];
    test_make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    mlxe_diag_install_redaction();
    mlxe_error err;
    assert_int_equal(mlxe_diag_log_to_file(path, &err), MLXE_OK);
    mlxe_log_set_level_all(MLXE_LOG_DEBUG);
    mlxe_log_clear_recent();
    mlxe_log_write(MLXE_LOG_DEBUG, MLXE_LOG_CAT_HUB, "GET https://x/y?token=abcdef123 done");
    mlxe_log_write(MLXE_LOG_INFO, MLXE_LOG_CAT_ENGINE, "two\nlines");
    mlxe_log_write(MLXE_LOG_ERROR, MLXE_LOG_CAT_RUNTIME, "out of device memory");
    assert_int_equal(mlxe_diag_log_to_file(NULL, &err), MLXE_OK);
    mlxe_log_write(MLXE_LOG_ERROR, MLXE_LOG_CAT_RUNTIME, "not in the file");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    mlxe_log_export_options options;
    mlxe_log_export_options_init(&options);
    options.file = path;
    options.json = true;
    char *text = NULL;
    assert_int_equal(mlxe_log_export(&options, &text, &err), MLXE_OK);
    assert_int_equal(count_lines(text), 3);
    assert_null(strstr(text, "abcdef123"));
    assert_null(strstr(text, "not in the file"));
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *record = cJSON_Parse(line);
        assert_non_null(record);
        assert_non_null(cJSON_GetObjectItem(record, "time"));
        cJSON_Delete(record);
    }
    mlxe_debug_report_free(text);

    options.json = false;
    options.min_level = MLXE_LOG_INFO;
    assert_int_equal(mlxe_log_export(&options, &text, &err), MLXE_OK);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, " info  engine    ["));
    assert_non_null(strstr(text, "] two lines\n"));
    mlxe_debug_report_free(text);
    options.since_unix = 4102444800.0; /* 2100-01-01 */
    assert_int_equal(mlxe_log_export(&options, &text, &err), MLXE_OK);
    assert_string_equal(text, "");
    mlxe_debug_report_free(text);

    /* The ring (no file) holds the fourth record too. */
    mlxe_log_export_options_init(&options);
    options.min_level = MLXE_LOG_ERROR;
    assert_int_equal(mlxe_log_export(&options, &text, &err), MLXE_OK);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "not in the file"));
    mlxe_debug_report_free(text);
    assert_int_equal(mlxe_log_export(NULL, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_log_export(NULL, &text, &err), MLXE_OK);
    mlxe_debug_report_free(text);

    /* Bad files. */
    options.file = dir; /* a folder */
    assert_int_not_equal(mlxe_log_export(&options, &text, &err), MLXE_OK);
    snprintf(path, sizeof path, "%s/absent.jsonl", dir);
    options.file = path;
    assert_int_equal(mlxe_log_export(&options, &text, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "absent.jsonl");
    snprintf(path, sizeof path, "%s/no-such-dir/log.jsonl", dir);
    assert_int_equal(mlxe_diag_log_to_file(path, &err), MLXE_ERR_IO);
    assert_message_contains(err.message, "MLXE_LOG_FILE");

    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    unlink(path);
    rmdir(dir);
    mlxe_log_set_filter(NULL);
    mlxe_redact_forget_secrets();
    mlxe_log_set_level_all(MLXE_LOG_INFO);
}

static void test_parsers(void **state) {
    (void)state;
    double t = 0;
    mlxe_error err;
    assert_int_equal(mlxe_diag_parse_since("10m", 10000, &t, &err), MLXE_OK);
    assert_true(t == 9400);
    assert_int_equal(mlxe_diag_parse_since("2h", 10000, &t, &err), MLXE_OK);
    assert_true(t == 10000 - 7200);
    assert_int_equal(mlxe_diag_parse_since("1d", 100000, &t, &err), MLXE_OK);
    assert_true(t == 100000 - 86400);
    assert_int_equal(mlxe_diag_parse_since("1700000000", 0, &t, &err), MLXE_OK);
    assert_true(t == 1700000000);
    /* `date -u -d 2026-11-25T19:00:00Z +%s` = 1795633200 */
    assert_int_equal(mlxe_diag_parse_since("2026-11-25T19:00:00Z", 0, &t, &err), MLXE_OK);
    assert_true(t == 1795633200);
    assert_int_equal(mlxe_diag_parse_since("2026-11-25 19:00:00.5", 0, &t, &err), MLXE_OK);
    assert_true(t == 1795633200.5);
    assert_int_equal(mlxe_diag_parse_since("2026-11-25", 0, &t, &err), MLXE_OK);
    assert_true(t == 1795633200 - 19 * 3600);
    assert_int_equal(mlxe_diag_parse_since("yesterday", 0, &t, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "yesterday");
    assert_int_equal(mlxe_diag_parse_since("10x", 0, &t, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_diag_parse_since("", 0, &t, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_log_level level;
    assert_int_equal(mlxe_diag_parse_level("WARNING", &level, &err), MLXE_OK);
    assert_int_equal(level, MLXE_LOG_WARN);
    assert_int_equal(mlxe_diag_parse_level("trace", &level, &err), MLXE_OK);
    assert_int_equal(level, MLXE_LOG_TRACE);
    assert_int_equal(mlxe_diag_parse_level("loud", &level, &err), MLXE_ERR_INVALID_ARGUMENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments_and_defaults),
        cmocka_unit_test(test_log_sections),
        cmocka_unit_test(test_returned_errors),
        cmocka_unit_test(test_loaded_models),
        cmocka_unit_test(test_gpus_through_nvml),
        cmocka_unit_test(test_log_file_and_export),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
