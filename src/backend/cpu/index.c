/*
 * index.c -- CPU kernels that move data by index tensors: gather
 * (numpy.take), take_along_axis (torch.gather), scatter_add
 * (torch.scatter_add) and one_hot.
 *
 * Index values are data, so these are the kernels where a user's mistake
 * shows up at run time: an index outside [-n, n) is reported as an error
 * naming the primitive, the index, the axis and its size, and nothing is
 * read or written out of bounds.  Negative indices wrap once (numpy), for
 * all three of gather, take_along_axis and scatter_add.  one_hot instead
 * follows TensorFlow: an index outside [0, depth) gives a row of off_value.
 *
 * When several indices are bad, the one reported is the first in C order
 * of the index tensor, whatever the thread count: the parallel pass only
 * raises a flag, and a sequential rescan finds the culprit for the message.
 *
 * scatter_add is deterministic without atomics: work is split by position
 * in the dims other than the axis, and every output element along one line
 * of the axis is updated by one thread in index order, so repeated indices
 * accumulate in the same order on every run.
 */
#include <stdlib.h>

#include "backend/cpu/strided_copy.h"

static sp_status index_check_out(const char *op, const sp_tensor *out, int ndim,
                                 const int64_t *shape) {
    int same = out->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = out->shape[i] == shape[i];
    if (same) return SP_OK;
    char a[128], b[128];
    return sp_error(SP_ERR_INTERNAL, "%s: output shape %s does not match the computed %s", op,
                    sp_shape_str(out->ndim, out->shape, a, sizeof a),
                    sp_shape_str(ndim, shape, b, sizeof b));
}

