/*
 * conv.c -- 2-D convolution on the CPU: conv2d and its two backprops, NCHW,
 * float32 and float64, through im2col and the shared GEMM (gemm.h).
 *
 * One image's column matrix has R = C*kh*kw rows, row (c*kh + i)*kw + j, and
 * P = Ho*Wo columns, column oh*Wo + ow, holding the input pixel that tap
 * (i, j) of output (oh, ow) reads, or 0 in the padding.  Groups split the
 * rows into G blocks of Kc = Cg*kh*kw, and the weight [O, Cg, kh, kw] is a
 * contiguous [O, Kc] matrix split into G row blocks of Og, so for group g:
 *
 *   forward          y_g  [Og, P]  = w_g [Og, Kc] @ col_g [Kc, P]
 *   backprop input   dcol_g [Kc, P] = w_g^T @ dy_g,  dx = col2im(dcol)
 *   backprop filter  dw_g [Og, Kc] = sum over images of dy_g @ col_g^T
 *
 * A 1x1 kernel with stride 1 and no padding needs no im2col: the image's
 * [C, H*W] planes already are the columns (when the input's planes are
 * packed), and backprop input writes dx straight from the GEMM.
 *
 * Few output channels (O <= 16, float32, one group, an AVX2 CPU: LeNet)
 * skip the column matrix for forward and the filter gradient: direct
 * kernels put the channels in vector lanes over a zero-padded copy of each
 * image (see "small-O direct kernels" below).
 *
 * Small outputs (P < 512, the deep ResNet layers, LeNet's second layer) put
 * several images' columns side by side, so the GEMM sees a wide matrix
 * rather than a 7x7 or 10x10 one.
 *
 * Parallelism.  When the batch covers the threads, blocks of images are
 * tasks that the pool's threads claim one by one, each thread with its own
 * slice of one scratch block taken for the call (the GEMMs inside run
 * single-threaded, since the pool runs nested loops inline); otherwise
 * images go one block at a time and the GEMM and im2col spread over the
 * threads.  Each output element is the same dot product either way, so
 * results do not depend on the thread count (tests/ops/test_conv.c checks
 * bitwise).  The filter gradient sums over the batch: the batch is cut
 * into a number of chunks fixed by the shapes alone (never by the thread
 * count), each chunk sums its images in order into its own partial, and
 * the partials are added in chunk order, so that sum is thread-count-free
 * too.
 *
 * Scratch blocks come from a small cache (reused across calls, freed at
 * exit) outside sp_cpu_alloc, so they do not show up as live bytes.
 * Inputs may be any strided view: im2col reads through the strides; only a
 * non-contiguous weight is copied.
 */
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "backend/cpu/conv.h"
#include "backend/cpu/cpu.h"
#include "backend/cpu/gemm.h"

/* Attribute values beyond this are refused, so size arithmetic never
 * overflows. */
#define CONV_ATTR_MAX ((int64_t)1 << 31)
/* Elements of scratch one filter-gradient chunk may use for its columns. */
#define CONV_COL_CAP ((int64_t)4 << 20)
/* Elements all filter-gradient partials (beyond the output) may use. */
#define CONV_PART_CAP ((int64_t)4 << 20)
/* GEMM width (columns) that batching small images aims for. */
#ifndef CONV_GEMM_WIDTH
#define CONV_GEMM_WIDTH 512
#endif
/* Most chunks the filter gradient cuts the batch into. */
#define CONV_MAX_CHUNKS 8

/* ---- window geometry (declared in conv.h, shared with pool.c) ---------- */

static sp_status window_pair(const char *op, const sp_attrs *attrs, const char *name,
                             const int64_t dflt[2], int64_t minv, int64_t out[2]) {
    int n = 0;
    const int64_t *v = sp_attrs_get_ints(attrs, name, &n);
    if (!v) {
        out[0] = dflt[0];
        out[1] = dflt[1];
    } else if (n == 1 || n == 2) {
        out[0] = v[0];
        out[1] = v[n - 1];
    } else {
        return sp_error(SP_ERR_ARG, "%s: %s must have 1 or 2 ints, got %d", op, name, n);
    }
    for (int i = 0; i < 2; i++)
        if (out[i] < minv || out[i] > CONV_ATTR_MAX)
            return sp_error(SP_ERR_ARG, "%s: %s %lld is out of range [%lld, %lld]", op, name,
                            (long long)out[i], (long long)minv, (long long)CONV_ATTR_MAX);
    return SP_OK;
}

sp_status cpu_window_init(const char *op, const sp_attrs *attrs, const int64_t in[2],
                          const int64_t k[2], const int64_t *dflt_stride, int ceil_ok,
                          cpu_window *w) {
    static const int64_t ones[2] = {1, 1};
    sp_status st;
    memset(w, 0, sizeof *w);
    for (int i = 0; i < 2; i++) {
        if (in[i] < 0 || in[i] > ((int64_t)1 << 40) || k[i] < 1 || k[i] > CONV_ATTR_MAX)
            return sp_error(SP_ERR_SHAPE, "%s: bad window: input %lldx%lld, kernel %lldx%lld", op,
                            (long long)in[0], (long long)in[1], (long long)k[0],
                            (long long)k[1]);
        w->in[i] = in[i];
        w->k[i] = k[i];
    }
    if ((st = window_pair(op, attrs, "stride", dflt_stride ? dflt_stride : ones, 1, w->stride)))
        return st;
    if ((st = window_pair(op, attrs, "dilation", ones, 1, w->dil))) return st;
    const char *mode = sp_attrs_get_str(attrs, "pad_mode", "pad");
    int ceil_mode = ceil_ok && sp_attrs_get_int(attrs, "ceil_mode", 0) != 0;
    int same = 0;
    if (!mode) mode = "pad";
    if (strcasecmp(mode, "same") == 0) {
        same = 1;
    } else if (strcasecmp(mode, "valid") == 0) {
        ceil_mode = 0; /* no padding, and ceil_mode only applies to "pad" */
    } else if (strcasecmp(mode, "pad") == 0) {
        int n = 0;
        const int64_t *p = sp_attrs_get_ints(attrs, "padding", &n);
        int64_t v[4] = {0, 0, 0, 0};
        if (p && n == 1) {
            v[0] = v[1] = v[2] = v[3] = p[0];
        } else if (p && n == 2) {
            v[0] = v[1] = p[0];
            v[2] = v[3] = p[1];
        } else if (p && n == 4) {
            memcpy(v, p, sizeof v);
        } else if (p) {
            return sp_error(SP_ERR_ARG, "%s: padding must have 1, 2 or 4 ints, got %d", op, n);
        }
        for (int i = 0; i < 4; i++)
            if (v[i] < 0 || v[i] > CONV_ATTR_MAX)
                return sp_error(SP_ERR_ARG, "%s: padding %lld is out of range [0, %lld]", op,
                                (long long)v[i], (long long)CONV_ATTR_MAX);
        w->pad_lo[0] = v[0];
        w->pad_hi[0] = v[1];
        w->pad_lo[1] = v[2];
        w->pad_hi[1] = v[3];
    } else {
        return sp_error(SP_ERR_ARG, "%s: pad_mode must be \"pad\", \"same\" or \"valid\", got \"%s\"",
                        op, mode);
    }
    for (int i = 0; i < 2; i++) {
        int64_t ek = (w->k[i] - 1) * w->dil[i] + 1, s = w->stride[i];
        if (same) {
            w->out[i] = (w->in[i] + s - 1) / s;
            int64_t total = w->out[i] > 0 ? (w->out[i] - 1) * s + ek - w->in[i] : 0;
            if (total < 0) total = 0;
            w->pad_lo[i] = total / 2;
            w->pad_hi[i] = total - total / 2;
            continue;
        }
        int64_t span = w->in[i] + w->pad_lo[i] + w->pad_hi[i];
        if (span < ek)
            return sp_error(SP_ERR_SHAPE,
                            "%s: input %lldx%lld padded to %lldx%lld is smaller than the "
                            "kernel %lldx%lld (dilation %lld,%lld)",
                            op, (long long)w->in[0], (long long)w->in[1],
                            (long long)(w->in[0] + w->pad_lo[0] + w->pad_hi[0]),
                            (long long)(w->in[1] + w->pad_lo[1] + w->pad_hi[1]),
                            (long long)w->k[0], (long long)w->k[1], (long long)w->dil[0],
                            (long long)w->dil[1]);
        if (ceil_mode) {
            w->out[i] = (span - ek + s - 1) / s + 1;
            /* the last window must start inside the input or the top/left pad */
            if ((w->out[i] - 1) * s >= w->in[i] + w->pad_lo[i]) w->out[i]--;
        } else {
            w->out[i] = (span - ek) / s + 1;
        }
    }
    return SP_OK;
}

