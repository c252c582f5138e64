/* hub/hub_paths.c — huggingface_hub's home, cache and token locations (see
 * hub_paths.h), in the order of its constants.py. */
#include "hub/hub_paths.h"

#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"

static const char *nonempty_env(const char *name) {
    const char *value = getenv(name);
    return value && *value ? value : NULL;
}

char *hub_hf_home(void) {
    const char *home = nonempty_env("HF_HOME");
    if (home) return strdup(home);
    const char *xdg = nonempty_env("XDG_CACHE_HOME");
    if (xdg) return mlxe_path_join(xdg, "huggingface");
    const char *user_home = nonempty_env("HOME");
    if (!user_home) {
        struct passwd *pw = getpwuid(getuid());
        user_home = pw && pw->pw_dir ? pw->pw_dir : "/";
    }
    char *cache = mlxe_path_join(user_home, ".cache");
    if (!cache) return NULL;
    char *result = mlxe_path_join(cache, "huggingface");
    free(cache);
    return result;
}

/* $HF_HOME/name. */
static char *in_hf_home(const char *name) {
    char *home = hub_hf_home();
    if (!home) return NULL;
    char *result = mlxe_path_join(home, name);
    free(home);
    return result;
}

char *hub_default_cache_dir(void) {
    const char *cache = nonempty_env("HF_HUB_CACHE");
    if (!cache) cache = nonempty_env("HUGGINGFACE_HUB_CACHE");
    return cache ? strdup(cache) : in_hf_home("hub");
}

char *hub_token_path(void) {
    const char *path = nonempty_env("HF_TOKEN_PATH");
    return path ? strdup(path) : in_hf_home("token");
}

char *hub_stored_tokens_path(void) { return in_hf_home("stored_tokens"); }
