/*
 * test_rng.c -- Philox 4x32-10 against the Random123 known-answer vectors,
 * the element-to-counter mapping of the fills (recomputed here from the raw
 * generator), identical fills with any thread count, the moments of large
 * samples, and the global generator's seed/offset bookkeeping.
 */
#include <stdlib.h>

#include "core/internal.h"
#include "test.h"

static void test_known_answers(void) {
    uint32_t o[4];
    sp_philox4x32(0, 0, 0, o);
    CHECK(o[0] == 0x6627e8d5u && o[1] == 0xe169c58du && o[2] == 0xbc57ac4cu &&
          o[3] == 0x9b00dbd8u);
    sp_philox4x32(UINT64_MAX, UINT64_MAX, UINT64_MAX, o);
    CHECK(o[0] == 0x408f276du && o[1] == 0x41c83b0eu && o[2] == 0xa20bc7c6u &&
          o[3] == 0x6d5451fdu);
    /* counter (0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), key
     * (0xa4093822, 0x299f31d0): words in low-to-high order */
    sp_philox4x32(0x299f31d0a4093822ull, 0x85a308d3243f6a88ull, 0x0370734413198a2eull, o);
    CHECK(o[0] == 0xd16cfe09u && o[1] == 0x94fdccebu && o[2] == 0x5001e420u &&
          o[3] == 0x24126ea1u);
}

static sp_tensor *new1d(sp_dtype d, int64_t n) { return sp_tensor_new(d, 1, &n, SP_CPU); }

/* Element i of a fill comes from lane i%4 of block offset + i/4 (normal:
 * lanes 2*(i%2), +1 of block offset + i/2), exactly as core.h says. */
static void test_mapping(void) {
    const uint64_t seed = 0x123456789abcdefull, offset = 77;
    const int64_t n = 1003;
    sp_tensor *u = new1d(SP_F64, n), *z = new1d(SP_F64, n), *r = new1d(SP_I64, n),
              *b = new1d(SP_U8, n);
    CHECK_OK(sp_rng_uniform(u, seed, offset, -2.0, 3.0));
    CHECK_OK(sp_rng_normal(z, seed, offset, 1.0, 2.0));
    CHECK_OK(sp_rng_randint(r, seed, offset, -5, 1000));
    CHECK_OK(sp_rng_bernoulli(b, seed, offset, 0.3));
    const double *ud = sp_tensor_data(u), *zd = sp_tensor_data(z);
    const int64_t *rd = sp_tensor_data(r);
    const uint8_t *bd = sp_tensor_data(b);
    int bad_u = 0, bad_z = 0, bad_r = 0, bad_b = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t o[4];
        sp_philox4x32(seed, offset + (uint64_t)i / 4, 0, o);
        uint32_t x = o[i % 4];
        double uu = x / 4294967296.0;
        bad_u += ud[i] != -2.0 + 5.0 * uu;
        bad_r += rd[i] != -5 + (int64_t)(((uint64_t)x * 1005u) >> 32);
        bad_b += bd[i] != (uu < 0.3);
        sp_philox4x32(seed, offset + (uint64_t)i / 2, 0, o);
        double u1 = (o[2 * (i % 2)] + 1.0) / 4294967296.0, u2 = o[2 * (i % 2) + 1] / 4294967296.0;
        double want = 1.0 + 2.0 * sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
        bad_z += fabs(zd[i] - want) > 1e-12;
    }
    CHECK(bad_u == 0);
    CHECK(bad_z == 0);
    CHECK(bad_r == 0);
    CHECK(bad_b == 0);
    /* a counter that carries into the high 64 bits */
    sp_tensor *c = new1d(SP_F64, 8);
    CHECK_OK(sp_rng_uniform(c, 9, UINT64_MAX, 0, 1));
    uint32_t o[4];
    sp_philox4x32(9, 0, 1, o); /* block 1 = counter 2^64 */
    CHECK(((double *)sp_tensor_data(c))[5] == o[1] / 4294967296.0);
    sp_tensor_release(c);
    sp_tensor_release(u);
    sp_tensor_release(z);
    sp_tensor_release(r);
    sp_tensor_release(b);
}

