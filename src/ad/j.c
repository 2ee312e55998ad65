/*
 * j.c -- J at run time, the primitive recorder, and the builtins of
 * builtins.def that autodiff adds.
 *
 * J(f) (see ad.h): graphs and closures become closures of K(graph);
 * partials go through _ad_j_partial (their bound arguments' gradients
 * move into the env under keys -1, -2, ...); every other callable becomes
 * partial(builtin.j_primal, f).  j_primal(f, args...) runs f and picks the
 * bprop:
 *   - the language's structural builtins (make_tuple, getitem, switch,
 *     partial, env plumbing, scalar arithmetic, ...) -> their rule in
 *     src/ad/bprop_builtins.py, bound to the arguments and the output;
 *   - anything that runs primitives (a primitive, a Tensor operator, an
 *     API function) runs with the recorder on: every primitive call made
 *     through rt_op (and the views that stand for one: reshape, transpose,
 *     cast) is noted.  One primitive whose inputs are the call's own
 *     tensors -> _ad_prim(bprop_<op>, inputs, attrs, positions, ...), a
 *     graph, so higher orders work.  Several primitives (an API function
 *     composed in C) -> bprop_tape, a first-order replay of the records
 *     through the same rules;
 *   - nothing recorded, or a builtin with no gradient -> _ad_zero.
 * Tensor identity (the sp_tensor pointer) ties a recorded input to the
 * call's argument; a Python scalar turned into a tensor is a constant.
 *
 * Every bprop returns (env, d_arg1, ..., d_argn), one entry per argument
 * of the call (keywords included), None for no gradient.  A primitive
 * with no rule is an error naming it when its bprop would be built.
 *
 * The same hook feeds the eager tape (src/runtime/tape.c): outside a
 * j_primal recording, ad_record_op hands each call to the tape's sink;
 * inside one, it tells the sink that work it cannot see is running.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "core/internal.h"
#include "runtime/rt.h"

/* ---- the recorder ------------------------------------------------------------- */

typedef struct recorder {
    sp_value **recs;
    int n, cap;
    int failed;
    /* float arguments turned into tensors: scal_v[i] became scal_t[i]
     * (retained, so the address cannot be reused while recording) */
    const sp_value **scal_v;
    sp_tensor **scal_t;
    int n_scal, cap_scal;
} recorder;

static _Thread_local recorder *tls_rec;
static _Thread_local ad_tape_fn tls_tape_fn; /* the eager tape's sink, or NULL */
static _Thread_local void *tls_tape_ctx;

void ad_tape_set(ad_tape_fn fn, void *ctx, ad_tape_fn *prev_fn, void **prev_ctx) {
    if (prev_fn) *prev_fn = tls_tape_fn;
    if (prev_ctx) *prev_ctx = tls_tape_ctx;
    tls_tape_fn = fn;
    tls_tape_ctx = fn ? ctx : NULL;
}

int ad_tape_recording(void) { return tls_tape_fn && !tls_rec; }

static sp_value *tensor_tuple(int n, sp_tensor *const *t) {
    sp_value *items[SP_MAX_INPUTS] = {0};
    int k;
    if (n > SP_MAX_INPUTS) n = SP_MAX_INPUTS;
    for (k = 0; k < n; k++) {
        sp_tensor_retain(t[k]);
        if (!(items[k] = sp_value_tensor(t[k]))) {
            sp_tensor_release(t[k]);
            break;
        }
        sp_tensor_release(t[k]);
    }
    sp_value *r = k == n ? sp_value_tuple(n, items) : NULL;
    for (int i = 0; i < k; i++) sp_value_release(items[i]);
    return r;
}

/* See ad.h: a primitive's attributes as the KEYWORD tuple rules take. */
sp_value *ad_attrs_keywords(const sp_attrs *a) {
    sp_value *items[SP_MAX_ATTRS] = {0};
    int n = a ? a->n : 0, k;
    for (k = 0; k < n; k++) {
        const sp_attr *at = &a->a[k];
        sp_value *v = NULL;
        switch (at->kind) {
        case SP_ATTR_INT: v = sp_value_int(at->i); break;
        case SP_ATTR_FLOAT: v = sp_value_float(at->f); break;
        case SP_ATTR_STR: v = sp_value_str(at->s, strlen(at->s)); break;
        case SP_ATTR_DTYPE: v = sp_value_dtype((sp_dtype)at->i); break;
        case SP_ATTR_INTS: {
            sp_value *iv[SP_MAX_ATTR_INTS] = {0};
            int j;
            for (j = 0; j < at->n; j++)
                if (!(iv[j] = sp_value_int(at->ints[j]))) break;
            if (j == at->n) v = sp_value_tuple(at->n, iv);
            for (int q = 0; q < j; q++) sp_value_release(iv[q]);
            break;
        }
        }
        items[k] = v ? sp_value_keyword(at->name, v) : NULL;
        sp_value_release(v);
        if (!items[k]) break;
    }
    sp_value *r = k == n ? sp_value_tuple(n, items) : NULL;
    for (int i = 0; i < k; i++) sp_value_release(items[i]);
    return r;
}

void ad_record_op(int op, int n_in, sp_tensor *const *in, const sp_attrs *attrs, int n_out,
                  sp_tensor *const *out) {
    recorder *r = tls_rec;
    if (!r) {
        if (tls_tape_fn) tls_tape_fn(tls_tape_ctx, op, n_in, in, attrs, n_out, out);
        return;
    }
    if (tls_tape_fn) tls_tape_fn(tls_tape_ctx, -1, 0, NULL, NULL, 0, NULL); /* work the tape cannot see */
    if (r->failed) return;
    if (n_in == 1 && n_out == 1 && in[0] == out[0]) return; /* a no-op (cast to the same dtype) */
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 8;
        sp_value **a = realloc(r->recs, sizeof *a * (size_t)cap);
        if (!a) {
            r->failed = 1;
            return;
        }
        r->recs = a;
        r->cap = cap;
    }
    sp_value *items[4] = {sp_value_prim(op), tensor_tuple(n_in, in), ad_attrs_keywords(attrs),
                          tensor_tuple(n_out, out)};
    sp_value *rec = items[0] && items[1] && items[2] && items[3] ? sp_value_tuple(4, items) : NULL;
    for (int i = 0; i < 4; i++) sp_value_release(items[i]);
    if (!rec) r->failed = 1;
    else r->recs[r->n++] = rec;
}

