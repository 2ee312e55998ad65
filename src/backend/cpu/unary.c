/*
 * unary.c -- the CPU kernels of the unary elementwise primitives: y = f(x),
 * same shape; same dtype, or bool for the predicates (isnan, isfinite,
 * logical_not).
 *
 * Each op is a few macro lines giving its formula per compute dtype; the
 * macros (elementwise.h) turn a formula into a loop with a contiguous path
 * and a strided one, and cpu_ew_run (cast.c) does the iteration, threading
 * and float16/bfloat16 conversion.  float16/bfloat16 inputs compute in
 * float32 and round once when stored.
 *
 * Integers: neg, abs and square wrap like numpy (abs(INT_MIN) == INT_MIN)
 * and are computed in the unsigned type of the same width, so wrapping is
 * defined behaviour, not signed overflow.  clamp on integers saturates its
 * float bounds to the dtype's range and truncates them, which is what
 * min(max(x, lo), hi) followed by a cast to the integer type gives.
 *
 * Float32 speed: the transcendental-heavy ops (exp, tanh, sigmoid, silu,
 * gelu in both forms, erf) use the branch-free polynomials below instead
 * of libm, written with plain arithmetic and bit moves so gcc vectorizes
 * them; every float32 loop is also compiled a second time for AVX2 and
 * picked at run time when the CPU has it.  The builds run without
 * floating-point contraction (ISO C mode), so both versions give the same
 * bits.  ew_expf is Cephes' expf (about 1 ulp); ew_tanhf uses Cephes' odd
 * polynomial below |x| = 0.625 and 1 - 2/(e^2|x| + 1) above (about 2 ulp).
 * sigmoid uses e^-|x| (no overflow, so tiny results for large negative x
 * stay accurate), and gelu_tanh(x) = x*sigmoid(2u) avoids the cancellation
 * of 0.5*(1+tanh(u)) for large negative inputs; gelu with erf computes the
 * normal CDF's lower tail directly (ew_phif) for the same reason.  float64
 * uses libm throughout.
 */
#include "backend/cpu/elementwise.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* ---- float32 vector-friendly math ---- */

static inline uint32_t ew_fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float ew_bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* c ? a : b, written with masks: gcc if-converts (and so vectorizes) a
 * chain of float ternaries poorly, bit operations always. */
static inline float ew_self(int c, float a, float b) {
    uint32_t m = 0u - (uint32_t)c;
    return ew_bitsf((ew_fbits(a) & m) | (ew_fbits(b) & ~m));
}

/* e^x in float32: NaN -> NaN, overflow -> inf, underflow -> 0 (subnormals
 * on the way are rounded once). */
static inline float ew_expf(float x) {
    x = ew_self(x < -104.0f, -104.0f, x); /* comparisons keep NaN */
    x = ew_self(x > 89.0f, 89.0f, x);
    /* n = round(x / ln2) with the 1.5 * 2^23 trick: the integer lands in
     * the low mantissa bits of t, read without a float->int conversion. */
    float t = x * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    int32_t ni = (int32_t)(ew_fbits(t) - 0x4B400000u);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    /* 2^n in two factors: n spans [-150, 128], beyond one exponent field */
    int32_t n1 = ni / 2, n2 = ni - n1;
    float s1 = ew_bitsf((uint32_t)(n1 + 127) << 23);
    float s2 = ew_bitsf((uint32_t)(n2 + 127) << 23);
    return p * s1 * s2;
}

static inline float ew_tanhf(float x) {
    float ax = fabsf(x);
    float z = x * x;
    float ps = -5.70498872745e-3f;
    ps = ps * z + 2.06390887954e-2f;
    ps = ps * z - 5.37397155531e-2f;
    ps = ps * z + 1.33314422036e-1f;
    ps = ps * z - 3.33332819422e-1f;
    ps = ps * z * x + x;
    float e = ew_expf(2.0f * ax);
    float pl = 1.0f - 2.0f / (e + 1.0f);
    pl = ew_bitsf(ew_fbits(pl) | (ew_fbits(x) & 0x80000000u)); /* sign of x */
    return ew_self(ax < 0.625f, ps, pl);
}

