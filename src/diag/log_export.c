/* diag/log_export.c — a log file sink (JSON Lines) and the export of log
 * records, from that file or from the in-memory ring, filtered by level and
 * time; plus the parser of the tools' `--since` values. */
#include "diag/log_export.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "base/grow.h"
#include "base/json.h"
#include "diag/redact.h"
#include "diag/report_internal.h"

/* The log file can grow; export reads at most this much of it. */
#define MAX_LOG_FILE_SIZE (256u << 20)

static pthread_mutex_t file_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_file;

/* Runs under the log's lock, after the redaction filter. */
static void write_record_line(void *user, const mlxe_log_record *record) {
    (void)user;
    cJSON *item = mlxe_diag_log_record_to_json(record);
    char *line = item ? cJSON_PrintUnformatted(item) : NULL;
    cJSON_Delete(item);
    if (!line) return;
    pthread_mutex_lock(&file_lock);
    if (log_file) {
        fputs(line, log_file);
        fputc('\n', log_file);
        fflush(log_file);
    }
    pthread_mutex_unlock(&file_lock);
    cJSON_free(line);
}

mlxe_status mlxe_diag_log_to_file(const char *path, mlxe_error *err) {
    FILE *opened = NULL;
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
            return mlxe_error_set(err, MLXE_ERR_IO, "%s: cannot open the log file for writing: %s "
                                  "(check MLXE_LOG_FILE)", path, strerror(errno));
        opened = fdopen(fd, "a");
        if (!opened) {
            close(fd);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "%s: cannot open the log file", path);
        }
    }
    mlxe_log_set_callback(NULL, NULL);
    pthread_mutex_lock(&file_lock);
    if (log_file) fclose(log_file);
    log_file = opened;
    pthread_mutex_unlock(&file_lock);
    if (opened) mlxe_log_set_callback(write_record_line, NULL);
    return MLXE_OK;
}

void mlxe_log_export_options_init(mlxe_log_export_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->min_level = MLXE_LOG_TRACE;
}

static int parse_level_name(const char *name) {
    for (int level = MLXE_LOG_TRACE; level <= MLXE_LOG_OFF; level++)
        if (strcasecmp(name, mlxe_log_level_name((mlxe_log_level)level)) == 0) return level;
    if (strcasecmp(name, "warning") == 0) return MLXE_LOG_WARN;
    return -1;
}

mlxe_status mlxe_diag_parse_level(const char *text, mlxe_log_level *out, mlxe_error *err) {
    int level = text ? parse_level_name(text) : -1;
    if (level < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "'%s' is not a log level (trace, debug, info, warn, error)", text ? text : "");
    *out = (mlxe_log_level)level;
    return MLXE_OK;
}

mlxe_status mlxe_diag_parse_since(const char *text, double now_unix, double *out, mlxe_error *err) {
    if (!text || !*text) goto bad;
    char *end = NULL;
    double number = strtod(text, &end);
    if (end != text && end[0] && !end[1] && number >= 0) {
        static const struct { char unit; double seconds; } units[] = {
            {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (end[0] == units[i].unit) {
                *out = now_unix - number * units[i].seconds;
                return MLXE_OK;
            }
        goto bad;
    }
    if (end != text && !*end) {
        *out = number; /* seconds since the epoch */
        return MLXE_OK;
    }
    /* ISO 8601 in UTC: 2026-11-25T19:00:00[.mmm][Z], or with a space. */
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) rest = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
    if (!rest) {
        memset(&tm, 0, sizeof tm);
        rest = strptime(text, "%Y-%m-%d", &tm);
    }
    if (!rest) goto bad;
    double fraction = 0;
    if (*rest == '.') {
        fraction = strtod(rest, &end);
        rest = end;
    }
    if (*rest == 'Z') rest++;
    if (*rest) goto bad;
    *out = (double)timegm(&tm) + fraction;
    return MLXE_OK;
bad:
    return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                          "'%s' is not a time: use seconds since the epoch, an ISO 8601 UTC time "
                          "(2026-11-25T19:00:00Z) or an age such as 30s, 10m, 2h, 1d", text ? text : "");
}

typedef mlxe_text export_buffer;

/* Appends one line. */
static void add_text(export_buffer *b, const char *text) {
    mlxe_text_append(b, text, strlen(text));
    mlxe_text_append(b, "\n", 1);
}

/* Adds one record (as JSON) if it passes the filters. Takes ownership of item. */
static void add_record(export_buffer *b, cJSON *item, const mlxe_log_export_options *options) {
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(item, "level");
    const cJSON *time_unix = cJSON_GetObjectItemCaseSensitive(item, "time_unix");
    const cJSON *message = cJSON_GetObjectItemCaseSensitive(item, "message");
    int level_value = cJSON_IsString(level) ? parse_level_name(level->valuestring) : -1;
    if (level_value < 0 || !cJSON_IsNumber(time_unix) || !cJSON_IsString(message) ||
        level_value < (int)options->min_level || time_unix->valuedouble < options->since_unix) {
        cJSON_Delete(item);
        return;
    }
    char *line = NULL;
    if (options->json) {
        line = cJSON_PrintUnformatted(item);
    } else {
        const cJSON *time = cJSON_GetObjectItemCaseSensitive(item, "time");
        const cJSON *category = cJSON_GetObjectItemCaseSensitive(item, "category");
        const cJSON *thread = cJSON_GetObjectItemCaseSensitive(item, "thread_id");
        size_t size = strlen(message->valuestring) + 128;
        line = malloc(size);
        if (line)
            snprintf(line, size, "%s %-5s %-9s [%lld] %s", cJSON_IsString(time) ? time->valuestring : "?",
                     level->valuestring, cJSON_IsString(category) ? category->valuestring : "?",
                     cJSON_IsNumber(thread) ? (long long)thread->valuedouble : 0LL, message->valuestring);
    }
    cJSON_Delete(item);
    if (!line) {
        b->out_of_memory = true;
        return;
    }
    /* Newlines inside a message must not split a record. */
    for (char *c = line; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
    add_text(b, line);
    free(line);
}

mlxe_status mlxe_log_export(const mlxe_log_export_options *options, char **out, mlxe_error *err) {
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_log_export: out is NULL");
    *out = NULL;
    mlxe_log_export_options defaults;
    if (!options) {
        mlxe_log_export_options_init(&defaults);
        options = &defaults;
    }
    export_buffer b = {0};
    mlxe_text_append(&b, "", 0); /* start with an empty string, not NULL */
    if (options->file) {
        char *text = NULL;
        size_t size = 0;
        mlxe_status status = mlxe_file_read_all(options->file, MAX_LOG_FILE_SIZE, &text, &size, err);
        if (status != MLXE_OK) {
            free(b.data);
            return mlxe_error_prefix(err, "log export");
        }
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            cJSON *item = cJSON_Parse(line);
            if (item) add_record(&b, item, options);
        }
        free(text);
    } else {
        mlxe_log_record *records = calloc(MLXE_LOG_RING_SIZE, sizeof *records);
        if (!records) {
            free(b.data);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "log export: out of memory");
        }
        size_t n = mlxe_log_recent(records, MLXE_LOG_RING_SIZE);
        for (size_t i = 0; i < n; i++) {
            cJSON *item = mlxe_diag_log_record_to_json(&records[i]);
            if (item) add_record(&b, item, options);
        }
        free(records);
    }
    char *redacted = b.out_of_memory || !b.data ? NULL : mlxe_redact_dup(b.data);
    free(b.data);
    if (!redacted) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "log export: out of memory");
    *out = redacted;
    return MLXE_OK;
}
