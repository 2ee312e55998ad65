/*
 * sort.c -- CPU kernels of sort and topk.
 *
 * Both work row by row along one axis of a strided input; rows are spread
 * over the thread pool and each row is handled by one thread, so results
 * never depend on the thread count.
 *
 * The one idea: every row element becomes a pair (key, index) and pairs are
 * ordered by a *total* order -- key first, then index -- so stability needs
 * no special algorithm: any correct sort of the pairs is the stable sort,
 * and topk's "ties broken by lower index first" is the same order.  Keys are
 * exact images of the values: float for float32/float16/bfloat16, double for
 * float64, int64 for the integer dtypes (int64 values above 2^53 would not
 * survive a trip through double).  NaN is the largest key (numpy and torch),
 * so it comes last ascending and first descending / for topk largest; NaNs
 * are equal among themselves and keep their order.  -0.0 and 0.0 are equal.
 *
 *   sort:  axis [-1], descending [0]: a bottom-up merge sort of the pairs
 *          (insertion sort on runs of 16 first), O(n log n) always.
 *   topk:  k, axis [-1], largest [1]: a k-element heap whose root is the
 *          worst pair kept, O(n log k), then the k pairs are sorted; when k
 *          is more than a quarter of the row, a full sort is cheaper.
 *
 * Outputs are contiguous; values are copied as raw element bytes from the
 * input (NaN payloads and signed zeros survive), indices are int64 positions
 * along the axis.  Scratch is malloc'd per chunk of rows; an allocation
 * failure is reported as SP_ERR_NOMEM after the loop.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "backend/cpu/cpu.h"

typedef enum { KEY_F32, KEY_F64, KEY_I64 } cpu_key_kind;

typedef struct {
    const sp_tensor *x;
    sp_tensor *vals, *idx;
    int ax;
    int64_t len;     /* input row length */
    int64_t klen;    /* output row length (len for sort, k for topk) */
    int64_t inner;   /* product of the dims after ax */
    int desc;        /* sort: descending; topk: largest */
    int topk;
    cpu_key_kind kind;
    atomic_int nomem;
} cpu_sort_ctx;

/* Generates, for one key type T, the pair type, the total order, a merge
 * sort and the heap selection.  before(a, b): a comes first. */
