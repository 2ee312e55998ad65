/*
 * infer_nn.c -- inference for matmul and the neural-network primitives:
 * the softmax cross-entropy pair, layer_norm and batch_norm with their
 * backward ops, dropout and embedding.
 *
 * matmul follows numpy.matmul after the optional transposes (which swap the
 * last two dims of a >= 2-D input; a 1-D input has nothing to swap): a 1-D
 * a is a row [1, K] and a 1-D b a column [K, 1], and those dims are dropped
 * from the result; leading (batch) dims broadcast.  Both inputs must share
 * one dtype: the kernels run one GEMM type, and silently promoting a
 * float16 weight would hide a real mistake.
 *
 * The normalization ops keep their statistics (mean, rstd) in float32, or
 * float64 for float64 inputs, whatever the input dtype; their parameters
 * (gamma, beta, running stats) must have the input's dtype.  Labels and
 * indices are int32 or int64; their values are data and are range-checked
 * by the kernels.
 */
#include "ops/infer.h"

sp_status infer_matmul(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *a = &in[0], *b = &in[1];
    sp_status st = ops_need_dtype(def, b, "b", a->dtype);
    if (st) return sp_error(SP_ERR_DTYPE, "matmul: a is %s but b is %s (same dtype needed)",
                            sp_dtype_name(a->dtype), sp_dtype_name(b->dtype));
    if (a->ndim == 0 || b->ndim == 0)
        return sp_error(SP_ERR_SHAPE, "matmul: shapes %s and %s: both inputs need at least 1 dim",
                        ops_shape(a).s, ops_shape(b).s);
    int ta = sp_attrs_get_int(attrs, "transpose_a", 0) != 0 && a->ndim >= 2;
    int tb = sp_attrs_get_int(attrs, "transpose_b", 0) != 0 && b->ndim >= 2;
    int64_t M, Ka, Kb, N;
    if (a->ndim == 1) {
        M = 1;
        Ka = a->shape[0];
    } else {
        M = a->shape[a->ndim - (ta ? 1 : 2)];
        Ka = a->shape[a->ndim - (ta ? 2 : 1)];
    }
    if (b->ndim == 1) {
        Kb = b->shape[0];
        N = 1;
    } else {
        Kb = b->shape[b->ndim - (tb ? 1 : 2)];
        N = b->shape[b->ndim - (tb ? 2 : 1)];
    }
    if (Ka != Kb)
        return sp_error(SP_ERR_SHAPE,
                        "matmul: shapes %s%s and %s%s do not match: inner dims %lld and %lld",
                        ops_shape(a).s, ta ? " (transposed)" : "", ops_shape(b).s,
                        tb ? " (transposed)" : "", (long long)Ka, (long long)Kb);
    int nb;
    int64_t s[SP_MAX_DIMS];
    int na_b = a->ndim > 2 ? a->ndim - 2 : 0, nb_b = b->ndim > 2 ? b->ndim - 2 : 0;
    if (sp_broadcast_shapes(def->name, na_b, a->shape, nb_b, b->shape, &nb, s))
        return sp_error(SP_ERR_SHAPE, "matmul: batch dims of shapes %s and %s cannot be broadcast",
                        ops_shape(a).s, ops_shape(b).s);
    int n = nb;
    if (a->ndim >= 2) s[n++] = M;
    if (b->ndim >= 2) s[n++] = N;
    if (n > SP_MAX_DIMS) /* cannot happen: batch dims <= 6 */
        return sp_error(SP_ERR_SHAPE, "matmul: result of %s and %s has too many dims",
                        ops_shape(a).s, ops_shape(b).s);
    if ((st = ops_check_shape(def->name, "result shape", n, s))) return st;
    ops_meta_set(&out[0], a->dtype, n, s);
    *n_out = 1;
    return SP_OK;
}

static const char *const nn_reductions[] = {"mean", "sum", "none", NULL};

/* logits [N, C] float, labels [N] int; *red = index into nn_reductions. */
static sp_status nn_xent_check(const sp_op_def *def, const sp_meta *logits, const sp_meta *labels,
                               const sp_attrs *attrs, int *red) {
    sp_status st;
    if ((st = ops_need_ndim(def, logits, "logits", 2)) ||
        (st = ops_need_index(def, labels, "labels")) ||
        (st = ops_get_choice(def, attrs, "reduction", nn_reductions, red)))
        return st;
    if (labels->ndim != 1 || labels->shape[0] != logits->shape[0])
        return sp_error(SP_ERR_SHAPE, "%s: labels of shape %s do not match logits of shape %s "
                        "(want (%lld,))", def->name, ops_shape(labels).s, ops_shape(logits).s,
                        (long long)logits->shape[0]);
    if (logits->shape[1] == 0 && logits->shape[0] > 0)
        return sp_error(SP_ERR_SHAPE, "%s: logits of shape %s have no classes", def->name,
                        ops_shape(logits).s);
    return SP_OK;
}

