/*
 * cse.c -- common subexpression elimination: equal pure applies of one
 * graph become one node, and equal constants one constant.
 *
 * Two applies are equal when they have as many inputs and each pair of
 * inputs is the same node or two constants holding equal values
 * (sp_value_equal: same kind, floats by bits but every NaN alike, tensors
 * element by element).  Only pure applies (ir_node_is_pure) are merged: two
 * prints, two random draws or two calls of a function that prints stay two.
 * Merging cannot reorder effects: equal applies need the same nodes, so
 * whichever runs first brings the same effects at the same point.
 *
 * The node kept is the one of lowest id, so that no apply comes to use an
 * apply created after it (passes_b.h: the VM runs in id order when it can).
 * Graphs are visited outer first and each in dependency order, and every
 * merge goes through the def-use index at once, so a node's inputs are
 * already merged when it is hashed; a merge that makes earlier entries
 * equal is found by the driver's next round.
 *
 * Identity.  `a is b` compares tuples, strings, numbers and tensors by
 * address, so merging two equal constructions could turn a False into a
 * True: a node or constant with an is/is-not user is left alone.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes_b.h"
#include "ir/ir_internal.h"

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

/* A hash that agrees with sp_value_equal (equal values, equal hashes). */
static uint64_t value_hash(const sp_value *v, int depth) {
    if (!v) return 0;
    uint64_t h = mix(0x51ed27, (uint64_t)v->kind);
    if (depth > 4) return h;
    switch (v->kind) {
    case SP_V_BOOL: return mix(h, (uint64_t)v->u.b);
    case SP_V_INT: return mix(h, (uint64_t)v->u.i);
    case SP_V_FLOAT: {
        if (isnan(v->u.f)) return mix(h, 1);
        uint64_t bits;
        memcpy(&bits, &v->u.f, sizeof bits);
        return mix(h, bits);
    }
    case SP_V_STR:
        for (size_t i = 0; i < v->u.str.len; i++) h = mix(h, (unsigned char)v->u.str.s[i]);
        return h;
    case SP_V_TUPLE:
    case SP_V_LIST:
        h = mix(h, (uint64_t)v->u.seq.n);
        for (int i = 0; i < v->u.seq.n && i < 8; i++) h = mix(h, value_hash(v->u.seq.items[i], depth + 1));
        return h;
    case SP_V_TENSOR: {
        const sp_tensor *t = v->u.tensor;
        h = mix(h, (uint64_t)t->dtype);
        for (int i = 0; i < t->ndim; i++) h = mix(h, (uint64_t)t->shape[i]);
        return h;
    }
    case SP_V_DTYPE: return mix(h, (uint64_t)v->u.dtype);
    case SP_V_PRIM: return mix(h, (uint64_t)v->u.prim);
    case SP_V_BUILTIN: return mix(h, (uint64_t)v->u.builtin);
    case SP_V_MODULE: return mix(h, (uint64_t)v->u.module);
    case SP_V_GRAPH: return mix(h, IR_PKEY(v->u.graph));
    case SP_V_CLOSURE: return mix(h, IR_PKEY(v->u.closure.graph));
    case SP_V_PARTIAL: return mix(h, value_hash(v->u.partial.fn, depth + 1));
    default: return h;
    }
}

static uint64_t input_hash(const sp_node *x) {
    return x->kind == SP_NODE_CONST ? value_hash(x->value, 0) : mix(0xabcdef, IR_PKEY(x));
}

static int inputs_equal(const sp_node *a, const sp_node *b) {
    if (a == b) return 1;
    return a->kind == SP_NODE_CONST && b->kind == SP_NODE_CONST && a->value && b->value &&
           sp_value_equal(a->value, b->value);
}

static int applies_equal(const sp_node *a, const sp_node *b) {
    if (a->n_inputs != b->n_inputs) return 0;
    for (int i = 0; i < a->n_inputs; i++)
        if (!inputs_equal(a->inputs[i], b->inputs[i])) return 0;
    return 1;
}

/* An open-addressing table of nodes by hash; equality decides. */
typedef struct cse_table {
    uint64_t *hash;
    sp_node **node;
    size_t cap, n;
} cse_table;

static void table_free(cse_table *t) {
    free(t->hash);
    free(t->node);
    memset(t, 0, sizeof *t);
}

static sp_status table_grow(cse_table *t) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    uint64_t *h = calloc(cap, sizeof *h);
    sp_node **nd = calloc(cap, sizeof *nd);
    if (!h || !nd) {
        free(h);
        free(nd);
        return sp_error(SP_ERR_NOMEM, "cse: out of memory");
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->node[i]) continue;
        size_t j = t->hash[i] & (cap - 1);
        while (nd[j]) j = (j + 1) & (cap - 1);
        h[j] = t->hash[i];
        nd[j] = t->node[i];
    }
    free(t->hash);
    free(t->node);
    t->hash = h;
    t->node = nd;
    t->cap = cap;
    return SP_OK;
}

