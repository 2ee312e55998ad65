/*
 * module.c -- the module spore._C: errors, dtypes, and the calls into the
 * functional API that the package's .py files forward to.
 *
 * spore.ops, the Tensor methods and spore.* functions are generated in
 * Python from api_names(), which is api.def itself read through the same
 * X-macro the runtime uses, so the package can never list a function the
 * runtime lacks or miss one it has.  Every such function ends in api():
 * the arguments become Spore values and rt_api_call binds them by
 * MindSpore's parameter names, exactly as a call in the source language.
 *
 * Errors map to Python's exceptions by status: a bad argument or shape is a
 * ValueError, a dtype or type error a TypeError, syntax a SyntaxError,
 * missing features NotImplementedError, the rest RuntimeError.  The message
 * is Spore's (with file:line:col and the caret line for program errors).
 */
#include "py.h"

#include <string.h>

PyTypeObject *py_tensor_type = &py_tensor_base_type;
static PyObject *dtype_objects[SP_DTYPE_COUNT];

PyObject *py_raise(void) {
    if (PyErr_Occurred()) return NULL;
    PyObject *exc;
    switch (sp_last_status()) {
    case SP_ERR_ARG:
    case SP_ERR_SHAPE: exc = PyExc_ValueError; break;
    case SP_ERR_DTYPE:
    case SP_ERR_TYPE: exc = PyExc_TypeError; break;
    case SP_ERR_NOMEM: exc = PyExc_MemoryError; break;
    case SP_ERR_IO: exc = PyExc_OSError; break;
    case SP_ERR_SYNTAX: exc = PyExc_SyntaxError; break;
    case SP_ERR_UNSUPPORTED: exc = PyExc_NotImplementedError; break;
    default: exc = PyExc_RuntimeError; break;
    }
    const char *msg = sp_last_error();
    PyErr_SetString(exc, msg && msg[0] ? msg : "Spore: unknown error");
    return NULL;
}

PyObject *py_dtype_object(sp_dtype d) {
    if ((int)d >= 0 && d < SP_DTYPE_COUNT && dtype_objects[d]) {
        Py_INCREF(dtype_objects[d]);
        return dtype_objects[d];
    }
    return PyUnicode_FromString(sp_dtype_name(d));
}

int py_dtype_from(PyObject *o, sp_dtype *out) {
    for (int d = 0; d < SP_DTYPE_COUNT; d++)
        if (dtype_objects[d] == o) {
            *out = (sp_dtype)d;
            return 0;
        }
    PyObject *name = NULL;
    if (PyUnicode_Check(o)) {
        name = o;
        Py_INCREF(name);
    } else if (PyType_Check(o) && strcmp(((PyTypeObject *)o)->tp_name, "bool") == 0) {
        *out = SP_BOOL;
        return 0;
    } else if (PyType_Check(o) && strcmp(((PyTypeObject *)o)->tp_name, "float") == 0) {
        *out = SP_F32;
        return 0;
    } else if (PyType_Check(o) && strcmp(((PyTypeObject *)o)->tp_name, "int") == 0) {
        *out = SP_I64;
        return 0;
    } else if (PyObject_HasAttrString(o, "_sp_dtype")) {
        PyObject *i = PyObject_GetAttrString(o, "_sp_dtype");
        long k = i ? PyLong_AsLong(i) : -1;
        Py_XDECREF(i);
        if (k >= 0 && k < SP_DTYPE_COUNT) {
            *out = (sp_dtype)k;
            return 0;
        }
        PyErr_Clear();
    } else {
        /* numpy: np.float32 (a type) and np.dtype('float32') both have a name
         * through np.dtype(o).name */
        PyObject *np = PyImport_ImportModule("numpy");
        PyObject *dt = np ? PyObject_CallMethod(np, "dtype", "O", o) : NULL;
        name = dt ? PyObject_GetAttrString(dt, "name") : NULL;
        Py_XDECREF(dt);
        Py_XDECREF(np);
        if (!name) PyErr_Clear();
    }
    if (name) {
        const char *s = PyUnicode_AsUTF8(name);
        sp_status st = s ? sp_dtype_parse(s, out) : SP_ERR_DTYPE;
        Py_DECREF(name);
        if (st == SP_OK) return 0;
        if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "not a Spore dtype: %R", o);
        sp_clear_error();
        return -1;
    }
    PyErr_Format(PyExc_TypeError, "not a Spore dtype: %R", o);
    return -1;
}

