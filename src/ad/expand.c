/*
 * expand.c -- K as an IR expansion with J resolved at compile time, and
 * the graph spore.grad runs (see expand.h for what resolves statically).
 *
 * A build transforms one root graph R and, on demand, the graphs nested
 * in it.  Its invariant is the one of k.c, with nesting added: K(g) has
 * g's parameters and returns (value, bprop); bprop(dout) returns (env of
 * g's free variables' gradients keyed by ad_key_of(free variable),
 * d_param1, ...).  What differs from k.c:
 *   - K(h) for a graph h nested in R is nested in K(h's parent), and the
 *     nodes of R's scope it uses are the K side's nodes (the build keeps
 *     one map, original node -> K-side primal node, for the whole scope),
 *     so K(h) is an ordinary closure: no make_closure, no J at run time;
 *   - a graph h of the scope used as a value (passed to a function) is a
 *     primal copy P(h) nested the same way (ir/clone.h); whatever calls it
 *     runs J at run time, whose K(P(h)) keys the env by P(h)'s free
 *     variables (the K side's nodes), so a closure's env is read under
 *     both keys of each free variable (contribute_fv);
 *   - a callee read through the front end's effect threading,
 *     tuple_getitem(make_tuple(..., f, ...), k), is f;
 *   - the backward of a primitive calls a copy of its rule graph in the
 *     same module, so inline can open it;
 *   - calls with a known callee need no J: K(@g)(args) directly.
 * Root graphs (top level, or outside the scope being built) are built as
 * their own root with the parent they have, and cached in g->kx_graph
 * (before their body is built: recursion finds itself).
 *
 * Gradients are summed with add_grad and read out of tuples with
 * gather_tuple, both of which treat None as zero -- a rule may return None
 * at run time (an integer input), so a tuple's gradient may be None even
 * where the expansion made one.  env_simplify and tuple_simplify remove
 * them where the values are known.
 *
 * Ids.  Nodes are created in the order they run, so the VM's by-id order
 * is the dependency order, as in k.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "ad/expand.h"
#include "ir/clone.h"
#include "ir/ir_internal.h"
#include "ops/ops.h"
#include "runtime/rt.h"

#define KX_MAX_DEPTH 200

enum { KS_NONE, KS_PRIM, KS_CALL, KS_TUPLE, KS_GETITEM, KS_SWITCH, KS_KEYWORD };

typedef struct kx_step {
    int kind;
    sp_node *bp;    /* KS_CALL: the bprop value, a node of K(g) */
    sp_graph *rule; /* KS_PRIM: the copied rule */
    int len;        /* KS_GETITEM: the tuple's length, -1 unknown */
    int64_t index;  /* KS_GETITEM */
} kx_step;

typedef struct kx_build {
    sp_module *m;
    const sp_graph *root;
    ir_map fwd;    /* original node -> K-side primal node */
    ir_map kgraph; /* graph of the scope -> its K graph */
    ir_map pcopy;  /* graph of the scope -> its primal copy */
    ir_map jsw;    /* switch-of-graphs apply -> switch of their K graphs */
    ir_map lazy;   /* switch-of-graphs apply whose primal value is made on first use */
    int depth;
} kx_build;

typedef struct kx_frame {
    kx_build *b;
    sp_graph *g, *kg, *bg;
    ir_map acc; /* node -> the sum of its gradients (a node of bg) */
} kx_frame;

static sp_graph *kx_root(sp_graph *g, int depth);

/* ---- small builders ------------------------------------------------------------ */

static sp_node *cnode(sp_graph *gr, sp_value *v, sp_loc loc) {
    if (!v) return NULL;
    sp_node *n = ir_const_new(gr, v, loc);
    sp_value_release(v);
    return n;
}

static sp_node *bcall(sp_graph *gr, int id, int n, sp_node *const *in, sp_loc loc) {
    sp_node *buf[8];
    if (n + 1 > 8) {
        sp_error(SP_ERR_INTERNAL, "expand: builtin call with %d inputs", n);
        return NULL;
    }
    if (!(buf[0] = cnode(gr, sp_value_builtin(id), loc))) return NULL;
    for (int i = 0; i < n; i++) {
        if (!in[i]) return NULL;
        buf[i + 1] = in[i];
    }
    return ir_apply_new(gr, n + 1, buf, loc);
}

static sp_node *item(sp_graph *gr, sp_node *t, int64_t i, sp_loc loc) {
    sp_node *in[2] = {t, cnode(gr, sp_value_int(i), loc)};
    return t ? bcall(gr, RT_B_TUPLE_GETITEM, 2, in, loc) : NULL;
}

static sp_node *none_node(sp_graph *gr, sp_loc loc) { return cnode(gr, sp_value_none(), loc); }

/* A constant tuple of one int. */
static sp_node *int_tuple1(sp_graph *gr, int64_t k, sp_loc loc) {
    sp_value *i = sp_value_int(k);
    sp_value *t = i ? sp_value_tuple(1, &i) : NULL;
    sp_value_release(i);
    return cnode(gr, t, loc);
}

/* Item k of gradient d, None when d is None: gather_tuple(d, (k,))[0]. */
static sp_node *grad_item(sp_graph *gr, sp_node *d, int64_t k, sp_loc loc) {
    sp_node *in[2] = {d, int_tuple1(gr, k, loc)};
    return item(gr, bcall(gr, RT_B_GATHER_TUPLE, 2, in, loc), 0, loc);
}

static sp_node *call_graph(sp_graph *gr, sp_graph *callee, int n, sp_node *const *args, sp_loc loc) {
    sp_node **in = malloc(sizeof *in * (size_t)(n + 1));
    if (!in) {
        sp_error(SP_ERR_NOMEM, "expand: out of memory");
        return NULL;
    }
    in[0] = cnode(gr, sp_value_graph(callee), loc);
    memcpy(in + 1, args, sizeof *in * (size_t)n);
    sp_node *r = in[0] ? ir_apply_new(gr, n + 1, in, loc) : NULL;
    free(in);
    return r;
}

