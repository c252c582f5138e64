/* tools/mlxengine/cmd_pull.c — `mlxengine pull ID[@rev][:QUANT]`: downloads a
 * model into the Hugging Face cache (resuming what an earlier pull left) and
 * prints the snapshot folder. ID may be a registry alias. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_cli.h"
#include "mlxengine/commands.h"

static mlxe_cancel *pull_cancel;

static void on_interrupt(int signal_number) {
    (void)signal_number;
    mlxe_cancel_request(pull_cancel); /* one atomic store: safe in a handler */
}

static void usage(FILE *out) {
    fprintf(out, "usage: mlxengine pull ID[@REVISION][:QUANT] [--revision R] [--include PATTERN]...\n"
                 "                      [--exclude PATTERN]... [--all] [--json]\n"
                 "  ID is 'org/name' on the Hub or a registry alias such as qwen3:0.6b.\n"
                 "  Default files: what mlx-lm needs (*.json, model*.safetensors, *.jinja,\n"
                 "  tokenizer.model, *.tiktoken, *.txt); QUANT picks one .gguf file (e.g. Q4_K_M).\n"
                 "  Environment: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE.\n");
}

int cmd_pull(int argc, char **argv) {
    const char *name = NULL, *revision = NULL;
    const char **include = calloc((size_t)argc + 1, sizeof *include);
    const char **exclude = calloc((size_t)argc + 1, sizeof *exclude);
    size_t n_include = 0, n_exclude = 0;
    bool json = false, all = false;
    int code = 0;
    for (int i = 1; i < argc && code == 0; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            free(include);
            free(exclude);
            return 0;
        } else if (strcmp(argv[i], "--revision") == 0 && i + 1 < argc) revision = argv[++i];
        else if (strcmp(argv[i], "--include") == 0 && i + 1 < argc) include[n_include++] = argv[++i];
        else if (strcmp(argv[i], "--exclude") == 0 && i + 1 < argc) exclude[n_exclude++] = argv[++i];
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--all") == 0) all = true;
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else code = 2;
    }
    if (code || !name || !include || !exclude) {
        usage(stderr);
        free(include);
        free(exclude);
        return 2;
    }
    mlxe_hub *hub = hub_cli_open("pull");
    mlxe_registry *reg = hub ? hub_cli_registry("pull") : NULL;
    if (!hub || !reg) {
        mlxe_hub_free(hub);
        free(include);
        free(exclude);
        return 1;
    }
    const mlxe_registry_entry *entry = mlxe_registry_find(reg, name);
    mlxe_hub_model_ref ref;
    mlxe_error err;
    if (mlxe_hub_parse_model_ref(entry ? entry->repo_id : name, &ref, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine pull: %s\n", err.message);
        mlxe_registry_free(reg);
        mlxe_hub_free(hub);
        free(include);
        free(exclude);
        return 2;
    }
    hub_cli_progress progress;
    hub_cli_progress_init(&progress);
    if (json) progress.quiet = true;
    mlxe_hub_download_options o;
    mlxe_hub_download_options_init(&o);
    o.revision = revision ? revision : ref.revision;
    o.gguf_quant = ref.quant;
    o.allow_patterns = include;
    o.n_allow_patterns = n_include;
    o.ignore_patterns = exclude;
    o.n_ignore_patterns = n_exclude;
    o.all_files = all;
    o.progress = hub_cli_on_progress;
    o.progress_user = &progress;
    pull_cancel = mlxe_cancel_create();
    o.cancel = pull_cancel;
    struct sigaction sa, old_int;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, &old_int);
    char *snapshot = NULL;
    mlxe_status s = mlxe_hub_snapshot_download(hub, ref.repo_id, &o, &snapshot, &err);
    sigaction(SIGINT, &old_int, NULL);
    if (s != MLXE_OK) {
        if (progress.tty && !progress.quiet) fputc('\n', stderr);
        fprintf(stderr, "mlxengine pull: %s\n", err.message);
        code = 1;
    } else if (json) {
        printf("{\"id\":");
        hub_cli_json_string(stdout, ref.repo_id);
        printf(",\"revision\":");
        hub_cli_json_string(stdout, o.revision ? o.revision : "main");
        printf(",\"path\":");
        hub_cli_json_string(stdout, snapshot);
        printf("}\n");
    } else {
        printf("%s\n", snapshot);
    }
    if (s == MLXE_OK) {
        /* Say now, not at load time, when the model will not fit this machine. */
        mlxe_memory_estimate m;
        if (mlxe_hub_estimate_memory(snapshot, 0, &m, NULL) == MLXE_OK && !m.fits) {
            char need[32], have[32];
            hub_cli_format_size(m.total_bytes, need, sizeof need);
            hub_cli_format_size(m.available_bytes, have, sizeof have);
            fprintf(stderr, "mlxengine pull: warning: running this model needs about %s of memory but "
                            "%s is available; choose a smaller or more quantized model\n", need, have);
        }
    }
    free(snapshot);
    mlxe_cancel_free(pull_cancel);
    pull_cancel = NULL;
    mlxe_hub_model_ref_clear(&ref);
    mlxe_registry_free(reg);
    mlxe_hub_free(hub);
    free(include);
    free(exclude);
    return code;
}
