/*
 * test_elementwise.c -- the tricky corners of the CPU elementwise kernels
 * (unary.c, binary.c, cast.c), with values taken from numpy 1.24 and torch
 * (float64) and written down here, so the kernels are checked against an
 * independent implementation, not against themselves.
 *
 * The registry-driven tests (the Python files in tests/ops) cover every op on random
 * inputs; this file covers what random inputs rarely hit: NaN propagation,
 * Python's floor division and modulo signs, integer division by zero and
 * INT_MIN / -1 (which must not trap), half-to-even rounding, the two gelu
 * forms, softplus's threshold, broadcasting, strided, 0-d and empty
 * operands, mixed dtypes, float16/bfloat16 rounding, and the float32
 * polynomial exp/tanh/sigmoid against libm in double over their whole range.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core/internal.h"
#include "test.h"

/* ---- helpers ---- */

static sp_tensor *mk(sp_dtype dt, int ndim, const int64_t *shape, const double *v) {
    sp_tensor *t = sp_tensor_new(dt, ndim, shape, SP_CPU);
    if (!t) return NULL;
    int64_t n = sp_tensor_numel(t);
    char *p = sp_tensor_data(t);
    for (int64_t i = 0; i < n; i++) sp_store_f64(dt, p + i * (int64_t)sp_dtype_size(dt), v[i]);
    return t;
}

static sp_tensor *mk1(sp_dtype dt, int64_t n, const double *v) { return mk(dt, 1, &n, v); }

/* Runs op; returns its only output or NULL (the failure is counted). */
static sp_tensor *run(const char *op, int n_in, sp_tensor **in, const sp_attrs *at) {
    sp_tensor *out[SP_MAX_OUTPUTS];
    int n_out = 0;
    sp_status st = sp_op_call_name(op, n_in, in, at, &n_out, out);
    test_checks++;
    if (st != SP_OK || n_out != 1) {
        test_failures++;
        fprintf(stderr, "%s failed: %s\n", op, sp_last_error());
        for (int i = 0; i < n_out; i++) sp_tensor_release(out[i]);
        return NULL;
    }
    return out[0];
}

static sp_tensor *run1(const char *op, sp_tensor *x, const sp_attrs *at) {
    return run(op, 1, &x, at);
}

static sp_tensor *run2(const char *op, sp_tensor *a, sp_tensor *b) {
    sp_tensor *in[2] = {a, b};
    return run(op, 2, in, NULL);
}

/* Element i (C order) of any tensor, as a double. */
static double at(const sp_tensor *t, int64_t i) {
    int64_t idx[SP_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = i % t->shape[d];
        i /= t->shape[d];
    }
    return sp_tensor_get(t, idx);
}

/* t has dtype dt, n elements, and the values want (NaN matches NaN; -0.0
 * in want also demands the sign bit); tol is relative. */
