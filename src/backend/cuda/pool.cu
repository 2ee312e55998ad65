/*
 * pool.cu -- 2-D max and average pooling on the GPU, NCHW, float32 and
 * float64, with their backward kernels; the rules are the CPU's (pool.c).
 *
 * Geometry comes from cpu_window_init (backend/cpu/conv.h), so output o of
 * an axis reads input positions o*stride - pad_lo + t*dil for taps t < k,
 * with ceil_mode and "same" exactly as on the CPU.  Max pooling: padded
 * cells never win, the first tap in row-major window order wins ties, a
 * NaN wins over any number (the first NaN), and a window with no input
 * cell gives -inf.  Average pooling sums in double and divides by the taps
 * inside the input, or with count_include_pad by those inside the input
 * plus its padding (not ceil_mode's overhang).
 *
 * Forward kernels run one thread per output.  The backward kernels run one
 * thread per input cell and gather: for each tap that can cover the cell
 * they find the one output window it belongs to (at most one per tap pair)
 * and add that window's share, so no two threads write one address, there
 * are no atomics, and the sum order is fixed (outputs in row-major order):
 * results repeat bit for bit.  Max backward recomputes each covering
 * window's winner from x instead of saving indices, as the CPU does.
 *
 * Inputs may be any strided view (strides go to the kernels); outputs are
 * contiguous.
 */
#include <string.h>

#include "backend/cuda/nn_util.cuh"

extern "C" {
#include "backend/cpu/conv.h"
}

typedef struct pl_geom {
    int64_t N, C, H, W, Ho, Wo;
    int64_t k[2], s[2], d[2], plo[2], phi[2];
    int64_t xs[4], ys[4]; /* strides of the strided input (x or dy) */
    int count_pad;
} pl_geom;

/* Taps [lo, hi) of output o along an axis that land inside the input. */
__device__ __forceinline__ void pl_taps(int64_t o, int64_t s, int64_t plo, int64_t d, int64_t in,
                                        int64_t k, int64_t *lo, int64_t *hi) {
    int64_t start = o * s - plo, last = in - 1 - start, l, h;
    l = start < 0 ? (-start + d - 1) / d : 0;
    h = last < 0 ? 0 : last / d + 1;
    if (h > k) h = k;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

__device__ __forceinline__ int64_t pl_taps_padded(int64_t o, int64_t s, int64_t plo, int64_t phi,
                                                  int64_t d, int64_t in, int64_t k) {
    int64_t start = o * s - plo, room = in + phi - start;
    int64_t n = room <= 0 ? 0 : (room + d - 1) / d;
    return n < k ? n : k;
}

__device__ __forceinline__ int64_t pl_divisor(const pl_geom &g, int64_t oh, int64_t ow) {
    if (g.count_pad)
        return pl_taps_padded(oh, g.s[0], g.plo[0], g.phi[0], g.d[0], g.H, g.k[0]) *
               pl_taps_padded(ow, g.s[1], g.plo[1], g.phi[1], g.d[1], g.W, g.k[1]);
    int64_t a, b, c, e;
    pl_taps(oh, g.s[0], g.plo[0], g.d[0], g.H, g.k[0], &a, &b);
    pl_taps(ow, g.s[1], g.plo[1], g.d[1], g.W, g.k[1], &c, &e);
    return (b - a) * (e - c);
}

/* The winner of window (oh, ow) in plane xp (strides g.xs[2], g.xs[3]):
 * returns 0 when the window holds no input cell, else 1 with its position
 * and value. */
template <typename T>
__device__ __forceinline__ int pl_argmax(const pl_geom &g, const T *xp, int64_t oh, int64_t ow,
                                         int64_t *ih, int64_t *iw, T *val) {
    int64_t ilo, ihi, jlo, jhi;
    pl_taps(oh, g.s[0], g.plo[0], g.d[0], g.H, g.k[0], &ilo, &ihi);
    pl_taps(ow, g.s[1], g.plo[1], g.d[1], g.W, g.k[1], &jlo, &jhi);
    int64_t h0 = oh * g.s[0] - g.plo[0], w0 = ow * g.s[1] - g.plo[1];
    int found = 0;
    T m = (T)-INFINITY;
    for (int64_t i = ilo; i < ihi; i++) {
        int64_t hh = h0 + i * g.d[0];
        for (int64_t t = jlo; t < jhi; t++) {
            int64_t ww = w0 + t * g.d[1];
            T v = xp[hh * g.xs[2] + ww * g.xs[3]];
            if (v != v) { /* the first NaN wins outright */
                *ih = hh, *iw = ww, *val = v;
                return 1;
            }
            if (!found || v > m) {
                m = v;
                *ih = hh, *iw = ww;
                found = 1;
            }
        }
    }
    *val = m;
    return found;
}

template <typename T>
__global__ void pl_max_fwd(pl_geom g, const T *x, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = i % g.Wo, r = i / g.Wo, oh = r % g.Ho, p = r / g.Ho;
        const T *xp = x + (p / g.C) * g.xs[0] + (p % g.C) * g.xs[1];
        int64_t ih, iw;
        T v;
        pl_argmax(g, xp, oh, ow, &ih, &iw, &v);
        y[i] = v; /* -inf when the window is all padding */
    }
}