void ad_note_scalar(const sp_value *v, const sp_tensor *t) {
    recorder *r = tls_rec;
    if (!r || r->failed) return;
    if (r->n_scal == r->cap_scal) {
        int cap = r->cap_scal ? r->cap_scal * 2 : 4;
        const sp_value **nv = realloc(r->scal_v, sizeof *nv * (size_t)cap);
        if (nv) r->scal_v = nv;
        sp_tensor **nt = nv ? realloc(r->scal_t, sizeof *nt * (size_t)cap) : NULL;
        if (!nt) {
            r->failed = 1;
            return;
        }
        r->scal_t = nt;
        r->cap_scal = cap;
    }
    sp_tensor_retain((sp_tensor *)t);
    r->scal_v[r->n_scal] = v;
    r->scal_t[r->n_scal++] = (sp_tensor *)t;
}

static void rec_free(recorder *r) {
    for (int i = 0; i < r->n; i++) sp_value_release(r->recs[i]);
    free(r->recs);
    for (int i = 0; i < r->n_scal; i++) sp_tensor_release(r->scal_t[i]);
    free(r->scal_v);
    free(r->scal_t);
}

/* ---- small helpers ------------------------------------------------------------- */

static sp_value *none(void) { return sp_value_none(); }

static int is_none(const sp_value *v) { return !v || v->kind == SP_V_NONE; }

static sp_value *rule_partial(const char *rule, int n, sp_value *const *bound) {
    sp_value *g = ad_rule_required(rule);
    return g ? sp_value_partial(g, n, bound) : NULL;
}

/* (out, partial(rule, bound..., out)) */
static sp_value *pair_with_rule(sp_value *out, const char *rule, int n, sp_value *const *bound) {
    sp_value *b[8];
    if (n > 6) return NULL;
    memcpy(b, bound, sizeof *b * (size_t)n);
    b[n] = out;
    sp_value *bp = rule_partial(rule, n + 1, b);
    if (!bp) return NULL;
    sp_value *items[2] = {out, bp};
    sp_value *r = sp_value_tuple(2, items);
    sp_value_release(bp);
    return r;
}

static sp_value *pair_with_rule_args(sp_value *out, const char *rule, int n, sp_value *const *a) {
    sp_value *t = sp_value_tuple(n, a);
    if (!t) return NULL;
    sp_value *r = pair_with_rule(out, rule, 1, &t);
    sp_value_release(t);
    return r;
}

/* ---- J --------------------------------------------------------------------------- */

/* The user's backward rule for g: the top-level function <name>_bprop of
 * g's module, when g is a top-level function of a user module; else NULL. */
static sp_value *custom_bprop_of(const sp_graph *g) {
    const sp_module *m = g->module;
    if (g->parent || !g->name || !m || (m->file && !strcmp(m->file, "<bprop>"))) return NULL;
    size_t len = strlen(g->name);
    for (int i = 0; i < m->n_globals; i++) {
        const char *nm = m->global_names[i];
        if (nm && strlen(nm) == len + 6 && !strncmp(nm, g->name, len) && !strcmp(nm + len, "_bprop") &&
            m->global_values[i] && m->global_values[i]->kind == SP_V_GRAPH)
            return m->global_values[i];
    }
    return NULL;
}

sp_value *ad_j(const sp_value *f) {
    switch (f->kind) {
    case SP_V_GRAPH:
    case SP_V_CLOSURE: {
        sp_graph *g = f->kind == SP_V_GRAPH ? f->u.graph : f->u.closure.graph;
        sp_value *custom = custom_bprop_of(g);
        if (custom) {
            /* partial(_ad_custom, f, f_bprop): runs f, and its bprop calls f_bprop */
            sp_value *b[3] = {sp_value_str(g->name, strlen(g->name)), (sp_value *)f, custom};
            sp_value *r = b[0] ? rule_partial("_ad_custom", 3, b) : NULL;
            sp_value_release(b[0]);
            return r;
        }
        sp_graph *kg = ad_k(g);
        if (!kg) return NULL;
        if (f->kind == SP_V_GRAPH) return sp_value_graph(kg);
        return sp_value_closure(kg, f->u.closure.n, f->u.closure.fv);
    }
    case SP_V_PARTIAL: {
        sp_value *jf = ad_j(f->u.partial.fn);
        sp_value *bound = jf ? sp_value_tuple(f->u.partial.n, f->u.partial.args) : NULL;
        sp_value *b[2] = {jf, bound};
        sp_value *r = bound ? rule_partial("_ad_j_partial", 2, b) : NULL;
        sp_value_release(jf);
        sp_value_release(bound);
        return r;
    }
    case SP_V_BUILTIN:
        if (f->u.builtin == RT_B_CALL_STAR) {
            sp_value *g = ad_rule_required("_ad_j_call_star");
            if (g) sp_value_retain(g);
            return g;
        }
        if (f->u.builtin == RT_B_J_PRIMAL) {
            sp_value *g = ad_rule_required("_ad_jj_primal");
            if (g) sp_value_retain(g);
            return g;
        }
        if (f->u.builtin == RT_B_GRAD_CALL) {
            sp_value *g = ad_rule_required("_ad_grad_call");
            return g ? ad_j(g) : NULL;
        }
        /* fall through */
    case SP_V_PRIM: {
        sp_value *jp = sp_value_builtin(RT_B_J_PRIMAL);
        sp_value *r = jp ? sp_value_partial(jp, 1, (sp_value *const *)&f) : NULL;
        sp_value_release(jp);
        return r;
    }
    default:
        sp_error(SP_ERR_TYPE, "'%s' object is not callable (differentiating a call of it)", sp_value_kind_name(f));
        return NULL;
    }
}

