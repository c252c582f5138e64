/* Tests of secret redaction: token shapes, Bearer credentials, URL user info
 * and query parameters, secrets from the environment and the token files,
 * the log filter, and the debug report built with secrets all around. */
#include "test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "diag/redact.h"
#include "mlxengine/mlxengine.h"

/* A token of the real shape: hf_ + 34 letters and digits. */
#define TOKEN_ENV "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567"
#define TOKEN_FILE "hf_FileTokenFileToken0123456789abcdef"
#define TOKEN_STORED "hf_StoredStoredStored0123456789abcdef"
/* Lower-case letters only: no shape rule catches it, only the token file does. */
#define TOKEN_HOME "hf_tokenfromthehomefolderonlyxx"
/* A secret with no recognisable shape: only registration can catch it. */
#define PLAIN_SECRET "correct-horse-battery-staple"

static char *redact(const char *text) {
    char *out = mlxe_redact_dup(text);
    assert_non_null(out);
    return out;
}

static void assert_redacted(const char *input, const char *secret, const char *kept) {
    char *out = redact(input);
    if (strstr(out, secret)) fail_msg("secret '%s' survived in '%s'", secret, out);
    if (kept && !strstr(out, kept)) fail_msg("'%s' lost '%s' (was '%s')", out, kept, input);
    assert_non_null(strstr(out, "[REDACTED]"));
    free(out);
}

static void assert_unchanged(const char *input) {
    char *out = redact(input);
    assert_string_equal(out, input);
    free(out);
}

static void test_token_shapes(void **state) {
    (void)state;
    assert_redacted("token is " TOKEN_ENV " ok", TOKEN_ENV, "token is ");
    assert_redacted("x" TOKEN_ENV, TOKEN_ENV, NULL);
    /* A token cut by truncation still goes. */
    assert_redacted("cut hf_AbCdEfGh1", "hf_AbCdEfGh1", "cut ");
    assert_redacted("api_org_abcdefghijklmnopqrstu1", "api_org_abcdefghijklmnopqrstu1", NULL);
    assert_redacted("key sk-proj-abcdefghijklmnop12345", "sk-proj-abcdefghijklmnop12345", "key ");
    /* Ordinary words and environment names stay. */
    assert_unchanged("hf_transformers and hf_hub_download, HF_HUB_DISABLE_PROGRESS_BARS=1");
    assert_unchanged("eos_token: </s> bos_token=<s> n_tokens=42 max_new_tokens=8");
    /* Log lines about tensors name keys; only secret-named keys are redacted. */
    assert_unchanged("key=model.layers.0.mlp.up_proj.weight pass=2 keys: 291");
    assert_unchanged("https://huggingface.co/api/models?search=llama&limit=5");
}

static void test_bearer_and_headers(void **state) {
    (void)state;
    assert_redacted("authorization: Bearer abc.def-ghi", "abc.def-ghi", "Bearer ");
    assert_redacted("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Basic ");
    assert_redacted("curl -H 'Authorization: bearer s3cr3t-v4lue'", "s3cr3t-v4lue", "bearer");
    assert_redacted("{\"Authorization\": \"Bearer zzzzzzzz\"}", "zzzzzzzz", "Bearer");
    assert_redacted("Authorization: token ghx0123abc", "ghx0123abc", "Authorization: token ");
    assert_redacted("proxy-authorization: Digest username", "username", "Digest ");
}

static void test_urls_and_assignments(void **state) {
    (void)state;
    assert_redacted("GET https://user:hunter22@example.com/path", "hunter22", "example.com/path");
    assert_redacted("proxy http://alice:pa@ss@proxy:3128 failed", "pa@ss", "proxy:3128 failed");
    assert_redacted("https://h.co/x?token=abc123456&limit=5", "abc123456", "&limit=5");
    assert_redacted("https://h.co/x?api_key=K3Y&x=1", "K3Y", "&x=1");
    assert_redacted("https://h.co/x?limit=1&access_token=zz99zz", "zz99zz", "?limit=1&");
    assert_redacted("password=swordfish next", "swordfish", " next");
    assert_redacted("OPENAI_API_KEY=abcdef", "abcdef", "OPENAI_API_KEY=");
    assert_redacted("{\"hf_token\": \"s3cr3tvalue\", \"n\": 1}", "s3cr3tvalue", "\"n\": 1}");
    assert_redacted("GITHUB_TOKEN: ghs_xyzxyzxyz", "ghs_xyzxyzxyz", NULL);
    /* A path to a token is not a secret. */
    assert_unchanged("HF_TOKEN_PATH=/home/u/.cache/huggingface/token");
    assert_unchanged("https://example.com:8080/x y@z");
}

