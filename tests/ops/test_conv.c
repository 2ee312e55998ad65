/*
 * test_conv.c -- the CPU convolution and pooling kernels (conv.c, pool.c).
 *
 * conv2d and its two backprops run on small random cases against a direct
 * float64 loop written here from the definition (not from the kernels'
 * im2col): stride 2, dilation 2, groups 2, depthwise, 1x1 with and without
 * stride, every pad mode and padding form (1, 2, 4 ints, asymmetric), odd
 * sizes, batch 1 and 3, inputs that are strided views (NHWC permuted,
 * reversed columns, a transposed weight), float32 and float64, with 1 and 2
 * threads; the 1- and 2-thread results must be bitwise identical.  The
 * backprops are also tied to the forward by the adjoint identity
 *     <conv(x, w), dy> == <x, backprop_input(dy, w)> == <w, backprop_filter(dy, x)>.
 * Hand-checked values pin "same" padding to the bottom/right.
 *
 * Pooling: hand-checked values for max and avg (ceil_mode, padding, "same",
 * count_include_pad, ties to the first max, NaN, overlapping windows), and
 * random cases against a direct loop here; avg_pool2d_backward is checked
 * as the adjoint of the (linear) forward.
 *
 * Kernels are called directly (cpu_<name> with hand-made args) and once
 * each through sp_op_call_name, so inference and kernels must agree.
 */
#include <stdint.h>
#include <stdlib.h>

#include "backend/cpu/cpu.h"
#include "test.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static double urand(void) { /* uniform in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / (double)(1ull << 52) - 1.0;
}

static int64_t numel4(const int64_t *s) { return s[0] * s[1] * s[2] * s[3]; }

/* The values of any tensor, in C order, as doubles (malloc'd). */
static double *values(sp_tensor *t) {
    sp_tensor *c = NULL;
    if (sp_tensor_contiguous(t, &c) != SP_OK) return NULL;
    int64_t n = sp_tensor_numel(c);
    double *v = malloc((size_t)(n + 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++)
        v[i] = c->dtype == SP_F32 ? ((float *)sp_tensor_data(c))[i] : ((double *)sp_tensor_data(c))[i];
    sp_tensor_release(c);
    return v;
}

/* A random tensor of logical shape s laid out as `layout` says:
 * 0 contiguous; 1 stored NHWC and permuted to NCHW; 2 the last axis reversed
 * with stride -2 (a slice of a twice-wider tensor); 3 the last two axes
 * stored transposed. */
static sp_tensor *rand_view(sp_dtype dt, const int64_t s[4], int layout) {
    int64_t base[4] = {s[0], s[1], s[2], s[3]};
    if (layout == 1) base[1] = s[2], base[2] = s[3], base[3] = s[1];
    if (layout == 2) base[3] = 2 * s[3];
    if (layout == 3) base[2] = s[3], base[3] = s[2];
    sp_tensor *b = sp_tensor_new(dt, 4, base, SP_CPU), *v = NULL;
    for (int64_t i = 0; i < numel4(base); i++) {
        double r = urand();
        if (dt == SP_F32)
            ((float *)sp_tensor_data(b))[i] = (float)r;
        else
            ((double *)sp_tensor_data(b))[i] = r;
    }
    if (layout == 0) return b;
    if (layout == 1) {
        const int perm[4] = {0, 3, 1, 2};
        sp_tensor_permute(b, perm, &v);
    } else if (layout == 2) {
        sp_tensor_slice(b, 3, SP_SLICE_NONE, SP_SLICE_NONE, -2, &v);
    } else {
        sp_tensor_transpose(b, 2, 3, &v);
    }
    sp_tensor_release(b);
    return v;
}

/* One check: got (a contiguous tensor) against ref within tol relative to
 * the largest reference value. */
static void check_close(const char *what, sp_tensor *got, const double *ref, int64_t n,
                        double tol) {
    double *g = values(got), scale = 1, worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++)
        if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(g[i] - ref[i]);
        if (!(e <= worst)) worst = e, at = i;
    }
    test_checks++;
    if (!(worst <= tol * scale) || sp_tensor_numel(got) != n) {
        test_failures++;
        fprintf(stderr, "  %s: error %.3g at %lld (got %.17g, want %.17g), tol %.3g\n", what,
                worst, (long long)at, at >= 0 ? g[at] : 0.0, at >= 0 ? ref[at] : 0.0,
                tol * scale);
    }
    free(g);
}

static int same_bits(sp_tensor *a, sp_tensor *b) {
    return sp_tensor_nbytes(a) == sp_tensor_nbytes(b) &&
           memcmp(sp_tensor_data(a), sp_tensor_data(b), sp_tensor_nbytes(a)) == 0;
}

static sp_tensor *run1(sp_kernel_fn fn, int op, int n_in, sp_tensor **in, const sp_attrs *at,
                       sp_dtype dt, const int64_t oshape[4]) {
    sp_tensor *out = sp_tensor_new(dt, 4, oshape, SP_CPU);
    sp_kernel_args a = {op, n_in, in, 1, &out, at};
    CHECK_OK(fn(&a));
    return out;
}

/* ---- convolution ------------------------------------------------------ */

