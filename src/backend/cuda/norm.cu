/*
 * norm.cu -- layer_norm and batch_norm, forward and backward, on the GPU;
 * the CPU's formulas (norm.c) in fused kernels.
 *
 * Layer norm sees x as M rows of D = prod(x.shape[axis:]) elements.  One
 * block per row computes the mean, then the biased variance from squared
 * deviations (two passes over the row, both in double; the second pass
 * hits L1/L2), writes mean and rstd = 1/sqrt(var + eps) for the backward
 * and the normalized row:
 *
 *     y      = (x - mean) * rstd * gamma + beta
 *     dx     = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma
 *     dgamma = sum_rows dy * xhat,   dbeta = sum_rows dy
 *
 * dgamma and dbeta reduce over rows: the rows are cut into a number of
 * chunks fixed by M alone, one thread per (column, chunk) sums its chunk in
 * row order, and a second kernel adds the chunks in order -- parallel, and
 * the same bits on every run.
 *
 * Batch norm sees x as [N, C, S] (S = prod(shape[2:])): one block per
 * channel reduces its N*S values (mean, then squared deviations, in
 * double), updates running_mean/running_var in place with torch's rule
 * (r = (1-momentum)*r + momentum*batch, unbiased variance for running_var)
 * and leaves the channel's affine form y = x*scale + shift in a small
 * scratch array; one elementwise pass applies it.  Inference takes mean and
 * rstd from the running stats.  The backward reduces sum dy and
 * sum dy*(x - mean) per channel the same way, then one elementwise pass
 * writes dx = scale*(dy - mean(dy) - (x - mean)*k), k = rstd^2 *
 * mean(dy*(x-mean)) (inference: dx = dy*gamma*rstd).
 *
 * Data inputs are made contiguous first; the small per-feature and
 * per-channel vectors (gamma, beta, stats, running buffers) are read and
 * written through their own stride and dtype.  float16/bfloat16 (layer
 * norm only) compute in float and round once.
 */
#include <string.h>

#include "backend/cuda/nn_util.cuh"

/* A 1-D side vector on the device: element 0, stride, dtype. */
typedef struct nm_vec {
    void *p;
    int64_t st;
    int dt;
} nm_vec;

static nm_vec nm_vec_of(const sp_tensor *t) {
    nm_vec v;
    v.p = (char *)t->buf->data + t->offset * (int64_t)sp_dtype_size(t->dtype);
    v.st = t->ndim > 0 ? t->strides[t->ndim - 1] : 0;
    v.dt = t->dtype;
    return v;
}

/* contiguous n-element vectors (gamma over a multi-dim tail) read plainly */
static nm_vec nm_vec_flat(const sp_tensor *t) {
    nm_vec v = nm_vec_of(t);
    v.st = 1;
    return v;
}

__device__ __forceinline__ double nm_ld(nm_vec v, int64_t i) { return cuda_nn_ld(v.p, v.dt, i * v.st); }
__device__ __forceinline__ void nm_st(nm_vec v, int64_t i, double x) { cuda_nn_st(v.p, v.dt, i * v.st, x); }

static int nm_threads(int64_t n) {
    int t = 32;
    while (t < 512 && t < n) t <<= 1;
    return t;
}

static unsigned nm_grid(int64_t rows) {
    return (unsigned)(rows < (1 << 30) ? (rows > 0 ? rows : 1) : (1 << 30));
}

/* ---- layer norm ---- */

template <typename T>
__global__ void ln_fwd(const T *x, T *y, nm_vec gam, nm_vec bet, nm_vec mean, nm_vec rstd,
                       int64_t M, int64_t D, double eps) {
    typedef typename cuda_nn_acc<T>::type A;
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
        const T *xr = x + r * D;
        T *yr = y + r * D;
        double s = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) s += (double)cuda_nn_f(xr[k]);
        double mu = cuda_nn_block_sum(s, sh) / (double)D;
        double q = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            double d = (double)cuda_nn_f(xr[k]) - mu;
            q += d * d;
        }
        double rs = 1.0 / sqrt(cuda_nn_block_sum(q, sh) / (double)D + eps);
        if (threadIdx.x == 0) {
            nm_st(mean, r, mu);
            nm_st(rstd, r, rs);
        }
        A mt = (A)mu, rt = (A)rs;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x)
            yr[k] = cuda_nn_to<T>(((A)cuda_nn_f(xr[k]) - mt) * rt * (A)nm_ld(gam, k) + (A)nm_ld(bet, k));
    }
}

