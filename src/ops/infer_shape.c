/*
 * infer_shape.c -- inference for the shape and data-movement primitives:
 * reshape, transpose, broadcast_to, concat, split, stack, pad, tile, slice,
 * gather, take_along_axis, scatter_add, one_hot.
 *
 * These are where user-supplied sizes enter the system (a reshape target,
 * pads, reps, slice bounds), so every size read from an attribute is
 * checked for sign and every sum or product goes through ops_add/ops_mul:
 * after inference a kernel may index with the result without another
 * check.  Index *values* (gather, take_along_axis, scatter_add) are data,
 * unknown here; their kernels check ranges and report errors.
 *
 * Slice follows Python's slice.indices(): bounds are clamped, negative
 * bounds count from the end, SP_SLICE_NONE (INT64_MIN) stands for an
 * omitted begin or end, and the step may be negative but not 0.  begin,
 * end and step each have one entry per axis when present; absent ones
 * mean "whole axis" and step 1.
 */
#include "core/internal.h"
#include "ops/infer.h"

sp_status infer_reshape(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                        int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int n;
    const int64_t *shape = ops_need_ints(def, attrs, "shape", &n);
    if (!shape) return sp_last_status();
    if (n > SP_MAX_DIMS)
        return sp_error(SP_ERR_ARG, "reshape: target %s has %d dims (at most %d)",
                        ops_ints(n, shape).s, n, SP_MAX_DIMS);
    int64_t numel = 1, known = 1;
    for (int i = 0; i < x->ndim; i++) numel *= x->shape[i];
    int infer_at = -1;
    int64_t s[SP_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        s[i] = shape[i];
        if (shape[i] == -1) {
            if (infer_at >= 0)
                return sp_error(SP_ERR_ARG, "reshape: more than one -1 in target %s",
                                ops_ints(n, shape).s);
            infer_at = i;
        } else if (shape[i] < 0) {
            return sp_error(SP_ERR_ARG, "reshape: negative size %lld in target %s",
                            (long long)shape[i], ops_ints(n, shape).s);
        } else if (__builtin_mul_overflow(known, shape[i], &known)) {
            known = -1; /* too large: cannot match any real tensor */
            break;
        }
    }
    if (known >= 0 && infer_at >= 0) {
        if (known != 0 && numel % known == 0) {
            s[infer_at] = numel / known;
            known = numel;
        } else {
            known = -1; /* size 0 with -1 is ambiguous (numpy refuses too) */
        }
    }
    if (known != numel)
        return sp_error(SP_ERR_SHAPE, "reshape: cannot reshape %s into %s", ops_shape(x).s,
                        ops_ints(n, shape).s);
    ops_meta_set(&out[0], x->dtype, n, s);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_transpose(const sp_op_def *def, int n_in, const sp_meta *in,
                          const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in, (void)def;
    const sp_meta *x = &in[0];
    int n;
    const int64_t *perm = sp_attrs_get_ints(attrs, "perm", &n);
    int64_t s[SP_MAX_DIMS];
    if (!perm) {
        if (sp_attrs_find(attrs, "perm"))
            return sp_error(SP_ERR_ARG, "transpose: attribute 'perm' must be a list of ints");
        for (int i = 0; i < x->ndim; i++) s[i] = x->shape[x->ndim - 1 - i];
    } else {
        if (n != x->ndim)
            return sp_error(SP_ERR_ARG, "transpose: perm %s does not match a tensor of shape %s",
                            ops_ints(n, perm).s, ops_shape(x).s);
        int seen[SP_MAX_DIMS] = {0};
        for (int i = 0; i < n; i++) {
            int ax;
            if (perm[i] < -(int64_t)n || perm[i] >= n)
                return sp_error(SP_ERR_ARG, "transpose: axis %lld in perm %s is out of range "
                                "for a tensor of %d dims", (long long)perm[i],
                                ops_ints(n, perm).s, n);
            ax = (int)(perm[i] < 0 ? perm[i] + n : perm[i]);
            if (seen[ax])
                return sp_error(SP_ERR_ARG, "transpose: perm %s repeats axis %d",
                                ops_ints(n, perm).s, ax);
            seen[ax] = 1;
            s[i] = x->shape[ax];
        }
    }
    ops_meta_set(&out[0], x->dtype, x->ndim, s);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_broadcast_to(const sp_op_def *def, int n_in, const sp_meta *in,
                             const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int n;
    const int64_t *shape = ops_need_ints(def, attrs, "shape", &n);
    if (!shape) return sp_last_status();
    sp_status st = ops_check_shape(def->name, "shape", n, shape);
    if (st) return st;
    int ok = n >= x->ndim;
    for (int i = 0; ok && i < x->ndim; i++) {
        int64_t d = x->shape[i], t = shape[i + n - x->ndim];
        ok = d == t || d == 1;
    }
    if (!ok)
        return sp_error(SP_ERR_SHAPE, "broadcast_to: cannot broadcast %s to %s", ops_shape(x).s,
                        ops_ints(n, shape).s);
    ops_meta_set(&out[0], x->dtype, n, shape);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_concat(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    const sp_meta *x = &in[0];
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    int ax;
    sp_status st = sp_norm_axis(def->name, axis, x->ndim, &ax);
    if (st) return st;
    sp_meta r = *x;
    for (int k = 1; k < n_in; k++) {
        const sp_meta *y = &in[k];
        int ok = y->ndim == x->ndim;
        for (int i = 0; ok && i < x->ndim; i++) ok = i == ax || y->shape[i] == x->shape[i];
        if (!ok)
            return sp_error(SP_ERR_SHAPE,
                            "concat: input %d of shape %s does not match input 0 of shape %s "
                            "outside axis %lld",
                            k, ops_shape(y).s, ops_shape(x).s, (long long)axis);
        st = ops_add(def->name, r.shape[ax], y->shape[ax], &r.shape[ax]);
        if (st) return st;
        r.dtype = sp_dtype_promote(r.dtype, y->dtype);
    }
    out[0] = r;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_split(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                      int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    int ax, n;
    sp_status st = sp_norm_axis(def->name, axis, x->ndim, &ax);
    if (st) return st;
    const int64_t *sizes = ops_need_ints(def, attrs, "sizes", &n);
    if (!sizes) return sp_last_status();
    if (n < 1 || n > SP_MAX_OUTPUTS)
        return sp_error(SP_ERR_ARG, "split: %d sizes given; 1 to %d outputs are possible", n,
                        SP_MAX_OUTPUTS);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0)
            return sp_error(SP_ERR_ARG, "split: negative size %lld in sizes %s",
                            (long long)sizes[i], ops_ints(n, sizes).s);
        if (__builtin_add_overflow(total, sizes[i], &total)) total = -1;
        if (total < 0) break;
    }
    if (total != x->shape[ax])
        return sp_error(SP_ERR_SHAPE,
                        "split: sizes %s do not add up to %lld, the size of axis %lld of %s",
                        ops_ints(n, sizes).s, (long long)x->shape[ax], (long long)axis,
                        ops_shape(x).s);
    for (int i = 0; i < n; i++) {
        out[i] = *x;
        out[i].shape[ax] = sizes[i];
    }
    *n_out = n;
    return SP_OK;
}

sp_status infer_stack(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                      int *n_out, sp_meta *out) {
    const sp_meta *x = &in[0];
    if (x->ndim + 1 > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "stack: inputs of shape %s would give more than %d dims",
                        ops_shape(x).s, SP_MAX_DIMS);
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    int ax;
    sp_status st = sp_norm_axis(def->name, axis, x->ndim + 1, &ax);
    if (st) return st;
    sp_dtype dt = x->dtype;
    for (int k = 1; k < n_in; k++) {
        if (!ops_same_shape(&in[k], x))
            return sp_error(SP_ERR_SHAPE, "stack: input %d has shape %s, input 0 has %s", k,
                            ops_shape(&in[k]).s, ops_shape(x).s);
        dt = sp_dtype_promote(dt, in[k].dtype);
    }
    int64_t s[SP_MAX_DIMS];
    for (int i = 0, j = 0; i <= x->ndim; i++) s[i] = i == ax ? n_in : x->shape[j++];
    ops_meta_set(&out[0], dt, x->ndim + 1, s);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_pad(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                    int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    static const char *const modes[] = {"constant", "reflect", NULL};
    int mode, n;
    sp_status st = ops_get_choice(def, attrs, "mode", modes, &mode);
    if (st) return st;
    const int64_t *pads = sp_attrs_get_ints(attrs, "pads", &n);
    if (!pads && x->ndim > 0) return ops_need_ints(def, attrs, "pads", &n), sp_last_status();
    if (n != 2 * x->ndim)
        return sp_error(SP_ERR_ARG, "pad: pads %s must have %d entries (2 per dim) for shape %s",
                        ops_ints(n, pads).s, 2 * x->ndim, ops_shape(x).s);
    sp_meta r = *x;
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = pads[2 * i], a = pads[2 * i + 1];
        if (b < 0 || a < 0)
            return sp_error(SP_ERR_ARG, "pad: negative pad in pads %s", ops_ints(n, pads).s);
        if (mode == 1 && (b >= x->shape[i] || a >= x->shape[i]) && (a > 0 || b > 0))
            return sp_error(SP_ERR_ARG,
                            "pad: reflect pads %s must be smaller than dim %d of shape %s",
                            ops_ints(n, pads).s, i, ops_shape(x).s);
        if ((st = ops_add(def->name, r.shape[i], b, &r.shape[i])) ||
            (st = ops_add(def->name, r.shape[i], a, &r.shape[i])))
            return st;
    }
    st = ops_check_shape(def->name, "padded shape", r.ndim, r.shape);
    if (st) return st;
    out[0] = r;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_tile(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                     int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int n;
    const int64_t *reps = ops_need_ints(def, attrs, "reps", &n);
    if (!reps) return sp_last_status();
    int nd = n > x->ndim ? n : x->ndim;
    if (nd > SP_MAX_DIMS)
        return sp_error(SP_ERR_ARG, "tile: reps %s would give more than %d dims",
                        ops_ints(n, reps).s, SP_MAX_DIMS);
    int64_t s[SP_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        int ir = i - (nd - n), ix = i - (nd - x->ndim);
        int64_t r = ir >= 0 ? reps[ir] : 1, d = ix >= 0 ? x->shape[ix] : 1;
        if (r < 0)
            return sp_error(SP_ERR_ARG, "tile: negative repetition %lld in reps %s",
                            (long long)r, ops_ints(n, reps).s);
        sp_status st = ops_mul(def->name, d, r, &s[i]);
        if (st) return st;
    }
    sp_status st = ops_check_shape(def->name, "tiled shape", nd, s);
    if (st) return st;
    ops_meta_set(&out[0], x->dtype, nd, s);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_slice(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                      int *n_out, sp_meta *out) {
    (void)n_in, (void)def;
    const sp_meta *x = &in[0];
    static const char *const names[3] = {"begin", "end", "step"};
    const int64_t *v[3];
    for (int k = 0; k < 3; k++) {
        int n;
        v[k] = sp_attrs_get_ints(attrs, names[k], &n);
        if (!v[k] && sp_attrs_find(attrs, names[k]))
            return sp_error(SP_ERR_ARG, "slice: attribute '%s' must be a list of ints", names[k]);
        if (v[k] && n != x->ndim)
            return sp_error(SP_ERR_ARG, "slice: %s %s must have one entry per dim of shape %s",
                            names[k], ops_ints(n, v[k]).s, ops_shape(x).s);
    }
    sp_meta r = *x;
    for (int i = 0; i < x->ndim; i++) {
        int64_t b = v[0] ? v[0][i] : SP_SLICE_NONE, e = v[1] ? v[1][i] : SP_SLICE_NONE;
        int64_t s = v[2] ? v[2][i] : 1, first;
        if (s == 0)
            return sp_error(SP_ERR_ARG, "slice: step 0 on axis %d (step %s) for shape %s", i,
                            ops_ints(x->ndim, v[2]).s, ops_shape(x).s);
        r.shape[i] = sp_slice_range(x->shape[i], b, e, s, &first);
    }
    out[0] = r;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_gather(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0], *idx = &in[1];
    sp_status st = ops_need_index(def, idx, "indices");
    if (st) return st;
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    int ax;
    if ((st = sp_norm_axis(def->name, axis, x->ndim, &ax))) return st;
    int nd = x->ndim - 1 + idx->ndim;
    if (nd > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "gather: x %s and indices %s give more than %d dims",
                        ops_shape(x).s, ops_shape(idx).s, SP_MAX_DIMS);
    if (x->shape[ax] == 0) {
        int64_t ni = 1;
        for (int i = 0; i < idx->ndim; i++) ni *= idx->shape[i];
        if (ni > 0)
            return sp_error(SP_ERR_SHAPE, "gather: cannot take indices %s from axis %lld of "
                            "size 0 in %s", ops_shape(idx).s, (long long)axis, ops_shape(x).s);
    }
    int64_t s[SP_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < ax; i++) s[n++] = x->shape[i];
    for (int i = 0; i < idx->ndim; i++) s[n++] = idx->shape[i];
    for (int i = ax + 1; i < x->ndim; i++) s[n++] = x->shape[i];
    if ((st = ops_check_shape(def->name, "result shape", n, s))) return st;
    ops_meta_set(&out[0], x->dtype, n, s);
    *n_out = 1;
    return SP_OK;
}

/* indices has x's ndim and is no larger than x outside `ax` (torch.gather
 * and scatter_add). */
static sp_status shp_check_along(const sp_op_def *def, const sp_meta *x, const sp_meta *idx,
                                 int ax, int64_t axis) {
    int ok = idx->ndim == x->ndim;
    for (int i = 0; ok && i < x->ndim; i++) ok = i == ax || idx->shape[i] <= x->shape[i];
    if (!ok)
        return sp_error(SP_ERR_SHAPE,
                        "%s: indices of shape %s do not fit x of shape %s (same ndim, no larger "
                        "outside axis %lld)",
                        def->name, ops_shape(idx).s, ops_shape(x).s, (long long)axis);
    return SP_OK;
}

sp_status infer_take_along_axis(const sp_op_def *def, int n_in, const sp_meta *in,
                                const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0], *idx = &in[1];
    sp_status st = ops_need_index(def, idx, "indices");
    if (st) return st;
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    int ax;
    if ((st = sp_norm_axis(def->name, axis, x->ndim, &ax))) return st;
    if ((st = shp_check_along(def, x, idx, ax, axis))) return st;
    ops_meta_set(&out[0], x->dtype, idx->ndim, idx->shape);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_scatter_add(const sp_op_def *def, int n_in, const sp_meta *in,
                            const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0], *idx = &in[1], *upd = &in[2];
    sp_status st = ops_need_index(def, idx, "indices");
    if (st) return st;
    if ((st = ops_need_dtype(def, upd, "updates", x->dtype))) return st;
    int64_t axis = sp_attrs_get_int(attrs, "axis", 0);
    int ax;
    if ((st = sp_norm_axis(def->name, axis, x->ndim, &ax))) return st;
    if (!ops_same_shape(idx, upd))
        return sp_error(SP_ERR_SHAPE, "scatter_add: indices %s and updates %s differ in shape",
                        ops_shape(idx).s, ops_shape(upd).s);
    if ((st = shp_check_along(def, x, idx, ax, axis))) return st;
    out[0] = *x;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_one_hot(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                        int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *idx = &in[0];
    if (!sp_attrs_find(attrs, "depth")) return sp_error(SP_ERR_ARG, "one_hot: missing attribute 'depth'");
    int64_t depth = sp_attrs_get_int(attrs, "depth", -1);
    if (depth < 0)
        return sp_error(SP_ERR_ARG, "one_hot: depth must be a non-negative int, got %lld",
                        (long long)depth);
    if (idx->ndim + 1 > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "one_hot: indices of shape %s give more than %d dims",
                        ops_shape(idx).s, SP_MAX_DIMS);
    sp_dtype dt;
    sp_status st = ops_get_dtype(def, attrs, "dtype", SP_F32, &dt);
    if (st) return st;
    sp_meta r = *idx;
    r.shape[r.ndim++] = depth;
    r.dtype = dt;
    if ((st = ops_check_shape(def->name, "result shape", r.ndim, r.shape))) return st;
    out[0] = r;
    *n_out = 1;
    return SP_OK;
}
