/*
 * view.c -- tensors that share their base's buffer: reshape, permute,
 * transpose, slice, expand, squeeze, unsqueeze.
 *
 * A view is only a new (shape, strides, offset) over the same buffer, so
 * each function here is arithmetic on the layout plus a check that the
 * request makes sense.  Nothing reads or writes elements, except reshape in
 * the one case numpy also copies: when the requested shape cannot be
 * expressed with strides over the existing layout (e.g. flattening a
 * transposed matrix), reshape returns a contiguous copy instead.
 *
 * The layout invariants of tensor.c carry over without a bounds check:
 * every view reaches a subset of the elements its base reaches (slicing
 * clamps like Python, expand adds stride-0 axes, the others permute or drop
 * size-1 axes), so a view of a valid tensor is valid.
 *
 * Every function sets *out to NULL first, returns SP_OK with one new
 * reference in *out, or an error whose message names the operation, the
 * input shape and the offending argument.
 */
#include "core/tensor_util.h"

#define SHAPE_BUF 160

static sp_status view_begin(const char *what, sp_tensor *t, sp_tensor **out) {
    if (out) *out = NULL;
    if (!t || !out) return sp_error(SP_ERR_ARG, "%s: NULL argument", what);
    return SP_OK;
}

static sp_status view_make(sp_tensor *t, int ndim, const int64_t *shape, const int64_t *strides,
                           int64_t offset, sp_tensor **out) {
    *out = core_tensor_wrap(t->buf, t->dtype, ndim, shape, strides, offset);
    return *out ? SP_OK : SP_ERR_NOMEM;
}

/* numpy's _attempt_nocopy_reshape: walks old and new shapes (size-1 axes
 * dropped from the old one) in groups whose products agree; a group of old
 * axes can be re-split only if it is itself contiguous in C order.  Returns
 * 1 and fills new_strides when a view is possible.  numel > 0. */
static int view_reshape_strides(const sp_tensor *t, int new_nd, const int64_t *new_shape,
                                int64_t *new_strides) {
    int64_t od[SP_MAX_DIMS], os[SP_MAX_DIMS];
    int old_nd = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] != 1) {
            od[old_nd] = t->shape[i];
            os[old_nd] = t->strides[i];
            old_nd++;
        }
    }
    int oi = 0, oj = 1, ni = 0, nj = 1;
    while (ni < new_nd && oi < old_nd) {
        int64_t np = new_shape[ni], op = od[oi];
        while (np != op) {
            if (np < op)
                np *= new_shape[nj++];
            else
                op *= od[oj++];
        }
        for (int ok = oi; ok < oj - 1; ok++)
            if (os[ok] != od[ok + 1] * os[ok + 1]) return 0;
        new_strides[nj - 1] = os[oj - 1];
        for (int nk = nj - 1; nk > ni; nk--) new_strides[nk - 1] = new_strides[nk] * new_shape[nk];
        ni = nj++;
        oi = oj++;
    }
    int64_t last = ni >= 1 ? new_strides[ni - 1] : 1;
    for (int nk = ni; nk < new_nd; nk++) new_strides[nk] = last;
    return 1;
}

