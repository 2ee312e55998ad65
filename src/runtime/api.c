/*
 * api.c -- the functional API of api.def: the table of its rows, the
 * impl functions of the rows a table cannot say, the module attributes of
 * spore, spore.ops and math, and the Tensor methods.
 *
 * A function is the value partial(builtin.api, "ops.sum") (see rt.h), so a
 * call arrives as builtin.api("ops.sum", args...): rt_api_call in
 * api_bind.c finds the row, binds the arguments to MindSpore's parameters
 * by Python's rules (the parameter strings parsed once) and calls the
 * row's impl function here, or the generic path.
 *
 * GENERIC rows need nothing else: tensor parameters become the
 * primitive's inputs in order, the rest attributes under their attribute
 * names, None meaning "absent" (the primitive's default).  The impl
 * functions below handle what a table row cannot say, each in a few lines
 * on top of the same bound arguments.
 *
 * Every error names the function as the user wrote it ("ops.sum()",
 * "Tensor.reshape()") and the parameter involved.
 *
 * In meta mode (rt_meta_mode: a trace installed or a meta tensor) the
 * views and copies below (reshape, squeeze, transpose, casts, default
 * layer-norm weights) are primitive calls, never core views, so that a
 * traced API call is exactly the primitive calls it made.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ad/ad.h"
#include "runtime/rt.h"


/* sp_tensor_reshape, noted for autodiff as the reshape primitive it stands
 * for (a view where it can be one). */
static sp_status reshape_noted(sp_tensor *t, int n, const int64_t *shape, sp_tensor **out) {
    /* the core copies a strided tensor only on the CPU: elsewhere the
     * primitive makes the contiguous copy */
    if (rt_meta_mode(t) || (t->buf->device.type != SP_DEVICE_CPU && !sp_tensor_is_contiguous(t))) {
        sp_attrs a;
        sp_attrs_init(&a);
        if (sp_attrs_set_ints(&a, "shape", n, shape) != SP_OK) return sp_last_status();
        *out = rt_op1(SP_OP_RESHAPE, 1, &t, &a);
        return *out ? SP_OK : sp_last_status();
    }
    sp_status st = sp_tensor_reshape(t, n, shape, out);
    if (st == SP_OK) {
        sp_attrs a;
        sp_attrs_init(&a);
        int64_t s[SP_MAX_DIMS];
        for (int i = 0; i < (*out)->ndim; i++) s[i] = (*out)->shape[i];
        if (sp_attrs_set_ints(&a, "shape", (*out)->ndim, s) == SP_OK) ad_record_op(SP_OP_RESHAPE, 1, &t, &a, 1, out);
    }
    return st;
}

/* In meta mode, a view `v` of t that core made (squeeze, unsqueeze) is
 * replaced by the RESHAPE primitive to its shape; otherwise v itself,
 * noted for autodiff as that RESHAPE.  Takes v's reference; NULL + error. */
static sp_tensor *view_noted(sp_tensor *t, sp_tensor *v) {
    if (v && !rt_meta_mode(t)) {
        sp_attrs a;
        sp_attrs_init(&a);
        if (sp_attrs_set_ints(&a, "shape", v->ndim, v->shape) == SP_OK) ad_record_op(SP_OP_RESHAPE, 1, &t, &a, 1, &v);
    }
    if (!v || !rt_meta_mode(t)) return v;
    sp_tensor *out = NULL;
    sp_status st = reshape_noted(t, v->ndim, v->shape, &out);
    sp_tensor_release(v);
    return st ? NULL : out;
}

#include "runtime/api_internal.h"

/* ---- the impl functions (defined below) ---- */
static sp_value *api_tensor(api_call *c);
static sp_value *api_set_seed(api_call *c);
static sp_value *api_get_seed(api_call *c);
static sp_value *api_full(api_call *c);
static sp_value *api_full_like(api_call *c);
static sp_value *api_arange(api_call *c);
static sp_value *api_random(api_call *c);
static sp_value *api_bernoulli(api_call *c);
static sp_value *api_leaky_relu(api_call *c);
static sp_value *api_div(api_call *c);
static sp_value *api_identity(api_call *c);
static sp_value *api_reduce(api_call *c);
static sp_value *api_all_any(api_call *c);
static sp_value *api_shape(api_call *c);
static sp_value *api_rank(api_call *c);
static sp_value *api_numel(api_call *c);
static sp_value *api_split(api_call *c);
static sp_value *api_pad(api_call *c);
static sp_value *api_gather_elements(api_call *c);
static sp_value *api_scatter_add(api_call *c);
static sp_value *api_one_hot(api_call *c);
static sp_value *api_squeeze(api_call *c);
static sp_value *api_unsqueeze(api_call *c);
static sp_value *api_flatten(api_call *c);
static sp_value *api_conv2d(api_call *c);
static sp_value *api_dropout(api_call *c);
static sp_value *api_layer_norm(api_call *c);
static sp_value *api_batch_norm(api_call *c);
static sp_value *api_cross_entropy(api_call *c);
static sp_value *api_embedding(api_call *c);
static sp_value *api_math(api_call *c);
static sp_value *api_reshape_method(api_call *c);
static sp_value *api_transpose_method(api_call *c);
static sp_value *api_cast_to(api_call *c);
static sp_value *api_item(api_call *c);
static sp_value *api_tolist(api_call *c);
static sp_value *api_copy(api_call *c);
static sp_value *api_grad(api_call *c);
static sp_value *api_grad_operation(api_call *c);
static sp_value *api_grad_operation_new(api_call *c);

#define API_PRIM(P) SP_OP_##P
const api_row api_rows[] = {
#define SP_API(MOD, name, PRIM, params, impl) {MOD_##MOD, #name, API_PRIM(PRIM), params, API_IMPL_##impl},
#define API_IMPL_GENERIC NULL
#define API_IMPL_tensor api_tensor
#define API_IMPL_set_seed api_set_seed
#define API_IMPL_get_seed api_get_seed
#define API_IMPL_full api_full
#define API_IMPL_full_like api_full_like
#define API_IMPL_arange api_arange
#define API_IMPL_random api_random
#define API_IMPL_bernoulli api_bernoulli
#define API_IMPL_leaky_relu api_leaky_relu
#define API_IMPL_div api_div
#define API_IMPL_identity api_identity
#define API_IMPL_reduce api_reduce
#define API_IMPL_all_any api_all_any
#define API_IMPL_shape api_shape
#define API_IMPL_rank api_rank
#define API_IMPL_numel api_numel
#define API_IMPL_split api_split
#define API_IMPL_pad api_pad
#define API_IMPL_gather_elements api_gather_elements
#define API_IMPL_scatter_add api_scatter_add
#define API_IMPL_one_hot api_one_hot
#define API_IMPL_squeeze api_squeeze
#define API_IMPL_unsqueeze api_unsqueeze
#define API_IMPL_flatten api_flatten
#define API_IMPL_conv2d api_conv2d
#define API_IMPL_dropout api_dropout
#define API_IMPL_layer_norm api_layer_norm
#define API_IMPL_batch_norm api_batch_norm
#define API_IMPL_cross_entropy api_cross_entropy
#define API_IMPL_embedding api_embedding
#define API_IMPL_math api_math
#define API_IMPL_reshape_method api_reshape_method
#define API_IMPL_transpose_method api_transpose_method
#define API_IMPL_cast_to api_cast_to
#define API_IMPL_item api_item
#define API_IMPL_tolist api_tolist
#define API_IMPL_copy api_copy
#define API_IMPL_grad api_grad
#define API_IMPL_grad_operation api_grad_operation
#define API_IMPL_grad_operation_new api_grad_operation_new
#include "runtime/api.def"
#undef SP_API
};

