/*
 * tensor.c -- _C.TensorBase, the storage and the operators of spore.Tensor.
 *
 * A Tensor object holds one Spore value of kind TENSOR, so handing it to
 * any C function of the runtime costs a reference count, not a wrapper.
 * Everything a tensor does goes through the functions the source language
 * uses: operators through rt_binary (numpy's promotion with Python scalars
 * weakly typed: `x * 2` keeps x's dtype), indexing through rt_getitem
 * (ints, slices, None, Ellipsis, tensors), item assignment through the
 * same indexing (setitem.c), named methods through the API table (the
 * package's Tensor subclass adds those from api_names()).  So `x + 1` in
 * Python and in a GRAPH_MODE construct agree by construction.
 *
 * numpy: the buffer protocol exports a CPU tensor's memory without a copy
 * (any strides, the tensor kept alive by the memoryview); Tensor(ndarray)
 * copies.  bfloat16 has no buffer format, so a bfloat16 tensor exports
 * nothing and asnumpy() says so.  Tensors on the GPU are copied to the CPU
 * first (asnumpy, printing, item, and the buffer protocol, which exports a
 * read-only host copy) as MindSpore does.  Placement: Tensor(ndarray),
 * Tensor([...]) and Tensor(shape=...) are made on the default device
 * (set_context(device_target="GPU") makes it cuda:0); Tensor(tensor) keeps
 * its device.
 *
 * Printing: str() is numpy's format (sp_tensor_to_string, "[ 4. 10. 18.]")
 * as MindSpore prints a Tensor; repr() adds shape and dtype.
 */
#include "py.h"

#include <string.h>

static sp_tensor *T(PyObject *o) { return ((py_tensor *)o)->v->u.tensor; }

int py_is_tensor(PyObject *o) { return PyObject_TypeCheck(o, &py_tensor_base_type); }

PyObject *py_tensor_wrap(sp_value *v) {
    if (!v) return py_raise();
    py_tensor *t = (py_tensor *)py_tensor_type->tp_alloc(py_tensor_type, 0);
    if (!t) {
        sp_value_release(v);
        return NULL;
    }
    t->v = v;
    return (PyObject *)t;
}

static PyObject *wrap_or_raise(sp_value *r) {
    if (!r) return py_raise();
    if (r->kind == SP_V_TENSOR) return py_tensor_wrap(r);
    PyObject *o = py_from_value(r, NULL);
    sp_value_release(r);
    return o;
}

/* ---- from buffers (numpy) -------------------------------------------------- */

static int format_dtype(const char *f, Py_ssize_t itemsize, sp_dtype *d) {
    while (*f == '<' || *f == '=' || *f == '@' || *f == '!' || *f == '>') {
        if (*f == '>' || *f == '!') return -1; /* big-endian data */
        f++;
    }
    if (f[0] && f[1]) return -1;
    switch (f[0]) {
    case 'f': *d = SP_F32; return 0;
    case 'd': *d = SP_F64; return 0;
    case 'e': *d = SP_F16; return 0;
    case 'b': *d = SP_I8; return 0;
    case 'B': *d = SP_U8; return 0;
    case '?': *d = SP_BOOL; return 0;
    case 'i': case 'l': case 'q':
        if (itemsize == 4) *d = SP_I32;
        else if (itemsize == 8) *d = SP_I64;
        else return -1;
        return 0;
    default: return -1;
    }
}

