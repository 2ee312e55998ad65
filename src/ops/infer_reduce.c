/*
 * infer_reduce.c -- inference for reductions and the ops that work along
 * one axis: sum/mean/max/min/prod/logsumexp, argmax/argmin, cumsum, sort,
 * topk.
 *
 * Reductions take `axes` (a list of ints, or a single int) and `keepdims`.
 * An absent or EMPTY axes list means every axis (MindSpore's convention for
 * axis=()); kernels may therefore treat "no axes" and "n == 0" alike.
 * Axes may be negative; a repeated axis is an error, as in numpy.
 *
 * Result dtypes (ops.def): sum, prod and cumsum of integers or bool give
 * int64; every other reduction keeps the input dtype; argmax/argmin give
 * int64.  max, min, argmax and argmin over an empty axis have no answer and
 * are refused here, before any kernel runs.
 *
 * argmax/argmin take a single `axis`; absent means the flattened tensor
 * (a 0-d result, or all ones with keepdims, as numpy).
 */
#include "ops/infer.h"

static int red_int_widens(const sp_op_def *def) {
    return def == &sp_op_defs[SP_OP_SUM] || def == &sp_op_defs[SP_OP_PROD] ||
           def == &sp_op_defs[SP_OP_CUMSUM];
}

static int red_needs_nonempty(const sp_op_def *def) {
    return def == &sp_op_defs[SP_OP_MAX] || def == &sp_op_defs[SP_OP_MIN] ||
           def == &sp_op_defs[SP_OP_ARGMAX] || def == &sp_op_defs[SP_OP_ARGMIN];
}

/* Reduces x over the axes flagged in red[] into out. */
static sp_status red_finish(const sp_op_def *def, const sp_meta *x, const int *red, int keepdims,
                            sp_dtype dtype, sp_meta *out) {
    /* numpy refuses only when some output element would have no input:
     * max over axis 1 of (3, 0) has no answer, over axis 0 of it is empty */
    int64_t kept = 1;
    for (int i = 0; i < x->ndim; i++)
        if (!red[i]) kept = kept && x->shape[i] != 0;
    if (red_needs_nonempty(def) && kept)
        for (int i = 0; i < x->ndim; i++)
            if (red[i] && x->shape[i] == 0)
                return sp_error(SP_ERR_SHAPE,
                                "%s: cannot reduce over axis %d of size 0 in shape %s (an "
                                "empty reduction has no %s)",
                                def->name, i, ops_shape(x).s,
                                def == &sp_op_defs[SP_OP_MAX] || def == &sp_op_defs[SP_OP_ARGMAX]
                                    ? "maximum"
                                    : "minimum");
    int n = 0;
    int64_t s[SP_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        if (!red[i])
            s[n++] = x->shape[i];
        else if (keepdims)
            s[n++] = 1;
    }
    ops_meta_set(out, dtype, n, s);
    return SP_OK;
}

sp_status infer_reduce(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int red[SP_MAX_DIMS] = {0}, n = 0;
    const int64_t *axes = sp_attrs_get_ints(attrs, "axes", &n);
    if (!axes && sp_attrs_find(attrs, "axes"))
        return sp_error(SP_ERR_ARG, "%s: attribute 'axes' must be a list of ints", def->name);
    if (!axes && sp_attrs_find(attrs, "axis")) /* kernels read only 'axes' */
        return sp_error(SP_ERR_ARG, "%s: takes attribute 'axes', not 'axis'", def->name);
    if (n == 0) {
        for (int i = 0; i < x->ndim; i++) red[i] = 1;
    } else {
        for (int k = 0; k < n; k++) {
            int ax;
            sp_status st = sp_norm_axis(def->name, axes[k], x->ndim, &ax);
            if (st) return st;
            if (red[ax])
                return sp_error(SP_ERR_ARG, "%s: axis %lld is repeated in axes %s", def->name,
                                (long long)axes[k], ops_ints(n, axes).s);
            red[ax] = 1;
        }
    }
    sp_dtype dt = x->dtype;
    if (red_int_widens(def) && !sp_dtype_is_float(dt)) dt = SP_I64;
    int keep = sp_attrs_get_int(attrs, "keepdims", 0) != 0;
    /* a 0-d input reduces to itself: nothing to reject even for max */
    sp_status st = red_finish(def, x, red, keep, dt, &out[0]);
    if (st) return st;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_arg_reduce(const sp_op_def *def, int n_in, const sp_meta *in,
                           const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int red[SP_MAX_DIMS] = {0};
    int keep = sp_attrs_get_int(attrs, "keepdims", 0) != 0;
    const sp_attr *a = sp_attrs_find(attrs, "axis");
    if (a) {
        int n = 0;
        const int64_t *v = sp_attrs_get_ints(attrs, "axis", &n);
        if (!v || n != 1)
            return sp_error(SP_ERR_ARG, "%s: attribute 'axis' must be one int", def->name);
        int ax;
        sp_status st = sp_norm_axis(def->name, v[0], x->ndim, &ax);
        if (st) return st;
        red[ax] = 1;
    } else {
        int64_t numel = 1;
        for (int i = 0; i < x->ndim; i++) {
            red[i] = 1;
            numel *= x->shape[i]; /* input metas come from real tensors: no overflow */
        }
        if (numel == 0)
            return sp_error(SP_ERR_SHAPE, "%s: cannot reduce an empty tensor of shape %s",
                            def->name, ops_shape(x).s);
    }
    sp_status st = red_finish(def, x, red, keep, SP_I64, &out[0]);
    if (st) return st;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_cumsum(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in;
    int ax;
    sp_status st = sp_norm_axis(def->name, sp_attrs_get_int(attrs, "axis", 0), in[0].ndim, &ax);
    if (st) return st;
    out[0] = in[0];
    if (!sp_dtype_is_float(out[0].dtype)) out[0].dtype = SP_I64;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_sort(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                     int *n_out, sp_meta *out) {
    (void)n_in;
    int ax;
    sp_status st = sp_norm_axis(def->name, sp_attrs_get_int(attrs, "axis", -1), in[0].ndim, &ax);
    if (st) return st;
    out[0] = in[0];
    out[1] = in[0];
    out[1].dtype = SP_I64;
    *n_out = 2;
    return SP_OK;
}

sp_status infer_topk(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                     int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    const sp_attr *ka = sp_attrs_find(attrs, "k");
    if (!ka) return sp_error(SP_ERR_ARG, "topk: missing attribute 'k'");
    int64_t axis = sp_attrs_get_int(attrs, "axis", -1);
    int ax;
    sp_status st = sp_norm_axis(def->name, axis, x->ndim, &ax);
    if (st) return st;
    int64_t k = sp_attrs_get_int(attrs, "k", -1);
    if (k < 0 || k > x->shape[ax])
        return sp_error(SP_ERR_ARG, "topk: k %lld is out of range for axis %lld of size %lld in %s",
                        (long long)k, (long long)axis, (long long)x->shape[ax], ops_shape(x).s);
    out[0] = *x;
    out[0].shape[ax] = k;
    out[1] = out[0];
    out[1].dtype = SP_I64;
    *n_out = 2;
    return SP_OK;
}
