/*
 * ckpt.c -- the C half of spore.save_checkpoint / spore.load_checkpoint:
 * named tensors to and from safetensors files through src/io, and the
 * in-place copy that loads a value into an existing Parameter.
 *
 * python/spore/train/serialization.py decides what goes into a checkpoint
 * (a Cell's parameters by name, append_dict, filters) and what loading means
 * (MindSpore's matching and dtype rules); this file only moves bytes:
 *
 *   ckpt_save(path, names, tensors, meta)  sp_checkpoint_save: atomic
 *                                          (temporary file, fsync, rename),
 *                                          so a failed save leaves the old
 *                                          file as it was.
 *   ckpt_load(path) -> (entries, meta)     sp_checkpoint_load: the strict
 *                                          parser; a damaged file is a
 *                                          ValueError naming the file and
 *                                          what is wrong, never a crash.
 *   ckpt_copy_into(dst, src)               src's values written into dst's
 *                                          memory (converted to dst's
 *                                          dtype), same shape required.
 *   ckpt_copy(t)                           a private contiguous CPU copy
 *                                          (the snapshot an async save
 *                                          writes while training goes on).
 *
 * The invariant loading keeps: a Parameter's identity never changes.  The
 * Python object, its sp_value and its sp_tensor stay the same objects and
 * only the bytes in its buffer change, because compiled graphs and
 * optimizers hold the tensor itself.  (Tensor._set_value falls back to
 * swapping the tensor when shapes differ or the tensor is on a GPU; this
 * file never does.)
 *
 * File I/O runs with the GIL released: the tensors and names are pinned
 * (retained, or held in tuples the caller cannot mutate) before it starts.
 */
#include "py.h"

#include <limits.h>
#include <string.h>

#include "backend/backend.h"
#include "spore/io.h"

static sp_tensor *ckpt_T(PyObject *o) { return ((py_tensor *)o)->v->u.tensor; }

/* The exception for a failed load: a malformed file is a ValueError (as
 * MindSpore's load_checkpoint raises), the rest follows py_raise. */
static PyObject *ckpt_raise_load(void) {
    if (!PyErr_Occurred() && sp_last_status() == SP_ERR_FORMAT) {
        PyErr_SetString(PyExc_ValueError, sp_last_error());
        return NULL;
    }
    return py_raise();
}

/* ckpt_save(path, names, tensors, meta): names a sequence of str, tensors
 * a sequence of Tensors of the same length, meta a dict str -> str. */