static int same_bytes(const sp_tensor *a, const sp_tensor *b) {
    return sp_tensor_nbytes(a) == sp_tensor_nbytes(b) &&
           memcmp(sp_tensor_data(a), sp_tensor_data(b), sp_tensor_nbytes(a)) == 0;
}

typedef enum { K_UNIFORM, K_NORMAL, K_BERNOULLI, K_RANDINT } kind;

static sp_tensor *fill(kind k, sp_dtype d, int64_t n, uint64_t seed, uint64_t offset) {
    sp_tensor *t = new1d(d, n);
    sp_status st = SP_ERR_INTERNAL;
    switch (k) {
    case K_UNIFORM: st = sp_rng_uniform(t, seed, offset, -1, 4); break;
    case K_NORMAL: st = sp_rng_normal(t, seed, offset, 0.5, 3); break;
    case K_BERNOULLI: st = sp_rng_bernoulli(t, seed, offset, 0.25); break;
    case K_RANDINT: st = sp_rng_randint(t, seed, offset, -7, 120); break;
    }
    CHECK_OK(st);
    return t;
}

static void test_thread_counts(void) {
    const int64_t n = 100001; /* not a multiple of 4: the tail block is split */
    for (int k = 0; k < 4; k++) {
        sp_dtype d = k == K_RANDINT ? SP_I32 : k == K_BERNOULLI ? SP_BOOL : SP_F32;
        CHECK_OK(sp_set_num_threads(1));
        sp_tensor *t1 = fill(k, d, n, 42, 5);
        CHECK_OK(sp_set_num_threads(2));
        sp_tensor *t2 = fill(k, d, n, 42, 5);
        CHECK_OK(sp_set_num_threads(5));
        sp_tensor *t5 = fill(k, d, n, 42, 5);
        CHECK(same_bytes(t1, t2));
        CHECK(same_bytes(t1, t5));
        /* same seed and offset: the same numbers; another offset or seed: not */
        sp_tensor *again = fill(k, d, n, 42, 5), *off = fill(k, d, n, 42, 6),
                  *seed = fill(k, d, n, 43, 5);
        CHECK(same_bytes(t1, again));
        CHECK(!same_bytes(t1, off));
        CHECK(!same_bytes(t1, seed));
        sp_tensor_release(t1);
        sp_tensor_release(t2);
        sp_tensor_release(t5);
        sp_tensor_release(again);
        sp_tensor_release(off);
        sp_tensor_release(seed);
    }
    CHECK_OK(sp_set_num_threads(2));
}

static void moments(const sp_tensor *t, double *mean, double *var) {
    int64_t n = sp_tensor_numel(t);
    const char *p = sp_tensor_data(t);
    size_t isz = sp_dtype_size(t->dtype);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += sp_load_f64(t->dtype, p + i * isz);
    *mean = s / n;
    for (int64_t i = 0; i < n; i++) {
        double v = sp_load_f64(t->dtype, p + i * isz);
        s2 += (v - *mean) * (v - *mean);
    }
    *var = s2 / n;
}

