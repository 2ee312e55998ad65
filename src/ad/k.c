/*
 * k.c -- the K transform: a graph g to a graph K(g) returning
 * (value, bprop).
 *
 * For g with parameters x1..xn, K(g) has the same parameters (names and
 * defaults too, so keyword calls bind the same way) and the same free
 * variables in the same order -- so J turns a closure of g into a closure
 * of K(g) by swapping the graph and keeping the captured values.  Each
 * apply r = f(a, b) of g, in dependency order, becomes
 *
 *     t = J(f)(a', b');   r' = t[0];   bp_r = t[1]
 *
 * and a graph constant h with free variables (a closure g builds) becomes
 * make_closure((h,), fv'...) over the K-side values of h's free variables
 * (the graph is wrapped in a 1-tuple so that the VM does not capture it
 * from K(g)'s frame: h's free variables are g's nodes, not K(g)'s).
 *
 * The backward graph B = K(g).bprop(dout) is nested in K(g) and captures
 * the bp_r it needs.  It walks the applies in reverse, keeping for every
 * node of g (and every free variable of g) the sum of the gradients that
 * reached it: d[output] = dout; for r with a gradient, res = bp_r(d[r])
 * and input j of r receives res[j] (input 0, the callee, receives the env
 * of the function value).  A node no gradient reached is statically
 * absent: its bprop is not called at all.  A graph constant with free
 * variables that receives an env hands env[key(fv)] to each of its free
 * variables.  B returns (env of g's free variables, d_x1, ..., d_xn),
 * None for an input no gradient reached.
 *
 * Invariants: g's free variables are computed (ir_module_finalize) before
 * K(g) is built; K(g) and B are added to g's module and set their own fv
 * lists (K(g): g's; B: the bp_r nodes it uses), which is all the VM needs.
 * K(g) is built once and cached in g->k_graph; K(K(g)) is just K of
 * another graph.  Tail calls of g are not tail calls in K(g) (the result
 * is paired with its bprop), so a loop's gradient uses stack in proportion
 * to its trip count (the VM's depth limit reports it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "runtime/rt.h"

typedef struct kctx {
    sp_module *m;
    sp_graph *g, *kg, *b;
    int n_ids;
    sp_node **fwd;   /* by node id: the K(g)-side value of a node of g (or fv) */
    sp_node **bp;    /* by node id: bp_r in K(g) */
    sp_node **acc;   /* by node id: the summed gradient in B */
    sp_node **bfv;   /* B's free variables */
    int n_bfv;
} kctx;

static sp_node *bconst(sp_graph *g, sp_value *v, sp_loc loc) {
    if (!v) return NULL;
    sp_node *n = ir_const_new(g, v, loc);
    sp_value_release(v);
    return n;
}

static sp_node *builtin_node(sp_graph *g, int id, sp_loc loc) { return bconst(g, sp_value_builtin(id), loc); }

/* An apply of builtin id in graph gr on n inputs. */
static sp_node *bapply(sp_graph *gr, int id, int n, sp_node *const *in, sp_loc loc) {
    sp_node *buf[8];
    if (n + 1 > 8) return NULL;
    buf[0] = builtin_node(gr, id, loc);
    if (!buf[0]) return NULL;
    for (int i = 0; i < n; i++) {
        if (!in[i]) return NULL;
        buf[i + 1] = in[i];
    }
    return ir_apply_new(gr, n + 1, buf, loc);
}

static sp_node *getitem(sp_graph *gr, sp_node *t, int i, sp_loc loc) {
    sp_node *in[2] = {t, bconst(gr, sp_value_int(i), loc)};
    return bapply(gr, RT_B_TUPLE_GETITEM, 2, in, loc);
}

static int in_range(const kctx *c, const sp_node *x) { return x->id >= 0 && x->id < c->n_ids; }

static int is_fv(const sp_graph *g, const sp_node *x) {
    for (int i = 0; i < g->n_fv; i++)
        if (g->fv[i] == x) return 1;
    return 0;
}

/* The K(g)-side node for input x of an apply of g. */
static sp_node *fwd_of(kctx *c, sp_node *x, sp_loc loc) {
    if (x->kind == SP_NODE_CONST) {
        sp_value *v = x->value;
        if (v && v->kind == SP_V_GRAPH && v->u.graph->n_fv > 0) {
            sp_graph *h = v->u.graph;
            int n = h->n_fv + 2;
            sp_node **in = malloc(sizeof *in * (size_t)n);
            if (!in) {
                sp_error(SP_ERR_NOMEM, "K: out of memory");
                return NULL;
            }
            in[0] = builtin_node(c->kg, RT_B_MAKE_CLOSURE, loc);
            in[1] = bconst(c->kg, sp_value_tuple(1, &v), loc);
            int ok = in[0] && in[1];
            for (int i = 0; i < h->n_fv && ok; i++) ok = (in[i + 2] = fwd_of(c, h->fv[i], loc)) != NULL;
            sp_node *r = ok ? ir_apply_new(c->kg, n, in, loc) : NULL;
            free(in);
            return r;
        }
        return ir_const_new(c->kg, v, x->loc);
    }
    if (!in_range(c, x)) {
        sp_error(SP_ERR_INTERNAL, "K(@%s): node %%%d out of range", c->g->name, x->id);
        return NULL;
    }
    if (c->fwd[x->id]) return c->fwd[x->id];
    if (x->graph != c->g && is_fv(c->g, x)) return x; /* a free variable stays one */
    sp_error(SP_ERR_INTERNAL, "K(@%s): node %%%d is used before it is computed", c->g->name, x->id);
    return NULL;
}

