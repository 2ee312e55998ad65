/*
 * philox.c -- Spore's random numbers: Philox 4x32-10, the global generator
 * and the fills behind uniform, normal, bernoulli and randint.
 *
 * Counter-based generation makes a random tensor a pure function of (seed,
 * offset, element index), so fills split freely over threads and a CUDA
 * kernel can reproduce them.  The exact recipe (a GPU port repeats it):
 *
 *   Philox4x32-10 (Salmon et al., SC'11; Random123): key (k0, k1) = (low,
 *   high 32 bits of the 64-bit seed); counter (c0, c1, c2, c3) = (low, high
 *   32 bits of ctr_lo, low, high of ctr_hi).  Block b of a fill at `offset`
 *   has ctr_lo = offset + b (mod 2^64) and ctr_hi = the carry of that sum.
 *
 *   uniform, bernoulli, randint: element i uses x = lane i%4 of block i/4.
 *     u = x * 2^-32                      (exact in double, in [0, 1))
 *     uniform   = low + (high - low) * u, in double, rounded to the dtype
 *                 (f16/bf16 through float); a result that rounds up to
 *                 >= high becomes the largest dtype value below high, so
 *                 the interval stays half-open.
 *     bernoulli = (u < p) ? 1 : 0        (p in [0, 1]; dropout keeps an
 *                 element iff u >= p, i.e. the complement)
 *     randint   = low + floor(x * r / 2^32), r = high - low as uint64,
 *                 computed exactly as x*(r>>32) + ((x*(r&0xffffffff))>>32).
 *                 No rejection: each value is hit floor or ceil(2^32/r)
 *                 times, a relative bias below r/2^32 (2.4e-7 for r = 1000,
 *                 1.5e-5 for r = 65536); ranges above 2^32 reach only 2^32
 *                 evenly spaced values.
 *   normal: element i uses lanes (2*(i%2), 2*(i%2)+1) = (x1, x2) of block
 *     i/2 and the cosine half of Box-Muller, in double:
 *       u1 = (x1 + 1) * 2^-32 in (0, 1],   u2 = x2 * 2^-32 in [0, 1)
 *       z  = sqrt(-2 log u1) * cos(2 pi u2),   value = mean + std * z
 *     (|z| <= 6.66).  uniform/bernoulli/randint are bit-exact on any device;
 *     normal matches to the last bit of the libm's log and cos.
 *
 * A fill of n elements uses ceil(n/4) blocks (ceil(n/2) for normal): callers
 * that draw from the global generator reserve that many with sp_rng_next.
 * The global generator is (seed, next free offset) under a mutex; seed 0
 * and offset 0 until sp_set_seed.
 *
 * Speed: fills generate 8 blocks at a time, with AVX2 (one block per 32-bit
 * lane, the 32x32->64 multiplies as vpmuludq) when the CPU has it, and keep
 * inline loops for the hot cases (uniform float32, randint int64); the
 * known-answer and mapping tests pin both paths to the scalar reference
 * (SPORE_DISABLE_AVX2=1 selects the plain one).
 */
#include <float.h>
#include <math.h>
#include <pthread.h>

#include "core/internal.h"
#include "core/philox.h"

void sp_philox4x32(uint64_t key, uint64_t ctr_lo, uint64_t ctr_hi, uint32_t out[4]) {
    out[0] = (uint32_t)ctr_lo;
    out[1] = (uint32_t)(ctr_lo >> 32);
    out[2] = (uint32_t)ctr_hi;
    out[3] = (uint32_t)(ctr_hi >> 32);
    core_philox_rounds(out, (uint32_t)key, (uint32_t)(key >> 32));
}

/* ---- the global generator ---- */

static pthread_mutex_t rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t rng_seed, rng_offset;

void sp_set_seed(uint64_t seed) {
    pthread_mutex_lock(&rng_lock);
    rng_seed = seed;
    rng_offset = 0;
    pthread_mutex_unlock(&rng_lock);
}