static void expect(const char *what, const sp_tensor *t, sp_dtype dt, int64_t n,
                   const double *want, double tol) {
    test_checks++;
    if (!t) {
        test_failures++;
        fprintf(stderr, "%s: no tensor\n", what);
        return;
    }
    if (t->dtype != dt || sp_tensor_numel(t) != n) {
        test_failures++;
        fprintf(stderr, "%s: got %s with %lld elements, wanted %s with %lld\n", what,
                sp_dtype_name(t->dtype), (long long)sp_tensor_numel(t), sp_dtype_name(dt),
                (long long)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double g = at(t, i), w = want[i];
        int ok = isnan(w) ? isnan(g) : fabs(g - w) <= tol * (fabs(w) + 1e-300) || g == w;
        if (ok && w == 0 && signbit(w) != signbit(g)) ok = 0;
        if (!ok) {
            test_failures++;
            fprintf(stderr, "%s: element %lld = %.17g, wanted %.17g\n", what, (long long)i, g, w);
            return;
        }
    }
}

#define N(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

/* ---- unary ---- */

static void test_round_half_even(void) {
    double x[] = {0.5, 1.5, 2.5, -0.5, -2.5, 2.4999, -0.0};
    double want[] = {0.0, 2.0, 2.0, -0.0, -2.0, 2.0, -0.0};
    sp_dtype dts[] = {SP_F32, SP_F64, SP_F16, SP_BF16};
    for (int k = 0; k < 4; k++) {
        sp_tensor *t = mk1(dts[k], N(x), x), *y = run1("round", t, NULL);
        /* 2.4999 is 2.5 in bfloat16 (8 bits of mantissa): still rounds to 2 */
        expect("round", y, dts[k], N(x), want, 0);
        sp_tensor_release(t);
        sp_tensor_release(y);
    }
}

static void test_gelu_forms(void) {
    double x[] = {-3.0, -1.0, 0.5, 2.0};
    /* torch.nn.functional.gelu in float64 */
    double erf_form[] = {-0.00404969409489031, -0.15865525393145702, 0.34573123063700656,
                         1.9544997361036416};
    double tanh_form[] = {-0.0036373920817729943, -0.15880800939172324, 0.34571400982514394,
                          1.954597694087775};
    sp_attrs at_none, at_tanh, at_bad;
    sp_attrs_init(&at_none);
    sp_attrs_init(&at_tanh);
    sp_attrs_init(&at_bad);
    sp_attrs_set_str(&at_tanh, "approximate", "tanh");
    sp_attrs_set_str(&at_bad, "approximate", "cubic");
    for (int k = 0; k < 2; k++) {
        sp_dtype dt = k ? SP_F64 : SP_F32;
        double tol = k ? 1e-14 : 2e-6;
        sp_tensor *t = mk1(dt, N(x), x);
        sp_tensor *y1 = run1("gelu", t, &at_none), *y2 = run1("gelu", t, &at_tanh);
        expect("gelu erf", y1, dt, 4, erf_form, tol);
        expect("gelu tanh", y2, dt, 4, tanh_form, tol);
        sp_tensor *out[SP_MAX_OUTPUTS];
        int n_out = 0;
        CHECK_ERR(sp_op_call_name("gelu", 1, &t, &at_bad, &n_out, out), SP_ERR_ARG, "cubic");
        sp_tensor_release(t);
        sp_tensor_release(y1);
        sp_tensor_release(y2);
    }
}

static void test_softplus_threshold(void) {
    double x[] = {1.0, 3.0, -2.0};
    /* torch softplus(beta=2, threshold=5): 2*3 > 5 returns x itself */
    double want[] = {1.0634640055214863, 3.0, 0.009074963958904869};
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "beta", 2.0);
    sp_attrs_set_float(&a, "threshold", 5.0);
    for (int k = 0; k < 2; k++) {
        sp_dtype dt = k ? SP_F64 : SP_F32;
        sp_tensor *t = mk1(dt, 3, x), *y = run1("softplus", t, &a);
        expect("softplus", y, dt, 3, want, k ? 1e-14 : 1e-6);
        sp_tensor_release(t);
        sp_tensor_release(y);
    }
}

static void test_int_unary_wrap(void) {
    double x[] = {-2147483648.0, -5.0, 0.0, 7.0};
    double neg[] = {-2147483648.0, 5.0, 0.0, -7.0}; /* numpy: -INT_MIN == INT_MIN */
    double abs_[] = {-2147483648.0, 5.0, 0.0, 7.0};
    double sign[] = {-1.0, -1.0, 0.0, 1.0};
    double sq[] = {0.0, 25.0, 0.0, 49.0}; /* INT_MIN**2 wraps to 0 */
    sp_tensor *t = mk1(SP_I32, 4, x);
    sp_tensor *y1 = run1("neg", t, NULL), *y2 = run1("abs", t, NULL);
    sp_tensor *y3 = run1("sign", t, NULL), *y4 = run1("square", t, NULL);
    expect("neg i32", y1, SP_I32, 4, neg, 0);
    expect("abs i32", y2, SP_I32, 4, abs_, 0);
    expect("sign i32", y3, SP_I32, 4, sign, 0);
    expect("square i32", y4, SP_I32, 4, sq, 0);
    sp_tensor_release(t);
    sp_tensor_release(y1);
    sp_tensor_release(y2);
    sp_tensor_release(y3);
    sp_tensor_release(y4);

    /* uint8: neg wraps, relu is the identity */
    double u[] = {0, 1, 200};
    double uneg[] = {0, 255, 56};
    t = mk1(SP_U8, 3, u);
    y1 = run1("neg", t, NULL);
    y2 = run1("relu", t, NULL);
    expect("neg u8", y1, SP_U8, 3, uneg, 0);
    expect("relu u8", y2, SP_U8, 3, u, 0);
    sp_tensor_release(t);
    sp_tensor_release(y1);
    sp_tensor_release(y2);
}

