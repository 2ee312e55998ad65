/*
 * philox.h -- the Philox 4x32-10 block function and the uint32 -> number
 * conversions of Spore's random fills, inline, for the fills in philox.c and
 * for any kernel (dropout) that must draw exactly the numbers sp_rng_uniform
 * would.  The formulas are the contract documented at the top of philox.c;
 * a CUDA kernel repeats them literally.
 */
#ifndef SPORE_CORE_PHILOX_H
#define SPORE_CORE_PHILOX_H

#include <stdint.h>

#define CORE_PHILOX_M0 0xD2511F53u
#define CORE_PHILOX_M1 0xCD9E8D57u
#define CORE_PHILOX_W0 0x9E3779B9u
#define CORE_PHILOX_W1 0xBB67AE85u

/* Philox4x32-10 of counter c[0..3] under key (k0, k1), in place. */
static inline void core_philox_rounds(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += CORE_PHILOX_W0;
            k1 += CORE_PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)CORE_PHILOX_M0 * c[0];
        uint64_t p1 = (uint64_t)CORE_PHILOX_M1 * c[2];
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = (uint32_t)p1;
        c[2] = n2;
        c[3] = (uint32_t)p0;
    }
}

/* The 4 uint32 of block `block` of a fill: counter (offset + block) as a
 * 128-bit number whose high half is the carry of that 64-bit sum. */
static inline void core_philox_block(uint64_t seed, uint64_t offset, uint64_t block,
                                     uint32_t out[4]) {
    uint64_t lo = offset + block;
    uint64_t hi = lo < offset; /* carry */
    out[0] = (uint32_t)lo;
    out[1] = (uint32_t)(lo >> 32);
    out[2] = (uint32_t)hi;
    out[3] = (uint32_t)(hi >> 32);
    core_philox_rounds(out, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* x / 2^32: exact in double, in [0, 1). */
static inline double core_u01(uint32_t x) { return x * 0x1p-32; }
/* (x + 1) / 2^32: exact in double, in (0, 1]; Box-Muller's log argument. */
static inline double core_u01_open0(uint32_t x) { return ((double)x + 1.0) * 0x1p-32; }

#endif
