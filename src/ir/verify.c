/*
 * verify.c -- the invariants of the IR, checked.
 *
 * The front end and every pass must leave a module that satisfies:
 *
 *   ownership   every graph belongs to the module; every parameter is a
 *               PARAM node owned by its graph, listed once; every apply
 *               has a callee and no NULL input; every constant holds a
 *               value; the parent chain ends (no cycles) inside the module;
 *   scoping     a node used by graph g is a constant, owned by g, or owned
 *               by a graph that strictly encloses g (a free variable); a
 *               graph constant @h used in g is visible there: h is
 *               top-level or its parent is g or encloses g (otherwise its
 *               closure could not be built from g's scope);
 *   acyclicity  within a graph, no node depends on itself (recursion goes
 *               through graph calls, never through node inputs);
 *   arity       a call of a constant graph passes no more positional
 *               arguments than it has parameters (unless *args) and, with
 *               no keyword arguments, at least its parameters without
 *               defaults; a builtin of fixed arity gets exactly that many;
 *   globals     have names and values; graphs bound to globals are
 *               top-level.
 *
 * Every node reachable from a graph's output, and every node some other
 * graph uses as a free variable, is checked (dead nodes are not: nothing
 * can run them).  A failure is SP_ERR_INTERNAL, since a broken IR is a bug
 * in Spore, with a message naming the graph, the node and its source
 * location.  In debug builds (NDEBUG undefined) the front end and the
 * passes run this after every stage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir_internal.h"

enum {
#define SP_BUILTIN(ID, name, n) VB_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
    VB_COUNT
};

static const int builtin_arity[] = {
#define SP_BUILTIN(ID, name, n) n,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

static const char *builtin_names[] = {
#define SP_BUILTIN(ID, name, n) #name,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

typedef struct vctx {
    const sp_module *m;
    ir_map gidx;     /* graph -> index + 1 */
    ir_map param_of; /* param node -> its graph */
    sp_node ***roots; /* per graph: nodes other graphs use */
    int *n_roots, *cap_roots;
    ir_map queued;
    const sp_graph *g; /* graph being walked */
} vctx;

static const char *gname(const sp_graph *g) { return g && g->name ? g->name : "_"; }

/* " (at f.py:3:4)" for a node with a known location, else "". */
static const char *where(const sp_node *n, char *buf, size_t len) {
    if (!n || n->loc.line <= 0) return "";
    snprintf(buf, len, " (at %s:%d:%d)", n->loc.file ? n->loc.file : "?", n->loc.line, n->loc.col);
    return buf;
}

static int encloses(const sp_graph *outer, const sp_graph *g) {
    for (int d = 0; g && d < 1000000; g = g->parent, d++)
        if (g == outer) return 1;
    return 0;
}