/* The slot holding a node equal to x under `eq`, or the empty slot where
 * x goes.  The table has room (grown before). */
static size_t table_find(const cse_table *t, uint64_t h, const sp_node *x,
                         int (*eq)(const sp_node *, const sp_node *)) {
    size_t j = h & (t->cap - 1);
    while (t->node[j] && !(t->hash[j] == h && eq(t->node[j], x))) j = (j + 1) & (t->cap - 1);
    return j;
}

/* Whether a use of n is an `is` or `is not` (see the essay). */
static int used_by_is(const pass_users *u, const sp_node *n) {
    int k = 0;
    const pass_use *uses = pass_users_of(u, n, &k);
    for (int i = 0; i < k; i++) {
        int b = pass_call_builtin(uses[i].user);
        if (b == PB_IS || b == PB_IS_NOT) return 1;
    }
    return 0;
}

/* Looks x up in t: merges it with an equal entry (keeping the lower id) or
 * inserts it. */
static sp_status merge(cse_table *t, pass_users *u, sp_node *x, uint64_t h,
                       int (*eq)(const sp_node *, const sp_node *), int *changed) {
    if (2 * (t->n + 1) > t->cap) {
        sp_status st = table_grow(t);
        if (st) return st;
    }
    size_t j = table_find(t, h, x, eq);
    sp_node *y = t->node[j];
    if (!y) {
        t->hash[j] = h;
        t->node[j] = x;
        t->n++;
        return SP_OK;
    }
    if (y == x) return SP_OK;
    *changed = 1;
    if (x->id < y->id) {
        t->node[j] = x;
        return pass_users_replace(u, y, x);
    }
    return pass_users_replace(u, x, y);
}

static int consts_equal(const sp_node *a, const sp_node *b) { return inputs_equal(a, b); }

/* used_by_is for a constant, remembered for the pass in `memo` (node ->
 * 1 no, 2 yes).  A constant such as 0 or a builtin can have thousands of
 * users and is met once per user, so scanning its uses each time would be
 * quadratic.  The answer cannot change during the pass: a user's builtin
 * callee stays (merges swap a constant for an equal one), a use list only
 * loses entries when its node is merged away (and is then an input of no
 * node still to be visited), and it only gains the uses of nodes that were
 * themselves found free of `is` users. */
static int const_used_by_is(ir_map *memo, const pass_users *u, const sp_node *c) {
    uintptr_t r = (uintptr_t)ir_map_get(memo, IR_PKEY(c));
    if (r) return r == 2;
    int yes = used_by_is(u, c);
    ir_map_put(memo, IR_PKEY(c), (void *)(uintptr_t)(yes ? 2 : 1));
    return yes;
}

/* Merges equal constants among the inputs of x (module-wide table). */
static sp_status merge_consts(cse_table *consts, ir_map *memo, pass_users *u, sp_node *x, int *changed) {
    for (int i = 0; i < x->n_inputs; i++) {
        sp_node *c = x->inputs[i];
        if (c->kind != SP_NODE_CONST || !c->value || const_used_by_is(memo, u, c)) continue;
        sp_status st = merge(consts, u, c, value_hash(c->value, 0), consts_equal, changed);
        if (st) return st;
    }
    return SP_OK;
}

static sp_status cse_graph(cse_table *consts, ir_map *memo, pass_users *u, sp_graph *g, int *changed) {
    int n = 0;
    sp_node **order = ir_graph_nodes(g, &n);
    if (!order) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    cse_table t = {0};
    sp_status st = SP_OK;
    for (int i = 0; i < n && !st; i++) {
        sp_node *x = order[i];
        if (x->kind != SP_NODE_APPLY) continue;
        st = merge_consts(consts, memo, u, x, changed);
        if (st || !ir_node_is_pure(x) || used_by_is(u, x)) continue;
        uint64_t h = mix(0x6a09e667, (uint64_t)x->n_inputs);
        for (int k = 0; k < x->n_inputs; k++) h = mix(h, input_hash(x->inputs[k]));
        st = merge(&t, u, x, h, applies_equal, changed);
    }
    table_free(&t);
    free(order);
    return st;
}

sp_status pass_cse(sp_module *m, int *changed) {
    sp_status st = pass_finalize_at_start(m);
    if (st) return st;
    sp_graph **graphs = pass_graphs_outer_first(m);
    if (!graphs) return SP_ERR_NOMEM;
    pass_users *u = pass_users_new(m);
    if (!u) st = sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    cse_table consts = {0};
    ir_map memo = {0};
    for (int i = 0; i < m->n_graphs && !st; i++)
        if (graphs[i]->output) st = cse_graph(&consts, &memo, u, graphs[i], changed);
    ir_map_free(&memo);
    table_free(&consts);
    pass_users_free(u);
    free(graphs);
    return st;
}
