/* tools/mlxengine-debug-report/debug_cli_cache.c — the cache subcommands:
 * list-models (integrity check of every cached repo), show-model-info and
 * cleanup-cache. They use the hub's cache reader (src/hub/hub_cache_scan.h,
 * the one `mlxengine list|du|rm` use too) and diagnostics' clean-up planner
 * (src/diag/cache_cleanup.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/json.h"
#include "diag/cache_cleanup.h"
#include "hub/hub_cache_scan.h"
#include "mlxengine-debug-report/debug_cli.h"
#include "mlxengine/mlxengine.h"

static int usage_error(const char *program, const char *subcommand, const char *message) {
    fprintf(stderr, "%s %s: %s (see '%s --help')\n", program, subcommand, message, program);
    return 2;
}

static int unknown_option(const char *program, const char *subcommand, const char *option) {
    char message[256];
    snprintf(message, sizeof message, "unknown option '%.200s'", option);
    return usage_error(program, subcommand, message);
}

static cJSON *repo_to_json(const hub_cache_repo *repo, bool with_files) {
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "id", repo->repo_id);
    cJSON_AddStringToObject(item, "type", repo->repo_type);
    cJSON_AddStringToObject(item, "state", hub_cache_repo_state_name(repo->state));
    cJSON_AddStringToObject(item, "path", repo->path);
    cJSON_AddNumberToObject(item, "size_bytes", (double)repo->size_on_disk);
    cJSON_AddNumberToObject(item, "partial_downloads", (double)repo->n_partial_downloads);
    cJSON_AddNumberToObject(item, "partial_bytes", (double)repo->partial_bytes);
    cJSON_AddNumberToObject(item, "orphan_blobs", (double)repo->n_orphan_blobs);
    cJSON_AddNumberToObject(item, "orphan_bytes", (double)repo->orphan_bytes);
    cJSON *dangling = cJSON_AddArrayToObject(item, "dangling_refs");
    for (size_t i = 0; i < repo->n_dangling_refs; i++)
        cJSON_AddItemToArray(dangling, cJSON_CreateString(repo->dangling_refs[i]));
    cJSON *revisions = cJSON_AddArrayToObject(item, "revisions");
    for (size_t r = 0; r < repo->n_revisions; r++) {
        const hub_cache_revision *revision = &repo->revisions[r];
        cJSON *rev = cJSON_CreateObject();
        cJSON_AddStringToObject(rev, "commit", revision->commit);
        cJSON *refs = cJSON_AddArrayToObject(rev, "refs");
        for (size_t i = 0; i < revision->n_refs; i++) cJSON_AddItemToArray(refs, cJSON_CreateString(revision->refs[i]));
        cJSON_AddNumberToObject(rev, "files", (double)revision->n_files);
        cJSON_AddNumberToObject(rev, "bad_files", (double)revision->n_bad_files);
        cJSON_AddNumberToObject(rev, "not_downloaded", (double)revision->n_not_downloaded);
        cJSON_AddNumberToObject(rev, "size_bytes", (double)revision->size);
        cJSON_AddBoolToObject(rev, "has_tree_record", revision->has_tree_record);
        if (with_files) {
            cJSON *files = cJSON_AddArrayToObject(rev, "file_list");
            for (size_t f = 0; f < revision->n_files; f++) {
                const hub_cache_file *file = &revision->files[f];
                cJSON *entry = cJSON_CreateObject();
                cJSON_AddStringToObject(entry, "path", file->path);
                cJSON_AddStringToObject(entry, "state", hub_cache_file_state_name(file->state));
                cJSON_AddNumberToObject(entry, "size_bytes", (double)file->size);
                if (file->expected_size >= 0) cJSON_AddNumberToObject(entry, "expected_size", (double)file->expected_size);
                if (file->blob) cJSON_AddStringToObject(entry, "blob", file->blob);
                cJSON_AddBoolToObject(entry, "hash_checked", file->hash_checked);
                cJSON_AddItemToArray(files, entry);
            }
        }
        cJSON_AddItemToArray(revisions, rev);
    }
    cJSON *problems = cJSON_AddArrayToObject(item, "problems");
    for (size_t i = 0; i < repo->n_problems; i++) cJSON_AddItemToArray(problems, cJSON_CreateString(repo->problems[i]));
    return item;
}

static int print_json(cJSON *json) {
    char *text = cJSON_Print(json);
    cJSON_Delete(json);
    if (!text) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    char *redacted = NULL;
    size_t needed = mlxe_redact_secrets(text, NULL, 0);
    redacted = malloc(needed + 1);
    if (redacted) mlxe_redact_secrets(text, redacted, needed + 1);
    puts(redacted ? redacted : "");
    free(redacted);
    cJSON_free(text);
    return 0;
}

static void print_problems(const hub_cache_repo *repo) {
    for (size_t i = 0; i < repo->n_problems; i++) printf("    problem: %s\n", repo->problems[i]);
    for (size_t i = 0; i < repo->n_partial_downloads; i++) {
        char size[32];
        debug_cli_format_bytes(repo->partial_downloads[i].size, size, sizeof size);
        printf("    partial download: blobs/%s (%s)\n", repo->partial_downloads[i].name, size);
    }
    for (size_t i = 0; i < repo->n_dangling_refs; i++)
        printf("    ref to a missing snapshot: %s\n", repo->dangling_refs[i]);
    if (repo->n_orphan_blobs) {
        char size[32];
        debug_cli_format_bytes(repo->orphan_bytes, size, sizeof size);
        printf("    %zu blob(s) no snapshot uses (%s)\n", repo->n_orphan_blobs, size);
    }
}

int debug_cli_list_models(const char *program, int argc, char **argv) {
    hub_cache_scan_options options;
    hub_cache_scan_options_init(&options);
    options.verify_hashes = true;
    const char *cache_dir = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) options.verify_hashes = false;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc) cache_dir = argv[++i];
        else return unknown_option(program, "list-models", argv[i]);
    }
    hub_cache_scan *scan = NULL;
    mlxe_error err;
    if (hub_cache_scan_run(cache_dir, &options, &scan, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "cache_dir", scan->cache_dir);
        cJSON_AddBoolToObject(root, "exists", scan->exists);
        cJSON_AddBoolToObject(root, "hashes_checked", options.verify_hashes);
        cJSON_AddNumberToObject(root, "size_bytes", (double)scan->total_size);
        cJSON *repos = cJSON_AddArrayToObject(root, "repos");
        for (size_t i = 0; i < scan->n_repos; i++) cJSON_AddItemToArray(repos, repo_to_json(&scan->repos[i], false));
        cJSON *warnings = cJSON_AddArrayToObject(root, "warnings");
        for (size_t i = 0; i < scan->n_warnings; i++) cJSON_AddItemToArray(warnings, cJSON_CreateString(scan->warnings[i]));
        hub_cache_scan_free(scan);
        return print_json(root);
    }
    char total[32];
    debug_cli_format_bytes(scan->total_size, total, sizeof total);
    if (!scan->exists) {
        printf("cache %s does not exist yet: no model downloaded\n", scan->cache_dir);
        hub_cache_scan_free(scan);
        return 0;
    }
    printf("cache %s: %zu repo(s), %s\n", scan->cache_dir, scan->n_repos, total);
    printf("%-10s %10s %5s  %s\n", "STATE", "SIZE", "REVS", "ID");
    for (size_t i = 0; i < scan->n_repos; i++) {
        const hub_cache_repo *repo = &scan->repos[i];
        char size[32];
        debug_cli_format_bytes(repo->size_on_disk, size, sizeof size);
        printf("%-10s %10s %5zu  %s%s%s\n", hub_cache_repo_state_name(repo->state), size, repo->n_revisions,
               repo->repo_id, strcmp(repo->repo_type, "model") ? " " : "",
               strcmp(repo->repo_type, "model") ? repo->repo_type : "");
        print_problems(repo);
    }
    for (size_t i = 0; i < scan->n_warnings; i++) printf("warning: %s\n", scan->warnings[i]);
    printf(options.verify_hashes ? "every blob's content was checked against its hash\n"
                                 : "content hashes not checked (--quick); sizes and links were\n");
    size_t bad = 0;
    for (size_t i = 0; i < scan->n_repos; i++) bad += scan->repos[i].state != HUB_CACHE_REPO_COMPLETE;
    if (bad) printf("%zu repo(s) need attention: '%s cleanup-cache --dry-run' shows what a clean-up removes\n", bad, program);
    hub_cache_scan_free(scan);
    return 0;
}

/* A few facts from the snapshot's config.json, when there is one. */
static void print_config_summary(const char *snapshot_dir) {
    char path[4096];
    snprintf(path, sizeof path, "%.4000s/config.json", snapshot_dir);
    cJSON *config = NULL;
    mlxe_error err;
    if (mlxe_json_parse_file(path, 16u << 20, &config, &err) != MLXE_OK) {
        printf("config.json: %s\n", err.status == MLXE_ERR_NOT_FOUND ? "absent" : err.message);
        return;
    }
    static const char *const keys[] = {"model_type", "torch_dtype", "hidden_size", "num_hidden_layers",
                                       "num_attention_heads", "num_key_value_heads", "vocab_size",
                                       "max_position_embeddings"};
    printf("config.json:\n");
    const cJSON *architectures = cJSON_GetObjectItemCaseSensitive(config, "architectures");
    if (cJSON_IsString(cJSON_GetArrayItem(architectures, 0)))
        printf("  architecture: %s\n", cJSON_GetArrayItem(architectures, 0)->valuestring);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(config, keys[i]);
        if (cJSON_IsString(value)) printf("  %s: %s\n", keys[i], value->valuestring);
        else if (cJSON_IsNumber(value)) printf("  %s: %lld\n", keys[i], (long long)value->valuedouble);
    }
    const cJSON *quantization = cJSON_GetObjectItemCaseSensitive(config, "quantization");
    const cJSON *bits = cJSON_GetObjectItemCaseSensitive(quantization, "bits");
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(quantization, "group_size");
    if (cJSON_IsNumber(bits))
        printf("  quantization: %d bits, group size %d (MLX)\n", bits->valueint,
               cJSON_IsNumber(group) ? group->valueint : 0);
    cJSON_Delete(config);
}

