/*
 * users.c -- the def-use index the passes share, and small predicates on
 * nodes.
 *
 * The index maps each node to the list of its uses (an input slot of a
 * live apply, or a graph's output).  "Live" is the IR's own notion: the
 * nodes reachable from a graph's output, where a constant naming a graph
 * h counts h's free variables as inputs (ir_walk with the graph's fv
 * lists), so a node that only a nested closure reads is still found and
 * its own inputs recorded.  Every graph of the module is walked, dead ones
 * too; a pass that cares whether a user is live asks about its graph.
 *
 * Lists are malloc'd arrays indexed through an ir_map from node to slot,
 * so a replace moves one list onto another without touching the rest.
 * The map never shrinks during a pass: an entry whose list is empty means
 * "no uses".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes.h"
#include "ir/ir_internal.h"

typedef struct use_list {
    pass_use *uses;
    int n, cap;
} use_list;

struct pass_users {
    sp_module *m;
    ir_map slot; /* node -> slot index + 1 */
    use_list *lists;
    int n_lists, cap_lists;
    sp_graph *g; /* the graph being walked */
};

static use_list *list_of(pass_users *u, const sp_node *n, int create) {
    uintptr_t s = (uintptr_t)ir_map_get(&u->slot, IR_PKEY(n));
    if (s) return &u->lists[s - 1];
    if (!create) return NULL;
    if (u->n_lists == u->cap_lists) {
        int cap = u->cap_lists ? u->cap_lists * 2 : 256;
        use_list *l = realloc(u->lists, sizeof *l * (size_t)cap);
        if (!l) {
            sp_error(SP_ERR_NOMEM, "passes: out of memory indexing uses");
            return NULL;
        }
        u->lists = l;
        u->cap_lists = cap;
    }
    if (ir_map_put(&u->slot, IR_PKEY(n), (void *)(uintptr_t)(u->n_lists + 1))) return NULL;
    use_list *l = &u->lists[u->n_lists++];
    memset(l, 0, sizeof *l);
    return l;
}

static sp_status list_push(use_list *l, pass_use use) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        pass_use *p = realloc(l->uses, sizeof *p * (size_t)cap);
        if (!p) return sp_error(SP_ERR_NOMEM, "passes: out of memory indexing uses");
        l->uses = p;
        l->cap = cap;
    }
    l->uses[l->n++] = use;
    return SP_OK;
}

sp_status pass_users_add(pass_users *u, sp_node *n, sp_node *user, int index, sp_graph *graph) {
    use_list *l = list_of(u, n, 1);
    if (!l) return SP_ERR_NOMEM;
    pass_use use = {user, index, graph};
    return list_push(l, use);
}

static int users_on_node(void *ctx, sp_node *n) {
    pass_users *u = ctx;
    if (n->kind != SP_NODE_APPLY) return 0;
    for (int i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] && pass_users_add(u, n->inputs[i], n, i, u->g)) return SP_ERR_NOMEM;
    return 0;
}

static sp_node **users_graph_fv(void *ctx, const sp_graph *h, int *n) {
    (void)ctx;
    *n = h->n_fv;
    return h->fv;
}

pass_users *pass_users_new(sp_module *m) {
    pass_users *u = calloc(1, sizeof *u);
    if (!u) {
        sp_error(SP_ERR_NOMEM, "passes: out of memory indexing uses");
        return NULL;
    }
    u->m = m;
    for (int i = 0; i < m->n_graphs; i++) {
        sp_graph *g = m->graphs[i];
        if (!g->output) continue;
        ir_walk w;
        ir_walk_init(&w, g, u);
        w.on_node = users_on_node;
        w.graph_fv = users_graph_fv;
        u->g = g;
        int st = ir_walk_from(&w, g->output);
        ir_walk_free(&w);
        if (st || pass_users_add(u, g->output, NULL, 0, g)) {
            pass_users_free(u);
            return NULL;
        }
    }
    return u;
}

void pass_users_free(pass_users *u) {
    if (!u) return;
    for (int i = 0; i < u->n_lists; i++) free(u->lists[i].uses);
    free(u->lists);
    ir_map_free(&u->slot);
    free(u);
}

