/*
 * clone.c -- copying a graph and its scope (see clone.h).
 *
 * One copy is a session: a map from the source scope's graphs to their
 * copies and one from its nodes to theirs.  Graphs are created first, all
 * of them, parents before children (a copy needs its parent), so that a
 * graph constant can name any copy before that copy's body exists --
 * recursion and nested closures need nothing special.  Bodies are then
 * filled in the same parents-first order: a nested graph's free variables
 * are nodes of its ancestors, which therefore exist when it is filled.
 *
 * Constants are not shared: each use gets a constant node in the copy's
 * graph (the printer and the passes do not care, and it keeps every node
 * owned by the graph that uses it).  A graph of another module named by a
 * constant is copied in its own session, as a top-level graph of the
 * destination; the copy is registered (clone_of) before its body is
 * filled, so mutual recursion between such graphs finds it.
 *
 * Lifting (ir_lift, see clone.h) is one session over everything a value
 * reaches: every graph is copied nested under the new entry graph, in the
 * same session (one graph map, so recursion across modules finds its
 * copy), and a constant that holds a weight -- directly or inside a tuple,
 * list, partial or keyword -- is rebuilt as an expression over the entry's
 * weight parameters.  The copies then use those parameters as free
 * variables, which is exactly what a closure capturing the weights would
 * be, so grad(..., weights=...) finds them by the language's own rule.
 */
#include <stdlib.h>
#include <string.h>

#include "ir/clone.h"
#include "ir/ir_internal.h"

enum {
#define SP_BUILTIN(ID, name, n) CL_B_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
    CL_B_COUNT
};

#define CLONE_MAX_DEPTH 256

typedef struct cl_ctx {
    sp_module *dst;
    const sp_graph *root;
    ir_clone_fv_fn fv;
    void *fv_ctx;
    ir_map graphs; /* source graph -> copy */
    ir_map nodes;  /* source node -> copy */
    int depth;
    /* lifting (NULL lift: a plain copy) */
    sp_graph *lift;        /* the entry: every copy is nested under it */
    ir_lift_weight_fn weight;
    void *wctx;
    int n_w;               /* weight parameters made so far */
} cl_ctx;

static sp_status copy_scope(cl_ctx *c, const sp_graph *src, sp_graph *parent, sp_graph **out);

static sp_graph *clone_scope(sp_module *dst, const sp_graph *src, sp_graph *parent, ir_clone_fv_fn fv, void *ctx,
                             int depth);

sp_graph *ir_graph_find_clone(const sp_module *dst, const sp_graph *src) {
    for (int i = 0; i < dst->n_graphs; i++)
        if (dst->graphs[i]->clone_of == src && !dst->graphs[i]->parent) return dst->graphs[i];
    return NULL;
}

static int in_scope(const sp_graph *g, const sp_graph *root) {
    for (; g; g = g->parent)
        if (g == root) return 1;
    return 0;
}

/* The graph a constant should name in the copy. */
static sp_graph *map_graph(cl_ctx *c, sp_graph *h) {
    sp_graph *m = ir_map_get(&c->graphs, IR_PKEY(h));
    if (m) return m;
    if (c->lift) {
        if (c->depth >= CLONE_MAX_DEPTH) {
            sp_error(SP_ERR_INTERNAL, "lift: graphs referenced %d deep (@%s)", c->depth, h->name);
            return NULL;
        }
        const sp_graph *root = c->root;
        c->depth++;
        sp_status st = copy_scope(c, h, c->lift, &m);
        c->depth--;
        c->root = root;
        return st ? NULL : m;
    }
    if (h->module == c->dst) return h;
    if ((m = ir_graph_find_clone(c->dst, h))) return m;
    return clone_scope(c->dst, h, NULL, NULL, NULL, c->depth + 1);
}

