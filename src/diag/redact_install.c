/* diag/redact_install.c — gathers this process's secrets (environment, token
 * files) for redaction and installs redaction as the log's filter, at load
 * time and on request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "base/log_internal.h"
#include "hub/hub_paths.h"
#include "diag/redact.h"
#include "mlxengine/diag.h"

extern char **environ;

/* Token files are a line; stored_tokens is a small INI file. */
#define MAX_TOKEN_FILE_SIZE (64 * 1024)

static void add_token_file(const char *path) {
    char *text = NULL;
    size_t size = 0;
    if (!path || mlxe_file_read_all(path, MAX_TOKEN_FILE_SIZE, &text, &size, NULL) != MLXE_OK) return;
    mlxe_redact_add_secret(text, NULL);
    free(text);
}

/* huggingface_hub's stored_tokens: "[name]" sections with "hf_token = X". */
static void add_stored_tokens(const char *path) {
    char *text = NULL;
    size_t size = 0;
    if (!path || mlxe_file_read_all(path, MAX_TOKEN_FILE_SIZE, &text, &size, NULL) != MLXE_OK) return;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        char *key = line;
        while (*key == ' ' || *key == '\t') key++;
        size_t key_len = strlen(key);
        while (key_len > 0 && (key[key_len - 1] == ' ' || key[key_len - 1] == '\t')) key[--key_len] = '\0';
        if (mlxe_redact_is_secret_name(key)) mlxe_redact_add_secret(eq + 1, NULL);
    }
    free(text);
}

void mlxe_diag_install_redaction(void) {
    for (char **entry = environ; entry && *entry; entry++) {
        const char *eq = strchr(*entry, '=');
        if (!eq || (size_t)(eq - *entry) >= 128) continue;
        char name[128];
        memcpy(name, *entry, (size_t)(eq - *entry));
        name[eq - *entry] = '\0';
        /* The shell's PWD and OLDPWD are folders, not passwords ("pwd" is one
         * in a URL or a key=value text): treating them as secrets would blank
         * every path under the working folder. */
        if (strcmp(name, "PWD") == 0 || strcmp(name, "OLDPWD") == 0) continue;
        if (mlxe_redact_is_secret_name(name)) mlxe_redact_add_secret(eq + 1, NULL);
    }
    char *token_path = hub_token_path();
    add_token_file(token_path);
    free(token_path);
    char *stored = hub_stored_tokens_path();
    add_stored_tokens(stored);
    free(stored);
    mlxe_log_set_filter(mlxe_redact_in_place);
}

/* Loaded as a shared object (or linked with this file), the library redacts
 * its log from the start, before any caller had a chance to set it up. */
__attribute__((constructor)) static void install_redaction_at_load(void) {
    mlxe_diag_install_redaction();
}
