/*
 * softmax.cu -- softmax, log_softmax and the fused sparse softmax
 * cross-entropy (forward and backward) on the GPU; the CPU's recipe
 * (softmax.c) in fused, one-read-per-pass kernels.
 *
 * Every kernel reduces along one axis of length K of a contiguous input
 * seen as [outer, K, inner]:
 *   - inner == 1 (the usual last axis): one block per row, the row's max
 *     and sum found with warp shuffles and a block reduction, then one more
 *     pass writes the row; rows are independent blocks, so any number of
 *     rows fills the GPU;
 *   - inner > 1: one thread per (outer, inner) column walking k, so a warp
 *     reads 32 neighbouring columns of each k (coalesced).
 * The stable recipe: m = max_k x_k (NaN skipped, but a NaN then poisons
 * the sum, so such a row is NaN throughout, as in torch); s = sum_k
 * exp(x_k - m), accumulated in double; softmax_k = exp(x_k - m) / s,
 * log_softmax_k = (x_k - m) - log s.  float16/bfloat16 load into float and
 * round once.  The reductions run in an order fixed by the code (thread
 * strides, then a fixed tree), so results repeat bit for bit.
 *
 * Cross-entropy takes logits [N, C] and integer labels [N]: one block per
 * row computes loss_n = m + log s - x[label_n] in double; "mean" and "sum"
 * then add the N losses in one block, in a fixed order; "mean" of zero rows
 * is NaN (0/0), as torch.  A label outside [0, C) is found on the device
 * (nn_util.cuh's flag): the kernel writes NaN for that row and the call
 * synchronizes to report "label L at position P out of range [0, C)", the
 * CPU's message -- except while the stream is captured into a graph, where
 * nothing may synchronize and the bad row's loss is just NaN.  The backward
 * is (softmax - onehot) * dloss_n, dloss/N for "mean"; a bad label's row
 * gets no onehot term.
 *
 * Fast rows.  Rows along the last axis of float32/float16/bfloat16 (and
 * cross-entropy in those dtypes) take rows.cuh's single-read kernels
 * instead: a warp per row up to 256 16-byte chunks, else a block, the row
 * kept in shared memory between the max pass, the sum pass and the output
 * pass.  There the sums run in float per thread (a few chunks each) and in
 * double across threads; the max, the NaN rule and the formulas are the
 * ones above.  float64 and inner > 1 keep the kernels above.
 */
#include <string.h>

#include "backend/cuda/rows.cuh"

/* Threads per row block for rows of K elements: a power of two in
 * [32, 1024], about one element per thread for short rows. */
static int sm_threads(int64_t K) {
    int t = 32;
    while (t < 1024 && t < K) t <<= 1;
    return t;
}

__device__ __forceinline__ float sm_exp(float v) { return expf(v); }
__device__ __forceinline__ double sm_exp(double v) { return exp(v); }

/* max and sum of exp over one contiguous row of K, by the whole block. */
template <typename T, typename A>
__device__ __forceinline__ void sm_row_stats(const T *x, int64_t K, A *m_out, double *s_out) {
    __shared__ double shd[32];
    __shared__ A sha[32];
    A m = (A)-INFINITY;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) m = fmax(m, (A)cuda_nn_f(x[k]));
    m = cuda_nn_block_max(m, sha);
    double s = 0;
    for (int64_t k = threadIdx.x; k < K; k += blockDim.x) s += (double)sm_exp((A)cuda_nn_f(x[k]) - m);
    s = cuda_nn_block_sum(s, shd);
    *m_out = m;
    *s_out = s;
}

template <typename T>
__global__ void sm_rows(const T *x, T *y, int64_t rows, int64_t K, int want_log) {
    typedef typename cuda_nn_acc<T>::type A;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * K;
        T *yr = y + r * K;
        A m;
        double s;
        sm_row_stats<T, A>(xr, K, &m, &s);
        if (want_log) {
            A ls = (A)log(s);
            for (int64_t k = threadIdx.x; k < K; k += blockDim.x)
                yr[k] = cuda_nn_to<T>(((A)cuda_nn_f(xr[k]) - m) - ls);
        } else {
            A inv = (A)(1.0 / s);
            for (int64_t k = threadIdx.x; k < K; k += blockDim.x)
                yr[k] = cuda_nn_to<T>(sm_exp((A)cuda_nn_f(xr[k]) - m) * inv);
        }
    }
}

