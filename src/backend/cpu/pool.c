/*
 * pool.c -- 2-D max and average pooling on the CPU, NCHW, float32 and
 * float64, with their backward kernels.
 *
 * Windows follow conv.h: output o of an axis reads input positions
 * o*stride - pad_lo + t*dilation for taps t < kernel, and positions outside
 * the input are padding.  Every kernel works plane by plane (one (n, c) at a
 * time), planes spread over the thread pool; a plane's outputs are visited
 * in row-major order and each window in row-major tap order, so results do
 * not depend on the thread count.
 *
 * Max pooling: padded cells never win.  Among equal values the first tap in
 * row-major window order wins; a NaN beats any number (the result
 * propagates NaN, as in PyTorch) and the first NaN is the winner.  The
 * backward recomputes that winner from x, so it needs no saved indices, and
 * adds dy into dx there (windows may overlap, so a cell can win several
 * times).  A window with no input cell at all (only possible with padding
 * wider than the kernel) gives -inf and passes no gradient.
 *
 * Average pooling: the window sum, accumulated in double, divided by the
 * number of taps that lie inside the input, or with count_include_pad [1]
 * inside the input plus its padding (not the overhang ceil_mode allows past
 * the padding; PyTorch's divisor).  An empty divisor gives 0.
 *
 * Inputs may be any strided view; outputs are contiguous.
 */
#include "backend/cpu/conv.h"
#include "backend/cpu/cpu.h"

typedef struct pool_job {
    sp_dtype dt;
    int64_t es;
    int64_t N, C, H, W, Ho, Wo;
    cpu_window win;
    int count_pad;          /* avg: count_include_pad */
    const char *x;          /* max: input; strides xs */
    int64_t xs[4];
    const char *dy;         /* backward: output gradient; strides dys */
    int64_t dys[4];
    char *out;              /* y or dx, contiguous */
} pool_job;

/* The plane loops below take the element size as a constant argument and are
 * inlined twice, once for float and once for double, so the loads compile to
 * plain typed loads. */
#if defined(__GNUC__)
#define POOL_INLINE static inline __attribute__((always_inline))
#else
#define POOL_INLINE static inline
#endif

