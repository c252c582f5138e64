/* hub/hub_select.c — which files of a repository a download takes:
 * allow/ignore fnmatch patterns as huggingface_hub's filter_repo_objects
 * (a pattern ending in '/' means the folder's contents; '*' crosses '/'),
 * mlx-lm's default patterns for MLX models, and a GGUF quantization chosen
 * by name (e.g. "Q4_K_M"). */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hub/hub_internal.h"

/* What mlx_lm.utils.get_model_path / snapshot_download asks for by default. */
static const char *const default_allow[] = {"*.json",        "model*.safetensors", "*.jinja",
                                            "tokenizer.model", "*.tiktoken",       "*.txt"};

void hub_selection_from_options(const mlxe_hub_download_options *options, hub_selection *out) {
    memset(out, 0, sizeof *out);
    if (options) {
        out->allow = options->allow_patterns;
        out->n_allow = options->n_allow_patterns;
        out->ignore = options->ignore_patterns;
        out->n_ignore = options->n_ignore_patterns;
        out->all_files = options->all_files;
        out->gguf_quant = options->gguf_quant && *options->gguf_quant ? options->gguf_quant : NULL;
    }
    if (!out->n_allow && !out->all_files && !out->gguf_quant) {
        out->allow = default_allow;
        out->n_allow = sizeof default_allow / sizeof default_allow[0];
    }
}

static bool pattern_matches(const char *pattern, const char *path) {
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '/') {
        char extended[1024];
        if (n + 2 > sizeof extended) return false;
        snprintf(extended, sizeof extended, "%s*", pattern);
        return fnmatch(extended, path, 0) == 0;
    }
    return fnmatch(pattern, path, 0) == 0;
}

static bool any_matches(const char *const *patterns, size_t n, const char *path) {
    for (size_t i = 0; i < n; i++)
        if (patterns[i] && pattern_matches(patterns[i], path)) return true;
    return false;
}

bool hub_selection_matches(const hub_selection *s, const char *path) {
    if (s->gguf_quant) {
        size_t n = strlen(path);
        if (n < 5 || strcasecmp(path + n - 5, ".gguf") != 0 || !strcasestr(path, s->gguf_quant))
            return false;
    } else if (!s->all_files && s->n_allow && !any_matches(s->allow, s->n_allow, path)) {
        return false;
    }
    return !any_matches(s->ignore, s->n_ignore, path);
}
