/*
 * value.h -- the values of Spore programs: IR constants and VM run-time
 * values are the same thing.
 *
 * A value is ref-counted and immutable once built (tuples and lists
 * included: the language is functional; `l.append(x)` style mutation is not
 * part of it).  Python scalars are int64 (int), double (float) and bool;
 * tensors wrap an sp_tensor; graphs, closures and partial applications are
 * callables; PRIM is a primitive of src/ops/ops.def called as a tensor op;
 * BUILTIN is one of the language's own operations (src/ir/builtins.def:
 * switch, make_tuple, operators on Python values, len, print, ...); MODULE
 * is a namespace such as `spore` or `spore.ops` whose attributes resolve
 * statically; KEYWORD carries one `name=value` argument of a call to the
 * callee, which binds it by parameter name.
 *
 * Ownership: every constructor returns one reference (NULL + error on
 * allocation failure); sp_value_release drops one.  Containers own
 * references to their items.
 */
#ifndef SPORE_IR_VALUE_H
#define SPORE_IR_VALUE_H

#include "spore/spore.h"

struct sp_graph;

typedef enum sp_vkind {
    SP_V_NONE,
    SP_V_BOOL,
    SP_V_INT,
    SP_V_FLOAT,
    SP_V_STR,
    SP_V_TUPLE,
    SP_V_LIST,
    SP_V_TENSOR,
    SP_V_DTYPE,
    SP_V_PRIM,     /* a primitive of ops.def: .prim = sp_op id */
    SP_V_BUILTIN,  /* a builtin of builtins.def: .builtin = id */
    SP_V_MODULE,   /* a namespace: .module = SP_MOD_* */
    SP_V_GRAPH,    /* a graph with no free variables, or a graph constant in IR */
    SP_V_CLOSURE,  /* a graph and the values of its free variables */
    SP_V_PARTIAL,  /* a callable with leading arguments bound */
    SP_V_KEYWORD,  /* name=value in a call */
    SP_V_SLICE,    /* start:stop:step, each a value (NONE when omitted) */
    SP_V_ELLIPSIS,
    SP_V_UNDEF,    /* a variable not assigned on this path (using it is an error) */
    SP_V_ENV       /* autodiff (src/ad/env.c): gradients of free variables, u.seq
                    * holding key, value, key, value, ... (keys are INT values) */
} sp_vkind;

/* SP_MOD_PRIM (`from spore import prim`) is the raw primitives of ops.def:
 * prim.<op> is the SP_V_PRIM itself, keyword arguments its attributes
 * (the gradient rules of src/ops/bprop call primitives this way). */
typedef enum sp_module_id { SP_MOD_SPORE, SP_MOD_OPS, SP_MOD_NN, SP_MOD_MATH, SP_MOD_PRIM } sp_module_id;

typedef struct sp_value {
    int refcount;
    sp_vkind kind;
    union {
        int b;
        int64_t i;
        double f;
        struct { char *s; size_t len; } str;          /* NUL-terminated, owned */
        struct { int n; struct sp_value **items; } seq; /* TUPLE, LIST */
        sp_tensor *tensor;                              /* owned reference */
        sp_dtype dtype;
        int prim;
        int builtin;
        int module;
        struct sp_graph *graph; /* GRAPH: not owned (the IR module owns graphs) */
        struct { struct sp_graph *graph; int n; struct sp_value **fv; } closure;
        struct { struct sp_value *fn; int n; struct sp_value **args; } partial;
        struct { char *name; struct sp_value *value; } kw;
        struct { struct sp_value *start, *stop, *step; } slice;
    } u;
} sp_value;

/* Constructors: one new reference, or NULL + error (SP_ERR_NOMEM). */
sp_value *sp_value_none(void);
sp_value *sp_value_undef(void);
sp_value *sp_value_ellipsis(void);
sp_value *sp_value_bool(int b);
sp_value *sp_value_int(int64_t i);
sp_value *sp_value_float(double f);
sp_value *sp_value_str(const char *s, size_t len);
/* TUPLE/LIST of n items; takes a new reference to each item. */
sp_value *sp_value_tuple(int n, sp_value *const *items);
sp_value *sp_value_list(int n, sp_value *const *items);
/* Takes one new reference to t. */
sp_value *sp_value_tensor(sp_tensor *t);
sp_value *sp_value_dtype(sp_dtype d);
sp_value *sp_value_prim(int op);
sp_value *sp_value_builtin(int id);
sp_value *sp_value_module(int id);
sp_value *sp_value_graph(struct sp_graph *g);
/* Takes new references to the fv values. */
sp_value *sp_value_closure(struct sp_graph *g, int n, sp_value *const *fv);
sp_value *sp_value_partial(sp_value *fn, int n, sp_value *const *args);
sp_value *sp_value_keyword(const char *name, sp_value *v);
sp_value *sp_value_slice(sp_value *start, sp_value *stop, sp_value *step);

void sp_value_retain(sp_value *v);
void sp_value_release(sp_value *v); /* NULL is fine */

/* Python truthiness of a scalar, None, sequence or 1-element tensor.
 * Returns 0/1, or -1 with an error (e.g. a tensor of several elements). */
int sp_value_truth(const sp_value *v);
/* Python-style equality of two constant values (used by CSE and tests). */
int sp_value_equal(const sp_value *a, const sp_value *b);
/* The value as the text `spore run` prints: numpy's format for tensors,
 * Python's repr for scalars, strings and tuples ("(1, 2.5, 'a')").  malloc'd;
 * NULL + error on failure. */
char *sp_value_to_string(const sp_value *v);
/* A short name of the kind ("int", "Tensor", "tuple", "function"). */
const char *sp_value_kind_name(const sp_value *v);

#endif
