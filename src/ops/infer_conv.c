/*
 * infer_conv.c -- inference for convolution and pooling (NCHW): conv2d, its
 * two backprops, max/avg pooling and their backward ops.
 *
 * Every one of them reduces to one question, answered by conv_window():
 * given an input size, a kernel size and the attributes stride, dilation,
 * pad_mode ("pad" | "same" | "valid", case-insensitive), padding (1, 2 or
 * 4 ints: all; rows, cols; top, bottom, left, right) and, for pooling,
 * ceil_mode, how many outputs does a spatial axis have?
 *
 *   pad    out = floor((in + lo + hi - ek) / s) + 1, ek = d*(k-1) + 1;
 *          ceil_mode: ceil(...) + 1, minus one when the last window would
 *          start past the input and the top/left padding (PyTorch)
 *   same   out = ceil(in / s)  (padding derived, extra at bottom/right)
 *   valid  out = floor((in - ek) / s) + 1 (ceil_mode as for "pad")
 *
 * A dilated kernel larger than the (padded) input is an error, as is any
 * attribute outside [1, 2^31] (stride, dilation) or [0, 2^31] (padding):
 * the CPU kernels assume the same bounds, so whatever passes here runs.
 * Pooling also follows PyTorch in asking each padding to be at most half
 * the dilated kernel, which guarantees that every window holds at least one
 * real cell ("padded cells never win" needs a cell to win).
 *
 * The backward ops are checked by running the forward geometry on the
 * shape they are told (input_shape / filter_shape, or x) and comparing the
 * result with the dy they were given.
 */
#include <strings.h>

#include "ops/infer.h"

#define CONV_ATTR_MAX ((int64_t)1 << 31)

typedef struct conv_geo {
    int64_t stride[2], dil[2], pad[4]; /* pad: top, bottom, left, right */
    int mode;                          /* 0 pad, 1 same, 2 valid */
    int ceil_mode;
} conv_geo;

/* A pair attribute (1 or 2 ints in [minv, CONV_ATTR_MAX]) into out. */
static sp_status conv_pair(const sp_op_def *def, const sp_attrs *attrs, const char *name,
                           const int64_t dflt[2], int64_t minv, int64_t out[2]) {
    int n = 0;
    const int64_t *v = sp_attrs_get_ints(attrs, name, &n);
    if (!v && sp_attrs_find(attrs, name))
        return sp_error(SP_ERR_ARG, "%s: attribute '%s' must be 1 or 2 ints", def->name, name);
    if (!v) {
        out[0] = dflt[0];
        out[1] = dflt[1];
    } else if (n == 1 || n == 2) {
        out[0] = v[0];
        out[1] = v[n - 1];
    } else {
        return sp_error(SP_ERR_ARG, "%s: %s %s must have 1 or 2 ints", def->name, name,
                        ops_ints(n, v).s);
    }
    for (int i = 0; i < 2; i++)
        if (out[i] < minv || out[i] > CONV_ATTR_MAX)
            return sp_error(SP_ERR_ARG, "%s: %s %s must be in [%lld, %lld]", def->name, name,
                            ops_ints(n ? n : 2, v ? v : out).s, (long long)minv,
                            (long long)CONV_ATTR_MAX);
    return SP_OK;
}

static sp_status conv_geo_read(const sp_op_def *def, const sp_attrs *attrs,
                               const int64_t *dflt_stride, int pool, conv_geo *g) {
    static const int64_t ones[2] = {1, 1};
    sp_status st;
    if ((st = conv_pair(def, attrs, "stride", dflt_stride ? dflt_stride : ones, 1, g->stride)) ||
        (st = conv_pair(def, attrs, "dilation", ones, 1, g->dil)))
        return st;
    const sp_attr *pm = sp_attrs_find(attrs, "pad_mode");
    g->mode = 0;
    if (pm) {
        const char *m = pm->kind == SP_ATTR_STR ? pm->s : NULL;
        if (m && strcasecmp(m, "pad") == 0)
            g->mode = 0;
        else if (m && strcasecmp(m, "same") == 0)
            g->mode = 1;
        else if (m && strcasecmp(m, "valid") == 0)
            g->mode = 2;
        else
            return sp_error(SP_ERR_ARG, "%s: pad_mode must be \"pad\", \"same\" or \"valid\", "
                            "got %s%s%s", def->name, m ? "\"" : "", m ? m : "a non-string",
                            m ? "\"" : "");
    }
    for (int i = 0; i < 4; i++) g->pad[i] = 0;
    if (g->mode == 0) {
        int n = 0;
        const int64_t *p = sp_attrs_get_ints(attrs, "padding", &n);
        if (!p && sp_attrs_find(attrs, "padding"))
            return sp_error(SP_ERR_ARG, "%s: attribute 'padding' must be 1, 2 or 4 ints", def->name);
        if (p && n == 1) {
            g->pad[0] = g->pad[1] = g->pad[2] = g->pad[3] = p[0];
        } else if (p && n == 2) {
            g->pad[0] = g->pad[1] = p[0];
            g->pad[2] = g->pad[3] = p[1];
        } else if (p && n == 4) {
            for (int i = 0; i < 4; i++) g->pad[i] = p[i];
        } else if (p) {
            return sp_error(SP_ERR_ARG, "%s: padding %s must have 1, 2 or 4 ints", def->name,
                            ops_ints(n, p).s);
        }
        for (int i = 0; i < 4; i++)
            if (g->pad[i] < 0 || g->pad[i] > CONV_ATTR_MAX)
                return sp_error(SP_ERR_ARG, "%s: padding %s must be in [0, %lld]", def->name,
                                ops_ints(n, p).s, (long long)CONV_ATTR_MAX);
    }
    g->ceil_mode = pool && sp_attrs_get_int(attrs, "ceil_mode", 0) != 0;
    return SP_OK;
}