/* ---- j_primal ------------------------------------------------------------------------ */

static int is_num(const sp_value *v) { return rt_is_scalar(v); }
static int is_float_scalar(const sp_value *v) { return v->kind == SP_V_FLOAT; }

/* The rule of a structural builtin, or NULL (tensors and the rest). */
static const char *builtin_rule(int id, int n, sp_value *const *a, const sp_value *out) {
    switch (id) {
    case RT_B_MAKE_TUPLE:
    case RT_B_MAKE_LIST: return "_ad_make_tuple";
    case RT_B_TUPLE_GETITEM:
    case RT_B_GETITEM:
        if ((a[0]->kind == SP_V_TUPLE || a[0]->kind == SP_V_LIST) && (a[1]->kind == SP_V_INT)) return "_ad_seq_getitem";
        return NULL;
    case RT_B_TUPLE:
    case RT_B_LIST:
        return n == 1 && (a[0]->kind == SP_V_TUPLE || a[0]->kind == SP_V_LIST) ? "_ad_seq_convert" : NULL;
    case RT_B_API:
        /* math.* on Python numbers runs no primitive: its rule is _ad_math */
        if (n >= 1 && a[0]->kind == SP_V_STR && !strncmp(a[0]->u.str.s, "math.", 5) &&
            (out->kind == SP_V_FLOAT || out->kind == SP_V_BOOL))
            return "_ad_math";
        return NULL;
    case RT_B_SWITCH: return "_ad_switch";
    case RT_B_J: return "_ad_J";
    case RT_B_MAKE_KEYWORD: return "_ad_make_keyword";
    case RT_B_PARTIAL: return "_ad_partial";
    case RT_B_MAKE_CLOSURE: return "_ad_make_closure";
    case RT_B_ENV_GETITEM: return "_ad_env_getitem";
    case RT_B_ENV_SETITEM: return "_ad_env_setitem";
    case RT_B_ADD_GRAD: return "_ad_add_grad";
    case RT_B_FILL_ZEROS: return "_ad_fill_zeros";
    case RT_B_SCATTER_TUPLE: return "_ad_scatter_tuple";
    case RT_B_GATHER_TUPLE: return "_ad_gather_tuple";
    case RT_B_TUPLE_HEAD: return "_ad_tuple_head";
    case RT_B_TUPLE_TAIL: return "_ad_tuple_tail";
    case RT_B_GETITEM_GRAD: return "_ad_getitem_grad";
    case RT_B_ADD:
        if (a[0]->kind == SP_V_TUPLE && a[1]->kind == SP_V_TUPLE) return "_ad_tuple_add";
        /* fall through */
    case RT_B_SUB:
    case RT_B_MUL:
    case RT_B_TRUEDIV:
    case RT_B_POW:
        if (n == 2 && is_num(a[0]) && is_num(a[1]) && (is_float_scalar(a[0]) || is_float_scalar(a[1])) &&
            out->kind == SP_V_FLOAT) {
            switch (id) {
            case RT_B_ADD: return "_ad_s_add";
            case RT_B_SUB: return "_ad_s_sub";
            case RT_B_MUL: return "_ad_s_mul";
            case RT_B_TRUEDIV: return "_ad_s_truediv";
            default: return "_ad_s_pow";
            }
        }
        return NULL;
    case RT_B_NEG:
    case RT_B_POS:
        if (is_float_scalar(a[0])) return id == RT_B_NEG ? "_ad_s_neg" : "_ad_s_pos";
        return NULL;
    default: return NULL;
    }
}

/* Rules that take the arguments as one tuple (variadic builtins). */
static int rule_takes_tuple(const char *rule) {
    return !strcmp(rule, "_ad_make_tuple") || !strcmp(rule, "_ad_partial") || !strcmp(rule, "_ad_make_closure") ||
           !strcmp(rule, "_ad_zero") || !strcmp(rule, "_ad_math");
}

/* Builtins whose tensor work is recorded (operators with a tensor
 * operand, tensor indexing, attributes like x.T). */
static int builtin_may_record(int id) {
    switch (id) {
    case RT_B_ADD: case RT_B_SUB: case RT_B_MUL: case RT_B_TRUEDIV: case RT_B_FLOORDIV: case RT_B_MOD:
    case RT_B_POW: case RT_B_MATMUL: case RT_B_NEG: case RT_B_POS: case RT_B_ABS: case RT_B_GETITEM:
    case RT_B_TUPLE_GETITEM: case RT_B_GETATTR: case RT_B_API: case RT_B_MIN: case RT_B_MAX:
        return 1;
    default: return 0;
    }
}

static sp_value *call_f(const sp_value *f, int n, sp_value *const *a) {
    if (f->kind == SP_V_PRIM) return rt_prim_call(f->u.prim, n, a);
    if (f->kind == SP_V_BUILTIN) return rt_builtin_call(f->u.builtin, n, a);
    return rt_call((sp_value *)f, n, a);
}

/* The argument position of tensor t, a primitive's input, among a (a
 * KEYWORD's value counts), or -1: the first matching position not taken
 * by an earlier input (used[]), else the first match.  x * x and
 * x * stop_gradient(x) pass one tensor twice, and each argument must get
 * its own input's gradient. */
static int arg_pos(int n, sp_value *const *a, const sp_tensor *t, unsigned char *used, const recorder *rec) {
    int first = -1;
    const sp_value *scal = NULL; /* the float argument t was made from, if any */
    for (int i = 0; i < rec->n_scal && !scal; i++)
        if (rec->scal_t[i] == t) scal = rec->scal_v[i];
    for (int j = 0; j < n; j++) {
        const sp_value *v = a[j]->kind == SP_V_KEYWORD ? a[j]->u.kw.value : a[j];
        if (!(scal && v == scal) && (v->kind != SP_V_TENSOR || v->u.tensor != t)) continue;
        if (first < 0) first = j;
        if (j < 256 && !used[j]) {
            used[j] = 1;
            return j;
        }
    }
    return first;
}

