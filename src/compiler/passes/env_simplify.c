/*
 * env_simplify.c -- removes the plumbing gradient expansion leaves: envs
 * of free-variable gradients, sums of gradients, and the None-tolerant
 * tuple accessors (src/ad/expand.c).
 *
 * Gradients may be None (zero) at run time, so the expansion reads and
 * sums them with builtins that accept None.  Once the values are known to
 * exist -- a primitive's output is a Tensor, a make_tuple a tuple, an env
 * an env -- those builtins reduce to plain data flow:
 *
 *   env_getitem(env_setitem(e, k, v), k, None)  -> v
 *   env_getitem(env_setitem(e, k2, v), k, d)    -> env_getitem(e, k, d)   (k2 != k)
 *   env_getitem(env_new(), k, d)                -> d
 *   add_grad(None, x), add_grad(x, None)        -> x
 *   add_grad(env_new(), e)                      -> e                      (e an env)
 *   add_grad(env_setitem(a, k, v), e)           -> env_setitem(add_grad(a, e), k, v)
 *                                                  (k not among e's constant keys)
 *   add_grad(x, y), both Tensors                -> prim.add(x, y)
 *   add_grad(make_tuple(a..), make_tuple(b..))  -> make_tuple(add_grad(a, b)..)
 *   fill_zeros(d, out), d a Tensor or sens_of   -> d
 *   gather_tuple(make_tuple(x..), (p..))        -> make_tuple(x[p]..)
 *   gather_tuple(None, (p..))                   -> make_tuple(None..)
 *   scatter_tuple(make_tuple(x..), (p..), n)    -> make_tuple(.. x at p ..)  (distinct p)
 *   tuple_tail(make_tuple(x..), k)              -> make_tuple(x[k:]..)
 *   len(make_tuple(x..))                        -> the count
 *   is(x, None) / is_not(x, None), x never None -> False / True
 *
 * "A Tensor" is what certainly is one: a primitive's only output, a
 * constant tensor, Python arithmetic with a Tensor operand (it runs the
 * primitive), a sum of Tensors.
 *
 * Keys are constant ints (ad_key_of), so keys compare by value.  Every
 * node involved is pure (builtins of plain data), and the rewrites either
 * forward a use to an existing input (pass_users_replace) or rewrite a
 * node in place into an apply of the same value, so ids and effects keep
 * their order; the two rewrites that need new applies (sums of tuples and
 * of envs) create them in the node's graph.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes_b.h"
#include "ops/ops.h"

static const sp_value *cval(const sp_node *n) { return n->kind == SP_NODE_CONST ? n->value : NULL; }

static int is_none_const(const sp_node *n) {
    const sp_value *v = cval(n);
    return v && v->kind == SP_V_NONE;
}

static int prim_of(const sp_node *n) {
    if (n->kind != SP_NODE_APPLY || n->n_inputs < 1) return -1;
    const sp_value *v = cval(n->inputs[0]);
    return v && v->kind == SP_V_PRIM ? v->u.prim : -1;
}

/* n is certainly a Tensor. */
static int is_tensor(const sp_node *n, int depth) {
    const sp_value *v = cval(n);
    if (v) return v->kind == SP_V_TENSOR;
    int op = prim_of(n);
    if (op >= 0 && op < SP_OP_COUNT) return sp_op_defs[op].n_out == 1;
    int b = pass_call_builtin(n);
    if (depth < 16 && n->n_inputs == 3 && (b == PB_ADD || b == PB_SUB || b == PB_MUL || b == PB_TRUEDIV || b == PB_POW))
        return is_tensor(n->inputs[1], depth + 1) || is_tensor(n->inputs[2], depth + 1); /* a Tensor operand: its primitive */
    if (depth < 16 && n->n_inputs == 2 && (b == PB_NEG || b == PB_POS)) return is_tensor(n->inputs[1], depth + 1);
    if (depth < 16 && b == PB_ADD_GRAD && n->n_inputs == 3)
        return (is_tensor(n->inputs[1], depth + 1) && (is_tensor(n->inputs[2], depth + 1) || is_none_const(n->inputs[2]))) ||
               (is_none_const(n->inputs[1]) && is_tensor(n->inputs[2], depth + 1));
    return 0;
}

