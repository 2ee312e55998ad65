/*
 * spec_leaf.c -- calls of builtins, primitives and API functions during
 * specialization: evaluated by the run-time's own implementation on meta
 * tensors, then replaced by the primitive calls they made.
 *
 * Nothing here knows what `x @ w + b`, ops.softmax or x.sum(axis=1) mean.
 * The arguments' abstracts become values -- constants as they are, TENSOR
 * abstracts as meta tensors (shape and dtype, no storage) -- and the real
 * implementation runs (rt_builtin_call, rt_prim_call, rt_api_call) with the
 * op trace installed (ops.h), so every primitive it calls runs inference
 * only and is recorded: op, inputs, attributes, outputs.  The result value
 * gives the node's abstract (meta tensors back to TENSOR abstracts,
 * everything else constant), and the recording is the code: each primitive
 * call becomes `prim.NAME(inputs..., keyword("attr", value)...)` in the
 * clone, with meta inputs mapped back to the nodes that carry them (the
 * arguments, earlier recorded outputs, items of argument tuples read with
 * tuple_getitem) and real tensors (constants the implementation made, such
 * as a Python scalar turned into a 0-d tensor) as constant nodes.  When a
 * tensor cannot be mapped (it came from somewhere the trace did not see),
 * the original call is kept instead, with its abstract: never wrong, just
 * not lowered.
 *
 * What is never replaced: effects.  print, assert and raise are not even
 * evaluated; spore.set_seed/get_seed neither (they touch the generator);
 * calls that draw random numbers or update in place are evaluated for
 * their abstract only (meta mode leaves the generator alone) and kept, so
 * each run draws fresh numbers.  A call that needs a tensor's value
 * (truthiness, .item(), int(t)) fails with SP_ERR_VALUE on meta tensors:
 * its abstract is then SCALAR or ANY and the call stays for run time.
 * Python operators with an argument known only by type (SCALAR) run on a
 * representative value (1, 1.0, True) to learn the result's type and
 * shape, which for elementwise operators does not depend on the value;
 * such results are never folded.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/spec_internal.h"

static sp_status nomem(void) { return sp_error(SP_ERR_NOMEM, "specialize: out of memory"); }

/* ---- the trace ------------------------------------------------------------------ */

typedef struct trace_rec {
    int op, n_in, n_kw, n_out;
    sp_tensor **in;
    sp_value **kw; /* KEYWORD values, one per attribute */
    sp_tensor **out;
} trace_rec;

typedef struct trace_log {
    trace_rec *recs;
    int n, cap;
    int failed;
} trace_log;

static sp_value *attr_value(const sp_attr *a) {
    switch (a->kind) {
    case SP_ATTR_INT: return sp_value_int(a->i);
    case SP_ATTR_FLOAT: return sp_value_float(a->f);
    case SP_ATTR_STR: return sp_value_str(a->s, strlen(a->s));
    case SP_ATTR_DTYPE: return sp_value_dtype((sp_dtype)a->i);
    case SP_ATTR_INTS: {
        sp_value *items[SP_MAX_ATTR_INTS];
        int k;
        for (k = 0; k < a->n; k++)
            if (!(items[k] = sp_value_int(a->ints[k]))) break;
        sp_value *t = k == a->n ? sp_value_tuple(a->n, items) : NULL;
        for (int i = 0; i < k; i++) sp_value_release(items[i]);
        return t;
    }
    }
    return NULL;
}

static void trace_cb(void *ctx, int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int n_out,
                     sp_tensor *const *out) {
    trace_log *log = ctx;
    if (log->failed) return;
    if (log->n == log->cap) {
        int cap = log->cap ? log->cap * 2 : 8;
        trace_rec *r = realloc(log->recs, sizeof *r * (size_t)cap);
        if (!r) {
            log->failed = 1;
            return;
        }
        log->recs = r;
        log->cap = cap;
    }
    trace_rec *r = &log->recs[log->n];
    memset(r, 0, sizeof *r);
    int n_attr = attrs ? attrs->n : 0;
    r->in = malloc(sizeof *r->in * (size_t)(n_in + 1));
    r->out = malloc(sizeof *r->out * (size_t)(n_out + 1));
    r->kw = malloc(sizeof *r->kw * (size_t)(n_attr + 1));
    if (!r->in || !r->out || !r->kw) {
        free(r->in);
        free(r->out);
        free(r->kw);
        log->failed = 1;
        return;
    }
    log->n++;
    r->op = op;
    for (int i = 0; i < n_in; i++) sp_tensor_retain(in[i]), r->in[r->n_in++] = in[i];
    for (int i = 0; i < n_out; i++) sp_tensor_retain(out[i]), r->out[r->n_out++] = out[i];
    for (int i = 0; i < n_attr; i++) {
        sp_value *v = attr_value(&attrs->a[i]);
        sp_value *kw = v ? sp_value_keyword(attrs->a[i].name, v) : NULL;
        sp_value_release(v);
        if (!kw) {
            log->failed = 1;
            return;
        }
        r->kw[r->n_kw++] = kw;
    }
}

