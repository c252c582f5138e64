/* Tests of the cache survey and clean-up on a fixture cache built by
 * tests/diag/make_fixture_cache.py (blob names from Python's hashlib):
 * each repo's state, hash verification, and that the clean-up plan lists
 * exactly what applying it removes, leaves complete models alone, skips a
 * repo being downloaded, and leaves a layout with nothing left to clean. */
#include "test_util.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/file.h"
#include "base/json.h"
#include "diag/cache_cleanup.h"
#include "hub/hub_cache_scan.h"

typedef struct fixture {
    char dir[64];
    char cache[128];
    cJSON *expected; /* the script's summary */
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    test_make_temp_dir(f->dir, sizeof f->dir);
    snprintf(f->cache, sizeof f->cache, "%s/hub", f->dir);
    char command[512];
    snprintf(command, sizeof command, "/usr/bin/python3 %s/tests/diag/make_fixture_cache.py %s",
             MLXE_SOURCE_DIR, f->cache);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    char output[8192];
    size_t n = fread(output, 1, sizeof output - 1, pipe);
    output[n] = '\0';
    assert_int_equal(pclose(pipe), 0);
    f->expected = cJSON_Parse(output);
    assert_non_null(f->expected);
    *state = f;
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int teardown(void **state) {
    fixture *f = *state;
    nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    cJSON_Delete(f->expected);
    free(f);
    return 0;
}

static const hub_cache_repo *find_repo(const hub_cache_scan *scan, const char *id) {
    for (size_t i = 0; i < scan->n_repos; i++)
        if (strcmp(scan->repos[i].repo_id, id) == 0) return &scan->repos[i];
    fail_msg("repo %s not in the scan", id);
    return NULL;
}

static hub_cache_scan *scan_cache(const char *cache, bool verify) {
    hub_cache_scan_options options;
    hub_cache_scan_options_init(&options);
    options.verify_hashes = verify;
    hub_cache_scan *scan = NULL;
    mlxe_error err;
    if (hub_cache_scan_run(cache, &options, &scan, &err) != MLXE_OK) fail_msg("scan: %s", err.message);
    return scan;
}

/* Every repo's state as the fixture script expects it, quick and verified. */
static void test_states(void **state) {
    fixture *f = *state;
    for (int verify = 0; verify < 2; verify++) {
        hub_cache_scan *scan = scan_cache(f->cache, verify);
        assert_true(scan->exists);
        const cJSON *repos = cJSON_GetObjectItem(f->expected, "repos");
        assert_int_equal(scan->n_repos, (size_t)cJSON_GetArraySize(repos));
        const cJSON *item;
        cJSON_ArrayForEach(item, repos) {
            const hub_cache_repo *repo = find_repo(scan, item->string);
            const char *want = cJSON_GetObjectItem(item, verify ? "verified" : "quick")->valuestring;
            if (strcmp(hub_cache_repo_state_name(repo->state), want) != 0)
                fail_msg("%s: state %s, expected %s (verify=%d; first problem: %s)", item->string,
                         hub_cache_repo_state_name(repo->state), want, verify,
                         repo->n_problems ? repo->problems[0] : "none");
        }
        /* Details behind the states. */
        const hub_cache_repo *complete = find_repo(scan, "org/complete");
        assert_int_equal(complete->n_revisions, 2);
        assert_int_equal(complete->n_blobs, 3); /* config shared by both revisions */
        assert_int_equal(complete->n_orphan_blobs, 0);
        bool saw_sub = false;
        for (size_t r = 0; r < complete->n_revisions; r++)
            for (size_t i = 0; i < complete->revisions[r].n_files; i++) {
                const hub_cache_file *file = &complete->revisions[r].files[i];
                assert_int_equal(file->state, HUB_CACHE_FILE_OK);
                assert_int_equal(file->hash_checked, verify);
                saw_sub |= strcmp(file->path, "sub/tokenizer.json") == 0;
            }
        assert_true(saw_sub);
        uint64_t blob_bytes = 0;
        for (size_t b = 0; b < complete->n_blobs; b++) blob_bytes += complete->blobs[b].size;
        assert_int_equal(complete->size_on_disk, blob_bytes);

        const hub_cache_repo *partial = find_repo(scan, "org/partial");
        assert_int_equal(partial->n_partial_downloads, 1);
        assert_int_equal(partial->partial_bytes, 1000);
        const hub_cache_revision *revision = &partial->revisions[0];
        assert_true(revision->has_tree_record);
        assert_int_equal(revision->n_files, 4);
        assert_int_equal(revision->n_not_downloaded, 1); /* README.md, not selected */
        assert_string_equal(revision->files[2].path, "model-00002-of-00002.safetensors");
        assert_int_equal(revision->files[2].state, HUB_CACHE_FILE_MISSING);
        assert_int_equal(revision->files[2].expected_size, 10240 - 5000);
        assert_int_equal(revision->files[1].state, HUB_CACHE_FILE_OK);
        assert_int_equal(revision->files[1].hash_checked, verify);

        const hub_cache_repo *corrupted = find_repo(scan, "org/corrupted");
        const hub_cache_file *config = &corrupted->revisions[0].files[0];
        assert_string_equal(config->path, "config.json");
        assert_int_equal(config->state, verify ? HUB_CACHE_FILE_HASH_MISMATCH : HUB_CACHE_FILE_OK);
        if (verify) assert_message_contains(corrupted->problems[0], "does not hash");

        const hub_cache_repo *orphans = find_repo(scan, "org/orphans");
        assert_int_equal(orphans->n_orphan_blobs, 1);
        const hub_cache_repo *broken = find_repo(scan, "org/broken");
        assert_int_equal(broken->revisions[0].files[0].state, HUB_CACHE_FILE_BROKEN_LINK);
        const hub_cache_repo *dangling = find_repo(scan, "org/dangling");
        assert_int_equal(dangling->n_dangling_refs, 1);
        assert_message_contains(dangling->dangling_refs[0], "main -> ");
        assert_string_equal(find_repo(scan, "org/data")->repo_type, "dataset");
        assert_int_equal(scan->n_warnings, 1);
        assert_message_contains(scan->warnings[0], "stray.txt");
        assert_int_equal(scan->n_partial_downloads, 3);
        hub_cache_scan_free(scan);
    }
}

/* Every path under root (files, links and folders), sorted, one per line. */
static char *list_tree(const char *root) {
    char command[512];
    snprintf(command, sizeof command, "cd %s && find . -mindepth 1 | LC_ALL=C sort", root);
    FILE *pipe = popen(command, "r");
    assert_non_null(pipe);
    size_t capacity = 1 << 16, length = 0;
    char *text = malloc(capacity);
    size_t got;
    while ((got = fread(text + length, 1, capacity - length - 1, pipe)) > 0) {
        length += got;
        if (length + 1 == capacity) text = realloc(text, capacity *= 2);
    }
    text[length] = '\0';
    pclose(pipe);
    return text;
}

static bool listed_in(const char *list, const char *line) {
    size_t n = strlen(line);
    for (const char *at = strstr(list, line); at; at = strstr(at + 1, line))
        if ((at == list || at[-1] == '\n') && (at[n] == '\n' || at[n] == '\0')) return true;
    return false;
}

/* A path removed by the clean-up must be in the plan or under a planned folder. */
static bool covered_by_plan(const mlxe_cache_cleanup_plan *plan, const char *path) {
    for (size_t i = 0; i < plan->n_actions; i++) {
        const mlxe_cache_action *action = &plan->actions[i];
        if (action->kind == MLXE_CACHE_SKIP_IN_USE) continue;
        size_t n = strlen(action->path);
        if (strcmp(action->path, path) == 0) return true;
        if ((action->kind == MLXE_CACHE_REMOVE_REPO || action->kind == MLXE_CACHE_REMOVE_EMPTY_FOLDER) &&
            strncmp(action->path, path, n) == 0 && path[n] == '/')
            return true;
    }
    return false;
}

static void test_cleanup_plan_is_what_is_removed(void **state) {
    fixture *f = *state;
    /* Hold the busy repo's download lock as a running download would. */
    const char *lock_path = cJSON_GetObjectItem(f->expected, "busy_lock")->valuestring;
    int lock_fd = open(lock_path, O_RDONLY);
    assert_true(lock_fd >= 0);
    assert_int_equal(flock(lock_fd, LOCK_EX), 0);
    assert_true(hub_cache_repo_in_use(f->cache, "models--org--busy"));
    assert_false(hub_cache_repo_in_use(f->cache, "models--org--partial"));

    char *before = list_tree(f->cache);
    mlxe_cache_cleanup_plan *dry = NULL, *plan = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, NULL, &dry, &err), MLXE_OK);
    char *after_dry_run = list_tree(f->cache);
    assert_string_equal(before, after_dry_run); /* planning writes nothing */
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, NULL, &plan, &err), MLXE_OK);
    assert_int_equal(plan->n_actions, dry->n_actions);
    for (size_t i = 0; i < plan->n_actions; i++) {
        assert_string_equal(plan->actions[i].path, dry->actions[i].path);
        assert_int_equal(plan->actions[i].kind, dry->actions[i].kind);
    }
    assert_int_equal(mlxe_cache_cleanup_apply(plan, &err), MLXE_OK);
    char *after = list_tree(f->cache);

    /* What disappeared is exactly what the plan names (and what lies under
     * the folders it names); everything it names is gone. */
    size_t prefix = strlen(f->cache) + 1;
    size_t n_gone = 0;
    char *save = NULL;
    char *copy = strdup(before);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (listed_in(after, line)) continue;
        n_gone++;
        char full[1024];
        snprintf(full, sizeof full, "%s/%s", f->cache, line + 2);
        if (!covered_by_plan(plan, full)) fail_msg("%s was removed but not planned", full);
    }
    free(copy);
    assert_true(n_gone > 0);
    size_t n_skipped = 0;
    for (size_t i = 0; i < plan->n_actions; i++) {
        const mlxe_cache_action *action = &plan->actions[i];
        char relative[1024];
        snprintf(relative, sizeof relative, "./%s", action->path + prefix);
        if (action->kind == MLXE_CACHE_SKIP_IN_USE) {
            n_skipped++;
            assert_string_equal(action->repo_id, "org/busy");
            continue;
        }
        assert_true(action->done);
        assert_null(action->error);
        if (!listed_in(before, relative)) fail_msg("planned %s did not exist", relative);
        if (listed_in(after, relative)) fail_msg("planned %s is still there", relative);
        /* Never anything of a complete model, nor of the repo being downloaded. */
        assert_string_not_equal(action->repo_id, "org/complete");
        assert_string_not_equal(action->repo_id, "org/data");
        assert_string_not_equal(action->repo_id, "org/busy");
    }
    assert_int_equal(n_skipped, 1);
    /* Untouched without --verify: the corrupted blob (only hashing finds it). */
    assert_true(listed_in(after, "./models--org--corrupted/snapshots"));
    assert_true(listed_in(after, "./stray.txt"));
    assert_false(listed_in(after, "./models--org--shell"));
    assert_false(listed_in(after, "./models--org--dangling"));
    assert_true(listed_in(after, "./.locks/models--org--partial"));

    /* The layout left behind has nothing more to clean (but the busy repo). */
    hub_cache_scan *scan = scan_cache(f->cache, false);
    for (size_t i = 0; i < scan->n_repos; i++) {
        const hub_cache_repo *repo = &scan->repos[i];
        if (strcmp(repo->repo_id, "org/busy") == 0) {
            assert_int_equal(repo->n_partial_downloads, 1);
            continue;
        }
        assert_int_equal(repo->n_partial_downloads, 0);
        assert_int_equal(repo->n_orphan_blobs, 0);
        assert_int_equal(repo->n_dangling_refs, 0);
        assert_int_not_equal(repo->state, HUB_CACHE_REPO_EMPTY);
        assert_int_not_equal(repo->state, HUB_CACHE_REPO_CORRUPTED);
    }
    assert_int_equal(find_repo(scan, "org/complete")->state, HUB_CACHE_REPO_COMPLETE);
    assert_int_equal(find_repo(scan, "org/orphans")->state, HUB_CACHE_REPO_COMPLETE);
    assert_int_equal(find_repo(scan, "org/broken")->state, HUB_CACHE_REPO_PARTIAL); /* config.json now missing */
    assert_int_equal(find_repo(scan, "org/partial")->state, HUB_CACHE_REPO_PARTIAL);
    hub_cache_scan_free(scan);
    mlxe_cache_cleanup_plan *again = NULL;
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, NULL, &again, &err), MLXE_OK);
    assert_int_equal(again->n_actions, 1); /* only the busy repo's skip */
    assert_int_equal(again->actions[0].kind, MLXE_CACHE_SKIP_IN_USE);

    /* Released, the busy repo's stale partial download goes too. */
    flock(lock_fd, LOCK_UN);
    close(lock_fd);
    mlxe_cache_cleanup_plan_free(again);
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, NULL, &again, &err), MLXE_OK);
    assert_int_equal(again->n_actions, 1);
    assert_int_equal(again->actions[0].kind, MLXE_CACHE_REMOVE_PARTIAL_DOWNLOAD);
    mlxe_cache_cleanup_plan_free(again);

    /* With hashing, the corrupted file and its blob go, so a download can fetch them again. */
    mlxe_cache_cleanup_options options;
    mlxe_cache_cleanup_options_init(&options);
    options.remove_corrupted = true;
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, &options, &again, &err), MLXE_OK);
    size_t n_corrupted = 0;
    for (size_t i = 0; i < again->n_actions; i++)
        if (again->actions[i].kind == MLXE_CACHE_REMOVE_CORRUPTED_FILE) {
            assert_string_equal(again->actions[i].repo_id, "org/corrupted");
            n_corrupted++;
        }
    assert_int_equal(n_corrupted, 2); /* the snapshot link and the blob */
    assert_int_equal(mlxe_cache_cleanup_apply(again, &err), MLXE_OK);
    mlxe_cache_cleanup_plan_free(again);
    scan = scan_cache(f->cache, true);
    const hub_cache_repo *corrupted = find_repo(scan, "org/corrupted");
    /* What is left is sound; the tree record tells config.json is missing. */
    assert_int_equal(corrupted->state, HUB_CACHE_REPO_PARTIAL);
    assert_int_equal(corrupted->revisions[0].n_files, 2);
    assert_int_equal(corrupted->revisions[0].files[0].state, HUB_CACHE_FILE_MISSING);
    assert_int_equal(corrupted->revisions[0].files[1].state, HUB_CACHE_FILE_OK);
    assert_int_equal(find_repo(scan, "org/complete")->state, HUB_CACHE_REPO_COMPLETE);
    hub_cache_scan_free(scan);

    free(before);
    free(after_dry_run);
    free(after);
    mlxe_cache_cleanup_plan_free(dry);
    mlxe_cache_cleanup_plan_free(plan);
}

