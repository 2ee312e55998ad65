/*
 * passes.h -- what the optimization passes share: their entry points (the
 * table passes.def lists them), the builtin ids, a def-use index of a
 * module, and small predicates on nodes.
 *
 * The IR keeps no user lists: a node knows its inputs, not who reads it,
 * and a graph's nodes are exactly those reachable from its output (the
 * printer and the VM walk from there; an unreachable node is dead already,
 * with nothing to free, since the arena owns it).  A pass that replaces a
 * node therefore needs the uses of every node of the module at once: the
 * inputs of live applies, graph outputs, and uses by nested graphs (free
 * variables).  pass_users_new computes that index by walking every graph
 * from its output; pass_users_replace rewrites every use of one node to
 * another and keeps the index true, so a pass can make many rewrites on
 * one index.  Nodes a pass creates have no uses in the index until a
 * replace (or pass_users_add) records them.
 *
 * The index describes the module when it was built: a pass that edits
 * inputs directly (not through pass_users_replace) or clones graphs must
 * rebuild it before trusting it again.
 *
 * Purity (ir_node_is_pure, pass.c) decides what a pass may delete,
 * duplicate or move; see pass.h for the effect threading it protects.
 */
#ifndef SPORE_COMPILER_PASSES_H
#define SPORE_COMPILER_PASSES_H

#include "compiler/pass.h"

/* The builtins of builtins.def by id (the value of an SP_V_BUILTIN). */
enum pass_builtin {
#define SP_BUILTIN(ID, name, n) PB_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
    PB_COUNT
};

/* ---- the passes (one file each; rows of passes.def) ---------------------- */
#define SP_PASS(name, fn) sp_status fn(sp_module *m, int *changed);
#include "compiler/passes/passes.def"
#undef SP_PASS

/* ---- def-use index (users.c) ------------------------------------------- */

/* One use of a node: input `index` of apply `user`, or (user NULL) the
 * output of `graph`. */
typedef struct pass_use {
    sp_node *user;
    int index;
    sp_graph *graph; /* the graph owning the use (user->graph, or whose output it is) */
} pass_use;

typedef struct pass_users pass_users;

/* The uses of every live node of m (m finalized).  NULL + error on
 * failure; free with pass_users_free. */
pass_users *pass_users_new(sp_module *m);
void pass_users_free(pass_users *u); /* NULL is fine */
/* The uses of n (borrowed, valid until the next change to the index); *n_uses
 * is 0 for a node nothing live uses.  Cannot fail. */
const pass_use *pass_users_of(const pass_users *u, const sp_node *n, int *n_uses);
/* Records that input `index` of apply `user` (or, user NULL, the output of
 * graph) uses n.  SP_OK or SP_ERR_NOMEM. */
sp_status pass_users_add(pass_users *u, sp_node *n, sp_node *user, int index, sp_graph *graph);
/* Every use of `from` becomes a use of `to` (inputs and graph outputs
 * rewritten); `to` must be visible wherever `from` is used (a constant, or
 * owned by a graph enclosing every user).  SP_OK or SP_ERR_NOMEM. */
sp_status pass_users_replace(pass_users *u, sp_node *from, sp_node *to);

/* ---- purity and order ----------------------------------------------------- */

/* Nonzero when n and every apply of its own graph that evaluating n
 * evaluates first (its inputs, transitively, and the captures of graph
 * constants it uses) are pure (pass.c).  This, not ir_node_is_pure, is
 * the test for *dropping* a node from an effect tuple, a switch or a call's
 * arguments: a pure node can still be the first to reach an impure one
 * (tuple_getitem(make_tuple(print(..), x), 1) is pure, its cone is not),
 * and dropping it would move or lose that effect.  Cannot fail (0 when
 * out of memory). */
int pass_cone_is_pure(const sp_node *n);

/* The free-variable lists a pass reads at its start: ir_module_finalize(m),
 * skipped when the driver (sp_passes_run) has just finalized m and nothing
 * has run since.  Only a pass's first call may use this; a pass that
 * rewrites and then needs fresh lists calls ir_module_finalize. */
sp_status pass_finalize_at_start(sp_module *m);

/* The own applies of g in the order the VM runs them (runtime/vm.c): by
 * node id when that order respects every dependency (the front end numbers
 * nodes in source order, and effects rely on it), otherwise dependency
 * order (ir_graph_nodes).  Passes that create applies must keep ids in an
 * order the VM accepts: new nodes replacing an old one take its place
 * (mutate it in place, or renumber as inline does).  A malloc'd array the
 * caller frees; NULL + error on failure (users.c). */
sp_node **pass_graph_order(const sp_graph *g, int *n);

/* ---- predicates (users.c) ------------------------------------------------ */

/* Nonzero when n is a constant holding builtin `id`. */
int pass_is_builtin(const sp_node *n, int id);
/* Nonzero when n is an apply whose callee is the constant builtin `id`. */
int pass_is_call(const sp_node *n, int id);
/* The graph a constant node names (SP_V_GRAPH), or NULL. */
sp_graph *pass_const_graph(const sp_node *n);
/* Nonzero when g is `outer` or nested (at any depth) inside it. */
int pass_encloses(const sp_graph *outer, const sp_graph *g);

#endif
