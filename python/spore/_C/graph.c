/*
 * graph.c -- GRAPH_MODE's bridge: Python source to a Spore module through
 * the C front end, and callable Spore values (_C.Value) run by the VM.
 *
 * compile(file, source, line_offset, resolve, resolve_attr) hands the text
 * of one function (a Cell's construct, a @jit function; the package cuts it
 * out of the user's file with inspect and dedents it) to
 * sp_frontend_compile.  `line_offset` makes every location, and so every
 * error, name the user's own file and line.  Names the source does not
 * define go to the resolver: `resolve(name)` answers globals of the
 * function's Python module, `resolve_attr(name, attr)` answers `self.w`
 * (Cells' sub-cells, Parameters, primitive instances, constants) and
 * attributes of global Python objects (F.tensor_add).  Both are Python
 * callables of the package returning a Python object (None: unknown), which
 * becomes a constant of the IR through py_to_value.
 *
 * Lifetime: a constant may be a function compiled into another module (a
 * sub-cell's construct): the Module object lists the Modules its constants
 * point into (deps), and a Value keeps its Module, so graphs outlive every
 * use.  A Python exception raised by a resolver aborts the compilation and
 * is what the caller sees.
 *
 * Execution: a module-level function of a Module (a Cell's construct, a
 * @jit function) is compiled by the graph compiler (src/compiler/compile.h)
 * once per argument signature -- specialized, differentiated, optimized,
 * fused and lowered -- and the compilation is kept in the Module's cache;
 * anything else (a closure value handed back to Python) runs on the VM.
 * A function the compiler cannot take (SP_ERR_UNSUPPORTED, or an internal
 * limit) also runs on the VM, which gives the same values.
 */
#include "py.h"

#include <stddef.h>
#include <string.h>

#include "compiler/compile.h"
#include "ir/clone.h"
#include "frontend/frontend.h"
#include "runtime/vm.h"

/* ---- Value ----------------------------------------------------------------- */

static void value_dealloc(PyObject *self) {
    py_value *v = (py_value *)self;
    sp_value_release(v->v);
    Py_XDECREF(v->owner);
    Py_TYPE(self)->tp_free(self);
}

/* VM_CALL_SITE: every call of compiled code from Python comes here. */
PyObject *py_value_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    py_value *pv = (py_value *)self;
    sp_value **v;
    int n;
    if (py_args_to_values(args, PyVectorcall_NARGS(nargsf), kwnames, 0, &v, &n, NULL) < 0) return NULL;
    /* compiled code runs kernels the PyNative tape does not see */
    sp_tape_note_opaque("a compiled (GRAPH_MODE or @jit) function was called inside the function");
    sp_value *r = NULL;
    py_module *pm = pv->owner && Py_TYPE(pv->owner) == &py_module_type ? (py_module *)pv->owner : NULL;
    const sp_graph *g = pv->v->kind == SP_V_GRAPH ? pv->v->u.graph : NULL;
    if (pm && g && g->module == pm->m && ir_module_get_global(pm->m, g->name) == pv->v &&
        (pm->cache || (pm->cache = sp_compile_cache_new(pm->m, NULL)))) {
        sp_compiled *c = sp_compile_cache_get(pm->cache, g->name, n, v);
        if (c) r = sp_compiled_run(c, n, v);
        else if (sp_last_status() == SP_ERR_UNSUPPORTED || sp_last_status() == SP_ERR_INTERNAL)
            r = sp_vm_call(NULL, pv->v, n, v);
    } else {
        r = sp_vm_call(NULL, pv->v, n, v);
    }
    py_values_free(v, n);
    if (!r) return py_raise();
    PyObject *o = py_from_value(r, pv->owner);
    sp_value_release(r);
    return o;
}

static PyObject *value_repr(PyObject *self) {
    char *s = sp_value_to_string(((py_value *)self)->v);
    if (!s) return py_raise();
    PyObject *r = PyUnicode_FromFormat("<spore value %s>", s);
    free(s);
    return r;
}

static PyObject *value_kind(PyObject *self, void *c) {
    (void)c;
    return PyUnicode_FromString(sp_value_kind_name(((py_value *)self)->v));
}

/* Values are immutable: copies are the value itself (copy.deepcopy of a
 * Cell holding primitives or compiled functions). */
static PyObject *value_copy(PyObject *self, PyObject *unused) {
    (void)unused;
    Py_INCREF(self);
    return self;
}

static PyMethodDef value_methods[] = {{"__copy__", value_copy, METH_NOARGS, "the value itself"},
                                      {"__deepcopy__", value_copy, METH_O, "the value itself"},
                                      {NULL, NULL, 0, NULL}};

