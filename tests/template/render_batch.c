/* tests/template/render_batch.c — renders many (template, context) cases in
 * one process for the oracle comparison (oracle_compare.py).
 *
 * Input (argv[1]): {"templates": [source, ...], "cases": [{"template": i,
 * "context": "<JSON text>"}, ...]}; the context stays JSON text so that ints
 * and floats reach mlxe_template_render_json exactly as Python wrote them.
 * Output (argv[2]): [{"ok": true, "text": ...} or {"ok": false, "status":
 * name, "error": message}, ...] in case order. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlxengine/mlxengine.h"

static char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    if (data) data[n] = '\0';
    *size = (size_t)n;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: render_batch CASES.json OUT.json\n");
        return 2;
    }
    size_t size = 0;
    char *text = read_file(argv[1], &size);
    cJSON *root = text ? cJSON_ParseWithLength(text, size) : NULL;
    free(text);
    if (!root) {
        fprintf(stderr, "render_batch: cannot read %s\n", argv[1]);
        return 2;
    }
    const cJSON *templates = cJSON_GetObjectItem(root, "templates");
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    int n_templates = cJSON_GetArraySize(templates);
    mlxe_template **compiled = calloc((size_t)n_templates + 1, sizeof *compiled);
    mlxe_error *compile_errors = calloc((size_t)n_templates + 1, sizeof *compile_errors);
    for (int i = 0; i < n_templates; i++) {
        const char *source = cJSON_GetArrayItem(templates, i)->valuestring;
        char name[32];
        snprintf(name, sizeof name, "template %d", i);
        mlxe_template_compile(source, strlen(source), name, NULL, &compiled[i], &compile_errors[i]);
    }
    cJSON *results = cJSON_CreateArray();
    const cJSON *item;
    cJSON_ArrayForEach(item, cases) {
        int index = cJSON_GetObjectItem(item, "template")->valueint;
        const char *context = cJSON_GetObjectItem(item, "context")->valuestring;
        cJSON *result = cJSON_CreateObject();
        mlxe_error err;
        mlxe_status status;
        char *out = NULL;
        size_t length = 0;
        if (!compiled[index]) {
            status = compile_errors[index].status;
            err = compile_errors[index];
        } else {
            status = mlxe_template_render_json(compiled[index], context, strlen(context), &out, &length, &err);
        }
        cJSON_AddBoolToObject(result, "ok", status == MLXE_OK);
        if (status == MLXE_OK) {
            if (strlen(out) != length) cJSON_AddBoolToObject(result, "nul", true);
            cJSON_AddStringToObject(result, "text", out);
        } else {
            cJSON_AddStringToObject(result, "status", mlxe_status_name(status));
            cJSON_AddStringToObject(result, "error", err.message);
        }
        mlxe_template_text_free(out);
        cJSON_AddItemToArray(results, result);
    }
    char *printed = cJSON_PrintUnformatted(results);
    FILE *f = fopen(argv[2], "wb");
    if (f) {
        fputs(printed, f);
        fclose(f);
    }
    free(printed);
    cJSON_Delete(results);
    for (int i = 0; i < n_templates; i++) mlxe_template_free(compiled[i]);
    free(compiled);
    free(compile_errors);
    cJSON_Delete(root);
    return f ? 0 : 2;
}
