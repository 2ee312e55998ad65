/*
 * copy.c -- moving elements between layouts and dtypes: contiguous, cast,
 * copy_into (with broadcasting) and fill.
 *
 * Everything goes through one strided copy engine.  A request is first put
 * in a canonical form: the source is broadcast to the destination's shape
 * (stride 0 on broadcast axes), strides turn into bytes, and adjacent axes
 * that are contiguous with each other in BOTH tensors are merged, so a
 * C-order copy of any contiguous tensor is one axis however many it had.
 * The element space [0, numel) is then cut into chunks for sp_parallel_for;
 * each chunk walks its multi-index and hands runs along the innermost axis
 * to a conversion loop.
 *
 * There is one conversion loop per (source dtype, destination dtype) pair,
 * 81 in all, stamped out by a macro around one always-inline element
 * conversion whose dtype switches fold away at compile time.  The rules are
 * numpy's astype: same dtype is a byte copy (so int64 stays exact); integer
 * to integer goes through int64 and wraps; int64 to float32 rounds once
 * ((float)x, not via double); float64 to float16 rounds once; float to
 * integer truncates toward zero, and NaN, infinities and values outside
 * int64 become 0 (sp_f64_to_i64), never undefined behaviour; anything to
 * bool is "nonzero" (NaN is true).
 *
 * Parallel copies split the element range, not the axes, so the result is
 * the same for any thread count.  A destination with a stride-0 axis (a
 * broadcast view written into) is copied on one thread: several source
 * elements land on one address, and threads must not race on it.
 */
#include <stdlib.h>

#include "core/device.h"
#include "core/tensor_util.h"

/* ---- element conversion ---------------------------------------------------- */

/* float64 -> float16 with one rounding (numpy's npy_double_to_half), so a
 * double just above a half-way point between halves is not first rounded
 * to float32 onto the half-way point and then rounded to even. */
static sp_f16 copy_f64_to_f16(double v) {
    uint64_t u;
    memcpy(&u, &v, 8);
    uint16_t sign = (uint16_t)((u >> 48) & 0x8000u);
    uint64_t a = u & 0x7fffffffffffffffull;
    if (a > 0x7ff0000000000000ull) return (sp_f16)(sign | 0x7e00u); /* NaN */
    if (a >= 0x40effe0000000000ull) return (sp_f16)(sign | 0x7c00u); /* >= 65520: inf */
    int e = (int)(a >> 52);                                         /* biased, 1023 */
    uint64_t m = (a & 0xfffffffffffffull) | (1ull << 52);
    if (e < 1023 - 25) return (sp_f16)sign; /* below half the smallest subnormal */
    /* Target mantissa bits: normals keep 10 (shift 42), subnormals fewer. */
    int shift = e >= 1023 - 14 ? 42 : 42 + (1023 - 14 - e);
    uint64_t r = m >> shift, rem = m & ((1ull << shift) - 1), half = 1ull << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) r++;
    if (e >= 1023 - 14) {
        /* r holds 1.mantissa (11 bits, maybe carried to 12). */
        uint64_t he = (uint64_t)(e - 1023 + 15);
        return (sp_f16)(sign | ((he << 10) + (r - (1u << 10))));
    }
    return (sp_f16)(sign | r); /* a carry into bit 10 makes the smallest normal */
}

/* Local copies of the dtype queries, inline so that with constant dtypes
 * (every COPY_RUN instance) they fold away; the library versions are calls. */
static inline int copy_intlike(sp_dtype d) {
    return d == SP_I8 || d == SP_U8 || d == SP_I32 || d == SP_I64 || d == SP_BOOL;
}

static inline size_t copy_size(sp_dtype d) {
    switch (d) {
    case SP_F64:
    case SP_I64: return 8;
    case SP_F32:
    case SP_I32: return 4;
    case SP_F16:
    case SP_BF16: return 2;
    default: return 1;
    }
}