const pass_use *pass_users_of(const pass_users *u, const sp_node *n, int *n_uses) {
    uintptr_t s = (uintptr_t)ir_map_get(&u->slot, IR_PKEY(n));
    if (!s) {
        *n_uses = 0;
        return NULL;
    }
    *n_uses = u->lists[s - 1].n;
    return u->lists[s - 1].uses;
}

sp_status pass_users_replace(pass_users *u, sp_node *from, sp_node *to) {
    if (from == to) return SP_OK;
    use_list *lf = list_of(u, from, 0);
    if (!lf || lf->n == 0) return SP_OK;
    if (!list_of(u, to, 1)) return SP_ERR_NOMEM;
    lf = list_of(u, from, 0); /* the table may have moved */
    for (int i = 0; i < lf->n; i++) {
        pass_use use = lf->uses[i];
        if (use.user)
            use.user->inputs[use.index] = to;
        else
            use.graph->output = to;
        if (list_push(list_of(u, to, 0), use)) return SP_ERR_NOMEM;
    }
    lf->n = 0;
    return SP_OK;
}

/* ---- predicates ---------------------------------------------------------- */

int pass_is_builtin(const sp_node *n, int id) {
    return n && n->kind == SP_NODE_CONST && n->value && n->value->kind == SP_V_BUILTIN &&
           n->value->u.builtin == id;
}

int pass_is_call(const sp_node *n, int id) {
    return n && n->kind == SP_NODE_APPLY && n->n_inputs >= 1 && pass_is_builtin(n->inputs[0], id);
}

sp_graph *pass_const_graph(const sp_node *n) {
    if (!n || n->kind != SP_NODE_CONST || !n->value || n->value->kind != SP_V_GRAPH) return NULL;
    return n->value->u.graph;
}

int pass_encloses(const sp_graph *outer, const sp_graph *g) {
    for (; g; g = g->parent)
        if (g == outer) return 1;
    return 0;
}

/* ---- the VM's order -------------------------------------------------------- */

static int by_id(const void *a, const void *b) {
    int x = (*(sp_node *const *)a)->id, y = (*(sp_node *const *)b)->id;
    return (x > y) - (x < y);
}

/* Nonzero when dependency x of a node at position i (in `pos`: node ->
 * position + 1) comes later. */
static int later(const ir_map *pos, const sp_node *x, int i) {
    uintptr_t p = (uintptr_t)ir_map_get(pos, IR_PKEY(x));
    return p && (int)p - 1 >= i;
}

sp_node **pass_graph_order(const sp_graph *g, int *n_out) {
    int n = 0;
    sp_node **dfs = ir_graph_nodes(g, &n);
    *n_out = 0;
    if (!dfs) return NULL;
    sp_node **sorted = malloc(sizeof *sorted * (size_t)(n + 1));
    if (!sorted) {
        free(dfs);
        sp_error(SP_ERR_NOMEM, "passes: out of memory ordering @%s", g->name);
        return NULL;
    }
    memcpy(sorted, dfs, sizeof *sorted * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, by_id);
    ir_map pos;
    memset(&pos, 0, sizeof pos);
    int ok = n < 2 || sorted[n - 1] == dfs[n - 1]; /* the output stays last */
    for (int i = 0; i < n && ok; i++)
        if (ir_map_put(&pos, IR_PKEY(sorted[i]), (void *)(uintptr_t)(i + 1))) ok = 0;
    for (int i = 0; i < n && ok; i++) {
        sp_node *x = sorted[i];
        for (int k = 0; ok && x->kind == SP_NODE_APPLY && k < x->n_inputs; k++) {
            sp_node *y = x->inputs[k];
            sp_graph *h = pass_const_graph(y);
            if (h)
                for (int j = 0; j < h->n_fv && ok; j++) ok = !later(&pos, h->fv[j], i);
            else
                ok = !later(&pos, y, i);
        }
    }
    ir_map_free(&pos);
    if (ok) {
        free(dfs);
        *n_out = n;
        return sorted;
    }
    free(sorted);
    *n_out = n;
    return dfs;
}
