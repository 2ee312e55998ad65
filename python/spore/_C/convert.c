/*
 * convert.c -- Python objects to Spore values and back.
 *
 * The mapping is the one the source language already has: Python's bool,
 * int, float, str, None, tuple, list, slice and Ellipsis are Spore's own
 * scalar and container values, so a function of the API sees exactly what
 * it would see called from a program (weak typing of scalars included).
 * A Tensor is its value (no copy); a numpy array or any buffer-protocol
 * object becomes a new tensor holding a copy; a dtype object is a DTYPE
 * value.  Coming back, callables (functions, closures, partials, the
 * primitives) are wrapped as _C.Value objects: graphs and closures run the
 * VM when called, functions of the API table and primitives (under any
 * partials) call their C function directly (apifn.c).
 *
 * Depth: nested lists are converted recursively; Python's own recursion
 * limit (Py_EnterRecursiveCall) guards a self-containing list.
 */
#include "py.h"

#include <string.h>

static sp_value *seq_to_value(PyObject *o, int is_list, PyObject *deps) {
    PyObject *fast = PySequence_Fast(o, "expected a sequence");
    if (!fast) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    /* shapes and axes are short: no allocation for them */
    sp_value *small[8], **items = n <= 8 ? small : PyMem_Calloc((size_t)n + 1, sizeof *items), *r = NULL;
    if (!items) {
        Py_DECREF(fast);
        return (sp_value *)PyErr_NoMemory();
    }
    Py_ssize_t i;
    for (i = 0; i < n; i++)
        if (!(items[i] = py_to_value(PySequence_Fast_GET_ITEM(fast, i), deps))) break;
    if (i == n) {
        r = is_list ? sp_value_list((int)n, items) : sp_value_tuple((int)n, items);
        if (!r) py_raise();
    }
    for (Py_ssize_t k = 0; k < i; k++) sp_value_release(items[k]);
    if (items != small) PyMem_Free(items);
    Py_DECREF(fast);
    return r;
}

sp_value *py_to_value(PyObject *o, PyObject *deps) {
    sp_value *v = NULL;
    if (py_is_tensor(o)) {
        v = ((py_tensor *)o)->v;
        sp_value_retain(v);
        return v;
    }
    if (PyObject_TypeCheck(o, &py_value_type)) {
        py_value *pv = (py_value *)o;
        if (deps && pv->owner && PyList_Append(deps, pv->owner) < 0) return NULL;
        sp_value_retain(pv->v);
        return pv->v;
    }
    if (o == Py_None) v = sp_value_none();
    else if (PyBool_Check(o)) v = sp_value_bool(o == Py_True);
    else if (PyLong_Check(o)) {
        int overflow = 0;
        long long i = PyLong_AsLongLongAndOverflow(o, &overflow);
        if (overflow) {
            PyErr_SetString(PyExc_OverflowError, "Spore: an int does not fit in 64 bits");
            return NULL;
        }
        if (i == -1 && PyErr_Occurred()) return NULL;
        v = sp_value_int(i);
    } else if (PyFloat_Check(o)) v = sp_value_float(PyFloat_AS_DOUBLE(o));
    else if (PyUnicode_Check(o)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(o, &n);
        if (!s) return NULL;
        v = sp_value_str(s, (size_t)n);
    } else if (PyTuple_Check(o) || PyList_Check(o)) {
        if (Py_EnterRecursiveCall(" converting a nested sequence to Spore")) return NULL;
        v = seq_to_value(o, PyList_Check(o), deps);
        Py_LeaveRecursiveCall();
        return v;
    } else if (PySlice_Check(o)) {
        PySliceObject *s = (PySliceObject *)o;
        sp_value *a = py_to_value(s->start, deps), *b = a ? py_to_value(s->stop, deps) : NULL,
                 *c = b ? py_to_value(s->step, deps) : NULL;
        v = c ? sp_value_slice(a, b, c) : NULL;
        sp_value_release(a);
        sp_value_release(b);
        sp_value_release(c);
        if (!v && !PyErr_Occurred()) py_raise();
        return v;
    } else if (o == Py_Ellipsis) v = sp_value_ellipsis();
    else if (PyObject_CheckBuffer(o)) {
        /* numpy arrays and numpy scalars: a copy as a tensor */
        return py_tensor_from_buffer(o, -1);
    } else {
        sp_dtype d;
        if (PyObject_HasAttrString(o, "_sp_dtype") && py_dtype_from(o, &d) == 0) v = sp_value_dtype(d);
        else if (PyObject_HasAttrString(o, "_sp_value")) {
            /* package objects that stand for a Spore value (P.Mul(), a Cell's
             * compiled construct): their _sp_value attribute */
            PyObject *x = PyObject_GetAttrString(o, "_sp_value");
            if (!x) return NULL;
            v = x == o ? NULL : py_to_value(x, deps);
            Py_DECREF(x);
            return v;
        } else if (PyIndex_Check(o) || PyFloat_Check(o)) {
            PyObject *x = PyNumber_Index(o);
            if (!x) return NULL;
            v = py_to_value(x, deps);
            Py_DECREF(x);
            return v;
        } else {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "Spore cannot use a value of type '%.100s' here",
                             Py_TYPE(o)->tp_name);
            return NULL;
        }
    }
    if (!v && !PyErr_Occurred()) py_raise();
    return v;
}

