/*
 * shape.c -- CPU kernels that move data without computing on it: reshape,
 * transpose, broadcast_to, concat, split, stack, pad, tile and slice.
 *
 * Each of these primitives returns a new contiguous tensor, and each is the
 * same act seen from a different angle: describe, for every output element,
 * where its source element lies, as a block with a source stride vector and
 * a destination stride vector, and hand that block to cpu_copy_strided
 * (strided_copy.c), which merges, tiles and parallelizes the copy.  So
 * transpose is a copy whose source strides are permuted, broadcast_to one
 * whose source strides are 0 on broadcast dims, slice one whose source
 * strides are multiplied by the steps, tile one over 2n dims (a repeat dim
 * of source stride 0 before every real dim), and concat/split/stack are one
 * block per input/output at an offset along the axis.  Only reflect padding
 * needs an index table per axis.
 *
 * Invariants: outputs arrive allocated and contiguous with the shape the
 * inference function gave; each kernel recomputes that shape from its
 * attributes and returns SP_ERR_INTERNAL if the two disagree, so a drift
 * between inference and kernel cannot write out of bounds.  Inputs may be
 * any strided view (negative strides included).  Where an output's dtype
 * differs from an input's (concat/stack of mixed dtypes) elements are
 * converted by the core's rules.
 */
#include <stdlib.h>

#include "backend/cpu/strided_copy.h"

/* ---- helpers ------------------------------------------------------------ */

static sp_status shape_norm_axis(const char *op, int64_t axis, int ndim, int *out) {
    if (axis < -ndim || axis >= ndim || ndim == 0)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for %d dims", op,
                        (long long)axis, ndim);
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return SP_OK;
}

/* SP_OK when out has exactly the shape (ndim, shape). */
static sp_status shape_check_out(const char *op, const sp_tensor *out, int ndim,
                                 const int64_t *shape) {
    int same = out->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = out->shape[i] == shape[i];
    if (same) return SP_OK;
    char a[128], b[128];
    return sp_error(SP_ERR_INTERNAL, "%s: output shape %s does not match the computed %s", op,
                    sp_shape_str(out->ndim, out->shape, a, sizeof a),
                    sp_shape_str(ndim, shape, b, sizeof b));
}

static sp_status shape_check_args(const sp_kernel_args *a, const char *op, int nin, int nout) {
    if ((nin >= 0 && a->n_in != nin) || a->n_in < 1 || (nout >= 0 && a->n_out != nout) ||
        a->n_out < 1)
        return sp_error(SP_ERR_INTERNAL, "%s: kernel called with %d inputs and %d outputs", op,
                        a->n_in, a->n_out);
    return SP_OK;
}

/* Copies the block `shape` of src (strides ss from element 0 at sp) into
 * the contiguous-with-strides-ds destination at dp, converting dtypes. */
static void shape_copy(int ndim, const int64_t *shape, const sp_tensor *dt, void *dp,
                       const int64_t *ds, const sp_tensor *st, const void *sp, const int64_t *ss) {
    cpu_copy_convert(ndim, shape, dp, dt->dtype, ds, sp, st->dtype, ss);
}

static char *shape_elem_ptr(const sp_tensor *t, int64_t elem_offset) {
    return (char *)sp_tensor_data(t) + (ptrdiff_t)elem_offset * (ptrdiff_t)sp_dtype_size(t->dtype);
}

/* ---- reshape, transpose, broadcast_to ------------------------------------ */

sp_status cpu_reshape(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "reshape", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    if (sp_tensor_numel(x) != sp_tensor_numel(y) || x->dtype != y->dtype) {
        char s1[128], s2[128];
        return sp_error(SP_ERR_INTERNAL, "reshape: output %s does not fit input %s",
                        sp_shape_str(y->ndim, y->shape, s2, sizeof s2),
                        sp_shape_str(x->ndim, x->shape, s1, sizeof s1));
    }
    cpu_copy_to_contig(y, x);
    return SP_OK;
}

