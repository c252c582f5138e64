/* Tests of the tensor-core prompt attention (runtime/cuda/cuda_flash_attention.cu)
 * against the CPU attention op on random inputs: prompts from position 0,
 * prompts continuing a sequence (a cache prefix of random history), sliding
 * windows, grouped-query heads, token counts that are not a multiple of the
 * kernel's 64-token tiles, a batch of two sequences whose boundary falls
 * inside a tile, decode through the forced kernel, and head dims the kernel
 * does not take (the float32 kernels then answer, to 1e-5). The kernel rounds
 * q, k, v and the softmax weights to BF16 (2^-9 relative each) and
 * accumulates in float32: relative error (‖gpu − cpu‖ / ‖cpu‖) within 1e-2.
 * Skips without a GPU. */
#include "runtime_cuda_test.h"

#define MAX_ROWS 256

typedef struct flash_case {
    int64_t n_heads, n_kv_heads, head_dim, window, n_rows;
    int32_t slots[MAX_ROWS], positions[MAX_ROWS];
    double tolerance;
    const char *what;
} flash_case;

typedef struct flash_fixture {
    mlxe_device *cpu, *gpu_auto, *gpu_flash;
} flash_fixture;

static int setup(void **state) {
    *state = calloc(1, sizeof(flash_fixture));
    return 0;
}

static int teardown(void **state) {
    flash_fixture *f = *state;
    mlxe_device_free(f->gpu_auto);
    mlxe_device_free(f->gpu_flash);
    mlxe_device_free(f->cpu);
    free(f);
    return 0;
}

static flash_fixture *open_devices(void **state) {
    flash_fixture *f = *state;
    if (!f->gpu_auto) {
        f->gpu_auto = cuda_device_or_skip();
        setenv("MLXE_CUDA_ATTENTION", "flash", 1);
        mlxe_error err;
        mlxe_status status = mlxe_device_create_cuda(0, &f->gpu_flash, &err);
        unsetenv("MLXE_CUDA_ATTENTION");
        if (status != MLXE_OK) fail_msg("%s", err.message);
        f->cpu = cuda_cpu_device();
    }
    return f;
}

