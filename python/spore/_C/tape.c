/*
 * tape.c -- PYNATIVE_MODE gradients from Python: _C.tape_grad runs a
 * Python callable eagerly under the tape of src/runtime/tape.h and
 * returns what spore.grad / value_and_grad / GradOperation return.
 *
 * The steps, for fn, grad_position, weights, has_aux, with_value,
 * sens_param and the call's positional arguments:
 *   1. the arguments asked for are checked as src/ad/grad.c checks them
 *      (an integer input asked for by position is the same TypeError);
 *   2. a tape begins; every Tensor asked for (an argument, the Tensors of
 *      a tuple argument, each weight) is a leaf; fn(*args) runs -- any
 *      Python at all: lambdas, partials, callable objects, try/except,
 *      dicts, loops on .item() -- and the tape ends;
 *   3. the output (its first item with has_aux) is seeded with ones (a
 *      scalar float Tensor) or with the sens argument, and sp_tape_grad
 *      gives every leaf's gradient (zeros where none arrived, as
 *      MindSpore's unused inputs get);
 *   4. the gradients take MindSpore's structure (grad.c's essay): one
 *      input -> its gradient, a tuple / None -> a tuple, weights -> a
 *      tuple, (inputs, weights) with both, (grads, aux) with has_aux,
 *      (value, grads) for value_and_grad.
 * The return value is (True, result), or (False, reason) when the tape
 * cannot give a right answer and the caller must compile the function's
 * source instead (spore.ops.composite does): work the tape could not see
 * ran inside fn (a nested gradient, a compiled function), a Python float
 * is differentiated (the tape follows Tensors, not Python arithmetic), or
 * fn returned a Python number.  Errors are Python exceptions; an
 * exception raised by fn propagates unchanged.
 */
#include "py.h"

#include <string.h>

static int is_float_tensor(PyObject *o) { return py_is_tensor(o) && sp_dtype_is_float(((py_tensor *)o)->v->u.tensor->dtype); }

static sp_tensor *T(PyObject *o) { return ((py_tensor *)o)->v->u.tensor; }

/* grad.c's check of an input asked for by position: 0, 1 (fall back:
 * a Python float), -1 + TypeError. */
static int check_input(PyObject *a, Py_ssize_t i) {
    if (PyBool_Check(a) || PyLong_Check(a)) {
        PyErr_Format(PyExc_TypeError, "grad: input %zd is an integer (%s); gradients are taken with respect to "
                     "floating-point inputs", i, PyBool_Check(a) ? "bool" : "int");
        return -1;
    }
    if (py_is_tensor(a) && !is_float_tensor(a)) {
        PyErr_Format(PyExc_TypeError, "grad: input %zd is a Tensor of %s; gradients are taken with respect to "
                     "floating-point inputs", i, sp_dtype_name(T(a)->dtype));
        return -1;
    }
    return PyFloat_Check(a) ? 1 : 0;
}

/* Marks the positions asked for in want[0..n-1]; 0, 1 (fall back), -1. */
static int positions(PyObject *pos, PyObject *args, Py_ssize_t n, unsigned char *want) {
    if (pos == Py_None) {
        for (Py_ssize_t i = 0; i < n; i++) {
            want[i] = 1;
            if (PyFloat_Check(PyTuple_GET_ITEM(args, i))) return 1;
        }
        return 0;
    }
    if (pos == Py_False) return 0;
    PyObject *one[1] = {pos};
    PyObject *const *items = one;
    Py_ssize_t k = 1;
    if (PyTuple_Check(pos)) {
        items = &PyTuple_GET_ITEM(pos, 0);
        k = PyTuple_GET_SIZE(pos);
    } else if (PyBool_Check(pos) || !PyLong_Check(pos)) {
        PyErr_Format(PyExc_TypeError, "grad: grad_position must be an int, a tuple of ints or None, not %s",
                     Py_TYPE(pos)->tp_name);
        return -1;
    }
    int fall = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        if (PyBool_Check(items[j]) || !PyLong_Check(items[j])) {
            PyErr_Format(PyExc_TypeError, "grad: grad_position must be an int or a tuple of ints, not a tuple "
                         "holding %s", Py_TYPE(items[j])->tp_name);
            return -1;
        }
        long p = PyLong_AsLong(items[j]);
        if (p < 0 || p >= n) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "grad: grad_position %ld is out of range for a call with %zd input%s",
                             p, n, n == 1 ? "" : "s");
            return -1;
        }
        int c = check_input(PyTuple_GET_ITEM(args, p), p);
        if (c < 0) return -1;
        fall |= c;
        want[p] = 1;
    }
    return fall;
}