static sp_status fail_status(void) { return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM; }

/* A rule graph of the rules module, copied into m once. */
static sp_graph *rule_copy(sp_module *m, const char *name, int required) {
    sp_value *v = required ? ad_rule_required(name) : ad_rule(name);
    if (!v) return NULL;
    if (v->kind != SP_V_GRAPH) {
        sp_error(SP_ERR_INTERNAL, "gradient rules: %s is not a function", name);
        return NULL;
    }
    sp_graph *c = ir_graph_find_clone(m, v->u.graph);
    return c ? c : ir_graph_clone_into(m, v->u.graph, NULL, NULL, NULL);
}

/* ---- what resolves statically ---------------------------------------------------- */

static int in_scope(const sp_graph *g, const sp_graph *root) {
    for (; g; g = g->parent)
        if (g == root) return 1;
    return 0;
}

/* A top-level function f of a user module that also defines f_bprop (j.c
 * runs those through _ad_custom). */
static int has_custom_bprop(const sp_graph *g) {
    const sp_module *m = g->module;
    if (g->parent || !g->name || !m || (m->file && !strcmp(m->file, "<bprop>"))) return 0;
    size_t len = strlen(g->name);
    for (int i = 0; i < m->n_globals; i++) {
        const char *nm = m->global_names[i];
        if (nm && strlen(nm) == len + 6 && !strncmp(nm, g->name, len) && !strcmp(nm + len, "_bprop") &&
            m->global_values[i] && m->global_values[i]->kind == SP_V_GRAPH)
            return 1;
    }
    return 0;
}

static int is_keyword_input(const sp_node *x) {
    if (x->kind == SP_NODE_CONST) return x->value && x->value->kind == SP_V_KEYWORD;
    return x->kind == SP_NODE_APPLY && x->n_inputs >= 1 && x->inputs[0]->kind == SP_NODE_CONST &&
           x->inputs[0]->value && x->inputs[0]->value->kind == SP_V_BUILTIN &&
           x->inputs[0]->value->u.builtin == RT_B_MAKE_KEYWORD;
}

static int any_keyword(const sp_node *r) {
    for (int j = 1; j < r->n_inputs; j++)
        if (is_keyword_input(r->inputs[j])) return 1;
    return 0;
}

static sp_graph *const_graph(const sp_node *x) {
    return x->kind == SP_NODE_CONST && x->value && x->value->kind == SP_V_GRAPH ? x->value->u.graph : NULL;
}

static int builtin_id(const sp_node *x) {
    return x->kind == SP_NODE_CONST && x->value && x->value->kind == SP_V_BUILTIN ? x->value->u.builtin : -1;
}

static int call_id(const sp_node *x) {
    return x->kind == SP_NODE_APPLY && x->n_inputs >= 1 ? builtin_id(x->inputs[0]) : -1;
}

/* h can be called through K(h) with these n arguments, positionally. */
static int graph_callable(const sp_graph *h, int n_args) {
    return h && h->output && !h->has_varargs && h->n_params == n_args && !has_custom_bprop(h);
}

/* A switch(c, @a, @b) apply whose branches both qualify for a call with n args. */
static int switch_of_graphs(const sp_node *s, int n_args) {
    return call_id(s) == RT_B_SWITCH && s->n_inputs == 4 && graph_callable(const_graph(s->inputs[2]), n_args) &&
           graph_callable(const_graph(s->inputs[3]), n_args);
}

/* ---- the K side of a node ------------------------------------------------------------ */

static sp_graph *kx_nested(kx_build *b, sp_graph *g, sp_graph *kparent);

static sp_node *map_fv(void *ctx, const sp_node *n) { return ir_map_get(&((kx_build *)ctx)->fwd, IR_PKEY(n)); }

/* The graph a value use of @h names on the K side: h itself when its
 * parent is outside the scope, else its primal copy P(h) under K(parent),
 * its free variables the K side's nodes. */
static sp_graph *primal_graph(kx_build *b, sp_graph *h) {
    if (!h->parent || !in_scope(h->parent, b->root)) return h;
    sp_graph *p = ir_map_get(&b->pcopy, IR_PKEY(h));
    if (p) return p;
    sp_graph *kp = ir_map_get(&b->kgraph, IR_PKEY(h->parent));
    if (!kp) {
        sp_error(SP_ERR_INTERNAL, "expand: @%s is used before K(@%s) exists", h->name, h->parent->name);
        return NULL;
    }
    p = ir_graph_clone_into(b->m, h, kp, map_fv, b);
    if (p && ir_map_put(&b->pcopy, IR_PKEY(h), p)) return NULL;
    return p;
}

/* J(@h) for a call of h. */
static sp_graph *kx_of(kx_build *b, sp_graph *h) {
    if (h->parent && in_scope(h->parent, b->root)) {
        sp_graph *k = ir_map_get(&b->kgraph, IR_PKEY(h));
        if (k) return k;
        sp_graph *kp = ir_map_get(&b->kgraph, IR_PKEY(h->parent));
        if (!kp) {
            sp_error(SP_ERR_INTERNAL, "expand: K(@%s) is needed before K(@%s)", h->name, h->parent->name);
            return NULL;
        }
        return kx_nested(b, h, kp);
    }
    return kx_root(h, b->depth + 1);
}

static sp_node *fwd_of(kx_frame *fr, sp_node *x, sp_loc loc);

/* switch(c', P(a), P(b)): the primal value of a switch of graphs, made
 * when something uses it as a value. */