static inline __attribute__((always_inline)) void copy_elem(sp_dtype sd, sp_dtype dd,
                                                            const void *s, void *d) {
    if (sd == dd) {
        memcpy(d, s, copy_size(sd));
    } else if (copy_intlike(sd) && copy_intlike(dd)) {
        sp_store_i64(dd, d, sp_load_i64(sd, s));
    } else if (sd == SP_I64 && dd == SP_F32) {
        *(float *)d = (float)*(const int64_t *)s;
    } else if (sd == SP_I64 && dd == SP_BF16) {
        *(sp_bf16 *)d = sp_f32_to_bf16((float)*(const int64_t *)s);
    } else if (dd == SP_F16 && (sd == SP_F64 || sd == SP_I64)) {
        *(sp_f16 *)d = copy_f64_to_f16(sp_load_f64(sd, s));
    } else if (dd == SP_F32 && sd != SP_F64) {
        /* Every other source is exact in float; skip the trip through double. */
        *(float *)d = (float)sp_load_f64(sd, s);
    } else {
        sp_store_f64(dd, d, sp_load_f64(sd, s));
    }
}

/* n elements from s (stride ss bytes) to d (stride ds bytes). */
typedef void (*copy_run_fn)(const char *s, int64_t ss, char *d, int64_t ds, int64_t n);