sp_value *py_tensor_from_buffer(PyObject *o, int dtype) {
    Py_buffer b;
    if (PyObject_GetBuffer(o, &b, PyBUF_RECORDS_RO) < 0) return NULL;
    sp_dtype d;
    sp_value *v = NULL;
    sp_tensor *view = NULL, *t = NULL;
    sp_buffer *buf = NULL;
    if (format_dtype(b.format ? b.format : "B", b.itemsize, &d) < 0 || (size_t)b.itemsize != sp_dtype_size(d)) {
        PyErr_Format(PyExc_TypeError, "Spore has no dtype for the buffer format '%s' (%s)",
                     b.format ? b.format : "B", Py_TYPE(o)->tp_name);
        goto done;
    }
    if (b.ndim > SP_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "Spore tensors have at most %d dimensions, not %d", SP_MAX_DIMS, b.ndim);
        goto done;
    }
    int64_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS], lo = 0, hi = 0, numel = 1;
    for (int i = 0; i < b.ndim; i++) {
        shape[i] = b.shape[i];
        numel *= shape[i];
        Py_ssize_t s = b.strides ? b.strides[i] : 0;
        if (s % b.itemsize) {
            PyErr_SetString(PyExc_ValueError, "Spore: buffer strides are not a multiple of the item size");
            goto done;
        }
        strides[i] = s / b.itemsize;
    }
    if (!b.strides) {
        int64_t k = 1;
        for (int i = b.ndim - 1; i >= 0; i--) {
            strides[i] = k;
            k *= shape[i];
        }
    }
    /* the span of reachable elements, relative to b.buf, in elements */
    if (numel > 0)
        for (int i = 0; i < b.ndim; i++) {
            if (strides[i] < 0) lo += strides[i] * (shape[i] - 1);
            else hi += strides[i] * (shape[i] - 1);
        }
    buf = sp_buffer_wrap(SP_CPU, (char *)b.buf + lo * b.itemsize, (size_t)((hi - lo + 1) * b.itemsize), NULL, NULL);
    if (!buf) goto fail;
    view = sp_tensor_view_of(buf, d, b.ndim, shape, strides, -lo);
    if (!view) goto fail;
    /* a copy owned by Spore: the Python buffer is released below */
    if (sp_tensor_cast(view, dtype >= 0 ? (sp_dtype)dtype : d, &t) != SP_OK) goto fail;
    v = sp_value_tensor(t);
    if (!v) goto fail;
    goto done;
fail:
    py_raise();
done:
    sp_tensor_release(t);
    sp_tensor_release(view);
    sp_buffer_release(buf);
    PyBuffer_Release(&b);
    return v;
}

/* ---- construction ------------------------------------------------------------ */

/* 1 when o is a (nested) list or tuple whose leaves are all numpy scalars
 * (instances of numpy.generic: np.float32(1.5), np.int8(2), np.bool_(1),
 * np.float64 although it is also a Python float), at least one; 0 when
 * not; -1 on a Python error. */
static int numpy_leaves(PyObject *o, PyObject *generic, int depth) {
    if (!PyList_Check(o) && !PyTuple_Check(o)) return PyObject_IsInstance(o, generic);
    Py_ssize_t n = PyList_Check(o) ? PyList_GET_SIZE(o) : PyTuple_GET_SIZE(o);
    if (n == 0 || depth > SP_MAX_DIMS) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int r = numpy_leaves(PyList_Check(o) ? PyList_GET_ITEM(o, i) : PyTuple_GET_ITEM(o, i), generic, depth + 1);
        if (r <= 0) return r;
    }
    return 1;
}

/* Tensor([np.int8(1), np.int8(2)]): numpy scalars keep their dtype, so a
 * sequence of nothing but numpy scalars is the array numpy makes of it.
 * *done 0 (and NULL) when data is not such a sequence (numpy not even
 * imported: then it cannot hold numpy scalars); NULL + Python error. */
static sp_value *from_numpy_scalars(PyObject *data, int want, int *done) {
    *done = 0;
    PyObject *name = PyUnicode_FromString("numpy"), *np = name ? PyImport_GetModule(name) : NULL;
    Py_XDECREF(name);
    if (!np) return NULL;
    PyObject *generic = PyObject_GetAttrString(np, "generic"), *arr = NULL;
    sp_value *v = NULL;
    int r = generic ? numpy_leaves(data, generic, 0) : -1;
    if (r != 0) {
        *done = 1;
        arr = r > 0 ? PyObject_CallMethod(np, "asarray", "(O)", data) : NULL;
        v = arr ? py_tensor_from_buffer(arr, want) : NULL;
    }
    Py_XDECREF(arr);
    Py_XDECREF(generic);
    Py_DECREF(np);
    return v;
}

/* A tensor value made from host data, moved to the default device when
 * that is a GPU (MindSpore's Tensor(ndarray) under device_target="GPU").
 * Takes v; NULL + Python error. */
static sp_value *value_to_default(sp_value *v) {
    sp_tensor *t = v->u.tensor;
    sp_tensor_retain(t);
    sp_value_release(v);
    t = rt_to_default(t);
    if (!t) return (sp_value *)py_raise();
    v = sp_value_tensor(t);
    sp_tensor_release(t);
    if (!v) py_raise();
    return v;
}

