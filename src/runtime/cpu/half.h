/* runtime/cpu/half.h — portable float16 / bfloat16 <-> float32 conversions.
 *
 * The generic kernels and scalar tails of the SIMD kernels use these, so both
 * paths turn a stored weight into exactly the same float (IEEE 754 binary16
 * is exact in binary32; bfloat16 is the top half of a binary32). */
#ifndef MLXE_RUNTIME_CPU_HALF_H
#define MLXE_RUNTIME_CPU_HALF_H

#include <stdint.h>
#include <string.h>

static inline float mlxe_bits_to_f32(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint32_t mlxe_f32_to_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

/* Branch-free, so loops over it vectorize: with the sign shifted out, the
 * exponent and mantissa are moved into float32 position and rebiased by a
 * float multiply (exact; exponent 31 lands on 255, keeping inf and nan);
 * subnormals (exponent 0) are made exact by building 0.5 + m * 2^-24 and
 * subtracting 0.5. The technique of Maratos' FP16 library. */
static inline float mlxe_f16_to_f32(uint16_t h) {
    uint32_t word = (uint32_t)h << 16;
    uint32_t sign = word & 0x80000000u;
    uint32_t without_sign = word << 1;
    float normal = mlxe_bits_to_f32((without_sign >> 4) + (224u << 23)) * 0x1p-112f;
    float subnormal = mlxe_bits_to_f32((without_sign >> 17) | (126u << 23)) - 0.5f;
    uint32_t subnormal_mask = 0u - (uint32_t)(without_sign < (1u << 27)); /* all ones when exponent is 0 */
    uint32_t magnitude = (mlxe_f32_to_bits(subnormal) & subnormal_mask) | (mlxe_f32_to_bits(normal) & ~subnormal_mask);
    return mlxe_bits_to_f32(sign | magnitude);
}

static inline float mlxe_bf16_to_f32(uint16_t h) {
    return mlxe_bits_to_f32((uint32_t)h << 16);
}

/* Round to nearest even, as numpy / torch convert; overflow gives inf. */
static inline uint16_t mlxe_f32_to_f16(float f) {
    uint32_t bits = mlxe_f32_to_bits(f);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t exponent = (bits >> 23) & 0xffu;
    uint32_t mantissa = bits & 0x7fffffu;
    if (exponent == 0xff) return (uint16_t)(sign | 0x7c00u | (mantissa ? 0x200u : 0));
    int32_t half_exponent = (int32_t)exponent - 127 + 15;
    if (half_exponent >= 31) return (uint16_t)(sign | 0x7c00u);
    if (half_exponent <= 0) {
        if (half_exponent < -10) return sign;  /* below half the smallest subnormal */
        mantissa |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - half_exponent);
        uint32_t value = mantissa >> shift;
        uint32_t rest = mantissa & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rest > halfway || (rest == halfway && (value & 1))) value++;
        return (uint16_t)(sign | value);
    }
    uint32_t value = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
    uint32_t rest = mantissa & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (value & 1))) value++; /* may carry into inf: right */
    return (uint16_t)(sign | value);
}

static inline uint16_t mlxe_f32_to_bf16(float f) {
    uint32_t bits = mlxe_f32_to_bits(f);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40u); /* quiet nan */
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)(bits >> 16);
}

#endif
