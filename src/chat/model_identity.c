/* chat/model_identity.c — what identifies a model in a session file: a
 * SHA-256 over the shapes of the model (config sizes, the tokenizer's
 * vocabulary size) and every weight tensor's name, dtype, shape and first
 * and last bytes, plus a description for error messages. Sampling a few
 * bytes per tensor tells fine-tunes of one architecture apart without
 * reading gigabytes of weights (the pages touched are a few per tensor). */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "chat/chat_internal.h"
#include "engine/engine_internal.h"

#define SAMPLE_BYTES 256

static void hash_i64(EVP_MD_CTX *md, int64_t value) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)value >> (8 * i));
    EVP_DigestUpdate(md, bytes, sizeof bytes);
}

void chat_model_identity_compute(const mlxe_model *model, const mlxe_tokenizer *tokenizer,
                                 chat_model_identity *out) {
    memset(out, 0, sizeof *out);
    const mlxe_model_config *c = &model->config;
    mlxe_tokenizer_info info;
    mlxe_tokenizer_get_info(tokenizer, &info);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1) {
        EVP_DigestUpdate(md, c->model_type, strlen(c->model_type) + 1);
        const int64_t sizes[] = {c->vocab_size, c->hidden_size, c->intermediate_size, c->num_hidden_layers,
                                 c->num_attention_heads, c->num_key_value_heads, c->head_dim,
                                 (int64_t)info.vocab_size};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) hash_i64(md, sizes[i]);
        size_t n = mlxe_weight_set_count(model->weight_set);
        for (size_t i = 0; i < n; i++) {
            const mlxe_tensor_info *t = mlxe_weight_set_at(model->weight_set, i);
            EVP_DigestUpdate(md, t->name, strlen(t->name) + 1);
            hash_i64(md, (int64_t)t->dtype);
            for (int d = 0; d < t->n_dims; d++) hash_i64(md, t->shape[d]);
            if (t->data && t->n_bytes) {
                size_t head = t->n_bytes < SAMPLE_BYTES ? t->n_bytes : SAMPLE_BYTES;
                EVP_DigestUpdate(md, t->data, head);
                EVP_DigestUpdate(md, (const unsigned char *)t->data + t->n_bytes - head, head);
            }
        }
        unsigned int len = 0;
        EVP_DigestFinal_ex(md, out->fingerprint, &len);
    }
    EVP_MD_CTX_free(md);
    snprintf(out->description, sizeof out->description,
             "%s: %lld layers, %lld heads (%lld KV) x %lld, vocab %lld, weights %02x%02x%02x%02x%02x%02x",
             c->model_type, (long long)c->num_hidden_layers, (long long)c->num_attention_heads,
             (long long)c->num_key_value_heads, (long long)c->head_dim, (long long)c->vocab_size,
             out->fingerprint[0], out->fingerprint[1], out->fingerprint[2], out->fingerprint[3],
             out->fingerprint[4], out->fingerprint[5]);
}
