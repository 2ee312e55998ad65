/*
 * algebra.c -- algebraic simplification: x*1, 1*x, x+0, 0+x, x-0, x/1,
 * -(-x), transpose of a transpose that composes to the identity, reshape of
 * a reshape, and casts to a dtype the value already has.
 *
 * The IR has no types yet (specialization comes later), and x*1 is x only
 * for some kinds of x: True*1 is 1, 3*1.0 is 3.0, -0.0+0 is 0.0, an int
 * tensor / 1 is a float tensor.  So every rewrite is guarded by what is
 * *certainly* known of x: a set of possible kinds (a bitmask) computed
 * forward over each graph from constants, from builtins whose result kind
 * follows from their arguments' (len is an int, a comparison of scalars a
 * bool, int+int an int, a float scalar with an int tensor a float tensor
 * as tensor_value.c's weak typing says), and from primitives and the
 * API's ops.X named after a primitive of one output (a tensor).
 * A parameter or anything else is "any kind", and then nothing fires.
 *
 *   x*1, 1*x, x-0      x an int, a float, an int or a float tensor
 *   x*1.0, x-0.0, x/1  x a float or a float tensor
 *   x+0, 0+x           x an int or an int tensor (-0.0 + 0 is 0.0)
 *   -(-x)              builtin neg: as x*1; a primitive neg: x a tensor
 *
 * Shape-dependent rewrites cannot see shapes either: transpose(transpose(
 * x, p), q) -> x when p[q[i]] == i (x a tensor), reshape(reshape(x, a), b)
 * -> reshape(x, b), cast(y, d) -> y when y is a constant tensor of dtype d
 * or itself a cast to d.  They keep every result of a program that runs;
 * one whose inner transpose or reshape would fail on x's rank or size now
 * fails later or not at all -- the one liberty these rewrites take.
 *
 * Rewrites replace a node by one of its inputs' inputs (lower ids, see
 * passes_b.h) except reshape, which points the outer call at x in place.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes_b.h"
#include "ir/ir_internal.h"
#include "ops/ops.h"

enum {
    K_INT = 1,
    K_FLOAT = 2,
    K_BOOL = 4,
    K_TI = 8,  /* a tensor of a non-bool integer dtype */
    K_TF = 16, /* a tensor of a floating dtype */
    K_TB = 32, /* a bool tensor */
    K_OTHER = 64,
    K_TENSOR = K_TI | K_TF | K_TB,
    K_ALL = 127
};

static int dtype_kind(sp_dtype d) {
    if (d == SP_BOOL) return K_TB;
    return sp_dtype_is_float(d) ? K_TF : K_TI;
}

static int value_kind(const sp_value *v) {
    if (!v) return K_ALL;
    switch (v->kind) {
    case SP_V_INT: return K_INT;
    case SP_V_FLOAT: return K_FLOAT;
    case SP_V_BOOL: return K_BOOL;
    case SP_V_TENSOR: return dtype_kind(v->u.tensor->dtype);
    default: return K_OTHER;
    }
}

/* The kinds of a op b for one kind of each (add, sub, mul). */
static int arith1(int a, int b) {
    if (a == K_OTHER || b == K_OTHER) return K_ALL;
    int ta = (a & K_TENSOR) != 0, tb = (b & K_TENSOR) != 0;
    if (!ta && !tb) return (a == K_FLOAT || b == K_FLOAT) ? K_FLOAT : K_INT;
    if (a == K_TF || b == K_TF) return K_TF;
    if (ta && tb) return a == K_TI && b == K_TI ? K_TI : K_TENSOR;
    int t = ta ? a : b, s = ta ? b : a;
    if (s == K_FLOAT) return K_TF;
    if (s == K_INT) return K_TI; /* int tensor keeps its dtype; bool tensor goes int64 */
    return K_TENSOR;
    (void)t;
}

