/*
 * inline.c -- a call of a constant graph becomes a copy of the graph's
 * body in the caller.
 *
 *   graph @main() { %1 = @sq(3)  return %1 }       graph @main() {
 *   graph @sq(%2 x) { %3 = builtin.mul(%2, %2) ->    %4 = builtin.mul(3, 3)
 *                     return %3 }                     return %4 }
 *
 * What may be inlined.  The callee g is a constant graph that is not
 * recursive (no chain of graph references leads from g back to g: loops
 * are tail-recursive graphs and stay calls); its free variables are
 * visible at the call site (owned by the caller or a graph enclosing it),
 * which always holds for a global function and for a closure defined in
 * an enclosing scope; the call passes exactly its positional parameters
 * (missing ones with constant defaults are filled in; *args and keyword
 * arguments keep the call).  Every argument must be a pure cone
 * (pass_cone_is_pure): the VM evaluates arguments before the body, and
 * once inlined the body's nodes would interleave with them, so an
 * argument that reaches an effect could run after an effect of the body,
 * or not at all if the body never reads it.  The body's own effects keep their order: the copy is
 * reachable only through the node that replaces the call, at the call's
 * place in the caller's evaluation order.
 *
 * The copy.  The body is g's live nodes (ir_graph_nodes); graphs nested in
 * g that the body refers to (its closures, branches and loops: g's
 * "family") are copied as new graphs nested in the caller, with every
 * reference to a family graph redirected to its copy, since their free
 * variables are nodes of g that now live in the caller.  Parameters of g
 * map to the arguments; free variables stay as they are; constants are
 * shared unless they name a family graph.  Before anything is built the
 * whole copy is checked (every node a copied node uses is either copied,
 * a parameter mapped, a constant or outside the family), so a call that
 * cannot be inlined leaves no garbage behind.
 *
 * One pass inlines each call site it saw at the start at most once and
 * skips callees whose family it already changed (their free-variable
 * lists are stale until the driver finalizes); the driver's rounds do the
 * rest.  Callees of more than INLINE_MAX_NODES live nodes are left as
 * calls, so code size cannot explode; so are functions with a user
 * backward rule (f_bprop), which grad must still see being called.
 *
 * Order.  The VM runs a graph's applies by node id when that order
 * respects the dependencies (the front end numbers nodes in source order,
 * and effects the data flow does not order rely on it).  A copy placed by
 * fresh ids would run after everything else, so at the end of the pass the
 * nodes of every changed caller are renumbered: its own nodes in the order
 * the VM ran them before, each inlined body (in the order the VM ran the
 * callee) at the place of the call it replaces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes.h"
#include "ir/ir_internal.h"

#define INLINE_MAX_NODES 400
#define INLINE_MAX_FAMILY 64

typedef struct inl_ctx {
    sp_module *m;
    pass_users *u;
    ir_map touched; /* graphs changed or created by this pass */
    ir_map rec;     /* graph -> 1 recursive, 2 not */
    /* per call */
    sp_graph *fam[INLINE_MAX_FAMILY];
    sp_node **fam_nodes[INLINE_MAX_FAMILY];
    int fam_n[INLINE_MAX_FAMILY];
    int n_fam;
    int bad; /* the family cannot be copied */
    ir_map map;  /* old node -> new node */
    ir_map gmap; /* old graph -> new graph */
    ir_map copied; /* nodes the copy will contain */
    /* the order keys of touched graphs' nodes (see renumber) */
    ir_map key;
    sp_graph **touched_list;
    int n_touched, cap_touched;
} inl_ctx;

/* ---- recursion ------------------------------------------------------------ */

typedef struct reach_ctx {
    const sp_graph *target;
    ir_map seen;
    sp_graph **stack;
    int n, cap;
    int found, failed;
} reach_ctx;

static int reach_push(void *ctx, sp_graph *h) {
    reach_ctx *r = ctx;
    if (h == r->target) r->found = 1;
    if (ir_map_get(&r->seen, IR_PKEY(h))) return 0;
    if (ir_map_put(&r->seen, IR_PKEY(h), (void *)1)) return r->failed = 1;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        sp_graph **s = realloc(r->stack, sizeof *s * (size_t)cap);
        if (!s) return r->failed = 1;
        r->stack = s;
        r->cap = cap;
    }
    r->stack[r->n++] = h;
    return 0;
}

static void reach_value(reach_ctx *r, const sp_value *v) {
    if (v && v->kind == SP_V_CLOSURE)
        reach_push(r, v->u.closure.graph);
    else
        ir_value_graphs(v, reach_push, r);
}