static void test_moments(void) {
    const int64_t n = 1000000;
    double m, v;
    /* uniform[-1, 4): mean 1.5, var 25/12; the mean's standard error is
     * 1.44e-3, so 0.01 is 7 sigma */
    sp_tensor *u = fill(K_UNIFORM, SP_F32, n, 1, 0);
    moments(u, &m, &v);
    CHECK(fabs(m - 1.5) < 0.01);
    CHECK(fabs(v - 25.0 / 12) < 0.02);
    const float *ud = sp_tensor_data(u);
    int out = 0;
    float lo = 10, hi = -10;
    for (int64_t i = 0; i < n; i++) {
        out += !(ud[i] >= -1 && ud[i] < 4);
        lo = ud[i] < lo ? ud[i] : lo;
        hi = ud[i] > hi ? ud[i] : hi;
    }
    CHECK(out == 0);
    CHECK(lo < -0.999 && hi > 3.999);
    sp_tensor_release(u);

    /* normal(0.5, 3): mean se 3e-3, var se ~ 9*sqrt(2/n) = 0.0127 */
    sp_tensor *z = fill(K_NORMAL, SP_F64, n, 2, 0);
    moments(z, &m, &v);
    CHECK(fabs(m - 0.5) < 0.02);
    CHECK(fabs(v - 9) < 0.08);
    const double *zd = sp_tensor_data(z);
    double s3 = 0, s4 = 0;
    int64_t within1 = 0;
    for (int64_t i = 0; i < n; i++) {
        double y = (zd[i] - 0.5) / 3;
        s3 += y * y * y;
        s4 += y * y * y * y;
        within1 += fabs(y) < 1;
    }
    CHECK(fabs(s3 / n) < 0.02);         /* skewness 0 */
    CHECK(fabs(s4 / n - 3) < 0.05);     /* kurtosis 3 */
    CHECK(fabs((double)within1 / n - 0.682689) < 0.003);
    sp_tensor_release(z);

    /* bernoulli(0.25) in bool: frequency se 4.3e-4 */
    sp_tensor *b = fill(K_BERNOULLI, SP_BOOL, n, 3, 0);
    const uint8_t *bd = sp_tensor_data(b);
    int64_t ones = 0, bad = 0;
    for (int64_t i = 0; i < n; i++) {
        ones += bd[i] == 1;
        bad += bd[i] > 1;
    }
    CHECK(bad == 0);
    CHECK(fabs((double)ones / n - 0.25) < 0.003);
    sp_tensor_release(b);

    /* randint[-7, 120): every value appears, none outside, counts flat */
    sp_tensor *r = fill(K_RANDINT, SP_I32, n, 4, 0);
    const int32_t *rd = sp_tensor_data(r);
    int64_t count[127] = {0}, outside = 0;
    for (int64_t i = 0; i < n; i++) {
        if (rd[i] < -7 || rd[i] >= 120) outside++;
        else count[rd[i] + 7]++;
    }
    CHECK(outside == 0);
    int64_t cmin = n, cmax = 0;
    for (int j = 0; j < 127; j++) {
        cmin = count[j] < cmin ? count[j] : cmin;
        cmax = count[j] > cmax ? count[j] : cmax;
    }
    /* expected 7874 each, sd 88: 6 sigma either way */
    CHECK(cmin > 7874 - 530 && cmax < 7874 + 530);
    sp_tensor_release(r);
}

