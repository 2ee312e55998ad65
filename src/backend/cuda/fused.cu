/*
 * fused.cu -- the CUDA kernel of fused_elementwise, generated at run time:
 * CUDA C source is written for the program (ops/fused.h), compiled with
 * NVRTC at its first use, and cached by everything the source depends on
 * (the program, the input dtypes, the reduction).
 *
 * The source is the program spelled out per element.  Every value is held
 * in the canonical type of its dtype (float for float32/float16/bfloat16,
 * double for float64, long long for integers and bool) and is ROUNDED TO
 * ITS DTYPE after each step (r_<dtype>: cast's rules), so a float16 chain
 * rounds where the unfused chain stores float16.  A step converts its
 * operands to the compute type the unfused CUDA kernel picks (elementwise.cu:
 * arithmetic in the output dtype, comparisons in the promoted input dtype,
 * unary ops in the input's, logic on "nonzero", where and cast moving
 * values with cast's rules) and applies the same per-op device formula:
 * the prelude below carries elementwise.cu's ew_unary_op / ew_arith /
 * ew_cmp / ew_pred bodies verbatim, with the op id a literal so NVRTC folds
 * the switch away.  Keep the two in step: a formula changed there must be
 * changed here (the GPU tests compare fused against unfused on the device).
 * NVRTC compiles with --fmad=false so that no multiply of one step fuses
 * with an add of the next (the unfused kernels round in between); nvcc
 * may still have contracted inside one op's formula in elementwise.cu
 * (gelu's polynomial), so such ops can differ from the unfused ones in the
 * last bits, while + - * / chains, casts and comparisons agree exactly.
 *
 * Layout.  Inputs are read in the C order of the elementwise shape E, or
 * with a reduction of E' (kept axes first, reduced last, as the CPU); each
 * input carries its own collapsed layout (size-1 dims dropped, contiguous
 * neighbours merged), so a contiguous input costs one multiply-free load.
 * The parameter block holds SP_MAX_INPUTS layouts (about 9 KB: kernels of
 * CUDA 12.1+ take up to 32 KB of parameters).
 *
 * Reductions.  R <= 1024 (rows, small axes): one thread per output folds
 * its R elements in order.  Larger R: each output's R-space is cut into
 * chunks of FU_CHUNK elements (a fixed size, not a function of the device),
 * a block per (output, chunk) folds with a fixed-shape shared-memory tree,
 * and a second kernel adds the chunk partials in chunk order.  Floats
 * accumulate in double and integers in int64 (wrapping), as the CPU; the
 * result is deterministic run to run, and equal to the CPU's within the
 * rounding to the output dtype (the orders of the double additions differ).
 *
 * Compiled modules are cached for the life of the library (a handful of
 * kilobytes each); compiling takes tens of milliseconds, once per program
 * and input dtypes.
 */
#include <cuda.h>
#include <nvrtc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.cuh"

extern "C" {
#include "core/internal.h"
#include "ops/fused.h"
}

#define FU_MAX_DIMS 8
#define FU_CHUNK 65536LL
#define FU_ROW_MAX 1024LL

/* The parameter block, laid out identically in the generated source. */
struct fu_layout {
    int nd, pad;
    long long shape[FU_MAX_DIMS], st[FU_MAX_DIMS];
};
struct fu_params {
    long long n, R, M, chunk, nchunks;
    void *out;
    void *part;
    const void *in[SP_MAX_INPUTS];
    fu_layout L[SP_MAX_INPUTS];
};