uint64_t sp_get_seed(void) {
    pthread_mutex_lock(&rng_lock);
    uint64_t s = rng_seed;
    pthread_mutex_unlock(&rng_lock);
    return s;
}

void sp_rng_next(uint64_t nblocks, uint64_t *seed, uint64_t *offset) {
    pthread_mutex_lock(&rng_lock);
    if (seed) *seed = rng_seed;
    if (offset) *offset = rng_offset;
    rng_offset += nblocks;
    pthread_mutex_unlock(&rng_lock);
}

/* ---- fills ---- */

typedef enum { FILL_UNIFORM, FILL_NORMAL, FILL_BERNOULLI, FILL_RANDINT } core_fill_kind;

typedef struct {
    core_fill_kind kind;
    sp_dtype dtype;
    char *data;
    size_t isz;
    uint64_t seed, offset;
    double a, b;      /* low/high, mean/std, p */
    int64_t ilow;     /* randint */
    uint64_t rh, rl;  /* randint: range split in 32-bit halves */
    /* uniform: the largest dtype value below high */
    double below_d;
    float below_f;
    uint16_t below_h;
    void (*batch)(uint64_t seed, uint64_t offset, uint64_t blk0, uint32_t *out);
} core_fill;

/* One step toward -inf in a 16-bit float format (f16 or bf16: both keep the
 * sign in bit 15 and order magnitudes as integers). */
static uint16_t core_half_step_down(uint16_t h) {
    if (h == 0) return 0x8001;
    return (h & 0x8000) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
}

static double core_half_value(sp_dtype d, uint16_t h) {
    return d == SP_F16 ? sp_f16_to_f32(h) : sp_bf16_to_f32(h);
}

static uint16_t core_half_round(sp_dtype d, double v) {
    return d == SP_F16 ? sp_f32_to_f16((float)v) : sp_f32_to_bf16((float)v);
}

/* Sets the "below high" bounds of a uniform fill on [low, high), low < high. */
static void core_uniform_bounds(core_fill *f) {
    double low = f->a, high = f->b;
    f->below_d = nextafter(high, -INFINITY);
    float hf = (float)high;
    if ((double)hf >= high) hf = nextafterf(hf, -INFINITY);
    if ((double)hf < low) hf = (float)low; /* interval narrower than a float ulp */
    f->below_f = hf;
    if (f->dtype == SP_F16 || f->dtype == SP_BF16) {
        uint16_t h = core_half_round(f->dtype, high);
        while (core_half_value(f->dtype, h) >= high) h = core_half_step_down(h);
        if (core_half_value(f->dtype, h) < low) h = core_half_round(f->dtype, low);
        f->below_h = h;
    }
}

static void core_store_uniform(const core_fill *f, void *p, double v) {
    switch (f->dtype) {
    case SP_F64: *(double *)p = v >= f->b ? f->below_d : v; break;
    case SP_F32: {
        float x = (float)v;
        *(float *)p = (double)x >= f->b ? f->below_f : x;
        break;
    }
    default: {
        uint16_t h = core_half_round(f->dtype, v);
        *(uint16_t *)p = core_half_value(f->dtype, h) >= f->b ? f->below_h : h;
        break;
    }
    }
}

/* CORE_BATCH consecutive blocks blk0, blk0+1, ... of a fill into out (block j
 * in out[4j..4j+3]).  Written as independent lanes so the compiler turns the
 * rounds into vector multiplies; built twice, plain and for AVX2. */
