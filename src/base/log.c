/* base/log.c — per-category thresholds, the callback and stderr sinks, and
 * the ring of recent records read by the debug report.
 *
 * One mutex guards the ring and the sinks; thresholds are atomics so the
 * check on the hot path (is this level enabled?) takes no lock. */
#include "mlxengine/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "base/log_internal.h"

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};
static const char *const category_names[MLXE_LOG_CAT_COUNT] = {
    "general", "format", "tokenizer", "template", "runtime", "model",
    "engine",  "chat",   "hub",       "diag",     "server"};

static atomic_int thresholds[MLXE_LOG_CAT_COUNT] = {
    MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO,
    MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO, MLXE_LOG_INFO};

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static mlxe_log_callback sink_callback;
static void *sink_user;
static bool sink_stderr;
static mlxe_log_record ring[MLXE_LOG_RING_SIZE];
static size_t ring_count;   /* records held, up to MLXE_LOG_RING_SIZE */
static size_t ring_next;    /* slot the next record goes to */
static uint64_t next_sequence = 1;
static mlxe_log_filter log_filter;

const char *mlxe_log_level_name(mlxe_log_level level) {
    if ((unsigned)level > MLXE_LOG_OFF) return NULL;
    return level_names[level];
}

const char *mlxe_log_category_name(mlxe_log_category category) {
    if ((unsigned)category >= MLXE_LOG_CAT_COUNT) return NULL;
    return category_names[category];
}

void mlxe_log_set_level(mlxe_log_category category, mlxe_log_level level) {
    if ((unsigned)category >= MLXE_LOG_CAT_COUNT || (unsigned)level > MLXE_LOG_OFF) return;
    atomic_store(&thresholds[category], (int)level);
}

void mlxe_log_set_level_all(mlxe_log_level level) {
    for (int c = 0; c < MLXE_LOG_CAT_COUNT; c++) mlxe_log_set_level((mlxe_log_category)c, level);
}

mlxe_log_level mlxe_log_get_level(mlxe_log_category category) {
    if ((unsigned)category >= MLXE_LOG_CAT_COUNT) return MLXE_LOG_OFF;
    return (mlxe_log_level)atomic_load(&thresholds[category]);
}

bool mlxe_log_enabled(mlxe_log_level level, mlxe_log_category category) {
    if ((unsigned)category >= MLXE_LOG_CAT_COUNT) return false;
    return (int)level >= atomic_load_explicit(&thresholds[category], memory_order_relaxed) &&
           level < MLXE_LOG_OFF;
}

static int parse_level(const char *s, size_t n) {
    for (int l = 0; l <= MLXE_LOG_OFF; l++)
        if (strlen(level_names[l]) == n && strncasecmp(s, level_names[l], n) == 0) return l;
    if (n == 7 && strncasecmp(s, "warning", 7) == 0) return MLXE_LOG_WARN;
    return -1;
}

static int parse_category(const char *s, size_t n) {
    for (int c = 0; c < MLXE_LOG_CAT_COUNT; c++)
        if (strlen(category_names[c]) == n && strncasecmp(s, category_names[c], n) == 0) return c;
    return -1;
}