/* Nonzero when a chain of graph references leads from g back to g (or the
 * question could not be answered: then the call stays). */
static int is_recursive(inl_ctx *c, sp_graph *g) {
    uintptr_t s = (uintptr_t)ir_map_get(&c->rec, IR_PKEY(g));
    if (s) return s == 1;
    reach_ctx r;
    memset(&r, 0, sizeof r);
    r.target = g;
    reach_push(&r, g);
    r.found = 0;
    while (r.n > 0 && !r.found && !r.failed) {
        sp_graph *h = r.stack[--r.n];
        if (ir_map_get(&c->touched, IR_PKEY(h))) { /* stale free variables: don't trust the walk */
            ir_map_free(&r.seen);
            free(r.stack);
            return 1;
        }
        int n = 0;
        sp_node **nodes = ir_graph_nodes(h, &n);
        if (!nodes) {
            r.failed = 1;
            sp_clear_error();
            break;
        }
        for (int i = 0; i < n; i++)
            for (int k = 0; nodes[i]->kind == SP_NODE_APPLY && k < nodes[i]->n_inputs; k++)
                if (nodes[i]->inputs[k]->kind == SP_NODE_CONST) reach_value(&r, nodes[i]->inputs[k]->value);
        if (h->output && h->output->kind == SP_NODE_CONST) reach_value(&r, h->output->value);
        free(nodes);
    }
    int rec = r.found || r.failed;
    ir_map_free(&r.seen);
    free(r.stack);
    ir_map_put(&c->rec, IR_PKEY(g), (void *)(uintptr_t)(rec ? 1 : 2));
    return rec;
}

/* ---- the family of a callee --------------------------------------------- */

static void family_clear(inl_ctx *c) {
    for (int i = 0; i < c->n_fam; i++) {
        free(c->fam_nodes[i]);
        c->fam_nodes[i] = NULL;
    }
    c->n_fam = 0;
    c->bad = 0;
    ir_map_free(&c->map);
    ir_map_free(&c->gmap);
    ir_map_free(&c->copied);
}

static int family_add(void *ctx, sp_graph *h) {
    inl_ctx *c = ctx;
    sp_graph *g = c->fam[0];
    if (h == g || !pass_encloses(g, h)) return 0; /* g itself: recursion, refused earlier */
    for (int i = 0; i < c->n_fam; i++)
        if (c->fam[i] == h) return 0;
    if (c->n_fam == INLINE_MAX_FAMILY) return c->bad = 1;
    c->fam_nodes[c->n_fam] = NULL;
    c->fam_n[c->n_fam] = 0;
    c->fam[c->n_fam++] = h;
    return 0;
}

/* A constant naming a family graph anywhere but at its top (inside a
 * tuple, a partial) would need its value rebuilt: not supported. */
static int names_family_deep(void *ctx, sp_graph *h) {
    inl_ctx *c = ctx;
    return h != c->fam[0] && pass_encloses(c->fam[0], h);
}

static void family_scan_const(inl_ctx *c, const sp_node *x) {
    const sp_value *v = x->value;
    if (!v) return;
    if (v->kind == SP_V_GRAPH) {
        family_add(c, v->u.graph);
    } else if (v->kind == SP_V_CLOSURE) {
        if (pass_encloses(c->fam[0], v->u.closure.graph)) c->bad = 1;
    } else if (ir_value_graphs(v, names_family_deep, c)) {
        c->bad = 1;
    }
}

static int depth_of(const sp_graph *g) {
    int d = 0;
    for (; g; g = g->parent) d++;
    return d;
}

/* Collects g's family and the nodes each member contributes, and checks
 * that the copy is closed.  0 when it can be copied. */