sp_status infer_sparse_xent(const sp_op_def *def, int n_in, const sp_meta *in,
                            const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    int red;
    sp_status st = nn_xent_check(def, &in[0], &in[1], attrs, &red);
    if (st) return st;
    ops_meta_set(&out[0], in[0].dtype, red == 2 ? 1 : 0, in[0].shape);
    *n_out = 1;
    return SP_OK;
}

sp_status infer_sparse_xent_backward(const sp_op_def *def, int n_in, const sp_meta *in,
                                     const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    int red;
    sp_status st = nn_xent_check(def, &in[0], &in[1], attrs, &red);
    if (st) return st;
    if ((st = ops_need_dtype(def, &in[2], "dloss", in[0].dtype))) return st;
    if ((st = ops_need_shape(def, &in[2], "dloss", red == 2 ? 1 : 0, in[0].shape))) return st;
    out[0] = in[0];
    *n_out = 1;
    return SP_OK;
}

static sp_dtype nn_stat_dtype(sp_dtype d) { return d == SP_F64 ? SP_F64 : SP_F32; }

/* x's normalized axis, and gamma-like input g checked against x.shape[ax:]. */
static sp_status nn_ln_axis(const sp_op_def *def, const sp_meta *x, const sp_attrs *attrs,
                            int *ax) {
    return sp_norm_axis(def->name, sp_attrs_get_int(attrs, "axis", -1), x->ndim, ax);
}

static sp_status nn_param(const sp_op_def *def, const sp_meta *p, const char *what,
                          const sp_meta *x, int ndim, const int64_t *shape) {
    sp_status st = ops_need_dtype(def, p, what, x->dtype);
    if (!st) st = ops_need_shape(def, p, what, ndim, shape);
    return st;
}

sp_status infer_layer_norm(const sp_op_def *def, int n_in, const sp_meta *in,
                           const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0];
    int ax;
    sp_status st = nn_ln_axis(def, x, attrs, &ax);
    if (!st) st = nn_param(def, &in[1], "gamma", x, x->ndim - ax, &x->shape[ax]);
    if (!st) st = nn_param(def, &in[2], "beta", x, x->ndim - ax, &x->shape[ax]);
    if (st) return st;
    double eps = sp_attrs_get_float(attrs, "epsilon", 1e-5);
    if (!(eps >= 0)) return sp_error(SP_ERR_ARG, "layer_norm: epsilon %g must be >= 0", eps);
    out[0] = *x;
    ops_meta_set(&out[1], nn_stat_dtype(x->dtype), ax, x->shape);
    out[2] = out[1];
    *n_out = 3;
    return SP_OK;
}

sp_status infer_layer_norm_backward(const sp_op_def *def, int n_in, const sp_meta *in,
                                    const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *dy = &in[0], *x = &in[1], *g = &in[2];
    int ax;
    sp_status st = nn_ln_axis(def, x, attrs, &ax);
    if (!st) st = nn_param(def, dy, "dy", x, x->ndim, x->shape);
    if (!st) st = nn_param(def, g, "gamma", x, x->ndim - ax, &x->shape[ax]);
    for (int i = 3; !st && i < 5; i++) {
        const char *what = i == 3 ? "mean" : "rstd";
        st = ops_need_shape(def, &in[i], what, ax, x->shape);
        if (!st && in[i].dtype != nn_stat_dtype(x->dtype))
            st = sp_error(SP_ERR_DTYPE, "%s: %s must be %s, got %s", def->name, what,
                          sp_dtype_name(nn_stat_dtype(x->dtype)), sp_dtype_name(in[i].dtype));
    }
    if (st) return st;
    out[0] = *x;
    out[1] = *g;
    out[2] = *g;
    *n_out = 3;
    return SP_OK;
}

static sp_status nn_bn_x(const sp_op_def *def, const sp_meta *x) {
    if (x->ndim >= 2) return SP_OK;
    return sp_error(SP_ERR_SHAPE, "%s: x must be [N, C, ...] (at least 2 dims), got shape %s",
                    def->name, ops_shape(x).s);
}