/* Whether the values of out are exactly the tensors outs (in order). */
static int out_matches(const sp_value *out, const sp_value *outs) {
    if (out->kind == SP_V_TENSOR) return outs->u.seq.n == 1 && outs->u.seq.items[0]->u.tensor == out->u.tensor;
    if (out->kind != SP_V_TUPLE || out->u.seq.n != outs->u.seq.n) return 0;
    for (int i = 0; i < out->u.seq.n; i++)
        if (out->u.seq.items[i]->kind != SP_V_TENSOR || out->u.seq.items[i]->u.tensor != outs->u.seq.items[i]->u.tensor)
            return 0;
    return 1;
}

static sp_value *no_rule_error(int op) {
    sp_error(SP_ERR_UNSUPPORTED, "cannot differentiate primitive '%s': it has no gradient rule (bprop_%s)",
             sp_op_name(op), sp_op_name(op));
    return NULL;
}

/* The bprop of a call that ran primitives (records non-empty). */
static sp_value *recorded_bprop(const sp_value *f, int n, sp_value *const *a, sp_value *out, recorder *rec) {
    if (rec->n == 1) {
        const sp_value *r = rec->recs[0];
        const sp_value *ins = r->u.seq.items[1], *kws = r->u.seq.items[2], *outs = r->u.seq.items[3];
        int op = r->u.seq.items[0]->u.prim;
        if (out_matches(out, outs)) {
            char name[80];
            snprintf(name, sizeof name, "bprop_%s", sp_op_name(op));
            sp_value *rule = ad_rule(name);
            if (!rule) return sp_last_status() == SP_OK || sp_last_status() == SP_ERR_UNSUPPORTED ? no_rule_error(op) : NULL;
            sp_value *pos[SP_MAX_INPUTS];
            int k, m = ins->u.seq.n;
            unsigned char used[256] = {0};
            for (k = 0; k < m; k++)
                if (!(pos[k] = sp_value_int(arg_pos(n, a, ins->u.seq.items[k]->u.tensor, used, rec)))) break;
            sp_value *pt = k == m ? sp_value_tuple(m, pos) : NULL;
            for (int i = 0; i < k; i++) sp_value_release(pos[i]);
            sp_value *nv = sp_value_int(n);
            sp_value *b[6] = {rule, (sp_value *)ins, (sp_value *)kws, pt, nv, out};
            sp_value *bp = pt && nv ? rule_partial("_ad_prim", 6, b) : NULL;
            sp_value_release(pt);
            sp_value_release(nv);
            if (!bp) return NULL;
            sp_value *items[2] = {out, bp};
            sp_value *res = sp_value_tuple(2, items);
            sp_value_release(bp);
            return res;
        }
    }
    /* several primitives: replay them (first order) */
    for (int i = 0; i < rec->n; i++) {
        char name[80];
        int op = rec->recs[i]->u.seq.items[0]->u.prim;
        snprintf(name, sizeof name, "bprop_%s", sp_op_name(op));
        if (!ad_rule(name)) return sp_last_status() == SP_OK ? no_rule_error(op) : NULL;
    }
    sp_value *fa = sp_value_tuple(n, a), *recs = fa ? sp_value_tuple(rec->n, rec->recs) : NULL;
    sp_value *tb = recs ? sp_value_builtin(RT_B_BPROP_TAPE) : NULL;
    sp_value *b[4] = {(sp_value *)f, fa, out, recs};
    sp_value *bp = tb ? sp_value_partial(tb, 4, b) : NULL;
    sp_value_release(fa);
    sp_value_release(recs);
    sp_value_release(tb);
    if (!bp) return NULL;
    sp_value *items[2] = {out, bp};
    sp_value *res = sp_value_tuple(2, items);
    sp_value_release(bp);
    return res;
}

static int is_stop_gradient(const sp_value *f, int n, sp_value *const *a) {
    return f->kind == SP_V_BUILTIN && f->u.builtin == RT_B_API && n >= 1 && a[0]->kind == SP_V_STR &&
           !strcmp(a[0]->u.str.s, "ops.stop_gradient");
}

sp_value *ad_j_primal(int n, sp_value *const *args) {
    if (n < 1) {
        sp_error(SP_ERR_TYPE, "j_primal() needs a function");
        return NULL;
    }
    const sp_value *f = args[0];
    sp_value *const *a = args + 1;
    int na = n - 1;
    int bid = f->kind == SP_V_BUILTIN ? f->u.builtin : -1;
    int record = f->kind == SP_V_PRIM || (bid >= 0 && builtin_may_record(bid));
    recorder rec = {0}, *saved = tls_rec;
    if (record) tls_rec = &rec;
    sp_value *out = call_f(f, na, a);
    tls_rec = saved;
    if (!out) {
        rec_free(&rec);
        return NULL;
    }
    sp_value *r = NULL;
    const char *rule = bid >= 0 ? builtin_rule(bid, na, a, out) : NULL;
    if (rec.failed) {
        sp_error(SP_ERR_NOMEM, "autodiff: out of memory recording primitives");
    } else if (rule && !strcmp(rule, "_ad_seq_getitem")) {
        sp_value *bp = rule_partial(rule, 2, a);
        sp_value *items[2] = {out, bp};
        r = bp ? sp_value_tuple(2, items) : NULL;
        sp_value_release(bp);
    } else if (bid == RT_B_MAKE_KEYWORD) {
        /* out is a KEYWORD: bound into a partial it would bind by name, so
         * the rule takes the arguments only */
        sp_value *bp = na == 2 ? rule_partial("_ad_make_keyword", 2, a) : NULL;
        sp_value *items[2] = {out, bp};
        r = bp ? sp_value_tuple(2, items) : NULL;
        sp_value_release(bp);
    } else if (rule) {
        r = rule_takes_tuple(rule) ? pair_with_rule_args(out, rule, na, a) : pair_with_rule(out, rule, na, a);
    } else if (bid == RT_B_GETATTR && out->kind == SP_V_PARTIAL && out->u.partial.n > 0 &&
               out->u.partial.args[out->u.partial.n - 1] == a[0]) {
        /* a bound method x.sum: x is the partial's last bound argument */
        sp_value *nb = sp_value_int(out->u.partial.n);
        sp_value *b[3] = {a[0], a[1], nb};
        r = nb ? pair_with_rule(out, "_ad_method", 3, b) : NULL;
        sp_value_release(nb);
    } else if (bid == RT_B_GETITEM && a[0]->kind == SP_V_TENSOR && rec.n == 0) {
        r = pair_with_rule(out, "_ad_tensor_getitem", 2, a);
    } else if (rec.n > 0 && !is_stop_gradient(f, na, a)) {
        r = recorded_bprop(f, na, a, out, &rec);
    } else {
        r = pair_with_rule_args(out, "_ad_zero", na, a);
    }
    rec_free(&rec);
    sp_value_release(out);
    return r;
}

