/*
 * lower.c -- from a canonical straight-line graph to a kernel list over
 * slots (see lower.h for the form and the invariants).
 *
 * One walk over the graph's nodes in evaluation order gives each node a
 * *lowered value*: a slot (a tensor), a constant value, a tuple of lowered
 * values or a keyword (name = constant).  Plumbing builtins only move these
 * around -- make_tuple builds a tuple, tuple_getitem picks an item,
 * make_keyword names a constant -- so no tuple survives to run time.  A
 * primitive call becomes a kernel: keywords (constant KEYWORD values or
 * make_keyword nodes) become its sp_attrs, built here once; positional
 * arguments become input slots, constants among them tensors made now with
 * the VM's rules (a Python scalar takes the dtype of the call's first
 * tensor input: weak typing, as rt_prim_call does; a tuple given to a
 * variadic primitive spreads); inference on the input metas gives the
 * output slots.  Whatever the walk does not know is a reason to give up,
 * returned as text: the caller falls back to the VM, which runs anything.
 *
 * After the walk, three decisions that only need the whole list:
 *   - graph outputs become OUTPUT slots (fresh memory per run, returned);
 *   - inputs of in-place primitives (optimizer updates) are marked mutated;
 *   - view primitives become views when neither side is mutated nor an
 *     output, and (reshape) when the source is known to be contiguous, so
 *     a view never shows a value the VM's copying primitive would not.
 * Then plan.c places the arena slots.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/abstract.h"
#include "compiler/lower.h"
#include "core/internal.h"

enum lower_builtin {
#define SP_BUILTIN(ID, name, n) LB_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
    LB_COUNT
};

static const char *const lower_builtin_names[] = {
#define SP_BUILTIN(ID, name, n) #name,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

enum { LV_NONE, LV_SLOT, LV_CONST, LV_TUPLE, LV_KW };

typedef struct lv {
    int kind;
    int slot;             /* LV_SLOT */
    const sp_value *value; /* LV_CONST: borrowed from the module or l->keep */
    int n, *items;        /* LV_TUPLE: indices into the pool */
    const char *kw;       /* LV_KW: name (.value its STR value); items[0] = the value's lv */
} lv;

typedef struct lower_ctx {
    sp_lowered *l;
    const sp_graph *g;
    lv *pool;
    int n_pool, cap_pool;
    int *node_lv;   /* by node id: 1 + pool index, 0 when not lowered yet */
    int n_ids;
    int cap_slots, cap_kernels, cap_outs, cap_keep;
    int *contig;    /* per slot (parallel to l->slots, same capacity) */
    char *why;
    size_t why_n;
    int failed;
} lower_ctx;

/* Where a node is, for reasons: "file:line:col", or "%id" without a
 * location.  By value, so it can sit in an argument list. */
typedef struct lower_where {
    char s[160];
} lower_where;

static lower_where lower_at(const sp_node *n) {
    lower_where w;
    if (n->loc.line > 0) snprintf(w.s, sizeof w.s, "%s:%d:%d", n->loc.file ? n->loc.file : "?", n->loc.line, n->loc.col);
    else snprintf(w.s, sizeof w.s, "%%%d", n->id);
    return w;
}

/* Records the first reason and marks the walk failed.  Returns -1. */
static int lower_fail(lower_ctx *c, const char *fmt, ...) {
    if (!c->failed && c->why && c->why_n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->why, c->why_n, fmt, ap);
        va_end(ap);
    }
    c->failed = 1;
    return -1;
}

