/*
 * optim.c -- CPU kernels of the in-place updates: the optimizer updates
 * sgd_update and adam_update (torch.optim.SGD, Adam and AdamW semantics; the
 * formulas are in ops.def), and assign, the plain copy an optimizer uses for
 * its step counter and any other state that is not one of the fused updates.
 *
 * These primitives have no outputs: they overwrite param and the optimizer
 * state (accum, or m and v) in place, so those must be contiguous tensors
 * of one shape and dtype; grad may be any view (it is read through a
 * contiguous copy when it is not one).  lr and step are 0-d tensors of any
 * dtype, read as double, so a compiled training loop can feed a schedule
 * without recompiling.
 *
 * The arithmetic follows torch's single-tensor CPU code step by step, in
 * the parameter's precision (float32 for float32, float16 and bfloat16, the
 * last two rounded once per stored value; float64 for float64), so three
 * steps here match three torch steps to a few ulps: the weight-decay term is
 * added only when weight_decay != 0 (0*inf would be NaN), Adam's moments are
 * b*m + (1-b)*g as torch 1.x writes them, and the step is
 * lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).  One difference is
 * deliberate: the first SGD momentum step is momentum*accum +
 * (1-dampening)*g with accum as given (zeros), where torch starts its
 * buffer at g; the two agree whenever dampening is 0.
 *
 * Elements are independent, so the loop is split into chunks on the pool
 * and the result does not depend on the thread count.
 *
 * assign is cast's converting copy aimed at the variable instead of a new
 * output.  The one hazard is aliasing: a value that shares the variable's
 * buffer (a shifted or broadcast view of it) would be overwritten while
 * still being read, in an order that depends on the threads, so such a
 * value is copied out first; a value that IS the variable is a no-op.
 */
#include "backend/cpu/nn_util.h"

typedef struct optim_ctx {
    void *param, *s1, *s2; /* accum (sgd) or m, v (adam) */
    const void *grad;
    double lr, wd, mom, damp, b1, b2, eps, step_size, bc2_sqrt;
    int nesterov, decoupled;
} optim_ctx;

#define CPU_LD_F32(p, i) ((p)[i])
#define CPU_ST_F32(x) (x)
#define CPU_LD_F16(p, i) sp_f16_to_f32((p)[i])
#define CPU_ST_F16(x) sp_f32_to_f16(x)
#define CPU_LD_BF16(p, i) sp_bf16_to_f32((p)[i])
#define CPU_ST_BF16(x) sp_f32_to_bf16(x)

/* SUF: name suffix; ST: storage type; CT: compute type; LD/STO: conversions;
 * SQRT: the compute type's square root. */
#define CPU_OPTIM_IMPL(SUF, ST, CT, LD, STO, SQRT)                                                 \
    static void sgd_range_##SUF(void *vc, int64_t i0, int64_t i1) {                                \
        const optim_ctx *c = vc;                                                                   \
        ST *p = c->param, *acc = c->s1;                                                            \
        const ST *g = c->grad;                                                                     \
        CT lr = (CT)c->lr, wd = (CT)c->wd, mom = (CT)c->mom, d1 = (CT)(1 - c->damp);               \
        int has_wd = c->wd != 0, has_mom = c->mom != 0, nest = c->nesterov;                        \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            CT pi = LD(p, i), gi = LD(g, i);                                                       \
            if (has_wd) gi = gi + wd * pi;                                                         \
            if (has_mom) {                                                                         \
                CT b = mom * LD(acc, i) + d1 * gi;                                                 \
                acc[i] = STO(b);                                                                   \
                b = LD(acc, i); /* the stored (rounded) buffer, as torch uses */                   \
                gi = nest ? gi + mom * b : b;                                                      \
            }                                                                                      \
            p[i] = STO(pi - lr * gi);                                                              \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static void adam_range_##SUF(void *vc, int64_t i0, int64_t i1) {                               \
        const optim_ctx *c = vc;                                                                   \
        ST *p = c->param, *m = c->s1, *v = c->s2;                                                  \
        const ST *g = c->grad;                                                                     \
        CT wd = (CT)c->wd, b1 = (CT)c->b1, w1 = (CT)(1 - c->b1);                                   \
        CT b2 = (CT)c->b2, w2 = (CT)(1 - c->b2);                                                   \
        CT decay = (CT)(1 - c->lr * c->wd), step = (CT)c->step_size;                               \
        CT bc2s = (CT)c->bc2_sqrt, eps = (CT)c->eps;                                               \
        int has_wd = c->wd != 0, dec = c->decoupled;                                               \
        for (int64_t i = i0; i < i1; i++) {                                                        \
            CT pi = LD(p, i), gi = LD(g, i);                                                       \
            if (has_wd && dec) {                                                                   \
                p[i] = STO(pi * decay);                                                            \
                pi = LD(p, i);                                                                     \
            } else if (has_wd) {                                                                   \
                gi = gi + wd * pi;                                                                 \
            }                                                                                      \
            CT mi = LD(m, i) * b1 + gi * w1;                                                       \
            CT vi = LD(v, i) * b2 + gi * gi * w2;                                                  \
            m[i] = STO(mi);                                                                        \
            v[i] = STO(vi);                                                                        \
            mi = LD(m, i);                                                                         \
            vi = LD(v, i);                                                                         \
            CT denom = SQRT(vi) / bc2s + eps;                                                      \
            p[i] = STO(pi - step * (mi / denom));                                                  \
        }                                                                                          \
    }

