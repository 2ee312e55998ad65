/*
 * norm.cu -- batch_norm and batch_norm_backward on the GPU; the CPU's
 * formulas (norm.c) in fused kernels.  Layer norm is in layer_norm.cu; the
 * side-vector helpers both use are in norm.cuh.
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
 * Data inputs are made contiguous first; the small per-channel vectors
 * (gamma, beta, stats, running buffers) are read and written through their
 * own stride and dtype.
 *
 * Fast path.  The float32 batch norm reduces each channel in two levels:
 * bn_part sums each of P work items per channel, a fixed slice of its rows
 * (P from the shape alone; a grid that fills the GPU once loops over the
 * items) summing d = x - x[0,c,0] and d*d in double (a shift that keeps
 * the one-pass variance accurate; the backward sums dy and dy*(x - mean)
 * the same way), and bn_fin adds the P partials per channel in order; the
 * elementwise pass then reads 16-byte vectors.  float64 keeps the
 * one-block-per-channel kernels.
 */
#include "backend/cuda/norm.cuh"

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

/* ---- batch norm, float32: two-level channel reductions ---- */

#define BN_THREADS 256
#define BN_PER_BLOCK 4096 /* about this many elements of a channel per bn_part work item */

/* q = j / d, rem = j % d, in 32 bits when `small` (both below 2^32). */
__device__ __forceinline__ void bn_divmod(int64_t j, int64_t d, bool small, int64_t *q, int64_t *rem) {
    if (small) {
        uint32_t a = (uint32_t)j, b = (uint32_t)d, t = a / b;
        *q = t, *rem = a - t * b;
    } else {
        *q = j / d, *rem = j % d;
    }
}

/* The chunk of 4 elements at element e of a row of S (s0 = its index in
 * the row): one 16-byte load when vec, else element by element, 0 past S. */
__device__ __forceinline__ float4 bn_ld4(const float *__restrict__ p, int64_t e, int64_t s0, int64_t S,
                                         bool vec) {
    if (vec) return __ldg(reinterpret_cast<const float4 *>(p + e));
    float4 v;
    v.x = p[e];
    v.y = s0 + 1 < S ? p[e + 1] : 0.0f;
    v.z = s0 + 2 < S ? p[e + 2] : 0.0f;
    v.w = s0 + 3 < S ? p[e + 3] : 0.0f;
    return v;
}

__device__ __forceinline__ void bn_st4(float *__restrict__ p, int64_t e, int64_t s0, int64_t S, bool vec,
                                       float4 v) {
    if (vec) {
        *reinterpret_cast<float4 *>(p + e) = v;
        return;
    }
    p[e] = v.x;
    if (s0 + 1 < S) p[e + 1] = v.y;
    if (s0 + 2 < S) p[e + 2] = v.z;
    if (s0 + 3 < S) p[e + 3] = v.w;
}

/* Work item b = c * P + p sums its slice [p*per, (p+1)*per) of channel
 * c's chunks (N rows of vpr = ceil(S/4) chunks; chunk j is row j / vpr)
 * into part[2b], part[2b+1]: with dy NULL (forward) d = x - x[0,c,0] and
 * d*d, else dy and dy*(x - mean_c).  Blocks take items b = blockIdx.x,
 * + gridDim.x, ... (the grid fills the GPU once; an item's sums do not
 * depend on which block runs it).  Fixed order: same bits every run. */
__global__ void __launch_bounds__(BN_THREADS)
    bn_part(const float *__restrict__ x, const float *__restrict__ dy, int64_t N, int64_t C,
            int64_t S, int P, int64_t per, nm_vec smean, int vec, double *part) {
    __shared__ double sh[32];
    for (int64_t b = blockIdx.x; b < C * (int64_t)P; b += gridDim.x) {
        int64_t c = b / P, p = b % P, vpr = (S + 3) / 4, total = N * vpr;
        int64_t j0 = p * per, j1 = j0 + per < total ? j0 + per : total;
        bool small = total < 0xffffffffLL;
        double ref = dy ? nm_ld(smean, c) : (double)x[c * S];
        double a1 = 0, a2 = 0;
        for (int64_t j = j0 + threadIdx.x; j < j1; j += 4 * (int64_t)BN_THREADS) {
            float4 xv[4], gv[4];
            int64_t s0[4];
#pragma unroll
            for (int u = 0; u < 4; u++) {
                int64_t jj = j + (int64_t)u * BN_THREADS, n, v;
                s0[u] = -1;
                if (jj < j1) {
                    bn_divmod(jj, vpr, small, &n, &v);
                    int64_t e = (n * C + c) * S + 4 * v;
                    s0[u] = 4 * v;
                    xv[u] = bn_ld4(x, e, s0[u], S, vec);
                    if (dy) gv[u] = bn_ld4(dy, e, s0[u], S, vec);
                }
            }
#pragma unroll
            for (int u = 0; u < 4; u++) {
                if (s0[u] < 0) continue;
                float xs[4] = {xv[u].x, xv[u].y, xv[u].z, xv[u].w};
                float gs[4] = {0, 0, 0, 0};
                if (dy) gs[0] = gv[u].x, gs[1] = gv[u].y, gs[2] = gv[u].z, gs[3] = gv[u].w;
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    if (s0[u] + i >= S) break;
                    double d = (double)xs[i] - ref;
                    if (dy) {
                        a1 += (double)gs[i];
                        a2 += (double)gs[i] * d;
                    } else {
                        a1 += d;
                        a2 += d * d;
                    }
                }
            }
        }
        a1 = cuda_nn_block_sum(a1, sh);
        a2 = cuda_nn_block_sum(a2, sh);
        if (threadIdx.x == 0) {
            part[2 * b] = a1;
            part[2 * b + 1] = a2;
        }
    }
}