/* The leaves of argument a: its id in ids (a Tensor), or one per item of
 * a tuple/list (-1 for non-Tensors). */
static int add_leaves(sp_tape *t, PyObject *a, int *ids, int *n) {
    if (py_is_tensor(a)) return sp_tape_add_leaf(t, T(a), &ids[(*n)++]) ? -1 : 0;
    if (PyTuple_Check(a) || PyList_Check(a)) {
        Py_ssize_t k = PySequence_Fast_GET_SIZE(a);
        for (Py_ssize_t j = 0; j < k; j++) {
            PyObject *x = PySequence_Fast_GET_ITEM(a, j);
            if (py_is_tensor(x) && sp_tape_add_leaf(t, T(x), &ids[(*n)++])) return -1;
        }
    }
    return 0;
}

static int count_leaves(PyObject *a) {
    if (py_is_tensor(a)) return 1;
    if (!PyTuple_Check(a) && !PyList_Check(a)) return 0;
    int c = 0;
    for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(a); j++) c += py_is_tensor(PySequence_Fast_GET_ITEM(a, j));
    return c;
}

/* The gradient object of argument a from the gradients g[*k...]. */
static PyObject *grad_of(PyObject *a, const sp_value *g, int *k) {
    if (py_is_tensor(a)) {
        sp_value *v = g->u.seq.items[(*k)++];
        sp_value_retain(v);
        return py_tensor_wrap(v);
    }
    if (PyTuple_Check(a) || PyList_Check(a)) {
        Py_ssize_t n = PySequence_Fast_GET_SIZE(a);
        PyObject *r = PyTuple_New(n);
        for (Py_ssize_t j = 0; r && j < n; j++) {
            PyObject *x = grad_of(PySequence_Fast_GET_ITEM(a, j), g, k);
            if (!x) {
                Py_CLEAR(r);
                break;
            }
            PyTuple_SET_ITEM(r, j, x);
        }
        return r;
    }
    return PyFloat_FromDouble(0.0);
}

/* Ones shaped like the scalar output o, or NULL + the error sens_of gives. */
static sp_tensor *ones_for(const sp_tensor *o) {
    if (sp_tensor_numel(o) != 1) {
        char shape[128];
        sp_shape_str(o->ndim, o->shape, shape, sizeof shape);
        PyErr_Format(PyExc_TypeError, "grad: the function returns a Tensor of shape %s, not a scalar: reduce it "
                     "(e.g. .sum()) or pass the output's gradient (GradOperation(sens_param=True))", shape);
        return NULL;
    }
    if (!sp_dtype_is_float(o->dtype)) {
        PyErr_Format(PyExc_TypeError, "grad: the function returns an integer Tensor (%s); gradients need a "
                     "floating-point output", sp_dtype_name(o->dtype));
        return NULL;
    }
    sp_tensor *s = sp_tensor_zeros(o->dtype, o->ndim, o->shape, o->buf->device);
    if (s && sp_tensor_fill(s, 1.0) != SP_OK) {
        sp_tensor_release(s);
        s = NULL;
    }
    if (!s) py_raise();
    return s;
}

/* One Tensor passed at two positions asked for: each position is its own
 * input (as in the compiled path), so the second one becomes a new Tensor
 * viewing the same memory (args is private to the call).  The new
 * argument (borrowed), NULL + exception. */
static PyObject *alias_arg(PyObject *args, Py_ssize_t i) {
    const sp_tensor *x = T(PyTuple_GET_ITEM(args, i));
    sp_tensor *v = sp_tensor_view_of(x->buf, x->dtype, x->ndim, x->shape, x->strides, x->offset);
    sp_value *vv = v ? sp_value_tensor(v) : NULL;
    sp_tensor_release(v);
    PyObject *o = vv ? py_tensor_wrap(vv) : py_raise();
    if (!o) return NULL;
    PyObject *old = PyTuple_GET_ITEM(args, i);
    PyTuple_SET_ITEM(args, i, o);
    Py_DECREF(old);
    return o;
}

static PyObject *fallback(const char *why) { return Py_BuildValue("(Os)", Py_False, why); }