/* Output size Ho, Wo for input (h, w) and kernel (kh, kw); `x` is the shape
 * named in errors.  pool: also the half-kernel padding rule. */
static sp_status conv_window(const sp_op_def *def, const conv_geo *g, const int64_t in[2],
                             const int64_t k[2], int pool, const sp_meta *x, int64_t out[2]) {
    for (int i = 0; i < 2; i++)
        if (k[i] < 1 || k[i] > CONV_ATTR_MAX)
            return sp_error(SP_ERR_SHAPE, "%s: kernel %lldx%lld must be at least 1x1 (input %s)",
                            def->name, (long long)k[0], (long long)k[1], ops_shape(x).s);
    for (int i = 0; i < 2; i++) {
        int64_t ek = g->dil[i] * (k[i] - 1) + 1, s = g->stride[i]; /* <= 2^62: no overflow */
        int64_t lo = g->pad[2 * i], hi = g->pad[2 * i + 1];
        if (g->mode == 1) {
            out[i] = in[i] / s + (in[i] % s != 0);
            continue;
        }
        if (pool && g->mode == 0 && (lo > ek / 2 || hi > ek / 2))
            return sp_error(SP_ERR_ARG,
                            "%s: padding %lld must be at most half the kernel size %lld",
                            def->name, (long long)(lo > hi ? lo : hi), (long long)ek);
        int64_t span = in[i] + lo + hi; /* in < 2^62 (real tensor), pads <= 2^31 */
        if (span < ek)
            return sp_error(SP_ERR_SHAPE,
                            "%s: kernel %lldx%lld (dilation %lldx%lld) is larger than the "
                            "%sinput %lldx%lld of x %s",
                            def->name, (long long)k[0], (long long)k[1], (long long)g->dil[0],
                            (long long)g->dil[1], g->mode == 0 ? "padded " : "",
                            (long long)(in[0] + (g->mode == 0 ? g->pad[0] + g->pad[1] : 0)),
                            (long long)(in[1] + (g->mode == 0 ? g->pad[2] + g->pad[3] : 0)),
                            ops_shape(x).s);
        if (g->ceil_mode) { /* "valid" is "pad" with no padding: ceil_mode applies */
            out[i] = (span - ek + s - 1) / s + 1;
            if ((out[i] - 1) * s >= in[i] + lo) out[i]--;
        } else {
            out[i] = (span - ek) / s + 1;
        }
    }
    return SP_OK;
}

static sp_status conv_need4(const sp_op_def *def, const sp_meta *m, const char *what) {
    if (m->ndim == 4) return SP_OK;
    return sp_error(SP_ERR_SHAPE, "%s: %s must be 4-D (NCHW), got shape %s", def->name, what,
                    ops_shape(m).s);
}

/* conv2d's output meta for x and a filter of shape ws (both checked). */
static sp_status conv_forward(const sp_op_def *def, const sp_meta *x, const int64_t *ws,
                              const sp_attrs *attrs, sp_meta *out) {
    int64_t groups = sp_attrs_get_int(attrs, "groups", 1);
    if (groups < 1 || groups > CONV_ATTR_MAX)
        return sp_error(SP_ERR_ARG, "%s: groups must be >= 1, got %lld", def->name,
                        (long long)groups);
    int64_t C = x->shape[1], O = ws[0];
    if (C % groups != 0 || O % groups != 0 || ws[1] != C / groups) {
        sp_meta w;
        ops_meta_set(&w, x->dtype, 4, ws);
        return sp_error(SP_ERR_SHAPE,
                        "%s: x %s and w %s do not fit with groups %lld (w must be [O, C/groups, "
                        "kh, kw] with O and C divisible by groups)",
                        def->name, ops_shape(x).s, ops_shape(&w).s, (long long)groups);
    }
    conv_geo g;
    sp_status st = conv_geo_read(def, attrs, NULL, 0, &g);
    if (st) return st;
    int64_t o[2];
    if ((st = conv_window(def, &g, &x->shape[2], &ws[2], 0, x, o))) return st;
    int64_t s[4] = {x->shape[0], O, o[0], o[1]};
    ops_meta_set(out, x->dtype, 4, s);
    return SP_OK;
}

