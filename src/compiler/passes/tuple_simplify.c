/*
 * tuple_simplify.c -- tuple_getitem(make_tuple(a, b, c), 1) -> b.
 *
 * The front end builds tuples for `return a, b` / unpacking, and it threads
 * effects through them: `tuple_getitem(make_tuple(print(..), f(x), x), 2)`
 * is "x, once the print and the call have run, in that order".  Taking b
 * out of make_tuple(a, b, c) is only sound when nothing but values is lost:
 * an element may go when evaluating it -- and everything of this graph it
 * needs, including the nodes a graph constant's closure captures -- is
 * pure (a *pure tree*).  Then:
 *
 *   every other element is a pure tree  -> the getitem becomes the element;
 *   some are not, the tuple has no other user
 *                                       -> the tuple loses its pure-tree
 *                                          elements in place (the effects
 *                                          keep their order) and the index
 *                                          follows the chosen element.
 *
 * A tuple owned by an enclosing graph is only read through (first case):
 * shrinking it would change what the enclosing graph evaluates.  A node of
 * an enclosing graph counts as a pure tree only when that graph's walk
 * found it to be one (graphs are visited outer first), since a use from a
 * nested graph may be what keeps an effect of the enclosing graph alive.
 *
 * Both tuple_getitem and getitem (Python's t[1]) with a constant int index,
 * negative ones included, are handled; out-of-range indices are left for
 * the VM to report.  The in-place edits change input positions, so they are
 * made after every rewrite through the def-use index, which is then
 * dropped.
 */
#include <stdlib.h>

#include "compiler/passes/passes_b.h"
#include "ir/ir_internal.h"

#define PT_PURE ((void *)1)
#define PT_IMPURE ((void *)2)

typedef struct ts_ctx {
    ir_map pt; /* node -> PT_PURE / PT_IMPURE */
    int ok;    /* for the graph callback */
} ts_ctx;

static int node_pt(ts_ctx *c, const sp_node *x);

static int fv_pt(void *ctx, sp_graph *h) {
    ts_ctx *c = ctx;
    for (int i = 0; i < h->n_fv; i++)
        if (!node_pt(c, h->fv[i])) return 1; /* stop: not pure */
    return 0;
}

/* Whether dropping this use of x loses no effect. */
static int node_pt(ts_ctx *c, const sp_node *x) {
    if (!x) return 0;
    switch (x->kind) {
    case SP_NODE_PARAM: return 1;
    case SP_NODE_CONST: return x->value ? !ir_value_graphs(x->value, fv_pt, c) : 1;
    default: return ir_map_get(&c->pt, IR_PKEY(x)) == PT_PURE;
    }
}

/* Marks the nodes of g (in dependency order) as pure trees or not. */
static sp_status mark_graph(ts_ctx *c, const sp_graph *g) {
    int n = 0;
    sp_node **order = ir_graph_nodes(g, &n);
    if (!order) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_status st = SP_OK;
    for (int i = 0; i < n && !st; i++) {
        sp_node *x = order[i];
        int pure = x->kind == SP_NODE_APPLY && ir_node_is_pure(x);
        for (int k = 0; pure && k < x->n_inputs; k++) pure = node_pt(c, x->inputs[k]);
        st = ir_map_put(&c->pt, IR_PKEY(x), pure ? PT_PURE : PT_IMPURE);
    }
    free(order);
    return st;
}

/* A pending in-place shrink of tuple t read by getitem user at element k. */
typedef struct ts_shrink {
    sp_node *t, *user;
    int k;
} ts_shrink;

/* Rewrites `user` = getitem(t, index) when t is a make_tuple.  Appends an
 * in-place shrink to *sh when that is the rewrite. */
static sp_status simplify_one(ts_ctx *c, pass_users *u, sp_node *user, ts_shrink **sh, int *n_sh,
                              int *cap_sh, int *changed) {
    int b = pass_call_builtin(user);
    if ((b != PB_TUPLE_GETITEM && b != PB_GETITEM) || user->n_inputs != 3) return SP_OK;
    sp_node *t = user->inputs[1];
    int64_t k;
    if (!pass_is_call(t, PB_MAKE_TUPLE) || !pass_const_int(user->inputs[2], &k)) return SP_OK;
    int len = t->n_inputs - 1;
    if (k < 0) k += len;
    if (k < 0 || k >= len) return SP_OK;
    int n_keep = 0;
    for (int i = 0; i < len; i++)
        if (i != k && !node_pt(c, t->inputs[1 + i])) n_keep++;
    if (n_keep == 0) {
        *changed = 1;
        return pass_users_replace(u, user, t->inputs[1 + k]);
    }
    if (n_keep + 1 == len || t->graph != user->graph) return SP_OK;
    int n_uses = 0;
    const pass_use *uses = pass_users_of(u, t, &n_uses);
    if (n_uses != 1 || uses[0].user != user) return SP_OK;
    if (*n_sh == *cap_sh) {
        int cap = *cap_sh ? *cap_sh * 2 : 16;
        ts_shrink *p = realloc(*sh, sizeof *p * (size_t)cap);
        if (!p) return sp_error(SP_ERR_NOMEM, "tuple_simplify: out of memory");
        *sh = p;
        *cap_sh = cap;
    }
    (*sh)[(*n_sh)++] = (ts_shrink){t, user, (int)k};
    return SP_OK;
}

/* Drops the pure-tree elements of s->t other than the chosen one, in
 * place, and points the getitem at the chosen element's new position. */
static sp_status shrink(ts_ctx *c, const ts_shrink *s, int *changed) {
    sp_node *t = s->t;
    int len = t->n_inputs - 1, j = 1, new_k = -1;
    for (int i = 0; i < len; i++) {
        sp_node *e = t->inputs[1 + i];
        if (i != s->k && node_pt(c, e)) continue;
        if (i == s->k) new_k = j - 1;
        t->inputs[j++] = e;
    }
    if (j == t->n_inputs) return SP_OK;
    sp_value *iv = sp_value_int(new_k);
    sp_node *ic = iv ? ir_const_new(s->user->graph, iv, s->user->inputs[2]->loc) : NULL;
    sp_value_release(iv);
    if (!ic) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    t->n_inputs = j;
    s->user->inputs[2] = ic;
    *changed = 1;
    return SP_OK;
}

sp_status pass_tuple_simplify(sp_module *m, int *changed) {
    sp_status st = pass_finalize_at_start(m);
    if (st) return st;
    ts_ctx c = {0};
    pass_users *u = NULL;
    ts_shrink *sh = NULL;
    int n_sh = 0, cap_sh = 0;
    sp_graph **graphs = pass_graphs_outer_first(m);
    if (!graphs) return SP_ERR_NOMEM;
    for (int i = 0; i < m->n_graphs && !st; i++)
        if (graphs[i]->output) st = mark_graph(&c, graphs[i]);
    if (!st && !(u = pass_users_new(m))) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    for (int i = 0; i < m->n_graphs && !st; i++) {
        sp_graph *g = graphs[i];
        if (!g->output) continue;
        int n = 0;
        sp_node **order = ir_graph_nodes(g, &n);
        if (!order) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            break;
        }
        for (int k = 0; k < n && !st; k++) st = simplify_one(&c, u, order[k], &sh, &n_sh, &cap_sh, changed);
        free(order);
    }
    /* the index is stale from here on: shrinks move input positions */
    pass_users_free(u);
    for (int i = 0; i < n_sh && !st; i++) st = shrink(&c, &sh[i], changed);
    free(sh);
    free(graphs);
    ir_map_free(&c.pt);
    return st;
}