typedef struct ccase {
    int64_t N, C, H, W, O, kh, kw, sh, sw, dh, dw, G;
    const char *mode;
    int npad;
    int64_t pad[4];
    int xlayout, wlayout;
} ccase;

/* Output size and top/left padding from the definition in ops.def. */
static void ref_geom(const ccase *c, int64_t *Ho, int64_t *Wo, int64_t *pt, int64_t *pl) {
    int64_t in[2] = {c->H, c->W}, k[2] = {c->kh, c->kw}, s[2] = {c->sh, c->sw},
            d[2] = {c->dh, c->dw}, out[2], lo[2];
    int64_t p4[4] = {0, 0, 0, 0};
    if (c->npad == 1) p4[0] = p4[1] = p4[2] = p4[3] = c->pad[0];
    if (c->npad == 2) p4[0] = p4[1] = c->pad[0], p4[2] = p4[3] = c->pad[1];
    if (c->npad == 4) memcpy(p4, c->pad, sizeof p4);
    for (int i = 0; i < 2; i++) {
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (strcmp(c->mode, "same") == 0) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + ek - in[i];
            lo[i] = total > 0 ? total / 2 : 0;
        } else if (strcmp(c->mode, "valid") == 0) {
            out[i] = (in[i] - ek) / s[i] + 1;
            lo[i] = 0;
        } else {
            out[i] = (in[i] + p4[2 * i] + p4[2 * i + 1] - ek) / s[i] + 1;
            lo[i] = p4[2 * i];
        }
    }
    *Ho = out[0], *Wo = out[1], *pt = lo[0], *pl = lo[1];
}

/* y = conv(x, w), dx = backprop_input(dy, w), dw = backprop_filter(dy, x),
 * by the direct loop. */
static void ref_conv(const ccase *c, const double *x, const double *w, const double *dy,
                     double *y, double *dx, double *dw) {
    int64_t Ho, Wo, pt, pl;
    ref_geom(c, &Ho, &Wo, &pt, &pl);
    int64_t Cg = c->C / c->G, Og = c->O / c->G;
    memset(y, 0, (size_t)(c->N * c->O * Ho * Wo) * sizeof(double));
    memset(dx, 0, (size_t)(c->N * c->C * c->H * c->W) * sizeof(double));
    memset(dw, 0, (size_t)(c->O * Cg * c->kh * c->kw) * sizeof(double));
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t o = 0; o < c->O; o++)
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    int64_t yi = ((n * c->O + o) * Ho + oh) * Wo + ow;
                    for (int64_t cc = 0; cc < Cg; cc++)
                        for (int64_t i = 0; i < c->kh; i++)
                            for (int64_t j = 0; j < c->kw; j++) {
                                int64_t ih = oh * c->sh - pt + i * c->dh;
                                int64_t iw = ow * c->sw - pl + j * c->dw;
                                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                                int64_t ch = (o / Og) * Cg + cc;
                                int64_t xi = ((n * c->C + ch) * c->H + ih) * c->W + iw;
                                int64_t wi = ((o * Cg + cc) * c->kh + i) * c->kw + j;
                                y[yi] += x[xi] * w[wi];
                                dx[xi] += w[wi] * dy[yi];
                                dw[wi] += x[xi] * dy[yi];
                            }
                }
}

static void conv_attrs(const ccase *c, sp_attrs *at) {
    sp_attrs_init(at);
    const int64_t s[2] = {c->sh, c->sw}, d[2] = {c->dh, c->dw};
    sp_attrs_set_ints(at, "stride", 2, s);
    sp_attrs_set_ints(at, "dilation", 2, d);
    sp_attrs_set_int(at, "groups", c->G);
    sp_attrs_set_str(at, "pad_mode", c->mode);
    if (c->npad) sp_attrs_set_ints(at, "padding", c->npad, c->pad);
}