/* ---- scratch cache ----------------------------------------------------- */

#define SCRATCH_SLOTS 4
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    void *p;
    size_t cap;
} scratch_cache[SCRATCH_SLOTS];
static int scratch_atexit_set;

static void scratch_free_all(void) {
    pthread_mutex_lock(&scratch_mu);
    for (int i = 0; i < SCRATCH_SLOTS; i++) {
        free(scratch_cache[i].p);
        scratch_cache[i].p = NULL;
        scratch_cache[i].cap = 0;
    }
    pthread_mutex_unlock(&scratch_mu);
}

/* A 64-byte aligned block of at least n bytes, its capacity in *cap; NULL
 * when memory runs out.  Give it back with scratch_put. */
static void *scratch_get(size_t n, size_t *cap) {
    n = (n + 63) & ~(size_t)63;
    if (n == 0) n = 64;
    void *p = NULL;
    size_t have = 0;
    pthread_mutex_lock(&scratch_mu);
    if (!scratch_atexit_set) scratch_atexit_set = atexit(scratch_free_all) == 0;
    int best = -1;
    for (int i = 0; i < SCRATCH_SLOTS; i++) {
        if (!scratch_cache[i].p) continue;
        if (best < 0) {
            best = i;
            continue;
        }
        size_t cb = scratch_cache[best].cap, ci = scratch_cache[i].cap;
        /* the smallest block that fits, else the largest (to be regrown) */
        if ((ci >= n && (cb < n || ci < cb)) || (cb < n && ci > cb)) best = i;
    }
    if (best >= 0) {
        p = scratch_cache[best].p;
        have = scratch_cache[best].cap;
        scratch_cache[best].p = NULL;
        scratch_cache[best].cap = 0;
    }
    pthread_mutex_unlock(&scratch_mu);
    if (p && have >= n) {
        *cap = have;
        return p;
    }
    free(p);
    p = aligned_alloc(64, n);
    *cap = p ? n : 0;
    return p;
}

static void scratch_put(void *p, size_t cap) {
    if (!p) return;
    pthread_mutex_lock(&scratch_mu);
    for (int i = 0; i < SCRATCH_SLOTS; i++) {
        if (!scratch_cache[i].p) {
            scratch_cache[i].p = p;
            scratch_cache[i].cap = cap;
            p = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&scratch_mu);
    free(p);
}

/* ---- element runs (the only places that know float from double) -------- */

/* n bytes (a multiple of 4) from src to dst.  Convolution rows are often
 * short (a LeNet row is 10 to 28 floats), where a call to memcpy costs more
 * than the copy: fixed-size pieces compile to plain vector moves. */
static inline void copy_bytes(char *dst, const char *src, size_t n) {
    if (n >= 256) {
        memcpy(dst, src, n);
        return;
    }
    size_t k = 0;
    for (; k + 32 <= n; k += 32) memcpy(dst + k, src + k, 32);
    for (; k < n; k += 4) memcpy(dst + k, src + k, 4);
}

/* n bytes (a multiple of 4) of zeros, as copy_bytes. */
static inline void zero_bytes(char *dst, size_t n) {
    if (n >= 256) {
        memset(dst, 0, n);
        return;
    }
    size_t k = 0;
    for (; k + 32 <= n; k += 32) memset(dst + k, 0, 32);
    for (; k < n; k += 4) memset(dst + k, 0, 4);
}

/* dst[i] = src[i*ss] for i < n. */
static void copy_run(int64_t es, char *dst, const char *src, int64_t ss, int64_t n) {
    if (ss == 1) {
        copy_bytes(dst, src, (size_t)(n * es));
    } else if (es == 4) {
        float *d = (float *)dst;
        const float *s = (const float *)src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i * ss];
    } else {
        double *d = (double *)dst;
        const double *s = (const double *)src;
        for (int64_t i = 0; i < n; i++) d[i] = s[i * ss];
    }
}

/* dst[i*ds] += src[i] for i < n. */
static void add_run(int64_t es, char *dst, int64_t ds, const char *src, int64_t n) {
    if (es == 4) {
        float *d = (float *)dst;
        const float *s = (const float *)src;
        if (ds == 1)
            for (int64_t i = 0; i < n; i++) d[i] += s[i];
        else
            for (int64_t i = 0; i < n; i++) d[i * ds] += s[i];
    } else {
        double *d = (double *)dst;
        const double *s = (const double *)src;
        if (ds == 1)
            for (int64_t i = 0; i < n; i++) d[i] += s[i];
        else
            for (int64_t i = 0; i < n; i++) d[i * ds] += s[i];
    }
}

/* ---- geometry of one call ------------------------------------------------ */

typedef struct conv_geom {
    sp_dtype dt;
    int64_t es;                   /* element size */
    int64_t N, C, H, W, O, kh, kw;
    int64_t G, Cg, Og, Kc;        /* groups, per-group channels, Cg*kh*kw */
    int64_t Ho, Wo, P, HW, R;     /* P = Ho*Wo, R = C*kh*kw */
    int direct;                   /* 1x1, stride 1, no padding */
    cpu_window win;
} conv_geom;

static char *shape_str4(const int64_t *s, char *buf, size_t n) { return sp_shape_str(4, s, buf, n); }

/* Fills *g for input shape xs and weight shape ws; checks groups and the
 * window.  Errors name `op` and both shapes. */
