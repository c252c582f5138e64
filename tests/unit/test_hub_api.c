/* The Hub's JSON API against the fake hub: search with text, author, tag
 * filters, sort and limit across Link-paginated pages; model info at a
 * revision with sizes; the recursive file tree across pages; the client's
 * environment (HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, tokens, offline). */
#include <stdlib.h>

#include "test_util.h"
#include "hub/fake_hub.h"
#include "hub/hub_internal.h"
#include "mlxengine/mlxengine.h"

static fake_hub server;

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

static mlxe_hub *make_hub(void) {
    mlxe_hub_options o;
    mlxe_hub_options_init(&o);
    o.endpoint = server.endpoint;
    o.cache_dir = "/tmp/mlxe-test-unused-cache";
    o.token = "";
    o.offline = 0;
    o.retry_base_delay_s = 0.05;
    mlxe_hub *hub = NULL;
    mlxe_error err;
    if (mlxe_hub_create(&o, &hub, &err) != MLXE_OK) fail_msg("%s", err.message);
    return hub;
}

/* The server's own answer, without pagination, as the oracle. */
static cJSON *server_json(const char *path) {
    char *text = fake_hub_request(&server, "GET", path, NULL, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static void test_search_filters_sort_limit_pages(void **state) {
    (void)state;
    fake_hub_reset(&server);
    mlxe_hub *hub = make_hub();
    mlxe_hub_search_options o;
    mlxe_hub_search_options_init(&o);
    const char *filters[] = {"mlx", "text-generation"};
    o.filters = filters;
    o.n_filters = 2;
    o.sort = "downloads";
    o.limit = 7;
    o.author = "mlx-community";
    mlxe_hub_model_list *list = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_search(hub, &o, &list, &err), MLXE_OK);
    assert_int_equal(list->n_models, 7);
    for (size_t i = 1; i < list->n_models; i++)
        assert_true(list->models[i - 1]->downloads >= list->models[i]->downloads);
    for (size_t i = 0; i < list->n_models; i++) {
        assert_true(strncmp(list->models[i]->id, "mlx-community/", 14) == 0);
        assert_true(list->models[i]->parameters > 0);
        assert_non_null(list->models[i]->raw_json);
    }
    /* Pages of 3: the client followed Link twice, with repeated filter keys. */
    cJSON *log = fake_hub_log(&server);
    assert_int_equal(cJSON_GetArraySize(log), 3);
    const char *first = cJSON_GetObjectItem(cJSON_GetArrayItem(log, 0), "path")->valuestring;
    assert_non_null(strstr(first, "filter=mlx&filter=text-generation"));
    assert_non_null(strstr(first, "sort=downloads"));
    assert_non_null(strstr(first, "limit=7"));
    cJSON_Delete(log);
    mlxe_hub_model_list_free(list);

    /* A limit inside the first page; text search; gguf tag; files with sizes. */
    mlxe_hub_search_options_init(&o);
    const char *gguf[] = {"gguf"};
    o.filters = gguf;
    o.n_filters = 1;
    o.limit = 2;
    o.with_files = true;
    assert_int_equal(mlxe_hub_search(hub, &o, &list, &err), MLXE_OK);
    assert_int_equal(list->n_models, 2);
    for (size_t i = 0; i < list->n_models; i++) {
        bool tagged = false;
        for (size_t t = 0; t < list->models[i]->n_tags; t++) tagged |= strcmp(list->models[i]->tags[t], "gguf") == 0;
        assert_true(tagged);
        assert_true(list->models[i]->n_files > 0);
        assert_true(list->models[i]->files[0].size > 0);
    }
    mlxe_hub_model_list_free(list);
    mlxe_hub_search_options_init(&o);
    o.search = "tiny";
    assert_int_equal(mlxe_hub_search(hub, &o, &list, &err), MLXE_OK);
    assert_int_equal(list->n_models, 2);
    mlxe_hub_model_list_free(list);
    o.search = "nothing-matches-this";
    assert_int_equal(mlxe_hub_search(hub, &o, &list, &err), MLXE_OK);
    assert_int_equal(list->n_models, 0);
    mlxe_hub_model_list_free(list);
    mlxe_hub_free(hub);
}

static void test_model_info_and_tree(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub();
    mlxe_hub_model *info = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_model_info(hub, "org/tiny-mlx", "v1", true, &info, &err), MLXE_OK);
    cJSON *oracle = server_json("/api/models/org/tiny-mlx/revision/v1?blobs=true");
    assert_string_equal(info->sha, cJSON_GetObjectItem(oracle, "sha")->valuestring);
    assert_int_equal(info->n_files, cJSON_GetArraySize(cJSON_GetObjectItem(oracle, "siblings")));
    assert_string_equal(info->gated, "false");
    assert_string_equal(info->library_name, "mlx");
    bool saw_lfs = false;
    for (size_t i = 0; i < info->n_files; i++) {
        assert_true(info->files[i].size >= 0);
        if (strcmp(info->files[i].path, "model.safetensors") == 0) {
            assert_non_null(info->files[i].lfs_sha256);
            assert_int_equal(strlen(info->files[i].lfs_sha256), 64);
            saw_lfs = true;
        }
    }
    assert_true(saw_lfs);
    cJSON_Delete(oracle);
    mlxe_hub_model_free(info);
    assert_int_equal(mlxe_hub_model_info(hub, "org/gated", NULL, false, &info, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "gated");

    /* The tree comes in pages of 4: all entries, files only, with LFS ids. */
    fake_hub_reset(&server);
    mlxe_hub_file_list *files = NULL;
    assert_int_equal(mlxe_hub_list_files(hub, "org/tiny-mlx", "main", &files, &err), MLXE_OK);
    assert_int_equal(files->n_files, 8);
    assert_true(fake_hub_request_count(&server) >= 3);
    size_t n_lfs = 0;
    for (size_t i = 0; i < files->n_files; i++) n_lfs += files->files[i].lfs_sha256 != NULL;
    assert_int_equal(n_lfs, 2);
    mlxe_hub_file_list_free(files);
    assert_int_equal(mlxe_hub_list_files(hub, "org/tiny-mlx", "nope", &files, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "nope");
    assert_int_equal(mlxe_hub_list_files(hub, "not a repo", "main", &files, &err), MLXE_ERR_INVALID_ARGUMENT);
    mlxe_hub_free(hub);
}

static void test_malformed_answers(void **state) {
    (void)state;
    mlxe_hub *hub = make_hub();
    mlxe_error err;
    mlxe_hub_model *info = NULL;
    mlxe_hub_file_list *files = NULL;
    mlxe_hub_model_list *list = NULL;
    struct {
        const char *fault;
        int call;
        const char *needle;
    } cases[] = {
        {"[{\"match\":\"/api/models/org/tiny-mlx\",\"kind\":\"raw\",\"body\":\"{\\\"sha\\\": 1\"}]", 0, "org/tiny-mlx"},
        {"[{\"match\":\"/api/models/org/tiny-mlx\",\"kind\":\"raw\",\"body\":\"{}\"}]", 0, "no 'id'"},
        {"[{\"match\":\"/tree/\",\"kind\":\"raw\",\"body\":\"{}\"}]", 1, "not a JSON array"},
        {"[{\"match\":\"/tree/\",\"kind\":\"raw\",\"body\":\"[{\\\"type\\\":\\\"file\\\"}]\"}]", 1, "lacks 'path'"},
        {"[{\"match\":\"/api/models\",\"kind\":\"raw\",\"body\":\"{\\\"a\\\":1}\"}]", 2, "not a JSON array"},
        {"[{\"match\":\"/api/models\",\"kind\":\"raw\",\"body\":\"[1]\"}]", 2, "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_hub_reset(&server);
        fake_hub_faults(&server, cases[i].fault);
        mlxe_status s;
        if (cases[i].call == 0) s = mlxe_hub_model_info(hub, "org/tiny-mlx", NULL, false, &info, &err);
        else if (cases[i].call == 1) s = mlxe_hub_list_files(hub, "org/tiny-mlx", "main", &files, &err);
        else s = mlxe_hub_search(hub, NULL, &list, &err);
        assert_int_equal(s, MLXE_ERR_FORMAT);
        assert_message_contains(err.message, cases[i].needle);
        assert_null(info);
        assert_null(files);
        assert_null(list);
    }
    fake_hub_reset(&server);
    mlxe_hub_free(hub);
}

static void test_environment(void **state) {
    (void)state;
    char home[256], token_file[300];
    test_make_temp_dir(home, sizeof home);
    snprintf(token_file, sizeof token_file, "%s/token", home);
    test_write_file(token_file, "  hf_from_file\n", 15);
    setenv("HF_HOME", home, 1);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HUGGINGFACE_HUB_CACHE");
    unsetenv("HF_TOKEN");
    unsetenv("HUGGING_FACE_HUB_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
    setenv("HF_HUB_OFFLINE", "yes", 1);
    mlxe_hub *hub = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_hub_create(NULL, &hub, &err), MLXE_OK);
    char expect[320];
    snprintf(expect, sizeof expect, "%s/hub", home);
    assert_string_equal(mlxe_hub_cache_dir(hub), expect);
    assert_string_equal(mlxe_hub_endpoint(hub), "http://127.0.0.1:9");
    assert_true(mlxe_hub_is_offline(hub));
    assert_true(mlxe_hub_has_token(hub));
    assert_string_equal(hub->token, "hf_from_file");
    /* Offline: no request, an error that says so. */
    mlxe_hub_model *info = NULL;
    assert_int_equal(mlxe_hub_model_info(hub, "org/x", NULL, false, &info, &err), MLXE_ERR_NETWORK);
    assert_message_contains(err.message, "HF_HUB_OFFLINE");
    mlxe_hub_free(hub);

    setenv("HF_HUB_CACHE", "/tmp/somewhere/hub", 1);
    setenv("HF_TOKEN", "hf_env", 1);
    setenv("HF_HUB_OFFLINE", "0", 1);
    assert_int_equal(mlxe_hub_create(NULL, &hub, &err), MLXE_OK);
    assert_string_equal(mlxe_hub_cache_dir(hub), "/tmp/somewhere/hub");
    assert_string_equal(hub->token, "hf_env");
    assert_false(mlxe_hub_is_offline(hub));
    mlxe_hub_free(hub);

    unsetenv("HF_TOKEN");
    setenv("HF_TOKEN_PATH", "/nonexistent/token", 1);
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    setenv("XDG_CACHE_HOME", home, 1);
    assert_int_equal(mlxe_hub_create(NULL, &hub, &err), MLXE_OK);
    assert_false(mlxe_hub_has_token(hub));
    snprintf(expect, sizeof expect, "%s/huggingface/hub", home);
    assert_string_equal(mlxe_hub_cache_dir(hub), expect);
    mlxe_hub_free(hub);
    /* An explicit empty token means anonymous even with HF_TOKEN set. */
    setenv("HF_TOKEN", "hf_env", 1);
    mlxe_hub_options o;
    mlxe_hub_options_init(&o);
    o.token = "";
    assert_int_equal(mlxe_hub_create(&o, &hub, &err), MLXE_OK);
    assert_false(mlxe_hub_has_token(hub));
    mlxe_hub_free(hub);
    unsetenv("HF_TOKEN");
    unsetenv("HF_TOKEN_PATH");
    unsetenv("HF_ENDPOINT");
    unsetenv("HF_HUB_OFFLINE");
    unsetenv("XDG_CACHE_HOME");
    fake_hub_remove_tree(home);
    mlxe_hub_free(NULL);
    assert_int_equal(mlxe_hub_create(NULL, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_filters_sort_limit_pages),
        cmocka_unit_test(test_model_info_and_tree),
        cmocka_unit_test(test_malformed_answers),
        cmocka_unit_test(test_environment),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
