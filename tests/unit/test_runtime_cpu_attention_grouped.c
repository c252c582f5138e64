/* Tests of the CPU's grouped attention (cpu_attention.c and the attention
 * kernels of every table this processor runs) against double-precision
 * computations written here:
 * - the block kernels (attention_scores, attention_exp, attention_values)
 *   for 1-8 query heads, head dims that are and are not multiples of the
 *   SIMD width, full and partial blocks, the rows given ending at an
 *   inaccessible page (a read past them faults);
 * - the attention op for decode-shaped and prefill-shaped batches with
 *   group sizes 1, 2, 4 and 7 (and 14, two passes of 7), head_dim 64 and
 *   128, contexts of 1, 3, 17, 600 and 1000 positions, sliding windows,
 *   and batches mixing a long and a short span (so spans split into chunks
 *   on 2-3 threads, some chunks empty, and merged), on 1-3 threads. */
#include <sys/mman.h>
#include <unistd.h>

#include "runtime_cpu_test.h"

#define BLOCK MLXE_CPU_ATTENTION_BLOCK

static int kernel_tables(const mlxe_cpu_kernels **tables) {
    int n = 0;
    tables[n++] = &mlxe_cpu_kernels_generic;
#if defined(__x86_64__)
    if (mlxe_cpu_has_avx2()) tables[n++] = &mlxe_cpu_kernels_avx2;
    if (mlxe_cpu_has_avx512()) tables[n++] = &mlxe_cpu_kernels_avx512;
#endif
    return n;
}

/* Memory for `floats` floats followed by an inaccessible page: a kernel
 * reading past the rows it was given faults. */
typedef struct guarded {
    unsigned char *base;
    size_t bytes; /* before the guard page */
    size_t page;
} guarded;