static PyObject *ckpt_save(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_b = NULL, *names_in, *tensors_in, *meta_in;
    if (!PyArg_ParseTuple(args, "O&OOO!:ckpt_save", PyUnicode_FSConverter, &path_b, &names_in, &tensors_in,
                          &PyDict_Type, &meta_in))
        return NULL;
    PyObject *names = NULL, *tensors = NULL, *mkeys = NULL, *mvals = NULL, *r = NULL;
    const char **cn = NULL, **ck = NULL, **cv = NULL;
    sp_tensor **ct = NULL;
    Py_ssize_t n = 0, nm = 0;
    /* tuples: immutable while the GIL is released */
    if (!(names = PySequence_Tuple(names_in)) || !(tensors = PySequence_Tuple(tensors_in))) goto done;
    n = PyTuple_GET_SIZE(names);
    if (PyTuple_GET_SIZE(tensors) != n) {
        PyErr_Format(PyExc_ValueError, "ckpt_save: %zd names but %zd tensors", n, PyTuple_GET_SIZE(tensors));
        goto done;
    }
    if (n > INT_MAX / 2 || PyDict_GET_SIZE(meta_in) > INT_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "ckpt_save: too many entries");
        goto done;
    }
    if (!(mkeys = PyDict_Keys(meta_in)) || !(mvals = PyDict_Values(meta_in))) goto done;
    nm = PyList_GET_SIZE(mkeys);
    cn = calloc((size_t)n + 1, sizeof *cn);
    ct = calloc((size_t)n + 1, sizeof *ct);
    ck = calloc((size_t)nm + 1, sizeof *ck);
    cv = calloc((size_t)nm + 1, sizeof *cv);
    if (!cn || !ct || !ck || !cv) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyTuple_GET_ITEM(names, i), *t = PyTuple_GET_ITEM(tensors, i);
        if (!PyUnicode_Check(s)) {
            PyErr_Format(PyExc_TypeError, "ckpt_save: name %zd is a %s, not a str", i, Py_TYPE(s)->tp_name);
            goto done;
        }
        if (!py_is_tensor(t)) {
            PyErr_Format(PyExc_TypeError, "ckpt_save: the value of '%U' is a %s, not a Tensor", s,
                         Py_TYPE(t)->tp_name);
            goto done;
        }
        Py_ssize_t len;
        if (!(cn[i] = PyUnicode_AsUTF8AndSize(s, &len))) goto done;
        if ((size_t)len != strlen(cn[i])) {
            PyErr_Format(PyExc_ValueError, "ckpt_save: the name %R holds a NUL character", s);
            goto done;
        }
        if (sp_tensor_is_meta(ckpt_T(t))) {
            PyErr_Format(PyExc_ValueError, "ckpt_save: '%U' is a meta tensor (it has no values)", s);
            goto done;
        }
        /* retained: a concurrent _set_value may swap the object's tensor */
        ct[i] = ckpt_T(t);
        sp_tensor_retain(ct[i]);
    }
    for (Py_ssize_t i = 0; i < nm; i++) {
        PyObject *k = PyList_GET_ITEM(mkeys, i), *v = PyList_GET_ITEM(mvals, i);
        if (!PyUnicode_Check(k) || !PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "ckpt_save: metadata keys and values must be str");
            goto done;
        }
        Py_ssize_t lk, lv;
        if (!(ck[i] = PyUnicode_AsUTF8AndSize(k, &lk)) || !(cv[i] = PyUnicode_AsUTF8AndSize(v, &lv))) goto done;
        if ((size_t)lk != strlen(ck[i]) || (size_t)lv != strlen(cv[i])) {
            PyErr_Format(PyExc_ValueError, "ckpt_save: the metadata entry %R holds a NUL character", k);
            goto done;
        }
    }
    sp_status st;
    Py_BEGIN_ALLOW_THREADS
    st = sp_checkpoint_save(PyBytes_AS_STRING(path_b), (int)n, cn, ct, (int)nm, ck, cv);
    Py_END_ALLOW_THREADS
    if (st != SP_OK) {
        py_raise();
        goto done;
    }
    r = Py_None;
    Py_INCREF(r);
done:
    for (Py_ssize_t i = 0; ct && i < n; i++) sp_tensor_release(ct[i]);
    free(cn);
    free(ct);
    free(ck);
    free(cv);
    Py_XDECREF(mkeys);
    Py_XDECREF(mvals);
    Py_XDECREF(names);
    Py_XDECREF(tensors);
    Py_XDECREF(path_b);
    return r;
}

/* ckpt_load(path) -> ([(name, Tensor), ...] in the file's order,
 * {meta key: value}). */
static PyObject *ckpt_load(PyObject *self, PyObject *arg) {
    (void)self;
    PyObject *path_b = NULL;
    if (!PyUnicode_FSConverter(arg, &path_b)) return NULL;
    sp_checkpoint *c = NULL;
    sp_status st;
    Py_BEGIN_ALLOW_THREADS
    st = sp_checkpoint_load(PyBytes_AS_STRING(path_b), &c);
    Py_END_ALLOW_THREADS
    Py_DECREF(path_b);
    if (st != SP_OK) return ckpt_raise_load();
    PyObject *entries = PyList_New(c->n), *meta = PyDict_New(), *r = NULL;
    if (!entries || !meta) goto done;
    for (int i = 0; i < c->n; i++) {
        sp_value *v = sp_value_tensor(c->tensors[i]);
        PyObject *t = v ? py_tensor_wrap(v) : py_raise();
        PyObject *e = t ? Py_BuildValue("(sN)", c->names[i], t) : NULL;
        if (!e) goto done;
        PyList_SET_ITEM(entries, i, e);
    }
    for (int i = 0; i < c->nmeta; i++) {
        PyObject *v = PyUnicode_FromString(c->meta_values[i]);
        int bad = !v || PyDict_SetItemString(meta, c->meta_keys[i], v) < 0;
        Py_XDECREF(v);
        if (bad) goto done;
    }
    r = PyTuple_Pack(2, entries, meta);
done:
    Py_XDECREF(entries);
    Py_XDECREF(meta);
    sp_checkpoint_free(c);
    return r;
}

/* Writes host (contiguous, CPU, dst's dtype and shape) into dst on its
 * device.  Only contiguous device tensors: a Parameter always is. */