template <typename T>
__global__ void ln_bwd_dx(const T *dy, const T *x, nm_vec gam, nm_vec mean, nm_vec rstd, T *dx,
                          int64_t M, int64_t D) {
    typedef typename cuda_nn_acc<T>::type A;
    __shared__ double sh[32];
    for (int64_t r = blockIdx.x; r < M; r += gridDim.x) {
        const T *xr = x + r * D, *dyr = dy + r * D;
        T *dxr = dx + r * D;
        A mt = (A)nm_ld(mean, r), rt = (A)nm_ld(rstd, r);
        double s1 = 0, s2 = 0;
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            A g = (A)cuda_nn_f(dyr[k]) * (A)nm_ld(gam, k);
            s1 += (double)g;
            s2 += (double)(g * (((A)cuda_nn_f(xr[k]) - mt) * rt));
        }
        s1 = cuda_nn_block_sum(s1, sh);
        s2 = cuda_nn_block_sum(s2, sh);
        A a = (A)(s1 / (double)D), b = (A)(s2 / (double)D);
        for (int64_t k = threadIdx.x; k < D; k += blockDim.x) {
            A xv = (A)cuda_nn_f(xr[k]);
            dxr[k] = cuda_nn_to<T>(rt * ((A)cuda_nn_f(dyr[k]) * (A)nm_ld(gam, k) - a - (xv - mt) * rt * b));
        }
    }
}

/* Partial column sums: part[c][k] = sum over rows of chunk c of dy*xhat
 * (first D) and dy (next D). */
template <typename T>
__global__ void ln_bwd_part(const T *dy, const T *x, nm_vec mean, nm_vec rstd, int64_t M,
                            int64_t D, int64_t per, double *part) {
    typedef typename cuda_nn_acc<T>::type A;
    int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x, c = blockIdx.y;
    if (k >= D) return;
    int64_t r0 = c * per, r1 = r0 + per < M ? r0 + per : M;
    double dg = 0, db = 0;
    for (int64_t r = r0; r < r1; r++) {
        A mt = (A)nm_ld(mean, r), rt = (A)nm_ld(rstd, r);
        A d = (A)cuda_nn_f(dy[r * D + k]);
        dg += (double)(d * (((A)cuda_nn_f(x[r * D + k]) - mt) * rt));
        db += (double)d;
    }
    part[c * 2 * D + k] = dg;
    part[c * 2 * D + D + k] = db;
}

__global__ void ln_bwd_total(const double *part, int64_t nchunks, int64_t D, nm_vec dgam,
                             nm_vec dbet) {
    for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < D;
         k += (int64_t)gridDim.x * blockDim.x) {
        double dg = 0, db = 0;
        for (int64_t c = 0; c < nchunks; c++) {
            dg += part[c * 2 * D + k];
            db += part[c * 2 * D + D + k];
        }
        nm_st(dgam, k, dg);
        nm_st(dbet, k, db);
    }
}

static sp_status ln_axis(const char *op, const sp_kernel_args *a, const sp_tensor *x, int64_t *M,
                         int64_t *D) {
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    char sb[128];
    if (x->ndim == 0 || axis < -x->ndim || axis >= x->ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for shape %s", op, (long long)axis,
                        sp_shape_str(x->ndim, x->shape, sb, sizeof sb));
    int ax = (int)(axis < 0 ? axis + x->ndim : axis);
    *M = 1, *D = 1;
    for (int i = 0; i < ax; i++) *M *= x->shape[i];
    for (int i = ax; i < x->ndim; i++) *D *= x->shape[i];
    return SP_OK;
}

static sp_status nm_need(const char *op, const char *what, const sp_tensor *t, int64_t n) {
    char sb[128];
    if (sp_tensor_numel(t) != n)
        return sp_error(SP_ERR_SHAPE, "%s: %s of shape %s should have %lld elements", op, what,
                        sp_shape_str(t->ndim, t->shape, sb, sizeof sb), (long long)n);
    return SP_OK;
}

