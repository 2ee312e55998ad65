/*
 * rt.h -- what the VM's three files share: vm.c (frames, calls, tail
 * calls), builtins.c (the language's own operations of builtins.def on every
 * kind of value) and api.c (the functional API of api.def: spore.*,
 * spore.ops.*, math.* and the Tensor methods).
 *
 * Conventions of every function here: arguments are borrowed, a returned
 * value is one new reference, and NULL means an error whose message is set
 * (without a source location: vm.c adds the file:line:col and the caret of
 * the node that failed).  KEYWORD values among the arguments are name=value
 * arguments of the call; a function that takes none says so in its error.
 *
 * A function of the API is the value partial(builtin.api, "<qualified
 * name>"): "ops.relu", "math.sqrt", "spore.set_seed", "Tensor.sum".  A bound
 * method (x.sum) is the same partial with the tensor bound as well:
 * partial(builtin.api, "Tensor.sum", x).  So no new kind of value is needed,
 * calls go through the VM's ordinary partial path, and the specializer can
 * later fold getattr(module.ops, "relu") to a constant.
 */
#ifndef SPORE_RUNTIME_RT_H
#define SPORE_RUNTIME_RT_H

#include "ops/ops.h"
#include "runtime/vm.h"

enum rt_builtin {
#define SP_BUILTIN(ID, name, n) RT_B_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
    RT_B_COUNT
};

/* ---- builtins.c ---------------------------------------------------------- */

/* Calls builtin `id` (builtins.def) on n arguments (builtins.c). */
sp_value *rt_builtin_call(int id, int n, sp_value *const *args);
/* The name of builtin id ("add"), "?" when out of range.  Cannot fail. */
const char *rt_builtin_name(int id);
/* Python's binary operators (RT_B_ADD ... RT_B_NOT_IN) on any two values. */
sp_value *rt_binary(int id, const sp_value *a, const sp_value *b);
/* x.name: tensor properties, bound methods, module attributes. */
sp_value *rt_getattr(const sp_value *x, const char *name);
/* x[index] for tuples, lists, strings and tensors (tensor_value.c). */
sp_value *rt_getitem(const sp_value *x, const sp_value *index);

/* (tensor_value.c) A primitive called as a function: positional arguments are its tensor
 * inputs (Python scalars and nested lists become tensors; a tuple or list
 * of tensors spreads for variadic primitives), keywords are attributes.
 * One output -> a tensor, several -> a tuple, none -> None. */
sp_value *rt_prim_call(int op, int n, sp_value *const *args);
/* Runs op on tensors with attrs and wraps the outputs as above. */
sp_value *rt_op(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs);
/* The same for one output: a new tensor reference or NULL. */
sp_tensor *rt_op1(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs);

/* ---- tensors as values (tensor_value.c) -------------------------------------- */

/* a (op) b for an operator of builtins.def where a or b is a tensor: the
 * primitive with weak typing of Python scalars. */
sp_value *rt_tensor_binary(int id, const sp_value *a, const sp_value *b);
/* x.name for a tensor: properties (shape, dtype, ndim, T, size) and bound
 * methods. */
sp_value *rt_tensor_getattr(const sp_value *x, const char *name);
/* Python's slice.indices() of slice s over n items; 0 or -1 + error. */
int rt_slice_indices(const sp_value *s, int64_t n, int64_t *start, int64_t *step, int64_t *len);
/* x[index] for tuples, lists and strings (builtins.c). */
sp_value *rt_seq_getitem(const sp_value *x, const sp_value *index);


/* Nonzero when work on t must go through primitives and make no copy or
 * view of its own: a trace is installed on this thread (sp_op_trace_set) or
 * t is a meta tensor.  Views, casts and copies made by the API then call
 * RESHAPE, TRANSPOSE, SLICE, CAST..., so every meta tensor an API function
 * returns comes from a traced primitive call.  Cannot fail. */
int rt_meta_mode(const sp_tensor *t);
/* t converted to dtype d: a new tensor (the CAST primitive in meta mode, a
 * copy otherwise).  NULL + error. */
sp_tensor *rt_cast(sp_tensor *t, sp_dtype d);

/* A tensor value, taking over the caller's reference to t (NULL t: NULL). */
sp_value *rt_wrap(sp_tensor *t);
/* Nonzero for int, float and bool values. */
int rt_is_scalar(const sp_value *v);
/* The tensor of v: a TENSOR's own (retained), or a new tensor built from a
 * Python scalar or a nested tuple/list of them.  For a scalar, `weak` >= 0
 * names the dtype of the tensor it meets (weak typing: `x * 2` keeps x's
 * dtype); -1 gives the default dtype (float32 for floats, int64 for ints,
 * bool for bools).  `what` names the function for the error message. */
sp_tensor *rt_as_tensor(const sp_value *v, int weak, const char *what);
/* A tensor from nested tuples/lists of scalars (ops.tensor): dtype < 0
 * infers as rt_as_tensor does.  Made on the default device
 * (sp_default_device); a Tensor given as data keeps its own. */
sp_tensor *rt_tensor_from_data(const sp_value *data, int dtype, const char *what);
/* t's values in CPU memory, for reading them on the host (item, int(),
 * truth, printing): t itself (retained) when it is on the CPU, else a new
 * contiguous host copy.  NULL + error (a meta tensor, a device failure). */
sp_tensor *rt_host(const sp_tensor *t);
/* The new tensor t (taken over) on the default device when that is not the
 * CPU and t is a real CPU tensor, else t itself.  NULL + error (t
 * released). */
sp_tensor *rt_to_default(sp_tensor *t);
/* An int from an int/bool value or a one-element integer tensor. */
int rt_int_of(const sp_value *v, int64_t *out, const char *what);
/* A float from an int/float/bool value or a one-element tensor. */
int rt_float_of(const sp_value *v, double *out, const char *what);
/* A shape/axes list from an int or a tuple/list of ints (or one tensor of
 * them); at most SP_MAX_ATTR_INTS entries. */
int rt_ints_of(const sp_value *v, int64_t *out, int *n, const char *what);
/* A Python value from a tensor: a 0-d tensor gives a scalar, others nested
 * lists (Tensor.tolist / item). */
sp_value *rt_tensor_to_py(const sp_tensor *t, int as_list);

/* ---- api.c ----------------------------------------------------------------- */

enum { RT_MOD_TENSOR = 100 }; /* beside SP_MOD_*: the Tensor methods */

/* The value of module attribute `name` (spore.float32, ops.relu, math.pi):
 * a new reference, or NULL + error naming the module and the attribute. */
sp_value *rt_module_attr(int module, const char *name);
/* A bound method of a tensor (x.sum), or NULL with no error when the tensor
 * has no method of that name. */
sp_value *rt_tensor_method(const sp_value *x, const char *name);
/* builtin.api(name, args...): calls the API function named by args[0]. */
sp_value *rt_api_call(int n, sp_value *const *args);
/* Nonzero when v is spore.Tensor (for isinstance). */
int rt_is_tensor_type(const sp_value *v);

/* ---- vm.c ------------------------------------------------------------------ */

/* Calls fn from inside a builtin or API function (a closure given as an
 * argument); the VM's depth limit applies. */
sp_value *rt_call(sp_value *fn, int n, sp_value *const *args);
/* Marks the current error as not yet located, so that the node being
 * evaluated adds its place (a builtin that rewrites an error raised deeper,
 * e.g. grad moving an error out of the gradient rules to the user's call). */
void rt_error_unlocate(void);

#endif
