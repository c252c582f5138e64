/* tests/diag/shared_redaction.c — a program that uses only the public API
 * and links libmlxengine.so, calling nothing of diag: the library's
 * load-time constructor must already have installed redaction as the log
 * filter, with the secrets of the environment it started in
 * (MY_SERVICE_TOKEN, set by the test). */
#include <stdio.h>
#include <string.h>

#include "mlxengine/mlxengine.h"

int main(void) {
    mlxe_log_set_level_all(MLXE_LOG_INFO);
    mlxe_log_write(MLXE_LOG_WARN, MLXE_LOG_CAT_HUB, "token hf_SharedSharedShared0123456789abcdefg and %s",
                   "plain-value-1234");
    mlxe_log_record record;
    if (mlxe_log_recent(&record, 1) != 1) {
        printf("no record\n0 passed, 1 failed\n");
        return 1;
    }
    if (strstr(record.message, "hf_Shared") || strstr(record.message, "plain-value-1234") ||
        strcmp(record.message, "token [REDACTED] and [REDACTED]") != 0) {
        printf("not redacted: %s\n0 passed, 1 failed\n", record.message);
        return 1;
    }
    printf("1 passed, 0 failed\n");
    return 0;
}