#define CORE_BATCH 8
#define CORE_BATCH_BODY                                                                      \
    uint32_t c0[CORE_BATCH], c1[CORE_BATCH], c2[CORE_BATCH], c3[CORE_BATCH];                 \
    for (int j = 0; j < CORE_BATCH; j++) {                                                   \
        uint64_t lo = offset + blk0 + (uint64_t)j;                                           \
        c0[j] = (uint32_t)lo;                                                                \
        c1[j] = (uint32_t)(lo >> 32);                                                        \
        c2[j] = lo < offset; /* the carry into ctr_hi */                                     \
        c3[j] = 0;                                                                           \
    }                                                                                        \
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);                               \
    for (int r = 0; r < 10; r++) {                                                           \
        if (r) {                                                                             \
            k0 += CORE_PHILOX_W0;                                                            \
            k1 += CORE_PHILOX_W1;                                                            \
        }                                                                                    \
        for (int j = 0; j < CORE_BATCH; j++) {                                               \
            uint64_t p0 = (uint64_t)CORE_PHILOX_M0 * c0[j];                                  \
            uint64_t p1 = (uint64_t)CORE_PHILOX_M1 * c2[j];                                  \
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;                                 \
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;                                 \
            c0[j] = n0;                                                                      \
            c1[j] = (uint32_t)p1;                                                            \
            c2[j] = n2;                                                                      \
            c3[j] = (uint32_t)p0;                                                            \
        }                                                                                    \
    }                                                                                        \
    for (int j = 0; j < CORE_BATCH; j++) {                                                   \
        out[4 * j] = c0[j];                                                                  \
        out[4 * j + 1] = c1[j];                                                              \
        out[4 * j + 2] = c2[j];                                                              \
        out[4 * j + 3] = c3[j];                                                              \
    }

typedef void (*core_batch_fn)(uint64_t seed, uint64_t offset, uint64_t blk0, uint32_t *out);

static void core_philox_batch_plain(uint64_t seed, uint64_t offset, uint64_t blk0, uint32_t *out) {
    CORE_BATCH_BODY
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CORE_AVX2 __attribute__((target("avx2")))

/* hi and lo 32-bit halves of m * c for each of the 8 uint32 lanes of c. */
CORE_AVX2 static inline void core_mulhilo8(__m256i c, __m256i m, __m256i *hi, __m256i *lo) {
    __m256i pe = _mm256_mul_epu32(c, m);                        /* lanes 0,2,4,6 */
    __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(c, 32), m); /* lanes 1,3,5,7 */
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
}

/* The same 8 blocks as core_philox_batch_plain, one block per 32-bit lane. */
CORE_AVX2 static void core_philox_batch_avx2(uint64_t seed, uint64_t offset, uint64_t blk0,
                                             uint32_t *out) {
    uint32_t lo32[8], hi32[8], carry[8];
    for (int j = 0; j < 8; j++) {
        uint64_t lo = offset + blk0 + (uint64_t)j;
        lo32[j] = (uint32_t)lo;
        hi32[j] = (uint32_t)(lo >> 32);
        carry[j] = lo < offset;
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo32);
    __m256i c1 = _mm256_loadu_si256((const __m256i *)hi32);
    __m256i c2 = _mm256_loadu_si256((const __m256i *)carry);
    __m256i c3 = _mm256_setzero_si256();
    const __m256i m0 = _mm256_set1_epi32((int)CORE_PHILOX_M0);
    const __m256i m1 = _mm256_set1_epi32((int)CORE_PHILOX_M1);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        if (r) {
            k0 += CORE_PHILOX_W0;
            k1 += CORE_PHILOX_W1;
        }
        __m256i hi0, lo0, hi1, lo1;
        core_mulhilo8(c0, m0, &hi0, &lo0);
        core_mulhilo8(c2, m1, &hi1, &lo1);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c1 = lo1;
        c3 = lo0;
    }
    /* transpose 4 words x 8 blocks into 8 blocks of 4 words */
    __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpacklo_epi32(c2, c3);
    __m256i t2 = _mm256_unpackhi_epi32(c0, c1), t3 = _mm256_unpackhi_epi32(c2, c3);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t1); /* blocks 0 and 4 */
    __m256i u1 = _mm256_unpackhi_epi64(t0, t1); /* blocks 1 and 5 */
    __m256i u2 = _mm256_unpacklo_epi64(t2, t3); /* blocks 2 and 6 */
    __m256i u3 = _mm256_unpackhi_epi64(t2, t3); /* blocks 3 and 7 */
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(u0, u1, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 8), _mm256_permute2x128_si256(u2, u3, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(u0, u1, 0x31));
    _mm256_storeu_si256((__m256i *)(out + 24), _mm256_permute2x128_si256(u2, u3, 0x31));
}
#endif

