/* Snapshot and single-file downloads against the fake hub (tests/hub/fake_hub.py):
 * the cache layout of HUB.md §3, resume within and across runs (checked through
 * the Range header the server received), stall and retry handling, verification
 * (a mismatch deletes the file and nothing appears under snapshots/), cache-only
 * answers with no request, the token sent to the hub but not the CDN host. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "test_util.h"
#include "hub/fake_hub.h"
#include "base/file.h"
#include "hub/hub_internal.h"
#include "mlxengine/mlxengine.h"

static fake_hub server;
static char cache[256];

static int setup_all(void **state) {
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return fake_hub_start(&server, NULL, NULL);
}

static int teardown_all(void **state) {
    (void)state;
    fake_hub_stop(&server);
    return 0;
}

static int setup_one(void **state) {
    (void)state;
    fake_hub_reset(&server);
    test_make_temp_dir(cache, sizeof cache);
    return 0;
}

static int teardown_one(void **state) {
    (void)state;
    fake_hub_remove_tree(cache);
    return 0;
}

static mlxe_hub *make_hub(const char *token, int max_retries) {
    mlxe_hub_options o;
    mlxe_hub_options_init(&o);
    o.endpoint = server.endpoint;
    o.cache_dir = cache;
    o.token = token ? token : "";
    o.offline = 0;
    o.max_retries = max_retries;
    o.retry_base_delay_s = 0.05;
    o.retry_max_delay_s = 0.2;
    o.stall_timeout_s = 1;
    o.etag_timeout_s = 5;
    mlxe_hub *hub = NULL;
    mlxe_error err;
    if (mlxe_hub_create(&o, &hub, &err) != MLXE_OK) fail_msg("%s", err.message);
    return hub;
}

static char *commit_of(const char *repo, const char *rev) {
    char path[256];
    snprintf(path, sizeof path, "/api/models/%s/revision/%s", repo, rev);
    char *text = fake_hub_request(&server, "GET", path, NULL, NULL);
    cJSON *j = cJSON_Parse(text);
    char *sha = strdup(cJSON_GetObjectItem(j, "sha")->valuestring);
    cJSON_Delete(j);
    free(text);
    return sha;
}

/* The server's bytes of a file (the oracle for what we stored). */
static char *server_file(const char *repo, const char *file, size_t *size) {
    char path[512];
    snprintf(path, sizeof path, "/%s/resolve/main/%s", repo, file);
    return fake_hub_request(&server, "GET", path, NULL, size);
}

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    if (n && fread(data, 1, (size_t)n, f) != (size_t)n) n = 0;
    fclose(f);
    *size = (size_t)n;
    return data;
}

static void assert_same_as_server(const char *snapshot, const char *repo, const char *file) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", snapshot, file);
    size_t a_size = 0, b_size = 0;
    char *a = read_file(path, &a_size);
    char *b = server_file(repo, file, &b_size);
    if (!a) fail_msg("%s missing", path);
    assert_int_equal(a_size, b_size);
    assert_memory_equal(a, b, a_size);
    free(a);
    free(b);
}

static bool exists_l(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The Range headers the server saw on requests whose path contains needle. */
static int count_ranges(const char *needle, const char *range) {
    cJSON *log = fake_hub_log(&server);
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log) {
        const char *path = cJSON_GetObjectItem(e, "path")->valuestring;
        const cJSON *r = cJSON_GetObjectItem(cJSON_GetObjectItem(e, "headers"), "range");
        if (strstr(path, needle) && ((range == NULL && r == NULL) || (range && r && strcmp(r->valuestring, range) == 0)))
            n++;
    }
    cJSON_Delete(log);
    return n;
}