/* The standard normal CDF in float32 for gelu and erf, in two parts:
 * d = Phi(x) - 0.5 = x*S(x^2), used for |x| <= 1, and the tail
 * q = Q(|x|) = Phi(-|x|) = exp(-x^2/2) * M(|x|), used beyond, with M fitted
 * (least squares, in float64) in a-2 on (1, 3] and in 1/a on (3, 14].
 * Phi is then 0.5 + d, q or 1 - q, and erf(z) = 2d or +-(1 - 2q) at
 * x = z*sqrt(2): nothing cancels, so the lower tail of gelu and erf near 0
 * keep their relative accuracy.  a^2 is split (a = ah + al, ah of 12 bits)
 * so the exponent's rounding error does not grow with a^2.  Measured
 * against float64 libm: gelu within 4.8 ulp over [-14, 14], erf within 1.9. */
static inline void ew_normal_parts(float x, float *d, float *q) {
    float a = fabsf(x), z = x * x;
    float s = -7.732390578e-06f;
    s = s * z + 1.136682515e-04f;
    s = s * z - 1.186476813e-03f;
    s = s * z + 9.973371324e-03f;
    s = s * z - 6.649036532e-02f;
    s = s * z + 3.989422802e-01f;
    *d = x * s;
    float u = a - 2.0f;
    float ma = -2.404538779e-06f;
    ma = ma * u + 1.021187287e-05f;
    ma = ma * u - 3.667183983e-05f;
    ma = ma * u + 1.448318308e-04f;
    ma = ma * u - 5.505587329e-04f;
    ma = ma * u + 1.976389079e-03f;
    ma = ma * u - 6.704257400e-03f;
    ma = ma * u + 2.131268230e-02f;
    ma = ma * u - 6.273827889e-02f;
    ma = ma * u + 1.681020020e-01f;
    float t = 1.0f / a;
    float mb = -1.816265259e+00f;
    mb = mb * t + 1.158595998e+00f;
    mb = mb * t + 2.524074245e+00f;
    mb = mb * t - 3.978276207e+00f;
    mb = mb * t + 2.156576399e+00f;
    mb = mb * t - 1.440694626e-01f;
    mb = mb * t - 3.850110630e-01f;
    mb = mb * t - 8.449453667e-04f;
    mb = mb * t + 3.989715158e-01f;
    mb = mb * t - 4.396915597e-07f;
    float m = ew_self(a <= 3.0f, ma, mb);
    float ah = ew_bitsf(ew_fbits(a) & 0xfffff000u), al = a - ah;
    float e = ew_expf(-(ah * ah) * 0.5f) * ew_expf(-(al * (a + ah)) * 0.5f);
    *q = ew_self(a > 14.0f, 0.0f, e * m); /* also covers a = inf */
}

static inline float ew_phif(float x) {
    float d, q;
    ew_normal_parts(x, &d, &q);
    return ew_self(fabsf(x) <= 1.0f, 0.5f + d, ew_self(x < 0.0f, q, 1.0f - q));
}

static inline float ew_erff(float z) {
    float x = z * 1.41421356237309505f, d, q;
    ew_normal_parts(x, &d, &q);
    return ew_self(fabsf(x) <= 1.0f, 2.0f * d, ew_self(z < 0.0f, 2.0f * q - 1.0f, 1.0f - 2.0f * q));
}

#define EW_SQRT_2_OVER_PI 0.79788456080286535588
#define EW_SQRT1_2 0.70710678118654752440

/* 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) below: e^-|x| never overflows, so
 * large negative inputs keep their tiny (even subnormal) results. */
static inline float ew_sigmoidf(float x) {
    float e = ew_expf(-fabsf(x));
    return ew_self(x >= 0.0f, 1.0f, e) / (1.0f + e);
}

