/*
 * infer_elementwise.c -- inference for the elementwise families: unary
 * (same shape and dtype), predicates (bool out), binary with numpy
 * broadcasting and promotion, comparisons, where, cast.
 *
 * Dtype rules, from ops.def:
 *   unary        y has x's dtype; softmax/log_softmax check their axis here
 *                too, since they share the family's shape rule.
 *   binary       both inputs must be dtypes the op takes (the table's mask
 *                names input 0; the same mask applies to input 1, so add
 *                of int and bool is refused symmetrically), result dtype =
 *                sp_dtype_promote(a, b).
 *   binary_div   as binary, but an integer (or bool) result becomes float32
 *                (true division, torch and MindSpore).
 *   binary_bool  any dtypes, bool out.
 *   where        cond any dtype; x and y any; promote(x, y) out; all three
 *                broadcast together.
 *   cast         the `dtype` attribute, required.
 *
 * Attribute checks that cannot wait for the kernel (a misspelled gelu
 * approximation) are made here so that the error names the primitive
 * before any memory is allocated.
 */
#include "ops/infer.h"

static sp_status elt_softmax_axis(const sp_op_def *def, const sp_meta *x, const sp_attrs *attrs) {
    int ax;
    return sp_norm_axis(def->name, sp_attrs_get_int(attrs, "axis", -1), x->ndim, &ax);
}

sp_status infer_unary(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                      int *n_out, sp_meta *out) {
    (void)n_in;
    sp_status st = SP_OK;
    if (def == &sp_op_defs[SP_OP_SOFTMAX] || def == &sp_op_defs[SP_OP_LOG_SOFTMAX]) {
        st = elt_softmax_axis(def, &in[0], attrs);
    } else if (def == &sp_op_defs[SP_OP_GELU]) {
        static const char *const modes[] = {"none", "tanh", NULL};
        int m;
        st = ops_get_choice(def, attrs, "approximate", modes, &m);
    } else if (def == &sp_op_defs[SP_OP_SOFTPLUS]) {
        double beta = sp_attrs_get_float(attrs, "beta", 1.0);
        if (!(beta != 0) || beta != beta)
            st = sp_error(SP_ERR_ARG, "softplus: beta must be nonzero, got %g", beta);
    }
    if (st) return st;
    out[0] = in[0];
    *n_out = 1;
    return SP_OK;
}

sp_status infer_unary_bool(const sp_op_def *def, int n_in, const sp_meta *in,
                           const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)def, (void)n_in, (void)attrs;
    out[0] = in[0];
    out[0].dtype = SP_BOOL;
    *n_out = 1;
    return SP_OK;
}

/* The broadcast shape of inputs 0 and 1 into out[0] (dtype left to caller). */
static sp_status elt_broadcast2(const sp_op_def *def, const sp_meta *in, sp_meta *out) {
    ops_meta_set(out, in[0].dtype, 0, NULL);
    return sp_broadcast_shapes(def->name, in[0].ndim, in[0].shape, in[1].ndim, in[1].shape,
                               &out->ndim, out->shape);
}

static sp_status elt_check_second(const sp_op_def *def, const sp_meta *b) {
    if (def->dtypes & SP_DTM(b->dtype)) return SP_OK;
    return sp_error(SP_ERR_DTYPE, "%s: dtype %s of input 1 is not supported (input 0 is fine)",
                    def->name, sp_dtype_name(b->dtype));
}

sp_status infer_binary(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in, (void)attrs;
    sp_status st = elt_check_second(def, &in[1]);
    if (!st) st = elt_broadcast2(def, in, &out[0]);
    if (st) return st;
    out[0].dtype = sp_dtype_promote(in[0].dtype, in[1].dtype);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_binary_div(const sp_op_def *def, int n_in, const sp_meta *in,
                           const sp_attrs *attrs, int *n_out, sp_meta *out) {
    sp_status st = infer_binary(def, n_in, in, attrs, n_out, out);
    if (st) return st;
    if (!sp_dtype_is_float(out[0].dtype)) out[0].dtype = SP_F32;
    return SP_OK;
}

sp_status infer_binary_bool(const sp_op_def *def, int n_in, const sp_meta *in,
                            const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in, (void)attrs;
    sp_status st = elt_check_second(def, &in[1]);
    if (!st) st = elt_broadcast2(def, in, &out[0]);
    if (st) return st;
    out[0].dtype = SP_BOOL;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_where(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                      int *n_out, sp_meta *out) {
    (void)n_in, (void)attrs;
    int n;
    int64_t s[SP_MAX_DIMS];
    sp_status st = sp_broadcast_shapes(def->name, in[0].ndim, in[0].shape, in[1].ndim,
                                       in[1].shape, &n, s);
    if (!st) st = sp_broadcast_shapes(def->name, n, s, in[2].ndim, in[2].shape, &n, s);
    if (st) {
        return sp_error(SP_ERR_SHAPE, "where: shapes %s, %s and %s cannot be broadcast",
                        ops_shape(&in[0]).s, ops_shape(&in[1]).s, ops_shape(&in[2]).s);
    }
    ops_meta_set(&out[0], sp_dtype_promote(in[1].dtype, in[2].dtype), n, s);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_cast(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                     int *n_out, sp_meta *out) {
    (void)n_in;
    if (!sp_attrs_find(attrs, "dtype"))
        return sp_error(SP_ERR_ARG, "cast: missing attribute 'dtype'");
    sp_dtype d;
    sp_status st = ops_get_dtype(def, attrs, "dtype", SP_F32, &d);
    if (st) return st;
    out[0] = in[0];
    out[0].dtype = d;
    *n_out = 1;
    return SP_OK;
}