sp_status infer_batch_norm(const sp_op_def *def, int n_in, const sp_meta *in,
                           const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    static const char *const names[] = {"x", "gamma", "beta", "running_mean", "running_var"};
    const sp_meta *x = &in[0];
    sp_status st = nn_bn_x(def, x);
    for (int i = 1; !st && i < 5; i++) st = nn_param(def, &in[i], names[i], x, 1, &x->shape[1]);
    if (st) return st;
    double eps = sp_attrs_get_float(attrs, "epsilon", 1e-5);
    double mom = sp_attrs_get_float(attrs, "momentum", 0.1);
    if (!(eps >= 0)) return sp_error(SP_ERR_ARG, "batch_norm: epsilon %g must be >= 0", eps);
    if (!(mom >= 0 && mom <= 1))
        return sp_error(SP_ERR_ARG, "batch_norm: momentum %g must be in [0, 1]", mom);
    out[0] = *x;
    ops_meta_set(&out[1], x->dtype, 1, &x->shape[1]);
    out[2] = out[1];
    *n_out = 3;
    return SP_OK;
}

sp_status infer_batch_norm_backward(const sp_op_def *def, int n_in, const sp_meta *in,
                                    const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in, (void)attrs;
    static const char *const names[] = {"dy", "x", "gamma", "save_mean", "save_rstd"};
    const sp_meta *x = &in[1];
    sp_status st = nn_bn_x(def, x);
    if (!st) st = nn_param(def, &in[0], "dy", x, x->ndim, x->shape);
    for (int i = 2; !st && i < 5; i++) st = nn_param(def, &in[i], names[i], x, 1, &x->shape[1]);
    if (st) return st;
    out[0] = *x;
    ops_meta_set(&out[1], x->dtype, 1, &x->shape[1]);
    out[2] = out[1];
    *n_out = 3;
    return SP_OK;
}

sp_status infer_dropout(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                        int *n_out, sp_meta *out) {
    (void)n_in, (void)def;
    double p = sp_attrs_get_float(attrs, "p", 0.5);
    if (!(p >= 0 && p <= 1))
        return sp_error(SP_ERR_ARG, "dropout: p must be in [0, 1], got %g", p);
    out[0] = in[0];
    out[1] = in[0];
    out[1].dtype = SP_BOOL;
    *n_out = 2;
    return SP_OK;
}

sp_status infer_embedding(const sp_op_def *def, int n_in, const sp_meta *in,
                          const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in, (void)attrs;
    const sp_meta *w = &in[0], *idx = &in[1];
    sp_status st = ops_need_ndim(def, w, "weight", 2);
    if (!st) st = ops_need_index(def, idx, "indices");
    if (st) return st;
    if (idx->ndim + 1 > SP_MAX_DIMS)
        return sp_error(SP_ERR_SHAPE, "embedding: indices of shape %s give more than %d dims",
                        ops_shape(idx).s, SP_MAX_DIMS);
    sp_meta r = *idx;
    r.dtype = w->dtype;
    r.shape[r.ndim++] = w->shape[1];
    if ((st = ops_check_shape(def->name, "result shape", r.ndim, r.shape))) return st;
    out[0] = r;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_embedding_backward(const sp_op_def *def, int n_in, const sp_meta *in,
                                   const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *dout = &in[0], *idx = &in[1];
    sp_status st = ops_need_index(def, idx, "indices");
    if (st) return st;
    if (!sp_attrs_find(attrs, "num_embeddings"))
        return sp_error(SP_ERR_ARG, "embedding_backward: missing attribute 'num_embeddings'");
    int64_t V = sp_attrs_get_int(attrs, "num_embeddings", -1);
    if (V < 0)
        return sp_error(SP_ERR_ARG, "embedding_backward: num_embeddings must be >= 0, got %lld",
                        (long long)V);
    int ok = dout->ndim == idx->ndim + 1;
    for (int i = 0; ok && i < idx->ndim; i++) ok = dout->shape[i] == idx->shape[i];
    if (!ok)
        return sp_error(SP_ERR_SHAPE, "embedding_backward: dout of shape %s does not match "
                        "indices of shape %s (want indices.shape + [D])",
                        ops_shape(dout).s, ops_shape(idx).s);
    int64_t s[2] = {V, dout->shape[dout->ndim - 1]};
    if ((st = ops_check_shape(def->name, "dweight shape", 2, s))) return st;
    ops_meta_set(&out[0], dout->dtype, 2, s);
    *n_out = 1;
    return SP_OK;
}
