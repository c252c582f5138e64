/* The hub's small parts without a server: response header parsing (ETag
 * forms, X-Linked-* precedence, Link rel="next", Retry-After and RateLimit,
 * resets across redirects), backoff delays, URL quoting as urllib.parse.quote,
 * and the checks on repo ids, relative paths and commit hashes. */
#include "test_util.h"
#include "hub/hub_internal.h"

static void feed(hub_response *r, const char *line) { hub_response_header_line(r, line, strlen(line)); }

static void test_headers(void **state) {
    (void)state;
    hub_response r;
    memset(&r, 0, sizeof r);
    hub_response_clear(&r);
    feed(&r, "HTTP/1.1 302 Found\r\n");
    feed(&r, "X-Repo-Commit: 0123456789abcdef0123456789abcdef01234567\r\n");
    feed(&r, "ETag: \"pointer-sha1\"\r\n");
    feed(&r, "X-Linked-Etag: \"abc256\"\r\n");
    feed(&r, "X-Linked-Size: 1234\r\n");
    feed(&r, "Content-Length: 0\r\n");
    feed(&r, "Location: https://cdn.example/x\r\n");
    assert_int_equal(r.status, 302);
    assert_string_equal(r.etag, "abc256"); /* the LFS sha256 wins over the pointer's ETag */
    assert_int_equal(r.size, 1234);
    assert_string_equal(r.location, "https://cdn.example/x");
    assert_true(hub_is_commit_hash(r.repo_commit));
    /* A redirect's headers are forgotten at the next status line. */
    feed(&r, "HTTP/1.1 200 OK\r\n");
    assert_null(r.etag);
    assert_null(r.repo_commit);
    feed(&r, "etag: W/\"weak-one\"\r\n");
    feed(&r, "content-length: 99\r\n");
    assert_string_equal(r.etag, "weak-one");
    assert_int_equal(r.size, 99);
    feed(&r, "Link: <https://h/a?p=1>; rel=\"prev\", <https://h/a?p=3>; rel=\"next\"\r\n");
    assert_string_equal(r.link_next, "https://h/a?p=3");
    feed(&r, "X-Error-Code: GatedRepo\r\n");
    feed(&r, "X-Error-Message: Access restricted\r\n");
    assert_string_equal(r.error_code, "GatedRepo");
    assert_string_equal(r.error_message, "Access restricted");
    feed(&r, "RateLimit: \"api\";r=0;t=41\r\n");
    assert_true(r.retry_after_s > 41.9 && r.retry_after_s < 42.1); /* wait t+1 */
    feed(&r, "Retry-After: 7\r\n");
    assert_true(r.retry_after_s > 6.9 && r.retry_after_s < 7.1);
    /* A 3xx Content-Length is not the file's size. */
    feed(&r, "HTTP/1.1 307 Temporary Redirect\r\n");
    feed(&r, "Content-Length: 55\r\n");
    assert_int_equal(r.size, -1);
    hub_response_clear(&r);
}

static void test_retry_delay(void **state) {
    (void)state;
    mlxe_hub hub = {.retry_base_delay_s = 1, .retry_max_delay_s = 8};
    assert_true(hub_retry_delay(&hub, 0, -1) == 1);
    assert_true(hub_retry_delay(&hub, 2, -1) == 4);
    assert_true(hub_retry_delay(&hub, 5, -1) == 8);
    assert_true(hub_retry_delay(&hub, 0, 3) == 3);
    assert_true(hub_retry_delay(&hub, 0, 1000) == 60);
    assert_true(hub_status_retryable(429) && hub_status_retryable(503) && hub_status_retryable(408));
    assert_false(hub_status_retryable(404) || hub_status_retryable(401) || hub_status_retryable(416));
}

static void test_quoting_and_checks(void **state) {
    (void)state;
    char *q = hub_url_quote("refs/pr/1", "");
    assert_string_equal(q, "refs%2Fpr%2F1");
    free(q);
    q = hub_url_quote("sub dir/a+b.json", "/");
    assert_string_equal(q, "sub%20dir/a%2Bb.json");
    free(q);
    assert_true(hub_repo_id_valid("mlx-community/Qwen3-0.6B-4bit"));
    const char *bad_ids[] = {"noslash", "a/b/c", "../x", "a/..", "a/.hidden", "a/b c", "/b", "a/", "a/x..y"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
        if (hub_repo_id_valid(bad_ids[i])) fail_msg("'%s' accepted as a repo id", bad_ids[i]);
    assert_true(hub_relative_path_safe("a/b/c.json"));
    assert_true(hub_relative_path_safe("refs/pr/1"));
    const char *bad_paths[] = {"", "/etc/passwd", "a/../b", "..", "./a", "a//b", "a/", "a\\b"};
    for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++)
        if (hub_relative_path_safe(bad_paths[i])) fail_msg("'%s' accepted as a relative path", bad_paths[i]);
    assert_true(hub_is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
    assert_false(hub_is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
    assert_false(hub_is_commit_hash("main"));
    char *folder = hub_repo_folder("/cache", "org/name");
    assert_string_equal(folder, "/cache/models--org--name");
    free(folder);
    assert_null(hub_repo_folder("/cache", "../escape"));
}

static void test_hashes(void **state) {
    (void)state;
    /* The values `printf "hello\\n" | git hash-object --stdin` and `... | sha256sum` print. */
    hub_hasher *h = hub_hasher_create(false, 6);
    hub_hasher_update(h, "hello\n", 6);
    char hex[65];
    hub_hasher_final(h, hex);
    assert_string_equal(hex, "ce013625030ba8dba906f756967f9e9ca394464a");
    hub_hasher_free(h);
    h = hub_hasher_create(true, 6);
    hub_hasher_update(h, "hel", 3);
    hub_hasher_update(h, "lo\n", 3);
    hub_hasher_final(h, hex);
    assert_string_equal(hex, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
    hub_hasher_free(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_retry_delay),
        cmocka_unit_test(test_quoting_and_checks),
        cmocka_unit_test(test_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