static const char fu_prelude[] = R"FUSED(
typedef long long ll;
typedef unsigned long long ull;
typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned short u16;
typedef unsigned char u8;
typedef signed char i8;
#define F_INF __int_as_float(0x7f800000)
#define D_INF __longlong_as_double(0x7ff0000000000000LL)
struct fu_layout { int nd, pad; ll shape[8], st[8]; };
struct fu_params { ll n, R, M, chunk, nchunks; void *out; void *part; const void *in[64]; fu_layout L[64]; };
__device__ __forceinline__ ll fu_off(const fu_layout &L, ll i) {
    if (L.nd == 1) return i * L.st[0];
    ll off = 0;
    for (int k = L.nd - 1; k > 0; k--) { ll q = i / L.shape[k]; off += (i - q * L.shape[k]) * L.st[k]; i = q; }
    return L.nd > 0 ? off + i * L.st[0] : 0;
}
__device__ inline float f16f(u16 h) {
    u32 sign = (u32)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) u = sign;
        else { int e = -1; do { e++; man <<= 1; } while ((man & 0x400u) == 0);
               u = sign | ((u32)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13); }
    } else if (exp == 31) u = sign | 0x7f800000u | (man << 13);
    else u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    return __uint_as_float(u);
}
__device__ inline u16 ff16(float f) {
    u32 u = __float_as_uint(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (u16)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (u16)(sign | 0x7c00u);
    if (a < 0x38800000u) {
        if (a < 0x33000000u) return (u16)sign;
        u32 e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e;
        u32 r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1u))) r++;
        return (u16)(sign | r);
    }
    u32 r = ((a - 0x38000000u) >> 13), rem = a & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
    return (u16)(sign | r);
}
__device__ inline float bf16f(u16 h) { return __uint_as_float((u32)h << 16); }
__device__ inline u16 fbf16(float f) {
    u32 u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
}
__device__ inline float odd32(double d) {
    float f = (float)d; double back = (double)f;
    if (back != d) { u32 u = __float_as_uint(f); if (fabs(back) > fabs(d)) u -= 1; u |= 1u; f = __uint_as_float(u); }
    return f;
}
__device__ inline ll ftoi(double v) { if (!(v > -9.2233720368547758e18 && v < 9.2233720368547758e18)) return 0; return (ll)v; }
/* to a compute type (cu_cvt) */
__device__ inline float c_float(float v) { return v; }
__device__ inline float c_float(double v) { return (float)v; }
__device__ inline float c_float(ll v) { return (float)v; }
__device__ inline double c_double(float v) { return (double)v; }
__device__ inline double c_double(double v) { return v; }
__device__ inline double c_double(ll v) { return (double)v; }
__device__ inline ll c_ll(float v) { return ftoi(v); }
__device__ inline ll c_ll(double v) { return ftoi(v); }
__device__ inline ll c_ll(ll v) { return v; }
/* rounded to a dtype, held canonically (cast's rules) */
__device__ inline float r_f32(float v) { return v; }
__device__ inline float r_f32(double v) { return (float)v; }
__device__ inline float r_f32(ll v) { return (float)v; }
__device__ inline double r_f64(float v) { return (double)v; }
__device__ inline double r_f64(double v) { return v; }
__device__ inline double r_f64(ll v) { return (double)v; }
__device__ inline float r_f16(float v) { return f16f(ff16(v)); }
__device__ inline float r_f16(double v) { return f16f(ff16(odd32(v))); }
__device__ inline float r_f16(ll v) { return f16f(ff16(odd32((double)v))); }
__device__ inline float r_bf16(float v) { return bf16f(fbf16(v)); }
__device__ inline float r_bf16(double v) { return bf16f(fbf16(odd32(v))); }
__device__ inline float r_bf16(ll v) { return bf16f(fbf16(odd32((double)v))); }
#define FU_RINT(NAME, T, UT) \
    __device__ inline ll NAME(ll v) { return (ll)(T)(UT)(ull)v; } \
    __device__ inline ll NAME(float v) { return NAME(ftoi(v)); } \
    __device__ inline ll NAME(double v) { return NAME(ftoi(v)); }