static int family_build(inl_ctx *c, sp_graph *g) {
    c->fam[0] = g;
    c->fam_nodes[0] = NULL;
    c->n_fam = 1;
    int total = 0;
    for (int f = 0; f < c->n_fam && !c->bad; f++) {
        sp_graph *h = c->fam[f];
        if (ir_map_get(&c->touched, IR_PKEY(h))) return c->bad = 1;
        int n = 0;
        sp_node **nodes = pass_graph_order(h, &n);
        if (!nodes) {
            sp_clear_error();
            return c->bad = 1;
        }
        c->fam_nodes[f] = nodes;
        c->fam_n[f] = n;
        total += n;
        if (total > INLINE_MAX_NODES) return c->bad = 1;
        for (int i = 0; i < n; i++) {
            sp_node *x = nodes[i];
            if (ir_map_put(&c->copied, IR_PKEY(x), (void *)1)) return c->bad = 1;
            for (int k = 0; x->kind == SP_NODE_APPLY && k < x->n_inputs; k++)
                if (x->inputs[k]->kind == SP_NODE_CONST) family_scan_const(c, x->inputs[k]);
        }
        if (h->output && h->output->kind == SP_NODE_CONST) family_scan_const(c, h->output);
        for (int j = 0; j < h->n_params; j++)
            if (ir_map_put(&c->copied, IR_PKEY(h->params[j]), (void *)1)) return c->bad = 1;
    }
    if (c->bad) return 1;
    /* parents before children; every member's parent in the family */
    for (int i = 1; i < c->n_fam; i++)
        for (int j = i; j > 1 && depth_of(c->fam[j]) < depth_of(c->fam[j - 1]); j--) {
            sp_graph *t = c->fam[j];
            c->fam[j] = c->fam[j - 1];
            c->fam[j - 1] = t;
            sp_node **tn = c->fam_nodes[j];
            c->fam_nodes[j] = c->fam_nodes[j - 1];
            c->fam_nodes[j - 1] = tn;
            int tk = c->fam_n[j];
            c->fam_n[j] = c->fam_n[j - 1];
            c->fam_n[j - 1] = tk;
        }
    for (int i = 1; i < c->n_fam; i++) {
        int ok = 0;
        for (int j = 0; j < i && !ok; j++) ok = c->fam[j] == c->fam[i]->parent;
        if (!ok) return c->bad = 1;
    }
    /* closed: a node of a family graph that a copied node uses is copied */
    for (int f = 0; f < c->n_fam; f++) {
        sp_graph *h = c->fam[f];
        for (int i = 0; i <= c->fam_n[f]; i++) {
            sp_node *x = i < c->fam_n[f] ? c->fam_nodes[f][i] : NULL;
            int nin = x ? (x->kind == SP_NODE_APPLY ? x->n_inputs : 0) : 1;
            for (int k = 0; k < nin; k++) {
                sp_node *y = x ? x->inputs[k] : h->output;
                if (!y || y->kind == SP_NODE_CONST || !y->graph) continue;
                if (pass_encloses(g, y->graph) && !ir_map_get(&c->copied, IR_PKEY(y))) return c->bad = 1;
            }
        }
        for (int i = 0; i < h->n_fv; i++) {
            sp_node *y = h->fv[i];
            if (pass_encloses(g, y->graph) && !ir_map_get(&c->copied, IR_PKEY(y))) return c->bad = 1;
        }
    }
    return 0;
}

/* ---- the copy ------------------------------------------------------------ */

static sp_node *map_node(inl_ctx *c, sp_node *y, sp_graph *into) {
    if (y->kind == SP_NODE_CONST) {
        const sp_value *v = y->value;
        if (v && v->kind == SP_V_GRAPH) {
            sp_graph *ng = ir_map_get(&c->gmap, IR_PKEY(v->u.graph));
            if (ng) {
                sp_value *nv = sp_value_graph(ng);
                sp_node *k = nv ? ir_const_new(into, nv, y->loc) : NULL;
                sp_value_release(nv);
                if (k) k->name = y->name;
                return k;
            }
        }
        return y;
    }
    sp_node *z = ir_map_get(&c->map, IR_PKEY(y));
    return z ? z : y;
}

/* Copies nodes (in the VM's order of their graph) into `into`; the i-th
 * copy gets order key base | (i + 1). */
static sp_status copy_nodes(inl_ctx *c, sp_node **nodes, int n, sp_graph *into, uint64_t base) {
    sp_node *small[16], **in = small;
    sp_status st = SP_OK;
    for (int i = 0; i < n && !st; i++) {
        sp_node *x = nodes[i], *z = NULL;
        if (x->kind == SP_NODE_CONST) {
            z = map_node(c, x, into);
        } else if (x->kind == SP_NODE_APPLY) {
            if (x->n_inputs > 16) {
                in = malloc(sizeof *in * (size_t)x->n_inputs);
                if (!in) return sp_error(SP_ERR_NOMEM, "inline: out of memory");
            }
            int ok = 1;
            for (int k = 0; k < x->n_inputs && ok; k++) ok = (in[k] = map_node(c, x->inputs[k], into)) != NULL;
            z = ok ? ir_apply_new(into, x->n_inputs, in, x->loc) : NULL;
            if (in != small) free(in);
            in = small;
        } else {
            continue; /* params are mapped already */
        }
        if (!z) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        z->name = x->name;
        st = ir_map_put(&c->map, IR_PKEY(x), z);
        if (!st && z->kind == SP_NODE_APPLY) st = ir_map_put(&c->key, IR_PKEY(z), (void *)(uintptr_t)(base | (uint64_t)(i + 1)));
        for (int k = 0; !st && z->kind == SP_NODE_APPLY && k < z->n_inputs; k++)
            st = pass_users_add(c->u, z->inputs[k], z, k, into);
    }
    return st;
}

