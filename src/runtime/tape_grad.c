/*
 * tape_grad.c -- the backward pass of an eager tape: one IR graph from the
 * kept primitive calls and the same bprop rules K uses, compiled by the
 * normal pipeline and cached per structure (see tape.h).
 *
 * Steps of sp_tape_grad:
 *   1. liveness: walking the calls backwards from the outputs, a call is
 *      live when one of its outputs is, and then its active inputs are;
 *   2. dense numbering of the nodes the graph reads -- the leaves, the
 *      outputs, the live calls' inputs and outputs, in that order -- and
 *      the *signature*: an int64 string of everything the graph depends on
 *      (per node dtype, shape, device, active; per live call op, wiring by
 *      dense number, attributes with their names and values; the leaves,
 *      the outputs and their sensitivities' metas).  Equal signatures give
 *      the same graph, so it is the cache key (compared whole, never by
 *      hash alone);
 *   3. on a miss, the graph: parameters = the dense nodes + one
 *      sensitivity per output; for each live call in reverse, its rule
 *      (copied into the module once per op, as expand.c does) called as
 *      rule(inputs..., out, fill_zeros(dout, out), attrs...) -- variadic
 *      primitives take their inputs as one tuple -- and each active
 *      input's share (tuple_getitem) summed with add_grad; the output is a
 *      tuple with each leaf's gradient, fill_zeros(g, leaf) giving zeros
 *      where none arrived.  Only float nodes receive gradients, so a call
 *      whose outputs got none is skipped and integer paths never ask for a
 *      rule.  Then sp_compile; the entry's parameters that the optimized
 *      graph still reads are the *needed* ones;
 *   4. a needed node whose buffer was written after it was saved is an
 *      error naming the op that wrote it; else the compiled graph runs on
 *      the recorded tensors.
 * The forward is never recomputed.  The cache holds TG_CACHE_MAX entries,
 * the least recently used dropped first, under a mutex.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "compiler/compile.h"
#include "core/internal.h"
#include "ir/clone.h"
#include "runtime/rt.h"
#include "runtime/tape.h"

#define TG_CACHE_MAX 64

typedef struct tg_sig {
    int64_t *v;
    size_t n, cap;
    int oom;
} tg_sig;

typedef struct tg_entry {
    int64_t *sig;
    size_t len;
    uint64_t hash, used;
    sp_module *m;
    sp_compiled *c;
    unsigned char *needed; /* per dense node */
    int n_dense;
} tg_entry;

static pthread_mutex_t tg_lock = PTHREAD_MUTEX_INITIALIZER;
static tg_entry tg_cache[TG_CACHE_MAX];
static int tg_n;
static uint64_t tg_clock;
static int64_t tg_compiles, tg_hits;

void sp_tape_stats(int64_t *compiles, int64_t *hits) {
    pthread_mutex_lock(&tg_lock);
    if (compiles) *compiles = tg_compiles;
    if (hits) *hits = tg_hits;
    pthread_mutex_unlock(&tg_lock);
}

static void tg_entry_free(tg_entry *e) {
    sp_compiled_free(e->c);
    sp_module_free(e->m);
    free(e->sig);
    free(e->needed);
    memset(e, 0, sizeof *e);
}

void sp_tape_cache_clear(void) {
    pthread_mutex_lock(&tg_lock);
    for (int i = 0; i < tg_n; i++) tg_entry_free(&tg_cache[i]);
    tg_n = 0;
    pthread_mutex_unlock(&tg_lock);
}

/* ---- the signature -------------------------------------------------------------- */