static void test_remove_named_model(void **state) {
    fixture *f = *state;
    mlxe_cache_cleanup_options options;
    mlxe_cache_cleanup_options_init(&options);
    options.remove_repo_id = "org/complete";
    mlxe_cache_cleanup_plan *plan = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, &options, &plan, &err), MLXE_OK);
    bool found = false;
    for (size_t i = 0; i < plan->n_actions; i++)
        if (plan->actions[i].kind == MLXE_CACHE_REMOVE_REPO && strcmp(plan->actions[i].repo_id, "org/complete") == 0) {
            found = true;
            assert_true(plan->actions[i].bytes > 10000);
        }
    assert_true(found);
    assert_int_equal(mlxe_cache_cleanup_apply(plan, &err), MLXE_OK);
    mlxe_cache_cleanup_plan_free(plan);
    char path[256];
    snprintf(path, sizeof path, "%s/models--org--complete", f->cache);
    assert_false(mlxe_dir_exists(path));
    snprintf(path, sizeof path, "%s/models--org--orphans/snapshots", f->cache);
    assert_true(mlxe_dir_exists(path));

    options.remove_repo_id = "org/not-cached";
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, &options, &plan, &err), MLXE_ERR_NOT_FOUND);
    assert_message_contains(err.message, "org/not-cached");
    options.remove_repo_id = "../etc";
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, &options, &plan, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "../etc");
}

