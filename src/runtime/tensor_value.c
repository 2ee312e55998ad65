/*
 * tensor_value.c -- tensors as values of the language: making them from
 * Python data, Python's operators on them, indexing and their attributes.
 *
 * Operators.  A tensor operand sends +, -, *, /, //, %, **, @ and the
 * comparisons to their primitives (add, sub, ..., matmul, less, ...), which
 * broadcast and promote as numpy does.  A Python scalar meeting a tensor is
 * *weakly typed*, as in JAX, PyTorch and MindSpore: it becomes a 0-d tensor
 * of the tensor's dtype, so `x * 2` keeps x float16 and `i + 1` keeps an
 * int32 tensor int32.  The two exceptions follow the scalar's category: a
 * float scalar with an integer or bool tensor computes in float32, an int
 * scalar with a bool tensor in int64.
 *
 * Indexing.  Basic indices (ints, slices with any step, None, Ellipsis and
 * tuples of them) make a view: the new shape, strides and offset over the
 * same buffer (sp_tensor_view_of), so x[:, 1:3] copies nothing -- the
 * kernels accept any strided input, negative strides included.  A tensor or
 * list of integers as the whole index gathers along axis 0 (numpy's take).
 * Bounds follow Python: an int out of range is an IndexError naming the
 * axis and its size; slices clamp.
 *
 * Meta mode (rt_meta_mode: a trace installed, or a meta tensor).  Views and
 * casts are then primitive calls instead -- indexing becomes one SLICE over
 * every axis and a RESHAPE that drops the int-indexed axes and adds the
 * None ones, .T a TRANSPOSE -- so the compiler's trace sees each of them.
 * Reading a meta tensor's value (int(), item, a tensor in ops.tensor's
 * data, a tensor as an int index) is an SP_ERR_VALUE error naming the
 * function.
 *
 * Devices.  Tensors made from Python data (spore.tensor([...]), a list
 * operand) go to the default device (sp_default_device); a 0-d tensor made
 * from a Python scalar stays on the CPU, where primitives accept it beside
 * tensors of any device (src/ops/dispatch.c).  Everything that reads a
 * value on the host (item, int(), tolist, a tensor inside list data) reads
 * a GPU tensor through a host copy (rt_host).
 *
 * Every error says which operation, which kinds or shapes; nothing here
 * aborts on user input.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "ad/ad.h"
#include "runtime/rt.h"

/* ---- small helpers ---------------------------------------------------------- */

int rt_meta_mode(const sp_tensor *t) { return sp_op_tracing() || sp_tensor_is_meta(t); }

sp_tensor *rt_cast(sp_tensor *t, sp_dtype d) {
    /* the core's copy is for the CPU; elsewhere the CAST primitive */
    if (!rt_meta_mode(t) && t->buf->device.type == SP_DEVICE_CPU) {
        sp_tensor *out = NULL;
        return sp_tensor_cast(t, d, &out) == SP_OK ? out : NULL;
    }
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_dtype(&a, "dtype", d);
    return rt_op1(SP_OP_CAST, 1, &t, &a);
}

/* Nonzero (and the error set) when v is a meta tensor whose value `what`
 * needs. */
static int meta_value(const sp_value *v, const char *what) {
    if (v->kind != SP_V_TENSOR || !sp_tensor_is_meta(v->u.tensor)) return 0;
    sp_meta_value_error(what, v->u.tensor);
    return 1;
}

sp_tensor *rt_host(const sp_tensor *t) {
    if (!t || !t->buf) {
        sp_error(SP_ERR_ARG, "NULL tensor");
        return NULL;
    }
    if (t->buf->device.type == SP_DEVICE_CPU) {
        sp_tensor_retain((sp_tensor *)t);
        return (sp_tensor *)t;
    }
    if (sp_tensor_is_meta(t)) {
        sp_meta_value_error("reading the values", t);
        return NULL;
    }
    sp_tensor *h = NULL;
    /* sp_tensor_to only reads its source (it retains t when nothing moves) */
    return sp_tensor_to((sp_tensor *)t, SP_CPU, &h) == SP_OK ? h : NULL;
}

sp_tensor *rt_to_default(sp_tensor *t) {
    if (!t || t->buf->device.type != SP_DEVICE_CPU) return t;
    sp_device dev = sp_default_device();
    if (dev.type == SP_DEVICE_CPU) return t;
    sp_tensor *d = NULL;
    sp_status st = sp_tensor_to(t, dev, &d);
    sp_tensor_release(t);
    return st == SP_OK ? d : NULL;
}

/* The value of the one-element tensor t, read on the host; NaN (with the
 * error set) when t cannot be read. */
static double elem_f64(const sp_tensor *t) {
    if (t->buf->device.type == SP_DEVICE_CPU) return sp_load_f64(t->dtype, sp_tensor_data(t));
    sp_tensor *h = rt_host(t);
    double v = h ? sp_load_f64(h->dtype, sp_tensor_data(h)) : NAN;
    sp_tensor_release(h);
    return v;
}