static void conv_case(const ccase *c, sp_dtype dt) {
    int failures0 = test_failures;
    int64_t Ho, Wo, pt, pl;
    ref_geom(c, &Ho, &Wo, &pt, &pl);
    const int64_t xs[4] = {c->N, c->C, c->H, c->W}, ws[4] = {c->O, c->C / c->G, c->kh, c->kw},
                  ys[4] = {c->N, c->O, Ho, Wo};
    sp_tensor *x = rand_view(dt, xs, c->xlayout), *w = rand_view(dt, ws, c->wlayout);
    sp_tensor *dy = rand_view(dt, ys, c->xlayout);
    double *xv = values(x), *wv = values(w), *dyv = values(dy);
    double *y = malloc((size_t)numel4(ys) * 8 + 8), *dx = malloc((size_t)numel4(xs) * 8 + 8);
    double *dw = malloc((size_t)numel4(ws) * 8 + 8);
    ref_conv(c, xv, wv, dyv, y, dx, dw);
    sp_attrs at, at_in, at_f;
    conv_attrs(c, &at);
    at_in = at;
    sp_attrs_set_ints(&at_in, "input_shape", 4, xs);
    at_f = at;
    sp_attrs_set_ints(&at_f, "filter_shape", 4, ws);
    double tol = dt == SP_F64 ? 1e-12 : 2e-5;
    sp_tensor *r[2][3];
    for (int t = 0; t < 2; t++) {
        sp_set_num_threads(t + 1);
        sp_tensor *in_f[2] = {x, w}, *in_bi[2] = {dy, w}, *in_bf[2] = {dy, x};
        r[t][0] = run1(cpu_conv2d, SP_OP_CONV2D, 2, in_f, &at, dt, ys);
        r[t][1] = run1(cpu_conv2d_backprop_input, SP_OP_CONV2D_BACKPROP_INPUT, 2, in_bi, &at_in,
                       dt, xs);
        r[t][2] = run1(cpu_conv2d_backprop_filter, SP_OP_CONV2D_BACKPROP_FILTER, 2, in_bf, &at_f,
                       dt, ws);
        check_close("conv2d", r[t][0], y, numel4(ys), tol);
        check_close("conv2d_backprop_input", r[t][1], dx, numel4(xs), tol);
        check_close("conv2d_backprop_filter", r[t][2], dw, numel4(ws), tol);
    }
    for (int k = 0; k < 3; k++) CHECK(same_bits(r[0][k], r[1][k]));
    if (dt == SP_F64) { /* the adjoint identity */
        double *yk = values(r[0][0]), *dxk = values(r[0][1]), *dwk = values(r[0][2]);
        double a = 0, b = 0, d = 0, scale = 0;
        for (int64_t i = 0; i < numel4(ys); i++) a += yk[i] * dyv[i], scale += fabs(yk[i] * dyv[i]);
        for (int64_t i = 0; i < numel4(xs); i++) b += xv[i] * dxk[i];
        for (int64_t i = 0; i < numel4(ws); i++) d += wv[i] * dwk[i];
        CHECK_NEAR(b, a, 1e-12 * (1 + scale));
        CHECK_NEAR(d, a, 1e-12 * (1 + scale));
        free(yk), free(dxk), free(dwk);
    }
    if (test_failures != failures0)
        fprintf(stderr, "  (case N%lld C%lld %lldx%lld O%lld k%lldx%lld s%lld,%lld d%lld,%lld g%lld %s "
                        "layouts %d/%d %s)\n",
                (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W,
                (long long)c->O, (long long)c->kh, (long long)c->kw, (long long)c->sh,
                (long long)c->sw, (long long)c->dh, (long long)c->dw, (long long)c->G, c->mode,
                c->xlayout, c->wlayout, sp_dtype_name(dt));
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) sp_tensor_release(r[t][k]);
    sp_tensor_release(x), sp_tensor_release(w), sp_tensor_release(dy);
    free(xv), free(wv), free(dyv), free(y), free(dx), free(dw);
}

static const ccase conv_cases[] = {
    /* N  C  H  W  O kh kw sh sw dh dw G  mode     npad pad          layouts */
    {1, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1, "pad", 1, {1}, 0, 0},
    {3, 2, 9, 8, 4, 3, 2, 2, 2, 1, 1, 1, "pad", 2, {1, 0}, 0, 0},
    {2, 3, 10, 9, 2, 3, 3, 1, 1, 2, 2, 1, "pad", 4, {2, 1, 0, 3}, 1, 0},
    {3, 4, 6, 7, 6, 3, 3, 1, 1, 1, 1, 2, "same", 0, {0}, 0, 0},
    {2, 3, 5, 5, 3, 3, 3, 2, 2, 1, 1, 3, "same", 0, {0}, 2, 3},  /* depthwise */
    {1, 2, 6, 6, 4, 3, 3, 3, 2, 2, 1, 2, "same", 0, {0}, 0, 0},  /* depth multiplier 2 */
    {2, 2, 8, 7, 3, 2, 3, 2, 1, 1, 1, 1, "valid", 0, {0}, 0, 0},
    {3, 5, 4, 5, 3, 1, 1, 1, 1, 1, 1, 1, "pad", 0, {0}, 0, 0},   /* 1x1: straight GEMM */
    {3, 5, 4, 5, 3, 1, 1, 1, 1, 1, 1, 1, "valid", 0, {0}, 1, 3}, /* 1x1 on views */
    {2, 4, 7, 7, 6, 1, 1, 2, 2, 1, 1, 1, "pad", 0, {0}, 0, 0},   /* 1x1 stride 2 */
    {2, 4, 6, 6, 4, 1, 1, 1, 1, 1, 1, 2, "pad", 0, {0}, 2, 0},   /* grouped 1x1 */
    {1, 1, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1, "pad", 1, {3}, 0, 0},   /* pad wider than the kernel */
    {4, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, "pad", 1, {1}, 0, 0}, /* big enough to split */
    {5, 6, 11, 13, 8, 5, 5, 2, 2, 1, 1, 2, "same", 0, {0}, 1, 0},
    {3, 3, 9, 9, 4, 7, 7, 2, 2, 1, 1, 1, "pad", 1, {3}, 0, 0},   /* ResNet stem in small */
    {1, 8, 40, 40, 8, 3, 3, 1, 1, 1, 1, 1, "pad", 1, {1}, 0, 0}, /* one image: parallel GEMM/im2col */
    {8, 16, 5, 5, 24, 3, 3, 1, 1, 1, 1, 1, "pad", 1, {1}, 0, 0},  /* small planes batched */
};

static void test_conv_random(void) {
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        conv_case(&conv_cases[i], SP_F64);
        conv_case(&conv_cases[i], SP_F32);
    }
    sp_set_num_threads(2);
}