/* partial(builtin.api, "<qualified>"[, self]) */
static sp_value *api_value(int module, const char *name, const sp_value *self) {
    char q[96];
    snprintf(q, sizeof q, "%s.%s", api_module_prefix(module), name);
    sp_value *fn = sp_value_builtin(RT_B_API), *s = sp_value_str(q, strlen(q)), *r = NULL;
    if (fn && s) {
        sp_value *a[2] = {s, (sp_value *)self};
        r = sp_value_partial(fn, self ? 2 : 1, a);
    }
    sp_value_release(fn);
    sp_value_release(s);
    return r;
}

int rt_is_tensor_type(const sp_value *v) {
    return v->kind == SP_V_PARTIAL && v->u.partial.fn->kind == SP_V_BUILTIN &&
           v->u.partial.fn->u.builtin == RT_B_API && v->u.partial.n == 1 &&
           v->u.partial.args[0]->kind == SP_V_STR && !strcmp(v->u.partial.args[0]->u.str.s, "spore.Tensor");
}

sp_value *rt_tensor_method(const sp_value *x, const char *name) {
    return api_find_row(MOD_TENSOR, name) ? api_value(MOD_TENSOR, name, x) : NULL;
}

static int dtype_named(const char *name, sp_dtype *d) {
    static const struct {
        const char *name;
        sp_dtype d;
    } extra[] = {{"bool_", SP_BOOL}, {"float_", SP_F32}, {"half", SP_F16}, {"single", SP_F32}, {"double", SP_F64}};
    for (int i = 0; i < SP_DTYPE_COUNT; i++)
        if (!strcmp(sp_dtype_name((sp_dtype)i), name)) {
            *d = (sp_dtype)i;
            return 1;
        }
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (!strcmp(extra[i].name, name)) {
            *d = extra[i].d;
            return 1;
        }
    return 0;
}

sp_value *rt_module_attr(int module, const char *name) {
    sp_dtype d;
    switch (module) {
    case SP_MOD_SPORE:
        if (dtype_named(name, &d)) return sp_value_dtype(d);
        if (!strcmp(name, "ops")) return sp_value_module(SP_MOD_OPS);
        if (!strcmp(name, "nn")) return sp_value_module(SP_MOD_NN);
        if (!strcmp(name, "prim")) return sp_value_module(SP_MOD_PRIM);
        if (api_find_row(MOD_SPORE, name)) return api_value(MOD_SPORE, name, NULL);
        if (api_find_row(MOD_OPS, name)) {
            sp_error(SP_ERR_TYPE, "module 'spore' has no attribute '%s' (did you mean spore.ops.%s?)", name, name);
            return NULL;
        }
        break;
    case SP_MOD_OPS:
        if (api_find_row(MOD_OPS, name)) return api_value(MOD_OPS, name, NULL);
        for (int op = 0; op < sp_op_count(); op++)
            if (!strcmp(sp_op_name(op), name)) return sp_value_prim(op);
        break;
    case SP_MOD_MATH:
        if (!strcmp(name, "pi")) return sp_value_float(3.141592653589793);
        if (!strcmp(name, "e")) return sp_value_float(2.718281828459045);
        if (!strcmp(name, "tau")) return sp_value_float(6.283185307179586);
        if (!strcmp(name, "inf")) return sp_value_float(INFINITY);
        if (!strcmp(name, "nan")) return sp_value_float(NAN);
        if (api_find_row(MOD_MATH, name)) return api_value(MOD_MATH, name, NULL);
        break;
    case SP_MOD_PRIM:
        for (int op = 0; op < sp_op_count(); op++)
            if (!strcmp(sp_op_name(op), name)) return sp_value_prim(op);
        sp_error(SP_ERR_TYPE, "module 'spore.prim' has no primitive '%s' (see src/ops/ops.def)", name);
        return NULL;
    case SP_MOD_NN:
        sp_error(SP_ERR_UNSUPPORTED, "spore.nn.%s: the nn layers are not available yet (use spore.ops)", name);
        return NULL;
    default: break;
    }
    const char *mn = module == SP_MOD_SPORE ? "spore" : module == SP_MOD_OPS ? "spore.ops" : "math";
    sp_error(SP_ERR_TYPE, "module '%s' has no attribute '%s'", mn, name);
    return NULL;
}

/* ---- impl helpers ------------------------------------------------------------------- */

static sp_tensor *targ(api_call *c, const char *name) {
    const sp_value *v = api_arg(c, name);
    if (!v) return NULL;
    if (v->kind == SP_V_TENSOR) {
        sp_tensor_retain(v->u.tensor);
        return v->u.tensor;
    }
    char what[112];
    return rt_as_tensor(v, api_weak_dtype(c), api_what(c, name, what, sizeof what));
}

static int dtype_arg(api_call *c, const char *name, int dflt) {
    const sp_value *v = api_arg(c, name);
    if (api_is_none(v)) return dflt;
    if (v->kind == SP_V_DTYPE) return v->u.dtype;
    sp_error(SP_ERR_TYPE, "%s() argument '%s' must be a dtype such as spore.float32, not %s", c->qname, name,
             sp_value_kind_name(v));
    return -2;
}

static sp_tensor *cast_t(sp_tensor *t, sp_dtype d) {
    /* rt_cast: the CAST primitive (noted for autodiff by rt_op) off the CPU */
    if (rt_meta_mode(t) || t->buf->device.type != SP_DEVICE_CPU) return rt_cast(t, d);
    sp_tensor *out = NULL;
    if (sp_tensor_cast(t, d, &out) != SP_OK) return NULL;
    sp_attrs a;
    sp_attrs_init(&a);
    if (sp_attrs_set_dtype(&a, "dtype", d) == SP_OK) ad_record_op(SP_OP_CAST, 1, &t, &a, 1, &out);
    return out;
}