sp_status sp_tensor_reshape(sp_tensor *t, int ndim, const int64_t *shape, sp_tensor **out) {
    sp_status st = view_begin("reshape", t, out);
    if (st) return st;
    char a[SHAPE_BUF], b[SHAPE_BUF];
    if (ndim < 0 || ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_ARG, "reshape: ndim %d out of range [0, %d]", ndim, SP_MAX_DIMS);
    if (ndim > 0 && !shape) return sp_error(SP_ERR_ARG, "reshape: NULL shape for ndim %d", ndim);
    int64_t numel = sp_tensor_numel(t);
    int64_t ns[SP_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        ns[i] = shape[i];
        if (shape[i] == -1) {
            if (infer >= 0)
                return sp_error(SP_ERR_SHAPE, "reshape: can only specify one unknown dimension in "
                                              "shape %s (input shape %s)",
                                sp_shape_str(ndim, shape, b, sizeof b),
                                sp_shape_str(t->ndim, t->shape, a, sizeof a));
            infer = i;
        } else if (shape[i] < 0) {
            return sp_error(SP_ERR_SHAPE, "reshape: negative size %lld in shape %s (input shape %s)",
                            (long long)shape[i], sp_shape_str(ndim, shape, b, sizeof b),
                            sp_shape_str(t->ndim, t->shape, a, sizeof a));
        } else if (__builtin_mul_overflow(known, shape[i], &known)) {
            known = -1; /* cannot equal any numel: reported below */
            break;
        }
    }
    if (infer >= 0 && known > 0 && numel % known == 0)
        ns[infer] = numel / known;
    if ((infer >= 0 && !(known > 0 && numel % known == 0)) || (infer < 0 && known != numel))
        return sp_error(SP_ERR_SHAPE,
                        "reshape: cannot reshape a tensor of shape %s (%lld elements) into shape %s",
                        sp_shape_str(t->ndim, t->shape, a, sizeof a), (long long)numel,
                        sp_shape_str(ndim, shape, b, sizeof b));
    int64_t strides[SP_MAX_DIMS];
    if (numel == 0) {
        core_contiguous_strides(ndim, ns, strides);
        return view_make(t, ndim, ns, strides, t->offset, out);
    }
    if (view_reshape_strides(t, ndim, ns, strides))
        return view_make(t, ndim, ns, strides, t->offset, out);
    /* No strides express it: a contiguous copy, then a view of that. */
    sp_tensor *c;
    st = sp_tensor_contiguous(t, &c);
    if (st) return st;
    core_contiguous_strides(ndim, ns, strides);
    st = view_make(c, ndim, ns, strides, c->offset, out);
    sp_tensor_release(c);
    return st;
}

sp_status sp_tensor_permute(sp_tensor *t, const int *perm, sp_tensor **out) {
    sp_status st = view_begin("permute", t, out);
    if (st) return st;
    if (t->ndim > 0 && !perm) return sp_error(SP_ERR_ARG, "permute: NULL perm");
    int seen[SP_MAX_DIMS] = {0};
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        int p = perm[i] < 0 ? perm[i] + t->ndim : perm[i];
        if (p < 0 || p >= t->ndim || seen[p]) {
            char a[SHAPE_BUF], pb[SHAPE_BUF];
            int64_t pv[SP_MAX_DIMS];
            for (int j = 0; j < t->ndim; j++) pv[j] = perm[j];
            return sp_error(SP_ERR_ARG, "permute: %s is not a permutation of the %d axes of shape %s",
                            sp_shape_str(t->ndim, pv, pb, sizeof pb), t->ndim,
                            sp_shape_str(t->ndim, t->shape, a, sizeof a));
        }
        seen[p] = 1;
        shape[i] = t->shape[p];
        strides[i] = t->strides[p];
    }
    return view_make(t, t->ndim, shape, strides, t->offset, out);
}

sp_status sp_tensor_transpose(sp_tensor *t, int dim0, int dim1, sp_tensor **out) {
    sp_status st = view_begin("transpose", t, out);
    if (st) return st;
    int a, b;
    if ((st = core_norm_axis("transpose", dim0, t->ndim, &a)) ||
        (st = core_norm_axis("transpose", dim1, t->ndim, &b)))
        return st;
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        int src = i == a ? b : i == b ? a : i;
        shape[i] = t->shape[src];
        strides[i] = t->strides[src];
    }
    return view_make(t, t->ndim, shape, strides, t->offset, out);
}

sp_status sp_tensor_slice(sp_tensor *t, int axis, int64_t start, int64_t stop, int64_t step,
                          sp_tensor **out) {
    sp_status st = view_begin("slice", t, out);
    if (st) return st;
    int ax;
    if ((st = core_norm_axis("slice", axis, t->ndim, &ax))) return st;
    if (step == 0) return sp_error(SP_ERR_ARG, "slice: step cannot be zero (axis %d)", axis);
    if (step == INT64_MIN) step = -INT64_MAX; /* same slice; keeps -step defined */
    int64_t n = sp_slice_range(t->shape[ax], start, stop, step, &start);
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) {
        shape[i] = t->shape[i];
        strides[i] = t->strides[i];
    }
    int64_t offset = t->offset;
    shape[ax] = n;
    /* With fewer than two elements the step is never taken, and a huge step
     * times the stride could overflow; otherwise |step| < len keeps it in
     * range of the base's own reach. */
    if (n >= 2) strides[ax] = t->strides[ax] * step;
    if (n >= 1) offset += start * t->strides[ax];
    return view_make(t, t->ndim, shape, strides, offset, out);
}

