/*
 * abstract.h -- abstract values: what the specializer knows about a value
 * before the program runs (DESIGN §1, "specialize").
 *
 * Every node of a specialized graph carries one (node->abs).  The lattice,
 * from most to least precise:
 *
 *   BOTTOM   no value (yet): the start of a fixed-point iteration, or code
 *            that never returns
 *   CONST    the value itself: a Python scalar, string, None, a tuple of
 *            constants, a dtype, a primitive/builtin/API function, a tensor
 *            made at compile time
 *   TENSOR   dtype, rank, shape (a dim of -1: not known) and device
 *   SCALAR   a Python int, float or bool whose value is known at run time
 *   TUPLE / LIST   items known one by one
 *   FUNC     a graph of the source module closed over a known scope (the
 *            specializer's context of its parent; opaque here)
 *   PARTIAL  a callable with leading arguments bound (fn, items)
 *   ALT      one of several callables (a switch on an unknown condition)
 *   KEYWORD  name=value passed to a call
 *   ANY      nothing known
 *
 * Abstracts are immutable once built and live in an sp_module's arena (the
 * specialized module: they die with it).  A CONST's value is kept alive by
 * the module too (a hidden constant node), so an abstract never owns a
 * reference of its own.  Each abstract carries a structural hash, computed
 * when it is built, so signatures compare in constant time when they
 * differ; sp_abs_equal decides equality.
 */
#ifndef SPORE_COMPILER_ABSTRACT_H
#define SPORE_COMPILER_ABSTRACT_H

#include "ir/ir.h"

typedef enum sp_abs_kind {
    SP_ABS_BOTTOM,
    SP_ABS_CONST,
    SP_ABS_TENSOR,
    SP_ABS_SCALAR,
    SP_ABS_TUPLE,
    SP_ABS_LIST,
    SP_ABS_FUNC,
    SP_ABS_PARTIAL,
    SP_ABS_ALT,
    SP_ABS_KEYWORD,
    SP_ABS_ANY
} sp_abs_kind;

typedef struct sp_abstract {
    sp_abs_kind kind;
    uint64_t hash;
    sp_value *value;               /* CONST (borrowed: the module keeps it) */
    sp_dtype dtype;                /* TENSOR */
    int ndim;                      /* TENSOR: rank */
    int64_t shape[SP_MAX_DIMS];    /* TENSOR: -1 = unknown dim */
    sp_device device;              /* TENSOR */
    sp_vkind scalar;               /* SCALAR: SP_V_INT, SP_V_FLOAT or SP_V_BOOL */
    int n;                         /* TUPLE/LIST/PARTIAL/ALT: number of items */
    struct sp_abstract **items;    /* TUPLE/LIST items, PARTIAL bound args, ALT choices */
    struct sp_abstract *fn;        /* PARTIAL: the callee */
    sp_graph *graph;               /* FUNC: the source graph */
    void *scope;                   /* FUNC: the specializer's context of its parent (NULL: top level) */
    int foreign;                   /* FUNC: a closure over another activation of its scope (returned
                                    * by a call): never called as a constant */
    const char *name;              /* KEYWORD: the name (interned); items[0] is the value */
} sp_abstract;

/* ---- constructors: in m's arena; NULL + error only when out of memory --- */
sp_abstract *sp_abs_bottom(sp_module *m);
sp_abstract *sp_abs_any(sp_module *m);
/* Keeps v alive as long as m (a hidden constant node). */
sp_abstract *sp_abs_const(sp_module *m, sp_value *v);
sp_abstract *sp_abs_tensor(sp_module *m, sp_dtype dtype, int ndim, const int64_t *shape, sp_device dev);
sp_abstract *sp_abs_scalar(sp_module *m, sp_vkind kind);
/* TUPLE or LIST of n items (the array is copied). */
sp_abstract *sp_abs_seq(sp_module *m, sp_abs_kind kind, int n, sp_abstract *const *items);
sp_abstract *sp_abs_func(sp_module *m, sp_graph *g, void *scope);
/* f (a FUNC) marked foreign. */
sp_abstract *sp_abs_func_foreign(sp_module *m, const sp_abstract *f);
sp_abstract *sp_abs_partial(sp_module *m, sp_abstract *fn, int n, sp_abstract *const *args);
sp_abstract *sp_abs_alt(sp_module *m, int n, sp_abstract *const *choices);
sp_abstract *sp_abs_keyword(sp_module *m, const char *name, sp_abstract *value);

/* The abstract of a run-time value: tensors by dtype/shape/device (static
 * shapes: a tensor argument of a compiled function is TENSOR, not CONST),
 * Python scalars, strings, None, dtypes and tuples of them by value (the
 * static arguments of jax.jit), callables as CONST.  NULL + error only when
 * out of memory. */
sp_abstract *sp_abs_of_arg(sp_module *m, sp_value *v);

/* Structural equality (CONST by sp_value_equal and kind; FUNC by graph and
 * scope).  NULL is equal only to NULL. */
int sp_abs_equal(const sp_abstract *a, const sp_abstract *b);
/* The least upper bound: equal -> a; two CONST scalars of one kind ->
 * SCALAR; tensors of one dtype and rank -> the dims that differ become -1;
 * sequences of one length -> item by item; BOTTOM joins to the other;
 * anything else -> ANY.  NULL only when out of memory. */
sp_abstract *sp_abs_join(sp_module *m, sp_abstract *a, sp_abstract *b);
/* Forgets values so that a loop or recursion reaches a fixed point:
 * level 1: constant scalars become SCALAR, other constants except None,
 * dtypes and callables become ANY, sequences are widened item by item;
 * level 2: also tensors and sequences become ANY.  FUNC/PARTIAL/ALT stay. */
sp_abstract *sp_abs_widen(sp_module *m, sp_abstract *a, int level);

/* Nonzero when a is a TENSOR whose every dim is known. */
int sp_abs_tensor_known(const sp_abstract *a);
/* A short text for messages and tests: "f32[2,3]", "int", "3", "(f32[4], 'a')",
 * "any".  malloc'd; NULL + error on failure. */
char *sp_abs_to_string(const sp_abstract *a);

#endif
