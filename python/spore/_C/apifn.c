/*
 * apifn.c -- the fast way from Python into the functional API and the
 * primitives: _C.ApiFunction and _C.ApiMethod, and the call path every
 * Value that ends in one takes.
 *
 * A function of api.def is the Spore value partial(builtin.api, "ops.add");
 * P.Mul() binds that value, P.MatMul(...) a partial of a primitive with its
 * attributes as keywords, ops.add is the value itself.  Calling such a
 * value does not need the VM: its partials only put bound arguments in
 * front of the call's, and what is at the bottom (builtin.api or a
 * primitive) is one C function.  So py_api_vectorcall flattens the
 * partials exactly as the VM's vm_invoke does (innermost bound arguments
 * first), converts the Python arguments into an array on the stack, and
 * calls rt_builtin_call / rt_prim_call directly: the same C function the
 * VM would reach, the same values, the same errors -- minus the VM's
 * context, its argument copies and the bound-method objects of Python.
 *
 * Two subclasses of _C.Value carry the names Python expects of a function
 * (__name__, __qualname__, __module__, __doc__, and _sp_value for
 * GRAPH_MODE's resolver, which is the object itself):
 *   ApiFunction  partial(api, "ops.add") / "spore.*" / "math.*": a plain
 *                callable that, like a builtin function, does not bind
 *                when stored on a class;
 *   ApiMethod    partial(api, "Tensor.sum"): a method descriptor
 *                (Py_TPFLAGS_METHOD_DESCRIPTOR), so x.sum() calls it with
 *                x first and no bound-method object in between, as the
 *                source language's partial(api, "Tensor.sum", x) does.
 * py_from_value (convert.c) makes these for exactly those values and gives
 * every other Value ending in builtin.api or a primitive the fast path;
 * graphs and closures keep the VM's py_value_vectorcall (graph.c).
 *
 * Invariant: a value gets py_api_vectorcall only if api_bottom() accepted
 * it, so the call needs no checks beyond the argument conversions.
 */
#include "py.h"

#include <string.h>

#define API_PARTIAL_DEPTH 8 /* deeper chains take the VM */
#define API_STACK_ARGS 16   /* arguments converted without an allocation */

/* What a chain of partials over v ends in: 1 builtin.api (with the
 * qualified name as its first bound argument), 2 a primitive, 0 anything
 * else (or a chain deeper than API_PARTIAL_DEPTH). */
static int api_bottom(const sp_value *v) {
    const sp_value *inner = NULL;
    for (int d = 0; v->kind == SP_V_PARTIAL; d++) {
        if (d == API_PARTIAL_DEPTH) return 0;
        inner = v;
        v = v->u.partial.fn;
    }
    if (v->kind == SP_V_PRIM) return 2;
    if (v->kind == SP_V_BUILTIN && v->u.builtin == RT_B_API && inner && inner->u.partial.n >= 1 &&
        inner->u.partial.args[0]->kind == SP_V_STR)
        return 1;
    return 0;
}

/* The qualified name ("ops.add") when v is exactly partial(api, name). */
static const char *api_qname(const sp_value *v) {
    if (v->kind != SP_V_PARTIAL || v->u.partial.n != 1 || v->u.partial.fn->kind != SP_V_BUILTIN ||
        v->u.partial.fn->u.builtin != RT_B_API || v->u.partial.args[0]->kind != SP_V_STR)
        return NULL;
    return v->u.partial.args[0]->u.str.s;
}

PyObject *py_api_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    const sp_value *chain[API_PARTIAL_DEPTH], *fn = ((py_value *)self)->v;
    int depth = 0, n_bound = 0;
    while (fn->kind == SP_V_PARTIAL) {
        chain[depth++] = fn;
        n_bound += fn->u.partial.n;
        fn = fn->u.partial.fn;
    }
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    Py_ssize_t total = n_bound + nargs + nkw;
    sp_value *small[API_STACK_ARGS], **v = small;
    if (total > API_STACK_ARGS && !(v = PyMem_Malloc(sizeof *v * (size_t)total))) return PyErr_NoMemory();
    /* bound arguments (borrowed): innermost partial first, as vm_invoke */
    int k = 0;
    for (int d = depth - 1; d >= 0; d--)
        for (int i = 0; i < chain[d]->u.partial.n; i++) v[k++] = chain[d]->u.partial.args[i];
    PyObject *r = NULL;
    Py_ssize_t i;
    for (i = 0; i < nargs + nkw; i++) {
        sp_value *x = py_to_value(args[i], NULL);
        if (x && i >= nargs) {
            const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i - nargs));
            sp_value *kw = name ? sp_value_keyword(name, x) : NULL;
            sp_value_release(x);
            if (!kw && !PyErr_Occurred()) py_raise();
            x = kw;
        }
        if (!x) break;
        v[k++] = x;
    }
    if (i == nargs + nkw) {
        sp_value *out = fn->kind == SP_V_PRIM ? rt_prim_call(fn->u.prim, k, v)
                                              : rt_builtin_call(fn->u.builtin, k, v);
        if (!out) {
            r = py_raise();
        } else if (out->kind == SP_V_TENSOR) {
            r = py_tensor_wrap(out); /* takes the reference */
        } else {
            r = py_from_value(out, ((py_value *)self)->owner);
            sp_value_release(out);
        }
    }
    for (int j = n_bound; j < k; j++) sp_value_release(v[j]);
    if (v != small) PyMem_Free(v);
    return r;
}