/* x = 1..16 on a 4x4 plane, a 2x2 all-ones filter, "same": the extra
 * padding row and column go at the bottom and right. */
static void test_conv_same_hand(void) {
    double xv[16], wv[4] = {1, 1, 1, 1};
    for (int i = 0; i < 16; i++) xv[i] = i + 1;
    const int64_t xs[4] = {1, 1, 4, 4}, ws[4] = {1, 1, 2, 2};
    sp_tensor *x = sp_tensor_from_data(SP_F64, 4, xs, xv), *w = sp_tensor_from_data(SP_F64, 4, ws, wv);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_attrs_set_str(&at, "pad_mode", "same");
    sp_tensor *in[2] = {x, w}, *out[SP_MAX_OUTPUTS];
    int n = 0;
    CHECK_OK(sp_op_call_name("conv2d", 2, in, &at, &n, out));
    if (n == 1) {
        const double want[16] = {14, 18, 22, 12, 30, 34, 38, 20, 46, 50, 54, 28, 27, 29, 31, 16};
        check_close("conv2d same", out[0], want, 16, 0);
        sp_tensor_release(out[0]);
    }
    sp_tensor_release(x), sp_tensor_release(w);
}

/* The three conv primitives through sp_op_call_name agree with the kernels
 * called directly (inference and kernel geometry are the same). */
static void test_conv_dispatch(void) {
    const ccase c = {2, 4, 9, 8, 6, 3, 3, 2, 1, 1, 2, 2, "pad", 4, {1, 2, 0, 1}, 0, 0};
    int64_t Ho, Wo, pt, pl;
    ref_geom(&c, &Ho, &Wo, &pt, &pl);
    const int64_t xs[4] = {c.N, c.C, c.H, c.W}, ws[4] = {c.O, c.C / c.G, c.kh, c.kw},
                  ys[4] = {c.N, c.O, Ho, Wo};
    sp_tensor *x = rand_view(SP_F32, xs, 0), *w = rand_view(SP_F32, ws, 0),
              *dy = rand_view(SP_F32, ys, 0);
    double *xv = values(x), *wv = values(w), *dyv = values(dy);
    double *y = malloc((size_t)numel4(ys) * 8), *dx = malloc((size_t)numel4(xs) * 8),
           *dw = malloc((size_t)numel4(ws) * 8);
    ref_conv(&c, xv, wv, dyv, y, dx, dw);
    sp_attrs at;
    conv_attrs(&c, &at);
    sp_tensor *out[SP_MAX_OUTPUTS];
    int n = 0;
    sp_tensor *in_f[2] = {x, w};
    CHECK_OK(sp_op_call_name("conv2d", 2, in_f, &at, &n, out));
    if (n == 1) check_close("dispatch conv2d", out[0], y, numel4(ys), 2e-5), sp_tensor_release(out[0]);
    sp_attrs_set_ints(&at, "input_shape", 4, xs);
    sp_tensor *in_bi[2] = {dy, w};
    n = 0;
    CHECK_OK(sp_op_call_name("conv2d_backprop_input", 2, in_bi, &at, &n, out));
    if (n == 1) check_close("dispatch backprop_input", out[0], dx, numel4(xs), 2e-5), sp_tensor_release(out[0]);
    sp_attrs_set_ints(&at, "filter_shape", 4, ws);
    sp_tensor *in_bf[2] = {dy, x};
    n = 0;
    CHECK_OK(sp_op_call_name("conv2d_backprop_filter", 2, in_bf, &at, &n, out));
    if (n == 1) check_close("dispatch backprop_filter", out[0], dw, numel4(ws), 2e-5), sp_tensor_release(out[0]);
    sp_tensor_release(x), sp_tensor_release(w), sp_tensor_release(dy);
    free(xv), free(wv), free(dyv), free(y), free(dx), free(dw);
}

static void test_conv_errors(void) {
    const int64_t xs[4] = {1, 3, 5, 5}, ws[4] = {4, 2, 3, 3}, ws_big[4] = {2, 3, 7, 7};
    sp_tensor *x = sp_tensor_zeros(SP_F32, 4, xs, SP_CPU), *w = sp_tensor_zeros(SP_F32, 4, ws, SP_CPU);
    sp_tensor *wb = sp_tensor_zeros(SP_F32, 4, ws_big, SP_CPU);
    sp_tensor *wd = sp_tensor_zeros(SP_F64, 4, ws_big, SP_CPU);
    const int64_t ws_ok[4] = {4, 3, 3, 3};
    sp_tensor *wk = sp_tensor_zeros(SP_F32, 4, ws_ok, SP_CPU);
    const int64_t ys[4] = {1, 4, 3, 3};
    sp_tensor *y = sp_tensor_zeros(SP_F32, 4, ys, SP_CPU);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_tensor *in[2] = {x, w};
    sp_kernel_args a = {SP_OP_CONV2D, 2, in, 1, &y, &at};
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_SHAPE, "groups"); /* 3 channels, weight wants 2 */
    in[1] = wb;
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_SHAPE, "smaller than the kernel");
    in[1] = wd;
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_DTYPE, "float32");
    in[1] = wk;
    sp_attrs_set_int(&at, "groups", 0);
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_ARG, "groups");
    sp_attrs_init(&at);
    sp_attrs_set_str(&at, "pad_mode", "middle");
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_ARG, "pad_mode");
    sp_attrs_init(&at);
    const int64_t s0[2] = {0, 1};
    sp_attrs_set_ints(&at, "stride", 2, s0);
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_ARG, "stride");
    sp_attrs_init(&at);
    const int64_t p3[3] = {1, 1, 1};
    sp_attrs_set_ints(&at, "padding", 3, p3);
    CHECK_ERR(cpu_conv2d(&a), SP_ERR_ARG, "padding");
    sp_attrs_init(&at);
    sp_kernel_args b = {SP_OP_CONV2D_BACKPROP_INPUT, 2, in, 1, &y, &at};
    CHECK_ERR(cpu_conv2d_backprop_input(&b), SP_ERR_ARG, "input_shape");
    sp_tensor_release(x), sp_tensor_release(w), sp_tensor_release(wb), sp_tensor_release(wd);
    sp_tensor_release(wk), sp_tensor_release(y);
}

