/*
 * fuse.c -- elementwise fusion: a tree of elementwise primitive calls (and
 * a sum, mean, max or min at its end) becomes one call of the primitive
 * fused_elementwise, whose kernels run the tree block by block (CPU) or
 * per element (CUDA) and touch memory once.
 *
 * What fuses.  Calls in the canonical form of a primitive call (a
 * prim.NAME callee, tensor inputs positional, every attribute a keyword
 * whose name and value are constants: a keyword(...) constant, or a
 * make_keyword apply of constants as the front end writes it) of a
 * primitive flagged SP_OPF_ELEMWISE that is neither random nor in place.
 * An operand joins its user's tree when it is such a call in the same
 * graph whose ONLY use is that operand: an intermediate read twice, or
 * also a graph output, or used by a nested graph, stays a separate node
 * (so nothing is ever computed twice, and effect tuples, which count as
 * uses, are never disturbed).  Python scalar constants become literals of
 * the program; every other operand (parameters, constant tensors, calls of
 * other primitives, impure or random nodes) is an input of the fused call,
 * numbered in first-use order, one input per distinct node.  A tree of a
 * single call is left alone unless a reduction ends it.
 *
 * The rewrite.  The root of a tree (the call whose value leaves it, or the
 * reduction consuming it) is rewritten IN PLACE into the fused call, so it
 * keeps its id, its location, its users and whatever types a specializer
 * gave it; the rest of the tree becomes unreachable.  Every leaf was
 * computed before the root, so the VM's id order still holds.
 *
 * Inputs that reach the fused call are taken to be tensors (contract 2 of
 * the compiler: after specialization a positional operand that is not a
 * tensor is a constant, and constants of Python scalars become literals).
 * A program never holds a character its grammar reserves (space, comma,
 * braces, '='): a string attribute containing one keeps its call unfused.
 * Limits: SP_FUSED_MAX_STEPS steps and FUSE_MAX_INPUTS inputs per call;
 * a tree that would pass either is cut there (the rest becomes an input).
 *
 * Constant leaves.  An operand that is a creation call with constant
 * attributes (zeros/ones/full(shape=..., dtype=...): nothing to read, so
 * nothing to launch) or a constant one-element tensor (the specializer's
 * 0-d constants for Python scalars) becomes a literal of the program
 * instead of an input -- so where(m, g, zeros_like(g)) costs no zeros
 * kernel and no memory.  A literal is 0-d and takes its step's weak dtype,
 * so this is done only when it provably changes nothing: the tree is built
 * both ways, both programs are typed by the primitives' own inference from
 * the leaves' metas (inferred for the whole graph as lowering does, below:
 * no metas, no literals), and every step must get the same dtype and
 * shape, the same promoted operand dtype, and every literal the same value
 * in its weak dtype as the constant held in its own (0 and 1 survive
 * anything, 0.1 does not cross from float32 to float64).  Each constant is
 * tried alone, then those that passed together.  Otherwise the constant
 * stays an input.  A creation call that other nodes still read is launched
 * for them; the tree no longer reads it either way.
 *
 * One thing moves: an error an inner step raises at run time (a shape
 * mismatch in a graph nobody specialized) carries the root's location, not
 * the inner call's; after specialization such errors are reported at
 * compile time, before this pass runs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/abstract.h"
#include "compiler/passes/passes.h"
#include "core/internal.h"
#include "ops/fused.h"
#include "ops/infer.h"
#include "ops/ops.h"

#define FUSE_MAX_INPUTS 32
#define FUSE_MAX_KW 6

/* A canonical primitive call: positional operands and constant keywords. */
typedef struct fuse_call {
    int op;
    int n_pos;
    sp_node *pos[3];
    int n_kw;
    const char *kw_name[FUSE_MAX_KW];
    const sp_value *kw_val[FUSE_MAX_KW];
} fuse_call;

/* Reads n as a canonical call of a primitive with at most 3 positional
 * operands and FUSE_MAX_KW constant keywords; 0 when it is not one. */