/* The case on the CPU and on gpu; returns the relative error. */
static void check_case(flash_fixture *f, mlxe_device *gpu, cuda_rng *rng, const flash_case *c) {
    const mlxe_ops *g = mlxe_device_ops(gpu), *cpu = mlxe_device_ops(f->cpu);
    const int64_t n_slots = 2, capacity = 1100;
    const size_t cache_n = (size_t)(n_slots * c->n_kv_heads * capacity * c->head_dim);
    const size_t kv_n = (size_t)(c->n_rows * c->n_kv_heads * c->head_dim);
    const size_t q_n = (size_t)(c->n_rows * c->n_heads * c->head_dim);
    /* history in the whole cache, then the batch's own keys and values */
    float *k_cache = malloc(cache_n * sizeof(float)), *v_cache = malloc(cache_n * sizeof(float));
    float *k = malloc(kv_n * sizeof(float)), *v = malloc(kv_n * sizeof(float)), *q = malloc(q_n * sizeof(float));
    cuda_fill(rng, k_cache, cache_n, -1.0f, 1.0f);
    cuda_fill(rng, v_cache, cache_n, -1.0f, 1.0f);
    cuda_fill(rng, k, kv_n, -1.0f, 1.0f);
    cuda_fill(rng, v, kv_n, -1.0f, 1.0f);
    cuda_fill(rng, q, q_n, -2.0f, 2.0f);
    cpu->kv_store(f->cpu, k, v, c->n_rows, c->n_kv_heads, c->head_dim, k_cache, v_cache, capacity, c->slots,
                  c->positions);
    float *dk_cache = cuda_to_device(gpu, k_cache, cache_n * sizeof(float));
    float *dv_cache = cuda_to_device(gpu, v_cache, cache_n * sizeof(float));
    float *dq = cuda_to_device(gpu, q, q_n * sizeof(float));
    int32_t *dslots = cuda_to_device(gpu, c->slots, (size_t)c->n_rows * sizeof(int32_t));
    int32_t *dpositions = cuda_to_device(gpu, c->positions, (size_t)c->n_rows * sizeof(int32_t));
    float *poison = malloc(q_n * sizeof(float));
    memset(poison, 0xff, q_n * sizeof(float)); /* NaN: an unwritten output fails */
    float *dout = cuda_to_device(gpu, poison, q_n * sizeof(float));

    int32_t max_position = 0;
    for (int64_t r = 0; r < c->n_rows; r++)
        if (c->positions[r] > max_position) max_position = c->positions[r];
    mlxe_attention_args args = {.n_rows = c->n_rows, .n_heads = c->n_heads, .n_kv_heads = c->n_kv_heads,
                                .head_dim = c->head_dim, .q = q, .k_cache = k_cache, .v_cache = v_cache,
                                .capacity = capacity, .slots = c->slots, .positions = c->positions,
                                .window = c->window, .scale = 1.0f / sqrtf((float)c->head_dim)};
    float *want = malloc(q_n * sizeof(float)), *got = malloc(q_n * sizeof(float));
    args.out = want;
    cpu->attention(f->cpu, &args);

    args.q = dq;
    args.k_cache = dk_cache;
    args.v_cache = dv_cache;
    args.slots = dslots;
    args.positions = dpositions;
    args.out = dout;
    args.kv_length = max_position + 1;
    g->attention(gpu, &args);
    g->download(gpu, got, dout, q_n * sizeof(float));
    cuda_expect_synchronized(gpu);
    cuda_assert_close(got, want, q_n, c->tolerance, c->what);
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < q_n; i++) {
        diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        norm += (double)want[i] * want[i];
    }
    print_message("%s, head_dim %lld, %s: relative error %.2e\n", c->what, (long long)c->head_dim,
                  gpu == f->gpu_flash ? "forced flash" : "automatic", sqrt(diff / norm));

    /* slots and positions from host memory */
    g->upload(gpu, dout, poison, q_n * sizeof(float));
    args.slots = c->slots;
    args.positions = c->positions;
    g->attention(gpu, &args);
    g->download(gpu, got, dout, q_n * sizeof(float));
    cuda_expect_synchronized(gpu);
    cuda_assert_close(got, want, q_n, c->tolerance, c->what);

    void *device_buffers[] = {dk_cache, dv_cache, dq, dslots, dpositions, dout};
    for (size_t i = 0; i < sizeof device_buffers / sizeof device_buffers[0]; i++) g->free(gpu, device_buffers[i]);
    free(k_cache);
    free(v_cache);
    free(k);
    free(v);
    free(q);
    free(poison);
    free(want);
    free(got);
}

static void prompt(flash_case *c, int32_t slot, int32_t first_position) {
    for (int64_t r = 0; r < c->n_rows; r++) {
        c->slots[r] = slot;
        c->positions[r] = first_position + (int32_t)r;
    }
}

/* Both head dims the kernel takes, through the automatic choice (>= 64
 * tokens) and the forced one. */