/* Marks g changed by this pass.  The first time, its nodes get order keys
 * from the VM's order now, (position + 1) << 20, so copies inlined at a
 * call can sort in at the call's place. */
static sp_status touch(inl_ctx *c, sp_graph *g) {
    if (ir_map_get(&c->touched, IR_PKEY(g))) return SP_OK;
    int n = 0;
    sp_node **order = g->output ? pass_graph_order(g, &n) : malloc(1);
    if (!order) return sp_last_status();
    sp_status st = SP_OK;
    for (int i = 0; i < n && !st; i++)
        st = ir_map_put(&c->key, IR_PKEY(order[i]), (void *)(uintptr_t)((uint64_t)(i + 1) << 20));
    free(order);
    if (!st) st = ir_map_put(&c->touched, IR_PKEY(g), (void *)1);
    if (!st && c->n_touched == c->cap_touched) {
        int cap = c->cap_touched ? c->cap_touched * 2 : 16;
        sp_graph **t = realloc(c->touched_list, sizeof *t * (size_t)cap);
        if (!t) return sp_error(SP_ERR_NOMEM, "inline: out of memory");
        c->touched_list = t;
        c->cap_touched = cap;
    }
    if (!st) c->touched_list[c->n_touched++] = g;
    return st;
}

static uint64_t key_of(inl_ctx *c, const sp_node *x) {
    return (uint64_t)(uintptr_t)ir_map_get(&c->key, IR_PKEY(x));
}

static int by_key_ctx_cmp(const void *a, const void *b);
static _Thread_local inl_ctx *sort_ctx; /* qsort has no context argument */

static int by_key_ctx_cmp(const void *a, const void *b) {
    uint64_t x = key_of(sort_ctx, *(sp_node *const *)a), y = key_of(sort_ctx, *(sp_node *const *)b);
    return (x > y) - (x < y);
}

/* Gives the nodes of every touched graph fresh ids in the order of their
 * keys: the caller's nodes as they were, each inlined body at its call's
 * place in its own order.  The VM runs a graph's nodes by id when that
 * respects the dependencies, which is how effects keep source order. */
static sp_status renumber(inl_ctx *c) {
    sp_status st = ir_module_finalize(c->m); /* the copies' captures */
    for (int t = 0; t < c->n_touched && !st; t++) {
        int n = 0;
        sp_node **nodes = ir_graph_nodes(c->touched_list[t], &n);
        if (!nodes) return sp_last_status();
        sort_ctx = c;
        qsort(nodes, (size_t)n, sizeof *nodes, by_key_ctx_cmp);
        sort_ctx = NULL;
        for (int i = 0; i < n; i++) nodes[i]->id = c->m->next_id++;
        free(nodes);
    }
    return st;
}

/* Builds the copy of g's family for call n in graph `into`; *out is the
 * node standing for the call's value. */
static sp_status copy_family(inl_ctx *c, sp_node *call, sp_graph *into, sp_node **out) {
    sp_graph *g = c->fam[0];
    sp_module *m = c->m;
    sp_status st = SP_OK;
    for (int j = 0; j < g->n_params && !st; j++) {
        sp_node *a;
        if (j + 1 < call->n_inputs) {
            a = call->inputs[j + 1];
        } else {
            a = ir_const_new(into, g->defaults[j], call->loc);
            if (!a) return sp_last_status();
        }
        st = ir_map_put(&c->map, IR_PKEY(g->params[j]), a);
    }
    for (int f = 1; f < c->n_fam && !st; f++) {
        sp_graph *h = c->fam[f];
        sp_graph *parent = h->parent == g ? into : ir_map_get(&c->gmap, IR_PKEY(h->parent));
        sp_graph *nh = ir_graph_new(m, h->name, parent, h->loc);
        if (!nh) return sp_last_status();
        nh->has_varargs = h->has_varargs;
        for (int j = 0; j < h->n_params && !st; j++) {
            const char *pname = h->param_names ? h->param_names[j] : NULL;
            sp_node *p = ir_param_new(nh, pname ? pname : h->params[j]->name, h->params[j]->loc);
            if (!p) return sp_last_status();
            p->name = h->params[j]->name;
            if (h->defaults && h->defaults[j]) {
                sp_value_retain(h->defaults[j]);
                nh->defaults[j] = h->defaults[j];
            }
            st = ir_map_put(&c->map, IR_PKEY(h->params[j]), p);
        }
        if (!st) st = ir_map_put(&c->gmap, IR_PKEY(h), nh);
        if (!st) st = touch(c, nh);
    }
    uint64_t base = (uint64_t)(uintptr_t)ir_map_get(&c->key, IR_PKEY(call));
    if (!st) st = copy_nodes(c, c->fam_nodes[0], c->fam_n[0], into, base);
    for (int f = 1; f < c->n_fam && !st; f++) {
        sp_graph *nh = ir_map_get(&c->gmap, IR_PKEY(c->fam[f]));
        st = copy_nodes(c, c->fam_nodes[f], c->fam_n[f], nh, 0);
        if (!st && !(nh->output = map_node(c, c->fam[f]->output, nh))) st = sp_last_status();
        if (!st) st = pass_users_add(c->u, nh->output, NULL, 0, nh);
    }
    if (!st && !(*out = map_node(c, g->output, into))) st = sp_last_status();
    return st;
}