static int fuse_read(const sp_node *n, fuse_call *c) {
    memset(c, 0, sizeof *c);
    if (!n || n->kind != SP_NODE_APPLY || n->n_inputs < 1) return 0;
    const sp_node *f = n->inputs[0];
    if (f->kind != SP_NODE_CONST || f->value->kind != SP_V_PRIM) return 0;
    c->op = f->value->u.prim;
    for (int i = 1; i < n->n_inputs; i++) {
        const sp_node *x = n->inputs[i];
        const char *name = NULL;
        const sp_value *val = NULL;
        if (x->kind == SP_NODE_CONST && x->value->kind == SP_V_KEYWORD) {
            name = x->value->u.kw.name;
            val = x->value->u.kw.value;
        } else if (pass_is_call(x, PB_MAKE_KEYWORD)) {
            if (x->n_inputs != 3 || x->inputs[1]->kind != SP_NODE_CONST ||
                x->inputs[2]->kind != SP_NODE_CONST || x->inputs[1]->value->kind != SP_V_STR)
                return 0;
            name = x->inputs[1]->value->u.str.s;
            val = x->inputs[2]->value;
        }
        if (name) {
            if (c->n_kw == FUSE_MAX_KW) return 0;
            c->kw_name[c->n_kw] = name;
            c->kw_val[c->n_kw++] = val;
        } else {
            if (c->n_pos == 3) return 0;
            c->pos[c->n_pos++] = n->inputs[i];
        }
    }
    return 1;
}

static int fuse_is_scalar_const(const sp_node *x) {
    return x->kind == SP_NODE_CONST &&
           (x->value->kind == SP_V_INT || x->value->kind == SP_V_FLOAT || x->value->kind == SP_V_BOOL);
}

/* Appends an attribute value in the program's spelling; 0 when it cannot
 * be spelled (a list, a string with a reserved character). */
static int fuse_put_attr_value(char *buf, size_t cap, const sp_value *v) {
    switch (v->kind) {
    case SP_V_INT: return snprintf(buf, cap, "%lld", (long long)v->u.i) < (int)cap;
    case SP_V_BOOL: return snprintf(buf, cap, "%d", v->u.b ? 1 : 0) < (int)cap;
    case SP_V_FLOAT: {
        int k = snprintf(buf, cap, "%.17g", v->u.f);
        if (k <= 0 || k >= (int)cap - 2) return 0;
        if (!strpbrk(buf, ".eEni")) strcat(buf, ".0"); /* read back as a float */
        return 1;
    }
    case SP_V_DTYPE: return snprintf(buf, cap, "%s", sp_dtype_name(v->u.dtype)) < (int)cap;
    case SP_V_STR:
        if (!v->u.str.len || strpbrk(v->u.str.s, " ,{}=") || strlen(v->u.str.s) != v->u.str.len)
            return 0;
        return snprintf(buf, cap, "%s", v->u.str.s) < (int)cap;
    default: return 0;
    }
}

/* The step token of an elementwise call ("gelu{approximate=tanh}") into
 * buf; 0 when the call cannot be a step. */
static int fuse_step_token(const fuse_call *c, char *buf, size_t cap) {
    if (c->op < 0 || c->op >= SP_OP_COUNT) return 0;
    const sp_op_def *d = &sp_op_defs[c->op];
    if (!(d->flags & SP_OPF_ELEMWISE) || (d->flags & (SP_OPF_RANDOM | SP_OPF_INPLACE)) ||
        d->n_in != c->n_pos || d->n_out != 1)
        return 0;
    int tensors = 0;
    for (int k = 0; k < c->n_pos; k++) tensors += !fuse_is_scalar_const(c->pos[k]);
    if (!tensors) return 0; /* all literals: fold's business */
    size_t n = (size_t)snprintf(buf, cap, "%s", d->name);
    int first = 1;
    for (int k = 0; k < c->n_kw; k++) {
        if (c->kw_val[k]->kind == SP_V_NONE) continue; /* None sets nothing */
        char v[64];
        if (!fuse_put_attr_value(v, sizeof v, c->kw_val[k]) || strpbrk(c->kw_name[k], " ,{}="))
            return 0;
        int w = snprintf(buf + n, cap - n, "%s%s=%s", first ? "{" : ",", c->kw_name[k], v);
        if (w < 0 || (size_t)w >= cap - n) return 0;
        n += (size_t)w;
        first = 0;
    }
    if (!first) {
        if (n + 2 > cap) return 0;
        buf[n++] = '}';
        buf[n] = '\0';
    }
    return 1;
}

/* A reduction that may end a tree: sum/mean/max/min of one operand with
 * only axes/keepdims keywords. */
static int fuse_is_reduction(const fuse_call *c) {
    if (c->op != SP_OP_SUM && c->op != SP_OP_MEAN && c->op != SP_OP_MAX && c->op != SP_OP_MIN)
        return 0;
    if (c->n_pos != 1) return 0;
    for (int k = 0; k < c->n_kw; k++)
        if (strcmp(c->kw_name[k], "axes") && strcmp(c->kw_name[k], "keepdims")) return 0;
    return 1;
}