PyObject *py_from_value(sp_value *v, PyObject *owner) {
    switch (v->kind) {
    case SP_V_NONE:
    case SP_V_UNDEF: Py_RETURN_NONE;
    case SP_V_BOOL: return PyBool_FromLong(v->u.b);
    case SP_V_INT: return PyLong_FromLongLong((long long)v->u.i);
    case SP_V_FLOAT: return PyFloat_FromDouble(v->u.f);
    case SP_V_STR: return PyUnicode_FromStringAndSize(v->u.str.s, (Py_ssize_t)v->u.str.len);
    case SP_V_ELLIPSIS: Py_INCREF(Py_Ellipsis); return Py_Ellipsis;
    case SP_V_DTYPE: return py_dtype_object(v->u.dtype);
    case SP_V_TENSOR:
        sp_value_retain(v);
        return py_tensor_wrap(v);
    case SP_V_TUPLE:
    case SP_V_LIST: {
        int n = v->u.seq.n;
        PyObject *r = v->kind == SP_V_TUPLE ? PyTuple_New(n) : PyList_New(n);
        if (!r) return NULL;
        for (int i = 0; i < n; i++) {
            PyObject *x = py_from_value(v->u.seq.items[i], owner);
            if (!x) {
                Py_DECREF(r);
                return NULL;
            }
            if (v->kind == SP_V_TUPLE) PyTuple_SET_ITEM(r, i, x);
            else PyList_SET_ITEM(r, i, x);
        }
        return r;
    }
    default: {
        /* functions of the API table and primitives get the direct call
         * path (apifn.c); graphs and closures run in the VM */
        vectorcallfunc vc;
        PyTypeObject *tp = py_api_type_of(v, &vc);
        py_value *pv = PyObject_New(py_value, tp);
        if (!pv) return NULL;
        sp_value_retain(v);
        pv->v = v;
        Py_XINCREF(owner);
        pv->owner = owner;
        pv->vc = vc;
        return (PyObject *)pv;
    }
    }
}

int py_args_to_values(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int extra,
                      sp_value ***out, int *n, PyObject *deps) {
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0, total = extra + nargs + nkw;
    sp_value **v = PyMem_Calloc((size_t)total + 1, sizeof *v);
    if (!v) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs + nkw; i++) {
        sp_value *x = py_to_value(args[i], deps);
        if (x && i >= nargs) {
            const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i - nargs));
            sp_value *k = name ? sp_value_keyword(name, x) : NULL;
            sp_value_release(x);
            if (!k && !PyErr_Occurred()) py_raise();
            x = k;
        }
        if (!x) {
            py_values_free(v, (int)total);
            return -1;
        }
        v[extra + i] = x;
    }
    *out = v;
    *n = (int)total;
    return 0;
}

void py_values_free(sp_value **v, int n) {
    if (!v) return;
    for (int i = 0; i < n; i++) sp_value_release(v[i]);
    PyMem_Free(v);
}