POOL_INLINE double pool_ld(int64_t es, const char *p, int64_t i) {
    return es == 4 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

POOL_INLINE void pool_st(int64_t es, char *p, int64_t i, double v) {
    if (es == 4)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* Taps [*lo, *hi) of output o along `axis` that land inside the input. */
static inline void pool_taps(const cpu_window *w, int axis, int64_t o, int64_t *lo,
                             int64_t *hi) {
    int64_t start = o * w->stride[axis] - w->pad_lo[axis], d = w->dil[axis];
    int64_t last = w->in[axis] - 1 - start, l, h;
    if (d == 1) { /* the common case, without the divisions (they dominate small windows) */
        l = start < 0 ? -start : 0;
        h = last < 0 ? 0 : last + 1;
    } else {
        l = start < 0 ? (-start + d - 1) / d : 0;
        h = last < 0 ? 0 : last / d + 1;
    }
    if (h > w->k[axis]) h = w->k[axis];
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Taps of output o along `axis` inside the input plus its padding. */
static inline int64_t pool_taps_padded(const cpu_window *w, int axis, int64_t o) {
    int64_t start = o * w->stride[axis] - w->pad_lo[axis], d = w->dil[axis];
    int64_t room = w->in[axis] + w->pad_hi[axis] - start;
    int64_t n = room <= 0 ? 0 : d == 1 ? room : (room + d - 1) / d;
    return n < w->k[axis] ? n : w->k[axis];
}

/* The max of output (oh, ow)'s window in plane xp (-inf for a window with no
 * input cell; NaN if any cell is NaN): a plain max plus a NaN flag, which
 * compiles without branches. */
POOL_INLINE double pool_maxval(const pool_job *j, int64_t es, const char *xp, int64_t oh,
                               int64_t ow) {
    const cpu_window *w = &j->win;
    int64_t ilo, ihi, jlo, jhi;
    pool_taps(w, 0, oh, &ilo, &ihi);
    pool_taps(w, 1, ow, &jlo, &jhi);
    int64_t h0 = oh * w->stride[0] - w->pad_lo[0], w0 = ow * w->stride[1] - w->pad_lo[1];
    double m = -INFINITY;
    int nan = 0;
    for (int64_t i = ilo; i < ihi; i++) {
        const char *row = xp + (h0 + i * w->dil[0]) * j->xs[2] * es;
        for (int64_t t = jlo; t < jhi; t++) {
            double v = pool_ld(es, row, (w0 + t * w->dil[1]) * j->xs[3]);
            m = v > m ? v : m;
            nan |= v != v;
        }
    }
    return nan ? (double)NAN : m;
}

/* The winning cell of output (oh, ow) in plane xp: returns 1 and its
 * position in *ih, *iw, or 0 when the window holds no input cell.  The max
 * comes first (branch-free), then the first tap holding it (or the first
 * NaN): one predictable scan instead of a data-dependent branch per tap. */
POOL_INLINE int pool_argmax(const pool_job *j, int64_t es, const char *xp, int64_t oh, int64_t ow,
                            int64_t *ih, int64_t *iw) {
    const cpu_window *w = &j->win;
    double m = pool_maxval(j, es, xp, oh, ow);
    int nan = m != m;
    int64_t ilo, ihi, jlo, jhi;
    pool_taps(w, 0, oh, &ilo, &ihi);
    pool_taps(w, 1, ow, &jlo, &jhi);
    int64_t h0 = oh * w->stride[0] - w->pad_lo[0], w0 = ow * w->stride[1] - w->pad_lo[1];
    for (int64_t i = ilo; i < ihi; i++) {
        int64_t hh = h0 + i * w->dil[0];
        for (int64_t t = jlo; t < jhi; t++) {
            int64_t ww = w0 + t * w->dil[1];
            double v = pool_ld(es, xp, hh * j->xs[2] + ww * j->xs[3]);
            if (nan ? v != v : v == m) {
                *ih = hh;
                *iw = ww;
                return 1;
            }
        }
    }
    return 0;
}

/* avg: the divisor of output (oh, ow). */
static int64_t pool_divisor(const pool_job *j, int64_t oh, int64_t ow) {
    const cpu_window *w = &j->win;
    if (j->count_pad) return pool_taps_padded(w, 0, oh) * pool_taps_padded(w, 1, ow);
    int64_t ilo, ihi, jlo, jhi;
    pool_taps(w, 0, oh, &ilo, &ihi);
    pool_taps(w, 1, ow, &jlo, &jhi);
    return (ihi - ilo) * (jhi - jlo);
}

POOL_INLINE void pool_max_fwd_planes(const pool_job *j, int64_t b, int64_t e, const int64_t es) {
    for (int64_t p = b; p < e; p++) {
        const char *xp = j->x + ((p / j->C) * j->xs[0] + (p % j->C) * j->xs[1]) * es;
        char *yp = j->out + p * j->Ho * j->Wo * es;
        for (int64_t oh = 0; oh < j->Ho; oh++)
            for (int64_t ow = 0; ow < j->Wo; ow++) {
                pool_st(es, yp, oh * j->Wo + ow, pool_maxval(j, es, xp, oh, ow));
            }
    }
}

/* ---- 2x2 windows at stride 2 ----------------------------------------------
 * The pooling of LeNet and of most CNNs: float32, 2x2 windows, stride 2, no
 * padding or dilation, every window inside the input, unit column stride.
 * The same results as the generic planes below -- the max scanned in the
 * same order with the same comparisons, NaN winning, the first winning tap
 * taking the gradient -- without their per-tap index arithmetic and double
 * loads, which made max pooling a third of a LeNet training step. */
static int pool_is22(const pool_job *j) {
    const cpu_window *w = &j->win;
    return j->dt == SP_F32 && w->k[0] == 2 && w->k[1] == 2 && w->stride[0] == 2 && w->stride[1] == 2 &&
           w->pad_lo[0] == 0 && w->pad_lo[1] == 0 && w->dil[0] == 1 && w->dil[1] == 1 && j->xs[3] == 1 &&
           2 * j->Ho <= j->H && 2 * j->Wo <= j->W;
}

/* The max of a, b, c, d as pool_maxval scans them, and the index (0-3) of
 * the first tap holding it (the first NaN when there is one). */
static inline float pool_max4(float a, float b, float c, float d, int *at) {
    float m = -INFINITY;
    m = a > m ? a : m;
    m = b > m ? b : m;
    m = c > m ? c : m;
    m = d > m ? d : m;
    if (a != a || b != b || c != c || d != d) {
        *at = a != a ? 0 : b != b ? 1 : c != c ? 2 : 3;
        return NAN;
    }
    *at = a == m ? 0 : b == m ? 1 : c == m ? 2 : 3;
    return m;
}

static void pool_max22_fwd(const pool_job *j, int64_t b, int64_t e) {
    for (int64_t p = b; p < e; p++) {
        const float *xp = (const float *)j->x + (p / j->C) * j->xs[0] + (p % j->C) * j->xs[1];
        float *yp = (float *)j->out + p * j->Ho * j->Wo;
        for (int64_t oh = 0; oh < j->Ho; oh++) {
            const float *r0 = xp + 2 * oh * j->xs[2], *r1 = r0 + j->xs[2];
            for (int64_t ow = 0; ow < j->Wo; ow++) {
                int at;
                yp[oh * j->Wo + ow] = pool_max4(r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1], &at);
            }
        }
    }
}

/* The tap (0-3) taking the gradient, without data-dependent branches on the
 * common path (random data would mispredict them); NaN windows are rare. */
static inline int pool_at4(float a, float b, float c, float d) {
    if (a != a || b != b || c != c || d != d) return a != a ? 0 : b != b ? 1 : c != c ? 2 : 3;
    float m = -INFINITY;
    m = a > m ? a : m;
    m = b > m ? b : m;
    m = c > m ? c : m;
    m = d > m ? d : m;
    int n0 = a != m, n1 = b != m, n2 = c != m;
    return n0 * (1 + n1 * (1 + n2));
}

static void pool_max22_bwd(const pool_job *j, int64_t b, int64_t e) {
    for (int64_t p = b; p < e; p++) {
        int64_t n = p / j->C, c = p % j->C;
        const float *xp = (const float *)j->x + n * j->xs[0] + c * j->xs[1];
        const float *dyp = (const float *)j->dy + n * j->dys[0] + c * j->dys[1];
        float *dxp = (float *)j->out + p * j->H * j->W;
        memset(dxp, 0, (size_t)(j->H * j->W) * sizeof(float));
        for (int64_t oh = 0; oh < j->Ho; oh++) {
            const float *r0 = xp + 2 * oh * j->xs[2], *r1 = r0 + j->xs[2];
            float *d0 = dxp + 2 * oh * j->W;
            for (int64_t ow = 0; ow < j->Wo; ow++) {
                int at = pool_at4(r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]);
                /* 0 + g, as the generic path adds it (so -0 becomes +0) */
                d0[(at >> 1) * j->W + 2 * ow + (at & 1)] = 0.0f + dyp[oh * j->dys[2] + ow * j->dys[3]];
            }
        }
    }
}

static void pool_max_fwd_range(void *ctx, int64_t b, int64_t e) {
    const pool_job *j = ctx;
    if (pool_is22(j))
        pool_max22_fwd(j, b, e);
    else if (j->es == 4)
        pool_max_fwd_planes(j, b, e, 4);
    else
        pool_max_fwd_planes(j, b, e, 8);
}

POOL_INLINE void pool_max_bwd_planes(const pool_job *j, int64_t b, int64_t e, const int64_t es) {
    for (int64_t p = b; p < e; p++) {
        int64_t n = p / j->C, c = p % j->C;
        const char *xp = j->x + (n * j->xs[0] + c * j->xs[1]) * es;
        const char *dyp = j->dy + (n * j->dys[0] + c * j->dys[1]) * es;
        char *dxp = j->out + p * j->H * j->W * es;
        memset(dxp, 0, (size_t)(j->H * j->W * es));
        for (int64_t oh = 0; oh < j->Ho; oh++)
            for (int64_t ow = 0; ow < j->Wo; ow++) {
                int64_t ih, iw;
                if (!pool_argmax(j, es, xp, oh, ow, &ih, &iw)) continue;
                double g = pool_ld(es, dyp, oh * j->dys[2] + ow * j->dys[3]);
                int64_t k = ih * j->W + iw;
                pool_st(es, dxp, k, pool_ld(es, dxp, k) + g);
            }
    }
}

static void pool_max_bwd_range(void *ctx, int64_t b, int64_t e) {
    const pool_job *j = ctx;
    if (pool_is22(j))
        pool_max22_bwd(j, b, e);
    else if (j->es == 4)
        pool_max_bwd_planes(j, b, e, 4);
    else
        pool_max_bwd_planes(j, b, e, 8);
}

POOL_INLINE void pool_avg_fwd_planes(const pool_job *j, int64_t b, int64_t e, const int64_t es) {
    const cpu_window *w = &j->win;
    for (int64_t p = b; p < e; p++) {
        const char *xp = j->x + ((p / j->C) * j->xs[0] + (p % j->C) * j->xs[1]) * es;
        char *yp = j->out + p * j->Ho * j->Wo * es;
        for (int64_t oh = 0; oh < j->Ho; oh++)
            for (int64_t ow = 0; ow < j->Wo; ow++) {
                int64_t ilo, ihi, jlo, jhi;
                pool_taps(w, 0, oh, &ilo, &ihi);
                pool_taps(w, 1, ow, &jlo, &jhi);
                int64_t h0 = oh * w->stride[0] - w->pad_lo[0], w0 = ow * w->stride[1] - w->pad_lo[1];
                double s = 0;
                for (int64_t i = ilo; i < ihi; i++)
                    for (int64_t t = jlo; t < jhi; t++)
                        s += pool_ld(es, xp, (h0 + i * w->dil[0]) * j->xs[2] +
                                                (w0 + t * w->dil[1]) * j->xs[3]);
                int64_t div = pool_divisor(j, oh, ow);
                pool_st(es, yp, oh * j->Wo + ow, div > 0 ? s / (double)div : 0.0);
            }
    }
}

static void pool_avg_fwd_range(void *ctx, int64_t b, int64_t e) {
    const pool_job *j = ctx;
    if (j->es == 4)
        pool_avg_fwd_planes(j, b, e, 4);
    else
        pool_avg_fwd_planes(j, b, e, 8);
}

POOL_INLINE void pool_avg_bwd_planes(const pool_job *j, int64_t b, int64_t e, const int64_t es) {
    const cpu_window *w = &j->win;
    for (int64_t p = b; p < e; p++) {
        const char *dyp = j->dy + ((p / j->C) * j->dys[0] + (p % j->C) * j->dys[1]) * es;
        char *dxp = j->out + p * j->H * j->W * es;
        memset(dxp, 0, (size_t)(j->H * j->W * es));
        for (int64_t oh = 0; oh < j->Ho; oh++)
            for (int64_t ow = 0; ow < j->Wo; ow++) {
                int64_t div = pool_divisor(j, oh, ow);
                if (div <= 0) continue;
                double g = pool_ld(es, dyp, oh * j->dys[2] + ow * j->dys[3]) / (double)div;
                int64_t ilo, ihi, jlo, jhi;
                pool_taps(w, 0, oh, &ilo, &ihi);
                pool_taps(w, 1, ow, &jlo, &jhi);
                int64_t h0 = oh * w->stride[0] - w->pad_lo[0], w0 = ow * w->stride[1] - w->pad_lo[1];
                for (int64_t i = ilo; i < ihi; i++)
                    for (int64_t t = jlo; t < jhi; t++) {
                        int64_t k = (h0 + i * w->dil[0]) * j->W + w0 + t * w->dil[1];
                        pool_st(es, dxp, k, pool_ld(es, dxp, k) + g);
                    }
            }
    }
}

static void pool_avg_bwd_range(void *ctx, int64_t b, int64_t e) {
    const pool_job *j = ctx;
    if (j->es == 4)
        pool_avg_bwd_planes(j, b, e, 4);
    else
        pool_avg_bwd_planes(j, b, e, 8);
}

/* Fills the geometry of *j for an input of shape in[4]; errors name op. */
static sp_status pool_init(const char *op, const sp_attrs *attrs, sp_dtype dt,
                           const int64_t in[4], pool_job *j) {
    char b[96];
    memset(j, 0, sizeof *j);
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
    sp_status st = cpu_window_init(op, attrs, hw, k, k, 1, &j->win);
    if (st) return st;
    j->dt = dt;
    j->es = (int64_t)sp_dtype_size(dt);
    j->N = in[0], j->C = in[1], j->H = in[2], j->W = in[3];
    j->Ho = j->win.out[0], j->Wo = j->win.out[1];
    j->count_pad = sp_attrs_get_int(attrs, "count_include_pad", 1) != 0;
    return SP_OK;
}

static sp_status pool_check(const char *op, const char *what, const sp_tensor *t, sp_dtype dt,
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

static sp_status pool_in4(const char *op, const sp_tensor *t) {
    char b[96];
    if (t->ndim != 4)
        return sp_error(SP_ERR_SHAPE, "%s: input must be 4-D (NCHW), got shape %s", op,
                        sp_shape_str(t->ndim, t->shape, b, sizeof b));
    return SP_OK;
}

static void pool_run(pool_job *j, sp_range_fn fn) {
    int64_t planes = j->N * j->C, work = j->Ho * j->Wo * j->win.k[0] * j->win.k[1] + j->H * j->W;
    if (planes > 0) sp_parallel_for(planes, 1 + (1 << 15) / (work + 1), fn, j);
}

static sp_status pool_forward(const sp_kernel_args *a, const char *op, sp_range_fn fn) {
    if (a->n_in != 1 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 1 input and 1 output", op);
    sp_tensor *x = a->in[0], *y = a->out[0];
    pool_job j;
    sp_status st;
    if ((st = pool_in4(op, x)) || (st = pool_init(op, a->attrs, x->dtype, x->shape, &j))) return st;
    const int64_t want[4] = {j.N, j.C, j.Ho, j.Wo};
    if ((st = pool_check(op, "output", y, j.dt, want, 1))) return st;
    j.x = sp_tensor_data(x);
    memcpy(j.xs, x->strides, sizeof j.xs);
    j.out = sp_tensor_data(y);
    pool_run(&j, fn);
    return SP_OK;
}

sp_status cpu_max_pool2d(const sp_kernel_args *a) {
    return pool_forward(a, "max_pool2d", pool_max_fwd_range);
}

sp_status cpu_avg_pool2d(const sp_kernel_args *a) {
    return pool_forward(a, "avg_pool2d", pool_avg_fwd_range);
}

sp_status cpu_max_pool2d_backward(const sp_kernel_args *a) {
    const char *op = "max_pool2d_backward";
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 2 inputs (x, dy) and 1 output", op);
    sp_tensor *x = a->in[0], *dy = a->in[1], *dx = a->out[0];
    pool_job j;
    sp_status st;
    if ((st = pool_in4(op, x)) || (st = pool_init(op, a->attrs, x->dtype, x->shape, &j))) return st;
    const int64_t want[4] = {j.N, j.C, j.Ho, j.Wo};
    if ((st = pool_check(op, "dy", dy, j.dt, want, 0)) ||
        (st = pool_check(op, "output", dx, j.dt, x->shape, 1)))
        return st;
    j.x = sp_tensor_data(x);
    memcpy(j.xs, x->strides, sizeof j.xs);
    j.dy = sp_tensor_data(dy);
    memcpy(j.dys, dy->strides, sizeof j.dys);
    j.out = sp_tensor_data(dx);
    pool_run(&j, pool_max_bwd_range);
    return SP_OK;
}

sp_status cpu_avg_pool2d_backward(const sp_kernel_args *a) {
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
    pool_job j;
    sp_status st;
    if ((st = pool_init(op, a->attrs, dy->dtype, in, &j))) return st;
    const int64_t want[4] = {j.N, j.C, j.Ho, j.Wo};
    if ((st = pool_check(op, "dy", dy, j.dt, want, 0)) ||
        (st = pool_check(op, "output", dx, j.dt, in, 1)))
        return st;
    j.dy = sp_tensor_data(dy);
    memcpy(j.dys, dy->strides, sizeof j.dys);
    j.out = sp_tensor_data(dx);
    pool_run(&j, pool_avg_bwd_range);
    return SP_OK;
}