static int is_env(const sp_node *n) {
    int b = pass_call_builtin(n);
    return b == PB_ENV_NEW || b == PB_ENV_SETITEM;
}

/* n is certainly not None. */
static int never_none(const sp_node *n, int depth) {
    const sp_value *v = cval(n);
    if (v) return v->kind != SP_V_NONE;
    if (prim_of(n) >= 0 || is_tensor(n, 0)) return 1;
    switch (pass_call_builtin(n)) {
    case PB_MAKE_TUPLE:
    case PB_MAKE_LIST:
    case PB_ENV_NEW:
    case PB_ENV_SETITEM: return 1;
    case PB_ADD_GRAD:
        return depth < 16 && n->n_inputs == 3 &&
               ((is_tensor(n->inputs[1], 0) || never_none(n->inputs[1], depth + 1)) ||
                (is_tensor(n->inputs[2], 0) || never_none(n->inputs[2], depth + 1))) &&
               (is_tensor(n->inputs[1], 0) || is_tensor(n->inputs[2], 0) || is_env(n->inputs[1]) ||
                is_env(n->inputs[2]));
    default: return 0;
    }
}

/* The constant ints of a constant tuple into out (at most max); -1 when
 * it is not one. */
static int const_ints(const sp_node *n, int64_t *out, int max) {
    const sp_value *v = cval(n);
    if (!v || v->kind != SP_V_TUPLE || v->u.seq.n > max) return -1;
    for (int i = 0; i < v->u.seq.n; i++) {
        if (v->u.seq.items[i]->kind != SP_V_INT) return -1;
        out[i] = v->u.seq.items[i]->u.i;
    }
    return v->u.seq.n;
}

/* Whether the env chain e may hold key k: 0 certainly not, 1 maybe. */
static int env_may_hold(const sp_node *e, int64_t k) {
    for (int depth = 0; depth < 256; depth++) {
        int b = pass_call_builtin(e);
        if (b == PB_ENV_NEW) return 0;
        if (b != PB_ENV_SETITEM || e->n_inputs != 4) return 1;
        int64_t k2;
        if (!pass_const_int(e->inputs[2], &k2) || k2 == k) return 1;
        e = e->inputs[1];
    }
    return 1;
}

static sp_node *mk_const(sp_graph *g, sp_value *v, sp_loc loc) {
    if (!v) return NULL;
    sp_node *n = ir_const_new(g, v, loc);
    sp_value_release(v);
    return n;
}

/* The rewrites are decided on the module as it is, then applied together
 * (es_apply): the def-use index stays true while deciding, and forwarding
 * uses (which writes through the index) happens before any node's inputs
 * change shape. */
typedef struct es_action {
    sp_node *n;
    sp_node *to;     /* forward n's uses to `to`, or (NULL) n takes inputs/n_inputs */
    sp_node **inputs;
    int n_inputs;
} es_action;

typedef struct es_ctx {
    pass_users *u;
    es_action *a;
    int n, cap;
} es_ctx;

static sp_status push_action(es_ctx *c, es_action a) {
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 64;
        es_action *p = realloc(c->a, sizeof *p * (size_t)cap);
        if (!p) return sp_error(SP_ERR_NOMEM, "env_simplify: out of memory");
        c->a = p;
        c->cap = cap;
    }
    c->a[c->n++] = a;
    return SP_OK;
}

static sp_status forward(es_ctx *c, sp_node *n, sp_node *to, int *done) {
    if (!to) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    *done = 1;
    return push_action(c, (es_action){n, to, NULL, 0});
}

/* n becomes callee(inputs...), in place. */
static sp_status become(es_ctx *c, sp_node *n, sp_node *callee, int k, sp_node *const *in, int *done) {
    sp_node **a = ir_alloc(n->graph->module, sizeof *a * (size_t)(k + 1));
    if (!callee || !a) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    a[0] = callee;
    for (int i = 0; i < k; i++) {
        if (!in[i]) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        a[i + 1] = in[i];
    }
    *done = 1;
    return push_action(c, (es_action){n, NULL, a, k + 1});
}

static sp_node *builtin_const(sp_graph *g, int id, sp_loc loc) { return mk_const(g, sp_value_builtin(id), loc); }

#define ES_MAX 64