static sp_node *lazy_switch(kx_frame *fr, sp_node *s) {
    kx_build *b = fr->b;
    sp_node *in[3] = {fwd_of(fr, s->inputs[1], s->loc), fwd_of(fr, s->inputs[2], s->loc),
                      fwd_of(fr, s->inputs[3], s->loc)};
    sp_graph *kg = ir_map_get(&b->kgraph, IR_PKEY(s->graph));
    sp_node *r = in[0] && in[1] && in[2] && kg ? bcall(kg, RT_B_SWITCH, 3, in, s->loc) : NULL;
    if (r && ir_map_put(&b->fwd, IR_PKEY(s), r)) return NULL;
    return r;
}

static sp_node *fwd_of(kx_frame *fr, sp_node *x, sp_loc loc) {
    kx_build *b = fr->b;
    if (x->kind == SP_NODE_CONST) {
        sp_graph *h = const_graph(x);
        if (h) {
            sp_graph *p = primal_graph(b, h);
            return p ? cnode(fr->kg, sp_value_graph(p), x->loc) : NULL;
        }
        return ir_const_new(fr->kg, x->value, x->loc);
    }
    sp_node *r = ir_map_get(&b->fwd, IR_PKEY(x));
    if (r) return r;
    if (ir_map_get(&b->lazy, IR_PKEY(x))) return lazy_switch(fr, x);
    if (!x->graph || !in_scope(x->graph, b->root)) return x; /* outside: visible as it is */
    sp_error(SP_ERR_INTERNAL, "K(@%s): node %%%d is used before it is computed", fr->g->name, x->id);
    (void)loc;
    return NULL;
}

/* ---- gradients ------------------------------------------------------------------------- */

static sp_status contribute(kx_frame *fr, sp_node *x, sp_node *d, sp_loc loc);

/* Hands free variable v of a closure its gradient out of env d.  The env
 * keys it by v (a static K(h) and a run-time K of the original h) or, when
 * the closure went through a run-time J as the primal copy P(h), by the K
 * side's node that P(h) captures instead of v: both are read. */
static sp_status contribute_fv(kx_frame *fr, sp_node *v, sp_node *d, sp_loc loc) {
    sp_node *in[3] = {d, cnode(fr->bg, sp_value_int(ad_key_of(v)), loc), none_node(fr->bg, loc)};
    sp_status st = contribute(fr, v, bcall(fr->bg, RT_B_ENV_GETITEM, 3, in, loc), loc);
    sp_node *kv = ir_map_get(&fr->b->fwd, IR_PKEY(v));
    if (st || !kv || kv == v) return st;
    sp_node *in2[3] = {d, cnode(fr->bg, sp_value_int(ad_key_of(kv)), loc), none_node(fr->bg, loc)};
    return contribute(fr, v, bcall(fr->bg, RT_B_ENV_GETITEM, 3, in2, loc), loc);
}

static sp_status contribute(kx_frame *fr, sp_node *x, sp_node *d, sp_loc loc) {
    if (!d) return fail_status();
    if (x->kind == SP_NODE_CONST) {
        sp_graph *h = const_graph(x);
        if (!h) return SP_OK;
        for (int i = 0; i < h->n_fv; i++) {
            sp_status st = contribute_fv(fr, h->fv[i], d, loc);
            if (st) return st;
        }
        return SP_OK;
    }
    sp_node *a = ir_map_get(&fr->acc, IR_PKEY(x));
    if (a) {
        sp_node *in[2] = {a, d};
        if (!(d = bcall(fr->bg, RT_B_ADD_GRAD, 2, in, loc))) return fail_status();
    }
    return ir_map_put(&fr->acc, IR_PKEY(x), d);
}

/* Whether contributing to x can matter (constants other than graphs take none). */
static int takes_grad(const sp_node *x) { return x->kind != SP_NODE_CONST || const_graph(x); }

/* The gradient of a switch of graphs is the env of the branch taken: each
 * free variable of either branch reads its key once. */
static sp_status contribute_branches(kx_frame *fr, const sp_graph *a, const sp_graph *bb, sp_node *d, sp_loc loc) {
    const sp_graph *gs[2] = {a, bb};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < gs[k]->n_fv; i++) {
            sp_node *v = gs[k]->fv[i];
            int dup = 0;
            for (int j = 0; k == 1 && j < a->n_fv && !dup; j++) dup = a->fv[j] == v;
            if (dup) continue;
            sp_status st = contribute_fv(fr, v, d, loc);
            if (st) return st;
        }
    return SP_OK;
}

/* ---- forward ----------------------------------------------------------------------------- */

/* t = callee(args'); r' = t[0]; the step keeps bp = t[1]. */
static sp_status fwd_pair(kx_frame *fr, sp_node *r, sp_node *callee, kx_step *s) {
    int n = r->n_inputs;
    sp_node **in = malloc(sizeof *in * (size_t)n);
    if (!in) return sp_error(SP_ERR_NOMEM, "expand: out of memory");
    in[0] = callee;
    int ok = callee != NULL;
    for (int j = 1; j < n && ok; j++) ok = (in[j] = fwd_of(fr, r->inputs[j], r->loc)) != NULL;
    sp_node *t = ok ? ir_apply_new(fr->kg, n, in, r->loc) : NULL;
    free(in);
    if (!t) return fail_status();
    t->name = r->name;
    sp_node *v = item(fr->kg, t, 0, r->loc);
    s->kind = KS_CALL;
    s->bp = item(fr->kg, t, 1, r->loc);
    if (!v || !s->bp) return fail_status();
    return ir_map_put(&fr->b->fwd, IR_PKEY(r), v);
}

