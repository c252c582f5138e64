/* tests/unit/tokenizer_fixtures.h — small tokenizer.json texts built in
 * code for the tokenizer unit tests: a GPT-2-style byte-level BPE and a
 * SentencePiece-style BPE with byte fallback. Their expected behaviour is
 * checked through properties (round trips, consistency between calls),
 * not through ids we made up; ids against the real reference are the job
 * of tests/tokenizer (oracle). */
#ifndef MLXE_TEST_TOKENIZER_FIXTURES_H
#define MLXE_TEST_TOKENIZER_FIXTURES_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/unicode.h"

static inline void fixture_add_token(cJSON *vocab, const char *token, int id) {
    cJSON_AddNumberToObject(vocab, token, id);
}

/* Byte-level: ids 0..255 are the GPT-2 byte characters; a few merges make
 * "hello", "Ġworld"; <|special|> (300, special) and <extra> (301). */
static inline char *fixture_byte_level_json(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    char utf8[8];
    for (int b = 0; b < 256; b++) {
        size_t n = tok_utf8_encode(tok_byte_to_char((uint8_t)b), utf8);
        utf8[n] = '\0';
        fixture_add_token(vocab, utf8, b);
    }
    static const char *const merged[] = {"he", "ll", "hell", "hello", "Ġw", "or", "Ġwor", "ld", "Ġworld"};
    static const char *const merges[] = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld"};
    for (int i = 0; i < 9; i++) fixture_add_token(vocab, merged[i], 256 + i);
    /* Unused entries up to 300: the reference library gives added tokens the
     * ids right after the vocabulary, whatever the file says. */
    for (int id = 256 + 9; id < 300; id++) {
        char name[32];
        snprintf(name, sizeof name, "<unused_%d>", id);
        fixture_add_token(vocab, name, id);
    }
    cJSON *list = cJSON_AddArrayToObject(model, "merges");
    for (int i = 0; i < 9; i++) cJSON_AddItemToArray(list, cJSON_CreateString(merges[i]));
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    cJSON *a = cJSON_CreateObject();
    cJSON_AddNumberToObject(a, "id", 300);
    cJSON_AddStringToObject(a, "content", "<|special|>");
    cJSON_AddBoolToObject(a, "special", 1);
    cJSON_AddBoolToObject(a, "normalized", 0);
    cJSON_AddItemToArray(added, a);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "id", 301);
    cJSON_AddStringToObject(e, "content", "<extra>");
    cJSON_AddBoolToObject(e, "special", 0);
    cJSON_AddBoolToObject(e, "normalized", 0);
    cJSON_AddItemToArray(added, e);
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

/* SentencePiece-style (Llama 2 layout): <unk> <s> </s>, <0x00>..<0xFF>,
 * a few pieces; legacy normalizer (Prepend + Replace) and decoder. */
static inline char *fixture_sentencepiece_json(void) {
    cJSON *root = cJSON_CreateObject();
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(model, "type", "BPE");
    cJSON_AddStringToObject(model, "unk_token", "<unk>");
    cJSON_AddBoolToObject(model, "fuse_unk", 1);
    cJSON_AddBoolToObject(model, "byte_fallback", 1);
    cJSON *vocab = cJSON_AddObjectToObject(model, "vocab");
    fixture_add_token(vocab, "<unk>", 0);
    fixture_add_token(vocab, "<s>", 1);
    fixture_add_token(vocab, "</s>", 2);
    char name[16];
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        fixture_add_token(vocab, name, 3 + b);
    }
    static const char *const pieces[] = {"\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a", "ab", "\xE2\x96\x81" "ab"};
    for (int i = 0; i < 6; i++) fixture_add_token(vocab, pieces[i], 259 + i);
    cJSON *merges = cJSON_AddArrayToObject(model, "merges");
    cJSON_AddItemToArray(merges, cJSON_CreateString("\xE2\x96\x81 a"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("a b"));
    cJSON_AddItemToArray(merges, cJSON_CreateString("\xE2\x96\x81" "a b"));
    cJSON *added = cJSON_AddArrayToObject(root, "added_tokens");
    for (int i = 0; i < 3; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "id", i);
        cJSON_AddStringToObject(t, "content", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        cJSON_AddBoolToObject(t, "special", 1);
        cJSON_AddBoolToObject(t, "normalized", 0);
        cJSON_AddItemToArray(added, t);
    }
    cJSON *norm = cJSON_Parse("{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
                              "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]}");
    cJSON_AddItemToObject(root, "normalizer", norm);
    cJSON *dec = cJSON_Parse("{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},"
                             "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"
                             "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}");
    cJSON_AddItemToObject(root, "decoder", dec);
    cJSON *post = cJSON_Parse("{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
                              "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}}");
    cJSON_AddItemToObject(root, "post_processor", post);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

#endif