/* One node; *done set when it changed. */
static sp_status simplify(es_ctx *u, sp_node *n, int *done) {
    sp_graph *g = n->graph;
    int b = pass_call_builtin(n), k = n->n_inputs - 1;
    sp_node *const *in = n->inputs + 1;
    switch (b) {
    case PB_ENV_GETITEM: {
        int64_t key;
        if (k != 3 || !pass_const_int(in[1], &key)) return SP_OK;
        sp_node *e = in[0];
        for (int depth = 0; depth < 256; depth++) {
            int eb = pass_call_builtin(e);
            if (eb == PB_ENV_NEW) {
                return forward(u, n, in[2], done);
            }
            int64_t k2;
            if (eb != PB_ENV_SETITEM || e->n_inputs != 4 || !pass_const_int(e->inputs[2], &k2)) break;
            if (k2 == key) {
                if (!is_none_const(in[2]) && !never_none(e->inputs[3], 0)) break;
                return forward(u, n, e->inputs[3], done);
            }
            e = e->inputs[1];
        }
        if (e != in[0]) { /* skip the other keys */
            sp_node *skip[3] = {e, in[1], in[2]};
            return become(u, n, n->inputs[0], 3, skip, done);
        }
        return SP_OK;
    }
    case PB_ADD_GRAD: {
        if (k != 2) return SP_OK;
        sp_node *a = in[0], *c = in[1];
        if (is_none_const(a) || is_none_const(c)) {
            return forward(u, n, is_none_const(a) ? c : a, done);
        }
        if (pass_call_builtin(a) == PB_ENV_NEW && (is_env(c))) {
            return forward(u, n, c, done);
        }
        if (pass_call_builtin(c) == PB_ENV_NEW && is_env(a)) {
            return forward(u, n, a, done);
        }
        if (pass_call_builtin(a) == PB_ENV_SETITEM && a->n_inputs == 4 && is_env(c)) {
            int64_t key;
            if (!pass_const_int(a->inputs[2], &key) || env_may_hold(c, key)) return SP_OK;
            sp_node *sum_in[3] = {builtin_const(g, PB_ADD_GRAD, n->loc), a->inputs[1], c};
            sp_node *sum = sum_in[0] ? ir_apply_new(g, 3, sum_in, n->loc) : NULL;
            sp_node *set[3] = {sum, a->inputs[2], a->inputs[3]};
            return become(u, n, builtin_const(g, PB_ENV_SETITEM, n->loc), 3, set, done);
        }
        if (is_tensor(a, 0) && is_tensor(c, 0)) {
            sp_node *pa[2] = {a, c};
            return become(u, n, mk_const(g, sp_value_prim(SP_OP_ADD), n->loc), 2, pa, done);
        }
        int ba = pass_call_builtin(a), bc = pass_call_builtin(c);
        if ((ba == PB_MAKE_TUPLE && bc == PB_MAKE_TUPLE) && a->n_inputs == c->n_inputs && a->n_inputs - 1 <= ES_MAX) {
            int len = a->n_inputs - 1;
            sp_node *items[ES_MAX];
            for (int i = 0; i < len; i++) {
                sp_node *x = a->inputs[i + 1], *y = c->inputs[i + 1];
                if (is_none_const(x) || is_none_const(y)) {
                    items[i] = is_none_const(x) ? y : x;
                    continue;
                }
                sp_node *s[3] = {builtin_const(g, PB_ADD_GRAD, n->loc), x, y};
                if (!s[0] || !(items[i] = ir_apply_new(g, 3, s, n->loc))) return sp_last_status();
            }
            return become(u, n, builtin_const(g, PB_MAKE_TUPLE, n->loc), len, items, done);
        }
        return SP_OK;
    }
    case PB_FILL_ZEROS:
        /* a Tensor, or sens_of's Tensor or float: never None, never a tuple */
        if (k == 2 && (is_tensor(in[0], 0) || pass_call_builtin(in[0]) == PB_SENS_OF)) {
            return forward(u, n, in[0], done);
        }
        return SP_OK;
    case PB_GATHER_TUPLE: {
        int64_t pos[ES_MAX];
        int np = k == 2 ? const_ints(in[1], pos, ES_MAX) : -1;
        if (np < 0) return SP_OK;
        sp_node *items[ES_MAX];
        if (is_none_const(in[0])) {
            for (int i = 0; i < np; i++)
                if (!(items[i] = mk_const(g, sp_value_none(), n->loc))) return sp_last_status();
        } else if (pass_call_builtin(in[0]) == PB_MAKE_TUPLE || pass_call_builtin(in[0]) == PB_MAKE_LIST) {
            int len = in[0]->n_inputs - 1;
            for (int i = 0; i < np; i++) {
                if (pos[i] < 0 || pos[i] >= len) return SP_OK;
                items[i] = in[0]->inputs[1 + pos[i]];
            }
        } else {
            return SP_OK;
        }
        return become(u, n, builtin_const(g, PB_MAKE_TUPLE, n->loc), np, items, done);
    }
    case PB_SCATTER_TUPLE: {
        int64_t pos[ES_MAX], len;
        int np = k == 3 ? const_ints(in[1], pos, ES_MAX) : -1;
        if (np < 0 || !pass_const_int(in[2], &len) || len < 0 || len > ES_MAX ||
            pass_call_builtin(in[0]) != PB_MAKE_TUPLE || in[0]->n_inputs - 1 < np)
            return SP_OK;
        sp_node *items[ES_MAX] = {0};
        for (int i = 0; i < np; i++) {
            if (pos[i] < 0 || pos[i] >= len || items[pos[i]]) return SP_OK;
            items[pos[i]] = in[0]->inputs[1 + i];
        }
        for (int i = 0; i < len; i++)
            if (!items[i] && !(items[i] = mk_const(g, sp_value_none(), n->loc))) return sp_last_status();
        return become(u, n, builtin_const(g, PB_MAKE_TUPLE, n->loc), (int)len, items, done);
    }
    case PB_TUPLE_TAIL: {
        int64_t from;
        if (k != 2 || !pass_const_int(in[1], &from) || from < 0 || pass_call_builtin(in[0]) != PB_MAKE_TUPLE) return SP_OK;
        int len = in[0]->n_inputs - 1;
        if (from > len) from = len;
        return become(u, n, builtin_const(g, PB_MAKE_TUPLE, n->loc), len - (int)from, in[0]->inputs + 1 + from, done);
    }
    case PB_LEN: {
        if (k != 1 || (pass_call_builtin(in[0]) != PB_MAKE_TUPLE && pass_call_builtin(in[0]) != PB_MAKE_LIST)) return SP_OK;
        sp_node *c = mk_const(g, sp_value_int(in[0]->n_inputs - 1), n->loc);
        if (!c) return sp_last_status();
        return forward(u, n, c, done);
    }
    case PB_IS:
    case PB_IS_NOT: {
        if (k != 2) return SP_OK;
        sp_node *x = is_none_const(in[1]) ? in[0] : is_none_const(in[0]) ? in[1] : NULL;
        if (!x || !never_none(x, 0)) return SP_OK;
        sp_node *c = mk_const(g, sp_value_bool(b == PB_IS_NOT), n->loc);
        if (!c) return sp_last_status();
        return forward(u, n, c, done);
    }
    default: return SP_OK;
    }
}

sp_status pass_env_simplify(sp_module *m, int *changed) {
    es_ctx c;
    memset(&c, 0, sizeof c);
    if (!(c.u = pass_users_new(m))) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_status st = SP_OK;
    int n_graphs = m->n_graphs;
    for (int gi = 0; gi < n_graphs && !st; gi++) {
        int n = 0;
        sp_node **nodes = ir_graph_nodes(m->graphs[gi], &n);
        if (!nodes) {
            st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
            break;
        }
        for (int i = 0; i < n && !st; i++)
            if (nodes[i]->kind == SP_NODE_APPLY) {
                int done = 0;
                st = simplify(&c, nodes[i], &done);
                if (done) *changed = 1;
            }
        free(nodes);
    }
    for (int i = 0; i < c.n && !st; i++)
        if (c.a[i].to) st = pass_users_replace(c.u, c.a[i].n, c.a[i].to);
    for (int i = 0; i < c.n && !st; i++)
        if (!c.a[i].to) {
            c.a[i].n->inputs = c.a[i].inputs;
            c.a[i].n->n_inputs = c.a[i].n_inputs;
        }
    pass_users_free(c.u);
    free(c.a);
    return st;
}
