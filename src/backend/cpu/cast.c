/*
 * cast.c -- dtype conversion and the strided iteration engine of the CPU
 * elementwise kernels, and cpu_cast, the simplest kernel built on both.
 *
 * Conversion.  Every element conversion goes through one of three
 * "canonical" values: a float (float32, float16, bfloat16 sources), a double
 * (float64) or an int64 (integers and bool).  The store side then has one
 * small function per (destination, canonical type) pair, so the 81 dtype
 * pairs come from 27 rules written once.  The rules are numpy's astype, made
 * total: float->int truncates toward zero and NaN, infinities and values
 * outside int64 give 0 before wrapping to the width (sp_f64_to_i64); ints
 * wrap; bool is "nonzero" (NaN included).  Conversions to float16/bfloat16
 * from a double or a wide int round once from the exact value: the double is
 * first narrowed to float32 with round-to-odd, which float32's 13 (16) spare
 * mantissa bits make exact for the second, nearest-even rounding.
 *
 * Iteration.  cpu_ew_run aligns each input to the output (broadcast dims get
 * stride 0), drops size-1 dims and merges dims that are contiguous in every
 * operand at once, so a contiguous or plainly broadcast op becomes one or two
 * dims whatever its rank.  The flat output range is split over the thread
 * pool; each chunk is walked as runs along the innermost merged dim, with the
 * pointer of every operand advanced incrementally (an odometer), so the cost
 * per run is a few adds, not a multiply per dim.  Operands whose dtype is not
 * the loop's compute dtype are converted through stack buffers of
 * CPU_EW_CHUNK elements; a broadcast (stride 0) operand is converted once per
 * block, not once per element.
 */
#include "backend/cpu/elementwise.h"

/* ---- element conversion ---- */

/* Narrows d to float32 rounding to odd: truncate toward zero and set the
 * last bit when anything was dropped.  A later rounding to a format with at
 * least two fewer mantissa bits is then correctly rounded. */
static inline float cvt_f64_to_f32_odd(double d) {
    float f = (float)d;
    double back = (double)f;
    if (back != d) { /* inexact, or NaN */
        uint32_t u;
        memcpy(&u, &f, 4);
        if (fabs(back) > fabs(d)) u -= 1; /* rounded away from zero: step back */
        u |= 1u;
        memcpy(&f, &u, 4);
    }
    return f;
}

static inline int64_t cvt_ftoi(double v) { return sp_f64_to_i64(v); }

/* Destination rules, one per canonical source type. */
#define CVT_DST(SUF, DT, FROM_F, FROM_D, FROM_I)                                                \
    static inline DT cvt_##SUF##_f(float v) { return (DT)(FROM_F); }                          \
    static inline DT cvt_##SUF##_d(double v) { return (DT)(FROM_D); }                         \
    static inline DT cvt_##SUF##_i(int64_t v) { return (DT)(FROM_I); }

CVT_DST(f32, float, v, (float)v, (float)v)
CVT_DST(f64, double, (double)v, v, (double)v)
CVT_DST(f16, sp_f16, sp_f32_to_f16(v), sp_f32_to_f16(cvt_f64_to_f32_odd(v)),
        sp_f32_to_f16(cvt_f64_to_f32_odd((double)v)))
CVT_DST(bf16, sp_bf16, sp_f32_to_bf16(v), sp_f32_to_bf16(cvt_f64_to_f32_odd(v)),
        sp_f32_to_bf16(cvt_f64_to_f32_odd((double)v)))
CVT_DST(i8, int8_t, (uint8_t)(uint64_t)cvt_ftoi(v), (uint8_t)(uint64_t)cvt_ftoi(v),
        (uint8_t)(uint64_t)v)
CVT_DST(u8, uint8_t, (uint8_t)(uint64_t)cvt_ftoi(v), (uint8_t)(uint64_t)cvt_ftoi(v),
        (uint8_t)(uint64_t)v)
CVT_DST(i32, int32_t, (uint32_t)(uint64_t)cvt_ftoi(v), (uint32_t)(uint64_t)cvt_ftoi(v),
        (uint32_t)(uint64_t)v)
CVT_DST(i64, int64_t, cvt_ftoi(v), cvt_ftoi(v), v)
CVT_DST(bool, uint8_t, v != 0, v != 0, v != 0)