mlxe_status mlxe_log_configure(const char *spec, mlxe_error *err) {
    if (!spec || !*spec) return MLXE_OK;
    int explicit_level[MLXE_LOG_CAT_COUNT];
    for (int c = 0; c < MLXE_LOG_CAT_COUNT; c++) explicit_level[c] = -1;
    int default_level = -1;
    const char *item = spec;
    while (*item) {
        const char *end = strchr(item, ',');
        size_t len = end ? (size_t)(end - item) : strlen(item);
        while (len > 0 && (*item == ' ' || *item == '\t')) { item++; len--; }
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t')) len--;
        if (len > 0) {
            const char *eq = memchr(item, '=', len);
            if (eq) {
                int category = parse_category(item, (size_t)(eq - item));
                int level = parse_level(eq + 1, len - (size_t)(eq - item) - 1);
                if (category < 0)
                    return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                          "MLXE_LOG: unknown category in '%.*s' (categories: general, "
                                          "format, tokenizer, template, runtime, model, engine, chat, "
                                          "hub, diag, server)", (int)len, item);
                if (level < 0)
                    return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                          "MLXE_LOG: unknown level in '%.*s' (levels: trace, debug, "
                                          "info, warn, error, off)", (int)len, item);
                explicit_level[category] = level;
            } else {
                int level = parse_level(item, len);
                if (level < 0)
                    return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                          "MLXE_LOG: '%.*s' is neither a level (trace, debug, info, "
                                          "warn, error, off) nor category=level", (int)len, item);
                default_level = level;
            }
        }
        if (!end) break;
        item = end + 1;
    }
    for (int c = 0; c < MLXE_LOG_CAT_COUNT; c++) {
        int level = explicit_level[c] >= 0 ? explicit_level[c] : default_level;
        if (level >= 0) atomic_store(&thresholds[c], level);
    }
    return MLXE_OK;
}

mlxe_status mlxe_log_configure_from_env(mlxe_error *err) {
    return mlxe_log_configure(getenv("MLXE_LOG"), err);
}

void mlxe_log_set_callback(mlxe_log_callback callback, void *user) {
    pthread_mutex_lock(&sink_lock);
    sink_callback = callback;
    sink_user = user;
    pthread_mutex_unlock(&sink_lock);
}

void mlxe_log_set_stderr(bool enabled) {
    pthread_mutex_lock(&sink_lock);
    sink_stderr = enabled;
    pthread_mutex_unlock(&sink_lock);
}

void mlxe_log_set_filter(mlxe_log_filter filter) {
    pthread_mutex_lock(&sink_lock);
    log_filter = filter;
    pthread_mutex_unlock(&sink_lock);
}

void mlxe_log_apply_filter(char *message, size_t capacity) {
    pthread_mutex_lock(&sink_lock);
    if (log_filter) log_filter(message, capacity);
    pthread_mutex_unlock(&sink_lock);
}

void mlxe_log_write(mlxe_log_level level, mlxe_log_category category, const char *format, ...) {
    if (!mlxe_log_enabled(level, category)) return;
    mlxe_log_record record;
    memset(&record, 0, sizeof record);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    record.time_unix = (double)now.tv_sec + (double)(now.tv_nsec / 1000) * 1e-6;
    record.level = level;
    record.category = category;
    record.thread_id = (uint64_t)syscall(SYS_gettid);
    va_list args;
    va_start(args, format);
    vsnprintf(record.message, sizeof record.message, format, args);
    va_end(args);

    pthread_mutex_lock(&sink_lock);
    if (log_filter) log_filter(record.message, sizeof record.message);
    record.sequence = next_sequence++;
    ring[ring_next] = record;
    ring_next = (ring_next + 1) % MLXE_LOG_RING_SIZE;
    if (ring_count < MLXE_LOG_RING_SIZE) ring_count++;
    if (sink_stderr)
        fprintf(stderr, "[%s %s] %s\n", level_names[level], category_names[category], record.message);
    if (sink_callback) sink_callback(sink_user, &record);
    pthread_mutex_unlock(&sink_lock);
}

size_t mlxe_log_recent(mlxe_log_record *out, size_t max) {
    if (!out || max == 0) return 0;
    pthread_mutex_lock(&sink_lock);
    size_t n = ring_count < max ? ring_count : max;
    size_t start = (ring_next + MLXE_LOG_RING_SIZE - n) % MLXE_LOG_RING_SIZE;
    for (size_t i = 0; i < n; i++) out[i] = ring[(start + i) % MLXE_LOG_RING_SIZE];
    pthread_mutex_unlock(&sink_lock);
    return n;
}

void mlxe_log_clear_recent(void) {
    pthread_mutex_lock(&sink_lock);
    ring_count = 0;
    ring_next = 0;
    pthread_mutex_unlock(&sink_lock);
}