static sp_status conv_geom_init(const char *op, const sp_attrs *attrs, sp_dtype dt,
                                const int64_t xs[4], const int64_t ws[4], conv_geom *g) {
    char b1[96], b2[96];
    memset(g, 0, sizeof *g);
    g->dt = dt;
    g->es = (int64_t)sp_dtype_size(dt);
    g->N = xs[0], g->C = xs[1], g->H = xs[2], g->W = xs[3];
    g->O = ws[0], g->kh = ws[2], g->kw = ws[3];
    for (int i = 0; i < 4; i++)
        if (xs[i] < 0 || ws[i] < 0)
            return sp_error(SP_ERR_SHAPE, "%s: negative size in input %s or weight %s", op,
                            shape_str4(xs, b1, sizeof b1), shape_str4(ws, b2, sizeof b2));
    g->G = sp_attrs_get_int(attrs, "groups", 1);
    if (g->G < 1 || g->G > CONV_ATTR_MAX)
        return sp_error(SP_ERR_ARG, "%s: groups must be >= 1, got %lld", op, (long long)g->G);
    if (ws[1] * g->G != g->C || g->O % g->G != 0)
        return sp_error(SP_ERR_SHAPE,
                        "%s: weight %s with groups %lld does not fit input %s (want weight "
                        "[O, C/groups, kh, kw] with O divisible by groups)",
                        op, shape_str4(ws, b2, sizeof b2), (long long)g->G,
                        shape_str4(xs, b1, sizeof b1));
    if (g->kh < 1 || g->kw < 1)
        return sp_error(SP_ERR_SHAPE, "%s: weight %s has an empty kernel", op,
                        shape_str4(ws, b2, sizeof b2));
    g->Cg = g->C / g->G;
    g->Og = g->O / g->G;
    const int64_t in[2] = {g->H, g->W}, k[2] = {g->kh, g->kw};
    sp_status st = cpu_window_init(op, attrs, in, k, NULL, 0, &g->win);
    if (st) return st;
    g->Ho = g->win.out[0];
    g->Wo = g->win.out[1];
    g->P = g->Ho * g->Wo;
    g->HW = g->H * g->W;
    g->Kc = g->Cg * g->kh * g->kw;
    g->R = g->C * g->kh * g->kw;
    const cpu_window *w = &g->win;
    g->direct = g->kh == 1 && g->kw == 1 && w->stride[0] == 1 && w->stride[1] == 1 &&
                w->pad_lo[0] == 0 && w->pad_hi[0] == 0 && w->pad_lo[1] == 0 &&
                w->pad_hi[1] == 0;
    return SP_OK;
}

/* Checks that t is a 4-D tensor of dtype dt (what = "input", ...). */
static sp_status conv_check_in(const char *op, const char *what, const sp_tensor *t,
                               sp_dtype dt) {
    if (t->ndim != 4) {
        char b[96];
        return sp_error(SP_ERR_SHAPE, "%s: %s must be 4-D (NCHW), got shape %s", op, what,
                        sp_shape_str(t->ndim, t->shape, b, sizeof b));
    }
    if (t->dtype != dt)
        return sp_error(SP_ERR_DTYPE, "%s: %s is %s but the other input is %s", op, what,
                        sp_dtype_name(t->dtype), sp_dtype_name(dt));
    if (dt != SP_F32 && dt != SP_F64)
        return sp_error(SP_ERR_DTYPE, "%s: %s must be float32 or float64, got %s", op, what,
                        sp_dtype_name(dt));
    return SP_OK;
}

/* Checks an output against the shape the kernel computed. */
static sp_status conv_check_out(const char *op, const sp_tensor *t, sp_dtype dt,
                                const int64_t want[4]) {
    char b1[96], b2[96];
    if (t->ndim != 4 || memcmp(t->shape, want, 4 * sizeof(int64_t)) != 0 || t->dtype != dt ||
        !sp_tensor_is_contiguous(t))
        return sp_error(SP_ERR_INTERNAL,
                        "%s: output %s %s (contiguous %d) does not match the expected %s %s", op,
                        sp_dtype_name(t->dtype), sp_shape_str(t->ndim, t->shape, b1, sizeof b1),
                        sp_tensor_is_contiguous(t), sp_dtype_name(dt),
                        shape_str4(want, b2, sizeof b2));
    return SP_OK;
}

/* Reads a 4-int shape attribute (input_shape, filter_shape). */
static sp_status conv_shape_attr(const char *op, const sp_attrs *attrs, const char *name,
                                 int64_t out[4]) {
    int n = 0;
    const int64_t *v = sp_attrs_get_ints(attrs, name, &n);
    if (!v || n != 4)
        return sp_error(SP_ERR_ARG, "%s: %s must be 4 ints, got %d", op, name, v ? n : 0);
    for (int i = 0; i < 4; i++) {
        if (v[i] < 0 || v[i] > ((int64_t)1 << 40))
            return sp_error(SP_ERR_ARG, "%s: %s[%d] = %lld is out of range", op, name, i,
                            (long long)v[i]);
        out[i] = v[i];
    }
    return SP_OK;
}

/* Nonzero when every (n, c) plane of t is packed in C order and the channel
 * rows do not overlap, so one image is a [C, H*W] matrix with leading
 * dimension strides[1]. */
static int conv_planes_packed(const sp_tensor *t) {
    int64_t C = t->shape[1], H = t->shape[2], W = t->shape[3];
    if (!(W <= 1 || t->strides[3] == 1)) return 0;
    if (!(H <= 1 || t->strides[2] == W)) return 0;
    return C <= 1 || t->strides[1] >= H * W;
}

/* ---- GEMM, im2col, col2im ------------------------------------------------ */

/* C = op(A) @ op(B), or C += when accumulate. */
static void conv_gemm(const conv_geom *g, int ta, int tb, int64_t M, int64_t N, int64_t K,
                      const char *A, int64_t lda, const char *B, int64_t ldb, int accumulate,
                      char *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < M; i++) memset(C + i * ldc * g->es, 0, (size_t)(N * g->es));
        return;
    }
    if (g->dt == SP_F32)
        cpu_sgemm(ta, tb, M, N, K, 1.0f, (const float *)A, lda, (const float *)B, ldb,
                  accumulate ? 1.0f : 0.0f, (float *)C, ldc);
    else
        cpu_dgemm(ta, tb, M, N, K, 1.0, (const double *)A, lda, (const double *)B, ldb,
                  accumulate ? 1.0 : 0.0, (double *)C, ldc);
}

/* Rows [r0, r1) of the column matrix of one image x (channel, row and column
 * strides xs[0..2]) into col, leading dimension ldc. */
static void conv_im2col(const conv_geom *g, const char *x, const int64_t *xs, int64_t r0,
                        int64_t r1, char *col, int64_t ldc) {
    const cpu_window *w = &g->win;
    const int64_t es = g->es, Wo = g->Wo, kk = g->kh * g->kw;
    for (int64_t r = r0; r < r1; r++) {
        int64_t c = r / kk, i = r / g->kw % g->kh, j = r % g->kw;
        char *dst = col + r * ldc * es;
        const char *xc = x + c * xs[0] * es;
        int64_t lo, hi, hlo, hhi;
        cpu_window_valid(w, 0, i, &hlo, &hhi);
        cpu_window_valid(w, 1, j, &lo, &hi);
        int64_t iw0 = lo * w->stride[1] + j * w->dil[1] - w->pad_lo[1];
        for (int64_t oh = 0; oh < g->Ho; oh++) {
            char *d = dst + oh * Wo * es;
            if (oh < hlo || oh >= hhi || hi == lo) {
                zero_bytes(d, (size_t)(Wo * es));
                continue;
            }
            int64_t ih = oh * w->stride[0] + i * w->dil[0] - w->pad_lo[0];
            if (lo > 0) zero_bytes(d, (size_t)(lo * es));
            copy_run(es, d + lo * es, xc + (ih * xs[1] + iw0 * xs[2]) * es, w->stride[1] * xs[2],
                     hi - lo);
            if (hi < Wo) zero_bytes(d + hi * es, (size_t)((Wo - hi) * es));
        }
    }
}