/* r' = same callee on the K-side inputs. */
static sp_status fwd_same(kx_frame *fr, sp_node *r, int kind, kx_step *s) {
    int n = r->n_inputs;
    sp_node **in = malloc(sizeof *in * (size_t)n);
    if (!in) return sp_error(SP_ERR_NOMEM, "expand: out of memory");
    int ok = 1;
    for (int j = 0; j < n && ok; j++) ok = (in[j] = fwd_of(fr, r->inputs[j], r->loc)) != NULL;
    sp_node *v = ok ? ir_apply_new(fr->kg, n, in, r->loc) : NULL;
    free(in);
    if (!v) return fail_status();
    v->name = r->name;
    s->kind = kind;
    return ir_map_put(&fr->b->fwd, IR_PKEY(r), v);
}

/* A primitive call whose backward is its rule: tensor inputs positional
 * (no Python scalar constants: the rules take tensors), a fixed arity. */
static sp_graph *prim_rule(kx_frame *fr, const sp_node *r, int op) {
    if (op < 0 || op >= SP_OP_COUNT || sp_op_defs[op].n_in < 0) return NULL;
    for (int j = 1; j < r->n_inputs; j++) {
        const sp_node *x = r->inputs[j];
        if (x->kind == SP_NODE_CONST && !is_keyword_input(x) && x->value->kind != SP_V_TENSOR) return NULL;
    }
    char name[96];
    snprintf(name, sizeof name, "bprop_%s", sp_op_name(op));
    sp_graph *g = rule_copy(fr->b->m, name, 0);
    if (!g) sp_clear_error(); /* no rule: the run-time J reports it when the gradient is needed */
    return g;
}

/* The callee value c stands for, seen through the front end's effect
 * threading tuple_getitem(make_tuple(..., f, ...), k). */
static sp_node *resolve_callee(sp_node *c) {
    for (int depth = 0; depth < 64; depth++) {
        int64_t k;
        if (call_id(c) != RT_B_TUPLE_GETITEM || c->n_inputs != 3 || c->inputs[2]->kind != SP_NODE_CONST ||
            c->inputs[2]->value->kind != SP_V_INT)
            return c;
        const sp_node *t = c->inputs[1];
        k = c->inputs[2]->value->u.i;
        if (call_id(t) != RT_B_MAKE_TUPLE || k < 0 || k >= t->n_inputs - 1) return c;
        c = t->inputs[k + 1];
    }
    return c;
}

static sp_status forward_step(kx_frame *fr, sp_node *r, kx_step *s) {
    kx_build *b = fr->b;
    sp_node *c = resolve_callee(r->inputs[0]);
    int nargs = r->n_inputs - 1;
    if (c->kind == SP_NODE_CONST && c->value->kind == SP_V_PRIM && (s->rule = prim_rule(fr, r, c->value->u.prim)))
        return fwd_same(fr, r, KS_PRIM, s);
    sp_graph *h = const_graph(c);
    if (h && graph_callable(h, nargs) && !any_keyword(r)) {
        sp_graph *kh = kx_of(b, h);
        return kh ? fwd_pair(fr, r, cnode(fr->kg, sp_value_graph(kh), r->loc), s) : fail_status();
    }
    if (switch_of_graphs(c, nargs) && !any_keyword(r)) {
        sp_node *js = ir_map_get(&b->jsw, IR_PKEY(c));
        if (!js) {
            sp_graph *ka = kx_of(b, const_graph(c->inputs[2]));
            sp_graph *kb = ka ? kx_of(b, const_graph(c->inputs[3])) : NULL;
            sp_node *in[3] = {kb ? fwd_of(fr, c->inputs[1], c->loc) : NULL, NULL, NULL};
            if (in[0]) {
                in[1] = cnode(fr->kg, sp_value_graph(ka), c->loc);
                in[2] = cnode(fr->kg, sp_value_graph(kb), c->loc);
            }
            js = in[0] && in[1] && in[2] ? bcall(fr->kg, RT_B_SWITCH, 3, in, c->loc) : NULL;
            if (!js || ir_map_put(&b->jsw, IR_PKEY(c), js)) return fail_status();
        }
        return fwd_pair(fr, r, js, s);
    }
    switch (builtin_id(c)) {
    case RT_B_MAKE_TUPLE:
    case RT_B_MAKE_LIST: return fwd_same(fr, r, KS_TUPLE, s);
    case RT_B_TUPLE_GETITEM:
    case RT_B_GETITEM: {
        int64_t k;
        const sp_node *t = nargs == 2 ? r->inputs[1] : NULL, *i = nargs == 2 ? r->inputs[2] : NULL;
        int known = t && (call_id(t) == RT_B_MAKE_TUPLE || call_id(t) == RT_B_MAKE_LIST);
        if (!i || i->kind != SP_NODE_CONST || i->value->kind != SP_V_INT || (k = i->value->u.i) < 0) break;
        if (!known && builtin_id(c) == RT_B_GETITEM) break; /* may index a tensor */
        if (known && k >= t->n_inputs - 1) break;          /* an error: the run time reports it */
        s->len = known ? t->n_inputs - 1 : -1;
        s->index = k;
        return fwd_same(fr, r, KS_GETITEM, s);
    }
    case RT_B_SWITCH:
        if (nargs != 3) break;
        s->kind = KS_SWITCH;
        if (const_graph(r->inputs[2]) && const_graph(r->inputs[3]))
            return ir_map_put(&b->lazy, IR_PKEY(r), (void *)1); /* often only called: J'd at the call */
        return fwd_same(fr, r, KS_SWITCH, s);
    case RT_B_MAKE_KEYWORD:
        if (nargs != 2) break;
        return fwd_same(fr, r, KS_KEYWORD, s);
    default: break;
    }
    /* the run-time J of j.c */
    sp_node *f = fwd_of(fr, r->inputs[0], r->loc);
    return fwd_pair(fr, r, f ? bcall(fr->kg, RT_B_J, 1, &f, r->loc) : NULL, s);
}

