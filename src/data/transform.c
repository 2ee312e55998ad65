/*
 * transform.c -- MindSpore's vision transforms on one image tensor, plus
 * user callbacks, as ref-counted sp_transform objects.
 *
 * Images are HWC (or HW) as MindSpore's transforms take them: crop, flip
 * and resize treat the last axis of a 3-d tensor as channels and move
 * whole pixels; HWC2CHW is where the layout changes for the network.
 * Inputs may be any layout (a strided view from a source): each transform
 * reads through a contiguous copy when it needs one and returns a
 * contiguous tensor.  That result may share memory with its input when no
 * copy is needed (HWC2CHW of an HW or one-channel image); nothing in the
 * pipeline writes a tensor it did not just allocate, so sharing is safe.
 * Rescale and Normalize write in place into the fresh tensor that
 * sp_tensor_cast always returns.
 *
 * Randomness is a pure function of (seed, counter): one Philox 4x32-10
 * block gives four 32-bit lanes; RandomCrop draws lanes 0 and 1 (row and
 * column offsets), RandomHorizontalFlip lane 2.  A map gives each
 * transform its own seed and each row its own counter, so the same
 * pipeline gives the same crops and flips with 1 worker or 16.
 *
 * Arithmetic follows MindSpore's definitions: Rescale and Normalize
 * compute in float32 and return float32; Resize interpolates in double
 * with half-pixel centres (OpenCV's INTER_LINEAR geometry) and rounds
 * integer results to nearest, saturating; crop and flip copy bytes, so
 * they keep any dtype exactly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/philox.h"
#include "data/data_internal.h"

typedef enum tf_kind {
    TF_RESCALE,
    TF_NORMALIZE,
    TF_HWC2CHW,
    TF_RANDOM_CROP,
    TF_RANDOM_HFLIP,
    TF_RESIZE,
    TF_TYPE_CAST,
    TF_CALLBACK
} tf_kind;

#define TF_MAX_CHANNELS 64

struct sp_transform {
    int refcount;
    tf_kind kind;
    int ncols;
    double a, b;                 /* rescale/shift; flip prob; crop fill */
    int nch;                     /* normalize */
    float mean[TF_MAX_CHANNELS], std_[TF_MAX_CHANNELS];
    int64_t h, w, pad[4];        /* crop, resize */
    int pad_if_needed;
    sp_interp interp;
    sp_dtype dtype;              /* type cast */
    sp_transform_fn fn;          /* callback */
    void *ctx;
    void (*free_ctx)(void *ctx);
};

static sp_transform *tf_new(tf_kind kind) {
    sp_transform *t = calloc(1, sizeof *t);
    if (!t) {
        sp_error(SP_ERR_NOMEM, "transform: out of memory");
        return NULL;
    }
    t->refcount = 1;
    t->kind = kind;
    t->ncols = 1;
    return t;
}

static const char *tf_name(const sp_transform *t) {
    switch (t->kind) {
    case TF_RESCALE: return "Rescale";
    case TF_NORMALIZE: return "Normalize";
    case TF_HWC2CHW: return "HWC2CHW";
    case TF_RANDOM_CROP: return "RandomCrop";
    case TF_RANDOM_HFLIP: return "RandomHorizontalFlip";
    case TF_RESIZE: return "Resize";
    case TF_TYPE_CAST: return "TypeCast";
    case TF_CALLBACK: return "callback transform";
    }
    return "transform";
}

sp_transform *sp_transform_rescale(double rescale, double shift) {
    if (!isfinite(rescale) || !isfinite(shift)) {
        sp_error(SP_ERR_ARG, "Rescale: rescale and shift must be finite");
        return NULL;
    }
    sp_transform *t = tf_new(TF_RESCALE);
    if (t) t->a = rescale, t->b = shift;
    return t;
}

