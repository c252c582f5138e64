/* diag/report_markdown.c — renders the JSON report as CommonMark.
 *
 * One `##` section per top-level key, in the report's order. Objects become
 * two-column tables, arrays of objects become tables with a column per key
 * of the first item, nested arrays and objects are summarised in a cell, and
 * the log goes in a fenced code block. Cell text is escaped (every ASCII
 * punctuation character with meaning in CommonMark gets a backslash, which
 * CommonMark allows before any punctuation), so a model id or log message
 * cannot break the table or inject markup. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/grow.h"
#include "diag/redact.h"
#include "diag/report_internal.h"

typedef mlxe_text text_buffer;

static void append_bytes(text_buffer *b, const char *bytes, size_t n) { mlxe_text_append(b, bytes, n); }

static void append(text_buffer *b, const char *text) { append_bytes(b, text, strlen(text)); }

static void appendf(text_buffer *b, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void appendf(text_buffer *b, const char *format, ...) {
    char small[1024];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        append_bytes(b, small, (size_t)n);
        return;
    }
    char *large = malloc((size_t)n + 1);
    if (!large) {
        b->out_of_memory = true;
        return;
    }
    va_start(args, format);
    vsnprintf(large, (size_t)n + 1, format, args);
    va_end(args);
    append_bytes(b, large, (size_t)n);
    free(large);
}

/* Table-cell text: secrets redacted (before escaping, which would hide a
 * secret's spelling from the final redaction pass), markup escaped, line
 * breaks turned into spaces. */
static void append_escaped(text_buffer *b, const char *raw) {
    char *text = mlxe_redact_dup(raw);
    if (!text) {
        b->out_of_memory = true;
        return;
    }
    for (const char *c = text; *c; c++) {
        if (*c == '\n' || *c == '\r' || *c == '\t') {
            append(b, " ");
        } else if (strchr("\\`*_[]<>|#!~&{}", *c)) {
            char pair[2] = {'\\', *c};
            append_bytes(b, pair, 2);
        } else {
            append_bytes(b, c, 1);
        }
    }
    free(text);
}

/* "1.5 GiB (1610612736 bytes)" for *_bytes fields. */
static void append_bytes_value(text_buffer *b, double bytes) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = bytes;
    size_t unit = 0;
    while (value >= 1024 && unit < 4) {
        value /= 1024;
        unit++;
    }
    if (unit == 0) appendf(b, "%.0f B", bytes);
    else appendf(b, "%.1f %s (%.0f bytes)", value, units[unit], bytes);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* One value inside a cell. */
static void append_cell(text_buffer *b, const char *key, const cJSON *value) {
    if (cJSON_IsNull(value) || !value) {
        /* A missing error or reason is good news, anything else unknown. */
        append(b, key && (strcmp(key, "error") == 0 || strcmp(key, "reason") == 0) ? "none" : "unknown");
    } else if (cJSON_IsBool(value)) {
        append(b, cJSON_IsTrue(value) ? "yes" : "no");
    } else if (cJSON_IsNumber(value)) {
        if (key && ends_with(key, "_bytes")) append_bytes_value(b, value->valuedouble);
        else if (value->valuedouble == (double)(long long)value->valuedouble) appendf(b, "%lld", (long long)value->valuedouble);
        else appendf(b, "%g", value->valuedouble);
    } else if (cJSON_IsString(value)) {
        if (!*value->valuestring) append(b, "(empty)");
        else append_escaped(b, value->valuestring);
    } else if (cJSON_IsArray(value)) {
        const cJSON *item;
        bool first = true;
        if (!cJSON_GetArraySize(value)) append(b, "none");
        cJSON_ArrayForEach(item, value) {
            if (!first) append(b, ", ");
            first = false;
            if (cJSON_IsObject(item)) {
                append(b, "(");
                append_cell(b, NULL, item); /* e.g. "path: /usr/lib/libllama.so; found: no" */
                append(b, ")");
            } else {
                append_cell(b, key, item);
            }
        }
    } else if (cJSON_IsObject(value)) {
        const cJSON *field;
        bool first = true;
        cJSON_ArrayForEach(field, value) {
            if (!first) append(b, "; ");
            first = false;
            append_escaped(b, field->string);
            append(b, ": ");
            append_cell(b, field->string, field);
        }
    }
}

/* An object as a two-column table, skipping its array-of-object members
 * (rendered after it as their own tables). */
static void render_object(text_buffer *b, const cJSON *object) {
    append(b, "| field | value |\n| --- | --- |\n");
    const cJSON *field;
    cJSON_ArrayForEach(field, object) {
        if (cJSON_IsArray(field) && cJSON_IsObject(cJSON_GetArrayItem(field, 0))) continue;
        append(b, "| ");
        append_escaped(b, field->string);
        append(b, " | ");
        append_cell(b, field->string, field);
        append(b, " |\n");
    }
    append(b, "\n");
}

