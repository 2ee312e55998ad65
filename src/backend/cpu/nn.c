/*
 * nn.c -- CPU kernels for dropout and embedding (forward and backward).
 *
 * Dropout draws exactly the numbers sp_rng_uniform would: element i takes
 * lane i%4 of Philox block i/4 of the fill at (seed, offset), u = x * 2^-32
 * in double (core/philox.h holds the recipe, shared with the fills and a
 * future CUDA kernel), and is kept iff u >= p.  Because the numbers depend
 * only on (seed, offset, i), the mask is the same with any thread count and
 * for every dtype of x.  With no "seed" attribute the kernel reserves
 * ceil(n/4) blocks of the global generator (sp_rng_next), so successive
 * eager calls drop different elements.  The comparison u >= p is done
 * exactly on the integer: x >= ceil(p * 2^32).  Kept elements become
 * x * (1/(1-p)), computed in double and rounded once (for float32 this is
 * x/(1-p) correctly rounded but for a double rounding); dropped ones are
 * exactly 0 (also for inf/NaN inputs), so p == 1 gives zeros and p == 0 is
 * the identity.
 *
 * Embedding copies rows of weight [V, D] selected by an integer index
 * tensor; every index is checked against [0, V) before anything is written.
 * Its backward scatters rows of dout back into dweight [V, D].  To stay
 * deterministic and parallel it first buckets the positions by index (a
 * stable counting sort), then splits the V rows across threads: each row
 * adds its contributions in position order, so the sums are identical with
 * any thread count.  float16/bfloat16 rows accumulate in float32 and round
 * once.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* Lets gcc vectorize the selects of the dropout loops; no FP flags are read. */
#pragma GCC optimize("no-trapping-math")
#endif

#include "backend/cpu/nn_util.h"
#include "core/philox.h"

/* ---- dropout ---- */

#define DROP_BLOCK 1024 /* elements whose mask is drawn before their y is written */

typedef struct drop_ctx {
    sp_dtype dt;
    const void *x;
    void *y;
    uint8_t *mask;
    uint64_t seed, offset;
    uint64_t thr; /* keep iff x >= thr: u = x*2^-32 >= p exactly when x >= ceil(p*2^32) */
    double scale; /* 1/(1-p) */
} drop_ctx;

static void drop_range(void *vctx, int64_t i0, int64_t i1) {
    const drop_ctx *c = vctx;
    uint32_t r[4];
    for (int64_t b0 = i0; b0 < i1; b0 += DROP_BLOCK) {
        int64_t b1 = b0 + DROP_BLOCK < i1 ? b0 + DROP_BLOCK : i1;
        uint8_t *mk = c->mask;
        for (int64_t i = b0; i < b1;) {
            uint64_t blk = (uint64_t)i >> 2;
            core_philox_block(c->seed, c->offset, blk, r);
            int64_t stop = (int64_t)(blk + 1) * 4;
            if (stop > b1) stop = b1;
            for (; i < stop; i++) mk[i] = (uint64_t)r[i & 3] >= c->thr;
        }
        double sc = c->scale;
        switch (c->dt) {
        case SP_F32: {
            const float *x = c->x;
            float *y = c->y;
            for (int64_t i = b0; i < b1; i++) y[i] = mk[i] ? (float)(x[i] * sc) : 0.0f;
            break;
        }
        case SP_F64: {
            const double *x = c->x;
            double *y = c->y;
            for (int64_t i = b0; i < b1; i++) y[i] = mk[i] ? x[i] * sc : 0.0;
            break;
        }
        case SP_F16: {
            const sp_f16 *x = c->x;
            sp_f16 *y = c->y;
            for (int64_t i = b0; i < b1; i++)
                y[i] = sp_f32_to_f16(mk[i] ? (float)(sp_f16_to_f32(x[i]) * sc) : 0.0f);
            break;
        }
        default: { /* SP_BF16 */
            const sp_bf16 *x = c->x;
            sp_bf16 *y = c->y;
            for (int64_t i = b0; i < b1; i++)
                y[i] = sp_f32_to_bf16(mk[i] ? (float)(sp_bf16_to_f32(x[i]) * sc) : 0.0f);
            break;
        }
        }
    }
}