static sp_value *tuple_ints(int n, const int64_t *x) {
    sp_value *items[SP_MAX_DIMS * 2] = {0};
    int k;
    for (k = 0; k < n; k++)
        if (!(items[k] = sp_value_int(x[k]))) break;
    sp_value *r = k == n ? sp_value_tuple(n, items) : NULL;
    for (int i = 0; i < k; i++) sp_value_release(items[i]);
    return r;
}

/* Shape from *args: (2, 3), ((2, 3),) or ([2, 3],). */
static int shape_from_varargs(api_call *c, const sp_value *va, int64_t *shape, int *n) {
    const sp_value *s = va;
    if (va->u.seq.n == 1 && (api_is_seq(va->u.seq.items[0]))) s = va->u.seq.items[0];
    char what[96];
    snprintf(what, sizeof what, "%s() shape", c->qname);
    return rt_ints_of(s, shape, n, what);
}

/* r, a new tensor value made without inputs (so on the default device),
 * moved to the device of x when that differs: ..._like and bernoulli keep
 * their input's device.  Takes r; NULL + error. */
static sp_value *on_device_of(const sp_tensor *x, sp_value *r) {
    if (!r || r->kind != SP_V_TENSOR || !x->buf) return r;
    sp_device want = x->buf->device, have = r->u.tensor->buf->device;
    if (want.type == SP_DEVICE_META || have.type == SP_DEVICE_META ||
        (want.type == have.type && (want.type == SP_DEVICE_CPU || want.index == have.index)))
        return r;
    sp_tensor *t = NULL;
    sp_status st = sp_tensor_to(r->u.tensor, want, &t);
    sp_value_release(r);
    return st == SP_OK ? rt_wrap(t) : NULL;
}

/* ---- impl functions --------------------------------------------------------------------- */

static sp_value *api_tensor(api_call *c) {
    const sp_value *data = api_arg(c, "input_data") ? api_arg(c, "input_data") : api_arg(c, "data");
    int d = dtype_arg(c, "dtype", -1);
    if (d == -2) return NULL;
    if (api_is_none(data)) {
        sp_error(SP_ERR_ARG, "%s(): no data given", c->qname);
        return NULL;
    }
    if (rt_is_scalar(data)) {
        /* made by the user, so on the default device (a scalar operand's
         * 0-d tensor stays on the CPU: rt_as_tensor) */
        return rt_wrap(rt_to_default(rt_as_tensor(data, d, c->qname)));
    }
    return rt_wrap(rt_tensor_from_data(data, d, c->qname));
}

static sp_value *api_set_seed(api_call *c) {
    int64_t s;
    if (rt_int_of(api_arg(c, "seed"), &s, "spore.set_seed()")) return NULL;
    if (s < 0) {
        sp_error(SP_ERR_ARG, "spore.set_seed(): the seed must be >= 0, not %lld", (long long)s);
        return NULL;
    }
    sp_set_seed((uint64_t)s);
    return sp_value_none();
}

static sp_value *api_get_seed(api_call *c) {
    (void)c;
    return sp_value_int((int64_t)sp_get_seed());
}

static sp_value *api_full(api_call *c) {
    sp_attrs a;
    sp_attrs_init(&a);
    const sp_value *fv = api_arg(c, "fill_value");
    double v;
    if (api_attr_from(c, &c->p[0], c->v[0], &a) || rt_float_of(fv, &v, "ops.full() fill_value")) return NULL;
    int d = dtype_arg(c, "dtype", fv->kind == SP_V_FLOAT ? SP_F32 : fv->kind == SP_V_INT ? SP_I64
                                 : fv->kind == SP_V_BOOL ? SP_BOOL : fv->kind == SP_V_TENSOR ? (int)fv->u.tensor->dtype
                                                                                              : SP_F32);
    if (d < 0) return NULL;
    sp_attrs_set_float(&a, "value", v);
    sp_attrs_set_dtype(&a, "dtype", (sp_dtype)d);
    return rt_op(SP_OP_FULL, 0, NULL, &a);
}

static sp_value *api_full_like(api_call *c) {
    const sp_value *x = api_arg(c, "input");
    if (x->kind != SP_V_TENSOR) {
        sp_error(SP_ERR_TYPE, "%s() argument 'input' must be a Tensor, not %s", c->qname, sp_value_kind_name(x));
        return NULL;
    }
    int d = dtype_arg(c, "dtype", x->u.tensor->dtype);
    if (d < 0) return NULL;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", x->u.tensor->ndim, x->u.tensor->shape);
    sp_attrs_set_dtype(&a, "dtype", (sp_dtype)d);
    const sp_value *fv = api_arg(c, "fill_value");
    if (fv) {
        double v;
        if (rt_float_of(fv, &v, "ops.full_like() fill_value")) return NULL;
        sp_attrs_set_float(&a, "value", v);
    }
    return on_device_of(x->u.tensor, rt_op(c->row->prim, 0, NULL, &a));
}

static sp_value *api_arange(api_call *c) {
    const sp_value *s = api_arg(c, "start"), *e = api_arg(c, "end"), *st = api_arg(c, "step");
    double v[3];
    int is_float = 0;
    if (api_is_none(e)) {
        e = s;
        s = NULL;
    }
    const sp_value *src[3] = {s, e, st};
    for (int i = 0; i < 3; i++) {
        if (!src[i]) {
            v[i] = 0;
            continue;
        }
        if (rt_float_of(src[i], &v[i], "ops.arange()")) return NULL;
        is_float |= src[i]->kind == SP_V_FLOAT ||
                    (src[i]->kind == SP_V_TENSOR && sp_dtype_is_float(src[i]->u.tensor->dtype));
    }
    int d = dtype_arg(c, "dtype", is_float ? SP_F32 : SP_I64);
    if (d < 0) return NULL;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "start", v[0]);
    sp_attrs_set_float(&a, "stop", v[1]);
    sp_attrs_set_float(&a, "step", v[2]);
    sp_attrs_set_dtype(&a, "dtype", (sp_dtype)d);
    return rt_op(SP_OP_ARANGE, 0, NULL, &a);
}

static sp_value *api_random(api_call *c) {
    int64_t shape[SP_MAX_ATTR_INTS];
    int n;
    if (shape_from_varargs(c, api_arg(c, "size"), shape, &n)) return NULL;
    int d = dtype_arg(c, "dtype", SP_F32);
    if (d < 0) return NULL;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", n, shape);
    sp_attrs_set_dtype(&a, "dtype", (sp_dtype)d);
    const sp_value *seed = api_arg(c, "seed");
    if (!api_is_none(seed)) {
        int64_t s;
        if (rt_int_of(seed, &s, "seed")) return NULL;
        sp_attrs_set_int(&a, "seed", s);
        sp_attrs_set_int(&a, "offset", 0);
    }
    return rt_op(c->row->prim, 0, NULL, &a);
}