/* dx planes [c0, c1) of one contiguous image = the sum of the column rows
 * that read them (col2im).  Each dx element adds its taps in a fixed order. */
static void conv_col2im(const conv_geom *g, const char *col, int64_t ldc, int64_t c0, int64_t c1,
                        char *dx) {
    const cpu_window *w = &g->win;
    const int64_t es = g->es, Wo = g->Wo;
    for (int64_t c = c0; c < c1; c++) {
        char *plane = dx + c * g->HW * es;
        memset(plane, 0, (size_t)(g->HW * es));
        for (int64_t i = 0; i < g->kh; i++) {
            int64_t hlo, hhi;
            cpu_window_valid(w, 0, i, &hlo, &hhi);
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi;
                cpu_window_valid(w, 1, j, &lo, &hi);
                if (hi == lo) continue;
                const char *src = col + ((c * g->kh + i) * g->kw + j) * ldc * es;
                int64_t iw0 = lo * w->stride[1] + j * w->dil[1] - w->pad_lo[1];
                for (int64_t oh = hlo; oh < hhi; oh++) {
                    int64_t ih = oh * w->stride[0] + i * w->dil[0] - w->pad_lo[0];
                    add_run(es, plane + (ih * g->W + iw0) * es, w->stride[1],
                            src + (oh * Wo + lo) * es, hi - lo);
                }
            }
        }
    }
}

/* Copies one image of t ([C, H, W] with strides ts[0..2]) into rows of
 * length H*W at dst, leading dimension ld. */
static void conv_pack(int64_t es, const char *t, const int64_t *ts, int64_t C, int64_t H,
                      int64_t W, char *dst, int64_t ld) {
    for (int64_t c = 0; c < C; c++)
        for (int64_t h = 0; h < H; h++)
            copy_run(es, dst + (c * ld + h * W) * es, t + (c * ts[0] + h * ts[1]) * es, ts[2],
                     W);
}

/* Parallel wrappers: rows of im2col, channels of col2im. */
typedef struct conv_par {
    const conv_geom *g;
    const char *src;
    const int64_t *ss;
    char *dst;
    int64_t ld;
} conv_par;

static void conv_im2col_range(void *ctx, int64_t b, int64_t e) {
    const conv_par *p = ctx;
    conv_im2col(p->g, p->src, p->ss, b, e, p->dst, p->ld);
}

static void conv_col2im_range(void *ctx, int64_t b, int64_t e) {
    const conv_par *p = ctx;
    conv_col2im(p->g, p->src, p->ld, b, e, p->dst);
}

static void conv_im2col_all(const conv_geom *g, const char *x, const int64_t *xs, char *col,
                            int64_t ldc, int par) {
    if (!par) {
        conv_im2col(g, x, xs, 0, g->R, col, ldc);
        return;
    }
    conv_par p = {g, x, xs, col, ldc};
    sp_parallel_for(g->R, 1 + (1 << 14) / (g->P + 1), conv_im2col_range, &p);
}

static void conv_col2im_all(const conv_geom *g, const char *col, int64_t ldc, char *dx, int par) {
    if (!par) {
        conv_col2im(g, col, ldc, 0, g->C, dx);
        return;
    }
    conv_par p = {g, col, NULL, dx, ldc};
    sp_parallel_for(g->C, 1 + (1 << 14) / (g->kh * g->kw * g->P + 1), conv_col2im_range, &p);
}

/* ---- the driver: items (images or filter chunks) over scratch slots ------ */

typedef struct conv_job conv_job;
/* Processes tasks [t0, t1) (blocks of nb images, or filter chunks) with
 * `scratch` (slot_bytes of it); `par` says whether it may spread over the
 * pool (it is not inside a pool task). */
typedef void (*conv_item_fn)(const conv_job *j, int64_t t0, int64_t t1, char *scratch, int par);

struct conv_job {
    conv_geom g;
    const char *x;          /* input (forward, filter) */
    int64_t xs[4];
    const char *w;          /* contiguous weight [O, Kc] */
    const char *dy;         /* output gradient (backprops) */
    int64_t dys[4];
    char *out;              /* y, dx or dw: contiguous */
    int x_direct;           /* x's planes are used as the columns */
    int dy_direct;          /* dy's planes are used as a matrix as they are */
    int64_t nb;             /* images per GEMM */
    char *parts;            /* filter: partials of chunks 1.. */
    int64_t nchunks;        /* filter: chunks of the batch */
    int64_t nitems, nslots, slot_bytes; /* tasks, scratch slots */
    char *scratch;
    conv_item_fn fn;
    /* small-O direct kernels (conv_small_o_ok) */
    const float *wt;        /* forward: weight as [R, L], lanes O..L-1 zero */
    int64_t L, Hp, Wp;      /* lanes (8 or 16), padded image height, width */
};

static void conv_task_range(void *ctx, int64_t b, int64_t e) {
    const conv_job *j = ctx;
    /* scratch belongs to the pool thread running this chunk (its index is
     * unique within this sp_parallel_for and below the count the call saw) */
    int64_t t = sp_thread_index() % j->nslots;
    j->fn(j, b, e, j->scratch + t * j->slot_bytes, 0);
}

/* Scratch slots: the thread count when the tasks are spread over the pool
 * (`split`), else 1 (then the tasks run in one go on the calling thread,
 * with the pool free for the GEMM and im2col). */
static int64_t conv_slots(int64_t ntasks, int split) {
    int64_t T = sp_get_num_threads();
    return split && T > 1 && ntasks > 1 ? T : 1;
}

static int64_t conv_round64(int64_t n) { return (n + 63) & ~(int64_t)63; }

/* Runs j->fn over j->nitems tasks with j->nslots scratch slots of
 * slot_bytes each.  Spread tasks are claimed dynamically by the pool's
 * threads, so a thread that the machine's other load holds back does not
 * hold back the call. */
static sp_status conv_run(const char *op, conv_job *j, int64_t slot_bytes) {
    j->slot_bytes = conv_round64(slot_bytes);
    size_t cap = 0;
    j->scratch = NULL;
    if (j->slot_bytes > 0) {
        j->scratch = scratch_get((size_t)(j->nslots * j->slot_bytes), &cap);
        if (!j->scratch)
            return sp_error(SP_ERR_NOMEM, "%s: no memory for %lld bytes of column scratch", op,
                            (long long)(j->nslots * j->slot_bytes));
    }
    if (j->nslots > 1)
        sp_parallel_for(j->nitems, 1, conv_task_range, j);
    else
        j->fn(j, 0, j->nitems, j->scratch, 1);
    scratch_put(j->scratch, cap);
    return SP_OK;
}

/* Whether to split images over threads rather than parallelize each GEMM:
 * when every thread gets a fair share of images and the work is not tiny. */
static int conv_split_batch(const conv_geom *g) {
    int64_t T = sp_get_num_threads();
    double macs = (double)g->N * (double)g->O * (double)g->Kc * (double)g->P;
    if (T < 2 || g->N < T || macs < 2e5) return 0;
    return g->N % T == 0 || g->N >= 4 * T;
}

/* Images per GEMM when a slot holds `per` images: small outputs (P < 512)
 * put several images side by side so the GEMM gets a wide N, within a
 * scratch budget; large ones go one at a time.  (Each output element is the
 * same dot product whatever the GEMM's width, so this choice, which follows
 * the thread count, does not change results.) */
