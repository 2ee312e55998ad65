/*
 * softmax.c -- CPU kernels for softmax, log_softmax and the fused sparse
 * softmax cross-entropy (forward and backward).
 *
 * All of them reduce along one axis of length K, seen as rows: a contiguous
 * input of shape [outer, K, inner] has outer*inner rows whose elements lie
 * `inner` apart.  Rows are independent, so they are split across the thread
 * pool; within a row the work is the numerically stable recipe:
 *
 *     m = max_k x_k                       (NaN is skipped here, but then
 *     s = sum_k exp(x_k - m)               poisons s, so a row holding NaN
 *     softmax_k     = exp(x_k - m) / s     gives NaN everywhere, as torch)
 *     log_softmax_k = (x_k - m) - log(s)
 *
 * Exponentials of the float32 family run in float32; the sum s accumulates in
 * double, one row on one thread in index order, so results do not depend on
 * the thread count.  float16/bfloat16 rows are widened into a scratch row
 * and rounded once at the end.
 *
 * Cross-entropy takes logits [N, C] and int labels [N] and computes
 * loss_n = logsumexp(logits_n) - logits_n[label_n] in double.  Labels are
 * checked before anything is written: one outside [0, C) is an error naming
 * the primitive, the label, its position and C (there is no ignore_index).
 * "mean" and "sum" add the per-row losses in row order after the parallel
 * loop, again thread-count independent; "mean" of zero rows is NaN (0/0), as
 * torch.  The backward is (softmax - onehot) * dloss_n, divided by N for
 * "mean".
 */
#include "backend/cpu/nn_util.h"

/* ---- row kernels, instantiated for float and double ---- */

#define CPU_SMAX_ROW(NAME, T, EXP)                                                         \
    /* y = softmax or log_softmax of the K elements of x lying `st` apart; y    \
     * may alias x.  Returns s = sum exp(x - m) and the max in *mout. */        \
    static double NAME(const T *x, T *y, int64_t K, int64_t st, int log, T *mout) {        \
        T m = (T)-INFINITY;                                                                \
        for (int64_t k = 0; k < K; k++) m = x[k * st] > m ? x[k * st] : m;                 \
        double s = 0;                                                                      \
        if (log) {                                                                         \
            for (int64_t k = 0; k < K; k++) s += EXP(x[k * st] - m);                       \
            T ls = (T)log(s);                                                \
            for (int64_t k = 0; k < K; k++) y[k * st] = (x[k * st] - m) - ls;              \
        } else {                                                                           \
            for (int64_t k = 0; k < K; k++) {                                              \
                T e = EXP(x[k * st] - m);                                                  \
                y[k * st] = e;                                                             \
                s += e;                                                                    \
            }                                                                              \
            T inv = (T)(1.0 / s);                                                          \
            for (int64_t k = 0; k < K; k++) y[k * st] *= inv;                              \
        }                                                                                  \
        if (mout) *mout = m;                                                               \
        return s;                                                                          \
    }

CPU_SMAX_ROW(smax_row_f32, float, expf)
CPU_SMAX_ROW(smax_row_f64, double, exp)

/* log(sum exp(x)) over K contiguous elements, in double. */
#define CPU_LSE_ROW(NAME, T, EXP)                                                          \
    static double NAME(const T *x, int64_t K) {                                            \
        T m = (T)-INFINITY;                                                                \
        for (int64_t k = 0; k < K; k++) m = x[k] > m ? x[k] : m;                           \
        double s = 0;                                                                      \
        for (int64_t k = 0; k < K; k++) s += EXP(x[k] - m);                                \
        return (double)m + log(s);                                                         \
    }

CPU_LSE_ROW(lse_row_f32, float, expf)
CPU_LSE_ROW(lse_row_f64, double, exp)

/* ---- softmax / log_softmax ---- */

typedef struct smax_ctx {
    sp_dtype dt;
    const void *x;
    void *y;
    int64_t K, inner;
    int log;
    int failed;
} smax_ctx;