sp_status cpu_transpose(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "transpose", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim, n = 0, perm[SP_MAX_DIMS], seen[SP_MAX_DIMS] = {0};
    const int64_t *p = sp_attrs_get_ints(a->attrs, "perm", &n);
    if (!p) {
        for (int i = 0; i < nd; i++) perm[i] = nd - 1 - i;
    } else {
        if (n != nd)
            return sp_error(SP_ERR_ARG, "transpose: perm has %d entries for %d dims", n, nd);
        for (int i = 0; i < nd; i++) {
            if ((st = shape_norm_axis("transpose", p[i], nd, &perm[i]))) return st;
            if (seen[perm[i]]++)
                return sp_error(SP_ERR_ARG, "transpose: axis %d repeated in perm", perm[i]);
        }
    }
    int64_t shape[SP_MAX_DIMS], ss[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = x->shape[perm[i]], ss[i] = x->strides[perm[i]];
    if ((st = shape_check_out("transpose", y, nd, shape))) return st;
    cpu_contig_strides(nd, shape, ds);
    shape_copy(nd, shape, y, sp_tensor_data(y), ds, x, sp_tensor_data(x), ss);
    return SP_OK;
}

sp_status cpu_broadcast_to(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "broadcast_to", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = y->ndim, lead = y->ndim - x->ndim;
    int64_t ss[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    if (lead < 0) goto bad;
    for (int i = 0; i < nd; i++) {
        int j = i - lead;
        if (j < 0 || (x->shape[j] == 1 && y->shape[i] != 1))
            ss[i] = 0;
        else if (x->shape[j] == y->shape[i])
            ss[i] = x->strides[j];
        else
            goto bad;
    }
    cpu_contig_strides(nd, y->shape, ds);
    shape_copy(nd, y->shape, y, sp_tensor_data(y), ds, x, sp_tensor_data(x), ss);
    return SP_OK;
bad:;
    char s1[128], s2[128];
    return sp_error(SP_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s",
                    sp_shape_str(x->ndim, x->shape, s1, sizeof s1),
                    sp_shape_str(y->ndim, y->shape, s2, sizeof s2));
}

/* ---- concat, split, stack ---------------------------------------------- */

sp_status cpu_concat(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "concat", -1, 1);
    if (st) return st;
    sp_tensor *y = a->out[0];
    int nd = a->in[0]->ndim, ax = 0;
    if ((st = shape_norm_axis("concat", sp_attrs_get_int(a->attrs, "axis", 0), nd, &ax)))
        return st;
    int64_t shape[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    memcpy(shape, a->in[0]->shape, sizeof shape);
    shape[ax] = 0;
    for (int k = 0; k < a->n_in; k++) {
        const sp_tensor *x = a->in[k];
        int ok = x->ndim == nd;
        for (int i = 0; ok && i < nd; i++) ok = i == ax || x->shape[i] == shape[i];
        if (!ok) {
            char s1[128], s2[128];
            return sp_error(SP_ERR_SHAPE, "concat: input %d of shape %s does not fit input 0 of "
                            "shape %s on axis %d", k, sp_shape_str(x->ndim, x->shape, s1, sizeof s1),
                            sp_shape_str(nd, a->in[0]->shape, s2, sizeof s2), ax);
        }
        shape[ax] += x->shape[ax];
    }
    if ((st = shape_check_out("concat", y, nd, shape))) return st;
    cpu_contig_strides(nd, shape, ds);
    int64_t off = 0;
    for (int k = 0; k < a->n_in; k++) {
        const sp_tensor *x = a->in[k];
        shape_copy(nd, x->shape, y, shape_elem_ptr(y, off * ds[ax]), ds, x, sp_tensor_data(x),
                   x->strides);
        off += x->shape[ax];
    }
    return SP_OK;
}

sp_status cpu_split(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "split", 1, -1);
    if (st) return st;
    sp_tensor *x = a->in[0];
    int nd = x->ndim, ax = 0, n = 0;
    if ((st = shape_norm_axis("split", sp_attrs_get_int(a->attrs, "axis", 0), nd, &ax))) return st;
    const int64_t *sizes = sp_attrs_get_ints(a->attrs, "sizes", &n);
    if (!sizes || n != a->n_out)
        return sp_error(SP_ERR_INTERNAL, "split: %d sizes for %d outputs", n, a->n_out);
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        if (sizes[k] < 0 || sizes[k] > x->shape[ax] - total)
            return sp_error(SP_ERR_ARG, "split: sizes do not sum to %lld, the length of axis %d",
                            (long long)x->shape[ax], ax);
        total += sizes[k];
    }
    if (total != x->shape[ax])
        return sp_error(SP_ERR_ARG, "split: sizes sum to %lld, not %lld, the length of axis %d",
                        (long long)total, (long long)x->shape[ax], ax);
    int64_t shape[SP_MAX_DIMS], ds[SP_MAX_DIMS], off = 0;
    memcpy(shape, x->shape, sizeof shape);
    for (int k = 0; k < n; k++) {
        sp_tensor *y = a->out[k];
        shape[ax] = sizes[k];
        if ((st = shape_check_out("split", y, nd, shape))) return st;
        cpu_contig_strides(nd, shape, ds);
        shape_copy(nd, shape, y, sp_tensor_data(y), ds, x, shape_elem_ptr(x, off * x->strides[ax]),
                   x->strides);
        off += sizes[k];
    }
    return SP_OK;
}

