/*
 * norm.c -- CPU kernels for layer_norm and batch_norm, forward and backward.
 *
 * Layer norm sees x as M rows of D elements, D = prod(x.shape[axis:]); each
 * row is normalized on its own, so rows are split across the pool, and the
 * per-row mean and rstd = 1/sqrt(var + eps) (biased variance) are saved for
 * the backward:
 *
 *     y      = (x - mean) * rstd * gamma + beta
 *     dx     = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dy * gamma
 *     dgamma = sum_rows dy * xhat,   dbeta = sum_rows dy
 *
 * dgamma and dbeta reduce over rows, so that loop is split over columns
 * instead: each thread walks every row, in row order, for its own columns.
 *
 * Batch norm sees a contiguous x as [N, C, S] (S = prod(shape[2:]), 1 for a
 * 2-D input) and reduces over N and S per channel: the statistics loop is
 * split over channels and walks n-major so that [N, C] inputs read whole
 * rows; the elementwise loops are split over the N*C planes.  Training
 * normalizes with the biased batch variance and updates running_mean and
 * running_var in place, torch's rule r = (1-momentum)*r + momentum*batch with
 * the unbiased variance for running_var; it needs more than one value per
 * channel (torch refuses too).  Inference normalizes with the running stats
 * and returns them (as mean and rstd) in save_mean and save_rstd.
 *
 * Statistics are two-pass (mean, then squared deviations) in double; all
 * sums run in a fixed order, so results are identical with any thread count.
 * float16/bfloat16 inputs are widened to a float32 copy, computed by the
 * float32 code and rounded once into the outputs.  Small per-channel and
 * per-feature vectors (gamma, beta, saved stats) are read into double or
 * working-type arrays first, whatever their dtype or stride.
 */
#include "backend/cpu/nn_util.h"

/* Reads the n elements of t (any dtype and layout) as doubles into dst. */
static sp_status norm_read(sp_tensor *t, int64_t n, double *dst) {
    sp_tensor *c = NULL;
    sp_status st = sp_tensor_contiguous(t, &c);
    if (st) return st;
    const char *p = sp_tensor_data(c);
    size_t sz = sp_dtype_size(c->dtype);
    for (int64_t i = 0; i < n; i++) dst[i] = sp_load_f64(c->dtype, p + (size_t)i * sz);
    sp_tensor_release(c);
    return SP_OK;
}

/* Writes n doubles into t (contiguous output of any float dtype). */
static void norm_write(sp_tensor *t, int64_t n, const double *src) {
    char *p = sp_tensor_data(t);
    size_t sz = sp_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) sp_store_f64(t->dtype, p + (size_t)i * sz, src[i]);
}

/* ---- the shared context of every loop in this file ---- */

typedef struct norm_ctx {
    const void *x, *dy;
    void *y, *dx;
    const void *g, *b;           /* working-type gamma/beta (layer norm) */
    double *mean, *rstd;         /* per row (layer norm) or per channel (batch norm) */
    double *acc1, *acc2;         /* per column/channel sums */
    const double *scale, *shift; /* batch norm: per-channel affine of the apply loop */
    int64_t M, D;                /* layer norm: rows and row length */
    int64_t N, C, S;             /* batch norm: [N, C, S] */
    double eps;
    int training;
} norm_ctx;