static void render_table(text_buffer *b, const cJSON *array, const char *empty_text) {
    if (!cJSON_IsObject(cJSON_GetArrayItem(array, 0))) {
        appendf(b, "%s\n\n", empty_text);
        return;
    }
    /* Columns: every key of any row, in order of first appearance. */
    const char *columns[32];
    size_t n_columns = 0;
    const cJSON *row, *field;
    cJSON_ArrayForEach(row, array) {
        cJSON_ArrayForEach(field, row) {
            bool known = false;
            for (size_t c = 0; c < n_columns && !known; c++) known = strcmp(columns[c], field->string) == 0;
            if (!known && n_columns < sizeof columns / sizeof columns[0]) columns[n_columns++] = field->string;
        }
    }
    append(b, "|");
    for (size_t c = 0; c < n_columns; c++) {
        append(b, " ");
        append_escaped(b, columns[c]);
        append(b, " |");
    }
    append(b, "\n|");
    for (size_t c = 0; c < n_columns; c++) append(b, " --- |");
    append(b, "\n");
    cJSON_ArrayForEach(row, array) {
        append(b, "|");
        for (size_t c = 0; c < n_columns; c++) {
            append(b, " ");
            const cJSON *value = cJSON_GetObjectItemCaseSensitive(row, columns[c]);
            if (value) append_cell(b, columns[c], value);
            append(b, " |");
        }
        append(b, "\n");
    }
    append(b, "\n");
}

/* Log records in a code block whose fence is longer than any backtick run
 * inside, so no message can close it. */
static void render_log(text_buffer *b, const cJSON *records, const char *empty_text) {
    if (!cJSON_GetArraySize(records)) {
        appendf(b, "%s\n\n", empty_text);
        return;
    }
    size_t longest_run = 0;
    const cJSON *record;
    cJSON_ArrayForEach(record, records) {
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(record, "message");
        size_t run = 0;
        for (const char *c = cJSON_IsString(message) ? message->valuestring : ""; *c; c++) {
            run = *c == '`' ? run + 1 : 0;
            if (run > longest_run) longest_run = run;
        }
    }
    size_t fence_len = longest_run >= 3 ? longest_run + 1 : 3;
    char fence[64];
    if (fence_len >= sizeof fence) fence_len = sizeof fence - 1;
    memset(fence, '`', fence_len);
    fence[fence_len] = '\0';
    appendf(b, "%stext\n", fence);
    cJSON_ArrayForEach(record, records) {
        const cJSON *time = cJSON_GetObjectItemCaseSensitive(record, "time");
        const cJSON *level = cJSON_GetObjectItemCaseSensitive(record, "level");
        const cJSON *category = cJSON_GetObjectItemCaseSensitive(record, "category");
        const cJSON *thread = cJSON_GetObjectItemCaseSensitive(record, "thread_id");
        const cJSON *message = cJSON_GetObjectItemCaseSensitive(record, "message");
        appendf(b, "%s %-5s %-9s [%lld] ", cJSON_IsString(time) ? time->valuestring : "?",
                cJSON_IsString(level) ? level->valuestring : "?",
                cJSON_IsString(category) ? category->valuestring : "?",
                cJSON_IsNumber(thread) ? (long long)thread->valuedouble : 0LL);
        for (const char *c = cJSON_IsString(message) ? message->valuestring : ""; *c; c++)
            append_bytes(b, *c == '\n' ? " " : c, 1);
        append(b, "\n");
    }
    appendf(b, "%s\n\n", fence);
}

static const char *section_title(const char *key) {
    static const char *const titles[][2] = {
        {"library", "Library"},        {"system", "System"},
        {"cpu", "CPU"},                {"memory", "Memory"},
        {"gpus", "GPUs"},              {"backends", "Backends"},
        {"environment", "Environment"}, {"hub_cache", "Hugging Face cache"},
        {"loaded_models", "Loaded models"}, {"returned_errors", "Errors returned to callers"},
        {"recent_errors", "Recent errors"},
        {"recent_log", "Recent log"}};
    for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
        if (strcmp(titles[i][0], key) == 0) return titles[i][1];
    return key;
}

char *mlxe_diag_render_markdown(const cJSON *report) {
    text_buffer b = {0};
    const cJSON *library = cJSON_GetObjectItemCaseSensitive(report, "library");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(library, "version");
    const cJSON *revision = cJSON_GetObjectItemCaseSensitive(library, "git_revision");
    const cJSON *generated = cJSON_GetObjectItemCaseSensitive(report, "generated_at");
    append(&b, "# mlxengine debug report\n\n");
    append(&b, "Generated ");
    append_escaped(&b, cJSON_IsString(generated) ? generated->valuestring : "?");
    append(&b, " by mlxengine ");
    append_escaped(&b, cJSON_IsString(version) ? version->valuestring : "?");
    append(&b, " (git ");
    append_escaped(&b, cJSON_IsString(revision) ? revision->valuestring : "?");
    append(&b, "). Attach the whole report to your issue: tokens and passwords are already "
               "replaced by \\[REDACTED\\].\n\n");
    const cJSON *section;
    cJSON_ArrayForEach(section, report) {
        if (!cJSON_IsObject(section) && !cJSON_IsArray(section)) continue;
        appendf(&b, "## %s\n\n", section_title(section->string));
        if (strcmp(section->string, "recent_log") == 0) {
            render_log(&b, section, "No log records (set MLXE_LOG=debug to record more).");
        } else if (strcmp(section->string, "recent_errors") == 0) {
            render_log(&b, section, "No warnings or errors were logged.");
        } else if (strcmp(section->string, "returned_errors") == 0) {
            render_table(&b, section, "No error was returned to a caller.");
        } else if (cJSON_IsArray(section)) {
            render_table(&b, section, "None.");
        } else {
            render_object(&b, section);
            const cJSON *field;
            cJSON_ArrayForEach(field, section) {
                if (!cJSON_IsArray(field) || !cJSON_IsObject(cJSON_GetArrayItem(field, 0))) continue;
                appendf(&b, "### %s\n\n", field->string);
                render_table(&b, field, "None.");
            }
        }
    }
    if (b.out_of_memory) {
        free(b.data);
        return NULL;
    }
    return b.data;
}
