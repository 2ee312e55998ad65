/*
 * optim.cu -- the in-place updates on the GPU: the optimizer updates
 * sgd_update and adam_update (torch.optim.SGD, Adam and AdamW; formulas in
 * ops.def), and assign.
 *
 * The arithmetic is the CPU's (cpu/optim.c) step by step, in the
 * parameter's precision (float for float32/float16/bfloat16, each stored
 * value rounded once; double for float64), so the two backends agree to
 * an ulp or so.  lr and step are 0-d device tensors of any dtype: they are
 * read on the device, by each block, so a compiled training loop (or a
 * captured CUDA graph) can change the schedule without the host ever
 * waiting for the GPU.  The Adam scalars that depend on them (bias
 * corrections, step size) are computed once per block in double, exactly
 * as the CPU computes them once per call.
 *
 * One difference from the CPU: the CPU refuses a step < 1 with bias
 * correction, which would need the host to read the step tensor; here that
 * would cost a synchronization per update, so the kernel instead computes
 * what the formula gives (a step of 0 divides by zero: inf/NaN), and the
 * error is the CPU's alone.
 *
 * param and the state (accum, or m and v) must be contiguous (dispatch
 * checks); grad may be a view, read through a contiguous copy.
 *
 * assign is cuda_cast's converting copy aimed at the (contiguous) variable,
 * with the value broadcast to its shape by a stride-0 view.  As on the CPU,
 * a value sharing the variable's buffer is first copied to scratch (threads
 * would otherwise read elements other threads already overwrote), and a
 * value that is the variable itself is a no-op.
 */
#include <string.h>

#include "backend/cuda/nn_util.cuh"

typedef struct op_sgd {
    double mom, damp, wd;
    int nesterov;
} op_sgd;

typedef struct op_adam {
    double b1, b2, eps, wd;
    int decoupled, bias_correction;
} op_adam;

/* a scalar input: element 0 and dtype */
typedef struct op_scalar {
    const void *p;
    int dt;
} op_scalar;

__device__ __forceinline__ double op_ld(op_scalar s) { return cuda_nn_ld(s.p, s.dt, 0); }

template <typename ST>
__global__ void op_sgd_kernel(ST *p, const ST *g, ST *acc, int64_t n, op_scalar lr_t, op_sgd c) {
    typedef typename cuda_nn_acc<ST>::type CT;
    CT lr = (CT)op_ld(lr_t), wd = (CT)c.wd, mom = (CT)c.mom, d1 = (CT)(1 - c.damp);
    int has_wd = c.wd != 0, has_mom = c.mom != 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        CT pi = (CT)cuda_nn_f(p[i]), gi = (CT)cuda_nn_f(g[i]);
        if (has_wd) gi = gi + wd * pi;
        if (has_mom) {
            ST b = cuda_nn_tof<ST>(mom * (CT)cuda_nn_f(acc[i]) + d1 * gi);
            acc[i] = b;
            CT bb = (CT)cuda_nn_f(b); /* the stored (rounded) buffer, as torch uses */
            gi = c.nesterov ? gi + mom * bb : bb;
        }
        p[i] = cuda_nn_tof<ST>(pi - lr * gi);
    }
}

template <typename ST>
__global__ void op_adam_kernel(ST *p, const ST *g, ST *m, ST *v, int64_t n, op_scalar lr_t,
                               op_scalar step_t, op_adam c) {
    typedef typename cuda_nn_acc<ST>::type CT;
    __shared__ double sc[3];
    if (threadIdx.x == 0) {
        double lr = op_ld(lr_t), t = op_ld(step_t);
        double bc1 = c.bias_correction ? 1 - pow(c.b1, t) : 1;
        double bc2 = c.bias_correction ? 1 - pow(c.b2, t) : 1;
        sc[0] = lr / bc1;
        sc[1] = sqrt(bc2);
        sc[2] = 1 - lr * c.wd;
    }
    __syncthreads();
    CT step = (CT)sc[0], bc2s = (CT)sc[1], decay = (CT)sc[2];
    CT wd = (CT)c.wd, b1 = (CT)c.b1, w1 = (CT)(1 - c.b1), b2 = (CT)c.b2, w2 = (CT)(1 - c.b2);
    CT eps = (CT)c.eps;
    int has_wd = c.wd != 0;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        CT pi = (CT)cuda_nn_f(p[i]), gi = (CT)cuda_nn_f(g[i]);
        if (has_wd && c.decoupled) {
            ST q = cuda_nn_tof<ST>(pi * decay);
            p[i] = q;
            pi = (CT)cuda_nn_f(q);
        } else if (has_wd) {
            gi = gi + wd * pi;
        }
        ST ms = cuda_nn_tof<ST>((CT)cuda_nn_f(m[i]) * b1 + gi * w1);
        ST vs = cuda_nn_tof<ST>((CT)cuda_nn_f(v[i]) * b2 + gi * gi * w2);
        m[i] = ms;
        v[i] = vs;
        CT mi = (CT)cuda_nn_f(ms), vi = (CT)cuda_nn_f(vs);
        CT denom = sqrt(vi) / bc2s + eps;
        p[i] = cuda_nn_tof<ST>(pi - step * (mi / denom));
    }
}

/* Checks the state tensors in[state[..]] against param (in[0]) and grad
 * (in[1]); on success *grad is a contiguous grad the caller releases. */
static sp_status op_check(const char *op, const sp_kernel_args *a, const int *state, int n_state,
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
    return cuda_nn_contig(a->in[1], grad);
}