/* ---- backward ------------------------------------------------------------------------------ */

static sp_status backward_step(kx_frame *fr, sp_node *r, const kx_step *s, sp_node *d) {
    sp_graph *bg = fr->bg;
    sp_loc loc = r->loc;
    sp_node *rf = ir_map_get(&fr->b->fwd, IR_PKEY(r));
    switch (s->kind) {
    case KS_PRIM: {
        int n = r->n_inputs, np = 0, nk = 0;
        sp_node **in = malloc(sizeof *in * (size_t)(n + 2)), **kw = malloc(sizeof *kw * (size_t)n);
        int *at = malloc(sizeof *at * (size_t)n);
        sp_status st = SP_OK;
        if (!in || !kw || !at) st = sp_error(SP_ERR_NOMEM, "expand: out of memory");
        for (int j = 1; j < n && !st; j++) {
            sp_node *x = fwd_of(fr, r->inputs[j], loc);
            if (!x) st = fail_status();
            else if (is_keyword_input(r->inputs[j])) kw[nk++] = x;
            else at[np] = j, in[np++] = x;
        }
        sp_node *fz[2] = {d, rf};
        if (!st) {
            in[np] = rf;
            in[np + 1] = bcall(bg, RT_B_FILL_ZEROS, 2, fz, loc);
            memcpy(in + np + 2, kw, sizeof *kw * (size_t)nk);
        }
        sp_node *res = st ? NULL : call_graph(bg, s->rule, np + 2 + nk, in, loc);
        if (!st && !res) st = fail_status();
        for (int k = 0; k < np && !st; k++)
            if (takes_grad(r->inputs[at[k]])) st = contribute(fr, r->inputs[at[k]], item(bg, res, k, loc), loc);
        free(in);
        free(kw);
        free(at);
        return st;
    }
    case KS_CALL: {
        sp_node *in[2] = {s->bp, d};
        sp_node *res = ir_apply_new(bg, 2, in, loc);
        if (!res) return fail_status();
        for (int j = 0; j < r->n_inputs; j++)
            if (takes_grad(r->inputs[j])) {
                sp_status st = contribute(fr, r->inputs[j], item(bg, res, j, loc), loc);
                if (st) return st;
            }
        return SP_OK;
    }
    case KS_TUPLE:
        for (int j = 1; j < r->n_inputs; j++)
            if (takes_grad(r->inputs[j])) {
                sp_status st = contribute(fr, r->inputs[j], grad_item(bg, d, j - 1, loc), loc);
                if (st) return st;
            }
        return SP_OK;
    case KS_GETITEM: {
        sp_node *t = r->inputs[1], *g = NULL;
        if (!takes_grad(t)) return SP_OK;
        if (s->len >= 0) {
            sp_node **in = malloc(sizeof *in * (size_t)(s->len + 1));
            if (!in) return sp_error(SP_ERR_NOMEM, "expand: out of memory");
            in[0] = cnode(bg, sp_value_builtin(RT_B_MAKE_TUPLE), loc);
            for (int k = 0; k < s->len; k++) in[k + 1] = k == s->index ? d : none_node(bg, loc);
            g = ir_apply_new(bg, s->len + 1, in, loc);
            free(in);
        } else {
            sp_node *tf = fwd_of(fr, t, loc);
            sp_node *one = bcall(bg, RT_B_MAKE_TUPLE, 1, &d, loc);
            sp_node *len = tf ? bcall(bg, RT_B_LEN, 1, &tf, loc) : NULL;
            sp_node *in[3] = {one, int_tuple1(bg, s->index, loc), len};
            g = len ? bcall(bg, RT_B_SCATTER_TUPLE, 3, in, loc) : NULL;
        }
        return contribute(fr, t, g, loc);
    }
    case KS_SWITCH: {
        sp_graph *a = const_graph(r->inputs[2]), *b = const_graph(r->inputs[3]);
        if (a && b) return contribute_branches(fr, a, b, d, loc);
        sp_node *c = fwd_of(fr, r->inputs[1], loc);
        for (int k = 0; k < 2; k++) {
            sp_node *x = r->inputs[2 + k];
            if (!takes_grad(x)) continue;
            sp_node *in[3] = {c, k == 0 ? d : none_node(bg, loc), k == 0 ? none_node(bg, loc) : d};
            sp_status st = contribute(fr, x, c ? bcall(bg, RT_B_SWITCH, 3, in, loc) : NULL, loc);
            if (st) return st;
        }
        return SP_OK;
    }
    case KS_KEYWORD: return takes_grad(r->inputs[2]) ? contribute(fr, r->inputs[2], d, loc) : SP_OK;
    default: return SP_OK;
    }
}

/* ---- one graph -------------------------------------------------------------------------------- */