static void test_clamp(void) {
    /* torch.clamp(int8 [-100, 0, 100], min=-5) = [-5, 0, 100]; a bound
     * beyond int8's range saturates instead of wrapping */
    double x[] = {-100, 0, 100};
    double want1[] = {-5, 0, 100};
    double want2[] = {-100, 0, 100};
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "min", -5.0);
    sp_tensor *t = mk1(SP_I8, 3, x), *y = run1("clamp", t, &a);
    expect("clamp i8 min", y, SP_I8, 3, want1, 0);
    sp_tensor_release(y);
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "min", -1000.0);
    sp_attrs_set_float(&a, "max", 1000.0);
    y = run1("clamp", t, &a);
    expect("clamp i8 wide", y, SP_I8, 3, want2, 0);
    sp_tensor_release(y);
    sp_tensor_release(t);

    double xf[] = {-2.0, 0.5, NAN, 9.0};
    double wantf[] = {-2.0, 0.5, NAN, 3.0};
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "max", 3.0);
    t = mk1(SP_F32, 4, xf);
    y = run1("clamp", t, &a);
    expect("clamp f32 max only", y, SP_F32, 4, wantf, 0);
    sp_tensor_release(y);
    sp_tensor_release(t);
}

static void test_predicates(void) {
    double x[] = {1.0, NAN, INFINITY, -0.0, -INFINITY};
    double isnan_w[] = {0, 1, 0, 0, 0};
    double isfin_w[] = {1, 0, 0, 1, 0};
    double not_w[] = {0, 0, 0, 1, 0}; /* NaN is true; -0.0 is false */
    sp_dtype dts[] = {SP_F32, SP_F16, SP_BF16, SP_F64};
    for (int k = 0; k < 4; k++) {
        sp_tensor *t = mk1(dts[k], 5, x);
        sp_tensor *a = run1("isnan", t, NULL), *b = run1("isfinite", t, NULL);
        sp_tensor *c = run1("logical_not", t, NULL);
        expect("isnan", a, SP_BOOL, 5, isnan_w, 0);
        expect("isfinite", b, SP_BOOL, 5, isfin_w, 0);
        expect("logical_not", c, SP_BOOL, 5, not_w, 0);
        sp_tensor_release(t);
        sp_tensor_release(a);
        sp_tensor_release(b);
        sp_tensor_release(c);
    }
    double xi[] = {0, -3, 5};
    double ones[] = {1, 1, 1}, zeros[] = {0, 0, 0}, noti[] = {1, 0, 0};
    sp_tensor *t = mk1(SP_I64, 3, xi);
    sp_tensor *a = run1("isnan", t, NULL), *b = run1("isfinite", t, NULL);
    sp_tensor *c = run1("logical_not", t, NULL);
    expect("isnan i64", a, SP_BOOL, 3, zeros, 0);
    expect("isfinite i64", b, SP_BOOL, 3, ones, 0);
    expect("logical_not i64", c, SP_BOOL, 3, noti, 0);
    sp_tensor_release(t);
    sp_tensor_release(a);
    sp_tensor_release(b);
    sp_tensor_release(c);
}

/* sqrt/rsqrt run SQRTPS directly: exact, NaN for negatives, -0 kept, over
 * the vector body and the scalar tail. */
static void test_sqrt(void) {
    double x[] = {4, 2, -1, 0, -0.0, INFINITY, 9, 0.25, 1e-40, 16, 100};
    double ws[11], wr[11];
    for (int i = 0; i < 11; i++) {
        float f = (float)x[i];
        ws[i] = (double)(float)sqrt((double)f); /* sqrt is correctly rounded */
        wr[i] = (double)(float)(1.0f / (float)sqrt((double)f));
    }
    ws[2] = wr[2] = NAN;
    wr[4] = -INFINITY;
    sp_tensor *t = mk1(SP_F32, 11, x);
    sp_tensor *a = run1("sqrt", t, NULL), *b = run1("rsqrt", t, NULL);
    expect("sqrt f32", a, SP_F32, 11, ws, 0);
    expect("rsqrt f32", b, SP_F32, 11, wr, 0);
    sp_tensor_release(a);
    sp_tensor_release(b);
    sp_tensor *r = NULL;
    CHECK_OK(sp_tensor_slice(t, 0, SP_SLICE_NONE, SP_SLICE_NONE, -1, &r));
    a = run1("sqrt", r, NULL);
    double wrev[11];
    for (int i = 0; i < 11; i++) wrev[i] = ws[10 - i];
    expect("sqrt f32 reversed", a, SP_F32, 11, wrev, 0);
    sp_tensor_release(a);
    sp_tensor_release(r);
    sp_tensor_release(t);
}

