/* Tests of creating CUDA devices: on a machine without a usable GPU (or a
 * build without CUDA) creation fails with MLXE_ERR_DEVICE and says why,
 * never crashing; with a GPU it works and memory round-trips. Device
 * spellings (cpu, cuda, cuda:N, auto) and the weight/synchronize ops of
 * the CPU device are checked everywhere. */
#include "base/build_config.h"
#include "runtime_cuda_test.h"
#include "mlxengine/log.h"
#if MLXE_BUILD_CUDA
#include "runtime/cuda/cuda_blas.h"
#include "runtime/cuda/cuda_internal.h"
#endif

static bool gpu_required(void) {
    const char *require = getenv("MLXE_REQUIRE_GPU");
    return require && strcmp(require, "1") == 0;
}

static void test_create_cuda_fails_cleanly_or_works(void **state) {
    mlxe_device *dev = (mlxe_device *)0x1;
    mlxe_error err;
    mlxe_status status = mlxe_device_create_cuda(0, &dev, &err);
    if (status != MLXE_OK) {
        if (gpu_required()) fail_msg("MLXE_REQUIRE_GPU=1 but: %s", err.message);
        print_message("no GPU here, as expected on CI: %s\n", err.message);
        assert_int_equal(status, MLXE_ERR_DEVICE);
        assert_int_equal(err.status, MLXE_ERR_DEVICE);
        assert_null(dev);
        /* the reason names CUDA and what to do */
        assert_message_contains(err.message, "CUDA");
        assert_message_contains(err.message, "CPU");
        return;
    }
    assert_string_equal(mlxe_device_name(dev), "cuda:0");
    assert_int_equal(mlxe_device_threads(dev), 1);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    float host[1000], back[1000];
    for (int i = 0; i < 1000; i++) host[i] = (float)i * 0.5f - 7.0f;
    float *device = cuda_to_device(dev, host, sizeof host);
    ops->download(dev, back, device, sizeof back);
    assert_memory_equal(host, back, sizeof host);
    /* alloc zero-fills */
    float *zeros = cuda_to_device(dev, NULL, sizeof host);
    ops->download(dev, back, zeros, sizeof back);
    for (int i = 0; i < 1000; i++) assert_true(back[i] == 0.0f);
    void *weights = cuda_weights_to_device(dev, host, sizeof host);
    ops->download(dev, back, weights, sizeof back);
    assert_memory_equal(host, back, sizeof host);
    cuda_expect_synchronized(dev);
    ops->free_weights(dev, weights);
    ops->free_weights(dev, NULL);
    ops->free(dev, device);
    ops->free(dev, zeros);
    mlxe_device_free(dev);
}