/* ---- pooling ------------------------------------------------------------- */

typedef struct pcase {
    int64_t N, C, H, W, kh, kw, sh, sw, dh, dw;
    const char *mode;
    int npad;
    int64_t pad[4];
    int ceil, count_pad, layout;
} pcase;

static void pool_attrs(const pcase *c, sp_attrs *at) {
    sp_attrs_init(at);
    const int64_t k[2] = {c->kh, c->kw}, s[2] = {c->sh, c->sw}, d[2] = {c->dh, c->dw};
    sp_attrs_set_ints(at, "kernel_size", 2, k);
    if (c->sh) sp_attrs_set_ints(at, "stride", 2, s);
    sp_attrs_set_ints(at, "dilation", 2, d);
    sp_attrs_set_str(at, "pad_mode", c->mode);
    if (c->npad) sp_attrs_set_ints(at, "padding", c->npad, c->pad);
    sp_attrs_set_int(at, "ceil_mode", c->ceil);
    sp_attrs_set_int(at, "count_include_pad", c->count_pad);
}

/* Runs primitive `name` through sp_op_call_name; its one output or NULL. */
static sp_tensor *pool_op(const char *name, int n_in, sp_tensor **in, const sp_attrs *at) {
    sp_tensor *out[SP_MAX_OUTPUTS];
    int n = 0;
    sp_status st = sp_op_call_name(name, n_in, in, at, &n, out);
    CHECK_OK(st);
    return st == SP_OK && n == 1 ? out[0] : NULL;
}

static void check_plane(const char *what, sp_tensor *t, const double *want, int64_t n) {
    test_checks++;
    if (!t || sp_tensor_numel(t) != n) {
        test_failures++;
        fprintf(stderr, "  %s: no output or wrong size\n", what);
        return;
    }
    double *g = values(t);
    for (int64_t i = 0; i < n; i++)
        if (!(g[i] == want[i] || (isnan(g[i]) && isnan(want[i])) ||
              fabs(g[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])))) {
            test_failures++;
            fprintf(stderr, "  %s: element %lld is %.17g, want %.17g\n", what, (long long)i, g[i],
                    want[i]);
            break;
        }
    free(g);
}

static sp_tensor *plane(int64_t H, int64_t W, const double *v) {
    const int64_t s[4] = {1, 1, H, W};
    return sp_tensor_from_data(SP_F64, 4, s, v);
}

