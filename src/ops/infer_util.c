/*
 * infer_util.c -- the small pieces every inference function is made of:
 * axis normalization, numpy broadcasting, overflow-checked size arithmetic,
 * required attributes and the uniform wording of their errors.
 *
 * Wording matters because tests and users grep for it: every message starts
 * with the primitive's name and a colon, names shapes as "(2, 3)" (Python's
 * tuple repr, "(4,)" for one dim, "()" for a scalar) and names the
 * attribute or input it is about.  Codes: SP_ERR_ARG for bad attributes and
 * axes, SP_ERR_SHAPE for shapes that do not fit together, SP_ERR_DTYPE for
 * dtypes.
 */
#include <stdio.h>
#include <string.h>

#include "ops/infer.h"

static ops_str ops_fmt(int n, const int64_t *v) {
    ops_str r;
    size_t len = 0;
    r.s[len++] = '(';
    for (int i = 0; i < n; i++) {
        int w = snprintf(r.s + len, sizeof r.s - len, i ? ", %lld" : "%lld", (long long)v[i]);
        if (w < 0 || (size_t)w >= sizeof r.s - len - 3) break;
        len += (size_t)w;
    }
    if (n == 1) r.s[len++] = ',';
    r.s[len++] = ')';
    r.s[len] = '\0';
    return r;
}

ops_str ops_shape(const sp_meta *m) { return ops_fmt(m->ndim, m->shape); }
ops_str ops_ints(int n, const int64_t *v) { return ops_fmt(n, v); }

void ops_meta_set(sp_meta *m, sp_dtype dtype, int ndim, const int64_t *shape) {
    memset(m, 0, sizeof *m);
    m->dtype = dtype;
    m->ndim = ndim;
    for (int i = 0; i < ndim; i++) m->shape[i] = shape[i];
}

int ops_same_shape(const sp_meta *a, const sp_meta *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

sp_status ops_check_shape(const char *op, const char *what, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "%s: %s has %d dims (at most %d)", op, what, ndim,
                        SP_MAX_DIMS);
    int64_t n = 16; /* bytes of the widest element: the product of the nonzero
                     * sizes times the itemsize must fit, so strides fit too */
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return sp_error(SP_ERR_ARG, "%s: negative size %lld in %s %s", op,
                            (long long)shape[i], what, ops_fmt(ndim, shape).s);
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(n, shape[i] ? shape[i] : 1, &n)) /* numpy: zeros too */
            return sp_error(SP_ERR_ARG, "%s: %s %s is too large", op, what,
                            ops_fmt(ndim, shape).s);
    return SP_OK;
}

sp_status ops_add(const char *op, int64_t a, int64_t b, int64_t *out) {
    if (__builtin_add_overflow(a, b, out))
        return sp_error(SP_ERR_ARG, "%s: size %lld + %lld overflows", op, (long long)a,
                        (long long)b);
    return SP_OK;
}

sp_status ops_mul(const char *op, int64_t a, int64_t b, int64_t *out) {
    if (__builtin_mul_overflow(a, b, out))
        return sp_error(SP_ERR_ARG, "%s: size %lld * %lld overflows", op, (long long)a,
                        (long long)b);
    return SP_OK;
}

sp_status sp_norm_axis(const char *op, int64_t axis, int ndim, int *out) {
    if (axis < -(int64_t)ndim || axis >= ndim || ndim == 0)
        return sp_error(SP_ERR_ARG, "%s: axis %lld is out of range for a tensor of %d dim%s", op,
                        (long long)axis, ndim, ndim == 1 ? "" : "s");
    *out = (int)(axis < 0 ? axis + ndim : axis);
    return SP_OK;
}

sp_status sp_broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                              int *nout, int64_t *out) {
    int n = na > nb ? na : nb;
    int64_t res[SP_MAX_DIMS];
    if (n > SP_MAX_DIMS) return sp_error(SP_ERR_SHAPE, "%s: too many dims to broadcast", op);
    for (int i = 0; i < n; i++) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da == db || db == 1)
            res[i] = da;
        else if (da == 1)
            res[i] = db;
        else
            return sp_error(SP_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast", op,
                            ops_fmt(na, a).s, ops_fmt(nb, b).s);
    }
    memcpy(out, res, (size_t)n * sizeof *res);
    *nout = n;
    return SP_OK;
}