/* The float32 polynomials against libm in double, over their whole range:
 * every value within a few ulp (relative n * 2^-24), specials exact. */
static void test_f32_polynomials(void) {
    enum { NV = 40001 };
    double *x = malloc(sizeof(double) * NV);
    for (int i = 0; i < NV - 7; i++) x[i] = -110.0 + 220.0 * i / (NV - 8);
    double sp[] = {NAN, INFINITY, -INFINITY, 0.0, 1e-30, -1e-30, 88.7};
    for (int i = 0; i < 7; i++) x[NV - 7 + i] = sp[i];
    sp_tensor *t = mk1(SP_F32, NV, x);
    /* bounds in units of 2^-24 relative (an ulp is 1-2 units); measured max
     * errors in ulp: exp 0.99, tanh 1.19, sigmoid 2.25, silu 3.09, gelu 4.74,
     * erf 1.83 */
    const char *ops[] = {"exp", "tanh", "sigmoid", "silu", "gelu", "erf"};
    const double ulps[] = {2.0, 2.5, 4.5, 6.0, 9.5, 4.0};
    for (int k = 0; k < 6; k++) {
        sp_tensor *y = run1(ops[k], t, NULL);
        if (!y) continue;
        const float *yp = sp_tensor_data(y);
        const float *xp = sp_tensor_data(t);
        int bad = 0;
        for (int i = 0; i < NV && !bad; i++) {
            double v = xp[i], w;
            switch (k) {
            case 0: w = exp(v); break;
            case 1: w = tanh(v); break;
            case 2: w = 1.0 / (1.0 + exp(-v)); break;
            case 3: w = v / (1.0 + exp(-v)); break;
            case 4: w = v * 0.5 * erfc(-v / sqrt(2.0)); break;
            default: w = erf(v); break;
            }
            float wf = (float)w;
            double g = yp[i];
            if (isnan(w)) {
                bad = !isnan(g);
            } else if (isinf(wf)) {
                bad = g != wf;
            } else if (fabs(w) < 1e-35) {
                /* results at or near float32's subnormals (x < -87): a
                 * small absolute error, but not a flush to 0 */
                bad = !(fabs(g - w) <= 1e-42 || fabs(g - w) <= ulps[k] * 5.96e-8 * fabs(w));
            } else {
                bad = !(fabs(g - w) <= ulps[k] * 5.96e-8 * fabs(w));
            }
            if (bad)
                fprintf(stderr, "%s(%.9g) = %.9g, wanted %.9g\n", ops[k], v, g, w);
        }
        CHECK(!bad);
        sp_tensor_release(y);
    }
    sp_tensor_release(t);
    free(x);
}

/* ---- binary ---- */

static void test_nan_propagation(void) {
    double a[] = {1, NAN, 3}, b[] = {NAN, 2, 1};
    double mx[] = {NAN, NAN, 3}, mn[] = {NAN, NAN, 1};
    sp_dtype dts[] = {SP_F32, SP_F64, SP_BF16};
    for (int k = 0; k < 3; k++) {
        sp_tensor *ta = mk1(dts[k], 3, a), *tb = mk1(dts[k], 3, b);
        sp_tensor *y1 = run2("maximum", ta, tb), *y2 = run2("minimum", ta, tb);
        expect("maximum nan", y1, dts[k], 3, mx, 0);
        expect("minimum nan", y2, dts[k], 3, mn, 0);
        sp_tensor_release(ta);
        sp_tensor_release(tb);
        sp_tensor_release(y1);
        sp_tensor_release(y2);
    }
}