static void test_snapshot_layout(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub(NULL, 3);
    char *snap = NULL;
    mlxe_error err;
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", &o, &snap, &err), MLXE_OK);
    char *commit = commit_of("org/tiny-mlx", "main");
    char expect[PATH_MAX], path[PATH_MAX];
    snprintf(expect, sizeof expect, "%s/models--org--tiny-mlx/snapshots/%s", cache, commit);
    assert_string_equal(snap, expect);
    /* mlx-lm's default patterns: these in, README/onnx out. */
    const char *in[] = {"config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                        "model.safetensors", "extra/notes.txt"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) assert_same_as_server(snap, "org/tiny-mlx", in[i]);
    snprintf(path, sizeof path, "%s/README.md", snap);
    assert_false(exists_l(path));
    snprintf(path, sizeof path, "%s/onnx/model.onnx", snap);
    assert_false(exists_l(path));
    /* Relative links into blobs/, one more ../ per subfolder. */
    char target[256];
    snprintf(path, sizeof path, "%s/config.json", snap);
    ssize_t n = readlink(path, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = 0;
    assert_true(strncmp(target, "../../blobs/", 12) == 0);
    assert_int_equal(strlen(target), 12 + 40);
    snprintf(path, sizeof path, "%s/extra/notes.txt", snap);
    n = readlink(path, target, sizeof target - 1);
    target[n] = 0;
    assert_true(strncmp(target, "../../../blobs/", 15) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", snap);
    n = readlink(path, target, sizeof target - 1);
    target[n] = 0;
    assert_int_equal(strlen(target), 12 + 64); /* the LFS sha256 */
    /* refs/main holds the commit, no newline. */
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/refs/main", cache);
    size_t size = 0;
    char *ref = read_file(path, &size);
    assert_int_equal(size, 40);
    assert_memory_equal(ref, commit, 40);
    free(ref);
    snprintf(path, sizeof path, "%s/CACHEDIR.TAG", cache);
    char *tag = read_file(path, &size);
    assert_non_null(tag);
    assert_true(strncmp(tag, "Signature: 8a477f597d28d172789f06886806bc55", 43) == 0);
    free(tag);
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/trees/%s.json", cache, commit);
    assert_true(exists_l(path));
    snprintf(path, sizeof path, "%s/.locks/models--org--tiny-mlx", cache);
    assert_true(mlxe_dir_exists(path));
    /* No leftovers. */
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs/%s.incomplete", cache, target + 12);
    assert_false(exists_l(path));
    free(commit);
    free(snap);
    mlxe_hub_free(hub);
}

static void test_cached_commit_and_offline_make_no_request(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub(NULL, 3);
    char *snap = NULL, *again = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    char *commit = commit_of("org/tiny-mlx", "main");
    fake_hub_reset(&server);
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.revision = commit;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", &o, &again, &err), MLXE_OK);
    assert_string_equal(snap, again);
    free(again);
    char *file = NULL;
    assert_int_equal(mlxe_hub_download_file(hub, "org/tiny-mlx", commit, "config.json", &file, &err), MLXE_OK);
    free(file);
    assert_int_equal(fake_hub_request_count(&server), 0);
    mlxe_hub_free(hub);

    /* Offline: resolved through refs/main, no request at all. */
    mlxe_hub_options ho;
    mlxe_hub_options_init(&ho);
    ho.endpoint = server.endpoint;
    ho.cache_dir = cache;
    ho.offline = 1;
    assert_int_equal(mlxe_hub_create(&ho, &hub, &err), MLXE_OK);
    assert_true(mlxe_hub_is_offline(hub));
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &again, &err), MLXE_OK);
    assert_string_equal(snap, again);
    free(again);
    assert_int_equal(mlxe_hub_download_file(hub, "org/tiny-mlx", "main", "config.json", &file, &err), MLXE_OK);
    free(file);
    assert_int_equal(mlxe_hub_cache_resolve(hub, "org/tiny-mlx", NULL, &again, &err), MLXE_OK);
    assert_string_equal(snap, again);
    free(again);
    /* Offline with nothing cached: an error that names the model and the mode. */
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/sharded", NULL, &again, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "org/sharded");
    assert_message_contains(err.message, "HF_HUB_OFFLINE");
    assert_int_equal(fake_hub_request_count(&server), 0);
    free(commit);
    free(snap);
    mlxe_hub_free(hub);
}

static void test_resume_within_run(void **state) {
    (void)state;
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"drop\",\"after_bytes\":100000}]");
    mlxe_hub *hub = make_hub(NULL, 3);
    char *snap = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    /* One full request cut at 100000, then one from byte 100000: < 2x the file. */
    assert_int_equal(count_ranges("/cdn/", "bytes=100000-"), 1);
    assert_int_equal(count_ranges("/cdn/", NULL), 1);
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    free(snap);
    mlxe_hub_free(hub);
}

