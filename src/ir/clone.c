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
 */
#include <stdlib.h>
#include <string.h>

#include "ir/clone.h"
#include "ir/ir_internal.h"

#define CLONE_MAX_DEPTH 256

typedef struct cl_ctx {
    sp_module *dst;
    const sp_graph *root;
    ir_clone_fv_fn fv;
    void *fv_ctx;
    ir_map graphs; /* source graph -> copy */
    ir_map nodes;  /* source node -> copy */
    int depth;
} cl_ctx;

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
static sp_node *map_node(cl_ctx *c, sp_node *n, sp_graph *g) {
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
    c.root = src;
    c.fv = fv;
    c.fv_ctx = ctx;
    c.depth = depth;
    const sp_module *sm = src->module;
    const sp_graph **scope = malloc(sizeof *scope * (size_t)(sm->n_graphs + 1));
    sp_graph **copies = malloc(sizeof *copies * (size_t)(sm->n_graphs + 1));
    sp_graph *result = NULL;
    sp_status st = SP_OK;
    if (!scope || !copies) {
        sp_error(SP_ERR_NOMEM, "clone: out of memory");
        goto done;
    }
    /* the scope, parents first */
    int n = 0;
    scope[n++] = src;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < sm->n_graphs; k++)
            if (sm->graphs[k]->parent == scope[i]) scope[n++] = sm->graphs[k];
    for (int i = 0; i < n && !st; i++) {
        sp_graph *p = i == 0 ? parent : ir_map_get(&c.graphs, IR_PKEY(scope[i]->parent));
        st = make_graph(&c, scope[i], p, &copies[i]);
    }
    for (int i = 0; i < n && !st; i++) st = fill_body(&c, scope[i], copies[i]);
    if (!st) result = copies[0];
    else if (!sp_last_error()[0]) sp_error(st, "clone: out of memory");
done:
    free(scope);
    free(copies);
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