static PyObject *tensor_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"input_data", "dtype", "shape", "init", "internal", "const_arg", NULL};
    PyObject *data = Py_None, *dtype = Py_None, *shape = Py_None, *init = Py_None, *internal = NULL,
             *const_arg = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOOOOO:Tensor", kwlist, &data, &dtype, &shape, &init,
                                     &internal, &const_arg))
        return NULL;
    sp_dtype d = SP_F32;
    int want = -1;
    if (dtype != Py_None) {
        if (py_dtype_from(dtype, &d) < 0) return NULL;
        want = (int)d;
    }
    sp_value *v = NULL;
    if (data == Py_None && shape != Py_None) {
        /* Tensor(shape=..., dtype=...): zeros (MindSpore's lazy init, made eager) */
        sp_value *s = py_to_value(shape, NULL);
        int64_t dims[SP_MAX_ATTR_INTS];
        int n = 0;
        if (!s) return NULL;
        int bad = rt_ints_of(s, dims, &n, "Tensor");
        sp_value_release(s);
        if (bad) return py_raise();
        sp_tensor *t = sp_tensor_zeros(want >= 0 ? d : SP_F32, n, dims, sp_default_device());
        v = t ? sp_value_tensor(t) : NULL;
        sp_tensor_release(t);
        if (!v) return py_raise();
    } else if (data == Py_None) {
        PyErr_SetString(PyExc_TypeError, "Tensor: input_data and shape are both None");
        return NULL;
    } else if (py_is_tensor(data)) {
        if (want >= 0 && (sp_dtype)want != T(data)->dtype) {
            sp_tensor *t = NULL;
            if (sp_tensor_cast(T(data), d, &t) != SP_OK) return py_raise();
            v = sp_value_tensor(t);
            sp_tensor_release(t);
            if (!v) return py_raise();
        } else {
            v = ((py_tensor *)data)->v;
            sp_value_retain(v);
        }
    } else if (PyObject_CheckBuffer(data) && !PyBytes_Check(data)) {
        if (!(v = py_tensor_from_buffer(data, want))) return NULL;
        if (!(v = value_to_default(v))) return NULL;
    } else {
        int done = 0;
        if ((PyList_Check(data) || PyTuple_Check(data)) && ((v = from_numpy_scalars(data, want, &done)) || done)) {
            if (!v) return NULL;
            goto made;
        }
        sp_value *x = py_to_value(data, NULL);
        if (!x) return NULL;
        sp_tensor *t = rt_tensor_from_data(x, want, "Tensor");
        sp_value_release(x);
        if (!t) return py_raise();
        v = sp_value_tensor(t);
        sp_tensor_release(t);
        if (!v) return py_raise();
    }
made:;
    py_tensor *self = (py_tensor *)type->tp_alloc(type, 0);
    if (!self) {
        sp_value_release(v);
        return NULL;
    }
    self->v = v;
    return (PyObject *)self;
}

static void tensor_dealloc(PyObject *self) {
    sp_value_release(((py_tensor *)self)->v);
    Py_TYPE(self)->tp_free(self);
}

/* ---- properties -------------------------------------------------------------- */

static PyObject *shape_tuple(const sp_tensor *t) {
    PyObject *s = PyTuple_New(t->ndim);
    for (int i = 0; s && i < t->ndim; i++) PyTuple_SET_ITEM(s, i, PyLong_FromLongLong(t->shape[i]));
    return s;
}

static PyObject *get_shape(PyObject *self, void *c) { (void)c; return shape_tuple(T(self)); }
static PyObject *get_dtype(PyObject *self, void *c) { (void)c; return py_dtype_object(T(self)->dtype); }
static PyObject *get_ndim(PyObject *self, void *c) { (void)c; return PyLong_FromLong(T(self)->ndim); }
static PyObject *get_size(PyObject *self, void *c) { (void)c; return PyLong_FromLongLong(sp_tensor_numel(T(self))); }
static PyObject *get_itemsize(PyObject *self, void *c) {
    (void)c;
    return PyLong_FromSize_t(sp_dtype_size(T(self)->dtype));
}
static PyObject *get_nbytes(PyObject *self, void *c) { (void)c; return PyLong_FromSize_t(sp_tensor_nbytes(T(self))); }
static PyObject *get_strides(PyObject *self, void *c) {
    (void)c;
    const sp_tensor *t = T(self);
    PyObject *s = PyTuple_New(t->ndim);
    for (int i = 0; s && i < t->ndim; i++)
        PyTuple_SET_ITEM(s, i, PyLong_FromLongLong(t->strides[i] * (int64_t)sp_dtype_size(t->dtype)));
    return s;
}
static PyObject *get_T(PyObject *self, void *c) {
    (void)c;
    return wrap_or_raise(rt_tensor_getattr(((py_tensor *)self)->v, "T"));
}
static PyObject *get_device(PyObject *self, void *c) {
    (void)c;
    const sp_tensor *t = T(self);
    return PyUnicode_FromString(t->buf && t->buf->device.type == SP_DEVICE_CUDA ? "GPU" : "CPU");
}