/* ---- bprop_tape: replay of recorded primitives (first order) ------------------------ */

typedef struct gmap {
    const sp_tensor **key;
    sp_value **val;
    int n, cap;
} gmap;

static sp_value **gmap_slot(gmap *m, const sp_tensor *t, int create) {
    for (int i = 0; i < m->n; i++)
        if (m->key[i] == t) return &m->val[i];
    if (!create) return NULL;
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        const sp_tensor **k = realloc(m->key, sizeof *k * (size_t)cap);
        if (k) m->key = k;
        sp_value **v = k ? realloc(m->val, sizeof *v * (size_t)cap) : NULL;
        if (!v) {
            sp_error(SP_ERR_NOMEM, "bprop: out of memory");
            return NULL;
        }
        m->val = v;
        m->cap = cap;
    }
    m->key[m->n] = t;
    m->val[m->n] = NULL;
    return &m->val[m->n++];
}

static int gmap_add(gmap *m, const sp_tensor *t, const sp_value *g) {
    if (is_none(g)) return 0;
    sp_value **s = gmap_slot(m, t, 1);
    if (!s) return -1;
    sp_value *sum = *s ? ad_add_grad(*s, g) : (sp_value_retain((sp_value *)g), (sp_value *)g);
    if (!sum) return -1;
    sp_value_release(*s);
    *s = sum;
    return 0;
}

static sp_value *gmap_get(gmap *m, const sp_tensor *t) {
    sp_value **s = gmap_slot(m, t, 0);
    if (s && *s) {
        sp_value_retain(*s);
        return *s;
    }
    return none();
}

static void gmap_free(gmap *m) {
    for (int i = 0; i < m->n; i++) sp_value_release(m->val[i]);
    free(m->key);
    free(m->val);
}

static sp_value *fill_zeros(const sp_value *d, const sp_value *o);

sp_value *ad_bprop_tape(int n, sp_value *const *args) {
    (void)n;
    const sp_value *fargs = args[1], *out = args[2], *recs = args[3], *dout = args[4];
    int na = fargs->u.seq.n;
    gmap m = {0};
    sp_value *result = NULL;
    sp_value **items = calloc((size_t)na + 1, sizeof *items);
    if (!items) {
        sp_error(SP_ERR_NOMEM, "bprop: out of memory");
        return NULL;
    }
    if (out->kind == SP_V_TENSOR) {
        if (gmap_add(&m, out->u.tensor, dout)) goto done;
    } else if (out->kind == SP_V_TUPLE && !is_none(dout) && dout->kind == SP_V_TUPLE) {
        for (int i = 0; i < out->u.seq.n && i < dout->u.seq.n; i++)
            if (out->u.seq.items[i]->kind == SP_V_TENSOR && gmap_add(&m, out->u.seq.items[i]->u.tensor, dout->u.seq.items[i]))
                goto done;
    }
    for (int r = recs->u.seq.n - 1; r >= 0; r--) {
        const sp_value *rec = recs->u.seq.items[r];
        int op = rec->u.seq.items[0]->u.prim;
        const sp_value *ins = rec->u.seq.items[1], *kws = rec->u.seq.items[2], *outs = rec->u.seq.items[3];
        int no = outs->u.seq.n, any = 0;
        sp_value *douts[SP_MAX_OUTPUTS] = {0};
        for (int i = 0; i < no; i++) {
            douts[i] = gmap_get(&m, outs->u.seq.items[i]->u.tensor);
            any |= !is_none(douts[i]);
        }
        sp_value *ov = NULL, *dv = NULL, *dz = NULL, *res = NULL;
        if (!any) goto next;
        if (no == 1) {
            ov = outs->u.seq.items[0];
            sp_value_retain(ov);
            dv = douts[0];
            sp_value_retain(dv);
        } else {
            ov = (sp_value *)outs;
            sp_value_retain(ov);
            dv = sp_value_tuple(no, douts);
        }
        dz = dv ? fill_zeros(dv, ov) : NULL;
        char name[80];
        snprintf(name, sizeof name, "bprop_%s", sp_op_name(op));
        sp_value *rule = dz ? ad_rule(name) : NULL;
        if (dz && !rule) {
            if (sp_last_status() == SP_OK) no_rule_error(op);
        } else if (rule) {
            int ni = ins->u.seq.n, nk = kws->u.seq.n, nc = ni + 2 + nk;
            sp_value **call = malloc(sizeof *call * (size_t)nc);
            if (call) {
                memcpy(call, ins->u.seq.items, sizeof *call * (size_t)ni);
                call[ni] = ov;
                call[ni + 1] = dz;
                memcpy(call + ni + 2, kws->u.seq.items, sizeof *call * (size_t)nk);
                res = rt_call(rule, nc, call);
                free(call);
            } else {
                sp_error(SP_ERR_NOMEM, "bprop: out of memory");
            }
        }
        if (res) {
            int ok = 0;
            if (res->kind == SP_V_TUPLE) {
                ok = 1;
                for (int i = 0; i < ins->u.seq.n && i < res->u.seq.n && ok; i++)
                    ok = !gmap_add(&m, ins->u.seq.items[i]->u.tensor, res->u.seq.items[i]);
            } else if (ins->u.seq.n == 1) {
                ok = !gmap_add(&m, ins->u.seq.items[0]->u.tensor, res);
            } else {
                sp_error(SP_ERR_INTERNAL, "%s returned a %s, not a tuple", name, sp_value_kind_name(res));
            }
            sp_value_release(res);
            if (!ok) res = NULL;
            else res = (sp_value *)1;
        }
        sp_value_release(ov);
        sp_value_release(dv);
        sp_value_release(dz);
        if (!res) {
            for (int i = 0; i < no; i++) sp_value_release(douts[i]);
            goto done;
        }
    next:
        for (int i = 0; i < no; i++) sp_value_release(douts[i]);
    }
    if (!(items[0] = ad_env_new())) goto done;
    for (int j = 0; j < na; j++) {
        const sp_value *v = fargs->u.seq.items[j];
        if (v->kind == SP_V_KEYWORD) v = v->u.kw.value;
        if (v->kind == SP_V_TENSOR) {
            items[j + 1] = gmap_get(&m, v->u.tensor);
        } else if ((v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) && v->u.seq.n <= SP_MAX_INPUTS) {
            sp_value *sub[SP_MAX_INPUTS];
            int k;
            for (k = 0; k < v->u.seq.n; k++) {
                const sp_value *e = v->u.seq.items[k];
                if (!(sub[k] = e->kind == SP_V_TENSOR ? gmap_get(&m, e->u.tensor) : none())) break;
            }
            items[j + 1] = k == v->u.seq.n ? sp_value_tuple(k, sub) : NULL;
            for (int q = 0; q < k; q++) sp_value_release(sub[q]);
        } else {
            items[j + 1] = none();
        }
        if (!items[j + 1]) goto done;
    }
    result = sp_value_tuple(na + 1, items);
done:
    for (int j = 0; j <= na; j++) sp_value_release(items[j]);
    free(items);
    gmap_free(&m);
    return result;
}