template <typename T>
__global__ void sm_cols(const T *x, T *y, int64_t outer, int64_t K, int64_t inner, int want_log) {
    typedef typename cuda_nn_acc<T>::type A;
    int64_t n = outer * inner;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / inner, j = i % inner;
        const T *xc = x + o * K * inner + j;
        T *yc = y + o * K * inner + j;
        A m = (A)-INFINITY;
        for (int64_t k = 0; k < K; k++) m = fmax(m, (A)cuda_nn_f(xc[k * inner]));
        double s = 0;
        for (int64_t k = 0; k < K; k++) s += (double)sm_exp((A)cuda_nn_f(xc[k * inner]) - m);
        if (want_log) {
            A ls = (A)log(s);
            for (int64_t k = 0; k < K; k++)
                yc[k * inner] = cuda_nn_to<T>(((A)cuda_nn_f(xc[k * inner]) - m) - ls);
        } else {
            A inv = (A)(1.0 / s);
            for (int64_t k = 0; k < K; k++)
                yc[k * inner] = cuda_nn_to<T>(sm_exp((A)cuda_nn_f(xc[k * inner]) - m) * inv);
        }
    }
}

/* ---- fast rows (rows.cuh): last axis, float32/float16/bfloat16 ---- */

typedef enum xe_reduction { XE_MEAN, XE_SUM, XE_NONE } xe_reduction;

enum { SMX_SOFTMAX = 0, SMX_LOG = 1, SMX_XENT_BWD = 2 };

/* What the cross-entropy kernels need beside the logits. */
typedef struct smx_xe {
    const void *lab; /* labels [N], contiguous, dtype ldt */
    int ldt;
    const void *dloss; /* backward: dloss (dtype gdt), [N] for "none", else a scalar */
    int gdt, red;      /* red: xe_reduction */
    double *loss;      /* forward: per-row losses (reductions "mean"/"sum") */
    void *out;         /* forward, "none": the output, dtype odt */
    int odt;
    unsigned long long *flag; /* first bad label position (atomicMin) */
} smx_xe;

/* The row's max (NaN skipped) and sum of exp(x - max), the row going into
 * the cache on the way. */
template <typename T, bool WARP>
__device__ __forceinline__ void smx_stats(const rw_place &p, const T *__restrict__ xr, int64_t K,
                                          bool vec, float *m_out, double *s_out) {
    const int VW = RW_VW(T);
    __shared__ float shf[32];
    __shared__ double shd[32];
    float mx = -INFINITY;
    rw_pass<T>(p, xr, K, vec, -INFINITY, true, [&](int64_t, const float *f) {
#pragma unroll
        for (int i = 0; i < VW; i++) mx = fmaxf(mx, f[i]);
    });
    float m = rw_max<WARP>(mx, shf);
    float s = 0;
    rw_pass<T>(p, xr, K, vec, -INFINITY, false, [&](int64_t, const float *f) {
#pragma unroll
        for (int i = 0; i < VW; i++) s += expf(f[i] - m);
    });
    *m_out = m;
    *s_out = rw_sum<WARP, double>((double)s, shd);
}

/* softmax / log_softmax / the cross-entropy backward of `rows` rows of K. */
template <typename T, bool WARP>
__global__ void __launch_bounds__(RW_MAX_THREADS)
    smx_rows(const T *__restrict__ x, T *__restrict__ y, int64_t rows, int64_t K, int mode, int vec,
             int cached, smx_xe xe) {
    const int VW = RW_VW(T);
    rw_place p = rw_where<WARP>(cached, K, VW);
    for (int64_t r = p.row0; r < rows; r += p.rstep) {
        const T *xr = x + r * K;
        T *yr = y + r * K;
        float m;
        double s;
        smx_stats<T, WARP>(p, xr, K, vec != 0, &m, &s);
        if (mode == SMX_LOG) {
            float ls = (float)log(s);
            rw_pass<T>(p, xr, K, vec, -INFINITY, false, [&](int64_t k0, const float *f) {
                float o[VW];
#pragma unroll
                for (int i = 0; i < VW; i++) o[i] = (f[i] - m) - ls;
                rw_store<T>(yr, k0, K, vec, o);
            });
        } else if (mode == SMX_SOFTMAX) {
            float inv = (float)(1.0 / s);
            rw_pass<T>(p, xr, K, vec, -INFINITY, false, [&](int64_t k0, const float *f) {
                float o[VW];
#pragma unroll
                for (int i = 0; i < VW; i++) o[i] = expf(f[i] - m) * inv;
                rw_store<T>(yr, k0, K, vec, o);
            });
        } else {
            int64_t l = cuda_nn_ldi(xe.lab, xe.ldt, r);
            if ((l < 0 || l >= K) && p.lane == 0) atomicMin(xe.flag, (unsigned long long)r);
            double g = xe.red == XE_NONE ? cuda_nn_ld(xe.dloss, xe.gdt, r) : cuda_nn_ld(xe.dloss, xe.gdt, 0);
            if (xe.red == XE_MEAN) g /= (double)rows;
            float inv = (float)(1.0 / s), ga = (float)g;
            rw_pass<T>(p, xr, K, vec, -INFINITY, false, [&](int64_t k0, const float *f) {
                float o[VW];
#pragma unroll
                for (int i = 0; i < VW; i++) {
                    float q = expf(f[i] - m) * inv;
                    if (k0 + i == l) q -= 1.0f;
                    o[i] = q * ga;
                }
                rw_store<T>(yr, k0, K, vec, o);
            });
        }
    }
}

