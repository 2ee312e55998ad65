/*
 * expand.h -- gradient (J) expansion as an IR transformation (DESIGN §5:
 * "grad is a primitive J until specialization has typed the function;
 * expansion is a pass").
 *
 * ad_expand_grad builds, in the module of f, the graph that spore.grad /
 * value_and_grad / GradOperation would run for f: it calls K(f) -- built
 * here as IR, with J resolved statically wherever the callee is known --
 * seeds the backward pass and picks the gradients asked for, exactly as
 * _ad_grad_call (src/ad/bprop_builtins.py) does at run time.  The
 * optimizer (inline, beta, tuple_simplify, env_simplify, dce...) then
 * removes the closure, tuple and env plumbing.
 *
 * Static J (expand.c):
 *   J(prim.X)         the primitive call; its backward calls bprop_X, a
 *                     copy of the rule graph in f's module (ir/clone.h)
 *   J(@g)             K(@g), built recursively and cached (g->kx_graph);
 *                     graphs nested in g get K graphs nested in K(g), so
 *                     closures need no make_closure; recursion refers to
 *                     K(g) itself
 *   J(switch(c, @a, @b))  switch(c, K(@a), K(@b)): if/else
 *   make_tuple, tuple_getitem (constant index), switch on values,
 *   make_keyword       direct backward IR, no rule call
 * Anything else -- a callee known only at run time (a function passed in),
 * an API call ops.relu(x) before specialization replaced it by primitives,
 * Python operators on unknown values (tensor or float?), partial, a user
 * f_bprop, variadic primitives -- keeps the run-time J of j.c for that one
 * call (`J(f)(args)`), which composes with the static parts: both follow
 * the (value, bprop) / (env, d_args...) protocol of ad.h.  So a function
 * made of primitive calls, graph calls, tuple ops and switch expands to
 * IR with no J, j_primal, make_closure or closure_keys, and the env
 * builtins left (free-variable gradients) fold away with env_simplify.
 */
#ifndef SPORE_AD_EXPAND_H
#define SPORE_AD_EXPAND_H

#include "ir/ir.h"

/* What the user asked for, in _ad_grad_call's terms (src/ad/grad.c):
 *   spore.grad(fn, grad_position, weights, has_aux)   with_value = 0
 *   spore.value_and_grad(...)                         with_value = 1
 *   ops.GradOperation(get_all, get_by_list, sens_param)(fn[, weights]):
 *       pos = None if get_all, False if get_by_list, else 0;
 *       weights only with get_by_list; sens_param as given. */
typedef struct ad_grad_opts {
    const sp_value *pos;      /* an int, a tuple of ints, None (all inputs) or False (none: weights only) */
    int has_aux, with_value, sens_param;
    int n_weights;            /* 0: no weights (None) */
    sp_node *const *weights;  /* free-variable nodes of f, or parameters of f */
    /* Optional: per parameter of f, a value with the argument's kind and
     * dtype (a META tensor will do), or NULL when unknown; the inputs asked
     * for are then checked as grad.c checks them (an integer input is an
     * error at loc). */
    sp_value *const *arg_examples;
} ad_grad_opts;

/* Builds h in f's module, nested where f is (same parent): h takes f's
 * parameters (plus `sens` last when sens_param) and returns what the
 * run-time API returns for them.  f must be finalized (ir_module_finalize)
 * and have neither varargs nor keyword-only use.  loc is the user's call
 * (errors raised by h -- a non-scalar output -- and by this function point
 * there).  Returns h, or NULL + error: a grad_position out of range or an
 * integer input (known from arg_examples), a weight that is not a free
 * variable or parameter of f, out of memory.  The caller re-finalizes the
 * module.  Cannot abort. */
sp_graph *ad_expand_grad(sp_module *m, sp_graph *f, const ad_grad_opts *opts, sp_loc loc);

/* The checks ad_expand_grad starts with, alone: SP_OK, or the error (at
 * loc) the run-time API would report for these options and arguments. */
sp_status ad_grad_check(sp_module *m, sp_graph *f, const ad_grad_opts *opts, sp_loc loc);

/* Nonzero when g or a graph it may call (through graph constants,
 * transitively) has a user backward rule f_bprop: the run-time API moves
 * errors such a rule raises to the user's call, which an expansion cannot
 * do, so the expand_grad pass leaves those calls to the run time.  (1 when
 * out of memory: the conservative answer.) */
int ad_reaches_custom_bprop(const sp_graph *g);

/* K(g) as IR (static J where possible, see above), cached in g->kx_graph;
 * NULL + error. */
sp_graph *ad_kx(sp_graph *g);

#endif