#define CPU_NORM_IMPL(T, SUF)                                                                      \
    /* Row sums in eight double lanes (vectorizable, order fixed by the code). */                  \
    static double ln_sum_##SUF(const T *x, int64_t n) {                                            \
        double a8[8] = {0}, s = 0;                                                                 \
        int64_t k = 0;                                                                             \
        for (; k + 8 <= n; k += 8)                                                                 \
            for (int j = 0; j < 8; j++) a8[j] += x[k + j];                                         \
        for (int j = 0; j < 8; j++) s += a8[j];                                                    \
        for (; k < n; k++) s += x[k];                                                              \
        return s;                                                                                  \
    }                                                                                              \
                                                                                                   \
    static double ln_sqdev_##SUF(const T *x, int64_t n, double mean) {                             \
        double a8[8] = {0}, s = 0;                                                                 \
        int64_t k = 0;                                                                             \
        for (; k + 8 <= n; k += 8)                                                                 \
            for (int j = 0; j < 8; j++) {                                                          \
                double d = x[k + j] - mean;                                                        \
                a8[j] += d * d;                                                                    \
            }                                                                                      \
        for (int j = 0; j < 8; j++) s += a8[j];                                                    \
        for (; k < n; k++) s += (x[k] - mean) * (x[k] - mean);                                     \
        return s;                                                                                  \
    }                                                                                              \
                                                                                                   \
    /* sum g_k and sum g_k*xhat_k with g = dy*gamma, xhat = (x - mt)*rt. */                        \
    static void ln_dots_##SUF(const T *dy, const T *g, const T *x, T mt, T rt, int64_t n,          \
                              double *sg, double *sgx) {                                           \
        double a8[8] = {0}, b8[8] = {0};                                                           \
        int64_t k = 0;                                                                             \
        for (; k + 8 <= n; k += 8)                                                                 \
            for (int j = 0; j < 8; j++) {                                                          \
                T gk = dy[k + j] * g[k + j];                                                       \
                a8[j] += gk;                                                                       \
                b8[j] += gk * ((x[k + j] - mt) * rt);                                              \
            }                                                                                      \
        double s1 = 0, s2 = 0;                                                                     \
        for (int j = 0; j < 8; j++) {                                                              \
            s1 += a8[j];                                                                           \
            s2 += b8[j];                                                                           \
        }                                                                                          \
        for (; k < n; k++) {                                                                       \
            T gk = dy[k] * g[k];                                                                   \
            s1 += gk;                                                                              \
            s2 += gk * ((x[k] - mt) * rt);                                                         \
        }                                                                                          \
        *sg = s1;                                                                                  \
        *sgx = s2;                                                                                 \
    }                                                                                              \
                                                                                                   \
    static void ln_fwd_##SUF(void *vc, int64_t r0, int64_t r1) {                                   \
        norm_ctx *c = vc;                                                                          \
        const T *g = c->g, *b = c->b;                                                              \
        int64_t D = c->D;                                                                          \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const T *x = (const T *)c->x + r * D;                                                  \
            T *y = (T *)c->y + r * D;                                                              \
            double mean = ln_sum_##SUF(x, D) / (double)D;                                          \
            double rstd = 1.0 / sqrt(ln_sqdev_##SUF(x, D, mean) / (double)D + c->eps);             \
            c->mean[r] = mean;                                                                     \
            c->rstd[r] = rstd;                                                                     \
            T mt = (T)mean, rt = (T)rstd;                                                          \
            for (int64_t k = 0; k < D; k++) y[k] = (x[k] - mt) * rt * g[k] + b[k];                 \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static void ln_bwd_dx_##SUF(void *vc, int64_t r0, int64_t r1) {                                \
        norm_ctx *c = vc;                                                                          \
        const T *g = c->g;                                                                         \
        int64_t D = c->D;                                                                          \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const T *x = (const T *)c->x + r * D, *dy = (const T *)c->dy + r * D;                  \
            T *dx = (T *)c->dx + r * D;                                                            \
            T mt = (T)c->mean[r], rt = (T)c->rstd[r];                                              \
            double sg, sgx;                                                                        \
            ln_dots_##SUF(dy, g, x, mt, rt, D, &sg, &sgx);                                         \
            T a = (T)(sg / (double)D), bb = (T)(sgx / (double)D);                                  \
            for (int64_t k = 0; k < D; k++)                                                        \
                dx[k] = rt * (dy[k] * g[k] - a - (x[k] - mt) * rt * bb);                           \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* Columns [k0, k1): dgamma into acc1, dbeta into acc2. */                                     \
    static void ln_bwd_dgb_##SUF(void *vc, int64_t k0, int64_t k1) {                               \
        norm_ctx *c = vc;                                                                          \
        int64_t D = c->D;                                                                          \
        double *dg = c->acc1, *db = c->acc2;                                                       \
        for (int64_t k = k0; k < k1; k++) dg[k] = db[k] = 0;                                       \
        for (int64_t r = 0; r < c->M; r++) {                                                       \
            const T *x = (const T *)c->x + r * D, *dy = (const T *)c->dy + r * D;                  \
            T mt = (T)c->mean[r], rt = (T)c->rstd[r];                                              \
            for (int64_t k = k0; k < k1; k++) {                                                    \
                dg[k] += dy[k] * ((x[k] - mt) * rt);                                               \
                db[k] += dy[k];                                                                    \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* Channels [c0, c1): acc1 = sum x (then mean), acc2 = sum (x - mean)^2. */                    \
    static void bn_stats_##SUF(void *vc, int64_t c0, int64_t c1) {                                 \
        norm_ctx *c = vc;                                                                          \
        int64_t C = c->C, S = c->S;                                                                \
        const T *x = c->x;                                                                         \
        for (int64_t ch = c0; ch < c1; ch++) c->acc1[ch] = c->acc2[ch] = 0;                        \
        for (int64_t n = 0; n < c->N; n++)                                                         \
            for (int64_t ch = c0; ch < c1; ch++) {                                                 \
                const T *p = x + (n * C + ch) * S;                                                 \
                double s = c->acc1[ch];                                                            \
                for (int64_t i = 0; i < S; i++) s += p[i];                                         \
                c->acc1[ch] = s;                                                                   \
            }                                                                                      \
        double cnt = (double)(c->N * S);                                                           \
        for (int64_t ch = c0; ch < c1; ch++) c->acc1[ch] /= cnt;                                   \
        for (int64_t n = 0; n < c->N; n++)                                                         \
            for (int64_t ch = c0; ch < c1; ch++) {                                                 \
                const T *p = x + (n * C + ch) * S;                                                 \
                double m = c->acc1[ch], s = c->acc2[ch];                                           \
                for (int64_t i = 0; i < S; i++) {                                                  \
                    double d = p[i] - m;                                                           \
                    s += d * d;                                                                    \
                }                                                                                  \
                c->acc2[ch] = s;                                                                   \
            }                                                                                      \
    }                                                                                              \
                                                                                                   \
    /* Planes [p0, p1) of [N*C, S]: y = x*scale[c] + shift[c]. */                                  \
    static void bn_apply_##SUF(void *vc, int64_t p0, int64_t p1) {                                 \
        norm_ctx *c = vc;                                                                          \
        int64_t S = c->S;                                                                          \
        for (int64_t p = p0; p < p1; p++) {                                                        \
            int64_t ch = p % c->C;                                                                 \
            const T *x = (const T *)c->x + p * S;                                                  \
            T *y = (T *)c->y + p * S;                                                              \
            T a = (T)c->scale[ch], b = (T)c->shift[ch];                                            \
            for (int64_t i = 0; i < S; i++) y[i] = x[i] * a + b;                                   \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* Channels [c0, c1): acc1 = sum dy, acc2 = sum dy * (x - mean). */                            \
    static void bn_bwd_sums_##SUF(void *vc, int64_t c0, int64_t c1) {                              \
        norm_ctx *c = vc;                                                                          \
        int64_t C = c->C, S = c->S;                                                                \
        for (int64_t ch = c0; ch < c1; ch++) c->acc1[ch] = c->acc2[ch] = 0;                        \
        for (int64_t n = 0; n < c->N; n++)                                                         \
            for (int64_t ch = c0; ch < c1; ch++) {                                                 \
                const T *x = (const T *)c->x + (n * C + ch) * S;                                   \
                const T *dy = (const T *)c->dy + (n * C + ch) * S;                                 \
                double m = c->mean[ch], s1 = c->acc1[ch], s2 = c->acc2[ch];                        \
                for (int64_t i = 0; i < S; i++) {                                                  \
                    s1 += dy[i];                                                                   \
                    s2 += dy[i] * (x[i] - m);                                                      \
                }                                                                                  \
                c->acc1[ch] = s1;                                                                  \
                c->acc2[ch] = s2;                                                                  \
            }                                                                                      \
    }                                                                                              \
                                                                                                   \
    /* Planes [p0, p1): training dx = scale*(dy - shift - (x-mean)*k) with       \
     * scale = gamma*rstd, shift = mean(dy), k = rstd^2 * mean(dy*(x-mean));   \
     * inference dx = dy*gamma*rstd (scale only). */                 \
    static void bn_bwd_dx_##SUF(void *vc, int64_t p0, int64_t p1) {                                \
        norm_ctx *c = vc;                                                                          \
        int64_t S = c->S;                                                                          \
        for (int64_t p = p0; p < p1; p++) {                                                        \
            int64_t ch = p % c->C;                                                                 \
            const T *x = (const T *)c->x + p * S, *dy = (const T *)c->dy + p * S;                  \
            T *dx = (T *)c->dx + p * S;                                                            \
            T a = (T)c->scale[ch];                                                                 \
            if (c->training) {                                                                     \
                T mdy = (T)c->shift[ch], m = (T)c->mean[ch], k = (T)c->acc2[ch];                   \
                for (int64_t i = 0; i < S; i++) dx[i] = a * (dy[i] - mdy - (x[i] - m) * k);        \
            } else {                                                                               \
                for (int64_t i = 0; i < S; i++) dx[i] = dy[i] * a;                                 \
            }                                                                                      \
        }                                                                                          \
    }

CPU_NORM_IMPL(float, f32)
CPU_NORM_IMPL(double, f64)

/* Copies n doubles into a new array of the working type (float or double). */
static void *norm_vec_as(int is64, const double *src, int64_t n) {
    void *p = malloc((size_t)(n ? n : 1) * (is64 ? sizeof(double) : sizeof(float)));
    if (!p) return NULL;
    for (int64_t i = 0; i < n; i++) {
        if (is64)
            ((double *)p)[i] = src[i];
        else
            ((float *)p)[i] = (float)src[i];
    }
    return p;
}

/* The normalized axis of layer norm, checked against x; rows and row length. */
static sp_status ln_axis(const char *op, const sp_kernel_args *a, const sp_tensor *x, int64_t *M,
                         int64_t *D) {
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    char sb[128];
    if (x->ndim == 0 || axis < -x->ndim || axis >= x->ndim)
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for shape %s", op, (long long)axis,
                        sp_shape_str(x->ndim, x->shape, sb, sizeof sb));
    int ax = (int)(axis < 0 ? axis + x->ndim : axis);
    *M = cpu_nn_prod(x->shape, 0, ax);
    *D = cpu_nn_prod(x->shape, ax, x->ndim);
    return SP_OK;
}

