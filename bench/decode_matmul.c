/* bench/decode_matmul.c — the matmuls of one decode token of a model shape
 * (every layer's q/k/v/o/gate/up/down and the lm_head, each layer with its
 * own weights so nothing stays in cache), through the CPU matmul op, for
 * BF16, MLX 8-bit and 4-bit (group 64) weights and each kernel set this
 * processor runs. The kernel sets are alternated round by round (the
 * machine is shared and noisy); min and median ms per token and the weight
 * bytes read per second are printed, beside the memory read bandwidth
 * measured in the same run would be (bench_memory_bandwidth).
 *
 *   bench_decode_matmul [--threads N] [--rounds N] [--shape qwen2.5-0.5b|llama-3.2-1b] [--kernels a,b,...]
 *                       [--cpu-time] [--huge-pages] [--pack] [--bits 0|4|8]   (0: BF16 only)
 *                       [--matvec ROWS COLS [--copies N]] [--fused]
 *
 * --kernels takes MLXE_CPU_KERNELS values (e.g. avx512-int8-split,avx512-int8:
 * the BF16 one-token decode on split against bf16-rounded activations).
 *
 * --matvec times one matrix shape alone (e.g. 8192 2048: Llama-3.2-1B's
 * gate/up projection; 128256 2048: its lm_head) at each --bits, cycling
 * through --copies copies of it (default: enough for 512 MB, so each one
 * comes from memory; --copies 1 with a small matrix measures the kernel
 * from cache, its compute ceiling). It prints the GB/s of weight bytes.
 *
 * --fused times each kernel set twice, alternated: the plain ops (q, k, v,
 * gate and up each a matmul, then silu_mul) and the fused ones a loaded
 * model uses where the device has them (ops->matmul_multi for q/k/v,
 * ops->matmul_swiglu for gate/up: one run of the thread pool each).
 *
 * --pack gives each kernel set its own copies of the matrices made by its
 * device's ops->pack_matrix (what a loaded model multiplies: huge-page
 * copies, 4/8-bit matrices in the CPU's packed layout where the table reads
 * it, runtime/cpu/cpu_pack.c) instead of the bound matrices.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/cpu/half.h"
#include "runtime/device.h"
#include "bench_clock.h"

/* Wall time, or with --cpu-time the calling thread's CPU time (with one
 * thread: the kernels' own time, what neighbours on a shared machine
 * disturb least). */
static clockid_t clock_used = CLOCK_MONOTONIC;
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(clock_used, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 12345;
static uint32_t random_word(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 32);
}

typedef struct shape {
    const char *name;
    int64_t layers, hidden, q_dim, kv_dim, ffn, vocab;
} shape;

static const shape shapes[] = {
    {"qwen2.5-0.5b", 24, 896, 896, 128, 4864, 151936},
    {"llama-3.2-1b", 16, 2048, 2048, 512, 8192, 128256},
};

/* Weight memory: 2 MiB aligned, and with --huge-pages madvise(MADV_HUGEPAGE)
 * (what a model mapped from the page cache may or may not get). */