#define COPY_RUN(S, D)                                                                     \
    static void copy_run_##S##_##D(const char *restrict s, int64_t ss, char *restrict d,   \
                                   int64_t ds, int64_t n) {                                \
        if (ss == (int64_t)copy_size(SP_##S) && ds == (int64_t)copy_size(SP_##D)) { \
            /* Unit strides: a loop the compiler can vectorize. */                         \
            for (int64_t i = 0; i < n; i++)                                                \
                copy_elem(SP_##S, SP_##D, s + i * (int64_t)copy_size(SP_##S),          \
                          d + i * (int64_t)copy_size(SP_##D));                         \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) copy_elem(SP_##S, SP_##D, s + i * ss, d + i * ds); \
        }                                                                                  \
    }
#define COPY_ROW(S)                                                                        \
    COPY_RUN(S, F32) COPY_RUN(S, F64) COPY_RUN(S, F16) COPY_RUN(S, BF16) COPY_RUN(S, I8)   \
    COPY_RUN(S, U8) COPY_RUN(S, I32) COPY_RUN(S, I64) COPY_RUN(S, BOOL)
COPY_ROW(F32)
COPY_ROW(F64)
COPY_ROW(F16)
COPY_ROW(BF16)
COPY_ROW(I8)
COPY_ROW(U8)
COPY_ROW(I32)
COPY_ROW(I64)
COPY_ROW(BOOL)

#define COPY_ENTRY(S)                                                                      \
    {copy_run_##S##_F32, copy_run_##S##_F64, copy_run_##S##_F16, copy_run_##S##_BF16,       \
     copy_run_##S##_I8,  copy_run_##S##_U8,  copy_run_##S##_I32, copy_run_##S##_I64,        \
     copy_run_##S##_BOOL}
static const copy_run_fn copy_runs[SP_DTYPE_COUNT][SP_DTYPE_COUNT] = {
    COPY_ENTRY(F32), COPY_ENTRY(F64), COPY_ENTRY(F16), COPY_ENTRY(BF16), COPY_ENTRY(I8),
    COPY_ENTRY(U8),  COPY_ENTRY(I32), COPY_ENTRY(I64), COPY_ENTRY(BOOL),
};

/* ---- the strided engine ------------------------------------------------------ */

typedef struct copy_plan {
    int ndim;                   /* after merging; >= 1 */
    int64_t shape[SP_MAX_DIMS];
    int64_t ds[SP_MAX_DIMS];    /* destination strides, bytes */
    int64_t ss[SP_MAX_DIMS];    /* source strides, bytes */
    char *dst;
    const char *src;
    copy_run_fn run;
    int same_contig;            /* one axis, same dtype, unit strides: memcpy */
    size_t isz;
} copy_plan;

/* Merges axis i into axis i+1 wherever that is a no-op for both layouts,
 * and drops size-1 axes. */
static void copy_plan_merge(copy_plan *p) {
    int n = 0;
    for (int i = 0; i < p->ndim; i++) {
        if (p->shape[i] == 1) continue;
        p->shape[n] = p->shape[i];
        p->ds[n] = p->ds[i];
        p->ss[n] = p->ss[i];
        n++;
    }
    if (n == 0) {
        p->shape[0] = 1;
        p->ds[0] = p->ss[0] = 0;
        n = 1;
    }
    int m = 0;
    for (int i = 1; i < n; i++) {
        if (p->ds[m] == p->ds[i] * p->shape[i] && p->ss[m] == p->ss[i] * p->shape[i]) {
            p->shape[m] *= p->shape[i];
            p->ds[m] = p->ds[i];
            p->ss[m] = p->ss[i];
        } else {
            m++;
            p->shape[m] = p->shape[i];
            p->ds[m] = p->ds[i];
            p->ss[m] = p->ss[i];
        }
    }
    p->ndim = m + 1;
}

static void copy_range(void *ctx, int64_t begin, int64_t end) {
    const copy_plan *p = ctx;
    int nd = p->ndim;
    int64_t inner = p->shape[nd - 1];
    if (p->same_contig) {
        memcpy(p->dst + begin * (int64_t)p->isz, p->src + begin * (int64_t)p->isz,
               (size_t)(end - begin) * p->isz);
        return;
    }
    int64_t idx[SP_MAX_DIMS];
    int64_t rem = begin;
    const char *s = p->src;
    char *d = p->dst;
    for (int i = nd - 1; i >= 0; i--) {
        idx[i] = rem % p->shape[i];
        rem /= p->shape[i];
        s += idx[i] * p->ss[i];
        d += idx[i] * p->ds[i];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t n = inner - idx[nd - 1];
        if (n > end - pos) n = end - pos;
        p->run(s, p->ss[nd - 1], d, p->ds[nd - 1], n);
        pos += n;
        if (pos >= end) break;
        /* Step the multi-index past the run just done: the innermost axis
         * wraps to 0 and the carry moves outward. */
        s += (n - 1) * p->ss[nd - 1];
        d += (n - 1) * p->ds[nd - 1];
        int i = nd - 1;
        idx[i] += n - 1;
        for (;;) {
            if (++idx[i] < p->shape[i]) {
                s += p->ss[i];
                d += p->ds[i];
                break;
            }
            s -= (p->shape[i] - 1) * p->ss[i];
            d -= (p->shape[i] - 1) * p->ds[i];
            idx[i] = 0;
            i--;
        }
    }
}

/* A transposed source: unit stride on the second-to-last axis but not on
 * the last.  Walking the destination in order would touch a new source
 * cache line per element, so the last two axes go in COPY_TILE-square
 * tiles, each read down the source's contiguous axis.  The tile is small
 * (8) because power-of-two matrix strides map a tile's lines to one L1 set:
 * 8 lines fit its 8 ways, 16 or 32 thrash (measured on 2048x2048 float32:
 * 8 is 2-3x faster than 32 and than no tiling).  Task b is one band of
 * COPY_TILE rows of one matrix. */
#define COPY_TILE 8

static void copy_range_tiled(void *ctx, int64_t begin, int64_t end) {
    const copy_plan *p = ctx;
    int nd = p->ndim;
    int64_t rows = p->shape[nd - 2], cols = p->shape[nd - 1];
    int64_t bands = (rows + COPY_TILE - 1) / COPY_TILE;
    for (int64_t b = begin; b < end; b++) {
        int64_t outer = b / bands, r0 = (b % bands) * COPY_TILE;
        int64_t nr = rows - r0 < COPY_TILE ? rows - r0 : COPY_TILE;
        const char *s = p->src + r0 * p->ss[nd - 2];
        char *d = p->dst + r0 * p->ds[nd - 2];
        for (int i = nd - 3; i >= 0; i--) { /* the matrix `outer` */
            int64_t k = outer % p->shape[i];
            outer /= p->shape[i];
            s += k * p->ss[i];
            d += k * p->ds[i];
        }
        for (int64_t c0 = 0; c0 < cols; c0 += COPY_TILE) {
            int64_t nc = cols - c0 < COPY_TILE ? cols - c0 : COPY_TILE;
            for (int64_t c = c0; c < c0 + nc; c++)
                p->run(s + c * p->ss[nd - 1], p->ss[nd - 2], d + c * p->ds[nd - 1], p->ds[nd - 2],
                       nr);
        }
    }
}

/* Elements per chunk: big enough that a chunk costs far more than claiming it. */
#define COPY_GRAIN 32768

/* Copies src (already broadcast: sstr in elements, 0 on broadcast axes) into
 * dst's layout.  Cannot fail. */
static void copy_strided(int ndim, const int64_t *shape, char *dst, sp_dtype dd,
                         const int64_t *dstr, const char *src, sp_dtype sd,
                         const int64_t *sstr) {
    copy_plan p;
    int64_t numel = 1;
    int dst_broadcast = 0;
    p.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return; /* before multiplying: see sp_tensor_numel */
    for (int i = 0; i < ndim; i++) {
        p.shape[i] = shape[i];
        p.ds[i] = dstr[i] * (int64_t)sp_dtype_size(dd);
        p.ss[i] = sstr[i] * (int64_t)sp_dtype_size(sd);
        numel *= shape[i];
        if (dstr[i] == 0 && shape[i] > 1) dst_broadcast = 1;
    }
    copy_plan_merge(&p);
    p.dst = dst;
    p.src = src;
    p.run = copy_runs[sd][dd];
    p.isz = sp_dtype_size(sd);
    p.same_contig = sd == dd && p.ndim == 1 && p.ds[0] == (int64_t)p.isz &&
                    p.ss[0] == (int64_t)p.isz;
    int nd = p.ndim;
    if (dst_broadcast) {
        copy_range(&p, 0, numel);
    } else if (nd >= 2 && p.ss[nd - 2] == (int64_t)p.isz && p.ss[nd - 1] != (int64_t)p.isz &&
               p.shape[nd - 1] >= COPY_TILE && p.shape[nd - 2] >= COPY_TILE) {
        int64_t blocks = numel / p.shape[nd - 1] / p.shape[nd - 2] *
                         ((p.shape[nd - 2] + COPY_TILE - 1) / COPY_TILE);
        int64_t grain = COPY_GRAIN / (COPY_TILE * p.shape[nd - 1]);
        sp_parallel_for(blocks, grain > 0 ? grain : 1, copy_range_tiled, &p);
    } else {
        sp_parallel_for(numel, COPY_GRAIN, copy_range, &p);
    }
}

/* ---- the public copies -------------------------------------------------------- */

static sp_status copy_check_cpu(const char *what, const sp_tensor *t) {
    if (sp_tensor_is_meta(t)) return sp_meta_value_error(what, t);
    if (t->buf->device.type != SP_DEVICE_CPU)
        return sp_error(SP_ERR_UNSUPPORTED, "%s: tensors on %s are not supported here (CPU only)",
                        what, sp_device_type_name(t->buf->device.type));
    return SP_OK;
}

/* Byte range [lo, hi) of buf that t can reach (empty when numel is 0). */
static void copy_extent(const sp_tensor *t, int64_t *lo, int64_t *hi) {
    int64_t l = t->offset, h = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] == 0) {
            *lo = *hi = 0;
            return;
        }
        int64_t span = (t->shape[i] - 1) * t->strides[i];
        if (span < 0)
            l += span;
        else
            h += span;
    }
    int64_t isz = (int64_t)sp_dtype_size(t->dtype);
    *lo = l * isz;
    *hi = (h + 1) * isz;
}

sp_status sp_tensor_copy_into(sp_tensor *dst, const sp_tensor *src) {
    if (!dst || !src) return sp_error(SP_ERR_ARG, "copy_into: NULL tensor");
    sp_status st;
    if ((st = copy_check_cpu("copy_into", dst)) || (st = copy_check_cpu("copy_into", src)))
        return st;
    char a[160], b[160];
    if (src->ndim > dst->ndim)
        return sp_error(SP_ERR_SHAPE, "copy_into: cannot broadcast source shape %s to %s",
                        sp_shape_str(src->ndim, src->shape, a, sizeof a),
                        sp_shape_str(dst->ndim, dst->shape, b, sizeof b));
    int64_t sstr[SP_MAX_DIMS];
    int lead = dst->ndim - src->ndim;
    for (int i = 0; i < dst->ndim; i++) {
        int j = i - lead;
        if (j < 0) {
            sstr[i] = 0;
        } else if (src->shape[j] == dst->shape[i]) {
            sstr[i] = src->strides[j];
        } else if (src->shape[j] == 1) {
            sstr[i] = 0;
        } else {
            return sp_error(SP_ERR_SHAPE,
                            "copy_into: cannot broadcast source shape %s to %s (axis %d)",
                            sp_shape_str(src->ndim, src->shape, a, sizeof a),
                            sp_shape_str(dst->ndim, dst->shape, b, sizeof b), i);
        }
    }
    if (sp_tensor_numel(dst) == 0) return SP_OK;
    /* Overlapping memory would make the result depend on the copy order, and
     * memcpy on it is undefined: copy the source aside first. */
    if (dst->buf == src->buf || dst->buf->data == src->buf->data) {
        int64_t dl, dh, sl, sh;
        copy_extent(dst, &dl, &dh);
        copy_extent(src, &sl, &sh);
        if (dl < sh && sl < dh) {
            sp_tensor *tmp;
            if ((st = sp_tensor_cast((sp_tensor *)src, src->dtype, &tmp))) return st;
            st = sp_tensor_copy_into(dst, tmp);
            sp_tensor_release(tmp);
            return st;
        }
    }
    copy_strided(dst->ndim, dst->shape, sp_tensor_data(dst), dst->dtype, dst->strides,
                 sp_tensor_data(src), src->dtype, sstr);
    return SP_OK;
}

sp_status sp_tensor_cast(sp_tensor *t, sp_dtype dtype, sp_tensor **out) {
    if (out) *out = NULL;
    if (!t || !out) return sp_error(SP_ERR_ARG, "cast: NULL argument");
    if ((unsigned)dtype >= SP_DTYPE_COUNT)
        return sp_error(SP_ERR_DTYPE, "cast: invalid dtype %d", (int)dtype);
    sp_status st = copy_check_cpu("cast", t);
    if (st) return st;
    sp_tensor *r = sp_tensor_new(dtype, t->ndim, t->shape, t->buf->device);
    if (!r) return sp_last_status();
    int64_t n = sp_tensor_numel(t);
    if (n > 0)
        copy_strided(t->ndim, t->shape, sp_tensor_data(r), dtype, r->strides, sp_tensor_data(t),
                     t->dtype, t->strides);
    *out = r;
    return SP_OK;
}

sp_status sp_tensor_contiguous(sp_tensor *t, sp_tensor **out) {
    if (out) *out = NULL;
    if (!t || !out) return sp_error(SP_ERR_ARG, "contiguous: NULL argument");
    if (sp_tensor_is_contiguous(t)) {
        sp_tensor_retain(t);
        *out = t;
        return SP_OK;
    }
    return sp_tensor_cast(t, t->dtype, out);
}

sp_status sp_tensor_fill(sp_tensor *t, double v) {
    if (!t) return sp_error(SP_ERR_ARG, "fill: NULL tensor");
    sp_status st = copy_check_cpu("fill", t);
    if (st) return st;
    char one[8];
    sp_store_f64(t->dtype, one, v);
    int64_t zero[SP_MAX_DIMS] = {0};
    copy_strided(t->ndim, t->shape, sp_tensor_data(t), t->dtype, t->strides, one, t->dtype, zero);
    return SP_OK;
}
