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

static void core_fill_range(void *ctx, int64_t begin, int64_t end) {
    const core_fill *f = ctx;
    uint32_t r[4];
    int64_t i = begin;
    if (f->kind == FILL_NORMAL) {
        while (i < end) {
            uint64_t blk = (uint64_t)i >> 1;
            core_philox_block(f->seed, f->offset, blk, r);
            int64_t stop = (int64_t)(blk + 1) * 2;
            if (stop > end) stop = end;
            for (; i < stop; i++) {
                int lane = (int)(i & 1) * 2;
                double u1 = core_u01_open0(r[lane]), u2 = core_u01(r[lane + 1]);
                double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
                sp_store_f64(f->dtype, f->data + (size_t)i * f->isz, f->a + f->b * z);
            }
        }
        return;
    }
    while (i < end) {
        uint64_t blk = (uint64_t)i >> 2;
        core_philox_block(f->seed, f->offset, blk, r);
        int64_t stop = (int64_t)(blk + 1) * 4;
        if (stop > end) stop = end;
        for (; i < stop; i++) {
            uint32_t x = r[i & 3];
            void *p = f->data + (size_t)i * f->isz;
            switch (f->kind) {
            case FILL_UNIFORM:
                core_store_uniform(f, p, f->a + (f->b - f->a) * core_u01(x));
                break;
            case FILL_BERNOULLI: sp_store_i64(f->dtype, p, core_u01(x) < f->a); break;
            default: { /* FILL_RANDINT */
                uint64_t off = (uint64_t)x * f->rh + (((uint64_t)x * f->rl) >> 32);
                uint64_t v = (uint64_t)f->ilow + off; /* wraps; lands in [low, high) */
                int64_t iv;
                memcpy(&iv, &v, sizeof iv);
                sp_store_i64(f->dtype, p, iv);
                break;
            }
            }
        }
    }
}

/* Checks that t is a contiguous CPU tensor; names the fill in the error. */
static sp_status core_fill_check(const char *what, const sp_tensor *t) {
    if (!t) return sp_error(SP_ERR_ARG, "%s: tensor is NULL", what);
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