sp_status cpu_stack(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "stack", -1, 1);
    if (st) return st;
    sp_tensor *y = a->out[0];
    const sp_tensor *x0 = a->in[0];
    int nd = x0->ndim, ax = 0;
    if ((st = shape_norm_axis("stack", sp_attrs_get_int(a->attrs, "axis", 0), nd + 1, &ax)))
        return st;
    int64_t shape[SP_MAX_DIMS], ys[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    if (nd + 1 > SP_MAX_DIMS) return sp_error(SP_ERR_SHAPE, "stack: result has more than 8 dims");
    for (int i = 0, j = 0; i <= nd; i++) shape[i] = i == ax ? a->n_in : x0->shape[j++];
    if ((st = shape_check_out("stack", y, nd + 1, shape))) return st;
    cpu_contig_strides(nd + 1, shape, ys);
    for (int i = 0, j = 0; i <= nd; i++)
        if (i != ax) ds[j++] = ys[i];
    for (int k = 0; k < a->n_in; k++) {
        const sp_tensor *x = a->in[k];
        int ok = x->ndim == nd;
        for (int i = 0; ok && i < nd; i++) ok = x->shape[i] == x0->shape[i];
        if (!ok) {
            char s1[128], s2[128];
            return sp_error(SP_ERR_SHAPE, "stack: input %d has shape %s, input 0 has %s", k,
                            sp_shape_str(x->ndim, x->shape, s1, sizeof s1),
                            sp_shape_str(nd, x0->shape, s2, sizeof s2));
        }
        shape_copy(nd, x->shape, y, shape_elem_ptr(y, k * ys[ax]), ds, x, sp_tensor_data(x),
                   x->strides);
    }
    return SP_OK;
}

/* ---- pad --------------------------------------------------------------- */

/* numpy's "reflect" source index for output position o of an axis of size
 * n padded by `before`: the edge is not repeated and reflection repeats
 * (period 2(n-1)) when the pad is wider than the axis. */
static int64_t pad_reflect_index(int64_t o, int64_t before, int64_t n) {
    if (n == 1) return 0;
    int64_t p = 2 * (n - 1), i = (o - before) % p;
    if (i < 0) i += p;
    return i < n ? i : p - i;
}

typedef struct pad_ctx {
    int nd;
    size_t es;
    const sp_tensor *x;
    char *dst;
    const int64_t *shape; /* output shape */
    int64_t *map[SP_MAX_DIMS];
} pad_ctx;