static void test_prompts(void **state) {
    flash_fixture *f = open_devices(state);
    cuda_rng rng = {77};
    static const int64_t head_dims[] = {64, 128};
    for (int i = 0; i < 2; i++) {
        mlxe_device *gpus[2] = {f->gpu_auto, f->gpu_flash};
        for (int k = 0; k < 2; k++) {
            flash_case c = {.n_heads = 8, .n_kv_heads = 2, .head_dim = head_dims[i], .n_rows = 200,
                            .tolerance = 1e-2, .what = "prompt of 200 tokens from position 0, GQA 8/2"};
            prompt(&c, 1, 0);
            check_case(f, gpus[k], &rng, &c);

            c = (flash_case){.n_heads = 4, .n_kv_heads = 4, .head_dim = head_dims[i], .n_rows = 100,
                             .tolerance = 1e-2, .what = "prompt of 100 tokens after 700 cached, no GQA"};
            prompt(&c, 0, 700);
            check_case(f, gpus[k], &rng, &c);

            c = (flash_case){.n_heads = 6, .n_kv_heads = 2, .head_dim = head_dims[i], .n_rows = 150, .window = 50,
                             .tolerance = 1e-2, .what = "prompt of 150 tokens from position 30, window 50"};
            prompt(&c, 1, 30);
            check_case(f, gpus[k], &rng, &c);

            c = (flash_case){.n_heads = 8, .n_kv_heads = 1, .head_dim = head_dims[i], .n_rows = 64,
                             .tolerance = 1e-2, .what = "one full tile, 8 heads on one kv head"};
            prompt(&c, 0, 1000);
            check_case(f, gpus[k], &rng, &c);
        }
    }
}

/* Two sequences in one batch, the boundary inside a tile; decode and
 * small batches through the forced kernel. */
static void test_batches(void **state) {
    flash_fixture *f = open_devices(state);
    cuda_rng rng = {78};
    for (int hd = 64; hd <= 128; hd += 64) {
        flash_case c = {.n_heads = 4, .n_kv_heads = 2, .head_dim = hd, .n_rows = 130, .tolerance = 1e-2,
                        .what = "two sequences, boundary at token 70"};
        for (int64_t r = 0; r < c.n_rows; r++) {
            c.slots[r] = r < 70 ? 0 : 1;
            c.positions[r] = r < 70 ? (int32_t)r : 500 + (int32_t)(r - 70);
        }
        check_case(f, f->gpu_auto, &rng, &c);
        check_case(f, f->gpu_flash, &rng, &c);
        c.window = 40;
        c.what = "two sequences, window 40";
        check_case(f, f->gpu_flash, &rng, &c);

        flash_case decode = {.n_heads = 8, .n_kv_heads = 2, .head_dim = hd, .n_rows = 1, .tolerance = 1e-2,
                             .what = "decode, one token at position 1037 (forced flash)"};
        decode.slots[0] = 1;
        decode.positions[0] = 1037;
        check_case(f, f->gpu_flash, &rng, &decode);

        flash_case batched = {.n_heads = 4, .n_kv_heads = 4, .head_dim = hd, .n_rows = 4, .tolerance = 1e-2,
                              .what = "batched decode, four depths in two slots (forced flash)"};
        int32_t depths[4] = {0, 5, 700, 1099};
        for (int r = 0; r < 4; r++) {
            batched.slots[r] = r % 2;
            batched.positions[r] = depths[r];
        }
        check_case(f, f->gpu_flash, &rng, &batched);
    }
}

/* Head dims the flash kernel does not take: the float32 kernels answer. */
static void test_other_head_dims(void **state) {
    flash_fixture *f = open_devices(state);
    cuda_rng rng = {79};
    static const int64_t head_dims[] = {32, 80, 256};
    for (int i = 0; i < 3; i++) {
        flash_case c = {.n_heads = 4, .n_kv_heads = 2, .head_dim = head_dims[i], .n_rows = 96, .tolerance = 1e-5,
                        .what = "prompt of 96 tokens, head_dim without a flash kernel"};
        prompt(&c, 0, 10);
        check_case(f, f->gpu_auto, &rng, &c);
        check_case(f, f->gpu_flash, &rng, &c);
    }
}

int main(void) {
    /* The CPU is the reference here: its float-activation kernels (the default
     * ones multiply int8/bf16 activations on AVX-512 VNNI processors,
     * runtime/cpu/cpu_kernels.h). */
    setenv("MLXE_CPU_KERNELS", "float", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_prompts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_head_dims, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