static sp_status kx_body(kx_frame *fr) {
    sp_graph *g = fr->g, *kg = fr->kg;
    kx_build *b = fr->b;
    char name[256];
    for (int i = 0; i < g->n_params; i++) {
        const char *pn = g->param_names && g->param_names[i] ? g->param_names[i] : "_";
        sp_node *p = ir_param_new(kg, pn, g->params[i]->loc);
        if (!p || ir_map_put(&b->fwd, IR_PKEY(g->params[i]), p)) return fail_status();
        if (g->defaults && g->defaults[i]) {
            kg->defaults[i] = g->defaults[i];
            sp_value_retain(kg->defaults[i]);
        }
    }
    kg->has_varargs = g->has_varargs;
    int n = 0;
    sp_node **nodes = ir_graph_nodes(g, &n);
    if (!nodes) return fail_status();
    kx_step *steps = calloc((size_t)n + 1, sizeof *steps);
    sp_status st = steps ? SP_OK : sp_error(SP_ERR_NOMEM, "expand: out of memory");
    for (int k = 0; k < n && !st; k++)
        if (nodes[k]->kind == SP_NODE_APPLY) st = forward_step(fr, nodes[k], &steps[k]);
    sp_node *out = st ? NULL : fwd_of(fr, g->output, g->output->loc);
    if (!st && !out) st = fail_status();
    if (!st) {
        snprintf(name, sizeof name, "K.%s.bprop", g->name ? g->name : "_");
        fr->bg = ir_graph_new(b->m, name, kg, g->loc);
        sp_node *dout = fr->bg ? ir_param_new(fr->bg, "dout", g->loc) : NULL;
        st = dout ? contribute(fr, g->output, dout, g->loc) : fail_status();
    }
    for (int k = n - 1; k >= 0 && !st; k--) {
        sp_node *d = nodes[k]->kind == SP_NODE_APPLY ? ir_map_get(&fr->acc, IR_PKEY(nodes[k])) : NULL;
        if (d) st = backward_step(fr, nodes[k], &steps[k], d);
    }
    free(steps);
    free(nodes);
    if (st) return st;
    sp_graph *bg = fr->bg;
    sp_node *env = bcall(bg, RT_B_ENV_NEW, 0, NULL, g->loc);
    for (int i = 0; i < g->n_fv && env; i++) {
        sp_node *a = ir_map_get(&fr->acc, IR_PKEY(g->fv[i]));
        if (!a) continue;
        sp_node *in[3] = {env, cnode(bg, sp_value_int(ad_key_of(g->fv[i])), g->loc), a};
        env = bcall(bg, RT_B_ENV_SETITEM, 3, in, g->loc);
    }
    sp_node **items = malloc(sizeof *items * (size_t)(g->n_params + 2));
    if (!items || !env) {
        free(items);
        return fail_status();
    }
    items[0] = cnode(bg, sp_value_builtin(RT_B_MAKE_TUPLE), g->loc);
    items[1] = env;
    int ok = items[0] != NULL;
    for (int i = 0; i < g->n_params && ok; i++) {
        sp_node *d = ir_map_get(&fr->acc, IR_PKEY(g->params[i]));
        ok = (items[i + 2] = d ? d : none_node(bg, g->loc)) != NULL;
    }
    bg->output = ok ? ir_apply_new(bg, g->n_params + 2, items, g->loc) : NULL;
    free(items);
    if (!bg->output) return fail_status();
    sp_node *pair[2] = {out, cnode(kg, sp_value_graph(bg), g->loc)};
    kg->output = pair[1] ? bcall(kg, RT_B_MAKE_TUPLE, 2, pair, g->loc) : NULL;
    return kg->output ? SP_OK : fail_status();
}

static sp_graph *kx_nested(kx_build *b, sp_graph *g, sp_graph *kparent) {
    if (!g->output) {
        sp_error(SP_ERR_INTERNAL, "expand: @%s has no output", g->name);
        return NULL;
    }
    char name[256];
    snprintf(name, sizeof name, "K.%s", g->name ? g->name : "_");
    sp_graph *kg = ir_graph_new(b->m, name, kparent, g->loc);
    if (!kg || ir_map_put(&b->kgraph, IR_PKEY(g), kg)) return NULL;
    kx_frame fr;
    memset(&fr, 0, sizeof fr);
    fr.b = b;
    fr.g = g;
    fr.kg = kg;
    sp_status st = kx_body(&fr);
    ir_map_free(&fr.acc);
    if (st) {
        if (!sp_last_error()[0]) sp_error(st, "K(@%s): failed", g->name);
        return NULL;
    }
    return kg;
}

static sp_graph *kx_root(sp_graph *g, int depth) {
    if (g->kx_graph && g->kx_graph->parent == g->parent) return g->kx_graph;
    if (depth > KX_MAX_DEPTH) {
        sp_error(SP_ERR_INTERNAL, "expand: functions nested %d deep in K", depth);
        return NULL;
    }
    kx_build b;
    memset(&b, 0, sizeof b);
    b.m = g->module;
    b.root = g;
    b.depth = depth;
    /* cached before the body: recursion refers to K(g) itself */
    sp_graph *saved = g->kx_graph;
    char name[256];
    snprintf(name, sizeof name, "K.%s", g->name ? g->name : "_");
    sp_graph *kg = ir_graph_new(b.m, name, g->parent, g->loc);
    sp_status st = kg ? ir_map_put(&b.kgraph, IR_PKEY(g), kg) : fail_status();
    if (!st) {
        g->kx_graph = kg;
        kx_frame fr;
        memset(&fr, 0, sizeof fr);
        fr.b = &b;
        fr.g = g;
        fr.kg = kg;
        st = kx_body(&fr);
        ir_map_free(&fr.acc);
    }
    ir_map_free(&b.fwd);
    ir_map_free(&b.kgraph);
    ir_map_free(&b.pcopy);
    ir_map_free(&b.jsw);
    ir_map_free(&b.lazy);
    if (st) {
        g->kx_graph = saved;
        if (!sp_last_error()[0]) sp_error(st, "K(@%s): failed", g->name);
        return NULL;
    }
    return kg;
}

sp_graph *ad_kx(sp_graph *g) {
    if (!g || !g->module || !g->output) {
        sp_error(SP_ERR_INTERNAL, "expand: a graph without module or output");
        return NULL;
    }
    return kx_root(g, 0);
}

/* ---- the graph spore.grad runs ------------------------------------------------------------------ */