static int64_t conv_images_per_gemm(const conv_geom *g, int64_t per) {
    if (g->P >= 512 || per <= 1) return 1;
    int64_t nb = (CONV_GEMM_WIDTH + g->P - 1) / g->P, mem = CONV_COL_CAP / ((g->R + g->O) * g->P);
    if (nb > mem) nb = mem;
    if (nb > per) nb = per;
    return nb < 1 ? 1 : nb;
}

/* Tasks for forward and backprop input: blocks of nb images. */
static void conv_plan_images(conv_job *j) {
    const conv_geom *g = &j->g;
    int split = conv_split_batch(g);
    int64_t T = sp_get_num_threads(), per = split ? (g->N + T - 1) / T : g->N;
    j->nb = conv_images_per_gemm(g, per);
    j->nitems = (g->N + j->nb - 1) / j->nb;
    j->nslots = conv_slots(j->nitems, split);
}

/* ---- small-O direct kernels (AVX2) -----------------------------------------
 *
 * With few output channels (LeNet's 6 and 16) the GEMM's M side is one or
 * three microkernel panels and the im2col copy, written once and packed
 * again by the GEMM, costs more than the arithmetic.  For O <= 16, float32,
 * one group, these kernels skip the column matrix: each image is copied once
 * into a zero-padded buffer, and the output channels are the vector lanes
 * (8 or 16, L), so one broadcast input pixel feeds all of them.
 *
 *   forward  y[o, p]   = sum over r = (c, i, j) in order of x_pad[...] * wt[r][o]
 *   filter   dw[o, r]  = sum over images in order, each a sum over p in order,
 *                        of x_pad[...] * dyT[p][o]
 *
 * Each output is a fixed-order sum (the tile and lane layout follow the
 * shapes, never the thread count), so results stay thread-count-free; the
 * filter gradient keeps the GEMM path's batch chunks and partial order. */

#define CONV_SMALL_O 16
#ifndef CONV_TW8
#define CONV_TW8 8
#endif
/* Padded-image elements one direct task may copy (else the GEMM path). */
#define CONV_PAD_CAP ((int64_t)4 << 20)

#if defined(__x86_64__) || defined(__i386__)
#define CONV_HAVE_AVX2 1
#define CONV_AVX2 __attribute__((target("avx2,fma")))
#define CONV_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline
#else
#define CONV_HAVE_AVX2 0
#endif

/* Slack floats after a padded image: a forward tile past the end of a row
 * reads at most (tile - 1) * stride beyond it. */
static int64_t conv_pad_slack(const conv_geom *g) { return 16 * g->win.stride[1] + 16; }

/* Whether the direct kernels take this call. */
static int conv_small_o_ok(const conv_geom *g) {
#if CONV_HAVE_AVX2
    if (g->dt != SP_F32 || g->G != 1 || g->O < 1 || g->O > CONV_SMALL_O || g->P == 0 ||
        g->C == 0 || !sp_cpu_has_avx2_fma())
        return 0;
    const cpu_window *w = &g->win;
    int64_t Hp = g->H + w->pad_lo[0] + w->pad_hi[0], Wp = g->W + w->pad_lo[1] + w->pad_hi[1];
    if (Hp > CONV_PAD_CAP || Wp > CONV_PAD_CAP || g->R > CONV_PAD_CAP) return 0;
    if (g->C * Hp * Wp + conv_pad_slack(g) > CONV_PAD_CAP) return 0;
    return g->P * 16 <= CONV_PAD_CAP;
#else
    (void)g;
    return 0;
#endif
}

static void conv_small_o_setup(conv_job *j) {
    const conv_geom *g = &j->g;
    j->L = g->O <= 8 ? 8 : 16;
    j->Hp = g->H + g->win.pad_lo[0] + g->win.pad_hi[0];
    j->Wp = g->W + g->win.pad_lo[1] + g->win.pad_hi[1];
}

/* Padded-image bytes (with slack), 64-byte rounded. */
static int64_t conv_pad_bytes(const conv_job *j) {
    return conv_round64((j->g.C * j->Hp * j->Wp + conv_pad_slack(&j->g)) * 4);
}

/* One image of x (strides xs[0..2]) into the zero-padded [C, Hp, Wp] buffer. */
static void conv_pad_image(const conv_job *j, const char *x, const int64_t *xs, float *xp) {
    const conv_geom *g = &j->g;
    int64_t n = g->C * j->Hp * j->Wp;
    memset(xp, 0, (size_t)((n + conv_pad_slack(g)) * 4));
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t h = 0; h < g->H; h++)
            copy_run(4,
                     (char *)(xp + (c * j->Hp + h + g->win.pad_lo[0]) * j->Wp + g->win.pad_lo[1]),
                     x + (c * xs[0] + h * xs[1]) * 4, xs[2], g->W);
}

#if CONV_HAVE_AVX2
/* r[i][k] <- r[k][i] for an 8x8 block. */
CONV_AVX2_INLINE void conv_transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* Output pixels ow0 .. ow0+TW-1 of row oh (only `valid` of them stored), all
 * O channels, NV vectors of 8 lanes. */
CONV_AVX2_INLINE void conv_fwd_tile(const conv_job *j, const float *xp, int64_t oh, int64_t ow0,
                                    int64_t valid, float *y, const int NV, const int TW) {
    const conv_geom *g = &j->g;
    const cpu_window *w = &g->win;
    const int64_t s1 = w->stride[1], d1 = w->dil[1], L = j->L;
    __m256 acc[16][2];
    for (int t = 0; t < TW; t++)
        for (int v = 0; v < NV; v++) acc[t][v] = _mm256_setzero_ps();
    const float *wr = j->wt;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t i = 0; i < g->kh; i++) {
            const float *row =
                xp + (c * j->Hp + oh * w->stride[0] + i * w->dil[0]) * j->Wp + ow0 * s1;
            for (int64_t jj = 0; jj < g->kw; jj++, wr += L) {
                const float *xr = row + jj * d1;
                __m256 wv[2];
                for (int v = 0; v < NV; v++) wv[v] = _mm256_load_ps(wr + 8 * v);
                for (int t = 0; t < TW; t++) {
                    __m256 xv = _mm256_broadcast_ss(xr + t * s1);
                    for (int v = 0; v < NV; v++) acc[t][v] = _mm256_fmadd_ps(xv, wv[v], acc[t][v]);
                }
            }
        }
    if (NV == 1 && TW == 8) {
        /* 8 pixels x 8 channels: transpose in registers, then one
         * (masked) row store per channel */
        __m256 r[8];
        for (int t = 0; t < 8; t++) r[t] = acc[t][0];
        conv_transpose8(r);
        float *yo = y + oh * g->Wo + ow0;
        if (valid == 8) {
            for (int64_t o = 0; o < g->O; o++) _mm256_storeu_ps(yo + o * g->P, r[o]);
        } else {
            const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
            for (int64_t o = 0; o < g->O; o++) _mm256_maskstore_ps(yo + o * g->P, mask, r[o]);
        }
        return;
    }
    float tmp[16 * 16] __attribute__((aligned(32)));
    for (int t = 0; t < TW; t++)
        for (int v = 0; v < NV; v++) _mm256_store_ps(tmp + t * L + 8 * v, acc[t][v]);
    float *yo = y + oh * g->Wo + ow0;
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t t = 0; t < valid; t++) yo[o * g->P + t] = tmp[t * L + o];
}