/* ---- the pass -------------------------------------------------------------- */

/* Nonzero when g has a user backward rule (a global <name>_bprop; see
 * src/ad/j.c): its calls must stay calls, or grad would differentiate the
 * body instead of using the rule. */
static int has_custom_bprop(const sp_module *m, const sp_graph *g) {
    if (g->parent || !g->name) return 0;
    size_t len = strlen(g->name);
    for (int i = 0; i < m->n_globals; i++) {
        const char *nm = m->global_names[i];
        if (nm && strlen(nm) == len + 6 && !strncmp(nm, g->name, len) && !strcmp(nm + len, "_bprop"))
            return 1;
    }
    return 0;
}

static int arg_ok(const sp_node *a) {
    if (pass_is_call(a, PB_MAKE_KEYWORD)) return 0;
    if (a->kind == SP_NODE_CONST && a->value && a->value->kind == SP_V_KEYWORD) return 0;
    return pass_cone_is_pure(a);
}

/* Inlines call n of graph `into` when it qualifies; SP_OK either way. */
static sp_status try_inline(inl_ctx *c, sp_node *call, int *changed) {
    sp_graph *into = call->graph, *g = pass_const_graph(call->inputs[0]);
    if (!g || !g->output || pass_encloses(g, into) || g->has_varargs) return SP_OK;
    int nargs = call->n_inputs - 1;
    if (nargs > g->n_params) return SP_OK;
    for (int j = nargs; j < g->n_params; j++)
        if (!g->defaults || !g->defaults[j]) return SP_OK;
    for (int i = 1; i < call->n_inputs; i++)
        if (!arg_ok(call->inputs[i])) return SP_OK;
    for (int i = 0; i < g->n_fv; i++)
        if (!pass_encloses(g->fv[i]->graph, into)) return SP_OK;
    if (ir_map_get(&c->touched, IR_PKEY(g)) || has_custom_bprop(c->m, g) || is_recursive(c, g)) return SP_OK;
    sp_status st = SP_OK;
    if (family_build(c, g) == 0 && !(st = touch(c, into))) {
        sp_node *out = NULL;
        st = copy_family(c, call, into, &out);
        if (!st) st = pass_users_replace(c->u, call, out);
        *changed = 1;
    }
    family_clear(c);
    return st;
}

sp_status pass_inline(sp_module *m, int *changed) {
    inl_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.u = pass_users_new(m);
    if (!c.u) return sp_last_status();
    sp_status st = SP_OK;
    /* the call sites as they are now: copies made below wait for the next round */
    int ng = m->n_graphs;
    sp_graph **graphs = malloc(sizeof *graphs * (size_t)(ng + 1));
    if (!graphs) st = sp_error(SP_ERR_NOMEM, "inline: out of memory");
    for (int i = 0; i < ng && !st; i++) graphs[i] = m->graphs[i];
    for (int gi = 0; gi < ng && !st; gi++) {
        int n = 0;
        sp_node **nodes = ir_graph_nodes(graphs[gi], &n);
        if (!nodes) {
            st = sp_last_status();
            break;
        }
        for (int i = 0; i < n && !st; i++)
            if (nodes[i]->kind == SP_NODE_APPLY && pass_const_graph(nodes[i]->inputs[0]))
                st = try_inline(&c, nodes[i], changed);
        free(nodes);
    }
    free(graphs);
    if (!st && c.n_touched) st = renumber(&c);
    family_clear(&c);
    ir_map_free(&c.key);
    free(c.touched_list);
    ir_map_free(&c.touched);
    ir_map_free(&c.rec);
    pass_users_free(c.u);
    return st;
}
