/*
 * expand_grad.c -- the pass that turns calls of the gradient API on a
 * known function into calls of the gradient graph ad_expand_grad builds
 * (src/ad/expand.h).
 *
 * It looks for a call n = F(args...) whose callee F is, once read through
 * builtin.api and partials of it (fold and beta produce these spellings):
 *   spore.grad(@f, grad_position, weights, has_aux)
 *   spore.value_and_grad(@f, ...)
 *   ops.GradOperation(get_all, get_by_list, sens_param)(@f[, weights])
 *   spore._grad_operation(get_all, get_by_list, sens_param, @f[, weights])
 * with every option a constant (weights: the captured nodes themselves,
 * one or a make_tuple/make_list of them), f a graph without *args, and
 * the call passing exactly f's parameters (and the sens) by position.
 * n's callee becomes @grad.f, in place, so ids and effect order stay; F
 * is left for dce.
 *
 * Functions that reach a user backward rule (f_bprop) stay run-time calls
 * too: an error such a rule raises belongs at the user's call, where only
 * the run-time API can move it.
 *
 * Errors stay where the program puts them.  Whatever the run-time API
 * would reject (an integer input known from a constant argument, a
 * grad_position out of range, a weight that is not captured, a keyword
 * argument) is not rewritten: the VM reports it at run time, at the same
 * line, with the same words.  A call whose arguments' types are unknown is
 * rewritten, and an integer Tensor among them then gets a zero gradient
 * rather than the run-time API's error -- the specializer, which knows the
 * types, calls ad_expand_grad with the argument examples and keeps it.
 */
#include <stdlib.h>
#include <string.h>

#include "ad/expand.h"
#include "compiler/passes/passes.h"

#define EG_MAX_ARGS 16

typedef struct eg_arg {
    const char *kw; /* keyword name, or NULL for positional */
    sp_node *node;  /* the argument node, or NULL when only the value is known */
    const sp_value *val; /* its constant value, or NULL */
} eg_arg;

typedef struct eg_call {
    const char *qname;
    int n;
    eg_arg a[EG_MAX_ARGS];
} eg_call;

static int push(eg_call *c, const char *kw, sp_node *node, const sp_value *val) {
    if (c->n >= EG_MAX_ARGS) return 0;
    c->a[c->n++] = (eg_arg){kw, node, val};
    return 1;
}

static int push_node(eg_call *c, sp_node *x) {
    if (x->kind == SP_NODE_CONST && x->value->kind == SP_V_KEYWORD)
        return push(c, x->value->u.kw.name, NULL, x->value->u.kw.value);
    if (pass_is_call(x, PB_MAKE_KEYWORD) && x->n_inputs == 3) {
        const sp_value *nm = x->inputs[1]->kind == SP_NODE_CONST ? x->inputs[1]->value : NULL;
        if (!nm || nm->kind != SP_V_STR) return 0;
        sp_node *v = x->inputs[2];
        return push(c, nm->u.str.s, v, v->kind == SP_NODE_CONST ? v->value : NULL);
    }
    return push(c, NULL, x, x->kind == SP_NODE_CONST ? x->value : NULL);
}

/* Reads a call of the API through builtin.api and partials: 1 and *c
 * filled (bound arguments first), or 0. */
static int read_api(const sp_node *n, eg_call *c) {
    memset(c, 0, sizeof *c);
    if (n->kind != SP_NODE_APPLY || n->n_inputs < 1) return 0;
    const sp_node *f = n->inputs[0];
    int first = 1;
    if (f->kind == SP_NODE_CONST && f->value->kind == SP_V_PARTIAL) {
        const sp_value *p = f->value;
        if (p->u.partial.fn->kind != SP_V_BUILTIN || p->u.partial.fn->u.builtin != PB_API || p->u.partial.n < 1 ||
            p->u.partial.args[0]->kind != SP_V_STR)
            return 0;
        c->qname = p->u.partial.args[0]->u.str.s;
        for (int i = 1; i < p->u.partial.n; i++) {
            const sp_value *v = p->u.partial.args[i];
            if (v->kind == SP_V_KEYWORD ? !push(c, v->u.kw.name, NULL, v->u.kw.value) : !push(c, NULL, NULL, v))
                return 0;
        }
    } else if (pass_is_builtin(f, PB_API)) {
        if (n->n_inputs < 2 || n->inputs[1]->kind != SP_NODE_CONST || n->inputs[1]->value->kind != SP_V_STR) return 0;
        c->qname = n->inputs[1]->value->u.str.s;
        first = 2;
    } else {
        return 0;
    }
    for (int i = first; i < n->n_inputs; i++)
        if (!push_node(c, n->inputs[i])) return 0;
    return 1;
}