CONV_AVX2 static void conv_fwd_direct_image(const conv_job *j, const float *xp, float *y) {
    const conv_geom *g = &j->g;
    const int64_t TW = j->L == 8 ? CONV_TW8 : 6;
    for (int64_t oh = 0; oh < g->Ho; oh++)
        for (int64_t ow = 0; ow < g->Wo; ow += TW) {
            int64_t valid = g->Wo - ow < TW ? g->Wo - ow : TW;
            if (j->L == 8)
                conv_fwd_tile(j, xp, oh, ow, valid, y, 1, CONV_TW8);
            else
                conv_fwd_tile(j, xp, oh, ow, valid, y, 2, 6);
        }
}

/* Taps j0 .. j0+JB-1 of row (c, i): dwt rows += sum over p of x * dyT[p]. */
CONV_AVX2_INLINE void conv_bwf_block(const conv_job *j, const float *xp, const float *dyt,
                                     int64_t c, int64_t i, int64_t j0, float *dwt, const int NV,
                                     const int JB) {
    const conv_geom *g = &j->g;
    const cpu_window *w = &g->win;
    const int64_t s1 = w->stride[1], d1 = w->dil[1], L = j->L;
    float *dr = dwt + ((c * g->kh + i) * g->kw + j0) * L;
    __m256 acc[6][2];
    for (int t = 0; t < JB; t++)
        for (int v = 0; v < NV; v++) acc[t][v] = _mm256_load_ps(dr + t * L + 8 * v);
    for (int64_t oh = 0; oh < g->Ho; oh++) {
        const float *row =
            xp + (c * j->Hp + oh * w->stride[0] + i * w->dil[0]) * j->Wp + j0 * d1;
        const float *dyr = dyt + oh * g->Wo * L;
        for (int64_t ow = 0; ow < g->Wo; ow++) {
            __m256 dv[2];
            for (int v = 0; v < NV; v++) dv[v] = _mm256_load_ps(dyr + ow * L + 8 * v);
            const float *xr = row + ow * s1;
            for (int t = 0; t < JB; t++) {
                __m256 xv = _mm256_broadcast_ss(xr + t * d1);
                for (int v = 0; v < NV; v++) acc[t][v] = _mm256_fmadd_ps(xv, dv[v], acc[t][v]);
            }
        }
    }
    for (int t = 0; t < JB; t++)
        for (int v = 0; v < NV; v++) _mm256_store_ps(dr + t * L + 8 * v, acc[t][v]);
}

#define CONV_BWF_CASE(nv, jb)                                                   \
    case jb:                                                                    \
        conv_bwf_block(j, xp, dyt, c, i, j0, dwt, nv, jb);                      \
        break;

CONV_AVX2 static void conv_bwf_direct_image(const conv_job *j, const float *xp, const float *dyt,
                                            float *dwt) {
    const conv_geom *g = &j->g;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j0 = 0; j0 < g->kw; j0 += 6) {
                int jb = g->kw - j0 < 6 ? (int)(g->kw - j0) : 6;
                if (j->L == 8) {
                    switch (jb) {
                        CONV_BWF_CASE(1, 1) CONV_BWF_CASE(1, 2) CONV_BWF_CASE(1, 3)
                        CONV_BWF_CASE(1, 4) CONV_BWF_CASE(1, 5) default:
                        conv_bwf_block(j, xp, dyt, c, i, j0, dwt, 1, 6);
                    }
                } else {
                    switch (jb) {
                        CONV_BWF_CASE(2, 1) CONV_BWF_CASE(2, 2) CONV_BWF_CASE(2, 3)
                        CONV_BWF_CASE(2, 4) CONV_BWF_CASE(2, 5) default:
                        conv_bwf_block(j, xp, dyt, c, i, j0, dwt, 2, 6);
                    }
                }
            }
}
#endif

/* Forward tasks [t0, t1): one image each. */
static void conv_fwd_direct(const conv_job *j, int64_t t0, int64_t t1, char *s, int par) {
    (void)par;
#if CONV_HAVE_AVX2
    const conv_geom *g = &j->g;
    float *xp = (float *)s;
    for (int64_t n = t0; n < t1; n++) {
        conv_pad_image(j, j->x + n * j->xs[0] * 4, j->xs + 1, xp);
        conv_fwd_direct_image(j, xp, (float *)j->out + n * g->O * g->P);
    }
#else
    (void)j, (void)t0, (void)t1, (void)s;
#endif
}

/* Filter chunk c: its images summed in order into dwT [R, L], then written
 * as [O, Kc] into the chunk's partial. */
static void conv_bwf_direct_chunk(const conv_job *j, int64_t c, char *s) {
#if CONV_HAVE_AVX2
    const conv_geom *g = &j->g;
    const int64_t L = j->L, wsize = g->O * g->Kc;
    int64_t n0 = c * g->N / j->nchunks, n1 = (c + 1) * g->N / j->nchunks;
    float *dw = (float *)(c == 0 ? j->out : j->parts + (c - 1) * wsize * 4);
    float *xp = (float *)s, *dyt = (float *)(s + conv_pad_bytes(j));
    float *dwt = dyt + conv_round64(g->P * L);
    memset(dwt, 0, (size_t)(g->R * L * 4));
    for (int64_t n = n0; n < n1; n++) {
        conv_pad_image(j, j->x + n * j->xs[0] * 4, j->xs + 1, xp);
        const float *dyn = (const float *)j->dy + n * j->dys[0];
        memset(dyt, 0, (size_t)(g->P * L * 4));
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t oh = 0; oh < g->Ho; oh++) {
                const float *src = dyn + o * j->dys[1] + oh * j->dys[2];
                float *dst = dyt + oh * g->Wo * L + o;
                for (int64_t ow = 0; ow < g->Wo; ow++) dst[ow * L] = src[ow * j->dys[3]];
            }
        conv_bwf_direct_image(j, xp, dyt, dwt);
    }
    for (int64_t o = 0; o < g->O; o++)
        for (int64_t r = 0; r < g->R; r++) dw[o * g->Kc + r] = dwt[r * L + o];
#else
    (void)j, (void)c, (void)s;
#endif
}

static void conv_bwf_direct_chunks(const conv_job *j, int64_t c0, int64_t c1, char *s, int par) {
    (void)par;
    for (int64_t c = c0; c < c1; c++) conv_bwf_direct_chunk(j, c, s);
}

/* ---- conv2d ---------------------------------------------------------------- */

/* Tasks [t0, t1): images [t0*nb, t1*nb) in blocks of nb, their columns side
 * by side ([R, m*P]), one GEMM per group into y (m == 1) or into a block
 * [O, m*P] scattered to y. */
