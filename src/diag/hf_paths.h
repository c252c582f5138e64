/* diag/hf_paths.h — where huggingface_hub keeps its home, cache and token
 * (shared/docs/HUB.md §3, §2.8). The hub layer resolves the same paths; this
 * copy lets diagnostics run without it. Every function returns a malloc'd
 * path, or NULL when out of memory. */
#ifndef MLXE_DIAG_HF_PATHS_H
#define MLXE_DIAG_HF_PATHS_H

/* $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
char *mlxe_diag_hf_home(void);
/* $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub. */
char *mlxe_diag_hub_cache_dir(void);
/* $HF_TOKEN_PATH, else $HF_HOME/token. */
char *mlxe_diag_token_path(void);

#endif