/* Per-row cross-entropy losses of N rows of C logits: into xe.out (dtype
 * xe.odt) for reduction "none", else into xe.loss. */
template <typename T, bool WARP>
__global__ void __launch_bounds__(RW_MAX_THREADS)
    smx_xent(const T *__restrict__ x, int64_t N, int64_t C, int vec, int cached, smx_xe xe) {
    rw_place p = rw_where<WARP>(cached, C, RW_VW(T));
    for (int64_t r = p.row0; r < N; r += p.rstep) {
        const T *xr = x + r * C;
        float m;
        double s;
        smx_stats<T, WARP>(p, xr, C, vec != 0, &m, &s);
        if (p.lane == 0) {
            int64_t l = cuda_nn_ldi(xe.lab, xe.ldt, r);
            double v;
            if (l < 0 || l >= C) {
                atomicMin(xe.flag, (unsigned long long)r);
                v = (double)NAN;
            } else {
                v = ((double)m - (double)cuda_nn_f(xr[l])) + log(s);
            }
            if (xe.red == XE_NONE)
                cuda_nn_st(xe.out, xe.odt, r, v);
            else
                xe.loss[r] = v;
        }
    }
}

/* Launches the fast row kernel for `rows` rows of K (y NULL: the
 * cross-entropy forward).  Returns 0 when T has no fast path (float64),
 * 1 when launched (check the launch with cuda_nn_launched). */
template <typename T>
static int smx_launch(const T *x, T *y, int64_t rows, int64_t K, int mode, const smx_xe &xe,
                      cudaStream_t s) {
    if constexpr (sizeof(T) == 8) {
        return 0;
    } else {
        const int VW = RW_VW(T);
        rw_conf c = rw_config(rows, K, VW, 1);
        int vec = K % VW == 0 && rw_aligned(x) && (!y || rw_aligned(y));
        if (!y) {
            if (c.warp)
                smx_xent<T, true><<<c.blocks, c.threads, c.smem, s>>>(x, rows, K, vec, c.cache, xe);
            else
                smx_xent<T, false><<<c.blocks, c.threads, c.smem, s>>>(x, rows, K, vec, c.cache, xe);
        } else if (c.warp) {
            smx_rows<T, true><<<c.blocks, c.threads, c.smem, s>>>(x, y, rows, K, mode, vec, c.cache, xe);
        } else {
            smx_rows<T, false><<<c.blocks, c.threads, c.smem, s>>>(x, y, rows, K, mode, vec, c.cache, xe);
        }
        return 1;
    }
}

static unsigned sm_row_blocks(int64_t rows) {
    return (unsigned)(rows < (1 << 30) ? (rows > 0 ? rows : 1) : (1 << 30));
}