sp_transform *sp_transform_normalize(int n, const double *mean, const double *std) {
    if (n < 1 || n > TF_MAX_CHANNELS || !mean || !std) {
        sp_error(SP_ERR_ARG, "Normalize: need 1 to %d mean and std values, got %d",
                 TF_MAX_CHANNELS, n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!(std[i] != 0) || !isfinite(std[i]) || !isfinite(mean[i])) {
            sp_error(SP_ERR_ARG, "Normalize: std[%d] = %g; std must be finite and nonzero", i,
                     std[i]);
            return NULL;
        }
    sp_transform *t = tf_new(TF_NORMALIZE);
    if (!t) return NULL;
    t->nch = n;
    for (int i = 0; i < n; i++) {
        t->mean[i] = (float)mean[i];
        t->std_[i] = (float)std[i]; /* divided, not multiplied: numpy's (x - m) / s */
    }
    return t;
}

sp_transform *sp_transform_hwc2chw(void) { return tf_new(TF_HWC2CHW); }

sp_transform *sp_transform_random_crop(int64_t h, int64_t w, const int64_t padding[4],
                                       int pad_if_needed, double fill) {
    if (h < 1 || w < 1) {
        sp_error(SP_ERR_ARG, "RandomCrop: size (%lld, %lld) must be positive", (long long)h,
                 (long long)w);
        return NULL;
    }
    for (int i = 0; padding && i < 4; i++)
        if (padding[i] < 0 || padding[i] > (1 << 20)) {
            sp_error(SP_ERR_ARG, "RandomCrop: padding %lld out of range [0, 2^20]",
                     (long long)padding[i]);
            return NULL;
        }
    sp_transform *t = tf_new(TF_RANDOM_CROP);
    if (!t) return NULL;
    t->h = h, t->w = w, t->pad_if_needed = pad_if_needed != 0, t->a = fill;
    for (int i = 0; i < 4; i++) t->pad[i] = padding ? padding[i] : 0;
    return t;
}

sp_transform *sp_transform_random_horizontal_flip(double prob) {
    if (!(prob >= 0 && prob <= 1)) {
        sp_error(SP_ERR_ARG, "RandomHorizontalFlip: prob %g is not in [0, 1]", prob);
        return NULL;
    }
    sp_transform *t = tf_new(TF_RANDOM_HFLIP);
    if (t) t->a = prob;
    return t;
}

sp_transform *sp_transform_resize(int64_t h, int64_t w, sp_interp interp) {
    if (h < 1 || h > (1 << 20) || w > (1 << 20) ||
        (interp != SP_INTERP_BILINEAR && interp != SP_INTERP_NEAREST)) {
        sp_error(SP_ERR_ARG, "Resize: bad size (%lld, %lld) or interpolation %d", (long long)h,
                 (long long)w, (int)interp);
        return NULL;
    }
    sp_transform *t = tf_new(TF_RESIZE);
    if (t) t->h = h, t->w = w, t->interp = interp;
    return t;
}

sp_transform *sp_transform_type_cast(sp_dtype dtype) {
    if ((unsigned)dtype >= SP_DTYPE_COUNT) {
        sp_error(SP_ERR_DTYPE, "TypeCast: invalid dtype %d", (int)dtype);
        return NULL;
    }
    sp_transform *t = tf_new(TF_TYPE_CAST);
    if (t) t->dtype = dtype;
    return t;
}

sp_transform *sp_transform_callback(int ncols, sp_transform_fn fn, void *ctx,
                                     void (*free_ctx)(void *ctx)) {
    if (ncols < 1 || ncols > SP_DATA_MAX_COLUMNS || !fn) {
        sp_error(SP_ERR_ARG, "callback transform: need a function and 1 to %d columns, got %d",
                 SP_DATA_MAX_COLUMNS, ncols);
        return NULL;
    }
    sp_transform *t = tf_new(TF_CALLBACK);
    if (!t) return NULL;
    t->ncols = ncols, t->fn = fn, t->ctx = ctx, t->free_ctx = free_ctx;
    return t;
}

void sp_transform_retain(sp_transform *t) {
    if (t) sp_ref_inc(&t->refcount);
}

void sp_transform_release(sp_transform *t) {
    if (!t || sp_ref_dec(&t->refcount) > 0) return;
    if (t->free_ctx) t->free_ctx(t->ctx);
    free(t);
}

int sp_transform_num_columns(const sp_transform *t) { return t ? t->ncols : 0; }

/* ---- the transforms ---- */

/* Checks that x is an HW or HWC image and reads its size. */
static sp_status tf_image_dims(const sp_transform *t, const sp_tensor *x, int64_t *H, int64_t *W,
                               int64_t *C) {
    if (x->ndim != 2 && x->ndim != 3) {
        char sh[160];
        return sp_error(SP_ERR_SHAPE, "%s: expects an HW or HWC image, got shape %s", tf_name(t),
                        sp_shape_str(x->ndim, x->shape, sh, sizeof sh));
    }
    *H = x->shape[0];
    *W = x->shape[1];
    *C = x->ndim == 3 ? x->shape[2] : 1;
    return SP_OK;
}

/* A contiguous CPU version of x (a new reference). */
static sp_status tf_contig(const sp_transform *t, sp_tensor *x, sp_tensor **out) {
    if (x->buf->device.type != SP_DEVICE_CPU)
        return sp_error(SP_ERR_DEVICE, "%s: data pipeline tensors must be on the CPU",
                        tf_name(t));
    return sp_tensor_contiguous(x, out);
}

static sp_status tf_rescale(const sp_transform *t, sp_tensor *x, sp_tensor **out) {
    sp_status st = sp_tensor_cast(x, SP_F32, out);
    if (st != SP_OK) return st;
    float *p = sp_tensor_data(*out), r = (float)t->a, s = (float)t->b;
    int64_t n = sp_tensor_numel(*out);
    for (int64_t i = 0; i < n; i++) p[i] = p[i] * r + s;
    return SP_OK;
}

static sp_status tf_normalize(const sp_transform *t, sp_tensor *x, sp_tensor **out) {
    int64_t H = 0, W = 0, C = 0;
    sp_status st = tf_image_dims(t, x, &H, &W, &C);
    if (st != SP_OK) return st;
    if (C != t->nch) {
        char sh[160];
        return sp_error(SP_ERR_SHAPE,
                        "Normalize: image of shape %s has %lld channels, mean and std have %d",
                        sp_shape_str(x->ndim, x->shape, sh, sizeof sh), (long long)C, t->nch);
    }
    if ((st = sp_tensor_cast(x, SP_F32, out)) != SP_OK) return st;
    float *p = sp_tensor_data(*out);
    for (int64_t i = 0, n = H * W; i < n; i++)
        for (int64_t c = 0; c < C; c++) p[i * C + c] = (p[i * C + c] - t->mean[c]) / t->std_[c];
    return SP_OK;
}

static sp_status tf_hwc2chw(const sp_transform *t, sp_tensor *x, sp_tensor **out) {
    int64_t H = 0, W = 0, C = 0;
    sp_status st = tf_image_dims(t, x, &H, &W, &C);
    if (st != SP_OK) return st;
    if (x->ndim == 2) return tf_contig(t, x, out);
    static const int perm[3] = {2, 0, 1};
    sp_tensor *v;
    if ((st = sp_tensor_permute(x, perm, &v)) != SP_OK) return st;
    /* sp_tensor_contiguous would hand back v itself if it happened to be
     * contiguous (C == 1): fine, it is still a fresh view */
    st = tf_contig(t, v, out);
    sp_tensor_release(v);
    return st;
}

/* Lane `lane` of the Philox block for (seed, counter). */
static uint32_t tf_draw(uint64_t seed, uint64_t counter, int lane) {
    uint32_t r[4];
    core_philox_block(seed, 0, counter, r);
    return r[lane];
}

/* uniform integer in [0, n) from a 32-bit draw (n <= 2^32) */
static int64_t tf_below(uint32_t u, int64_t n) { return (int64_t)(((uint64_t)u * (uint64_t)n) >> 32); }

static sp_status tf_random_crop(const sp_transform *t, sp_tensor *x, sp_tensor **out,
                                uint64_t seed, uint64_t counter) {
    int64_t H = 0, W = 0, C = 0;
    sp_status st = tf_image_dims(t, x, &H, &W, &C);
    if (st != SP_OK) return st;
    int64_t left = t->pad[0], top = t->pad[1], right = t->pad[2], bottom = t->pad[3];
    int64_t PH = H + top + bottom, PW = W + left + right;
    if (t->pad_if_needed) {
        if (PH < t->h) {
            int64_t e = t->h - PH;
            top += e / 2, bottom += e - e / 2, PH = t->h;
        }
        if (PW < t->w) {
            int64_t e = t->w - PW;
            left += e / 2, right += e - e / 2, PW = t->w;
        }
    }
    if (PH < t->h || PW < t->w)
        return sp_error(SP_ERR_SHAPE,
                        "RandomCrop: crop size (%lld, %lld) is larger than the padded image "
                        "(%lld, %lld); set pad_if_needed or pad more",
                        (long long)t->h, (long long)t->w, (long long)PH, (long long)PW);
    int64_t y0 = tf_below(tf_draw(seed, counter, 0), PH - t->h + 1);
    int64_t x0 = tf_below(tf_draw(seed, counter, 1), PW - t->w + 1);
    sp_tensor *c;
    if ((st = tf_contig(t, x, &c)) != SP_OK) return st;
    int64_t shape[3] = {t->h, t->w, C};
    sp_tensor *o = sp_tensor_new(x->dtype, x->ndim, shape, SP_CPU);
    if (!o) {
        sp_tensor_release(c);
        return sp_last_status();
    }
    size_t px = (size_t)C * sp_dtype_size(x->dtype);
    uint8_t fillpx[8 * TF_MAX_CHANNELS], *fillbuf = NULL;
    const uint8_t *fp = fillpx;
    if (px > sizeof fillpx) {
        fillbuf = malloc(px);
        if (!fillbuf) {
            sp_tensor_release(c);
            sp_tensor_release(o);
            return sp_error(SP_ERR_NOMEM, "RandomCrop: out of memory");
        }
        fp = fillbuf;
    }
    uint8_t *fw = fillbuf ? fillbuf : fillpx;
    for (int64_t k = 0; k < C; k++)
        sp_store_f64(x->dtype, fw + (size_t)k * sp_dtype_size(x->dtype), t->a);
    const uint8_t *src = sp_tensor_data(c);
    uint8_t *dst = sp_tensor_data(o);
    for (int64_t i = 0; i < t->h; i++) {
        int64_t sy = y0 + i - top;
        for (int64_t j = 0; j < t->w; j++) {
            int64_t sx = x0 + j - left;
            uint8_t *d = dst + ((size_t)(i * t->w + j)) * px;
            if (sy >= 0 && sy < H && sx >= 0 && sx < W) memcpy(d, src + (size_t)(sy * W + sx) * px, px);
            else memcpy(d, fp, px);
        }
    }
    free(fillbuf);
    sp_tensor_release(c);
    *out = o;
    return SP_OK;
}

static sp_status tf_random_hflip(const sp_transform *t, sp_tensor *x, sp_tensor **out,
                                 uint64_t seed, uint64_t counter) {
    int64_t H = 0, W = 0, C = 0;
    sp_status st = tf_image_dims(t, x, &H, &W, &C);
    if (st != SP_OK) return st;
    int flip = core_u01(tf_draw(seed, counter, 2)) < t->a;
    sp_tensor *c;
    if ((st = tf_contig(t, x, &c)) != SP_OK) return st;
    sp_tensor *o = sp_tensor_new(x->dtype, x->ndim, x->shape, SP_CPU);
    if (!o) {
        sp_tensor_release(c);
        return sp_last_status();
    }
    size_t px = (size_t)C * sp_dtype_size(x->dtype);
    const uint8_t *src = sp_tensor_data(c);
    uint8_t *dst = sp_tensor_data(o);
    if (!flip) memcpy(dst, src, sp_tensor_nbytes(o));
    else
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++)
                memcpy(dst + (size_t)(i * W + j) * px, src + (size_t)(i * W + (W - 1 - j)) * px, px);
    sp_tensor_release(c);
    *out = o;
    return SP_OK;
}