/* ---- functions of the module ---------------------------------------------- */

/* _register(tensor_class, dtypes): the package's spore.Tensor and the
 * dtype objects indexed by Spore's dtype ids. */
static PyObject *mod_register(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *cls, *dtypes;
    if (!PyArg_ParseTuple(args, "OO", &cls, &dtypes)) return NULL;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &py_tensor_base_type)) {
        PyErr_SetString(PyExc_TypeError, "_register: the class must derive from _C.TensorBase");
        return NULL;
    }
    if (!PyTuple_Check(dtypes) || PyTuple_GET_SIZE(dtypes) != SP_DTYPE_COUNT) {
        PyErr_Format(PyExc_TypeError, "_register: dtypes must be a tuple of %d objects", SP_DTYPE_COUNT);
        return NULL;
    }
    Py_INCREF(cls);
    py_tensor_type = (PyTypeObject *)cls;
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        Py_XDECREF(dtype_objects[d]);
        dtype_objects[d] = PyTuple_GET_ITEM(dtypes, d);
        Py_INCREF(dtype_objects[d]);
    }
    Py_RETURN_NONE;
}

/* api(qualified_name, *args, **kwargs): one function of api.def. */
static PyObject *mod_api(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    (void)self;
    if (nargs < 1 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "api: the first argument must be the function's name");
        return NULL;
    }
    sp_value **v;
    int n;
    if (py_args_to_values(args + 1, nargs - 1, kwnames, 1, &v, &n, NULL) < 0) return NULL;
    Py_ssize_t len;
    const char *q = PyUnicode_AsUTF8AndSize(args[0], &len);
    PyObject *r = NULL;
    if (q && (v[0] = sp_value_str(q, (size_t)len))) {
        sp_value *out = rt_api_call(n, v);
        r = out ? py_from_value(out, NULL) : py_raise();
        sp_value_release(out);
    } else if (!PyErr_Occurred()) {
        py_raise();
    }
    py_values_free(v, n);
    return r;
}

/* api_names(): the qualified names of api.def's rows, in table order. */
static PyObject *mod_api_names(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    static const char *const names[] = {
#define SP_API(MOD, name, PRIM, params, impl) #MOD "." #name,
#include "runtime/api.def"
#undef SP_API
    };
    size_t n = sizeof names / sizeof names[0];
    PyObject *l = PyList_New((Py_ssize_t)n);
    if (!l) return NULL;
    for (size_t i = 0; i < n; i++) {
        /* "OPS.relu" -> "ops.relu", "SPORE.grad" -> "spore.grad" ... */
        char q[96];
        snprintf(q, sizeof q, "%s", names[i]);
        char *dot = strchr(q, '.');
        if (strncmp(q, "TENSOR", 6) == 0) q[0] = 'T';
        for (char *p = q + (q[0] == 'T'); p < dot; p++) *p = (char)(*p - 'A' + 'a');
        PyObject *s = PyUnicode_FromString(q);
        if (!s) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)i, s);
    }
    return l;
}

/* op_names(): the primitives of ops.def by id. */
static PyObject *mod_op_names(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    int n = sp_op_count();
    PyObject *l = PyList_New(n);
    for (int i = 0; l && i < n; i++) PyList_SET_ITEM(l, i, PyUnicode_FromString(sp_op_name(i)));
    return l;
}

/* prim(name): the primitive as a callable Value (partial-free: attributes
 * come as keyword arguments at the call). */
static PyObject *mod_prim(PyObject *self, PyObject *name) {
    (void)self;
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return NULL;
    int op = sp_op_find(s);
    if (op < 0) return py_raise();
    sp_value *v = sp_value_prim(op);
    PyObject *r = v ? py_from_value(v, NULL) : py_raise();
    sp_value_release(v);
    return r;
}

