/*
 * dce.c -- dead code elimination: pure values nobody reads, and graphs
 * nobody can call.
 *
 * In this IR a node nothing reaches from its graph's output is dead
 * already (never printed, never run).  What keeps pure work alive is the
 * front end's effect threading: every call that might have an effect is
 * put into a tuple, `tuple_getitem(make_tuple(e1, ..., x), n)`, so that
 * it runs even when its value is unused.  Once purity analysis knows a
 * call is pure, that slot is dead.  So the node-level half of DCE works
 * on make_tuple nodes all of whose uses are tuple_getitem with a constant
 * index: slots that no getitem reads and whose element is a pure cone
 * (pass_cone_is_pure: nothing it evaluates first has an effect) are
 * dropped, the tuple shrunk in place to what is left (in order, and
 * keeping its id, so the effects still run in the same order) and every
 * getitem renumbered.  A tuple
 * that escapes (returned, passed, indexed by a variable) is left alone.
 *
 * The graph-level half removes graphs no live code can reach: the roots
 * are the graphs named by module globals (every graph of parent NULL when
 * no global names a graph, as in a hand-written IR file), and a live
 * graph makes live every graph a constant of its live nodes names (inside
 * tuples, partials and closures too), its parent (whose nodes its free
 * variables are) and its K transform when one was built.  A removed graph
 * gives back the references its default values held and its free
 * variable list; its nodes stay in the arena until the module dies.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes.h"
#include "ir/ir_internal.h"

/* ---- dead tuple slots ------------------------------------------------------ */

/* The index a getitem use reads (normalized), or -1 when the use is not
 * tuple_getitem(t, constant int in range). */
static int64_t getitem_index(const pass_use *use, int n) {
    sp_node *g = use->user;
    if (!g || use->index != 1 || !pass_is_call(g, PB_TUPLE_GETITEM) || g->n_inputs != 3) return -1;
    sp_node *k = g->inputs[2];
    if (k->kind != SP_NODE_CONST || !k->value || k->value->kind != SP_V_INT) return -1;
    int64_t i = k->value->u.i;
    if (i < 0) i += n;
    return i >= 0 && i < n ? i : -1;
}

static sp_status prune_tuple(pass_users *u, sp_node *t, int *changed) {
    int n = t->n_inputs - 1, nu = 0;
    const pass_use *uses0 = pass_users_of(u, t, &nu);
    if (n < 1 || nu < 1) return SP_OK;
    char *read = calloc((size_t)n, 1);
    int *newpos = malloc(sizeof *newpos * (size_t)n);
    sp_node **in = malloc(sizeof *in * (size_t)(n + 1));
    /* a copy: recording the new index constants below may move the index */
    pass_use *uses = malloc(sizeof *uses * (size_t)nu);
    sp_status st = SP_OK;
    if (uses) memcpy(uses, uses0, sizeof *uses * (size_t)nu);
    if (!read || !newpos || !in || !uses) {
        st = sp_error(SP_ERR_NOMEM, "dce: out of memory");
        goto done;
    }
    for (int i = 0; i < nu; i++) {
        int64_t k = getitem_index(&uses[i], n);
        if (k < 0) goto done; /* the tuple escapes */
        read[k] = 1;
    }
    int kept = 0;
    in[0] = t->inputs[0];
    for (int i = 0; i < n; i++) {
        newpos[i] = -1;
        if (read[i] || !pass_cone_is_pure(t->inputs[i + 1])) {
            newpos[i] = kept;
            in[1 + kept++] = t->inputs[i + 1];
        }
    }
    if (kept == n) goto done;
    /* in place: the tuple keeps its id, so the VM's source order holds */
    memcpy(t->inputs, in, sizeof *in * (size_t)(kept + 1));
    t->n_inputs = kept + 1;
    /* renumber the getitems */
    for (int i = 0; i < nu && !st; i++) {
        sp_node *g = uses[i].user;
        int64_t k = getitem_index(&uses[i], n);
        sp_value *v = sp_value_int(newpos[k]);
        sp_node *c = v ? ir_const_new(g->graph, v, g->inputs[2]->loc) : NULL;
        sp_value_release(v);
        if (!c) {
            st = sp_last_status();
            break;
        }
        g->inputs[2] = c;
        st = pass_users_add(u, c, g, 2, g->graph);
    }
    *changed = 1;
done:
    free(read);
    free(newpos);
    free(in);
    free(uses);
    return st;
}