static sp_status op_scalar_of(const char *op, const char *what, const sp_tensor *t,
                              op_scalar *out) {
    if (sp_tensor_numel(t) != 1)
        return sp_error(SP_ERR_SHAPE, "%s: %s must have one element, got %lld", op, what,
                        (long long)sp_tensor_numel(t));
    out->p = (const char *)t->buf->data + t->offset * (int64_t)sp_dtype_size(t->dtype);
    out->dt = t->dtype;
    return SP_OK;
}

template <typename T> static T *op_ptr(const sp_tensor *t) { return (T *)t->buf->data + t->offset; }

/* Blocks for an elementwise update of n: enough to fill the GPU, few enough
 * that the per-block scalar work stays negligible. */
static unsigned op_blocks(int64_t n) {
    int64_t cap = (int64_t)cuda_sm_count() * 8;
    int64_t b = (n + 255) / 256;
    if (b > cap) b = cap;
    return (unsigned)(b < 1 ? 1 : b);
}

sp_status cuda_sgd_update(const sp_kernel_args *a) {
    const char *op = "sgd_update";
    static const int state[] = {0, 2};
    sp_tensor *grad = NULL;
    op_scalar lr;
    sp_status st = op_scalar_of(op, "lr", a->in[3], &lr);
    if (st || (st = op_check(op, a, state, 2, &grad))) return st;
    op_sgd c;
    c.mom = sp_attrs_get_float(a->attrs, "momentum", 0);
    c.damp = sp_attrs_get_float(a->attrs, "dampening", 0);
    c.wd = sp_attrs_get_float(a->attrs, "weight_decay", 0);
    c.nesterov = sp_attrs_get_int(a->attrs, "nesterov", 0) != 0;
    int64_t n = sp_tensor_numel(a->in[0]);
    if (n > 0) {
        cudaStream_t s = cuda_stream();
        unsigned bl = op_blocks(n);
        switch (a->in[0]->dtype) {
            CUDA_NN_FLOAT_CASES(a->in[0]->dtype, T, {
                op_sgd_kernel<T><<<bl, 256, 0, s>>>(op_ptr<T>(a->in[0]), op_ptr<T>(grad),
                                                   op_ptr<T>(a->in[2]), n, lr, c);
            })
        default: break;
        }
        st = cuda_nn_launched(op);
    }
    sp_tensor_release(grad);
    return st;
}

sp_status cuda_adam_update(const sp_kernel_args *a) {
    const char *op = "adam_update";
    static const int state[] = {0, 2, 3};
    sp_tensor *grad = NULL;
    op_scalar lr, step;
    sp_status st = op_scalar_of(op, "lr", a->in[4], &lr);
    if (st || (st = op_scalar_of(op, "step", a->in[5], &step))) return st;
    op_adam c;
    c.b1 = sp_attrs_get_float(a->attrs, "beta1", 0.9);
    c.b2 = sp_attrs_get_float(a->attrs, "beta2", 0.999);
    c.eps = sp_attrs_get_float(a->attrs, "eps", 1e-8);
    c.wd = sp_attrs_get_float(a->attrs, "weight_decay", 0);
    c.decoupled = sp_attrs_get_int(a->attrs, "decoupled", 0) != 0;
    c.bias_correction = sp_attrs_get_int(a->attrs, "bias_correction", 1) != 0;
    if ((st = op_check(op, a, state, 3, &grad))) return st;
    int64_t n = sp_tensor_numel(a->in[0]);
    if (n > 0) {
        cudaStream_t s = cuda_stream();
        unsigned bl = op_blocks(n);
        switch (a->in[0]->dtype) {
            CUDA_NN_FLOAT_CASES(a->in[0]->dtype, T, {
                op_adam_kernel<T><<<bl, 256, 0, s>>>(op_ptr<T>(a->in[0]), op_ptr<T>(grad),
                                                    op_ptr<T>(a->in[2]), op_ptr<T>(a->in[3]), n,
                                                    lr, step, c);
            })
        default: break;
        }
        st = cuda_nn_launched(op);
    }
    sp_tensor_release(grad);
    return st;
}

/* Nonzero when a and b are the same view of the same memory. */
static int op_same_view(const sp_tensor *a, const sp_tensor *b) {
    if (a->buf != b->buf || a->dtype != b->dtype || a->offset != b->offset || a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i] || (a->shape[i] > 1 && a->strides[i] != b->strides[i]))
            return 0;
    return 1;
}

sp_status cuda_assign(const sp_kernel_args *a) {
    sp_tensor *var = a->in[0], *val = a->in[1], *copy = NULL, *src = NULL;
    if (op_same_view(var, val)) return SP_OK;
    sp_status st = SP_OK;
    if (val->buf == var->buf) {
        copy = cuda_nn_new(val->buf->device, val->dtype, val->ndim, val->shape);
        if (!copy) return sp_last_status();
        sp_kernel_args c = {SP_OP_CAST, 1, &val, 1, &copy, a->attrs};
        if ((st = cuda_cast(&c))) goto done;
    }
    if ((st = sp_tensor_expand(copy ? copy : val, var->ndim, var->shape, &src))) goto done;
    {
        sp_kernel_args c = {SP_OP_CAST, 1, &src, 1, &var, a->attrs};
        st = cuda_cast(&c);
    }
done:
    sp_tensor_release(src);
    sp_tensor_release(copy);
    return st;
}