/* Adds gradient d (a node of B) to x's sum. */
static sp_status contribute(kctx *c, sp_node *x, sp_node *d, sp_loc loc) {
    if (!d) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    if (x->kind == SP_NODE_CONST) {
        sp_value *v = x->value;
        if (!(v && v->kind == SP_V_GRAPH && v->u.graph->n_fv > 0)) return SP_OK;
        sp_graph *h = v->u.graph;
        for (int i = 0; i < h->n_fv; i++) {
            sp_node *in[3] = {d, bconst(c->b, sp_value_int(ad_key_of(h->fv[i])), loc),
                              bconst(c->b, sp_value_none(), loc)};
            sp_status st = contribute(c, h->fv[i], bapply(c->b, RT_B_ENV_GETITEM, 3, in, loc), loc);
            if (st) return st;
        }
        return SP_OK;
    }
    if (!in_range(c, x)) return sp_error(SP_ERR_INTERNAL, "K(@%s): node %%%d out of range", c->g->name, x->id);
    sp_node **a = &c->acc[x->id];
    if (!*a) {
        *a = d;
        return SP_OK;
    }
    sp_node *in[2] = {*a, d};
    *a = bapply(c->b, RT_B_ADD_GRAD, 2, in, loc);
    return *a ? SP_OK : SP_ERR_NOMEM;
}