static sp_status index_norm_axis(const char *op, const sp_attrs *attrs, int ndim, int *out) {
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    if (axis < -ndim || axis >= ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", op,
                        (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return SP_OK;
}

static sp_status index_check_dtype(const char *op, const sp_tensor *idx) {
    if (idx->dtype == SP_I32 || idx->dtype == SP_I64) return SP_OK;
    return sp_error(SP_ERR_DTYPE, "%s: indices must be int32 or int64, not %s", op,
                    sp_dtype_name(idx->dtype));
}

/* idx's values as a malloc'd C-order int64 array (NULL + error on no
 * memory; a 1-element array for an empty idx). */
static int64_t *index_read_all(const char *op, const sp_tensor *idx) {
    int64_t n = sp_tensor_numel(idx), cs[SP_MAX_DIMS];
    int64_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    if (!v) {
        sp_error(SP_ERR_NOMEM, "%s: out of memory for %lld indices", op, (long long)n);
        return NULL;
    }
    cpu_contig_strides(idx->ndim, idx->shape, cs);
    cpu_copy_convert(idx->ndim, idx->shape, v, SP_I64, cs, sp_tensor_data(idx), idx->dtype,
                     idx->strides);
    return v;
}

static inline int64_t index_load(const sp_tensor *idx, const char *p) {
    return idx->dtype == SP_I32 ? *(const int32_t *)p : *(const int64_t *)p;
}

static sp_status index_range_error(const char *op, int64_t v, int ax, int64_t n) {
    return sp_error(SP_ERR_ARG, "%s: index %lld out of range for axis %d of size %lld", op,
                    (long long)v, ax, (long long)n);
}

/* ---- gather ------------------------------------------------------------ */

typedef struct gather_ctx {
    const sp_tensor *x;
    char *dst;
    const int64_t *tab;
    int64_t ni, inner, sa;
    int ax, contig;
    size_t es;
} gather_ctx;

static void gather_units(void *ctx, int64_t b, int64_t e) {
    const gather_ctx *c = ctx;
    const sp_tensor *x = c->x;
    int nd = x->ndim, nin = nd - c->ax - 1;
    int64_t cs[SP_MAX_DIMS];
    cpu_contig_strides(nin, x->shape + c->ax + 1, cs);
    for (int64_t u = b; u < e; u++) {
        int64_t o = u / c->ni, k = u % c->ni, off = c->tab[k] * c->sa;
        for (int i = c->ax - 1; i >= 0; i--) {
            off += (o % x->shape[i]) * x->strides[i];
            o /= x->shape[i];
        }
        const char *src = (const char *)sp_tensor_data(x) + (ptrdiff_t)off * (ptrdiff_t)c->es;
        char *dst = c->dst + (size_t)(u * c->inner) * c->es;
        if (c->contig)
            memcpy(dst, src, (size_t)c->inner * c->es);
        else
            cpu_copy_strided(nin, x->shape + c->ax + 1, c->es, dst, cs, src,
                             x->strides + c->ax + 1);
    }
}

sp_status cpu_gather(const sp_kernel_args *a) {
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "gather: kernel called with %d inputs", a->n_in);
    const sp_tensor *x = a->in[0], *idx = a->in[1];
    sp_tensor *y = a->out[0];
    int ax = 0;
    sp_status st = index_check_dtype("gather", idx);
    if (st || (st = index_norm_axis("gather", a->attrs, x->ndim, &ax))) return st;
    int64_t shape[SP_MAX_DIMS];
    int nd = 0;
    if (x->ndim - 1 + idx->ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "gather: result would have more than %d dims", SP_MAX_DIMS);
    for (int i = 0; i < ax; i++) shape[nd++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++) shape[nd++] = idx->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) shape[nd++] = x->shape[i];
    if ((st = index_check_out("gather", y, nd, shape))) return st;
    if (x->dtype != y->dtype) return sp_error(SP_ERR_INTERNAL, "gather: output dtype differs");
    gather_ctx c = {.x = x, .dst = sp_tensor_data(y), .ax = ax, .es = sp_dtype_size(x->dtype)};
    c.ni = sp_tensor_numel(idx);
    c.sa = x->strides[ax];
    int64_t n = x->shape[ax], outer = 1, expect = 1;
    int64_t *tab = index_read_all("gather", idx);
    if (!tab) return sp_last_status();
    for (int64_t k = 0; k < c.ni; k++) {
        if (tab[k] < -n || tab[k] >= n) {
            st = index_range_error("gather", tab[k], ax, n);
            free(tab);
            return st;
        }
        if (tab[k] < 0) tab[k] += n;
    }
    c.tab = tab;
    c.inner = 1;
    c.contig = 1;
    for (int i = x->ndim - 1; i > ax; i--) {
        if (x->shape[i] != 1 && x->strides[i] != expect) c.contig = 0;
        expect *= x->shape[i];
        c.inner *= x->shape[i];
    }
    for (int i = 0; i < ax; i++) outer *= x->shape[i];
    if (c.inner > 0 && c.ni > 0 && outer > 0)
        sp_parallel_for(outer * c.ni, c.inner >= 16384 ? 1 : 16384 / c.inner, gather_units, &c);
    free(tab);
    return SP_OK;
}

/* ---- take_along_axis --------------------------------------------------- */

typedef struct along_ctx {
    const sp_tensor *x, *idx, *upd;
    sp_tensor *y;
    int ax;
    int bad; /* set (to 1) by any unit that saw an index out of range */
} along_ctx;

/* Offsets of row r (all dims but the last) of idx in idx, x (without the
 * axis term) and a C-order tensor of idx's shape. */
static void along_row(const along_ctx *c, int64_t r, int64_t *ioff, int64_t *xoff, int64_t *coff) {
    const sp_tensor *idx = c->idx, *x = c->x;
    int nd = idx->ndim;
    int64_t cs = idx->shape[nd - 1];
    *ioff = *xoff = 0, *coff = r * cs;
    for (int i = nd - 2; i >= 0; i--) {
        int64_t k = r % idx->shape[i];
        r /= idx->shape[i];
        *ioff += k * idx->strides[i];
        if (i != c->ax) *xoff += k * x->strides[i];
    }
}