static sp_value *api_bernoulli(api_call *c) {
    const sp_value *x = api_arg(c, "input");
    sp_tensor *t = targ(c, "input");
    if (!t) return NULL;
    (void)x;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", t->ndim, t->shape);
    sp_attrs_set_dtype(&a, "dtype", t->dtype);
    sp_value *r = NULL;
    for (int k = 1; k < c->n; k++)
        if (api_attr_from(c, &c->p[k], c->v[k], &a)) goto done;
    if (sp_attrs_find(&a, "seed")) sp_attrs_set_int(&a, "offset", 0);
    r = on_device_of(t, rt_op(SP_OP_BERNOULLI, 0, NULL, &a));
done:
    sp_tensor_release(t);
    return r;
}

static sp_value *api_leaky_relu(api_call *c) {
    sp_tensor *x = targ(c, "input");
    double alpha;
    if (!x || rt_float_of(api_arg(c, "alpha"), &alpha, "ops.leaky_relu() alpha")) {
        sp_tensor_release(x);
        return NULL;
    }
    sp_tensor *zero = sp_tensor_scalar(x->dtype, 0), *al = sp_tensor_scalar(x->dtype, alpha);
    sp_tensor *cmp_in[2] = {x, zero}, *mul_in[2] = {x, al};
    sp_tensor *pos = zero && al ? rt_op1(SP_OP_GREATER_EQUAL, 2, cmp_in, NULL) : NULL;
    sp_tensor *neg = pos ? rt_op1(SP_OP_MUL, 2, mul_in, NULL) : NULL;
    sp_tensor *w_in[3] = {pos, x, neg};
    sp_value *r = neg ? rt_op(SP_OP_WHERE, 3, w_in, NULL) : NULL;
    sp_tensor_release(pos);
    sp_tensor_release(neg);
    sp_tensor_release(zero);
    sp_tensor_release(al);
    sp_tensor_release(x);
    return r;
}

static sp_value *api_div(api_call *c) {
    const sp_value *mode = api_arg(c, "rounding_mode");
    if (api_is_none(mode)) return api_run_generic(c, SP_OP_DIV);
    if (mode->kind == SP_V_STR && !strcmp(mode->u.str.s, "floor")) return api_run_generic(c, SP_OP_FLOOR_DIV);
    if (mode->kind == SP_V_STR && !strcmp(mode->u.str.s, "trunc")) {
        sp_value *q = api_run_generic(c, SP_OP_DIV);
        if (!q) return NULL;
        sp_tensor *t = q->u.tensor, *fl = NULL, *ce = NULL, *neg = NULL, *zero = NULL;
        sp_value *r = NULL;
        if (!sp_dtype_is_float(t->dtype)) return q;
        zero = sp_tensor_scalar(t->dtype, 0);
        sp_tensor *lt_in[2] = {t, zero};
        fl = zero ? rt_op1(SP_OP_FLOOR, 1, &t, NULL) : NULL;
        ce = fl ? rt_op1(SP_OP_CEIL, 1, &t, NULL) : NULL;
        neg = ce ? rt_op1(SP_OP_LESS, 2, lt_in, NULL) : NULL;
        sp_tensor *w[3] = {neg, ce, fl};
        if (neg) r = rt_op(SP_OP_WHERE, 3, w, NULL);
        sp_tensor_release(fl);
        sp_tensor_release(ce);
        sp_tensor_release(neg);
        sp_tensor_release(zero);
        sp_value_release(q);
        return r;
    }
    sp_error(SP_ERR_ARG, "ops.div(): rounding_mode must be None, 'floor' or 'trunc'");
    return NULL;
}

static sp_value *api_identity(api_call *c) { return rt_wrap(targ(c, "input")); }

/* Reductions with a dtype parameter: cast first, then the primitive; a
 * Tensor.cumsum without an axis runs over the flattened tensor. */
static sp_value *api_reduce(api_call *c) {
    int d = dtype_arg(c, "dtype", -1);
    if (d == -2) return NULL;
    sp_value *orig = (sp_value *)c->v[0];
    sp_tensor *t = targ(c, c->p[0].names[0]);
    if (!t) return NULL;
    sp_value *tmp = NULL;
    int64_t flat = -1;
    const sp_value *ax = api_arg(c, "axis");
    if (c->row->prim == SP_OP_CUMSUM && c->row->module == MOD_TENSOR && api_is_none(ax)) {
        sp_tensor *f = NULL;
        if (reshape_noted(t, 1, &flat, &f) != SP_OK) {
            sp_tensor_release(t);
            return NULL;
        }
        sp_tensor_release(t);
        t = f;
    }
    if (d >= 0 && (sp_dtype)d != t->dtype) {
        sp_tensor *ct = cast_t(t, (sp_dtype)d);
        sp_tensor_release(t);
        if (!(t = ct)) return NULL;
    }
    tmp = rt_wrap(t);
    if (!tmp) return NULL;
    c->v[0] = tmp;
    sp_value *r = api_run_generic(c, c->row->prim);
    c->v[0] = orig;
    sp_value_release(tmp);
    return r;
}

static sp_value *api_all_any(api_call *c) {
    int is_all = !strcmp(c->row->name, "all");
    sp_tensor *t = targ(c, c->p[0].names[0]);
    if (!t) return NULL;
    sp_tensor *zero = sp_tensor_scalar(t->dtype, 0), *nz = NULL, *i32 = NULL, *red = NULL;
    sp_tensor *ne_in[2] = {t, zero};
    sp_value *r = NULL;
    sp_attrs a;
    sp_attrs_init(&a);
    if (zero && (nz = rt_op1(SP_OP_NOT_EQUAL, 2, ne_in, NULL)) && (i32 = cast_t(nz, SP_I32)) &&
        !api_attr_from(c, &c->p[1], c->v[1], &a)) {
        if (sp_attrs_find(&a, "axis")) {
            int n;
            const int64_t *ax = sp_attrs_get_ints(&a, "axis", &n);
            int64_t axes[SP_MAX_ATTR_INTS];
            memcpy(axes, ax, sizeof *axes * (size_t)n);
            sp_attrs_init(&a);
            sp_attrs_set_ints(&a, "axes", n, axes);
        }
        int keep = sp_value_truth(c->v[2]);
        sp_attrs_set_int(&a, "keepdims", keep > 0);
        if (i32->ndim == 0 || sp_tensor_numel(i32) > 0) {
            red = rt_op1(is_all ? SP_OP_MIN : SP_OP_MAX, 1, &i32, &a);
        } else { /* empty: all() is True, any() is False */
            red = sp_tensor_scalar(SP_I32, is_all);
        }
        if (red) r = rt_wrap(cast_t(red, SP_BOOL));
    }
    sp_tensor_release(red);
    sp_tensor_release(i32);
    sp_tensor_release(nz);
    sp_tensor_release(zero);
    sp_tensor_release(t);
    return r;
}