/* A required 4-int shape attribute, checked. */
static const int64_t *conv_shape_attr(const sp_op_def *def, const sp_attrs *attrs,
                                      const char *name) {
    int n;
    const int64_t *v = ops_need_ints(def, attrs, name, &n);
    if (!v) return NULL;
    if (n != 4) {
        sp_error(SP_ERR_ARG, "%s: %s %s must have 4 ints (NCHW)", def->name, name,
                 ops_ints(n, v).s);
        return NULL;
    }
    if (ops_check_shape(def->name, name, 4, v)) return NULL;
    return v;
}

static sp_status conv_match(const sp_op_def *def, const sp_meta *dy, const sp_meta *want,
                            const char *from) {
    if (ops_same_shape(dy, want)) return SP_OK;
    return sp_error(SP_ERR_SHAPE, "%s: dy has shape %s but the forward op gives %s for %s",
                    def->name, ops_shape(dy).s, ops_shape(want).s, from);
}

sp_status infer_conv2d(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in;
    sp_status st;
    if ((st = conv_need4(def, &in[0], "x")) || (st = conv_need4(def, &in[1], "w")) ||
        (st = ops_need_dtype(def, &in[1], "w", in[0].dtype)))
        return st;
    if ((st = conv_forward(def, &in[0], in[1].shape, attrs, &out[0]))) return st;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_conv2d_backprop_input(const sp_op_def *def, int n_in, const sp_meta *in,
                                      const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *dy = &in[0], *w = &in[1];
    sp_status st;
    if ((st = conv_need4(def, dy, "dy")) || (st = conv_need4(def, w, "w")) ||
        (st = ops_need_dtype(def, w, "w", dy->dtype)))
        return st;
    const int64_t *is = conv_shape_attr(def, attrs, "input_shape");
    if (!is) return sp_last_status();
    sp_meta x, y;
    ops_meta_set(&x, dy->dtype, 4, is);
    if ((st = conv_forward(def, &x, w->shape, attrs, &y))) return st;
    if ((st = conv_match(def, dy, &y, "input_shape"))) return st;
    out[0] = x;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_conv2d_backprop_filter(const sp_op_def *def, int n_in, const sp_meta *in,
                                       const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *dy = &in[0], *x = &in[1];
    sp_status st;
    if ((st = conv_need4(def, dy, "dy")) || (st = conv_need4(def, x, "x")) ||
        (st = ops_need_dtype(def, x, "x", dy->dtype)))
        return st;
    const int64_t *fs = conv_shape_attr(def, attrs, "filter_shape");
    if (!fs) return sp_last_status();
    sp_meta y;
    if ((st = conv_forward(def, x, fs, attrs, &y))) return st;
    if ((st = conv_match(def, dy, &y, "filter_shape"))) return st;
    ops_meta_set(&out[0], dy->dtype, 4, fs);
    *n_out = 1;
    return SP_OK;
}

/* The pooled meta of x (4-D, checked here). */
static sp_status conv_pool(const sp_op_def *def, const sp_meta *x, const sp_attrs *attrs,
                           sp_meta *out) {
    sp_status st = conv_need4(def, x, "x");
    if (st) return st;
    static const int64_t none[2] = {0, 0};
    int64_t k[2];
    if (!sp_attrs_find(attrs, "kernel_size"))
        return sp_error(SP_ERR_ARG, "%s: missing attribute 'kernel_size'", def->name);
    if ((st = conv_pair(def, attrs, "kernel_size", none, 1, k))) return st;
    conv_geo g;
    if ((st = conv_geo_read(def, attrs, k, 1, &g))) return st;
    int64_t o[2];
    if ((st = conv_window(def, &g, &x->shape[2], k, 1, x, o))) return st;
    int64_t s[4] = {x->shape[0], x->shape[1], o[0], o[1]};
    ops_meta_set(out, x->dtype, 4, s);
    return SP_OK;
}

sp_status infer_pool2d(const sp_op_def *def, int n_in, const sp_meta *in, const sp_attrs *attrs,
                       int *n_out, sp_meta *out) {
    (void)n_in;
    sp_status st = conv_pool(def, &in[0], attrs, &out[0]);
    if (st) return st;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_pool2d_backward(const sp_op_def *def, int n_in, const sp_meta *in,
                                const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *x = &in[0], *dy = &in[1];
    sp_meta y;
    sp_status st = ops_need_dtype(def, dy, "dy", x->dtype);
    if (!st) st = conv_pool(def, x, attrs, &y);
    if (!st) st = conv_match(def, dy, &y, "x");
    if (st) return st;
    out[0] = *x;
    *n_out = 1;
    return SP_OK;
}

sp_status infer_avg_pool2d_backward(const sp_op_def *def, int n_in, const sp_meta *in,
                                    const sp_attrs *attrs, int *n_out, sp_meta *out) {
    (void)n_in;
    const sp_meta *dy = &in[0];
    const int64_t *is = conv_shape_attr(def, attrs, "input_shape");
    if (!is) return sp_last_status();
    sp_meta x, y;
    ops_meta_set(&x, dy->dtype, 4, is);
    sp_status st = conv_pool(def, &x, attrs, &y);
    if (!st) st = conv_match(def, dy, &y, "input_shape");
    if (st) return st;
    out[0] = x;
    *n_out = 1;
    return SP_OK;
}