/* _C.tape_grad(fn, grad_position, weights, has_aux, with_value, sens_param, args) */
PyObject *py_tape_grad(PyObject *mod, PyObject *const *a, Py_ssize_t na) {
    (void)mod;
    if (na != 7 || !PyTuple_Check(a[6])) {
        PyErr_SetString(PyExc_TypeError, "tape_grad(fn, grad_position, weights, has_aux, with_value, sens_param, args)");
        return NULL;
    }
    PyObject *fn = a[0], *pos = a[1], *weights = a[2], *all = a[6];
    int has_aux = PyObject_IsTrue(a[3]) > 0, with_value = PyObject_IsTrue(a[4]) > 0, sens_param = PyObject_IsTrue(a[5]) > 0;
    Py_ssize_t n = PyTuple_GET_SIZE(all);
    if (sens_param && n == 0) {
        PyErr_SetString(PyExc_TypeError, "grad: sens_param=True needs the output's gradient as the last argument");
        return NULL;
    }
    if (sens_param) n--;
    PyObject *sens_obj = sens_param ? PyTuple_GET_ITEM(all, n) : NULL;
    PyObject *wseq = NULL, *args = NULL, *out = NULL, *result = NULL, *gin = NULL, *gw = NULL, *g = NULL;
    unsigned char *want = PyMem_Calloc((size_t)n + 1, 1);
    int *ids = NULL, n_ids = 0, n_out = 0;
    sp_tape *t = NULL;
    sp_value *grads = NULL;
    sp_tensor **outs = NULL, **sens = NULL;
    if (!want) return PyErr_NoMemory();
    if (!(args = PyTuple_New(n))) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(PyTuple_GET_ITEM(all, i));
        PyTuple_SET_ITEM(args, i, PyTuple_GET_ITEM(all, i));
    }
    int fall = positions(pos, args, n, want);
    if (fall < 0) goto done;
    if (fall) {
        result = fallback("a Python float is differentiated (the tape follows Tensors)");
        goto done;
    }
    if (weights != Py_None) {
        wseq = py_is_tensor(weights) ? PyTuple_Pack(1, weights) : PySequence_Tuple(weights);
        if (!wseq) goto done;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(wseq); i++)
            if (!py_is_tensor(PyTuple_GET_ITEM(wseq, i))) {
                PyErr_Format(PyExc_TypeError, "grad: weights must be Tensors, not %s (weight %zd)",
                             Py_TYPE(PyTuple_GET_ITEM(wseq, i))->tp_name, i);
                goto done;
            }
    }
    int cap = wseq ? (int)PyTuple_GET_SIZE(wseq) : 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (want[i]) cap += count_leaves(PyTuple_GET_ITEM(args, i));
    if (!(ids = PyMem_Malloc(sizeof *ids * ((size_t)cap + 1)))) {
        PyErr_NoMemory();
        goto done;
    }
    if (!(t = sp_tape_begin())) {
        py_raise();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PyTuple_GET_ITEM(args, i);
        if (want[i] && py_is_tensor(x) && sp_tape_node_of(t, T(x)) >= 0 && !(x = alias_arg(args, i))) goto done;
        if (want[i] && add_leaves(t, x, ids, &n_ids)) {
            py_raise();
            goto done;
        }
    }
    int n_arg_ids = n_ids;
    for (Py_ssize_t i = 0; wseq && i < PyTuple_GET_SIZE(wseq); i++)
        if (add_leaves(t, PyTuple_GET_ITEM(wseq, i), ids, &n_ids)) {
            py_raise();
            goto done;
        }
    out = PyObject_Call(fn, args, NULL);
    sp_tape_end(t);
    if (!out) goto done;
    if (sp_tape_blind(t)) {
        result = fallback(sp_tape_blind(t));
        goto done;
    }
    /* the differentiated output and its sensitivities */
    PyObject *d = out;
    if (has_aux) {
        if (!PyTuple_Check(out) || PyTuple_GET_SIZE(out) < 1) {
            PyErr_Format(PyExc_TypeError, "grad: with has_aux=True the function must return a tuple whose first item "
                         "is the value to differentiate, not %s", Py_TYPE(out)->tp_name);
            goto done;
        }
        d = PyTuple_GET_ITEM(out, 0);
    }
    if (PyFloat_Check(d) || PyLong_Check(d)) {
        result = fallback("the function returned a Python number");
        goto done;
    }
    int seq = sens_param && (PyTuple_Check(d) || PyList_Check(d));
    n_out = seq ? (int)PySequence_Fast_GET_SIZE(d) : 1;
    outs = PyMem_Calloc((size_t)n_out + 1, sizeof *outs);
    sens = PyMem_Calloc((size_t)n_out + 1, sizeof *sens);
    if (!outs || !sens) {
        PyErr_NoMemory();
        goto done;
    }
    if (seq && (!(PyTuple_Check(sens_obj) || PyList_Check(sens_obj)) || PySequence_Fast_GET_SIZE(sens_obj) != n_out)) {
        PyErr_Format(PyExc_TypeError, "grad: the function returns %d values; sens must be a tuple of as many Tensors",
                     n_out);
        goto done;
    }
    for (int k = 0; k < n_out; k++) {
        PyObject *o = seq ? PySequence_Fast_GET_ITEM(d, k) : d;
        if (!py_is_tensor(o)) {
            PyErr_Format(PyExc_TypeError, "grad: the function returns a %s; it must return a scalar Tensor or float "
                         "(with has_aux=True, a tuple whose first item is one)", Py_TYPE(o)->tp_name);
            goto done;
        }
        outs[k] = T(o);
        if (sens_param) {
            PyObject *so = seq ? PySequence_Fast_GET_ITEM(sens_obj, k) : sens_obj;
            sp_value *sv = py_to_value(so, NULL);
            if (!sv) goto done;
            if (sv->kind == SP_V_TENSOR) {
                sens[k] = sv->u.tensor;
                sp_tensor_retain(sens[k]);
            } else if (!(sens[k] = rt_as_tensor(sv, outs[k]->dtype, "grad sens"))) {
                sp_value_release(sv);
                py_raise();
                goto done;
            }
            sp_value_release(sv);
        } else if (!(sens[k] = ones_for(outs[k]))) {
            goto done;
        }
    }
    if (!(grads = sp_tape_grad(t, n_out, outs, sens, n_ids, ids))) {
        py_raise();
        goto done;
    }
    /* MindSpore's structure */
    int k = 0;
    if (pos == Py_False) {
        k = n_arg_ids;
    } else if (pos == Py_None) {
        if (!(gin = PyTuple_New(n))) goto done;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *x = grad_of(PyTuple_GET_ITEM(args, i), grads, &k);
            if (!x) goto done;
            PyTuple_SET_ITEM(gin, i, x);
        }
    } else {
        /* positions in the order asked for: leaves were added by position, so
         * find each position's first leaf */
        PyObject *one[1] = {pos};
        PyObject *const *items = PyTuple_Check(pos) ? &PyTuple_GET_ITEM(pos, 0) : one;
        Py_ssize_t np = PyTuple_Check(pos) ? PyTuple_GET_SIZE(pos) : 1;
        if (PyTuple_Check(pos) && !(gin = PyTuple_New(np))) goto done;
        for (Py_ssize_t j = 0; j < np; j++) {
            long p = PyLong_AsLong(items[j]);
            int at = 0;
            for (long i = 0; i < p; i++)
                if (want[i]) at += count_leaves(PyTuple_GET_ITEM(args, i));
            PyObject *x = grad_of(PyTuple_GET_ITEM(args, p), grads, &at);
            if (!x) goto done;
            if (gin) PyTuple_SET_ITEM(gin, j, x);
            else gin = x;
        }
        k = n_arg_ids;
    }
    if (wseq) {
        Py_ssize_t nw = PyTuple_GET_SIZE(wseq);
        if (!(gw = PyTuple_New(nw))) goto done;
        for (Py_ssize_t i = 0; i < nw; i++) {
            PyObject *x = grad_of(PyTuple_GET_ITEM(wseq, i), grads, &k);
            if (!x) goto done;
            PyTuple_SET_ITEM(gw, i, x);
        }
    }
    if (pos == Py_False) g = gw ? (Py_INCREF(gw), gw) : (Py_INCREF(Py_None), Py_None);
    else if (gw) g = PyTuple_Pack(2, gin, gw);
    else g = (Py_INCREF(gin), gin);
    if (!g) goto done;
    PyObject *r;
    if (with_value) {
        r = PyTuple_Pack(2, out, g);
    } else if (has_aux) {
        PyObject *aux = PyTuple_GetSlice(out, 1, PyTuple_GET_SIZE(out));
        r = aux ? PyTuple_Pack(2, g, aux) : NULL;
        Py_XDECREF(aux);
    } else {
        r = (Py_INCREF(g), g);
    }
    if (r) {
        result = PyTuple_Pack(2, Py_True, r);
        Py_DECREF(r);
    }
done:
    sp_value_release(grads);
    for (int i = 0; sens && i < n_out; i++) sp_tensor_release(sens[i]);
    PyMem_Free(sens);
    PyMem_Free(outs);
    sp_tape_free(t);
    PyMem_Free(ids);
    PyMem_Free(want);
    Py_XDECREF(g);
    Py_XDECREF(gin);
    Py_XDECREF(gw);
    Py_XDECREF(out);
    Py_XDECREF(args);
    Py_XDECREF(wseq);
    return result;
}

PyObject *py_tape_stats(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    int64_t c = 0, h = 0;
    sp_tape_stats(&c, &h);
    return Py_BuildValue("(LL)", (long long)c, (long long)h);
}

PyObject *py_tape_cache_clear(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    sp_tape_cache_clear();
    Py_RETURN_NONE;
}