/* As elem_f64 for integers (exact beyond 2^53); -1 sets *bad on failure. */
static int64_t elem_i64(const sp_tensor *t, int *bad) {
    if (t->buf->device.type == SP_DEVICE_CPU) return sp_load_i64(t->dtype, sp_tensor_data(t));
    sp_tensor *h = rt_host(t);
    int64_t v = h ? sp_load_i64(h->dtype, sp_tensor_data(h)) : -1;
    if (!h) *bad = 1;
    sp_tensor_release(h);
    return v;
}

sp_value *rt_wrap(sp_tensor *t) {
    if (!t) return NULL;
    sp_value *v = sp_value_tensor(t);
    sp_tensor_release(t);
    return v;
}

int rt_is_scalar(const sp_value *v) {
    return v->kind == SP_V_INT || v->kind == SP_V_FLOAT || v->kind == SP_V_BOOL;
}

static double scalar_f64(const sp_value *v) {
    return v->kind == SP_V_FLOAT ? v->u.f : v->kind == SP_V_INT ? (double)v->u.i : (double)v->u.b;
}

static int64_t scalar_i64(const sp_value *v) { return v->kind == SP_V_INT ? v->u.i : v->u.b; }

/* A 0-d CPU tensor of dtype d holding the scalar v exactly (ints stay
 * exact beyond 2^53). */
static sp_tensor *scalar_tensor(const sp_value *v, sp_dtype d) {
    sp_tensor *t = sp_tensor_new(d, 0, NULL, SP_CPU);
    if (!t) return NULL;
    if (v->kind == SP_V_FLOAT) {
        sp_store_f64(d, sp_tensor_data(t), v->u.f);
        ad_note_scalar(v, t); /* a float argument of a differentiated call carries a gradient */
    } else {
        sp_store_i64(d, sp_tensor_data(t), scalar_i64(v));
    }
    return t;
}

static sp_dtype default_dtype(const sp_value *v) {
    return v->kind == SP_V_FLOAT ? SP_F32 : v->kind == SP_V_INT ? SP_I64 : SP_BOOL;
}

/* ---- tensors from Python data ------------------------------------------------- */

typedef struct data_info {
    int ndim;
    int64_t shape[SP_MAX_DIMS];
    int has_float, has_int;
    const char *what;
} data_info;

/* Checks that v is a regular nest of depth `depth` and finds the kinds. */
static int data_scan(const sp_value *v, int depth, data_info *di) {
    if (depth == di->ndim) {
        if (v->kind == SP_V_FLOAT) di->has_float = 1;
        else if (v->kind == SP_V_INT) di->has_int = 1;
        else if (meta_value(v, di->what)) return -1;
        else if (v->kind == SP_V_TENSOR && sp_tensor_numel(v->u.tensor) == 1) {
            if (sp_dtype_is_float(v->u.tensor->dtype)) di->has_float = 1;
            else if (v->u.tensor->dtype != SP_BOOL) di->has_int = 1;
        } else if (v->kind != SP_V_BOOL) {
            sp_error(SP_ERR_TYPE, "%s: the data holds a %s where a number was expected", di->what,
                     sp_value_kind_name(v));
            return -1;
        }
        return 0;
    }
    if ((v->kind != SP_V_TUPLE && v->kind != SP_V_LIST) || v->u.seq.n != di->shape[depth]) {
        sp_error(SP_ERR_SHAPE, "%s: the data is not rectangular (at depth %d expected a sequence of %lld items, "
                 "got a %s)", di->what, depth, (long long)di->shape[depth], sp_value_kind_name(v));
        return -1;
    }
    for (int i = 0; i < v->u.seq.n; i++)
        if (data_scan(v->u.seq.items[i], depth + 1, di)) return -1;
    return 0;
}

static void data_fill(const sp_value *v, int depth, const data_info *di, sp_dtype d, char **p) {
    if (depth == di->ndim) {
        if (v->kind == SP_V_FLOAT) sp_store_f64(d, *p, v->u.f);
        else if (v->kind == SP_V_TENSOR) sp_store_f64(d, *p, elem_f64(v->u.tensor));
        else sp_store_i64(d, *p, scalar_i64(v));
        *p += sp_dtype_size(d);
        return;
    }
    for (int i = 0; i < v->u.seq.n; i++) data_fill(v->u.seq.items[i], depth + 1, di, d, p);
}

