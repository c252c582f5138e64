/* tools/mlxengine/hub_cli.c — helpers shared by the Hub commands. */
#include "hub_cli.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

mlxe_hub *hub_cli_open(const char *command) {
    mlxe_hub *hub = NULL;
    mlxe_error err;
    if (mlxe_hub_create(NULL, &hub, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine %s: %s\n", command, err.message);
        return NULL;
    }
    return hub;
}

mlxe_registry *hub_cli_registry(const char *command) {
    mlxe_registry *reg = NULL;
    mlxe_error err;
    if (mlxe_registry_load(NULL, &reg, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine %s: %s\n", command, err.message);
        return NULL;
    }
    return reg;
}

void hub_cli_format_size(uint64_t bytes, char *out, size_t size) {
    if (bytes >= 1000000000ull) snprintf(out, size, "%.2f GB", (double)bytes / 1e9);
    else if (bytes >= 1000000ull) snprintf(out, size, "%.1f MB", (double)bytes / 1e6);
    else if (bytes >= 1000ull) snprintf(out, size, "%.1f KB", (double)bytes / 1e3);
    else snprintf(out, size, "%llu B", (unsigned long long)bytes);
}

static bool env_truthy(const char *name) {
    const char *v = getenv(name);
    return v && (strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
                 strcasecmp(v, "true") == 0);
}

void hub_cli_progress_init(hub_cli_progress *p) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(2);
    p->quiet = env_truthy("HF_HUB_DISABLE_PROGRESS_BARS");
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hub_cli_on_progress(void *user, const mlxe_hub_progress *p) {
    hub_cli_progress *state = user;
    if (state->quiet) return;
    char done[32], total[32], speed[32];
    hub_cli_format_size(p->done_bytes, done, sizeof done);
    hub_cli_format_size(p->total_bytes, total, sizeof total);
    hub_cli_format_size((uint64_t)p->bytes_per_second, speed, sizeof speed);
    if (state->tty) {
        double t = now_seconds();
        if (!p->finished && t - state->last_draw < 0.1) return;
        state->last_draw = t;
        int width = 30;
        int filled = p->total_bytes ? (int)((double)p->done_bytes / (double)p->total_bytes * width) : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
        bar[width] = 0;
        char eta[32] = "";
        if (p->eta_seconds >= 0 && !p->finished)
            snprintf(eta, sizeof eta, " ETA %dm%02ds", (int)p->eta_seconds / 60, (int)p->eta_seconds % 60);
        fprintf(stderr, "\r[%s] %s / %s  %s/s  %zu/%zu files%s   ", bar, done, total, speed,
                p->n_files_done, p->n_files, eta);
        if (p->finished) fputc('\n', stderr);
        fflush(stderr);
        return;
    }
    /* Not a terminal: one line per finished file and one at the end. */
    if (p->finished) {
        fprintf(stderr, "done: %zu files, %s\n", p->n_files, total);
    } else if (p->n_files_done > state->files_reported) {
        state->files_reported = p->n_files_done;
        fprintf(stderr, "%zu/%zu files, %s / %s%s%s\n", p->n_files_done, p->n_files, done, total,
                p->file_path ? ": " : "", p->file_path ? p->file_path : "");
    }
}

void hub_cli_json_string(FILE *out, const char *s) {
    if (!s) {
        fputs("null", out);
        return;
    }
    char *quoted = NULL;
    cJSON *str = cJSON_CreateString(s);
    if (str) quoted = cJSON_PrintUnformatted(str);
    fputs(quoted ? quoted : "null", out);
    free(quoted);
    cJSON_Delete(str);
}

void hub_cli_describe_folder(const char *folder, char *quant, size_t quant_size, char *arch,
                             size_t arch_size) {
    snprintf(quant, quant_size, "-");
    snprintf(arch, arch_size, "-");
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", folder);
    FILE *f = fopen(path, "rb");
    if (f) {
        char *text = malloc(1 << 20);
        size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
        fclose(f);
        if (text) {
            text[n] = 0;
            cJSON *config = cJSON_Parse(text);
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(config, "model_type");
            if (cJSON_IsString(type)) snprintf(arch, arch_size, "%s", type->valuestring);
            const cJSON *q = cJSON_GetObjectItemCaseSensitive(config, "quantization");
            const cJSON *bits = cJSON_GetObjectItemCaseSensitive(q, "bits");
            if (cJSON_IsNumber(bits)) snprintf(quant, quant_size, "%dbit", bits->valueint);
            else if (config) snprintf(quant, quant_size, "none");
            cJSON_Delete(config);
            free(text);
        }
    }
    DIR *d = opendir(folder);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcasecmp(e->d_name + n - 5, ".gguf") == 0) {
            snprintf(quant, quant_size, "gguf");
            if (strcmp(arch, "-") == 0) snprintf(arch, arch_size, "gguf");
            break;
        }
    }
    if (d) closedir(d);
}
