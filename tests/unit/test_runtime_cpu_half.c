/* Tests of the portable float16/bfloat16 conversions the CPU kernels use
 * (src/runtime/cpu/half.h) against the compiler's _Float16: all 65536 half
 * values decoded, and float -> half rounding on a sweep of float bit
 * patterns including subnormals, overflow and ties. */
#include <math.h>

#include "runtime/cpu/half.h"
#include "test_util.h"

static void test_f16_decode_all(void **state) {
    (void)state;
    for (uint32_t bits = 0; bits < 65536; bits++) {
        uint16_t h = (uint16_t)bits;
        _Float16 reference;
        memcpy(&reference, &h, sizeof reference);
        float want = (float)reference, got = mlxe_f16_to_f32(h);
        if (isnan(want)) {
            assert_true(isnan(got));
            continue;
        }
        if (mlxe_f32_to_bits(want) != mlxe_f32_to_bits(got)) fail_msg("half 0x%04x: got %g, want %g", bits, got, want);
        assert_int_equal(mlxe_f32_to_f16(want), h); /* exact values round-trip */
    }
}

static void test_f16_encode_sweep(void **state) {
    (void)state;
    for (uint64_t bits = 0; bits < (1ull << 32); bits += 65521) {
        for (uint32_t low = 0; low < 4; low++) { /* neighbours hit ties and carries */
            float f = mlxe_bits_to_f32((uint32_t)(bits + low * 0x1000u));
            if (isnan(f)) continue;
            _Float16 reference = (_Float16)f;
            uint16_t want;
            memcpy(&want, &reference, sizeof want);
            if (mlxe_f32_to_f16(f) != want) fail_msg("float %a: got 0x%04x, want 0x%04x", (double)f, mlxe_f32_to_f16(f), want);
        }
    }
}

static void test_bf16(void **state) {
    (void)state;
    for (uint32_t bits = 0; bits < 65536; bits++) {
        float f = mlxe_bf16_to_f32((uint16_t)bits);
        assert_int_equal(mlxe_f32_to_bits(f), bits << 16);
        if (!isnan(f)) assert_int_equal(mlxe_f32_to_bf16(f), bits);
    }
    /* round to nearest even: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 */
    assert_int_equal(mlxe_f32_to_bf16(1.0f + 0x1p-8f), mlxe_f32_to_bf16(1.0f));
    assert_int_equal(mlxe_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f), mlxe_f32_to_bf16(1.0f + 0x1p-7f));
    assert_true(isnan(mlxe_bf16_to_f32(mlxe_f32_to_bf16(NAN))));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_decode_all),
        cmocka_unit_test(test_f16_encode_sweep),
        cmocka_unit_test(test_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
