/* tests/tokenizer/tokenizer_oracle_client.c — the C side of the tokenizer
 * oracle tests. Loads one tokenizer folder once, reads a JSON request
 * {"texts": ["<hex of UTF-8 bytes>", ...], "decode": [[ids], ...]} and
 * prints one JSON object with, per text: ids (special tokens parsed, no
 * BOS/EOS), ids_special (add_special_tokens), ids_noparse (special tokens
 * not parsed), decoded and decoded_skip (hex, of `ids`) and stream (the
 * streaming detokenizer property, "ok" or what failed); and per decode
 * request the decoded text (hex) with and without special tokens.
 * usage: tokenizer_oracle_client MODEL_DIR REQUEST.json */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "mlxengine/tokenizer.h"
#include "tokenizer/unicode.h"

static char *to_hex(const char *data, size_t size) {
    char *hex = malloc(size * 2 + 1);
    if (!hex) exit(3);
    for (size_t i = 0; i < size; i++) sprintf(hex + 2 * i, "%02x", (unsigned char)data[i]);
    hex[size * 2] = '\0';
    return hex;
}

static char *from_hex(const char *hex, size_t *size) {
    size_t n = strlen(hex) / 2;
    char *data = malloc(n + 1);
    if (!data) exit(3);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        data[i] = (char)v;
    }
    data[n] = '\0';
    *size = n;
    return data;
}

static cJSON *id_array(const mlxe_token_list *ids) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < ids->count; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(ids->ids[i]));
    return a;
}

static void add_hex(cJSON *obj, const char *key, const char *data, size_t size) {
    char *hex = to_hex(data, size);
    cJSON_AddStringToObject(obj, key, hex);
    free(hex);
}

/* Streams ids through a detokenizer; checks pieces are whole UTF-8
 * characters and concatenate to the one-shot decode. */