template <typename T>
__global__ void pl_avg_fwd(pl_geom g, const T *x, T *y, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t ow = i % g.Wo, r = i / g.Wo, oh = r % g.Ho, p = r / g.Ho;
        const T *xp = x + (p / g.C) * g.xs[0] + (p % g.C) * g.xs[1];
        int64_t ilo, ihi, jlo, jhi;
        pl_taps(oh, g.s[0], g.plo[0], g.d[0], g.H, g.k[0], &ilo, &ihi);
        pl_taps(ow, g.s[1], g.plo[1], g.d[1], g.W, g.k[1], &jlo, &jhi);
        int64_t h0 = oh * g.s[0] - g.plo[0], w0 = ow * g.s[1] - g.plo[1];
        double s = 0;
        for (int64_t a = ilo; a < ihi; a++)
            for (int64_t t = jlo; t < jhi; t++)
                s += (double)xp[(h0 + a * g.d[0]) * g.xs[2] + (w0 + t * g.d[1]) * g.xs[3]];
        int64_t div = pl_divisor(g, oh, ow);
        y[i] = (T)(div > 0 ? s / (double)div : 0.0);
    }
}

/* The output along one axis whose tap t covers input position h, or -1. */
__device__ __forceinline__ int64_t pl_cover(int64_t h, int64_t t, int64_t s, int64_t plo,
                                            int64_t d, int64_t out) {
    int64_t num = h + plo - t * d;
    if (num < 0 || num % s != 0) return -1;
    num /= s;
    return num < out ? num : -1;
}

/* Backward: one thread per input cell; MAX selects max or avg. */
template <typename T, int MAX>
__global__ void pl_bwd(pl_geom g, const T *x, const T *dy, T *dx, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t w = i % g.W, r = i / g.W, h = r % g.H, p = r / g.H;
        int64_t nn = p / g.C, c = p % g.C;
        const T *xp = MAX ? x + nn * g.xs[0] + c * g.xs[1] : NULL;
        const T *dyp = dy + nn * g.ys[0] + c * g.ys[1];
        double acc = 0;
        /* taps in descending order give outputs in ascending order */
        for (int64_t ti = g.k[0] - 1; ti >= 0; ti--) {
            int64_t oh = pl_cover(h, ti, g.s[0], g.plo[0], g.d[0], g.Ho);
            if (oh < 0) continue;
            for (int64_t tj = g.k[1] - 1; tj >= 0; tj--) {
                int64_t ow = pl_cover(w, tj, g.s[1], g.plo[1], g.d[1], g.Wo);
                if (ow < 0) continue;
                double gv = (double)dyp[oh * g.ys[2] + ow * g.ys[3]];
                if (MAX) {
                    int64_t ih, iw;
                    T v;
                    if (pl_argmax(g, xp, oh, ow, &ih, &iw, &v) && ih == h && iw == w) acc += gv;
                } else {
                    int64_t div = pl_divisor(g, oh, ow);
                    if (div > 0) acc += gv / (double)div;
                }
            }
        }
        dx[i] = (T)acc;
    }
}