sp_tensor *rt_tensor_from_data(const sp_value *data, int dtype, const char *what) {
    data_info di;
    memset(&di, 0, sizeof di);
    di.what = what;
    if (data->kind == SP_V_TENSOR) {
        if (dtype < 0 || (sp_dtype)dtype == data->u.tensor->dtype) {
            sp_tensor_retain(data->u.tensor);
            return data->u.tensor;
        }
        return rt_cast(data->u.tensor, (sp_dtype)dtype);
    }
    const sp_value *v = data;
    while (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) {
        if (di.ndim == SP_MAX_DIMS) {
            sp_error(SP_ERR_SHAPE, "%s: the data is nested more than %d deep", what, SP_MAX_DIMS);
            return NULL;
        }
        di.shape[di.ndim++] = v->u.seq.n;
        if (v->u.seq.n == 0) break;
        v = v->u.seq.items[0];
    }
    if (data_scan(data, 0, &di)) return NULL;
    sp_dtype d = dtype >= 0 ? (sp_dtype)dtype : di.has_float ? SP_F32 : di.has_int ? SP_I64
                 : di.ndim && di.shape[di.ndim - 1] == 0 ? SP_F32 : SP_BOOL;
    sp_tensor *t = sp_tensor_new(d, di.ndim, di.shape, SP_CPU);
    if (!t) return NULL;
    char *p = sp_tensor_data(t);
    sp_clear_error();
    data_fill(data, 0, &di, d, &p);
    if (sp_last_status() != SP_OK) { /* a GPU element could not be read */
        sp_tensor_release(t);
        return NULL;
    }
    return rt_to_default(t);
}

sp_tensor *rt_as_tensor(const sp_value *v, int weak, const char *what) {
    if (v->kind == SP_V_TENSOR) {
        sp_tensor_retain(v->u.tensor);
        return v->u.tensor;
    }
    if (rt_is_scalar(v)) {
        return scalar_tensor(v, weak >= 0 ? (sp_dtype)weak : default_dtype(v));
    }
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) return rt_tensor_from_data(v, -1, what);
    sp_error(SP_ERR_TYPE, "%s: expected a Tensor, got %s", what, sp_value_kind_name(v));
    return NULL;
}

int rt_int_of(const sp_value *v, int64_t *out, const char *what) {
    if (meta_value(v, what)) return -1;
    if (v->kind == SP_V_INT || v->kind == SP_V_BOOL) {
        *out = scalar_i64(v);
        return 0;
    }
    if (v->kind == SP_V_TENSOR && sp_tensor_numel(v->u.tensor) == 1 && !sp_dtype_is_float(v->u.tensor->dtype)) {
        int bad = 0;
        *out = elem_i64(v->u.tensor, &bad);
        return bad ? -1 : 0;
    }
    sp_error(SP_ERR_TYPE, "%s: expected an int, got %s", what, sp_value_kind_name(v));
    return -1;
}

int rt_float_of(const sp_value *v, double *out, const char *what) {
    if (meta_value(v, what)) return -1;
    if (rt_is_scalar(v)) {
        *out = scalar_f64(v);
        return 0;
    }
    if (v->kind == SP_V_TENSOR && sp_tensor_numel(v->u.tensor) == 1) {
        sp_clear_error();
        *out = elem_f64(v->u.tensor);
        return sp_last_status() != SP_OK ? -1 : 0;
    }
    sp_error(SP_ERR_TYPE, "%s: expected a number, got %s", what, sp_value_kind_name(v));
    return -1;
}

int rt_ints_of(const sp_value *v, int64_t *out, int *n, const char *what) {
    *n = 0;
    if (v->kind == SP_V_INT || v->kind == SP_V_BOOL) {
        out[(*n)++] = scalar_i64(v);
        return 0;
    }
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) {
        if (v->u.seq.n > SP_MAX_ATTR_INTS) {
            sp_error(SP_ERR_ARG, "%s: at most %d integers, got %d", what, SP_MAX_ATTR_INTS, v->u.seq.n);
            return -1;
        }
        for (int i = 0; i < v->u.seq.n; i++)
            if (rt_int_of(v->u.seq.items[i], &out[i], what)) return -1;
        *n = v->u.seq.n;
        return 0;
    }
    if (meta_value(v, what)) return -1;
    if (v->kind == SP_V_TENSOR && v->u.tensor->ndim <= 1 && !sp_dtype_is_float(v->u.tensor->dtype)) {
        int64_t k = sp_tensor_numel(v->u.tensor);
        if (k > SP_MAX_ATTR_INTS) {
            sp_error(SP_ERR_ARG, "%s: at most %d integers, got %lld", what, SP_MAX_ATTR_INTS, (long long)k);
            return -1;
        }
        sp_tensor *t = rt_host(v->u.tensor);
        if (!t) return -1;
        for (int64_t i = 0; i < k; i++) {
            int64_t idx = i;
            out[i] = (int64_t)sp_tensor_get(t, t->ndim ? &idx : NULL);
        }
        sp_tensor_release(t);
        *n = (int)k;
        return 0;
    }
    sp_error(SP_ERR_TYPE, "%s: expected an int or a tuple of ints, got %s", what, sp_value_kind_name(v));
    return -1;
}

static sp_value *elem_to_py(sp_dtype d, const void *p) {
    if (sp_dtype_is_float(d)) return sp_value_float(sp_load_f64(d, p));
    if (d == SP_BOOL) return sp_value_bool(*(const uint8_t *)p != 0);
    return sp_value_int(sp_load_i64(d, p));
}