static const char *stream_check(const mlxe_tokenizer *tk, const mlxe_token_list *ids, bool skip,
                                const char *expected, size_t expected_size) {
    static char message[256];
    mlxe_decode_options options = {skip};
    mlxe_detokenizer *d = NULL;
    mlxe_error err;
    if (mlxe_detokenizer_create(tk, &options, &d, &err) != MLXE_OK) return "create failed";
    char *all = malloc(expected_size * 2 + 64);
    size_t n = 0, capacity = expected_size * 2 + 64;
    const char *result = "ok";
    for (size_t i = 0; i <= ids->count; i++) {
        const char *piece;
        size_t size;
        mlxe_status st = i < ids->count ? mlxe_detokenizer_push(d, ids->ids[i], &piece, &size, &err)
                                        : mlxe_detokenizer_flush(d, &piece, &size, &err);
        if (st != MLXE_OK) {
            result = "push failed";
            break;
        }
        if (tok_utf8_valid_prefix(piece, size) != size) {
            snprintf(message, sizeof message, "piece after id #%zu is not whole UTF-8", i);
            result = message;
            break;
        }
        if (n + size > capacity) {
            snprintf(message, sizeof message, "stream longer than the decode after id #%zu", i);
            result = message;
            break;
        }
        memcpy(all + n, piece, size);
        n += size;
    }
    if (result[0] == 'o' && (n != expected_size || memcmp(all, expected, n) != 0)) {
        snprintf(message, sizeof message, "stream (%zu bytes) differs from decode (%zu bytes)", n, expected_size);
        result = message;
    }
    free(all);
    mlxe_detokenizer_free(d);
    return result;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL_DIR REQUEST.json\n", argv[0]);
        return 2;
    }
    mlxe_error err;
    mlxe_tokenizer *tk = NULL;
    if (mlxe_tokenizer_load(argv[1], &tk, &err) != MLXE_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return 1;
    }
    char *request_text = NULL;
    size_t request_size = 0;
    if (mlxe_file_read_all(argv[2], 1u << 30, &request_text, &request_size, &err) != MLXE_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    cJSON *request = cJSON_ParseWithLength(request_text, request_size);
    free(request_text);
    cJSON *out = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(out, "texts");
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(request, "texts")) {
        size_t size;
        char *text = from_hex(item->valuestring, &size);
        cJSON *r = cJSON_CreateObject();
        mlxe_encode_options eo;
        mlxe_encode_options_init(&eo);
        eo.parse_special_tokens = true;
        mlxe_token_list ids, ids_special, ids_noparse;
        mlxe_token_list_init(&ids);
        mlxe_token_list_init(&ids_special);
        mlxe_token_list_init(&ids_noparse);
        if (mlxe_tokenizer_encode(tk, text, size, &eo, &ids, &err) != MLXE_OK) cJSON_AddStringToObject(r, "error", err.message);
        eo.add_special_tokens = true;
        if (mlxe_tokenizer_encode(tk, text, size, &eo, &ids_special, &err) != MLXE_OK) cJSON_AddStringToObject(r, "error", err.message);
        eo.add_special_tokens = false;
        eo.parse_special_tokens = false;
        if (mlxe_tokenizer_encode(tk, text, size, &eo, &ids_noparse, &err) != MLXE_OK) cJSON_AddStringToObject(r, "error", err.message);
        cJSON_AddItemToObject(r, "ids", id_array(&ids));
        cJSON_AddItemToObject(r, "ids_special", id_array(&ids_special));
        cJSON_AddItemToObject(r, "ids_noparse", id_array(&ids_noparse));
        for (int skip = 0; skip < 2; skip++) {
            mlxe_decode_options dopt = {skip != 0};
            char *decoded = NULL;
            size_t decoded_size = 0;
            if (mlxe_tokenizer_decode(tk, ids.ids, ids.count, &dopt, &decoded, &decoded_size, &err) != MLXE_OK) {
                cJSON_AddStringToObject(r, "error", err.message);
                continue;
            }
            add_hex(r, skip ? "decoded_skip" : "decoded", decoded, decoded_size);
            const char *verdict = stream_check(tk, &ids, skip != 0, decoded, decoded_size);
            if (strcmp(verdict, "ok") != 0 || skip) cJSON_AddStringToObject(r, skip ? "stream_skip" : "stream", verdict);
            if (!skip && strcmp(verdict, "ok") == 0) cJSON_AddStringToObject(r, "stream", "ok");
            free(decoded);
        }
        mlxe_token_list_free(&ids);
        mlxe_token_list_free(&ids_special);
        mlxe_token_list_free(&ids_noparse);
        free(text);
        cJSON_AddItemToArray(results, r);
    }
    cJSON *decodes = cJSON_AddArrayToObject(out, "decode");
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(request, "decode")) {
        mlxe_token_list ids;
        mlxe_token_list_init(&ids);
        const cJSON *id;
        cJSON_ArrayForEach(id, item) {
            if (ids.count == ids.capacity) {
                ids.capacity = ids.capacity ? ids.capacity * 2 : 16;
                ids.ids = realloc(ids.ids, ids.capacity * sizeof *ids.ids);
                if (!ids.ids) return 3;
            }
            ids.ids[ids.count++] = (mlxe_token_id)id->valuedouble;
        }
        cJSON *r = cJSON_CreateObject();
        for (int skip = 0; skip < 2; skip++) {
            mlxe_decode_options dopt = {skip != 0};
            char *decoded = NULL;
            size_t decoded_size = 0;
            if (mlxe_tokenizer_decode(tk, ids.ids, ids.count, &dopt, &decoded, &decoded_size, &err) == MLXE_OK)
                add_hex(r, skip ? "decoded_skip" : "decoded", decoded, decoded_size);
            else
                cJSON_AddStringToObject(r, "error", err.message);
            if (decoded) {
                const char *verdict = stream_check(tk, &ids, skip != 0, decoded, decoded_size);
                cJSON_AddStringToObject(r, skip ? "stream_skip" : "stream", verdict);
            }
            free(decoded);
        }
        mlxe_token_list_free(&ids);
        cJSON_AddItemToArray(decodes, r);
    }
    char *printed = cJSON_PrintUnformatted(out);
    fputs(printed, stdout);
    fputc('\n', stdout);
    free(printed);
    cJSON_Delete(out);
    cJSON_Delete(request);
    mlxe_tokenizer_free(tk);
    return 0;
}