static void test_floor_div_mod(void) {
    /* numpy int32: a // b and a % b, with 0 for division by zero (numpy
     * also gives 0) and INT_MIN // -1 == INT_MIN */
    double a[] = {-7, 7, -7, 7, 5, -2147483648.0};
    double b[] = {2, -2, -2, 2, 0, -1};
    double fd[] = {-4, -4, 3, 3, 0, -2147483648.0};
    double md[] = {1, -1, -1, 1, 0, 0};
    sp_dtype its[] = {SP_I32, SP_I64};
    for (int k = 0; k < 2; k++) {
        sp_tensor *ta = mk1(its[k], 6, a), *tb = mk1(its[k], 6, b);
        sp_tensor *y1 = run2("floor_div", ta, tb), *y2 = run2("mod", ta, tb);
        fd[5] = k ? 2147483648.0 : -2147483648.0; /* wraps only in int32 */
        expect("floor_div int", y1, its[k], 6, fd, 0);
        expect("mod int", y2, its[k], 6, md, 0);
        sp_tensor_release(ta);
        sp_tensor_release(tb);
        sp_tensor_release(y1);
        sp_tensor_release(y2);
    }
    /* int8 -128 // -1 and -128 % -1 */
    double a8[] = {-128, -128, 100}, b8[] = {-1, 0, 7}, fd8[] = {-128, 0, 14}, md8[] = {0, 0, 2};
    sp_tensor *ta = mk1(SP_I8, 3, a8), *tb = mk1(SP_I8, 3, b8);
    sp_tensor *y1 = run2("floor_div", ta, tb), *y2 = run2("mod", ta, tb);
    expect("floor_div i8", y1, SP_I8, 3, fd8, 0);
    expect("mod i8", y2, SP_I8, 3, md8, 0);
    sp_tensor_release(ta);
    sp_tensor_release(tb);
    sp_tensor_release(y1);
    sp_tensor_release(y2);

    /* numpy float32: -5 // inf == -1 and -5 % inf == inf (Python's rules) */
    double af[] = {-7, 7, -7, 7, 5, -5, 5};
    double bf[] = {2, -2, -2, 2, 0, INFINITY, -INFINITY};
    double fdf[] = {-4, -4, 3, 3, INFINITY, -1, -1};
    double mdf[] = {1, -1, -1, 1, NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 2; k++) {
        sp_dtype dt = k ? SP_F64 : SP_F32;
        ta = mk1(dt, 7, af);
        tb = mk1(dt, 7, bf);
        y1 = run2("floor_div", ta, tb);
        y2 = run2("mod", ta, tb);
        expect("floor_div float", y1, dt, 7, fdf, 0);
        expect("mod float", y2, dt, 7, mdf, 0);
        sp_tensor_release(ta);
        sp_tensor_release(tb);
        sp_tensor_release(y1);
        sp_tensor_release(y2);
    }
}

static void test_int_div_pow(void) {
    /* div of integers is float32 true division */
    double a[] = {7, -7}, b[] = {2, 4}, q[] = {3.5, -1.75};
    sp_tensor *ta = mk1(SP_I32, 2, a), *tb = mk1(SP_I32, 2, b), *y = run2("div", ta, tb);
    expect("div int", y, SP_F32, 2, q, 0);
    sp_tensor_release(ta);
    sp_tensor_release(tb);
    sp_tensor_release(y);

    /* numpy int64 power (3**40 wraps); negative exponents give 0 unless
     * |base| == 1 */
    double pa[] = {2, 3, -2, 1, -1, -1, 2, 3, 1, -1, -1, 2, 0};
    double pb[] = {10, 3, 3, 5, 3, 2, 1, 40, -5, -3, -2, -1, 0};
    ta = mk1(SP_I64, N(pa), pa);
    tb = mk1(SP_I64, N(pb), pb);
    y = run2("pow", ta, tb);
    test_checks++;
    if (y) {
        const int64_t *yp = sp_tensor_data(y);
        int64_t want[] = {1024, 27, -8, 1, -1, 1, 2, -6289078614652622815LL, 1, -1, 1, 0, 1};
        for (int i = 0; i < N(pa); i++)
            if (yp[i] != want[i]) {
                test_failures++;
                fprintf(stderr, "pow i64 element %d = %lld\n", i, (long long)yp[i]);
                break;
            }
    }
    sp_tensor_release(ta);
    sp_tensor_release(tb);
    sp_tensor_release(y);

    double a8[] = {3}, b8[] = {5}, w8[] = {-13}; /* numpy int8 3**5 */
    ta = mk1(SP_I8, 1, a8);
    tb = mk1(SP_I8, 1, b8);
    y = run2("pow", ta, tb);
    expect("pow i8", y, SP_I8, 1, w8, 0);
    sp_tensor_release(ta);
    sp_tensor_release(tb);
    sp_tensor_release(y);

    /* division by zero of every integer width gives 0 */
    sp_dtype its[] = {SP_I8, SP_U8, SP_I32, SP_I64};
    double n5[] = {5, 0}, z[] = {0, 0}, zz[] = {0, 0};
    for (int k = 0; k < 4; k++) {
        ta = mk1(its[k], 2, n5);
        tb = mk1(its[k], 2, z);
        sp_tensor *y1 = run2("floor_div", ta, tb), *y2 = run2("mod", ta, tb);
        expect("floor_div by 0", y1, its[k], 2, zz, 0);
        expect("mod by 0", y2, its[k], 2, zz, 0);
        sp_tensor_release(ta);
        sp_tensor_release(tb);
        sp_tensor_release(y1);
        sp_tensor_release(y2);
    }
}