/* ---- building one tree -------------------------------------------------------- */

typedef struct fuse_tree {
    const pass_users *u;
    sp_graph *g;
    char *prog; /* the program text */
    size_t len, cap;
    int n_steps, n_in, full;
    sp_node *in[FUSE_MAX_INPUTS];
    int n_lits;  /* the constant leaves that become literals (see the essay) */
    const sp_node *lits[FUSE_MAX_INPUTS];
    int n_clits; /* how many leaves did */
    int n_made;  /* of those, creation calls (each a launch saved) */
} fuse_tree;

/* ---- constant leaves ---------------------------------------------------------- */

/* A constant leaf's value: its dtype, its element's bytes in that dtype,
 * and its meta. */
typedef struct fuse_const {
    sp_dtype dt;
    _Alignas(8) unsigned char bytes[8]; /* read and written as the dtype */
    sp_meta meta;
} fuse_const;

/* Nonzero when x is a constant leaf (see the essay), described into *k. */
static int fuse_const_leaf(const sp_node *x, fuse_const *k) {
    memset(k, 0, sizeof *k);
    if (x->kind == SP_NODE_CONST) {
        if (x->value->kind != SP_V_TENSOR) return 0;
        sp_tensor *t = x->value->u.tensor;
        if (sp_tensor_numel(t) != 1 || !t->buf || t->buf->device.type != SP_DEVICE_CPU) return 0;
        k->dt = t->dtype;
        memcpy(k->bytes, (const char *)sp_tensor_data(t), sp_dtype_size(t->dtype));
        ops_meta_set(&k->meta, t->dtype, t->ndim, t->shape);
        return 1;
    }
    fuse_call c;
    if (!fuse_read(x, &c) || c.n_pos != 0 ||
        (c.op != SP_OP_ZEROS && c.op != SP_OP_ONES && c.op != SP_OP_FULL))
        return 0;
    const sp_value *shape = NULL, *val = NULL;
    k->dt = SP_F32;
    for (int i = 0; i < c.n_kw; i++) {
        const sp_value *v = c.kw_val[i];
        if (!strcmp(c.kw_name[i], "shape")) shape = v;
        else if (!strcmp(c.kw_name[i], "value")) val = v;
        else if (!strcmp(c.kw_name[i], "dtype") && v->kind == SP_V_DTYPE) k->dt = v->u.dtype;
        else if (!strcmp(c.kw_name[i], "dtype") && v->kind == SP_V_NONE) k->dt = SP_F32;
        else return 0;
    }
    if (!shape || (shape->kind != SP_V_TUPLE && shape->kind != SP_V_LIST) || shape->u.seq.n > SP_MAX_DIMS)
        return 0;
    int64_t dims[SP_MAX_DIMS];
    for (int i = 0; i < shape->u.seq.n; i++) {
        const sp_value *d = shape->u.seq.items[i];
        if (d->kind != SP_V_INT || d->u.i < 0) return 0;
        dims[i] = d->u.i;
    }
    ops_meta_set(&k->meta, k->dt, shape->u.seq.n, dims);
    /* the value as cpu_fill_value stores it */
    if (c.op == SP_OP_FULL) {
        if (!val) return 0;
        if (val->kind == SP_V_INT) sp_store_i64(k->dt, k->bytes, val->u.i);
        else if (val->kind == SP_V_BOOL) sp_store_i64(k->dt, k->bytes, val->u.b ? 1 : 0);
        else if (val->kind == SP_V_FLOAT) sp_store_f64(k->dt, k->bytes, val->u.f);
        else return 0;
    } else {
        sp_store_f64(k->dt, k->bytes, c.op == SP_OP_ONES ? 1.0 : 0.0);
    }
    return 1;
}

/* The literal token of a constant leaf: its exact value in the spelling of
 * its dtype's kind (float: %.17g round-trips every float dtype; integers
 * and bool exactly). */
static void fuse_const_token(const fuse_const *k, char *buf, size_t cap) {
    if (sp_dtype_is_float(k->dt)) snprintf(buf, cap, "f:%.17g", sp_load_f64(k->dt, k->bytes));
    else if (k->dt == SP_BOOL) snprintf(buf, cap, "b:%d", k->bytes[0] ? 1 : 0);
    else snprintf(buf, cap, "n:%lld", (long long)sp_load_i64(k->dt, k->bytes));
}