/* Fails unless t has n elements (a cheap guard of raw-memory loops). */
static sp_status norm_need(const char *op, const char *what, const sp_tensor *t, int64_t n) {
    char sb[128];
    if (sp_tensor_numel(t) != n)
        return sp_error(SP_ERR_SHAPE, "%s: %s of shape %s should have %lld elements", op, what,
                        sp_shape_str(t->ndim, t->shape, sb, sizeof sb), (long long)n);
    return SP_OK;
}

/* ---- layer norm ---- */

sp_status cpu_layer_norm(const sp_kernel_args *a) {
    const char *op = "layer_norm";
    sp_tensor *x = NULL, *y = NULL;
    double *stats = NULL, *gb = NULL;
    void *g = NULL, *b = NULL;
    int64_t M = 0, D = 0;
    sp_status st = ln_axis(op, a, a->in[0], &M, &D);
    if (st) return st;
    if ((st = norm_need(op, "gamma", a->in[1], D)) || (st = norm_need(op, "beta", a->in[2], D)) ||
        (st = norm_need(op, "mean", a->out[1], M)) || (st = norm_need(op, "rstd", a->out[2], M)))
        return st;
    if ((st = cpu_nn_stage_in(a->in[0], &x)) || (st = cpu_nn_stage_out(a->out[0], &y))) goto done;
    int is64 = x->dtype == SP_F64;
    stats = malloc((size_t)(2 * M + 1) * sizeof(double));
    gb = malloc((size_t)(2 * D + 1) * sizeof(double));
    if (!stats || !gb) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    if ((st = norm_read(a->in[1], D, gb)) || (st = norm_read(a->in[2], D, gb + D))) goto done;
    g = norm_vec_as(is64, gb, D);
    b = norm_vec_as(is64, gb + D, D);
    if (!g || !b) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    norm_ctx c = {.x = sp_tensor_data(x),
                  .y = sp_tensor_data(y),
                  .g = g,
                  .b = b,
                  .mean = stats,
                  .rstd = stats + M,
                  .M = M,
                  .D = D,
                  .eps = sp_attrs_get_float(a->attrs, "epsilon", 1e-5)};
    sp_parallel_for(M, cpu_nn_grain(D), is64 ? ln_fwd_f64 : ln_fwd_f32, &c);
    norm_write(a->out[1], M, c.mean);
    norm_write(a->out[2], M, c.rstd);
done:
    st = cpu_nn_stage_done(a->out[0], y, st);
    sp_tensor_release(x);
    free(stats);
    free(gb);
    free(g);
    free(b);
    return st;
}

