/* hub/hub_paths.h — where huggingface_hub keeps its home, cache and tokens,
 * resolved from the environment in the order of its constants.py
 * (shared/docs/HUB.md §3, §2.8). The one implementation: the hub client and
 * diagnostics (report, redaction, cache survey) both use it. It pulls in no
 * curl or OpenSSL header, so any layer may include it. Every function
 * returns a malloc'd path, or NULL when out of memory. */
#ifndef MLXE_HUB_PATHS_H
#define MLXE_HUB_PATHS_H

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface
 * (~ is $HOME, else the password database's home, as os.path.expanduser). */
char *hub_hf_home(void);
/* $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub. */
char *hub_default_cache_dir(void);
/* $HF_TOKEN_PATH, else $HF_HOME/token. */
char *hub_token_path(void);
/* $HF_HOME/stored_tokens (named tokens saved by `hf auth login`). */
char *hub_stored_tokens_path(void);

#endif