static void print_remote_info(const char *repo_id) {
    mlxe_hub *hub = NULL;
    mlxe_error err;
    mlxe_hub_model *model = NULL;
    if (mlxe_hub_create(NULL, &hub, &err) != MLXE_OK ||
        mlxe_hub_model_info(hub, repo_id, NULL, true, &model, &err) != MLXE_OK) {
        printf("on the Hub: %s\n", err.message);
        mlxe_hub_free(hub);
        return;
    }
    printf("on the Hub (%s):\n  commit of main: %s\n  last modified: %s\n  downloads: %lld, likes: %lld\n"
           "  gated: %s, private: %s\n  files: %zu\n",
           mlxe_hub_endpoint(hub), model->sha ? model->sha : "?",
           model->last_modified ? model->last_modified : "?", (long long)model->downloads,
           (long long)model->likes, model->gated ? model->gated : "?", model->is_private ? "yes" : "no",
           model->n_files);
    mlxe_hub_model_free(model);
    mlxe_hub_free(hub);
}

int debug_cli_show_model_info(const char *program, int argc, char **argv) {
    const char *repo_id = NULL, *cache_dir = NULL;
    bool remote = false, json = false;
    hub_cache_scan_options options;
    hub_cache_scan_options_init(&options);
    options.verify_hashes = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) options.verify_hashes = false;
        else if (strcmp(argv[i], "--remote") == 0) remote = true;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc) cache_dir = argv[++i];
        else if (argv[i][0] != '-' && !repo_id) repo_id = argv[i];
        else return unknown_option(program, "show-model-info", argv[i]);
    }
    if (!repo_id) return usage_error(program, "show-model-info", "which model? give its id, e.g. org/name");
    options.repo_id = repo_id;
    hub_cache_scan *scan = NULL;
    mlxe_error err;
    if (hub_cache_scan_run(cache_dir, &options, &scan, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    if (scan->n_repos == 0) {
        fprintf(stderr, "%s: %s is not in the cache %s ('%s download-model %s' fetches it)\n", program,
                repo_id, scan->cache_dir, program, repo_id);
        hub_cache_scan_free(scan);
        if (remote) print_remote_info(repo_id);
        return 1;
    }
    const hub_cache_repo *repo = &scan->repos[0];
    if (json) {
        cJSON *item = repo_to_json(repo, true);
        hub_cache_scan_free(scan);
        return print_json(item);
    }
    char size[32];
    debug_cli_format_bytes(repo->size_on_disk, size, sizeof size);
    printf("%s (%s)\n  folder: %s\n  state: %s\n  size on disk: %s\n", repo->repo_id, repo->repo_type,
           repo->path, hub_cache_repo_state_name(repo->state), size);
    const char *newest_snapshot = NULL;
    for (size_t r = 0; r < repo->n_revisions; r++) {
        const hub_cache_revision *revision = &repo->revisions[r];
        printf("revision %s", revision->commit);
        for (size_t i = 0; i < revision->n_refs; i++) printf("%s%s", i ? ", " : " (", revision->refs[i]);
        printf("%s: %zu file(s), %zu not ok%s\n", revision->n_refs ? ")" : "", revision->n_files,
               revision->n_bad_files, revision->has_tree_record ? "" : " (no file list recorded: missing files cannot be told)");
        for (size_t f = 0; f < revision->n_files; f++) {
            const hub_cache_file *file = &revision->files[f];
            if (file->state == HUB_CACHE_FILE_MISSING && file->expected_size >= 0)
                debug_cli_format_bytes((unsigned long long)file->expected_size, size, sizeof size);
            else
                debug_cli_format_bytes(file->size, size, sizeof size);
            printf("  %-14s %10s  %s%s\n", hub_cache_file_state_name(file->state), size, file->path,
                   file->hash_checked && file->state == HUB_CACHE_FILE_OK ? "  (hash ok)" : "");
        }
        for (size_t i = 0; i < revision->n_refs; i++)
            if (strcmp(revision->refs[i], "main") == 0 || !newest_snapshot) newest_snapshot = revision->commit;
    }
    print_problems(repo);
    if (newest_snapshot) {
        char snapshot_dir[4096];
        snprintf(snapshot_dir, sizeof snapshot_dir, "%.3000s/snapshots/%.200s", repo->path, newest_snapshot);
        print_config_summary(snapshot_dir);
    }
    hub_cache_scan_free(scan);
    if (remote) print_remote_info(repo_id);
    return 0;
}

int debug_cli_cleanup_cache(const char *program, int argc, char **argv) {
    mlxe_cache_cleanup_options options;
    mlxe_cache_cleanup_options_init(&options);
    const char *cache_dir = NULL;
    bool dry_run = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) dry_run = true;
        else if (strcmp(argv[i], "--verify") == 0) options.remove_corrupted = true;
        else if (strcmp(argv[i], "--model") == 0 && i + 1 < argc) options.remove_repo_id = argv[++i];
        else if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc) cache_dir = argv[++i];
        else return unknown_option(program, "cleanup-cache", argv[i]);
    }
    mlxe_cache_cleanup_plan *plan = NULL;
    mlxe_error err;
    if (mlxe_cache_cleanup_plan_make(cache_dir, &options, &plan, &err) != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    mlxe_status status = MLXE_OK;
    if (!dry_run) status = mlxe_cache_cleanup_apply(plan, &err);
    /* One line per path, the same in both modes: "remove <kind> <path>". */
    size_t n_removed = 0, n_failed = 0, n_skipped = 0;
    for (size_t i = 0; i < plan->n_actions; i++) {
        const mlxe_cache_action *action = &plan->actions[i];
        if (action->kind == MLXE_CACHE_SKIP_IN_USE) {
            printf("skip %s %s (a download holds its lock)\n", mlxe_cache_action_kind_name(action->kind), action->path);
            n_skipped++;
        } else if (action->error) {
            printf("failed %s %s: %s\n", mlxe_cache_action_kind_name(action->kind), action->path, action->error);
            n_failed++;
        } else {
            printf("remove %s %s\n", mlxe_cache_action_kind_name(action->kind), action->path);
            n_removed++;
        }
    }
    char bytes[32];
    debug_cli_format_bytes(plan->bytes, bytes, sizeof bytes);
    fflush(stdout); /* the list before the summary, even when both go to one terminal */
    if (dry_run)
        fprintf(stderr, "dry run: %zu path(s) would be removed, %s freed; nothing was changed\n", n_removed, bytes);
    else
        fprintf(stderr, "%zu path(s) removed, %s freed%s\n", n_removed, bytes, n_failed ? "; some removals failed" : "");
    if (n_skipped) fprintf(stderr, "%zu repo(s) skipped: being downloaded right now\n", n_skipped);
    mlxe_cache_cleanup_plan_free(plan);
    if (status != MLXE_OK) {
        fprintf(stderr, "%s: %s\n", program, err.message);
        return 1;
    }
    return 0;
}