static void conv_fwd_images(const conv_job *j, int64_t t0, int64_t t1, char *s, int par) {
    const conv_geom *g = &j->g;
    int64_t n0 = t0 * j->nb, n1 = t1 * j->nb < g->N ? t1 * j->nb : g->N;
    const int64_t es = g->es;
    char *col = s, *yb = s + conv_round64(g->R * j->nb * g->P * es);
    for (int64_t b0 = n0; b0 < n1; b0 += j->nb) {
        int64_t m = n1 - b0 < j->nb ? n1 - b0 : j->nb, ld = m * g->P;
        const char *B = col;
        int64_t ldb = ld, boff = g->Kc * ld;
        if (j->x_direct && m == 1) {
            B = j->x + b0 * j->xs[0] * es;
            ldb = g->C <= 1 ? g->P : j->xs[1];
            boff = g->Cg * j->xs[1];
        } else {
            for (int64_t b = 0; b < m; b++)
                conv_im2col_all(g, j->x + (b0 + b) * j->xs[0] * es, j->xs + 1, col + b * g->P * es,
                                ld, par);
        }
        char *C = m == 1 ? j->out + b0 * g->O * g->P * es : yb;
        for (int64_t grp = 0; grp < g->G; grp++)
            conv_gemm(g, 0, 0, g->Og, ld, g->Kc, j->w + grp * g->Og * g->Kc * es, g->Kc,
                      B + grp * boff * es, ldb, 0, C + grp * g->Og * ld * es, ld);
        if (m > 1)
            for (int64_t b = 0; b < m; b++)
                for (int64_t o = 0; o < g->O; o++)
                    memcpy(j->out + ((b0 + b) * g->O + o) * g->P * es, yb + (o * ld + b * g->P) * es,
                           (size_t)(g->P * es));
    }
}

sp_status cpu_conv2d(const sp_kernel_args *a) {
    const char *op = "conv2d";
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 2 inputs and 1 output", op);
    sp_tensor *x = a->in[0], *w = a->in[1], *y = a->out[0];
    sp_status st;
    if ((st = conv_check_in(op, "input", x, x->dtype)) || (st = conv_check_in(op, "weight", w, x->dtype)))
        return st;
    conv_job j;
    memset(&j, 0, sizeof j);
    conv_geom *g = &j.g;
    if ((st = conv_geom_init(op, a->attrs, x->dtype, x->shape, w->shape, g))) return st;
    const int64_t want[4] = {g->N, g->O, g->Ho, g->Wo};
    if ((st = conv_check_out(op, y, g->dt, want))) return st;
    if (sp_tensor_numel(y) == 0) return SP_OK;
    sp_tensor *wc = NULL;
    if ((st = sp_tensor_contiguous(w, &wc))) return st;
    j.x = sp_tensor_data(x);
    memcpy(j.xs, x->strides, sizeof j.xs);
    j.w = sp_tensor_data(wc);
    j.out = sp_tensor_data(y);
    if (conv_small_o_ok(g)) {
        conv_small_o_setup(&j);
        size_t wcap = 0;
        float *wt = scratch_get((size_t)(g->R * j.L * 4), &wcap);
        if (!wt) {
            sp_tensor_release(wc);
            return sp_error(SP_ERR_NOMEM, "%s: no memory for the transposed weight", op);
        }
        const float *wsrc = (const float *)j.w;
        memset(wt, 0, (size_t)(g->R * j.L * 4));
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t r = 0; r < g->R; r++) wt[r * j.L + o] = wsrc[o * g->Kc + r];
        j.wt = wt;
        j.nb = 1;
        j.nitems = g->N;
        j.nslots = conv_slots(g->N, conv_split_batch(g));
        j.fn = conv_fwd_direct;
        st = conv_run(op, &j, conv_pad_bytes(&j));
        scratch_put(wt, wcap);
        sp_tensor_release(wc);
        return st;
    }
    conv_plan_images(&j);
    j.x_direct = g->direct && conv_planes_packed(x) && j.nb == 1;
    j.fn = conv_fwd_images;
    int64_t slot = j.x_direct ? 0 : conv_round64(g->R * j.nb * g->P * g->es);
    if (j.nb > 1) slot += g->O * j.nb * g->P * g->es;
    st = conv_run(op, &j, slot);
    sp_tensor_release(wc);
    return st;
}

/* ---- conv2d_backprop_input -------------------------------------------------- */

/* Tasks [t0, t1): images [t0*nb, t1*nb) in blocks of nb, their dy side by
 * side ([O, m*P], or dy itself when m == 1 and its planes are packed),
 * dcol = w^T @ dy per group, then col2im into each image (or the GEMM
 * straight into dx for a 1x1 kernel). */
static void conv_bwd_input_images(const conv_job *j, int64_t t0, int64_t t1, char *s, int par) {
    const conv_geom *g = &j->g;
    int64_t n0 = t0 * j->nb, n1 = t1 * j->nb < g->N ? t1 * j->nb : g->N;
    const int64_t es = g->es;
    char *dyb = s, *col = s + conv_round64(g->O * j->nb * g->P * es);
    for (int64_t b0 = n0; b0 < n1; b0 += j->nb) {
        int64_t m = n1 - b0 < j->nb ? n1 - b0 : j->nb, ld = m * g->P;
        const char *D = dyb;
        int64_t ldd = ld;
        if (j->dy_direct && m == 1) {
            D = j->dy + b0 * j->dys[0] * es;
            ldd = g->O <= 1 ? g->P : j->dys[1];
        } else {
            for (int64_t b = 0; b < m; b++)
                conv_pack(es, j->dy + (b0 + b) * j->dys[0] * es, j->dys + 1, g->O, g->Ho, g->Wo,
                          dyb + b * g->P * es, ld);
        }
        int straight = g->direct && m == 1;
        char *dxn = j->out + b0 * g->C * g->HW * es;
        for (int64_t grp = 0; grp < g->G; grp++) {
            const char *wg = j->w + grp * g->Og * g->Kc * es, *dyg = D + grp * g->Og * ldd * es;
            if (straight)
                conv_gemm(g, 1, 0, g->Cg, g->P, g->Og, wg, g->Kc, dyg, ldd, 0,
                          dxn + grp * g->Cg * g->HW * es, g->HW);
            else
                conv_gemm(g, 1, 0, g->Kc, ld, g->Og, wg, g->Kc, dyg, ldd, 0,
                          col + grp * g->Kc * ld * es, ld);
        }
        if (!straight)
            for (int64_t b = 0; b < m; b++)
                conv_col2im_all(g, col + b * g->P * es, ld, dxn + b * g->C * g->HW * es, par);
    }
}

sp_status cpu_conv2d_backprop_input(const sp_kernel_args *a) {
    const char *op = "conv2d_backprop_input";
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 2 inputs and 1 output", op);
    sp_tensor *dy = a->in[0], *w = a->in[1], *dx = a->out[0];
    sp_status st;
    if ((st = conv_check_in(op, "dy", dy, dy->dtype)) || (st = conv_check_in(op, "weight", w, dy->dtype)))
        return st;
    int64_t xshape[4];
    if ((st = conv_shape_attr(op, a->attrs, "input_shape", xshape))) return st;
    conv_job j;
    memset(&j, 0, sizeof j);
    conv_geom *g = &j.g;
    if ((st = conv_geom_init(op, a->attrs, dy->dtype, xshape, w->shape, g))) return st;
    const int64_t dyshape[4] = {g->N, g->O, g->Ho, g->Wo};
    if (memcmp(dy->shape, dyshape, sizeof dyshape) != 0) {
        char b1[96], b2[96], b3[96];
        return sp_error(SP_ERR_SHAPE, "%s: dy has shape %s but input_shape %s gives %s", op,
                        shape_str4(dy->shape, b1, sizeof b1), shape_str4(xshape, b2, sizeof b2),
                        shape_str4(dyshape, b3, sizeof b3));
    }
    if ((st = conv_check_out(op, dx, g->dt, xshape))) return st;
    if (sp_tensor_numel(dx) == 0) return SP_OK;
    if (g->O == 0 || g->P == 0) {
        memset(sp_tensor_data(dx), 0, sp_tensor_nbytes(dx));
        return SP_OK;
    }
    sp_tensor *wc = NULL;
    if ((st = sp_tensor_contiguous(w, &wc))) return st;
    j.dy = sp_tensor_data(dy);
    memcpy(j.dys, dy->strides, sizeof j.dys);
    j.w = sp_tensor_data(wc);
    j.out = sp_tensor_data(dx);
    conv_plan_images(&j);
    j.dy_direct = conv_planes_packed(dy) && j.nb == 1;
    j.fn = conv_bwd_input_images;
    /* dy block first (even when unused: the columns sit at a fixed offset) */
    int64_t slot = conv_round64(g->O * j.nb * g->P * g->es);
    if (!(g->direct && j.nb == 1)) slot += g->R * j.nb * g->P * g->es;
    st = conv_run(op, &j, slot);
    sp_tensor_release(wc);
    return st;
}