static PyGetSetDef value_getset[] = {{"kind", value_kind, NULL, "the kind of value", NULL},
                                     {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject py_value_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spore._C.Value",
    .tp_basicsize = sizeof(py_value),
    .tp_dealloc = value_dealloc,
    .tp_repr = value_repr,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(py_value, vc),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "a Spore value (function, closure, primitive, module); calling it runs the VM",
    .tp_getset = value_getset,
    .tp_methods = value_methods,
};

/* ---- Module ----------------------------------------------------------------- */

static void module_dealloc(PyObject *self) {
    py_module *m = (py_module *)self;
    sp_compile_cache_free(m->cache);
    sp_module_free(m->m);
    Py_XDECREF(m->deps);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *module_get(PyObject *self, PyObject *name) {
    py_module *m = (py_module *)self;
    const char *s = PyUnicode_AsUTF8(name);
    if (!s) return NULL;
    sp_value *v = ir_module_get_global(m->m, s);
    if (!v) return PyErr_Format(PyExc_KeyError, "%s: no global '%s'", m->m->file, s);
    return py_from_value(v, self);
}

static PyObject *module_ir(PyObject *self, PyObject *unused) {
    (void)unused;
    char *s = sp_module_print(((py_module *)self)->m);
    if (!s) return py_raise();
    PyObject *r = PyUnicode_FromString(s);
    free(s);
    return r;
}

static PyMethodDef module_methods[] = {
    {"get", module_get, METH_O, "get(name): the module-level function or constant"},
    {"ir", module_ir, METH_NOARGS, "the IR in its text form"},
    {NULL, NULL, 0, NULL}};

PyTypeObject py_module_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "spore._C.Module",
    .tp_basicsize = sizeof(py_module),
    .tp_dealloc = module_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a Spore module compiled from source",
    .tp_methods = module_methods,
};

/* ---- compile ------------------------------------------------------------------ */

typedef struct {
    PyObject *resolve, *resolve_attr, *deps;
} resolver_ctx;

static sp_value *answer(resolver_ctx *c, PyObject *o) {
    if (!o) return NULL; /* the exception stays set and aborts the compile */
    sp_value *v = NULL;
    if (o != Py_None) v = py_to_value(o, c->deps);
    Py_DECREF(o);
    return v;
}

static sp_value *resolve_cb(void *ctx, const char *name) {
    resolver_ctx *c = ctx;
    if (PyErr_Occurred() || c->resolve == Py_None) return NULL;
    return answer(c, PyObject_CallFunction(c->resolve, "s", name));
}

static sp_value *resolve_attr_cb(void *ctx, const char *name, const char *attr) {
    resolver_ctx *c = ctx;
    if (PyErr_Occurred() || c->resolve_attr == Py_None) return NULL;
    return answer(c, PyObject_CallFunction(c->resolve_attr, "ss", name, attr));
}

PyObject *py_compile(PyObject *mod, PyObject *args, PyObject *kw) {
    (void)mod;
    static char *kwlist[] = {"file", "source", "line_offset", "resolve", "resolve_attr", NULL};
    const char *file, *source;
    int line_offset = 0;
    resolver_ctx c = {Py_None, Py_None, NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kw, "ss|iOO:compile", kwlist, &file, &source, &line_offset,
                                     &c.resolve, &c.resolve_attr))
        return NULL;
    if (!(c.deps = PyList_New(0))) return NULL;
    sp_resolver r = {resolve_cb, &c, resolve_attr_cb};
    sp_clear_error();
    sp_module *m = sp_frontend_compile(file, source, line_offset, &r);
    if (PyErr_Occurred()) {
        sp_module_free(m);
        Py_DECREF(c.deps);
        return NULL;
    }
    if (!m) {
        Py_DECREF(c.deps);
        return py_raise();
    }
    py_module *pm = PyObject_New(py_module, &py_module_type);
    if (!pm) {
        sp_module_free(m);
        Py_DECREF(c.deps);
        return NULL;
    }
    pm->m = m;
    pm->deps = c.deps;
    pm->cache = NULL;
    return (PyObject *)pm;
}

/* ---- lifting ---------------------------------------------------------------- */

/* Tensor identity for the package's Parameter registry: the address of the
 * sp_tensor a Tensor object holds (what a constant of the IR holds too). */
PyObject *py_tensor_id(PyObject *mod, PyObject *t) {
    (void)mod;
    if (!py_is_tensor(t)) return PyErr_Format(PyExc_TypeError, "tensor_id: expected a Tensor, not %s",
                                              Py_TYPE(t)->tp_name);
    return PyLong_FromVoidPtr(((py_tensor *)t)->v->u.tensor);
}

typedef struct {
    PyObject *fn;
} lift_ctx;

static int lift_weight(void *ctx, const sp_value *v) {
    lift_ctx *c = ctx;
    if (PyErr_Occurred()) return -2;
    PyObject *id = PyLong_FromVoidPtr(v->u.tensor);
    PyObject *r = id ? PyObject_CallOneArg(c->fn, id) : NULL;
    Py_XDECREF(id);
    if (!r) {
        sp_error(SP_ERR_RUNTIME, "lift: the weight callback failed");
        return -2;
    }
    long w = PyLong_AsLong(r);
    Py_DECREF(r);
    if (w == -1 && PyErr_Occurred()) {
        sp_error(SP_ERR_RUNTIME, "lift: the weight callback must return an int");
        return -2;
    }
    return w < 0 ? -1 : (int)w;
}

