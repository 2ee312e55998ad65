/*
 * beta.c -- calls of partial applications become direct calls.
 *
 *   %3 = builtin.partial(@f, %1)
 *   %4 = %3(%2)                     ->  %4 = @f(%1, %2)
 *   %5 = partial(@f, 1)(%2)          ->  %5 = @f(1, %2)     (a constant partial)
 *
 * The callee must be known: a constant, or itself a partial application
 * (partial(partial(f, a), b)(c) takes two steps to f(a, b, c)).  Keyword
 * arguments bind by name wherever they sit, so bound and new arguments
 * simply concatenate, as the VM's partial call does.  Once direct, the
 * call of a graph is inline's to take.
 *
 * The call node is rewritten in place: it keeps its id (the VM's source
 * order) and every user.  Order of effects: the VM evaluated the partial
 * (and so its bound arguments) as the callee, before the call's own
 * arguments; the bound arguments now come first among the inputs, before
 * the same arguments, so nothing is reordered.  The bound arguments are
 * visible at the call: the partial node was, so its inputs are.
 */
#include <stdlib.h>

#include "compiler/passes/passes.h"

static const int builtin_arity[] = {
#define SP_BUILTIN(ID, name, n) n,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

/* Nonzero when calling constant callee f with these inputs breaks an
 * arity the verifier checks statically: the call stays indirect and the
 * VM reports the error at run time, where the program put it. */
static int arity_mismatch(const sp_node *f, sp_node *const *args, int nargs) {
    if (f->kind != SP_NODE_CONST || !f->value) return 0;
    const sp_value *v = f->value;
    if (v->kind == SP_V_BUILTIN)
        return v->u.builtin >= 0 && v->u.builtin < PB_COUNT && builtin_arity[v->u.builtin] >= 0 &&
               builtin_arity[v->u.builtin] != nargs;
    if (v->kind != SP_V_GRAPH) return 0;
    const sp_graph *h = v->u.graph;
    int kw = 0, required = 0;
    for (int i = 0; i < nargs; i++)
        kw += pass_is_call(args[i], PB_MAKE_KEYWORD) ||
              (args[i]->kind == SP_NODE_CONST && args[i]->value && args[i]->value->kind == SP_V_KEYWORD);
    for (int i = 0; i < h->n_params - (h->has_varargs ? 1 : 0); i++) required += !(h->defaults && h->defaults[i]);
    if (!h->has_varargs && nargs - kw > h->n_params) return 1;
    return kw == 0 && nargs < required;
}

static int known_fn(const sp_node *f) {
    return f->kind == SP_NODE_CONST || pass_is_call(f, PB_PARTIAL);
}

/* One step on call n; 1 when it changed, 0 when not, -1 on error. */
static int beta_step(sp_node *n) {
    sp_node *f = n->inputs[0];
    sp_graph *g = n->graph;
    int nb, nargs = n->n_inputs - 1;
    sp_node **in;
    if (pass_is_call(f, PB_PARTIAL) && f->n_inputs >= 2 && known_fn(f->inputs[1])) {
        nb = f->n_inputs - 2;
        in = ir_alloc(g->module, sizeof *in * (size_t)(1 + nb + nargs));
        if (!in) return -1;
        for (int i = 0; i < nb + 1; i++) in[i] = f->inputs[i + 1];
    } else if (f->kind == SP_NODE_CONST && f->value && f->value->kind == SP_V_PARTIAL) {
        const sp_value *p = f->value;
        nb = p->u.partial.n;
        in = ir_alloc(g->module, sizeof *in * (size_t)(1 + nb + nargs));
        if (!in) return -1;
        for (int i = 0; i < nb + 1; i++) {
            sp_value *v = i ? p->u.partial.args[i - 1] : p->u.partial.fn;
            if (!(in[i] = ir_const_new(g, v, f->loc))) return -1;
        }
    } else {
        return 0;
    }
    for (int i = 0; i < nargs; i++) in[1 + nb + i] = n->inputs[1 + i];
    if (arity_mismatch(in[0], in + 1, nb + nargs)) return 0;
    n->inputs = in;
    n->n_inputs = 1 + nb + nargs;
    return 1;
}

sp_status pass_beta(sp_module *m, int *changed) {
    for (int gi = 0; gi < m->n_graphs; gi++) {
        int n = 0;
        sp_node **nodes = ir_graph_nodes(m->graphs[gi], &n);
        if (!nodes) return sp_last_status();
        for (int i = 0; i < n; i++) {
            if (nodes[i]->kind != SP_NODE_APPLY) continue;
            for (int r, steps = 0; steps < 64 && (r = beta_step(nodes[i])) != 0; steps++) {
                if (r < 0) {
                    free(nodes);
                    return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
                }
                *changed = 1;
            }
        }
        free(nodes);
    }
    return SP_OK;
}
