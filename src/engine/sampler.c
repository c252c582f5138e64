/* engine/sampler.c — the sampler chain of include/mlxengine/sampler.h:
 * bias, penalties, then greedy or temperature / top-k / top-p / min-p and a
 * draw with xoshiro256**.
 *
 * Probabilities are integer weights floor(2^40 * exp(logit - max))
 * (runtime/sampling.h), so their sums are exact in any order: a GPU that
 * samples the same logits with the same draw (ops.h sample) picks the same
 * token. With temperature > 0 every sampled token takes exactly one draw
 * (mlxe_sampler_draw), so the draw of a step can be made before the logits
 * exist and handed to the device.
 *
 * The penalty history is a ring of the last penalty_last_n accepted tokens
 * with a per-token count, so accepting is O(1) and applying the penalties
 * costs O(penalty_last_n) whatever the vocabulary. */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "engine/engine_internal.h"
#include "engine/sampler_rng.h"
#include "mlxengine/sampler.h"
#include "runtime/sampling.h"

/* top_p's probability buckets: 1024 slices of 32 logits below the max
 * (beyond, exp(-32) ~ 1e-14 of the top token: the last bucket). */
#define TOP_P_BUCKETS 1024
#define TOP_P_LOGIT_RANGE 32.0

typedef struct candidate {
    float logit;
    int32_t id;
} candidate;

struct mlxe_sampler {
    mlxe_sampler_options options;
    mlxe_logit_bias *bias;      /* own copy of options.logit_bias */
    int64_t vocab;
    float *work;                /* [vocab] logits after bias and penalties */
    candidate *candidates;      /* [vocab] */
    int32_t *history;           /* ring [penalty_last_n] */
    int32_t history_len, history_next;
    int32_t *counts;            /* [vocab] occurrences in the ring */
    uint64_t *weights;          /* [vocab] the draw's weights, in candidate order */
    mlxe_rng rng;
    uint64_t seed;
    double log_min_p;           /* log(min_p) when min_p > 0 */
    int weight_shift;           /* runtime/sampling.h mlxe_sample_weight_shift */
    bool bias_distinct;         /* no token twice in logit_bias (the device needs it) */
    uint64_t bucket_mass[TOP_P_BUCKETS];
};

static inline int bucket_of(float logit, double max) {
    double b = (max - (double)logit) * (TOP_P_BUCKETS / TOP_P_LOGIT_RANGE);
    return b >= TOP_P_BUCKETS - 1 ? TOP_P_BUCKETS - 1 : (int)b;
}

void mlxe_sampler_options_init(mlxe_sampler_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->temperature = 0.0f;
    options->top_k = 0;
    options->top_p = 1.0f;
    options->min_p = 0.0f;
    options->repetition_penalty = 1.0f;
    options->presence_penalty = 0.0f;
    options->frequency_penalty = 0.0f;
    options->penalty_last_n = 64;
    options->seed = MLXE_SEED_RANDOM;
}

void mlxe_sampler_free(mlxe_sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->work);
    free(s->candidates);
    free(s->history);
    free(s->counts);
    free(s->weights);
    free(s);
}

static uint64_t random_seed(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t mix = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
    mlxe_rng rng;
    mlxe_rng_seed(&rng, mix);
    uint64_t seed = mlxe_rng_next(&rng);
    return seed == MLXE_SEED_RANDOM ? 0 : seed;
}