static sp_status sm_run(const sp_kernel_args *a, int want_log) {
    const char *op = want_log ? "log_softmax" : "softmax";
    sp_tensor *x = a->in[0], *xc = NULL, *y = a->out[0];
    if (!sp_dtype_is_float(x->dtype) || y->dtype != x->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: expected a float input, got %s", op,
                        sp_dtype_name(x->dtype));
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    int ndim = x->ndim, rank = ndim ? ndim : 1;
    if (axis < -rank || axis >= rank) {
        char sb[128];
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for shape %s", op, (long long)axis,
                        sp_shape_str(ndim, x->shape, sb, sizeof sb));
    }
    int ax = ndim ? (int)(axis < 0 ? axis + ndim : axis) : 0;
    int64_t n = sp_tensor_numel(x);
    if (n == 0) return SP_OK;
    int64_t K = ndim ? x->shape[ax] : 1, inner = 1;
    for (int d = ax + 1; d < ndim; d++) inner *= x->shape[d];
    int64_t outer = n / (K * inner);
    sp_status st = cuda_nn_contig(x, &xc);
    if (st) return st;
    cudaStream_t s = cuda_stream();
    switch (x->dtype) {
        CUDA_NN_FLOAT_CASES(x->dtype, T, {
            const T *xp = (const T *)xc->buf->data + xc->offset;
            T *yp = (T *)y->buf->data;
            smx_xe none;
            memset(&none, 0, sizeof none);
            if (inner == 1 && smx_launch<T>(xp, yp, outer, K, want_log ? SMX_LOG : SMX_SOFTMAX, none, s))
                break;
            if (inner == 1)
                sm_rows<T><<<sm_row_blocks(outer), sm_threads(K), 0, s>>>(xp, yp, outer, K, want_log);
            else
                sm_cols<T><<<cuda_nn_blocks(outer * inner, 128), 128, 0, s>>>(xp, yp, outer, K, inner,
                                                                             want_log);
        })
    default: break;
    }
    st = cuda_nn_launched(op);
    sp_tensor_release(xc);
    return st;
}

sp_status cuda_softmax(const sp_kernel_args *a) { return sm_run(a, 0); }
sp_status cuda_log_softmax(const sp_kernel_args *a) { return sm_run(a, 1); }

/* ---- sparse softmax cross-entropy ---- */

static sp_status xe_reduction_of(const char *op, const sp_attrs *attrs, xe_reduction *out) {
    const char *r = sp_attrs_get_str(attrs, "reduction", "mean");
    if (!strcmp(r, "mean"))
        *out = XE_MEAN;
    else if (!strcmp(r, "sum"))
        *out = XE_SUM;
    else if (!strcmp(r, "none"))
        *out = XE_NONE;
    else
        return sp_error(SP_ERR_ARG,
                        "%s: reduction must be \"mean\", \"sum\" or \"none\", got \"%s\"", op, r);
    return SP_OK;
}

static sp_status xe_check(const char *op, const sp_tensor *logits, const sp_tensor *labels) {
    char s1[128], s2[128];
    if (!sp_dtype_is_float(logits->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: logits must be float, got %s", op,
                        sp_dtype_name(logits->dtype));
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0])
        return sp_error(SP_ERR_SHAPE, "%s: expected logits [N, C] and labels [N], got %s and %s",
                        op, sp_shape_str(logits->ndim, logits->shape, s1, sizeof s1),
                        sp_shape_str(labels->ndim, labels->shape, s2, sizeof s2));
    if (!sp_dtype_is_int(labels->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: labels must be int32 or int64, got %s", op,
                        sp_dtype_name(labels->dtype));
    return SP_OK;
}

/* Per-row losses: into out (dtype odt) when `direct`, else into the
 * double array loss. */
template <typename T>
__global__ void xe_fwd_rows(const T *x, const void *lab, int ldt, int64_t N, int64_t C,
                            double *loss, void *out, int odt, int direct,
                            unsigned long long *flag) {
    typedef typename cuda_nn_acc<T>::type A;
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const T *xr = x + r * C;
        int64_t l = cuda_nn_ldi(lab, ldt, r);
        A m;
        double s;
        sm_row_stats<T, A>(xr, C, &m, &s);
        if (threadIdx.x == 0) {
            double v;
            if (l < 0 || l >= C) {
                atomicMin(flag, (unsigned long long)r);
                v = (double)NAN;
            } else {
                v = ((double)m - (double)cuda_nn_f(xr[l])) + log(s);
            }
            if (direct)
                cuda_nn_st(out, odt, r, v);
            else
                loss[r] = v;
        }
    }
}

/* out[0] = sum of loss[0..N) (divided by N when mean), in one block. */
__global__ void xe_total(const double *loss, int64_t N, int mean, void *out, int odt) {
    __shared__ double sh[32];
    double s = 0;
    for (int64_t i = threadIdx.x; i < N; i += blockDim.x) s += loss[i];
    s = cuda_nn_block_sum(s, sh);
    if (threadIdx.x == 0) cuda_nn_st(out, odt, 0, mean ? s / (double)N : s);
}

