/* engine/sampler_rng.h — the sampler's pseudo-random numbers: xoshiro256**
 * 1.0 (David Blackman and Sebastiano Vigna, https://prng.di.unimi.it/),
 * seeded by expanding a 64-bit seed with splitmix64 as its authors
 * recommend. Written here from the published algorithm so sampling is
 * reproducible everywhere, whatever the C library's rand(). */
#ifndef MLXE_ENGINE_SAMPLER_RNG_H
#define MLXE_ENGINE_SAMPLER_RNG_H

#include <stdint.h>

typedef struct mlxe_rng {
    uint64_t s[4];
} mlxe_rng;

void mlxe_rng_seed(mlxe_rng *rng, uint64_t seed);
uint64_t mlxe_rng_next(mlxe_rng *rng);
/* Uniform in [0, 1) with 53 random bits. */
double mlxe_rng_uniform(mlxe_rng *rng);

#endif