static guarded guarded_alloc(size_t floats) {
    guarded g;
    g.page = (size_t)sysconf(_SC_PAGESIZE);
    g.bytes = (floats * sizeof(float) + g.page - 1) / g.page * g.page;
    void *p = mmap(NULL, g.bytes + g.page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    g.base = p;
    assert_int_equal(mprotect(g.base + g.bytes, g.page, PROT_NONE), 0);
    return g;
}

/* The last `floats` floats before the guard page. */
static float *guarded_tail(const guarded *g, size_t floats) {
    return (float *)(g->base + g->bytes - floats * sizeof(float));
}

static void test_block_kernels(void **state) {
    (void)state;
    const mlxe_cpu_kernels *tables[3];
    const int n_tables = kernel_tables(tables);
    static const int64_t head_dims[] = {5, 8, 16, 17, 40, 64, 100, 128};
    static const int64_t lengths[] = {1, 3, 8, 16, 17, 50, BLOCK};
    test_rng rng = {41};
    float *q = malloc(MLXE_CPU_ATTENTION_MAX_QUERIES * 128 * sizeof(float));
    /* the n rows given end where the guard page begins */
    guarded key_memory = guarded_alloc(BLOCK * 128), value_memory = guarded_alloc(BLOCK * 128);
    float scores[MLXE_CPU_ATTENTION_MAX_QUERIES * BLOCK], block_max[MLXE_CPU_ATTENTION_MAX_QUERIES];
    float out[MLXE_CPU_ATTENTION_MAX_QUERIES * 128];
    double want[MLXE_CPU_ATTENTION_MAX_QUERIES * 128];
    for (size_t d = 0; d < sizeof head_dims / sizeof head_dims[0]; d++) {
        const int64_t head_dim = head_dims[d];
        for (size_t l = 0; l < sizeof lengths / sizeof lengths[0]; l++) {
            const int64_t n = lengths[l];
            for (int n_q = 1; n_q <= MLXE_CPU_ATTENTION_MAX_QUERIES; n_q++) {
                test_fill(&rng, q, (size_t)(n_q * head_dim), -2.0f, 2.0f);
                float *keys = guarded_tail(&key_memory, (size_t)(n * head_dim));
                float *values = guarded_tail(&value_memory, (size_t)(n * head_dim));
                test_fill(&rng, keys, (size_t)(n * head_dim), -1.0f, 1.0f);
                test_fill(&rng, values, (size_t)(n * head_dim), -1.0f, 1.0f);
                const float scale = 0.3f;
                for (int t = 0; t < n_tables; t++) {
                    const mlxe_cpu_kernels *k = tables[t];
                    for (size_t i = 0; i < sizeof scores / sizeof scores[0]; i++) scores[i] = NAN;
                    k->attention_scores(q, n_q, keys, n, head_dim, scale, scores, block_max);
                    for (int g = 0; g < n_q; g++) {
                        double largest = -INFINITY;
                        for (int64_t j = 0; j < n; j++) {
                            double s = 0;
                            for (int64_t i = 0; i < head_dim; i++)
                                s += (double)q[g * head_dim + i] * keys[j * head_dim + i];
                            s *= scale;
                            if (s > largest) largest = s;
                            assert_close(scores[g * BLOCK + j], s, 1e-5, "%s scores head_dim %lld n %lld n_q %d g %d j %lld",
                                         k->name, (long long)head_dim, (long long)n, n_q, g, (long long)j);
                        }
                        assert_close(block_max[g], largest, 1e-5, "%s block max head_dim %lld n %lld n_q %d g %d", k->name,
                                     (long long)head_dim, (long long)n, n_q, g);
                    }
                    /* exps of the scores against each row's maximum, as the op does */
                    double sums[MLXE_CPU_ATTENTION_MAX_QUERIES];
                    for (int g = 0; g < n_q; g++) {
                        double exps[BLOCK];
                        sums[g] = 0;
                        for (int64_t j = 0; j < n; j++) {
                            exps[j] = exp((double)scores[g * BLOCK + j] - block_max[g]);
                            sums[g] += exps[j];
                        }
                        float sum = k->attention_exp(scores + g * BLOCK, n, block_max[g]);
                        assert_close(sum, sums[g], 1e-6 * sums[g], "%s exp sum n %lld g %d", k->name, (long long)n, g);
                        /* a float ulp of exp's result, and of its argument (the subtraction rounds) */
                        for (int64_t j = 0; j < n; j++)
                            assert_close(scores[g * BLOCK + j], exps[j], exps[j] * (2.4e-7 + 1.2e-7 * -log(exps[j])),
                                         "%s exp n %lld g %d j %lld", k->name, (long long)n, g, (long long)j);
                    }
                    /* values accumulate onto what out holds */
                    test_fill(&rng, out, (size_t)(n_q * head_dim), -1.0f, 1.0f);
                    for (int64_t i = 0; i < n_q * head_dim; i++) want[i] = out[i];
                    for (int g = 0; g < n_q; g++)
                        for (int64_t j = 0; j < n; j++)
                            for (int64_t i = 0; i < head_dim; i++)
                                want[g * head_dim + i] += (double)scores[g * BLOCK + j] * values[j * head_dim + i];
                    k->attention_values(scores, n_q, values, n, head_dim, out);
                    for (int64_t i = 0; i < n_q * head_dim; i++)
                        assert_close(out[i], want[i], 1e-5 * (1 + fabs(want[i])), "%s values head_dim %lld n %lld n_q %d i %lld",
                                     k->name, (long long)head_dim, (long long)n, n_q, (long long)i);
                }
            }
        }
    }
    free(q);
    munmap(key_memory.base, key_memory.bytes + key_memory.page);
    munmap(value_memory.base, value_memory.bytes + value_memory.page);
}

/* softmax(scale q·k) v over positions [lo, pos] of one head, in double. */
static void reference_head(const float *query, const float *keys, const float *values, int64_t head_dim, int64_t lo,
                           int64_t pos, double scale, double *out) {
    double largest = -INFINITY;
    double *scores = malloc((size_t)(pos - lo + 1) * sizeof(double));
    for (int64_t p = lo; p <= pos; p++) {
        double s = 0;
        for (int64_t i = 0; i < head_dim; i++) s += (double)query[i] * keys[p * head_dim + i];
        scores[p - lo] = s * scale;
        if (scores[p - lo] > largest) largest = scores[p - lo];
    }
    double total = 0;
    for (int64_t p = lo; p <= pos; p++) total += exp(scores[p - lo] - largest);
    for (int64_t i = 0; i < head_dim; i++) out[i] = 0;
    for (int64_t p = lo; p <= pos; p++) {
        const double weight = exp(scores[p - lo] - largest) / total;
        for (int64_t i = 0; i < head_dim; i++) out[i] += weight * values[p * head_dim + i];
    }
    free(scores);
}

typedef struct grouped_case {
    int64_t n_heads, n_kv_heads, head_dim, window;
    int64_t n_rows;        /* tokens in the batch */
    int32_t positions[17]; /* per token; token t is in slot t % 2 */
    float q_range;
} grouped_case;

static const grouped_case cases[] = {
    /* decode, one token at contexts 1, 3, 17, 600 */
    {7, 1, 64, 0, 1, {0}, 2.0f},
    {14, 2, 64, 0, 1, {2}, 2.0f},
    {8, 2, 128, 0, 1, {16}, 2.0f},
    {14, 2, 64, 0, 1, {599}, 2.0f},
    {8, 4, 128, 0, 1, {599}, 2.0f},
    {4, 4, 64, 0, 1, {599}, 2.0f},
    {28, 4, 128, 0, 1, {599}, 4.0f},
    {14, 1, 64, 0, 1, {599}, 2.0f}, /* 14 heads per kv head: two passes of 7 */
    /* sliding windows, long and short */
    {14, 2, 64, 300, 1, {599}, 2.0f},
    {8, 2, 128, 5, 1, {599}, 2.0f},
    /* a long and a short span in one batch (two slots): chunks of the short one may be empty */
    {7, 1, 128, 0, 2, {999, 1}, 2.0f},
    {8, 2, 64, 0, 2, {599, 2}, 2.0f},
    {8, 4, 64, 0, 3, {599, 16, 0}, 2.0f},
    /* prefill-shaped: 17 tokens at positions 0..16, alternating between the two slots */
    {14, 2, 64, 0, 17, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 2.0f},
    {8, 2, 128, 4, 17, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 2.0f},
    /* large scores: the running maximum moves between blocks and chunks */
    {7, 1, 64, 0, 1, {599}, 12.0f},
};

static void test_grouped_shapes(void **state) {
    (void)state;
    test_device_config configs[TEST_MAX_DEVICE_CONFIGS];
    const int n_configs = test_device_configs(configs);
    test_rng rng = {73};
    const int64_t n_slots = 2, capacity = 1000;
    for (size_t c_index = 0; c_index < sizeof cases / sizeof cases[0]; c_index++) {
        const grouped_case *gc = &cases[c_index];
        const int64_t head_dim = gc->head_dim, group = gc->n_heads / gc->n_kv_heads;
        const size_t cache_floats = (size_t)(n_slots * gc->n_kv_heads * capacity * head_dim);
        float *k_cache = malloc(cache_floats * sizeof(float));
        float *v_cache = malloc(cache_floats * sizeof(float));
        test_fill(&rng, k_cache, cache_floats, -1.0f, 1.0f);
        test_fill(&rng, v_cache, cache_floats, -1.0f, 1.0f);
        int32_t slots[17];
        for (int64_t t = 0; t < gc->n_rows; t++) slots[t] = (int32_t)(t % 2);
        const size_t q_floats = (size_t)(gc->n_rows * gc->n_heads * head_dim);
        float *q = malloc(q_floats * sizeof(float));
        float *out = malloc(q_floats * sizeof(float));
        double *want = malloc(q_floats * sizeof(double));
        test_fill(&rng, q, q_floats, -gc->q_range, gc->q_range);
        const float scale = 1.0f / sqrtf((float)head_dim);
        for (int64_t t = 0; t < gc->n_rows; t++) {
            const int64_t pos = gc->positions[t];
            const int64_t lo = gc->window > 0 && pos - gc->window + 1 > 0 ? pos - gc->window + 1 : 0;
            for (int64_t h = 0; h < gc->n_heads; h++) {
                const int64_t base = (slots[t] * gc->n_kv_heads + h / group) * capacity * head_dim;
                reference_head(q + (t * gc->n_heads + h) * head_dim, k_cache + base, v_cache + base, head_dim, lo, pos,
                               scale, want + (t * gc->n_heads + h) * head_dim);
            }
        }
        for (int c = 0; c < n_configs; c++) {
            mlxe_device *dev = test_create_device(&configs[c]);
            for (size_t i = 0; i < q_floats; i++) out[i] = NAN;
            mlxe_attention_args args = {.n_rows = gc->n_rows, .n_heads = gc->n_heads, .n_kv_heads = gc->n_kv_heads,
                                        .head_dim = head_dim, .q = q, .k_cache = k_cache, .v_cache = v_cache,
                                        .capacity = capacity, .slots = slots, .positions = gc->positions,
                                        .window = gc->window, .scale = scale, .out = out};
            mlxe_device_ops(dev)->attention(dev, &args);
            for (size_t i = 0; i < q_floats; i++)
                assert_close(out[i], want[i], 1e-5, "case %zu %s x%d token %lld head %lld dim %lld", c_index,
                             configs[c].kernels, configs[c].threads, (long long)(i / (size_t)(gc->n_heads * head_dim)),
                             (long long)(i / (size_t)head_dim % (size_t)gc->n_heads), (long long)(i % (size_t)head_dim));
            mlxe_device_free(dev);
        }
        free(k_cache);
        free(v_cache);
        free(q);
        free(out);
        free(want);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_kernels),
        cmocka_unit_test(test_grouped_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