static void test_resume_across_runs(void **state) {
    (void)state;
    /* First run: every attempt dies after 120000 bytes, so it gives up. */
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"drop\",\"after_bytes\":120000,\"times\":1},"
                             "{\"match\":\"/cdn/\",\"kind\":\"status\",\"status\":500,\"times\":5,\"skip\":1}]");
    mlxe_hub *hub = make_hub(NULL, 2);
    char *snap = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_ERR_NETWORK);
    assert_null(snap);
    mlxe_hub_free(hub);
    /* Nothing half-written under snapshots/: the weights are not linked. */
    char *commit = commit_of("org/tiny-mlx", "main");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/snapshots/%s/model.safetensors", cache, commit);
    assert_false(exists_l(path));
    fake_hub_reset(&server);
    /* Second run, a new client: continues at byte 120000. */
    hub = make_hub(NULL, 3);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    assert_int_equal(count_ranges("/cdn/", "bytes=120000-"), 1);
    assert_int_equal(count_ranges("/cdn/", NULL), 0);
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    free(snap);
    free(commit);
    mlxe_hub_free(hub);
}

static void test_stall_reconnects(void **state) {
    (void)state;
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"stall\",\"after_bytes\":50000,\"seconds\":8}]");
    mlxe_hub *hub = make_hub(NULL, 3);
    char *snap = NULL;
    mlxe_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 6); /* did not wait for the stalled server */
    assert_int_equal(count_ranges("/cdn/", "bytes=50000-"), 1);
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    free(snap);
    mlxe_hub_free(hub);
}

static void test_retries_5xx_and_429(void **state) {
    (void)state;
    fake_hub_faults(&server,
                    "[{\"match\":\"/api/models/org/tiny-mlx\",\"kind\":\"status\",\"status\":503,\"times\":2},"
                    "{\"match\":\"/resolve/\",\"kind\":\"status\",\"status\":429,\"times\":1,"
                    "\"headers\":{\"Retry-After\":\"1\",\"RateLimit\":\"\\\"api\\\";r=0;t=0\"}}]");
    mlxe_hub *hub = make_hub(NULL, 4);
    char *snap = NULL;
    mlxe_error err;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    assert_true(elapsed >= 0.95); /* Retry-After: 1 was honoured */
    assert_same_as_server(snap, "org/tiny-mlx", "config.json");
    free(snap);
    mlxe_hub_free(hub);
}

static void test_wrong_bytes_deleted_never_linked(void **state) {
    (void)state;
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"wrong\",\"times\":10}]");
    mlxe_hub *hub = make_hub(NULL, 3);
    char *snap = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "model.safetensors");
    assert_message_contains(err.message, "sha256");
    assert_message_contains(err.message, "deleted");
    char *commit = commit_of("org/tiny-mlx", "main");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/snapshots/%s/model.safetensors", cache, commit);
    assert_false(exists_l(path));
    /* No blob and no partial file with the bad bytes stays. */
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs", cache);
    DIR *d = opendir(path);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strlen(e->d_name) >= 64) fail_msg("a blob of the weights stayed: %s", e->d_name);
    closedir(d);
    mlxe_hub_free(hub);
    fake_hub_reset(&server);
    /* A regular file: git blob sha1. */
    fake_hub_faults(&server, "[{\"match\":\"config.json\",\"kind\":\"wrong\",\"times\":10}]");
    hub = make_hub(NULL, 3);
    char *file = NULL;
    assert_int_equal(mlxe_hub_download_file(hub, "org/sharded", NULL, "config.json", &file, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "git blob sha1");
    assert_null(file);
    free(commit);
    mlxe_hub_free(hub);
}