static sp_status k_build(kctx *c) {
    sp_graph *g = c->g;
    sp_module *m = c->m;
    char name[256];
    snprintf(name, sizeof name, "K.%s", g->name ? g->name : "_");
    sp_graph *kg = c->kg = ir_graph_new(m, name, g->parent, g->loc);
    if (!kg) return SP_ERR_NOMEM;
    for (int i = 0; i < g->n_params; i++) {
        const char *pn = g->param_names && g->param_names[i] ? g->param_names[i] : "_";
        sp_node *p = ir_param_new(kg, pn, g->params[i]->loc);
        if (!p) return SP_ERR_NOMEM;
        if (g->defaults && g->defaults[i]) {
            kg->defaults[i] = g->defaults[i];
            sp_value_retain(kg->defaults[i]);
        }
        c->fwd[g->params[i]->id] = p;
    }
    kg->has_varargs = g->has_varargs;
    kg->n_fv = g->n_fv;
    if (g->n_fv) {
        kg->fv = malloc(sizeof *kg->fv * (size_t)g->n_fv); /* freed with the module, like every fv list */
        if (!kg->fv) return SP_ERR_NOMEM;
        memcpy(kg->fv, g->fv, sizeof *kg->fv * (size_t)g->n_fv);
    }
    int n_nodes = 0;
    sp_node **nodes = ir_graph_nodes(g, &n_nodes);
    if (!nodes) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_status st = SP_OK;
    /* forward */
    for (int k = 0; k < n_nodes && !st; k++) {
        sp_node *r = nodes[k];
        if (r->kind != SP_NODE_APPLY) continue;
        if (!in_range(c, r)) {
            st = sp_error(SP_ERR_INTERNAL, "K(@%s): node out of range", g->name);
            break;
        }
        sp_node **in = malloc(sizeof *in * (size_t)(r->n_inputs + 1));
        if (!in) {
            st = sp_error(SP_ERR_NOMEM, "K: out of memory");
            break;
        }
        sp_node *callee = fwd_of(c, r->inputs[0], r->loc);
        in[0] = callee ? bapply(kg, RT_B_J, 1, &callee, r->loc) : NULL;
        int ok = in[0] != NULL;
        for (int j = 1; j < r->n_inputs && ok; j++) ok = (in[j] = fwd_of(c, r->inputs[j], r->loc)) != NULL;
        sp_node *t = ok ? ir_apply_new(kg, r->n_inputs, in, r->loc) : NULL;
        free(in);
        if (t) {
            t->name = r->name;
            c->fwd[r->id] = getitem(kg, t, 0, r->loc);
            c->bp[r->id] = getitem(kg, t, 1, r->loc);
        }
        if (!t || !c->fwd[r->id] || !c->bp[r->id]) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    }
    sp_node *out = st ? NULL : fwd_of(c, g->output, g->output->loc);
    if (!out) st = st ? st : (sp_last_status() ? sp_last_status() : SP_ERR_NOMEM);
    /* backward */
    sp_graph *b = NULL;
    if (!st) {
        snprintf(name, sizeof name, "K.%s.bprop", g->name ? g->name : "_");
        b = c->b = ir_graph_new(m, name, kg, g->loc);
        sp_node *dout = b ? ir_param_new(b, "dout", g->loc) : NULL;
        if (!dout) st = SP_ERR_NOMEM;
        else st = contribute(c, g->output, dout, g->loc);
    }
    for (int k = n_nodes - 1; k >= 0 && !st; k--) {
        sp_node *r = nodes[k];
        if (r->kind != SP_NODE_APPLY || !c->acc[r->id]) continue;
        sp_node *bpr = c->bp[r->id];
        c->bfv[c->n_bfv++] = bpr;
        sp_node *in[2] = {bpr, c->acc[r->id]};
        sp_node *res = ir_apply_new(b, 2, in, r->loc);
        if (!res) {
            st = SP_ERR_NOMEM;
            break;
        }
        for (int j = 0; j < r->n_inputs && !st; j++)
            st = contribute(c, r->inputs[j], getitem(b, res, j, r->loc), r->loc);
    }
    free(nodes);
    if (st) return st;
    /* (env, d_x1, ..., d_xn) */
    sp_node *env = bapply(b, RT_B_ENV_NEW, 0, NULL, g->loc);
    for (int i = 0; i < g->n_fv && env; i++) {
        sp_node *f = g->fv[i];
        if (!in_range(c, f) || !c->acc[f->id]) continue;
        sp_node *in[3] = {env, bconst(b, sp_value_int(ad_key_of(f)), g->loc), c->acc[f->id]};
        env = bapply(b, RT_B_ENV_SETITEM, 3, in, g->loc);
    }
    sp_node **items = malloc(sizeof *items * (size_t)(g->n_params + 2));
    if (!items || !env) {
        free(items);
        return sp_error(SP_ERR_NOMEM, "K: out of memory");
    }
    items[0] = builtin_node(b, RT_B_MAKE_TUPLE, g->loc);
    items[1] = env;
    int ok = items[0] != NULL;
    for (int i = 0; i < g->n_params && ok; i++) {
        sp_node *d = c->acc[g->params[i]->id];
        items[i + 2] = d ? d : bconst(b, sp_value_none(), g->loc);
        ok = items[i + 2] != NULL;
    }
    int nfixed = g->has_varargs ? g->n_params - 1 : g->n_params;
    b->output = ok ? ir_apply_new(b, nfixed + 2, items, g->loc) : NULL;
    if (b->output && g->has_varargs) {
        /* *args: one gradient per extra argument, not one for the tuple */
        sp_value *spread = ad_rule_required("_ad_spread");
        sp_node *va = c->fwd[g->params[g->n_params - 1]->id];
        sp_node *call[3] = {spread ? ir_const_new(b, spread, g->loc) : NULL, items[g->n_params + 1], va};
        sp_node *rest = call[0] ? ir_apply_new(b, 3, call, g->loc) : NULL;
        sp_node *cat[2] = {b->output, rest};
        b->output = rest ? bapply(b, RT_B_ADD, 2, cat, g->loc) : NULL;
        c->bfv[c->n_bfv++] = va;
    }
    free(items);
    if (!b->output) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    b->n_fv = c->n_bfv;
    if (c->n_bfv) {
        b->fv = malloc(sizeof *b->fv * (size_t)c->n_bfv);
        if (!b->fv) return SP_ERR_NOMEM;
        memcpy(b->fv, c->bfv, sizeof *b->fv * (size_t)c->n_bfv);
    }
    sp_node *bg = bconst(kg, sp_value_graph(b), g->loc);
    sp_node *pair[2] = {out, bg};
    kg->output = bg ? bapply(kg, RT_B_MAKE_TUPLE, 2, pair, g->loc) : NULL;
    return kg->output ? SP_OK : SP_ERR_NOMEM;
}

sp_graph *ad_k(sp_graph *g) {
    if (!g || !g->module || !g->output) {
        sp_error(SP_ERR_INTERNAL, "K: a graph without module or output");
        return NULL;
    }
    if (g->k_graph) return g->k_graph;
    kctx c = {0};
    c.m = g->module;
    c.g = g;
    c.n_ids = g->module->next_id;
    c.fwd = calloc((size_t)c.n_ids + 1, sizeof *c.fwd);
    c.bp = calloc((size_t)c.n_ids + 1, sizeof *c.bp);
    c.acc = calloc((size_t)c.n_ids + 1, sizeof *c.acc);
    c.bfv = calloc((size_t)c.n_ids + 1, sizeof *c.bfv);
    sp_status st = c.fwd && c.bp && c.acc && c.bfv ? k_build(&c) : sp_error(SP_ERR_NOMEM, "K: out of memory");
    free(c.fwd);
    free(c.bp);
    free(c.acc);
    free(c.bfv);
    if (st) {
        if (!sp_last_error()[0]) sp_error(st, "K(@%s): failed", g->name);
        return NULL;
    }
    g->k_graph = c.kg;
    return c.kg;
}