static int arith(int a, int b) {
    int r = 0;
    for (int i = 1; i < K_ALL; i <<= 1)
        for (int j = 1; j < K_ALL; j <<= 1)
            if ((a & i) && (b & j)) r |= arith1(i, j);
    return r ? r : K_ALL;
}

static int neg_kind(int a) {
    int r = 0;
    if (a & (K_INT | K_BOOL)) r |= K_INT;
    if (a & K_FLOAT) r |= K_FLOAT;
    if (a & K_TI) r |= K_TI;
    if (a & K_TF) r |= K_TF;
    if (a & (K_TB | K_OTHER)) r = K_ALL;
    return r ? r : K_ALL;
}

typedef struct al_ctx {
    ir_map kind; /* node -> kind mask (never 0) */
} al_ctx;

static int kind_of(const al_ctx *c, const sp_node *x) {
    if (x->kind == SP_NODE_CONST) return value_kind(x->value);
    if (x->kind != SP_NODE_APPLY) return K_ALL;
    int k = (int)(uintptr_t)ir_map_get(&c->kind, IR_PKEY(x));
    return k ? k : K_ALL;
}

static const char *const CAST_DTYPE[] = {"dtype", NULL};

/* The dtype a cast call converts to when it is a constant, else -1. */
static int cast_dtype(const pass_opcall *oc) {
    if (!oc->name || strcmp(oc->name, "cast") != 0) return -1;
    const sp_value *d = pass_const_value(pass_opcall_arg(oc, oc->is_prim ? -1 : 1, CAST_DTYPE));
    return d && d->kind == SP_V_DTYPE ? (int)d->u.dtype : -1;
}

/* The dtype x certainly has, or -1. */
static int known_dtype(const sp_node *x) {
    const sp_value *v = pass_const_value(x);
    if (v) return v->kind == SP_V_TENSOR ? (int)v->u.tensor->dtype : -1;
    pass_opcall oc;
    return pass_opcall_match(x, &oc) ? cast_dtype(&oc) : -1;
}

/* The kinds apply x may evaluate to. */
static int apply_kind(const al_ctx *c, const sp_node *x) {
    int b = pass_call_builtin(x), n = x->n_inputs - 1;
    if (b >= 0) {
        switch (b) {
        case PB_LEN:
        case PB_INT: return K_INT;
        case PB_FLOAT: return K_FLOAT;
        case PB_BOOL:
        case PB_NOT:
        case PB_TRUTH:
        case PB_IS:
        case PB_IS_NOT:
        case PB_IN:
        case PB_NOT_IN:
        case PB_ISINSTANCE: return K_BOOL;
        case PB_ADD:
        case PB_SUB:
        case PB_MUL: return n == 2 ? arith(kind_of(c, x->inputs[1]), kind_of(c, x->inputs[2])) : K_ALL;
        case PB_TRUEDIV:
            if (n != 2) return K_ALL;
            if (((kind_of(c, x->inputs[1]) | kind_of(c, x->inputs[2])) & ~(K_INT | K_FLOAT | K_BOOL)) == 0)
                return K_FLOAT;
            if ((kind_of(c, x->inputs[1]) & ~K_TF) == 0 &&
                (kind_of(c, x->inputs[2]) & ~(K_INT | K_FLOAT | K_BOOL | K_TF)) == 0)
                return K_TF;
            return K_ALL;
        case PB_NEG: return n == 1 ? neg_kind(kind_of(c, x->inputs[1])) : K_ALL;
        default: return K_ALL;
        }
    }
    pass_opcall oc;
    if (!pass_opcall_match(x, &oc)) return K_ALL;
    int d = cast_dtype(&oc);
    if (d >= 0) return dtype_kind((sp_dtype)d);
    /* ops.X of the API, where X is a primitive of one output, returns what
     * the primitive returns (every such function of api.def does) */
    int op = sp_op_find(oc.name);
    return op >= 0 && sp_op_num_outputs(op) == 1 ? K_TENSOR : K_ALL;
}