/* Reflect padding, rows [begin, end) of the output (a row is its last dim). */
static void pad_reflect_rows(void *ctx, int64_t begin, int64_t end) {
    const pad_ctx *c = ctx;
    int nd = c->nd;
    int64_t n = c->shape[nd - 1], sl = c->x->strides[nd - 1];
    const int64_t *ml = c->map[nd - 1];
    const char *src = sp_tensor_data(c->x);
    for (int64_t r = begin; r < end; r++) {
        int64_t rem = r, soff = 0;
        for (int i = nd - 2; i >= 0; i--) {
            soff += c->map[i][rem % c->shape[i]] * c->x->strides[i];
            rem /= c->shape[i];
        }
        char *d = c->dst + (size_t)(r * n) * c->es;
#define PAD_LOOP(T)                                                                            \
    do {                                                                                       \
        const T *s_ = (const T *)src + soff;                                                   \
        for (int64_t j = 0; j < n; j++) ((T *)d)[j] = s_[ml[j] * sl];                          \
    } while (0)
        switch (c->es) {
        case 1: PAD_LOOP(uint8_t); break;
        case 2: PAD_LOOP(uint16_t); break;
        case 4: PAD_LOOP(uint32_t); break;
        default: PAD_LOOP(uint64_t); break;
        }
#undef PAD_LOOP
    }
}

sp_status cpu_pad(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "pad", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim, n = 0;
    const int64_t *pads = sp_attrs_get_ints(a->attrs, "pads", &n);
    const char *mode = sp_attrs_get_str(a->attrs, "mode", "constant");
    if (n != 2 * nd) return sp_error(SP_ERR_ARG, "pad: %d pads for %d dims (want 2 per dim)", n, nd);
    int64_t shape[SP_MAX_DIMS], ds[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        if (pads[2 * i] < 0 || pads[2 * i + 1] < 0)
            return sp_error(SP_ERR_ARG, "pad: negative pad on axis %d", i);
        shape[i] = x->shape[i] + pads[2 * i] + pads[2 * i + 1];
    }
    if ((st = shape_check_out("pad", y, nd, shape))) return st;
    size_t es = sp_dtype_size(y->dtype);
    if (x->dtype != y->dtype) return sp_error(SP_ERR_INTERNAL, "pad: output dtype differs");
    cpu_contig_strides(nd, shape, ds);
    if (strcmp(mode, "constant") == 0) {
        unsigned char val[8];
        int64_t zero = 0, numel = sp_tensor_numel(y);
        sp_store_f64(y->dtype, val, sp_attrs_get_float(a->attrs, "value", 0.0));
        cpu_copy_strided(1, &numel, es, sp_tensor_data(y), (int64_t[]){1}, val, &zero);
        int64_t off = 0;
        for (int i = 0; i < nd; i++) off += pads[2 * i] * ds[i];
        cpu_copy_strided(nd, x->shape, es, shape_elem_ptr(y, off), ds, sp_tensor_data(x),
                         x->strides);
        return SP_OK;
    }
    if (strcmp(mode, "reflect") != 0)
        return sp_error(SP_ERR_ARG, "pad: unknown mode '%s' (constant or reflect)", mode);
    if (sp_tensor_numel(y) == 0) return SP_OK;
    pad_ctx c = {.nd = nd, .es = es, .x = x, .dst = sp_tensor_data(y), .shape = shape};
    if (nd == 0) {
        memcpy(c.dst, sp_tensor_data(x), es);
        return SP_OK;
    }
    int64_t total = 0;
    for (int i = 0; i < nd; i++) total += shape[i];
    int64_t *tab = malloc((size_t)total * sizeof *tab);
    if (!tab) return sp_error(SP_ERR_NOMEM, "pad: out of memory for index tables");
    for (int i = 0, pos = 0; i < nd; pos += (int)shape[i], i++) {
        if (x->shape[i] == 0 && shape[i] > 0) {
            free(tab);
            return sp_error(SP_ERR_ARG, "pad: cannot reflect-pad the empty axis %d", i);
        }
        c.map[i] = tab + pos;
        for (int64_t o = 0; o < shape[i]; o++)
            c.map[i][o] = pad_reflect_index(o, pads[2 * i], x->shape[i]);
    }
    int64_t rows = sp_tensor_numel(y) / shape[nd - 1];
    int64_t grain = shape[nd - 1] >= 16384 ? 1 : 16384 / shape[nd - 1];
    sp_parallel_for(rows, grain, pad_reflect_rows, &c);
    free(tab);
    return SP_OK;
}

