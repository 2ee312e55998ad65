/*
 * specialize.h -- abstract interpretation of a module for one input
 * signature, producing a new, specialized module (DESIGN §1).
 *
 * The specializer walks the entry graph and everything it can reach,
 * computing an abstract value (compiler/abstract.h) for every node, and
 * writes a clone of each graph per distinct (graph, scope, argument
 * abstracts) into a NEW module: static values folded into constants
 * (Python arithmetic, x.shape, len(t), isinstance, range, getattr of
 * modules, comparisons), call targets resolved to the specialized clones,
 * switches on constant conditions reduced to the branch taken, and every
 * call of the functional API, of a Tensor method or of an operator on
 * tensors replaced by the primitive calls it makes, in the canonical form
 *
 *     %n = prim.NAME(%a, %b, keyword("attr", CONST), ...)
 *
 * (several outputs: a tuple read with builtin.tuple_getitem).  Random
 * draws from the global generator, print, assert and raise stay as
 * run-time calls in their place in the effect order.  A call of
 * spore.grad / value_and_grad / GradOperation on a known function with
 * static options becomes a call of its gradient graph, built from the
 * function's specialized clone and specialized in turn (spec_grad.c);
 * whatever is not static stays a run-time grad.  Calls
 * with different static scalar arguments get different clones, which is
 * how `for i in range(3)` and recursion on a static n unroll; past a
 * bound the arguments are widened (constants become SCALAR) and recursive
 * contexts iterate to a fixed point.
 *
 * Errors.  A type or shape error in code that certainly runs (no unknown
 * branch leads to it) is reported at compile time, at the user's source
 * line, with exactly the message the VM would give; anything that might
 * not run is left to fail at run time.
 */
#ifndef SPORE_COMPILER_SPECIALIZE_H
#define SPORE_COMPILER_SPECIALIZE_H

#include "compiler/abstract.h"

typedef struct sp_spec_stats {
    int n_contexts;   /* specialized clones made (fixed-point reruns included) */
    int n_reruns;     /* fixed-point iterations beyond the first */
    int n_replaced;   /* API/operator/builtin calls replaced by primitive calls */
    int n_kept;       /* leaf calls kept as run-time calls */
    int n_folded;     /* nodes folded into constants */
    int n_widened;    /* signatures widened to reach a fixed point */
    int n_grads;      /* gradient calls expanded statically (spec_grad.c) */
    double expand_seconds; /* of the time, building gradient graphs (ad_expand_grad) */
} sp_spec_stats;

/* Specializes the module-level function `entry` of src for the arguments
 * args[0..n-1]: tensors by dtype, shape and device (meta tensors are fine:
 * only their metadata is read), everything else by value (static).
 * Returns a new module (the source text copied, so errors show carets)
 * whose global `entry` is the specialized graph; src must outlive it.
 * stats may be NULL.  NULL + error on failure: a user error (file:line:col
 * and caret) for a type error in code that certainly runs. */
sp_module *sp_specialize(sp_module *src, const char *entry, int n, sp_value *const *args, sp_spec_stats *stats);

#endif