sp_status cpu_layer_norm_backward(const sp_kernel_args *a) {
    const char *op = "layer_norm_backward";
    sp_tensor *dy = NULL, *x = NULL, *dx = NULL;
    double *buf = NULL;
    void *g = NULL;
    int64_t M = 0, D = 0;
    sp_status st = ln_axis(op, a, a->in[1], &M, &D);
    if (st) return st;
    if ((st = norm_need(op, "dy", a->in[0], M * D)) || (st = norm_need(op, "gamma", a->in[2], D)) ||
        (st = norm_need(op, "mean", a->in[3], M)) || (st = norm_need(op, "rstd", a->in[4], M)) ||
        (st = norm_need(op, "dgamma", a->out[1], D)) || (st = norm_need(op, "dbeta", a->out[2], D)))
        return st;
    if (a->in[0]->dtype != a->in[1]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dy is %s but x is %s", op,
                        sp_dtype_name(a->in[0]->dtype), sp_dtype_name(a->in[1]->dtype));
    if ((st = cpu_nn_stage_in(a->in[0], &dy)) || (st = cpu_nn_stage_in(a->in[1], &x)) ||
        (st = cpu_nn_stage_out(a->out[0], &dx)))
        goto done;
    int is64 = x->dtype == SP_F64;
    /* buf: mean[M], rstd[M], gamma[D], dgamma[D], dbeta[D] */
    buf = malloc((size_t)(2 * M + 3 * D + 1) * sizeof(double));
    if (!buf) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    double *mean = buf, *rstd = buf + M, *gd = buf + 2 * M, *dg = gd + D, *db = dg + D;
    if ((st = norm_read(a->in[3], M, mean)) || (st = norm_read(a->in[4], M, rstd)) ||
        (st = norm_read(a->in[2], D, gd)))
        goto done;
    if (!(g = norm_vec_as(is64, gd, D))) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    norm_ctx c = {.x = sp_tensor_data(x),
                  .dy = sp_tensor_data(dy),
                  .dx = sp_tensor_data(dx),
                  .g = g,
                  .mean = mean,
                  .rstd = rstd,
                  .acc1 = dg,
                  .acc2 = db,
                  .M = M,
                  .D = D};
    sp_parallel_for(M, cpu_nn_grain(D), is64 ? ln_bwd_dx_f64 : ln_bwd_dx_f32, &c);
    int64_t cgrain = cpu_nn_grain(M);
    sp_parallel_for(D, cgrain < 16 ? 16 : cgrain, is64 ? ln_bwd_dgb_f64 : ln_bwd_dgb_f32, &c);
    norm_write(a->out[1], D, dg);
    norm_write(a->out[2], D, db);
done:
    st = cpu_nn_stage_done(a->out[0], dx, st);
    sp_tensor_release(dy);
    sp_tensor_release(x);
    free(buf);
    free(g);
    return st;
}