static mlxe_status check_options(const mlxe_sampler_options *o, int64_t vocab, mlxe_error *err) {
    if (vocab <= 0 || vocab > INT32_MAX)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: vocabulary size %lld is out of range",
                              (long long)vocab);
    if (!isfinite(o->temperature))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: temperature must be finite");
    if (o->top_k < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: top_k %d must be >= 0 (0 = off)",
                              (int)o->top_k);
    if (!(o->top_p > 0.0f && o->top_p <= 1.0f))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: top_p %g must be in (0, 1]",
                              (double)o->top_p);
    if (!(o->min_p >= 0.0f && o->min_p <= 1.0f))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: min_p %g must be in [0, 1]",
                              (double)o->min_p);
    if (!(o->repetition_penalty > 0.0f) || !isfinite(o->repetition_penalty))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "sampler: repetition_penalty %g must be positive (1 = off)",
                              (double)o->repetition_penalty);
    if (!isfinite(o->presence_penalty) || !isfinite(o->frequency_penalty))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "sampler: presence_penalty and frequency_penalty must be finite");
    if (o->penalty_last_n < 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: penalty_last_n %d must be >= 0",
                              (int)o->penalty_last_n);
    if (o->n_logit_bias < 0 || (o->n_logit_bias > 0 && !o->logit_bias))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: logit_bias is NULL but n_logit_bias is %d",
                              (int)o->n_logit_bias);
    for (int32_t i = 0; i < o->n_logit_bias; i++) {
        if (o->logit_bias[i].token < 0 || o->logit_bias[i].token >= vocab)
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                  "sampler: logit_bias entry %d names token %d outside the vocabulary [0, %lld)",
                                  (int)i, (int)o->logit_bias[i].token, (long long)vocab);
        if (isnan(o->logit_bias[i].bias))
            return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "sampler: logit_bias entry %d is NaN", (int)i);
    }
    return MLXE_OK;
}

mlxe_status mlxe_sampler_create(const mlxe_sampler_options *options, int64_t vocab_size, mlxe_sampler **out,
                                mlxe_error *err) {
    if (out) *out = NULL;
    if (!out) return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_sampler_create: out is required");
    mlxe_sampler_options defaults;
    mlxe_sampler_options_init(&defaults);
    if (!options) options = &defaults;
    mlxe_status st = check_options(options, vocab_size, err);
    if (st != MLXE_OK) return st;

    mlxe_sampler *s = calloc(1, sizeof *s);
    if (!s) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a sampler");
    s->options = *options;
    s->vocab = vocab_size;
    s->work = malloc((size_t)vocab_size * sizeof(float));
    s->candidates = malloc((size_t)vocab_size * sizeof(candidate));
    s->counts = calloc((size_t)vocab_size, sizeof(int32_t));
    s->weights = malloc((size_t)vocab_size * sizeof(uint64_t));
    s->history = malloc((size_t)(options->penalty_last_n > 0 ? options->penalty_last_n : 1) * sizeof(int32_t));
    if (options->n_logit_bias > 0) {
        s->bias = malloc((size_t)options->n_logit_bias * sizeof(mlxe_logit_bias));
        if (s->bias) memcpy(s->bias, options->logit_bias, (size_t)options->n_logit_bias * sizeof(mlxe_logit_bias));
    }
    if (!s->work || !s->candidates || !s->counts || !s->weights || !s->history ||
        (options->n_logit_bias > 0 && !s->bias)) {
        mlxe_sampler_free(s);
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating a sampler for %lld tokens",
                              (long long)vocab_size);
    }
    s->options.logit_bias = s->bias;
    s->log_min_p = options->min_p > 0.0f ? log((double)options->min_p) : 0.0;
    s->weight_shift = mlxe_sample_weight_shift(vocab_size);
    /* counts is all zero here: it marks the tokens seen, then is cleared */
    s->bias_distinct = true;
    for (int32_t i = 0; i < options->n_logit_bias; i++) {
        if (s->counts[s->bias[i].token]) s->bias_distinct = false;
        s->counts[s->bias[i].token] = 1;
    }
    for (int32_t i = 0; i < options->n_logit_bias; i++) s->counts[s->bias[i].token] = 0;
    s->seed = options->seed == MLXE_SEED_RANDOM ? random_seed() : options->seed;
    mlxe_rng_seed(&s->rng, s->seed);
    *out = s;
    return MLXE_OK;
}

void mlxe_sampler_reset(mlxe_sampler *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->history_len; i++) s->counts[s->history[i]] = 0;
    s->history_len = 0;
    s->history_next = 0;
    mlxe_rng_seed(&s->rng, s->seed);
}

uint64_t mlxe_sampler_seed(const mlxe_sampler *s) { return s ? s->seed : 0; }

void mlxe_sampler_accept(mlxe_sampler *s, int32_t token) {
    if (!s || token < 0 || token >= s->vocab || s->options.penalty_last_n <= 0) return;
    int32_t capacity = s->options.penalty_last_n;
    if (s->history_len == capacity) {
        s->counts[s->history[s->history_next]]--; /* the oldest leaves the window */
    } else {
        s->history_len++;
    }
    s->history[s->history_next] = token;
    s->counts[token]++;
    s->history_next = (s->history_next + 1) % capacity;
}