/* ---- the other builtins ------------------------------------------------------------- */

/* ZEROS or ONES shaped like t, as a primitive call (meta mode: the trace
 * must see it). */
static sp_value *fill_prim(int op, const sp_tensor *t) {
    sp_attrs a;
    sp_attrs_init(&a);
    sp_attrs_set_ints(&a, "shape", t->ndim, t->shape);
    sp_attrs_set_dtype(&a, "dtype", t->dtype);
    return rt_wrap(rt_op1(op, 0, NULL, &a));
}

static sp_value *zeros_like(const sp_value *o) {
    if (o->kind == SP_V_TENSOR) {
        const sp_tensor *t = o->u.tensor;
        if (rt_meta_mode(t)) return fill_prim(SP_OP_ZEROS, t);
        return rt_wrap(sp_tensor_zeros(t->dtype, t->ndim, t->shape, t->buf ? t->buf->device : SP_CPU));
    }
    if (o->kind == SP_V_FLOAT) return sp_value_float(0.0);
    if (o->kind == SP_V_TUPLE || o->kind == SP_V_LIST) return fill_zeros(NULL, o);
    return none();
}

static int all_none(const sp_value *d) {
    if (is_none(d)) return 1;
    if (d->kind != SP_V_TUPLE) return 0;
    for (int i = 0; i < d->u.seq.n; i++)
        if (!all_none(d->u.seq.items[i])) return 0;
    return 1;
}

static sp_value *fill_zeros(const sp_value *d, const sp_value *o) {
    if (o->kind != SP_V_TUPLE && o->kind != SP_V_LIST && all_none(d)) d = NULL;
    if (is_none(d)) {
        if (o->kind != SP_V_TUPLE && o->kind != SP_V_LIST) return zeros_like(o);
    } else if (!((d->kind == SP_V_TUPLE || d->kind == SP_V_LIST) && (o->kind == SP_V_TUPLE || o->kind == SP_V_LIST))) {
        sp_value_retain((sp_value *)d);
        return (sp_value *)d;
    }
    int n = o->u.seq.n;
    sp_value **items = calloc((size_t)(n ? n : 1), sizeof *items), *r = NULL;
    if (!items) {
        sp_error(SP_ERR_NOMEM, "fill_zeros: out of memory");
        return NULL;
    }
    int i;
    for (i = 0; i < n; i++) {
        const sp_value *di = !is_none(d) && i < d->u.seq.n ? d->u.seq.items[i] : NULL;
        if (!(items[i] = fill_zeros(di, o->u.seq.items[i]))) break;
    }
    if (i == n) r = sp_value_tuple(n, items);
    for (int k = 0; k < i; k++) sp_value_release(items[k]);
    free(items);
    return r;
}

static int seq_arg(const sp_value *v, const char *what) {
    if (v->kind == SP_V_TUPLE || v->kind == SP_V_LIST) return 0;
    sp_error(SP_ERR_TYPE, "%s: expected a tuple, got %s", what, sp_value_kind_name(v));
    return -1;
}

static sp_value *scatter_tuple(const sp_value *t, const sp_value *pos, int64_t n) {
    if (seq_arg(t, "scatter_tuple") || seq_arg(pos, "scatter_tuple")) return NULL;
    if (n < 0 || n > (1 << 20)) {
        sp_error(SP_ERR_ARG, "scatter_tuple: bad length %lld", (long long)n);
        return NULL;
    }
    sp_value **items = calloc((size_t)(n ? n : 1), sizeof *items), *r = NULL;
    if (!items) {
        sp_error(SP_ERR_NOMEM, "scatter_tuple: out of memory");
        return NULL;
    }
    int ok = 1;
    for (int k = 0; k < pos->u.seq.n && k < t->u.seq.n && ok; k++) {
        int64_t p = pos->u.seq.items[k]->kind == SP_V_INT ? pos->u.seq.items[k]->u.i : -1;
        if (p < 0 || p >= n || is_none(t->u.seq.items[k])) continue;
        sp_value *s = ad_add_grad(items[p], t->u.seq.items[k]);
        sp_value_release(items[p]);
        items[p] = s;
        ok = s != NULL;
    }
    for (int64_t i = 0; i < n && ok; i++)
        if (!items[i]) ok = (items[i] = none()) != NULL;
    if (ok) r = sp_value_tuple((int)n, items);
    for (int64_t i = 0; i < n; i++) sp_value_release(items[i]);
    free(items);
    return r;
}

