/* tests/unit/runtime_cpu_test.h — shared by the test_runtime_cpu_*.c
 * programs: a seeded random generator, independent float16/bfloat16
 * decoding for the double-precision references, and the list of device
 * configurations every op is checked on (both kernel paths × 1, 2, 3
 * threads). */
#ifndef MLXE_TEST_RUNTIME_CPU_TEST_H
#define MLXE_TEST_RUNTIME_CPU_TEST_H

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cpu/cpu_kernels.h"
#include "runtime/device.h"
#include "test_util.h"

typedef struct test_rng {
    uint64_t state;
} test_rng;

static inline uint64_t test_rng_next(test_rng *rng) {
    /* splitmix64 */
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi). */
static inline float test_rng_float(test_rng *rng, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(test_rng_next(rng) >> 11) * 0x1p-53);
}

static inline void test_fill(test_rng *rng, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = test_rng_float(rng, lo, hi);
}

/* Stored weight dtypes, decoded here independently of src/runtime/cpu/half.h
 * (the compiler's _Float16 for F16; BF16 is the top half of a float). */
static inline double test_f16_value(uint16_t bits) {
    _Float16 h;
    memcpy(&h, &bits, sizeof h);
    return (double)h;
}

static inline uint16_t test_f16_bits(float f) {
    _Float16 h = (_Float16)f;
    uint16_t bits;
    memcpy(&bits, &h, sizeof bits);
    return bits;
}

static inline double test_bf16_value(uint16_t bits) {
    uint32_t word = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &word, sizeof f);
    return (double)f;
}

static inline uint16_t test_bf16_bits(float f) {
    uint32_t word;
    memcpy(&word, &f, sizeof word);
    return (uint16_t)(word >> 16); /* truncation: any bf16 value will do as test data */
}

/* A weight buffer of n elements of dtype (F32/F16/BF16) with random values
 * in [lo, hi); *values receives the exact stored values as doubles. */
static inline void *test_make_weights(test_rng *rng, mlxe_dtype dtype, size_t n, float lo, float hi,
                                      double **values) {
    double *exact = malloc((n ? n : 1) * sizeof(double));
    void *data = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(exact);
    assert_non_null(data);
    for (size_t i = 0; i < n; i++) {
        float f = test_rng_float(rng, lo, hi);
        /* a few tiny values: subnormal in F16, exercising the slow conversion branch */
        if (i % 97 == 5) f *= 1e-4f;
        if (dtype == MLXE_DTYPE_F16) {
            ((uint16_t *)data)[i] = test_f16_bits(f);
            exact[i] = test_f16_value(((uint16_t *)data)[i]);
        } else if (dtype == MLXE_DTYPE_BF16) {
            ((uint16_t *)data)[i] = test_bf16_bits(f);
            exact[i] = test_bf16_value(((uint16_t *)data)[i]);
        } else {
            ((float *)data)[i] = f;
            exact[i] = f;
        }
    }
    *values = exact;
    return data;
}

/* Not mlxe_dtype_name: format/ owns that, and these tests must not depend on it. */
static inline const char *test_dtype_name(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F16 ? "F16" : dtype == MLXE_DTYPE_BF16 ? "BF16" : dtype == MLXE_DTYPE_F32 ? "F32" : "?";
}

typedef struct test_device_config {
    const char *kernels; /* MLXE_CPU_KERNELS value */
    int threads;
} test_device_config;

#define TEST_MAX_DEVICE_CONFIGS 12

/* Fills configs (room for TEST_MAX_DEVICE_CONFIGS) and returns how many
 * apply on this CPU: every kernel set it runs × 1, 2, 3 threads. */
static inline int test_device_configs(test_device_config *configs) {
    int n = 0;
    static const int thread_counts[] = {1, 2, 3};
    for (int i = 0; i < 3; i++) configs[n++] = (test_device_config){"generic", thread_counts[i]};
    if (mlxe_cpu_has_avx2())
        for (int i = 0; i < 3; i++) configs[n++] = (test_device_config){"avx2", thread_counts[i]};
    if (mlxe_cpu_has_avx512())
        for (int i = 0; i < 3; i++) {
            configs[n++] = (test_device_config){"avx512", thread_counts[i]};
            configs[n++] = (test_device_config){"avx512-int8", thread_counts[i]};
        }
    return n;
}

static inline mlxe_device *test_create_device(const test_device_config *config) {
    setenv("MLXE_CPU_KERNELS", config->kernels, 1);
    mlxe_device *dev = NULL;
    mlxe_error err;
    mlxe_status status = mlxe_device_create_cpu(config->threads, &dev, &err);
    unsetenv("MLXE_CPU_KERNELS");
    if (status != MLXE_OK) fail_msg("mlxe_device_create_cpu: %s", err.message);
    char expected[32];
    snprintf(expected, sizeof expected, "cpu-%s", config->kernels);
    assert_string_equal(mlxe_device_name(dev), expected);
    assert_int_equal(mlxe_device_threads(dev), config->threads);
    return dev;
}

/* Checks |got - want| <= tolerance, naming the case on failure. */
#define assert_close(got, want, tolerance, ...)                                                        \
    do {                                                                                              \
        double got_ = (double)(got), want_ = (double)(want), tolerance_ = (double)(tolerance);        \
        if (!(fabs(got_ - want_) <= tolerance_)) {                                                    \
            char where_[256];                                                                         \
            snprintf(where_, sizeof where_, __VA_ARGS__);                                             \
            fail_msg("%s: got %.9g, want %.9g (difference %.3g > tolerance %.3g)", where_, got_, want_, \
                     fabs(got_ - want_), tolerance_);                                                 \
        }                                                                                             \
    } while (0)

#endif