static void smax_range(void *vctx, int64_t r0, int64_t r1) {
    smax_ctx *c = vctx;
    int64_t K = c->K, inner = c->inner;
    float *scratch = NULL;
    if (c->dt == SP_F16 || c->dt == SP_BF16) {
        scratch = malloc((size_t)K * sizeof(float));
        if (!scratch) {
            __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    for (int64_t r = r0; r < r1; r++) {
        int64_t base = (r / inner) * K * inner + r % inner;
        if (c->dt == SP_F32) {
            smax_row_f32((const float *)c->x + base, (float *)c->y + base, K, inner, c->log, NULL);
        } else if (c->dt == SP_F64) {
            smax_row_f64((const double *)c->x + base, (double *)c->y + base, K, inner, c->log,
                         NULL);
        } else {
            const sp_f16 *x = (const sp_f16 *)c->x + base; /* f16 and bf16 are both 16-bit */
            sp_f16 *y = (sp_f16 *)c->y + base;
            int bf = c->dt == SP_BF16;
            for (int64_t k = 0; k < K; k++)
                scratch[k] = bf ? sp_bf16_to_f32(x[k * inner]) : sp_f16_to_f32(x[k * inner]);
            smax_row_f32(scratch, scratch, K, 1, c->log, NULL);
            for (int64_t k = 0; k < K; k++)
                y[k * inner] = bf ? sp_f32_to_bf16(scratch[k]) : sp_f32_to_f16(scratch[k]);
        }
    }
    free(scratch);
}

static sp_status smax_run(const sp_kernel_args *a, int log) {
    const char *op = log ? "log_softmax" : "softmax";
    sp_tensor *x = a->in[0], *y = a->out[0];
    if (!sp_dtype_is_float(x->dtype) || y->dtype != x->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: expected a float input, got %s", op,
                        sp_dtype_name(x->dtype));
    int64_t axis = sp_attrs_get_int(a->attrs, "axis", -1);
    int ndim = x->ndim;
    /* A 0-d tensor is one row of one element (torch accepts axis 0 or -1). */
    int rank = ndim ? ndim : 1;
    if (axis < -rank || axis >= rank) {
        char sb[128];
        return sp_error(SP_ERR_ARG, "%s: axis %lld out of range for shape %s", op,
                        (long long)axis, sp_shape_str(ndim, x->shape, sb, sizeof sb));
    }
    int ax = ndim ? (int)(axis < 0 ? axis + ndim : axis) : 0;
    int64_t n = sp_tensor_numel(x);
    if (n == 0) return SP_OK;
    sp_tensor *xc = NULL;
    sp_status st = sp_tensor_contiguous(x, &xc);
    if (st) return st;
    smax_ctx c = {.dt = x->dtype, .x = sp_tensor_data(xc), .y = sp_tensor_data(y), .log = log};
    c.K = ndim ? x->shape[ax] : 1;
    c.inner = ndim ? cpu_nn_prod(x->shape, ax + 1, ndim) : 1;
    sp_parallel_for(n / c.K, cpu_nn_grain(c.K), smax_range, &c);
    sp_tensor_release(xc);
    if (c.failed) return sp_error(SP_ERR_NOMEM, "%s: out of memory for a row of %lld", op,
                                  (long long)c.K);
    return SP_OK;
}

sp_status cpu_softmax(const sp_kernel_args *a) { return smax_run(a, 0); }
sp_status cpu_log_softmax(const sp_kernel_args *a) { return smax_run(a, 1); }

/* ---- sparse softmax cross-entropy ---- */

typedef enum xent_reduction { XENT_MEAN, XENT_SUM, XENT_NONE } xent_reduction;

/* Parses the reduction attribute; an error names `op`. */
static sp_status xent_reduction_of(const char *op, const sp_attrs *attrs, xent_reduction *out) {
    const char *r = sp_attrs_get_str(attrs, "reduction", "mean");
    if (!strcmp(r, "mean")) *out = XENT_MEAN;
    else if (!strcmp(r, "sum")) *out = XENT_SUM;
    else if (!strcmp(r, "none")) *out = XENT_NONE;
    else
        return sp_error(SP_ERR_ARG, "%s: reduction must be \"mean\", \"sum\" or \"none\", got \"%s\"",
                        op, r);
    return SP_OK;
}

/* Checks logits [N, C] against labels [N] (an integer tensor) and every
 * label against [0, C).  Nothing has been written when this fails. */
static sp_status xent_check(const char *op, const sp_tensor *logits, const sp_tensor *labels,
                            const void *lab) {
    char s1[128], s2[128];
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
    sp_dtype dt;
    const void *x;      /* logits, contiguous [N, C] */
    const sp_tensor *labels;
    const void *lab;    /* labels' data, contiguous */
    int64_t C;
    double *loss;       /* forward: per-row loss */
    void *dx;           /* backward: dlogits, contiguous [N, C] */
    const sp_tensor *dloss;
    double scale;       /* backward: dloss multiplier for mean/sum (dloss/N or dloss) */
    int per_row;        /* backward: dloss is [N] */
    int failed;
} xent_ctx;

static void xent_fwd_range(void *vctx, int64_t r0, int64_t r1) {
    xent_ctx *c = vctx;
    int64_t C = c->C;
    float *scratch = NULL;
    if (c->dt == SP_F16 || c->dt == SP_BF16) {
        scratch = malloc((size_t)C * sizeof(float));
        if (!scratch) {
            __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    for (int64_t r = r0; r < r1; r++) {
        int64_t l = cpu_nn_index(c->labels, c->lab, r);
        if (c->dt == SP_F64) {
            const double *x = (const double *)c->x + r * C;
            c->loss[r] = lse_row_f64(x, C) - x[l];
        } else {
            const float *x;
            if (c->dt == SP_F32) {
                x = (const float *)c->x + r * C;
            } else {
                cpu_nn_load_f32(c->dt, (const sp_f16 *)c->x + r * C, C, scratch);
                x = scratch;
            }
            c->loss[r] = lse_row_f32(x, C) - (double)x[l];
        }
    }
    free(scratch);
}

static void xent_bwd_range(void *vctx, int64_t r0, int64_t r1) {
    xent_ctx *c = vctx;
    int64_t C = c->C;
    float *scratch = NULL;
    if (c->dt == SP_F16 || c->dt == SP_BF16) {
        scratch = malloc((size_t)C * sizeof(float));
        if (!scratch) {
            __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    for (int64_t r = r0; r < r1; r++) {
        int64_t l = cpu_nn_index(c->labels, c->lab, r);
        double g = c->per_row ? cpu_nn_at(c->dloss, r) : c->scale;
        if (c->dt == SP_F64) {
            double *y = (double *)c->dx + r * C;
            smax_row_f64((const double *)c->x + r * C, y, C, 1, 0, NULL);
            y[l] -= 1.0;
            for (int64_t k = 0; k < C; k++) y[k] *= g;
        } else {
            float *y = c->dt == SP_F32 ? (float *)c->dx + r * C : scratch;
            if (c->dt == SP_F32) {
                smax_row_f32((const float *)c->x + r * C, y, C, 1, 0, NULL);
            } else {
                cpu_nn_load_f32(c->dt, (const sp_f16 *)c->x + r * C, C, y);
                smax_row_f32(y, y, C, 1, 0, NULL);
            }
            y[l] -= 1.0f;
            float gf = (float)g;
            for (int64_t k = 0; k < C; k++) y[k] *= gf;
            if (scratch) cpu_nn_store_f32(c->dt, (sp_f16 *)c->dx + r * C, y, C);
        }
    }
    free(scratch);
}

sp_status cpu_sparse_softmax_cross_entropy(const sp_kernel_args *a) {
    const char *op = "sparse_softmax_cross_entropy";
    sp_tensor *logits = NULL, *labels = NULL, *out = a->out[0];
    double *loss = NULL;
    xent_reduction red;
    sp_status st = xent_reduction_of(op, a->attrs, &red);
    if (st) return st;
    if (!sp_dtype_is_float(a->in[0]->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: logits must be float, got %s", op,
                        sp_dtype_name(a->in[0]->dtype));
    if ((st = sp_tensor_contiguous(a->in[0], &logits))) goto done;
    if ((st = sp_tensor_contiguous(a->in[1], &labels))) goto done;
    const void *lab = sp_tensor_data(labels);
    if ((st = xent_check(op, logits, labels, lab))) goto done;
    int64_t N = logits->shape[0], C = logits->shape[1];
    if (sp_tensor_numel(out) != (red == XENT_NONE ? N : 1)) {
        st = sp_error(SP_ERR_SHAPE, "%s: output has %lld elements, expected %lld", op,
                      (long long)sp_tensor_numel(out), (long long)(red == XENT_NONE ? N : 1));
        goto done;
    }
    loss = malloc((size_t)(N ? N : 1) * sizeof(double));
    if (!loss) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory for %lld losses", op, (long long)N);
        goto done;
    }
    xent_ctx c = {.dt = logits->dtype, .x = sp_tensor_data(logits), .labels = labels, .lab = lab,
                  .C = C, .loss = loss};
    /* C == 0 with N > 0 failed the label check, so every row here is real. */
    sp_parallel_for(N, cpu_nn_grain(C), xent_fwd_range, &c);
    if (c.failed) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory for a row of %lld", op, (long long)C);
        goto done;
    }
    void *o = sp_tensor_data(out);
    size_t osz = sp_dtype_size(out->dtype);
    if (red == XENT_NONE) {
        for (int64_t i = 0; i < N; i++) sp_store_f64(out->dtype, (char *)o + (size_t)i * osz, loss[i]);
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
    sp_tensor *logits = NULL, *labels = NULL, *dloss = a->in[2], *dx = a->out[0];
    xent_reduction red;
    sp_status st = xent_reduction_of(op, a->attrs, &red);
    if (st) return st;
    if (!sp_dtype_is_float(a->in[0]->dtype) || dx->dtype != a->in[0]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: logits must be float, got %s", op,
                        sp_dtype_name(a->in[0]->dtype));
    if ((st = sp_tensor_contiguous(a->in[0], &logits))) goto done;
    if ((st = sp_tensor_contiguous(a->in[1], &labels))) goto done;
    const void *lab = sp_tensor_data(labels);
    if ((st = xent_check(op, logits, labels, lab))) goto done;
    int64_t N = logits->shape[0], C = logits->shape[1];
    int64_t want = red == XENT_NONE ? N : 1;
    char sb[128];
    if (sp_tensor_numel(dloss) != want || dloss->ndim > 1 ||
        (red != XENT_NONE && dloss->ndim != 0)) {
        st = sp_error(SP_ERR_SHAPE, "%s: dloss of shape %s does not fit reduction \"%s\" with N = %lld",
                      op, sp_shape_str(dloss->ndim, dloss->shape, sb, sizeof sb),
                      sp_attrs_get_str(a->attrs, "reduction", "mean"), (long long)N);
        goto done;
    }
    xent_ctx c = {.dt = logits->dtype, .x = sp_tensor_data(logits), .labels = labels, .lab = lab,
                  .C = C, .dx = sp_tensor_data(dx), .dloss = dloss,
                  .per_row = red == XENT_NONE};
    if (red != XENT_NONE) {
        double g = cpu_nn_at(dloss, 0);
        c.scale = red == XENT_MEAN ? g / (double)N : g;
    }
    if (N > 0 && C > 0) sp_parallel_for(N, cpu_nn_grain(C), xent_bwd_range, &c);
    if (c.failed)
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory for a row of %lld", op, (long long)C);
done:
    sp_tensor_release(logits);
    sp_tensor_release(labels);
    return st;
}