static int check_example(const sp_module *m, sp_loc loc, const sp_value *v, int64_t i) {
    if (!v) return 0;
    if (v->kind == SP_V_INT || v->kind == SP_V_BOOL) {
        sp_error_at(m, loc, SP_ERR_TYPE, "grad: input %lld is an integer (%s); gradients are taken with respect to "
                    "floating-point inputs", (long long)i, sp_value_kind_name(v));
        return -1;
    }
    if (v->kind == SP_V_TENSOR && !sp_dtype_is_float(v->u.tensor->dtype)) {
        sp_error_at(m, loc, SP_ERR_TYPE, "grad: input %lld is a Tensor of %s; gradients are taken with respect to "
                    "floating-point inputs", (long long)i, sp_dtype_name(v->u.tensor->dtype));
        return -1;
    }
    return 0;
}

static int check_position(const sp_module *m, sp_loc loc, const sp_value *p, int n, const ad_grad_opts *o) {
    if (p->kind != SP_V_INT) {
        sp_error_at(m, loc, SP_ERR_TYPE, "grad: grad_position must be an int or a tuple of ints, not a tuple holding %s",
                    sp_value_kind_name(p));
        return -1;
    }
    if (p->u.i < 0 || p->u.i >= n) {
        sp_error_at(m, loc, SP_ERR_ARG, "grad: grad_position %lld is out of range for a call with %d input%s",
                    (long long)p->u.i, n, n == 1 ? "" : "s");
        return -1;
    }
    return o->arg_examples ? check_example(m, loc, o->arg_examples[p->u.i], p->u.i) : 0;
}

/* zeros_for(g, a): g, or zeros like a when g is None (_ad_zeros_for). */
static sp_node *zeros_for(sp_graph *h, sp_graph *zf, sp_node *g, sp_node *a, sp_loc loc) {
    sp_node *in[2] = {g, a};
    return g && a ? call_graph(h, zf, 2, in, loc) : NULL;
}

/* Whether a user rule (f_bprop) is among the graphs g may call: g itself,
 * the graphs its constants name, transitively. */
int ad_reaches_custom_bprop(const sp_graph *g) {
    const sp_module *m = g->module;
    const sp_graph **stack = malloc(sizeof *stack * (size_t)(m->n_graphs + 1));
    ir_map seen;
    memset(&seen, 0, sizeof seen);
    int n = 0, found = 0;
    if (!stack) return 1;
    stack[n++] = g;
    ir_map_put(&seen, IR_PKEY(g), (void *)1);
    while (n > 0 && !found) {
        const sp_graph *x = stack[--n];
        if (has_custom_bprop(x)) found = 1;
        int k = 0;
        sp_node **nodes = x->output ? ir_graph_nodes(x, &k) : NULL;
        for (int i = 0; i < k; i++)
            for (int j = 0; j < nodes[i]->n_inputs; j++) {
                sp_graph *h = const_graph(nodes[i]->inputs[j]);
                if (h && h->module == m && !ir_map_get(&seen, IR_PKEY(h)) && n < m->n_graphs) {
                    ir_map_put(&seen, IR_PKEY(h), (void *)1);
                    stack[n++] = h;
                }
            }
        sp_graph *o = x->output ? const_graph(x->output) : NULL;
        if (o && o->module == m && !ir_map_get(&seen, IR_PKEY(o)) && n < m->n_graphs) {
            ir_map_put(&seen, IR_PKEY(o), (void *)1);
            stack[n++] = o;
        }
        free(nodes);
    }
    free(stack);
    ir_map_free(&seen);
    return found;
}

sp_status ad_grad_check(sp_module *m, sp_graph *f, const ad_grad_opts *o, sp_loc loc) {
    if (!m || !f || !o || !o->pos || f->module != m)
        return sp_error(SP_ERR_ARG, "ad_expand_grad: NULL or foreign argument");
    int n = f->n_params;
    if (f->has_varargs || !f->output)
        return sp_error_at(m, loc, SP_ERR_UNSUPPORTED, "grad: cannot expand the gradient of @%s, which takes *args",
                           f->name);
    const sp_value *pos = o->pos;
    if (pos->kind == SP_V_INT) {
        if (check_position(m, loc, pos, n, o)) return sp_last_status();
    } else if (pos->kind == SP_V_TUPLE) {
        for (int i = 0; i < pos->u.seq.n; i++)
            if (check_position(m, loc, pos->u.seq.items[i], n, o)) return sp_last_status();
    } else if (pos->kind != SP_V_NONE && !(pos->kind == SP_V_BOOL && !pos->u.b)) {
        return sp_error_at(m, loc, SP_ERR_TYPE, "grad: grad_position must be an int, a tuple of ints or None, not %s",
                           sp_value_kind_name(pos));
    }
    for (int i = 0; i < o->n_weights; i++) {
        const sp_node *w = o->weights[i];
        int ok = w->kind == SP_NODE_PARAM && w->graph == f;
        for (int k = 0; k < f->n_fv && !ok; k++) ok = f->fv[k] == w;
        if (!ok)
            return sp_error_at(m, loc, SP_ERR_ARG, "grad: weight %d is not a Tensor the function uses from an enclosing "
                               "function (weights are the tensors a closure captures)", i);
    }
    return SP_OK;
}