/* Blocks for bn_part: as many as are resident on the GPU at once (at most
 * the number of work items). */
static unsigned bn_part_blocks(int64_t items) {
    static int per_sm = 0;
    if (!per_sm) {
        int nb = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&nb, bn_part, BN_THREADS, 0) != cudaSuccess ||
            nb < 1)
            nb = 2;
        per_sm = nb;
    }
    int64_t g = (int64_t)cuda_sm_count() * per_sm;
    if (g > items) g = items;
    return (unsigned)(g > 0 ? g : 1);
}

/* Forward: the channel statistics from the partials, as bn_stats. */
__global__ void bn_fin_fwd(const float *x, const double *part, int P, int64_t C, int64_t S,
                           int64_t cnt, nm_vec gam, nm_vec bet, nm_vec rm, nm_vec rv, nm_vec smean,
                           nm_vec srstd, double momentum, double eps, double *aff) {
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C;
         c += (int64_t)gridDim.x * blockDim.x) {
        double a1 = 0, a2 = 0;
        for (int p = 0; p < P; p++) {
            a1 += part[2 * (c * P + p)];
            a2 += part[2 * (c * P + p) + 1];
        }
        double dm = a1 / (double)cnt, mu = (double)x[c * S] + dm;
        double var = a2 / (double)cnt - dm * dm;
        if (var < 0) var = 0;
        double rs = 1.0 / sqrt(var + eps), unb = var * (double)cnt / (double)(cnt - 1);
        nm_st(rm, c, (1 - momentum) * nm_ld(rm, c) + momentum * mu);
        nm_st(rv, c, (1 - momentum) * nm_ld(rv, c) + momentum * unb);
        nm_st(smean, c, mu);
        nm_st(srstd, c, rs);
        double sc = nm_ld(gam, c) * rs;
        aff[c] = sc;
        aff[C + c] = nm_ld(bet, c) - mu * sc;
    }
}

/* Backward: dgamma, dbeta and coef from the partials, as bn_bwd_sums. */
__global__ void bn_fin_bwd(const double *part, int P, int64_t C, int64_t cnt, nm_vec gam,
                           nm_vec smean, nm_vec srstd, int training, nm_vec dgam, nm_vec dbet,
                           double *coef) {
    for (int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; c < C;
         c += (int64_t)gridDim.x * blockDim.x) {
        double s1 = 0, s2 = 0;
        for (int p = 0; p < P; p++) {
            s1 += part[2 * (c * P + p)];
            s2 += part[2 * (c * P + p) + 1];
        }
        double rs = nm_ld(srstd, c), dg = s2 * rs;
        nm_st(dgam, c, dg);
        nm_st(dbet, c, s1);
        coef[c] = nm_ld(gam, c) * rs;
        coef[C + c] = training && cnt > 0 ? s1 / (double)cnt : 0;
        coef[2 * C + c] = training && cnt > 0 ? dg * rs / (double)cnt : 0;
        coef[3 * C + c] = nm_ld(smean, c);
    }
}

/* The elementwise passes over N*C rows of S, a chunk of 4 per thread:
 * forward y = x*scale + shift (dy NULL), backward dx as bn_bwd_dx. */
__global__ void bn_apply4(const float *__restrict__ x, const float *__restrict__ dy,
                          float *__restrict__ y, int64_t rows, int64_t C, int64_t S, int training,
                          int vec, const double *__restrict__ cf) {
    int64_t vpr = (S + 3) / 4, total = rows * vpr;
    bool small = total < 0xffffffffLL;
    for (int64_t j = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; j < total;
         j += (int64_t)gridDim.x * blockDim.x) {
        int64_t row, v, q, c;
        bn_divmod(j, vpr, small, &row, &v);
        bn_divmod(row, C, small, &q, &c);
        int64_t e = row * S + 4 * v, s0 = 4 * v;
        float4 xv = bn_ld4(x, e, s0, S, vec), o;
        float a = (float)cf[c];
        if (!dy) {
            float b = (float)cf[C + c];
            o.x = xv.x * a + b, o.y = xv.y * a + b, o.z = xv.z * a + b, o.w = xv.w * a + b;
        } else {
            float4 g = bn_ld4(dy, e, s0, S, vec);
            if (training) {
                float mdy = (float)cf[C + c], k = (float)cf[2 * C + c], m = (float)cf[3 * C + c];
                o.x = a * (g.x - mdy - (xv.x - m) * k);
                o.y = a * (g.y - mdy - (xv.y - m) * k);
                o.z = a * (g.z - mdy - (xv.z - m) * k);
                o.w = a * (g.w - mdy - (xv.w - m) * k);
            } else {
                o.x = g.x * a, o.y = g.y * a, o.z = g.z * a, o.w = g.w * a;
            }
        }
        bn_st4(y, e, s0, S, vec, o);
    }
}