static void test_snprintf_contract(void **state) {
    (void)state;
    const char *input = "a " TOKEN_ENV " b";
    size_t needed = mlxe_redact_secrets(input, NULL, 0);
    assert_int_equal(needed, strlen("a [REDACTED] b"));
    char small[6];
    assert_int_equal(mlxe_redact_secrets(input, small, sizeof small), needed);
    assert_string_equal(small, "a [RE");
    char exact[64];
    mlxe_redact_secrets(input, exact, sizeof exact);
    assert_string_equal(exact, "a [REDACTED] b");
    assert_int_equal(mlxe_redact_secrets(NULL, exact, sizeof exact), 0);
    assert_string_equal(exact, "");
    /* In place with a capacity smaller than the result: cut, never a token. */
    char buffer[16];
    snprintf(buffer, sizeof buffer, "%s", "x hf_A1b2C3d4E5");
    mlxe_redact_in_place(buffer, sizeof buffer);
    assert_string_equal(buffer, "x [REDACTED]");
}

static void test_registered_secrets(void **state) {
    (void)state;
    mlxe_error err;
    assert_int_equal(mlxe_redact_add_secret(NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_redact_add_secret("  " PLAIN_SECRET "\n", &err), MLXE_OK);
    assert_int_equal(mlxe_redact_add_secret("abc", &err), MLXE_OK); /* too short: ignored */
    assert_redacted("value " PLAIN_SECRET "!", PLAIN_SECRET, "value ");
    assert_unchanged("abc abc");
    /* Past 32 values the oldest is forgotten, the newest kept. */
    for (int i = 0; i < 40; i++) {
        char value[32];
        snprintf(value, sizeof value, "secret-number-%02d", i);
        assert_int_equal(mlxe_redact_add_secret(value, &err), MLXE_OK);
    }
    assert_redacted("x secret-number-39 y", "secret-number-39", "x ");
    mlxe_redact_forget_secrets();
    assert_unchanged("value " PLAIN_SECRET "!");
}

/* Secrets in the environment, in HF_TOKEN_PATH and in HF_HOME/stored_tokens
 * never reach the log ring nor a report. */
static void test_environment_token_files_log_and_report(void **state) {
    (void)state;
    char dir[64];
    test_make_temp_dir(dir, sizeof dir);
    char token_path[128], stored_path[128];
    snprintf(token_path, sizeof token_path, "%s/my-token", dir);
    snprintf(stored_path, sizeof stored_path, "%s/stored_tokens", dir);
    test_write_file(token_path, TOKEN_FILE "\n", strlen(TOKEN_FILE) + 1);
    const char *stored = "[work]\nhf_token = " TOKEN_STORED "\n";
    test_write_file(stored_path, stored, strlen(stored));
    setenv("HF_HOME", dir, 1);
    setenv("HF_TOKEN_PATH", token_path, 1);
    setenv("HF_TOKEN", TOKEN_ENV, 1);
    setenv("MLXE_TEST_DB_PASSWORD", PLAIN_SECRET, 1);
    setenv("HF_ENDPOINT", "https://bob:b0bspass@hub.example/", 1);
    setenv("PWD", "/a/working/folder/of/mine", 1); /* a folder, not a password */
    mlxe_diag_install_redaction();

    mlxe_log_set_level_all(MLXE_LOG_INFO);
    mlxe_log_clear_recent();
    mlxe_log_write(MLXE_LOG_WARN, MLXE_LOG_CAT_HUB, "env %s file %s stored %s plain %s",
                   TOKEN_ENV, TOKEN_FILE, TOKEN_STORED, PLAIN_SECRET);
    mlxe_log_write(MLXE_LOG_ERROR, MLXE_LOG_CAT_HUB,
                   "GET https://h.co/resolve/main/x?token=qqq111 with header Authorization: Bearer %s",
                   "opaque-credential");
    mlxe_log_record records[4];
    size_t n = mlxe_log_recent(records, 4);
    assert_int_equal(n, 2);
    const char *secrets_list[] = {TOKEN_ENV, TOKEN_FILE, TOKEN_STORED, PLAIN_SECRET, "qqq111",
                                  "opaque-credential", "b0bspass"};
    for (size_t r = 0; r < n; r++)
        for (size_t s = 0; s < sizeof secrets_list / sizeof secrets_list[0]; s++)
            if (strstr(records[r].message, secrets_list[s]))
                fail_msg("log record '%s' keeps '%s'", records[r].message, secrets_list[s]);
    assert_non_null(strstr(records[1].message, "Bearer [REDACTED]"));
    mlxe_log_write(MLXE_LOG_WARN, MLXE_LOG_CAT_GENERAL, "in /a/working/folder/of/mine with pwd=hunter2hunter2");
    assert_int_equal(mlxe_log_recent(records, 1), 1);
    assert_non_null(strstr(records[0].message, "in /a/working/folder/of/mine with pwd=[REDACTED]"));

    /* Errors returned to callers are kept redacted as well. */
    mlxe_recent_errors_clear();
    mlxe_error returned;
    mlxe_error_set(&returned, MLXE_ERR_NETWORK, "env %s file %s stored %s plain %s", TOKEN_ENV, TOKEN_FILE,
                   TOKEN_STORED, PLAIN_SECRET);
    mlxe_error_record error_records[2];
    assert_int_equal(mlxe_recent_errors(error_records, 2), 1);
    for (size_t s = 0; s < sizeof secrets_list / sizeof secrets_list[0]; s++)
        if (strstr(error_records[0].message, secrets_list[s]))
            fail_msg("error record '%s' keeps '%s'", error_records[0].message, secrets_list[s]);

    for (int format = 0; format < 2; format++) {
        mlxe_debug_report_options options;
        mlxe_debug_report_options_init(&options);
        options.format = format ? MLXE_REPORT_JSON : MLXE_REPORT_MARKDOWN;
        options.probe_gpus = false;
        char *report = NULL;
        mlxe_error err;
        assert_int_equal(mlxe_debug_report(&options, &report, &err), MLXE_OK);
        for (size_t s = 0; s < sizeof secrets_list / sizeof secrets_list[0]; s++)
            if (strstr(report, secrets_list[s])) fail_msg("report keeps '%s'", secrets_list[s]);
        /* The variables are listed, their values hidden. */
        /* Markdown escapes the underscores. */
        assert_non_null(strstr(report, format ? "\"HF_TOKEN\"" : "HF\\_TOKEN |"));
        assert_non_null(strstr(report, format ? "MLXE_TEST_DB_PASSWORD" : "MLXE\\_TEST\\_DB\\_PASSWORD"));
        assert_non_null(strstr(report, token_path));
        mlxe_debug_report_free(report);
    }
    mlxe_debug_report_free(NULL);

    /* Without HF_TOKEN_PATH the token file is HF_HOME/token. */
    char default_token_path[128];
    snprintf(default_token_path, sizeof default_token_path, "%s/token", dir);
    test_write_file(default_token_path, TOKEN_HOME, strlen(TOKEN_HOME));
    unsetenv("HF_TOKEN_PATH");
    mlxe_diag_install_redaction();
    mlxe_log_clear_recent();
    mlxe_log_write(MLXE_LOG_WARN, MLXE_LOG_CAT_HUB, "home token %s", TOKEN_HOME);
    assert_int_equal(mlxe_log_recent(records, 1), 1);
    assert_string_equal(records[0].message, "home token [REDACTED]");
    unlink(default_token_path);

    mlxe_log_set_filter(NULL);
    mlxe_redact_forget_secrets();
    unsetenv("HF_HOME");
    unsetenv("HF_TOKEN_PATH");
    unsetenv("HF_TOKEN");
    unsetenv("MLXE_TEST_DB_PASSWORD");
    unsetenv("HF_ENDPOINT");
    unlink(token_path);
    unlink(stored_path);
    rmdir(dir);
}

/* Whatever the bytes, redaction terminates, stays in bounds and leaves no
 * registered secret. */
static void test_random_input(void **state) {
    (void)state;
    mlxe_redact_add_secret(PLAIN_SECRET, NULL);
    unsigned seed = 12345;
    const char *pieces[] = {"hf_", "Bearer ", "://", "@", "token=", "\"", "'", ":", "=", " ",
                            PLAIN_SECRET, "A1", "&", "?", "\\", "\xc3\xa9", "key"};
    size_t n_pieces = sizeof pieces / sizeof pieces[0];
    for (int iter = 0; iter < 2000; iter++) {
        char input[256] = "";
        size_t len = 0;
        while (len < 200) {
            seed = seed * 1103515245u + 12345u;
            const char *piece = pieces[(seed >> 16) % n_pieces];
            size_t pl = strlen(piece);
            memcpy(input + len, piece, pl);
            len += pl;
        }
        input[len] = '\0';
        char out[64];
        size_t needed = mlxe_redact_secrets(input, out, sizeof out);
        assert_true(strlen(out) == (needed < sizeof out ? needed : sizeof out - 1));
        char *full = redact(input);
        assert_int_equal(strlen(full), needed);
        assert_null(strstr(full, PLAIN_SECRET));
        free(full);
    }
    mlxe_redact_forget_secrets();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_shapes),
        cmocka_unit_test(test_bearer_and_headers),
        cmocka_unit_test(test_urls_and_assignments),
        cmocka_unit_test(test_snprintf_contract),
        cmocka_unit_test(test_registered_secrets),
        cmocka_unit_test(test_environment_token_files_log_and_report),
        cmocka_unit_test(test_random_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