static void test_missing_and_unreadable_cache(void **state) {
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/does-not-exist", f->dir);
    hub_cache_scan *scan = scan_cache(path, true);
    assert_false(scan->exists);
    assert_int_equal(scan->n_repos, 0);
    hub_cache_scan_free(scan);
    mlxe_cache_cleanup_plan *plan = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_cache_cleanup_plan_make(path, NULL, &plan, &err), MLXE_OK);
    assert_int_equal(plan->n_actions, 0);
    mlxe_cache_cleanup_plan_free(plan);
    /* A file where the cache folder should be. */
    snprintf(path, sizeof path, "%s/stray.txt", f->cache);
    hub_cache_scan_options options;
    hub_cache_scan_options_init(&options);
    assert_int_equal(hub_cache_scan_run(path, &options, &scan, &err), MLXE_ERR_IO);
    assert_message_contains(err.message, "stray.txt");
    assert_null(scan);
    /* A bad id to show. */
    options.repo_id = "/abs";
    assert_int_equal(hub_cache_scan_run(f->cache, &options, &scan, &err), MLXE_ERR_INVALID_ARGUMENT);
    options.repo_id = "org/orphans";
    assert_int_equal(hub_cache_scan_run(f->cache, &options, &scan, &err), MLXE_OK);
    assert_int_equal(scan->n_repos, 1);
    hub_cache_scan_free(scan);
}