const int64_t *ops_need_ints(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                             int *n) {
    const int64_t *v = sp_attrs_get_ints(attrs, name, n);
    if (!v) {
        const sp_attr *a = sp_attrs_find(attrs, name);
        if (a)
            sp_error(SP_ERR_ARG, "%s: attribute '%s' must be a list of ints", def->name, name);
        else
            sp_error(SP_ERR_ARG, "%s: missing attribute '%s'", def->name, name);
    }
    return v;
}

sp_status ops_get_dtype(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                        sp_dtype dflt, sp_dtype *out) {
    const sp_attr *a = sp_attrs_find(attrs, name);
    if (!a) {
        *out = dflt;
        return SP_OK;
    }
    if ((a->kind == SP_ATTR_DTYPE || a->kind == SP_ATTR_INT) && a->i >= 0 &&
        a->i < SP_DTYPE_COUNT) {
        *out = (sp_dtype)a->i;
        return SP_OK;
    }
    if (a->kind == SP_ATTR_STR && a->s && sp_dtype_parse(a->s, out) == SP_OK) return SP_OK;
    return sp_error(SP_ERR_DTYPE, "%s: attribute '%s' is not a valid dtype", def->name, name);
}

sp_status ops_need_float(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                         double *out) {
    const sp_attr *a = sp_attrs_find(attrs, name);
    if (!a) return sp_error(SP_ERR_ARG, "%s: missing attribute '%s'", def->name, name);
    if (a->kind != SP_ATTR_INT && a->kind != SP_ATTR_FLOAT && !(a->kind == SP_ATTR_INTS && a->n == 1))
        return sp_error(SP_ERR_ARG, "%s: attribute '%s' must be a number", def->name, name);
    *out = sp_attrs_get_float(attrs, name, 0);
    return SP_OK;
}

sp_status ops_get_choice(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                         const char *const *choices, int *idx) {
    const sp_attr *a = sp_attrs_find(attrs, name);
    *idx = 0;
    if (!a) return SP_OK;
    if (a->kind == SP_ATTR_STR && a->s)
        for (int i = 0; choices[i]; i++)
            if (strcmp(a->s, choices[i]) == 0) {
                *idx = i;
                return SP_OK;
            }
    char list[200];
    size_t len = 0;
    list[0] = '\0';
    for (int i = 0; choices[i] && len < sizeof list; i++) {
        int w = snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "", choices[i]);
        if (w < 0) break;
        len += (size_t)w;
    }
    return sp_error(SP_ERR_ARG, "%s: %s must be one of %s, got %s%s%s", def->name, name, list,
                    a->kind == SP_ATTR_STR ? "\"" : "",
                    a->kind == SP_ATTR_STR && a->s ? a->s : "a non-string",
                    a->kind == SP_ATTR_STR ? "\"" : "");
}

sp_status ops_need_index(const sp_op_def *def, const sp_meta *m, const char *what) {
    if (m->dtype == SP_I32 || m->dtype == SP_I64) return SP_OK;
    return sp_error(SP_ERR_DTYPE, "%s: %s must be int32 or int64, got %s", def->name, what,
                    sp_dtype_name(m->dtype));
}

sp_status ops_need_dtype(const sp_op_def *def, const sp_meta *m, const char *what, sp_dtype d) {
    if (m->dtype == d) return SP_OK;
    return sp_error(SP_ERR_DTYPE, "%s: %s must be %s like the input, got %s", def->name, what,
                    sp_dtype_name(d), sp_dtype_name(m->dtype));
}

sp_status ops_need_ndim(const sp_op_def *def, const sp_meta *m, const char *what, int ndim) {
    if (m->ndim == ndim) return SP_OK;
    return sp_error(SP_ERR_SHAPE, "%s: %s must have %d dim%s, got shape %s", def->name, what,
                    ndim, ndim == 1 ? "" : "s", ops_shape(m).s);
}

sp_status ops_need_shape(const sp_op_def *def, const sp_meta *m, const char *what, int ndim,
                         const int64_t *shape) {
    int same = m->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = m->shape[i] == shape[i];
    if (same) return SP_OK;
    return sp_error(SP_ERR_SHAPE, "%s: %s has shape %s, expected %s", def->name, what,
                    ops_shape(m).s, ops_fmt(ndim, shape).s);
}