void mlxe_sampler_apply_penalties(const mlxe_sampler *s, float *logits) {
    if (!s || !logits) return;
    const mlxe_sampler_options *o = &s->options;
    for (int32_t i = 0; i < o->n_logit_bias; i++) logits[o->logit_bias[i].token] += o->logit_bias[i].bias;
    bool repetition = o->repetition_penalty != 1.0f;
    bool additive = o->presence_penalty != 0.0f || o->frequency_penalty != 0.0f;
    if (!repetition && !additive) return;
    /* Each distinct token once: its count is negated while it is done. */
    for (int32_t i = 0; i < s->history_len; i++) {
        int32_t token = s->history[i];
        int32_t count = s->counts[token];
        if (count <= 0) continue;
        float logit = logits[token];
        if (repetition) logit = logit < 0 ? logit * o->repetition_penalty : logit / o->repetition_penalty;
        if (additive) logit -= (float)count * o->frequency_penalty + o->presence_penalty;
        logits[token] = logit;
        s->counts[token] = -count;
    }
    for (int32_t i = 0; i < s->history_len; i++) {
        int32_t token = s->history[i];
        if (s->counts[token] < 0) s->counts[token] = -s->counts[token];
    }
}

bool mlxe_sampler_is_plain_greedy(const mlxe_sampler *s) {
    if (!s) return false;
    const mlxe_sampler_options *o = &s->options;
    const bool penalties = o->penalty_last_n > 0 && (o->repetition_penalty != 1.0f || o->presence_penalty != 0.0f ||
                                                     o->frequency_penalty != 0.0f);
    return o->temperature <= 0.0f && o->n_logit_bias == 0 && !penalties;
}