/* ---- conv2d_backprop_filter -------------------------------------------------- */

/* Chunk c sums dy_n @ col_n^T over its images into its partial, nb images
 * per GEMM: their columns side by side ([R, m*P]) against their dy rows
 * side by side ([O, m*P]). */
static void conv_bwd_filter_chunk(const conv_job *j, int64_t c, char *s, int par) {
    const conv_geom *g = &j->g;
    const int64_t es = g->es, wsize = g->O * g->Kc;
    int64_t n0 = c * g->N / j->nchunks, n1 = (c + 1) * g->N / j->nchunks;
    char *dw = c == 0 ? j->out : j->parts + (c - 1) * wsize * es;
    char *col = s, *dyb = s + ((g->R * j->nb * g->P * es + 63) & ~(int64_t)63);
    if (n1 <= n0) {
        memset(dw, 0, (size_t)(wsize * es));
        return;
    }
    for (int64_t b0 = n0; b0 < n1; b0 += j->nb) {
        int64_t m = n1 - b0 < j->nb ? n1 - b0 : j->nb, ld = m * g->P;
        const char *D = dyb;
        int64_t ldd = ld;
        if (m == 1 && j->dy_direct) { /* one image: dy's planes are the matrix */
            D = j->dy + b0 * j->dys[0] * es;
            ldd = g->O <= 1 ? g->P : j->dys[1];
        }
        for (int64_t b = 0; b < m; b++) {
            const char *xn = j->x + (b0 + b) * j->xs[0] * es;
            conv_im2col_all(g, xn, j->xs + 1, col + b * g->P * es, ld, par);
            if (D == dyb)
                conv_pack(es, j->dy + (b0 + b) * j->dys[0] * es, j->dys + 1, g->O, g->Ho, g->Wo,
                          dyb + b * g->P * es, ld);
        }
        for (int64_t grp = 0; grp < g->G; grp++)
            conv_gemm(g, 0, 1, g->Og, g->Kc, ld, D + grp * g->Og * ldd * es, ldd,
                      col + grp * g->Kc * ld * es, ld, b0 > n0, dw + grp * g->Og * g->Kc * es,
                      g->Kc);
    }
}

static void conv_bwd_filter_chunks(const conv_job *j, int64_t c0, int64_t c1, char *s, int par) {
    for (int64_t c = c0; c < c1; c++) conv_bwd_filter_chunk(j, c, s, par);
}

static void conv_sum_parts(void *ctx, int64_t b, int64_t e) {
    const conv_job *j = ctx;
    const int64_t wsize = j->g.O * j->g.Kc;
    for (int64_t c = 1; c < j->nchunks; c++) {
        const char *p = j->parts + (c - 1) * wsize * j->g.es;
        add_run(j->g.es, j->out + b * j->g.es, 1, p + b * j->g.es, e - b);
    }
}

sp_status cpu_conv2d_backprop_filter(const sp_kernel_args *a) {
    const char *op = "conv2d_backprop_filter";
    if (a->n_in != 2 || a->n_out != 1)
        return sp_error(SP_ERR_ARG, "%s: wants 2 inputs and 1 output", op);
    sp_tensor *dy = a->in[0], *x = a->in[1], *dw = a->out[0];
    sp_status st;
    if ((st = conv_check_in(op, "dy", dy, dy->dtype)) || (st = conv_check_in(op, "input", x, dy->dtype)))
        return st;
    int64_t wshape[4];
    if ((st = conv_shape_attr(op, a->attrs, "filter_shape", wshape))) return st;
    conv_job j;
    memset(&j, 0, sizeof j);
    conv_geom *g = &j.g;
    if ((st = conv_geom_init(op, a->attrs, dy->dtype, x->shape, wshape, g))) return st;
    const int64_t dyshape[4] = {g->N, g->O, g->Ho, g->Wo};
    if (memcmp(dy->shape, dyshape, sizeof dyshape) != 0) {
        char b1[96], b2[96], b3[96], b4[96];
        return sp_error(SP_ERR_SHAPE, "%s: dy has shape %s but input %s and filter %s give %s",
                        op, shape_str4(dy->shape, b1, sizeof b1),
                        shape_str4(x->shape, b2, sizeof b2), shape_str4(wshape, b3, sizeof b3),
                        shape_str4(dyshape, b4, sizeof b4));
    }
    if ((st = conv_check_out(op, dw, g->dt, wshape))) return st;
    const int64_t wsize = g->O * g->Kc;
    if (wsize == 0) return SP_OK;
    if (g->N == 0 || g->P == 0) {
        memset(sp_tensor_data(dw), 0, sp_tensor_nbytes(dw));
        return SP_OK;
    }
    /* Chunks: a power of two fixed by the shapes, as many as the partials'
     * memory allows. */
    int64_t nck = CONV_MAX_CHUNKS;
    while (nck > 1 && (nck > g->N || (nck - 1) * wsize > CONV_PART_CAP)) nck /= 2;
    int64_t per = (g->N + nck - 1) / nck, nb = CONV_COL_CAP / ((g->R + g->O) * g->P);
    if (nb < 1) nb = 1;
    if (nb > per) nb = per;
    j.nchunks = nck;
    j.nb = nb;
    j.x = sp_tensor_data(x);
    memcpy(j.xs, x->strides, sizeof j.xs);
    j.dy = sp_tensor_data(dy);
    memcpy(j.dys, dy->strides, sizeof j.dys);
    j.out = sp_tensor_data(dw);
    j.dy_direct = conv_planes_packed(dy);
    j.fn = conv_bwd_filter_chunks;
    size_t pcap = 0;
    if (nck > 1) {
        j.parts = scratch_get((size_t)((nck - 1) * wsize * g->es), &pcap);
        if (!j.parts)
            return sp_error(SP_ERR_NOMEM, "%s: no memory for %lld partial filter gradients", op,
                            (long long)(nck - 1));
    }
    int64_t slot = ((g->R * nb * g->P * g->es + 63) & ~(int64_t)63) + g->O * nb * g->P * g->es;
    if (conv_small_o_ok(g)) {
        conv_small_o_setup(&j);
        j.fn = conv_bwf_direct_chunks;
        slot = conv_pad_bytes(&j) + (conv_round64(g->P * j.L) + g->R * j.L) * 4;
    }
    j.nitems = nck;
    j.nslots = conv_slots(nck, nck > 1);
    st = conv_run(op, &j, slot);
    if (!st && nck > 1) sp_parallel_for(wsize, 1 << 14, conv_sum_parts, &j);
    scratch_put(j.parts, pcap);
    return st;
}