/* The split of a channel's N*ceil(S/4) chunks into P slices of `per`,
 * from the shape alone. */
static void bn_split(int64_t N, int64_t S, int *P, int64_t *per) {
    int64_t total = N * ((S + 3) / 4), p = (N * S + BN_PER_BLOCK - 1) / BN_PER_BLOCK;
    if (p < 1) p = 1;
    if (p > 4096) p = 4096;
    if (p > total) p = total > 0 ? total : 1;
    int64_t q = (total + p - 1) / p;
    if (q < 1) q = 1;
    *per = q;
    *P = (int)((total + q - 1) / q > 0 ? (total + q - 1) / q : 1);
}

/* Whether the float32 fast path takes C channels (C*P work items). */
static int bn_fast_ok(int64_t C, int P) { return C * (int64_t)P < (1LL << 31) - 1; }

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
    sp_tensor *x = NULL, *aff = NULL, *part = NULL, *rm = a->in[3], *rv = a->in[4];
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
            int P = 1;
            int64_t per = 1;
            bn_split(N, S, &P, &per);
            const float *xp = nm_ptr<float>(x);
            float *yp = (float *)a->out[0]->buf->data;
            int vec = S % 4 == 0 && rw_aligned(xp) && rw_aligned(yp);
            if (training && bn_fast_ok(C, P)) {
                int64_t np = 2 * C * (int64_t)P;
                if (!(part = cuda_nn_new(a->out[0]->buf->device, SP_F64, 1, &np))) {
                    st = sp_last_status();
                    goto done;
                }
                double *pp = (double *)part->buf->data;
                bn_part<<<bn_part_blocks(C * P), BN_THREADS, 0, s>>>(xp, NULL, N, C, S, P, per, smv, vec, pp);
                bn_fin_fwd<<<cuda_nn_blocks(C, 128), 128, 0, s>>>(xp, pp, P, C, S, count, gv, bv, rmv,
                                                                  rvv, smv, srv, momentum, eps, af);
            } else if (training) {
                bn_stats<float><<<nm_grid(C), nm_threads(count), 0, s>>>(
                    xp, N, C, S, gv, bv, rmv, rvv, smv, srv, momentum, eps, af);
            } else {
                bn_infer_stats<<<cuda_nn_blocks(C, 128), 128, 0, s>>>(C, gv, bv, rmv, rvv, smv, srv, eps, af);
            }
            if (n > 0)
                bn_apply4<<<cuda_nn_blocks(N * C * ((S + 3) / 4), 256), 256, 0, s>>>(
                    xp, NULL, yp, N * C, C, S, training, vec, af);
        }
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(x);
    sp_tensor_release(aff);
    sp_tensor_release(part);
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
    sp_tensor *dy = NULL, *x = NULL, *coef = NULL, *part = NULL;
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
            int P = 1;
            int64_t per = 1;
            bn_split(N, S, &P, &per);
            const float *xp = nm_ptr<float>(x), *dyp = nm_ptr<float>(dy);
            float *dxp = (float *)a->out[0]->buf->data;
            int vec = S % 4 == 0 && rw_aligned(xp) && rw_aligned(dyp) && rw_aligned(dxp);
            if (bn_fast_ok(C, P) && cnt > 0) {
                int64_t np = 2 * C * (int64_t)P;
                if (!(part = cuda_nn_new(a->out[0]->buf->device, SP_F64, 1, &np))) {
                    st = sp_last_status();
                    goto done;
                }
                double *pp = (double *)part->buf->data;
                bn_part<<<bn_part_blocks(C * P), BN_THREADS, 0, s>>>(xp, dyp, N, C, S, P, per, mv, vec, pp);
                bn_fin_bwd<<<cuda_nn_blocks(C, 128), 128, 0, s>>>(pp, P, C, cnt, gv, mv, rv, training,
                                                                  dgv, dbv, cf);
            } else {
                bn_bwd_sums<float><<<nm_grid(C), nm_threads(cnt), 0, s>>>(
                    dyp, xp, N, C, S, gv, mv, rv, training, dgv, dbv, cf);
            }
            if (n > 0)
                bn_apply4<<<cuda_nn_blocks(N * C * ((S + 3) / 4), 256), 256, 0, s>>>(
                    xp, dyp, dxp, N * C, C, S, training, vec, cf);
        }
        st = cuda_nn_launched(op);
    }
done:
    sp_tensor_release(dy);
    sp_tensor_release(x);
    sp_tensor_release(coef);
    sp_tensor_release(part);
    return st;
}
