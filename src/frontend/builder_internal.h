/*
 * builder_internal.h -- what the builder's files share: builder.c
 * (statements, expressions, names, functions, the module) and
 * builder_call.c (calls: plain, keyword and star calls, the static check
 * of a call against its callee; list comprehensions).
 *
 * The state of a build is a `builder` (the module, the resolver, one
 * scratch arena for everything below, the static calls to check at the
 * end), a `fnctx` per function being built (its locals, its loops, its
 * enclosing function) and a `cursor` (the graph being filled, the
 * environment of source names to nodes, the pending effect roots).  All
 * of it lives in the arena, so nothing here is freed one by one and an
 * error path has nothing to release.
 *
 * The node helpers are static inline: they are a line or two each and
 * both files use them in nearly every statement.
 */
#ifndef SPORE_FRONTEND_BUILDER_INTERNAL_H
#define SPORE_FRONTEND_BUILDER_INTERNAL_H

#include <string.h>

#include "frontend/frontend.h"
#include "frontend/lexer.h"

enum {
#define SP_BUILTIN(ID, name, n) B_##ID,
#include "ir/builtins.def"
#undef SP_BUILTIN
    B_COUNT
};


typedef struct names {
    int n, cap;
    const char **v;
} names;

typedef struct env {
    int n, cap;
    const char **names;
    sp_node **nodes;
} env;

typedef struct cursor {
    sp_graph *g;
    env env;
    int n_eff, cap_eff;
    sp_node **eff;
} cursor;

typedef struct loopctx {
    struct loopctx *outer;
    sp_graph *head, *after;
    names vars;
} loopctx;

typedef struct fnctx {
    struct fnctx *outer;
    const env *outer_env; /* the enclosing function's environment at the def */
    names locals;
    const char *qname;    /* "f", "f.g": prefix of the names of its graphs */
    loopctx *loop;
} fnctx;

typedef struct callsite {
    sp_node *call;
    const fe_expr *e;
} callsite;

typedef struct builder {
    sp_module *m;
    const sp_resolver *resolver;
    fe_arena scratch;
    callsite *calls; /* static calls of graphs and builtins, checked at the end */
    int n_calls, cap_calls;
} builder;

/* ---- node helpers (every one returns NULL when an input is NULL or on error) ---- */

static inline void *salloc(builder *b, size_t n) { return fe_arena_alloc(&b->scratch, n); }

/* A constant node; steals the reference to v (NULL v: the error is set). */
static inline sp_node *konst(sp_graph *g, sp_value *v, sp_loc loc) {
    if (!v) return NULL;
    sp_node *n = ir_const_new(g, v, loc);
    sp_value_release(v);
    return n;
}

static inline sp_node *kbuiltin(sp_graph *g, int id, sp_loc loc) { return konst(g, sp_value_builtin(id), loc); }
static inline sp_node *kgraph(sp_graph *g, sp_graph *callee, sp_loc loc) {
    return konst(g, sp_value_graph(callee), loc);
}
/* builtin.<id>(args...) in g. */
static inline sp_node *call_builtin(sp_graph *g, int id, sp_loc loc, int n, sp_node *const *args) {
    sp_node *in[8];
    if (n > 7) return NULL;
    for (int i = 0; i < n; i++)
        if (!args[i]) return NULL;
    in[0] = kbuiltin(g, id, loc);
    if (!in[0]) return NULL;
    for (int i = 0; i < n; i++) in[i + 1] = args[i];
    return ir_apply_new(g, n + 1, in, loc);
}
static inline sp_node *call1(sp_graph *g, int id, sp_loc loc, sp_node *a) {
    return call_builtin(g, id, loc, 1, &a);
}
static inline sp_node *call2(sp_graph *g, int id, sp_loc loc, sp_node *a, sp_node *x) {
    sp_node *in[2] = {a, x};
    return call_builtin(g, id, loc, 2, in);
}
static inline sp_node *call3(sp_graph *g, int id, sp_loc loc, sp_node *a, sp_node *x, sp_node *y) {
    sp_node *in[3] = {a, x, y};
    return call_builtin(g, id, loc, 3, in);
}

/* A call of a node with no arguments (a thunk from switch). */
static inline sp_node *call0(sp_graph *g, sp_node *fn, sp_loc loc) {
    return fn ? ir_apply_new(g, 1, &fn, loc) : NULL;
}

/* ---- builder.c ------------------------------------------------------------------ */

/* Adds name to s once (arena memory); 0 when out of memory. */
int fe_names_add(builder *b, names *s, const char *name);
/* The node e binds name to, or NULL. */
sp_node *fe_env_get(const env *e, const char *name);
/* Binds (or rebinds) name in e; 0 when out of memory. */
int fe_env_set(builder *b, env *e, const char *name, sp_node *node);
/* An empty cursor on g with a copy of `from` (NULL: empty); 0 when out of memory. */
int fe_cursor_init(builder *b, cursor *c, sp_graph *g, const env *from);
/* A new graph named "<fn's qname>.<what>", child of parent; NULL + error. */
sp_graph *fe_new_graph(builder *b, fnctx *fn, const char *what, sp_graph *parent, sp_loc loc);
/* Adds the names an assignment target t binds to s (*ok = 0 when out of memory). */
void fe_collect_targets(builder *b, names *s, const fe_expr *t, int *ok);
/* A name for a hidden variable (loop counters, accumulators) that no
 * source variable can have; NULL when out of memory. */
const char *fe_hidden_name(builder *b, const char *what);
/* The Python name of builtin id when a program may name it ("len"), or NULL. */
const char *fe_builtin_name(int id);
/* The node of expression e in c (appending its nodes to c's graph); NULL + error. */
sp_node *fe_build_expr(builder *b, fnctx *fn, cursor *c, const fe_expr *e);
/* A while or for statement s in c: 1 falls through (c is now the loop's
 * continuation), 0 ended by a transfer, -1 error. */
int fe_build_loop(builder *b, fnctx *fn, cursor *c, const fe_stmt *s);

/* ---- builder_call.c ------------------------------------------------------------- */

/* The call expression e in c: f(args, k=v) as an apply, f(*xs) through
 * call_star; a call of a constant graph or builtin is remembered for
 * fe_check_call.  NULL + error. */
sp_node *fe_build_call(builder *b, fnctx *fn, cursor *c, const fe_expr *e);
/* Checks a remembered static call against its callee's parameters (graphs
 * are complete by then): SP_OK or a TypeError at the call. */
sp_status fe_check_call(builder *b, const callsite *cs);
/* The list comprehension e in c, as a loop in a graph of its own called in
 * place.  NULL + error. */
sp_node *fe_build_listcomp(builder *b, fnctx *fn, cursor *c, const fe_expr *e);

#endif