template <typename T> static const T *nm_ptr(const sp_tensor *t) {
    return (const T *)t->buf->data + t->offset;
}

sp_status cuda_layer_norm(const sp_kernel_args *a) {
    const char *op = "layer_norm";
    sp_tensor *x = NULL, *g = NULL, *b = NULL;
    int64_t M = 0, D = 0;
    sp_status st = ln_axis(op, a, a->in[0], &M, &D);
    if (st) return st;
    if ((st = nm_need(op, "gamma", a->in[1], D)) || (st = nm_need(op, "beta", a->in[2], D)) ||
        (st = nm_need(op, "mean", a->out[1], M)) || (st = nm_need(op, "rstd", a->out[2], M)))
        return st;
    if (M == 0) return SP_OK;
    if ((st = cuda_nn_contig(a->in[0], &x)) || (st = cuda_nn_contig(a->in[1], &g)) ||
        (st = cuda_nn_contig(a->in[2], &b)))
        goto done;
    {
        double eps = sp_attrs_get_float(a->attrs, "epsilon", 1e-5);
        nm_vec gv = nm_vec_flat(g), bv = nm_vec_flat(b);
        nm_vec mv = nm_vec_flat(a->out[1]), rv = nm_vec_flat(a->out[2]);
        cudaStream_t s = cuda_stream();
        switch (x->dtype) {
            CUDA_NN_FLOAT_CASES(x->dtype, T, {
                ln_fwd<T><<<nm_grid(M), nm_threads(D), 0, s>>>(nm_ptr<T>(x), (T *)a->out[0]->buf->data,
                                                               gv, bv, mv, rv, M, D, eps);
            })
        default: break;
        }
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(x);
    sp_tensor_release(g);
    sp_tensor_release(b);
    return st;
}

sp_status cuda_layer_norm_backward(const sp_kernel_args *a) {
    const char *op = "layer_norm_backward";
    sp_tensor *dy = NULL, *x = NULL, *g = NULL, *mean = NULL, *rstd = NULL, *part = NULL;
    int64_t M = 0, D = 0;
    sp_status st = ln_axis(op, a, a->in[1], &M, &D);
    if (st) return st;
    if ((st = nm_need(op, "dy", a->in[0], M * D)) || (st = nm_need(op, "gamma", a->in[2], D)) ||
        (st = nm_need(op, "mean", a->in[3], M)) || (st = nm_need(op, "rstd", a->in[4], M)) ||
        (st = nm_need(op, "dgamma", a->out[1], D)) || (st = nm_need(op, "dbeta", a->out[2], D)))
        return st;
    if (a->in[0]->dtype != a->in[1]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dy is %s but x is %s", op,
                        sp_dtype_name(a->in[0]->dtype), sp_dtype_name(a->in[1]->dtype));
    if (D == 0) return SP_OK;
    if ((st = cuda_nn_contig(a->in[0], &dy)) || (st = cuda_nn_contig(a->in[1], &x)) ||
        (st = cuda_nn_contig(a->in[2], &g)) || (st = cuda_nn_contig(a->in[3], &mean)) ||
        (st = cuda_nn_contig(a->in[4], &rstd)))
        goto done;
    {
        /* chunks of rows for dgamma/dbeta: a count fixed by M alone */
        int64_t nch = M < 64 ? (M > 0 ? M : 1) : 64, per = M > 0 ? (M + nch - 1) / nch : 0;
        int64_t psz = nch * 2 * D;
        if (!(part = cuda_nn_new(a->out[1]->buf->device, SP_F64, 1, &psz))) {
            st = sp_last_status();
            goto done;
        }
        nm_vec gv = nm_vec_flat(g), mv = nm_vec_flat(mean), rv = nm_vec_flat(rstd);
        nm_vec dgv = nm_vec_flat(a->out[1]), dbv = nm_vec_flat(a->out[2]);
        cudaStream_t s = cuda_stream();
        dim3 pgrid((unsigned)((D + 127) / 128), (unsigned)nch);
        switch (x->dtype) {
            CUDA_NN_FLOAT_CASES(x->dtype, T, {
                if (M > 0)
                    ln_bwd_dx<T><<<nm_grid(M), nm_threads(D), 0, s>>>(
                        nm_ptr<T>(dy), nm_ptr<T>(x), gv, mv, rv, (T *)a->out[0]->buf->data, M, D);
                ln_bwd_part<T><<<pgrid, 128, 0, s>>>(nm_ptr<T>(dy), nm_ptr<T>(x), mv, rv, M, D, per,
                                                     (double *)part->buf->data);
            })
        default: break;
        }
        ln_bwd_total<<<cuda_nn_blocks(D, 256), 256, 0, s>>>((const double *)part->buf->data, nch, D,
                                                            dgv, dbv);
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(dy);
    sp_tensor_release(x);
    sp_tensor_release(g);
    sp_tensor_release(mean);
    sp_tensor_release(rstd);
    sp_tensor_release(part);
    return st;
}

/* ---- batch norm ---- */

/* Training statistics of channel blockIdx.x; fills aff[c] = scale,
 * aff[C + c] = shift. */
template <typename T>
__global__ void bn_stats(const T *x, int64_t N, int64_t C, int64_t S, nm_vec gam, nm_vec bet,
                         nm_vec rm, nm_vec rv, nm_vec smean, nm_vec srstd, double momentum,
                         double eps, double *aff) {
    __shared__ double sh[32];
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        int64_t cnt = N * S;
        double s = 0;
        for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x)
            s += (double)x[((i / S) * C + c) * S + i % S];
        double mu = cuda_nn_block_sum(s, sh) / (double)cnt;
        double q = 0;
        for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x) {
            double d = (double)x[((i / S) * C + c) * S + i % S] - mu;
            q += d * d;
        }
        q = cuda_nn_block_sum(q, sh);
        if (threadIdx.x == 0) {
            double rs = 1.0 / sqrt(q / (double)cnt + eps), unb = q / (double)(cnt - 1);
            nm_st(rm, c, (1 - momentum) * nm_ld(rm, c) + momentum * mu);
            nm_st(rv, c, (1 - momentum) * nm_ld(rv, c) + momentum * unb);
            nm_st(smean, c, mu);
            nm_st(srstd, c, rs);
            double sc = nm_ld(gam, c) * rs;
            aff[c] = sc;
            aff[C + c] = nm_ld(bet, c) - mu * sc;
        }
    }
}