static const sp_tensor *tensor_arg0(api_call *c) {
    const sp_value *v = c->v[0];
    if (v->kind != SP_V_TENSOR) {
        sp_error(SP_ERR_TYPE, "%s() argument '%s' must be a Tensor, not %s", c->qname, c->p[0].names[0],
                 sp_value_kind_name(v));
        return NULL;
    }
    return v->u.tensor;
}

static sp_value *api_shape(api_call *c) {
    const sp_tensor *t = tensor_arg0(c);
    return t ? tuple_ints(t->ndim, t->shape) : NULL;
}

static sp_value *api_rank(api_call *c) {
    const sp_tensor *t = tensor_arg0(c);
    return t ? sp_value_int(t->ndim) : NULL;
}

static sp_value *api_numel(api_call *c) {
    const sp_tensor *t = tensor_arg0(c);
    return t ? sp_value_int(sp_tensor_numel(t)) : NULL;
}

static sp_value *api_split(api_call *c) {
    sp_tensor *t = targ(c, "tensor");
    if (!t) return NULL;
    int64_t axis, sizes[SP_MAX_ATTR_INTS];
    int n = 0, ax;
    sp_value *r = NULL;
    const sp_value *s = api_arg(c, "split_size_or_sections");
    if (rt_int_of(api_arg(c, "axis"), &axis, "ops.split() axis") || sp_norm_axis("split", axis, t->ndim, &ax)) goto done;
    if (s->kind == SP_V_INT) {
        int64_t len = t->shape[ax], k = s->u.i;
        if (k <= 0) {
            sp_error(SP_ERR_ARG, "ops.split(): split_size must be positive, not %lld", (long long)k);
            goto done;
        }
        for (int64_t at = 0; at < len || (len == 0 && n == 0); at += k) {
            if (n == SP_MAX_ATTR_INTS) {
                sp_error(SP_ERR_ARG, "ops.split(): more than %d pieces", SP_MAX_ATTR_INTS);
                goto done;
            }
            sizes[n++] = len - at < k ? len - at : k;
            if (len == 0) break;
        }
    } else if (rt_ints_of(s, sizes, &n, "ops.split() split_size_or_sections")) {
        goto done;
    }
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", ax);
    sp_attrs_set_ints(&a, "sizes", n, sizes);
    r = rt_op(SP_OP_SPLIT, 1, &t, &a);
    if (r && r->kind == SP_V_TENSOR) { /* one piece: still a tuple */
        sp_value *tup = sp_value_tuple(1, &r);
        sp_value_release(r);
        r = tup;
    }
done:
    sp_tensor_release(t);
    return r;
}

static sp_value *api_pad(api_call *c) {
    sp_tensor *t = targ(c, "input_x");
    if (!t) return NULL;
    int64_t pad[SP_MAX_ATTR_INTS], pads[SP_MAX_ATTR_INTS] = {0};
    int n;
    sp_value *r = NULL;
    if (rt_ints_of(api_arg(c, "padding"), pad, &n, "ops.pad() padding")) goto done;
    if (n % 2 || n / 2 > t->ndim) {
        sp_error(SP_ERR_ARG, "ops.pad(): padding needs pairs (left, right) for at most %d dimensions, got %d values",
                 t->ndim, n);
        goto done;
    }
    /* MindSpore/torch order: the last dimension's pair first */
    for (int j = 0; j < n / 2; j++) {
        int d = t->ndim - 1 - j;
        pads[2 * d] = pad[2 * j];
        pads[2 * d + 1] = pad[2 * j + 1];
    }
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "pads", 2 * t->ndim, pads);
    if (api_attr_from(c, &c->p[2], c->v[2], &a) || api_attr_from(c, &c->p[3], c->v[3], &a)) goto done;
    r = rt_op(SP_OP_PAD, 1, &t, &a);
done:
    sp_tensor_release(t);
    return r;
}

static sp_value *api_gather_elements(api_call *c) {
    sp_tensor *in[2] = {targ(c, "input"), targ(c, "index")};
    int64_t dim;
    sp_value *r = NULL;
    if (in[0] && in[1] && !rt_int_of(api_arg(c, "dim"), &dim, "ops.gather_elements() dim")) {
        sp_attrs a;
        sp_attrs_init(&a);
        sp_attrs_set_int(&a, "axis", dim);
        r = rt_op(SP_OP_TAKE_ALONG_AXIS, 2, in, &a);
    }
    sp_tensor_release(in[0]);
    sp_tensor_release(in[1]);
    return r;
}

static sp_value *api_scatter_add(api_call *c) {
    sp_tensor *in[3] = {targ(c, "input"), targ(c, "index"), targ(c, "src")};
    int64_t dim;
    sp_value *r = NULL;
    if (in[0] && in[1] && in[2] && !rt_int_of(api_arg(c, "dim"), &dim, "ops.scatter_add() dim")) {
        sp_attrs a;
        sp_attrs_init(&a);
        sp_attrs_set_int(&a, "axis", dim);
        r = rt_op(SP_OP_SCATTER_ADD, 3, in, &a);
    }
    for (int i = 0; i < 3; i++) sp_tensor_release(in[i]);
    return r;
}

static sp_value *api_one_hot(api_call *c) {
    int64_t axis;
    if (rt_int_of(api_arg(c, "axis"), &axis, "ops.one_hot() axis")) return NULL;
    const sp_value *ix = api_arg(c, "indices");
    int nd = ix->kind == SP_V_TENSOR ? ix->u.tensor->ndim : 0;
    if (axis != -1 && axis != nd) {
        sp_error(SP_ERR_UNSUPPORTED, "ops.one_hot(): only axis=-1 (the new last axis) is supported, not %lld",
                 (long long)axis);
        return NULL;
    }
    c->skip |= 1u << 4; /* on_value/off_value: not attributes of the primitive */
    return api_run_generic(c, SP_OP_ONE_HOT);
}

