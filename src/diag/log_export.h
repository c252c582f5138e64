/* diag/log_export.h — parsers shared by the tools' export-log options
 * (the export itself is public, in mlxengine/diag.h). */
#ifndef MLXE_DIAG_LOG_EXPORT_H
#define MLXE_DIAG_LOG_EXPORT_H

#include "mlxengine/diag.h"
#include "mlxengine/log.h"

/* "trace", "debug", "info", "warn"/"warning", "error", "off" (any case). */
mlxe_status mlxe_diag_parse_level(const char *text, mlxe_log_level *out, mlxe_error *err);

/* A --since value into seconds since the epoch: a number of seconds since
 * the epoch, an ISO 8601 UTC time ("2026-11-25T19:00:00Z", fraction and Z
 * optional, or a date alone), or an age before now_unix ("30s", "10m", "2h",
 * "1d"). */
mlxe_status mlxe_diag_parse_since(const char *text, double now_unix, double *out, mlxe_error *err);

#endif