static void test_pool_hand(void) {
    double seq[25], neg[25];
    for (int i = 0; i < 25; i++) seq[i] = i + 1, neg[i] = -(i + 1);
    sp_attrs at;
    sp_tensor *x, *y, *in[2];
    const int64_t k2[2] = {2, 2}, k3[2] = {3, 3}, s2[2] = {2, 2}, s1[2] = {1, 1};

    /* 2x2, stride defaults to the kernel */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k2);
    double x44[16];
    for (int i = 0; i < 16; i++) x44[i] = i + 1;
    x = plane(4, 4, x44), in[0] = x;
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max 2x2", y, (const double[]){6, 8, 14, 16}, 4);
    sp_tensor_release(y);
    y = pool_op("avg_pool2d", 1, in, &at);
    check_plane("avg 2x2", y, (const double[]){3.5, 5.5, 11.5, 13.5}, 4);
    sp_tensor_release(y);
    /* "same", even size: the extra pad row/column is at the bottom/right */
    sp_attrs_set_ints(&at, "stride", 2, s1);
    sp_attrs_set_str(&at, "pad_mode", "same");
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max same", y,
                (const double[]){6, 7, 8, 8, 10, 11, 12, 12, 14, 15, 16, 16, 14, 15, 16, 16}, 16);
    sp_tensor_release(y);
    sp_tensor_release(x);

    /* 3x3 stride 2 pad 1 on negatives: padded zeros never win */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k3);
    sp_attrs_set_ints(&at, "stride", 2, s2);
    sp_attrs_set_int(&at, "padding", 1);
    x = plane(5, 5, neg), in[0] = x;
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max pad", y, (const double[]){-1, -2, -4, -6, -7, -9, -16, -17, -19}, 9);
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* "same" 3x3 stride 2 on 5x5: padding 1/1 */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k3);
    sp_attrs_set_ints(&at, "stride", 2, s2);
    sp_attrs_set_str(&at, "pad_mode", "same");
    x = plane(5, 5, seq), in[0] = x;
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max same 5x5", y, (const double[]){7, 9, 10, 17, 19, 20, 22, 24, 25}, 9);
    sp_tensor_release(y);

    /* ceil_mode: 5x5, 2x2 stride 2 -> 3x3 with partial last windows */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k2);
    sp_attrs_set_int(&at, "ceil_mode", 1);
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max ceil", y, (const double[]){7, 9, 10, 17, 19, 20, 22, 24, 25}, 9);
    sp_tensor_release(y);
    y = pool_op("avg_pool2d", 1, in, &at); /* divisor: cells inside input + padding */
    check_plane("avg ceil", y, (const double[]){4, 6, 7.5, 14, 16, 17.5, 21.5, 23.5, 25}, 9);
    sp_tensor_release(y);
    sp_attrs_set_int(&at, "ceil_mode", 0);
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max floor", y, (const double[]){7, 9, 17, 19}, 4);
    sp_tensor_release(y);
    sp_tensor_release(x);

    /* avg with padding: count_include_pad 1 and 0 on ones */
    double ones[16];
    for (int i = 0; i < 16; i++) ones[i] = 1;
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k3);
    sp_attrs_set_ints(&at, "stride", 2, s1);
    sp_attrs_set_int(&at, "padding", 1);
    x = plane(3, 3, ones), in[0] = x;
    y = pool_op("avg_pool2d", 1, in, &at);
    const double a4 = 4.0 / 9, a6 = 6.0 / 9;
    check_plane("avg include pad", y, (const double[]){a4, a6, a4, a6, 1, a6, a4, a6, a4}, 9);
    sp_tensor_release(y);
    sp_attrs_set_int(&at, "count_include_pad", 0);
    y = pool_op("avg_pool2d", 1, in, &at);
    check_plane("avg exclude pad", y, (const double[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 9);
    sp_tensor_release(y);
    sp_tensor_release(x);
    /* padding plus ceil_mode: the overhang past the padding is not counted */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k3);
    sp_attrs_set_ints(&at, "stride", 2, s2);
    sp_attrs_set_int(&at, "padding", 1);
    sp_attrs_set_int(&at, "ceil_mode", 1);
    x = plane(4, 4, ones), in[0] = x;
    y = pool_op("avg_pool2d", 1, in, &at);
    const double b1 = 4.0 / 9, b2 = 6.0 / 9, b3 = 2.0 / 6;
    check_plane("avg pad ceil", y, (const double[]){b1, b2, b3, b2, 1, 0.5, b3, 0.5, 0.25}, 9);
    sp_tensor_release(y);
    sp_tensor_release(x);

    /* ties go to the first max; the backward routes there */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k2);
    x = plane(2, 4, (const double[]){1, 1, 2, 2, 1, 1, 2, 2});
    sp_tensor *dy = plane(1, 2, (const double[]){10, 20});
    in[0] = x, in[1] = dy;
    y = pool_op("max_pool2d_backward", 2, in, &at);
    check_plane("max backward ties", y, (const double[]){10, 0, 20, 0, 0, 0, 0, 0}, 8);
    sp_tensor_release(y), sp_tensor_release(x), sp_tensor_release(dy);
    /* overlapping windows add up; a NaN wins its windows */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k3);
    sp_attrs_set_ints(&at, "stride", 2, s1);
    x = plane(3, 4, (const double[]){1, 2, 3, 4, 5, 9, 6, 7, 0, 1, 2, 3});
    dy = plane(1, 2, (const double[]){1, 2});
    in[0] = x, in[1] = dy;
    y = pool_op("max_pool2d_backward", 2, in, &at);
    check_plane("max backward overlap", y, (const double[]){0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0}, 12);
    sp_tensor_release(y), sp_tensor_release(x);
    x = plane(3, 4, (const double[]){1, 2, 3, 4, 5, 9, 6, 7, 0, 1, NAN, 3});
    in[0] = x;
    y = pool_op("max_pool2d", 1, in, &at);
    check_plane("max NaN", y, (const double[]){NAN, NAN}, 2);
    sp_tensor_release(y);
    y = pool_op("max_pool2d_backward", 2, in, &at);
    check_plane("max backward NaN", y, (const double[]){0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0}, 12);
    sp_tensor_release(y), sp_tensor_release(x), sp_tensor_release(dy);

    /* avg backward on 3x3, kernel 3, padding 1, dy = 1: counting the padding
     * every divisor is 9, so dx is (windows covering the cell) / 9 */
    sp_attrs_init(&at);
    sp_attrs_set_ints(&at, "kernel_size", 2, k3);
    sp_attrs_set_ints(&at, "stride", 2, s1);
    sp_attrs_set_int(&at, "padding", 1);
    const int64_t ishape[4] = {1, 1, 3, 3};
    sp_attrs_set_ints(&at, "input_shape", 4, ishape);
    dy = plane(3, 3, ones);
    in[0] = dy;
    y = pool_op("avg_pool2d_backward", 1, in, &at);
    check_plane("avg backward include pad", y, (const double[]){a4, a6, a4, a6, 1, a6, a4, a6, a4}, 9);
    sp_tensor_release(y);
    /* without the padding the divisors are 4 6 4 / 6 9 6 / 4 6 4; the corner
     * gets 1/4 + 1/6 + 1/6 + 1/9 from outputs (0,0), (0,1), (1,0), (1,1) */
    sp_attrs_set_int(&at, "count_include_pad", 0);
    y = pool_op("avg_pool2d_backward", 1, in, &at);
    const double c0 = 1.0 / 4 + 2.0 / 6 + 1.0 / 9, e1 = 2.0 / 4 + 3.0 / 6 + 1.0 / 9;
    const double m0 = 4.0 / 4 + 4.0 / 6 + 1.0 / 9;
    check_plane("avg backward exclude pad", y, (const double[]){c0, e1, c0, e1, m0, e1, c0, e1, c0}, 9);
    sp_tensor_release(y), sp_tensor_release(dy);
}

