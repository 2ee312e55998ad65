/*
 * passes_b.h -- what the local simplification passes share (tuple_simplify,
 * cse, fold, algebra): recognizing calls of primitives in the forms the
 * front end and the gradient rules write them, reading constants, and an
 * order of graphs in which enclosing graphs come first.
 *
 * A primitive reaches the IR in three spellings:
 *   prim.reshape(%x, make_keyword("shape", s))           gradient rules
 *   partial(builtin.api, "ops.reshape")(%x, s)           user code, once
 *                                                        getattr is folded
 *   builtin.api("ops.reshape", %x, s)                    the same, direct
 * pass_opcall_match reads all three into one record: the primitive's name,
 * the positional arguments and the keyword arguments (make_keyword applies
 * whose name is a constant string).  A keyword whose name is not constant
 * makes the call unreadable (it could bind any parameter).
 *
 * Ids and evaluation order.  The VM runs a graph's applies in the order of
 * their ids when that order respects the dependencies (it is the source
 * order the front end created them in, and what orders effects), so these
 * passes never make an apply use an apply of a higher id: they replace a
 * node by one of its own inputs, by an equal node of lower id, or by a
 * constant (constants are not ordered), and never create applies.
 */
#ifndef SPORE_COMPILER_PASSES_B_H
#define SPORE_COMPILER_PASSES_B_H

#include "compiler/passes/passes.h"

#define PASS_OPCALL_MAX 8

typedef struct pass_opcall {
    const char *name; /* the primitive's name in ops.def ("transpose") */
    int is_prim;      /* called as prim.X (attributes only by keyword) */
    int n_pos;
    sp_node *pos[PASS_OPCALL_MAX]; /* positional arguments, in order */
    int pos_at[PASS_OPCALL_MAX];   /* where each is among the apply's inputs */
    int n_kw;
    const char *kw_name[PASS_OPCALL_MAX];
    sp_node *kw_val[PASS_OPCALL_MAX];
} pass_opcall;

/* Fills *c and returns 1 when n is a call of a primitive (prim.X) or of an
 * "ops.X" function of the API, with at most PASS_OPCALL_MAX positional and
 * keyword arguments and every keyword name constant; 0 otherwise.  Cannot
 * fail. */
int pass_opcall_match(const sp_node *n, pass_opcall *c);
/* The argument of c bound to positional index `pos` (-1: keyword only) or
 * to a keyword among `names` (NULL-terminated), or NULL when absent or
 * ambiguous (given both ways). */
sp_node *pass_opcall_arg(const pass_opcall *c, int pos, const char *const *names);

/* The value of a constant node, or NULL for other nodes.  Borrowed. */
const sp_value *pass_const_value(const sp_node *n);
/* 1 and *out when n is a constant Python int (not a bool); 0 otherwise. */
int pass_const_int(const sp_node *n, int64_t *out);
/* The builtin id an apply calls (its callee a builtin constant), or -1. */
int pass_call_builtin(const sp_node *n);

/* The graphs of m with every graph after the graphs enclosing it (stable
 * otherwise): a malloc'd array of m->n_graphs entries, NULL + error on
 * failure.  Rewriting in this order settles a parent's nodes before the
 * nested graphs that use them as free variables. */
sp_graph **pass_graphs_outer_first(const sp_module *m);

#endif
