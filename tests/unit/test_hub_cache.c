/* The cache as a whole: scanning (sizes counting shared blobs once, partial
 * files, broken links, dangling refs, other repo types), deleting one revision
 * (blobs another revision uses stay) or a whole model (refused while a download
 * holds its lock), file selection patterns, model
 * references, the registry with a user file, model resolution, and the
 * memory estimate. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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

static mlxe_hub *make_hub(int offline) {
    mlxe_hub_options o;
    mlxe_hub_options_init(&o);
    o.endpoint = server.endpoint;
    o.cache_dir = cache;
    o.token = "";
    o.offline = offline;
    o.retry_base_delay_s = 0.05;
    mlxe_hub *hub = NULL;
    mlxe_error err;
    if (mlxe_hub_create(&o, &hub, &err) != MLXE_OK) fail_msg("%s", err.message);
    return hub;
}

static void pull(mlxe_hub *hub, const char *repo, const char *revision) {
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.revision = revision;
    o.all_files = true;
    char *snap = NULL;
    mlxe_error err;
    if (mlxe_hub_snapshot_download(hub, repo, &o, &snap, &err) != MLXE_OK) fail_msg("%s", err.message);
    free(snap);
}

static uint64_t blobs_size(const char *repo_folder_name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/blobs", cache, repo_folder_name);
    DIR *d = opendir(path);
    uint64_t total = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (stat(p, &st) == 0) total += (uint64_t)st.st_size;
    }
    if (d) closedir(d);
    return total;
}

static void test_scan_and_delete(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub(0);
    pull(hub, "org/tiny-mlx", NULL);
    pull(hub, "org/tiny-mlx", "v1"); /* shares every blob but config.json */
    pull(hub, "org/sharded", NULL);
    mlxe_hub_cache_info *info = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_cache_scan(hub, &info, &err), MLXE_OK);
    assert_int_equal(info->n_repos, 2);
    assert_string_equal(info->repos[0].repo_id, "org/sharded");
    const mlxe_hub_cached_repo *tiny = &info->repos[1];
    assert_string_equal(tiny->repo_id, "org/tiny-mlx");
    assert_int_equal(tiny->n_revisions, 2);
    assert_int_equal(tiny->size_on_disk, blobs_size("models--org--tiny-mlx"));
    assert_null(tiny->problem);
    size_t refs = 0;
    for (size_t i = 0; i < tiny->n_revisions; i++) {
        refs += tiny->revisions[i].n_refs; /* main; v1 and refs/pr/1 */
        assert_int_equal(tiny->revisions[i].n_files, 8);
        assert_true(tiny->revisions[i].size_on_disk <= tiny->size_on_disk);
    }
    assert_int_equal(refs, 2);
    assert_int_equal(info->size_on_disk, blobs_size("models--org--tiny-mlx") + blobs_size("models--org--sharded"));
    mlxe_hub_cache_info_free(info);

    /* Delete v1: main's files all stay readable. */
    uint64_t before = blobs_size("models--org--tiny-mlx"), freed = 0;
    assert_int_equal(mlxe_hub_cache_delete(hub, "org/tiny-mlx", "v1", &freed, &err), MLXE_OK);
    assert_true(freed > 0);
    assert_int_equal(before - freed, blobs_size("models--org--tiny-mlx"));
    char *snap = NULL;
    assert_int_equal(mlxe_hub_cache_resolve(hub, "org/tiny-mlx", "main", &snap, &err), MLXE_OK);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/model.safetensors", snap);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    free(snap);
    assert_int_equal(mlxe_hub_cache_resolve(hub, "org/tiny-mlx", "v1", &snap, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "mlxengine pull");
    assert_int_equal(mlxe_hub_cache_delete(hub, "org/tiny-mlx", "v1", NULL, &err), MLXE_ERR_NOT_FOUND);

    /* A partial file and a broken link show up in the scan. */
    snprintf(path, sizeof path, "%s/models--org--sharded/blobs/abc.incomplete", cache);
    test_write_file(path, "12345", 5);
    assert_int_equal(mlxe_hub_cache_resolve(hub, "org/sharded", NULL, &snap, &err), MLXE_OK);
    snprintf(path, sizeof path, "%s/tokenizer.json", snap);
    char target[512];
    ssize_t n = readlink(path, target, sizeof target - 1);
    target[n] = 0;
    char blob[PATH_MAX];
    snprintf(blob, sizeof blob, "%s/%s", snap, target);
    unlink(blob);
    free(snap);
    assert_int_equal(mlxe_hub_cache_scan(hub, &info, &err), MLXE_OK);
    assert_int_equal(info->repos[0].n_incomplete, 1);
    assert_int_equal(info->repos[0].incomplete_bytes, 5);
    assert_non_null(info->repos[0].problem);
    assert_message_contains(info->repos[0].problem, "tokenizer.json");
    assert_false(info->repos[0].revisions[0].complete);
    mlxe_hub_cache_info_free(info);

    /* Other repo types and stray folders are not models (scan_cache_dir's rule). */
    snprintf(path, sizeof path, "%s/datasets--org--data/snapshots", cache);
    assert_int_equal(hub_mkdirs(path, NULL), MLXE_OK);
    snprintf(path, sizeof path, "%s/models--", cache);
    assert_int_equal(hub_mkdirs(path, NULL), MLXE_OK);
    assert_int_equal(mlxe_hub_cache_scan(hub, &info, &err), MLXE_OK);
    assert_int_equal(info->n_repos, 2);
    mlxe_hub_cache_info_free(info);

    /* A model another process is downloading (it holds a .locks/ file) is not deleted. */
    snprintf(path, sizeof path, "%s/.locks/models--org--sharded/0123.lock", cache);
    int lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    assert_int_equal(mlxe_hub_cache_delete(hub, "org/sharded", NULL, &freed, &err), MLXE_ERR_IO);
    assert_message_contains(err.message, "being downloaded");
    snprintf(path, sizeof path, "%s/models--org--sharded", cache);
    assert_true(mlxe_dir_exists(path));
    close(lock_fd);

    /* Deleting the whole model removes its folder and its locks. */
    assert_int_equal(mlxe_hub_cache_delete(hub, "org/sharded", NULL, &freed, &err), MLXE_OK);
    assert_true(freed >= 5); /* the partial download counts */
    snprintf(path, sizeof path, "%s/models--org--sharded", cache);
    assert_false(mlxe_dir_exists(path));
    snprintf(path, sizeof path, "%s/.locks/models--org--sharded", cache);
    assert_false(mlxe_dir_exists(path));
    assert_int_equal(mlxe_hub_cache_delete(hub, "org/sharded", NULL, &freed, &err), MLXE_ERR_NOT_FOUND);
    assert_int_equal(mlxe_hub_cache_delete(hub, "bad", NULL, &freed, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_hub_free(hub);

    /* An empty or missing cache scans as empty. */
    mlxe_hub_options o;
    mlxe_hub_options_init(&o);
    o.cache_dir = "/nonexistent/mlxe/cache";
    assert_int_equal(mlxe_hub_create(&o, &hub, &err), MLXE_OK);
    assert_int_equal(mlxe_hub_cache_scan(hub, &info, &err), MLXE_OK);
    assert_int_equal(info->n_repos, 0);
    mlxe_hub_cache_info_free(info);
    mlxe_hub_free(hub);
}

static void test_corrupt_cache_files(void **state) {
    (void)state;
    /* A damaged trees/{commit}.json or ref is ignored: the Hub is asked again. */
    mlxe_hub *hub = make_hub(0);
    pull(hub, "org/tiny-mlx", NULL);
    mlxe_hub_model *info = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_model_info(hub, "org/tiny-mlx", NULL, false, &info, &err), MLXE_OK);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/trees/%s.json", cache, info->sha);
    test_write_file(path, "{\"files\": [tr", 13);
    snprintf(path, sizeof path, "%s/models--org--tiny-mlx/refs/main", cache);
    test_write_file(path, "not a commit", 12);
    char *snap = NULL;
    assert_int_equal(mlxe_hub_cache_resolve(hub, "org/tiny-mlx", "main", &snap, &err), MLXE_ERR_NOT_FOUND);
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.revision = info->sha;
    o.all_files = true;
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", &o, &snap, &err), MLXE_OK);
    assert_non_null(strstr(snap, info->sha));
    free(snap);
    assert_int_equal(mlxe_hub_snapshot_download(hub, "org/tiny-mlx", NULL, &snap, &err), MLXE_OK);
    free(snap);
    assert_int_equal(mlxe_hub_cache_resolve(hub, "org/tiny-mlx", "main", &snap, &err), MLXE_OK); /* ref rewritten */
    free(snap);
    mlxe_hub_model_free(info);
    mlxe_hub_free(hub);
}

static void test_selection_patterns(void **state) {
    (void)state;
    hub_selection s;
    hub_selection_from_options(NULL, &s); /* mlx-lm's defaults */
    assert_true(hub_selection_matches(&s, "config.json"));
    assert_true(hub_selection_matches(&s, "model-00001-of-00002.safetensors"));
    assert_true(hub_selection_matches(&s, "tokenizer.model"));
    assert_true(hub_selection_matches(&s, "chat_template.jinja"));
    assert_true(hub_selection_matches(&s, "qwen.tiktoken"));
    assert_true(hub_selection_matches(&s, "merges.txt"));
    assert_false(hub_selection_matches(&s, "README.md"));
    assert_false(hub_selection_matches(&s, "pytorch_model.bin"));
    assert_false(hub_selection_matches(&s, "consolidated.safetensors"));
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    const char *allow[] = {"onnx/", "*.md"};
    const char *ignore[] = {"*.onnx_data"};
    o.allow_patterns = allow;
    o.n_allow_patterns = 2;
    o.ignore_patterns = ignore;
    o.n_ignore_patterns = 1;
    hub_selection_from_options(&o, &s);
    assert_true(hub_selection_matches(&s, "onnx/model.onnx"));
    assert_false(hub_selection_matches(&s, "onnx/model.onnx_data"));
    assert_true(hub_selection_matches(&s, "docs/README.md")); /* '*' crosses '/', as fnmatch in Python */
    assert_false(hub_selection_matches(&s, "config.json"));
    mlxe_hub_download_options_init(&o);
    o.gguf_quant = "Q4_K_M";
    hub_selection_from_options(&o, &s);
    assert_true(hub_selection_matches(&s, "Llama-3.2-1B-Instruct-q4_k_m.gguf"));
    assert_false(hub_selection_matches(&s, "Llama-3.2-1B-Instruct-Q8_0.gguf"));
    assert_false(hub_selection_matches(&s, "config.json"));
}

static void test_model_refs(void **state) {
    (void)state;
    mlxe_hub_model_ref ref;
    mlxe_error err;
    assert_int_equal(mlxe_hub_parse_model_ref("org/name@v1:Q4_K_M", &ref, &err), MLXE_OK);
    assert_string_equal(ref.repo_id, "org/name");
    assert_string_equal(ref.revision, "v1");
    assert_string_equal(ref.quant, "Q4_K_M");
    mlxe_hub_model_ref_clear(&ref);
    assert_int_equal(mlxe_hub_parse_model_ref("mlx-community/Qwen3-0.6B-4bit", &ref, &err), MLXE_OK);
    assert_null(ref.revision);
    assert_null(ref.quant);
    mlxe_hub_model_ref_clear(&ref);
    const char *bad[] = {"name-only", "org/name/extra", "../x", "org/..", "org/name@", "org/name:", "a/b@../c", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(mlxe_hub_parse_model_ref(bad[i], &ref, &err), MLXE_OK);
        assert_null(ref.repo_id);
    }
    assert_int_equal(mlxe_hub_parse_model_ref(NULL, &ref, &err), MLXE_ERR_INVALID_ARGUMENT);
}

static void test_registry(void **state) {
    (void)state;
    mlxe_registry *reg = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_registry_load("/nonexistent/models.json", &reg, &err), MLXE_ERR_NOT_FOUND);
    char user[PATH_MAX];
    snprintf(user, sizeof user, "%s/models.json", cache);
    const char *text = "{\"models\":[{\"alias\":\"qwen3:0.6b\",\"id\":\"me/qwen3-fork\",\"context_length\":1024},"
                       "{\"alias\":\"tiny\",\"id\":\"org/tiny-mlx\",\"stop\":[\"<end>\"],\"top_k\":5}]}";
    test_write_file(user, text, strlen(text));
    assert_int_equal(mlxe_registry_load(user, &reg, &err), MLXE_OK);
    size_t n = mlxe_registry_count(reg);
    assert_true(n >= 17);
    const char *needed[] = {"llama3.2:1b", "llama3.2:3b", "llama3.1:8b", "qwen2.5:0.5b", "qwen2.5:1.5b",
                            "qwen2.5:7b", "qwen3:1.7b", "qwen3:4b", "qwen3:8b", "mistral:7b",
                            "smollm2:135m", "smollm2:360m", "smollm2:1.7b", "gemma3:1b", "phi3.5:mini"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++) {
        const mlxe_registry_entry *e = mlxe_registry_find(reg, needed[i]);
        if (!e) fail_msg("no registry entry %s", needed[i]);
        assert_true(hub_repo_id_valid(e->repo_id));
        assert_true(e->context_length > 0 && e->size_bytes > 0 && e->parameters_billion > 0);
        assert_non_null(e->stop);
    }
    const mlxe_registry_entry *q = mlxe_registry_find(reg, "QWEN3:0.6B");
    assert_string_equal(q->repo_id, "me/qwen3-fork"); /* overridden, other fields kept */
    assert_int_equal(q->context_length, 1024);
    assert_string_equal(q->family, "qwen3");
    const mlxe_registry_entry *t = mlxe_registry_find(reg, "tiny");
    assert_string_equal(t->stop[0], "<end>");
    assert_null(t->stop[1]);
    assert_int_equal(t->top_k, 5);
    assert_ptr_equal(mlxe_registry_find(reg, "org/tiny-mlx"), t);
    assert_null(mlxe_registry_find(reg, "nope:1b"));
    assert_non_null(mlxe_registry_at(reg, 0));
    assert_null(mlxe_registry_at(reg, n));

    /* Resolution: alias -> Hub id -> cached snapshot, offline with no request. */
    mlxe_hub *hub = make_hub(0);
    char *folder = NULL;
    assert_int_equal(mlxe_hub_resolve_model(hub, reg, "tiny", false, NULL, &folder, &err), MLXE_ERR_NOT_FOUND);
    assert_int_equal(mlxe_hub_resolve_model(hub, reg, "tiny", true, NULL, &folder, &err), MLXE_OK);
    char *again = NULL;
    assert_int_equal(mlxe_hub_resolve_model(hub, reg, folder, false, NULL, &again, &err), MLXE_OK);
    assert_string_equal(folder, again); /* a folder is taken as it is */
    free(again);
    mlxe_hub_free(hub);
    hub = make_hub(1);
    fake_hub_reset(&server);
    assert_int_equal(mlxe_hub_resolve_model(hub, reg, "org/tiny-mlx@main", true, NULL, &again, &err), MLXE_OK);
    assert_string_equal(folder, again);
    assert_int_equal(fake_hub_request_count(&server), 0);
    free(again);
    assert_int_equal(mlxe_hub_resolve_model(hub, reg, "not a model", true, NULL, &again, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "not a model");

    /* The memory estimate: weights from the files, KV cache from config.json. */
    mlxe_memory_estimate m;
    assert_int_equal(mlxe_hub_estimate_memory(folder, 1000, &m, &err), MLXE_OK);
    assert_int_equal(m.weights_bytes, 300000);
    assert_int_equal(m.kv_cache_bytes, 2ull * 2 * 2 * 16 * 1000 * 2); /* K,V x layers x kv heads x dim x ctx x 2 bytes */
    assert_int_equal(m.total_bytes, m.weights_bytes + m.kv_cache_bytes + m.overhead_bytes);
    assert_true(m.available_bytes > 0);
    assert_true(m.fits);
    assert_int_equal(mlxe_hub_estimate_memory("/nonexistent", 0, &m, &err), MLXE_ERR_NOT_FOUND);
    free(folder);
    mlxe_hub_free(hub);
    mlxe_registry_free(reg);
    mlxe_registry_free(NULL);

    const char *broken = "{\"models\":[{\"alias\":\"x\"}]}";
    test_write_file(user, broken, strlen(broken));
    assert_int_equal(mlxe_registry_load(user, &reg, &err), MLXE_ERR_FORMAT);
    assert_message_contains(err.message, "models[0]");
    test_write_file(user, "{not json", 9);
    assert_int_equal(mlxe_registry_load(user, &reg, &err), MLXE_ERR_FORMAT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_and_delete, setup_one, teardown_one),
        cmocka_unit_test_setup_teardown(test_corrupt_cache_files, setup_one, teardown_one),
        cmocka_unit_test(test_selection_patterns),
        cmocka_unit_test(test_model_refs),
        cmocka_unit_test_setup_teardown(test_registry, setup_one, teardown_one),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
