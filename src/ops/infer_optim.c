/*
 * infer_optim.c -- inference for the in-place updates: the optimizer
 * updates sgd_update and adam_update, and assign.
 *
 * They have no outputs: inference only proves that the kernel may write
 * through the state tensors safely.  param, grad and every state buffer
 * (accum; m and v) must share one shape and one dtype, because the kernels
 * walk them as one flat array; lr and step are 0-d (step of any dtype, read
 * as a number).  Contiguity is checked by the dispatcher, which sees the
 * tensors and not just their metas.  Hyper-parameters that torch refuses
 * are refused here with the same reasons.
 *
 * assign is looser, as MindSpore's: the value only has to broadcast to the
 * variable's shape (the variable's shape is what is kept) and may have any
 * dtype (it is converted on the way in), so `assign(step, step + 1)` and
 * `assign(accum, 0)` both work whatever dtype the arithmetic produced.
 */
#include "ops/infer.h"

static sp_status opt_same(const sp_op_def *def, const sp_meta *in, int n,
                          const char *const *names) {
    for (int i = 1; i < n; i++) {
        if (!ops_same_shape(&in[i], &in[0]))
            return sp_error(SP_ERR_SHAPE, "%s: %s has shape %s, param has %s", def->name,
                            names[i], ops_shape(&in[i]).s, ops_shape(&in[0]).s);
        if (in[i].dtype != in[0].dtype)
            return sp_error(SP_ERR_DTYPE, "%s: %s is %s, param is %s", def->name, names[i],
                            sp_dtype_name(in[i].dtype), sp_dtype_name(in[0].dtype));
    }
    return SP_OK;
}

static sp_status opt_scalar(const sp_op_def *def, const sp_meta *m, const char *what) {
    if (m->ndim != 0)
        return sp_error(SP_ERR_SHAPE, "%s: %s must be 0-d, got shape %s", def->name, what,
                        ops_shape(m).s);
    return SP_OK;
}

sp_status infer_sgd_update(const sp_op_def *def, int n_in, const sp_meta *in,
                           const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in, (void)out;
    static const char *const names[] = {"param", "grad", "accum"};
    sp_status st = opt_same(def, in, 3, names);
    if (!st) st = opt_scalar(def, &in[3], "lr");
    if (st) return st;
    double mom = sp_attrs_get_float(attrs, "momentum", 0);
    double damp = sp_attrs_get_float(attrs, "dampening", 0);
    double wd = sp_attrs_get_float(attrs, "weight_decay", 0);
    if (!(mom >= 0)) return sp_error(SP_ERR_ARG, "sgd_update: momentum %g must be >= 0", mom);
    if (!(wd >= 0))
        return sp_error(SP_ERR_ARG, "sgd_update: weight_decay %g must be >= 0", wd);
    if (sp_attrs_get_int(attrs, "nesterov", 0) && (mom <= 0 || damp != 0))
        return sp_error(SP_ERR_ARG, "sgd_update: nesterov needs momentum > 0 and dampening 0, "
                        "got momentum %g, dampening %g", mom, damp);
    *n_out = 0;
    return SP_OK;
}

sp_status infer_adam_update(const sp_op_def *def, int n_in, const sp_meta *in,
                            const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in, (void)out;
    static const char *const names[] = {"param", "grad", "m", "v"};
    sp_status st = opt_same(def, in, 4, names);
    if (!st) st = opt_scalar(def, &in[4], "lr");
    if (!st) st = opt_scalar(def, &in[5], "step");
    if (st) return st;
    double b1 = sp_attrs_get_float(attrs, "beta1", 0.9), b2 = sp_attrs_get_float(attrs, "beta2", 0.999);
    double eps = sp_attrs_get_float(attrs, "eps", 1e-8);
    double wd = sp_attrs_get_float(attrs, "weight_decay", 0);
    if (!(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1))
        return sp_error(SP_ERR_ARG, "adam_update: beta1 %g and beta2 %g must be in [0, 1)", b1, b2);
    if (!(eps >= 0)) return sp_error(SP_ERR_ARG, "adam_update: eps %g must be >= 0", eps);
    if (!(wd >= 0))
        return sp_error(SP_ERR_ARG, "adam_update: weight_decay %g must be >= 0", wd);
    *n_out = 0;
    return SP_OK;
}

sp_status infer_assign(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in, (void)out, (void)attrs;
    int nb;
    int64_t b[SP_MAX_DIMS];
    /* value broadcasts to variable exactly when broadcasting the two gives
     * variable's own shape back */
    sp_status st = sp_broadcast_shapes(def->name, in[0].ndim, in[0].shape, in[1].ndim,
                                       in[1].shape, &nb, b);
    int same = !st && nb == in[0].ndim;
    for (int i = 0; same && i < nb; i++) same = b[i] == in[0].shape[i];
    if (!same)
        return sp_error(SP_ERR_SHAPE,
                        "%s: value of shape %s cannot be assigned to a variable of shape %s",
                        def->name, ops_shape(&in[1]).s, ops_shape(&in[0]).s);
    *n_out = 0;
    return SP_OK;
}