__global__ void bn_infer_stats(int64_t C, nm_vec gam, nm_vec bet, nm_vec rm, nm_vec rv,
                               nm_vec smean, nm_vec srstd, double eps, double *aff) {
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C;
         c += (int64_t)gridDim.x * blockDim.x) {
        double mu = nm_ld(rm, c), rs = 1.0 / sqrt(nm_ld(rv, c) + eps);
        nm_st(smean, c, mu);
        nm_st(srstd, c, rs);
        double sc = nm_ld(gam, c) * rs;
        aff[c] = sc;
        aff[C + c] = nm_ld(bet, c) - mu * sc;
    }
}

template <typename T>
__global__ void bn_apply(const T *x, T *y, int64_t n, int64_t C, int64_t S, const double *aff) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = (i / S) % C;
        y[i] = x[i] * (T)aff[c] + (T)aff[C + c];
    }
}

static sp_status bn_dims(const char *op, const sp_tensor *x, int64_t *N, int64_t *C, int64_t *S) {
    char sb[128];
    if (x->ndim < 2)
        return sp_error(SP_ERR_SHAPE, "%s: x must be [N, C, ...], got shape %s", op,
                        sp_shape_str(x->ndim, x->shape, sb, sizeof sb));
    if (x->dtype != SP_F32 && x->dtype != SP_F64)
        return sp_error(SP_ERR_DTYPE, "%s: x must be float32 or float64, got %s", op,
                        sp_dtype_name(x->dtype));
    *N = x->shape[0];
    *C = x->shape[1];
    *S = 1;
    for (int i = 2; i < x->ndim; i++) *S *= x->shape[i];
    return SP_OK;
}