/* 1 when x is the constant int `i`, 2 when the float `i` (+0.0 for 0). */
static int const_is(const sp_node *x, int i) {
    const sp_value *v = pass_const_value(x);
    if (!v) return 0;
    if (v->kind == SP_V_INT && v->u.i == i) return 1;
    if (v->kind == SP_V_FLOAT && v->u.f == (double)i && !signbit(v->u.f)) return 2;
    return 0;
}

#define FITS(k, allowed) (((k) & ~(allowed)) == 0)

/* The node an arithmetic identity reduces builtin apply x to, or NULL. */
static sp_node *identity_arith(const al_ctx *c, const sp_node *x) {
    int b = pass_call_builtin(x);
    if (x->n_inputs != 3) return NULL;
    sp_node *l = x->inputs[1], *r = x->inputs[2];
    const int NUM = K_INT | K_FLOAT | K_TI | K_TF, FL = K_FLOAT | K_TF, IN = K_INT | K_TI;
    int cr, cl;
    switch (b) {
    case PB_MUL:
        if ((cr = const_is(r, 1)) && FITS(kind_of(c, l), cr == 1 ? NUM : FL)) return l;
        if ((cl = const_is(l, 1)) && FITS(kind_of(c, r), cl == 1 ? NUM : FL)) return r;
        return NULL;
    case PB_ADD:
        if (const_is(r, 0) == 1 && FITS(kind_of(c, l), IN)) return l;
        if (const_is(l, 0) == 1 && FITS(kind_of(c, r), IN)) return r;
        return NULL;
    case PB_SUB:
        if ((cr = const_is(r, 0)) && FITS(kind_of(c, l), cr == 1 ? NUM : FL)) return l;
        return NULL;
    case PB_TRUEDIV:
        if (const_is(r, 1) && FITS(kind_of(c, l), FL)) return l;
        return NULL;
    default: return NULL;
    }
}

/* The operand of a negation (builtin neg or the neg primitive), or NULL;
 * *builtin says which. */
static sp_node *neg_operand(const sp_node *x, int *builtin) {
    if (pass_call_builtin(x) == PB_NEG && x->n_inputs == 2) {
        *builtin = 1;
        return x->inputs[1];
    }
    pass_opcall oc;
    if (!pass_opcall_match(x, &oc) || oc.n_kw || oc.n_pos != 1) return NULL;
    if (strcmp(oc.name, "neg") != 0 && strcmp(oc.name, "negative") != 0) return NULL;
    *builtin = 0;
    return oc.pos[0];
}

static sp_node *double_neg(const al_ctx *c, const sp_node *x) {
    int b1 = 0, b2 = 0;
    sp_node *inner = neg_operand(x, &b1);
    sp_node *y = inner ? neg_operand(inner, &b2) : NULL;
    if (!y) return NULL;
    int allowed = b1 && b2 ? K_INT | K_FLOAT | K_TI | K_TF : K_TI | K_TF;
    return FITS(kind_of(c, y), allowed) ? y : NULL;
}

/* The permutation of a transpose call (its operand in *x), normalized to
 * [0, n); 0 when x is not one with a constant valid permutation. */