/* v with the graphs it names mapped; a new reference or NULL + error. */
static sp_value *map_value(cl_ctx *c, sp_value *v) {
    switch (v->kind) {
    case SP_V_GRAPH: {
        sp_graph *h = map_graph(c, v->u.graph);
        return h ? sp_value_graph(h) : NULL;
    }
    case SP_V_TUPLE:
    case SP_V_LIST: {
        int n = v->u.seq.n, i;
        sp_value **items = calloc((size_t)n + 1, sizeof *items), *r = NULL;
        if (!items) {
            sp_error(SP_ERR_NOMEM, "clone: out of memory");
            return NULL;
        }
        for (i = 0; i < n; i++)
            if (!(items[i] = map_value(c, v->u.seq.items[i]))) break;
        if (i == n) r = v->kind == SP_V_TUPLE ? sp_value_tuple(n, items) : sp_value_list(n, items);
        for (int k = 0; k < i; k++) sp_value_release(items[k]);
        free(items);
        return r;
    }
    case SP_V_PARTIAL: {
        int n = v->u.partial.n, i;
        sp_value *fn = map_value(c, v->u.partial.fn), *r = NULL;
        sp_value **args = fn ? calloc((size_t)n + 1, sizeof *args) : NULL;
        if (!args) {
            if (fn) sp_error(SP_ERR_NOMEM, "clone: out of memory");
            sp_value_release(fn);
            return NULL;
        }
        for (i = 0; i < n; i++)
            if (!(args[i] = map_value(c, v->u.partial.args[i]))) break;
        if (i == n) r = sp_value_partial(fn, n, args);
        for (int k = 0; k < i; k++) sp_value_release(args[k]);
        free(args);
        sp_value_release(fn);
        return r;
    }
    case SP_V_KEYWORD: {
        sp_value *x = map_value(c, v->u.kw.value);
        sp_value *r = x ? sp_value_keyword(v->u.kw.name, x) : NULL;
        sp_value_release(x);
        return r;
    }
    default: sp_value_retain(v); return v;
    }
}

/* The node of the copy standing for source node n, used in graph g. */
static sp_node *lift_value(cl_ctx *c, sp_value *v, sp_graph *g, sp_loc loc);
static sp_node *lift_bound(cl_ctx *c, sp_value *v, sp_graph *g, sp_loc loc);

static sp_node *map_node(cl_ctx *c, sp_node *n, sp_graph *g) {
    if (n->kind == SP_NODE_CONST && c->lift) {
        sp_node *r = lift_value(c, n->value, g, n->loc);
        if (r && r->kind == SP_NODE_CONST) r->name = n->name ? ir_intern(c->dst, n->name) : NULL;
        return r;
    }
    if (n->kind == SP_NODE_CONST) {
        sp_value *v = map_value(c, n->value);
        sp_node *r = v ? ir_const_new(g, v, n->loc) : NULL;
        sp_value_release(v);
        if (r) r->name = n->name ? ir_intern(c->dst, n->name) : NULL;
        return r;
    }
    sp_node *m = ir_map_get(&c->nodes, IR_PKEY(n));
    if (m) return m;
    if (!n->graph || !in_scope(n->graph, c->root)) {
        sp_node *r = c->fv ? c->fv(c->fv_ctx, n) : NULL;
        if (!r && n->graph && n->graph->module != c->dst) {
            sp_error(SP_ERR_INTERNAL, "clone: @%s uses a node of another module's @%s", c->root->name, n->graph->name);
            return NULL;
        }
        return r ? r : n;
    }
    sp_error(SP_ERR_INTERNAL, "clone: node %%%d of @%s is used before it is copied", n->id, n->graph->name);
    return NULL;
}

static int cmp_id(const void *a, const void *b) {
    int x = (*(sp_node *const *)a)->id, y = (*(sp_node *const *)b)->id;
    return (x > y) - (x < y);
}

/* Whether evaluating `nodes` in order respects every dependency among g's
 * own applies (inputs, and captures of graph constants). */
