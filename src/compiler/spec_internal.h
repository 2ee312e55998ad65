/*
 * spec_internal.h -- what the specializer's files share: specialize.c
 * (contexts, graph calls, switches, tuples, the fixed point) and
 * spec_leaf.c (calls of builtins, primitives and API functions, evaluated
 * on meta tensors under the op trace and replaced by the primitive calls
 * the trace recorded).
 *
 * A context is one clone: a source graph, the context of its parent (the
 * scope its free variables come from; NULL at top level) and the abstracts
 * of its parameters.  Each source node evaluated in a context has a slot:
 * its abstract, the clone node that carries its value at run time (NULL
 * when the value was folded into a constant, materialized on demand),
 * whether evaluating it has effects, and whether it *carries* effects: the
 * front end keeps effects alive by threading them through tuples,
 * tuple_getitem(make_tuple(e1, ..., x), n), sometimes into a call's callee,
 * so a node that reads a carrier may not be folded or replaced by code
 * that no longer reads it.
 *
 * Tensors and nodes.  To replace a leaf call by the primitive calls it
 * made, every meta tensor the trace saw must map back to a node of the
 * clone.  The map is keyed by abstract: a TENSOR abstract has one meta
 * tensor (made on first use) and `abs_node` says which clone node last
 * carried it; a use checks that the node is visible (its graph encloses
 * the graph being built) before relying on it.
 *
 * Files: specialize.c (contexts, graph calls, switches, tuples, the fixed
 * point), spec_args.c (a call's callee and arguments: partials,
 * call_star's spread, binding), spec_leaf.c (leaf calls), spec_grad.c
 * (gradient calls).
 */
#ifndef SPORE_COMPILER_SPEC_INTERNAL_H
#define SPORE_COMPILER_SPEC_INTERNAL_H

#include "compiler/passes/passes.h"
#include "compiler/specialize.h"
#include "ir/ir_internal.h"
#include "runtime/rt.h"

typedef struct spec_slot {
    sp_abstract *abs;
    sp_node *node; /* the clone node with the value, or NULL (folded: a constant on demand) */
    int pure;      /* evaluating the source node has no effect */
    int carries;   /* tuple plumbing that keeps an effect alive: must stay used */
    sp_node *lazy; /* node NULL: a pure source call written into the clone only when its
                    * value is used (a gradient function: see spec_grad.c) */
} spec_slot;

typedef struct spec_ctx {
    sp_graph *src;
    struct spec_ctx *parent; /* the context of src->parent, or NULL (top level) */
    int n_args;
    sp_abstract **args;      /* the key: parameter abstracts after widening */
    uint64_t hash;
    sp_graph *clone;
    ir_map slots;            /* source node -> spec_slot* */
    sp_abstract *result;     /* the output's abstract (while busy: the guess) */
    int busy, recursed, done, dead, certain, impure, generic;
    int packed;              /* SPEC_PACKED: the clone takes h's *args as one tuple */
    long serial;
    struct spec_ctx *next;   /* memo chain */
} spec_ctx;

typedef struct spec {
    sp_module *src, *m;
    ir_map memo;      /* signature hash -> spec_ctx chain */
    ir_map counts;    /* source graph -> clones made */
    ir_map busy;      /* source graph -> its contexts being built now */
    ir_map orders;    /* source graph -> cached evaluation order (spec_order) */
    ir_map abs_node;  /* sp_abstract* -> sp_node* that last carried it */
    ir_map abs_meta;  /* sp_abstract* -> its meta tensor */
    ir_map meta_abs;  /* meta tensor -> sp_abstract* */
    ir_map consts;    /* source constant node -> CONST abstract (not graphs) */
    ir_map tensor_abs; /* real tensor (compile-time constant) -> its CONST abstract */
    ir_map anchored;  /* source node -> 1: an item of a make_tuple/make_list of its graph */
    sp_tensor **metas;
    int n_metas, cap_metas;
    spec_ctx **ctxs;  /* every context, in creation order */
    int n_ctxs, cap_ctxs;
    int depth;
    long serial;
    sp_spec_stats stats;
    struct spec_grad_memo *grads; /* gradient graphs built (spec_grad.c) */
    /* backward closures of gradient graphs specialized for a guessed
     * argument (specialize.c, "Backward closures"): */
    struct spec_guess *guesses;
    int n_guesses, cap_guesses;
    int no_guess;       /* this run makes no guesses (a guess failed before) */
    int guess_conflict; /* a guess proved wrong: run again with no_guess */
} spec;

/* One argument of a leaf call: its abstract and the clone node carrying
 * it (NULL for an argument bound in a partial: found through abs_node). */