static PyGetSetDef tensor_getset[] = {
    {"shape", get_shape, NULL, "the shape as a tuple", NULL},
    {"dtype", get_dtype, NULL, "the dtype (spore.float32, ...)", NULL},
    {"ndim", get_ndim, NULL, "number of dimensions", NULL},
    {"size", get_size, NULL, "number of elements", NULL},
    {"itemsize", get_itemsize, NULL, "bytes per element", NULL},
    {"nbytes", get_nbytes, NULL, "bytes of the elements", NULL},
    {"strides", get_strides, NULL, "strides in bytes", NULL},
    {"T", get_T, NULL, "the transpose (axes reversed)", NULL},
    {"device", get_device, NULL, "'CPU' or 'GPU'", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

/* ---- operators ------------------------------------------------------------------ */

static PyObject *binary(int id, PyObject *a, PyObject *b) {
    sp_value *va = py_to_value(a, NULL);
    if (!va) {
        /* an operand Spore cannot take: let Python try the other side */
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            Py_RETURN_NOTIMPLEMENTED;
        }
        return NULL;
    }
    sp_value *vb = py_to_value(b, NULL);
    if (!vb) {
        sp_value_release(va);
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            PyErr_Clear();
            Py_RETURN_NOTIMPLEMENTED;
        }
        return NULL;
    }
    sp_value *r = rt_binary(id, va, vb);
    sp_value_release(va);
    sp_value_release(vb);
    return wrap_or_raise(r);
}