static sp_value *gather_tuple(const sp_value *t, const sp_value *pos) {
    if (seq_arg(pos, "gather_tuple")) return NULL;
    int n = pos->u.seq.n;
    sp_value **items = calloc((size_t)(n ? n : 1), sizeof *items), *r = NULL;
    if (!items) {
        sp_error(SP_ERR_NOMEM, "gather_tuple: out of memory");
        return NULL;
    }
    int i;
    for (i = 0; i < n; i++) {
        int64_t p = pos->u.seq.items[i]->kind == SP_V_INT ? pos->u.seq.items[i]->u.i : -1;
        int have = !is_none(t) && (t->kind == SP_V_TUPLE || t->kind == SP_V_LIST) && p >= 0 && p < t->u.seq.n;
        items[i] = have ? (sp_value_retain(t->u.seq.items[p]), t->u.seq.items[p]) : none();
        if (!items[i]) break;
    }
    if (i == n) r = sp_value_tuple(n, items);
    for (int k = 0; k < i; k++) sp_value_release(items[k]);
    free(items);
    return r;
}

static sp_value *tuple_part(const sp_value *t, int64_t k, int head) {
    if (is_none(t)) return none();
    if (seq_arg(t, head ? "tuple_head" : "tuple_tail")) return NULL;
    int n = t->u.seq.n;
    if (k < 0) k = 0;
    if (k > n) k = n;
    return head ? sp_value_tuple((int)k, t->u.seq.items) : sp_value_tuple(n - (int)k, t->u.seq.items + k);
}

static sp_value *getitem_grad(const sp_value *x, const sp_value *index, const sp_value *d) {
    if (is_none(d)) return none();
    /* the scatter is the core's copy, a CPU routine: a gradient of a GPU
     * tensor is scattered on the host and moved back */
    sp_device dev = SP_CPU;
    sp_value *hx = NULL;
    if (x->kind == SP_V_TENSOR && x->u.tensor->buf->device.type != SP_DEVICE_CPU && !rt_meta_mode(x->u.tensor)) {
        dev = x->u.tensor->buf->device;
        if (!(hx = rt_wrap(rt_host(x->u.tensor)))) return NULL;
        x = hx;
    }
    sp_value *z = zeros_like(x);
    sp_value_release(hx);
    if (!z) return NULL;
    sp_value *view = rt_getitem(z, index);
    sp_tensor *src = view ? rt_as_tensor(d, view->kind == SP_V_TENSOR ? (int)view->u.tensor->dtype : -1, "getitem") : NULL;
    if (src && src->buf->device.type != SP_DEVICE_CPU && !rt_meta_mode(src)) {
        sp_tensor *h = rt_host(src);
        sp_tensor_release(src);
        src = h;
    }
    sp_status st = src && view->kind == SP_V_TENSOR ? sp_tensor_copy_into(view->u.tensor, src) : SP_ERR_INTERNAL;
    if (src && view->kind != SP_V_TENSOR) sp_error(SP_ERR_INTERNAL, "getitem_grad: indexing gave a %s", sp_value_kind_name(view));
    sp_tensor_release(src);
    sp_value_release(view);
    if (st == SP_OK && dev.type != SP_DEVICE_CPU) {
        sp_tensor *m = NULL;
        st = sp_tensor_to(z->u.tensor, dev, &m);
        sp_value_release(z);
        z = st == SP_OK ? rt_wrap(m) : NULL;
        if (!z) return NULL;
    }
    if (st != SP_OK) {
        sp_value_release(z);
        return NULL;
    }
    return z;
}

static sp_value *sens_of(const sp_value *out) {
    if (out->kind == SP_V_FLOAT || out->kind == SP_V_INT) return sp_value_float(1.0);
    if (out->kind == SP_V_TENSOR && sp_tensor_numel(out->u.tensor) == 1) {
        const sp_tensor *t = out->u.tensor;
        if (!sp_dtype_is_float(t->dtype)) {
            sp_error(SP_ERR_TYPE, "grad: the function returns an integer Tensor (%s); gradients need a "
                     "floating-point output", sp_dtype_name(t->dtype));
            return NULL;
        }
        if (rt_meta_mode(t)) return fill_prim(SP_OP_ONES, t);
        /* filled on the host (the core's fill is for the CPU), then moved
         * to t's device */
        sp_tensor *o = sp_tensor_new(t->dtype, t->ndim, t->shape, SP_CPU);
        if (o && sp_tensor_fill(o, 1.0) != SP_OK) {
            sp_tensor_release(o);
            o = NULL;
        }
        if (o && t->buf->device.type != SP_DEVICE_CPU) {
            sp_tensor *m = NULL;
            sp_status st = sp_tensor_to(o, t->buf->device, &m);
            sp_tensor_release(o);
            o = st == SP_OK ? m : NULL;
        }
        return rt_wrap(o);
    }
    if (out->kind == SP_V_TENSOR) {
        char shape[128];
        int p = 0;
        const sp_tensor *t = out->u.tensor;
        p += snprintf(shape + p, sizeof shape - (size_t)p, "(");
        for (int i = 0; i < t->ndim && p < 100; i++)
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        snprintf(shape + p, sizeof shape - (size_t)p, "%s)", t->ndim == 1 ? "," : "");
        sp_error(SP_ERR_TYPE, "grad: the function returns a Tensor of shape %s, not a scalar: reduce it "
                 "(e.g. .sum()) or pass the output's gradient (GradOperation(sens_param=True))", shape);
        return NULL;
    }
    sp_error(SP_ERR_TYPE, "grad: the function returns a %s; it must return a scalar Tensor or float "
             "(with has_aux=True, a tuple whose first item is one)", sp_value_kind_name(out));
    return NULL;
}

