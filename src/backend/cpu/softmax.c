/*
 * softmax.c -- CPU kernels for softmax, log_softmax and the fused sparse
 * softmax cross-entropy (forward and backward).
 *
 * All of them reduce along one axis of length K.  A contiguous input of
 * shape [outer, K, inner] is seen two ways:
 *   - inner == 1 (the usual last axis): outer rows of K contiguous elements,
 *     split across the pool by rows;
 *   - inner > 1: tiles of up to SMAX_TILE neighbouring columns of one outer
 *     index, walked k by k, so every access is a contiguous run of the tile
 *     and the per-column max and sum live in small arrays.
 * Within a row or column the recipe is the numerically stable one:
 *
 *     m = max_k x_k                       (NaN is skipped here, but then
 *     s = sum_k exp(x_k - m)               poisons s, so a row holding NaN
 *     softmax_k     = exp(x_k - m) / s     is NaN throughout, as in torch)
 *     log_softmax_k = (x_k - m) - log(s)
 *
 * float32 uses cpu_nn_expf, a vectorizable exp within 1 ulp of expf that
 * flushes exp(t) for t < -87 to 0 (so -inf logits, e.g. attention masks, get
 * exactly 0); the sums accumulate in double in an order fixed by the code,
 * so results do not depend on the thread count.  float64 uses libm's exp.
 * float16/bfloat16 are widened to float32 first and rounded once at the end.
 *
 * Cross-entropy takes logits [N, C] and int labels [N] and computes
 * loss_n = m + log(s) - logits_n[label_n] in double.  Labels are checked
 * before anything is written: one outside [0, C) is an error naming the
 * primitive, the label, its position and C (there is no ignore_index).
 * "mean" and "sum" add the per-row losses in row order after the parallel
 * loop; "mean" of zero rows is NaN (0/0), as torch.  The backward is
 * (softmax - onehot) * dloss_n, with dloss/N for "mean".
 */
#if defined(__GNUC__) && !defined(__clang__)
/* Lets gcc if-convert the selects of cpu_nn_expf; nothing here reads FP flags. */
#pragma GCC optimize("no-trapping-math")
#endif

#include "backend/cpu/nn_util.h"

#define SMAX_TILE 64

/* ---- float32 rows (contiguous; x and y do not overlap) ---- */

/* sum_k exp(x_k - m), in double, eight lanes. */
static double sumexp_f32(const float *x, int64_t n, float m) {
    double acc[8] = {0};
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++) acc[j] += cpu_nn_expf(x[k + j] - m);
    double s = 0;
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; k < n; k++) s += cpu_nn_expf(x[k] - m);
    return s;
}

static void smax_row_f32(const float *x, float *y, int64_t K, int want_log) {
    float m = cpu_nn_max_f32(x, K);
    if (want_log) {
        float ls = (float)log(sumexp_f32(x, K, m));
        for (int64_t k = 0; k < K; k++) y[k] = (x[k] - m) - ls;
        return;
    }
    for (int64_t k = 0; k < K; k++) y[k] = cpu_nn_expf(x[k] - m);
    double acc[8] = {0}, s = 0;
    int64_t k = 0;
    for (; k + 8 <= K; k += 8)
        for (int j = 0; j < 8; j++) acc[j] += y[k + j];
    for (int j = 0; j < 8; j++) s += acc[j];
    for (; k < K; k++) s += y[k];
    float inv = (float)(1.0 / s);
    for (k = 0; k < K; k++) y[k] *= inv;
}

/* ---- float64 rows ---- */

static double max_f64(const double *x, int64_t n) {
    double m = -INFINITY;
    for (int64_t k = 0; k < n; k++) m = x[k] > m ? x[k] : m;
    return m;
}

static void smax_row_f64(const double *x, double *y, int64_t K, int want_log) {
    double m = max_f64(x, K), s = 0;
    if (want_log) {
        for (int64_t k = 0; k < K; k++) s += exp(x[k] - m);
        double ls = log(s);
        for (int64_t k = 0; k < K; k++) y[k] = (x[k] - m) - ls;
        return;
    }
    for (int64_t k = 0; k < K; k++) {
        y[k] = exp(x[k] - m);
        s += y[k];
    }
    double inv = 1.0 / s;
    for (int64_t k = 0; k < K; k++) y[k] *= inv;
}

/* ---- tiles of B <= SMAX_TILE columns, elements (k, j) at k*inner + j ---- */