FU_RINT(r_i8, i8, u8)
FU_RINT(r_u8, u8, u8)
FU_RINT(r_i32, int, u32)
FU_RINT(r_i64, ll, ull)
__device__ inline ll r_bool(float v) { return v != 0.0f; }
__device__ inline ll r_bool(double v) { return v != 0.0; }
__device__ inline ll r_bool(ll v) { return v != 0; }
/* loads and stores of canonical values */
__device__ inline float ld_f32(const void *p, ll o) { return ((const float *)p)[o]; }
__device__ inline double ld_f64(const void *p, ll o) { return ((const double *)p)[o]; }
__device__ inline float ld_f16(const void *p, ll o) { return f16f(((const u16 *)p)[o]); }
__device__ inline float ld_bf16(const void *p, ll o) { return bf16f(((const u16 *)p)[o]); }
__device__ inline ll ld_i8(const void *p, ll o) { return ((const i8 *)p)[o]; }
__device__ inline ll ld_u8(const void *p, ll o) { return ((const u8 *)p)[o]; }
__device__ inline ll ld_i32(const void *p, ll o) { return ((const int *)p)[o]; }
__device__ inline ll ld_i64(const void *p, ll o) { return ((const ll *)p)[o]; }
__device__ inline ll ld_bool(const void *p, ll o) { return ((const u8 *)p)[o] != 0; }
__device__ inline void st_f32(void *p, ll o, float v) { ((float *)p)[o] = v; }
__device__ inline void st_f64(void *p, ll o, double v) { ((double *)p)[o] = v; }
__device__ inline void st_f16(void *p, ll o, float v) { ((u16 *)p)[o] = ff16(v); }
__device__ inline void st_bf16(void *p, ll o, float v) { ((u16 *)p)[o] = fbf16(v); }
__device__ inline void st_i8(void *p, ll o, ll v) { ((i8 *)p)[o] = (i8)(u8)(ull)v; }
__device__ inline void st_u8(void *p, ll o, ll v) { ((u8 *)p)[o] = (u8)(ull)v; }
__device__ inline void st_i32(void *p, ll o, ll v) { ((int *)p)[o] = (int)(u32)(ull)v; }
__device__ inline void st_i64(void *p, ll o, ll v) { ((ll *)p)[o] = v; }
__device__ inline void st_bool(void *p, ll o, ll v) { ((u8 *)p)[o] = v != 0; }
/* ---- the per-op formulas of elementwise.cu ---- */
template <class C> struct ew_is_float { static const bool value = false; };
template <> struct ew_is_float<float> { static const bool value = true; };
template <> struct ew_is_float<double> { static const bool value = true; };
__device__ inline float ew_sigmoid(float x) { float e = expf(-fabsf(x)); return (x >= 0.0f ? 1.0f : e) / (1.0f + e); }
__device__ inline double ew_sigmoid(double x) { double e = exp(-fabs(x)); return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e); }
template <class C> __device__ inline C ew_divmod(C a, C b, C *modulus) {
    C mod = fmod(a, b);
    if (!b) { *modulus = mod; return a / b; }
    C div = (a - mod) / b;
    if (mod) { if ((b < 0) != (mod < 0)) { mod += b; div -= 1; } } else { mod = copysign((C)0, b); }
    C floordiv;
    if (div) { floordiv = floor(div); if (div - floordiv > (C)0.5) floordiv += 1; }
    else { floordiv = copysign((C)0, a / b); }
    *modulus = mod;
    return floordiv;
}
__device__ inline ll ew_ifloordiv(ll a, ll b) {
    if (b == 0) return 0;
    if (b == -1) return (ll)(0ull - (u64)a);
    ll q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) q--;
    return q;
}
__device__ inline ll ew_imod(ll a, ll b) {
    if (b == 0 || b == -1) return 0;
    ll r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
__device__ inline ll ew_ipow(ll a, ll b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
    u64 r = 1, x = (u64)a, e = (u64)b;
    while (e) { if (e & 1u) r *= x; x *= x; e >>= 1; }
    return (ll)r;
}
template <class C> __device__ inline C ew_unary_op(int op, C x, double f0, double f1, ll i0, ll i1, int flag) {
    if constexpr (ew_is_float<C>::value) {
        switch (op) {
        case SP_OP_NEG: return -x;
        case SP_OP_ABS: return fabs(x);
        case SP_OP_SIGN: return x > 0 ? (C)1 : (x < 0 ? (C)-1 : x);
        case SP_OP_SQUARE: return x * x;
        case SP_OP_RELU: return x < 0 ? (C)0 : x;
        case SP_OP_EXP: return exp(x);
        case SP_OP_LOG: return log(x);
        case SP_OP_LOG1P: return log1p(x);
        case SP_OP_EXPM1: return expm1(x);
        case SP_OP_SQRT: return sqrt(x);
        case SP_OP_RSQRT: return (C)1 / sqrt(x);
        case SP_OP_RECIPROCAL: return (C)1 / x;
        case SP_OP_SIN: return sin(x);
        case SP_OP_COS: return cos(x);
        case SP_OP_TANH: return tanh(x);
        case SP_OP_SIGMOID: return ew_sigmoid(x);
        case SP_OP_SILU: return x * ew_sigmoid(x);
        case SP_OP_GELU:
            if (flag) { C u = (C)0.79788456080286535588 * (x + (C)0.044715 * x * x * x); return x * ew_sigmoid((C)2 * u); }
            return x * (C)0.5 * erfc(-x * (C)0.70710678118654752440);
        case SP_OP_SOFTPLUS: { C beta = (C)f0, thr = (C)f1; return beta * x > thr ? x : log1p(exp(beta * x)) / beta; }
        case SP_OP_ERF: return erf(x);
        case SP_OP_FLOOR: return floor(x);
        case SP_OP_CEIL: return ceil(x);
        case SP_OP_ROUND: return rint(x);
        case SP_OP_CLAMP: {
            C lo = (flag & 1) ? (C)f0 : (C)-D_INF, hi = (flag & 2) ? (C)f1 : (C)D_INF;
            C t = x < lo ? lo : x;
            return t > hi ? hi : t;
        }
        default: return x;
        }
    } else {
        switch (op) {
        case SP_OP_NEG: return (ll)(0ull - (u64)x);
        case SP_OP_ABS: return x < 0 ? (ll)(0ull - (u64)x) : x;
        case SP_OP_SIGN: return (x > 0) - (x < 0);
        case SP_OP_SQUARE: return (ll)((u64)x * (u64)x);
        case SP_OP_RELU: return x < 0 ? 0 : x;
        case SP_OP_CLAMP: { ll t = x < i0 ? i0 : x; return t > i1 ? i1 : t; }
        default: return x;
        }
    }
}
template <class C> __device__ inline bool ew_pred(int op, C x) {
    if constexpr (ew_is_float<C>::value) {
        switch (op) { case SP_OP_ISNAN: return x != x; case SP_OP_ISFINITE: return x - x == 0; default: return x == 0; }
    } else {
        switch (op) { case SP_OP_ISNAN: return false; case SP_OP_ISFINITE: return true; default: return x == 0; }
    }
}
template <class C> __device__ inline C ew_arith(int op, C a, C b) {
    if constexpr (ew_is_float<C>::value) {
        C m;
        switch (op) {
        case SP_OP_ADD: return a + b;
        case SP_OP_SUB: return a - b;
        case SP_OP_MUL: return a * b;
        case SP_OP_DIV: return a / b;
        case SP_OP_POW: return pow(a, b);
        case SP_OP_MAXIMUM: return (a > b || a != a) ? a : b;
        case SP_OP_MINIMUM: return (a < b || a != a) ? a : b;
        case SP_OP_FLOOR_DIV: return ew_divmod<C>(a, b, &m);
        case SP_OP_MOD: if (!b) return fmod(a, b); ew_divmod<C>(a, b, &m); return m;
        case SP_OP_ATAN2: return atan2(a, b);
        default: return a;
        }
    } else {
        switch (op) {
        case SP_OP_ADD: return (ll)((u64)a + (u64)b);
        case SP_OP_SUB: return (ll)((u64)a - (u64)b);
        case SP_OP_MUL: return (ll)((u64)a * (u64)b);
        case SP_OP_POW: return ew_ipow(a, b);
        case SP_OP_MAXIMUM: return a > b ? a : b;
        case SP_OP_MINIMUM: return a < b ? a : b;
        case SP_OP_FLOOR_DIV: return ew_ifloordiv(a, b);
        case SP_OP_MOD: return ew_imod(a, b);
        default: return a;
        }
    }
}
template <class C> __device__ inline bool ew_cmp(int op, C a, C b) {
    switch (op) {
    case SP_OP_EQUAL: return a == b; case SP_OP_NOT_EQUAL: return a != b;
    case SP_OP_LESS: return a < b; case SP_OP_LESS_EQUAL: return a <= b;
    case SP_OP_GREATER: return a > b; default: return a >= b;
    }
}
__device__ inline double fu_maxd(double a, double b) { return (a > b || a != a) ? a : b; }
__device__ inline double fu_mind(double a, double b) { return (a < b || a != a) ? a : b; }
)FUSED";