static void trace_free(trace_log *log) {
    for (int i = 0; i < log->n; i++) {
        trace_rec *r = &log->recs[i];
        for (int k = 0; k < r->n_in; k++) sp_tensor_release(r->in[k]);
        for (int k = 0; k < r->n_out; k++) sp_tensor_release(r->out[k]);
        for (int k = 0; k < r->n_kw; k++) sp_value_release(r->kw[k]);
        free(r->in);
        free(r->out);
        free(r->kw);
    }
    free(log->recs);
    memset(log, 0, sizeof *log);
}

/* ---- meta tensors and abstracts ---------------------------------------------------- */

sp_tensor *spec_meta_of(spec *s, sp_abstract *a) {
    sp_tensor *t = ir_map_get(&s->abs_meta, IR_PKEY(a));
    if (t) return t;
    t = sp_tensor_new(a->dtype, a->ndim, a->shape, SP_META);
    if (!t) return NULL;
    if (s->n_metas == s->cap_metas) {
        int cap = s->cap_metas ? s->cap_metas * 2 : 256;
        sp_tensor **m = realloc(s->metas, sizeof *m * (size_t)cap);
        if (!m) {
            sp_tensor_release(t);
            nomem();
            return NULL;
        }
        s->metas = m;
        s->cap_metas = cap;
    }
    s->metas[s->n_metas++] = t;
    if (ir_map_put(&s->abs_meta, IR_PKEY(a), t) || ir_map_put(&s->meta_abs, IR_PKEY(t), a)) {
        nomem();
        return NULL;
    }
    return t;
}

/* The TENSOR abstract of a meta tensor a call returned (one per tensor). */
static sp_abstract *abs_of_meta(spec *s, sp_tensor *t, sp_device dev) {
    sp_abstract *a = ir_map_get(&s->meta_abs, IR_PKEY(t));
    if (a) return a;
    a = sp_abs_tensor(s->m, t->dtype, t->ndim, t->shape, dev);
    if (!a) return NULL;
    if (s->n_metas == s->cap_metas) {
        int cap = s->cap_metas ? s->cap_metas * 2 : 256;
        sp_tensor **m = realloc(s->metas, sizeof *m * (size_t)cap);
        if (!m) {
            nomem();
            return NULL;
        }
        s->metas = m;
        s->cap_metas = cap;
    }
    sp_tensor_retain(t);
    s->metas[s->n_metas++] = t;
    if (ir_map_put(&s->abs_meta, IR_PKEY(a), t) || ir_map_put(&s->meta_abs, IR_PKEY(t), a)) {
        nomem();
        return NULL;
    }
    return a;
}

static int has_meta(const sp_value *v, int depth) {
    if (depth > 32) return 1;
    switch (v->kind) {
    case SP_V_TENSOR: return sp_tensor_is_meta(v->u.tensor);
    case SP_V_TUPLE:
    case SP_V_LIST:
        for (int i = 0; i < v->u.seq.n; i++)
            if (has_meta(v->u.seq.items[i], depth + 1)) return 1;
        return 0;
    case SP_V_PARTIAL:
        if (has_meta(v->u.partial.fn, depth + 1)) return 1;
        for (int i = 0; i < v->u.partial.n; i++)
            if (has_meta(v->u.partial.args[i], depth + 1)) return 1;
        return 0;
    case SP_V_KEYWORD: return has_meta(v->u.kw.value, depth + 1);
    case SP_V_CLOSURE:
        for (int i = 0; i < v->u.closure.n; i++)
            if (has_meta(v->u.closure.fv[i], depth + 1)) return 1;
        return 0;
    default: return 0;
    }
}

/* The abstract of a value a leaf returned. */
static sp_abstract *abs_of_value(spec *s, sp_value *v, sp_device dev, int depth) {
    if (!has_meta(v, 0)) return sp_abs_const(s->m, v);
    if (depth > 32) return sp_abs_any(s->m);
    switch (v->kind) {
    case SP_V_TENSOR: return abs_of_meta(s, v->u.tensor, dev);
    case SP_V_TUPLE:
    case SP_V_LIST: {
        int n = v->u.seq.n;
        sp_abstract **items = malloc(sizeof *items * (size_t)(n ? n : 1));
        if (!items) return NULL;
        int i;
        for (i = 0; i < n; i++)
            if (!(items[i] = abs_of_value(s, v->u.seq.items[i], dev, depth + 1))) break;
        sp_abstract *r = i == n ? sp_abs_seq(s->m, v->kind == SP_V_LIST ? SP_ABS_LIST : SP_ABS_TUPLE, n, items) : NULL;
        free(items);
        return r;
    }
    case SP_V_PARTIAL: {
        int n = v->u.partial.n;
        sp_abstract **items = malloc(sizeof *items * (size_t)(n ? n : 1));
        sp_abstract *fn = items ? abs_of_value(s, v->u.partial.fn, dev, depth + 1) : NULL;
        int i = 0;
        if (fn)
            for (i = 0; i < n; i++)
                if (!(items[i] = abs_of_value(s, v->u.partial.args[i], dev, depth + 1))) break;
        sp_abstract *r = fn && i == n ? sp_abs_partial(s->m, fn, n, items) : NULL;
        free(items);
        return r;
    }
    case SP_V_KEYWORD: {
        sp_abstract *x = abs_of_value(s, v->u.kw.value, dev, depth + 1);
        return x ? sp_abs_keyword(s->m, v->u.kw.name, x) : NULL;
    }
    default: return sp_abs_any(s->m);
    }
}