static int order_ok(const sp_graph *g, sp_node **nodes, int n) {
    ir_map seen;
    memset(&seen, 0, sizeof seen);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        sp_node *x = nodes[i];
        for (int k = 0; k < x->n_inputs && ok; k++) {
            sp_node *y = x->inputs[k];
            if (y->kind == SP_NODE_CONST && y->value && y->value->kind == SP_V_GRAPH) {
                const sp_graph *h = y->value->u.graph;
                for (int j = 0; j < h->n_fv && ok; j++)
                    if (h->fv[j]->graph == g && h->fv[j]->kind == SP_NODE_APPLY && !ir_map_get(&seen, IR_PKEY(h->fv[j])))
                        ok = 0;
            } else if (y->graph == g && y->kind == SP_NODE_APPLY && !ir_map_get(&seen, IR_PKEY(y))) {
                ok = 0;
            }
        }
        if (ir_map_put(&seen, IR_PKEY(x), (void *)1)) ok = 0;
    }
    ir_map_free(&seen);
    return ok;
}

static sp_status fill_body(cl_ctx *c, const sp_graph *s, sp_graph *g) {
    int n = 0;
    sp_node **nodes = ir_graph_nodes(s, &n);
    if (!nodes) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_node **byid = malloc(sizeof *byid * (size_t)(n + 1));
    if (!byid) {
        free(nodes);
        return sp_error(SP_ERR_NOMEM, "clone: out of memory");
    }
    memcpy(byid, nodes, sizeof *byid * (size_t)n);
    qsort(byid, (size_t)n, sizeof *byid, cmp_id);
    sp_node **order = order_ok(s, byid, n) ? byid : nodes;
    sp_status st = SP_OK;
    sp_node *buf[16], **in = buf;
    for (int i = 0; i < n && !st; i++) {
        sp_node *x = order[i];
        if (x->kind != SP_NODE_APPLY) continue;
        if (x->n_inputs > 16 && !(in = malloc(sizeof *in * (size_t)x->n_inputs))) {
            st = sp_error(SP_ERR_NOMEM, "clone: out of memory");
            break;
        }
        int k;
        for (k = 0; k < x->n_inputs; k++)
            if (!(in[k] = map_node(c, x->inputs[k], g))) break;
        sp_node *y = k == x->n_inputs ? ir_apply_new(g, x->n_inputs, in, x->loc) : NULL;
        if (in != buf) free(in);
        in = buf;
        if (!y || ir_map_put(&c->nodes, IR_PKEY(x), y)) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            break;
        }
        y->name = x->name ? ir_intern(c->dst, x->name) : NULL;
    }
    free(byid);
    free(nodes);
    if (st) return st;
    g->output = s->output ? map_node(c, s->output, g) : NULL;
    return g->output || !s->output ? SP_OK : (sp_last_status() ? sp_last_status() : SP_ERR_NOMEM);
}

static sp_status make_graph(cl_ctx *c, const sp_graph *s, sp_graph *parent, sp_graph **out) {
    sp_graph *g = ir_graph_new(c->dst, s->name, parent, s->loc);
    if (!g) return SP_ERR_NOMEM;
    g->clone_of = s;
    for (int i = 0; i < s->n_params; i++) {
        const char *pn = s->param_names && s->param_names[i] ? s->param_names[i] : "_";
        sp_node *p = ir_param_new(g, pn, s->params[i]->loc);
        if (!p || ir_map_put(&c->nodes, IR_PKEY(s->params[i]), p)) return SP_ERR_NOMEM;
        if (s->defaults && s->defaults[i]) {
            if (!(g->defaults[i] = map_value(c, s->defaults[i]))) return sp_last_status();
        }
    }
    g->has_varargs = s->has_varargs;
    *out = g;
    return ir_map_put(&c->graphs, IR_PKEY(s), g);
}