static void test_range_ignored_restarts(void **state) {
    (void)state;
    /* A partial file from an earlier run, and a server that ignores Range. */
    char *commit = commit_of("org/tiny-mlx", "main");
    mlxe_hub *hub = make_hub(NULL, 3);
    mlxe_hub_file_list *files = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_list_files(hub, "org/tiny-mlx", "main", &files, &err), MLXE_OK);
    const char *sha = NULL;
    for (size_t i = 0; i < files->n_files; i++)
        if (strcmp(files->files[i].path, "model.safetensors") == 0) sha = files->files[i].lfs_sha256;
    assert_non_null(sha);
    size_t size = 0;
    char *data = server_file("org/tiny-mlx", "model.safetensors", &size);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs", cache);
    assert_int_equal(hub_mkdirs(path, NULL), MLXE_OK);
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs/%s.incomplete", cache, sha);
    test_write_file(path, data, 1000);
    free(data);
    fake_hub_reset(&server);
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"ignore_range\",\"times\":5}]");
    char *snap = NULL;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    assert_int_equal(count_ranges("/cdn/", "bytes=1000-"), 1);
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    free(snap);
    free(commit);
    mlxe_hub_file_list_free(files);
    mlxe_hub_free(hub);
}

static void test_bad_partial_file_redownloaded(void **state) {
    (void)state;
    /* An .incomplete from an earlier run whose bytes are wrong: caught by the
     * hash at the end, then fetched once more from byte 0. */
    mlxe_hub *hub = make_hub(NULL, 3);
    mlxe_hub_file_list *files = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_list_files(hub, "org/tiny-mlx", "main", &files, &err), MLXE_OK);
    const char *sha = NULL;
    for (size_t i = 0; i < files->n_files; i++)
        if (strcmp(files->files[i].path, "model.safetensors") == 0) sha = files->files[i].lfs_sha256;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs", cache);
    assert_int_equal(hub_mkdirs(path, NULL), MLXE_OK);
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs/%s.incomplete", cache, sha);
    char garbage[5000];
    memset(garbage, 'x', sizeof garbage);
    test_write_file(path, garbage, sizeof garbage);
    mlxe_hub_file_list_free(files);
    fake_hub_reset(&server);
    char *snap = NULL;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    assert_int_equal(count_ranges("/cdn/", "bytes=5000-"), 1);
    assert_int_equal(count_ranges("/cdn/", NULL), 1);
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    free(snap);
    mlxe_hub_free(hub);
}

