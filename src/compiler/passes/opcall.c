/*
 * opcall.c -- reading primitive calls and constants for the local passes
 * (passes_b.h).
 *
 * The passes that rewrite by pattern (algebra, fold) must see through the
 * three spellings of a primitive call -- prim.X with keyword attributes,
 * the API's partial(builtin.api, "ops.X") once fold has turned
 * getattr(module.ops, "X") into that constant, and builtin.api("ops.X",
 * ...) -- without knowing each API function's parameter list: a pattern
 * asks for "positional 1 or keyword perm/input_perm/axes" and gets the
 * node or NULL.  Anything unusual (a keyword whose name is computed, a
 * bound method carrying its tensor in the partial, more arguments than the
 * record holds) does not match, so a pattern never guesses.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes_b.h"
#include "ops/ops.h"

const sp_value *pass_const_value(const sp_node *n) {
    return n && n->kind == SP_NODE_CONST ? n->value : NULL;
}

int pass_const_int(const sp_node *n, int64_t *out) {
    const sp_value *v = pass_const_value(n);
    if (!v || v->kind != SP_V_INT) return 0;
    *out = v->u.i;
    return 1;
}

int pass_call_builtin(const sp_node *n) {
    if (!n || n->kind != SP_NODE_APPLY || n->n_inputs < 1) return -1;
    const sp_value *f = pass_const_value(n->inputs[0]);
    return f && f->kind == SP_V_BUILTIN ? f->u.builtin : -1;
}

/* The primitive name of an API function name "ops.X", or NULL. */
static const char *api_prim_name(const sp_value *s) {
    if (!s || s->kind != SP_V_STR || strncmp(s->u.str.s, "ops.", 4) != 0) return NULL;
    return s->u.str.s + 4;
}

/* Adds argument x of a call to c; 0 when it does not fit or is a keyword
 * with a computed name. */
static int add_arg(pass_opcall *c, sp_node *x, int at) {
    if (pass_call_builtin(x) == PB_MAKE_KEYWORD) {
        if (x->n_inputs != 3) return 0;
        const sp_value *name = pass_const_value(x->inputs[1]);
        if (!name || name->kind != SP_V_STR || c->n_kw == PASS_OPCALL_MAX) return 0;
        c->kw_name[c->n_kw] = name->u.str.s;
        c->kw_val[c->n_kw++] = x->inputs[2];
        return 1;
    }
    if (c->n_pos == PASS_OPCALL_MAX) return 0;
    c->pos_at[c->n_pos] = at;
    c->pos[c->n_pos++] = x;
    return 1;
}

int pass_opcall_match(const sp_node *n, pass_opcall *c) {
    memset(c, 0, sizeof *c);
    if (!n || n->kind != SP_NODE_APPLY || n->n_inputs < 1) return 0;
    const sp_value *f = pass_const_value(n->inputs[0]);
    if (!f) return 0;
    int first = 1;
    if (f->kind == SP_V_PRIM) {
        c->name = sp_op_name(f->u.prim);
        c->is_prim = 1;
    } else if (f->kind == SP_V_PARTIAL && f->u.partial.n == 1 && f->u.partial.fn->kind == SP_V_BUILTIN &&
               f->u.partial.fn->u.builtin == PB_API) {
        c->name = api_prim_name(f->u.partial.args[0]);
    } else if (f->kind == SP_V_BUILTIN && f->u.builtin == PB_API && n->n_inputs >= 2) {
        c->name = api_prim_name(pass_const_value(n->inputs[1]));
        first = 2;
    }
    if (!c->name) return 0;
    for (int i = first; i < n->n_inputs; i++)
        if (!add_arg(c, n->inputs[i], i)) return 0;
    return 1;
}

sp_node *pass_opcall_arg(const pass_opcall *c, int pos, const char *const *names) {
    sp_node *found = pos >= 0 && pos < c->n_pos ? c->pos[pos] : NULL;
    for (int k = 0; k < c->n_kw; k++)
        for (int j = 0; names && names[j]; j++)
            if (strcmp(c->kw_name[k], names[j]) == 0) {
                if (found) return NULL;
                found = c->kw_val[k];
            }
    return found;
}

static int graph_depth(const sp_graph *g) {
    int d = 0;
    for (const sp_graph *p = g->parent; p && d < 1000000; p = p->parent) d++;
    return d;
}

sp_graph **pass_graphs_outer_first(const sp_module *m) {
    int n = m->n_graphs;
    sp_graph **out = malloc(sizeof *out * (size_t)(n ? n : 1));
    int *depth = malloc(sizeof *depth * (size_t)(n ? n : 1));
    if (!out || !depth) {
        free(out);
        free(depth);
        sp_error(SP_ERR_NOMEM, "passes: out of memory ordering graphs");
        return NULL;
    }
    int max_depth = 0;
    for (int i = 0; i < n; i++) {
        depth[i] = graph_depth(m->graphs[i]);
        if (depth[i] > max_depth) max_depth = depth[i];
    }
    /* a counting pass per depth keeps the creation order within a depth */
    int k = 0;
    for (int d = 0; d <= max_depth && k < n; d++)
        for (int i = 0; i < n; i++)
            if (depth[i] == d) out[k++] = m->graphs[i];
    free(depth);
    return out;
}