static void test_broadcast_and_layouts(void) {
    /* (3,1) + (1,4) */
    int64_t s31[] = {3, 1}, s14[] = {1, 4};
    double a[] = {0, 10, 20}, b[] = {1, 2, 3, 4};
    double want[] = {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24};
    sp_tensor *ta = mk(SP_F32, 2, s31, a), *tb = mk(SP_F32, 2, s14, b);
    sp_tensor *y = run2("add", ta, tb);
    expect("(3,1)+(1,4)", y, SP_F32, 12, want, 0);
    CHECK(y && y->ndim == 2 && y->shape[0] == 3 && y->shape[1] == 4);
    sp_tensor_release(y);
    /* mixed dtypes: int32 (3,1) * float64 (1,4) computes in float64 */
    sp_tensor *ti = mk(SP_I32, 2, s31, a), *td = mk(SP_F64, 2, s14, b);
    double wmul[] = {0, 0, 0, 0, 10, 20, 30, 40, 20, 40, 60, 80};
    y = run2("mul", ti, td);
    expect("i32*f64", y, SP_F64, 12, wmul, 0);
    sp_tensor_release(y);
    sp_tensor_release(ti);
    sp_tensor_release(td);
    sp_tensor_release(ta);
    sp_tensor_release(tb);

    /* a transposed view (non-contiguous) minus a contiguous tensor */
    int64_t s23[] = {2, 3}, s32[] = {3, 2};
    double m[] = {1, 2, 3, 4, 5, 6}, c[] = {1, 1, 1, 1, 1, 1};
    sp_tensor *tm = mk(SP_F32, 2, s23, m), *tc = mk(SP_F32, 2, s32, c), *tt = NULL;
    CHECK_OK(sp_tensor_transpose(tm, 0, 1, &tt));
    y = run2("sub", tt, tc);
    double wt[] = {0, 3, 1, 4, 2, 5};
    expect("transpose - 1", y, SP_F32, 6, wt, 0);
    sp_tensor_release(y);
    /* a negative-step slice of a row: m[1, ::-1] = [6, 5, 4], exp'd in f64 */
    sp_tensor *row = NULL, *rev = NULL;
    CHECK_OK(sp_tensor_slice(tm, 0, 1, 2, 1, &row));
    CHECK_OK(sp_tensor_slice(row, 1, SP_SLICE_NONE, SP_SLICE_NONE, -1, &rev));
    y = run1("neg", rev, NULL);
    double wr[] = {-6, -5, -4};
    expect("neg of reversed", y, SP_F32, 3, wr, 0);
    sp_tensor_release(y);
    sp_tensor_release(row);
    sp_tensor_release(rev);
    sp_tensor_release(tt);
    sp_tensor_release(tc);

    /* a 0-d operand on either side */
    double two = 2.0;
    sp_tensor *s = mk(SP_F32, 0, NULL, &two);
    y = run2("pow", tm, s);
    double wp[] = {1, 4, 9, 16, 25, 36};
    expect("x ** 0-d", y, SP_F32, 6, wp, 0);
    sp_tensor_release(y);
    y = run2("sub", s, tm);
    double ws[] = {1, 0, -1, -2, -3, -4};
    expect("0-d - x", y, SP_F32, 6, ws, 0);
    sp_tensor_release(y);
    sp_tensor *s2 = run2("mul", s, s);
    double w4[] = {4};
    expect("0-d * 0-d", s2, SP_F32, 1, w4, 0);
    CHECK(s2 && s2->ndim == 0);
    sp_tensor_release(s2);
    sp_tensor_release(s);
    sp_tensor_release(tm);

    /* empty: (0,3) + (1,3) -> (0,3) */
    int64_t s03[] = {0, 3}, s13[] = {1, 3};
    sp_tensor *e = sp_tensor_new(SP_F32, 2, s03, SP_CPU), *r = mk(SP_F32, 2, s13, a);
    y = run2("add", e, r);
    CHECK(y && y->ndim == 2 && y->shape[0] == 0 && y->shape[1] == 3);
    sp_tensor_release(y);
    y = run1("exp", e, NULL);
    CHECK(y && sp_tensor_numel(y) == 0);
    sp_tensor_release(y);
    sp_tensor_release(e);
    sp_tensor_release(r);
}