static void test_errors_in_words(void **state) {
    (void)state;
    mlxe_error err;
    char *snap = NULL;
    mlxe_hub *anon = make_hub(NULL, 2);
    assert_int_equal(mlxe_hub_snapshot_download(anon, "org/gated", NULL, &snap, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "org/gated");
    assert_message_contains(err.message, "gated");
    assert_message_contains(err.message, "request access");
    assert_message_contains(err.message, "HF_TOKEN");
    assert_int_equal(mlxe_hub_snapshot_download(anon, "org/missing", NULL, &snap, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "org/missing");
    assert_message_contains(err.message, "private");
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.revision = "no-such-branch";
    assert_int_equal(mlxe_hub_snapshot_download(anon, "org/tiny-mlx", &o, &snap, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "no-such-branch");
    assert_message_contains(err.message, "org/tiny-mlx");
    char *file = NULL;
    assert_int_equal(mlxe_hub_download_file(anon, "org/tiny-mlx", NULL, "nope.bin", &file, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "nope.bin");
    char *commit = commit_of("org/tiny-mlx", "main");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/.no_exist/%s/nope.bin", cache, commit);
    assert_true(exists_l(path));
    /* Bad ids and file names are refused before any request. */
    assert_int_equal(mlxe_hub_snapshot_download(anon, "../etc", NULL, &snap, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_int_equal(mlxe_hub_download_file(anon, "org/tiny-mlx", NULL, "../x", &file, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_hub_free(anon);

    mlxe_hub *notlisted = make_hub("hf_notlisted", 2);
    assert_int_equal(mlxe_hub_snapshot_download(notlisted, "org/gated", NULL, &snap, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "access list");
    assert_int_equal(mlxe_hub_snapshot_download(notlisted, "org/missing", NULL, &snap, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "not found");
    mlxe_hub_free(notlisted);

    mlxe_hub *bad = make_hub("hf_bad_token_value", 2);
    assert_int_equal(mlxe_hub_snapshot_download(bad, "org/tiny-mlx", NULL, &snap, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "invalid");
    assert_null(strstr(err.message, "hf_bad_token_value"));
    mlxe_hub_free(bad);

    mlxe_hub *good = make_hub("hf_good", 2);
    assert_int_equal(mlxe_hub_snapshot_download(good, "org/gated", NULL, &snap, &err), MLXE_OK);
    free(snap);
    mlxe_hub_free(good);

    /* A server that keeps failing: the error says so. */
    fake_hub_faults(&server, "[{\"match\":\"/api/\",\"kind\":\"status\",\"status\":503,\"times\":10}]");
    mlxe_hub *hub = make_hub(NULL, 2);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/sharded", NULL, &snap, &err), MLXE_ERR_NETWORK);
    assert_message_contains(err.message, "503");
    fake_hub_reset(&server);
    /* An answer without X-Repo-Commit. */
    fake_hub_faults(&server, "[{\"match\":\"/resolve/\",\"kind\":\"no_commit\",\"times\":1}]");
    assert_int_equal(mlxe_hub_download_file(hub, "org/sharded", NULL, "config.json", &file, &err), MLXE_ERR_NETWORK);
    assert_message_contains(err.message, "X-Repo-Commit");
    free(commit);
    mlxe_hub_free(hub);
}

static void test_cache_fallback_when_hub_fails(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub(NULL, 2);
    char *snap = NULL, *again = NULL, *file = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    fake_hub_faults(&server, "[{\"match\":\"/\",\"kind\":\"status\",\"status\":503,\"times\":100}]");
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &again, &err), MLXE_OK);
    assert_string_equal(snap, again);
    assert_int_equal(mlxe_hub_download_file(hub, "org/tiny-mlx", "main", "config.json", &file, &err), MLXE_OK);
    free(file);
    free(again);
    free(snap);
    mlxe_hub_free(hub);
}

static void test_token_to_hub_only_and_head_headers(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub("hf_good", 2);
    char *file = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_download_file(hub, "org/tiny-mlx", NULL, "model.safetensors", &file, &err), MLXE_OK);
    free(file);
    cJSON *log = fake_hub_log(&server);
    int hub_auth = 0, cdn = 0, heads = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, log) {
        const cJSON *h = cJSON_GetObjectItem(e, "headers");
        const char *host = cJSON_GetObjectItem(e, "host")->valuestring;
        const cJSON *auth = cJSON_GetObjectItem(h, "authorization");
        if (strncmp(host, "localhost", 9) == 0) {
            cdn++;
            assert_null(auth);
        } else {
            assert_non_null(auth);
            assert_string_equal(auth->valuestring, "Bearer hf_good");
            hub_auth++;
        }
        if (strcmp(cJSON_GetObjectItem(e, "method")->valuestring, "HEAD") == 0) {
            heads++;
            assert_string_equal(cJSON_GetObjectItem(h, "accept-encoding")->valuestring, "identity");
        }
    }
    assert_true(cdn >= 1);
    assert_true(hub_auth >= 2);
    assert_int_equal(heads, 1);
    cJSON_Delete(log);
    mlxe_hub_free(hub);
}

typedef struct progress_seen {
    int calls;
    mlxe_hub_progress last;
    mlxe_cancel *cancel_after_first;
    bool monotonic;
    uint64_t previous;
    int file_updates; /* calls naming a file, with its bytes within its size */
    bool bad_file_bytes;
} progress_seen;

static void on_progress(void *user, const mlxe_hub_progress *p) {
    progress_seen *seen = user;
    seen->calls++;
    if (p->done_bytes < seen->previous) seen->monotonic = false;
    seen->previous = p->done_bytes;
    if (p->file_path) {
        seen->file_updates++;
        if (p->file_done > p->file_size) seen->bad_file_bytes = true;
    }
    if (p->total_bytes < p->done_bytes || p->n_files_done > p->n_files) seen->monotonic = false;
    seen->last = *p;
    if (seen->cancel_after_first) mlxe_cancel_request(seen->cancel_after_first);
}

static void test_progress_and_cancel(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub(NULL, 2);
    progress_seen seen = {.monotonic = true};
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.progress = on_progress;
    o.progress_user = &seen;
    char *snap = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/sharded", &o, &snap, &err), MLXE_OK);
    mlxe_hub_file_list *files = NULL;
    assert_int_equal(mlxe_hub_list_files(hub, "org/sharded", "main", &files, &err), MLXE_OK);
    uint64_t total = 0;
    for (size_t i = 0; i < files->n_files; i++) total += (uint64_t)files->files[i].size;
    mlxe_hub_file_list_free(files);
    assert_true(seen.calls >= 2);
    assert_true(seen.monotonic);
    assert_true(seen.last.finished);
    assert_true(seen.file_updates >= 5); /* at least each file's completion */
    assert_false(seen.bad_file_bytes);
    assert_true(seen.last.bytes_per_second >= 0);
    assert_int_equal(seen.last.total_bytes, total); /* every file matches the defaults */
    assert_int_equal(seen.last.done_bytes, total);
    assert_int_equal(seen.last.n_files, 5);
    assert_int_equal(seen.last.n_files_done, 5);
    free(snap);

    /* Cancel from the callback while a slow file is in flight: partial files stay. */
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"slow\",\"delay\":0.2,\"times\":3}]");
    mlxe_cancel *cancel = mlxe_cancel_create();
    progress_seen seen2 = {.monotonic = true, .cancel_after_first = cancel};
    o.progress_user = &seen2;
    o.cancel = cancel;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", &o, &snap, &err), MLXE_ERR_CANCELLED);
    assert_message_contains(err.message, "cancelled");
    assert_null(snap);
    mlxe_cancel_free(cancel);
    mlxe_hub_free(hub);
}

static void test_gguf_quant_and_revisions(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub(NULL, 2);
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.gguf_quant = "q4_k_m";
    char *snap = NULL, path[PATH_MAX];
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-gguf", &o, &snap, &err), MLXE_OK);
    snprintf(path, sizeof path, "%s/tiny-Q4_K_M.gguf", snap);
    assert_true(exists_l(path));
    snprintf(path, sizeof path, "%s/tiny-Q8_0.gguf", snap);
    assert_false(exists_l(path));
    free(snap);
    o.gguf_quant = "Q5_K_S";
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-gguf", &o, &snap, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "Q5_K_S");

    /* A pull-request ref: quoted as refs%2Fpr%2F1 and stored as refs/refs/pr/1. */
    fake_hub_reset(&server);
    mlxe_hub_download_options_init(&o);
    o.revision = "refs/pr/1";
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", &o, &snap, &err), MLXE_OK);
    char *commit = commit_of("org/tiny-mlx", "v1");
    assert_non_null(strstr(snap, commit));
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/refs/refs/pr/1", cache);
    assert_true(exists_l(path));
    cJSON *log = fake_hub_log(&server);
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "path")->valuestring,
                           "/revision/refs%2Fpr%2F1"));
    cJSON_Delete(log);
    free(commit);
    free(snap);
    /* A renamed repo answers 307 with a relative Location: followed. */
    mlxe_hub_model *info = NULL;
    assert_int_equal(mlxe_hub_model_info(hub, "org/old-name", NULL, false, &info, &err), MLXE_OK);
    assert_string_equal(info->id, "org/tiny-mlx");
    mlxe_hub_model_free(info);
    char *file = NULL;
    assert_int_equal(mlxe_hub_download_file(hub, "org/old-name", NULL, "config.json", &file, &err), MLXE_OK);
    free(file);
    mlxe_hub_free(hub);
}

static void test_two_processes_one_copy(void **state) {
    (void)state;
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"slow\",\"delay\":0.02,\"times\":2}]");
    pid_t children[2];
    for (int i = 0; i < 2; i++) {
        children[i] = fork();
        if (children[i] == 0) {
            mlxe_hub *hub = make_hub(NULL, 3);
            char *snap = NULL;
            mlxe_error err;
            mlxe_status s = mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err);
            free(snap);
            mlxe_hub_free(hub);
            _exit(s == MLXE_OK ? 0 : 1);
        }
    }
    for (int i = 0; i < 2; i++) {
        int status = 0;
        waitpid(children[i], &status, 0);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    char *commit = commit_of("org/tiny-mlx", "main");
    char snap[PATH_MAX], path[PATH_MAX];
    snprintf(snap, sizeof snap, "%s/models--org--tiny-mlx/snapshots/%s", cache, commit);
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/blobs", cache);
    DIR *d = opendir(path);
    struct dirent *e;
    int weights = 0;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, ".incomplete")) fail_msg("leftover %s", e->d_name);
        weights += strlen(e->d_name) == 64;
    }
    closedir(d);
    assert_int_equal(weights, 1);
    free(commit);
}