/* ---- a growable string ------------------------------------------------------ */

typedef struct fu_str {
    char *s;
    size_t n, cap;
    int oom;
} fu_str;

static void fu_put(fu_str *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)k < b->cap) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)k;
        char *s = (char *)realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        if (!b->s) s[0] = '\0';
        b->s = s;
        b->cap = cap;
    }
}

/* ---- code generation --------------------------------------------------------- */

static const char *fu_dname(sp_dtype d) {
    switch (d) {
    case SP_F32: return "f32";
    case SP_F64: return "f64";
    case SP_F16: return "f16";
    case SP_BF16: return "bf16";
    case SP_I8: return "i8";
    case SP_U8: return "u8";
    case SP_I32: return "i32";
    case SP_I64: return "i64";
    default: return "bool";
    }
}

/* The canonical (held) type of a dtype, and the compute-type converter. */
static const char *fu_ktype(sp_dtype d) {
    return d == SP_F64 ? "double" : sp_dtype_is_float(d) ? "float" : "ll";
}
static const char *fu_cfun(sp_dtype d) {
    return d == SP_F64 ? "c_double" : sp_dtype_is_float(d) ? "c_float" : "c_ll";
}

/* A literal's value as the unfused call would hold it: stored in its
 * step's dtype (sp_store_*, as rt_prim_call does), read back canonically. */
static void fu_literal(fu_str *b, const sp_fused_arg *a, sp_dtype d) {
    unsigned char buf[8] = {0};
    if (a->lit_kind == SP_FLIT_FLOAT) sp_store_f64(d, buf, a->f);
    else sp_store_i64(d, buf, a->i);
    if (d == SP_F64) {
        uint64_t u;
        memcpy(&u, buf, 8);
        fu_put(b, "__longlong_as_double(0x%016llxLL)", (unsigned long long)u);
    } else if (sp_dtype_is_float(d)) {
        float f = (float)sp_load_f64(d, buf);
        uint32_t u;
        memcpy(&u, &f, 4);
        fu_put(b, "__uint_as_float(0x%08xu)", u);
    } else {
        fu_put(b, "((ll)0x%016llxULL)", (unsigned long long)sp_load_i64(d, buf));
    }
}

static void fu_operand(fu_str *b, const sp_fused_step *s, int k) {
    const sp_fused_arg *a = &s->arg[k];
    if (a->kind == SP_FARG_INPUT) fu_put(b, "x%d", a->index);
    else if (a->kind == SP_FARG_STEP) fu_put(b, "s%d", a->index);
    else fu_literal(b, a, s->lit_dtype);
}

static sp_dtype fu_arg_dtype(const sp_fused_prog *p, const sp_fused_step *s, int k,
                             const sp_dtype *in) {
    const sp_fused_arg *a = &s->arg[k];
    if (a->kind == SP_FARG_INPUT) return in[a->index];
    if (a->kind == SP_FARG_STEP) return p->step[a->index].meta.dtype;
    return s->lit_dtype;
}

static long long fu_clamp_int_bound(int has, double v, long long tmin, long long tmax,
                                    long long dflt) {
    if (!has || v != v) return dflt;
    if (v <= (double)tmin) return tmin;
    if (v >= (double)tmax) return tmax;
    return (long long)v;
}