static int transpose_perm(const sp_node *t, sp_node **x, int64_t *perm, int *n) {
    static const char *const TNAMES[] = {"perm", "input_perm", "axes", NULL};
    static const char *const PNAMES[] = {"axis", "dims", NULL};
    static const char *const XNAMES[] = {"input", "input_x", NULL};
    pass_opcall oc;
    if (!pass_opcall_match(t, &oc)) return 0;
    const sp_node *p;
    if (!strcmp(oc.name, "transpose"))
        p = pass_opcall_arg(&oc, oc.is_prim ? -1 : 1, TNAMES);
    else if (!strcmp(oc.name, "permute") && !oc.is_prim)
        p = pass_opcall_arg(&oc, 1, PNAMES);
    else
        return 0;
    *x = pass_opcall_arg(&oc, 0, XNAMES);
    const sp_value *v = pass_const_value(p);
    if (!*x || !v || (v->kind != SP_V_TUPLE && v->kind != SP_V_LIST) || v->u.seq.n > SP_MAX_DIMS) return 0;
    *n = v->u.seq.n;
    int seen[SP_MAX_DIMS] = {0};
    for (int i = 0; i < *n; i++) {
        const sp_value *e = v->u.seq.items[i];
        if (e->kind != SP_V_INT) return 0;
        int64_t a = e->u.i < 0 ? e->u.i + *n : e->u.i;
        if (a < 0 || a >= *n || seen[a]) return 0;
        seen[a] = 1;
        perm[i] = a;
    }
    return 1;
}

static sp_node *double_transpose(const al_ctx *c, const sp_node *x) {
    int64_t p2[SP_MAX_DIMS], p1[SP_MAX_DIMS];
    int n2, n1;
    sp_node *inner, *y;
    if (!transpose_perm(x, &inner, p2, &n2) || !transpose_perm(inner, &y, p1, &n1) || n1 != n2) return NULL;
    for (int i = 0; i < n1; i++)
        if (p1[p2[i]] != i) return NULL;
    return FITS(kind_of(c, y), K_TENSOR) ? y : NULL;
}

/* cast(y, d) where y certainly has dtype d: y. */
static sp_node *same_cast(const sp_node *x) {
    static const char *const XNAMES[] = {"input", "input_x", NULL};
    pass_opcall oc;
    if (!pass_opcall_match(x, &oc)) return NULL;
    int d = cast_dtype(&oc);
    sp_node *y = d >= 0 ? pass_opcall_arg(&oc, 0, XNAMES) : NULL;
    return y && known_dtype(y) == d ? y : NULL;
}

/* reshape(reshape(y, a), b) -> reshape(y, b), in place. */
static int reshape_reshape(sp_node *x) {
    pass_opcall oc, ic;
    if (!pass_opcall_match(x, &oc) || strcmp(oc.name, "reshape") != 0 || oc.n_pos < 1) return 0;
    sp_node *inner = oc.pos[0];
    if (!pass_opcall_match(inner, &ic) || strcmp(ic.name, "reshape") != 0 || ic.n_pos < 1) return 0;
    x->inputs[oc.pos_at[0]] = ic.pos[0];
    return 1;
}

static sp_status algebra_graph(al_ctx *c, pass_users *u, sp_graph *g, int *changed) {
    int n = 0;
    sp_node **order = ir_graph_nodes(g, &n);
    if (!order) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    sp_status st = SP_OK;
    for (int i = 0; i < n && !st; i++) {
        sp_node *x = order[i];
        if (x->kind != SP_NODE_APPLY) continue;
        sp_node *to = identity_arith(c, x);
        if (!to) to = double_neg(c, x);
        if (!to) to = double_transpose(c, x);
        if (!to) to = same_cast(x);
        if (to) {
            *changed = 1;
            st = pass_users_replace(u, x, to);
            continue;
        }
        if (reshape_reshape(x)) *changed = 1;
        st = ir_map_put(&c->kind, IR_PKEY(x), (void *)(uintptr_t)apply_kind(c, x));
    }
    free(order);
    return st;
}

sp_status pass_algebra(sp_module *m, int *changed) {
    sp_status st = pass_finalize_at_start(m);
    if (st) return st;
    sp_graph **graphs = pass_graphs_outer_first(m);
    if (!graphs) return SP_ERR_NOMEM;
    pass_users *u = pass_users_new(m);
    if (!u) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    al_ctx c = {0};
    for (int i = 0; i < m->n_graphs && !st; i++)
        if (graphs[i]->output) st = algebra_graph(&c, u, graphs[i], changed);
    ir_map_free(&c.kind);
    pass_users_free(u);
    free(graphs);
    return st;
}