static void along_gather_rows(void *ctx, int64_t b, int64_t e) {
    along_ctx *c = ctx;
    const sp_tensor *x = c->x, *idx = c->idx;
    int nd = idx->ndim, last = nd - 1;
    int64_t n = x->shape[c->ax], sa = x->strides[c->ax], len = idx->shape[last];
    int64_t si = idx->strides[last], sx = c->ax == last ? 0 : x->strides[last];
    size_t es = sp_dtype_size(x->dtype), ies = sp_dtype_size(idx->dtype);
    const char *xb = sp_tensor_data(x), *ib = sp_tensor_data(idx);
    char *yb = sp_tensor_data(c->y);
    for (int64_t r = b; r < e; r++) {
        int64_t ioff, xoff, yoff;
        along_row(c, r, &ioff, &xoff, &yoff);
        for (int64_t j = 0; j < len; j++) {
            int64_t v = index_load(idx, ib + (ptrdiff_t)(ioff + j * si) * (ptrdiff_t)ies);
            if (v < -n || v >= n) {
                __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
                continue;
            }
            if (v < 0) v += n;
            memcpy(yb + (size_t)(yoff + j) * es,
                   xb + (ptrdiff_t)(xoff + j * sx + v * sa) * (ptrdiff_t)es, es);
        }
    }
}

/* The first index of idx (C order) outside [-n, n) (the caller knows there
 * is one), as an error. */
static sp_status along_report(const char *op, const sp_tensor *idx, int ax, int64_t n) {
    int64_t total = sp_tensor_numel(idx), cs[SP_MAX_DIMS];
    cpu_contig_strides(idx->ndim, idx->shape, cs);
    for (int64_t k = 0; k < total; k++) {
        int64_t off = 0;
        for (int i = 0; i < idx->ndim; i++) off += (k / cs[i] % idx->shape[i]) * idx->strides[i];
        int64_t v = index_load(idx, (const char *)sp_tensor_data(idx) +
                                        (ptrdiff_t)off * (ptrdiff_t)sp_dtype_size(idx->dtype));
        if (v < -n || v >= n) return index_range_error(op, v, ax, n);
    }
    return sp_error(SP_ERR_INTERNAL, "%s: index out of range", op);
}

/* Checks idx against x as torch.gather/scatter_add want: same ndim, no
 * larger outside the axis. */
static sp_status along_check(const char *op, const sp_tensor *x, const sp_tensor *idx, int ax) {
    int ok = idx->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++) ok = i == ax || idx->shape[i] <= x->shape[i];
    if (ok) return SP_OK;
    char s1[128], s2[128];
    return sp_error(SP_ERR_SHAPE, "%s: indices of shape %s do not fit x of shape %s on axis %d",
                    op, sp_shape_str(idx->ndim, idx->shape, s1, sizeof s1),
                    sp_shape_str(x->ndim, x->shape, s2, sizeof s2), ax);
}

sp_status cpu_take_along_axis(const sp_kernel_args *a) {
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "take_along_axis: kernel called with %d inputs", a->n_in);
    along_ctx c = {.x = a->in[0], .idx = a->in[1], .y = a->out[0]};
    sp_status st = index_check_dtype("take_along_axis", c.idx);
    if (st || (st = index_norm_axis("take_along_axis", a->attrs, c.x->ndim, &c.ax))) return st;
    if ((st = along_check("take_along_axis", c.x, c.idx, c.ax))) return st;
    if ((st = index_check_out("take_along_axis", c.y, c.idx->ndim, c.idx->shape))) return st;
    if (c.x->dtype != c.y->dtype)
        return sp_error(SP_ERR_INTERNAL, "take_along_axis: output dtype differs");
    int64_t total = sp_tensor_numel(c.idx);
    if (total == 0) return SP_OK;
    int64_t len = c.idx->shape[c.idx->ndim - 1], rows = total / len;
    sp_parallel_for(rows, len >= 8192 ? 1 : 8192 / len, along_gather_rows, &c);
    if (c.bad) return along_report("take_along_axis", c.idx, c.ax, c.x->shape[c.ax]);
    return SP_OK;
}