static sp_value *api_squeeze(api_call *c) {
    sp_tensor *t = targ(c, c->p[0].names[0]), *out = NULL;
    if (!t) return NULL;
    const sp_value *ax = c->v[1];
    sp_status st = SP_OK;
    if (api_is_none(ax)) {
        st = sp_tensor_squeeze(t, SP_ALL_AXES, &out);
    } else {
        int64_t axes[SP_MAX_ATTR_INTS];
        int n, norm[SP_MAX_ATTR_INTS];
        if (rt_ints_of(ax, axes, &n, "squeeze() axis")) st = SP_ERR_ARG;
        for (int i = 0; i < n && !st; i++) st = sp_norm_axis("squeeze", axes[i], t->ndim, &norm[i]);
        /* squeeze the highest axes first so the others keep their numbers */
        for (int i = 0; i < n && !st; i++)
            for (int j = i + 1; j < n; j++)
                if (norm[j] > norm[i]) {
                    int x = norm[i];
                    norm[i] = norm[j];
                    norm[j] = x;
                }
        sp_tensor_retain(t);
        out = t;
        for (int i = 0; i < n && !st; i++) {
            sp_tensor *o2 = NULL;
            st = sp_tensor_squeeze(out, norm[i], &o2);
            sp_tensor_release(out);
            out = st ? NULL : o2;
        }
    }
    if (!st && !(out = view_noted(t, out))) st = sp_last_status();
    sp_tensor_release(t);
    return st ? NULL : rt_wrap(out);
}

static sp_value *api_unsqueeze(api_call *c) {
    sp_tensor *t = targ(c, c->p[0].names[0]), *out = NULL;
    int64_t axis;
    sp_value *r = NULL;
    if (t && !rt_int_of(c->v[1], &axis, "axis") && axis >= INT32_MIN && axis <= INT32_MAX &&
        sp_tensor_unsqueeze(t, (int)axis, &out) == SP_OK)
        r = rt_wrap(view_noted(t, out));
    else if (t && sp_last_status() == SP_OK)
        sp_error(SP_ERR_ARG, "%s(): axis out of range", c->qname);
    sp_tensor_release(t);
    return r;
}

static sp_value *api_flatten(api_call *c) {
    sp_tensor *t = targ(c, c->p[0].names[0]), *out = NULL;
    if (!t) return NULL;
    int64_t s, e, shape[SP_MAX_DIMS];
    int si, ei, n = 0;
    sp_value *r = NULL;
    const sp_value *order = api_arg(c, "order");
    if (order->kind != SP_V_STR || strcmp(order->u.str.s, "C") != 0) {
        sp_error(SP_ERR_UNSUPPORTED, "%s(): only order='C' is supported", c->qname);
        goto done;
    }
    if (rt_int_of(api_arg(c, "start_dim"), &s, "start_dim") || rt_int_of(api_arg(c, "end_dim"), &e, "end_dim")) goto done;
    if (t->ndim == 0) {
        shape[n++] = 1;
    } else {
        if (sp_norm_axis("flatten", s, t->ndim, &si) || sp_norm_axis("flatten", e, t->ndim, &ei)) goto done;
        if (si > ei) {
            sp_error(SP_ERR_ARG, "%s(): start_dim %lld comes after end_dim %lld", c->qname, (long long)s, (long long)e);
            goto done;
        }
        for (int i = 0; i < si; i++) shape[n++] = t->shape[i];
        int64_t p = 1;
        for (int i = si; i <= ei; i++) p *= t->shape[i];
        shape[n++] = p;
        for (int i = ei + 1; i < t->ndim; i++) shape[n++] = t->shape[i];
    }
    if (reshape_noted(t, n, shape, &out) == SP_OK) r = rt_wrap(out);
done:
    sp_tensor_release(t);
    return r;
}

static sp_value *api_conv2d(api_call *c) {
    const sp_value *bias = api_arg(c, "bias");
    c->skip |= 1u << 2; /* the bias is added below, not a conv2d input */
    sp_value *y = api_run_generic(c, SP_OP_CONV2D);
    if (!y || api_is_none(bias)) return y;
    sp_tensor *b = targ(c, "bias"), *b4 = NULL;
    sp_value *r = NULL;
    int64_t shape[4] = {1, -1, 1, 1};
    if (b && reshape_noted(b, 4, shape, &b4) == SP_OK) {
        sp_tensor *in[2] = {y->u.tensor, b4};
        r = rt_op(SP_OP_ADD, 2, in, NULL);
    }
    sp_tensor_release(b4);
    sp_tensor_release(b);
    sp_value_release(y);
    return r;
}

static sp_value *api_dropout(api_call *c) {
    int training = sp_value_truth(api_arg(c, "training"));
    double p;
    if (training < 0 || rt_float_of(api_arg(c, "p"), &p, "ops.dropout() p")) return NULL;
    if (!training || p == 0) return rt_wrap(targ(c, "input"));
    sp_tensor *x = targ(c, "input");
    if (!x) return NULL;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_float(&a, "p", p);
    const sp_value *seed = api_arg(c, "seed");
    int64_t s;
    sp_value *r = NULL;
    if (!api_is_none(seed)) {
        if (rt_int_of(seed, &s, "seed")) goto done;
        sp_attrs_set_int(&a, "seed", s);
        sp_attrs_set_int(&a, "offset", 0);
    }
    r = rt_wrap(rt_op1(SP_OP_DROPOUT, 1, &x, &a));
done:
    sp_tensor_release(x);
    return r;
}

/* An optional parameter tensor of `shape`: the argument, or `fill` values
 * on the device of x. */
static sp_tensor *param_or(api_call *c, const sp_tensor *x, const char *name, int n, const int64_t *shape,
                           sp_dtype d, double fill) {
    if (!api_is_none(api_arg(c, name))) return targ(c, name);
    if (sp_op_tracing()) { /* a FULL the trace sees, not a constant */
        sp_attrs a;
        sp_attrs_init(&a);
        sp_attrs_set_ints(&a, "shape", n, shape);
        sp_attrs_set_float(&a, "value", fill);
        sp_attrs_set_dtype(&a, "dtype", d);
        return rt_op1(SP_OP_FULL, 0, NULL, &a);
    }
    sp_tensor *t = sp_tensor_new(d, n, shape, SP_CPU);
    if (t && sp_tensor_fill(t, fill) != SP_OK) {
        sp_tensor_release(t);
        return NULL;
    }
    if (t && x->buf && x->buf->device.type != SP_DEVICE_CPU && x->buf->device.type != SP_DEVICE_META) {
        sp_tensor *m = NULL;
        sp_status st = sp_tensor_to(t, x->buf->device, &m);
        sp_tensor_release(t);
        t = st == SP_OK ? m : NULL;
    }
    return t;
}

