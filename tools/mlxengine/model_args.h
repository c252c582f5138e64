/* tools/mlxengine/model_args.h — flag parsing shared by the commands that
 * run a model (generate, logits): numbers with range checks, id lists, and
 * loading a model + context with the library's error on failure. */
#ifndef MLXE_TOOL_MODEL_ARGS_H
#define MLXE_TOOL_MODEL_ARGS_H

#include <stdbool.h>
#include <stdint.h>

#include "mlxengine/mlxengine.h"

/* If argv[*i] is "--name VALUE" or "--name=VALUE", sets *value, advances *i
 * past it and returns 1; returns 0 when argv[*i] is another flag; -1 (with
 * a message on stderr) when the value is missing. */
int tool_flag_value(int argc, char **argv, int *i, const char *name, const char **value);

/* Strict number parsing: the whole string, in range. Print a usage message
 * naming the flag and return false on failure. */
bool tool_parse_int(const char *flag, const char *text, long long min, long long max, long long *out);
bool tool_parse_float(const char *flag, const char *text, double min, double max, double *out);
bool tool_parse_u64(const char *flag, const char *text, uint64_t *out);

/* Parses "1,2,3" into a malloc'd array (free it). False with a message on
 * a malformed list. */
bool tool_parse_ids(const char *flag, const char *text, int32_t **ids, int64_t *count);

/* Resolves what the user typed as a model: a folder path (anything starting
 * with '/', '.' or '~', or an existing folder) is used as it is; otherwise a
 * registry alias or a Hub id, taken from the Hugging Face cache (offline
 * works for a cached model) or downloaded with progress on stderr. Returns a
 * malloc'd folder, or NULL after printing the error. */
char *tool_resolve_model(const char *command, const char *name);

/* Whether text names a model rather than being a prompt: an existing
 * folder, a registry alias, or something shaped like a Hub id
 * (`owner/name[@rev][:QUANT]`, no white space). `run` uses it to read
 * `mlxengine run "PROMPT"` as a prompt for the default model. */
bool tool_looks_like_model(const char *text);

/* Loads the model named by dir (resolved as tool_resolve_model does) and a
 * one-sequence context large enough for n_tokens; prints the library's
 * message and returns false on error. */
bool tool_load_model(const char *dir, int n_threads, int64_t n_tokens, mlxe_model **model,
                     mlxe_context **ctx);
/* Same on a device (--device cpu|cuda|cuda:N|auto; NULL: the library's default, cpu). */
bool tool_load_model_on(const char *dir, const char *device, int n_threads, int64_t n_tokens, mlxe_model **model,
                        mlxe_context **ctx);

/* As tool_load_model for a folder already resolved. */
bool tool_load_model_folder(const char *dir, int n_threads, int64_t n_tokens, mlxe_model **model,
                            mlxe_context **ctx);
bool tool_load_model_folder_on(const char *dir, const char *device, int n_threads, int64_t n_tokens,
                               mlxe_model **model, mlxe_context **ctx);

/* Sets options->progress to a progress line on stderr (a terminal only)
 * when options->device may be a GPU, where copying the weights takes
 * seconds. */
void tool_show_load_progress(mlxe_model_options *options);

#endif