static sp_status ckpt_upload(sp_tensor *dst, const sp_tensor *host) {
    if (!sp_tensor_is_contiguous(dst))
        return sp_error(SP_ERR_UNSUPPORTED, "loading into a strided view of a GPU tensor");
    sp_backend *be = sp_backend_get(dst->buf->device.type);
    if (!be) return sp_last_status();
    size_t nb = sp_tensor_nbytes(dst);
    if (nb == 0) return SP_OK;
    char *d = (char *)dst->buf->data + dst->offset * (int64_t)sp_dtype_size(dst->dtype);
    return be->memcpy_to_device(be, d, sp_tensor_data(host), nb);
}

/* ckpt_copy_into(dst, src): dst[...] = src converted to dst's dtype, in
 * dst's memory; the shapes must be equal (no broadcasting: a checkpoint
 * entry of another shape is a mistake, not something to stretch). */
static PyObject *ckpt_copy_into(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *dst_o, *src_o;
    if (!PyArg_ParseTuple(args, "OO:ckpt_copy_into", &dst_o, &src_o)) return NULL;
    if (!py_is_tensor(dst_o) || !py_is_tensor(src_o)) {
        PyErr_SetString(PyExc_TypeError, "ckpt_copy_into: expected two Tensors");
        return NULL;
    }
    sp_tensor *dst = ckpt_T(dst_o), *src = ckpt_T(src_o);
    if (sp_tensor_is_meta(dst) || sp_tensor_is_meta(src)) {
        PyErr_SetString(PyExc_ValueError, "ckpt_copy_into: a meta tensor has no values");
        return NULL;
    }
    int same = dst->ndim == src->ndim;
    for (int i = 0; same && i < dst->ndim; i++) same = dst->shape[i] == src->shape[i];
    if (!same) {
        char a[160], b[160];
        PyErr_Format(PyExc_ValueError, "ckpt_copy_into: shape %s into shape %s",
                     sp_shape_str(src->ndim, src->shape, a, sizeof a),
                     sp_shape_str(dst->ndim, dst->shape, b, sizeof b));
        return NULL;
    }
    sp_tensor *cpu = NULL, *host = NULL;
    sp_status st = SP_OK;
    if (src->buf->device.type != SP_DEVICE_CPU) {
        if ((st = sp_tensor_to(src, SP_CPU, &cpu)) != SP_OK) return py_raise();
        src = cpu;
    }
    if (dst->buf->device.type == SP_DEVICE_CPU) {
        st = sp_tensor_copy_into(dst, src);
    } else if ((st = sp_tensor_cast(src, dst->dtype, &host)) == SP_OK) {
        st = ckpt_upload(dst, host);
    }
    sp_tensor_release(host);
    sp_tensor_release(cpu);
    if (st != SP_OK) return py_raise();
    Py_RETURN_NONE;
}

/* ckpt_copy(t): a new contiguous CPU Tensor holding t's values now. */
static PyObject *ckpt_copy(PyObject *self, PyObject *arg) {
    (void)self;
    if (!py_is_tensor(arg)) {
        PyErr_SetString(PyExc_TypeError, "ckpt_copy: expected a Tensor");
        return NULL;
    }
    sp_tensor *t = ckpt_T(arg), *c = NULL;
    if (sp_tensor_is_meta(t)) {
        PyErr_SetString(PyExc_ValueError, "ckpt_copy: a meta tensor has no values");
        return NULL;
    }
    /* sp_tensor_to returns a GPU tensor's fresh host copy; a CPU tensor is
     * copied by a cast to its own dtype */
    sp_status st = t->buf->device.type != SP_DEVICE_CPU ? sp_tensor_to(t, SP_CPU, &c)
                                                         : sp_tensor_cast(t, t->dtype, &c);
    if (st != SP_OK) return py_raise();
    sp_value *v = sp_value_tensor(c);
    sp_tensor_release(c);
    return py_tensor_wrap(v);
}

static PyMethodDef ckpt_methods[] = {
    {"ckpt_save", ckpt_save, METH_VARARGS, "ckpt_save(path, names, tensors, meta): an atomic safetensors save"},
    {"ckpt_load", ckpt_load, METH_O, "ckpt_load(path) -> ([(name, Tensor)], {meta})"},
    {"ckpt_copy_into", ckpt_copy_into, METH_VARARGS, "ckpt_copy_into(dst, src): src's values into dst's memory"},
    {"ckpt_copy", ckpt_copy, METH_O, "ckpt_copy(t): a contiguous CPU copy of t"},
    {NULL, NULL, 0, NULL}};

int py_ckpt_add(PyObject *m) { return PyModule_AddFunctions(m, ckpt_methods); }