/* Descending logit, ascending id on ties. */
static int compare_candidates(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static bool ranks_before(const candidate *x, const candidate *y) {
    return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}

/* Moves the k best of c[0..n) to c[0..k), sorted (the rest stays in
 * c[k..n) in some order): a min-heap of size k whose root is the worst
 * kept, O(n log k). */
static int64_t keep_top_k(candidate *c, int64_t n, int64_t k) {
    if (k >= n) {
        qsort(c, (size_t)n, sizeof *c, compare_candidates);
        return n;
    }
    for (int64_t i = 0; i < n; i++) {
        if (i >= k) {
            if (!ranks_before(&c[i], &c[0])) continue;
            candidate evicted = c[0]; /* swap, so c stays a permutation */
            c[0] = c[i];
            c[i] = evicted;
        }
        /* sift: for i < k push at the end and move up; else move the root down */
        int64_t size = i < k ? i + 1 : k;
        if (i < k) {
            int64_t child = i;
            while (child > 0) {
                int64_t parent = (child - 1) / 2;
                if (!ranks_before(&c[parent], &c[child])) break;
                candidate t = c[parent];
                c[parent] = c[child];
                c[child] = t;
                child = parent;
            }
        } else {
            int64_t parent = 0;
            for (;;) {
                int64_t worst = parent, left = 2 * parent + 1, right = left + 1;
                if (left < size && ranks_before(&c[worst], &c[left])) worst = left;
                if (right < size && ranks_before(&c[worst], &c[right])) worst = right;
                if (worst == parent) break;
                candidate t = c[parent];
                c[parent] = c[worst];
                c[worst] = t;
                parent = worst;
            }
        }
    }
    qsort(c, (size_t)k, sizeof *c, compare_candidates);
    return k;
}

/* top_p over candidates sorted best first: the prefix whose weight before
 * each kept token is below top_p of the total (mlxe_sample_top_p_stops, the
 * device's rule too). */
static int64_t keep_top_p_sorted(const mlxe_sampler *s, const candidate *c, int64_t n, float top_p) {
    const float max = c[0].logit;
    uint64_t total = 0, before = 0;
    for (int64_t i = 0; i < n; i++) total += mlxe_sample_weight(c[i].logit - max, s->weight_shift);
    for (int64_t i = 0; i < n; i++) {
        if (mlxe_sample_top_p_stops(before, total, top_p)) return i > 0 ? i : 1;
        before += mlxe_sample_weight(c[i].logit - max, s->weight_shift);
    }
    return n;
}

/* top_p over unsorted candidates without sorting the vocabulary: bucket the
 * weights by logit (TOP_P_BUCKETS slices of TOP_P_LOGIT_RANGE below the
 * max), find the bucket where the running weight crosses top_p, keep every
 * bucket above it and, from that bucket (sorted), the tokens the rule
 * keeps. O(vocab) plus one bucket's sort. The kept candidates are left
 * unsorted in c[0..result). */
static int64_t keep_top_p(mlxe_sampler *s, candidate *c, int64_t n, float top_p) {
    float max_logit = c[0].logit;
    for (int64_t i = 1; i < n; i++)
        if (c[i].logit > max_logit) max_logit = c[i].logit;
    const double max = max_logit;
    uint64_t *mass = s->bucket_mass, total = 0;
    memset(mass, 0, TOP_P_BUCKETS * sizeof *mass);
    for (int64_t i = 0; i < n; i++) {
        uint64_t w = mlxe_sample_weight(c[i].logit - max_logit, s->weight_shift);
        total += w;
        mass[bucket_of(c[i].logit, max)] += w;
    }
    const double target = (double)top_p * (double)total;
    uint64_t above = 0;
    int crossing = TOP_P_BUCKETS - 1;
    for (int b = 0; b < TOP_P_BUCKETS; b++) {
        if ((double)(above + mass[b]) >= target) {
            crossing = b;
            break;
        }
        above += mass[b];
    }
    /* buckets above the crossing one first, then its members, best first */
    int64_t kept = 0;
    for (int64_t i = 0; i < n; i++)
        if (bucket_of(c[i].logit, max) < crossing) {
            candidate t = c[kept];
            c[kept++] = c[i];
            c[i] = t;
        }
    int64_t members = kept;
    for (int64_t i = kept; i < n; i++)
        if (bucket_of(c[i].logit, max) == crossing) {
            candidate t = c[members];
            c[members++] = c[i];
            c[i] = t;
        }
    qsort(c + kept, (size_t)(members - kept), sizeof *c, compare_candidates);
    for (int64_t i = kept; i < members; i++) {
        if ((double)above >= target && i > 0) break;
        above += mlxe_sample_weight(c[i].logit - max_logit, s->weight_shift);
        kept = i + 1;
    }
    return kept > 0 ? kept : 1;
}

uint64_t mlxe_sampler_draw(mlxe_sampler *s) {
    if (!s || s->options.temperature <= 0.0f) return 0;
    return mlxe_rng_next(&s->rng) >> 11;
}

int32_t mlxe_sampler_sample(mlxe_sampler *s, const float *logits) {
    if (!s || !logits) return -1;
    return mlxe_sampler_sample_drawn(s, logits, mlxe_sampler_draw(s));
}

int32_t mlxe_sampler_sample_drawn(mlxe_sampler *s, const float *logits, uint64_t random_bits) {
    if (!s || !logits) return -1;
    const mlxe_sampler_options *o = &s->options;
    memcpy(s->work, logits, (size_t)s->vocab * sizeof(float));
    mlxe_sampler_apply_penalties(s, s->work);
    if (o->temperature <= 0.0f) return mlxe_sample_argmax(s->work, s->vocab);

    /* logits / temperature */
    candidate *c = s->candidates;
    int64_t n = 0;
    for (int64_t i = 0; i < s->vocab; i++) {
        float logit = s->work[i] / o->temperature;
        if (isnan(logit) || logit == -INFINITY) continue; /* probability zero */
        c[n].logit = logit;
        c[n].id = (int32_t)i;
        n++;
    }
    if (n == 0) return mlxe_sample_argmax(s->work, s->vocab);
    /* +inf outweighs everything: the first such token (the best ranked) */
    for (int64_t i = 0; i < n; i++)
        if (c[i].logit == INFINITY) return c[i].id;
    bool sorted = false;
    /* top_k: the k highest logits */
    if (o->top_k > 0) {
        n = keep_top_k(c, n, o->top_k);
        sorted = true;
    }
    /* top_p: keep the shortest run of most likely tokens whose probability
     * reaches top_p (transformers' TopPLogitsWarper: a token stays when the
     * mass strictly above it is below top_p). */
    if (o->top_p < 1.0f) n = sorted ? keep_top_p_sorted(s, c, n, o->top_p) : keep_top_p(s, c, n, o->top_p);
    /* min_p: drop tokens less likely than min_p times the most likely one,
     * i.e. logit < max_logit + ln(min_p) */
    if (o->min_p > 0.0f) {
        float max = c[0].logit;
        for (int64_t i = 1; i < n; i++)
            if (c[i].logit > max) max = c[i].logit;
        double threshold = (double)max + s->log_min_p;
        int64_t kept = 0;
        for (int64_t i = 0; i < n; i++)
            if ((double)c[i].logit >= threshold) c[kept++] = c[i];
        n = kept;
    }
    /* draw from the weights of c[0..n), in that order */
    float max = c[0].logit;
    for (int64_t i = 1; i < n; i++)
        if (c[i].logit > max) max = c[i].logit;
    uint64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
        s->weights[i] = mlxe_sample_weight(c[i].logit - max, s->weight_shift);
        total += s->weights[i];
    }
    const uint64_t target = mlxe_sample_target(random_bits, total);
    uint64_t sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += s->weights[i];
        if (target < sum) return c[i].id;
    }
    return c[n - 1].id;
}

