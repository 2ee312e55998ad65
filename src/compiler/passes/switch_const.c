/*
 * switch_const.c -- `switch` on a condition known at compile time becomes
 * the branch it picks.
 *
 *   %5 = builtin.switch(True, @f.if_true, @f.if_false)      uses of %5
 *   %6 = %5()                                    ->  %6 = @f.if_true()
 *
 * after which inline can splice the branch's body into the caller.  The
 * condition must be a constant whose Python truth is defined (a tensor of
 * several elements has none: the run-time error stays).  A switch
 * evaluates both of its value operands, so the branch not taken may only
 * disappear when it is pure (graph constants always are; an impure apply
 * passed as a value keeps the switch).  A condition that is not constant
 * keeps the switch even when both branches are the same node: its truth
 * may be an error (an undefined variable, a tensor of several elements)
 * that the program must still report.
 */
#include <stdlib.h>

#include "compiler/passes/passes.h"

sp_status pass_switch_const(sp_module *m, int *changed) {
    pass_users *u = pass_users_new(m);
    if (!u) return sp_last_status();
    sp_status st = SP_OK;
    for (int gi = 0; gi < m->n_graphs && !st; gi++) {
        int n = 0;
        sp_node **nodes = ir_graph_nodes(m->graphs[gi], &n);
        if (!nodes) {
            st = sp_last_status();
            break;
        }
        for (int i = 0; i < n && !st; i++) {
            sp_node *s = nodes[i];
            if (!pass_is_call(s, PB_SWITCH) || s->n_inputs != 4) continue;
            sp_node *c = s->inputs[1], *a = s->inputs[2], *b = s->inputs[3];
            sp_node *pick = NULL;
            if (c->kind == SP_NODE_CONST) {
                int t = sp_value_truth(c->value);
                if (t < 0) {
                    sp_clear_error(); /* no truth value: the VM reports it at run time */
                    continue;
                }
                pick = t ? a : b;
                if (!pass_cone_is_pure(t ? b : a)) pick = NULL;
            }
            if (!pick) continue;
            st = pass_users_replace(u, s, pick);
            *changed = 1;
        }
        free(nodes);
    }
    pass_users_free(u);
    return st;
}