/* Fills *g for an input of shape in[4]; errors name op. */
static sp_status pl_init(const char *op, const sp_attrs *attrs, sp_dtype dt, const int64_t in[4],
                         pl_geom *g) {
    char b[96];
    memset(g, 0, sizeof *g);
    if (dt != SP_F32 && dt != SP_F64)
        return sp_error(SP_ERR_DTYPE, "%s: input must be float32 or float64, got %s", op,
                        sp_dtype_name(dt));
    for (int i = 0; i < 4; i++)
        if (in[i] < 0)
            return sp_error(SP_ERR_SHAPE, "%s: bad input shape %s", op, sp_shape_str(4, in, b, sizeof b));
    int n = 0;
    const int64_t *ks = sp_attrs_get_ints(attrs, "kernel_size", &n);
    if (!ks || (n != 1 && n != 2))
        return sp_error(SP_ERR_ARG, "%s: kernel_size must be 1 or 2 ints, got %d", op, ks ? n : 0);
    const int64_t k[2] = {ks[0], ks[n - 1]}, hw[2] = {in[2], in[3]};
    if (k[0] < 1 || k[1] < 1)
        return sp_error(SP_ERR_ARG, "%s: kernel_size %lldx%lld must be positive", op,
                        (long long)k[0], (long long)k[1]);
    cpu_window win;
    sp_status st = cpu_window_init(op, attrs, hw, k, k, 1, &win);
    if (st) return st;
    g->N = in[0], g->C = in[1], g->H = in[2], g->W = in[3];
    g->Ho = win.out[0], g->Wo = win.out[1];
    for (int i = 0; i < 2; i++) {
        g->k[i] = win.k[i];
        g->s[i] = win.stride[i];
        g->d[i] = win.dil[i];
        g->plo[i] = win.pad_lo[i];
        g->phi[i] = win.pad_hi[i];
    }
    g->count_pad = sp_attrs_get_int(attrs, "count_include_pad", 1) != 0;
    return SP_OK;
}

static sp_status pl_check(const char *op, const char *what, const sp_tensor *t, sp_dtype dt,
                          const int64_t want[4], int is_out) {
    char b1[96], b2[96];
    if (t->ndim != 4 || memcmp(t->shape, want, 4 * sizeof(int64_t)) != 0 || t->dtype != dt ||
        (is_out && !sp_tensor_is_contiguous(t)))
        return sp_error(is_out ? SP_ERR_INTERNAL : SP_ERR_SHAPE, "%s: %s is %s %s, expected %s %s",
                        op, what, sp_dtype_name(t->dtype),
                        sp_shape_str(t->ndim, t->shape, b1, sizeof b1), sp_dtype_name(dt),
                        sp_shape_str(4, want, b2, sizeof b2));
    return SP_OK;
}

static sp_status pl_in4(const char *op, const sp_tensor *t) {
    char b[96];
    if (t->ndim != 4)
        return sp_error(SP_ERR_SHAPE, "%s: input must be 4-D (NCHW), got shape %s", op,
                        sp_shape_str(t->ndim, t->shape, b, sizeof b));
    return SP_OK;
}

template <typename T> static const T *pl_ptr(const sp_tensor *t) {
    return (const T *)t->buf->data + t->offset;
}

static sp_status pl_forward(const sp_kernel_args *a, const char *op, int is_max) {
    sp_tensor *x = a->in[0], *y = a->out[0];
    pl_geom g;
    sp_status st;
    if ((st = pl_in4(op, x)) || (st = pl_init(op, a->attrs, x->dtype, x->shape, &g))) return st;
    const int64_t want[4] = {g.N, g.C, g.Ho, g.Wo};
    if ((st = pl_check(op, "output", y, x->dtype, want, 1))) return st;
    memcpy(g.xs, x->strides, sizeof g.xs);
    int64_t n = sp_tensor_numel(y);
    if (n == 0) return SP_OK;
    unsigned bl = cuda_nn_blocks(n, 256);
    cudaStream_t s = cuda_stream();
    if (x->dtype == SP_F64) {
        if (is_max) pl_max_fwd<double><<<bl, 256, 0, s>>>(g, pl_ptr<double>(x), (double *)y->buf->data, n);
        else pl_avg_fwd<double><<<bl, 256, 0, s>>>(g, pl_ptr<double>(x), (double *)y->buf->data, n);
    } else {
        if (is_max) pl_max_fwd<float><<<bl, 256, 0, s>>>(g, pl_ptr<float>(x), (float *)y->buf->data, n);
        else pl_avg_fwd<float><<<bl, 256, 0, s>>>(g, pl_ptr<float>(x), (float *)y->buf->data, n);
    }
    return cuda_nn_launched(op);
}