/* ---- batch norm ---- */

/* Checks x [N, C, ...] and fills N, C, S. */
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
    *S = cpu_nn_prod(x->shape, 2, x->ndim);
    return SP_OK;
}

sp_status cpu_batch_norm(const sp_kernel_args *a) {
    const char *op = "batch_norm";
    sp_tensor *x = NULL, *rm = a->in[3], *rv = a->in[4];
    double *buf = NULL;
    int64_t N = 0, C = 0, S = 0;
    sp_status st = bn_dims(op, a->in[0], &N, &C, &S);
    if (st) return st;
    if ((st = norm_need(op, "gamma", a->in[1], C)) || (st = norm_need(op, "beta", a->in[2], C)) ||
        (st = norm_need(op, "running_mean", rm, C)) || (st = norm_need(op, "running_var", rv, C)) ||
        (st = norm_need(op, "save_mean", a->out[1], C)) ||
        (st = norm_need(op, "save_rstd", a->out[2], C)))
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
    if ((st = sp_tensor_contiguous(a->in[0], &x))) return st;
    int is64 = x->dtype == SP_F64;
    /* buf: gamma, beta, mean, rstd, acc1, acc2, scale, shift, each [C] */
    buf = malloc((size_t)(8 * C + 1) * sizeof(double));
    if (!buf) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    double *gam = buf, *bet = buf + C, *mean = buf + 2 * C, *rstd = buf + 3 * C;
    double *acc1 = buf + 4 * C, *acc2 = buf + 5 * C, *scale = buf + 6 * C, *shift = buf + 7 * C;
    if ((st = norm_read(a->in[1], C, gam)) || (st = norm_read(a->in[2], C, bet))) goto done;
    norm_ctx c = {.x = sp_tensor_data(x),
                  .y = sp_tensor_data(a->out[0]),
                  .mean = mean,
                  .rstd = rstd,
                  .acc1 = acc1,
                  .acc2 = acc2,
                  .scale = scale,
                  .shift = shift,
                  .N = N,
                  .C = C,
                  .S = S,
                  .eps = eps,
                  .training = training};
    if (training) {
        sp_parallel_for(C, cpu_nn_grain(count), is64 ? bn_stats_f64 : bn_stats_f32, &c);
        for (int64_t ch = 0; ch < C; ch++) {
            mean[ch] = acc1[ch];
            rstd[ch] = 1.0 / sqrt(acc2[ch] / (double)count + eps);
            double unbiased = acc2[ch] / (double)(count - 1);
            void *pm = cpu_nn_ptr(rm, ch), *pv = cpu_nn_ptr(rv, ch);
            sp_store_f64(rm->dtype, pm,
                         (1 - momentum) * sp_load_f64(rm->dtype, pm) + momentum * mean[ch]);
            sp_store_f64(rv->dtype, pv,
                         (1 - momentum) * sp_load_f64(rv->dtype, pv) + momentum * unbiased);
        }
    } else {
        for (int64_t ch = 0; ch < C; ch++) {
            mean[ch] = cpu_nn_at(rm, ch);
            rstd[ch] = 1.0 / sqrt(cpu_nn_at(rv, ch) + eps);
        }
    }
    /* torch's form: y = x*alpha + beta', alpha = gamma*rstd, beta' = beta - mean*alpha */
    for (int64_t ch = 0; ch < C; ch++) {
        scale[ch] = gam[ch] * rstd[ch];
        shift[ch] = bet[ch] - mean[ch] * scale[ch];
    }
    sp_parallel_for(N * C, cpu_nn_grain(S), is64 ? bn_apply_f64 : bn_apply_f32, &c);
    norm_write(a->out[1], C, mean);
    norm_write(a->out[2], C, rstd);
done:
    sp_tensor_release(x);
    free(buf);
    return st;
}