/* Direct loops: max (first max, NaN wins, padding never) and avg. */
static void ref_pool(const pcase *c, const double *x, const double *dy, int64_t Ho, int64_t Wo,
                     int64_t pt, int64_t pb, int64_t pl, int64_t pr, double *ymax, double *dxmax,
                     double *yavg) {
    int64_t sh = c->sh ? c->sh : c->kh, sw = c->sw ? c->sw : c->kw;
    memset(dxmax, 0, (size_t)(c->N * c->C * c->H * c->W) * sizeof(double));
    for (int64_t p = 0; p < c->N * c->C; p++)
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                double m = -INFINITY, s = 0;
                int64_t arg = -1, cnt = 0, cntpad = 0;
                for (int64_t i = 0; i < c->kh; i++)
                    for (int64_t j = 0; j < c->kw; j++) {
                        int64_t ih = oh * sh - pt + i * c->dh, iw = ow * sw - pl + j * c->dw;
                        if (ih < c->H + pb && iw < c->W + pr) cntpad++;
                        if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                        int64_t xi = (p * c->H + ih) * c->W + iw;
                        double v = x[xi];
                        cnt++;
                        s += v;
                        if (arg < 0 || v > m || (isnan(v) && !isnan(m))) m = v, arg = xi;
                    }
                int64_t yi = (p * Ho + oh) * Wo + ow;
                ymax[yi] = m;
                if (arg >= 0) dxmax[arg] += dy[yi];
                int64_t div = c->count_pad ? cntpad : cnt;
                yavg[yi] = div ? s / (double)div : 0;
            }
}

static void pool_case(const pcase *c, sp_dtype dt) {
    int failures0 = test_failures;
    /* output size and padding, from the definition */
    int64_t in[2] = {c->H, c->W}, k[2] = {c->kh, c->kw}, d[2] = {c->dh, c->dw};
    int64_t s[2] = {c->sh ? c->sh : c->kh, c->sw ? c->sw : c->kw}, out[2], lo[2], hi[2];
    int64_t p4[4] = {0, 0, 0, 0};
    if (c->npad == 1) p4[0] = p4[1] = p4[2] = p4[3] = c->pad[0];
    if (c->npad == 2) p4[0] = p4[1] = c->pad[0], p4[2] = p4[3] = c->pad[1];
    if (c->npad == 4) memcpy(p4, c->pad, sizeof p4);
    for (int i = 0; i < 2; i++) {
        int64_t ek = (k[i] - 1) * d[i] + 1;
        if (strcmp(c->mode, "same") == 0) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t t = (out[i] - 1) * s[i] + ek - in[i];
            if (t < 0) t = 0;
            lo[i] = t / 2, hi[i] = t - t / 2;
        } else {
            lo[i] = p4[2 * i], hi[i] = p4[2 * i + 1];
            int64_t span = in[i] + lo[i] + hi[i] - ek;
            out[i] = (c->ceil ? (span + s[i] - 1) / s[i] : span / s[i]) + 1;
            if (c->ceil && (out[i] - 1) * s[i] >= in[i] + lo[i]) out[i]--;
        }
    }
    const int64_t xs[4] = {c->N, c->C, c->H, c->W}, ys[4] = {c->N, c->C, out[0], out[1]};
    sp_tensor *x = rand_view(dt, xs, c->layout), *dy = rand_view(dt, ys, c->layout);
    double *xv = values(x), *dyv = values(dy);
    double *ymax = malloc((size_t)numel4(ys) * 8 + 8), *yavg = malloc((size_t)numel4(ys) * 8 + 8);
    double *dxmax = malloc((size_t)numel4(xs) * 8 + 8);
    ref_pool(c, xv, dyv, out[0], out[1], lo[0], hi[0], lo[1], hi[1], ymax, dxmax, yavg);
    sp_attrs at;
    pool_attrs(c, &at);
    double tol = dt == SP_F64 ? 1e-13 : 1e-6;
    sp_tensor *r[2][4];
    for (int t = 0; t < 2; t++) {
        sp_set_num_threads(t + 1);
        sp_tensor *i1[1] = {x}, *i2[2] = {x, dy}, *i3[1] = {dy};
        r[t][0] = run1(cpu_max_pool2d, SP_OP_MAX_POOL2D, 1, i1, &at, dt, ys);
        r[t][1] = run1(cpu_max_pool2d_backward, SP_OP_MAX_POOL2D_BACKWARD, 2, i2, &at, dt, xs);
        r[t][2] = run1(cpu_avg_pool2d, SP_OP_AVG_POOL2D, 1, i1, &at, dt, ys);
        sp_attrs at2 = at;
        sp_attrs_set_ints(&at2, "input_shape", 4, xs);
        r[t][3] = run1(cpu_avg_pool2d_backward, SP_OP_AVG_POOL2D_BACKWARD, 1, i3, &at2, dt, xs);
        check_close("max_pool2d", r[t][0], ymax, numel4(ys), 0);
        check_close("max_pool2d_backward", r[t][1], dxmax, numel4(xs), tol);
        check_close("avg_pool2d", r[t][2], yavg, numel4(ys), tol);
    }
    for (int k2 = 0; k2 < 4; k2++) CHECK(same_bits(r[0][k2], r[1][k2]));
    /* avg backward is the adjoint of avg forward */
    double *ya = values(r[0][2]), *dxa = values(r[0][3]), a = 0, b = 0, sc = 0;
    for (int64_t i = 0; i < numel4(ys); i++) a += ya[i] * dyv[i], sc += fabs(ya[i] * dyv[i]);
    for (int64_t i = 0; i < numel4(xs); i++) b += xv[i] * dxa[i];
    CHECK_NEAR(b, a, (dt == SP_F64 ? 1e-12 : 1e-5) * (1 + sc));
    if (test_failures != failures0)
        fprintf(stderr, "  (pool case %lldx%lld k%lldx%lld s%lld,%lld d%lld,%lld %s ceil %d pad %d %s)\n",
                (long long)c->H, (long long)c->W, (long long)c->kh, (long long)c->kw,
                (long long)c->sh, (long long)c->sw, (long long)c->dh, (long long)c->dw, c->mode,
                c->ceil, c->count_pad, sp_dtype_name(dt));
    free(ya), free(dxa);
    for (int t = 0; t < 2; t++)
        for (int k2 = 0; k2 < 4; k2++) sp_tensor_release(r[t][k2]);
    sp_tensor_release(x), sp_tensor_release(dy);
    free(xv), free(dyv), free(ymax), free(yavg), free(dxmax);
}