static void test_half_results(void) {
    /* numpy float16: [1, 1000] + [2^-10, 0.3] = [1.0009765625, 1000.5] */
    double a[] = {1.0, 1000.0}, b[] = {0.0009765625, 0.3}, w[] = {1.0009765625, 1000.5};
    sp_tensor *ta = mk1(SP_F16, 2, a), *tb = mk1(SP_F16, 2, b), *y = run2("add", ta, tb);
    expect("f16 add", y, SP_F16, 2, w, 0);
    sp_tensor_release(ta);
    sp_tensor_release(tb);
    sp_tensor_release(y);
    /* numpy float16 sqrt(2) = 1.4140625 */
    double two[] = {2.0}, r2[] = {1.4140625};
    ta = mk1(SP_F16, 1, two);
    y = run1("sqrt", ta, NULL);
    expect("f16 sqrt", y, SP_F16, 1, r2, 0);
    sp_tensor_release(ta);
    sp_tensor_release(y);
    /* torch bfloat16 exp([0.5, 1, 3]) = [1.6484375, 2.71875, 20.125] */
    double x[] = {0.5, 1.0, 3.0}, e[] = {1.6484375, 2.71875, 20.125};
    ta = mk1(SP_BF16, 3, x);
    y = run1("exp", ta, NULL);
    expect("bf16 exp", y, SP_BF16, 3, e, 0);
    sp_tensor_release(ta);
    sp_tensor_release(y);
}

static void test_compare_logic_where(void) {
    /* numpy compares int32 with float32 in float64: 16777217 != 16777216 */
    double a[] = {16777217, 3}, b[] = {16777216, 3}, neq[] = {0, 1}, lt[] = {0, 0}, ge[] = {1, 1};
    sp_tensor *ta = mk1(SP_I32, 2, a), *tb = mk1(SP_F32, 2, b);
    sp_tensor *y1 = run2("equal", ta, tb), *y2 = run2("less", ta, tb);
    sp_tensor *y3 = run2("greater_equal", ta, tb);
    expect("equal i32 f32", y1, SP_BOOL, 2, neq, 0);
    expect("less i32 f32", y2, SP_BOOL, 2, lt, 0);
    expect("greater_equal i32 f32", y3, SP_BOOL, 2, ge, 0);
    sp_tensor_release(ta);
    sp_tensor_release(tb);
    sp_tensor_release(y1);
    sp_tensor_release(y2);
    sp_tensor_release(y3);

    /* logic on mixed dtypes: nonzero (NaN included) is true */
    double fa[] = {0.0, NAN, 2.0, -0.0}, ib[] = {1, 1, 0, 5};
    double land[] = {0, 1, 0, 0}, lor[] = {1, 1, 1, 1};
    ta = mk1(SP_F32, 4, fa);
    tb = mk1(SP_I64, 4, ib);
    y1 = run2("logical_and", ta, tb);
    y2 = run2("logical_or", ta, tb);
    expect("logical_and", y1, SP_BOOL, 4, land, 0);
    expect("logical_or", y2, SP_BOOL, 4, lor, 0);
    sp_tensor_release(y1);
    sp_tensor_release(y2);

    /* where(cond (2,1) float, x (1,4) float16, y 0-d float32) -> float32 */
    int64_t s21[] = {2, 1}, s14[] = {1, 4};
    double cnd[] = {-0.0, 0.5}, xv[] = {1, 2, 3, 4.5}, yv = -1;
    sp_tensor *tcnd = mk(SP_F32, 2, s21, cnd), *tx = mk(SP_F16, 2, s14, xv);
    sp_tensor *ty = mk(SP_F32, 0, NULL, &yv);
    sp_tensor *in[3] = {tcnd, tx, ty};
    sp_tensor *w = run("where", 3, in, NULL);
    double ww[] = {-1, -1, -1, -1, 1, 2, 3, 4.5};
    expect("where", w, SP_F32, 8, ww, 0);
    sp_tensor_release(w);
    sp_tensor_release(tcnd);
    sp_tensor_release(tx);
    sp_tensor_release(ty);
    sp_tensor_release(ta);
    sp_tensor_release(tb);
}

/* ---- cast ---- */