/* Whether g is K(h) or its expansion for some graph h of m (a cache). */
static int is_k_cache(const sp_module *m, const sp_graph *g) {
    for (int i = 0; i < m->n_graphs; i++)
        if (m->graphs[i]->k_graph == g || m->graphs[i]->kx_graph == g) return 1;
    return 0;
}

/* Copies src's scope (src and every graph nested in it) under `parent` in
 * session c; *out is the copy of src. */
static sp_status copy_scope(cl_ctx *c, const sp_graph *src, sp_graph *parent, sp_graph **out) {
    c->root = src;
    const sp_module *sm = src->module;
    const sp_graph **scope = malloc(sizeof *scope * (size_t)(sm->n_graphs + 1));
    sp_graph **copies = malloc(sizeof *copies * (size_t)(sm->n_graphs + 1));
    sp_status st = SP_OK;
    if (!scope || !copies) {
        st = sp_error(SP_ERR_NOMEM, "clone: out of memory");
        goto done;
    }
    /* the scope, parents first -- without the K graphs that run-time J
     * cached in the source module (k.c nests K(h) where h is nested): they
     * are caches of a transform, not part of the program, and use the
     * source graphs' own nodes, so a copy of them would not be closed */
    int n = 0;
    scope[n++] = src;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < sm->n_graphs; k++)
            if (sm->graphs[k]->parent == scope[i] && !is_k_cache(sm, sm->graphs[k])) scope[n++] = sm->graphs[k];
    for (int i = 0; i < n && !st; i++) {
        sp_graph *p = i == 0 ? parent : ir_map_get(&c->graphs, IR_PKEY(scope[i]->parent));
        st = make_graph(c, scope[i], p, &copies[i]);
    }
    for (int i = 0; i < n && !st; i++) {
        c->root = src; /* a nested session (lifting) may have moved it */
        st = fill_body(c, scope[i], copies[i]);
    }
    if (!st) *out = copies[0];
    else if (!sp_last_error()[0]) sp_error(st, "clone: out of memory");
done:
    free(scope);
    free(copies);
    return st;
}

static sp_graph *clone_scope(sp_module *dst, const sp_graph *src, sp_graph *parent, ir_clone_fv_fn fv, void *ctx,
                             int depth) {
    if (depth > CLONE_MAX_DEPTH) {
        sp_error(SP_ERR_INTERNAL, "clone: graphs nested or referenced %d deep (@%s)", depth, src->name);
        return NULL;
    }
    if (src->module != dst && src->n_fv > 0 && !parent) {
        sp_error(SP_ERR_INTERNAL, "clone: @%s of another module has free variables", src->name);
        return NULL;
    }
    cl_ctx c;
    memset(&c, 0, sizeof c);
    c.dst = dst;
    c.fv = fv;
    c.fv_ctx = ctx;
    c.depth = depth;
    sp_graph *result = NULL;
    copy_scope(&c, src, parent, &result);
    ir_map_free(&c.graphs);
    ir_map_free(&c.nodes);
    return result;
}

/* ---- lifting ---------------------------------------------------------------- */

/* Whether v holds a weight or a graph (what lifting must rebuild); -1 on
 * an error of the weight callback. */
static int lift_needed(cl_ctx *c, const sp_value *v) {
    switch (v->kind) {
    case SP_V_TENSOR: {
        int w = c->weight(c->wctx, v);
        return w < -1 ? -1 : w >= 0;
    }
    case SP_V_GRAPH: return 1;
    case SP_V_TUPLE:
    case SP_V_LIST:
        for (int i = 0; i < v->u.seq.n; i++) {
            int r = lift_needed(c, v->u.seq.items[i]);
            if (r) return r;
        }
        return 0;
    case SP_V_PARTIAL: {
        int r = lift_needed(c, v->u.partial.fn);
        for (int i = 0; i < v->u.partial.n && !r; i++) r = lift_needed(c, v->u.partial.args[i]);
        return r;
    }
    case SP_V_KEYWORD: return lift_needed(c, v->u.kw.value);
    default: return 0;
    }
}