/* Binds c's arguments to `names` (positional first, then keywords); 0 on
 * a keyword it does not know or an argument given twice. */
static int bind(const eg_call *c, const char *const *names, int n_names, const eg_arg **out) {
    for (int i = 0; i < n_names; i++) out[i] = NULL;
    int p = 0;
    for (int i = 0; i < c->n; i++) {
        int k = -1;
        if (!c->a[i].kw) k = p++;
        else
            for (int j = 0; j < n_names; j++)
                if (!strcmp(names[j], c->a[i].kw)) k = j;
        if (k < 0 || k >= n_names || out[k]) return 0;
        out[k] = &c->a[i];
    }
    return 1;
}

/* A constant bool option: 1/0, or -1 when not constant. */
static int flag_of(const eg_arg *a, int dflt) {
    if (!a) return dflt;
    if (!a->val) return -1;
    if (a->val->kind == SP_V_BOOL) return a->val->u.b;
    if (a->val->kind == SP_V_INT) return a->val->u.i != 0;
    if (a->val->kind == SP_V_NONE) return 0;
    return -1;
}

typedef struct eg_plan {
    sp_graph *f;
    const sp_value *pos; /* borrowed, or one of the statics below */
    int has_aux, with_value, sens_param;
    eg_arg weights; /* node NULL and val NULL: none */
    int has_weights;
} eg_plan;

/* What grad function the callee F of a call makes, or 0. */
static int read_grad_fn(const sp_node *F, eg_plan *p, sp_value *zero, sp_value *none, sp_value *no) {
    eg_call c;
    memset(p, 0, sizeof *p);
    if (!read_api(F, &c)) {
        /* GradOperation(...)(fn, weights): F calls the result of ops.GradOperation */
        if (F->kind != SP_NODE_APPLY || F->n_inputs < 2) return 0;
        eg_call go;
        if (!read_api(F->inputs[0], &go) || strcmp(go.qname, "ops.GradOperation") != 0) return 0;
        static const char *gn[] = {"get_all", "get_by_list", "sens_param"};
        const eg_arg *ga[3];
        if (!bind(&go, gn, 3, ga)) return 0;
        memset(&c, 0, sizeof c);
        c.qname = "spore._grad_operation";
        for (int i = 0; i < 3; i++)
            if (!push(&c, NULL, NULL, ga[i] && ga[i]->val ? ga[i]->val : (ga[i] ? NULL : no))) return 0;
        if (!ga[0] || !ga[1] || !ga[2]) { /* absent options are False; a non-constant one stops us */
            for (int i = 0; i < 3; i++)
                if (ga[i] && !ga[i]->val) return 0;
        }
        for (int i = 1; i < F->n_inputs; i++)
            if (!push_node(&c, F->inputs[i])) return 0;
    }
    const eg_arg *fn = NULL;
    if (!strcmp(c.qname, "spore.grad") || !strcmp(c.qname, "spore.value_and_grad")) {
        static const char *names[] = {"fn", "grad_position", "weights", "has_aux"};
        const eg_arg *a[4];
        if (!bind(&c, names, 4, a) || !a[0]) return 0;
        fn = a[0];
        p->with_value = !strcmp(c.qname, "spore.value_and_grad");
        p->has_aux = flag_of(a[3], 0);
        if (a[2] && !(a[2]->val && a[2]->val->kind == SP_V_NONE)) p->weights = *a[2], p->has_weights = 1;
        if (a[1] && !a[1]->val) return 0;
        p->pos = a[1] ? a[1]->val : zero;
        if (p->pos->kind == SP_V_NONE && p->has_weights) p->pos = no; /* only the weights */
        else if (p->pos->kind == SP_V_NONE) return 0;          /* an error the API reports */
    } else if (!strcmp(c.qname, "spore._grad_operation")) {
        static const char *names[] = {"get_all", "get_by_list", "sens_param", "fn", "weights"};
        const eg_arg *a[5];
        if (!bind(&c, names, 5, a) || !a[3]) return 0;
        fn = a[3];
        int all = flag_of(a[0], 0), by_list = flag_of(a[1], 0);
        p->sens_param = flag_of(a[2], 0);
        if (all < 0 || by_list < 0) return 0;
        int has_w = a[4] && !(a[4]->val && a[4]->val->kind == SP_V_NONE);
        if (by_list && !has_w) return 0; /* the API's error */
        if (by_list) p->weights = *a[4], p->has_weights = 1;
        p->pos = all ? none : by_list ? no : zero;
    } else {
        return 0;
    }
    if (p->has_aux < 0 || p->sens_param < 0) return 0;
    if (!fn->node || !(p->f = pass_const_graph(fn->node))) return 0;
    return 1;
}