/* Stores v into an element of dtype d the way OpenCV's saturate_cast does
 * for integers: round to nearest, clamp to the type's range. */
static void tf_store_sat(sp_dtype d, void *p, double v) {
    double lo, hi;
    switch (d) {
    case SP_U8: lo = 0, hi = 255; break;
    case SP_I8: lo = -128, hi = 127; break;
    case SP_I32: lo = -2147483648.0, hi = 2147483647.0; break;
    case SP_I64: lo = -9.2233720368547758e18, hi = 9.2233720368547748e18; break;
    case SP_BOOL: lo = 0, hi = 1; break;
    default: sp_store_f64(d, p, v); return;
    }
    v = floor(v + 0.5);
    if (!(v >= lo)) v = lo; /* NaN too */
    if (v > hi) v = hi;
    sp_store_f64(d, p, v);
}

/* Source coordinate and weight along one axis (half-pixel centres). */
static void tf_linear_coord(int64_t o, int64_t in, int64_t outn, int64_t *i0, int64_t *i1,
                            double *f) {
    double s = ((double)o + 0.5) * (double)in / (double)outn - 0.5;
    if (s < 0) s = 0;
    int64_t a = (int64_t)floor(s);
    if (a >= in - 1) {
        *i0 = *i1 = in - 1;
        *f = 0;
        return;
    }
    *i0 = a;
    *i1 = a + 1;
    *f = s - (double)a;
}