CPU_OPTIM_IMPL(f32, float, float, CPU_LD_F32, CPU_ST_F32, sqrtf)
CPU_OPTIM_IMPL(f64, double, double, CPU_LD_F32, CPU_ST_F32, sqrt)
CPU_OPTIM_IMPL(f16, sp_f16, float, CPU_LD_F16, CPU_ST_F16, sqrtf)
CPU_OPTIM_IMPL(bf16, sp_bf16, float, CPU_LD_BF16, CPU_ST_BF16, sqrtf)

/* Checks the state tensors in[0..n_state-1] (param first) and grad in[1]:
 * same dtype (a float one) and element count, state contiguous.  On success
 * *grad holds a contiguous grad the caller releases. */
static sp_status optim_check(const char *op, const sp_kernel_args *a, const int *state, int n_state,
                             sp_tensor **grad) {
    static const char *names[] = {"param", "grad", "accum", "lr"};
    static const char *anames[] = {"param", "grad", "m", "v"};
    const sp_tensor *p = a->in[0];
    char s1[128], s2[128];
    if (!sp_dtype_is_float(p->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: param must be float, got %s", op,
                        sp_dtype_name(p->dtype));
    for (int j = 0; j < n_state + 1; j++) {
        int k = j < n_state ? state[j] : 1;
        const sp_tensor *t = a->in[k];
        const char *nm = a->n_in == 6 ? anames[k] : names[k];
        if (t->dtype != p->dtype || sp_tensor_numel(t) != sp_tensor_numel(p))
            return sp_error(SP_ERR_SHAPE, "%s: %s (%s %s) does not match param (%s %s)", op, nm,
                            sp_dtype_name(t->dtype), sp_shape_str(t->ndim, t->shape, s1, sizeof s1),
                            sp_dtype_name(p->dtype),
                            sp_shape_str(p->ndim, p->shape, s2, sizeof s2));
        if (k != 1 && !sp_tensor_is_contiguous(t))
            return sp_error(SP_ERR_ARG, "%s: %s is updated in place and must be contiguous", op,
                            nm);
    }
    return sp_tensor_contiguous(a->in[1], grad);
}

/* Reads a 0-d (one-element) tensor as a double. */
static sp_status optim_scalar(const char *op, const char *what, const sp_tensor *t, double *out) {
    if (sp_tensor_numel(t) != 1)
        return sp_error(SP_ERR_SHAPE, "%s: %s must have one element, got %lld", op, what,
                        (long long)sp_tensor_numel(t));
    *out = sp_load_f64(t->dtype, sp_tensor_data(t));
    return SP_OK;
}

static void optim_run(optim_ctx *c, sp_dtype dt, int64_t n, sp_range_fn f32, sp_range_fn f64,
                      sp_range_fn f16, sp_range_fn bf16) {
    sp_range_fn fn = dt == SP_F32 ? f32 : dt == SP_F64 ? f64 : dt == SP_F16 ? f16 : bf16;
    sp_parallel_for(n, 16384, fn, c);
}

sp_status cpu_sgd_update(const sp_kernel_args *a) {
    const char *op = "sgd_update";
    static const int state[] = {0, 2};
    sp_tensor *grad = NULL;
    optim_ctx c = {0};
    sp_status st = optim_scalar(op, "lr", a->in[3], &c.lr);
    if (st || (st = optim_check(op, a, state, 2, &grad))) return st;
    c.mom = sp_attrs_get_float(a->attrs, "momentum", 0);
    c.damp = sp_attrs_get_float(a->attrs, "dampening", 0);
    c.wd = sp_attrs_get_float(a->attrs, "weight_decay", 0);
    c.nesterov = sp_attrs_get_int(a->attrs, "nesterov", 0) != 0;
    c.param = sp_tensor_data(a->in[0]);
    c.s1 = sp_tensor_data(a->in[2]);
    c.grad = sp_tensor_data(grad);
    optim_run(&c, a->in[0]->dtype, sp_tensor_numel(a->in[0]), sgd_range_f32, sgd_range_f64,
              sgd_range_f16, sgd_range_bf16);
    sp_tensor_release(grad);
    return SP_OK;
}

sp_status cpu_adam_update(const sp_kernel_args *a) {
    const char *op = "adam_update";
    static const int state[] = {0, 2, 3};
    sp_tensor *grad = NULL;
    optim_ctx c = {0};
    double t;
    sp_status st = optim_scalar(op, "lr", a->in[4], &c.lr);
    if (st || (st = optim_scalar(op, "step", a->in[5], &t))) return st;
    c.b1 = sp_attrs_get_float(a->attrs, "beta1", 0.9);
    c.b2 = sp_attrs_get_float(a->attrs, "beta2", 0.999);
    c.eps = sp_attrs_get_float(a->attrs, "eps", 1e-8);
    c.wd = sp_attrs_get_float(a->attrs, "weight_decay", 0);
    c.decoupled = sp_attrs_get_int(a->attrs, "decoupled", 0) != 0;
    int bias_correction = sp_attrs_get_int(a->attrs, "bias_correction", 1) != 0;
    if (bias_correction && !(t >= 1))
        return sp_error(SP_ERR_ARG, "%s: step must be >= 1 with bias correction, got %g", op, t);
    if ((st = optim_check(op, a, state, 3, &grad))) return st;
    double bc1 = bias_correction ? 1 - pow(c.b1, t) : 1;
    double bc2 = bias_correction ? 1 - pow(c.b2, t) : 1;
    c.step_size = c.lr / bc1;
    c.bc2_sqrt = sqrt(bc2);
    c.param = sp_tensor_data(a->in[0]);
    c.s1 = sp_tensor_data(a->in[2]);
    c.s2 = sp_tensor_data(a->in[3]);
    c.grad = sp_tensor_data(grad);
    optim_run(&c, a->in[0]->dtype, sp_tensor_numel(a->in[0]), adam_range_f32, adam_range_f64,
              adam_range_f16, adam_range_bf16);
    sp_tensor_release(grad);
    return SP_OK;
}

/* Nonzero when a and b are the same view of the same memory. */
static int assign_same_view(const sp_tensor *a, const sp_tensor *b) {
    if (a->buf != b->buf || a->dtype != b->dtype || a->offset != b->offset || a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->strides[i] != b->strides[i]))
            return 0;
    return 1;
}

sp_status cpu_assign(const sp_kernel_args *a) {
    sp_tensor *var = a->in[0], *val = a->in[1], *copy = NULL, *src = NULL;
    if (assign_same_view(var, val)) return SP_OK;
    sp_status st = SP_OK;
    if (val->buf == var->buf && (st = sp_tensor_cast(val, val->dtype, &copy))) return st;
    if ((st = sp_tensor_expand(copy ? copy : val, var->ndim, var->shape, &src))) goto done;
    sp_kernel_args c = {SP_OP_CAST, 1, &src, 1, &var, a->attrs};
    st = cpu_cast(&c);
done:
    sp_tensor_release(src);
    sp_tensor_release(copy);
    return st;
}