#define CPU_SMAX_TILE(SUF, T, EXP)                                                                 \
    static void smax_tile_##SUF(const T *x, T *y, int64_t K, int64_t inner, int64_t B,             \
                                int want_log) {                                                    \
        T mx[SMAX_TILE], f[SMAX_TILE];                                                             \
        double s[SMAX_TILE];                                                                       \
        for (int64_t j = 0; j < B; j++) {                                                          \
            mx[j] = (T)-INFINITY;                                                                  \
            s[j] = 0;                                                                              \
        }                                                                                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const T *xr = x + k * inner;                                                           \
            for (int64_t j = 0; j < B; j++) mx[j] = xr[j] > mx[j] ? xr[j] : mx[j];                 \
        }                                                                                          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const T *xr = x + k * inner;                                                           \
            T *yr = y + k * inner;                                                                 \
            if (want_log) {                                                                        \
                for (int64_t j = 0; j < B; j++) s[j] += EXP(xr[j] - mx[j]);                        \
            } else {                                                                               \
                for (int64_t j = 0; j < B; j++) {                                                  \
                    T e = EXP(xr[j] - mx[j]);                                                      \
                    yr[j] = e;                                                                     \
                    s[j] += e;                                                                     \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        for (int64_t j = 0; j < B; j++) f[j] = want_log ? (T)log(s[j]) : (T)(1.0 / s[j]);          \
        for (int64_t k = 0; k < K; k++) {                                                          \
            const T *xr = x + k * inner;                                                           \
            T *yr = y + k * inner;                                                                 \
            if (want_log)                                                                          \
                for (int64_t j = 0; j < B; j++) yr[j] = (xr[j] - mx[j]) - f[j];                    \
            else                                                                                   \
                for (int64_t j = 0; j < B; j++) yr[j] *= f[j];                                     \
        }                                                                                          \
    }

CPU_SMAX_TILE(f32, float, cpu_nn_expf)
CPU_SMAX_TILE(f64, double, exp)

/* ---- softmax / log_softmax ---- */

typedef struct smax_ctx {
    int is64;
    const void *x;
    void *y;
    int64_t K, inner, ntiles;
    int want_log;
} smax_ctx;

static void smax_rows(void *vctx, int64_t r0, int64_t r1) {
    const smax_ctx *c = vctx;
    for (int64_t r = r0; r < r1; r++) {
        if (c->is64)
            smax_row_f64((const double *)c->x + r * c->K, (double *)c->y + r * c->K, c->K,
                         c->want_log);
        else
            smax_row_f32((const float *)c->x + r * c->K, (float *)c->y + r * c->K, c->K,
                         c->want_log);
    }
}

static void smax_tiles(void *vctx, int64_t u0, int64_t u1) {
    const smax_ctx *c = vctx;
    for (int64_t u = u0; u < u1; u++) {
        int64_t o = u / c->ntiles, i0 = (u % c->ntiles) * SMAX_TILE;
        int64_t B = c->inner - i0 < SMAX_TILE ? c->inner - i0 : SMAX_TILE;
        int64_t base = o * c->K * c->inner + i0;
        if (c->is64)
            smax_tile_f64((const double *)c->x + base, (double *)c->y + base, c->K, c->inner, B,
                          c->want_log);
        else
            smax_tile_f32((const float *)c->x + base, (float *)c->y + base, c->K, c->inner, B,
                          c->want_log);
    }
}

static sp_status smax_run(const sp_kernel_args *a, int want_log) {
    const char *op = want_log ? "log_softmax" : "softmax";
    sp_tensor *x = a->in[0], *xc = NULL, *yw = NULL;
    if (!sp_dtype_is_float(x->dtype) || a->out[0]->dtype != x->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: expected a float input, got %s", op,
                        sp_dtype_name(x->dtype));
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    int ndim = x->ndim;
    /* A 0-d tensor is one row of one element (torch accepts axis 0 or -1). */
    int rank = ndim ? ndim : 1;
    if (axis < -rank || axis >= rank) {
        char sb[128];
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for shape %s", op, (long long)axis,
                        sp_shape_str(ndim, x->shape, sb, sizeof sb));
    }
    int ax = ndim ? (int)(axis < 0 ? axis + ndim : axis) : 0;
    int64_t n = sp_tensor_numel(x);
    if (n == 0) return SP_OK;
    sp_status st = cpu_nn_stage_in(x, &xc);
    if (st || (st = cpu_nn_stage_out(a->out[0], &yw))) goto done;
    smax_ctx c = {.is64 = xc->dtype == SP_F64,
                  .x = sp_tensor_data(xc),
                  .y = sp_tensor_data(yw),
                  .want_log = want_log};
    c.K = ndim ? x->shape[ax] : 1;
    c.inner = ndim ? cpu_nn_prod(x->shape, ax + 1, ndim) : 1;
    int64_t outer = n / (c.K * c.inner);
    if (c.inner == 1) {
        sp_parallel_for(outer, cpu_nn_grain(c.K), smax_rows, &c);
    } else {
        c.ntiles = (c.inner + SMAX_TILE - 1) / SMAX_TILE;
        sp_parallel_for(outer * c.ntiles, cpu_nn_grain(c.K * SMAX_TILE), smax_tiles, &c);
    }
done:
    st = cpu_nn_stage_done(a->out[0], yw, st);
    sp_tensor_release(xc);
    return st;
}