static inline double ew_sigmoid(double x) {
    double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

static inline float ew_gelu_tanhf(float x) {
    float u = (float)EW_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
    return x * ew_sigmoidf(2.0f * u);
}

static inline double ew_gelu_tanh(double x) {
    double u = EW_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
    return x * ew_sigmoid(2.0 * u);
}

/* ---- loop generation ---- */

#define EW_TAB(op) static const cpu_ew_loop op##_tab[SP_DTYPE_COUNT]

#define EW_AVX2_LOOP1(name, T, OT, EXPR)                                                      \
    __attribute__((target("avx2,fma"))) static void name(char *const *p, const int64_t *s,    \
                                                         int64_t n, const void *c) {          \
        (void)c;                                                                             \
        CPU_EW_LOOP1_BODY(T, OT, EXPR)                                                       \
    }

/* A float-only op: float32 (plain and AVX2) and float64 loops. */
#define EW_FLOAT_OP(op, EXPR_F, EXPR_D)                                                       \
    CPU_EW_LOOP1(op##_f32, float, float, EXPR_F)                                              \
    EW_AVX2_LOOP1(op##_f32_avx2, float, float, EXPR_F)                                        \
    CPU_EW_LOOP1(op##_f64, double, double, EXPR_D)                                            \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64};

/* A numeric op: the float loops plus signed (i8 i32 i64) and uint8 ones. */
#define EW_NUM_OP(op, EXPR_F, EXPR_D, EXPR_S, EXPR_U)                                         \
    CPU_EW_LOOP1(op##_f32, float, float, EXPR_F)                                              \
    EW_AVX2_LOOP1(op##_f32_avx2, float, float, EXPR_F)                                        \
    CPU_EW_LOOP1(op##_f64, double, double, EXPR_D)                                            \
    CPU_EW_LOOP1(op##_i8, int8_t, int8_t, EW_S8(EXPR_S))                                      \
    CPU_EW_LOOP1(op##_i32, int32_t, int32_t, EW_S32(EXPR_S))                                  \
    CPU_EW_LOOP1(op##_i64, int64_t, int64_t, EW_S64(EXPR_S))                                  \
    CPU_EW_LOOP1(op##_u8, uint8_t, uint8_t, EXPR_U)                                           \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64, [SP_I8] = op##_i8,                \
                  [SP_I32] = op##_i32, [SP_I64] = op##_i64, [SP_U8] = op##_u8};

/* Signed integer formulas name their type T and its unsigned twin U. */
#define EW_S8(E) EW_SINT(int8_t, uint8_t, E)
#define EW_S32(E) EW_SINT(int32_t, uint32_t, E)
#define EW_S64(E) EW_SINT(int64_t, uint64_t, E)
#define EW_SINT(T, U, E) E(T, U)

#define NEG_S(T, U) (T)(U)(0u - (U)x)
#define ABS_S(T, U) (x < 0 ? (T)(U)(0u - (U)x) : x)
#define SIGN_S(T, U) (T)((x > 0) - (x < 0))
#define SQUARE_S(T, U) (T)(U)((U)x * (U)x)
#define RELU_S(T, U) (x < 0 ? (T)0 : x)

EW_NUM_OP(neg, -x, -x, NEG_S, (uint8_t)(0u - x))
EW_NUM_OP(abs, fabsf(x), fabs(x), ABS_S, x)
EW_NUM_OP(sign, x > 0 ? 1.0f : (x < 0 ? -1.0f : x), x > 0 ? 1.0 : (x < 0 ? -1.0 : x), SIGN_S,
          x > 0)
EW_NUM_OP(square, x *x, x *x, SQUARE_S, (uint8_t)(x * x))
EW_NUM_OP(relu, x < 0 ? 0.0f : x, x < 0 ? 0.0 : x, RELU_S, x)

EW_FLOAT_OP(exp, ew_expf(x), exp(x))
EW_FLOAT_OP(log, logf(x), log(x))
EW_FLOAT_OP(log1p, log1pf(x), log1p(x))
EW_FLOAT_OP(expm1, expm1f(x), expm1(x))
#if defined(__SSE2__)
/* sqrtf() keeps errno, so gcc calls libm for negative inputs and will not
 * vectorize it; the SQRTPS instruction is exact (IEEE), so use it directly. */
static inline float ew_sqrtf(float x) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(x))); }
#define EW_V4_SQRT(v) _mm_sqrt_ps(v)
#define EW_V4_RSQRT(v) _mm_div_ps(_mm_set1_ps(1.0f), _mm_sqrt_ps(v))
#define EW_V8_SQRT(v) _mm256_sqrt_ps(v)
#define EW_V8_RSQRT(v) _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_sqrt_ps(v))

#define EW_SQRT_OP(op, V4, V8, EXPR_F, EXPR_D)                                                \
    static void op##_f32(char *const *p, const int64_t *s, int64_t n, const void *c) {       \
        (void)c;                                                                             \
        if (s[0] == 4 && s[1] == 4) {                                                        \
            float *o = (float *)p[0];                                                        \
            const float *xs = (const float *)p[1];                                           \
            int64_t k = 0;                                                                   \
            for (; k + 4 <= n; k += 4) _mm_storeu_ps(o + k, V4(_mm_loadu_ps(xs + k)));       \
            for (; k < n; k++) {                                                             \
                float x = xs[k];                                                             \
                o[k] = EXPR_F;                                                               \
            }                                                                                \
            return;                                                                          \
        }                                                                                    \
        CPU_EW_LOOP1_BODY(float, float, EXPR_F)                                              \
    }                                                                                        \
    __attribute__((target("avx2,fma"))) static void op##_f32_avx2(                           \
        char *const *p, const int64_t *s, int64_t n, const void *c) {                        \
        if (s[0] == 4 && s[1] == 4) {                                                        \
            float *o = (float *)p[0];                                                        \
            const float *xs = (const float *)p[1];                                           \
            int64_t k = 0;                                                                   \
            for (; k + 8 <= n; k += 8) _mm256_storeu_ps(o + k, V8(_mm256_loadu_ps(xs + k))); \
            for (; k < n; k++) {                                                             \
                float x = xs[k];                                                             \
                o[k] = EXPR_F;                                                               \
            }                                                                                \
            return;                                                                          \
        }                                                                                    \
        op##_f32(p, s, n, c);                                                                \
    }                                                                                        \
    CPU_EW_LOOP1(op##_f64, double, double, EXPR_D)                                           \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64};
#else
#define EW_SQRT_OP(op, V4, V8, EXPR_F, EXPR_D) EW_FLOAT_OP(op, EXPR_F, EXPR_D)
static inline float ew_sqrtf(float x) { return sqrtf(x); }
#endif

EW_SQRT_OP(sqrt, EW_V4_SQRT, EW_V8_SQRT, ew_sqrtf(x), sqrt(x))
EW_SQRT_OP(rsqrt, EW_V4_RSQRT, EW_V8_RSQRT, 1.0f / ew_sqrtf(x), 1.0 / sqrt(x))
EW_FLOAT_OP(reciprocal, 1.0f / x, 1.0 / x)
EW_FLOAT_OP(sin, sinf(x), sin(x))
EW_FLOAT_OP(cos, cosf(x), cos(x))
EW_FLOAT_OP(tanh, ew_tanhf(x), tanh(x))
EW_FLOAT_OP(sigmoid, ew_sigmoidf(x), ew_sigmoid(x))
EW_FLOAT_OP(silu, x * ew_sigmoidf(x), x * ew_sigmoid(x))
EW_FLOAT_OP(gelu_tanh, ew_gelu_tanhf(x), ew_gelu_tanh(x))
EW_FLOAT_OP(gelu_erf, x * ew_phif(x), x * 0.5 * erfc(-x * EW_SQRT1_2))
EW_FLOAT_OP(erf, ew_erff(x), erf(x))
EW_FLOAT_OP(floor, floorf(x), floor(x))
EW_FLOAT_OP(ceil, ceilf(x), ceil(x))
EW_FLOAT_OP(round, rintf(x), rint(x)) /* default rounding mode: half to even */

/* ---- ops with attributes ---- */

typedef cpu_ew_softplus_ctx softplus_ctx;

static void softplus_f32(char *const *p, const int64_t *s, int64_t n, const void *c) {
    const softplus_ctx *sc = c;
    const float beta = (float)sc->beta, thr = (float)sc->threshold;
    CPU_EW_LOOP1_BODY(float, float, beta * x > thr ? x : log1pf(ew_expf(beta * x)) / beta)
}

static void softplus_f64(char *const *p, const int64_t *s, int64_t n, const void *c) {
    const softplus_ctx *sc = c;
    const double beta = sc->beta, thr = sc->threshold;
    CPU_EW_LOOP1_BODY(double, double, beta * x > thr ? x : log1p(exp(beta * x)) / beta)
}

EW_TAB(softplus) = {[SP_F32] = softplus_f32, [SP_F64] = softplus_f64};

/* clamp's bounds, absent ones as +-inf (floats) or the type's range (ints). */
typedef cpu_ew_clamp_ctx clamp_ctx;

/* An int bound: the float bound saturated to [tmin, tmax], then truncated. */
static int64_t clamp_int_bound(int has, double v, int64_t tmin, int64_t tmax, int64_t dflt) {
    if (!has || v != v) return dflt;
    if (v <= (double)tmin) return tmin;
    if (v >= (double)tmax) return tmax;
    return (int64_t)v;
}

#define CLAMP_FLOAT_LOOP(name, T)                                                            \
    static void name(char *const *p, const int64_t *s, int64_t n, const void *c) {           \
        const clamp_ctx *cc = c;                                                             \
        const T lo = cc->has_lo ? (T)cc->lo : (T)-INFINITY;                                  \
        const T hi = cc->has_hi ? (T)cc->hi : (T)INFINITY;                                   \
        CPU_EW_LOOP1_BODY(T, T, EW_CLAMP_EXPR)                                               \
    }

#define CLAMP_INT_LOOP(name, T, TMIN, TMAX)                                                  \
    static void name(char *const *p, const int64_t *s, int64_t n, const void *c) {           \
        const clamp_ctx *cc = c;                                                             \
        const T lo = (T)clamp_int_bound(cc->has_lo, cc->lo, TMIN, TMAX, TMIN);               \
        const T hi = (T)clamp_int_bound(cc->has_hi, cc->hi, TMIN, TMAX, TMAX);               \
        CPU_EW_LOOP1_BODY(T, T, EW_CLAMP_EXPR)                                               \
    }

/* min(max(x, lo), hi); NaN stays NaN because both comparisons are false. */
#define EW_CLAMP_EXPR (x < lo ? lo : x) > hi ? hi : (x < lo ? lo : x)

CLAMP_FLOAT_LOOP(clamp_f32, float)
CLAMP_FLOAT_LOOP(clamp_f64, double)
CLAMP_INT_LOOP(clamp_i8, int8_t, INT8_MIN, INT8_MAX)
CLAMP_INT_LOOP(clamp_u8, uint8_t, 0, UINT8_MAX)
CLAMP_INT_LOOP(clamp_i32, int32_t, INT32_MIN, INT32_MAX)
CLAMP_INT_LOOP(clamp_i64, int64_t, INT64_MIN, INT64_MAX)

EW_TAB(clamp) = {[SP_F32] = clamp_f32, [SP_F64] = clamp_f64, [SP_I8] = clamp_i8,
                 [SP_U8] = clamp_u8,   [SP_I32] = clamp_i32, [SP_I64] = clamp_i64};

/* ---- predicates: bool out ---- */

#define EW_PRED_OP(op, EXPR_FLT, EXPR_INT)                                                    \
    CPU_EW_LOOP1(op##_f32, float, uint8_t, EXPR_FLT)                                          \
    CPU_EW_LOOP1(op##_f64, double, uint8_t, EXPR_FLT)                                         \
    CPU_EW_LOOP1(op##_i8, int8_t, uint8_t, EXPR_INT)                                          \
    CPU_EW_LOOP1(op##_u8, uint8_t, uint8_t, EXPR_INT)                                         \
    CPU_EW_LOOP1(op##_i32, int32_t, uint8_t, EXPR_INT)                                        \
    CPU_EW_LOOP1(op##_i64, int64_t, uint8_t, EXPR_INT)                                        \
    EW_TAB(op) = {[SP_F32] = op##_f32, [SP_F64] = op##_f64, [SP_I8] = op##_i8,                \
                  [SP_U8] = op##_u8,   [SP_I32] = op##_i32, [SP_I64] = op##_i64,              \
                  [SP_BOOL] = op##_u8};

EW_PRED_OP(logical_not, x == 0, x == 0)
EW_PRED_OP(isnan, x != x, ((void)x, 0))
EW_PRED_OP(isfinite, x - x == 0, ((void)x, 1)) /* inf - inf and NaN give NaN */

/* ---- kernels ---- */

/* Fills spec for a unary op: the loop for x's dtype (float16/bfloat16 use
 * the float32 one), the AVX2 float32 loop when given and the CPU has it. */
static sp_status ew_unary_spec(sp_dtype xdt, const char *name, const cpu_ew_loop *tab,
                               cpu_ew_loop f32_avx2, const void *ctx, int64_t grain, int bool_out,
                               cpu_ew_spec *spec) {
    sp_dtype ct = xdt;
    if (!tab[ct]) ct = cpu_ew_widen(ct);
    if (!tab[ct])
        return sp_error(SP_ERR_DTYPE, "%s: no CPU kernel for dtype %s", name, sp_dtype_name(xdt));
    cpu_ew_loop loop = tab[ct];
    if (ct == SP_F32 && f32_avx2 && sp_cpu_has_avx2_fma()) loop = f32_avx2;
    *spec = (cpu_ew_spec){name, 1, {bool_out ? SP_BOOL : ct, ct}, loop, ctx, grain};
    return SP_OK;
}

#define EW_ROW(ID, op, grain)                                                                 \
    case SP_OP_##ID:                                                                         \
        return ew_unary_spec(x, #op, op##_tab, op##_f32_avx2, NULL, grain, 0, spec);
#define EW_PRED_ROW(ID, op)                                                                   \
    case SP_OP_##ID:                                                                         \
        return ew_unary_spec(x, #op, op##_tab, NULL, NULL, CPU_EW_GRAIN_CHEAP, 1, spec);

sp_status cpu_ew_unary_spec(int op, sp_dtype x, const sp_attrs *attrs, cpu_ew_spec *spec,
                            cpu_ew_ctx *ctx) {
    if ((int)x < 0 || x >= SP_DTYPE_COUNT) return sp_error(SP_ERR_DTYPE, "unary: bad dtype");
    switch (op) {
        EW_ROW(NEG, neg, CPU_EW_GRAIN_CHEAP)
        EW_ROW(ABS, abs, CPU_EW_GRAIN_CHEAP)
        EW_ROW(SIGN, sign, CPU_EW_GRAIN_CHEAP)
        EW_ROW(SQUARE, square, CPU_EW_GRAIN_CHEAP)
        EW_ROW(RELU, relu, CPU_EW_GRAIN_CHEAP)
        EW_ROW(RECIPROCAL, reciprocal, CPU_EW_GRAIN_CHEAP)
        EW_ROW(FLOOR, floor, CPU_EW_GRAIN_CHEAP)
        EW_ROW(CEIL, ceil, CPU_EW_GRAIN_CHEAP)
        EW_ROW(ROUND, round, CPU_EW_GRAIN_CHEAP)
        EW_ROW(SQRT, sqrt, CPU_EW_GRAIN_CHEAP)
        EW_ROW(RSQRT, rsqrt, CPU_EW_GRAIN_CHEAP)
        EW_ROW(EXP, exp, CPU_EW_GRAIN_HEAVY)
        EW_ROW(LOG, log, CPU_EW_GRAIN_HEAVY)
        EW_ROW(LOG1P, log1p, CPU_EW_GRAIN_HEAVY)
        EW_ROW(EXPM1, expm1, CPU_EW_GRAIN_HEAVY)
        EW_ROW(SIN, sin, CPU_EW_GRAIN_HEAVY)
        EW_ROW(COS, cos, CPU_EW_GRAIN_HEAVY)
        EW_ROW(TANH, tanh, CPU_EW_GRAIN_HEAVY)
        EW_ROW(SIGMOID, sigmoid, CPU_EW_GRAIN_HEAVY)
        EW_ROW(SILU, silu, CPU_EW_GRAIN_HEAVY)
        EW_ROW(ERF, erf, CPU_EW_GRAIN_HEAVY)
        EW_PRED_ROW(LOGICAL_NOT, logical_not)
        EW_PRED_ROW(ISNAN, isnan)
        EW_PRED_ROW(ISFINITE, isfinite)
    case SP_OP_GELU: {
        const char *mode = sp_attrs_get_str(attrs, "approximate", "none");
        if (strcmp(mode, "tanh") == 0)
            return ew_unary_spec(x, "gelu", gelu_tanh_tab, gelu_tanh_f32_avx2, NULL,
                                 CPU_EW_GRAIN_HEAVY, 0, spec);
        if (strcmp(mode, "none") == 0)
            return ew_unary_spec(x, "gelu", gelu_erf_tab, gelu_erf_f32_avx2, NULL,
                                 CPU_EW_GRAIN_HEAVY, 0, spec);
        return sp_error(SP_ERR_ARG, "gelu: approximate must be \"none\" or \"tanh\", got \"%s\"",
                        mode);
    }
    case SP_OP_SOFTPLUS:
        ctx->softplus = (softplus_ctx){sp_attrs_get_float(attrs, "beta", 1.0),
                                       sp_attrs_get_float(attrs, "threshold", 20.0)};
        return ew_unary_spec(x, "softplus", softplus_tab, NULL, &ctx->softplus,
                             CPU_EW_GRAIN_HEAVY, 0, spec);
    case SP_OP_CLAMP:
        ctx->clamp = (clamp_ctx){sp_attrs_find(attrs, "min") != NULL,
                                 sp_attrs_find(attrs, "max") != NULL,
                                 sp_attrs_get_float(attrs, "min", 0.0),
                                 sp_attrs_get_float(attrs, "max", 0.0)};
        return ew_unary_spec(x, "clamp", clamp_tab, NULL, &ctx->clamp, CPU_EW_GRAIN_CHEAP, 0,
                             spec);
    default:
        return sp_error(SP_ERR_UNSUPPORTED, "%s is not a unary elementwise primitive",
                        sp_op_name(op) ? sp_op_name(op) : "?");
    }
}

/* Every unary kernel: the spec its op and x's dtype pick, run over y. */
static sp_status ew_unary(const sp_kernel_args *a, int op) {
    cpu_ew_spec spec;
    cpu_ew_ctx ctx;
    sp_status st = cpu_ew_unary_spec(op, a->in[0]->dtype, a->attrs, &spec, &ctx);
    return st ? st : cpu_ew_run(&spec, a->out[0], a->in);
}

#define EW_KERNEL(ID, op)                                                                     \
    sp_status cpu_##op(const sp_kernel_args *a) { return ew_unary(a, SP_OP_##ID); }

EW_KERNEL(NEG, neg)
EW_KERNEL(ABS, abs)
EW_KERNEL(SIGN, sign)
EW_KERNEL(SQUARE, square)
EW_KERNEL(RELU, relu)
EW_KERNEL(RECIPROCAL, reciprocal)
EW_KERNEL(FLOOR, floor)
EW_KERNEL(CEIL, ceil)
EW_KERNEL(ROUND, round)
EW_KERNEL(SQRT, sqrt)
EW_KERNEL(RSQRT, rsqrt)
EW_KERNEL(EXP, exp)
EW_KERNEL(LOG, log)
EW_KERNEL(LOG1P, log1p)
EW_KERNEL(EXPM1, expm1)
EW_KERNEL(SIN, sin)
EW_KERNEL(COS, cos)
EW_KERNEL(TANH, tanh)
EW_KERNEL(SIGMOID, sigmoid)
EW_KERNEL(SILU, silu)
EW_KERNEL(ERF, erf)
EW_KERNEL(GELU, gelu)
EW_KERNEL(SOFTPLUS, softplus)
EW_KERNEL(CLAMP, clamp)
EW_KERNEL(LOGICAL_NOT, logical_not)
EW_KERNEL(ISNAN, isnan)
EW_KERNEL(ISFINITE, isfinite)