static sp_status tf_resize(const sp_transform *t, sp_tensor *x, sp_tensor **out) {
    int64_t H = 0, W = 0, C = 0;
    sp_status st = tf_image_dims(t, x, &H, &W, &C);
    if (st != SP_OK) return st;
    if (H < 1 || W < 1)
        return sp_error(SP_ERR_SHAPE, "Resize: cannot resize an empty image (%lld, %lld)",
                        (long long)H, (long long)W);
    int64_t oh = t->h, ow = t->w;
    if (ow <= 0) { /* the shorter side becomes h, the aspect ratio stays */
        if (H <= W) oh = t->h, ow = (int64_t)((double)t->h * (double)W / (double)H);
        else ow = t->h, oh = (int64_t)((double)t->h * (double)H / (double)W);
        if (oh < 1) oh = 1;
        if (ow < 1) ow = 1;
        if (oh > (1 << 20) || ow > (1 << 20))
            return sp_error(SP_ERR_SHAPE, "Resize: output (%lld, %lld) is too large",
                            (long long)oh, (long long)ow);
    }
    sp_tensor *c;
    if ((st = tf_contig(t, x, &c)) != SP_OK) return st;
    int64_t shape[3] = {oh, ow, C};
    sp_tensor *o = sp_tensor_new(x->dtype, x->ndim, shape, SP_CPU);
    if (!o) {
        sp_tensor_release(c);
        return sp_last_status();
    }
    sp_dtype d = x->dtype;
    size_t is = sp_dtype_size(d);
    const uint8_t *src = sp_tensor_data(c);
    uint8_t *dst = sp_tensor_data(o);
    for (int64_t i = 0; i < oh; i++) {
        int64_t y0, y1;
        double fy;
        if (t->interp == SP_INTERP_NEAREST) {
            y0 = y1 = (int64_t)floor((double)i * (double)H / (double)oh);
            if (y0 > H - 1) y0 = y1 = H - 1;
            fy = 0;
        } else {
            tf_linear_coord(i, H, oh, &y0, &y1, &fy);
        }
        for (int64_t j = 0; j < ow; j++) {
            int64_t x0, x1;
            double fx;
            if (t->interp == SP_INTERP_NEAREST) {
                x0 = x1 = (int64_t)floor((double)j * (double)W / (double)ow);
                if (x0 > W - 1) x0 = x1 = W - 1;
                fx = 0;
            } else {
                tf_linear_coord(j, W, ow, &x0, &x1, &fx);
            }
            for (int64_t k = 0; k < C; k++) {
                double a = sp_load_f64(d, src + ((size_t)((y0 * W + x0) * C + k)) * is);
                double b = sp_load_f64(d, src + ((size_t)((y0 * W + x1) * C + k)) * is);
                double e = sp_load_f64(d, src + ((size_t)((y1 * W + x0) * C + k)) * is);
                double g = sp_load_f64(d, src + ((size_t)((y1 * W + x1) * C + k)) * is);
                double top = a + (b - a) * fx, bot = e + (g - e) * fx;
                double v = t->interp == SP_INTERP_NEAREST ? a : top + (bot - top) * fy;
                tf_store_sat(d, dst + ((size_t)((i * ow + j) * C + k)) * is, v);
            }
        }
    }
    sp_tensor_release(c);
    *out = o;
    return SP_OK;
}