sp_status cuda_max_pool2d(const sp_kernel_args *a) { return pl_forward(a, "max_pool2d", 1); }

sp_status cuda_avg_pool2d(const sp_kernel_args *a) { return pl_forward(a, "avg_pool2d", 0); }

static sp_status pl_backward(const char *op, pl_geom *g, const sp_tensor *x, const sp_tensor *dy,
                             sp_tensor *dx) {
    memcpy(g->ys, dy->strides, sizeof g->ys);
    if (x) memcpy(g->xs, x->strides, sizeof g->xs);
    int64_t n = sp_tensor_numel(dx);
    if (n == 0) return SP_OK;
    unsigned bl = cuda_nn_blocks(n, 256);
    cudaStream_t s = cuda_stream();
    if (dx->dtype == SP_F64) {
        if (x) pl_bwd<double, 1><<<bl, 256, 0, s>>>(*g, pl_ptr<double>(x), pl_ptr<double>(dy), (double *)dx->buf->data, n);
        else pl_bwd<double, 0><<<bl, 256, 0, s>>>(*g, NULL, pl_ptr<double>(dy), (double *)dx->buf->data, n);
    } else {
        if (x) pl_bwd<float, 1><<<bl, 256, 0, s>>>(*g, pl_ptr<float>(x), pl_ptr<float>(dy), (float *)dx->buf->data, n);
        else pl_bwd<float, 0><<<bl, 256, 0, s>>>(*g, NULL, pl_ptr<float>(dy), (float *)dx->buf->data, n);
    }
    return cuda_nn_launched(op);
}

sp_status cuda_max_pool2d_backward(const sp_kernel_args *a) {
    const char *op = "max_pool2d_backward";
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 2 inputs (x, dy) and 1 output", op);
    sp_tensor *x = a->in[0], *dy = a->in[1], *dx = a->out[0];
    pl_geom g;
    sp_status st;
    if ((st = pl_in4(op, x)) || (st = pl_init(op, a->attrs, x->dtype, x->shape, &g))) return st;
    const int64_t want[4] = {g.N, g.C, g.Ho, g.Wo};
    if ((st = pl_check(op, "dy", dy, x->dtype, want, 0)) ||
        (st = pl_check(op, "output", dx, x->dtype, x->shape, 1)))
        return st;
    return pl_backward(op, &g, x, dy, dx);
}

sp_status cuda_avg_pool2d_backward(const sp_kernel_args *a) {
    const char *op = "avg_pool2d_backward";
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 1 input (dy) and 1 output", op);
    sp_tensor *dy = a->in[0], *dx = a->out[0];
    int n = 0;
    const int64_t *shp = sp_attrs_get_ints(a->attrs, "input_shape", &n);
    if (!shp || n != 4)
        return sp_error(SP_ERR_ARG, "%s: input_shape must be 4 ints, got %d", op, shp ? n : 0);
    int64_t in[4];
    memcpy(in, shp, sizeof in);
    pl_geom g;
    sp_status st;
    if ((st = pl_init(op, a->attrs, dy->dtype, in, &g))) return st;
    const int64_t want[4] = {g.N, g.C, g.Ho, g.Wo};
    if ((st = pl_check(op, "dy", dy, dy->dtype, want, 0)) ||
        (st = pl_check(op, "output", dx, dy->dtype, in, 1)))
        return st;
    return pl_backward(op, &g, NULL, dy, dx);
}