sp_status cuda_batch_norm(const sp_kernel_args *a) {
    const char *op = "batch_norm";
    sp_tensor *x = NULL, *aff = NULL, *rm = a->in[3], *rv = a->in[4];
    int64_t N = 0, C = 0, S = 0;
    sp_status st = bn_dims(op, a->in[0], &N, &C, &S);
    if (st) return st;
    if ((st = nm_need(op, "gamma", a->in[1], C)) || (st = nm_need(op, "beta", a->in[2], C)) ||
        (st = nm_need(op, "running_mean", rm, C)) || (st = nm_need(op, "running_var", rv, C)) ||
        (st = nm_need(op, "save_mean", a->out[1], C)) ||
        (st = nm_need(op, "save_rstd", a->out[2], C)))
        return st;
    int training = sp_attrs_get_int(a->attrs, "training", 1) != 0;
    double momentum = sp_attrs_get_float(a->attrs, "momentum", 0.1);
    double eps = sp_attrs_get_float(a->attrs, "epsilon", 1e-5);
    int64_t count = N * S;
    char sb[128];
    if (training && count <= 1)
        return sp_error(SP_ERR_SHAPE,
                        "%s: training needs more than 1 value per channel, got input shape %s", op,
                        sp_shape_str(a->in[0]->ndim, a->in[0]->shape, sb, sizeof sb));
    if (training && (!sp_dtype_is_float(rm->dtype) || !sp_dtype_is_float(rv->dtype) ||
                     rm->ndim != 1 || rv->ndim != 1))
        return sp_error(SP_ERR_ARG, "%s: running_mean and running_var must be 1-D float tensors",
                        op);
    if (C == 0) return SP_OK;
    int64_t two_c = 2 * C;
    if ((st = cuda_nn_contig(a->in[0], &x))) return st;
    if (!(aff = cuda_nn_new(a->out[0]->buf->device, SP_F64, 1, &two_c))) {
        st = sp_last_status();
        goto done;
    }
    {
        cudaStream_t s = cuda_stream();
        nm_vec gv = nm_vec_of(a->in[1]), bv = nm_vec_of(a->in[2]), rmv = nm_vec_of(rm),
               rvv = nm_vec_of(rv);
        nm_vec smv = nm_vec_flat(a->out[1]), srv = nm_vec_flat(a->out[2]);
        double *af = (double *)aff->buf->data;
        int64_t n = sp_tensor_numel(x);
        if (x->dtype == SP_F64) {
            if (training)
                bn_stats<double><<<nm_grid(C), nm_threads(count), 0, s>>>(
                    nm_ptr<double>(x), N, C, S, gv, bv, rmv, rvv, smv, srv, momentum, eps, af);
            else
                bn_infer_stats<<<cuda_nn_blocks(C, 128), 128, 0, s>>>(C, gv, bv, rmv, rvv, smv, srv, eps, af);
            if (n > 0)
                bn_apply<double><<<cuda_nn_blocks(n, 256), 256, 0, s>>>(
                    nm_ptr<double>(x), (double *)a->out[0]->buf->data, n, C, S, af);
        } else {
            if (training)
                bn_stats<float><<<nm_grid(C), nm_threads(count), 0, s>>>(
                    nm_ptr<float>(x), N, C, S, gv, bv, rmv, rvv, smv, srv, momentum, eps, af);
            else
                bn_infer_stats<<<cuda_nn_blocks(C, 128), 128, 0, s>>>(C, gv, bv, rmv, rvv, smv, srv, eps, af);
            if (n > 0)
                bn_apply<float><<<cuda_nn_blocks(n, 256), 256, 0, s>>>(
                    nm_ptr<float>(x), (float *)a->out[0]->buf->data, n, C, S, af);
        }
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(x);
    sp_tensor_release(aff);
    return st;
}

/* Per-channel sums of the backward; fills dgamma, dbeta and coef[c] =
 * scale, coef[C+c] = mean(dy), coef[2C+c] = k, coef[3C+c] = mean. */
template <typename T>
__global__ void bn_bwd_sums(const T *dy, const T *x, int64_t N, int64_t C, int64_t S, nm_vec gam,
                            nm_vec smean, nm_vec srstd, int training, nm_vec dgam, nm_vec dbet,
                            double *coef) {
    __shared__ double sh[32];
    for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
        int64_t cnt = N * S;
        double mu = nm_ld(smean, c), rs = nm_ld(srstd, c);
        double s1 = 0, s2 = 0;
        for (int64_t i = threadIdx.x; i < cnt; i += blockDim.x) {
            int64_t k = ((i / S) * C + c) * S + i % S;
            double d = (double)dy[k];
            s1 += d;
            s2 += d * ((double)x[k] - mu);
        }
        s1 = cuda_nn_block_sum(s1, sh);
        s2 = cuda_nn_block_sum(s2, sh);
        if (threadIdx.x == 0) {
            double dg = s2 * rs;
            nm_st(dgam, c, dg);
            nm_st(dbet, c, s1);
            coef[c] = nm_ld(gam, c) * rs;
            coef[C + c] = training && cnt > 0 ? s1 / (double)cnt : 0;
            coef[2 * C + c] = training && cnt > 0 ? dg * rs / (double)cnt : 0;
            coef[3 * C + c] = mu;
        }
    }
}