sp_status cpu_softmax(const sp_kernel_args *a) { return smax_run(a, 0); }
sp_status cpu_log_softmax(const sp_kernel_args *a) { return smax_run(a, 1); }

/* ---- sparse softmax cross-entropy ---- */

typedef enum xent_reduction { XENT_MEAN, XENT_SUM, XENT_NONE } xent_reduction;

/* Parses the reduction attribute; an error names `op`. */
static sp_status xent_reduction_of(const char *op, const sp_attrs *attrs, xent_reduction *out) {
    const char *r = sp_attrs_get_str(attrs, "reduction", "mean");
    if (!strcmp(r, "mean"))
        *out = XENT_MEAN;
    else if (!strcmp(r, "sum"))
        *out = XENT_SUM;
    else if (!strcmp(r, "none"))
        *out = XENT_NONE;
    else
        return sp_error(SP_ERR_ARG,
                        "%s: reduction must be \"mean\", \"sum\" or \"none\", got \"%s\"", op, r);
    return SP_OK;
}

/* Checks logits [N, C] (float) against labels [N] (an integer tensor) and
 * every label against [0, C).  Nothing has been written when this fails. */
static sp_status xent_check(const char *op, const sp_tensor *logits, const sp_tensor *labels,
                            const void *lab) {
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
    int64_t N = logits->shape[0], C = logits->shape[1];
    for (int64_t i = 0; i < N; i++) {
        int64_t l = cpu_nn_index(labels, lab, i);
        if (l < 0 || l >= C)
            return sp_error(SP_ERR_ARG, "%s: label %lld at position %lld out of range [0, %lld)",
                            op, (long long)l, (long long)i, (long long)C);
    }
    return SP_OK;
}

typedef struct xent_ctx {
    int is64;
    const void *x; /* logits, contiguous [N, C], float32 or float64 */
    const sp_tensor *labels;
    const void *lab; /* labels' data, contiguous */
    int64_t C;
    double *loss; /* forward: per-row loss */
    void *dx;     /* backward: dlogits, contiguous [N, C] */
    const sp_tensor *dloss;
    double scale; /* backward: the dloss factor for mean/sum */
    int per_row;  /* backward: dloss is [N] */
} xent_ctx;

static void xent_fwd_range(void *vctx, int64_t r0, int64_t r1) {
    xent_ctx *c = vctx;
    int64_t C = c->C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t l = cpu_nn_index(c->labels, c->lab, r);
        if (c->is64) {
            const double *x = (const double *)c->x + r * C;
            double m = max_f64(x, C), s = 0;
            for (int64_t k = 0; k < C; k++) s += exp(x[k] - m);
            c->loss[r] = (m - x[l]) + log(s);
        } else {
            const float *x = (const float *)c->x + r * C;
            float m = cpu_nn_max_f32(x, C);
            c->loss[r] = ((double)m - x[l]) + log(sumexp_f32(x, C, m));
        }
    }
}

static void xent_bwd_range(void *vctx, int64_t r0, int64_t r1) {
    xent_ctx *c = vctx;
    int64_t C = c->C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t l = cpu_nn_index(c->labels, c->lab, r);
        double g = c->per_row ? cpu_nn_at(c->dloss, r) : c->scale;
        if (c->is64) {
            double *y = (double *)c->dx + r * C;
            smax_row_f64((const double *)c->x + r * C, y, C, 0);
            y[l] -= 1.0;
            for (int64_t k = 0; k < C; k++) y[k] *= g;
        } else {
            float *y = (float *)c->dx + r * C, gf = (float)g;
            smax_row_f32((const float *)c->x + r * C, y, C, 0);
            y[l] -= 1.0f;
            for (int64_t k = 0; k < C; k++) y[k] *= gf;
        }
    }
}