/* One step: "K s<i> = r_<dtype>(<expression>);" */
static void fu_gen_step(fu_str *b, const sp_fused_prog *p, int i, const sp_dtype *in) {
    const sp_fused_step *s = &p->step[i];
    const sp_dtype od = s->meta.dtype, x = fu_arg_dtype(p, s, 0, in);
    const int op = s->op;
    const sp_op_def *def = &sp_op_defs[op];
    sp_attrs at;
    sp_fused_step_attrs(s, &at);
    fu_put(b, "        %s s%d = ", fu_ktype(od), i);
    if (op == SP_OP_CAST) {
        fu_put(b, "r_%s(", fu_dname(od));
        fu_operand(b, s, 0);
        fu_put(b, ");\n");
        return;
    }
    if (op == SP_OP_WHERE) {
        fu_put(b, "(");
        fu_operand(b, s, 0);
        fu_put(b, " != 0) ? r_%s(", fu_dname(od));
        fu_operand(b, s, 1);
        fu_put(b, ") : r_%s(", fu_dname(od));
        fu_operand(b, s, 2);
        fu_put(b, ");\n");
        return;
    }
    if (op == SP_OP_LOGICAL_AND || op == SP_OP_LOGICAL_OR) {
        fu_put(b, "(ll)((");
        fu_operand(b, s, 0);
        fu_put(b, " != 0) %s (", op == SP_OP_LOGICAL_AND ? "&&" : "||");
        fu_operand(b, s, 1);
        fu_put(b, " != 0));\n");
        return;
    }
    if (def->n_in == 1) {
        const char *C = fu_ktype(x), *cf = fu_cfun(x);
        if (op == SP_OP_ISNAN || op == SP_OP_ISFINITE || op == SP_OP_LOGICAL_NOT) {
            fu_put(b, "(ll)ew_pred<%s>(%d, %s(", C, op, cf);
            fu_operand(b, s, 0);
            fu_put(b, "));\n");
            return;
        }
        double f0 = 0, f1 = 0;
        long long i0 = 0, i1 = 0;
        int flag = 0;
        if (op == SP_OP_GELU) flag = strcmp(sp_attrs_get_str(&at, "approximate", "none"), "tanh") == 0;
        if (op == SP_OP_SOFTPLUS) {
            f0 = sp_attrs_get_float(&at, "beta", 1.0);
            f1 = sp_attrs_get_float(&at, "threshold", 20.0);
        }
        if (op == SP_OP_CLAMP) {
            int has_lo = sp_attrs_find(&at, "min") != NULL, has_hi = sp_attrs_find(&at, "max") != NULL;
            f0 = sp_attrs_get_float(&at, "min", 0.0);
            f1 = sp_attrs_get_float(&at, "max", 0.0);
            flag = has_lo | (has_hi << 1);
            long long tmin = INT64_MIN, tmax = INT64_MAX;
            if (x == SP_I8) tmin = INT8_MIN, tmax = INT8_MAX;
            if (x == SP_U8) tmin = 0, tmax = UINT8_MAX;
            if (x == SP_I32) tmin = INT32_MIN, tmax = INT32_MAX;
            i0 = fu_clamp_int_bound(has_lo, f0, tmin, tmax, tmin);
            i1 = fu_clamp_int_bound(has_hi, f1, tmin, tmax, tmax);
        }
        uint64_t u0, u1;
        memcpy(&u0, &f0, 8);
        memcpy(&u1, &f1, 8);
        fu_put(b, "r_%s(ew_unary_op<%s>(%d, %s(", fu_dname(od), C, op, cf);
        fu_operand(b, s, 0);
        fu_put(b, "), __longlong_as_double(0x%016llxLL), __longlong_as_double(0x%016llxLL), %lldLL, %lldLL, %d));\n",
               (unsigned long long)u0, (unsigned long long)u1, i0, i1, flag);
        return;
    }
    /* binary: arithmetic computes in the output dtype, comparisons in the
     * promoted input dtype */
    int cmp = def->infer == infer_binary_bool;
    sp_dtype cd = cmp ? sp_dtype_promote(x, fu_arg_dtype(p, s, 1, in)) : od;
    const char *C = fu_ktype(cd), *cf = fu_cfun(cd);
    if (cmp) fu_put(b, "(ll)ew_cmp<%s>(%d, %s(", C, op, cf);
    else fu_put(b, "r_%s(ew_arith<%s>(%d, %s(", fu_dname(od), C, op, cf);
    fu_operand(b, s, 0);
    fu_put(b, "), %s(", cf);
    fu_operand(b, s, 1);
    fu_put(b, "))%s;\n", cmp ? "" : ")");
}

/* The body computing the program at E' index `i` into s<last>. */
static void fu_gen_value(fu_str *b, const sp_fused_prog *p, int n_in, const sp_dtype *in) {
    int used[SP_MAX_INPUTS] = {0};
    for (int i = 0; i < p->n_steps; i++)
        for (int k = 0; k < p->step[i].n_args; k++)
            if (p->step[i].arg[k].kind == SP_FARG_INPUT) used[p->step[i].arg[k].index] = 1;
    for (int k = 0; k < n_in; k++)
        if (used[k])
            fu_put(b, "        %s x%d = ld_%s(P.in[%d], fu_off(P.L[%d], i));\n", fu_ktype(in[k]), k,
                   fu_dname(in[k]), k, k);
    for (int i = 0; i < p->n_steps; i++) fu_gen_step(b, p, i, in);
}