bool mlxe_sampler_device_params(mlxe_sampler *s, mlxe_sample_params *params, mlxe_sample_adjust *adjust,
                                const char **why) {
    static const char *const no_sampler = "no sampler";
    if (!s || !params || !adjust) {
        if (why) *why = no_sampler;
        return false;
    }
    const mlxe_sampler_options *o = &s->options;
    const bool repetition = o->repetition_penalty != 1.0f;
    const bool additive = o->presence_penalty != 0.0f || o->frequency_penalty != 0.0f;
    const bool penalties = o->penalty_last_n > 0 && (repetition || additive);
    const char *reason = NULL;
    if (o->temperature > 0.0f && (o->top_k < 1 || o->top_k > MLXE_SAMPLE_MAX_TOP_K))
        reason = "top_k is off or above " MLXE_SAMPLING_STRINGIFY(MLXE_SAMPLE_MAX_TOP_K)
                 " (the device samples from at most that many tokens)";
    else if (!s->bias_distinct)
        reason = "logit_bias names a token twice";
    else if ((int64_t)o->n_logit_bias + (penalties ? o->penalty_last_n : 0) > MLXE_SAMPLE_MAX_ADJUST)
        reason = "logit_bias entries plus the penalty window exceed " MLXE_SAMPLING_STRINGIFY(MLXE_SAMPLE_MAX_ADJUST);
    if (reason) {
        if (why) *why = reason;
        return false;
    }
    memset(params, 0, sizeof *params);
    params->temperature = o->temperature;
    params->top_k = o->top_k;
    params->top_p = o->top_p;
    params->min_p = o->min_p;
    params->log_min_p = s->log_min_p;
    params->repetition_penalty = o->repetition_penalty;
    params->presence_penalty = o->presence_penalty;
    params->frequency_penalty = o->frequency_penalty;
    params->weight_shift = s->weight_shift;
    int32_t n = 0;
    for (int32_t i = 0; i < o->n_logit_bias; i++) {
        adjust[n].token = o->logit_bias[i].token;
        adjust[n].bias = o->logit_bias[i].bias;
        adjust[n].count = 0;
        adjust[n++].unused = 0;
    }
    params->n_bias = n;
    if (penalties) {
        /* each distinct token of the window once, as apply_penalties does */
        for (int32_t i = 0; i < s->history_len; i++) {
            int32_t token = s->history[i], count = s->counts[token];
            if (count <= 0) continue;
            adjust[n].token = token;
            adjust[n].count = count;
            adjust[n].bias = 0.0f;
            adjust[n++].unused = 0;
            s->counts[token] = -count;
        }
        for (int32_t i = 0; i < s->history_len; i++) {
            int32_t token = s->history[i];
            if (s->counts[token] < 0) s->counts[token] = -s->counts[token];
        }
    }
    params->n_penalty = n - params->n_bias;
    return true;
}