static core_batch_fn core_batch_pick(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (sp_cpu_has_avx2_fma()) return core_philox_batch_avx2;
#endif
    return core_philox_batch_plain;
}

static void core_emit(const core_fill *f, int64_t i, uint32_t x) {
    void *p = f->data + (size_t)i * f->isz;
    switch (f->kind) {
    case FILL_UNIFORM: core_store_uniform(f, p, f->a + (f->b - f->a) * core_u01(x)); break;
    case FILL_BERNOULLI: sp_store_i64(f->dtype, p, core_u01(x) < f->a); break;
    default: { /* FILL_RANDINT */
        uint64_t off = (uint64_t)x * f->rh + (((uint64_t)x * f->rl) >> 32);
        uint64_t v = (uint64_t)f->ilow + off; /* wraps; lands in [low, high) */
        if (f->dtype == SP_I64) {
            memcpy(p, &v, 8);
        } else {
            int64_t iv;
            memcpy(&iv, &v, sizeof iv);
            sp_store_i64(f->dtype, p, iv);
        }
        break;
    }
    }
}

static void core_fill_range(void *ctx, int64_t begin, int64_t end) {
    const core_fill *f = ctx;
    core_batch_fn batch = f->batch;
    uint32_t r[4 * CORE_BATCH];
    int per = f->kind == FILL_NORMAL ? 2 : 4; /* elements per block */
    for (uint64_t blk = (uint64_t)begin / (uint64_t)per;; blk += CORE_BATCH) {
        int64_t first = (int64_t)blk * per, lim = first + (int64_t)CORE_BATCH * per;
        if (first >= end) break;
        batch(f->seed, f->offset, blk, r);
        int64_t i = first > begin ? first : begin, stop = lim < end ? lim : end;
        if (f->kind == FILL_NORMAL) {
            for (; i < stop; i++) {
                const uint32_t *x = &r[2 * (i - first)]; /* lanes 2*(i%2), +1 of block i/2 */
                double u1 = core_u01_open0(x[0]), u2 = core_u01(x[1]);
                double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
                sp_store_f64(f->dtype, f->data + (size_t)i * f->isz, f->a + f->b * z);
            }
        } else if (f->kind == FILL_RANDINT && f->dtype == SP_I64) { /* the hot cases, inline */
            for (; i < stop; i++) {
                uint32_t x = r[i - first];
                uint64_t v = (uint64_t)f->ilow + (uint64_t)x * f->rh +
                             (((uint64_t)x * f->rl) >> 32);
                memcpy(f->data + (size_t)i * 8, &v, 8);
            }
        } else if (f->kind == FILL_UNIFORM && f->dtype == SP_F32) {
            float *d = (float *)f->data;
            for (; i < stop; i++) {
                float y = (float)(f->a + (f->b - f->a) * core_u01(r[i - first]));
                d[i] = (double)y >= f->b ? f->below_f : y;
            }
        } else {
            for (; i < stop; i++) core_emit(f, i, r[i - first]); /* lane i%4 of block i/4 */
        }
    }
}

/* Checks that t is a contiguous CPU tensor; names the fill in the error. */
static sp_status core_fill_check(const char *what, const sp_tensor *t) {
    if (!t) return sp_error(SP_ERR_ARG, "%s: tensor is NULL", what);
    if (sp_tensor_is_meta(t)) return sp_meta_value_error(what, t);
    if (!t->buf || t->buf->device.type != SP_DEVICE_CPU)
        return sp_error(SP_ERR_DEVICE, "%s: the tensor is not on the CPU", what);
    if (!sp_tensor_is_contiguous(t))
        return sp_error(SP_ERR_ARG, "%s: the tensor must be contiguous", what);
    return SP_OK;
}