static sp_node *lift_apply(cl_ctx *c, sp_graph *g, int builtin, int n, sp_value *const *items, const sp_value *first,
                           sp_loc loc) {
    sp_node **in = malloc(sizeof *in * (size_t)(n + 2));
    if (!in) {
        sp_error(SP_ERR_NOMEM, "lift: out of memory");
        return NULL;
    }
    sp_value *b = sp_value_builtin(builtin);
    sp_node *r = NULL;
    int k = 0, ok = b && (in[k++] = ir_const_new(g, b, loc)) != NULL;
    if (ok && first) ok = (in[k++] = lift_value(c, (sp_value *)first, g, loc)) != NULL;
    for (int i = 0; i < n && ok; i++) ok = (in[k++] = lift_value(c, items[i], g, loc)) != NULL;
    if (ok) r = ir_apply_new(g, k, in, loc);
    sp_value_release(b);
    free(in);
    return r;
}

/* partial(graph f, bound...) (a Cell's construct with `self` bound) as a
 * graph of its own nested under the entry: f_bound(rest...) = f(bound...,
 * rest...), the remaining parameters with their names and defaults.  A
 * direct call of a closure is what the specializer opens and traces
 * through; a call through builtin.partial it leaves generic.  Falls back
 * to builtin.partial for *args, keywords among the bound arguments, or
 * more arguments than parameters. */
static sp_node *lift_bound(cl_ctx *c, sp_value *v, sp_graph *g, sp_loc loc) {
    const sp_graph *f = v->u.partial.fn->u.graph;
    int k = v->u.partial.n, ok = !f->has_varargs && k <= f->n_params;
    for (int i = 0; i < k && ok; i++) ok = v->u.partial.args[i]->kind != SP_V_KEYWORD;
    if (!ok) return lift_apply(c, g, CL_B_PARTIAL, k, v->u.partial.args, v->u.partial.fn, loc);
    sp_graph *fc = map_graph(c, (sp_graph *)f);
    char name[256];
    snprintf(name, sizeof name, "%s.bound", f->name ? f->name : "_");
    sp_graph *w = fc ? ir_graph_new(c->dst, name, c->lift, f->loc) : NULL;
    sp_node **in = w ? malloc(sizeof *in * (size_t)(f->n_params + 1)) : NULL;
    sp_value *fv = in ? sp_value_graph(fc) : NULL;
    int i = 0;
    if (!fv || !(in[0] = ir_const_new(w, fv, loc))) goto fail;
    for (i = 0; i < k; i++)
        if (!(in[i + 1] = lift_value(c, v->u.partial.args[i], w, loc))) goto fail;
    for (i = k; i < f->n_params; i++) {
        const char *pn = f->param_names && f->param_names[i] ? f->param_names[i] : "_";
        if (!(in[i + 1] = ir_param_new(w, pn, f->params[i]->loc))) goto fail;
        if (f->defaults && f->defaults[i] && !(w->defaults[i - k] = map_value(c, f->defaults[i]))) goto fail;
    }
    if (!(w->output = ir_apply_new(w, f->n_params + 1, in, loc))) goto fail;
    sp_value_release(fv);
    free(in);
    sp_value *wv = sp_value_graph(w);
    sp_node *r = wv ? ir_const_new(g, wv, loc) : NULL;
    sp_value_release(wv);
    return r;
fail:
    sp_value_release(fv);
    free(in);
    if (!sp_last_status()) sp_error(SP_ERR_NOMEM, "lift: out of memory");
    return NULL;
}