/* ---- scatter_add ---------------------------------------------------------- */

/* y[yoff] += u (same dtype d); integers wrap. */
static inline void scatter_add_one(sp_dtype d, char *y, const char *u) {
    switch (d) {
    case SP_F32: *(float *)y += *(const float *)u; break;
    case SP_F64: *(double *)y += *(const double *)u; break;
    case SP_F16:
        *(sp_f16 *)y = sp_f32_to_f16(sp_f16_to_f32(*(sp_f16 *)y) + sp_f16_to_f32(*(const sp_f16 *)u));
        break;
    case SP_BF16:
        *(sp_bf16 *)y =
            sp_f32_to_bf16(sp_bf16_to_f32(*(sp_bf16 *)y) + sp_bf16_to_f32(*(const sp_bf16 *)u));
        break;
    case SP_I8: *(int8_t *)y = (int8_t)(uint8_t)((uint8_t)*(int8_t *)y + (uint8_t)*(const int8_t *)u); break;
    case SP_U8: *(uint8_t *)y = (uint8_t)(*(uint8_t *)y + *(const uint8_t *)u); break;
    case SP_I32:
        *(int32_t *)y = (int32_t)((uint32_t)*(int32_t *)y + (uint32_t)*(const int32_t *)u);
        break;
    case SP_I64:
        *(int64_t *)y = (int64_t)((uint64_t)*(int64_t *)y + (uint64_t)*(const int64_t *)u);
        break;
    default: *(uint8_t *)y = *(uint8_t *)y || *(const uint8_t *)u; break;
    }
}

/* Units are positions of idx in every dim but the axis; each walks its line
 * along the axis in order. */
static void scatter_lines(void *ctx, int64_t b, int64_t e) {
    along_ctx *c = ctx;
    const sp_tensor *idx = c->idx, *upd = c->upd;
    sp_tensor *y = c->y;
    int nd = idx->ndim, ax = c->ax;
    int64_t n = y->shape[ax], ys[SP_MAX_DIMS];
    cpu_contig_strides(nd, y->shape, ys);
    size_t es = sp_dtype_size(y->dtype), ies = sp_dtype_size(idx->dtype);
    const char *ib = sp_tensor_data(idx), *ub = sp_tensor_data(upd);
    char *yb = sp_tensor_data(y);
    for (int64_t u = b; u < e; u++) {
        int64_t r = u, ioff = 0, uoff = 0, yoff = 0;
        for (int i = nd - 1; i >= 0; i--) {
            if (i == ax) continue;
            int64_t k = r % idx->shape[i];
            r /= idx->shape[i];
            ioff += k * idx->strides[i], uoff += k * upd->strides[i], yoff += k * ys[i];
        }
        for (int64_t k = 0; k < idx->shape[ax]; k++) {
            int64_t v = index_load(idx, ib + (ptrdiff_t)(ioff + k * idx->strides[ax]) * (ptrdiff_t)ies);
            if (v < -n || v >= n) {
                __atomic_store_n(&c->bad, 1, __ATOMIC_RELAXED);
                continue;
            }
            if (v < 0) v += n;
            scatter_add_one(y->dtype, yb + (size_t)(yoff + v * ys[ax]) * es,
                            ub + (ptrdiff_t)(uoff + k * upd->strides[ax]) * (ptrdiff_t)es);
        }
    }
}