/* The whole source: fu_ew (no reduction) or fu_row / fu_chunk + fu_fin. */
static char *fu_gen(const sp_fused_prog *p, int n_in, const sp_dtype *in, sp_dtype out_dt) {
    fu_str b = {NULL, 0, 0, 0};
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) fu_put(&b, "#define SP_OP_%s %d\n", #ID, (int)SP_OP_##ID);
#include "ops/ops.def"
#undef SP_OP
    fu_put(&b, "%s", fu_prelude);
    const sp_dtype ld = p->step[p->n_steps - 1].meta.dtype;
    const int last = p->n_steps - 1;
    if (p->reduce_op < 0) {
        fu_put(&b, "extern \"C\" __global__ void fu_ew(const fu_params P) {\n"
                   "    for (ll i = (ll)blockIdx.x * blockDim.x + threadIdx.x; i < P.n; i += (ll)gridDim.x * blockDim.x) {\n");
        fu_gen_value(&b, p, n_in, in);
        fu_put(&b, "        st_%s(P.out, i, s%d);\n    }\n}\n", fu_dname(ld), last);
    } else {
        const int ai = !sp_dtype_is_float(ld), red = p->reduce_op;
        const char *A = ai ? "ll" : "double";
        const char *ident = red == SP_OP_MAX ? (ai ? "(ll)0x8000000000000000ULL" : "-D_INF")
                            : red == SP_OP_MIN ? (ai ? "(ll)0x7fffffffffffffffULL" : "D_INF")
                                               : (ai ? "(ll)0" : "0.0");
        const char *comb = red == SP_OP_MAX ? (ai ? "(a > v ? a : v)" : "fu_maxd(a, v)")
                           : red == SP_OP_MIN ? (ai ? "(a < v ? a : v)" : "fu_mind(a, v)")
                                              : (ai ? "(ll)((ull)a + (ull)v)" : "(a + v)");
        fu_put(&b, "#define ACC %s\n#define IDENT %s\n__device__ inline ACC fu_comb(ACC a, ACC v) { return %s; }\n",
               A, ident, comb);
        fu_put(&b, "__device__ inline ACC fu_val(const fu_params &P, ll i) {\n");
        fu_gen_value(&b, p, n_in, in);
        fu_put(&b, "        return (ACC)s%d;\n}\n", last);
        fu_put(&b,
               "__device__ inline void fu_store(const fu_params &P, ll o, ACC a) {\n"
               "    %s\n    st_%s(P.out, o, r_%s(a));\n}\n",
               red == SP_OP_MEAN ? "a = a / (double)P.R;" : "", fu_dname(out_dt), fu_dname(out_dt));
        /* one thread per output */
        fu_put(&b, "extern \"C\" __global__ void fu_row(const fu_params P) {\n"
                   "    for (ll o = (ll)blockIdx.x * blockDim.x + threadIdx.x; o < P.M; o += (ll)gridDim.x * blockDim.x) {\n"
                   "        ACC a = IDENT;\n"
                   "        for (ll r = 0; r < P.R; r++) { ACC v = fu_val(P, o * P.R + r); a = fu_comb(a, v); }\n"
                   "        fu_store(P, o, a);\n    }\n}\n");
        /* a block per (output, chunk), then the chunks in order */
        fu_put(&b, "extern \"C\" __global__ void fu_chunk(const fu_params P) {\n"
                   "    __shared__ ACC sh[256];\n"
                   "    ll o = blockIdx.x / P.nchunks, c = blockIdx.x %% P.nchunks;\n"
                   "    ll r0 = c * P.chunk, r1 = r0 + P.chunk < P.R ? r0 + P.chunk : P.R;\n"
                   "    ACC a = IDENT;\n"
                   "    for (ll r = r0 + threadIdx.x; r < r1; r += blockDim.x) { ACC v = fu_val(P, o * P.R + r); a = fu_comb(a, v); }\n"
                   "    sh[threadIdx.x] = a;\n    __syncthreads();\n"
                   "    for (int w = 128; w > 0; w >>= 1) {\n"
                   "        if ((int)threadIdx.x < w) { ACC v = sh[threadIdx.x + w]; a = sh[threadIdx.x]; sh[threadIdx.x] = fu_comb(a, v); }\n"
                   "        __syncthreads();\n    }\n"
                   "    if (threadIdx.x == 0) ((ACC *)P.part)[blockIdx.x] = sh[0];\n}\n"
                   "extern \"C\" __global__ void fu_fin(const fu_params P) {\n"
                   "    for (ll o = (ll)blockIdx.x * blockDim.x + threadIdx.x; o < P.M; o += (ll)gridDim.x * blockDim.x) {\n"
                   "        const ACC *q = (const ACC *)P.part + o * P.nchunks;\n"
                   "        ACC a = q[0];\n"
                   "        for (ll c = 1; c < P.nchunks; c++) { ACC v = q[c]; a = fu_comb(a, v); }\n"
                   "        fu_store(P, o, a);\n    }\n}\n");
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ---- compile and cache ---------------------------------------------------------- */

typedef struct fu_entry {
    char *key;
    CUmodule mod;
    CUfunction ew, row, chunk, fin;
    struct fu_entry *next;
} fu_entry;

static pthread_mutex_t fu_mu = PTHREAD_MUTEX_INITIALIZER;
static fu_entry *fu_cache;

static sp_status fu_cu(CUresult r, const char *what) {
    if (r == CUDA_SUCCESS) return SP_OK;
    const char *s = NULL;
    cuGetErrorString(r, &s);
    return sp_error(SP_ERR_DEVICE, "fused_elementwise: %s: CUDA driver error %d (%s)", what, (int)r,
                    s ? s : "?");
}

static sp_status fu_compile(const char *src, fu_entry *e, int reduce) {
    int major = 8, minor = 0, dev = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    char arch[64];
    snprintf(arch, sizeof arch, "--gpu-architecture=sm_%d%d", major, minor);
    /* no FMA contraction: x*a + b must round twice, as the unfused mul
     * and add kernels do */
    const char *opts[] = {arch, "--std=c++17", "-default-device", "--fmad=false"};
    nvrtcProgram prog;
    if (nvrtcCreateProgram(&prog, src, "fused_elementwise.cu", 0, NULL, NULL) != NVRTC_SUCCESS)
        return sp_error(SP_ERR_DEVICE, "fused_elementwise: NVRTC could not create a program");
    nvrtcResult r = nvrtcCompileProgram(prog, 4, opts);
    if (r != NVRTC_SUCCESS) {
        size_t n = 0;
        nvrtcGetProgramLogSize(prog, &n);
        char *log = (char *)malloc(n + 1);
        if (log) {
            log[0] = '\0';
            nvrtcGetProgramLog(prog, log);
            log[n] = '\0';
        }
        sp_status st = sp_error(SP_ERR_INTERNAL, "fused_elementwise: NVRTC: %s\n%.2000s",
                                nvrtcGetErrorString(r), log ? log : "");
        free(log);
        nvrtcDestroyProgram(&prog);
        return st;
    }
    size_t n = 0;
    nvrtcGetCUBINSize(prog, &n);
    char *cubin = (char *)malloc(n ? n : 1);
    sp_status st = SP_OK;
    if (!cubin) st = sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");
    if (!st && nvrtcGetCUBIN(prog, cubin) != NVRTC_SUCCESS)
        st = sp_error(SP_ERR_DEVICE, "fused_elementwise: NVRTC gave no cubin");
    nvrtcDestroyProgram(&prog);
    if (!st) st = fu_cu(cuModuleLoadData(&e->mod, cubin), "loading the module");
    free(cubin);
    if (!st && !reduce) st = fu_cu(cuModuleGetFunction(&e->ew, e->mod, "fu_ew"), "fu_ew");
    if (!st && reduce) st = fu_cu(cuModuleGetFunction(&e->row, e->mod, "fu_row"), "fu_row");
    if (!st && reduce) st = fu_cu(cuModuleGetFunction(&e->chunk, e->mod, "fu_chunk"), "fu_chunk");
    if (!st && reduce) st = fu_cu(cuModuleGetFunction(&e->fin, e->mod, "fu_fin"), "fu_fin");
    return st;
}

/* The compiled kernels for this program and these dtypes (compiled at
 * first use).  NULL + error. */
static fu_entry *fu_get(const sp_fused_prog *p, const char *prog_text, int n_in,
                        const sp_dtype *in, sp_dtype out_dt) {
    fu_str key = {NULL, 0, 0, 0};
    fu_put(&key, "%s|%d|%d|", prog_text, p->reduce_op, (int)out_dt);
    for (int k = 0; k < n_in; k++) fu_put(&key, "%d,", (int)in[k]);
    if (key.oom) {
        free(key.s);
        sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");
        return NULL;
    }
    pthread_mutex_lock(&fu_mu);
    fu_entry *e = fu_cache;
    while (e && strcmp(e->key, key.s) != 0) e = e->next;
    if (!e) {
        char *src = fu_gen(p, n_in, in, out_dt);
        e = src ? (fu_entry *)calloc(1, sizeof *e) : NULL;
        if (!e) {
            sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");
        } else if (fu_compile(src, e, p->reduce_op >= 0) != SP_OK) {
            if (e->mod) cuModuleUnload(e->mod);
            free(e);
            e = NULL;
        } else {
            e->key = key.s;
            key.s = NULL;
            e->next = fu_cache;
            fu_cache = e;
        }
        free(src);
    }
    pthread_mutex_unlock(&fu_mu);
    free(key.s);
    return e;
}

/* ---- the kernel ------------------------------------------------------------------ */

static sp_status fu_launch(CUfunction f, long long blocks, int threads, fu_params *P) {
    void *args[] = {P};
    if (blocks < 1) blocks = 1;
    return fu_cu(cuLaunchKernel(f, (unsigned)blocks, 1, 1, (unsigned)threads, 1, 1, 0,
                                (CUstream)cuda_stream(), args, NULL),
                 "launch");
}

sp_status cuda_fused_elementwise(const sp_kernel_args *a) {
    /* the driver API below needs the runtime's primary context current */
    int dev = 0;
    if (cudaGetDevice(&dev) == cudaSuccess) cudaSetDevice(dev);
    sp_meta min[SP_MAX_INPUTS];
    sp_dtype in[SP_MAX_INPUTS];
    for (int k = 0; k < a->n_in; k++) {
        min[k] = sp_meta_of(a->in[k]);
        in[k] = a->in[k]->dtype;
    }
    sp_fused_prog *p = sp_fused_prepare(a->n_in, min, a->attrs);
    if (!p) return sp_last_status();
    const char *text = sp_attrs_get_str(a->attrs, "program", "");
    sp_status st = SP_OK;
    fu_params *P = (fu_params *)calloc(1, sizeof *P);
    if (!P) st = sp_error(SP_ERR_NOMEM, "fused_elementwise: out of memory");

    /* E' and each input's collapsed layout in it */
    const sp_meta *e = &p->elem;
    int red_ax[SP_MAX_DIMS] = {0}, perm[SP_MAX_DIMS];
    long long total = 1, R = 1;
    for (int d = 0; d < e->ndim; d++) total *= e->shape[d];
    if (!st && p->reduce_op >= 0) {
        int n_ax = 0;
        const int64_t *ax = sp_attrs_get_ints(a->attrs, "axes", &n_ax);
        if (!ax)
            for (int d = 0; d < e->ndim; d++) red_ax[d] = 1;
        for (int k = 0; k < n_ax && !st; k++) {
            int d;
            st = sp_norm_axis("fused_elementwise", ax[k], e->ndim, &d);
            if (!st) red_ax[d] = 1;
        }
        for (int d = 0; d < e->ndim; d++)
            if (red_ax[d]) R *= e->shape[d];
    }
    int np = 0;
    for (int d = 0; d < e->ndim; d++)
        if (!red_ax[d]) perm[np++] = d;
    for (int d = 0; d < e->ndim; d++)
        if (red_ax[d]) perm[np++] = d;
    for (int k = 0; k < a->n_in && !st; k++) {
        int64_t bst[SP_MAX_DIMS];
        cu_broadcast_strides(a->in[k], e->ndim, e->shape, bst);
        fu_layout *L = &P->L[k];
        int n = 0;
        for (int j = 0; j < e->ndim; j++) {
            int d = perm[j];
            long long sz = e->shape[d], s = bst[d];
            if (sz == 1) continue;
            if (n > 0 && L->st[n - 1] == s * sz) {
                L->shape[n - 1] *= sz;
                L->st[n - 1] = s;
            } else {
                L->shape[n] = sz;
                L->st[n] = s;
                n++;
            }
        }
        L->nd = n;
        P->in[k] = sp_tensor_data(a->in[k]);
    }
    fu_entry *ent = NULL;
    if (!st && total > 0) {
        ent = fu_get(p, text, a->n_in, in, a->out[0]->dtype);
        if (!ent) st = sp_last_status();
    }
    if (!st) {
        P->n = total;
        P->R = R;
        P->M = sp_tensor_numel(a->out[0]);
        P->out = sp_tensor_data(a->out[0]);
        P->chunk = FU_CHUNK;
        P->nchunks = R > 0 ? (R + FU_CHUNK - 1) / FU_CHUNK : 1;
    }
    if (!st && p->reduce_op < 0) {
        if (total > 0) st = fu_launch(ent->ew, cu_blocks(total), CU_THREADS, P);
    } else if (!st && (total == 0 || R <= FU_ROW_MAX)) {
        /* also the empty reductions: R == 0 folds nothing, leaving the
         * identity (sum 0, mean NaN) */
        if (total == 0 && P->M > 0) {
            /* no module compiled for an empty E: write the identity here */
            double v = p->reduce_op == SP_OP_MEAN ? NAN : 0.0;
            size_t es = sp_dtype_size(a->out[0]->dtype);
            unsigned char pat[8];
            sp_store_f64(a->out[0]->dtype, pat, v);
            st = cu_fill_bytes(P->out, P->M, (int)es, pat);
        } else if (P->M > 0) {
            st = fu_launch(ent->row, cu_blocks(P->M), CU_THREADS, P);
        }
    } else if (!st) {
        long long blocks = P->M * P->nchunks;
        size_t acc = 8;
        P->part = cuda_tmp_alloc((size_t)blocks * acc);
        if (!P->part) st = sp_last_status();
        if (!st && blocks > 0x7fffffffLL)
            st = sp_error(SP_ERR_UNSUPPORTED, "fused_elementwise: %lld reduction blocks", blocks);
        if (!st) st = fu_launch(ent->chunk, blocks, 256, P);
        if (!st) st = fu_launch(ent->fin, cu_blocks(P->M), CU_THREADS, P);
        cuda_tmp_free(P->part);
    }
    free(P);
    sp_fused_free(p);
    return st;
}
