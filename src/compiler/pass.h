/*
 * pass.h -- graph-to-graph optimization passes over the IR.
 *
 * A pass rewrites a module in place and says whether it changed anything,
 * so a driver can run a list of passes to a fixed point.  Passes work on
 * the IR alone (src/ir): they are tested as IR text in, IR text out
 * (tests/compiler), and `spore ir --passes a,b,c FILE` prints the result.
 *
 * Effects.  The front end threads effects (print, assert, raise, random
 * draws, calls of functions that may do any of these) into the data flow:
 * an effect is kept alive by `tuple_getitem(make_tuple(e1, ..., x), n)`.
 * A pass may delete or duplicate only nodes that are pure
 * (ir_node_is_pure); simplifying such a tuple_getitem must keep its impure
 * siblings reachable, in order.
 *
 * After a pass, ir_module_finalize is rerun by the driver (free variables
 * change when graphs are inlined) and, in debug builds, sp_module_verify.
 */
#ifndef SPORE_COMPILER_PASS_H
#define SPORE_COMPILER_PASS_H

#include "ir/ir.h"

/* Rewrites m; sets *changed to 1 when it changed something (untouched
 * otherwise).  Returns SP_OK or an error (the module is then unusable). */
typedef sp_status (*sp_pass_fn)(sp_module *m, int *changed);

typedef struct sp_pass {
    const char *name; /* "inline", "dce", ... */
    sp_pass_fn run;
} sp_pass;

/* The pass called `name`, or NULL (and an error listing the known names). */
const sp_pass *sp_pass_find(const char *name);
/* Runs the comma-separated passes in order, the whole list repeated until
 * nothing changes (at most max_rounds times), finalizing after each pass. */
sp_status sp_passes_run(sp_module *m, const char *list, int max_rounds);

/* Nonzero when evaluating n has no effect beyond its value, so it may be
 * removed when unused or computed once for equal inputs. */
int ir_node_is_pure(const sp_node *n);

#endif