sp_status cpu_batch_norm_backward(const sp_kernel_args *a) {
    const char *op = "batch_norm_backward";
    sp_tensor *dy = NULL, *x = NULL;
    double *buf = NULL;
    int64_t N = 0, C = 0, S = 0;
    sp_status st = bn_dims(op, a->in[1], &N, &C, &S);
    if (st) return st;
    if ((st = norm_need(op, "dy", a->in[0], sp_tensor_numel(a->in[1]))) ||
        (st = norm_need(op, "gamma", a->in[2], C)) ||
        (st = norm_need(op, "save_mean", a->in[3], C)) ||
        (st = norm_need(op, "save_rstd", a->in[4], C)) ||
        (st = norm_need(op, "dgamma", a->out[1], C)) || (st = norm_need(op, "dbeta", a->out[2], C)))
        return st;
    if (a->in[0]->dtype != a->in[1]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dy is %s but x is %s", op,
                        sp_dtype_name(a->in[0]->dtype), sp_dtype_name(a->in[1]->dtype));
    int training = sp_attrs_get_int(a->attrs, "training", 1) != 0;
    if ((st = sp_tensor_contiguous(a->in[0], &dy)) || (st = sp_tensor_contiguous(a->in[1], &x)))
        goto done;
    int is64 = x->dtype == SP_F64;
    /* buf: gamma, mean, rstd, acc1 (sum dy), acc2, scale, shift, dgamma, each [C] */
    buf = malloc((size_t)(8 * C + 1) * sizeof(double));
    if (!buf) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory", op);
        goto done;
    }
    double *gam = buf, *mean = buf + C, *rstd = buf + 2 * C, *acc1 = buf + 3 * C;
    double *acc2 = buf + 4 * C, *scale = buf + 5 * C, *shift = buf + 6 * C, *dg = buf + 7 * C;
    if ((st = norm_read(a->in[2], C, gam)) || (st = norm_read(a->in[3], C, mean)) ||
        (st = norm_read(a->in[4], C, rstd)))
        goto done;
    int64_t count = N * S;
    norm_ctx c = {.x = sp_tensor_data(x),
                  .dy = sp_tensor_data(dy),
                  .dx = sp_tensor_data(a->out[0]),
                  .mean = mean,
                  .rstd = rstd,
                  .acc1 = acc1,
                  .acc2 = acc2,
                  .scale = scale,
                  .shift = shift,
                  .N = N,
                  .C = C,
                  .S = S,
                  .training = training};
    sp_parallel_for(C, cpu_nn_grain(count), is64 ? bn_bwd_sums_f64 : bn_bwd_sums_f32, &c);
    for (int64_t ch = 0; ch < C; ch++) {
        dg[ch] = acc2[ch] * rstd[ch]; /* sum dy * xhat */
        scale[ch] = gam[ch] * rstd[ch];
        if (training && count > 0) {
            shift[ch] = acc1[ch] / (double)count;
            acc2[ch] = dg[ch] * rstd[ch] / (double)count; /* the k of bn_bwd_dx */
        }
    }
    sp_parallel_for(N * C, cpu_nn_grain(S), is64 ? bn_bwd_dx_f64 : bn_bwd_dx_f32, &c);
    norm_write(a->out[1], C, dg);
    norm_write(a->out[2], C, acc1);
done:
    sp_tensor_release(dy);
    sp_tensor_release(x);
    free(buf);
    return st;
}