sp_status sp_tensor_expand(sp_tensor *t, int ndim, const int64_t *shape, sp_tensor **out) {
    sp_status st = view_begin("expand", t, out);
    if (st) return st;
    char a[SHAPE_BUF], b[SHAPE_BUF];
    if (ndim < 0 || ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_ARG, "expand: ndim %d out of range [0, %d]", ndim, SP_MAX_DIMS);
    if (ndim > 0 && !shape) return sp_error(SP_ERR_ARG, "expand: NULL shape for ndim %d", ndim);
    if (ndim < t->ndim)
        return sp_error(SP_ERR_SHAPE,
                        "expand: cannot broadcast shape %s to %s: the target has fewer dims",
                        sp_shape_str(t->ndim, t->shape, a, sizeof a),
                        sp_shape_str(ndim, shape, b, sizeof b));
    int64_t ns[SP_MAX_DIMS], strides[SP_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int j = i - lead; /* t's axis aligned with i, counting from the right */
        int64_t want = shape[i];
        if (j >= 0 && want == -1) want = t->shape[j]; /* PyTorch's "keep this size" */
        if (want < 0)
            return sp_error(SP_ERR_SHAPE, "expand: negative size %lld in target shape %s",
                            (long long)shape[i], sp_shape_str(ndim, shape, b, sizeof b));
        ns[i] = want;
        if (j < 0) {
            strides[i] = 0;
        } else if (t->shape[j] == want) {
            strides[i] = t->strides[j];
        } else if (t->shape[j] == 1) {
            strides[i] = 0;
        } else {
            return sp_error(SP_ERR_SHAPE,
                            "expand: cannot broadcast shape %s to %s (axis %d: size %lld vs %lld)",
                            sp_shape_str(t->ndim, t->shape, a, sizeof a),
                            sp_shape_str(ndim, shape, b, sizeof b), j, (long long)t->shape[j],
                            (long long)want);
        }
    }
    int64_t numel;
    if ((st = core_check_shape("expand", ndim, ns, &numel))) return st;
    return view_make(t, ndim, ns, strides, t->offset, out);
}

sp_status sp_tensor_squeeze(sp_tensor *t, int axis, sp_tensor **out) {
    sp_status st = view_begin("squeeze", t, out);
    if (st) return st;
    int ax = -1;
    if (axis != SP_ALL_AXES) {
        if ((st = core_norm_axis("squeeze", axis, t->ndim, &ax))) return st;
        if (t->shape[ax] != 1) {
            char a[SHAPE_BUF];
            return sp_error(SP_ERR_SHAPE,
                            "squeeze: cannot squeeze axis %d of shape %s: its size is %lld, not 1",
                            axis, sp_shape_str(t->ndim, t->shape, a, sizeof a),
                            (long long)t->shape[ax]);
        }
    }
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        int drop = axis == SP_ALL_AXES ? t->shape[i] == 1 : i == ax;
        if (drop) continue;
        shape[n] = t->shape[i];
        strides[n] = t->strides[i];
        n++;
    }
    return view_make(t, n, shape, strides, t->offset, out);
}

sp_status sp_tensor_unsqueeze(sp_tensor *t, int axis, sp_tensor **out) {
    sp_status st = view_begin("unsqueeze", t, out);
    if (st) return st;
    if (t->ndim >= SP_MAX_DIMS)
        return sp_error(SP_ERR_ARG, "unsqueeze: a tensor of %d dims cannot gain another (max %d)",
                        t->ndim, SP_MAX_DIMS);
    int ax;
    if ((st = core_norm_axis("unsqueeze", axis, t->ndim + 1, &ax))) return st;
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
    for (int i = 0, j = 0; i <= t->ndim; i++) {
        if (i == ax) {
            shape[i] = 1;
            /* Any stride works for a size-1 axis; this one keeps a contiguous
             * tensor's strides in C order. */
            strides[i] = j < t->ndim ? t->strides[j] * t->shape[j] : 1;
            continue;
        }
        shape[i] = t->shape[j];
        strides[i] = t->strides[j];
        j++;
    }
    return view_make(t, t->ndim + 1, shape, strides, t->offset, out);
}