/* Blob verification against names computed by Python's hashlib. */
static void test_blob_verify(void **state) {
    fixture *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/data", f->dir);
    test_write_file(path, "hello", 5);
    bool known = false, matches = false;
    mlxe_error err;
    /* git hash-object of "hello" and sha256("hello"). */
    assert_int_equal(hub_cache_blob_verify(path, "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0", &known, &matches, NULL, &err), MLXE_OK);
    assert_true(known && matches);
    assert_int_equal(hub_cache_blob_verify(path, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", &known, &matches, NULL, &err), MLXE_OK);
    assert_true(known && matches);
    assert_int_equal(hub_cache_blob_verify(path, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9825", &known, &matches, NULL, &err), MLXE_OK);
    assert_true(known && !matches);
    assert_int_equal(hub_cache_blob_verify(path, "not-a-hash", &known, &matches, NULL, &err), MLXE_OK);
    assert_false(known);
    snprintf(path, sizeof path, "%s/absent", f->dir);
    assert_int_equal(hub_cache_blob_verify(path, "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0", &known, &matches, NULL, &err), MLXE_ERR_NOT_FOUND);
    mlxe_cancel *cancel = mlxe_cancel_create();
    mlxe_cancel_request(cancel);
    snprintf(path, sizeof path, "%s/data", f->dir);
    assert_int_equal(hub_cache_blob_verify(path, "b6fc4c620b67d95f953a5c1c1230aaab5db5a1b0", &known, &matches, cancel, &err), MLXE_ERR_CANCELLED);
    mlxe_cancel_free(cancel);
    char *folder = hub_cache_repo_folder_name("model", "org/name");
    assert_string_equal(folder, "models--org--name");
    free(folder);
    assert_null(hub_cache_repo_folder_name("model", "org/../x"));
    assert_null(hub_cache_repo_folder_name("model", ""));
}

/* Malformed entries are reported, never a crash or a failed scan. */
static void test_malformed_entries(void **state) {
    fixture *f = *state;
    char path[512];
    const char *repo = "models--org--orphans";
    const char *commit = "2ac297712b640f2a3277c9efee23391c34540f9e";
    snprintf(path, sizeof path, "%s/%s/trees", f->cache, repo);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/trees/%s.json", f->cache, repo, commit);
    test_write_file(path, "{\"files\": [1, 2", 15);
    snprintf(path, sizeof path, "%s/%s/snapshots/%s/model.safetensors.index.json", f->cache, repo, commit);
    test_write_file(path, "not json", 8);
    snprintf(path, sizeof path, "%s/%s/snapshots/%s/loop", f->cache, repo, commit);
    assert_int_equal(symlink("loop", path), 0);
    snprintf(path, sizeof path, "%s/%s/snapshots/not-a-folder", f->cache, repo);
    test_write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/models--", f->cache);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/refs/empty-ref", f->cache, repo);
    test_write_file(path, "", 0);

    hub_cache_scan *scan = scan_cache(f->cache, true);
    const hub_cache_repo *orphans = find_repo(scan, "org/orphans");
    assert_int_equal(orphans->state, HUB_CACHE_REPO_CORRUPTED);
    bool tree_problem = false, loop_problem = false, folder_problem = false;
    for (size_t i = 0; i < orphans->n_problems; i++) {
        tree_problem |= strstr(orphans->problems[i], ".json") != NULL;
        loop_problem |= strstr(orphans->problems[i], "loop links to loop") != NULL;
        folder_problem |= strstr(orphans->problems[i], "snapshots/not-a-folder is not a folder") != NULL;
    }
    assert_true(tree_problem && loop_problem && folder_problem);
    assert_int_equal(orphans->n_dangling_refs, 1); /* the empty ref names no snapshot */
    bool warned = false;
    for (size_t i = 0; i < scan->n_warnings; i++) warned |= strstr(scan->warnings[i], "models--:") != NULL;
    assert_true(warned);
    hub_cache_scan_free(scan);
    /* The clean-up removes the self-link and the empty ref, and leaves the rest. */
    mlxe_cache_cleanup_plan *plan = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_cache_cleanup_plan_make(f->cache, NULL, &plan, &err), MLXE_OK);
    bool link_planned = false, ref_planned = false;
    for (size_t i = 0; i < plan->n_actions; i++) {
        link_planned |= plan->actions[i].kind == MLXE_CACHE_REMOVE_BROKEN_LINK && strstr(plan->actions[i].path, "/loop");
        ref_planned |= plan->actions[i].kind == MLXE_CACHE_REMOVE_DANGLING_REF && strstr(plan->actions[i].path, "empty-ref");
    }
    assert_true(link_planned && ref_planned);
    mlxe_cache_cleanup_plan_free(plan);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_plan_is_what_is_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_named_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_unreadable_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blob_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