static sp_value *to_list(const sp_tensor *t, int axis, const char *base) {
    if (axis == t->ndim) return elem_to_py(t->dtype, base);
    int64_t n = t->shape[axis];
    if (n > INT32_MAX) {
        sp_error(SP_ERR_ARG, "tolist: axis of %lld elements is too long", (long long)n);
        return NULL;
    }
    sp_value **items = malloc(sizeof *items * (size_t)(n ? n : 1));
    if (!items) {
        sp_error(SP_ERR_NOMEM, "tolist: out of memory");
        return NULL;
    }
    int64_t i;
    size_t sz = sp_dtype_size(t->dtype);
    for (i = 0; i < n; i++)
        if (!(items[i] = to_list(t, axis + 1, base + (int64_t)sz * i * t->strides[axis]))) break;
    sp_value *r = i == n ? sp_value_list((int)n, items) : NULL;
    for (int64_t k = 0; k < i; k++) sp_value_release(items[k]);
    free(items);
    return r;
}

sp_value *rt_tensor_to_py(const sp_tensor *t, int as_list) {
    if (sp_tensor_is_meta(t)) {
        sp_meta_value_error(as_list ? "Tensor.tolist()" : "Tensor.item()", t);
        return NULL;
    }
    if (!as_list && sp_tensor_numel(t) != 1) {
        char sh[96];
        sp_error(SP_ERR_ARG, "item: only a tensor of one element converts to a Python scalar, not shape %s",
                 sp_shape_str(t->ndim, t->shape, sh, sizeof sh));
        return NULL;
    }
    sp_tensor *h = rt_host(t);
    if (!h) return NULL;
    sp_value *r = as_list ? to_list(h, 0, sp_tensor_data(h)) : elem_to_py(h->dtype, sp_tensor_data(h));
    sp_tensor_release(h);
    return r;
}

/* ---- primitives as functions -------------------------------------------------- */

sp_value *rt_op(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs) {
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n_out = 0;
    if (sp_op_call(op, n_in, in, attrs, &n_out, out) != SP_OK) return NULL;
    ad_record_op(op, n_in, in, attrs, n_out, out);
    if (n_out == 0) return sp_value_none();
    if (n_out == 1) return rt_wrap(out[0]);
    sp_value *items[SP_MAX_OUTPUTS] = {0};
    int ok = 1;
    for (int i = 0; i < n_out; i++) {
        items[i] = rt_wrap(out[i]);
        ok &= items[i] != NULL;
    }
    sp_value *r = ok ? sp_value_tuple(n_out, items) : NULL;
    for (int i = 0; i < n_out; i++) sp_value_release(items[i]);
    return r;
}

sp_tensor *rt_op1(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs) {
    sp_tensor *out[SP_MAX_OUTPUTS] = {0};
    int n_out = 0;
    if (sp_op_call(op, n_in, in, attrs, &n_out, out) != SP_OK) return NULL;
    ad_record_op(op, n_in, in, attrs, n_out, out);
    for (int i = 1; i < n_out; i++) sp_tensor_release(out[i]);
    return out[0];
}

/* Sets attribute name from a value: ints, floats, bools, int tuples,
 * strings, dtypes; None sets nothing. */
static int set_attr(sp_attrs *a, const char *op, const char *name, const sp_value *v) {
    sp_status st = SP_OK;
    int64_t ints[SP_MAX_ATTR_INTS];
    int n;
    switch (v->kind) {
    case SP_V_NONE: return 0;
    case SP_V_BOOL: st = sp_attrs_set_int(a, name, v->u.b); break;
    case SP_V_INT: st = sp_attrs_set_int(a, name, v->u.i); break;
    case SP_V_FLOAT: st = sp_attrs_set_float(a, name, v->u.f); break;
    case SP_V_STR: st = sp_attrs_set_str(a, name, v->u.str.s); break;
    case SP_V_DTYPE: st = sp_attrs_set_dtype(a, name, v->u.dtype); break;
    case SP_V_TUPLE:
    case SP_V_LIST:
        if (rt_ints_of(v, ints, &n, op)) return -1;
        st = sp_attrs_set_ints(a, name, n, ints);
        break;
    default:
        sp_error(SP_ERR_TYPE, "%s: attribute %s cannot be a %s", op, name, sp_value_kind_name(v));
        return -1;
    }
    return st == SP_OK ? 0 : -1;
}