static sp_value *api_layer_norm(api_call *c) {
    sp_tensor *x = targ(c, "input"), *g = NULL, *b = NULL;
    int64_t ns[SP_MAX_ATTR_INTS];
    int n;
    double eps;
    sp_value *r = NULL;
    if (!x || rt_ints_of(api_arg(c, "normalized_shape"), ns, &n, "ops.layer_norm() normalized_shape") ||
        rt_float_of(api_arg(c, "eps"), &eps, "eps"))
        goto done;
    if (n > x->ndim || n == 0) {
        sp_error(SP_ERR_SHAPE, "ops.layer_norm(): normalized_shape has %d dims, the input %d", n, x->ndim);
        goto done;
    }
    g = param_or(c, x, "weight", n, ns, x->dtype, 1);
    b = g ? param_or(c, x, "bias", n, ns, x->dtype, 0) : NULL;
    if (!b) goto done;
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_int(&a, "axis", x->ndim - n);
    sp_attrs_set_float(&a, "epsilon", eps);
    sp_tensor *in[3] = {x, g, b};
    r = rt_wrap(rt_op1(SP_OP_LAYER_NORM, 3, in, &a));
done:
    sp_tensor_release(x);
    sp_tensor_release(g);
    sp_tensor_release(b);
    return r;
}

static sp_value *api_batch_norm(api_call *c) {
    sp_tensor *x = targ(c, "input_x"), *rm = targ(c, "running_mean"), *rv = targ(c, "running_var");
    sp_tensor *g = NULL, *b = NULL;
    sp_value *r = NULL;
    if (!x || !rm || !rv) goto done;
    if (x->ndim < 2) {
        sp_error(SP_ERR_SHAPE, "ops.batch_norm(): the input needs a channel axis (at least 2 dims), got %d", x->ndim);
        goto done;
    }
    g = param_or(c, x, "weight", 1, &x->shape[1], x->dtype, 1);
    b = g ? param_or(c, x, "bias", 1, &x->shape[1], x->dtype, 0) : NULL;
    if (!b) goto done;
    sp_attrs a;
    sp_attrs_init(&a);
    /* training, momentum and eps (as the primitive's `epsilon`, the row's
     * ">epsilon"): exactly the attributes the primitive and its gradient
     * rule take, so a recorded call differentiates */
    for (int k = 5; k < c->n; k++)
        if (api_attr_from(c, &c->p[k], c->v[k], &a)) goto done;
    sp_tensor *in[5] = {x, g, b, rm, rv};
    r = rt_wrap(rt_op1(SP_OP_BATCH_NORM, 5, in, &a));
done:
    sp_tensor_release(x);
    sp_tensor_release(rm);
    sp_tensor_release(rv);
    sp_tensor_release(g);
    sp_tensor_release(b);
    return r;
}

static sp_value *api_cross_entropy(api_call *c) {
    double ls;
    int64_t ig;
    if (!api_is_none(api_arg(c, "weight"))) {
        sp_error(SP_ERR_UNSUPPORTED, "ops.cross_entropy(): class weights are not supported yet");
        return NULL;
    }
    if (rt_float_of(api_arg(c, "label_smoothing"), &ls, "label_smoothing") || rt_int_of(api_arg(c, "ignore_index"), &ig, "ignore_index"))
        return NULL;
    if (ls != 0) {
        sp_error(SP_ERR_UNSUPPORTED, "ops.cross_entropy(): label_smoothing is not supported yet");
        return NULL;
    }
    const sp_value *t = api_arg(c, "target");
    if (t->kind == SP_V_TENSOR && sp_dtype_is_float(t->u.tensor->dtype)) {
        sp_error(SP_ERR_UNSUPPORTED, "ops.cross_entropy(): the target must hold class indices (int32/int64), "
                                     "not probabilities (%s)", sp_dtype_name(t->u.tensor->dtype));
        return NULL;
    }
    sp_tensor *in[2] = {targ(c, "input"), targ(c, "target")};
    sp_value *r = NULL;
    if (in[0] && in[1]) {
        sp_attrs a;
        sp_attrs_init(&a);
        if (!api_attr_from(c, &c->p[4], c->v[4], &a)) r = rt_op(SP_OP_SPARSE_SOFTMAX_CROSS_ENTROPY, 2, in, &a);
    }
    sp_tensor_release(in[0]);
    sp_tensor_release(in[1]);
    return r;
}

static sp_value *api_embedding(api_call *c) {
    if (!api_is_none(api_arg(c, "max_norm"))) {
        sp_error(SP_ERR_UNSUPPORTED, "ops.embedding(): max_norm is not supported yet");
        return NULL;
    }
    sp_tensor *in[2] = {targ(c, "weight"), targ(c, "input")};
    sp_value *r = in[0] && in[1] ? rt_op(SP_OP_EMBEDDING, 2, in, NULL) : NULL;
    sp_tensor_release(in[0]);
    sp_tensor_release(in[1]);
    return r;
}

static sp_value *api_math(api_call *c) {
    const char *f = c->row->name;
    double x, y = 0;
    char what[64];
    snprintf(what, sizeof what, "math.%s()", f);
    if (c->v[0]->kind == SP_V_TENSOR && sp_tensor_numel(c->v[0]->u.tensor) != 1) {
        sp_error(SP_ERR_TYPE, "%s takes a Python number, not a Tensor (use spore.ops.%s)", what, f);
        return NULL;
    }
    if (rt_float_of(c->v[0], &x, what)) return NULL;
    int two = c->n > 1 && !api_is_none(c->v[1]);
    if (two && rt_float_of(c->v[1], &y, what)) return NULL;
    if (!strcmp(f, "isnan")) return sp_value_bool(isnan(x));
    if (!strcmp(f, "isinf")) return sp_value_bool(isinf(x));
    if (!strcmp(f, "isfinite")) return sp_value_bool(isfinite(x));
    if (!strcmp(f, "floor") || !strcmp(f, "ceil") || !strcmp(f, "trunc")) {
        double r = f[0] == 'f' ? floor(x) : f[0] == 'c' ? ceil(x) : trunc(x);
        if (!(r > -9.2233720368547758e18 && r < 9.2233720368547758e18)) {
            sp_error(SP_ERR_RUNTIME, "%s: cannot convert %g to an integer", what, x);
            return NULL;
        }
        return sp_value_int((int64_t)r);
    }
    int domain = 0;
    double r;
    if (!strcmp(f, "sqrt")) domain = x < 0, r = sqrt(x);
    else if (!strcmp(f, "exp")) r = exp(x);
    else if (!strcmp(f, "log")) domain = x <= 0 || (two && y <= 0), r = two ? log(x) / log(y) : log(x);
    else if (!strcmp(f, "log2")) domain = x <= 0, r = log2(x);
    else if (!strcmp(f, "log10")) domain = x <= 0, r = log10(x);
    else if (!strcmp(f, "sin")) r = sin(x);
    else if (!strcmp(f, "cos")) r = cos(x);
    else if (!strcmp(f, "tan")) r = tan(x);
    else if (!strcmp(f, "tanh")) r = tanh(x);
    else if (!strcmp(f, "atan2")) r = atan2(x, y);
    else if (!strcmp(f, "erf")) r = erf(x);
    else if (!strcmp(f, "fabs")) r = fabs(x);
    else if (!strcmp(f, "pow")) domain = x < 0 && y != floor(y), r = pow(x, y);
    else r = NAN;
    if (domain) {
        sp_error(SP_ERR_ARG, "ValueError: %s: math domain error", what);
        return NULL;
    }
    return sp_value_float(r);
}