sp_status cpu_dropout(const sp_kernel_args *a) {
    const char *op = "dropout";
    sp_tensor *x = NULL, *y = a->out[0], *mask = a->out[1];
    if (!sp_dtype_is_float(a->in[0]->dtype) || y->dtype != a->in[0]->dtype)
        return sp_error(SP_ERR_DTYPE, "%s: x must be float, got %s", op,
                        sp_dtype_name(a->in[0]->dtype));
    if (mask->dtype != SP_BOOL && mask->dtype != SP_U8 && mask->dtype != SP_I8)
        return sp_error(SP_ERR_DTYPE, "%s: mask must be bool, got %s", op,
                        sp_dtype_name(mask->dtype));
    int64_t n = sp_tensor_numel(a->in[0]);
    if (sp_tensor_numel(y) != n || sp_tensor_numel(mask) != n)
        return sp_error(SP_ERR_SHAPE, "%s: outputs do not have the %lld elements of x", op,
                        (long long)n);
    double p = sp_attrs_get_float(a->attrs, "p", 0.5);
    if (!(p >= 0 && p <= 1)) return sp_error(SP_ERR_ARG, "%s: p must be in [0, 1], got %g", op, p);
    drop_ctx c = {.dt = a->in[0]->dtype, .scale = 1.0 / (1.0 - p)};
    c.thr = p >= 1 ? (uint64_t)1 << 32 : (uint64_t)ceil(p * 4294967296.0);
    if (sp_attrs_find(a->attrs, "seed")) {
        c.seed = (uint64_t)sp_attrs_get_int(a->attrs, "seed", 0);
        c.offset = (uint64_t)sp_attrs_get_int(a->attrs, "offset", 0);
    } else {
        sp_rng_next(((uint64_t)n + 3) / 4, &c.seed, &c.offset);
    }
    if (n == 0) return SP_OK;
    sp_status st = sp_tensor_contiguous(a->in[0], &x);
    if (st) return st;
    c.x = sp_tensor_data(x);
    c.y = sp_tensor_data(y);
    c.mask = sp_tensor_data(mask);
    sp_parallel_for(n, 8192, drop_range, &c);
    sp_tensor_release(x);
    return SP_OK;
}

/* ---- embedding ---- */

/* Checks that every one of the n indices (contiguous) lies in [0, V). */
static sp_status emb_check(const char *op, const sp_tensor *idx, const void *data, int64_t n,
                           int64_t V) {
    if (!sp_dtype_is_int(idx->dtype))
        return sp_error(SP_ERR_DTYPE, "%s: indices must be int32 or int64, got %s", op,
                        sp_dtype_name(idx->dtype));
    for (int64_t i = 0; i < n; i++) {
        int64_t v = cpu_nn_index(idx, data, i);
        if (v < 0 || v >= V)
            return sp_error(SP_ERR_ARG, "%s: index %lld at position %lld out of range [0, %lld)",
                            op, (long long)v, (long long)i, (long long)V);
    }
    return SP_OK;
}

typedef struct emb_ctx {
    const sp_tensor *idx;
    const void *ind;
    const char *w; /* weight rows (forward) or dout rows (backward) */
    char *out;
    size_t row_bytes;
    sp_dtype dt;
    int64_t D;
    const int64_t *start,
        *order; /* backward: positions of index v are order[start[v]..start[v+1]) */
    int failed;
} emb_ctx;

static void emb_fwd_range(void *vctx, int64_t i0, int64_t i1) {
    const emb_ctx *c = vctx;
    for (int64_t i = i0; i < i1; i++) {
        int64_t v = cpu_nn_index(c->idx, c->ind, i);
        memcpy(c->out + (size_t)i * c->row_bytes, c->w + (size_t)v * c->row_bytes, c->row_bytes);
    }
}

sp_status cpu_embedding(const sp_kernel_args *a) {
    const char *op = "embedding";
    sp_tensor *w = NULL, *idx = NULL, *out = a->out[0];
    char s1[128];
    if (a->in[0]->ndim != 2)
        return sp_error(SP_ERR_SHAPE, "%s: weight must be [V, D], got shape %s", op,
                        sp_shape_str(a->in[0]->ndim, a->in[0]->shape, s1, sizeof s1));
    int64_t V = a->in[0]->shape[0], D = a->in[0]->shape[1], n = sp_tensor_numel(a->in[1]);
    if (out->dtype != a->in[0]->dtype || sp_tensor_numel(out) != n * D)
        return sp_error(SP_ERR_SHAPE, "%s: output does not fit %lld indices of rows of %lld", op,
                        (long long)n, (long long)D);
    sp_status st = sp_tensor_contiguous(a->in[1], &idx);
    if (st) return st;
    const void *ind = sp_tensor_data(idx);
    if ((st = emb_check(op, idx, ind, n, V))) goto done;
    if (n == 0 || D == 0) goto done;
    if ((st = sp_tensor_contiguous(a->in[0], &w))) goto done;
    emb_ctx c = {.idx = idx,
                 .ind = ind,
                 .w = sp_tensor_data(w),
                 .out = sp_tensor_data(out),
                 .row_bytes = (size_t)D * sp_dtype_size(w->dtype)};
    sp_parallel_for(n, cpu_nn_grain(D), emb_fwd_range, &c);
done:
    sp_tensor_release(w);
    sp_tensor_release(idx);
    return st;
}