#define CPU_SORT_IMPL(S, T, ISNAN)                                                           \
    typedef struct {                                                                         \
        T k;                                                                                 \
        int64_t i;                                                                           \
    } S##_pair;                                                                              \
                                                                                             \
    /* a < b with NaN the largest */                                                         \
    static inline int S##_lt(T a, T b) { return a < b || (ISNAN(b) && !ISNAN(a)); }          \
                                                                                             \
    static inline int S##_before(const S##_pair *a, const S##_pair *b, int desc) {           \
        if (desc ? S##_lt(b->k, a->k) : S##_lt(a->k, b->k)) return 1;                        \
        if (desc ? S##_lt(a->k, b->k) : S##_lt(b->k, a->k)) return 0;                        \
        return a->i < b->i;                                                                  \
    }                                                                                        \
                                                                                             \
    /* Sorts p[0..n) with tmp[0..n) as scratch. */                                           \
    static void S##_msort(S##_pair *p, S##_pair *tmp, int64_t n, int desc) {                 \
        const int64_t run = 16;                                                              \
        for (int64_t lo = 0; lo < n; lo += run) {                                            \
            int64_t hi = lo + run < n ? lo + run : n;                                        \
            for (int64_t i = lo + 1; i < hi; i++) {                                          \
                S##_pair v = p[i];                                                           \
                int64_t j = i;                                                               \
                for (; j > lo && S##_before(&v, &p[j - 1], desc); j--) p[j] = p[j - 1];      \
                p[j] = v;                                                                    \
            }                                                                                \
        }                                                                                    \
        S##_pair *src = p, *dst = tmp;                                                       \
        for (int64_t w = run; w < n; w *= 2) {                                               \
            for (int64_t lo = 0; lo < n; lo += 2 * w) {                                      \
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n; \
                int64_t a = lo, b = mid, o = lo;                                             \
                while (a < mid && b < hi)                                                    \
                    dst[o++] = S##_before(&src[b], &src[a], desc) ? src[b++] : src[a++];     \
                while (a < mid) dst[o++] = src[a++];                                         \
                while (b < hi) dst[o++] = src[b++];                                          \
            }                                                                                \
            S##_pair *t = src;                                                               \
            src = dst;                                                                       \
            dst = t;                                                                         \
        }                                                                                    \
        if (src != p) memcpy(p, src, (size_t)n * sizeof *p);                                 \
    }                                                                                        \
                                                                                             \
    /* Moves h[at] down a heap of n whose root is the pair that comes last. */               \
    static void S##_sift(S##_pair *h, int64_t n, int64_t at, int desc) {                     \
        S##_pair v = h[at];                                                                  \
        for (;;) {                                                                           \
            int64_t c = 2 * at + 1;                                                          \
            if (c >= n) break;                                                               \
            if (c + 1 < n && S##_before(&h[c], &h[c + 1], desc)) c++;                        \
            if (!S##_before(&v, &h[c], desc)) break;                                         \
            h[at] = h[c];                                                                    \
            at = c;                                                                          \
        }                                                                                    \
        h[at] = v;                                                                           \
    }                                                                                        \
                                                                                             \
    /* The first k of p[0..n) in order, into p[0..k); tmp holds n pairs. */                  \
    static void S##_select(S##_pair *p, S##_pair *tmp, int64_t n, int64_t k, int desc) {     \
        if (k == 0) return;                                                                  \
        if (k * 4 > n) {                                                                     \
            S##_msort(p, tmp, n, desc);                                                      \
            return;                                                                          \
        }                                                                                    \
        for (int64_t i = k / 2; i-- > 0;) S##_sift(p, k, i, desc);                           \
        for (int64_t i = k; i < n; i++) {                                                    \
            if (S##_before(&p[i], &p[0], desc)) {                                            \
                p[0] = p[i];                                                                 \
                S##_sift(p, k, 0, desc);                                                     \
            }                                                                                \
        }                                                                                    \
        S##_msort(p, tmp, k, desc);                                                          \
    }

#define CPU_ISNAN_F(v) ((v) != (v))
#define CPU_ISNAN_I(v) 0
CPU_SORT_IMPL(kf, float, CPU_ISNAN_F)
CPU_SORT_IMPL(kd, double, CPU_ISNAN_F)
CPU_SORT_IMPL(ki, int64_t, CPU_ISNAN_I)

/* Element offset (in elements, from element 0) of the start of row r, and
 * the output offset of that row. */
static int64_t cpu_row_offset(const sp_tensor *x, int ax, int64_t inner, int64_t r) {
    int64_t o = r / inner, j = r % inner, off = 0;
    for (int d = x->ndim - 1; d > ax; d--) {
        off += (j % x->shape[d]) * x->strides[d];
        j /= x->shape[d];
    }
    for (int d = ax - 1; d >= 0; d--) {
        off += (o % x->shape[d]) * x->strides[d];
        o /= x->shape[d];
    }
    return off;
}

static void cpu_sort_rows(void *ctx_, int64_t rb, int64_t re) {
    cpu_sort_ctx *c = ctx_;
    const sp_tensor *x = c->x;
    size_t esize = sp_dtype_size(x->dtype);
    size_t psize = c->kind == KEY_F32 ? sizeof(kf_pair) : c->kind == KEY_F64 ? sizeof(kd_pair)
                                                                             : sizeof(ki_pair);
    void *buf = malloc(2 * psize * (size_t)c->len);
    if (!buf) {
        atomic_store(&c->nomem, 1);
        return;
    }
    void *tmp = (char *)buf + psize * (size_t)c->len;
    const char *x0 = sp_tensor_data(x);
    int64_t xs = x->ndim ? x->strides[c->ax] : 0;
    char *v0 = sp_tensor_data(c->vals);
    int64_t *i0 = sp_tensor_data(c->idx);
    for (int64_t r = rb; r < re; r++) {
        const char *row = x0 + cpu_row_offset(x, c->ax, c->inner, r) * (int64_t)esize;
        int64_t obase = (r / c->inner) * c->klen * c->inner + r % c->inner;
        switch (c->kind) {
        case KEY_F32: {
            kf_pair *p = buf;
            for (int64_t i = 0; i < c->len; i++) {
                p[i].k = (float)sp_load_f64(x->dtype, row + i * xs * (int64_t)esize);
                p[i].i = i;
            }
            if (c->topk) kf_select(p, tmp, c->len, c->klen, c->desc);
            else kf_msort(p, tmp, c->len, c->desc);
            for (int64_t t = 0; t < c->klen; t++) i0[obase + t * c->inner] = p[t].i;
            break;
        }
        case KEY_F64: {
            kd_pair *p = buf;
            for (int64_t i = 0; i < c->len; i++) {
                memcpy(&p[i].k, row + i * xs * (int64_t)esize, sizeof(double));
                p[i].i = i;
            }
            if (c->topk) kd_select(p, tmp, c->len, c->klen, c->desc);
            else kd_msort(p, tmp, c->len, c->desc);
            for (int64_t t = 0; t < c->klen; t++) i0[obase + t * c->inner] = p[t].i;
            break;
        }
        default: {
            ki_pair *p = buf;
            for (int64_t i = 0; i < c->len; i++) {
                p[i].k = sp_load_i64(x->dtype, row + i * xs * (int64_t)esize);
                p[i].i = i;
            }
            if (c->topk) ki_select(p, tmp, c->len, c->klen, c->desc);
            else ki_msort(p, tmp, c->len, c->desc);
            for (int64_t t = 0; t < c->klen; t++) i0[obase + t * c->inner] = p[t].i;
            break;
        }
        }
        for (int64_t t = 0; t < c->klen; t++) {
            int64_t src = i0[obase + t * c->inner];
            memcpy(v0 + (obase + t * c->inner) * (int64_t)esize, row + src * xs * (int64_t)esize,
                   esize);
        }
    }
    free(buf);
}

static sp_status cpu_sort_run(const sp_kernel_args *a, int topk) {
    const char *name = topk ? "topk" : "sort";
    const sp_tensor *x = a->in[0];
    cpu_sort_ctx c = {.x = x, .vals = a->out[0], .idx = a->out[1], .topk = topk};
    atomic_init(&c.nomem, 0);
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    if (x->ndim == 0) {
        if (axis != -1 && axis != 0)
            return sp_error(SP_ERR_ARG, "%s: axis %lld is out of range for a 0-d tensor", name,
                            (long long)axis);
        c.ax = 0;
        c.len = 1;
        c.inner = 1;
    } else {
        int ax;
        sp_status st = sp_norm_axis(name, axis, x->ndim, &ax);
        if (st) return st;
        c.ax = ax;
        c.len = x->shape[ax];
        c.inner = 1;
        for (int d = ax + 1; d < x->ndim; d++) c.inner *= x->shape[d];
    }
    switch (x->dtype) {
    case SP_F32: case SP_F16: case SP_BF16: c.kind = KEY_F32; break;
    case SP_F64: c.kind = KEY_F64; break;
    case SP_I8: case SP_U8: case SP_I32: case SP_I64: case SP_BOOL: c.kind = KEY_I64; break;
    default:
        return sp_error(SP_ERR_DTYPE, "%s: unsupported dtype %s", name,
                        sp_dtype_name(x->dtype));
    }
    if (topk) {
        c.desc = sp_attrs_get_int(a->attrs, "largest", 1) != 0;
        c.klen = sp_attrs_get_int(a->attrs, "k", -1);
        if (c.klen < 0 || c.klen > c.len)
            return sp_error(SP_ERR_ARG, "topk: k %lld is out of range for axis %lld of size %lld",
                            (long long)c.klen, (long long)axis, (long long)c.len);
    } else {
        c.desc = sp_attrs_get_int(a->attrs, "descending", 0) != 0;
        c.klen = c.len;
    }
    int64_t numel = sp_tensor_numel(x);
    if (numel == 0 || c.klen == 0) return SP_OK;
    int64_t rows = numel / c.len;
    /* about 64K elements of work per chunk (a row costs more than its length) */
    int64_t grain = c.len >= (1 << 16) ? 1 : (1 << 16) / c.len;
    sp_parallel_for(rows, grain, cpu_sort_rows, &c);
    if (atomic_load(&c.nomem))
        return sp_error(SP_ERR_NOMEM, "%s: out of memory for scratch of a row of %lld", name,
                        (long long)c.len);
    return SP_OK;
}

sp_status cpu_sort(const sp_kernel_args *a) { return cpu_sort_run(a, 0); }

sp_status cpu_topk(const sp_kernel_args *a) { return cpu_sort_run(a, 1); }