static void test_create_cuda_bad_ordinals(void **state) {
    mlxe_device *dev = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_device_create_cuda(-1, &dev, &err), MLXE_ERR_INVALID_ARGUMENT);
    assert_message_contains(err.message, "-1");
    assert_null(dev);
    /* no machine has a thousand GPUs: MLXE_ERR_DEVICE saying so (or why there are none) */
    assert_int_equal(mlxe_device_create_cuda(1000, &dev, &err), MLXE_ERR_DEVICE);
    assert_null(dev);
    assert_true(strlen(err.message) > 20);
    assert_int_equal(mlxe_device_create_cuda(0, NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
}

static void test_create_from_spec(void **state) {
    mlxe_device *dev = NULL;
    mlxe_error err;
    assert_int_equal(mlxe_device_create("cpu", &dev, &err), MLXE_OK);
    assert_non_null(strstr(mlxe_device_name(dev), "cpu"));
    mlxe_device_free(dev);

    /* auto: the GPU when there is one, else the CPU — never an error */
    assert_int_equal(mlxe_device_create("auto", &dev, &err), MLXE_OK);
    bool have_gpu = strncmp(mlxe_device_name(dev), "cuda:", 5) == 0;
    if (gpu_required()) assert_true(have_gpu);
    mlxe_device_free(dev);
    assert_int_equal(mlxe_device_create(NULL, &dev, &err), MLXE_OK);
    mlxe_device_free(dev);

    mlxe_status status = mlxe_device_create("cuda", &dev, &err);
    assert_int_equal(status, have_gpu ? MLXE_OK : MLXE_ERR_DEVICE);
    if (have_gpu) assert_string_equal(mlxe_device_name(dev), "cuda:0");
    mlxe_device_free(dev);
    status = mlxe_device_create("cuda:0", &dev, &err);
    assert_int_equal(status, have_gpu ? MLXE_OK : MLXE_ERR_DEVICE);
    mlxe_device_free(dev);
    assert_int_equal(mlxe_device_create("cuda:999", &dev, &err), MLXE_ERR_DEVICE);
    assert_null(dev);

    static const char *bad[] = {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "CPU", "cuda:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(mlxe_device_create(bad[i], &dev, &err), MLXE_ERR_INVALID_ARGUMENT);
        assert_null(dev);
        assert_message_contains(err.message, "unknown device");
    }
    assert_int_equal(mlxe_device_create("cpu", NULL, &err), MLXE_ERR_INVALID_ARGUMENT);
}

/* The CPU device uses weights in place and has nothing to wait for. */
static void test_cpu_weights_and_synchronize(void **state) {
    mlxe_device *dev = cuda_cpu_device();
    const mlxe_ops *ops = mlxe_device_ops(dev);
    float weights[4] = {1, 2, 3, 4};
    void *p = NULL;
    mlxe_error err;
    assert_int_equal(ops->upload_weights(dev, weights, sizeof weights, &p, &err), MLXE_OK);
    assert_ptr_equal(p, weights);
    ops->free_weights(dev, p);
    assert_int_equal(ops->synchronize(dev, &err), MLXE_OK);
    mlxe_device_free(dev);
}

/* cuBLAS is opened at run time (runtime/cuda/cuda_blas.c), not linked: in
 * a CUDA build the table opens wherever the toolkit's library is (CI has
 * it, without a GPU), with every function, the same table every time, and
 * cublasCreate answers through it (no GPU: an error status; a GPU: a
 * handle). A build without CUDA has nothing to open. */
static void test_cublas_opens_at_run_time(void **state) {
#if MLXE_BUILD_CUDA
    char why[512] = "";
    const mlxe_cuda_blas *blas = mlxe_cuda_blas_open(why, sizeof why);
    if (!blas) fail_msg("cuBLAS did not open: %s", why);
    assert_non_null(blas->create);
    assert_non_null(blas->destroy);
    assert_non_null(blas->set_stream);
    assert_non_null(blas->gemm_ex);
    assert_non_null(blas->sgemm);
    assert_ptr_equal(mlxe_cuda_blas_open(NULL, 0), blas);
    cublasHandle_t handle = NULL;
    const cublasStatus_t status = blas->create(&handle);
    if (status == CUBLAS_STATUS_SUCCESS) {
        assert_non_null(handle);
        assert_int_equal(blas->destroy(handle), CUBLAS_STATUS_SUCCESS);
    } else {
        if (gpu_required()) fail_msg("MLXE_REQUIRE_GPU=1 but cublasCreate gave status %d", (int)status);
        print_message("cublasCreate without a GPU: status %d, as expected\n", (int)status);
    }
#else
    skip();
#endif
}

/* MLXE_CUDA_STEP_TIMING=1 (runtime/cuda/cuda_step_timing.h): after 129
 * replays of a recorded graph the runtime log has one report of the GPU
 * time per replay against the period between replays; without the switch,
 * none. Needs a GPU. */
static int timing_reports;

static void count_timing_reports(void *user, const mlxe_log_record *record) {
    (void)user;
    if (strstr(record->message, "between replays")) timing_reports++;
}

static int replay_and_count_reports(bool timing) {
    if (timing) setenv("MLXE_CUDA_STEP_TIMING", "1", 1);
    mlxe_device *dev = NULL;
    mlxe_error err;
    mlxe_status status = mlxe_device_create_cuda(0, &dev, &err);
    unsetenv("MLXE_CUDA_STEP_TIMING");
    if (status != MLXE_OK) fail_msg("%s", err.message);
    const mlxe_ops *ops = mlxe_device_ops(dev);
    float *y = NULL, *x = NULL;
    assert_int_equal(ops->alloc(dev, 256 * sizeof(float), (void **)&y, &err), MLXE_OK);
    assert_int_equal(ops->alloc(dev, 256 * sizeof(float), (void **)&x, &err), MLXE_OK);
    assert_true(ops->graph_begin(dev));
    ops->add(dev, y, x, 256);
    void *graph = ops->graph_end(dev);
    assert_non_null(graph);
    timing_reports = 0;
    mlxe_log_set_level(MLXE_LOG_CAT_RUNTIME, MLXE_LOG_INFO);
    mlxe_log_set_callback(count_timing_reports, NULL);
    for (int i = 0; i < 130; i++) {
        assert_true(ops->graph_launch(dev, graph));
        assert_int_equal(ops->synchronize(dev, &err), MLXE_OK);
    }
    mlxe_log_set_callback(NULL, NULL);
    ops->graph_free(dev, graph);
    ops->free(dev, y);
    ops->free(dev, x);
    mlxe_device_free(dev);
    return timing_reports;
}

static void test_step_timing_reports(void **state) {
    mlxe_device *probe = NULL;
    mlxe_error err;
    if (mlxe_device_create_cuda(0, &probe, &err) != MLXE_OK) {
        if (gpu_required()) fail_msg("MLXE_REQUIRE_GPU=1 but: %s", err.message);
        skip();
    }
    mlxe_device_free(probe);
    assert_int_equal(replay_and_count_reports(true), 1);
    assert_int_equal(replay_and_count_reports(false), 0);
}

/* ops.h prefetch (runtime/cuda/cuda_prefetch.cu): present on sm_90 and
 * later unless MLXE_CUDA_PREFETCH=0. A BF16 matrix larger than a call's
 * cap, prefetched outside a recording and inside one between two adds,
 * changes no result; the recording (its branch joined) replays, and
 * synchronize reports no error. Needs a GPU. */
static void test_prefetch(void **state) {
    (void)state;
#if MLXE_BUILD_CUDA
    mlxe_device *dev = NULL;
    mlxe_error err;
    if (mlxe_device_create_cuda(0, &dev, &err) != MLXE_OK) {
        if (gpu_required()) fail_msg("MLXE_REQUIRE_GPU=1 but: %s", err.message);
        skip();
    }
    const mlxe_ops *ops = mlxe_device_ops(dev);
    if (mlxe_cuda_state_of(dev)->cc_major < 9) {
        assert_null(ops->prefetch);
        mlxe_device_free(dev);
        skip();
    }
    assert_non_null(ops->prefetch);
    enum { kRows = 4096, kCols = 2048, kN = 256 }; /* 16 MB: more than the 8 MB a call takes */
    unsigned short *host = calloc((size_t)kRows * kCols, sizeof *host);
    void *weights = NULL;
    assert_int_equal(ops->upload_weights(dev, host, (size_t)kRows * kCols * sizeof *host, &weights, &err), MLXE_OK);
    const mlxe_matrix m = {.dtype = MLXE_DTYPE_BF16, .rows = kRows, .cols = kCols, .data = weights};
    float ones[kN], got[kN];
    for (int i = 0; i < kN; i++) ones[i] = 1.0f;
    float *y = NULL, *x = NULL;
    assert_int_equal(ops->alloc(dev, sizeof ones, (void **)&y, &err), MLXE_OK);
    assert_int_equal(ops->alloc(dev, sizeof ones, (void **)&x, &err), MLXE_OK);
    ops->upload(dev, x, ones, sizeof ones);
    ops->prefetch(dev, &m); /* outside a recording: y stays 0 */
    assert_true(ops->graph_begin(dev));
    ops->add(dev, y, x, kN);
    ops->prefetch(dev, &m);
    ops->add(dev, y, x, kN);
    void *graph = ops->graph_end(dev);
    assert_non_null(graph);
    for (int i = 0; i < 3; i++) assert_true(ops->graph_launch(dev, graph));
    ops->download(dev, got, y, sizeof got);
    assert_int_equal(ops->synchronize(dev, &err), MLXE_OK);
    for (int i = 0; i < kN; i++) assert_float_equal(got[i], 6.0f, 0.0f);
    ops->graph_free(dev, graph);
    ops->free(dev, y);
    ops->free(dev, x);
    ops->free_weights(dev, weights);
    free(host);
    mlxe_device_free(dev);
    setenv("MLXE_CUDA_PREFETCH", "0", 1);
    assert_int_equal(mlxe_device_create_cuda(0, &dev, &err), MLXE_OK);
    unsetenv("MLXE_CUDA_PREFETCH");
    assert_null(mlxe_device_ops(dev)->prefetch);
    mlxe_device_free(dev);
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_cuda_fails_cleanly_or_works),
        cmocka_unit_test(test_step_timing_reports),
        cmocka_unit_test(test_prefetch),
        cmocka_unit_test(test_cublas_opens_at_run_time),
        cmocka_unit_test(test_create_cuda_bad_ordinals),
        cmocka_unit_test(test_create_from_spec),
        cmocka_unit_test(test_cpu_weights_and_synchronize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