/* Rows [v0, v1) of dweight: the sum of their dout rows in position order. */
static void emb_bwd_range(void *vctx, int64_t v0, int64_t v1) {
    emb_ctx *c = vctx;
    int64_t D = c->D;
    float *acc = NULL;
    if (c->dt == SP_F16 || c->dt == SP_BF16) {
        acc = malloc((size_t)D * 2 * sizeof(float));
        if (!acc) {
            __atomic_store_n(&c->failed, 1, __ATOMIC_RELAXED);
            return;
        }
    }
    size_t isz = sp_dtype_size(c->dt);
    for (int64_t v = v0; v < v1; v++) {
        char *dst = c->out + (size_t)v * c->row_bytes;
        const int64_t *pos = c->order + c->start[v];
        int64_t cnt = c->start[v + 1] - c->start[v];
        if (c->dt == SP_F32) {
            float *o = (float *)dst;
            for (int64_t k = 0; k < D; k++) o[k] = 0;
            for (int64_t j = 0; j < cnt; j++) {
                const float *g = (const float *)(c->w + (size_t)pos[j] * c->row_bytes);
                for (int64_t k = 0; k < D; k++) o[k] += g[k];
            }
        } else if (c->dt == SP_F64) {
            double *o = (double *)dst;
            for (int64_t k = 0; k < D; k++) o[k] = 0;
            for (int64_t j = 0; j < cnt; j++) {
                const double *g = (const double *)(c->w + (size_t)pos[j] * c->row_bytes);
                for (int64_t k = 0; k < D; k++) o[k] += g[k];
            }
        } else {
            float *o = acc, *g = acc + D;
            for (int64_t k = 0; k < D; k++) o[k] = 0;
            for (int64_t j = 0; j < cnt; j++) {
                cpu_nn_load_f32(c->dt, c->w + (size_t)pos[j] * D * isz, D, g);
                for (int64_t k = 0; k < D; k++) o[k] += g[k];
            }
            cpu_nn_store_f32(c->dt, dst, o, D);
        }
    }
    free(acc);
}

sp_status cpu_embedding_backward(const sp_kernel_args *a) {
    const char *op = "embedding_backward";
    sp_tensor *dout = NULL, *idx = NULL, *dw = a->out[0];
    int64_t *start = NULL, *order = NULL;
    char s1[128], s2[128];
    int64_t V = sp_attrs_get_int(a->attrs, "num_embeddings", -1);
    if (V < 0)
        return sp_error(SP_ERR_ARG, "%s: num_embeddings must be given and >= 0, got %lld", op,
                        (long long)V);
    int64_t n = sp_tensor_numel(a->in[1]);
    if (dw->ndim != 2 || dw->shape[0] != V || dw->dtype != a->in[0]->dtype ||
        a->in[0]->ndim != a->in[1]->ndim + 1 || sp_tensor_numel(a->in[0]) != n * dw->shape[1])
        return sp_error(SP_ERR_SHAPE, "%s: dout of shape %s does not fit indices of shape %s", op,
                        sp_shape_str(a->in[0]->ndim, a->in[0]->shape, s1, sizeof s1),
                        sp_shape_str(a->in[1]->ndim, a->in[1]->shape, s2, sizeof s2));
    int64_t D = dw->shape[1];
    sp_status st = sp_tensor_contiguous(a->in[1], &idx);
    if (st) return st;
    const void *ind = sp_tensor_data(idx);
    if ((st = emb_check(op, idx, ind, n, V))) goto done;
    if (V == 0 || D == 0) goto done;
    if ((st = sp_tensor_contiguous(a->in[0], &dout))) goto done;
    start = calloc((size_t)V + 1, sizeof(int64_t));
    order = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!start || !order) {
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory for %lld indices", op, (long long)n);
        goto done;
    }
    /* Stable counting sort of positions by index: start[v] = first slot. */
    for (int64_t i = 0; i < n; i++) start[cpu_nn_index(idx, ind, i) + 1]++;
    for (int64_t v = 0; v < V; v++) start[v + 1] += start[v];
    for (int64_t i = 0; i < n; i++) order[start[cpu_nn_index(idx, ind, i)]++] = i;
    for (int64_t v = V; v > 0; v--) start[v] = start[v - 1]; /* undo the fill's advance */
    start[0] = 0;
    emb_ctx c = {.w = sp_tensor_data(dout),
                 .out = sp_tensor_data(dw),
                 .row_bytes = (size_t)D * sp_dtype_size(dw->dtype),
                 .dt = dw->dtype,
                 .D = D,
                 .start = start,
                 .order = order};
    int64_t per_row = n / V + 1;
    sp_parallel_for(V, cpu_nn_grain(D * per_row), emb_bwd_range, &c);
    if (c.failed)
        st = sp_error(SP_ERR_NOMEM, "%s: out of memory for a row of %lld", op, (long long)D);
done:
    free(start);
    free(order);
    sp_tensor_release(dout);
    sp_tensor_release(idx);
    return st;
}