/* ---- tile and slice ---------------------------------------------------- */

sp_status cpu_tile(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "tile", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nr = 0;
    const int64_t *reps = sp_attrs_get_ints(a->attrs, "reps", &nr);
    int nd = x->ndim > nr ? x->ndim : nr;
    if (nd > SP_MAX_DIMS) return sp_error(SP_ERR_SHAPE, "tile: result has more than 8 dims");
    int64_t r[SP_MAX_DIMS], xs[SP_MAX_DIMS], xst[SP_MAX_DIMS], shape[SP_MAX_DIMS];
    int64_t ys[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ri = i - (nd - nr), xi = i - (nd - x->ndim);
        r[i] = ri >= 0 ? reps[ri] : 1;
        xs[i] = xi >= 0 ? x->shape[xi] : 1;
        xst[i] = xi >= 0 ? x->strides[xi] : 0;
        if (r[i] < 0) return sp_error(SP_ERR_ARG, "tile: negative repeat %lld", (long long)r[i]);
        shape[i] = r[i] * xs[i];
    }
    if ((st = shape_check_out("tile", y, nd, shape))) return st;
    cpu_contig_strides(nd, shape, ys);
    int64_t bsh[CPU_COPY_MAX_DIMS], bd[CPU_COPY_MAX_DIMS], bs[CPU_COPY_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        bsh[2 * i] = r[i], bd[2 * i] = xs[i] * ys[i], bs[2 * i] = 0;
        bsh[2 * i + 1] = xs[i], bd[2 * i + 1] = ys[i], bs[2 * i + 1] = xst[i];
    }
    shape_copy(2 * nd, bsh, y, sp_tensor_data(y), bd, x, sp_tensor_data(x), bs);
    return SP_OK;
}

sp_status cpu_slice(const sp_kernel_args *a) {
    sp_status st = shape_check_args(a, "slice", 1, 1);
    if (st) return st;
    sp_tensor *x = a->in[0], *y = a->out[0];
    int nd = x->ndim, nb = 0, ne = 0, ns = 0;
    const int64_t *begin = sp_attrs_get_ints(a->attrs, "begin", &nb);
    const int64_t *end = sp_attrs_get_ints(a->attrs, "end", &ne);
    const int64_t *step = sp_attrs_get_ints(a->attrs, "step", &ns);
    if (nb > nd || ne > nd || ns > nd)
        return sp_error(SP_ERR_ARG, "slice: begin/end/step have %d/%d/%d entries for %d dims", nb,
                        ne, ns, nd);
    int64_t shape[SP_MAX_DIMS], ss[SP_MAX_DIMS], ds[SP_MAX_DIMS], off = 0;
    for (int i = 0; i < nd; i++) {
        int64_t b = i < nb ? begin[i] : SP_SLICE_NONE, e = i < ne ? end[i] : SP_SLICE_NONE;
        int64_t s = i < ns ? step[i] : 1, first;
        if (s == 0) return sp_error(SP_ERR_ARG, "slice: step 0 on axis %d", i);
        shape[i] = sp_slice_range(x->shape[i], b, e, s, &first);
        /* an empty slice has no first element; keep the offset in range */
        if (shape[i] > 0) off += first * x->strides[i];
        /* with two or more elements |step| < n, so the product cannot overflow */
        ss[i] = shape[i] > 1 ? s * x->strides[i] : 0;
    }
    if ((st = shape_check_out("slice", y, nd, shape))) return st;
    cpu_contig_strides(nd, shape, ds);
    shape_copy(nd, shape, y, sp_tensor_data(y), ds, x, shape_elem_ptr(x, off), ss);
    return SP_OK;
}
