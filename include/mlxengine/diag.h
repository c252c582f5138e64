/* mlxengine/diag.h — diagnostics: the debug report and secret redaction.
 *
 * The debug report is what a user attaches to a bug report: library version
 * and build, OS, CPU, memory, GPUs, backends and why one is unavailable,
 * relevant environment variables, the Hugging Face cache, the models loaded
 * now with their memory, the most recent errors returned to callers (with
 * their context) and the most recent log records. It comes as Markdown (for people) or JSON (for
 * tools; the schema is docs/debug-report.schema.json in the source tree).
 *
 * Redaction: Hugging Face tokens (hf_...), "Bearer ..." credentials, the
 * values of HF_TOKEN and other secret-named variables, the token file's
 * content, passwords in URLs (user:pass@host) and secret query parameters
 * (?token=, api_key=, ...) never appear in a report, and never in the log
 * once redaction is installed as the log's filter. The filter is installed
 * automatically when the library is loaded as a shared object (a load-time
 * constructor); a program that links the static library and never calls a
 * diag function should call mlxe_diag_install_redaction() itself.
 *
 * Thread-safety: every function here may be called from any thread. */
#ifndef MLXENGINE_DIAG_H
#define MLXENGINE_DIAG_H

#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/log.h"
#include "mlxengine/status.h"

#ifdef __cplusplus
extern "C" {
#endif
#pragma GCC visibility push(default)

typedef enum mlxe_report_format {
    MLXE_REPORT_MARKDOWN = 0,
    MLXE_REPORT_JSON = 1
} mlxe_report_format;

typedef struct mlxe_debug_report_options {
    mlxe_report_format format;  /* default MLXE_REPORT_MARKDOWN */
    size_t n_log_records;       /* most recent log records to include; default 50 */
    size_t n_errors;            /* most recent warn/error log records to list apart, and most
                                   recent errors returned to callers (mlxe_recent_errors); default 20 */
    bool include_cache;         /* scan the Hugging Face cache (sizes, partial downloads); default true */
    const char *hub_cache_dir;  /* cache to scan; NULL: from HF_HUB_CACHE / HF_HOME as huggingface_hub does */
    bool probe_gpus;            /* load NVML / the CUDA driver to list GPUs; default true */
} mlxe_debug_report_options;

/* Fills the defaults above. */
void mlxe_debug_report_options_init(mlxe_debug_report_options *options);

/* Builds the report (options NULL = defaults) into a new NUL-terminated
 * string *out, to be released with mlxe_debug_report_free. Sections that
 * cannot be gathered say why inside the report rather than failing it; the
 * call fails only on bad arguments or when out of memory. The text is
 * redacted (see above) whatever the sources contain. */
mlxe_status mlxe_debug_report(const mlxe_debug_report_options *options, char **out,
                              mlxe_error *err);
/* Accepts NULL. */
void mlxe_debug_report_free(char *report);

/* Copies text into out (out_size bytes, always NUL-terminated when out_size
 * > 0) with every secret replaced by "[REDACTED]", and returns the length the
 * whole redacted text needs, excluding the NUL (as snprintf does: call with
 * out_size 0 to measure). NULL text counts as "". */
size_t mlxe_redact_secrets(const char *text, char *out, size_t out_size);

/* Adds a literal value to redact wherever it appears (e.g. a server's API
 * key). Values shorter than 6 bytes are ignored; surrounding whitespace is
 * stripped; the 32 most recent values are kept. */
mlxe_status mlxe_redact_add_secret(const char *secret, mlxe_error *err);

/* Registers the secrets of this process — HF_TOKEN, HUGGING_FACE_HUB_TOKEN
 * and every environment variable whose name marks a secret (*_TOKEN,
 * *_API_KEY, *_PASSWORD, ...), the token file ($HF_TOKEN_PATH, else
 * $HF_HOME/token) and $HF_HOME/stored_tokens — and installs redaction as the
 * log's filter, so no record keeps a secret. Call again after changing the
 * environment or logging in. Idempotent. */
void mlxe_diag_install_redaction(void);

/* ---- keeping and exporting the log ---- */

/* Appends every log record from now on to the file at path, one JSON object
 * per line ({"sequence", "time", "time_unix", "level", "category",
 * "thread_id", "message"}, as in the report's recent_log), after redaction.
 * The file is created with mode 0600. It takes the log's callback slot
 * (mlxe_log_set_callback); NULL path stops and closes the file. The tools
 * call it when MLXE_LOG_FILE is set, so `export-log` can read a previous
 * run's log. */
mlxe_status mlxe_diag_log_to_file(const char *path, mlxe_error *err);

typedef struct mlxe_log_export_options {
    const char *file;          /* a file written by mlxe_diag_log_to_file; NULL: this process's ring */
    mlxe_log_level min_level;  /* default MLXE_LOG_TRACE (everything) */
    double since_unix;         /* records at or after this time; default 0 (all) */
    bool json;                 /* JSON Lines; default false: "time level category [thread] message" lines */
} mlxe_log_export_options;

void mlxe_log_export_options_init(mlxe_log_export_options *options);

/* Writes the selected records, oldest first, into a new string *out (free
 * with mlxe_debug_report_free). Lines of the file that are not records are
 * skipped. MLXE_ERR_NOT_FOUND / MLXE_ERR_IO name the file when it cannot be
 * read. */
mlxe_status mlxe_log_export(const mlxe_log_export_options *options, char **out, mlxe_error *err);

#pragma GCC visibility pop
#ifdef __cplusplus
}
#endif
#endif