sp_status sp_transform_apply(sp_transform *t, int n, sp_tensor *const *in, sp_tensor **out,
                             uint64_t seed, uint64_t counter) {
    if (!t || !in || !out) return sp_error(SP_ERR_ARG, "transform_apply: NULL argument");
    if (n != t->ncols)
        return sp_error(SP_ERR_ARG, "%s: takes %d column%s, got %d", tf_name(t), t->ncols,
                        t->ncols == 1 ? "" : "s", n);
    for (int i = 0; i < n; i++) {
        out[i] = NULL;
        if (!in[i]) return sp_error(SP_ERR_ARG, "%s: NULL input column %d", tf_name(t), i);
    }
    sp_tensor *x = in[0];
    if (t->kind != TF_CALLBACK && x->buf->device.type != SP_DEVICE_CPU)
        return sp_error(SP_ERR_DEVICE, "%s: data pipeline tensors must be on the CPU", tf_name(t));
    sp_status st;
    switch (t->kind) {
    case TF_RESCALE: st = tf_rescale(t, x, out); break;
    case TF_NORMALIZE: st = tf_normalize(t, x, out); break;
    case TF_HWC2CHW: st = tf_hwc2chw(t, x, out); break;
    case TF_RANDOM_CROP: st = tf_random_crop(t, x, out, seed, counter); break;
    case TF_RANDOM_HFLIP: st = tf_random_hflip(t, x, out, seed, counter); break;
    case TF_RESIZE: st = tf_resize(t, x, out); break;
    case TF_TYPE_CAST: st = sp_tensor_cast(x, t->dtype, out); break;
    case TF_CALLBACK:
        sp_clear_error();
        st = t->fn(t->ctx, n, in, out, seed, counter);
        if (st == SP_OK)
            for (int i = 0; i < n; i++)
                if (!out[i]) {
                    for (int k = 0; k < n; k++) {
                        sp_tensor_release(out[k]);
                        out[k] = NULL;
                    }
                    return sp_error(SP_ERR_RUNTIME,
                                    "callback transform: returned success without output column %d",
                                    i);
                }
        if (st != SP_OK) {
            for (int i = 0; i < n; i++) {
                sp_tensor_release(out[i]);
                out[i] = NULL;
            }
            if (!*sp_last_error())
                sp_error(st, "callback transform: failed with %s", sp_status_name(st));
        }
        return st;
    default: st = sp_error(SP_ERR_INTERNAL, "transform: unknown kind %d", (int)t->kind);
    }
    if (st != SP_OK) out[0] = NULL;
    return st;
}
