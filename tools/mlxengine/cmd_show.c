/* tools/mlxengine/cmd_show.c — `mlxengine show ID`: a model's configuration
 * summary, files, whether it has a chat template, and the memory it needs,
 * from the cache when it is there (no request), else from the Hub. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hub_cli.h"
#include "mlxengine/commands.h"

static cJSON *read_json(const char *folder, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = n > 0 && n < (64 << 20) ? malloc((size_t)n + 1) : NULL;
    cJSON *json = NULL;
    if (text && fread(text, 1, (size_t)n, f) == (size_t)n) {
        text[n] = 0;
        json = cJSON_Parse(text);
    }
    free(text);
    fclose(f);
    return json;
}

static bool has_template(const char *folder) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/chat_template.jinja", folder);
    if (stat(path, &st) == 0) return true;
    cJSON *tc = read_json(folder, "tokenizer_config.json");
    bool found = cJSON_GetObjectItemCaseSensitive(tc, "chat_template") != NULL;
    cJSON_Delete(tc);
    return found;
}

static void add_files(cJSON *files, const char *root, const char *sub) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *sub ? "/" : "", sub);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char rel[2048], path[8192];
        snprintf(rel, sizeof rel, "%s%s%s", sub, *sub ? "/" : "", e->d_name);
        snprintf(path, sizeof path, "%s/%s", root, rel);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) {
            add_files(files, root, rel);
            continue;
        }
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "path", rel);
        cJSON_AddNumberToObject(f, "size", (double)st.st_size);
        cJSON_AddItemToArray(files, f);
    }
    if (d) closedir(d);
}

static void print_report(const cJSON *report) {
    const cJSON *v;
    printf("model        %s\n", cJSON_GetObjectItem(report, "id")->valuestring);
    if ((v = cJSON_GetObjectItem(report, "path"))) printf("path         %s\n", v->valuestring);
    if ((v = cJSON_GetObjectItem(report, "commit")) && cJSON_IsString(v)) printf("commit       %s\n", v->valuestring);
    const cJSON *config = cJSON_GetObjectItem(report, "config");
    cJSON_ArrayForEach(v, config) {
        if (cJSON_IsNumber(v)) printf("%-12s %lld\n", v->string, (long long)v->valuedouble);
        else if (cJSON_IsString(v)) printf("%-12s %s\n", v->string, v->valuestring);
    }
    if ((v = cJSON_GetObjectItem(report, "chat_template"))) printf("template     %s\n", cJSON_IsTrue(v) ? "yes" : "no");
    const cJSON *mem = cJSON_GetObjectItem(report, "memory");
    if (mem) {
        char w[32], kv[32], total[32], avail[32];
        hub_cli_format_size((uint64_t)cJSON_GetObjectItem(mem, "weights_bytes")->valuedouble, w, sizeof w);
        hub_cli_format_size((uint64_t)cJSON_GetObjectItem(mem, "kv_cache_bytes")->valuedouble, kv, sizeof kv);
        hub_cli_format_size((uint64_t)cJSON_GetObjectItem(mem, "total_bytes")->valuedouble, total, sizeof total);
        hub_cli_format_size((uint64_t)cJSON_GetObjectItem(mem, "available_bytes")->valuedouble, avail, sizeof avail);
        printf("memory       %s (weights %s + KV cache %s at %d tokens + overhead); %s available%s\n", total,
               w, kv, cJSON_GetObjectItem(mem, "context")->valueint, avail,
               cJSON_IsTrue(cJSON_GetObjectItem(mem, "fits")) ? "" : " — DOES NOT FIT");
    }
    printf("files\n");
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItem(report, "files")) {
        char size[32];
        double bytes = cJSON_GetObjectItem(f, "size")->valuedouble;
        if (bytes >= 0) hub_cli_format_size((uint64_t)bytes, size, sizeof size);
        else snprintf(size, sizeof size, "?");
        printf("  %10s  %s\n", size, cJSON_GetObjectItem(f, "path")->valuestring);
    }
}

int cmd_show(int argc, char **argv) {
    const char *name = NULL;
    bool json = false;
    int context = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--context") == 0 && i + 1 < argc) context = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !name) name = argv[i];
        else name = NULL, i = argc;
    }
    if (!name) {
        fprintf(stderr, "usage: mlxengine show ID|ALIAS|FOLDER [--context N] [--json]\n");
        return 2;
    }
    mlxe_hub *hub = hub_cli_open("show");
    mlxe_registry *reg = hub ? hub_cli_registry("show") : NULL;
    if (!reg) {
        mlxe_hub_free(hub);
        return 1;
    }
    mlxe_error err;
    char *folder = NULL;
    cJSON *report = cJSON_CreateObject();
    int code = 0;
    const mlxe_registry_entry *entry = mlxe_registry_find(reg, name);
    const char *id = entry ? entry->repo_id : name;
    cJSON_AddStringToObject(report, "id", id);
    if (mlxe_hub_resolve_model(hub, reg, name, false, NULL, &folder, &err) == MLXE_OK) {
        cJSON_AddStringToObject(report, "path", folder);
        const char *slash = strrchr(folder, '/');
        if (slash && strlen(slash + 1) == 40) cJSON_AddStringToObject(report, "commit", slash + 1);
        cJSON *config = read_json(folder, "config.json");
        cJSON *summary = cJSON_AddObjectToObject(report, "config");
        const char *keys[] = {"model_type", "num_hidden_layers", "hidden_size", "num_attention_heads",
                              "num_key_value_heads", "vocab_size", "max_position_embeddings"};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, keys[k]);
            if (v) cJSON_AddItemToObject(summary, keys[k], cJSON_Duplicate(v, 1));
        }
        char quant[32], arch[64];
        hub_cli_describe_folder(folder, quant, sizeof quant, arch, sizeof arch);
        cJSON_AddStringToObject(summary, "quantization", quant);
        cJSON_Delete(config);
        cJSON_AddBoolToObject(report, "chat_template", has_template(folder));
        mlxe_memory_estimate m;
        if (mlxe_hub_estimate_memory(folder, context, &m, &err) == MLXE_OK) {
            cJSON *mem = cJSON_AddObjectToObject(report, "memory");
            cJSON_AddNumberToObject(mem, "weights_bytes", (double)m.weights_bytes);
            cJSON_AddNumberToObject(mem, "kv_cache_bytes", (double)m.kv_cache_bytes);
            cJSON_AddNumberToObject(mem, "overhead_bytes", (double)m.overhead_bytes);
            cJSON_AddNumberToObject(mem, "total_bytes", (double)m.total_bytes);
            cJSON_AddNumberToObject(mem, "available_bytes", (double)m.available_bytes);
            cJSON_AddBoolToObject(mem, "fits", m.fits);
            int used = context;
            if (used <= 0) {
                const cJSON *mp = cJSON_GetObjectItem(summary, "max_position_embeddings");
                used = cJSON_IsNumber(mp) ? (mp->valueint < 8192 ? mp->valueint : 8192) : 4096;
            }
            cJSON_AddNumberToObject(mem, "context", used);
        }
        add_files(cJSON_AddArrayToObject(report, "files"), folder, "");
    } else {
        /* Not cached: ask the Hub. */
        mlxe_hub_model_ref ref;
        mlxe_hub_model *info = NULL;
        if (mlxe_hub_parse_model_ref(id, &ref, &err) != MLXE_OK ||
            mlxe_hub_model_info(hub, ref.repo_id, ref.revision, true, &info, &err) != MLXE_OK) {
            fprintf(stderr, "mlxengine show: %s\n", err.message);
            code = 1;
        } else {
            cJSON_AddStringToObject(report, "commit", info->sha ? info->sha : "");
            cJSON *summary = cJSON_AddObjectToObject(report, "config");
            cJSON_AddStringToObject(summary, "cached", "no");
            cJSON_AddNumberToObject(summary, "downloads", (double)info->downloads);
            cJSON_AddNumberToObject(summary, "likes", (double)info->likes);
            if (info->parameters > 0) cJSON_AddNumberToObject(summary, "parameters", (double)info->parameters);
            cJSON_AddStringToObject(summary, "gated", info->gated);
            cJSON *files = cJSON_AddArrayToObject(report, "files");
            bool template_file = false;
            for (size_t i = 0; i < info->n_files; i++) {
                cJSON *f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "path", info->files[i].path);
                cJSON_AddNumberToObject(f, "size", (double)info->files[i].size);
                cJSON_AddItemToArray(files, f);
                template_file |= strcmp(info->files[i].path, "chat_template.jinja") == 0;
            }
            if (template_file) cJSON_AddBoolToObject(report, "chat_template", true);
        }
        mlxe_hub_model_ref_clear(&ref);
        mlxe_hub_model_free(info);
    }
    if (code == 0) {
        if (json) {
            char *text = cJSON_PrintUnformatted(report);
            printf("%s\n", text ? text : "{}");
            free(text);
        } else {
            print_report(report);
        }
    }
    cJSON_Delete(report);
    free(folder);
    mlxe_registry_free(reg);
    mlxe_hub_free(hub);
    return code;
}
