/* Tests of the CPU kv_store and attention ops against a double-precision
 * softmax written here: several sequences (slots) in one cache, tokens of
 * different slots in one batch, sliding windows, grouped-query heads, long
 * spans (past the kernel's 64-score block) and large scores (stability),
 * on both kernel paths and 1-3 threads. */
#include "runtime_cpu_test.h"

typedef struct attention_case {
    int64_t n_heads, n_kv_heads, head_dim, n_slots, capacity, window;
    float q_range; /* q values in [-q_range, q_range): large ranges give large scores */
} attention_case;

static const attention_case cases[] = {
    {4, 4, 8, 1, 20, 0, 1.0f},      /* plain multi-head attention */
    {6, 2, 7, 3, 150, 0, 1.0f},     /* GQA 3:1, odd head_dim, 3 slots, spans over 64 */
    {8, 1, 16, 2, 90, 5, 1.0f},     /* multi-query with a sliding window of 5 */
    {4, 2, 33, 2, 200, 70, 1.0f},   /* window longer than one score block */
    {2, 2, 8, 1, 40, 0, 60.0f},     /* scores in the hundreds: must stay finite and exact */
};

static void reference_attention(const attention_case *ac, const float *q, const float *k_cache, const float *v_cache,
                                int64_t t, int64_t h, int32_t slot, int32_t pos, double scale, double *out) {
    int64_t kv_head = h / (ac->n_heads / ac->n_kv_heads);
    int64_t lo = ac->window > 0 ? pos - ac->window + 1 : 0;
    if (lo < 0) lo = 0;
    const float *query = q + (t * ac->n_heads + h) * ac->head_dim;
    int64_t base = ((int64_t)slot * ac->n_kv_heads + kv_head) * ac->capacity * ac->head_dim;
    double max_score = -INFINITY;
    double *scores = malloc((size_t)(pos - lo + 1) * sizeof(double));
    for (int64_t p = lo; p <= pos; p++) {
        double s = 0;
        for (int64_t i = 0; i < ac->head_dim; i++) s += (double)query[i] * k_cache[base + p * ac->head_dim + i];
        scores[p - lo] = s * scale;
        if (scores[p - lo] > max_score) max_score = scores[p - lo];
    }
    double total = 0;
    for (int64_t p = lo; p <= pos; p++) total += exp(scores[p - lo] - max_score);
    for (int64_t i = 0; i < ac->head_dim; i++) out[i] = 0;
    for (int64_t p = lo; p <= pos; p++) {
        double weight = exp(scores[p - lo] - max_score) / total;
        for (int64_t i = 0; i < ac->head_dim; i++) out[i] += weight * v_cache[base + p * ac->head_dim + i];
    }
    free(scores);
}