static int lower_grow(void **p, int *cap, int n, size_t item) {
    if (n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 16;
    void *q = realloc(*p, (size_t)nc * item);
    if (!q) return -1;
    memset((char *)q + (size_t)*cap * item, 0, (size_t)(nc - *cap) * item);
    *p = q;
    *cap = nc;
    return 0;
}

static int lower_lv_new(lower_ctx *c, lv v) {
    if (lower_grow((void **)&c->pool, &c->cap_pool, c->n_pool, sizeof *c->pool))
        return lower_fail(c, "out of memory");
    c->pool[c->n_pool] = v;
    return c->n_pool++;
}

static int lower_keep(lower_ctx *c, sp_value *v) {
    sp_lowered *l = c->l;
    if (lower_grow((void **)&l->keep, &c->cap_keep, l->n_keep, sizeof *l->keep))
        return lower_fail(c, "out of memory");
    sp_value_retain(v);
    l->keep[l->n_keep++] = v;
    return 0;
}

static int lower_slot_new(lower_ctx *c, sp_lslot_kind kind, const sp_meta *m, const sp_node *n) {
    sp_lowered *l = c->l;
    int cap = c->cap_slots;
    if (lower_grow((void **)&l->slots, &c->cap_slots, l->n_slots, sizeof *l->slots) ||
        lower_grow((void **)&c->contig, &cap, l->n_slots, sizeof *c->contig))
        return lower_fail(c, "out of memory");
    sp_lslot *s = &l->slots[l->n_slots];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->meta = *m;
    s->base = s->inplace_of = s->def = s->last_use = -1;
    int64_t nb = (int64_t)sp_dtype_size(m->dtype);
    for (int k = 0; k < m->ndim; k++) nb *= m->shape[k]; /* inference checked the size */
    s->nbytes = nb;
    s->name = n ? n->name : NULL;
    s->node_id = n ? n->id : -1;
    c->contig[l->n_slots] = 1;
    return l->n_slots++;
}

/* A CONST slot holding t (takes over the caller's reference). */
static int lower_const_slot(lower_ctx *c, sp_tensor *t, const sp_node *n) {
    sp_meta m = sp_meta_of(t);
    int s = lower_slot_new(c, SP_LSLOT_CONST, &m, n);
    if (s < 0) {
        sp_tensor_release(t);
        return -1;
    }
    c->l->slots[s].tensor = t;
    c->contig[s] = sp_tensor_is_contiguous(t);
    return s;
}

/* The slot of a constant tensor value, shared by every use of that value. */
static int lower_tensor_slot(lower_ctx *c, const sp_value *v, const sp_node *n) {
    sp_lowered *l = c->l;
    for (int i = 0; i < l->n_slots; i++)
        if (l->slots[i].kind == SP_LSLOT_CONST && l->slots[i].tensor == v->u.tensor) return i;
    sp_tensor_retain(v->u.tensor);
    return lower_const_slot(c, v->u.tensor, n);
}

/* A Python scalar as a 0-d tensor: dtype `weak` when >= 0 (the call's first
 * tensor), else float32/int64/bool by kind (the VM's rt_as_tensor). */
static int lower_scalar_slot(lower_ctx *c, const sp_value *v, int weak, const sp_node *n) {
    sp_dtype d = weak >= 0 ? (sp_dtype)weak
                 : v->kind == SP_V_FLOAT ? SP_F32 : v->kind == SP_V_INT ? SP_I64 : SP_BOOL;
    sp_tensor *t = sp_tensor_new(d, 0, NULL, SP_CPU);
    if (!t) return lower_fail(c, "out of memory");
    if (v->kind == SP_V_FLOAT) sp_store_f64(d, sp_tensor_data(t), v->u.f);
    else sp_store_i64(d, sp_tensor_data(t), v->kind == SP_V_INT ? v->u.i : v->u.b);
    return lower_const_slot(c, t, n);
}

/* The lowered value of an input node: constants on demand. */
static int lower_lv_of(lower_ctx *c, const sp_node *n) {
    if (n->kind == SP_NODE_CONST) {
        lv v = {.kind = LV_CONST, .value = n->value};
        return lower_lv_new(c, v);
    }
    if (n->id < 0 || n->id >= c->n_ids || !c->node_lv[n->id])
        return lower_fail(c, "%s: a value from outside the graph", lower_at(n).s);
    return c->node_lv[n->id] - 1;
}

/* Sets attribute `name` of a from a constant, as the VM's set_attr does. */
static int lower_set_attr(lower_ctx *c, sp_attrs *a, const char *op, const char *name,
                          const sp_value *v) {
    sp_status st = SP_OK;
    int64_t ints[SP_MAX_ATTR_INTS];
    switch (v->kind) {
    case SP_V_NONE: return 0;
    case SP_V_BOOL: st = sp_attrs_set_int(a, name, v->u.b); break;
    case SP_V_INT: st = sp_attrs_set_int(a, name, v->u.i); break;
    case SP_V_FLOAT: st = sp_attrs_set_float(a, name, v->u.f); break;
    case SP_V_STR: st = sp_attrs_set_str(a, name, v->u.str.s); break;
    case SP_V_DTYPE: st = sp_attrs_set_dtype(a, name, v->u.dtype); break;
    case SP_V_TUPLE:
    case SP_V_LIST:
        if (v->u.seq.n > SP_MAX_ATTR_INTS)
            return lower_fail(c, "%s: attribute %s has more than %d ints", op, name, SP_MAX_ATTR_INTS);
        for (int i = 0; i < v->u.seq.n; i++) {
            const sp_value *x = v->u.seq.items[i];
            if (x->kind != SP_V_INT && x->kind != SP_V_BOOL)
                return lower_fail(c, "%s: attribute %s holds a %s", op, name, sp_value_kind_name(x));
            ints[i] = x->kind == SP_V_INT ? x->u.i : x->u.b;
        }
        st = sp_attrs_set_ints(a, name, v->u.seq.n, ints);
        break;
    default:
        return lower_fail(c, "%s: attribute %s is a %s", op, name, sp_value_kind_name(v));
    }
    if (st) {
        sp_clear_error();
        return lower_fail(c, "%s: too many attributes", op);
    }
    return 0;
}

static int lower_kernel_new(lower_ctx *c, int op, const sp_attrs *a, int n_in, const int *in,
                            int n_out, const int *out, const sp_node *n) {
    sp_lowered *l = c->l;
    if (lower_grow((void **)&l->kernels, &c->cap_kernels, l->n_kernels, sizeof *l->kernels))
        return lower_fail(c, "out of memory");
    sp_lkernel *k = &l->kernels[l->n_kernels];
    memset(k, 0, sizeof *k);
    k->op = op;
    k->attrs = *a;
    k->in = malloc(sizeof *k->in * (size_t)(n_in + n_out + 1));
    if (!k->in) return lower_fail(c, "out of memory");
    k->out = k->in + n_in;
    k->n_in = n_in;
    k->n_out = n_out;
    memcpy(k->in, in, sizeof *in * (size_t)n_in);
    memcpy(k->out, out, sizeof *out * (size_t)n_out);
    k->node_id = n->id;
    k->loc = n->loc;
    for (int i = 0; i < n_out; i++) l->slots[out[i]].def = l->n_kernels;
    return l->n_kernels++;
}

/* A primitive call: attributes, input slots, inference, the kernel. */
static int lower_prim(lower_ctx *c, const sp_node *n, int op) {
    const char *name = sp_op_name(op);
    sp_attrs attrs;
    sp_attrs_init(&attrs);
    int pos[SP_MAX_INPUTS], npos = 0;
    for (int i = 1; i < n->n_inputs; i++) {
        int x = lower_lv_of(c, n->inputs[i]);
        if (x < 0) return -1;
        lv *v = &c->pool[x];
        if (v->kind == LV_KW) {
            const lv *val = &c->pool[v->items[0]];
            if (lower_keep(c, (sp_value *)v->value) || lower_keep(c, (sp_value *)val->value)) return -1;
            if (lower_set_attr(c, &attrs, name, v->kw, val->value)) return -1;
            continue;
        }
        if (v->kind == LV_CONST && v->value->kind == SP_V_KEYWORD) {
            if (lower_keep(c, (sp_value *)v->value)) return -1;
            if (lower_set_attr(c, &attrs, name, v->value->u.kw.name, v->value->u.kw.value)) return -1;
            continue;
        }
        if (npos == SP_MAX_INPUTS) return lower_fail(c, "%s: too many inputs", name);
        pos[npos++] = x;
    }
    /* a variadic primitive takes one tuple of tensors (concat((a, b))) */
    int items[SP_MAX_INPUTS], nitems = 0;
    const sp_value *citems[SP_MAX_INPUTS] = {0};
    if (sp_op_num_inputs(op) < 0 && npos == 1 &&
        (c->pool[pos[0]].kind == LV_TUPLE ||
         (c->pool[pos[0]].kind == LV_CONST &&
          (c->pool[pos[0]].value->kind == SP_V_TUPLE || c->pool[pos[0]].value->kind == SP_V_LIST)))) {
        const lv *t = &c->pool[pos[0]];
        int cnt = t->kind == LV_TUPLE ? t->n : t->value->u.seq.n;
        if (cnt > SP_MAX_INPUTS) return lower_fail(c, "%s: too many inputs", name);
        for (int k = 0; k < cnt; k++) {
            items[nitems] = t->kind == LV_TUPLE ? t->items[k] : -1;
            citems[nitems++] = t->kind == LV_TUPLE ? NULL : t->value->u.seq.items[k];
        }
    } else {
        for (int k = 0; k < npos; k++) items[nitems++] = pos[k];
    }
    /* weak typing: the dtype of the first tensor among the inputs */
    int weak = -1;
    for (int k = 0; k < nitems && weak < 0; k++) {
        const sp_value *cv = citems[k] ? citems[k] : c->pool[items[k]].kind == LV_CONST ? c->pool[items[k]].value : NULL;
        if (cv && cv->kind == SP_V_TENSOR) weak = cv->u.tensor->dtype;
        else if (!cv && c->pool[items[k]].kind == LV_SLOT) weak = c->l->slots[c->pool[items[k]].slot].meta.dtype;
    }
    int in[SP_MAX_INPUTS];
    sp_meta inm[SP_MAX_INPUTS];
    for (int k = 0; k < nitems; k++) {
        const sp_value *cv = citems[k] ? citems[k] : c->pool[items[k]].kind == LV_CONST ? c->pool[items[k]].value : NULL;
        int s;
        if (cv && cv->kind == SP_V_TENSOR) s = lower_tensor_slot(c, cv, n);
        else if (cv && (cv->kind == SP_V_INT || cv->kind == SP_V_FLOAT || cv->kind == SP_V_BOOL))
            s = lower_scalar_slot(c, cv, weak, n);
        else if (!cv && c->pool[items[k]].kind == LV_SLOT) s = c->pool[items[k]].slot;
        else
            return lower_fail(c, "%s: input %d of prim.%s is %s, not a tensor", lower_at(n).s, k, name,
                              cv ? sp_value_kind_name(cv) : "a tuple");
        if (s < 0) return -1;
        in[k] = s;
        inm[k] = c->l->slots[s].meta;
    }
    int n_out = 0;
    sp_meta outm[SP_MAX_OUTPUTS];
    if (sp_op_infer(op, nitems, inm, &attrs, &n_out, outm) != SP_OK) {
        lower_fail(c, "%s: %s", lower_at(n).s, sp_last_error());
        sp_clear_error();
        return -1;
    }
    int out[SP_MAX_OUTPUTS];
    for (int k = 0; k < n_out; k++)
        if ((out[k] = lower_slot_new(c, SP_LSLOT_ARENA, &outm[k], n)) < 0) return -1;
    if (lower_kernel_new(c, op, &attrs, nitems, in, n_out, out, n) < 0) return -1;
    /* the node's value: a tensor, a tuple of them, or None */
    lv v = {.kind = LV_SLOT, .slot = out[0]};
    if (n_out == 0) {
        sp_value *none = sp_value_none();
        if (!none || lower_keep(c, none)) {
            sp_value_release(none);
            return lower_fail(c, "out of memory");
        }
        sp_value_release(none);
        v = (lv){.kind = LV_CONST, .value = c->l->keep[c->l->n_keep - 1]};
    } else if (n_out > 1) {
        int *its = malloc(sizeof *its * (size_t)n_out);
        if (!its) return lower_fail(c, "out of memory");
        v = (lv){.kind = LV_TUPLE, .n = n_out, .items = its};
        int x = lower_lv_new(c, v);
        if (x < 0) {
            free(its);
            return -1;
        }
        for (int k = 0; k < n_out; k++) {
            int y = lower_lv_new(c, (lv){.kind = LV_SLOT, .slot = out[k]});
            if (y < 0) return -1;
            c->pool[x].items[k] = y;
        }
        return x;
    }
    return lower_lv_new(c, v);
}

/* builtin.make_tuple / make_list / tuple_getitem / make_keyword. */
static int lower_builtin(lower_ctx *c, const sp_node *n, int id) {
    int na = n->n_inputs - 1;
    if (id == LB_MAKE_TUPLE || id == LB_MAKE_LIST) {
        int *its = malloc(sizeof *its * (size_t)(na + 1));
        if (!its) return lower_fail(c, "out of memory");
        int x = lower_lv_new(c, (lv){.kind = LV_TUPLE, .n = na, .items = its});
        if (x < 0) {
            free(its);
            return -1;
        }
        for (int i = 0; i < na; i++) {
            int y = lower_lv_of(c, n->inputs[i + 1]);
            if (y < 0) return -1;
            c->pool[x].items[i] = y;
        }
        return x;
    }
    if (id == LB_TUPLE_GETITEM && na == 2) {
        int t = lower_lv_of(c, n->inputs[1]), ix = lower_lv_of(c, n->inputs[2]);
        if (t < 0 || ix < 0) return -1;
        const sp_value *iv = c->pool[ix].kind == LV_CONST ? c->pool[ix].value : NULL;
        if (!iv || iv->kind != SP_V_INT) return lower_fail(c, "%s: tuple_getitem with an index not known", lower_at(n).s);
        const lv *tv = &c->pool[t];
        int64_t len = tv->kind == LV_TUPLE ? tv->n
                      : tv->kind == LV_CONST && (tv->value->kind == SP_V_TUPLE || tv->value->kind == SP_V_LIST)
                          ? tv->value->u.seq.n : -1;
        if (len < 0) return lower_fail(c, "%s: tuple_getitem of a value that is not a tuple", lower_at(n).s);
        int64_t i = iv->u.i < 0 ? iv->u.i + len : iv->u.i;
        if (i < 0 || i >= len) return lower_fail(c, "%s: tuple index out of range", lower_at(n).s);
        if (tv->kind == LV_TUPLE) return tv->items[i];
        return lower_lv_new(c, (lv){.kind = LV_CONST, .value = tv->value->u.seq.items[i]});
    }
    if (id == LB_MAKE_KEYWORD && na == 2) {
        int k = lower_lv_of(c, n->inputs[1]), v = lower_lv_of(c, n->inputs[2]);
        if (k < 0 || v < 0) return -1;
        if (c->pool[k].kind != LV_CONST || c->pool[k].value->kind != SP_V_STR || c->pool[v].kind != LV_CONST)
            return lower_fail(c, "%s: make_keyword of values not known", lower_at(n).s);
        int *its = malloc(sizeof *its);
        if (!its) return lower_fail(c, "out of memory");
        its[0] = v;
        int x = lower_lv_new(c, (lv){.kind = LV_KW, .kw = c->pool[k].value->u.str.s, .value = c->pool[k].value,
                                    .n = 1, .items = its});
        if (x < 0) free(its);
        return x;
    }
    return lower_fail(c, "%s: builtin.%s is not lowerable", lower_at(n).s, id >= 0 && id < LB_COUNT ? lower_builtin_names[id] : "?");
}

static int lower_node(lower_ctx *c, const sp_node *n) {
    if (n->kind != SP_NODE_APPLY) return 0; /* constants: on demand */
    const sp_node *f = n->n_inputs > 0 ? n->inputs[0] : NULL;
    if (!f || f->kind != SP_NODE_CONST)
        return lower_fail(c, "%s: a call of a value not known", lower_at(n).s);
    int x;
    if (f->value->kind == SP_V_PRIM) x = lower_prim(c, n, f->value->u.prim);
    else if (f->value->kind == SP_V_BUILTIN) x = lower_builtin(c, n, f->value->u.builtin);
    else return lower_fail(c, "%s: a call of a %s is not lowerable", lower_at(n).s, sp_value_kind_name(f->value));
    if (x < 0) return -1;
    c->node_lv[n->id] = x + 1;
    return 0;
}

/* The output tree from the output's lowered value. */
static int lower_out(lower_ctx *c, int x) {
    sp_lowered *l = c->l;
    if (lower_grow((void **)&l->outs, &c->cap_outs, l->n_outs, sizeof *l->outs))
        return lower_fail(c, "out of memory");
    int me = l->n_outs++;
    sp_lout o = {0};
    const lv *v = &c->pool[x];
    if (v->kind == LV_SLOT) {
        o.kind = 0;
        o.slot = v->slot;
        int *r = realloc(l->results, sizeof *r * (size_t)(l->n_results + 1));
        if (!r) return lower_fail(c, "out of memory");
        l->results = r;
        r[l->n_results++] = v->slot;
    } else if (v->kind == LV_CONST) {
        o.kind = 1;
        o.value = (sp_value *)v->value;
        sp_value_retain(o.value);
    } else if (v->kind == LV_TUPLE) {
        o.kind = 2;
        o.child = malloc(sizeof *o.child * (size_t)(v->n + 1));
        if (!o.child) return lower_fail(c, "out of memory");
        o.n = v->n;
        l->outs[me] = o;
        for (int i = 0; i < o.n; i++) {
            int ch = lower_out(c, c->pool[x].items[i]);
            if (ch < 0) return -1;
            l->outs[me].child[i] = ch;
        }
        return me;
    } else {
        return lower_fail(c, "the output is a keyword argument");
    }
    l->outs[me] = o;
    return me;
}

static int lower_is_view_op(int op) {
    return op == SP_OP_RESHAPE || op == SP_OP_TRANSPOSE || op == SP_OP_SLICE || op == SP_OP_BROADCAST_TO;
}

/* Whether the view kernel k keeps a contiguous source contiguous. */
static int lower_view_keeps_contig(const sp_lowered *l, const sp_lkernel *k) {
    const sp_meta *a = &l->slots[k->in[0]].meta, *b = &l->slots[k->out[0]].meta;
    if (k->op == SP_OP_RESHAPE) return 1;
    if (k->op == SP_OP_TRANSPOSE) {
        int n;
        const int64_t *p = sp_attrs_get_ints(&k->attrs, "perm", &n);
        if (!p) return a->ndim <= 1;
        for (int i = 0; i < n; i++)
            if (p[i] != i && p[i] != i - n) return 0;
        return 1;
    }
    /* slice and broadcast_to: contiguous only when nothing changed */
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return k->op == SP_OP_BROADCAST_TO;
}

/* Outputs, mutation marks and views (see the essay). */
static void lower_decide(lower_ctx *c, const sp_lower_options *opt) {
    sp_lowered *l = c->l;
    for (int i = 0; i < l->n_results; i++)
        if (l->slots[l->results[i]].kind == SP_LSLOT_ARENA) l->slots[l->results[i]].kind = SP_LSLOT_OUTPUT;
    for (int k = 0; k < l->n_kernels; k++)
        if (sp_op_defs[l->kernels[k].op].flags & SP_OPF_INPLACE)
            for (int i = 0; i < l->kernels[k].n_in; i++) l->slots[l->kernels[k].in[i]].mutated = 1;
    for (int k = 0; k < l->n_kernels; k++) {
        sp_lkernel *kk = &l->kernels[k];
        if (!lower_is_view_op(kk->op) || (opt && opt->no_views) || kk->n_in != 1 || kk->n_out != 1) continue;
        int src = kk->in[0], dst = kk->out[0];
        sp_lslot *d = &l->slots[dst];
        if (d->kind != SP_LSLOT_ARENA || d->mutated || l->slots[src].mutated) continue;
        if (kk->op == SP_OP_RESHAPE && !c->contig[src]) continue;
        kk->is_view = 1;
        d->kind = SP_LSLOT_VIEW;
        d->base = src;
        c->contig[dst] = c->contig[src] && lower_view_keeps_contig(l, kk);
    }
}

sp_lowered *sp_lower(const sp_graph *g, int n, const sp_meta *params, const sp_lower_options *opt,
                     char *why, size_t why_n) {
    if (why && why_n) why[0] = '\0';
    lower_ctx c;
    memset(&c, 0, sizeof c);
    c.why = why;
    c.why_n = why_n;
    if (!g || !g->module) {
        lower_fail(&c, "no graph");
        return NULL;
    }
    if (n != g->n_params || (n > 0 && !params)) {
        lower_fail(&c, "@%s takes %d parameters, the signature has %d", g->name, g->n_params, n);
        return NULL;
    }
    if (g->has_varargs) {
        lower_fail(&c, "@%s takes *args", g->name);
        return NULL;
    }
    if (g->n_fv > 0) {
        lower_fail(&c, "@%s uses %d free variables", g->name, g->n_fv);
        return NULL;
    }
    sp_status saved = sp_last_status();
    char saved_msg[512];
    snprintf(saved_msg, sizeof saved_msg, "%s", sp_last_error());
    sp_lowered *l = calloc(1, sizeof *l);
    int nn = 0;
    sp_node **nodes = NULL;
    if (!l) {
        lower_fail(&c, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&l->lock, NULL);
    l->module = g->module;
    l->name = g->name;
    l->out_root = -1;
    c.l = l;
    c.g = g;
    c.n_ids = g->module->next_id + 1;
    c.node_lv = calloc((size_t)c.n_ids, sizeof *c.node_lv);
    l->params = malloc(sizeof *l->params * (size_t)(n + 1));
    if (!c.node_lv || !l->params) {
        lower_fail(&c, "out of memory");
        goto done;
    }
    l->n_params = n;
    for (int i = 0; i < n; i++) {
        const sp_node *p = g->params[i];
        if (params[i].ndim == SP_LOWER_STATIC) {
            /* a static argument: the specializer folded its uses into
             * constants, so it gets no slot (a use left over is not
             * lowerable) and the executor ignores what is passed */
            l->params[i] = params[i];
            continue;
        }
        if (params[i].ndim < 0 || params[i].ndim > SP_MAX_DIMS || (int)params[i].dtype < 0 ||
            params[i].dtype >= SP_DTYPE_COUNT) {
            lower_fail(&c, "parameter %d has a bad meta", i);
            goto done;
        }
        l->params[i] = params[i];
        int s = lower_slot_new(&c, SP_LSLOT_PARAM, &params[i], p);
        if (s < 0) goto done;
        l->slots[s].index = i;
        if (p->id < 0 || p->id >= c.n_ids) {
            lower_fail(&c, "parameter %d has a bad node id", i);
            goto done;
        }
        int x = lower_lv_new(&c, (lv){.kind = LV_SLOT, .slot = s});
        if (x < 0) goto done;
        c.node_lv[p->id] = x + 1;
    }
    nodes = ir_graph_nodes(g, &nn);
    if (!nodes) {
        lower_fail(&c, "%s", sp_last_error());
        goto done;
    }
    for (int i = 0; i < nn && !c.failed; i++) {
        if (nodes[i]->id < 0 || nodes[i]->id >= c.n_ids) lower_fail(&c, "a node with a bad id");
        else lower_node(&c, nodes[i]);
    }
    if (c.failed) goto done;
    int x = g->output ? lower_lv_of(&c, g->output) : -1;
    if (x < 0 || (l->out_root = lower_out(&c, x)) < 0) {
        lower_fail(&c, "the graph has no output");
        goto done;
    }
    lower_decide(&c, opt);
    if (lower_plan(l, opt) != SP_OK) lower_fail(&c, "out of memory");
done:
    for (int i = 0; i < c.n_pool; i++)
        if (c.pool[i].kind == LV_TUPLE || c.pool[i].kind == LV_KW) free(c.pool[i].items);
    free(c.pool);
    free(c.node_lv);
    free(c.contig);
    free(nodes);
    /* a reason is not an error: leave the caller's error state as it was */
    if (saved) sp_error(saved, "%s", saved_msg);
    else sp_clear_error();
    if (c.failed) {
        sp_lowered_free(l);
        return NULL;
    }
    return l;
}

sp_lowered *sp_lower_specialized(const sp_graph *g, const sp_lower_options *opt, char *why,
                                 size_t why_n) {
    if (why && why_n) why[0] = '\0';
    if (!g) {
        if (why && why_n) snprintf(why, why_n, "no graph");
        return NULL;
    }
    sp_meta *metas = calloc((size_t)g->n_params + 1, sizeof *metas);
    if (!metas) {
        if (why && why_n) snprintf(why, why_n, "out of memory");
        return NULL;
    }
    for (int i = 0; i < g->n_params; i++) {
        const sp_abstract *a = g->params[i]->abs;
        if (a && a->kind == SP_ABS_CONST) {
            metas[i].ndim = SP_LOWER_STATIC;
            continue;
        }
        if (!a || !sp_abs_tensor_known(a)) {
            if (why && why_n)
                snprintf(why, why_n, "parameter %d of @%s is not a tensor of known shape", i, g->name);
            free(metas);
            return NULL;
        }
        metas[i].dtype = a->dtype;
        metas[i].ndim = a->ndim;
        memcpy(metas[i].shape, a->shape, sizeof a->shape);
    }
    sp_lowered *l = sp_lower(g, g->n_params, metas, opt, why, why_n);
    free(metas);
    return l;
}

void sp_lowered_free(sp_lowered *l) {
    if (!l) return;
    if (l->graph_free) l->graph_free(l->graph); /* before the constants it may hold */
    for (int i = 0; i < l->n_slots; i++) sp_tensor_release(l->slots[i].tensor);
    if (l->dev_consts) {
        for (int i = 0; i < l->n_slots; i++) sp_tensor_release(l->dev_consts[i]);
        free(l->dev_consts);
    }
    for (int i = 0; i < l->n_kernels; i++) free(l->kernels[i].in);
    for (int i = 0; i < l->n_outs; i++) {
        sp_value_release(l->outs[i].value);
        free(l->outs[i].child);
    }
    for (int i = 0; i < l->n_keep; i++) sp_value_release(l->keep[i]);
    sp_buffer_release(l->arena);
    pthread_mutex_destroy(&l->lock);
    free(l->keep);
    free(l->outs);
    free(l->results);
    free(l->kernels);
    free(l->slots);
    free(l->params);
    free(l);
}

sp_lower_stats sp_lowered_stats(const sp_lowered *l) {
    sp_lower_stats z;
    memset(&z, 0, sizeof z);
    return l ? l->stats : z;
}

int sp_lowered_find_slot(const sp_lowered *l, const char *name) {
    if (!l || !name) return -1;
    for (int i = 0; i < l->n_slots; i++)
        if (l->slots[i].name && !strcmp(l->slots[i].name, name)) return i;
    return -1;
}

/* ---- text ---------------------------------------------------------------- */

typedef struct lower_buf {
    char *s;
    size_t n, cap;
    int oom;
} lower_buf;

static void lower_printf(lower_buf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = 1;
            return;
        }
        if (b->s && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = (b->cap ? b->cap * 2 : 1024) + (size_t)w;
        char *q = realloc(b->s, nc);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->s = q;
        b->cap = nc;
    }
}

static void lower_print_meta(lower_buf *b, const sp_meta *m) {
    char sh[256];
    lower_printf(b, "%s%s", sp_dtype_name(m->dtype), sp_shape_str(m->ndim, m->shape, sh, sizeof sh));
}

static void lower_print_out(lower_buf *b, const sp_lowered *l, int o) {
    const sp_lout *x = &l->outs[o];
    if (x->kind == 0) {
        lower_printf(b, "s%d", x->slot);
    } else if (x->kind == 1) {
        char *s = sp_value_to_string(x->value);
        lower_printf(b, "%s", s ? s : "?");
        free(s);
    } else {
        lower_printf(b, "(");
        for (int i = 0; i < x->n; i++) {
            if (i) lower_printf(b, ", ");
            lower_print_out(b, l, x->child[i]);
        }
        lower_printf(b, x->n == 1 ? ",)" : ")");
    }
}

char *sp_lowered_print(const sp_lowered *l) {
    if (!l) {
        sp_error(SP_ERR_ARG, "lowered_print: NULL");
        return NULL;
    }
    lower_buf b = {0};
    const sp_lower_stats *st = &l->stats;
    lower_printf(&b, "lowered @%s: %d kernels (%d launches, %d views, %d in place)\n", l->name,
                 st->n_kernels, st->n_launches, st->n_views, st->n_inplace);
    lower_printf(&b, "  peak bytes: %lld with the plan (arena), %lld without (fresh per kernel), "
                 "%lld if nothing were freed; outputs %lld\n", (long long)st->arena_bytes,
                 (long long)st->noplan_bytes, (long long)st->naive_bytes, (long long)st->output_bytes);
    for (int s = 0; s < l->n_slots; s++) {
        const sp_lslot *x = &l->slots[s];
        if (x->kind != SP_LSLOT_PARAM && x->kind != SP_LSLOT_CONST) continue;
        if (x->kind == SP_LSLOT_PARAM) lower_printf(&b, "  s%d = param %d: ", s, x->index);
        else lower_printf(&b, "  s%d = const: ", s);
        lower_print_meta(&b, &x->meta);
        if (x->name) lower_printf(&b, " %s", x->name);
        lower_printf(&b, "\n");
    }
    for (int k = 0; k < l->n_kernels; k++) {
        const sp_lkernel *kk = &l->kernels[k];
        lower_printf(&b, "  k%d: ", k);
        for (int j = 0; j < kk->n_out; j++) lower_printf(&b, "%ss%d", j ? ", " : "", kk->out[j]);
        lower_printf(&b, "%s%s(", kk->n_out ? " = " : "", sp_op_name(kk->op));
        for (int i = 0; i < kk->n_in; i++) lower_printf(&b, "%ss%d", i ? ", " : "", kk->in[i]);
        lower_printf(&b, ")");
        for (int j = 0; j < kk->n_out; j++) {
            const sp_lslot *x = &l->slots[kk->out[j]];
            lower_printf(&b, "  s%d ", kk->out[j]);
            lower_print_meta(&b, &x->meta);
            if (x->name) lower_printf(&b, " %s", x->name);
            if (x->kind == SP_LSLOT_ARENA)
                lower_printf(&b, " @%lld+%lld", (long long)x->offset, (long long)x->nbytes);
            if (x->kind == SP_LSLOT_ARENA && x->inplace_of >= 0) lower_printf(&b, " in place of s%d", x->inplace_of);
            if (x->kind == SP_LSLOT_VIEW) lower_printf(&b, " view of s%d", x->base);
            if (x->kind == SP_LSLOT_OUTPUT) lower_printf(&b, " output %lld", (long long)x->nbytes);
            lower_printf(&b, " last k%d", x->last_use);
        }
        if (kk->loc.line > 0) lower_printf(&b, "  # %s:%d:%d", kk->loc.file ? kk->loc.file : "?", kk->loc.line, kk->loc.col);
        lower_printf(&b, "\n");
    }
    lower_printf(&b, "  return ");
    if (l->out_root >= 0) lower_print_out(&b, l, l->out_root);
    lower_printf(&b, "\n");
    if (b.oom) {
        free(b.s);
        sp_error(SP_ERR_NOMEM, "out of memory printing a lowered graph");
        return NULL;
    }
    return b.s;
}

int sp_lower_parse_sig(const char *s, sp_meta *out, int max) {
    int n = 0;
    if (!s) return sp_error(SP_ERR_ARG, "signature: NULL"), -1;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) return n;
        const char *q = p;
        while (*q && *q != '[') q++;
        if (!*q || q == p || q - p > 31)
            return sp_error(SP_ERR_ARG, "signature: expected dtype[dims] at '%.40s'", p), -1;
        char dt[32];
        memcpy(dt, p, (size_t)(q - p));
        dt[q - p] = '\0';
        if (n == max) return sp_error(SP_ERR_ARG, "signature: more than %d tensors", max), -1;
        sp_meta m;
        memset(&m, 0, sizeof m);
        if (sp_dtype_parse(dt, &m.dtype) != SP_OK) return -1;
        p = q + 1;
        while (*p == ' ') p++;
        while (*p != ']') {
            char *e;
            long long d = strtoll(p, &e, 10);
            if (e == p || d < 0 || m.ndim == SP_MAX_DIMS)
                return sp_error(SP_ERR_ARG, "signature: bad dims at '%.40s'", p), -1;
            m.shape[m.ndim++] = d;
            p = e;
            while (*p == ' ') p++;
            if (*p == ',') p++;
            else if (*p != ']') return sp_error(SP_ERR_ARG, "signature: expected , or ] at '%.40s'", p), -1;
            while (*p == ' ') p++;
        }
        p++;
        out[n++] = m;
    }
}