sp_value *rt_prim_call(int op, int n, sp_value *const *args) {
    const char *name = sp_op_name(op);
    if (!name) {
        sp_error(SP_ERR_ARG, "no primitive with id %d", op);
        return NULL;
    }
    sp_attrs attrs;
    sp_attrs_init(&attrs);
    const sp_value *pos[SP_MAX_INPUTS];
    int npos = 0, weak = -1;
    for (int i = 0; i < n; i++) {
        const sp_value *a = args[i];
        if (a->kind == SP_V_KEYWORD) {
            if (set_attr(&attrs, name, a->u.kw.name, a->u.kw.value)) return NULL;
            continue;
        }
        /* a variadic primitive takes a tuple of tensors as its inputs */
        if (sp_op_num_inputs(op) < 0 && (a->kind == SP_V_TUPLE || a->kind == SP_V_LIST) && n == 1) {
            for (int k = 0; k < a->u.seq.n; k++) {
                if (npos == SP_MAX_INPUTS) break;
                pos[npos++] = a->u.seq.items[k];
            }
            continue;
        }
        if (npos == SP_MAX_INPUTS) {
            sp_error(SP_ERR_ARG, "%s: more than %d inputs", name, SP_MAX_INPUTS);
            return NULL;
        }
        pos[npos++] = a;
    }
    for (int i = 0; i < npos; i++)
        if (pos[i]->kind == SP_V_TENSOR) {
            weak = pos[i]->u.tensor->dtype;
            break;
        }
    sp_tensor *in[SP_MAX_INPUTS];
    int k;
    for (k = 0; k < npos; k++)
        if (!(in[k] = rt_as_tensor(pos[k], weak, name))) break;
    sp_value *r = k == npos ? rt_op(op, npos, in, &attrs) : NULL;
    for (int i = 0; i < k; i++) sp_tensor_release(in[i]);
    return r;
}

/* ---- operators ---------------------------------------------------------------- */

static const char *op_symbol(int id) {
    switch (id) {
    case RT_B_ADD: return "+";
    case RT_B_SUB: return "-";
    case RT_B_MUL: return "*";
    case RT_B_TRUEDIV: return "/";
    case RT_B_FLOORDIV: return "//";
    case RT_B_MOD: return "%";
    case RT_B_POW: return "**";
    case RT_B_MATMUL: return "@";
    case RT_B_EQ: return "==";
    case RT_B_NE: return "!=";
    case RT_B_LT: return "<";
    case RT_B_LE: return "<=";
    case RT_B_GT: return ">";
    case RT_B_GE: return ">=";
    default: return rt_builtin_name(id);
    }
}

static int prim_of(int id) {
    switch (id) {
    case RT_B_ADD: return SP_OP_ADD;
    case RT_B_SUB: return SP_OP_SUB;
    case RT_B_MUL: return SP_OP_MUL;
    case RT_B_TRUEDIV: return SP_OP_DIV;
    case RT_B_FLOORDIV: return SP_OP_FLOOR_DIV;
    case RT_B_MOD: return SP_OP_MOD;
    case RT_B_POW: return SP_OP_POW;
    case RT_B_MATMUL: return SP_OP_MATMUL;
    case RT_B_EQ: return SP_OP_EQUAL;
    case RT_B_NE: return SP_OP_NOT_EQUAL;
    case RT_B_LT: return SP_OP_LESS;
    case RT_B_LE: return SP_OP_LESS_EQUAL;
    case RT_B_GT: return SP_OP_GREATER;
    case RT_B_GE: return SP_OP_GREATER_EQUAL;
    default: return -1;
    }
}

/* The tensor of a tensor operand meeting `other` (weak typing, see the
 * essay); NULL + error. */
static sp_tensor *operand_tensor(const sp_value *v, const sp_value *other, const char *what) {
    if (v->kind == SP_V_TENSOR) {
        sp_tensor *t = v->u.tensor;
        if (rt_is_scalar(other)) {
            sp_dtype d = t->dtype;
            sp_dtype want = d;
            if (other->kind == SP_V_FLOAT && !sp_dtype_is_float(d)) want = SP_F32;
            else if (other->kind == SP_V_INT && d == SP_BOOL) want = SP_I64;
            if (want != d) return rt_cast(t, want);
        }
        sp_tensor_retain(t);
        return t;
    }
    if (rt_is_scalar(v)) {
        const sp_tensor *t = other->u.tensor;
        sp_dtype d = t->dtype;
        if (v->kind == SP_V_FLOAT && !sp_dtype_is_float(d)) d = SP_F32;
        else if (v->kind == SP_V_INT && d == SP_BOOL) d = SP_I64;
        return scalar_tensor(v, d);
    }
    return rt_tensor_from_data(v, -1, what);
}

/* a (op) b where at least one is a tensor. */
sp_value *rt_tensor_binary(int id, const sp_value *a, const sp_value *b) {
    int op = prim_of(id);
    const sp_value *o = a->kind == SP_V_TENSOR ? b : a;
    int ok_other = o->kind == SP_V_TENSOR || rt_is_scalar(o) || o->kind == SP_V_TUPLE || o->kind == SP_V_LIST;
    if (op < 0 || !ok_other) {
        if (id == RT_B_EQ || id == RT_B_NE) return sp_value_bool(id == RT_B_NE);
        sp_error(SP_ERR_TYPE, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(id),
                 sp_value_kind_name(a), sp_value_kind_name(b));
        return NULL;
    }
    sp_tensor *in[2];
    in[0] = operand_tensor(a, b, sp_op_name(op));
    in[1] = in[0] ? operand_tensor(b, a, sp_op_name(op)) : NULL;
    sp_value *r = in[1] ? rt_op(op, 2, in, NULL) : NULL;
    sp_tensor_release(in[0]);
    sp_tensor_release(in[1]);
    return r;
}

