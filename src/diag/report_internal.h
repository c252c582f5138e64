/* diag/report_internal.h — the pieces of the debug report.
 *
 * Each collector returns a cJSON object (or array) holding one section of
 * the JSON report, as described by docs/debug-report.schema.json; the
 * Markdown form is rendered from the same tree, so both always agree. A
 * collector that cannot learn something says why in the section instead of
 * failing. They return NULL only when out of memory. */
#ifndef MLXE_DIAG_REPORT_INTERNAL_H
#define MLXE_DIAG_REPORT_INTERNAL_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "mlxengine/diag.h"
#include "mlxengine/log.h"

/* The report's JSON schema version (bump when a field changes meaning). */
#define MLXE_REPORT_SCHEMA_VERSION 2

cJSON *mlxe_diag_collect_library(void);
cJSON *mlxe_diag_collect_system(void);
cJSON *mlxe_diag_collect_cpu(void);
cJSON *mlxe_diag_collect_memory(void);
/* probe false: no driver library is loaded (status "not_probed"). */
cJSON *mlxe_diag_collect_gpus(bool probe);
/* gpus: the section above, to say why the CUDA backend is unavailable. */
cJSON *mlxe_diag_collect_backends(const cJSON *gpus);
cJSON *mlxe_diag_collect_environment(void);
/* cache_dir NULL: the default location. scan false: location only. */
cJSON *mlxe_diag_collect_hub_cache(const char *cache_dir, bool scan);
/* The engine's registry of loaded models (engine/model_registry.h). */
cJSON *mlxe_diag_collect_loaded_models(void);
/* The n most recent errors returned to callers (mlxe_recent_errors). */
cJSON *mlxe_diag_collect_returned_errors(size_t n);
/* The n most recent records (errors_only: warn and error records only). */
cJSON *mlxe_diag_collect_log(size_t n, bool errors_only);
/* One log record as a JSON object (message redacted). */
cJSON *mlxe_diag_log_record_to_json(const mlxe_log_record *record);

/* ISO 8601 UTC with milliseconds ("2026-11-25T19:28:10.123Z") into out. */
void mlxe_diag_format_time(double time_unix, char *out, size_t size);

/* Renders a full JSON report as Markdown (malloc'd; NULL when out of memory). */
char *mlxe_diag_render_markdown(const cJSON *report);

#endif