/* value(kind, name): Spore values the resolver hands to the front end:
 * ("module", "ops") -> the module value; ("api", "ops.relu") -> the API
 * function; ("builtin", "print") -> no: only modules and API functions. */
static PyObject *mod_value(PyObject *self, PyObject *args) {
    (void)self;
    const char *kind, *name;
    if (!PyArg_ParseTuple(args, "ss", &kind, &name)) return NULL;
    sp_value *v = NULL;
    if (strcmp(kind, "module") == 0) {
        static const struct { const char *n; int id; } mods[] = {
            {"spore", SP_MOD_SPORE}, {"ops", SP_MOD_OPS}, {"nn", SP_MOD_NN}, {"math", SP_MOD_MATH},
            {"prim", SP_MOD_PRIM}};
        for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++)
            if (strcmp(mods[i].n, name) == 0) v = sp_value_module(mods[i].id);
        if (!v && !PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError, "no Spore module '%s'", name);
            return NULL;
        }
    } else if (strcmp(kind, "api") == 0) {
        sp_value *fn = sp_value_builtin(RT_B_API), *s = sp_value_str(name, strlen(name));
        if (fn && s) v = sp_value_partial(fn, 1, &s);
        sp_value_release(fn);
        sp_value_release(s);
    } else if (strcmp(kind, "none") == 0) {
        /* None held as a Value: how a resolver answers "this name is None"
         * (a plain None answer means "unknown") */
        py_value *pv = PyObject_New(py_value, &py_value_type);
        if (!pv) return NULL;
        pv->v = sp_value_none();
        pv->owner = NULL;
        pv->vc = py_value_vectorcall;
        return (PyObject *)pv;
    } else {
        PyErr_Format(PyExc_ValueError, "value: unknown kind '%s'", kind);
        return NULL;
    }
    if (!v) return py_raise();
    PyObject *r = py_from_value(v, NULL);
    sp_value_release(v);
    return r;
}

/* partial(fn, *args, **kwargs): a Spore partial application. */
static PyObject *mod_partial(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    (void)self;
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "partial: needs a function");
        return NULL;
    }
    PyObject *deps = PyList_New(0);
    if (!deps) return NULL;
    sp_value **v;
    int n;
    PyObject *r = NULL;
    if (py_args_to_values(args, nargs, kwnames, 0, &v, &n, deps) == 0) {
        sp_value *p = sp_value_partial(v[0], n - 1, v + 1);
        PyObject *owner = PyList_GET_SIZE(deps) ? PyList_GET_ITEM(deps, 0) : NULL;
        r = p ? py_from_value(p, owner) : py_raise();
        sp_value_release(p);
        py_values_free(v, n);
    }
    Py_DECREF(deps);
    return r;
}

static PyObject *mod_cuda_available(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    int ok = sp_cuda_available();
    return Py_BuildValue("(Os)", ok ? Py_True : Py_False, ok ? "" : sp_last_error());
}

/* set_default_device("cpu" | "cuda[:N]" | "GPU"): where tensors made
 * without a device go (sp_set_default_device); ValueError for a bad name,
 * RuntimeError with the library's reason for a GPU that is not there. */
static PyObject *mod_set_default_device(PyObject *self, PyObject *name) {
    (void)self;
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return NULL;
    sp_device d;
    if (sp_device_parse(s, &d) != SP_OK) {
        PyErr_SetString(PyExc_ValueError, sp_last_error());
        return NULL;
    }
    if (sp_set_default_device(d) != SP_OK) {
        PyErr_SetString(sp_last_status() == SP_ERR_DEVICE ? PyExc_RuntimeError : PyExc_ValueError, sp_last_error());
        return NULL;
    }
    Py_RETURN_NONE;
}

/* default_device() -> "cpu" or "cuda:0". */
static PyObject *mod_default_device(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    char buf[32];
    return PyUnicode_FromString(sp_device_str(sp_default_device(), buf, sizeof buf));
}

static PyObject *mod_live_bytes(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyLong_FromLongLong((long long)sp_cpu_live_bytes());
}

static PyObject *mod_set_num_threads(PyObject *self, PyObject *arg) {
    (void)self;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (sp_set_num_threads((int)n) != SP_OK) return py_raise();
    Py_RETURN_NONE;
}