template <typename T>
__global__ void xe_bwd_rows(const T *x, const void *lab, int ldt, int64_t N, int64_t C,
                            const void *dloss, int gdt, int mode, T *dx,
                            unsigned long long *flag) {
    typedef typename cuda_nn_acc<T>::type A;
    for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
        const T *xr = x + r * C;
        T *yr = dx + r * C;
        int64_t l = cuda_nn_ldi(lab, ldt, r);
        if ((l < 0 || l >= C) && threadIdx.x == 0) atomicMin(flag, (unsigned long long)r);
        double g = mode == XE_NONE ? cuda_nn_ld(dloss, gdt, r) : cuda_nn_ld(dloss, gdt, 0);
        if (mode == XE_MEAN) g /= (double)N;
        A m;
        double s;
        sm_row_stats<T, A>(xr, C, &m, &s);
        A inv = (A)(1.0 / s), ga = (A)g;
        for (int64_t k = threadIdx.x; k < C; k += blockDim.x) {
            A p = sm_exp((A)cuda_nn_f(xr[k]) - m) * inv;
            if (k == l) p -= (A)1;
            yr[k] = cuda_nn_to<T>(p * ga);
        }
    }
}

/* Reports a label the kernels flagged (synchronizes).  In a CUDA graph
 * capture nothing may wait: the check is recorded as a kernel raising the
 * device error slot, which every replay reads (graph.cu). */
static sp_status xe_report(const char *op, sp_tensor *flag, const sp_tensor *labels, int64_t C) {
    if (cuda_capture_get()) return cuda_capture_flag(flag->buf->data, labels, sp_op_find(op), (long long)C);
    if (cuda_nn_capturing()) return SP_OK;
    unsigned long long pos;
    sp_status st = cuda_nn_flag_read(flag, &pos);
    if (st || pos == ~0ull) return st;
    return sp_error(SP_ERR_ARG, "%s: label %lld at position %lld out of range [0, %lld)", op,
                    (long long)cuda_nn_index_at(labels, (int64_t)pos), (long long)pos, (long long)C);
}

sp_status cuda_sparse_softmax_cross_entropy(const sp_kernel_args *a) {
    const char *op = "sparse_softmax_cross_entropy";
    sp_tensor *logits = NULL, *labels = NULL, *flag = NULL, *loss = NULL, *out = a->out[0];
    xe_reduction red = XE_MEAN;
    sp_status st = xe_reduction_of(op, a->attrs, &red);
    if (st || (st = xe_check(op, a->in[0], a->in[1]))) return st;
    int64_t N = a->in[0]->shape[0], C = a->in[0]->shape[1];
    if (sp_tensor_numel(out) != (red == XE_NONE ? N : 1))
        return sp_error(SP_ERR_SHAPE, "%s: output has %lld elements, expected %lld", op,
                        (long long)sp_tensor_numel(out), (long long)(red == XE_NONE ? N : 1));
    sp_device dev = out->buf->device;
    cudaStream_t s = cuda_stream();
    if ((st = cuda_nn_contig(a->in[0], &logits)) || (st = cuda_nn_contig(a->in[1], &labels)))
        goto done;
    if (!(flag = cuda_nn_flag_new(dev))) {
        st = sp_last_status();
        goto done;
    }
    if (red != XE_NONE) {
        int64_t n1 = N ? N : 1;
        if (!(loss = cuda_nn_new(dev, SP_F64, 1, &n1))) {
            st = sp_last_status();
            goto done;
        }
    }
    if (N > 0) {
        const void *lab = (const char *)labels->buf->data + labels->offset * (int64_t)sp_dtype_size(labels->dtype);
        switch (logits->dtype) {
            CUDA_NN_FLOAT_CASES(logits->dtype, T, {
                smx_xe xe;
                memset(&xe, 0, sizeof xe);
                xe.lab = lab, xe.ldt = labels->dtype, xe.red = (int)red;
                xe.loss = loss ? (double *)loss->buf->data : NULL;
                xe.out = out->buf->data, xe.odt = out->dtype;
                xe.flag = (unsigned long long *)flag->buf->data;
                const T *xp = (const T *)logits->buf->data + logits->offset;
                if (smx_launch<T>(xp, NULL, N, C, 0, xe, s)) break;
                xe_fwd_rows<T><<<sm_row_blocks(N), sm_threads(C), 0, s>>>(
                    (const T *)logits->buf->data + logits->offset, lab, labels->dtype, N, C,
                    loss ? (double *)loss->buf->data : NULL, out->buf->data, out->dtype,
                    red == XE_NONE, (unsigned long long *)flag->buf->data);
            })
        default: break;
        }
        if ((st = cuda_nn_launched(op))) goto done;
    }
    if (red != XE_NONE) {
        xe_total<<<1, 1024, 0, s>>>((const double *)loss->buf->data, N, red == XE_MEAN,
                                    out->buf->data, out->dtype);
        if ((st = cuda_nn_launched(op))) goto done;
    }
    st = xe_report(op, flag, labels, C);
done:
    sp_tensor_release(logits);
    sp_tensor_release(labels);
    sp_tensor_release(flag);
    sp_tensor_release(loss);
    return st;
}