/* ---- indexing ----------------------------------------------------------------- */

/* Python's slice.indices(): the start, step and length of s over n items. */
int rt_slice_indices(const sp_value *s, int64_t n, int64_t *start, int64_t *step, int64_t *len) {
    int64_t st = 1, lo, hi;
    const sp_value *a = s->u.slice.start, *b = s->u.slice.stop, *c = s->u.slice.step;
    if (c->kind != SP_V_NONE && rt_int_of(c, &st, "slice step")) return -1;
    if (st == 0) {
        sp_error(SP_ERR_ARG, "slice step cannot be zero");
        return -1;
    }
    if (st == INT64_MIN) st = -INT64_MAX;
    int64_t dlo = st > 0 ? 0 : -1, dhi = st > 0 ? n : -1;
    if (a->kind == SP_V_NONE) lo = st > 0 ? 0 : n - 1;
    else {
        if (rt_int_of(a, &lo, "slice start")) return -1;
        if (lo < 0) lo = lo < -n ? dlo : lo + n;
        else if (lo >= n) lo = st > 0 ? n : n - 1;
    }
    if (b->kind == SP_V_NONE) hi = dhi;
    else {
        if (rt_int_of(b, &hi, "slice stop")) return -1;
        if (hi < 0) hi = hi < -n ? dlo : hi + n;
        else if (hi >= n) hi = st > 0 ? n : n - 1;
    }
    if (st > 0) *len = hi > lo ? (hi - lo - 1) / st + 1 : 0;
    else *len = lo > hi ? (lo - hi - 1) / (-st) + 1 : 0;
    *start = lo;
    *step = st;
    return 0;
}

static int is_basic_index(const sp_value *v) {
    return v->kind == SP_V_INT || v->kind == SP_V_BOOL || v->kind == SP_V_SLICE || v->kind == SP_V_NONE ||
           v->kind == SP_V_ELLIPSIS || (v->kind == SP_V_TENSOR && v->u.tensor->ndim == 0 &&
                                        !sp_dtype_is_float(v->u.tensor->dtype) && v->u.tensor->dtype != SP_BOOL);
}

/* begin/end/step of the SLICE primitive for Python's slice with first
 * index `start`, `step` and `len` items over an axis of n (end computed so
 * that sp_slice_range gives back exactly len items, without overflow). */
static void slice_of(int64_t n, int64_t start, int64_t step, int64_t len, int64_t *b, int64_t *e,
                     int64_t *s) {
    if (len <= 1) { /* the step does not matter (and may be huge) */
        *b = len ? start : 0;
        *e = len ? start + 1 : 0;
        *s = 1;
        return;
    }
    *b = start;
    *s = step;
    *e = start + len * step; /* |step| < n here: no overflow */
    if (*e < 0) *e = -n - 1; /* down to index 0: Python's "stop before -n" */
}

/* Basic indexing as primitives (meta mode): SLICE with (b, e, s) per axis
 * of t, then RESHAPE to the indexed shape (nd, shape) when the SLICE's
 * shape differs (int indices drop axes, None adds them).  t itself when
 * nothing changes. */
static sp_value *getitem_prims(sp_tensor *t, const int64_t *b, const int64_t *e, const int64_t *s,
                               int nd, const int64_t *shape) {
    int sliced = 0;
    for (int k = 0; k < t->ndim; k++) sliced |= b[k] != 0 || e[k] != t->shape[k] || s[k] != 1;
    sp_tensor *cur = t;
    sp_tensor_retain(t);
    sp_attrs a;
    if (sliced) {
        sp_attrs_init(&a);
        sp_attrs_set_ints(&a, "begin", t->ndim, b);
        sp_attrs_set_ints(&a, "end", t->ndim, e);
        sp_attrs_set_ints(&a, "step", t->ndim, s);
        sp_tensor *o = rt_op1(SP_OP_SLICE, 1, &cur, &a);
        sp_tensor_release(cur);
        if (!(cur = o)) return NULL;
    }
    int same = cur->ndim == nd;
    for (int k = 0; same && k < nd; k++) same = cur->shape[k] == shape[k];
    if (!same) {
        sp_attrs_init(&a);
        sp_attrs_set_ints(&a, "shape", nd, shape);
        sp_tensor *o = rt_op1(SP_OP_RESHAPE, 1, &cur, &a);
        sp_tensor_release(cur);
        if (!(cur = o)) return NULL;
    }
    return rt_wrap(cur);
}

/* For the eager tape (ad_tape_recording): notes the basic-index view v of
 * t as the primitives it stands for, as getitem_prims would run them --
 * SLICE to an intermediate view over every axis of t, then RESHAPE to v's
 * shape (a RESHAPE alone when nothing is sliced).  Cannot fail: a view
 * that cannot be made is simply not noted (the tape treats v as a
 * constant only if it never saw it). */