/* A value standing for abstract a, or NULL (no error) when a is not known
 * well enough.  *repr is set when a SCALAR was given a representative. */
static sp_value *value_of(spec *s, sp_abstract *a, int allow_repr, int *repr, int depth) {
    if (depth > 32) return NULL;
    switch (a->kind) {
    case SP_ABS_CONST: sp_value_retain(a->value); return a->value;
    case SP_ABS_TENSOR: {
        if (!sp_abs_tensor_known(a)) return NULL;
        sp_tensor *t = spec_meta_of(s, a);
        if (!t) return NULL;
        sp_tensor_retain(t);
        return rt_wrap(t);
    }
    case SP_ABS_SCALAR:
        if (!allow_repr) return NULL;
        *repr = 1;
        return a->scalar == SP_V_INT ? sp_value_int(1) : a->scalar == SP_V_FLOAT ? sp_value_float(1.0) : sp_value_bool(1);
    case SP_ABS_TUPLE:
    case SP_ABS_LIST: {
        sp_value **items = malloc(sizeof *items * (size_t)(a->n ? a->n : 1));
        if (!items) return NULL;
        int i;
        for (i = 0; i < a->n; i++)
            if (!(items[i] = value_of(s, a->items[i], allow_repr, repr, depth + 1))) break;
        sp_value *r = i == a->n ? (a->kind == SP_ABS_LIST ? sp_value_list(i, items) : sp_value_tuple(i, items)) : NULL;
        for (int k = 0; k < i; k++) sp_value_release(items[k]);
        free(items);
        return r;
    }
    case SP_ABS_KEYWORD: {
        sp_value *x = value_of(s, a->items[0], allow_repr, repr, depth + 1);
        sp_value *r = x ? sp_value_keyword(a->name, x) : NULL;
        sp_value_release(x);
        return r;
    }
    case SP_ABS_PARTIAL: {
        sp_value *fn = value_of(s, a->fn, allow_repr, repr, depth + 1);
        if (!fn) return NULL;
        sp_value **items = malloc(sizeof *items * (size_t)(a->n ? a->n : 1));
        int i = 0;
        if (items)
            for (i = 0; i < a->n; i++)
                if (!(items[i] = value_of(s, a->items[i], allow_repr, repr, depth + 1))) break;
        sp_value *r = items && i == a->n ? sp_value_partial(fn, i, items) : NULL;
        for (int k = 0; k < i; k++) sp_value_release(items[k]);
        free(items);
        sp_value_release(fn);
        return r;
    }
    default: return NULL;
    }
}

/* A result computed on representative values: its constants are not facts. */
static sp_abstract *demote(spec *s, sp_abstract *a) {
    if (a->kind == SP_ABS_CONST) {
        sp_vkind k = a->value->kind;
        if (k == SP_V_INT || k == SP_V_FLOAT || k == SP_V_BOOL) return sp_abs_scalar(s->m, k);
        return sp_abs_any(s->m);
    }
    if (a->kind == SP_ABS_TENSOR) return a;
    return sp_abs_any(s->m);
}

/* ---- classes of callees ---------------------------------------------------------------- */

enum { LEAF_EVAL, LEAF_KEEP, LEAF_NOEVAL };

/* ir_node_is_pure on a call of fn with first argument `first`. */
static int callee_pure(const sp_value *fn, const sp_value *first) {
    sp_node callee, arg, app;
    memset(&callee, 0, sizeof callee);
    memset(&arg, 0, sizeof arg);
    memset(&app, 0, sizeof app);
    callee.kind = SP_NODE_CONST;
    callee.value = (sp_value *)fn;
    arg.kind = SP_NODE_CONST;
    arg.value = (sp_value *)first;
    sp_node *ins[2] = {&callee, &arg};
    app.kind = SP_NODE_APPLY;
    app.n_inputs = first ? 2 : 1;
    app.inputs = ins;
    return ir_node_is_pure(&app);
}