static const pcase pool_cases[] = {
    /* N C  H  W kh kw sh sw dh dw mode   npad pad         ceil cnt layout */
    {2, 3, 8, 8, 2, 2, 0, 0, 1, 1, "pad", 0, {0}, 0, 1, 0},
    {1, 2, 7, 9, 3, 3, 2, 2, 1, 1, "pad", 1, {1}, 1, 1, 1},
    {1, 2, 7, 9, 3, 3, 2, 2, 1, 1, "pad", 1, {1}, 1, 0, 2},
    {3, 1, 6, 5, 3, 2, 2, 1, 1, 1, "pad", 4, {1, 0, 0, 1}, 0, 1, 0},
    {2, 2, 9, 7, 3, 3, 2, 3, 1, 1, "same", 0, {0}, 0, 1, 0},
    {2, 2, 10, 10, 2, 2, 3, 3, 1, 1, "pad", 0, {0}, 1, 0, 3},
    {1, 3, 9, 9, 3, 3, 1, 2, 2, 2, "pad", 2, {2, 1}, 0, 1, 0},
    {2, 4, 11, 6, 2, 3, 1, 1, 1, 1, "valid", 0, {0}, 0, 1, 1},
    {64, 6, 28, 28, 2, 2, 0, 0, 1, 1, "pad", 0, {0}, 0, 1, 0}, /* LeNet, many planes */
};

static void test_pool_random(void) {
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        pool_case(&pool_cases[i], SP_F64);
        pool_case(&pool_cases[i], SP_F32);
    }
    sp_set_num_threads(2);
}

static void test_pool_errors(void) {
    const int64_t xs[4] = {1, 1, 4, 4};
    sp_tensor *x = sp_tensor_zeros(SP_F32, 4, xs, SP_CPU), *y = sp_tensor_zeros(SP_F32, 4, xs, SP_CPU);
    sp_attrs at;
    sp_attrs_init(&at);
    sp_tensor *in[1] = {x};
    sp_kernel_args a = {SP_OP_MAX_POOL2D, 1, in, 1, &y, &at};
    CHECK_ERR(cpu_max_pool2d(&a), SP_ERR_ARG, "kernel_size");
    const int64_t k5[2] = {5, 5};
    sp_attrs_set_ints(&at, "kernel_size", 2, k5);
    CHECK_ERR(cpu_max_pool2d(&a), SP_ERR_SHAPE, "smaller than the kernel");
    sp_tensor_release(x), sp_tensor_release(y);
}

int main(void) {
    int64_t live = sp_cpu_live_bytes();
    RUN(test_conv_random);
    RUN(test_conv_same_hand);
    RUN(test_conv_dispatch);
    RUN(test_conv_errors);
    RUN(test_pool_hand);
    RUN(test_pool_random);
    RUN(test_pool_errors);
    CHECK(sp_cpu_live_bytes() == live);
    return TEST_SUMMARY();
}