static PyObject *mod_version(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return PyUnicode_FromString(sp_version());
}

static PyMethodDef mod_methods[] = {
    {"_register", mod_register, METH_VARARGS, "_register(tensor_class, dtypes)"},
    {"api", (PyCFunction)(void (*)(void))mod_api, METH_FASTCALL | METH_KEYWORDS,
     "api(name, *args, **kwargs): calls a function of Spore's functional API (api.def)"},
    {"api_names", mod_api_names, METH_NOARGS, "the qualified names of the API functions"},
    {"op_names", mod_op_names, METH_NOARGS, "the primitives of ops.def"},
    {"prim", mod_prim, METH_O, "prim(name): a primitive as a callable value"},
    {"value", mod_value, METH_VARARGS, "value(kind, name): a Spore module or API function value"},
    {"partial", (PyCFunction)(void (*)(void))mod_partial, METH_FASTCALL | METH_KEYWORDS,
     "partial(fn, *args, **kwargs): a Spore partial application"},
    {"compile", (PyCFunction)(void (*)(void))py_compile, METH_VARARGS | METH_KEYWORDS,
     "compile(file, source, line_offset, resolve, resolve_attr): a Module"},
    {"lift", py_lift, METH_VARARGS, "lift(fn, nargs, weight): (Value, n): fn with weights as inputs"},
    {"deferred", (PyCFunction)(void (*)(void))py_deferred, METH_FASTCALL,
     "deferred(f, *bound): a function computing f(*bound)(*args) when called"},
    {"tensor_id", py_tensor_id, METH_O, "tensor_id(t): the identity of t's storage object"},
    {"tape_grad", (PyCFunction)(void (*)(void))py_tape_grad, METH_FASTCALL,
     "tape_grad(fn, grad_position, weights, has_aux, with_value, sens_param, args): a PyNative gradient"},
    {"tape_stats", py_tape_stats, METH_NOARGS, "(backward graphs compiled, cache hits) of the PyNative tape"},
    {"tape_cache_clear", py_tape_cache_clear, METH_NOARGS, "drops the PyNative tape's compiled backward graphs"},
    {"from_dlpack", py_from_dlpack, METH_O, "from_dlpack(obj): a Tensor sharing obj's memory"},
    {"cuda_available", mod_cuda_available, METH_NOARGS, "(bool, reason)"},
    {"set_default_device", mod_set_default_device, METH_O, "set_default_device('cpu' | 'cuda:0' | 'GPU')"},
    {"default_device", mod_default_device, METH_NOARGS, "the default device: 'cpu' or 'cuda:0'"},
    {"cpu_live_bytes", mod_live_bytes, METH_NOARGS, "bytes held by Spore's CPU allocator"},
    {"set_num_threads", mod_set_num_threads, METH_O, "threads used by kernels"},
    {"version", mod_version, METH_NOARGS, "the library's version"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef mod_def = {PyModuleDef_HEAD_INIT, "spore._C",
                                     "Spore's C extension: tensors, the functional API, the compiler.", -1,
                                     mod_methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__C(void) {
    if (PyType_Ready(&py_tensor_base_type) < 0 || PyType_Ready(&py_value_type) < 0 ||
        PyType_Ready(&py_module_type) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&mod_def);
    if (!m) return NULL;
    Py_INCREF(&py_tensor_base_type);
    Py_INCREF(&py_value_type);
    Py_INCREF(&py_module_type);
    if (PyModule_AddObject(m, "TensorBase", (PyObject *)&py_tensor_base_type) < 0 ||
        PyModule_AddObject(m, "Value", (PyObject *)&py_value_type) < 0 ||
        PyModule_AddObject(m, "Module", (PyObject *)&py_module_type) < 0 ||
        PyModule_AddIntConstant(m, "DTYPE_COUNT", SP_DTYPE_COUNT) < 0 || py_dataset_init(m) < 0 ||
        py_ckpt_add(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    for (int d = 0; d < SP_DTYPE_COUNT; d++) {
        char key[32];
        snprintf(key, sizeof key, "DT_%s", sp_dtype_name((sp_dtype)d));
        if (PyModule_AddIntConstant(m, key, d) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
