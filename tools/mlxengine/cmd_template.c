/* tools/mlxengine/cmd_template.c — `mlxengine template --model DIR
 * --messages FILE.json [--add-generation-prompt] [--name NAME]`: prints the
 * prompt the model's chat template renders for a conversation, exactly, with
 * no newline added. FILE.json is the render context: an object holding
 * "messages" and optionally "tools", "add_generation_prompt" and any other
 * template variables. When the template raises, its message goes to standard
 * error and the exit status is 1. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "mlxengine/commands.h"
#include "mlxengine/mlxengine.h"

static int usage(FILE *out) {
    fprintf(out, "usage: mlxengine template --model DIR --messages FILE.json [--add-generation-prompt] [--name NAME]\n"
                 "Prints the prompt the model's chat template renders for the conversation in FILE.json\n"
                 "(an object with \"messages\" and optionally \"tools\", \"add_generation_prompt\" and other\n"
                 "template variables). --add-generation-prompt sets add_generation_prompt to true.\n");
    return out == stdout ? 0 : 2;
}

/* Adds "add_generation_prompt": true as the object's last key, so that it
 * wins over a value in the file (a repeated JSON key keeps its last value). */
static char *with_generation_prompt(const char *text, size_t size, size_t *out_size) {
    size_t end = size;
    while (end > 0 && (text[end - 1] == ' ' || text[end - 1] == '\n' || text[end - 1] == '\r' || text[end - 1] == '\t')) end--;
    if (end == 0 || text[end - 1] != '}') return NULL;
    size_t inner = end - 1;
    while (inner > 0 && (text[inner - 1] == ' ' || text[inner - 1] == '\n' || text[inner - 1] == '\r' || text[inner - 1] == '\t')) inner--;
    bool empty = inner > 0 && text[inner - 1] == '{';
    const char *key = empty ? "\"add_generation_prompt\": true}" : ", \"add_generation_prompt\": true}";
    size_t key_length = strlen(key);
    char *joined = malloc(end - 1 + key_length + 1);
    if (!joined) return NULL;
    memcpy(joined, text, end - 1);
    memcpy(joined + end - 1, key, key_length + 1);
    *out_size = end - 1 + key_length;
    return joined;
}

int cmd_template(int argc, char **argv) {
    const char *model = NULL, *messages = NULL, *name = NULL;
    bool generation_prompt = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--messages") && i + 1 < argc) messages = argv[++i];
        else if (!strcmp(argv[i], "--name") && i + 1 < argc) name = argv[++i];
        else if (!strcmp(argv[i], "--add-generation-prompt")) generation_prompt = true;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return usage(stdout);
        else {
            fprintf(stderr, "mlxengine template: unknown option '%s'\n", argv[i]);
            return usage(stderr);
        }
    }
    if (!model || !messages) return usage(stderr);
    mlxe_error err;
    char *context = NULL;
    size_t context_size = 0;
    if (mlxe_file_read_all(messages, (size_t)256 << 20, &context, &context_size, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine template: %s\n", err.message);
        return 1;
    }
    if (generation_prompt) {
        size_t size = 0;
        char *joined = with_generation_prompt(context, context_size, &size);
        if (!joined) {
            fprintf(stderr, "mlxengine template: %s must hold a JSON object\n", messages);
            free(context);
            return 1;
        }
        free(context);
        context = joined;
        context_size = size;
    }
    mlxe_chat_template *chat = NULL;
    if (mlxe_chat_template_load(model, &chat, &err) != MLXE_OK) {
        fprintf(stderr, "mlxengine template: %s\n", err.message);
        free(context);
        return 1;
    }
    char *text = NULL;
    size_t length = 0;
    mlxe_status status = mlxe_chat_template_render_json(chat, name, context, context_size, &text, &length, &err);
    free(context);
    mlxe_chat_template_free(chat);
    if (status != MLXE_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    fwrite(text, 1, length, stdout);
    mlxe_template_text_free(text);
    return 0;
}