static void getitem_noted(sp_tensor *t, const int64_t *b, const int64_t *e, const int64_t *s, sp_tensor *v) {
    int sliced = 0;
    for (int k = 0; k < t->ndim; k++) sliced |= b[k] != 0 || e[k] != t->shape[k] || s[k] != 1;
    sp_tensor *mid = t;
    sp_attrs a;
    if (sliced) {
        int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS], offset = t->offset, empty = 0;
        for (int k = 0; k < t->ndim; k++) {
            int64_t first = 0;
            shape[k] = sp_slice_range(t->shape[k], b[k], e[k], s[k], &first);
            strides[k] = t->strides[k] * s[k];
            offset += first * t->strides[k];
            empty |= shape[k] == 0;
        }
        if (empty) offset = t->offset;
        if (!(mid = sp_tensor_view_of(t->buf, t->dtype, t->ndim, shape, strides, offset))) {
            sp_clear_error();
            return;
        }
        sp_attrs_init(&a);
        sp_attrs_set_ints(&a, "begin", t->ndim, b);
        sp_attrs_set_ints(&a, "end", t->ndim, e);
        sp_attrs_set_ints(&a, "step", t->ndim, s);
        int same = mid->ndim == v->ndim;
        for (int k = 0; same && k < v->ndim; k++) same = mid->shape[k] == v->shape[k];
        ad_record_op(SP_OP_SLICE, 1, &t, &a, 1, same ? &v : &mid);
        if (same) {
            sp_tensor_release(mid);
            return;
        }
    }
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", v->ndim, v->shape);
    ad_record_op(SP_OP_RESHAPE, 1, &mid, &a, 1, &v);
    if (mid != t) sp_tensor_release(mid);
}

static sp_value *tensor_getitem(sp_tensor *t, const sp_value *index) {
    const sp_value *one[1] = {index};
    sp_value *const *items = (sp_value *const *)one;
    int n = 1;
    if (index->kind == SP_V_TUPLE) {
        items = index->u.seq.items;
        n = index->u.seq.n;
    }
    /* advanced: an integer tensor or list as the whole index -> take on axis 0 */
    if (n == 1 && !is_basic_index(items[0])) {
        const sp_value *ix = items[0];
        if (ix->kind == SP_V_TENSOR && ix->u.tensor->dtype == SP_BOOL) {
            sp_error(SP_ERR_UNSUPPORTED, "indexing with a boolean mask is not supported (use ops.where)");
            return NULL;
        }
        sp_tensor *it = NULL;
        if (ix->kind == SP_V_TENSOR || ix->kind == SP_V_LIST || ix->kind == SP_V_TUPLE)
            it = rt_tensor_from_data(ix, -1, "index");
        if (!it) {
            if (!sp_last_error()[0] || ix->kind != SP_V_TENSOR)
                sp_error(SP_ERR_TYPE, "tensor indices must be ints, slices, None, Ellipsis or integer tensors, not %s",
                         sp_value_kind_name(ix));
            return NULL;
        }
        if (!sp_dtype_is_int(it->dtype) || t->ndim == 0) {
            sp_tensor_release(it);
            sp_error(SP_ERR_TYPE, "tensor index must hold integers (and the tensor at least one axis)");
            return NULL;
        }
        sp_tensor *in[2] = {t, it};
        sp_value *r = rt_op(SP_OP_GATHER, 2, in, NULL);
        sp_tensor_release(it);
        return r;
    }
    int consumed = 0, ellipsis = 0;
    for (int i = 0; i < n; i++) {
        const sp_value *x = items[i];
        if (!is_basic_index(x)) {
            sp_error(SP_ERR_UNSUPPORTED,
                     "tensor index item %d is a %s: only ints, slices, None and Ellipsis may be combined in a tuple",
                     i, sp_value_kind_name(x));
            return NULL;
        }
        if (x->kind == SP_V_ELLIPSIS) {
            if (ellipsis++) {
                sp_error(SP_ERR_ARG, "an index can only have a single ellipsis ('...')");
                return NULL;
            }
        } else if (x->kind != SP_V_NONE) {
            consumed++;
        }
    }
    if (consumed > t->ndim) {
        sp_error(SP_ERR_ARG, "too many indices for tensor: tensor is %d-dimensional, but %d were indexed", t->ndim,
                 consumed);
        return NULL;
    }
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS], offset = t->offset;
    /* meta mode: the SLICE over every axis of t (see slice_of) */
    int64_t sb[SP_MAX_DIMS], se[SP_MAX_DIMS], ss[SP_MAX_DIMS];
    for (int k = 0; k < t->ndim; k++) sb[k] = 0, se[k] = t->shape[k], ss[k] = 1;
    int nd = 0, d = 0;
    for (int i = 0; i < n; i++) {
        const sp_value *x = items[i];
        if (x->kind == SP_V_ELLIPSIS || x->kind == SP_V_NONE) {
            int take = x->kind == SP_V_NONE ? 1 : t->ndim - consumed;
            if (nd + take > SP_MAX_DIMS) goto too_many;
            for (int k = 0; k < take; k++) {
                if (x->kind == SP_V_NONE) {
                    shape[nd] = 1;
                    strides[nd++] = 0;
                } else {
                    shape[nd] = t->shape[d];
                    strides[nd++] = t->strides[d++];
                }
            }
        } else if (x->kind == SP_V_SLICE) {
            int64_t start, step, len;
            if (rt_slice_indices(x, t->shape[d], &start, &step, &len)) return NULL;
            if (nd == SP_MAX_DIMS) goto too_many;
            slice_of(t->shape[d], start, step, len, &sb[d], &se[d], &ss[d]);
            if (len > 0) offset += start * t->strides[d];
            shape[nd] = len;
            strides[nd++] = len > 1 ? t->strides[d] * step : t->strides[d];
            d++;
        } else {
            int64_t k;
            if (rt_int_of(x, &k, "index")) return NULL;
            int64_t size = t->shape[d];
            if (k < -size || k >= size) {
                sp_error(SP_ERR_ARG, "index %lld is out of bounds for axis %d with size %lld", (long long)k, d,
                         (long long)size);
                return NULL;
            }
            if (k < 0) k += size;
            offset += k * t->strides[d];
            sb[d] = k, se[d] = k + 1, ss[d] = 1;
            d++;
        }
    }
    for (; d < t->ndim; d++) {
        if (nd == SP_MAX_DIMS) goto too_many;
        shape[nd] = t->shape[d];
        strides[nd++] = t->strides[d];
    }
    if (rt_meta_mode(t)) return getitem_prims(t, sb, se, ss, nd, shape);
    for (int i = 0; i < nd; i++)
        if (shape[i] == 0) { /* an empty view: any in-bounds layout will do */
            offset = t->offset;
            for (int k = 0; k < nd; k++) strides[k] = 0;
            break;
        }
    sp_tensor *view = sp_tensor_view_of(t->buf, t->dtype, nd, shape, strides, offset);
    if (view && ad_tape_recording()) getitem_noted(t, sb, se, ss, view);
    return rt_wrap(view);