static int leaf_class(const sp_value *fn, int na, const leaf_arg *args, int *pure) {
    const sp_value *first = na > 0 && args[0].abs->kind == SP_ABS_CONST ? args[0].abs->value : NULL;
    *pure = callee_pure(fn, first);
    if (fn->kind == SP_V_PRIM) return *pure ? LEAF_EVAL : LEAF_KEEP;
    switch (fn->u.builtin) {
    case RT_B_PRINT:
    case RT_B_RAISE:
    case RT_B_ASSERT:
    case RT_B_CALL_STAR:
    case RT_B_GRAD_CALL:
    case RT_B_BPROP_TAPE:
    case RT_B_J_PRIMAL:
    case RT_B_J: return LEAF_NOEVAL;
    case RT_B_API:
        if (!first || first->kind != SP_V_STR) return LEAF_NOEVAL;
        if (!strcmp(first->u.str.s, "spore.set_seed") || !strcmp(first->u.str.s, "spore.get_seed") ||
            !strncmp(first->u.str.s, "spore.grad", 10) || !strcmp(first->u.str.s, "spore.value_and_grad") ||
            !strcmp(first->u.str.s, "spore._grad_operation"))
            return LEAF_NOEVAL;
        return *pure ? LEAF_EVAL : LEAF_KEEP;
    default: return *pure ? LEAF_EVAL : LEAF_KEEP;
    }
}

/* Builtins whose result's type and shape do not depend on a scalar's value. */
static int repr_ok(const sp_value *fn) {
    if (fn->kind != SP_V_BUILTIN) return 0;
    switch (fn->u.builtin) {
    case RT_B_ADD: case RT_B_SUB: case RT_B_MUL: case RT_B_TRUEDIV: case RT_B_FLOORDIV: case RT_B_MOD:
    case RT_B_POW: case RT_B_NEG: case RT_B_POS: case RT_B_NOT: case RT_B_EQ: case RT_B_NE: case RT_B_LT:
    case RT_B_LE: case RT_B_GT: case RT_B_GE: case RT_B_TRUTH: case RT_B_ABS: case RT_B_INT: case RT_B_FLOAT:
    case RT_B_BOOL: return 1;
    default: return 0;
    }
}

/* Items of a tuple abstract (a TUPLE, or a constant tuple: new CONST
 * abstracts in items, which holds at least n), or -1. */
static int tuple_items(spec *s, sp_abstract *a, sp_abstract **items, int n) {
    int m = a->kind == SP_ABS_TUPLE ? a->n : a->kind == SP_ABS_CONST && a->value->kind == SP_V_TUPLE ? a->value->u.seq.n : -1;
    if (m < 0 || m > n) return -1;
    for (int i = 0; i < m; i++)
        if (!(items[i] = a->kind == SP_ABS_TUPLE ? a->items[i] : sp_abs_const(s->m, a->value->u.seq.items[i]))) return -1;
    return m;
}

/* t1 + t2 and tuple(t) on tuples whose items have no value now (functions:
 * what f(*args) builds when args holds one): the tuple of the items, which
 * is all a later call_star needs (spec_args.c).  NULL when not that case. */
static sp_abstract *tuple_struct(spec *s, const sp_value *fn, int na, const leaf_arg *args) {
    if (fn->kind != SP_V_BUILTIN || !((fn->u.builtin == RT_B_ADD && na == 2) || (fn->u.builtin == RT_B_TUPLE && na == 1)))
        return NULL;
    enum { MAXN = 256 };
    sp_abstract *items[2 * MAXN];
    int m = 0;
    for (int i = 0; i < na; i++) {
        int k = tuple_items(s, args[i].abs, items + m, MAXN);
        if (k < 0) return NULL;
        m += k;
    }
    return sp_abs_seq(s->m, SP_ABS_TUPLE, m, items);
}

/* The abstract of a call whose value cannot be computed now. */
static sp_abstract *unknown_result(spec *s, const sp_value *fn, int na, const leaf_arg *args) {
    for (int i = 0; i < na; i++)
        if (args[i].abs->kind == SP_ABS_BOTTOM) return sp_abs_bottom(s->m);
    if (fn->kind == SP_V_BUILTIN) switch (fn->u.builtin) {
        case RT_B_TRUTH:
        case RT_B_NOT:
        case RT_B_BOOL:
        case RT_B_IS:
        case RT_B_IS_NOT:
        case RT_B_ISINSTANCE: return sp_abs_scalar(s->m, SP_V_BOOL);
        case RT_B_INT:
        case RT_B_LEN: return sp_abs_scalar(s->m, SP_V_INT);
        case RT_B_FLOAT: return sp_abs_scalar(s->m, SP_V_FLOAT);
        case RT_B_RAISE: return sp_abs_bottom(s->m);
        default: break;
        }
    return sp_abs_any(s->m);
}

/* ---- mapping tensors back to nodes ------------------------------------------------------ */

