/* diag/report.c — mlxe_debug_report: gathers every section into one JSON
 * tree, then prints it as JSON or renders it as Markdown, and redacts the
 * final text once more as a last guard (the replacement contains no quote,
 * backslash or newline, so the JSON stays valid). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "diag/redact.h"
#include "diag/report_internal.h"

void mlxe_debug_report_options_init(mlxe_debug_report_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->format = MLXE_REPORT_MARKDOWN;
    options->n_log_records = 50;
    options->n_errors = 20;
    options->include_cache = true;
    options->hub_cache_dir = NULL;
    options->probe_gpus = true;
}

static cJSON *build_report(const mlxe_debug_report_options *options) {
    cJSON *report = cJSON_CreateObject();
    if (!report) return NULL;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char generated[40];
    mlxe_diag_format_time((double)now.tv_sec + (double)now.tv_nsec * 1e-9, generated, sizeof generated);
    cJSON_AddNumberToObject(report, "schema_version", MLXE_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(report, "generated_at", generated);
    cJSON_AddItemToObject(report, "library", mlxe_diag_collect_library());
    cJSON_AddItemToObject(report, "system", mlxe_diag_collect_system());
    cJSON_AddItemToObject(report, "cpu", mlxe_diag_collect_cpu());
    cJSON_AddItemToObject(report, "memory", mlxe_diag_collect_memory());
    cJSON *gpus = mlxe_diag_collect_gpus(options->probe_gpus);
    cJSON_AddItemToObject(report, "gpus", gpus);
    cJSON_AddItemToObject(report, "backends", mlxe_diag_collect_backends(gpus));
    cJSON_AddItemToObject(report, "environment", mlxe_diag_collect_environment());
    cJSON_AddItemToObject(report, "hub_cache",
                          mlxe_diag_collect_hub_cache(options->hub_cache_dir, options->include_cache));
    cJSON_AddItemToObject(report, "loaded_models", mlxe_diag_collect_loaded_models());
    cJSON_AddItemToObject(report, "returned_errors", mlxe_diag_collect_returned_errors(options->n_errors));
    cJSON_AddItemToObject(report, "recent_errors", mlxe_diag_collect_log(options->n_errors, true));
    cJSON_AddItemToObject(report, "recent_log", mlxe_diag_collect_log(options->n_log_records, false));
    return report;
}

mlxe_status mlxe_debug_report(const mlxe_debug_report_options *options, char **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_debug_report: out is NULL");
    *out = NULL;
    mlxe_debug_report_options defaults;
    if (!options) {
        mlxe_debug_report_options_init(&defaults);
        options = &defaults;
    }
    if (options->format != MLXE_REPORT_MARKDOWN && options->format != MLXE_REPORT_JSON)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "mlxe_debug_report: unknown format %d (use MLXE_REPORT_MARKDOWN or MLXE_REPORT_JSON)",
                              (int)options->format);
    /* Pick up secrets set since load (a token written by a login, say). */
    mlxe_diag_install_redaction();
    MLXE_DEBUG(MLXE_LOG_CAT_DIAG, "building a debug report");
    cJSON *report = build_report(options);
    if (!report) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "debug report: out of memory");
    char *redacted = NULL;
    if (options->format == MLXE_REPORT_JSON) {
        char *text = cJSON_Print(report);
        redacted = text ? mlxe_redact_dup(text) : NULL;
        cJSON_free(text);
    } else {
        char *text = mlxe_diag_render_markdown(report);
        redacted = text ? mlxe_redact_dup(text) : NULL;
        free(text);
    }
    cJSON_Delete(report);
    if (!redacted) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "debug report: out of memory");
    *out = redacted;
    return MLXE_OK;
}

void mlxe_debug_report_free(char *report) { free(report); }