static int key_arg(const sp_value *v, int64_t *k) {
    if (v->kind != SP_V_INT) {
        sp_error(SP_ERR_TYPE, "env: the key must be an int, not %s", sp_value_kind_name(v));
        return -1;
    }
    *k = v->u.i;
    return 0;
}

sp_value *ad_builtin_call(int id, int n, sp_value *const *a, int *handled) {
    *handled = 1;
    int64_t k = 0;
    switch (id) {
    case RT_B_J: return ad_j(a[0]);
    case RT_B_J_PRIMAL: return ad_j_primal(n, a);
    case RT_B_BPROP_TAPE: return ad_bprop_tape(n, a);
    case RT_B_GRAD_CALL: return ad_grad_call(n, a);
    case RT_B_CALL_STAR:
        if (seq_arg(a[1], "call_star")) return NULL;
        return rt_call(a[0], a[1]->u.seq.n, a[1]->u.seq.items);
    case RT_B_MAKE_CLOSURE: {
        if (n < 1 || a[0]->kind != SP_V_TUPLE || a[0]->u.seq.n != 1 || a[0]->u.seq.items[0]->kind != SP_V_GRAPH) {
            sp_error(SP_ERR_INTERNAL, "make_closure: the first argument must be (graph,)");
            return NULL;
        }
        sp_graph *g = a[0]->u.seq.items[0]->u.graph;
        if (g->n_fv != n - 1) {
            sp_error(SP_ERR_INTERNAL, "make_closure: @%s has %d free variables, got %d values", g->name, g->n_fv, n - 1);
            return NULL;
        }
        return sp_value_closure(g, n - 1, a + 1);
    }
    case RT_B_CLOSURE_KEYS: {
        if (a[0]->kind != SP_V_TUPLE || a[0]->u.seq.n != 1 || a[0]->u.seq.items[0]->kind != SP_V_GRAPH) {
            sp_error(SP_ERR_INTERNAL, "closure_keys: the argument must be (graph,)");
            return NULL;
        }
        sp_graph *g = a[0]->u.seq.items[0]->u.graph;
        sp_value **items = calloc((size_t)g->n_fv + 1, sizeof *items), *r = NULL;
        if (!items) return NULL;
        int i;
        for (i = 0; i < g->n_fv; i++)
            if (!(items[i] = sp_value_int(ad_key_of(g->fv[i])))) break;
        if (i == g->n_fv) r = sp_value_tuple(i, items);
        for (int q = 0; q < i; q++) sp_value_release(items[q]);
        free(items);
        return r;
    }
    case RT_B_ENV_NEW: return ad_env_new();
    case RT_B_ENV_GETITEM: return key_arg(a[1], &k) ? NULL : ad_env_get(a[0], k, a[2]);
    case RT_B_ENV_SETITEM:
        if (!is_none(a[0]) && a[0]->kind != SP_V_ENV) {
            sp_error(SP_ERR_INTERNAL, "env_setitem: not an env: %s", sp_value_kind_name(a[0]));
            return NULL;
        }
        return key_arg(a[1], &k) ? NULL : ad_env_set(a[0], k, a[2]);
    case RT_B_ADD_GRAD: return ad_add_grad(a[0], a[1]);
    case RT_B_FILL_ZEROS: return fill_zeros(a[0], a[1]);
    case RT_B_SCATTER_TUPLE: return key_arg(a[2], &k) ? NULL : scatter_tuple(a[0], a[1], k);
    case RT_B_GATHER_TUPLE: return gather_tuple(a[0], a[1]);
    case RT_B_TUPLE_HEAD:
    case RT_B_TUPLE_TAIL: return key_arg(a[1], &k) ? NULL : tuple_part(a[0], k, id == RT_B_TUPLE_HEAD);
    case RT_B_GETITEM_GRAD: return getitem_grad(a[0], a[1], a[2]);
    case RT_B_SENS_OF: return sens_of(a[0]);
    case RT_B_BPROP_INFO: {
        /* how a bprop partial of j_primal binds its arguments (see
         * _ad_jj_primal): 0 (args..., out), 1 ((args), out), 2 _ad_prim,
         * 3 anything else (no gradient through the bound values), 4
         * (args...) without out */
        const sp_value *p = a[0];
        int code = 3;
        if (p->kind == SP_V_PARTIAL && p->u.partial.fn->kind == SP_V_GRAPH) {
            const char *nm = p->u.partial.fn->u.graph->name;
            if (!strcmp(nm, "_ad_prim")) code = 2;
            else if (!strcmp(nm, "_ad_seq_getitem")) code = 4;
            else if (!strcmp(nm, "_ad_make_tuple") || !strcmp(nm, "_ad_partial") || !strcmp(nm, "_ad_make_closure") ||
                     !strcmp(nm, "_ad_zero") || !strcmp(nm, "_ad_math"))
                code = 1;
            else if (strcmp(nm, "_ad_make_keyword") != 0 && !strncmp(nm, "_ad_", 4))
                code = 0;
        }
        sp_value *items[2] = {sp_value_int(code),
                              p->kind == SP_V_PARTIAL ? sp_value_tuple(p->u.partial.n, p->u.partial.args)
                                                      : sp_value_tuple(0, NULL)};
        sp_value *r = items[0] && items[1] ? sp_value_tuple(2, items) : NULL;
        sp_value_release(items[0]);
        sp_value_release(items[1]);
        return r;
    }
    case RT_B_FN_PARTS: {
        const sp_value *f = a[0];
        int code = f->kind == SP_V_GRAPH || f->kind == SP_V_CLOSURE ? 0 : f->kind == SP_V_PARTIAL ? 1 : 2;
        sp_value *items[3] = {sp_value_int(code), code == 1 ? f->u.partial.fn : (sp_value *)f,
                              code == 1 ? sp_value_tuple(f->u.partial.n, f->u.partial.args) : sp_value_tuple(0, NULL)};
        sp_value *r = items[0] && items[2] ? sp_value_tuple(3, items) : NULL;
        sp_value_release(items[0]);
        sp_value_release(items[2]);
        return r;
    }
    default: *handled = 0; return NULL;
    }
}