static void test_cast(void) {
    sp_attrs a;
    /* float -> int truncates toward zero; NaN and inf give 0 */
    double f[] = {2.7, -2.7, NAN, INFINITY, 300.0};
    double wi[] = {2, -2, 0, 0, 300}, wu[] = {2, 254, 0, 0, 44}; /* uint8 wraps */
    sp_tensor *t = mk1(SP_F32, 5, f);
    sp_attrs_init(&a);
    sp_attrs_set_dtype(&a, "dtype", SP_I32);
    sp_tensor *y = run1("cast", t, &a);
    expect("cast f32->i32", y, SP_I32, 5, wi, 0);
    sp_tensor_release(y);
    sp_attrs_set_dtype(&a, "dtype", SP_U8);
    y = run1("cast", t, &a);
    expect("cast f32->u8", y, SP_U8, 5, wu, 0);
    sp_tensor_release(y);
    sp_attrs_set_dtype(&a, "dtype", SP_BOOL);
    double wb[] = {1, 1, 1, 1, 1};
    y = run1("cast", t, &a);
    expect("cast f32->bool", y, SP_BOOL, 5, wb, 0);
    sp_tensor_release(y);
    sp_tensor_release(t);

    /* float64 -> float16 rounds once: 1 + 2^-11 + 2^-40 is just above the
     * halfway point, so numpy gives 1 + 2^-10 (double rounding through
     * float32 would give 1); 65519 -> 65504; 65520 -> inf */
    double d[] = {1.0 + 0.00048828125 + 9.094947017729282e-13, 65519.0, 65520.0, 1e-8};
    double wh[] = {1.0009765625, 65504.0, INFINITY, 0.0};
    t = mk1(SP_F64, 4, d);
    sp_attrs_set_dtype(&a, "dtype", SP_F16);
    y = run1("cast", t, &a);
    expect("cast f64->f16", y, SP_F16, 4, wh, 0);
    sp_tensor_release(y);
    sp_tensor_release(t);

    /* uint8 -> bool normalizes; a transposed int64 view -> float32 */
    double u[] = {0, 2, 255}, wbu[] = {0, 1, 1};
    t = mk1(SP_U8, 3, u);
    sp_attrs_set_dtype(&a, "dtype", SP_BOOL);
    y = run1("cast", t, &a);
    expect("cast u8->bool", y, SP_BOOL, 3, wbu, 0);
    sp_tensor_release(y);
    sp_tensor_release(t);

    int64_t s23[] = {2, 3};
    double m[] = {1, 2, 3, 4, 5, 6}, wt[] = {1, 4, 2, 5, 3, 6};
    sp_tensor *tm = mk(SP_I64, 2, s23, m), *tt = NULL;
    CHECK_OK(sp_tensor_transpose(tm, 0, 1, &tt));
    sp_attrs_set_dtype(&a, "dtype", SP_F32);
    y = run1("cast", tt, &a);
    expect("cast transposed i64->f32", y, SP_F32, 6, wt, 0);
    sp_tensor_release(y);
    sp_tensor_release(tt);
    sp_tensor_release(tm);
}

/* Large enough to be split over threads: the result must not depend on it. */
static void test_threaded_matches_serial(void) {
    enum { NB = 300000 };
    int64_t shape[] = {3, NB / 3};
    double *v = malloc(sizeof(double) * NB);
    for (int i = 0; i < NB; i++) v[i] = sin(i * 0.001) * 20.0;
    sp_tensor *t = mk(SP_F32, 2, shape, v), *tt = NULL;
    CHECK_OK(sp_tensor_transpose(t, 0, 1, &tt));
    sp_tensor *y = run1("sigmoid", tt, NULL), *z = run2("mul", tt, tt);
    int ok = y && z;
    for (int64_t i = 0; ok && i < NB; i++) {
        int64_t r = i / 3, c = i % 3;
        float x = (float)v[c * (NB / 3) + r];
        float s = ((const float *)sp_tensor_data(y))[i];
        float q = ((const float *)sp_tensor_data(z))[i];
        if (fabs(s - 1.0 / (1.0 + exp(-(double)x))) > 1e-6 || q != x * x) ok = 0;
    }
    CHECK(ok);
    sp_tensor_release(y);
    sp_tensor_release(z);
    sp_tensor_release(tt);
    sp_tensor_release(t);
    free(v);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_round_half_even);
    RUN(test_gelu_forms);
    RUN(test_softplus_threshold);
    RUN(test_int_unary_wrap);
    RUN(test_clamp);
    RUN(test_predicates);
    RUN(test_sqrt);
    RUN(test_f32_polynomials);
    RUN(test_nan_propagation);
    RUN(test_floor_div_mod);
    RUN(test_int_div_pow);
    RUN(test_broadcast_and_layouts);
    RUN(test_half_results);
    RUN(test_compare_logic_where);
    RUN(test_cast);
    RUN(test_threaded_matches_serial);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