static void test_symlinks_disabled_copies(void **state) {
    (void)state;
    setenv("HF_HUB_DISABLE_SYMLINKS", "1", 1);
    mlxe_hub *hub = make_hub(NULL, 2);
    unsetenv("HF_HUB_DISABLE_SYMLINKS");
    char *snap = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/extra/notes.txt", snap);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_same_as_server(snap, "org/tiny-mlx", "model.safetensors");
    assert_same_as_server(snap, "org/tiny-mlx", "extra/notes.txt");
    free(snap);
    mlxe_hub_free(hub);
}

static void test_disk_space_checked_first(void **state) {
    (void)state;
    /* org/huge lists a 1 PB weights file: refused before any byte is fetched. */
    mlxe_hub *hub = make_hub(NULL, 2);
    char *snap = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/huge", NULL, &snap, &err), MLXE_ERR_IO);
    assert_message_contains(err.message, "not enough disk space");
    assert_message_contains(err.message, "org/huge");
    assert_message_contains(err.message, "HF_HUB_CACHE");
    assert_int_equal(count_ranges("/resolve/", NULL), 0);
    assert_int_equal(count_ranges("/cdn/", NULL), 0);
    mlxe_hub_free(hub);
}

static void test_token_never_logged(void **state) {
    (void)state;
    mlxe_log_set_level(MLXE_LOG_CAT_HUB, MLXE_LOG_TRACE);
    mlxe_hub *hub = make_hub("hf_good", 2);
    char *snap = NULL;
    mlxe_error err;
    fake_hub_faults(&server, "[{\"match\":\"/cdn/\",\"kind\":\"drop\",\"after_bytes\":1000}]");
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/gated", NULL, &snap, &err), MLXE_OK);
    free(snap);
    mlxe_hub_free(hub);
    hub = make_hub("hf_secret_but_invalid", 2);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_null(strstr(err.message, "hf_secret"));
    mlxe_hub_free(hub);
    mlxe_log_record records[256];
    size_t n = mlxe_log_recent(records, 256);
    assert_true(n > 3); /* the hub did log at trace level */
    for (size_t i = 0; i < n; i++) {
        assert_null(strstr(records[i].message, "hf_good"));
        assert_null(strstr(records[i].message, "hf_secret"));
    }
    mlxe_log_set_level(MLXE_LOG_CAT_HUB, MLXE_LOG_INFO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_layout, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_cached_commit_and_offline_make_no_request, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_resume_within_run, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_resume_across_runs, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_stall_reconnects, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_retries_5xx_and_429, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_wrong_bytes_deleted_never_linked, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_range_ignored_restarts, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_bad_partial_file_redownloaded, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_errors_in_words, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_cache_fallback_when_hub_fails, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_token_to_hub_only_and_head_headers, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_progress_and_cancel, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_gguf_quant_and_revisions, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_two_processes_one_copy, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_token_never_logged, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_disk_space_checked_first, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_symlinks_disabled_copies, setup_one, teardown_one),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