/* Where an item of an argument tuple lives: tuple_getitem(base, index). */
typedef struct item_path {
    sp_abstract *parent; /* the tuple's abstract */
    sp_node *base;       /* or the tuple's node, for an argument */
    int index;
} item_path;

typedef struct leaf_state {
    spec *s;
    spec_ctx *c;
    sp_loc loc;
    ir_map paths;    /* item abstract -> item_path* */
    ir_map produced; /* meta tensor -> 1: made by an earlier record of this call */
    item_path *pool;
    int n_pool, cap_pool;
} leaf_state;

static void add_paths(leaf_state *ls, sp_abstract *a, sp_node *base, int depth) {
    if ((a->kind != SP_ABS_TUPLE && a->kind != SP_ABS_LIST) || depth > 8) return;
    for (int i = 0; i < a->n; i++) {
        sp_abstract *it = a->items[i];
        if (it->kind != SP_ABS_TENSOR && it->kind != SP_ABS_TUPLE && it->kind != SP_ABS_LIST) continue;
        if (ir_map_get(&ls->paths, IR_PKEY(it))) continue;
        if (ls->n_pool == ls->cap_pool) {
            /* paths point into the pool: grow by chaining fresh blocks */
            int cap = 64;
            item_path *p = ir_alloc(ls->s->m, sizeof *p * (size_t)cap);
            if (!p) return;
            ls->pool = p;
            ls->n_pool = 0;
            ls->cap_pool = cap;
        }
        item_path *p = &ls->pool[ls->n_pool++];
        p->parent = a;
        p->base = base;
        p->index = i;
        if (ir_map_put(&ls->paths, IR_PKEY(it), p)) return;
        add_paths(ls, it, NULL, depth + 1);
    }
}

/* The node carrying abstract a, or NULL; emit: build tuple_getitem reads
 * when needed (else only say whether it could). */
static sp_node *node_for(leaf_state *ls, sp_abstract *a, int emit, int depth) {
    sp_node *x = ir_map_get(&ls->s->abs_node, IR_PKEY(a));
    if (x && spec_visible(ls->c, x)) return x;
    if (a->kind == SP_ABS_CONST && emit) return spec_const(ls->s, ls->c, a->value, ls->loc);
    if (a->kind == SP_ABS_CONST) return (sp_node *)1;
    item_path *p = depth < 16 ? ir_map_get(&ls->paths, IR_PKEY(a)) : NULL;
    if (!p) return NULL;
    sp_node *base = p->base && spec_visible(ls->c, p->base) ? p->base : node_for(ls, p->parent, emit, depth + 1);
    if (!base || !emit) return base;
    sp_value *getitem = sp_value_builtin(RT_B_TUPLE_GETITEM), *ix = sp_value_int(p->index);
    sp_node *in[3] = {getitem ? spec_const(ls->s, ls->c, getitem, ls->loc) : NULL, base,
                      ix ? spec_const(ls->s, ls->c, ix, ls->loc) : NULL};
    sp_value_release(getitem);
    sp_value_release(ix);
    if (!in[0] || !in[2]) return NULL;
    return spec_apply(ls->s, ls->c, 3, in, ls->loc, a);
}

/* The node for a tensor a recorded primitive read or a result holds. */
static sp_node *node_for_tensor(leaf_state *ls, sp_tensor *t, int emit) {
    if (!sp_tensor_is_meta(t)) {
        sp_abstract *ka = ir_map_get(&ls->s->tensor_abs, IR_PKEY(t));
        sp_node *known = ka ? ir_map_get(&ls->s->abs_node, IR_PKEY(ka)) : NULL;
        if (known && spec_visible(ls->c, known)) return known; /* the node that made it */
        if (!emit) return (sp_node *)1;
        sp_value *v = sp_value_tensor(t);
        sp_node *k = v ? spec_const(ls->s, ls->c, v, ls->loc) : NULL;
        sp_value_release(v);
        return k;
    }
    if (!emit && ir_map_get(&ls->produced, IR_PKEY(t))) return (sp_node *)1;
    sp_abstract *a = ir_map_get(&ls->s->meta_abs, IR_PKEY(t));
    return a ? node_for(ls, a, emit, 0) : NULL;
}

/* The node of a result value (tuples rebuilt), or NULL. */
static sp_node *node_for_value(leaf_state *ls, sp_value *v, sp_abstract *a, int emit, int depth) {
    if (!has_meta(v, 0)) {
        if (!emit) return (sp_node *)1;
        return spec_const(ls->s, ls->c, v, ls->loc);
    }
    if (v->kind == SP_V_TENSOR) return node_for_tensor(ls, v->u.tensor, emit);
    if ((v->kind != SP_V_TUPLE && v->kind != SP_V_LIST) || depth > 8 || a->kind == SP_ABS_CONST) return NULL;
    int n = v->u.seq.n;
    sp_node **in = malloc(sizeof *in * (size_t)(n + 1));
    if (!in) return NULL;
    sp_node *r = (sp_node *)1;
    for (int i = 0; i < n && r; i++)
        if (!(in[i + 1] = node_for_value(ls, v->u.seq.items[i], a->items[i], emit, depth + 1))) r = NULL;
    if (r && emit) {
        sp_value *mk = sp_value_builtin(v->kind == SP_V_LIST ? RT_B_MAKE_LIST : RT_B_MAKE_TUPLE);
        in[0] = mk ? spec_const(ls->s, ls->c, mk, ls->loc) : NULL;
        sp_value_release(mk);
        r = in[0] ? spec_apply(ls->s, ls->c, n + 1, in, ls->loc, a) : NULL;
    }
    free(in);
    return r;
}