sp_status cpu_sparse_softmax_cross_entropy(const sp_kernel_args *a) {
    const char *op = "sparse_softmax_cross_entropy";
    sp_tensor *logits = NULL, *labels = NULL, *out = a->out[0];
    double *loss = NULL;
    xent_reduction red = XENT_MEAN;
    sp_status st = xent_reduction_of(op, a->attrs, &red);
    if (st) return st;
    if ((st = sp_tensor_contiguous(a->in[1], &labels))) goto done;
    const void *lab = sp_tensor_data(labels);
    if ((st = xent_check(op, a->in[0], labels, lab))) goto done;
    int64_t N = a->in[0]->shape[0], C = a->in[0]->shape[1];
    if (sp_tensor_numel(out) != (red == XENT_NONE ? N : 1)) {
        st = sp_error(SP_ERR_SHAPE, "%s: output has %lld elements, expected %lld", op,
                      (long long)sp_tensor_numel(out), (long long)(red == XENT_NONE ? N : 1));
        goto done;
    }
    if ((st = cpu_nn_stage_in(a->in[0], &logits))) goto done;
    loss = malloc((size_t)(N ? N : 1) * sizeof(double));
    if (!loss) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory for %lld losses", op, (long long)N);
        goto done;
    }
    /* C == 0 with N > 0 failed the label check, so every row here is real. */
    xent_ctx c = {.is64 = logits->dtype == SP_F64,
                  .x = sp_tensor_data(logits),
                  .labels = labels,
                  .lab = lab,
                  .C = C,
                  .loss = loss};
    sp_parallel_for(N, cpu_nn_grain(C), xent_fwd_range, &c);
    char *o = sp_tensor_data(out);
    size_t osz = sp_dtype_size(out->dtype);
    if (red == XENT_NONE) {
        for (int64_t i = 0; i < N; i++) sp_store_f64(out->dtype, o + (size_t)i * osz, loss[i]);
    } else {
        double s = 0;
        for (int64_t i = 0; i < N; i++) s += loss[i];
        sp_store_f64(out->dtype, o, red == XENT_MEAN ? s / (double)N : s);
    }
done:
    free(loss);
    sp_tensor_release(logits);
    sp_tensor_release(labels);
    return st;
}

sp_status cpu_sparse_softmax_cross_entropy_backward(const sp_kernel_args *a) {
    const char *op = "sparse_softmax_cross_entropy_backward";
    sp_tensor *logits = NULL, *labels = NULL, *dxw = NULL, *dloss = a->in[2];
    xent_reduction red = XENT_MEAN;
    sp_status st = xent_reduction_of(op, a->attrs, &red);
    if (st) return st;
    if (a->out[0]->dtype != a->in[0]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: dlogits must have the logits' dtype", op);
    if ((st = sp_tensor_contiguous(a->in[1], &labels))) goto done;
    const void *lab = sp_tensor_data(labels);
    if ((st = xent_check(op, a->in[0], labels, lab))) goto done;
    int64_t N = a->in[0]->shape[0], C = a->in[0]->shape[1];
    if (sp_tensor_numel(dloss) != (red == XENT_NONE ? N : 1) || dloss->ndim > 1 ||
        (red != XENT_NONE && dloss->ndim != 0)) {
        char sb[128];
        st = sp_error(SP_ERR_SHAPE,
                      "%s: dloss of shape %s does not fit reduction \"%s\" with N = %lld", op,
                      sp_shape_str(dloss->ndim, dloss->shape, sb, sizeof sb),
                      sp_attrs_get_str(a->attrs, "reduction", "mean"), (long long)N);
        goto done;
    }
    if ((st = cpu_nn_stage_in(a->in[0], &logits)) || (st = cpu_nn_stage_out(a->out[0], &dxw)))
        goto done;
    xent_ctx c = {.is64 = logits->dtype == SP_F64,
                  .x = sp_tensor_data(logits),
                  .labels = labels,
                  .lab = lab,
                  .C = C,
                  .dx = sp_tensor_data(dxw),
                  .dloss = dloss,
                  .per_row = red == XENT_NONE};
    if (red != XENT_NONE) {
        double g = cpu_nn_at(dloss, 0);
        c.scale = red == XENT_MEAN ? g / (double)N : g;
    }
    if (C > 0) sp_parallel_for(N, cpu_nn_grain(C), xent_bwd_range, &c);
done:
    st = cpu_nn_stage_done(a->out[0], dxw, st);
    sp_tensor_release(logits);
    sp_tensor_release(labels);
    return st;
}