sp_graph *ad_expand_grad(sp_module *m, sp_graph *f, const ad_grad_opts *o, sp_loc loc) {
    if (ad_grad_check(m, f, o, loc)) return NULL;
    int n = f->n_params;
    const sp_value *pos = o->pos;
    /* a user rule for f itself: its run-time J (j.c runs f_bprop) */
    sp_graph *kf = has_custom_bprop(f) ? f : ad_kx(f);
    sp_graph *zf = kf ? rule_copy(m, "_ad_zeros_for", 1) : NULL;
    if (!zf) return NULL;
    char name[256];
    snprintf(name, sizeof name, "grad.%s", f->name ? f->name : "_");
    sp_graph *h = ir_graph_new(m, name, f->parent, loc);
    if (!h) return NULL;
    sp_node **args = malloc(sizeof *args * (size_t)(n + 1));
    if (!args) {
        sp_error(SP_ERR_NOMEM, "expand: out of memory");
        return NULL;
    }
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        const char *pn = f->param_names && f->param_names[i] ? f->param_names[i] : "_";
        ok = (args[i] = ir_param_new(h, pn, f->params[i]->loc)) != NULL;
        if (ok && f->defaults && f->defaults[i]) {
            h->defaults[i] = f->defaults[i];
            sp_value_retain(h->defaults[i]);
        }
    }
    sp_node *sens = ok && o->sens_param ? ir_param_new(h, "sens", loc) : NULL;
    sp_node *t = NULL;
    if (ok && kf == f) {
        sp_node *fc = cnode(h, sp_value_graph(f), loc);
        sp_node *jf = fc ? bcall(h, RT_B_J, 1, &fc, loc) : NULL;
        sp_node **in = jf ? malloc(sizeof *in * (size_t)(n + 1)) : NULL;
        if (in) {
            in[0] = jf;
            memcpy(in + 1, args, sizeof *in * (size_t)n);
            t = ir_apply_new(h, n + 1, in, loc);
            free(in);
        }
    } else if (ok) {
        t = call_graph(h, kf, n, args, loc);
    }
    sp_node *out = item(h, t, 0, loc), *bp = item(h, t, 1, loc);
    if (out && !o->sens_param) {
        if (o->has_aux) {
            sp_node *o0 = item(h, out, 0, loc);
            sp_node *s0 = o0 ? bcall(h, RT_B_SENS_OF, 1, &o0, loc) : NULL;
            sp_node *in[3] = {s0 ? bcall(h, RT_B_MAKE_TUPLE, 1, &s0, loc) : NULL, int_tuple1(h, 0, loc),
                              bcall(h, RT_B_LEN, 1, &out, loc)};
            sens = in[0] && in[1] && in[2] ? bcall(h, RT_B_SCATTER_TUPLE, 3, in, loc) : NULL;
        } else {
            sens = bcall(h, RT_B_SENS_OF, 1, &out, loc);
        }
    }
    sp_node *r = NULL;
    if (bp && sens) {
        sp_node *in[2] = {bp, sens};
        r = ir_apply_new(h, 2, in, loc);
    }
    sp_node *g = NULL;
    if (r) {
        if (pos->kind == SP_V_INT) {
            g = zeros_for(h, zf, item(h, r, pos->u.i + 1, loc), args[pos->u.i], loc);
        } else if (pos->kind == SP_V_TUPLE || pos->kind == SP_V_NONE) {
            int k = pos->kind == SP_V_TUPLE ? pos->u.seq.n : n;
            sp_node **in = malloc(sizeof *in * (size_t)(k + 1));
            if (in) {
                int i;
                for (i = 0; i < k; i++) {
                    int64_t p = pos->kind == SP_V_TUPLE ? pos->u.seq.items[i]->u.i : i;
                    if (!(in[i + 1] = zeros_for(h, zf, item(h, r, p + 1, loc), args[p], loc))) break;
                }
                in[0] = cnode(h, sp_value_builtin(RT_B_MAKE_TUPLE), loc);
                g = i == k && in[0] ? ir_apply_new(h, k + 1, in, loc) : NULL;
                free(in);
            }
        } else {
            g = none_node(h, loc);
        }
    }
    if (g && o->n_weights > 0) {
        sp_node **in = malloc(sizeof *in * (size_t)(o->n_weights + 1));
        sp_node *gw = NULL, *env = item(h, r, 0, loc);
        if (in && env) {
            int i;
            for (i = 0; i < o->n_weights; i++) {
                sp_node *w = o->weights[i], *d;
                if (w->kind == SP_NODE_PARAM && w->graph == f) {
                    int p = 0;
                    while (p < n && f->params[p] != w) p++;
                    d = zeros_for(h, zf, item(h, r, p + 1, loc), args[p], loc);
                } else {
                    sp_node *e[3] = {env, cnode(h, sp_value_int(ad_key_of(w)), loc), none_node(h, loc)};
                    d = zeros_for(h, zf, bcall(h, RT_B_ENV_GETITEM, 3, e, loc), w, loc);
                }
                if (!(in[i + 1] = d)) break;
            }
            in[0] = cnode(h, sp_value_builtin(RT_B_MAKE_TUPLE), loc);
            gw = i == o->n_weights && in[0] ? ir_apply_new(h, o->n_weights + 1, in, loc) : NULL;
        }
        free(in);
        if (pos->kind == SP_V_BOOL) {
            g = gw;
        } else {
            sp_node *pair[2] = {g, gw};
            g = gw ? bcall(h, RT_B_MAKE_TUPLE, 2, pair, loc) : NULL;
        }
    }
    sp_node *res = NULL;
    if (g) {
        if (o->has_aux && !o->with_value) {
            sp_node *tl[2] = {out, cnode(h, sp_value_int(1), loc)};
            sp_node *pair[2] = {g, bcall(h, RT_B_TUPLE_TAIL, 2, tl, loc)};
            res = pair[1] ? bcall(h, RT_B_MAKE_TUPLE, 2, pair, loc) : NULL;
        } else if (o->with_value) {
            sp_node *pair[2] = {out, g};
            res = bcall(h, RT_B_MAKE_TUPLE, 2, pair, loc);
        } else {
            res = g;
        }
    }
    free(args);
    if (!res) {
        if (!sp_last_error()[0]) sp_error(SP_ERR_NOMEM, "expand: out of memory");
        return NULL;
    }
    h->output = res;
    return h;
}