/* Nonzero when literal a, held in dtype l as the kernels hold it, is the
 * same number as the constant k held in its own dtype. */
static int fuse_same_value(const fuse_const *k, const sp_fused_arg *a, sp_dtype l) {
    _Alignas(8) unsigned char b[8] = {0};
    if (a->lit_kind == SP_FLIT_FLOAT) sp_store_f64(l, b, a->f);
    else sp_store_i64(l, b, a->i);
    if (!sp_dtype_is_float(l) && !sp_dtype_is_float(k->dt))
        return sp_load_i64(l, b) == sp_load_i64(k->dt, k->bytes);
    double x = sp_load_f64(l, b), y = sp_load_f64(k->dt, k->bytes);
    return x == x && memcmp(&x, &y, sizeof x) == 0; /* NaN never; -0.0 is not 0.0 */
}

/* ---- metas of a graph's nodes, for the check -------------------------------
 * After gradient expansion and the optimizer, many nodes carry no abstract
 * value, so the metas the check needs are inferred here the way lowering
 * infers them: one forward sweep over the graph (at the first tree that
 * needs it), parameters from their abstract values, constants from their
 * tensors, primitive calls from their operands' metas and constant
 * keywords through sp_op_infer (a Python scalar operand a 0-d tensor of the
 * call's first tensor dtype, as rt_prim_call makes it), tuple_getitem of a
 * multi-output call by inferring that call again.  Anything else is
 * unknown, and a tree with an unknown leaf keeps its constants as inputs. */

typedef struct fuse_metas {
    const sp_graph *g; /* the graph swept, or NULL */
    int n;             /* ids below n have an entry */
    unsigned char *state; /* 0 unknown, 1 known */
    sp_meta *meta;
} fuse_metas;

static int fuse_set_attr(sp_attrs *a, const char *name, const sp_value *v) {
    int64_t ints[SP_MAX_ATTR_INTS];
    sp_status st = SP_OK;
    switch (v->kind) {
    case SP_V_NONE: return 1;
    case SP_V_BOOL: st = sp_attrs_set_int(a, name, v->u.b); break;
    case SP_V_INT: st = sp_attrs_set_int(a, name, v->u.i); break;
    case SP_V_FLOAT: st = sp_attrs_set_float(a, name, v->u.f); break;
    case SP_V_STR: st = sp_attrs_set_str(a, name, v->u.str.s); break;
    case SP_V_DTYPE: st = sp_attrs_set_dtype(a, name, v->u.dtype); break;
    case SP_V_TUPLE:
    case SP_V_LIST:
        if (v->u.seq.n > SP_MAX_ATTR_INTS) return 0;
        for (int i = 0; i < v->u.seq.n; i++) {
            const sp_value *x = v->u.seq.items[i];
            if (x->kind != SP_V_INT && x->kind != SP_V_BOOL) return 0;
            ints[i] = x->kind == SP_V_INT ? x->u.i : x->u.b;
        }
        st = sp_attrs_set_ints(a, name, v->u.seq.n, ints);
        break;
    default: return 0;
    }
    if (st) sp_clear_error();
    return st == SP_OK;
}

static int fuse_known(const fuse_metas *fm, const sp_node *x, sp_meta *m) {
    if (x->kind == SP_NODE_CONST) {
        if (x->value->kind != SP_V_TENSOR) return 0;
        const sp_tensor *t = x->value->u.tensor;
        ops_meta_set(m, t->dtype, t->ndim, t->shape);
        return 1;
    }
    if (x->graph != fm->g || x->id < 0 || x->id >= fm->n || !fm->state[x->id]) return 0;
    *m = fm->meta[x->id];
    return 1;
}