/* The weight nodes: one node, or the items of a make_tuple/make_list. */
static int weight_nodes(const eg_arg *w, sp_node **out, int *n) {
    *n = 0;
    if (!w) return 1;
    if (!w->node || w->node->kind == SP_NODE_CONST) return 0;
    if (pass_is_call(w->node, PB_MAKE_TUPLE) || pass_is_call(w->node, PB_MAKE_LIST)) {
        if (w->node->n_inputs - 1 > EG_MAX_ARGS) return 0;
        for (int i = 1; i < w->node->n_inputs; i++) out[(*n)++] = w->node->inputs[i];
        return 1;
    }
    out[(*n)++] = w->node;
    return 1;
}

/* 1 rewritten, 0 not, -1 error. */
static int rewrite(sp_module *m, sp_node *call, sp_value *zero, sp_value *none, sp_value *no) {
    eg_plan p;
    if (!read_grad_fn(call->inputs[0], &p, zero, none, no)) return 0;
    sp_graph *f = p.f;
    int nargs = call->n_inputs - 1;
    if (f->module != m || f->has_varargs || !f->output || nargs != f->n_params + p.sens_param ||
        nargs > EG_MAX_ARGS || ad_reaches_custom_bprop(f))
        return 0;
    sp_value *examples[EG_MAX_ARGS] = {0};
    for (int i = 0; i < nargs; i++) {
        sp_node *x = call->inputs[1 + i];
        if (pass_is_call(x, PB_MAKE_KEYWORD) || (x->kind == SP_NODE_CONST && x->value->kind == SP_V_KEYWORD)) return 0;
        if (x->kind == SP_NODE_CONST) examples[i] = x->value;
    }
    sp_node *w[EG_MAX_ARGS];
    int nw = 0;
    if (!weight_nodes(p.has_weights ? &p.weights : NULL, w, &nw)) return 0;
    ad_grad_opts o = {p.pos, p.has_aux, p.with_value, p.sens_param, nw, w, examples};
    if (ad_grad_check(m, f, &o, call->loc) != SP_OK) {
        sp_clear_error(); /* the run-time API reports it where the program runs it */
        return 0;
    }
    sp_graph *h = ad_expand_grad(m, f, &o, call->loc);
    if (!h) return -1;
    sp_value *hv = sp_value_graph(h);
    sp_node *c = hv ? ir_const_new(call->graph, hv, call->inputs[0]->loc) : NULL;
    sp_value_release(hv);
    if (!c) return -1;
    call->inputs[0] = c;
    return 1;
}

sp_status pass_expand_grad(sp_module *m, int *changed) {
    sp_value *zero = sp_value_int(0), *none = sp_value_none(), *no = sp_value_bool(0);
    sp_status st = zero && none && no ? SP_OK : SP_ERR_NOMEM;
    int n_graphs = m->n_graphs; /* the graphs expansion adds are not rewritten in this round */
    for (int gi = 0; gi < n_graphs && !st; gi++) {
        int n = 0;
        sp_node **nodes = ir_graph_nodes(m->graphs[gi], &n);
        if (!nodes) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            break;
        }
        for (int i = 0; i < n && !st; i++) {
            if (nodes[i]->kind != SP_NODE_APPLY) continue;
            int r = rewrite(m, nodes[i], zero, none, no);
            if (r < 0) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            else if (r > 0) {
                *changed = 1;
                /* the new graphs need free variables before another expansion reads them */
                st = ir_module_finalize(m);
            }
        }
        free(nodes);
    }
    sp_value_release(zero);
    sp_value_release(none);
    sp_value_release(no);
    return st;
}