/* The node of g standing for constant v in the lifted copy. */
static sp_node *lift_value(cl_ctx *c, sp_value *v, sp_graph *g, sp_loc loc) {
    int need = lift_needed(c, v);
    if (need < 0) return NULL;
    if (!need) {
        sp_value *m = map_value(c, v);
        sp_node *r = m ? ir_const_new(g, m, loc) : NULL;
        sp_value_release(m);
        return r;
    }
    switch (v->kind) {
    case SP_V_TENSOR: {
        int w = c->weight(c->wctx, v);
        if (w < 0 || w > c->n_w) {
            if (w >= 0) sp_error(SP_ERR_INTERNAL, "lift: weight index %d out of order", w);
            return NULL;
        }
        if (w == c->n_w) {
            char name[32];
            snprintf(name, sizeof name, "weight%d", w);
            if (!ir_param_new(c->lift, name, loc)) return NULL;
            c->n_w++;
        }
        return c->lift->params[c->lift->n_params - c->n_w + w];
    }
    case SP_V_GRAPH: {
        sp_graph *h = map_graph(c, v->u.graph);
        sp_value *gv = h ? sp_value_graph(h) : NULL;
        sp_node *r = gv ? ir_const_new(g, gv, loc) : NULL;
        sp_value_release(gv);
        return r;
    }
    case SP_V_TUPLE:
    case SP_V_LIST:
        return lift_apply(c, g, v->kind == SP_V_TUPLE ? CL_B_MAKE_TUPLE : CL_B_MAKE_LIST, v->u.seq.n, v->u.seq.items,
                          NULL, loc);
    case SP_V_PARTIAL:
        if (v->u.partial.fn->kind == SP_V_GRAPH) return lift_bound(c, v, g, loc);
        return lift_apply(c, g, CL_B_PARTIAL, v->u.partial.n, v->u.partial.args, v->u.partial.fn, loc);
    case SP_V_KEYWORD: {
        sp_value *name = sp_value_str(v->u.kw.name, strlen(v->u.kw.name));
        sp_node *r = name ? lift_apply(c, g, CL_B_MAKE_KEYWORD, 1, &v->u.kw.value, name, loc) : NULL;
        sp_value_release(name);
        return r;
    }
    default: sp_error(SP_ERR_INTERNAL, "lift: cannot rebuild a %s", sp_value_kind_name(v)); return NULL;
    }
}

sp_graph *ir_lift(sp_module *dst, const char *name, sp_value *fn, int nargs, ir_lift_weight_fn weight, void *wctx,
                  int *n_weights) {
    if (!dst || !name || !fn || !weight || nargs < 0) {
        sp_error(SP_ERR_ARG, "lift: NULL or negative argument");
        return NULL;
    }
    cl_ctx c;
    memset(&c, 0, sizeof c);
    c.dst = dst;
    c.weight = weight;
    c.wctx = wctx;
    sp_loc loc = {ir_intern(dst, "<lift>"), 0, 0};
    sp_graph *e = ir_graph_new(dst, name, NULL, loc), *result = NULL;
    c.lift = e;
    sp_node **in = e ? malloc(sizeof *in * (size_t)(nargs + 1)) : NULL;
    if (!in) {
        if (e) sp_error(SP_ERR_NOMEM, "lift: out of memory");
        goto done;
    }
    int k;
    for (k = 0; k < nargs; k++) {
        char an[32];
        snprintf(an, sizeof an, "arg%d", k);
        if (!(in[k + 1] = ir_param_new(e, an, loc))) break;
    }
    if (k == nargs && (in[0] = lift_value(&c, fn, e, loc)) && (e->output = ir_apply_new(e, nargs + 1, in, loc)))
        result = e;
    free(in);
    if (n_weights) *n_weights = c.n_w;
done:
    ir_map_free(&c.graphs);
    ir_map_free(&c.nodes);
    return result;
}

sp_graph *ir_graph_clone_into(sp_module *dst, const sp_graph *src, sp_graph *parent, ir_clone_fv_fn fv, void *ctx) {
    if (!dst || !src || !src->module) {
        sp_error(SP_ERR_ARG, "clone: NULL module or graph");
        return NULL;
    }
    return clone_scope(dst, src, parent, fv, ctx, 0);
}
