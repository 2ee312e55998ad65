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
 * Max backward has a fast path for windows that tile the input without
 * overlap (stride == kernel, dilation 1, the LeNet 2x2/2 case): one thread
 * per window recomputes its winner with pl_argmax's rules and writes every
 * cell of the window itself -- the dy value at the winner, +0.0 elsewhere,
 * and also the cells past the last window that no window covers -- so each
 * dx cell is written exactly once, with no zero fill and no atomics.  The
 * winner's value is stored as (T)(0.0 + dy), the generic kernel's sum, so
 * -0.0 becomes +0.0 on both paths and the two agree bit for bit.
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

template <typename T> static const T *pl_ptr(const sp_tensor *t) {
    return (const T *)t->buf->data + t->offset;
}

/* Max backward over non-overlapping windows (s == k, d == 1 on both axes):
 * one thread per output window (p, oh, ow), 32-bit indices (the host
 * checks that n and every plane index fit).  The winner is pl_argmax's:
 * taps in row-major order, first NaN wins, else the first strict maximum.
 * Rows [r0, r1) and columns [c0, c1) of the input that this thread writes
 * are the window's, clipped to the input, extended to the input's end for
 * the last window of an axis.  V2 stores two elements at once: the host
 * picks it only for 2-wide windows that tile an even W exactly (no padding
 * on the sides, no uncovered columns), where each pair is 2-aligned. */
template <typename T, typename T2, int V2>
__global__ void pl_max_bwd_tiled(pl_geom g, const T *x, const T *dy, T *dx, unsigned n) {
    const int H = (int)g.H, W = (int)g.W, Ho = (int)g.Ho, Wo = (int)g.Wo, C = (int)g.C;
    const int kh = (int)g.k[0], kw = (int)g.k[1];
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
        unsigned ow = i % (unsigned)Wo, r = i / (unsigned)Wo;
        unsigned oh = r % (unsigned)Ho, p = r / (unsigned)Ho;
        int64_t nn = p / (unsigned)C, c = p % (unsigned)C;
        const T *xp = x + nn * g.xs[0] + c * g.xs[1];
        int h0 = (int)oh * kh - (int)g.plo[0], w0 = (int)ow * kw - (int)g.plo[1];
        int r0 = h0 < 0 ? 0 : h0, r1 = h0 + kh < H ? h0 + kh : H;
        int c0 = w0 < 0 ? 0 : w0, c1 = w0 + kw < W ? w0 + kw : W;
        int bh = -1, bw = -1;
        T m = (T)-INFINITY;
        bool nan = false;
        for (int hh = r0; hh < r1 && !nan; hh++)
            for (int ww = c0; ww < c1; ww++) {
                T v = xp[hh * g.xs[2] + ww * g.xs[3]];
                if (v != v) { /* the first NaN wins outright */
                    bh = hh, bw = ww, nan = true;
                    break;
                }
                if (bh < 0 || v > m) m = v, bh = hh, bw = ww;
            }
        T gv = (T)0;
        if (bh >= 0) gv = (T)(0.0 + (double)dy[nn * g.ys[0] + c * g.ys[1] + oh * g.ys[2] + ow * g.ys[3]]);
        if ((int)oh == Ho - 1) r1 = H;
        if ((int)ow == Wo - 1) c1 = W;
        T *dp = dx + (int64_t)p * H * W;
        for (int hh = r0; hh < r1; hh++) {
            if (V2) {
                T2 v;
                v.x = (hh == bh && c0 == bw) ? gv : (T)0;
                v.y = (hh == bh && c0 + 1 == bw) ? gv : (T)0;
                *(T2 *)(dp + (int64_t)hh * W + c0) = v;
            } else {
                for (int ww = c0; ww < c1; ww++)
                    dp[(int64_t)hh * W + ww] = (hh == bh && ww == bw) ? gv : (T)0;
            }
        }
    }
}

/* Launches the tiled max backward when the geometry allows; false (nothing
 * launched) otherwise. */
static bool pl_max_bwd_fast(const pl_geom *g, const sp_tensor *x, const sp_tensor *dy, sp_tensor *dx) {
    for (int a = 0; a < 2; a++)
        if (g->s[a] != g->k[a] || g->d[a] != 1 || g->plo[a] >= g->k[a]) return false;
    if (g->Ho < 1 || g->Wo < 1) return false;
    int64_t nwin = g->N * g->C * g->Ho * g->Wo, planes = g->N * g->C;
    if (nwin > 0x7fffffffLL || planes > 0x7fffffffLL || g->H * g->W > 0x3fffffffLL ||
        g->Ho * g->k[0] > 0x3fffffffLL || g->Wo * g->k[1] > 0x3fffffffLL)
        return false;
    /* every input cell lies in at most one window; cells before the first
     * window exist only if plo < 0, which cpu_window_init never gives */
    size_t vb = 2 * sp_dtype_size(dx->dtype);
    bool v2 = g->k[1] == 2 && g->plo[1] == 0 && g->Wo * 2 == g->W &&
              (uintptr_t)dx->buf->data % vb == 0;
    unsigned n = (unsigned)nwin, bl = cuda_nn_blocks(nwin, 256);
    cudaStream_t s = cuda_stream();
    if (dx->dtype == SP_F64) {
        const double *xp = pl_ptr<double>(x), *yp = pl_ptr<double>(dy);
        double *d = (double *)dx->buf->data;
        if (v2) pl_max_bwd_tiled<double, double2, 1><<<bl, 256, 0, s>>>(*g, xp, yp, d, n);
        else pl_max_bwd_tiled<double, double2, 0><<<bl, 256, 0, s>>>(*g, xp, yp, d, n);
    } else {
        const float *xp = pl_ptr<float>(x), *yp = pl_ptr<float>(dy);
        float *d = (float *)dx->buf->data;
        if (v2) pl_max_bwd_tiled<float, float2, 1><<<bl, 256, 0, s>>>(*g, xp, yp, d, n);
        else pl_max_bwd_tiled<float, float2, 0><<<bl, 256, 0, s>>>(*g, xp, yp, d, n);
    }
    return true;
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
    if (x && pl_max_bwd_fast(g, x, dy, dx)) return cuda_nn_launched(op);
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