typedef struct leaf_arg {
    sp_abstract *abs;
    sp_node *node;
} leaf_arg;

/* A call's callee with partials flattened (spec_callee_unwrap): fn is the
 * innermost function, args[0..n_bound) the partials' bound arguments,
 * then the call's own (args[n_bound..na)).  fsrc is the source node whose
 * value is the callee: the call's input 0, or call_star's function when
 * star is set -- a call_star(f, t) with a static t, spread into f's call on
 * t's items, whose nodes (clone nodes) args then hold (spec_args.c). */
typedef struct spec_callee {
    sp_abstract *fn;
    int n_bound;
    leaf_arg *args; /* malloc'd: the caller frees it */
    int na;
    sp_node *fsrc;
    int star;
} spec_callee;

/* ---- specialize.c --------------------------------------------------------- */

/* The slot of source node x (an input of a node of c's graph): own nodes,
 * free variables (slots of enclosing contexts) and constants.  NULL +
 * error when x was not evaluated (an internal error). */
spec_slot *spec_lookup(spec *s, spec_ctx *c, sp_node *x);
/* A clone node, visible in c's clone, carrying source node x's value
 * (materializing folded values as constants).  NULL + error. */
sp_node *spec_input(spec *s, spec_ctx *c, sp_node *x);
/* A clone node carrying abstract a in c's clone: the node abs_node names
 * when visible, a constant for CONST/FUNC; NULL (no error) when neither. */
sp_node *spec_node_of_abs(spec *s, spec_ctx *c, sp_abstract *a);
/* A constant node holding v in c's clone (its abs set).  NULL + error. */
sp_node *spec_const(spec *s, spec_ctx *c, sp_value *v, sp_loc loc);
/* A new apply in c's clone with abstract a (registered in abs_node). */
sp_node *spec_apply(spec *s, spec_ctx *c, int n, sp_node *const *in, sp_loc loc, sp_abstract *a);
/* The source apply n copied into c's clone with its inputs mapped. */
sp_node *spec_emit_orig(spec *s, spec_ctx *c, sp_node *n, sp_abstract *a);
/* Nonzero when clone node x may be used in c's clone. */
int spec_visible(const spec_ctx *c, const sp_node *x);
/* Nonzero when a slot of abstract a needs no node: a constant without
 * tensors (tensors made at compile time stay calls: closures capture them
 * and grad's weights are found by what closures capture), or a function
 * whose scope is visible in c. */
int spec_foldable(const spec_ctx *c, const sp_abstract *a);
/* Records that node carries abstract a (for later leaf replacement). */
void spec_note(spec *s, sp_abstract *a, sp_node *node);
/* Nonzero when a FUNC whose scope is `scope` may be called directly from c
 * (scope is c or a context enclosing it, or NULL). */
int spec_scope_visible(const spec_ctx *c, const void *scope);
/* Calls graph h over scope on args as the VM binds them: *ctx_out the
 * context built (NULL after a binding error left to run time).  certain:
 * the call certainly runs (errors are reported now); flags: spec_enter's. */
sp_status spec_call_graph(spec *s, spec_ctx *c, sp_node *n, sp_graph *h, spec_ctx *scope, int na, leaf_arg *args,
                          int certain, int flags, spec_ctx **ctx_out);
/* Reports err (already set, without place) at n's source line when c is
 * certain to run, returning the status; otherwise clears it and returns
 * SP_OK (the error is left to run time). */
sp_status spec_user_error(spec *s, spec_ctx *c, const sp_node *n);

/* Flags of spec_enter.  SPEC_GENERIC: the clone for unknown parameters
 * (the one a function value becomes).  SPEC_PACKED: a clone of a *args
 * function whose last parameter is an ordinary one, the *args tuple
 * itself: a direct call packs the extra arguments into a make_tuple, so
 * the call is plain positional and the inliner can open it (a clone of
 * its own: run-time values of the function keep the VM's convention). */
enum { SPEC_GENERIC = 1, SPEC_PACKED = 2 };

/* The context of h over scope for parameter abstracts params (bound,
 * widened here when h has too many clones), found in the memo or made and
 * built.  certain: the call certainly runs; flags: SPEC_*.  NULL + error. */
spec_ctx *spec_enter(spec *s, sp_graph *h, spec_ctx *scope, int n, sp_abstract **params, int certain, int flags);
/* spec_enter with every parameter ANY: the clone a function value gets. */
spec_ctx *spec_generic(spec *s, sp_graph *h, spec_ctx *scope);

/* ---- spec_args.c ------------------------------------------------------------- */

/* The keyword name of an argument abstract (its value in *value: a new
 * abstract for a constant KEYWORD, NULL when out of memory), or NULL. */
