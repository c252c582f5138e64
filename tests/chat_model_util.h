/* tests/chat_model_util.h — writes a complete chat model folder for the
 * chat tests: a tiny random llama (tests/test_model_util.h) with a vocabulary
 * of 320, a byte-level BPE tokenizer.json (ids 0-255 the GPT-2 byte
 * characters, a few merges, <|im_start|> 300, <|im_end|> 301,
 * <|endoftext|> 302), a tokenizer_config.json with a ChatML chat template
 * (with tools) and a generation_config.json whose eos ids are 301 and 302.
 * The model's text is random; tests check properties and compare sessions
 * with each other and with the engine, never with outputs we made up. */
#ifndef MLXE_TEST_CHAT_MODEL_UTIL_H
#define MLXE_TEST_CHAT_MODEL_UTIL_H

#include <cjson/cJSON.h>
#include <sys/stat.h>

#include "test_model_util.h"

#define CHAT_TEST_IM_START 300
#define CHAT_TEST_IM_END 301
#define CHAT_TEST_ENDOFTEXT 302
#define CHAT_TEST_VOCAB 320

/* ChatML as Qwen writes it, with a tools block and tool results. */
static const char chat_test_chatml[] =
    "{%- if tools %}<|im_start|>system\n# Tools\n{{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'tool' %}{{ '[' + message['tool_call_id'] + ' ' + message['name'] + '] ' }}{% endif %}"
    "{%- if message['tool_calls'] %}{% for call in message['tool_calls'] %}"
    "{{ '<call>' + call['function']['name'] + '</call>' }}{% endfor %}{% endif %}"
    "{{- message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{%- endif %}";

/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others
 * to 256 + n in byte order. */
static inline uint32_t chat_test_byte_char(int byte) {
    if ((byte >= 33 && byte <= 126) || (byte >= 161 && byte <= 172) || (byte >= 174 && byte <= 255))
        return (uint32_t)byte;
    uint32_t n = 0;
    for (int b = 0; b < byte; b++)
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) n++;
    return 256 + n;
}

static inline void chat_test_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

static inline char *chat_test_tokenizer_json(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char utf8[8];
    for (int b = 0; b < 256; b++) {
        chat_test_utf8(chat_test_byte_char(b), utf8);
        cJSON_AddNumberToObject(vocab, utf8, b);
    }
    /* merges: "he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld", "Ġt", "th", "Ġth", "an" */
    static const char *const merged[] = {"he", "ll", "hell", "hello", "\xC4\xA0w", "or", "\xC4\xA0wor", "ld",
                                         "\xC4\xA0world", "\xC4\xA0t", "th", "\xC4\xA0th", "an"};
    static const char *const merges[] = {"h e", "l l", "he ll", "hell o", "\xC4\xA0 w", "o r", "\xC4\xA0w or", "l d",
                                         "\xC4\xA0wor ld", "\xC4\xA0 t", "t h", "\xC4\xA0t h", "a n"};
    size_t n_merges = sizeof merged / sizeof merged[0];
    for (size_t i = 0; i < n_merges; i++) cJSON_AddNumberToObject(vocab, merged[i], 256 + (int)i);
    /* Unused entries up to the special tokens: the reference library gives
     * added tokens the ids right after the vocabulary, whatever the file says. */
    for (int id = 256 + (int)n_merges; id < CHAT_TEST_IM_START; id++) {
        char name[32];
        snprintf(name, sizeof name, "<unused_%d>", id);
        cJSON_AddNumberToObject(vocab, name, id);
    }
    cJSON *list = cJSON_AddArrayToObject(model, "merges");
    for (size_t i = 0; i < n_merges; i++) cJSON_AddItemToArray(list, cJSON_CreateString(merges[i]));
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    static const char *const specials[] = {"<|im_start|>", "<|im_end|>", "<|endoftext|>"};
    for (int i = 0; i < 3; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", CHAT_TEST_IM_START + i);
        cJSON_AddStringToObject(t, "content", specials[i]);
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddItemToArray(added, t);
    }
    cJSON *pre = cJSON_AddObjectToObject(root, "pre_tokenizer");
    cJSON_AddStringToObject(pre, "type", "ByteLevel");
    cJSON_AddBoolToObject(pre, "add_prefix_space", 0);
    cJSON_AddBoolToObject(pre, "use_regex", 1);
    cJSON *dec = cJSON_AddObjectToObject(root, "decoder");
    cJSON_AddStringToObject(dec, "type", "ByteLevel");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

/* Writes the folder into dir (created if needed). template_source NULL
 * means the ChatML template above. */
static inline void chat_test_write_model(const char *dir, uint64_t seed, const char *template_source) {
    mkdir(dir, 0755);
    test_model_spec spec;
    test_model_spec_init(&spec, "llama");
    spec.vocab = CHAT_TEST_VOCAB;
    test_write_model(dir, &spec, seed);
    char path[512];
    char *tokenizer = chat_test_tokenizer_json();
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    test_write_file(path, tokenizer, strlen(tokenizer));
    cJSON_free(tokenizer);
    cJSON *config = cJSON_CreateObject();
    cJSON_AddStringToObject(config, "eos_token", "<|im_end|>");
    cJSON_AddStringToObject(config, "pad_token", "<|endoftext|>");
    cJSON_AddBoolToObject(config, "add_bos_token", 0);
    cJSON_AddStringToObject(config, "chat_template", template_source ? template_source : chat_test_chatml);
    char *text = cJSON_PrintUnformatted(config);
    cJSON_Delete(config);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    test_write_file(path, text, strlen(text));
    cJSON_free(text);
    static const char generation[] = "{\"eos_token_id\": [301, 302]}";
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    test_write_file(path, generation, strlen(generation));
}

static inline void chat_test_remove_model(const char *dir) {
    static const char *const files[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                        "generation_config.json"};
    char path[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        remove(path);
    }
    remove(dir);
}

#endif
