/*
 * fill.c -- CPU kernels of the primitives that make a tensor from
 * attributes alone: arange, full, zeros, ones.
 *
 * full/zeros/ones build one element of the output dtype (with the core's
 * never-UB conversions: an int attribute is stored exactly as an int64, a
 * float one through double) and replicate its bytes across the contiguous
 * output in parallel; a pattern whose bytes are all equal (0, and any 1-byte
 * dtype) is a memset.
 *
 * arange writes element i = start + i*step.  When start, stop and step are
 * all int attributes (absent ones count as ints, the rule of infer_arange)
 * the value is computed exactly in int64 arithmetic (wrapping, never UB) and
 * then stored in the output dtype; otherwise it is computed in double and
 * rounded once (float dtypes) or truncated toward zero (int dtypes, numpy's
 * astype).  Each element depends only on i, so any thread count writes the
 * same tensor; the length is the output's, fixed by inference.
 */
#include "backend/cpu/cpu.h"

/* ---- full / zeros / ones ---- */

typedef struct {
    char *data;
    size_t esize;
    unsigned char pat[8];
} cpu_fill_ctx;

static void cpu_fill_range(void *ctx_, int64_t b, int64_t e) {
    const cpu_fill_ctx *c = ctx_;
    char *p = c->data + (size_t)b * c->esize;
    size_t n = (size_t)(e - b);
    switch (c->esize) {
    case 1: memset(p, c->pat[0], n); break;
    case 2: {
        uint16_t v;
        memcpy(&v, c->pat, 2);
        for (size_t i = 0; i < n; i++) memcpy(p + 2 * i, &v, 2);
        break;
    }
    case 4: {
        uint32_t v;
        memcpy(&v, c->pat, 4);
        for (size_t i = 0; i < n; i++) memcpy(p + 4 * i, &v, 4);
        break;
    }
    default: {
        uint64_t v;
        memcpy(&v, c->pat, 8);
        for (size_t i = 0; i < n; i++) memcpy(p + 8 * i, &v, 8);
        break;
    }
    }
}

static void cpu_fill_memset_range(void *ctx_, int64_t b, int64_t e) {
    const cpu_fill_ctx *c = ctx_;
    memset(c->data + (size_t)b * c->esize, c->pat[0], (size_t)(e - b) * c->esize);
}

/* Fills the contiguous tensor y with the element whose bytes are pat. */
static void cpu_fill_pattern(sp_tensor *y, const unsigned char *pat) {
    cpu_fill_ctx c = {.data = sp_tensor_data(y), .esize = sp_dtype_size(y->dtype)};
    memcpy(c.pat, pat, c.esize);
    int uniform_bytes = 1;
    for (size_t i = 1; i < c.esize; i++) uniform_bytes &= pat[i] == pat[0];
    sp_parallel_for(sp_tensor_numel(y), 1 << 16,
                    uniform_bytes ? cpu_fill_memset_range : cpu_fill_range, &c);
}

/* Fills y with the attribute `name` (an int attribute exactly, a float one
 * through double), or with dflt when it is absent. */
static sp_status cpu_fill_value(sp_tensor *y, const sp_attr *v, double dflt) {
    unsigned char pat[8] = {0};
    if (v && (v->kind == SP_ATTR_INT || (v->kind == SP_ATTR_INTS && v->n == 1)))
        sp_store_i64(y->dtype, pat, v->kind == SP_ATTR_INT ? v->i : v->ints[0]);
    else
        sp_store_f64(y->dtype, pat, v ? (v->kind == SP_ATTR_FLOAT ? v->f : dflt) : dflt);
    cpu_fill_pattern(y, pat);
    return SP_OK;
}

sp_status cpu_full(const sp_kernel_args *a) {
    const sp_attr *v = sp_attrs_find(a->attrs, "value");
    if (!v || (v->kind != SP_ATTR_INT && v->kind != SP_ATTR_FLOAT &&
               !(v->kind == SP_ATTR_INTS && v->n == 1)))
        return sp_error(SP_ERR_ARG, "full: attribute 'value' must be a number");
    return cpu_fill_value(a->out[0], v, 0);
}

sp_status cpu_zeros(const sp_kernel_args *a) { return cpu_fill_value(a->out[0], NULL, 0); }

sp_status cpu_ones(const sp_kernel_args *a) { return cpu_fill_value(a->out[0], NULL, 1); }

/* ---- arange ---- */

typedef struct {
    char *data;
    sp_dtype dtype;
    size_t esize;
    int integral;
    int64_t istart, istep;
    double start, step;
} cpu_arange_ctx;

static void cpu_arange_range(void *ctx_, int64_t b, int64_t e) {
    const cpu_arange_ctx *c = ctx_;
    for (int64_t i = b; i < e; i++) {
        void *p = c->data + (size_t)i * c->esize;
        if (c->integral) {
            uint64_t v = (uint64_t)c->istart + (uint64_t)i * (uint64_t)c->istep;
            int64_t iv;
            memcpy(&iv, &v, sizeof iv);
            sp_store_i64(c->dtype, p, iv);
        } else {
            sp_store_f64(c->dtype, p, c->start + (double)i * c->step);
        }
    }
}

static int cpu_attr_is_int(const sp_attrs *attrs, const char *name) {
    const sp_attr *a = sp_attrs_find(attrs, name);
    return !a || a->kind == SP_ATTR_INT || (a->kind == SP_ATTR_INTS && a->n == 1);
}

sp_status cpu_arange(const sp_kernel_args *a) {
    sp_tensor *y = a->out[0];
    const sp_attrs *at = a->attrs;
    cpu_arange_ctx c = {
        .data = sp_tensor_data(y),
        .dtype = y->dtype,
        .esize = sp_dtype_size(y->dtype),
        .integral = cpu_attr_is_int(at, "start") && cpu_attr_is_int(at, "stop") &&
                    cpu_attr_is_int(at, "step"),
        .istart = sp_attrs_get_int(at, "start", 0),
        .istep = sp_attrs_get_int(at, "step", 1),
        .start = sp_attrs_get_float(at, "start", 0),
        .step = sp_attrs_get_float(at, "step", 1),
    };
    sp_parallel_for(sp_tensor_numel(y), 1 << 14, cpu_arange_range, &c);
    return SP_OK;
}