template <typename T>
__global__ void bn_bwd_dx(const T *dy, const T *x, T *dx, int64_t n, int64_t C, int64_t S,
                          int training, const double *coef) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t c = (i / S) % C;
        T a = (T)coef[c];
        if (training) {
            T mdy = (T)coef[C + c], k = (T)coef[2 * C + c], m = (T)coef[3 * C + c];
            dx[i] = a * (dy[i] - mdy - (x[i] - m) * k);
        } else {
            dx[i] = dy[i] * a;
        }
    }
}

sp_status cuda_batch_norm_backward(const sp_kernel_args *a) {
    const char *op = "batch_norm_backward";
    sp_tensor *dy = NULL, *x = NULL, *coef = NULL;
    int64_t N = 0, C = 0, S = 0;
    sp_status st = bn_dims(op, a->in[1], &N, &C, &S);
    if (st) return st;
    if ((st = nm_need(op, "dy", a->in[0], sp_tensor_numel(a->in[1]))) ||
        (st = nm_need(op, "gamma", a->in[2], C)) ||
        (st = nm_need(op, "save_mean", a->in[3], C)) ||
        (st = nm_need(op, "save_rstd", a->in[4], C)) ||
        (st = nm_need(op, "dgamma", a->out[1], C)) || (st = nm_need(op, "dbeta", a->out[2], C)))
        return st;
    if (a->in[0]->dtype != a->in[1]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dy is %s but x is %s", op,
                        sp_dtype_name(a->in[0]->dtype), sp_dtype_name(a->in[1]->dtype));
    int training = sp_attrs_get_int(a->attrs, "training", 1) != 0;
    if (C == 0) return SP_OK;
    int64_t four_c = 4 * C;
    if ((st = cuda_nn_contig(a->in[0], &dy)) || (st = cuda_nn_contig(a->in[1], &x))) goto done;
    if (!(coef = cuda_nn_new(a->out[0]->buf->device, SP_F64, 1, &four_c))) {
        st = sp_last_status();
        goto done;
    }
    {
        cudaStream_t s = cuda_stream();
        nm_vec gv = nm_vec_of(a->in[2]), mv = nm_vec_of(a->in[3]), rv = nm_vec_of(a->in[4]);
        nm_vec dgv = nm_vec_flat(a->out[1]), dbv = nm_vec_flat(a->out[2]);
        double *cf = (double *)coef->buf->data;
        int64_t n = sp_tensor_numel(x), cnt = N * S;
        if (x->dtype == SP_F64) {
            bn_bwd_sums<double><<<nm_grid(C), nm_threads(cnt), 0, s>>>(
                nm_ptr<double>(dy), nm_ptr<double>(x), N, C, S, gv, mv, rv, training, dgv, dbv, cf);
            if (n > 0)
                bn_bwd_dx<double><<<cuda_nn_blocks(n, 256), 256, 0, s>>>(
                    nm_ptr<double>(dy), nm_ptr<double>(x), (double *)a->out[0]->buf->data, n, C, S,
                    training, cf);
        } else {
            bn_bwd_sums<float><<<nm_grid(C), nm_threads(cnt), 0, s>>>(
                nm_ptr<float>(dy), nm_ptr<float>(x), N, C, S, gv, mv, rv, training, dgv, dbv, cf);
            if (n > 0)
                bn_bwd_dx<float><<<cuda_nn_blocks(n, 256), 256, 0, s>>>(
                    nm_ptr<float>(dy), nm_ptr<float>(x), (float *)a->out[0]->buf->data, n, C, S,
                    training, cf);
        }
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(dy);
    sp_tensor_release(x);
    sp_tensor_release(coef);
    return st;
}