#define BINOP(fn, ID) \
    static PyObject *fn(PyObject *a, PyObject *b) { return binary(RT_B_##ID, a, b); }
BINOP(nb_add, ADD)
BINOP(nb_sub, SUB)
BINOP(nb_mul, MUL)
BINOP(nb_truediv, TRUEDIV)
BINOP(nb_floordiv, FLOORDIV)
BINOP(nb_mod, MOD)
BINOP(nb_matmul, MATMUL)
#undef BINOP

static PyObject *nb_pow(PyObject *a, PyObject *b, PyObject *m) {
    if (m != Py_None) {
        PyErr_SetString(PyExc_TypeError, "Tensor: pow() with a modulus is not supported");
        return NULL;
    }
    return binary(RT_B_POW, a, b);
}

static PyObject *unary(int id, PyObject *a) {
    sp_value *va = ((py_tensor *)a)->v;
    return wrap_or_raise(rt_builtin_call(id, 1, &va));
}
static PyObject *nb_neg(PyObject *a) { return unary(RT_B_NEG, a); }
static PyObject *nb_pos(PyObject *a) { return unary(RT_B_POS, a); }
static PyObject *nb_abs(PyObject *a) { return unary(RT_B_ABS, a); }

static int nb_bool(PyObject *a) {
    int r = sp_value_truth(((py_tensor *)a)->v);
    if (r < 0) py_raise();
    return r;
}

static PyObject *nb_int(PyObject *self) {
    int64_t i;
    if (rt_int_of(((py_tensor *)self)->v, &i, "int()")) {
        double f;
        sp_clear_error();
        if (rt_float_of(((py_tensor *)self)->v, &f, "int()")) return py_raise();
        return PyLong_FromDouble(f);
    }
    return PyLong_FromLongLong((long long)i);
}
static PyObject *nb_index(PyObject *self) {
    int64_t i;
    if (sp_dtype_is_float(T(self)->dtype)) {
        PyErr_SetString(PyExc_TypeError, "only integer tensors of a single element can be an index");
        return NULL;
    }
    if (rt_int_of(((py_tensor *)self)->v, &i, "index")) return py_raise();
    return PyLong_FromLongLong((long long)i);
}
static PyObject *nb_float(PyObject *self) {
    double f;
    if (rt_float_of(((py_tensor *)self)->v, &f, "float()")) return py_raise();
    return PyFloat_FromDouble(f);
}

static PyNumberMethods tensor_as_number = {
    .nb_add = nb_add,
    .nb_subtract = nb_sub,
    .nb_multiply = nb_mul,
    .nb_remainder = nb_mod,
    .nb_power = nb_pow,
    .nb_negative = nb_neg,
    .nb_positive = nb_pos,
    .nb_absolute = nb_abs,
    .nb_bool = nb_bool,
    .nb_int = nb_int,
    .nb_float = nb_float,
    .nb_floor_divide = nb_floordiv,
    .nb_true_divide = nb_truediv,
    .nb_index = nb_index,
    .nb_matrix_multiply = nb_matmul,
};

static PyObject *tensor_richcompare(PyObject *a, PyObject *b, int op) {
    static const int ids[] = {RT_B_LT, RT_B_LE, RT_B_EQ, RT_B_NE, RT_B_GT, RT_B_GE};
    if (b == Py_None && (op == Py_EQ || op == Py_NE)) return PyBool_FromLong(op == Py_NE);
    return binary(ids[op], a, b);
}

static Py_hash_t tensor_hash(PyObject *self) {
    Py_hash_t h = (Py_hash_t)((uintptr_t)self >> 4);
    return h == -1 ? -2 : h;
}

/* ---- indexing ------------------------------------------------------------------- */

static PyObject *tensor_getitem(PyObject *self, PyObject *index) {
    sp_value *i = py_to_value(index, NULL);
    if (!i) return NULL;
    sp_value *r = rt_getitem(((py_tensor *)self)->v, i);
    sp_value_release(i);
    if (!r && sp_last_status() == SP_ERR_ARG && strstr(sp_last_error(), "out of")) {
        PyErr_SetString(PyExc_IndexError, sp_last_error());
        return NULL;
    }
    return wrap_or_raise(r);
}

static Py_ssize_t tensor_len(PyObject *self) {
    const sp_tensor *t = T(self);
    if (t->ndim == 0) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
        return -1;
    }
    return (Py_ssize_t)t->shape[0];
}

static PyMappingMethods tensor_as_mapping = {
    .mp_length = tensor_len, .mp_subscript = tensor_getitem, .mp_ass_subscript = py_tensor_setitem};

static PyObject *tensor_iter(PyObject *self) {
    Py_ssize_t n = tensor_len(self);
    if (n < 0) return NULL;
    PyObject *rows = PyTuple_New(n);
    for (Py_ssize_t i = 0; rows && i < n; i++) {
        PyObject *k = PyLong_FromSsize_t(i), *r = k ? tensor_getitem(self, k) : NULL;
        Py_XDECREF(k);
        if (!r) {
            Py_CLEAR(rows);
            break;
        }
        PyTuple_SET_ITEM(rows, i, r);
    }
    if (!rows) return NULL;
    PyObject *it = PyObject_GetIter(rows);
    Py_DECREF(rows);
    return it;
}

/* ---- buffer protocol -------------------------------------------------------------- */

static const char *dtype_format(sp_dtype d) {
    switch (d) {
    case SP_F32: return "f";
    case SP_F64: return "d";
    case SP_F16: return "e";
    case SP_I8: return "b";
    case SP_U8: return "B";
    case SP_I32: return "i";
    case SP_I64: return "q";
    case SP_BOOL: return "?";
    default: return NULL;
    }
}

typedef struct {
    Py_ssize_t shape[SP_MAX_DIMS], strides[SP_MAX_DIMS];
} buf_dims;

static PyObject *on_cpu(PyObject *self);

static int tensor_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    const sp_tensor *t = T(self);
    const char *fmt = dtype_format(t->dtype);
    if (!fmt) {
        PyErr_Format(PyExc_BufferError, "a %s tensor has no buffer format (numpy has no %s); "
                     "use .astype(spore.float32) first", sp_dtype_name(t->dtype), sp_dtype_name(t->dtype));
        return -1;
    }
    if (!t->buf) {
        PyErr_SetString(PyExc_BufferError, "the tensor has no memory");
        return -1;
    }
    if (t->buf->device.type != SP_DEVICE_CPU) {
        /* a GPU tensor exports a host copy, read-only: writes through it
         * could not reach the device */
        if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE) {
            PyErr_SetString(PyExc_BufferError, "a GPU tensor exports a read-only host copy "
                            "(write with Tensor.__setitem__, or use .to('CPU'))");
            return -1;
        }
        PyObject *host = on_cpu(self);
        if (!host) return -1;
        int r = T(host)->buf && T(host)->buf->device.type == SP_DEVICE_CPU ? tensor_getbuffer(host, view, flags) : -1;
        if (r == 0) view->readonly = 1;
        else if (!PyErr_Occurred()) PyErr_SetString(PyExc_BufferError, "no host copy of the GPU tensor");
        Py_DECREF(host); /* the view holds its own reference */
        return r;
    }
    if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE) {
        /* the memory is shared with Spore; writes through numpy are allowed,
         * as MindSpore's asnumpy() shares it too */
    }
    buf_dims *dims = PyMem_Malloc(sizeof *dims);
    if (!dims) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t isz = (Py_ssize_t)sp_dtype_size(t->dtype);
    for (int i = 0; i < t->ndim; i++) {
        dims->shape[i] = (Py_ssize_t)t->shape[i];
        dims->strides[i] = (Py_ssize_t)t->strides[i] * isz;
    }
    int contiguous = sp_tensor_is_contiguous(t);
    if (!contiguous && !(flags & PyBUF_STRIDES)) {
        PyMem_Free(dims);
        PyErr_SetString(PyExc_BufferError, "the tensor is not contiguous: ask for a strided buffer");
        return -1;
    }
    view->buf = sp_tensor_data(t);
    view->obj = self;
    Py_INCREF(self);
    view->len = (Py_ssize_t)sp_tensor_numel(t) * isz;
    view->readonly = 0;
    view->itemsize = isz;
    view->format = (flags & PyBUF_FORMAT) ? (char *)fmt : NULL;
    view->ndim = t->ndim;
    view->shape = (flags & PyBUF_ND) ? dims->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? dims->strides : NULL;
    view->suboffsets = NULL;
    view->internal = dims;
    return 0;
}