/* Source loads: each yields its canonical type, so _Generic picks the rule. */
#define LD_f32(x) (x)
#define LD_f64(x) (x)
#define LD_f16(x) sp_f16_to_f32(x)
#define LD_bf16(x) sp_bf16_to_f32(x)
#define LD_i8(x) ((int64_t)(x))
#define LD_u8(x) ((int64_t)(x))
#define LD_i32(x) ((int64_t)(x))
#define LD_i64(x) ((int64_t)(x))
#define LD_bool(x) ((int64_t)((x) != 0))

#define CVT_APPLY(DSUF, v)                                                                    \
    _Generic((v), float: cvt_##DSUF##_f, double: cvt_##DSUF##_d, int64_t: cvt_##DSUF##_i)(v)

#define CVT_PAIR(DSUF, DT, SSUF, ST)                                                          \
    static void cvt_##DSUF##_from_##SSUF(char *dst, int64_t ds, const char *src, int64_t ss,  \
                                         int64_t n) {                                        \
        if (ds == (int64_t)sizeof(DT) && ss == (int64_t)sizeof(ST)) {                        \
            DT *d = (DT *)dst;                                                               \
            const ST *s = (const ST *)src;                                                   \
            for (int64_t k = 0; k < n; k++) d[k] = CVT_APPLY(DSUF, LD_##SSUF(s[k]));         \
        } else {                                                                             \
            for (int64_t k = 0; k < n; k++, dst += ds, src += ss)                            \
                *(DT *)dst = CVT_APPLY(DSUF, LD_##SSUF(*(const ST *)src));                   \
        }                                                                                    \
    }

/* X-macro over the nine dtypes, in sp_dtype order. */
#define CVT_FOR_SRC(X, DSUF, DT)                                                              \
    X(DSUF, DT, f32, float)                                                                  \
    X(DSUF, DT, f64, double)                                                                 \
    X(DSUF, DT, f16, sp_f16)                                                                 \
    X(DSUF, DT, bf16, sp_bf16)                                                               \
    X(DSUF, DT, i8, int8_t)                                                                  \
    X(DSUF, DT, u8, uint8_t)                                                                 \
    X(DSUF, DT, i32, int32_t)                                                                \
    X(DSUF, DT, i64, int64_t)                                                                \
    X(DSUF, DT, bool, uint8_t)

#define CVT_FOR_DST(X)                                                                        \
    CVT_FOR_SRC(X, f32, float)                                                               \
    CVT_FOR_SRC(X, f64, double)                                                              \
    CVT_FOR_SRC(X, f16, sp_f16)                                                              \
    CVT_FOR_SRC(X, bf16, sp_bf16)                                                            \
    CVT_FOR_SRC(X, i8, int8_t)                                                               \
    CVT_FOR_SRC(X, u8, uint8_t)                                                              \
    CVT_FOR_SRC(X, i32, int32_t)                                                             \
    CVT_FOR_SRC(X, i64, int64_t)                                                             \
    CVT_FOR_SRC(X, bool, uint8_t)

CVT_FOR_DST(CVT_PAIR)

typedef void (*cvt_fn)(char *dst, int64_t ds, const char *src, int64_t ss, int64_t n);

#define CVT_ENTRY(DSUF, DT, SSUF, ST) cvt_##DSUF##_from_##SSUF,
static const cvt_fn cvt_table[SP_DTYPE_COUNT * SP_DTYPE_COUNT] = {CVT_FOR_DST(CVT_ENTRY)};

/* Same dtype: a copy by element size. */
static void cvt_copy(size_t es, char *dst, int64_t ds, const char *src, int64_t ss, int64_t n) {
    if (ds == (int64_t)es && ss == (int64_t)es) {
        memcpy(dst, src, (size_t)n * es);
        return;
    }
    switch (es) {
    case 1:
        for (int64_t k = 0; k < n; k++, dst += ds, src += ss) *dst = *src;
        break;
    case 2:
        for (int64_t k = 0; k < n; k++, dst += ds, src += ss) memcpy(dst, src, 2);
        break;
    case 4:
        for (int64_t k = 0; k < n; k++, dst += ds, src += ss) memcpy(dst, src, 4);
        break;
    default:
        for (int64_t k = 0; k < n; k++, dst += ds, src += ss) memcpy(dst, src, 8);
        break;
    }
}

void cpu_ew_convert(sp_dtype dd, void *dst, int64_t ds, sp_dtype sd, const void *src, int64_t ss,
                    int64_t n) {
    if (n <= 0) return;
    /* bool and uint8 share a layout, but uint8 -> bool must normalize to 0/1. */
    if (dd == sd) {
        cvt_copy(sp_dtype_size(dd), dst, ds, src, ss, n);
        return;
    }
    cvt_table[(int)dd * SP_DTYPE_COUNT + (int)sd]((char *)dst, ds, (const char *)src, ss, n);
}

/* ---- the iteration engine ---- */

typedef struct ew_plan {
    const cpu_ew_spec *spec;
    int nops; /* 1 + nin */
    int ndim; /* after collapsing, >= 1 */
    int64_t shape[SP_MAX_DIMS];
    int64_t st[CPU_EW_MAX_IN + 1][SP_MAX_DIMS]; /* bytes */
    char *base[CPU_EW_MAX_IN + 1];
    sp_dtype dt[CPU_EW_MAX_IN + 1];   /* actual dtypes */
    unsigned conv;                    /* bit k: operand k needs conversion */
} ew_plan;

/* One run of n elements starting at ptr[], strides st[]: straight to the
 * loop, or through the conversion buffers. */
static void ew_do_run(const ew_plan *pl, char *const *ptr, const int64_t *st, int64_t n) {
    const cpu_ew_spec *sp = pl->spec;
    if (!pl->conv) {
        sp->loop(ptr, st, n, sp->ctx);
        return;
    }
    _Alignas(64) unsigned char buf[CPU_EW_MAX_IN + 1][CPU_EW_CHUNK * 8];
    char *p2[CPU_EW_MAX_IN + 1];
    int64_t s2[CPU_EW_MAX_IN + 1];
    for (int64_t off = 0; off < n; off += CPU_EW_CHUNK) {
        int64_t m = n - off < CPU_EW_CHUNK ? n - off : CPU_EW_CHUNK;
        for (int k = 0; k < pl->nops; k++) {
            char *src = ptr[k] + off * st[k];
            if (!(pl->conv & (1u << k))) {
                p2[k] = src;
                s2[k] = st[k];
                continue;
            }
            int64_t cs = (int64_t)sp_dtype_size(sp->ctype[k]);
            p2[k] = (char *)buf[k];
            if (k == 0) {
                s2[k] = cs;
            } else if (st[k] == 0) { /* broadcast: convert the one element */
                cpu_ew_convert(sp->ctype[k], buf[k], cs, pl->dt[k], src, 0, 1);
                s2[k] = 0;
            } else {
                cpu_ew_convert(sp->ctype[k], buf[k], cs, pl->dt[k], src, st[k], m);
                s2[k] = cs;
            }
        }
        sp->loop(p2, s2, m, sp->ctx);
        if (pl->conv & 1u)
            cpu_ew_convert(pl->dt[0], ptr[0] + off * st[0], st[0], sp->ctype[0], buf[0],
                           (int64_t)sp_dtype_size(sp->ctype[0]), m);
    }
}

/* Walks flat output indices [begin, end) as runs along the last dim. */
static void ew_worker(void *ctx, int64_t begin, int64_t end) {
    const ew_plan *pl = ctx;
    const int nd = pl->ndim, no = pl->nops, last = nd - 1;
    int64_t idx[SP_MAX_DIMS];
    char *ptr[CPU_EW_MAX_IN + 1];
    int64_t inner[CPU_EW_MAX_IN + 1];
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % pl->shape[d];
        rem /= pl->shape[d];
    }
    for (int k = 0; k < no; k++) {
        ptr[k] = pl->base[k];
        for (int d = 0; d < nd; d++) ptr[k] += idx[d] * pl->st[k][d];
        inner[k] = pl->st[k][last];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t m = pl->shape[last] - idx[last];
        if (m > end - pos) m = end - pos;
        ew_do_run(pl, ptr, inner, m);
        pos += m;
        if (pos >= end) break;
        /* odometer: step the last dim by m, carry into outer dims */
        idx[last] += m;
        for (int k = 0; k < no; k++) ptr[k] += m * pl->st[k][last];
        for (int d = last; d > 0 && idx[d] == pl->shape[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int k = 0; k < no; k++)
                ptr[k] += pl->st[k][d - 1] - pl->shape[d] * pl->st[k][d];
        }
    }
}

sp_status cpu_ew_run(const cpu_ew_spec *spec, sp_tensor *out, sp_tensor *const *in) {
    ew_plan pl;
    const int nd = out->ndim, no = spec->nin + 1;
    int64_t st[CPU_EW_MAX_IN + 1][SP_MAX_DIMS];
    int64_t numel = sp_tensor_numel(out);
    if (numel == 0) return SP_OK;

    pl.spec = spec;
    pl.nops = no;
    pl.conv = 0;
    for (int k = 0; k < no; k++) {
        const sp_tensor *t = k == 0 ? out : in[k - 1];
        size_t es = sp_dtype_size(t->dtype);
        if (k == 0)
            memcpy(st[0], out->strides, sizeof(int64_t) * (size_t)nd);
        else
            cpu_broadcast_strides(t, nd, out->shape, st[k]);
        for (int d = 0; d < nd; d++) st[k][d] *= (int64_t)es;
        pl.base[k] = sp_tensor_data(t);
        pl.dt[k] = t->dtype;
        if (t->dtype != spec->ctype[k]) pl.conv |= 1u << k;
    }

    /* Drop size-1 dims; merge a dim into the previous kept one when every
     * operand steps across the pair as across one dim. */
    int n = 0;
    for (int d = 0; d < nd; d++) {
        if (out->shape[d] == 1) continue;
        int merge = n > 0;
        for (int k = 0; k < no && merge; k++)
            if (pl.st[k][n - 1] != st[k][d] * out->shape[d]) merge = 0;
        if (merge) {
            pl.shape[n - 1] *= out->shape[d];
            for (int k = 0; k < no; k++) pl.st[k][n - 1] = st[k][d];
        } else {
            pl.shape[n] = out->shape[d];
            for (int k = 0; k < no; k++) pl.st[k][n] = st[k][d];
            n++;
        }
    }
    if (n == 0) { /* a single element */
        pl.shape[0] = 1;
        for (int k = 0; k < no; k++) pl.st[k][0] = (int64_t)sp_dtype_size(pl.dt[k]);
        n = 1;
    }
    pl.ndim = n;
    sp_parallel_for(numel, spec->grain, ew_worker, &pl);
    return SP_OK;
}

/* ---- cast ---- */

static void cast_loop(char *const *p, const int64_t *s, int64_t n, const void *ctx) {
    const cpu_ew_cast_ctx *c = ctx;
    cpu_ew_convert(c->dd, p[0], s[0], c->sd, p[1], s[1], n);
}

sp_status cpu_ew_cast_spec(sp_dtype out, sp_dtype x, cpu_ew_spec *spec, cpu_ew_ctx *ctx) {
    if ((int)out < 0 || out >= SP_DTYPE_COUNT || (int)x < 0 || x >= SP_DTYPE_COUNT)
        return sp_error(SP_ERR_DTYPE, "cast: bad dtype");
    ctx->cast = (cpu_ew_cast_ctx){out, x};
    *spec = (cpu_ew_spec){"cast", 1, {out, x}, cast_loop, &ctx->cast, CPU_EW_GRAIN_CHEAP};
    return SP_OK;
}

sp_status cpu_cast(const sp_kernel_args *a) {
    cpu_ew_spec spec;
    cpu_ew_ctx ctx;
    sp_status st = cpu_ew_cast_spec(a->out[0]->dtype, a->in[0]->dtype, &spec, &ctx);
    return st ? st : cpu_ew_run(&spec, a->out[0], a->in);
}

sp_status cpu_ew_spec_of(int op, int nin, const sp_dtype *in, sp_dtype out,
                         const sp_attrs *attrs, cpu_ew_spec *spec, cpu_ew_ctx *ctx) {
    if (op < 0 || op >= SP_OP_COUNT || !(sp_op_defs[op].flags & SP_OPF_ELEMWISE) || nin < 1)
        return sp_error(SP_ERR_UNSUPPORTED, "%s is not an elementwise primitive",
                        sp_op_name(op) ? sp_op_name(op) : "?");
    if (op == SP_OP_CAST) return cpu_ew_cast_spec(out, in[0], spec, ctx);
    if (nin == 1) return cpu_ew_unary_spec(op, in[0], attrs, spec, ctx);
    return cpu_ew_binary_spec(op, nin, in, out, spec);
}