/* Emits the recorded primitive calls; NULL when a tensor has no node. */
static int trace_resolvable(leaf_state *ls, const trace_log *log) {
    for (int i = 0; i < log->n; i++) {
        const trace_rec *r = &log->recs[i];
        int flags = (int)sp_op_defs[r->op].flags;
        if (flags & (SP_OPF_RANDOM | SP_OPF_INPLACE)) return 0;
        for (int k = 0; k < r->n_in; k++)
            if (!node_for_tensor(ls, r->in[k], 0)) return 0;
        for (int k = 0; k < r->n_out; k++)
            if (ir_map_put(&ls->produced, IR_PKEY(r->out[k]), (void *)1)) return 0;
    }
    return 1;
}

static sp_status trace_emit(leaf_state *ls, const trace_log *log, sp_device dev, sp_node **last) {
    spec *s = ls->s;
    for (int i = 0; i < log->n; i++) {
        const trace_rec *r = &log->recs[i];
        int n = 1 + r->n_in + r->n_kw;
        sp_node **in = malloc(sizeof *in * (size_t)n);
        if (!in) return nomem();
        sp_value *pv = sp_value_prim(r->op);
        in[0] = pv ? spec_const(s, ls->c, pv, ls->loc) : NULL;
        sp_value_release(pv);
        int ok = in[0] != NULL;
        for (int k = 0; k < r->n_in && ok; k++) ok = (in[1 + k] = node_for_tensor(ls, r->in[k], 1)) != NULL;
        for (int k = 0; k < r->n_kw && ok; k++) ok = (in[1 + r->n_in + k] = spec_const(s, ls->c, r->kw[k], ls->loc)) != NULL;
        sp_abstract *outs[SP_MAX_OUTPUTS];
        for (int k = 0; k < r->n_out && ok; k++) ok = (outs[k] = abs_of_meta(s, r->out[k], dev)) != NULL;
        sp_abstract *a = NULL;
        if (ok) a = r->n_out == 1 ? outs[0] : sp_abs_seq(s->m, SP_ABS_TUPLE, r->n_out, outs);
        sp_node *x = a ? spec_apply(s, ls->c, n, in, ls->loc, a) : NULL;
        free(in);
        if (!x) return sp_last_status() ? sp_last_status() : nomem();
        if (last) *last = x;
        if (r->n_out != 1)
            for (int k = 0; k < r->n_out; k++) {
                sp_value *gi = sp_value_builtin(RT_B_TUPLE_GETITEM), *ix = sp_value_int(k);
                sp_node *gin[3] = {gi ? spec_const(s, ls->c, gi, ls->loc) : NULL, x,
                                   ix ? spec_const(s, ls->c, ix, ls->loc) : NULL};
                sp_value_release(gi);
                sp_value_release(ix);
                if (!gin[0] || !gin[2] || !spec_apply(s, ls->c, 3, gin, ls->loc, outs[k])) return nomem();
            }
    }
    return SP_OK;
}

/* ---- the leaf ------------------------------------------------------------------------------ */

/* ops.stop_gradient(x): an identity for values, a zero for gradients. */
static int is_stop_gradient(const sp_value *fn, int na, const leaf_arg *args) {
    return fn->kind == SP_V_BUILTIN && fn->u.builtin == RT_B_API && na == 2 && args[0].abs->kind == SP_ABS_CONST &&
           args[0].abs->value->kind == SP_V_STR && !strcmp(args[0].abs->value->u.str.s, "ops.stop_gradient");
}

static sp_device dev_of_args(int na, const leaf_arg *args) {
    for (int i = 0; i < na; i++)
        if (args[i].abs->kind == SP_ABS_TENSOR) return args[i].abs->device;
    return SP_CPU;
}

static int inputs_carry(spec *s, spec_ctx *c, const sp_node *n) {
    for (int i = 0; i < n->n_inputs; i++) {
        spec_slot *sl = spec_lookup(s, c, n->inputs[i]);
        if (!sl || sl->carries) return 1;
    }
    return 0;
}

static sp_status keep(spec *s, spec_ctx *c, sp_node *n, spec_slot *out) {
    s->stats.n_kept++;
    out->node = spec_emit_orig(s, c, n, out->abs);
    return out->node ? SP_OK : sp_last_status();
}