sp_status cpu_scatter_add(const sp_kernel_args *a) {
    if (a->n_in != 3 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "scatter_add: kernel called with %d inputs", a->n_in);
    along_ctx c = {.x = a->in[0], .idx = a->in[1], .upd = a->in[2], .y = a->out[0]};
    sp_status st = index_check_dtype("scatter_add", c.idx);
    if (st || (st = index_norm_axis("scatter_add", a->attrs, c.x->ndim, &c.ax))) return st;
    if ((st = along_check("scatter_add", c.x, c.idx, c.ax))) return st;
    int same = c.upd->ndim == c.idx->ndim;
    for (int i = 0; same && i < c.idx->ndim; i++) same = c.upd->shape[i] == c.idx->shape[i];
    if (!same || c.upd->dtype != c.x->dtype) {
        char s1[128], s2[128];
        return sp_error(SP_ERR_SHAPE, "scatter_add: updates %s %s do not match indices %s and x "
                        "dtype %s", sp_shape_str(c.upd->ndim, c.upd->shape, s1, sizeof s1),
                        sp_dtype_name(c.upd->dtype),
                        sp_shape_str(c.idx->ndim, c.idx->shape, s2, sizeof s2),
                        sp_dtype_name(c.x->dtype));
    }
    if ((st = index_check_out("scatter_add", c.y, c.x->ndim, c.x->shape))) return st;
    if (c.x->dtype != c.y->dtype)
        return sp_error(SP_ERR_INTERNAL, "scatter_add: output dtype differs");
    cpu_copy_to_contig(c.y, c.x);
    int64_t total = sp_tensor_numel(c.idx);
    if (total == 0) return SP_OK;
    int64_t len = c.idx->shape[c.ax], lines = total / len;
    sp_parallel_for(lines, len >= 8192 ? 1 : 8192 / len, scatter_lines, &c);
    if (c.bad) return along_report("scatter_add", c.idx, c.ax, c.x->shape[c.ax]);
    return SP_OK;
}

/* ---- one_hot -------------------------------------------------------------- */

typedef struct onehot_ctx {
    const int64_t *tab;
    char *dst;
    int64_t depth;
    size_t es;
    unsigned char on[8];
} onehot_ctx;

static void onehot_set(void *ctx, int64_t b, int64_t e) {
    const onehot_ctx *c = ctx;
    for (int64_t k = b; k < e; k++)
        if (c->tab[k] >= 0 && c->tab[k] < c->depth)
            memcpy(c->dst + (size_t)(k * c->depth + c->tab[k]) * c->es, c->on, c->es);
}

sp_status cpu_one_hot(const sp_kernel_args *a) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_INTERNAL, "one_hot: kernel called with %d inputs", a->n_in);
    const sp_tensor *idx = a->in[0];
    sp_tensor *y = a->out[0];
    sp_status st = index_check_dtype("one_hot", idx);
    if (st) return st;
    int64_t depth = sp_attrs_get_int(a->attrs, "depth", -1), shape[SP_MAX_DIMS];
    if (depth < 0) return sp_error(SP_ERR_ARG, "one_hot: depth must be >= 0, got %lld", (long long)depth);
    if (idx->ndim + 1 > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "one_hot: result would have more than %d dims", SP_MAX_DIMS);
    memcpy(shape, idx->shape, sizeof(int64_t) * (size_t)idx->ndim);
    shape[idx->ndim] = depth;
    if ((st = index_check_out("one_hot", y, idx->ndim + 1, shape))) return st;
    onehot_ctx c = {.dst = sp_tensor_data(y), .depth = depth, .es = sp_dtype_size(y->dtype)};
    unsigned char off[8];
    sp_store_f64(y->dtype, off, sp_attrs_get_float(a->attrs, "off_value", 0.0));
    sp_store_f64(y->dtype, c.on, sp_attrs_get_float(a->attrs, "on_value", 1.0));
    int64_t numel = sp_tensor_numel(y), zero = 0, one = 1, ni = sp_tensor_numel(idx);
    if (numel == 0) return SP_OK;
    cpu_copy_strided(1, &numel, c.es, c.dst, &one, off, &zero);
    int64_t *tab = index_read_all("one_hot", idx);
    if (!tab) return sp_last_status();
    c.tab = tab;
    sp_parallel_for(ni, 65536, onehot_set, &c);
    free(tab);
    return SP_OK;
}