/* ---- names ------------------------------------------------------------------- */

static const char *qname_of(PyObject *self) {
    const char *q = api_qname(((py_value *)self)->v);
    return q ? q : "?";
}

static PyObject *fn_name(PyObject *self, void *c) {
    (void)c;
    const char *q = qname_of(self), *dot = strchr(q, '.');
    return PyUnicode_FromString(dot ? dot + 1 : q);
}

static PyObject *fn_qualname(PyObject *self, void *c) {
    /* a method is Tensor.sum, a function its bare name, as Python has them */
    return Py_TYPE(self) == &py_api_method_type ? PyUnicode_FromString(qname_of(self)) : fn_name(self, c);
}

static PyObject *fn_module(PyObject *self, void *c) {
    (void)c;
    const char *q = qname_of(self);
    if (!strncmp(q, "ops.", 4)) return PyUnicode_FromString("spore.ops");
    if (!strncmp(q, "math.", 5)) return PyUnicode_FromString("math");
    return PyUnicode_FromString("spore");
}

static PyObject *fn_doc(PyObject *self, void *c) {
    (void)c;
    const char *q = qname_of(self);
    return PyUnicode_FromFormat("%s: Spore's %s (src/runtime/api.def).", q, q);
}

static PyObject *fn_sp_value(PyObject *self, void *c) {
    (void)c;
    Py_INCREF(self);
    return self;
}

static PyObject *fn_repr(PyObject *self) {
    return PyUnicode_FromFormat(Py_TYPE(self) == &py_api_method_type ? "<method '%s' of spore.Tensor>"
                                                                    : "<function %s>",
                                qname_of(self));
}

/* Methods bind like Python functions: through the class, the descriptor
 * itself; through an instance, a bound method (LOAD_METHOD skips even
 * that, the type being a METHOD_DESCRIPTOR). */
static PyObject *method_get(PyObject *self, PyObject *obj, PyObject *type) {
    (void)type;
    if (!obj || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyGetSetDef fn_getset[] = {
    {"__name__", fn_name, NULL, "the name", NULL},
    {"__qualname__", fn_qualname, NULL, "the qualified name", NULL},
    {"__module__", fn_module, NULL, "the module", NULL},
    {"__doc__", fn_doc, NULL, "what it is", NULL},
    {"_sp_value", fn_sp_value, NULL, "the Spore value GRAPH_MODE compiles (the object itself)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject py_api_function_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spore._C.ApiFunction",
    .tp_basicsize = sizeof(py_value),
    .tp_base = &py_value_type,
    .tp_repr = fn_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(py_value, vc),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "a function of Spore's functional API (src/runtime/api.def)",
    .tp_getset = fn_getset,
};

PyTypeObject py_api_method_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spore._C.ApiMethod",
    .tp_basicsize = sizeof(py_value),
    .tp_base = &py_value_type,
    .tp_repr = fn_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(py_value, vc),
    .tp_descr_get = method_get,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "a Tensor method of Spore's functional API (src/runtime/api.def)",
    .tp_getset = fn_getset,
};

PyTypeObject *py_api_type_of(const sp_value *v, vectorcallfunc *vc) {
    int bottom = api_bottom(v);
    *vc = bottom ? py_api_vectorcall : py_value_vectorcall;
    const char *q = bottom == 1 ? api_qname(v) : NULL;
    if (!q) return &py_value_type;
    PyTypeObject *tp = !strncmp(q, "Tensor.", 7) ? &py_api_method_type : &py_api_function_type;
    if (!(tp->tp_flags & Py_TPFLAGS_READY) && PyType_Ready(tp) < 0) {
        PyErr_Clear();
        return &py_value_type;
    }
    return tp;
}