/* env_getitem(env, key, d) / env_setitem(env, key, v) with a constant key
 * naming a free variable by its node (ad_key_of): the node of this clone
 * that carries it, whose key the run time's J of the clone's closures
 * uses; 0 when the key needs no change.  Gradient graphs key the
 * gradients of captured values by the captured nodes, and those are the
 * clones' nodes once specialized. */
static int64_t env_key(spec_ctx *c, const sp_value *fn, int na, const leaf_arg *args) {
    if (fn->kind != SP_V_BUILTIN || (fn->u.builtin != RT_B_ENV_GETITEM && fn->u.builtin != RT_B_ENV_SETITEM) ||
        na != 3 || args[1].abs->kind != SP_ABS_CONST || args[1].abs->value->kind != SP_V_INT)
        return 0;
    uint64_t k = (uint64_t)args[1].abs->value->u.i;
    for (spec_ctx *e = c; e; e = e->parent) {
        spec_slot *sl = ir_map_get(&e->slots, k);
        if (sl) return sl->node && IR_PKEY(sl->node) != k ? (int64_t)IR_PKEY(sl->node) : 0;
    }
    return 0;
}

/* keep() for an env call whose key became key (the other inputs mapped). */
static sp_status keep_env(spec *s, spec_ctx *c, sp_node *n, int64_t key, spec_slot *out) {
    s->stats.n_kept++;
    sp_value *kv = sp_value_int(key);
    sp_node *in[4] = {spec_input(s, c, n->inputs[0]), spec_input(s, c, n->inputs[1]),
                      kv ? spec_const(s, c, kv, n->inputs[2]->loc) : NULL, spec_input(s, c, n->inputs[3])};
    sp_value_release(kv);
    out->node = in[0] && in[1] && in[2] && in[3] ? spec_apply(s, c, 4, in, n->loc, out->abs) : NULL;
    return out->node ? SP_OK : sp_last_status() ? sp_last_status() : nomem();
}

