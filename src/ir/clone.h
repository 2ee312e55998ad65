/*
 * clone.h -- copying graphs, within a module or from one module into
 * another (the gradient rules' module into a user's module).
 *
 * A graph is copied with its whole scope: every graph nested in it (at any
 * depth) is copied too, under the copy.  A node the scope uses but does not
 * own (a free variable of the root) is looked up through the caller's map,
 * or kept when the map has no entry (it must then be visible from the
 * copy's parent).  Graph constants naming graphs outside the scope:
 *   - a graph of the destination module is referenced as it is;
 *   - a graph of another module is copied too (deeply, as a top-level
 *     graph of the destination), once per destination module: an earlier
 *     copy (found through sp_graph.clone_of) is reused, so the rules that
 *     share a helper share one copy of it.
 * Graphs referenced from another module must not have free variables
 * (top-level functions, as every rule is).  Names, parameters, defaults,
 * varargs and source locations are kept (a location's file is interned in
 * the destination, so errors in copied code still name its file).  Each
 * copied graph's own applies are created in the order the VM runs the
 * original's (by id when that respects the dependencies), so effects keep
 * their order.  The caller runs ir_module_finalize afterwards.
 */
#ifndef SPORE_IR_CLONE_H
#define SPORE_IR_CLONE_H

#include "ir/ir.h"

/* Maps a node outside the copied scope to the node the copy should use,
 * or returns NULL to keep it. */
typedef sp_node *(*ir_clone_fv_fn)(void *ctx, const sp_node *n);

/* Copies src (and its scope, see above) into dst as a graph whose parent
 * is `parent` (NULL: top level).  fv may be NULL.  Returns the copy of src
 * (its clone_of is src), or NULL + error (out of memory; a graph of
 * another module with free variables).  The source module must be
 * finalized. */
sp_graph *ir_graph_clone_into(sp_module *dst, const sp_graph *src, sp_graph *parent, ir_clone_fv_fn fv, void *ctx);

/* The copy of src already made in dst as a top-level graph, or NULL.
 * Cannot fail. */
sp_graph *ir_graph_find_clone(const sp_module *dst, const sp_graph *src);

/* Lifting: answers whether tensor constant v is a weight -- its index
 * (0, 1, ... in the order weights are first met; an index met before may
 * repeat), -1 when it is not, -2 on an error (the callback set it). */
typedef int (*ir_lift_weight_fn)(void *ctx, const sp_value *v);

/* Makes `name` in dst: a top-level graph taking (arg0..arg{nargs-1},
 * weight0..weight{k-1}) that calls a copy of `fn` (a graph, partial, or
 * any value reaching graphs through constants, across modules) on the args,
 * where every tensor constant that `weight` names is replaced by that
 * weight parameter.  Every graph fn reaches is copied once, nested under
 * the new graph, so the copies capture the weights as free variables (what
 * spore.grad's `weights` and in-place updates need: the weights become
 * run-time inputs instead of constants).  *n_weights = k.  The caller
 * registers the graph as a global if it wants and runs
 * ir_module_finalize.  NULL + error on failure.  Limitation: a graph whose
 * gradient rule is a user `f_bprop` companion loses it in the copy. */
sp_graph *ir_lift(sp_module *dst, const char *name, sp_value *fn, int nargs, ir_lift_weight_fn weight, void *wctx,
                  int *n_weights);

#endif