static void tensor_releasebuffer(PyObject *self, Py_buffer *view) {
    (void)self;
    PyMem_Free(view->internal);
}

static PyBufferProcs tensor_as_buffer = {tensor_getbuffer, tensor_releasebuffer};

/* ---- methods ------------------------------------------------------------------------- */

/* The tensor on the CPU (new reference; itself when already there). */
static PyObject *on_cpu(PyObject *self) {
    sp_tensor *t = T(self);
    if (!t->buf || t->buf->device.type == SP_DEVICE_CPU) {
        Py_INCREF(self);
        return self;
    }
    sp_tensor *c = NULL;
    if (sp_tensor_to(t, SP_CPU, &c) != SP_OK) return py_raise();
    sp_value *v = sp_value_tensor(c);
    sp_tensor_release(c);
    return py_tensor_wrap(v);
}

static PyObject *tensor_asnumpy(PyObject *self, PyObject *unused) {
    (void)unused;
    PyObject *src = on_cpu(self);
    if (!src) return NULL;
    if (T(src)->dtype == SP_BF16) {
        /* numpy has no bfloat16: float32 holds every bfloat16 exactly */
        sp_tensor *c = NULL;
        if (sp_tensor_cast(T(src), SP_F32, &c) != SP_OK) {
            Py_DECREF(src);
            return py_raise();
        }
        Py_DECREF(src);
        if (!(src = py_tensor_wrap(sp_value_tensor(c)))) {
            sp_tensor_release(c);
            return NULL;
        }
        sp_tensor_release(c);
    }
    PyObject *np = PyImport_ImportModule("numpy");
    PyObject *r = np ? PyObject_CallMethod(np, "asarray", "O", src) : NULL;
    Py_XDECREF(np);
    Py_DECREF(src);
    return r;
}