static void sig_put(tg_sig *s, int64_t x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        int64_t *nv = realloc(s->v, sizeof *nv * cap);
        if (!nv) {
            s->oom = 1;
            return;
        }
        s->v = nv;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static void sig_str(tg_sig *s, const char *str) {
    size_t len = strlen(str);
    sig_put(s, (int64_t)len);
    for (size_t i = 0; i < len; i += 8) {
        int64_t w = 0;
        memcpy(&w, str + i, len - i < 8 ? len - i : 8);
        sig_put(s, w);
    }
}

static void sig_value(tg_sig *s, const sp_value *v) {
    sig_put(s, v->kind);
    switch (v->kind) {
    case SP_V_INT: sig_put(s, v->u.i); break;
    case SP_V_BOOL: sig_put(s, v->u.b); break;
    case SP_V_FLOAT: {
        int64_t bits;
        memcpy(&bits, &v->u.f, sizeof bits);
        sig_put(s, bits);
        break;
    }
    case SP_V_STR: sig_str(s, v->u.str.s); break;
    case SP_V_DTYPE: sig_put(s, v->u.dtype); break;
    case SP_V_KEYWORD:
        sig_str(s, v->u.kw.name);
        sig_value(s, v->u.kw.value);
        break;
    case SP_V_TUPLE:
    case SP_V_LIST:
        sig_put(s, v->u.seq.n);
        for (int i = 0; i < v->u.seq.n; i++) sig_value(s, v->u.seq.items[i]);
        break;
    default: break; /* None and friends: the kind says it all */
    }
}

static void sig_meta(tg_sig *s, const sp_tensor *t) {
    sig_put(s, t->dtype);
    sig_put(s, t->ndim);
    for (int i = 0; i < t->ndim; i++) sig_put(s, t->shape[i]);
    sig_put(s, t->buf ? (int64_t)t->buf->device.type : -1);
    sig_put(s, t->buf ? t->buf->device.index : -1);
}

static uint64_t sig_hash(const tg_sig *s) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < s->n; i++) {
        h ^= (uint64_t)s->v[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- the graph ------------------------------------------------------------------ */

typedef struct tg_build {
    sp_module *m;
    sp_graph *g;
    sp_loc loc;
    sp_node **param; /* per dense node */
    sp_node **acc;   /* per dense node: its gradient so far, or NULL */
    sp_graph **rules; /* per op: the copied rule, or NULL */
} tg_build;

static sp_node *tg_const(tg_build *b, sp_value *v) {
    if (!v) return NULL;
    sp_node *n = ir_const_new(b->g, v, b->loc);
    sp_value_release(v);
    return n;
}

static sp_node *tg_call(tg_build *b, sp_node *fn, int n, sp_node *const *args) {
    if (!fn) return NULL;
    sp_node *small[16], **in = n + 1 <= 16 ? small : malloc(sizeof *in * (size_t)(n + 1));
    if (!in) {
        sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
        return NULL;
    }
    in[0] = fn;
    int ok = 1;
    for (int i = 0; i < n; i++) ok &= (in[i + 1] = args[i]) != NULL;
    sp_node *r = ok ? ir_apply_new(b->g, n + 1, in, b->loc) : NULL;
    if (in != small) free(in);
    return r;
}

static sp_node *tg_builtin(tg_build *b, int id, int n, sp_node *const *args) {
    return tg_call(b, tg_const(b, sp_value_builtin(id)), n, args);
}

static sp_node *tg_item(tg_build *b, sp_node *t, int64_t k) {
    sp_node *in[2] = {t, tg_const(b, sp_value_int(k))};
    return tg_builtin(b, RT_B_TUPLE_GETITEM, 2, in);
}

static sp_status tg_contribute(tg_build *b, int d, sp_node *g) {
    if (!g) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    if (b->acc[d]) {
        sp_node *in[2] = {b->acc[d], g};
        if (!(g = tg_builtin(b, RT_B_ADD_GRAD, 2, in))) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    }
    b->acc[d] = g;
    return SP_OK;
}

static sp_graph *tg_rule(tg_build *b, int op) {
    if (b->rules[op]) return b->rules[op];
    char name[96];
    snprintf(name, sizeof name, "bprop_%s", sp_op_name(op));
    sp_value *v = ad_rule(name);
    if (!v) {
        if (sp_last_status() == SP_OK || sp_last_status() == SP_ERR_UNSUPPORTED)
            sp_error(SP_ERR_UNSUPPORTED, "cannot differentiate primitive '%s': it has no gradient rule (bprop_%s)",
                     sp_op_name(op), sp_op_name(op));
        return NULL;
    }
    if (v->kind != SP_V_GRAPH) {
        sp_error(SP_ERR_INTERNAL, "gradient rules: %s is not a function", name);
        return NULL;
    }
    sp_graph *c = ir_graph_find_clone(b->m, v->u.graph);
    if (!c) c = ir_graph_clone_into(b->m, v->u.graph, NULL, NULL, NULL);
    return b->rules[op] = c;
}

/* The dense view of a tape the graph is built from. */
typedef struct tg_plan {
    const sp_tape *t;
    int n_dense;
    int *node_of;   /* dense -> node */
    int *dense;     /* node -> dense or -1 */
    int n_live;
    int *live_recs; /* rec indices, forward order */
    int n_leaf, n_out;
    const int *leaf_ids;
    int *out_ids;   /* node or -1 */
} tg_plan;

static sp_status tg_body(tg_build *b, const tg_plan *p) {
    const tp_node *nodes = tp_nodes(p->t);
    const tp_rec *recs = tp_recs(p->t);
    const int *ids = tp_ids(p->t);
    sp_status st = SP_OK;
    for (int k = 0; k < p->n_out && !st; k++) {
        int id = p->out_ids[k];
        if (id >= 0 && nodes[id].active) st = tg_contribute(b, p->dense[id], b->g->params[p->n_dense + k]);
    }
    for (int li = p->n_live - 1; li >= 0 && !st; li--) {
        const tp_rec *r = &recs[p->live_recs[li]];
        const int *in = ids + r->io, *out = in + r->n_in;
        int any = 0;
        for (int j = 0; j < r->n_out; j++) any |= b->acc[p->dense[out[j]]] != NULL;
        if (!any) continue;
        sp_graph *rule = tg_rule(b, r->op);
        if (!rule) return sp_last_status() ? sp_last_status() : SP_ERR_INTERNAL;
        sp_node *ov, *dv;
        if (r->n_out == 1) {
            ov = b->param[p->dense[out[0]]];
            dv = b->acc[p->dense[out[0]]];
        } else {
            sp_node *os[SP_MAX_OUTPUTS], *ds[SP_MAX_OUTPUTS];
            int no = r->n_out < SP_MAX_OUTPUTS ? r->n_out : SP_MAX_OUTPUTS;
            for (int j = 0; j < no; j++) {
                os[j] = b->param[p->dense[out[j]]];
                ds[j] = b->acc[p->dense[out[j]]];
                if (!ds[j]) ds[j] = tg_const(b, sp_value_none());
            }
            ov = tg_builtin(b, RT_B_MAKE_TUPLE, no, os);
            dv = tg_builtin(b, RT_B_MAKE_TUPLE, no, ds);
        }
        sp_node *fz[2] = {dv, ov};
        sp_node *dz = tg_builtin(b, RT_B_FILL_ZEROS, 2, fz);
        const sp_value *kws = r->kws;
        int variadic = sp_op_defs[r->op].n_in < 0;
        int np = variadic ? 1 : r->n_in, na = np + 2 + kws->u.seq.n;
        sp_node **args = malloc(sizeof *args * (size_t)(na + r->n_in));
        if (!args) return sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
        for (int i = 0; i < r->n_in; i++) args[na + i] = b->param[p->dense[in[i]]];
        if (variadic) args[0] = tg_builtin(b, RT_B_MAKE_TUPLE, r->n_in, args + na);
        else memcpy(args, args + na, sizeof *args * (size_t)r->n_in);
        args[np] = ov;
        args[np + 1] = dz;
        for (int i = 0; i < kws->u.seq.n; i++) {
            sp_value_retain(kws->u.seq.items[i]);
            args[np + 2 + i] = tg_const(b, kws->u.seq.items[i]);
        }
        sp_node *res = tg_call(b, tg_const(b, sp_value_graph(rule)), na, args);
        free(args);
        if (!res) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
        for (int i = 0; i < r->n_in && !st; i++)
            if (nodes[in[i]].active) st = tg_contribute(b, p->dense[in[i]], tg_item(b, res, i));
    }
    if (st) return st;
    sp_node **items = malloc(sizeof *items * (size_t)(p->n_leaf + 1));
    if (!items) return sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
    for (int k = 0; k < p->n_leaf; k++) {
        int d = p->dense[p->leaf_ids[k]];
        sp_node *fz[2] = {b->acc[d] ? b->acc[d] : tg_const(b, sp_value_none()), b->param[d]};
        items[k] = tg_builtin(b, RT_B_FILL_ZEROS, 2, fz);
    }
    b->g->output = tg_builtin(b, RT_B_MAKE_TUPLE, p->n_leaf, items);
    free(items);
    return b->g->output ? SP_OK : (sp_last_status() ? sp_last_status() : SP_ERR_NOMEM);
}

/* The parameters of the compiled entry that its optimized body reads. */
static unsigned char *tg_needed(const sp_compiled *c, int n_dense) {
    unsigned char *need = calloc((size_t)n_dense + 1, 1);
    if (!need) return NULL;
    sp_graph *g = sp_compiled_graph(c);
    if (!g || g->n_params < n_dense) {
        memset(need, 1, (size_t)n_dense);
        return need;
    }
    int n = 0;
    sp_node **nodes = ir_graph_nodes(g, &n);
    if (!nodes) {
        memset(need, 1, (size_t)n_dense);
        return need;
    }
    /* a parameter is read when a node, the output, or a closure's free
     * variable names it */
#define TG_MARK(x)                                                                 \
    do {                                                                           \
        const sp_node *x_ = (x);                                                   \
        if (x_ && x_->kind == SP_NODE_PARAM && x_->graph == g)                     \
            for (int q = 0; q < n_dense; q++)                                      \
                if (g->params[q] == x_) need[q] = 1;                               \
    } while (0)
    TG_MARK(g->output);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < nodes[i]->n_inputs; k++) {
            const sp_node *x = nodes[i]->inputs[k];
            TG_MARK(x);
            if (x->kind == SP_NODE_CONST && x->value && x->value->kind == SP_V_GRAPH)
                for (int f = 0; f < x->value->u.graph->n_fv; f++) TG_MARK(x->value->u.graph->fv[f]);
        }
#undef TG_MARK
    free(nodes);
    return need;
}

/* Builds and compiles the graph of plan p for args (n_dense + n_out
 * values) into entry e (which owns the results).  SP_OK or an error. */
static sp_status tg_compile(const tg_plan *p, int n_args, sp_value *const *args, tg_entry *e) {
    tg_build b = {0};
    sp_status st = SP_OK;
    if (!(b.m = sp_module_new("<tape>", NULL))) return sp_last_status() ? sp_last_status() : SP_ERR_NOMEM;
    b.loc.file = b.m->file;
    b.param = calloc((size_t)p->n_dense + 1, sizeof *b.param);
    b.acc = calloc((size_t)p->n_dense + 1, sizeof *b.acc);
    b.rules = calloc(SP_OP_COUNT, sizeof *b.rules);
    if (!b.param || !b.acc || !b.rules) {
        st = sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
        goto done;
    }
    if (!(b.g = ir_graph_new(b.m, "tape_backward", NULL, b.loc))) goto fail;
    for (int d = 0; d < p->n_dense; d++)
        if (!(b.param[d] = ir_param_new(b.g, NULL, b.loc))) goto fail;
    for (int k = 0; k < p->n_out; k++)
        if (!ir_param_new(b.g, "sens", b.loc)) goto fail;
    if ((st = tg_body(&b, p))) goto done;
    sp_value *gv = sp_value_graph(b.g);
    st = gv ? ir_module_set_global(b.m, "tape_backward", gv) : SP_ERR_NOMEM;
    sp_value_release(gv);
    if (!st) st = ir_module_finalize(b.m);
    if (!st) st = sp_compile(b.m, "tape_backward", n_args, args, NULL, &e->c);
    if (!st && !(e->needed = tg_needed(e->c, p->n_dense))) st = sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
    goto done;
fail:
    st = sp_last_status() ? sp_last_status() : sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
done:
    free(b.param);
    free(b.acc);
    free(b.rules);
    if (st) {
        sp_compiled_free(e->c);
        e->c = NULL;
        free(e->needed);
        e->needed = NULL;
        sp_module_free(b.m);
    } else {
        e->m = b.m;
        e->n_dense = p->n_dense;
    }
    return st;
}

/* ---- sp_tape_grad --------------------------------------------------------------- */

static int tg_add_dense(tg_plan *p, int node) {
    if (node >= 0 && p->dense[node] < 0) {
        p->dense[node] = p->n_dense;
        p->node_of[p->n_dense++] = node;
    }
    return node >= 0 ? p->dense[node] : -1;
}

static sp_tensor *tg_sens(sp_tensor *s, const sp_tensor *o) {
    if (s->ndim != o->ndim || memcmp(s->shape, o->shape, sizeof *s->shape * (size_t)s->ndim)) {
        char a[96], b[96];
        sp_error(SP_ERR_SHAPE, "grad: the output's gradient (sens) has shape %s, the output %s",
                 sp_shape_str(s->ndim, s->shape, a, sizeof a), sp_shape_str(o->ndim, o->shape, b, sizeof b));
        return NULL;
    }
    if (s->dtype == o->dtype) {
        sp_tensor_retain(s);
        return s;
    }
    return rt_cast(s, o->dtype); /* any device: the sens may live on the GPU */
}

sp_value *sp_tape_grad(sp_tape *t, int n_out, sp_tensor *const *outs, sp_tensor *const *sens, int n_leaf,
                       const int *leaf_ids) {
    if (tp_error(t)) return NULL;
    int nn = tp_n_nodes(t), nr = tp_n_recs(t);
    const tp_node *nodes = tp_nodes(t);
    const tp_rec *recs = tp_recs(t);
    const int *ids = tp_ids(t);
    tg_plan p = {0};
    p.t = t;
    p.n_leaf = n_leaf;
    p.leaf_ids = leaf_ids;
    p.n_out = n_out;
    unsigned char *live = calloc((size_t)nn + 1, 1);
    p.dense = malloc(sizeof *p.dense * ((size_t)nn + 1));
    p.node_of = malloc(sizeof *p.node_of * ((size_t)nn + 1));
    p.live_recs = malloc(sizeof *p.live_recs * ((size_t)nr + 1));
    p.out_ids = malloc(sizeof *p.out_ids * ((size_t)n_out + 1));
    sp_value **args = NULL, *result = NULL;
    sp_tensor **sens_c = calloc((size_t)n_out + 1, sizeof *sens_c);
    tg_sig s = {0};
    int n_args = 0;
    if (!live || !p.dense || !p.node_of || !p.live_recs || !p.out_ids || !sens_c) {
        sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
        goto done;
    }
    for (int i = 0; i < nn; i++) p.dense[i] = -1;
    for (int k = 0; k < n_out; k++) {
        if (!(sens_c[k] = tg_sens(sens[k], outs[k]))) goto done;
        p.out_ids[k] = sp_tape_node_of(t, outs[k]);
        if (p.out_ids[k] >= 0 && nodes[p.out_ids[k]].active) live[p.out_ids[k]] = 1;
    }
    /* 1. liveness, backwards */
    int n_live = 0;
    for (int r = nr - 1; r >= 0; r--) {
        const int *in = ids + recs[r].io, *out = in + recs[r].n_in;
        int any = 0;
        for (int j = 0; j < recs[r].n_out; j++) any |= live[out[j]];
        if (!any) continue;
        p.live_recs[n_live++] = r;
        for (int i = 0; i < recs[r].n_in; i++)
            if (nodes[in[i]].active) live[in[i]] = 1;
    }
    for (int i = 0; i < n_live / 2; i++) { /* forward order */
        int x = p.live_recs[i];
        p.live_recs[i] = p.live_recs[n_live - 1 - i];
        p.live_recs[n_live - 1 - i] = x;
    }
    p.n_live = n_live;
    /* 2. dense numbering and the signature */
    for (int k = 0; k < n_leaf; k++) tg_add_dense(&p, leaf_ids[k]);
    for (int k = 0; k < n_out; k++) tg_add_dense(&p, p.out_ids[k]);
    for (int li = 0; li < n_live; li++) {
        const tp_rec *r = &recs[p.live_recs[li]];
        for (int i = 0; i < r->n_in + r->n_out; i++) tg_add_dense(&p, ids[r->io + i]);
    }
    sig_put(&s, 0x7461706531LL); /* "tape1" */
    sig_put(&s, n_leaf);
    for (int k = 0; k < n_leaf; k++) sig_put(&s, p.dense[leaf_ids[k]]);
    sig_put(&s, n_out);
    for (int k = 0; k < n_out; k++) {
        sig_put(&s, p.out_ids[k] >= 0 ? p.dense[p.out_ids[k]] : -1);
        sig_meta(&s, sens_c[k]);
    }
    sig_put(&s, p.n_dense);
    for (int d = 0; d < p.n_dense; d++) {
        const tp_node *x = &nodes[p.node_of[d]];
        sig_meta(&s, x->t);
        sig_put(&s, x->active);
    }
    sig_put(&s, n_live);
    for (int li = 0; li < n_live; li++) {
        const tp_rec *r = &recs[p.live_recs[li]];
        sig_put(&s, r->op);
        sig_put(&s, r->n_in);
        sig_put(&s, r->n_out);
        for (int i = 0; i < r->n_in + r->n_out; i++) sig_put(&s, p.dense[ids[r->io + i]]);
        sig_value(&s, r->kws);
    }
    if (s.oom) {
        sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
        goto done;
    }
    /* the arguments: the dense nodes' tensors, then the sensitivities */
    n_args = p.n_dense + n_out;
    if (!(args = calloc((size_t)n_args + 1, sizeof *args))) {
        sp_error(SP_ERR_NOMEM, "PyNative grad: out of memory");
        goto done;
    }
    for (int d = 0; d < p.n_dense; d++)
        if (!(args[d] = sp_value_tensor(nodes[p.node_of[d]].t))) goto done;
    for (int k = 0; k < n_out; k++)
        if (!(args[p.n_dense + k] = sp_value_tensor(sens_c[k]))) goto done;
    /* 3. the compiled graph: cached, or built now */
    uint64_t h = sig_hash(&s);
    pthread_mutex_lock(&tg_lock);
    tg_entry *e = NULL;
    for (int i = 0; i < tg_n && !e; i++)
        if (tg_cache[i].hash == h && tg_cache[i].len == s.n && !memcmp(tg_cache[i].sig, s.v, sizeof *s.v * s.n))
            e = &tg_cache[i];
    if (e) {
        tg_hits++;
    } else {
        tg_entry ne = {0};
        sp_status st = tg_compile(&p, n_args, args, &ne);
        if (st) {
            pthread_mutex_unlock(&tg_lock);
            goto done;
        }
        tg_compiles++;
        ne.sig = s.v;
        ne.len = s.n;
        ne.hash = h;
        s.v = NULL;
        if (tg_n == TG_CACHE_MAX) { /* drop the least recently used */
            int lru = 0;
            for (int i = 1; i < tg_n; i++)
                if (tg_cache[i].used < tg_cache[lru].used) lru = i;
            tg_entry_free(&tg_cache[lru]);
            tg_cache[lru] = tg_cache[--tg_n];
        }
        tg_cache[tg_n] = ne;
        e = &tg_cache[tg_n++];
    }
    e->used = ++tg_clock;
    /* 4. a needed tensor written after the tape saved it cannot be used */
    for (int d = 0; d < p.n_dense; d++) {
        const tp_node *x = &nodes[p.node_of[d]];
        const char *writer = NULL;
        if (e->needed[d] && tp_buf_version(t, x->t->buf, &writer) != x->ver) {
            pthread_mutex_unlock(&tg_lock);
            sp_error(SP_ERR_RUNTIME, "grad: a tensor the gradient needs was modified in place by '%s' after the "
                     "function used it (PyNative tape); write into a copy, or update it after taking the gradient",
                     writer ? writer : "?");
            goto done;
        }
    }
    result = sp_compiled_run(e->c, n_args, args);
    pthread_mutex_unlock(&tg_lock);
done:
    if (args)
        for (int i = 0; i < n_args; i++) sp_value_release(args[i]);
    free(args);
    for (int k = 0; k < n_out; k++) sp_tensor_release(sens_c ? sens_c[k] : NULL);
    free(sens_c);
    free(s.v);
    free(live);
    free(p.dense);
    free(p.node_of);
    free(p.live_recs);
    free(p.out_ids);
    return result;
}