static void test_dtypes_and_edges(void) {
    /* float16/bfloat16 uniform stays below high even where rounding would
     * reach it */
    sp_dtype halves[] = {SP_F16, SP_BF16};
    for (int h = 0; h < 2; h++) {
        sp_tensor *t = new1d(halves[h], 200000);
        CHECK_OK(sp_rng_uniform(t, 11, 0, 0, 1));
        int bad = 0;
        double mx = 0, mean = 0;
        for (int64_t i = 0; i < 200000; i++) {
            double v = sp_tensor_get(t, &i);
            bad += !(v >= 0 && v < 1);
            mx = v > mx ? v : mx;
            mean += v;
        }
        CHECK(bad == 0);
        CHECK(mx > 0.99);
        CHECK(fabs(mean / 200000 - 0.5) < 0.01);
        sp_tensor_release(t);
    }
    /* a narrow interval: [1, 1 + 1e-9) in float32 holds only 1.0 */
    sp_tensor *t = new1d(SP_F32, 100);
    CHECK_OK(sp_rng_uniform(t, 1, 0, 1.0, 1.0 + 1e-9));
    int64_t i0 = 57;
    CHECK(sp_tensor_get(t, &i0) == 1.0);
    /* low == high: all low */
    CHECK_OK(sp_rng_uniform(t, 1, 0, 2.5, 2.5));
    CHECK(sp_tensor_get(t, &i0) == 2.5);
    /* bernoulli extremes, in float */
    CHECK_OK(sp_rng_bernoulli(t, 1, 0, 1.0));
    CHECK(sp_tensor_get(t, &i0) == 1.0);
    CHECK_OK(sp_rng_bernoulli(t, 1, 0, 0.0));
    CHECK(sp_tensor_get(t, &i0) == 0.0);
    /* randint into a float tensor; a range of one */
    CHECK_OK(sp_rng_randint(t, 1, 0, 3, 4));
    CHECK(sp_tensor_get(t, &i0) == 3.0);
    /* the widest int64 range works (no overflow) */
    sp_tensor *w = new1d(SP_I64, 1000);
    CHECK_OK(sp_rng_randint(w, 5, 0, INT64_MIN, INT64_MAX));
    const int64_t *wd = sp_tensor_data(w);
    int neg = 0;
    for (int i = 0; i < 1000; i++) neg += wd[i] < 0;
    CHECK(neg > 400 && neg < 600);
    sp_tensor_release(w);

    /* errors */
    CHECK_ERR(sp_rng_uniform(t, 0, 0, 2, 1), SP_ERR_ARG, "uniform");
    CHECK_ERR(sp_rng_uniform(t, 0, 0, 0, INFINITY), SP_ERR_ARG, "uniform");
    CHECK_ERR(sp_rng_uniform(t, 0, 0, -1e308, 1e308), SP_ERR_ARG, "uniform");
    CHECK_ERR(sp_rng_normal(t, 0, 0, 0, -1), SP_ERR_ARG, "normal");
    CHECK_ERR(sp_rng_normal(t, 0, 0, NAN, 1), SP_ERR_ARG, "normal");
    CHECK_ERR(sp_rng_bernoulli(t, 0, 0, 1.5), SP_ERR_ARG, "bernoulli");
    CHECK_ERR(sp_rng_bernoulli(t, 0, 0, NAN), SP_ERR_ARG, "bernoulli");
    CHECK_ERR(sp_rng_randint(t, 0, 0, 5, 5), SP_ERR_ARG, "randint");
    sp_tensor *i8 = new1d(SP_I8, 10);
    CHECK_ERR(sp_rng_randint(i8, 0, 0, 0, 1000), SP_ERR_ARG, "int8");
    CHECK_OK(sp_rng_randint(i8, 0, 0, -128, 128));
    CHECK_ERR(sp_rng_uniform(i8, 0, 0, 0, 1), SP_ERR_DTYPE, "uniform");
    CHECK_ERR(sp_rng_normal(i8, 0, 0, 0, 1), SP_ERR_DTYPE, "normal");
    sp_tensor_release(i8);
    sp_tensor *view = NULL;
    int64_t shape2[2] = {10, 10};
    sp_tensor *t2 = sp_tensor_new(SP_F32, 2, shape2, SP_CPU);
    CHECK_OK(sp_tensor_transpose(t2, 0, 1, &view));
    CHECK_ERR(sp_rng_uniform(view, 0, 0, 0, 1), SP_ERR_ARG, "contiguous");
    sp_tensor_release(view);
    sp_tensor_release(t2);
    sp_tensor_release(t);
    /* an empty tensor is fine */
    sp_tensor *e = new1d(SP_F32, 0);
    CHECK_OK(sp_rng_normal(e, 0, 0, 0, 1));
    sp_tensor_release(e);
}

static void test_global_generator(void) {
    CHECK(sp_get_seed() == 0); /* the default */
    uint64_t s, o;
    sp_rng_next(10, &s, &o);
    CHECK(s == 0 && o == 0);
    sp_rng_next(3, &s, &o);
    CHECK(s == 0 && o == 10);
    sp_set_seed(1234);
    CHECK(sp_get_seed() == 1234);
    sp_rng_next(5, &s, &o);
    CHECK(s == 1234 && o == 0); /* a new seed restarts the offsets */
    sp_rng_next(1, &s, &o);
    CHECK(o == 5);
    sp_set_seed(1234);
    sp_rng_next(0, &s, &o);
    CHECK(o == 0);
}

int main(void) {
    RUN(test_global_generator); /* first: it checks the default seed */
    RUN(test_known_answers);
    RUN(test_mapping);
    RUN(test_thread_counts);
    RUN(test_moments);
    RUN(test_dtypes_and_edges);
    return TEST_SUMMARY();
}