/* The outputs of prim call x from the metas known so far; 0 when unknown. */
static int fuse_infer_call(const fuse_metas *fm, const sp_node *x, int *n_out, sp_meta *out) {
    if (x->kind != SP_NODE_APPLY || x->n_inputs < 1) return 0;
    const sp_node *f = x->inputs[0];
    if (f->kind != SP_NODE_CONST || f->value->kind != SP_V_PRIM) return 0;
    int op = f->value->u.prim, np = 0, weak = -1;
    sp_meta in[SP_MAX_INPUTS];
    const sp_node *pos[SP_MAX_INPUTS];
    sp_attrs a;
    sp_attrs_init(&a);
    for (int i = 1; i < x->n_inputs; i++) {
        const sp_node *y = x->inputs[i];
        if (y->kind == SP_NODE_CONST && y->value->kind == SP_V_KEYWORD) {
            if (!fuse_set_attr(&a, y->value->u.kw.name, y->value->u.kw.value)) return 0;
        } else if (pass_is_call(y, PB_MAKE_KEYWORD)) {
            if (y->n_inputs != 3 || y->inputs[1]->kind != SP_NODE_CONST || y->inputs[2]->kind != SP_NODE_CONST ||
                y->inputs[1]->value->kind != SP_V_STR ||
                !fuse_set_attr(&a, y->inputs[1]->value->u.str.s, y->inputs[2]->value))
                return 0;
        } else {
            if (np == SP_MAX_INPUTS) return 0;
            pos[np++] = y;
        }
    }
    for (int i = 0; i < np; i++) {
        if (fuse_is_scalar_const(pos[i])) continue;
        if (!fuse_known(fm, pos[i], &in[i])) return 0;
        if (weak < 0) weak = in[i].dtype;
    }
    for (int i = 0; i < np; i++) {
        if (!fuse_is_scalar_const(pos[i])) continue;
        const sp_value *v = pos[i]->value;
        sp_dtype d = weak >= 0 ? (sp_dtype)weak : v->kind == SP_V_FLOAT ? SP_F32 : v->kind == SP_V_INT ? SP_I64 : SP_BOOL;
        ops_meta_set(&in[i], d, 0, NULL);
    }
    int ok = sp_op_infer(op, np, in, &a, n_out, out) == SP_OK;
    if (!ok) sp_clear_error();
    return ok;
}

/* Sweeps graph g (its nodes in order) into fm; 0 on out of memory. */
static int fuse_metas_sweep(fuse_metas *fm, const sp_module *m, const sp_graph *g, sp_node *const *order, int n) {
    if (fm->g == g) return 1;
    free(fm->state);
    free(fm->meta);
    fm->g = g;
    fm->n = m->next_id;
    fm->state = calloc((size_t)fm->n + 1, 1);
    fm->meta = malloc(sizeof *fm->meta * ((size_t)fm->n + 1));
    if (!fm->state || !fm->meta) {
        fm->g = NULL;
        return 0;
    }
    for (int i = 0; i < g->n_params; i++) {
        const sp_node *x = g->params[i];
        const sp_abstract *a = x->abs;
        if (x->id >= 0 && x->id < fm->n && a && sp_abs_tensor_known(a)) {
            ops_meta_set(&fm->meta[x->id], a->dtype, a->ndim, a->shape);
            fm->state[x->id] = 1;
        }
    }
    for (int i = 0; i < n; i++) {
        const sp_node *x = order[i];
        if (x->kind != SP_NODE_APPLY || x->graph != g || x->id < 0 || x->id >= fm->n) continue;
        int n_out = 0;
        sp_meta out[SP_MAX_OUTPUTS];
        if (fuse_infer_call(fm, x, &n_out, out) && n_out == 1) {
            fm->meta[x->id] = out[0];
            fm->state[x->id] = 1;
        } else if (pass_is_call(x, PB_TUPLE_GETITEM) && x->n_inputs == 3 && x->inputs[2]->kind == SP_NODE_CONST &&
                   x->inputs[2]->value->kind == SP_V_INT &&
                   fuse_infer_call(fm, x->inputs[1], &n_out, out) && x->inputs[2]->value->u.i >= 0 &&
                   x->inputs[2]->value->u.i < n_out) {
            fm->meta[x->id] = out[x->inputs[2]->value->u.i];
            fm->state[x->id] = 1;
        }
    }
    return 1;
}

/* The meta of a tree input: a constant leaf's, or the sweep's.  0 when it
 * is not known. */
static int fuse_input_meta(const fuse_metas *fm, const sp_node *x, sp_meta *m) {
    fuse_const k;
    if (fuse_const_leaf(x, &k)) {
        *m = k.meta;
        return 1;
    }
    return fuse_known(fm, x, m);
}