sp_status cuda_sparse_softmax_cross_entropy_backward(const sp_kernel_args *a) {
    const char *op = "sparse_softmax_cross_entropy_backward";
    sp_tensor *logits = NULL, *labels = NULL, *dl = NULL, *flag = NULL, *dloss = a->in[2];
    xe_reduction red = XE_MEAN;
    sp_status st = xe_reduction_of(op, a->attrs, &red);
    if (st) return st;
    if (a->out[0]->dtype != a->in[0]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dlogits must have the logits' dtype", op);
    if ((st = xe_check(op, a->in[0], a->in[1]))) return st;
    int64_t N = a->in[0]->shape[0], C = a->in[0]->shape[1];
    if (sp_tensor_numel(dloss) != (red == XE_NONE ? N : 1) || dloss->ndim > 1 ||
        (red != XE_NONE && dloss->ndim != 0)) {
        char sb[128];
        return sp_error(SP_ERR_SHAPE,
                        "%s: dloss of shape %s does not fit reduction \"%s\" with N = %lld", op,
                        sp_shape_str(dloss->ndim, dloss->shape, sb, sizeof sb),
                        sp_attrs_get_str(a->attrs, "reduction", "mean"), (long long)N);
    }
    if (!sp_dtype_is_float(dloss->dtype) && !sp_dtype_is_int(dloss->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: dloss must be numeric, got %s", op,
                        sp_dtype_name(dloss->dtype));
    if (N == 0) return SP_OK; /* C == 0 with rows: every label is out of range, reported below */
    sp_device dev = a->out[0]->buf->device;
    cudaStream_t s = cuda_stream();
    if ((st = cuda_nn_contig(a->in[0], &logits)) || (st = cuda_nn_contig(a->in[1], &labels)) ||
        (st = cuda_nn_contig(dloss, &dl)))
        goto done;
    if (!(flag = cuda_nn_flag_new(dev))) {
        st = sp_last_status();
        goto done;
    }
    {
        const void *lab = (const char *)labels->buf->data + labels->offset * (int64_t)sp_dtype_size(labels->dtype);
        const void *g = (const char *)dl->buf->data + dl->offset * (int64_t)sp_dtype_size(dl->dtype);
        switch (logits->dtype) {
            CUDA_NN_FLOAT_CASES(logits->dtype, T, {
                smx_xe xe;
                memset(&xe, 0, sizeof xe);
                xe.lab = lab, xe.ldt = labels->dtype, xe.dloss = g, xe.gdt = dl->dtype;
                xe.red = (int)red, xe.flag = (unsigned long long *)flag->buf->data;
                const T *xp = (const T *)logits->buf->data + logits->offset;
                if (smx_launch<T>(xp, (T *)a->out[0]->buf->data, N, C, SMX_XENT_BWD, xe, s)) break;
                xe_bwd_rows<T><<<sm_row_blocks(N), sm_threads(C), 0, s>>>(
                    (const T *)logits->buf->data + logits->offset, lab, labels->dtype, N, C, g,
                    dl->dtype, (int)red, (T *)a->out[0]->buf->data,
                    (unsigned long long *)flag->buf->data);
            })
        default: break;
        }
        if ((st = cuda_nn_launched(op))) goto done;
    }
    st = xe_report(op, flag, labels, C);
done:
    sp_tensor_release(logits);
    sp_tensor_release(labels);
    sp_tensor_release(dl);
    sp_tensor_release(flag);
    return st;
}