static void core_fill_run(core_fill *f, sp_tensor *t, uint64_t seed, uint64_t offset,
                          int64_t grain) {
    f->dtype = t->dtype;
    f->data = sp_tensor_data(t);
    f->isz = sp_dtype_size(t->dtype);
    f->seed = seed;
    f->offset = offset;
    f->batch = core_batch_pick();
    sp_parallel_for(sp_tensor_numel(t), grain, core_fill_range, f);
}

sp_status sp_rng_uniform(sp_tensor *t, uint64_t seed, uint64_t offset, double low, double high) {
    sp_status st = core_fill_check("uniform", t);
    if (st) return st;
    if (!sp_dtype_is_float(t->dtype))
        return sp_error(SP_ERR_DTYPE, "uniform: dtype must be floating point, got %s",
                        sp_dtype_name(t->dtype));
    if (!(isfinite(low) && isfinite(high) && low <= high && isfinite(high - low)))
        return sp_error(SP_ERR_ARG, "uniform: need finite low <= high, got [%g, %g)", low,
                        high);
    if (low == high) return sp_tensor_fill(t, low);
    core_fill f = {.kind = FILL_UNIFORM, .a = low, .b = high};
    f.dtype = t->dtype;
    core_uniform_bounds(&f);
    core_fill_run(&f, t, seed, offset, 4096);
    return SP_OK;
}

sp_status sp_rng_normal(sp_tensor *t, uint64_t seed, uint64_t offset, double mean, double std) {
    sp_status st = core_fill_check("normal", t);
    if (st) return st;
    if (!sp_dtype_is_float(t->dtype))
        return sp_error(SP_ERR_DTYPE, "normal: dtype must be floating point, got %s",
                        sp_dtype_name(t->dtype));
    if (!(isfinite(mean) && isfinite(std) && std >= 0))
        return sp_error(SP_ERR_ARG, "normal: need finite mean and std >= 0, got mean %g std %g",
                        mean, std);
    core_fill f = {.kind = FILL_NORMAL, .a = mean, .b = std};
    core_fill_run(&f, t, seed, offset, 1024);
    return SP_OK;
}

sp_status sp_rng_bernoulli(sp_tensor *t, uint64_t seed, uint64_t offset, double p) {
    sp_status st = core_fill_check("bernoulli", t);
    if (st) return st;
    if (!(p >= 0 && p <= 1))
        return sp_error(SP_ERR_ARG, "bernoulli: p must be in [0, 1], got %g", p);
    if ((unsigned)t->dtype >= SP_DTYPE_COUNT)
        return sp_error(SP_ERR_DTYPE, "bernoulli: invalid dtype %d", (int)t->dtype);
    core_fill f = {.kind = FILL_BERNOULLI, .a = p};
    core_fill_run(&f, t, seed, offset, 4096);
    return SP_OK;
}

sp_status sp_rng_randint(sp_tensor *t, uint64_t seed, uint64_t offset, int64_t low,
                         int64_t high) {
    sp_status st = core_fill_check("randint", t);
    if (st) return st;
    if (high <= low)
        return sp_error(SP_ERR_ARG, "randint: need low < high, got [%lld, %lld)",
                        (long long)low, (long long)high);
    int64_t lo = INT64_MIN, hi = INT64_MAX; /* the dtype's range */
    switch (t->dtype) {
    case SP_I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case SP_U8: lo = 0, hi = UINT8_MAX; break;
    case SP_I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case SP_BOOL: lo = 0, hi = 1; break;
    case SP_I64: case SP_F32: case SP_F64: case SP_F16: case SP_BF16: break;
    default:
        return sp_error(SP_ERR_DTYPE, "randint: invalid dtype %d", (int)t->dtype);
    }
    if (low < lo || high - 1 > hi)
        return sp_error(SP_ERR_ARG, "randint: [%lld, %lld) does not fit %s", (long long)low,
                        (long long)high, sp_dtype_name(t->dtype));
    uint64_t r = (uint64_t)high - (uint64_t)low;
    core_fill f = {.kind = FILL_RANDINT, .ilow = low, .rh = r >> 32, .rl = r & 0xffffffffu};
    core_fill_run(&f, t, seed, offset, 4096);
    return SP_OK;
}
