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
 * One thing moves: an error an inner step raises at run time (a shape
 * mismatch in a graph nobody specialized) carries the root's location, not
 * the inner call's; after specialization such errors are reported at
 * compile time, before this pass runs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes.h"
#include "ops/fused.h"
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
} fuse_tree;

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
        if (fuse_is_scalar_const(x)) {
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

/* ---- the pass ----------------------------------------------------------------------- */

/* Rewrites root (a fusable call, or a reduction of one: red) into the fused
 * call when the tree has enough in it.  *did = 1 when it rewrote. */
static sp_status fuse_root(sp_module *m, const pass_users *u, sp_node *root, int *did) {
    fuse_call c, rc;
    char tok[256];
    const fuse_call *red = NULL;
    sp_node *top = root;
    if (!fuse_read(root, &c)) return SP_OK;
    if (fuse_is_reduction(&c)) {
        rc = c;
        red = &rc;
        top = c.pos[0];
        fuse_tree probe = {u, root->graph, NULL, 0, 0, 0, 0, 0, {0}};
        if (!fuse_joins(&probe, top, &c, tok, sizeof tok)) return SP_OK;
    } else if (!fuse_step_token(&c, tok, sizeof tok)) {
        return SP_OK;
    }
    fuse_tree t = {u, root->graph, NULL, 0, 0, 0, 0, 0, {0}};
    if (!fuse_walk(&t, &c, tok)) {
        free(t.prog);
        return sp_error(SP_ERR_NOMEM, "fuse: out of memory");
    }
    if (t.n_steps < 2 && !red) {
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
    sp_status st = in && prim && kw ? SP_OK : sp_error(SP_ERR_NOMEM, "fuse: out of memory");
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
            st = fuse_root(m, u, x, &did);
            if (did) *changed = 1;
        }
        free(order);
    }
    pass_users_free(u);
    return st;
}