static sp_status prune_tuples(sp_module *m, int *changed) {
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
        for (int i = 0; i < n && !st; i++)
            if (pass_is_call(nodes[i], PB_MAKE_TUPLE)) st = prune_tuple(u, nodes[i], changed);
        free(nodes);
    }
    pass_users_free(u);
    return st;
}

/* ---- dead graphs ------------------------------------------------------------ */

typedef struct live_ctx {
    ir_map live; /* graph -> 1 */
    sp_graph **stack;
    int n, cap;
    int failed;
} live_ctx;

static int mark(void *ctx, sp_graph *g) {
    live_ctx *c = ctx;
    for (; g && !ir_map_get(&c->live, IR_PKEY(g)); g = g->parent) {
        if (ir_map_put(&c->live, IR_PKEY(g), (void *)1)) return c->failed = 1;
        if (c->n == c->cap) {
            int cap = c->cap ? c->cap * 2 : 64;
            sp_graph **s = realloc(c->stack, sizeof *s * (size_t)cap);
            if (!s) {
                sp_error(SP_ERR_NOMEM, "dce: out of memory");
                return c->failed = 1;
            }
            c->stack = s;
            c->cap = cap;
        }
        c->stack[c->n++] = g;
    }
    return 0;
}

/* Marks the graphs a value names, closures' graphs included. */
static int mark_value(live_ctx *c, const sp_value *v, int depth) {
    if (!v || depth > 64) return 0;
    if (v->kind == SP_V_CLOSURE) {
        if (mark(c, v->u.closure.graph)) return 1;
        for (int i = 0; i < v->u.closure.n; i++)
            if (mark_value(c, v->u.closure.fv[i], depth + 1)) return 1;
        return 0;
    }
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) {
        for (int i = 0; i < v->u.seq.n; i++)
            if (mark_value(c, v->u.seq.items[i], depth + 1)) return 1;
        return 0;
    }
    if (v->kind == SP_V_PARTIAL) {
        if (mark_value(c, v->u.partial.fn, depth + 1)) return 1;
        for (int i = 0; i < v->u.partial.n; i++)
            if (mark_value(c, v->u.partial.args[i], depth + 1)) return 1;
        return 0;
    }
    if (v->kind == SP_V_KEYWORD) return mark_value(c, v->u.kw.value, depth + 1);
    return ir_value_graphs(v, mark, c);
}

static sp_status drop_graphs(sp_module *m, int *changed) {
    live_ctx c;
    memset(&c, 0, sizeof c);
    int named = 0;
    for (int i = 0; i < m->n_globals; i++) {
        int before = c.n;
        mark_value(&c, m->global_values[i], 0);
        named |= c.n > before;
    }
    for (int i = 0; i < m->n_graphs && !named; i++)
        if (!m->graphs[i]->parent) mark(&c, m->graphs[i]);
    sp_status st = SP_OK;
    while (c.n > 0 && !c.failed) {
        sp_graph *g = c.stack[--c.n];
        if (g->k_graph) mark(&c, g->k_graph);
        for (int j = 0; j < g->n_params && g->defaults; j++) mark_value(&c, g->defaults[j], 0);
        int n = 0;
        sp_node **nodes = ir_graph_nodes(g, &n);
        if (!nodes) {
            st = sp_last_status();
            break;
        }
        for (int i = 0; i < n; i++) {
            sp_node *x = nodes[i];
            for (int k = 0; x->kind == SP_NODE_APPLY && k < x->n_inputs; k++)
                if (x->inputs[k]->kind == SP_NODE_CONST) mark_value(&c, x->inputs[k]->value, 0);
        }
        if (g->output && g->output->kind == SP_NODE_CONST) mark_value(&c, g->output->value, 0);
        free(nodes);
    }
    if (c.failed && !st) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    if (!st) {
        int k = 0;
        for (int i = 0; i < m->n_graphs; i++) {
            sp_graph *g = m->graphs[i];
            if (ir_map_get(&c.live, IR_PKEY(g))) {
                m->graphs[k++] = g;
                g->id = k;
                continue;
            }
            for (int j = 0; j < g->n_params && g->defaults; j++) {
                sp_value_release(g->defaults[j]);
                g->defaults[j] = NULL;
            }
            free(g->fv);
            g->fv = NULL;
            g->n_fv = 0;
        }
        if (k != m->n_graphs) *changed = 1;
        m->n_graphs = k;
    }
    ir_map_free(&c.live);
    free(c.stack);
    return st;
}

sp_status pass_dce(sp_module *m, int *changed) {
    sp_status st = prune_tuples(m, changed);
    if (!st) st = drop_graphs(m, changed);
    return st;
}