static sp_status fail(vctx *c, const sp_node *n, const char *what, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static sp_status fail(vctx *c, const sp_node *n, const char *what, ...) {
    char msg[700], loc[300];
    va_list ap;
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    if (n)
        return sp_error(SP_ERR_INTERNAL, "verify: graph @%s: node %%%d%s: %s", gname(c->g), n->id,
                        where(n, loc, sizeof loc), msg);
    return sp_error(SP_ERR_INTERNAL, "verify: graph @%s: %s", gname(c->g), msg);
}

/* A graph a constant in c->g refers to must be in the module and visible. */
static int check_graph_ref(void *ctx, sp_graph *h) {
    vctx *c = ctx;
    if (!ir_map_get(&c->gidx, IR_PKEY(h)))
        return fail(c, NULL, "refers to graph @%s, which is not in the module", gname(h));
    if (h->parent && !encloses(h->parent, c->g))
        return fail(c, NULL, "refers to graph @%s, whose parent @%s does not enclose @%s", gname(h),
                    gname(h->parent), gname(c->g));
    return 0;
}

static int is_keyword_arg(const sp_node *x) {
    return x && x->kind == SP_NODE_APPLY && x->n_inputs >= 1 && x->inputs && x->inputs[0] &&
           x->inputs[0]->kind == SP_NODE_CONST && x->inputs[0]->value &&
           x->inputs[0]->value->kind == SP_V_BUILTIN && x->inputs[0]->value->u.builtin == VB_MAKE_KEYWORD;
}

static int check_arity(vctx *c, const sp_node *n) {
    const sp_node *f = n->inputs[0];
    if (f->kind != SP_NODE_CONST || !f->value) return 0;
    int nargs = n->n_inputs - 1, n_kw = 0;
    for (int i = 1; i < n->n_inputs; i++) n_kw += is_keyword_arg(n->inputs[i]);
    const sp_value *v = f->value;
    if (v->kind == SP_V_BUILTIN && v->u.builtin >= 0 && v->u.builtin < VB_COUNT) {
        int want = builtin_arity[v->u.builtin];
        if (want >= 0 && nargs != want)
            return fail(c, n, "builtin.%s takes %d argument%s, %d given", builtin_names[v->u.builtin],
                        want, want == 1 ? "" : "s", nargs);
    } else if (v->kind == SP_V_GRAPH) {
        const sp_graph *h = v->u.graph;
        int npos = nargs - n_kw, required = 0;
        for (int i = 0; i < h->n_params - (h->has_varargs ? 1 : 0); i++)
            required += !(h->defaults && h->defaults[i]);
        int maxpos = h->has_varargs ? -1 : h->n_params;
        if (maxpos >= 0 && npos > maxpos)
            return fail(c, n, "calls @%s with %d positional arguments; it takes %d", gname(h), npos, maxpos);
        if (n_kw == 0 && npos < required)
            return fail(c, n, "calls @%s with %d arguments; it needs at least %d", gname(h), npos, required);
    }
    return 0;
}

/* Checks one use of x by user (NULL: the graph's output) in c->g. */
static int check_use(vctx *c, const sp_node *user, int i, sp_node *x) {
    if (!x) {
        if (!user) return fail(c, NULL, "has no output");
        return fail(c, user, "input %d is NULL", i);
    }
    if (x->kind == SP_NODE_CONST) {
        if (!x->value) return fail(c, user, "input %d is a constant without a value", i);
        return ir_value_graphs(x->value, check_graph_ref, c);
    }
    if (x->graph == c->g) return 0;
    if (!x->graph || !ir_map_get(&c->gidx, IR_PKEY(x->graph)))
        return fail(c, user ? user : x, "uses node %%%d, which belongs to no graph of the module", x->id);
    if (!encloses(x->graph, c->g->parent))
        return fail(c, user ? user : x,
                    "uses node %%%d of graph @%s outside its scope (@%s does not enclose @%s)", x->id,
                    gname(x->graph), gname(x->graph), gname(c->g));
    /* Check the node in its own graph too, even if that graph's output does
     * not reach it. */
    if (ir_map_get(&c->queued, IR_PKEY(x))) return 0;
    int oi = (int)(uintptr_t)ir_map_get(&c->gidx, IR_PKEY(x->graph)) - 1;
    if (ir_map_put(&c->queued, IR_PKEY(x), (void *)1)) return SP_ERR_NOMEM;
    if (c->n_roots[oi] == c->cap_roots[oi]) {
        int cap = c->cap_roots[oi] ? c->cap_roots[oi] * 2 : 8;
        sp_node **p = realloc(c->roots[oi], sizeof *p * (size_t)cap);
        if (!p) return sp_error(SP_ERR_NOMEM, "verify: out of memory");
        c->roots[oi] = p;
        c->cap_roots[oi] = cap;
    }
    c->roots[oi][c->n_roots[oi]++] = x;
    return 0;
}

/* Depth-first from root over the nodes c->g owns; `state` maps node -> 1
 * (on the stack) or 2 (done) across the roots of one graph. */
static int walk(vctx *c, ir_map *state, sp_node *root) {
    if (!root || root->kind == SP_NODE_CONST || root->graph != c->g) return 0;
    if (ir_map_get(state, IR_PKEY(root))) return 0;
    sp_node **stack = NULL;
    int *next = NULL, n = 0, cap = 0, rc = 0;
#define PUSH(x)                                                                            \
    do {                                                                                   \
        if (n == cap) {                                                                    \
            int nc_ = cap ? cap * 2 : 64;                                                  \
            sp_node **s_ = realloc(stack, sizeof *s_ * (size_t)nc_);                       \
            if (s_) stack = s_;                                                            \
            int *x_ = s_ ? realloc(next, sizeof *x_ * (size_t)nc_) : NULL;                 \
            if (!s_ || !x_) {                                                              \
                rc = sp_error(SP_ERR_NOMEM, "verify: out of memory");                      \
                goto done;                                                                 \
            }                                                                              \
            next = x_;                                                                     \
            cap = nc_;                                                                     \
        }                                                                                  \
        stack[n] = (x);                                                                    \
        next[n] = 0;                                                                       \
        n++;                                                                               \
        if ((rc = ir_map_put(state, IR_PKEY(x), (void *)1))) goto done;                   \
    } while (0)
    PUSH(root);
    while (n > 0) {
        sp_node *x = stack[n - 1];
        int i = next[n - 1];
        if (i == 0) { /* first visit */
            if (x->kind == SP_NODE_PARAM) {
                if (ir_map_get(&c->param_of, IR_PKEY(x)) != c->g) {
                    rc = fail(c, x, "is a PARAM owned by @%s but not one of its parameters", gname(c->g));
                    goto done;
                }
            } else if (x->kind == SP_NODE_APPLY) {
                if (x->n_inputs < 1 || !x->inputs) {
                    rc = fail(c, x, "is an apply without a callee");
                    goto done;
                }
                for (int k = 0; k < x->n_inputs; k++)
                    if ((rc = check_use(c, x, k, x->inputs[k]))) goto done;
                if ((rc = check_arity(c, x))) goto done;
            } else {
                rc = fail(c, x, "has a bad kind %d", (int)x->kind);
                goto done;
            }
        }
        if (x->kind == SP_NODE_APPLY && i < x->n_inputs) {
            next[n - 1] = i + 1;
            sp_node *in = x->inputs[i];
            if (in->kind == SP_NODE_CONST || in->graph != c->g) continue;
            uintptr_t st = (uintptr_t)ir_map_get(state, IR_PKEY(in));
            if (st == 1) {
                rc = fail(c, x, "depends on itself through node %%%d (a cycle inside the graph)", in->id);
                goto done;
            }
            if (st == 0) PUSH(in);
        } else {
            if ((rc = ir_map_put(state, IR_PKEY(x), (void *)2))) goto done;
            n--;
        }
    }
#undef PUSH
done:
    free(stack);
    free(next);
    return rc;
}

static int check_graph_shape(vctx *c, const sp_graph *g) {
    const sp_module *m = c->m;
    if (g->module != m) return fail(c, NULL, "belongs to another module");
    int depth = 0;
    for (const sp_graph *p = g->parent; p; p = p->parent) {
        if (++depth > m->n_graphs) return fail(c, NULL, "its chain of parents has a cycle");
        if (!ir_map_get(&c->gidx, IR_PKEY(p)))
            return fail(c, NULL, "its parent @%s is not in the module", gname(p));
    }
    if (g->n_params < 0 || (g->n_params > 0 && !g->params)) return fail(c, NULL, "has a bad parameter list");
    if (g->has_varargs && g->n_params < 1) return fail(c, NULL, "has *args but no parameters");
    for (int j = 0; j < g->n_params; j++) {
        const sp_node *p = g->params[j];
        if (!p) return fail(c, NULL, "parameter %d is NULL", j);
        if (p->kind != SP_NODE_PARAM || p->graph != g)
            return fail(c, p, "is parameter %d of @%s but %s", j, gname(g),
                        p->kind != SP_NODE_PARAM ? "not a PARAM node" : "owned by another graph");
        if (ir_map_get(&c->param_of, IR_PKEY(p))) return fail(c, p, "is listed twice as a parameter");
        if (ir_map_put(&c->param_of, IR_PKEY(p), (void *)g)) return SP_ERR_NOMEM;
    }
    if (!g->output) return fail(c, NULL, "has no output");
    return 0;
}

static int verify_globals(vctx *c) {
    const sp_module *m = c->m;
    c->g = NULL;
    for (int i = 0; i < m->n_globals; i++) {
        const sp_value *v = m->global_values[i];
        if (!m->global_names[i] || !v)
            return sp_error(SP_ERR_INTERNAL, "verify: global %d has no %s", i, v ? "name" : "value");
        if (v->kind == SP_V_GRAPH) {
            if (!ir_map_get(&c->gidx, IR_PKEY(v->u.graph)))
                return sp_error(SP_ERR_INTERNAL, "verify: global '%s' is graph @%s, not in the module",
                                m->global_names[i], gname(v->u.graph));
            if (v->u.graph->parent)
                return sp_error(SP_ERR_INTERNAL,
                                "verify: global '%s' is graph @%s, which is nested in @%s",
                                m->global_names[i], gname(v->u.graph), gname(v->u.graph->parent));
        }
    }
    return 0;
}

sp_status sp_module_verify(const sp_module *m) {
    if (!m) return sp_error(SP_ERR_ARG, "verify: NULL module");
    vctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    int ng = m->n_graphs, rc = 0;
    ir_map *state = calloc((size_t)ng + 1, sizeof *state);
    int *pos = calloc((size_t)ng + 1, sizeof *pos);
    c.roots = calloc((size_t)ng + 1, sizeof *c.roots);
    c.n_roots = calloc((size_t)ng + 1, sizeof *c.n_roots);
    c.cap_roots = calloc((size_t)ng + 1, sizeof *c.cap_roots);
    if (!state || !pos || !c.roots || !c.n_roots || !c.cap_roots) {
        rc = sp_error(SP_ERR_NOMEM, "verify: out of memory");
        goto done;
    }
    for (int i = 0; i < ng; i++) {
        if (!m->graphs[i]) {
            rc = sp_error(SP_ERR_INTERNAL, "verify: graph %d of the module is NULL", i);
            goto done;
        }
        if ((rc = ir_map_put(&c.gidx, IR_PKEY(m->graphs[i]), (void *)(uintptr_t)(i + 1)))) goto done;
    }
    for (int i = 0; i < ng && !rc; i++) {
        c.g = m->graphs[i];
        rc = check_graph_shape(&c, c.g);
    }
    for (int i = 0; i < ng && !rc; i++) {
        c.g = m->graphs[i];
        if (!(rc = check_use(&c, NULL, 0, c.g->output))) rc = walk(&c, &state[i], c.g->output);
        for (int j = 0; j < c.g->n_params && !rc; j++)
            if (c.g->defaults && c.g->defaults[j]) rc = ir_value_graphs(c.g->defaults[j], check_graph_ref, &c);
    }
    /* Nodes only other graphs use, until no graph has one left. */
    for (int progress = 1; progress && !rc;) {
        progress = 0;
        for (int i = 0; i < ng && !rc; i++) {
            c.g = m->graphs[i];
            while (!rc && pos[i] < c.n_roots[i]) {
                progress = 1;
                rc = walk(&c, &state[i], c.roots[i][pos[i]++]);
            }
        }
    }
    if (!rc) rc = verify_globals(&c);
done:
    for (int i = 0; i < ng; i++) {
        if (state) ir_map_free(&state[i]);
        if (c.roots) free(c.roots[i]);
    }
    free(state);
    free(pos);
    free(c.roots);
    free(c.n_roots);
    free(c.cap_roots);
    ir_map_free(&c.gidx);
    ir_map_free(&c.param_of);
    ir_map_free(&c.queued);
    return (sp_status)rc;
}