/* lift(fn, nargs, weight) -> (Value, number of weights): see ir_lift.  The
 * result is the global "lifted" of a new Module that keeps fn's owner. */
PyObject *py_lift(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *fn, *weight;
    int nargs;
    if (!PyArg_ParseTuple(args, "OiO:lift", &fn, &nargs, &weight)) return NULL;
    PyObject *deps = PyList_New(0);
    if (!deps) return NULL;
    sp_value *f = py_to_value(fn, deps);
    sp_module *m = f ? sp_module_new("<lift>", NULL) : NULL;
    lift_ctx c = {weight};
    int nw = 0;
    sp_clear_error();
    sp_graph *g = m ? ir_lift(m, "lifted", f, nargs, lift_weight, &c, &nw) : NULL;
    sp_value *gv = g ? sp_value_graph(g) : NULL;
    sp_value_release(f);
    if (!gv || ir_module_set_global(m, "lifted", gv) || ir_module_finalize(m)) {
        sp_value_release(gv);
        sp_module_free(m);
        Py_DECREF(deps);
        if (PyErr_Occurred()) return NULL;
        return py_raise();
    }
    sp_value_release(gv);
    py_module *pm = PyObject_New(py_module, &py_module_type);
    if (!pm) {
        sp_module_free(m);
        Py_DECREF(deps);
        return NULL;
    }
    pm->m = m;
    pm->deps = deps;
    pm->cache = NULL;
    PyObject *v = py_from_value(ir_module_get_global(m, "lifted"), (PyObject *)pm);
    Py_DECREF(pm);
    return v ? Py_BuildValue("(Ni)", v, nw) : NULL;
}

/* deferred(f, *bound) -> Value: the graph `deferred(*args)` that computes
 * f(*bound)(*args) when called.  The package's gradient objects are this:
 * spore.grad(fn, pos, weights) is made where it runs, inside the caller's
 * (lifted) graph, so its weights are the run-time tensors a closure of the
 * lifted fn captures. */
PyObject *py_deferred(PyObject *mod, PyObject *const *args, Py_ssize_t nargs) {
    (void)mod;
    if (nargs < 1) return PyErr_Format(PyExc_TypeError, "deferred: expected a function");
    PyObject *deps = PyList_New(0);
    if (!deps) return NULL;
    sp_value **v = calloc((size_t)nargs + 1, sizeof *v);
    sp_module *m = NULL;
    PyObject *r = NULL;
    Py_ssize_t i;
    if (!v) {
        PyErr_NoMemory();
        goto done;
    }
    for (i = 0; i < nargs; i++)
        if (!(v[i] = py_to_value(args[i], deps))) goto done;
    sp_clear_error();
    m = sp_module_new("<deferred>", NULL);
    sp_loc loc = {m ? ir_intern(m, "<deferred>") : NULL, 0, 0};
    sp_graph *g = m ? ir_graph_new(m, "deferred", NULL, loc) : NULL;
    sp_node *p = g ? ir_param_new(g, "args", loc) : NULL;
    sp_node **in = p ? calloc((size_t)nargs + 1, sizeof *in) : NULL;
    if (!in) goto fail;
    g->has_varargs = 1;
    for (i = 0; i < nargs; i++)
        if (!(in[i] = ir_const_new(g, v[i], loc))) break;
    sp_value *cs = i == nargs ? sp_value_builtin(RT_B_CALL_STAR) : NULL;
    sp_node *inner = cs ? ir_apply_new(g, (int)nargs, in, loc) : NULL;
    sp_node *call[3] = {cs ? ir_const_new(g, cs, loc) : NULL, inner, p};
    sp_value_release(cs);
    free(in);
    if (!call[0] || !inner || !(g->output = ir_apply_new(g, 3, call, loc))) goto fail;
    sp_value *gv = sp_value_graph(g);
    int bad = !gv || ir_module_set_global(m, "deferred", gv) || ir_module_finalize(m);
    sp_value_release(gv);
    if (bad) goto fail;
    py_module *pm = PyObject_New(py_module, &py_module_type);
    if (!pm) goto done;
    pm->m = m;
    pm->deps = deps;
    pm->cache = NULL;
    m = NULL;
    deps = NULL;
    r = py_from_value(ir_module_get_global(pm->m, "deferred"), (PyObject *)pm);
    Py_DECREF(pm);
    goto done;
fail:
    if (!PyErr_Occurred()) py_raise();
done:
    sp_module_free(m);
    Py_XDECREF(deps);
    if (v)
        for (i = 0; i < nargs; i++) sp_value_release(v[i]);
    free(v);
    return r;
}
