/*
 * py.h -- what the files of the extension spore._C share.
 *
 * The extension is a thin skin over Spore's C library: Python objects are
 * converted to Spore values (src/ir/value.h), the work is done by the same
 * C functions the source language calls (the functional API of api.def
 * through rt_api_call, operators through rt_binary, indexing through
 * rt_getitem, programs through the front end and the VM), and the result is
 * converted back.  Nothing numeric happens here.
 *
 * Objects:
 *   Tensor  (tensor.c)  holds one SP_V_TENSOR value; the package's
 *                       spore.Tensor is a Python subclass that adds the
 *                       methods generated from api.def, so results are
 *                       made as instances of that subclass (py_tensor_type).
 *   Value   (value.c)   any other Spore value that Python holds: a
 *                       function compiled from source, a closure, a
 *                       partial, a primitive, a module.  Calling it runs the
 *                       VM.  `owner` keeps alive what the value's graphs
 *                       live in (a Module).
 *   Module  (graph.c)   an sp_module compiled from Python source, plus the
 *                       modules its constants point into (deps).
 *
 * Errors: a Spore error becomes a Python exception whose type follows the
 * status (py_raise); a Python exception raised inside a callback (the
 * resolver) wins over the Spore error it caused.
 */
#ifndef SPORE_PY_H
#define SPORE_PY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "ir/ir.h"
#include "runtime/rt.h"
#include "runtime/tape.h"

typedef struct {
    PyObject_HEAD
    sp_value *v; /* SP_V_TENSOR, owned */
} py_tensor;

typedef struct {
    PyObject_HEAD
    sp_value *v;     /* owned */
    PyObject *owner; /* a Module or NULL, owned */
    vectorcallfunc vc; /* py_value_vectorcall: calls skip building a tuple */
} py_value;

typedef struct {
    PyObject_HEAD
    sp_module *m;
    PyObject *deps; /* list of the Modules that constants of m point into */
    struct sp_compile_cache *cache; /* compilations of m's functions by signature; NULL until first call */
} py_module;

extern PyTypeObject py_tensor_base_type, py_value_type, py_module_type;
/* The class of new tensors: spore.Tensor once the package registered it,
 * else the base type.  Borrowed. */
extern PyTypeObject *py_tensor_type;

/* ---- module.c ---- */
/* Raises the Python exception for the current Spore error and returns
 * NULL (the type follows sp_last_status()).  If a Python exception is
 * already set, keeps it. */
PyObject *py_raise(void);
/* The dtype object registered for d (spore.float32, ...); new reference,
 * or a str name when none is registered.  Never NULL except on no memory. */
PyObject *py_dtype_object(sp_dtype d);
/* The dtype named by o: a spore dtype object, a numpy dtype or type, a
 * string; -1 + TypeError otherwise. */
int py_dtype_from(PyObject *o, sp_dtype *out);

/* ---- convert.c ---- */
/* A Spore value for a Python object (new reference), NULL + exception.
 * Tensors, Values, scalars, str, None, tuples, lists, slices, Ellipsis,
 * dtypes and buffer-protocol objects (numpy arrays: copied into a tensor).
 * When deps is non-NULL, the owners of Values met are appended to it. */
sp_value *py_to_value(PyObject *o, PyObject *deps);
/* A Python object for a Spore value (new reference), NULL + exception.
 * owner: what callables found in v need alive (may be NULL). */
PyObject *py_from_value(sp_value *v, PyObject *owner);
/* The arguments of a vectorcall as Spore values: n positional values then
 * one KEYWORD value per keyword argument.  *out is malloc'd; the caller
 * releases each value and frees the array (py_values_free). */
int py_args_to_values(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, int extra,
                      sp_value ***out, int *n, PyObject *deps);
void py_values_free(sp_value **v, int n);

/* ---- tensor.c ---- */
/* A new spore.Tensor taking over the caller's reference to v (TENSOR). */
PyObject *py_tensor_wrap(sp_value *v);
/* A tensor value copied from a buffer-protocol object (numpy array),
 * NULL + exception. */
sp_value *py_tensor_from_buffer(PyObject *o, int dtype);
int py_is_tensor(PyObject *o);

/* ---- setitem.c ---- */
/* x[index] = value in place (Tensor's mp_ass_subscript; value NULL is
 * `del x[index]`, a TypeError).  0, or -1 + exception. */
int py_tensor_setitem(PyObject *self, PyObject *index, PyObject *value);

/* ---- apifn.c ---- */
/* ApiFunction (partial(api, "ops.add"), "spore.*", "math.*") and
 * ApiMethod (partial(api, "Tensor.sum")): subclasses of Value with a
 * function's names; the method binds like a Python method. */
extern PyTypeObject py_api_function_type, py_api_method_type;
/* The type py_from_value gives v (one of the two above, else Value), and
 * in *vc its vectorcall: py_api_vectorcall when v is builtin.api or a
 * primitive under partials, else py_value_vectorcall.  Cannot fail. */
PyTypeObject *py_api_type_of(const sp_value *v, vectorcallfunc *vc);
/* Calls such a value directly (no VM): bound arguments first, as the VM. */
PyObject *py_api_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);

/* ---- dlpack.c ---- */
PyObject *py_tensor_dlpack(PyObject *self, PyObject *args, PyObject *kw);
PyObject *py_tensor_dlpack_device(PyObject *self, PyObject *unused);
PyObject *py_from_dlpack(PyObject *mod, PyObject *obj);

/* ---- graph.c ---- */
PyObject *py_compile(PyObject *mod, PyObject *args, PyObject *kw);
/* lift(fn, nargs, weight), deferred(f, *bound) and tensor_id(t):
 * Parameters as run-time inputs of a compiled entry (python/spore/_jit.py). */
PyObject *py_lift(PyObject *mod, PyObject *args);
PyObject *py_tensor_id(PyObject *mod, PyObject *t);
PyObject *py_deferred(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
/* Calls a Value through the VM. */
PyObject *py_value_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames);

/* ---- tape.c ---- */
/* tape_grad(fn, grad_position, weights, has_aux, with_value, sens_param,
 * args): a PYNATIVE_MODE gradient through the eager tape -> (True, result)
 * or (False, why the caller must compile the source instead). */
PyObject *py_tape_grad(PyObject *mod, PyObject *const *args, Py_ssize_t nargs);
/* tape_stats() -> (backward compilations, cache hits); tape_cache_clear(). */
PyObject *py_tape_stats(PyObject *mod, PyObject *unused);
PyObject *py_tape_cache_clear(PyObject *mod, PyObject *unused);

/* ---- dataset.c ---- */
/* Adds the data pipeline's types (DataPipe, DataIter, Transform) and its
 * data_* functions to the module m; 0, or -1 + exception. */
int py_dataset_init(PyObject *m);

/* ---- ckpt.c ---- */
/* Adds the checkpoint functions (ckpt_save, ckpt_load, ckpt_copy_into,
 * ckpt_copy) to the module m; 0, or -1 + exception. */
int py_ckpt_add(PyObject *m);

#endif