static PyObject *tensor_array(PyObject *self, PyObject *args, PyObject *kw) {
    PyObject *dtype = Py_None, *copy = Py_None;
    static char *kwlist[] = {"dtype", "copy", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO:__array__", kwlist, &dtype, &copy)) return NULL;
    PyObject *a = tensor_asnumpy(self, NULL);
    if (!a || dtype == Py_None) return a;
    PyObject *r = PyObject_CallMethod(a, "astype", "O", dtype);
    Py_DECREF(a);
    return r;
}

static PyObject *tensor_item(PyObject *self, PyObject *unused) {
    (void)unused;
    if (sp_tensor_numel(T(self)) != 1) {
        PyErr_Format(PyExc_ValueError, "item(): the tensor has %lld elements, not 1",
                     (long long)sp_tensor_numel(T(self)));
        return NULL;
    }
    PyObject *src = on_cpu(self);
    if (!src) return NULL;
    sp_tensor *flat = NULL;
    int64_t one = 1;
    PyObject *r = NULL;
    if (sp_tensor_reshape(T(src), 0, &one, &flat) == SP_OK) {
        r = wrap_or_raise(rt_tensor_to_py(flat, 0));
        sp_tensor_release(flat);
    } else {
        py_raise();
    }
    Py_DECREF(src);
    return r;
}

static PyObject *tensor_tolist(PyObject *self, PyObject *unused) {
    (void)unused;
    PyObject *src = on_cpu(self);
    if (!src) return NULL;
    PyObject *r = wrap_or_raise(rt_tensor_to_py(T(src), 1));
    Py_DECREF(src);
    return r;
}

/* _to_device("CPU" | "GPU"): a copy on that device (itself if there). */
static PyObject *tensor_to_device(PyObject *self, PyObject *name) {
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return NULL;
    sp_device dev;
    if (!strcmp(s, "CPU") || !strcmp(s, "cpu")) dev = SP_CPU;
    else if (!strcmp(s, "GPU") || !strcmp(s, "cuda") || !strcmp(s, "CUDA") || !strcmp(s, "gpu")) {
        if (!sp_cuda_available()) {
            PyErr_Format(PyExc_RuntimeError, "device 'GPU' is not available: %s", sp_last_error());
            return NULL;
        }
        dev = (sp_device){SP_DEVICE_CUDA, 0};
    } else {
        PyErr_Format(PyExc_ValueError, "unknown device '%s' (use 'CPU' or 'GPU')", s);
        return NULL;
    }
    sp_tensor *c = NULL;
    if (sp_tensor_to(T(self), dev, &c) != SP_OK) return py_raise();
    sp_value *v = sp_value_tensor(c);
    sp_tensor_release(c);
    return py_tensor_wrap(v);
}

/* _same(other): whether both objects hold the same C tensor (tests). */
static PyObject *tensor_data_ptr(PyObject *self, PyObject *unused) {
    (void)unused;
    return PyLong_FromVoidPtr(T(self)->buf ? sp_tensor_data(T(self)) : NULL);
}

/* _set_value(other): the values of other, written into this tensor's
 * memory when shape and dtype allow (so compiled graphs that hold this
 * tensor see them), else this object takes other's tensor. */
static PyObject *tensor_set_value(PyObject *self, PyObject *other) {
    if (!py_is_tensor(other)) {
        PyErr_SetString(PyExc_TypeError, "_set_value: expected a Tensor");
        return NULL;
    }
    sp_tensor *d = T(self), *s = T(other);
    int same = d->ndim == s->ndim && d->buf && s->buf && d->buf->device.type != SP_DEVICE_META &&
               s->buf->device.type != SP_DEVICE_META;
    for (int i = 0; same && i < d->ndim; i++) same = d->shape[i] == s->shape[i];
    if (same && d != s && d->buf != s->buf && d->buf->device.type != SP_DEVICE_CPU && sp_tensor_is_contiguous(d)) {
        /* on the GPU: the values go to d's device and the assign primitive
         * writes them in place (a checkpoint loaded into GPU parameters) */
        sp_tensor *m = NULL;
        int n = 0;
        sp_tensor *out[SP_MAX_OUTPUTS];
        if (sp_tensor_to(s, d->buf->device, &m) != SP_OK) return py_raise();
        sp_tensor *in[2] = {d, m};
        sp_status st = sp_tensor_is_contiguous(m) ? sp_op_call(SP_OP_ASSIGN, 2, in, NULL, &n, out)
                                                  : sp_error(SP_ERR_INTERNAL, "_set_value: a strided copy");
        sp_tensor_release(m);
        if (st != SP_OK) return py_raise();
    } else if (same && d != s && d->buf != s->buf && d->buf->device.type == SP_DEVICE_CPU) {
        sp_tensor *h = rt_host(s); /* GPU values are copied to the host first */
        sp_status st = h ? sp_tensor_copy_into(d, h) : sp_last_status();
        sp_tensor_release(h);
        if (st != SP_OK) return py_raise();
    } else if (d != s) {
        sp_value *old = ((py_tensor *)self)->v;
        ((py_tensor *)self)->v = ((py_tensor *)other)->v;
        sp_value_retain(((py_tensor *)self)->v);
        sp_value_release(old);
    }
    Py_RETURN_NONE;
}

/* _migrate(name): this object's storage replaced by a copy on that device
 * ("CPU" | "GPU" | "cuda:0"), in place: a Parameter made before
 * set_context(device_target="GPU") moves to the GPU and stays the same
 * Python object (optimizers and Cells hold it).  Compiled graphs holding
 * the old storage must be rebuilt (spore/_jit.py does). */
static PyObject *tensor_migrate(PyObject *self, PyObject *name) {
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return NULL;
    sp_device dev;
    if (sp_device_parse(s, &dev) != SP_OK) {
        PyErr_SetString(PyExc_ValueError, sp_last_error());
        return NULL;
    }
    sp_tensor *c = NULL;
    if (sp_tensor_to(T(self), dev, &c) != SP_OK) return py_raise();
    sp_value *v = sp_value_tensor(c);
    sp_tensor_release(c);
    if (!v) return py_raise();
    sp_value *old = ((py_tensor *)self)->v;
    ((py_tensor *)self)->v = v;
    sp_value_release(old);
    Py_RETURN_NONE;
}

static PyMethodDef tensor_methods[] = {
    {"_migrate", tensor_migrate, METH_O, "moves this object's storage to a device, in place"},
    {"_set_value", tensor_set_value, METH_O, "replaces the values (Parameter.set_data)"},
    {"asnumpy", tensor_asnumpy, METH_NOARGS, "a numpy array sharing the memory of a CPU tensor"},
    {"numpy", tensor_asnumpy, METH_NOARGS, "the same as asnumpy()"},
    {"__array__", (PyCFunction)(void (*)(void))tensor_array, METH_VARARGS | METH_KEYWORDS, "numpy interop"},
    {"item", tensor_item, METH_NOARGS, "the value of a one-element tensor as a Python scalar"},
    {"tolist", tensor_tolist, METH_NOARGS, "nested lists of Python scalars"},
    {"_to_device", tensor_to_device, METH_O, "a copy on 'CPU' or 'GPU'"},
    {"data_ptr", tensor_data_ptr, METH_NOARGS, "address of element 0"},
    {"__dlpack__", (PyCFunction)(void (*)(void))py_tensor_dlpack, METH_VARARGS | METH_KEYWORDS,
     "a DLPack capsule sharing the tensor's memory"},
    {"__dlpack_device__", py_tensor_dlpack_device, METH_NOARGS, "(device type, index) for DLPack"},
    {NULL, NULL, 0, NULL}};

/* ---- printing ------------------------------------------------------------------------ */

static PyObject *tensor_str(PyObject *self) {
    PyObject *src = on_cpu(self);
    if (!src) return NULL;
    char *s = sp_tensor_to_string(T(src));
    Py_DECREF(src);
    if (!s) return py_raise();
    PyObject *r = PyUnicode_FromString(s);
    free(s);
    return r;
}

static PyObject *tensor_repr(PyObject *self) {
    PyObject *v = tensor_str(self);
    if (!v) return NULL;
    const sp_tensor *t = T(self);
    char shape[160];
    sp_shape_str(t->ndim, t->shape, shape, sizeof shape);
    /* MindSpore: Tensor(shape=[3], dtype=Float32, value= [...]) */
    for (char *p = shape; *p; p++) {
        if (*p == '(') *p = '[';
        else if (*p == ')') *p = ']';
    }
    size_t n = strlen(shape);
    if (n >= 3 && shape[n - 2] == ',' && shape[n - 1] == ']') {
        shape[n - 2] = ']';
        shape[n - 1] = '\0';
    }
    char dt[32];
    snprintf(dt, sizeof dt, "%s", sp_dtype_name(t->dtype));
    dt[0] = (char)(dt[0] - 'a' + 'A');
    if (t->dtype == SP_BOOL) snprintf(dt, sizeof dt, "Bool");
    if (t->dtype == SP_BF16) snprintf(dt, sizeof dt, "BFloat16");
    PyObject *r = PyUnicode_FromFormat("Tensor(shape=%s, dtype=%s, value=%s%U)", shape, dt,
                                       t->ndim > 1 ? "\n" : " ", v);
    Py_DECREF(v);
    return r;
}

PyTypeObject py_tensor_base_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spore._C.TensorBase",
    .tp_basicsize = sizeof(py_tensor),
    .tp_dealloc = tensor_dealloc,
    .tp_repr = tensor_repr,
    .tp_str = tensor_str,
    .tp_as_number = &tensor_as_number,
    .tp_as_mapping = &tensor_as_mapping,
    .tp_as_buffer = &tensor_as_buffer,
    .tp_hash = tensor_hash,
    .tp_richcompare = tensor_richcompare,
    .tp_iter = tensor_iter,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Spore's tensor storage; spore.Tensor derives from it",
    .tp_methods = tensor_methods,
    .tp_getset = tensor_getset,
    .tp_new = tensor_new,
};