static int huge_pages = 0;
static void *weight_alloc(size_t bytes) {
    size_t rounded = (bytes + (2u << 20) - 1) / (2u << 20) * (2u << 20);
    void *p = aligned_alloc(2u << 20, rounded);
    if (p && huge_pages) madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

/* One matrix with random contents (bits 0: BF16). */
static int make_matrix(mlxe_matrix *m, int64_t rows, int64_t cols, int bits, size_t *bytes) {
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->cols = cols;
    size_t count = (size_t)(rows * cols);
    if (bits == 0) {
        uint16_t *data = weight_alloc(count * 2);
        if (!data) return -1;
        for (size_t i = 0; i < count; i++) data[i] = mlxe_f32_to_bf16(((float)(random_word() >> 8) * 0x1p-24f - 0.5f) * 0.04f);
        m->dtype = MLXE_DTYPE_BF16;
        m->data = data;
        *bytes += count * 2;
        return 0;
    }
    const int group_size = 64;
    size_t groups = count / group_size, data_bytes = count * (size_t)bits / 8;
    uint32_t *words = weight_alloc(data_bytes);
    uint16_t *scales = malloc(groups * 2), *biases = malloc(groups * 2);
    if (!words || !scales || !biases) return -1;
    for (size_t i = 0; i < data_bytes / 4; i++) words[i] = random_word();
    for (size_t g = 0; g < groups; g++) {
        scales[g] = mlxe_f32_to_bf16(0.002f + (float)(random_word() >> 24) * 1e-5f);
        biases[g] = mlxe_f32_to_bf16(-0.02f);
    }
    *m = (mlxe_matrix){.dtype = MLXE_DTYPE_U32, .rows = rows, .cols = cols, .data = words, .bits = bits,
                       .group_size = group_size, .scale_dtype = MLXE_DTYPE_BF16, .scales = scales, .biases = biases};
    *bytes += data_bytes + groups * 4;
    return 0;
}

static void free_matrix(mlxe_matrix *m) {
    free((void *)m->data);
    free((void *)m->scales);
    free((void *)m->biases);
}

#define MAX_SETS 4
#define MAX_ROUNDS 64

/* --pack: per kernel set, copies of mats[0..n) made by its device's
 * pack_matrix (the bound matrices where it makes none); owned[k][i] to free. */
static int pack_per_set = 0;
static int fused_too = 0;
static int pack_matrices(mlxe_device **devices, int n_sets, const mlxe_matrix *mats, int64_t n,
                         mlxe_matrix *packed[MAX_SETS], void **owned[MAX_SETS]) {
    for (int k = 0; k < n_sets; k++) {
        packed[k] = malloc((size_t)n * sizeof **packed);
        owned[k] = calloc((size_t)n, sizeof **owned);
        if (!packed[k] || !owned[k]) return -1;
        for (int64_t i = 0; i < n; i++) {
            packed[k][i] = mats[i];
            mlxe_error err;
            const mlxe_ops *ops = mlxe_device_ops(devices[k]);
            if (pack_per_set && ops->pack_matrix &&
                ops->pack_matrix(devices[k], &packed[k][i], false, &owned[k][i], &err) != MLXE_OK) {
                fprintf(stderr, "%s\n", err.message);
                return -1;
            }
        }
    }
    return 0;
}

static void free_packed(int n_sets, int64_t n, mlxe_matrix *packed[MAX_SETS], void **owned[MAX_SETS]) {
    for (int k = 0; k < n_sets; k++) {
        for (int64_t i = 0; i < n; i++) free(owned[k][i]);
        free(owned[k]);
        free(packed[k]);
    }
}

/* --matvec: one shape, n_copies copies, every kernel set alternated per round. */
static int run_matvec(mlxe_device **devices, int n_sets, const char **sets, int64_t rows, int64_t cols, int64_t n_copies,
                      int rounds, int only_bits) {
    static const int all_bits[] = {0, 8, 4};
    float *x = malloc((size_t)cols * sizeof(float)), *y = malloc((size_t)rows * sizeof(float));
    if (!x || !y) return 1;
    for (int64_t i = 0; i < cols; i++) x[i] = (float)(random_word() >> 8) * 0x1p-24f - 0.5f;
    printf("one %lld x %lld matvec, %d alternating rounds\n\n", (long long)rows, (long long)cols, rounds);
    printf("| weights | kernels | copies | MB each | GB/s max | median | min |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    for (int b = 0; b < 3; b++) {
        if (only_bits >= 0 && all_bits[b] != only_bits) continue;
        size_t bytes = 0;
        mlxe_matrix probe;
        if (make_matrix(&probe, rows, cols, all_bits[b], &bytes)) return 1;
        int64_t copies = n_copies > 0 ? n_copies : (int64_t)((512u << 20) / bytes) + 1;
        mlxe_matrix *mats = calloc((size_t)copies, sizeof *mats);
        if (!mats) return 1;
        mats[0] = probe;
        for (int64_t i = 1; i < copies; i++)
            if (make_matrix(&mats[i], rows, cols, all_bits[b], &bytes)) return 1;
        mlxe_matrix *packed[MAX_SETS];
        void **owned[MAX_SETS];
        if (pack_matrices(devices, n_sets, mats, copies, packed, owned)) return 1;
        double rates[MAX_SETS][MAX_ROUNDS];
        for (int r = -1; r < rounds; r++) {
            for (int k = 0; k < n_sets; k++) {
                const mlxe_ops *ops = mlxe_device_ops(devices[k]);
                double t0 = now_seconds();
                for (int64_t i = 0; i < copies; i++) ops->matmul(devices[k], x, 1, &packed[k][i], y);
                if (r >= 0) rates[k][r] = (double)bytes / (now_seconds() - t0) * 1e-9;
            }
        }
        for (int k = 0; k < n_sets; k++) {
            qsort(rates[k], (size_t)rounds, sizeof(double), bench_compare_doubles);
            printf("| %s | %s | %lld | %.1f | %.1f | %.1f | %.1f |\n", all_bits[b] == 0 ? "BF16" : all_bits[b] == 8 ? "Q8 g64" : "Q4 g64",
                   sets[k], (long long)copies, (double)bytes / (double)copies / 1e6, rates[k][rounds - 1], rates[k][rounds / 2],
                   rates[k][0]);
            fflush(stdout);
        }
        free_packed(n_sets, copies, packed, owned);
        for (int64_t i = 0; i < copies; i++) free_matrix(&mats[i]);
        free(mats);
    }
    free(x);
    free(y);
    return 0;
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 7, only_bits = -1;
    int64_t matvec_rows = 0, matvec_cols = 0, copies = 0;
    const shape *s = &shapes[0];
    const char *kernel_list = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernels") && i + 1 < argc) kernel_list = argv[++i];
        else if (!strcmp(argv[i], "--cpu-time")) clock_used = CLOCK_THREAD_CPUTIME_ID;
        else if (!strcmp(argv[i], "--huge-pages")) huge_pages = 1;
        else if (!strcmp(argv[i], "--pack")) pack_per_set = 1;
        else if (!strcmp(argv[i], "--fused")) fused_too = 1;
        else if (!strcmp(argv[i], "--bits") && i + 1 < argc) only_bits = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--matvec") && i + 2 < argc) {
            matvec_rows = atoll(argv[++i]);
            matvec_cols = atoll(argv[++i]);
        } else if (!strcmp(argv[i], "--copies") && i + 1 < argc) copies = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            const char *name = argv[++i];
            s = !strcmp(name, shapes[1].name) ? &shapes[1] : &shapes[0];
        } else {
            fprintf(stderr, "usage: %s [--threads N] [--rounds N] [--shape qwen2.5-0.5b|llama-3.2-1b] [--kernels a,b] [--cpu-time] [--huge-pages] [--pack] [--bits 0|4|8] [--matvec ROWS COLS [--copies N]] [--fused]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 7;
    const char *sets[MAX_SETS];
    int n_sets = 0;
    char list_copy[256];
    if (kernel_list) {
        snprintf(list_copy, sizeof list_copy, "%s", kernel_list);
        for (char *tok = strtok(list_copy, ","); tok && n_sets < MAX_SETS; tok = strtok(NULL, ",")) sets[n_sets++] = tok;
    } else {
        sets[n_sets++] = "avx512";
        sets[n_sets++] = "avx512-int8";
    }
    mlxe_device *devices[MAX_SETS];
    for (int k = 0; k < n_sets; k++) {
        setenv("MLXE_CPU_KERNELS", sets[k], 1);
        mlxe_error err;
        if (mlxe_device_create_cpu(threads, &devices[k], &err) != MLXE_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
    }
    unsetenv("MLXE_CPU_KERNELS");
    if (matvec_rows > 0) {
        if (matvec_cols <= 0 || matvec_cols % 64 != 0) {
            fprintf(stderr, "--matvec: COLS must be a positive multiple of 64\n");
            return 2;
        }
        int rc = run_matvec(devices, n_sets, sets, matvec_rows, matvec_cols, copies, rounds, only_bits);
        for (int k = 0; k < n_sets; k++) mlxe_device_free(devices[k]);
        return rc;
    }
    const int64_t per_layer = 7, n_mats = s->layers * per_layer + 1;
    mlxe_matrix *mats = calloc((size_t)n_mats, sizeof *mats);
    float *x = malloc((size_t)s->ffn * 4 * sizeof(float)), *y = malloc((size_t)s->vocab * 4 * sizeof(float));
    if (!mats || !x || !y) return 1;
    for (int64_t i = 0; i < s->ffn * 4; i++) x[i] = (float)(random_word() >> 8) * 0x1p-24f - 0.5f;
    printf("decode matmuls of %s (%lld layers + lm_head), %d thread(s), %d alternating rounds\n\n", s->name,
           (long long)s->layers, threads, rounds);
    printf("| weights | kernels | MB per token | ms/token min | median | GB/s at min | at median |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n");
    static const int all_bits[] = {0, 8, 4};
    for (int b = 0; b < 3; b++) {
        if (only_bits >= 0 && all_bits[b] != only_bits) continue;
        size_t bytes = 0;
        for (int64_t l = 0; l < s->layers; l++) {
            mlxe_matrix *m = mats + l * per_layer;
            if (make_matrix(m + 0, s->q_dim, s->hidden, all_bits[b], &bytes) ||
                make_matrix(m + 1, s->kv_dim, s->hidden, all_bits[b], &bytes) ||
                make_matrix(m + 2, s->kv_dim, s->hidden, all_bits[b], &bytes) ||
                make_matrix(m + 3, s->hidden, s->q_dim, all_bits[b], &bytes) ||
                make_matrix(m + 4, s->ffn, s->hidden, all_bits[b], &bytes) ||
                make_matrix(m + 5, s->ffn, s->hidden, all_bits[b], &bytes) ||
                make_matrix(m + 6, s->hidden, s->ffn, all_bits[b], &bytes))
                return 1;
        }
        if (make_matrix(mats + n_mats - 1, s->vocab, s->hidden, all_bits[b], &bytes)) return 1;
        mlxe_matrix *packed[MAX_SETS];
        void **owned[MAX_SETS];
        if (pack_matrices(devices, n_sets, mats, n_mats, packed, owned)) return 1;
        /* variant v: kernel set v / modes, fused when v % modes is 1 */
        const int modes = fused_too ? 2 : 1, n_variants = n_sets * modes;
        double times[2 * MAX_SETS][MAX_ROUNDS];
        for (int r = -1; r < rounds; r++) { /* round -1: warm-up (page faults) */
            for (int v = 0; v < n_variants; v++) {
                const int k = v / modes;
                const mlxe_ops *ops = mlxe_device_ops(devices[k]);
                const bool fused = v % modes == 1 && ops->matmul_multi && ops->matmul_swiglu;
                double t0 = now_seconds();
                if (!fused) {
                    for (int64_t i = 0; i < n_mats; i++) {
                        ops->matmul(devices[k], x, 1, &packed[k][i], y);
                        /* after up: the SwiGLU gate the fused op applies inside */
                        if (fused_too && i < n_mats - 1 && i % per_layer == 5) ops->silu_mul(devices[k], y, y + s->ffn, y, s->ffn);
                    }
                } else {
                    for (int64_t l = 0; l < s->layers; l++) {
                        const mlxe_matrix *m = packed[k] + l * per_layer;
                        const mlxe_matrix *qkv[3] = {m + 0, m + 1, m + 2};
                        float *outputs[3] = {y, y + s->q_dim, y + s->q_dim + s->kv_dim};
                        ops->matmul_multi(devices[k], x, 1, NULL, 0.0f, NULL, 3, qkv, outputs);
                        ops->matmul(devices[k], x, 1, m + 3, y);
                        ops->matmul_swiglu(devices[k], x, 1, NULL, 0.0f, NULL, m + 4, m + 5, y, y + s->ffn);
                        ops->matmul(devices[k], x, 1, m + 6, y);
                    }
                    ops->matmul(devices[k], x, 1, &packed[k][n_mats - 1], y);
                }
                if (r >= 0) times[v][r] = now_seconds() - t0;
            }
        }
        for (int v = 0; v < n_variants; v++) {
            qsort(times[v], (size_t)rounds, sizeof(double), bench_compare_doubles);
            double best = times[v][0], median = times[v][rounds / 2];
            printf("| %s | %s%s | %.1f | %.2f | %.2f | %.1f | %.1f |\n", all_bits[b] == 0 ? "BF16" : all_bits[b] == 8 ? "Q8 g64" : "Q4 g64",
                   mlxe_device_name(devices[v / modes]), v % modes == 1 ? " fused" : "", (double)bytes / 1e6, best * 1e3,
                   median * 1e3, (double)bytes / best * 1e-9, (double)bytes / median * 1e-9);
            fflush(stdout);
        }
        free_packed(n_sets, n_mats, packed, owned);
        for (int64_t i = 0; i < n_mats; i++) free_matrix(&mats[i]);
    }
    for (int k = 0; k < n_sets; k++) mlxe_device_free(devices[k]);
    free(mats);
    free(x);
    free(y);
    return 0;
}