const char *spec_kw_of(spec *s, const sp_abstract *a, sp_abstract **value);
/* Binds args to g's parameters as the VM does, filling
 * params[0..g->n_params-1]; SP_OK, or an error with the VM's message (no
 * place: the caller adds the call's). */
sp_status spec_bind_abs(spec *s, const sp_graph *g, int n, const leaf_arg *args, sp_abstract **params);
/* The callee and arguments of call n in c (see spec_callee), spreading a
 * call_star over a static tuple.  SP_OK, or an error (ce->args NULL). */
sp_status spec_callee_unwrap(spec *s, spec_ctx *c, sp_node *n, spec_callee *ce);
/* Nonzero when no argument of ce is a keyword. */
int spec_all_positional(spec *s, const spec_callee *ce);
/* Gives ce's bound arguments (from partials) their clone nodes: the nodes
 * visible in c that carry their abstracts, or constants.  1 done, 0 when
 * one has none (no error), -1 out of memory. */
int spec_bound_nodes(spec *s, spec_ctx *c, spec_callee *ce);
/* Gives the call's own arguments of ce (after the bound ones) their clone
 * nodes (a spread call_star's have them already).  0, or -1 + error. */
int spec_call_nodes(spec *s, spec_ctx *c, sp_node *n, spec_callee *ce);
/* The argument nodes of ce (all given: spec_bound_nodes, spec_call_nodes)
 * bound to the parameters of g, a clone called directly at n, as the VM
 * binds them: positionals, keywords by name, defaults; packed (a
 * SPEC_PACKED clone): the extra positionals as one make_tuple.  Returns
 * g->n_params with (*out)[1..] filled (slot 0 left for the callee; the
 * caller frees *out); -1 without an error when the call is better left as
 * its argument list (*args, a keyword it cannot place, already positional),
 * -1 + error when out of memory (or packed and impossible). */
int spec_bind_nodes(spec *s, spec_ctx *c, sp_node *n, const spec_callee *ce, const sp_graph *g, int packed,
                    sp_node ***out);

/* ---- spec_leaf.c ------------------------------------------------------------ */

/* Evaluates the call of fn (a builtin, primitive or API partial's callee,
 * CONST) on args at source node n of c: the abstract of the result in
 * *out, the clone nodes emitted (replacement or the original call).
 * n_bound leading args came from a partial (the original call is emitted
 * with the source's own callee and arguments).  SP_OK or an error. */
sp_status spec_leaf(spec *s, spec_ctx *c, sp_node *n, const sp_value *fn, int na, leaf_arg *args,
                    spec_slot *out);
/* The meta tensor of TENSOR abstract a (made and remembered on first use);
 * NULL + error. */
sp_tensor *spec_meta_of(spec *s, sp_abstract *a);
/* Releases the leaf machinery's references (metas). */
void spec_leaf_free(spec *s);

/* ---- spec_grad.c ------------------------------------------------------------ */

/* The call builtin.api(name, args...) at n, name one of spore.grad,
 * spore.value_and_grad, spore._grad_operation: when the function and the
 * options are static, out gets the gradient function's abstract (see
 * spec_grad.c) and 1 is returned; 0 leaves the call to spec_leaf.  An
 * error only when out of memory (*st). */
int spec_grad_fn(spec *s, spec_ctx *c, sp_node *n, int na, const leaf_arg *args, spec_slot *out, sp_status *st);
/* A call at n of a gradient function spec_grad_fn described: bound[0..5]
 * its abstract's items, args[0..na-1] the call's arguments.  *fn_out: a
 * FUNC of the specialized module's gradient graph to call instead with the
 * same arguments, or NULL when the call stays a run-time grad (something
 * is not static).  SP_OK, or an error: out of memory, or the run-time
 * API's error at n (an integer input) when the call certainly runs. */
sp_status spec_grad_call(spec *s, spec_ctx *c, sp_node *n, const leaf_arg *bound, int na, leaf_arg *args,
                         sp_abstract **fn_out);
/* The clone a FUNC value a (visible scope) is materialized as: for a
 * gradient graph's backward closure, the context of its guessed argument
 * (recorded); otherwise the generic clone.  NULL + error. */
spec_ctx *spec_value_clone(spec *s, sp_abstract *a);
/* A call not through a constant of graph g over scope built context k: if
 * the value called was materialized for a guess, k must be that context,
 * else the run is marked (s->guess_conflict). */
void spec_guess_check(spec *s, const sp_graph *g, const spec_ctx *scope, const spec_ctx *k);
/* Frees the memo of gradient graphs. */
void spec_grad_free(spec *s);

#endif