too_many:
    sp_error(SP_ERR_SHAPE, "indexing would give more than %d dimensions", SP_MAX_DIMS);
    return NULL;
}

sp_value *rt_getitem(const sp_value *x, const sp_value *index) {
    if (x->kind == SP_V_TENSOR) return tensor_getitem(x->u.tensor, index);
    return rt_seq_getitem(x, index);
}

/* ---- attributes ----------------------------------------------------------------- */

static sp_value *shape_tuple(const sp_tensor *t) {
    sp_value *items[SP_MAX_DIMS] = {0};
    int k;
    for (k = 0; k < t->ndim; k++)
        if (!(items[k] = sp_value_int(t->shape[k]))) break;
    sp_value *r = k == t->ndim ? sp_value_tuple(t->ndim, items) : NULL;
    for (int i = 0; i < k; i++) sp_value_release(items[i]);
    return r;
}

sp_value *rt_tensor_getattr(const sp_value *x, const char *name) {
    sp_tensor *t = x->u.tensor;
    if (!strcmp(name, "shape")) return shape_tuple(t);
    if (!strcmp(name, "dtype")) return sp_value_dtype(t->dtype);
    if (!strcmp(name, "ndim")) return sp_value_int(t->ndim);
    if (!strcmp(name, "size")) return sp_value_int(sp_tensor_numel(t));
    if (!strcmp(name, "itemsize")) return sp_value_int((int64_t)sp_dtype_size(t->dtype));
    if (!strcmp(name, "nbytes")) return sp_value_int((int64_t)sp_tensor_nbytes(t));
    if (!strcmp(name, "T") || !strcmp(name, "mT")) {
        int perm[SP_MAX_DIMS];
        for (int i = 0; i < t->ndim; i++) perm[i] = t->ndim - 1 - i;
        if (name[0] == 'm') {
            if (t->ndim < 2) {
                sp_error(SP_ERR_SHAPE, "mT: the tensor needs at least 2 dimensions, not %d", t->ndim);
                return NULL;
            }
            for (int i = 0; i < t->ndim; i++) perm[i] = i;
            perm[t->ndim - 1] = t->ndim - 2;
            perm[t->ndim - 2] = t->ndim - 1;
        }
        sp_tensor *out = NULL;
        sp_attrs a;
        int64_t p64[SP_MAX_DIMS];
        for (int i = 0; i < t->ndim; i++) p64[i] = perm[i];
        sp_attrs_init(&a);
        sp_attrs_set_ints(&a, "perm", t->ndim, p64);
        if (rt_meta_mode(t)) return rt_wrap(rt_op1(SP_OP_TRANSPOSE, 1, &t, &a));
        if (sp_tensor_permute(t, perm, &out) != SP_OK) return NULL;
        ad_record_op(SP_OP_TRANSPOSE, 1, &t, &a, 1, &out);
        return rt_wrap(out);
    }
    sp_clear_error();
    sp_value *m = rt_tensor_method(x, name);
    if (m || sp_last_status() != SP_OK) return m;
    sp_error(SP_ERR_TYPE, "'Tensor' object has no attribute '%s'", name);
    return NULL;
}