static void test_attention(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    int n_configs = test_device_configs(configs);
    test_rng rng = {5};
    for (size_t c_index = 0; c_index < sizeof cases / sizeof cases[0]; c_index++) {
        const attention_case *ac = &cases[c_index];
        size_t cache_floats = (size_t)(ac->n_slots * ac->n_kv_heads * ac->capacity * ac->head_dim);
        float *k_cache = malloc(cache_floats * sizeof(float));
        float *v_cache = malloc(cache_floats * sizeof(float));
        test_fill(&rng, k_cache, cache_floats, -1.0f, 1.0f);
        test_fill(&rng, v_cache, cache_floats, -1.0f, 1.0f);
        /* 17 tokens: slots round-robin, positions anywhere in [0, capacity) incl. 0 and the last */
        const int64_t n_rows = 17;
        int32_t slots[17], positions[17];
        for (int64_t t = 0; t < n_rows; t++) {
            slots[t] = (int32_t)(t % ac->n_slots);
            positions[t] = t == 0 ? 0 : t == 1 ? (int32_t)ac->capacity - 1
                                               : (int32_t)(test_rng_next(&rng) % (uint64_t)ac->capacity);
        }
        size_t q_floats = (size_t)(n_rows * ac->n_heads * ac->head_dim);
        float *q = malloc(q_floats * sizeof(float));
        float *out = malloc(q_floats * sizeof(float));
        test_fill(&rng, q, q_floats, -ac->q_range, ac->q_range);
        float scale = 1.0f / sqrtf((float)ac->head_dim);
        double want[64];
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            for (int64_t n = 1; n <= n_rows; n += n_rows - 1) { /* a decode step and the whole batch */
                for (size_t i = 0; i < q_floats; i++) out[i] = NAN;
                mlxe_attention_args args = {.n_rows = n, .n_heads = ac->n_heads, .n_kv_heads = ac->n_kv_heads,
                                            .head_dim = ac->head_dim, .q = q, .k_cache = k_cache, .v_cache = v_cache,
                                            .capacity = ac->capacity, .slots = slots, .positions = positions,
                                            .window = ac->window, .scale = scale, .out = out};
                mlxe_device_ops(dev)->attention(dev, &args);
                for (int64_t t = 0; t < n; t++) {
                    for (int64_t h = 0; h < ac->n_heads; h++) {
                        reference_attention(ac, q, k_cache, v_cache, t, h, slots[t], positions[t], scale, want);
                        for (int64_t i = 0; i < ac->head_dim; i++)
                            assert_close(out[(t * ac->n_heads + h) * ac->head_dim + i], want[i],
                                         2e-5 * (ac->q_range > 1 ? 50 : 1), "case %zu %s x%d token %lld head %lld dim %lld",
                                         c_index, configs[c].kernels, configs[c].threads, (long long)t, (long long)h,
                                         (long long)i);
                    }
                }
            }
            mlxe_device_free(dev);
        }
        free(k_cache);
        free(v_cache);
        free(q);
        free(out);
    }
}

/* kv_store puts each token's heads at (slot, position) and nothing else. */
static void test_kv_store(void **state) {
    (void)state;
    test_rng rng = {17};
    const int64_t n_kv_heads = 3, head_dim = 5, capacity = 9, n_slots = 2, n_rows = 4;
    const int32_t slots[] = {1, 0, 1, 0};
    const int32_t positions[] = {0, 8, 4, 3};
    size_t cache_floats = (size_t)(n_slots * n_kv_heads * capacity * head_dim);
    float k[4 * 3 * 5], v[4 * 3 * 5];
    test_fill(&rng, k, sizeof k / sizeof k[0], -1.0f, 1.0f);
    test_fill(&rng, v, sizeof v / sizeof v[0], -1.0f, 1.0f);
    test_device_config config = {"generic", 1};
    mlxe_device *dev = test_create_device(&config);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    float *k_cache, *v_cache;
    assert_int_equal(ops->alloc(dev, cache_floats * sizeof(float), (void **)&k_cache, NULL), MLXE_OK);
    assert_int_equal(ops->alloc(dev, cache_floats * sizeof(float), (void **)&v_cache, NULL), MLXE_OK);
    ops->kv_store(dev, k, v, n_rows, n_kv_heads, head_dim, k_cache, v_cache, capacity, slots, positions);
    for (int64_t s = 0; s < n_slots; s++)
        for (int64_t h = 0; h < n_kv_heads; h++)
            for (int64_t p = 0; p < capacity; p++) {
                int64_t row = -1;
                for (int64_t r = 0; r < n_rows; r++)
                    if (slots[r] == s && positions[r] == p) row = r;
                for (int64_t i = 0; i < head_dim; i++) {
                    size_t at = (size_t)(((s * n_kv_heads + h) * capacity + p) * head_dim + i);
                    float want_k = row < 0 ? 0.0f : k[(row * n_kv_heads + h) * head_dim + i];
                    float want_v = row < 0 ? 0.0f : v[(row * n_kv_heads + h) * head_dim + i];
                    assert_true(k_cache[at] == want_k);
                    assert_true(v_cache[at] == want_v);
                }
            }
    ops->free(dev, k_cache);
    ops->free(dev, v_cache);
    mlxe_device_free(dev);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_kv_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
