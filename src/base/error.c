/* base/error.c — status names, the helpers that fill mlxe_error, and the
 * ring of the most recent errors (mlxe_recent_errors) they feed. */
#include "base/error.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/log_internal.h"

/* The ring: static storage, one lock (errors are rare next to the work that
 * precedes them, so a lock costs nothing noticeable). */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static mlxe_error_record ring[MLXE_ERROR_RING_SIZE];
static size_t ring_count;
static size_t ring_next;
static uint64_t next_sequence = 1;
/* The sequence of this thread's latest record, so mlxe_error_prefix can add
 * the caller's context to it. */
static _Thread_local uint64_t thread_last_sequence;
static _Thread_local uint64_t thread_id;

static void ring_record(const mlxe_error *err) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (!thread_id) thread_id = (uint64_t)syscall(SYS_gettid);
    pthread_mutex_lock(&ring_lock);
    mlxe_error_record *record = &ring[ring_next];
    record->sequence = next_sequence++;
    record->time_unix = (double)now.tv_sec + (double)(now.tv_nsec / 1000) * 1e-6;
    record->thread_id = thread_id;
    record->status = err->status;
    memcpy(record->message, err->message, sizeof record->message);
    thread_last_sequence = record->sequence;
    ring_next = (ring_next + 1) % MLXE_ERROR_RING_SIZE;
    if (ring_count < MLXE_ERROR_RING_SIZE) ring_count++;
    pthread_mutex_unlock(&ring_lock);
}

/* Replaces the message of this thread's latest record with the prefixed one
 * when that record is the error being prefixed (same status and message). */
static void ring_prefix(const mlxe_error *err, const char *old_message) {
    if (!thread_last_sequence) return;
    pthread_mutex_lock(&ring_lock);
    size_t last = (ring_next + MLXE_ERROR_RING_SIZE - 1) % MLXE_ERROR_RING_SIZE;
    for (size_t i = 0; i < ring_count; i++) {
        mlxe_error_record *record = &ring[(last + MLXE_ERROR_RING_SIZE - i) % MLXE_ERROR_RING_SIZE];
        if (record->sequence < thread_last_sequence) break;
        if (record->sequence != thread_last_sequence) continue;
        if (record->status == err->status && strcmp(record->message, old_message) == 0)
            memcpy(record->message, err->message, sizeof record->message);
        break;
    }
    pthread_mutex_unlock(&ring_lock);
}

size_t mlxe_recent_errors(mlxe_error_record *out, size_t max) {
    if (!out || max == 0) return 0;
    pthread_mutex_lock(&ring_lock);
    size_t n = ring_count < max ? ring_count : max;
    size_t start = (ring_next + MLXE_ERROR_RING_SIZE - n) % MLXE_ERROR_RING_SIZE;
    for (size_t i = 0; i < n; i++) out[i] = ring[(start + i) % MLXE_ERROR_RING_SIZE];
    pthread_mutex_unlock(&ring_lock);
    /* Redacted on the way out (redaction allocates, recording must not). */
    for (size_t i = 0; i < n; i++) mlxe_log_apply_filter(out[i].message, sizeof out[i].message);
    return n;
}

void mlxe_recent_errors_clear(void) {
    pthread_mutex_lock(&ring_lock);
    ring_count = 0;
    ring_next = 0;
    pthread_mutex_unlock(&ring_lock);
}

void mlxe_error_clear(mlxe_error *err) {
    if (!err) return;
    err->status = MLXE_OK;
    err->message[0] = '\0';
}

const char *mlxe_status_name(mlxe_status status) {
    switch (status) {
    case MLXE_OK: return "ok";
    case MLXE_ERR_INVALID_ARGUMENT: return "invalid_argument";
    case MLXE_ERR_IO: return "io";
    case MLXE_ERR_FORMAT: return "format";
    case MLXE_ERR_UNSUPPORTED: return "unsupported";
    case MLXE_ERR_OUT_OF_MEMORY: return "out_of_memory";
    case MLXE_ERR_NOT_FOUND: return "not_found";
    case MLXE_ERR_CANCELLED: return "cancelled";
    case MLXE_ERR_NETWORK: return "network";
    case MLXE_ERR_TEMPLATE: return "template";
    case MLXE_ERR_LIMIT: return "limit";
    case MLXE_ERR_DEVICE: return "device";
    case MLXE_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

/* Cuts s so it does not end inside a UTF-8 sequence (vsnprintf cuts bytes). */
static void trim_partial_utf8(char *s) {
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < want) s[i - 1] = '\0';
}

mlxe_status mlxe_error_set(mlxe_error *err, mlxe_status status, const char *format, ...) {
    if (!err) return status;
    err->status = status;
    va_list args;
    va_start(args, format);
    int written = vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
    if (written >= (int)sizeof err->message) trim_partial_utf8(err->message);
    if (status != MLXE_OK) ring_record(err);
    return status;
}

mlxe_status mlxe_error_prefix(mlxe_error *err, const char *format, ...) {
    if (!err) return MLXE_OK;
    char prefix[MLXE_ERROR_MESSAGE_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(prefix, sizeof prefix, format, args);
    va_end(args);
    char joined[MLXE_ERROR_MESSAGE_SIZE];
    int written = snprintf(joined, sizeof joined, "%s: %s", prefix, err->message);
    memcpy(prefix, err->message, sizeof prefix); /* the message before, to find its record */
    memcpy(err->message, joined, sizeof joined);
    if (written >= (int)sizeof joined) trim_partial_utf8(err->message);
    ring_prefix(err, prefix);
    return err->status;
}