sp_status spec_leaf(spec *s, spec_ctx *c, sp_node *n, const sp_value *fn, int na, leaf_arg *args, spec_slot *out) {
    if (fn->kind == SP_V_BUILTIN && fn->u.builtin == RT_B_API) {
        sp_status gst = SP_OK; /* spore.grad(f, ...) on a known f: a gradient function (spec_grad.c) */
        if (spec_grad_fn(s, c, n, na, args, out, &gst) || gst) return gst;
    }
    int64_t key = n->n_inputs == 4 ? env_key(c, fn, na, args) : 0;
    if (key) {
        sp_value *kv = sp_value_int(key);
        sp_abstract *ka = kv ? sp_abs_const(s->m, kv) : NULL;
        sp_value_release(kv);
        if (!ka) return nomem();
        args[1].abs = ka;
    }
    int pure = 0;
    int cls = leaf_class(fn, na, args, &pure);
    out->pure = pure;
    out->carries = 0;
    if (!pure) c->impure = 1;
    if (cls == LEAF_NOEVAL) {
        out->abs = unknown_result(s, fn, na, args);
        if (fn->kind == SP_V_BUILTIN && (fn->u.builtin == RT_B_PRINT || fn->u.builtin == RT_B_ASSERT)) {
            sp_value *none = sp_value_none();
            out->abs = none ? sp_abs_const(s->m, none) : NULL;
            sp_value_release(none);
        }
        if (!out->abs) return nomem();
        return key ? keep_env(s, c, n, key, out) : keep(s, c, n, out);
    }
    /* the arguments as values */
    int repr = 0, allow = repr_ok(fn);
    sp_value **vals = malloc(sizeof *vals * (size_t)(na ? na : 1));
    if (!vals) return nomem();
    int i;
    for (i = 0; i < na; i++) {
        if (args[i].node) spec_note(s, args[i].abs, args[i].node);
        if (!(vals[i] = value_of(s, args[i].abs, allow, &repr, 0))) break;
    }
    if (i < na) {
        for (int k = 0; k < i; k++) sp_value_release(vals[k]);
        free(vals);
        if (sp_last_status() == SP_ERR_NOMEM) return SP_ERR_NOMEM;
        sp_clear_error();
        out->abs = tuple_struct(s, fn, na, args);
        if (!out->abs) out->abs = unknown_result(s, fn, na, args);
        if (!out->abs) return nomem();
        return key ? keep_env(s, c, n, key, out) : keep(s, c, n, out);
    }
    /* run it on meta tensors, recording the primitives */
    trace_log log;
    memset(&log, 0, sizeof log);
    sp_op_trace_fn prev_fn;
    void *prev_ctx;
    sp_clear_error();
    sp_op_trace_set(trace_cb, &log, &prev_fn, &prev_ctx);
    sp_value *r = fn->kind == SP_V_PRIM ? rt_prim_call(fn->u.prim, na, vals) : rt_builtin_call(fn->u.builtin, na, vals);
    sp_op_trace_set(prev_fn, prev_ctx, NULL, NULL);
    for (int k = 0; k < na; k++) sp_value_release(vals[k]);
    free(vals);
    sp_status st = SP_OK;
    if (!r) {
        sp_status code = sp_last_status();
        if (code == SP_ERR_VALUE || repr || log.failed) {
            sp_clear_error();
        } else if ((st = spec_user_error(s, c, n)) != SP_OK) {
            trace_free(&log);
            return st;
        }
        trace_free(&log);
        out->abs = unknown_result(s, fn, na, args);
        if (!out->abs) return nomem();
        return key ? keep_env(s, c, n, key, out) : keep(s, c, n, out);
    }
    sp_device dev = dev_of_args(na, args);
    out->abs = abs_of_value(s, r, dev, 0);
    if (out->abs && repr) out->abs = demote(s, out->abs);
    if (!out->abs) {
        sp_value_release(r);
        trace_free(&log);
        return nomem();
    }
    int can_replace = cls == LEAF_EVAL && !repr && !log.failed && !inputs_carry(s, c, n);
    if (is_stop_gradient(fn, na, args) && out->abs->kind == SP_ABS_TENSOR) {
        /* the value is its input's, the gradient is not: the call stays (its
         * run-time J gives zero), with an abstract of its own, so the input's
         * other uses do not read the call's node */
        can_replace = 0;
        out->abs = sp_abs_tensor(s->m, out->abs->dtype, out->abs->ndim, out->abs->shape, out->abs->device);
        if (!out->abs) {
            sp_value_release(r);
            trace_free(&log);
            return nomem();
        }
    }
    if (can_replace && spec_foldable(c, out->abs)) {
        s->stats.n_folded++;
        sp_value_release(r);
        trace_free(&log);
        return SP_OK; /* folded */
    }
    if (can_replace && out->abs->kind != SP_ABS_CONST) {
        leaf_state ls;
        memset(&ls, 0, sizeof ls);
        ls.s = s;
        ls.c = c;
        ls.loc = n->loc;
        for (int k = 0; k < na; k++)
            if (args[k].node) add_paths(&ls, args[k].abs, args[k].node, 0);
        if (trace_resolvable(&ls, &log) && node_for_value(&ls, r, out->abs, 0, 0)) {
            st = trace_emit(&ls, &log, dev, NULL);
            if (!st) {
                out->node = node_for_value(&ls, r, out->abs, 1, 0);
                if (!out->node) st = sp_last_status() ? sp_last_status() : nomem();
                else if (out->node->kind == SP_NODE_APPLY && !out->node->name && n->name)
                    out->node->name = ir_intern(s->m, n->name);
            }
            ir_map_free(&ls.paths);
            ir_map_free(&ls.produced);
            sp_value_release(r);
            trace_free(&log);
            if (!st) s->stats.n_replaced++;
            return st;
        }
        ir_map_free(&ls.paths);
        ir_map_free(&ls.produced);
    }
    if (cls == LEAF_KEEP && fn->kind == SP_V_BUILTIN && fn->u.builtin == RT_B_API && log.n == 1 && !log.failed &&
        (sp_op_defs[log.recs[0].op].flags & SP_OPF_INPLACE) && r->kind == SP_V_NONE && !key &&
        !inputs_carry(s, c, n)) {
        /* an API call that is one in-place primitive (ops.assign): the
         * primitive itself, kept in the effect order the call had, so the
         * lowering sees a kernel instead of an API call */
        leaf_state ls;
        memset(&ls, 0, sizeof ls);
        ls.s = s;
        ls.c = c;
        ls.loc = n->loc;
        for (int k = 0; k < na; k++)
            if (args[k].node) add_paths(&ls, args[k].abs, args[k].node, 0);
        int ok = 1;
        for (int k = 0; k < log.recs[0].n_in && ok; k++) ok = node_for_tensor(&ls, log.recs[0].in[k], 0) != NULL;
        sp_node *x = NULL;
        if (ok) st = trace_emit(&ls, &log, dev, &x);
        ir_map_free(&ls.paths);
        ir_map_free(&ls.produced);
        if (ok) {
            sp_value_release(r);
            trace_free(&log);
            if (st) return st;
            s->stats.n_replaced++; /* replaced, not kept: each leaf call counts once */
            out->node = x;
            return SP_OK;
        }
    }
    sp_value_release(r);
    trace_free(&log);
    return key ? keep_env(s, c, n, key, out) : keep(s, c, n, out);
}

void spec_leaf_free(spec *s) {
    for (int i = 0; i < s->n_metas; i++) sp_tensor_release(s->metas[i]);
    free(s->metas);
    s->metas = NULL;
    s->n_metas = s->cap_metas = 0;
    ir_map_free(&s->abs_meta);
    ir_map_free(&s->meta_abs);
}