static sp_value *api_reshape_method(api_call *c) {
    sp_tensor *t = targ(c, "self"), *out = NULL;
    int64_t shape[SP_MAX_ATTR_INTS];
    int n;
    sp_value *r = NULL;
    if (t && !shape_from_varargs(c, api_arg(c, "shape"), shape, &n)) {
        if (n > SP_MAX_DIMS) sp_error(SP_ERR_SHAPE, "%s(): more than %d dimensions", c->qname, SP_MAX_DIMS);
        else if (reshape_noted(t, n, shape, &out) == SP_OK) r = rt_wrap(out);
    }
    sp_tensor_release(t);
    return r;
}

static sp_value *api_transpose_method(api_call *c) {
    sp_tensor *t = targ(c, "self"), *out = NULL;
    if (!t) return NULL;
    int64_t axes[SP_MAX_ATTR_INTS];
    int n = 0, perm[SP_MAX_DIMS];
    sp_value *r = NULL;
    const sp_value *va = c->v[1];
    if (va->u.seq.n == 0) {
        n = t->ndim;
        for (int i = 0; i < n; i++) axes[i] = n - 1 - i;
    } else if (shape_from_varargs(c, va, axes, &n)) {
        goto done;
    }
    if (n != t->ndim) {
        sp_error(SP_ERR_ARG, "%s(): axes don't match the tensor: %d axes for %d dimensions", c->qname, n, t->ndim);
        goto done;
    }
    for (int i = 0; i < n; i++)
        if (sp_norm_axis("transpose", axes[i], t->ndim, &perm[i])) goto done;
    if (rt_meta_mode(t)) {
        sp_attrs a;
        sp_attrs_init(&a);
        for (int i = 0; i < n; i++) axes[i] = perm[i];
        sp_attrs_set_ints(&a, "perm", n, axes);
        r = rt_wrap(rt_op1(SP_OP_TRANSPOSE, 1, &t, &a));
    } else if (sp_tensor_permute(t, perm, &out) == SP_OK) {
        sp_attrs a; /* noted for autodiff as the TRANSPOSE it stands for */
        sp_attrs_init(&a);
        for (int i = 0; i < n; i++) axes[i] = perm[i];
        if (sp_attrs_set_ints(&a, "perm", n, axes) == SP_OK) ad_record_op(SP_OP_TRANSPOSE, 1, &t, &a, 1, &out);
        r = rt_wrap(out);
    }
done:
    sp_tensor_release(t);
    return r;
}

static sp_value *api_cast_to(api_call *c) {
    const char *f = c->row->name;
    sp_dtype d = !strcmp(f, "float") ? SP_F32 : !strcmp(f, "double") ? SP_F64 : !strcmp(f, "half") ? SP_F16
                 : !strcmp(f, "int") ? SP_I32 : !strcmp(f, "long") ? SP_I64 : SP_BOOL;
    sp_tensor *t = targ(c, "self");
    if (!t) return NULL;
    sp_value *r = rt_wrap(cast_t(t, d));
    sp_tensor_release(t);
    return r;
}

static sp_value *api_item(api_call *c) {
    const sp_tensor *t = tensor_arg0(c);
    return t ? rt_tensor_to_py(t, 0) : NULL;
}

static sp_value *api_tolist(api_call *c) {
    const sp_tensor *t = tensor_arg0(c);
    return t ? rt_tensor_to_py(t, t->ndim > 0) : NULL;
}

static sp_value *api_copy(api_call *c) {
    const sp_tensor *t = tensor_arg0(c);
    return t ? rt_wrap(cast_t((sp_tensor *)t, t->dtype)) : NULL;
}

/* ---- automatic differentiation (src/ad/grad.c) ------------------------------------- */

static int flag(api_call *c, const char *name) {
    const sp_value *v = api_arg(c, name);
    return v && sp_value_truth(v) > 0;
}

/* spore.grad / spore.value_and_grad */
static sp_value *api_grad(api_call *c) {
    const sp_value *pos = api_arg(c, "grad_position"), *w = api_arg(c, "weights");
    int with_value = !strcmp(c->row->name, "value_and_grad");
    sp_value *p = NULL;
    if (api_is_none(pos) && !api_is_none(w)) p = sp_value_bool(0); /* only the weights */
    const sp_value *use = p ? p : pos;
    if (!p && api_is_none(pos)) {
        sp_error(SP_ERR_ARG, "%s(): grad_position and weights cannot both be None", c->qname);
        return NULL;
    }
    sp_value *r = ad_grad_fn(api_arg(c, "fn"), use, w, flag(c, "has_aux"), with_value, 0);
    sp_value_release(p);
    return r;
}

/* ops.GradOperation(get_all, get_by_list, sens_param): a callable on (fn, weights) */
static sp_value *api_grad_operation_new(api_call *c) {
    sp_value *items[4] = {sp_value_str("spore._grad_operation", strlen("spore._grad_operation")),
                          sp_value_bool(flag(c, "get_all")), sp_value_bool(flag(c, "get_by_list")),
                          sp_value_bool(flag(c, "sens_param"))};
    sp_value *api = sp_value_builtin(RT_B_API);
    sp_value *r = api && items[0] && items[1] && items[2] && items[3] ? sp_value_partial(api, 4, items) : NULL;
    sp_value_release(api);
    for (int i = 0; i < 4; i++) sp_value_release(items[i]);
    return r;
}

/* GradOperation(...)(fn, weights): MindSpore's choices of what to return */
static sp_value *api_grad_operation(api_call *c) {
    int all = flag(c, "get_all"), by_list = flag(c, "get_by_list");
    const sp_value *w = api_arg(c, "weights");
    if (by_list && api_is_none(w)) {
        sp_error(SP_ERR_ARG, "GradOperation(get_by_list=True) needs the weights: grad_op(fn, weights)");
        return NULL;
    }
    sp_value *pos = all ? sp_value_none() : by_list ? sp_value_bool(0) : sp_value_int(0);
    sp_value *r = pos ? ad_grad_fn(api_arg(c, "fn"), pos, by_list ? w : NULL, 0, 0, flag(c, "sens_param")) : NULL;
    sp_value_release(pos);
    return r;
}