static int fuse_meta_eq(const sp_meta *a, const sp_meta *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

static sp_dtype fuse_arg_dtype(const sp_fused_prog *p, const sp_fused_step *s, int k, const sp_meta *in) {
    const sp_fused_arg *a = &s->arg[k];
    if (a->kind == SP_FARG_INPUT) return in[a->index].dtype;
    if (a->kind == SP_FARG_STEP) return p->step[a->index].meta.dtype;
    return s->lit_dtype;
}

/* Types a program for the given input metas; NULL (error cleared) when it
 * does not type. */
static sp_fused_prog *fuse_typed(const char *text, int n_in, const sp_meta *in) {
    sp_attrs none;
    sp_attrs_init(&none);
    sp_fused_prog *p = sp_fused_parse(text);
    if (p && sp_fused_resolve(p, n_in, in, &none) != SP_OK) {
        sp_fused_free(p);
        p = NULL;
    }
    if (!p) sp_clear_error();
    return p;
}

/* Nonzero when lit (constant leaves as literals) computes exactly what
 * plain (the same tree with them as inputs) does; see the essay. */
static int fuse_lits_exact(const fuse_metas *fm, const fuse_tree *plain, const fuse_tree *lit) {
    sp_meta ma[FUSE_MAX_INPUTS], mb[FUSE_MAX_INPUTS];
    for (int i = 0; i < plain->n_in; i++)
        if (!fuse_input_meta(fm, plain->in[i], &ma[i])) return 0;
    for (int i = 0; i < lit->n_in; i++)
        if (!fuse_input_meta(fm, lit->in[i], &mb[i])) return 0;
    sp_fused_prog *a = fuse_typed(plain->prog, plain->n_in, ma);
    sp_fused_prog *b = a ? fuse_typed(lit->prog, lit->n_in, mb) : NULL;
    int ok = a && b && a->n_steps == b->n_steps;
    for (int i = 0; ok && i < a->n_steps; i++) {
        const sp_fused_step *sa = &a->step[i], *sb = &b->step[i];
        ok = sa->op == sb->op && sa->n_args == sb->n_args && fuse_meta_eq(&sa->meta, &sb->meta);
        sp_dtype pa = SP_BOOL, pb = SP_BOOL;
        for (int k = 0; ok && k < sa->n_args; k++) {
            pa = sp_dtype_promote(pa, fuse_arg_dtype(a, sa, k, ma));
            pb = sp_dtype_promote(pb, fuse_arg_dtype(b, sb, k, mb));
            const sp_fused_arg *x = &sa->arg[k], *y = &sb->arg[k];
            if (x->kind == SP_FARG_INPUT && y->kind == SP_FARG_LIT) {
                fuse_const kc;
                ok = fuse_const_leaf(plain->in[x->index], &kc) && fuse_same_value(&kc, y, sb->lit_dtype);
            } else {
                ok = x->kind == y->kind;
            }
        }
        ok = ok && pa == pb;
    }
    sp_fused_free(a);
    sp_fused_free(b);
    return ok;
}

static int fuse_emit(fuse_tree *t, const char *tok) {
    size_t k = strlen(tok);
    if (t->len + k + 2 > t->cap) {
        size_t cap = (t->cap + k + 2) * 2;
        char *p = realloc(t->prog, cap);
        if (!p) return 0;
        t->prog = p;
        t->cap = cap;
    }
    if (t->len) t->prog[t->len++] = ' ';
    memcpy(t->prog + t->len, tok, k + 1);
    t->len += k;
    return 1;
}

/* Nonzero when operand x (of a call in t's graph) may join the tree: a
 * fusable call of the same graph whose one use is that operand. */
static int fuse_joins(const fuse_tree *t, const sp_node *x, fuse_call *c, char *tok, size_t cap) {
    if (x->kind != SP_NODE_APPLY || x->graph != t->g) return 0;
    int n_uses;
    pass_users_of(t->u, x, &n_uses);
    if (n_uses != 1) return 0;
    return fuse_read(x, c) && fuse_step_token(c, tok, cap);
}

/* Emits node n (already known to be a fusable call c with token tok) and
 * its operands in postfix.  0 on out of memory. */
static int fuse_walk(fuse_tree *t, const fuse_call *c, const char *tok) {
    t->n_steps++;
    for (int k = 0; k < c->n_pos; k++) {
        sp_node *x = c->pos[k];
        fuse_call cx;
        char tx[256];
        if (!t->full && t->n_steps < SP_FUSED_MAX_STEPS && fuse_joins(t, x, &cx, tx, sizeof tx)) {
            if (!fuse_walk(t, &cx, tx)) return 0;
            continue;
        }
        char leaf[64];
        fuse_const kc;
        int lit = 0;
        for (int i = 0; i < t->n_lits && !lit; i++) lit = t->lits[i] == x;
        if (lit && fuse_const_leaf(x, &kc)) {
            fuse_const_token(&kc, leaf, sizeof leaf);
            t->n_clits++;
            t->n_made += x->kind == SP_NODE_APPLY;
        } else if (fuse_is_scalar_const(x)) {
            const sp_value *v = x->value;
            if (v->kind == SP_V_FLOAT) snprintf(leaf, sizeof leaf, "f:%.17g", v->u.f);
            else if (v->kind == SP_V_INT) snprintf(leaf, sizeof leaf, "n:%lld", (long long)v->u.i);
            else snprintf(leaf, sizeof leaf, "b:%d", v->u.b ? 1 : 0);
        } else {
            int i = 0;
            while (i < t->n_in && t->in[i] != x) i++;
            if (i == t->n_in) t->in[t->n_in++] = x;
            if (t->n_in == FUSE_MAX_INPUTS) t->full = 1; /* no new inputs below here */
            snprintf(leaf, sizeof leaf, "i%d", i);
        }
        if (!fuse_emit(t, leaf)) return 0;
    }
    return fuse_emit(t, tok);
}

/* What fuse_build needs of the graph being rewritten. */
typedef struct fuse_sweep {
    const sp_module *m;
    sp_graph *g;
    sp_node *const *order;
    int n;
    fuse_metas *fm;
} fuse_sweep;

/* A tree walked from c (token tok) with the constant leaves in lits[0..n)
 * as literals, into *t (t->prog malloc'd).  0 on out of memory. */
static int fuse_walk_with(const pass_users *u, sp_graph *g, const fuse_call *c, const char *tok, int n,
                          const sp_node *const *lits, fuse_tree *t) {
    memset(t, 0, sizeof *t);
    t->u = u;
    t->g = g;
    t->n_lits = n;
    for (int i = 0; i < n; i++) t->lits[i] = lits[i];
    if (fuse_walk(t, c, tok)) return 1;
    free(t->prog);
    t->prog = NULL;
    return 0;
}

/* The tree of c into *t: the plain tree, then each constant leaf tried as
 * a literal alone, then all those that passed together (kept only if that
 * passes too: the check is per tree, not per leaf). */
static sp_status fuse_build(const pass_users *u, fuse_sweep *sw, const fuse_call *c, const char *tok,
                            fuse_tree *t) {
    fuse_tree plain, one;
    sp_graph *g = sw->g;
    if (!fuse_walk_with(u, g, c, tok, 0, NULL, &plain)) return sp_error(SP_ERR_NOMEM, "fuse: out of memory");
    const sp_node *ok[FUSE_MAX_INPUTS];
    int n_ok = 0;
    for (int i = 0; i < plain.n_in; i++) {
        fuse_const k;
        const sp_node *x = plain.in[i];
        if (!fuse_const_leaf(x, &k)) continue;
        if (!fuse_metas_sweep(sw->fm, sw->m, g, sw->order, sw->n)) {
            free(plain.prog);
            return sp_error(SP_ERR_NOMEM, "fuse: out of memory");
        }
        if (!fuse_walk_with(u, g, c, tok, 1, &x, &one)) {
            free(plain.prog);
            return sp_error(SP_ERR_NOMEM, "fuse: out of memory");
        }
        if (one.n_clits && fuse_lits_exact(sw->fm, &plain, &one)) ok[n_ok++] = x;
        free(one.prog);
    }
    if (n_ok == 0) {
        *t = plain;
        return SP_OK;
    }
    if (!fuse_walk_with(u, g, c, tok, n_ok, ok, t)) {
        free(plain.prog);
        return sp_error(SP_ERR_NOMEM, "fuse: out of memory");
    }
    if (n_ok > 1 && !fuse_lits_exact(sw->fm, &plain, t)) {
        free(t->prog);
        *t = plain;
        return SP_OK;
    }
    free(plain.prog);
    return SP_OK;
}

/* ---- the pass ----------------------------------------------------------------------- */

/* Rewrites root (a fusable call, or a reduction of one: red) into the fused
 * call when the tree has enough in it.  *did = 1 when it rewrote. */
static sp_status fuse_root(sp_module *m, const pass_users *u, fuse_sweep *sw, sp_node *root, int *did) {
    fuse_call c, rc;
    char tok[256];
    const fuse_call *red = NULL;
    sp_node *top = root;
    if (!fuse_read(root, &c)) return SP_OK;
    if (fuse_is_reduction(&c)) {
        rc = c;
        red = &rc;
        top = c.pos[0];
        fuse_tree probe;
        memset(&probe, 0, sizeof probe);
        probe.u = u;
        probe.g = root->graph;
        if (!fuse_joins(&probe, top, &c, tok, sizeof tok)) return SP_OK;
    } else if (!fuse_step_token(&c, tok, sizeof tok)) {
        return SP_OK;
    }
    fuse_tree t;
    sp_status st = fuse_build(u, sw, &c, tok, &t);
    if (st) return st;
    /* one step is worth a fused call only when it saves a creation launch */
    if (t.n_steps < 2 && !red && !t.n_made) {
        free(t.prog);
        return SP_OK;
    }
    /* the new inputs: callee, tensors, then the attributes as keyword constants */
    int n = 1 + t.n_in + 1 + (red ? 1 + red->n_kw : 0);
    sp_node **in = ir_alloc(m, sizeof *in * (size_t)n);
    sp_value *prim = sp_value_prim(SP_OP_FUSED_ELEMENTWISE);
    sp_value *text = sp_value_str(t.prog, t.len);
    sp_value *kw = text ? sp_value_keyword("program", text) : NULL;
    free(t.prog);
    st = in && prim && kw ? SP_OK : sp_error(SP_ERR_NOMEM, "fuse: out of memory");
    int k = 0;
    if (!st) {
        in[k++] = ir_const_new(root->graph, prim, root->loc);
        for (int i = 0; i < t.n_in; i++) in[k++] = t.in[i];
        in[k++] = ir_const_new(root->graph, kw, root->loc);
    }
    sp_value_release(prim);
    sp_value_release(text);
    sp_value_release(kw);
    if (!st && red) {
        const char *rname = sp_op_name(red->op);
        sp_value *rs = sp_value_str(rname, strlen(rname));
        sp_value *rk = rs ? sp_value_keyword("reduce", rs) : NULL;
        if (rk) in[k++] = ir_const_new(root->graph, rk, root->loc);
        else st = sp_error(SP_ERR_NOMEM, "fuse: out of memory");
        sp_value_release(rs);
        sp_value_release(rk);
        for (int i = 0; i < red->n_kw && !st; i++) {
            sp_value *v = sp_value_keyword(red->kw_name[i], (sp_value *)red->kw_val[i]);
            if (v) in[k++] = ir_const_new(root->graph, v, root->loc);
            else st = sp_error(SP_ERR_NOMEM, "fuse: out of memory");
            sp_value_release(v);
        }
    }
    for (int i = 0; i < k && !st; i++)
        if (!in[i]) st = sp_error(SP_ERR_NOMEM, "fuse: out of memory");
    if (st) return st;
    root->inputs = in;
    root->n_inputs = k;
    *did = 1;
    return SP_OK;
}

/* Nonzero when n would join its user's tree (so it is no root). */
static int fuse_is_inner(const pass_users *u, const sp_node *n) {
    int n_uses;
    const pass_use *use = pass_users_of(u, n, &n_uses);
    if (n_uses != 1 || !use[0].user || use[0].user->graph != n->graph) return 0;
    fuse_call c, uc;
    char tok[256];
    if (!fuse_read(n, &c) || !fuse_step_token(&c, tok, sizeof tok)) return 0;
    if (!fuse_read(use[0].user, &uc)) return 0;
    int positional = 0;
    for (int k = 0; k < uc.n_pos; k++) positional |= uc.pos[k] == n;
    if (!positional) return 0;
    return fuse_is_reduction(&uc) || fuse_step_token(&uc, tok, sizeof tok);
}

sp_status pass_fuse(sp_module *m, int *changed) {
    pass_users *u = pass_users_new(m);
    if (!u) return sp_last_status();
    sp_status st = SP_OK;
    fuse_metas fm = {NULL, 0, NULL, NULL};
    for (int gi = 0; gi < m->n_graphs && !st; gi++) {
        int n = 0;
        sp_node **order = pass_graph_order(m->graphs[gi], &n);
        if (!order) {
            st = sp_last_status();
            break;
        }
        /* roots first found, last rewritten: a rewrite changes the inputs of
         * its root only, and no root is inside another's tree */
        for (int i = n - 1; i >= 0 && !st; i--) {
            sp_node *x = order[i];
            if (x->kind != SP_NODE_APPLY || fuse_is_inner(u, x)) continue;
            int did = 0;
            fuse_sweep sw = {m, m->graphs[gi], order, n, &fm};
            st = fuse_root(m, u, &sw, x, &did);
            if (did) *changed = 1;
        }
        free(order);
    }
    free(fm.state);
    free(fm.meta);
    pass_users_free(u);
    return st;
}
