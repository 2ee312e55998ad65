/*
 * ir.c -- building the functional IR: modules, their arena, interned names,
 * graphs, nodes, globals, and the free-variable analysis.
 *
 * Memory.  A module owns an arena of large chunks; graphs, nodes, input
 * arrays and interned strings are carved out of it and die together with
 * the module, so passes may drop nodes without freeing them.  What the
 * arena cannot own are references: constant nodes hold a reference to their
 * value and graphs to their default values; the arena keeps a list of every
 * constant node so sp_module_free can release what each one holds at the
 * end.  Arrays that grow (a graph's params, the module's graph and global
 * tables, free-variable lists) keep a capacity of the next power of two
 * above their length, so the length alone says when to grow.
 *
 * Free variables.  A graph g uses a node x it does not own when x belongs to
 * an enclosing graph; g then needs x's value when its closure is made.  It
 * also needs, transitively, the free variables of every graph it refers to
 * as a constant (a branch of a switch, a continuation, a nested def), minus
 * the nodes g owns itself: a closure over a grandchild must be buildable
 * from the child's own closure.  ir_module_finalize computes this as a
 * fixed point (graphs refer to each other in cycles: loops, recursion),
 * growing each list monotonically in discovery order (depth-first from
 * g's output, a use of a node or of a graph's needs appended when met;
 * graphs visited last to first, repeatedly until nothing changes), so the
 * order is a function of the graphs and their order in the module alone:
 * stable from run to run and across a print/parse round trip (the parser
 * keeps the printed order).
 *
 * The walks here are iterative (an explicit stack): a graph built from
 * straight-line code can be a chain of a hundred thousand nodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir_internal.h"

/* ---- hash map --------------------------------------------------------- */

static size_t map_slot(uint64_t key, size_t cap) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (size_t)key & (cap - 1);
}

void *ir_map_get(const ir_map *m, uint64_t key) {
    if (!m->cap) return NULL;
    for (size_t i = map_slot(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key) return m->vals[i];
        if (m->keys[i] == 0) return NULL;
    }
}

sp_status ir_map_put(ir_map *m, uint64_t key, void *val) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        uint64_t *keys = calloc(cap, sizeof *keys);
        void **vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            return sp_error(SP_ERR_NOMEM, "out of memory growing an IR table");
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t j = map_slot(m->keys[i], cap);
            while (keys[j]) j = (j + 1) & (cap - 1);
            keys[j] = m->keys[i];
            vals[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = keys;
        m->vals = vals;
        m->cap = cap;
    }
    size_t i = map_slot(key, m->cap);
    while (m->keys[i] && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
    return SP_OK;
}

void ir_map_free(ir_map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- arena ------------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct ir_arena {
    arena_chunk *chunks;
    /* interned strings: open addressing on FNV-1a, NULL = empty */
    const char **strs;
    size_t n_strs, cap_strs;
    /* every constant node, to release its value */
    sp_node **consts;
    int n_consts, cap_consts;
    int cap_graphs, cap_globals;
};

#define ARENA_CHUNK (64 * 1024)

void *ir_alloc(sp_module *m, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    arena_chunk *c = m->arena->chunks;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        c = malloc(sizeof *c + cap);
        if (!c) {
            sp_error(SP_ERR_NOMEM, "out of memory in the IR arena (%zu bytes)", n);
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        if (cap == n && m->arena->chunks) { /* a big block: keep the current chunk on top */
            c->next = m->arena->chunks->next;
            m->arena->chunks->next = c;
        } else {
            c->next = m->arena->chunks;
            m->arena->chunks = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

const char *ir_intern(sp_module *m, const char *s) {
    if (!s) return NULL;
    struct ir_arena *a = m->arena;
    if ((a->n_strs + 1) * 2 > a->cap_strs) {
        size_t cap = a->cap_strs ? a->cap_strs * 2 : 256;
        const char **t = calloc(cap, sizeof *t);
        if (!t) {
            sp_error(SP_ERR_NOMEM, "out of memory interning a name");
            return NULL;
        }
        for (size_t i = 0; i < a->cap_strs; i++) {
            if (!a->strs[i]) continue;
            size_t j = (size_t)str_hash(a->strs[i]) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = a->strs[i];
        }
        free(a->strs);
        a->strs = t;
        a->cap_strs = cap;
    }
    size_t i = (size_t)str_hash(s) & (a->cap_strs - 1);
    for (; a->strs[i]; i = (i + 1) & (a->cap_strs - 1))
        if (a->strs[i] == s || strcmp(a->strs[i], s) == 0) return a->strs[i];
    size_t len = strlen(s);
    char *p = ir_alloc(m, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len + 1);
    a->strs[i] = p;
    a->n_strs++;
    return p;
}

/* Grows a malloc'd array of `size`-byte items whose capacity is tracked in
 * *cap to hold n + 1; 0 or -1 (+ error). */
static int grow(void **arr, int *cap, int n, size_t size) {
    if (n < *cap) return 0;
    int nc = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, size * (size_t)nc);
    if (!p) {
        sp_error(SP_ERR_NOMEM, "out of memory growing an IR table");
        return -1;
    }
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- modules ----------------------------------------------------------- */

sp_module *sp_module_new(const char *file, const char *source) {
    sp_module *m = calloc(1, sizeof *m);
    if (!m) goto nomem;
    m->arena = calloc(1, sizeof *m->arena);
    if (!m->arena) goto nomem;
    m->next_id = 1;
    m->file = ir_intern(m, file ? file : "<unknown>");
    if (!m->file) goto fail;
    if (source) {
        size_t len = strlen(source);
        m->source = malloc(len + 1);
        if (!m->source) goto nomem;
        memcpy(m->source, source, len + 1);
    }
    return m;
nomem:
    sp_error(SP_ERR_NOMEM, "out of memory creating a module");
fail:
    sp_module_free(m);
    return NULL;
}

void sp_module_free(sp_module *m) {
    if (!m) return;
    struct ir_arena *a = m->arena;
    if (a) {
        for (int i = 0; i < a->n_consts; i++) {
            sp_value_release(a->consts[i]->value);
            a->consts[i]->value = NULL;
        }
        free(a->consts);
    }
    for (int i = 0; i < m->n_graphs; i++) {
        sp_graph *g = m->graphs[i];
        if (g->defaults)
            for (int j = 0; j < g->n_params; j++) sp_value_release(g->defaults[j]);
        free(g->fv);
    }
    for (int i = 0; i < m->n_globals; i++) sp_value_release(m->global_values[i]);
    free(m->global_names);
    free(m->global_values);
    free(m->graphs);
    free(m->source);
    if (a) {
        free(a->strs);
        for (arena_chunk *c = a->chunks, *next; c; c = next) {
            next = c->next;
            free(c);
        }
        free(a);
    }
    free(m);
}

sp_status ir_module_set_global(sp_module *m, const char *name, sp_value *v) {
    if (!m || !name || !v) return sp_error(SP_ERR_ARG, "set_global: NULL argument");
    for (int i = 0; i < m->n_globals; i++)
        if (strcmp(m->global_names[i], name) == 0) {
            sp_value_retain(v);
            sp_value_release(m->global_values[i]);
            m->global_values[i] = v;
            return SP_OK;
        }
    const char *iname = ir_intern(m, name);
    if (!iname) return sp_last_status();
    int cap = m->arena->cap_globals, cap2 = cap;
    if (grow((void **)&m->global_names, &cap, m->n_globals, sizeof *m->global_names) ||
        grow((void **)&m->global_values, &cap2, m->n_globals, sizeof *m->global_values))
        return SP_ERR_NOMEM;
    m->arena->cap_globals = cap < cap2 ? cap : cap2;
    sp_value_retain(v);
    m->global_names[m->n_globals] = iname;
    m->global_values[m->n_globals] = v;
    m->n_globals++;
    return SP_OK;
}

sp_value *ir_module_get_global(const sp_module *m, const char *name) {
    if (!m || !name) return NULL;
    for (int i = 0; i < m->n_globals; i++)
        if (strcmp(m->global_names[i], name) == 0) return m->global_values[i];
    return NULL;
}

/* ---- graphs and nodes -------------------------------------------------- */

static sp_loc fix_loc(sp_module *m, sp_loc loc) {
    loc.file = loc.file ? ir_intern(m, loc.file) : m->file;
    if (!loc.file) loc.file = m->file;
    if (loc.line < 0) loc.line = 0;
    if (loc.col < 0) loc.col = 0;
    return loc;
}

sp_graph *ir_graph_new(sp_module *m, const char *name, sp_graph *parent, sp_loc loc) {
    if (!m) {
        sp_error(SP_ERR_ARG, "graph_new: NULL module");
        return NULL;
    }
    sp_graph *g = ir_alloc(m, sizeof *g);
    if (!g) return NULL;
    g->name = ir_intern(m, name ? name : "_");
    if (!g->name) return NULL;
    int cap = m->arena->cap_graphs;
    if (grow((void **)&m->graphs, &cap, m->n_graphs, sizeof *m->graphs)) return NULL;
    m->arena->cap_graphs = cap;
    g->parent = parent;
    g->module = m;
    g->loc = fix_loc(m, loc);
    m->graphs[m->n_graphs++] = g;
    g->id = m->n_graphs;
    return g;
}

static int is_pow2_or_zero(int n) { return (n & (n - 1)) == 0; }

sp_status ir_graph_push_param(sp_graph *g, sp_node *p, const char *name) {
    sp_module *m = g->module;
    int n = g->n_params;
    if (is_pow2_or_zero(n)) { /* at capacity: the arrays hold exactly a power of two */
        int cap = n ? n * 2 : 4;
        sp_node **params = ir_alloc(m, sizeof *params * (size_t)cap);
        const char **names = ir_alloc(m, sizeof *names * (size_t)cap);
        sp_value **defs = ir_alloc(m, sizeof *defs * (size_t)cap);
        if (!params || !names || !defs) return SP_ERR_NOMEM;
        if (n) {
            memcpy(params, g->params, sizeof *params * (size_t)n);
            if (g->param_names) memcpy(names, g->param_names, sizeof *names * (size_t)n);
            if (g->defaults) memcpy(defs, g->defaults, sizeof *defs * (size_t)n);
        }
        g->params = params;
        g->param_names = names;
        g->defaults = defs;
    }
    p->kind = SP_NODE_PARAM;
    p->graph = g;
    g->params[n] = p;
    g->param_names[n] = name ? ir_intern(m, name) : NULL;
    g->defaults[n] = NULL;
    g->n_params = n + 1;
    return SP_OK;
}

static sp_node *node_new(sp_module *m, sp_node_kind kind, sp_graph *g, sp_loc loc) {
    sp_node *n = ir_alloc(m, sizeof *n);
    if (!n) return NULL;
    n->kind = kind;
    n->graph = g;
    n->id = m->next_id++;
    n->loc = fix_loc(m, loc);
    return n;
}

sp_node *ir_node_placeholder(sp_module *m, int id) {
    sp_node *n = ir_alloc(m, sizeof *n);
    if (!n) return NULL;
    n->kind = SP_NODE_APPLY;
    n->id = id;
    n->loc.file = m->file;
    if (id >= m->next_id) m->next_id = id + 1;
    return n;
}

sp_node *ir_param_new(sp_graph *g, const char *name, sp_loc loc) {
    if (!g) {
        sp_error(SP_ERR_ARG, "param_new: NULL graph");
        return NULL;
    }
    sp_node *p = node_new(g->module, SP_NODE_PARAM, g, loc);
    if (!p) return NULL;
    p->name = ir_intern(g->module, name);
    if (ir_graph_push_param(g, p, name) != SP_OK) return NULL;
    return p;
}

sp_status ir_node_make_const(sp_module *m, sp_node *p, sp_value *v) {
    struct ir_arena *a = m->arena;
    if (grow((void **)&a->consts, &a->cap_consts, a->n_consts, sizeof *a->consts))
        return SP_ERR_NOMEM;
    sp_value_retain(v);
    p->kind = SP_NODE_CONST;
    p->value = v;
    a->consts[a->n_consts++] = p;
    return SP_OK;
}

sp_node *ir_const_new(sp_graph *g, sp_value *v, sp_loc loc) {
    if (!g || !v) {
        sp_error(SP_ERR_ARG, "const_new: NULL %s", g ? "value" : "graph");
        return NULL;
    }
    sp_node *c = node_new(g->module, SP_NODE_CONST, g, loc);
    if (!c || ir_node_make_const(g->module, c, v) != SP_OK) return NULL;
    return c;
}

sp_node *ir_apply_new(sp_graph *g, int n, sp_node *const *inputs, sp_loc loc) {
    if (!g || n < 1 || !inputs) {
        sp_error(SP_ERR_ARG, "apply_new: %s", !g ? "NULL graph" : "an apply needs a callee");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!inputs[i]) {
            sp_error(SP_ERR_ARG, "apply_new: input %d is NULL (graph @%s)", i, g->name);
            return NULL;
        }
    sp_node *a = node_new(g->module, SP_NODE_APPLY, g, loc);
    if (!a) return NULL;
    a->inputs = ir_alloc(g->module, sizeof *a->inputs * (size_t)n);
    if (!a->inputs) return NULL;
    memcpy(a->inputs, inputs, sizeof *inputs * (size_t)n);
    a->n_inputs = n;
    return a;
}

void ir_module_reorder(sp_module *m, sp_graph **order) {
    for (int i = 0; i < m->n_graphs; i++) {
        m->graphs[i] = order[i];
        order[i]->id = i + 1;
    }
}

/* ---- walks ------------------------------------------------------------- */

static int value_graphs(const sp_value *v, int (*fn)(void *, sp_graph *), void *ctx, int depth) {
    if (!v || depth > 64) return 0;
    int r = 0;
    switch (v->kind) {
    case SP_V_GRAPH: return fn(ctx, v->u.graph);
    case SP_V_TUPLE:
    case SP_V_LIST:
        for (int i = 0; i < v->u.seq.n && !r; i++) r = value_graphs(v->u.seq.items[i], fn, ctx, depth + 1);
        return r;
    case SP_V_PARTIAL:
        r = value_graphs(v->u.partial.fn, fn, ctx, depth + 1);
        for (int i = 0; i < v->u.partial.n && !r; i++)
            r = value_graphs(v->u.partial.args[i], fn, ctx, depth + 1);
        return r;
    case SP_V_KEYWORD: return value_graphs(v->u.kw.value, fn, ctx, depth + 1);
    default: return 0; /* a closure carries its free variables already */
    }
}

int ir_value_graphs(const sp_value *v, int (*fn)(void *ctx, sp_graph *g), void *ctx) {
    return value_graphs(v, fn, ctx, 0);
}

void ir_walk_init(ir_walk *w, const sp_graph *g, void *ctx) {
    memset(w, 0, sizeof *w);
    w->g = g;
    w->ctx = ctx;
}

void ir_walk_free(ir_walk *w) {
    ir_map_free(&w->seen);
    free(w->stack);
    free(w->next);
    memset(w, 0, sizeof *w);
}

static int walk_push(ir_walk *w, sp_node *n) {
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 64;
        sp_node **s = realloc(w->stack, sizeof *s * (size_t)cap);
        if (!s) return sp_error(SP_ERR_NOMEM, "out of memory walking a graph");
        w->stack = s;
        int *x = realloc(w->next, sizeof *x * (size_t)cap);
        if (!x) return sp_error(SP_ERR_NOMEM, "out of memory walking a graph");
        w->next = x;
        w->cap = cap;
    }
    w->stack[w->n] = n;
    w->next[w->n] = 0;
    w->n++;
    return ir_map_put(&w->seen, IR_PKEY(n), (void *)1);
}

static int walk_input(ir_walk *w, sp_node *user, sp_node *x);

/* A graph named by a constant input: its needs are the user's inputs. */
static int walk_graph_needs(void *ctx, sp_graph *h) {
    ir_walk *w = ctx;
    int n = 0;
    sp_node **fv = w->graph_fv ? w->graph_fv(w->ctx, h, &n) : NULL;
    for (int i = 0; i < n; i++) {
        int r = walk_input(w, w->user, fv[i]);
        if (r) return r;
    }
    return 0;
}

/* Dispatches input x of user (NULL for a root). */
static int walk_input(ir_walk *w, sp_node *user, sp_node *x) {
    if (!x) return w->on_free ? w->on_free(w->ctx, user, x) : 0;
    if (x->kind == SP_NODE_CONST) {
        if (!x->value) return 0;
        sp_node *saved = w->user;
        w->user = user;
        int r = ir_value_graphs(x->value, walk_graph_needs, w);
        w->user = saved;
        return r;
    }
    if (x->graph != w->g) return w->on_free ? w->on_free(w->ctx, user, x) : 0;
    if (ir_map_get(&w->seen, IR_PKEY(x))) return 0;
    return walk_push(w, x);
}

int ir_walk_from(ir_walk *w, sp_node *root) {
    int r = walk_input(w, NULL, root);
    while (!r && w->n > 0) {
        sp_node *n = w->stack[w->n - 1];
        int i = w->next[w->n - 1];
        if (n->kind == SP_NODE_APPLY && i < n->n_inputs && n->inputs) {
            w->next[w->n - 1] = i + 1;
            r = walk_input(w, n, n->inputs[i]);
        } else {
            w->n--;
            if (w->on_node) r = w->on_node(w->ctx, n);
        }
    }
    w->n = 0;
    return r;
}

/* ---- free variables ---------------------------------------------------- */

typedef struct fv_ctx {
    const sp_module *m;
    const sp_graph *g;
    int gi;
    ir_map gidx;    /* graph -> index + 1 */
    ir_map *member; /* per graph: node -> 1 when in its list */
    int *n, *cap;   /* per graph: length and capacity of fv[] */
    sp_node ***fv;
    int changed;
    /* Skipping walks that cannot add anything: clock counts additions,
     * grew[h] is the clock at h's last addition, walked[g] the clock when
     * g's last walk began (-1: never), and deps[g] (n_deps, cap_deps) the
     * graphs whose lists that walk read (mark[h] == g + 1 dedups). */
    long clock;
    long *grew, *walked;
    int **deps, *n_deps, *cap_deps, *mark;
} fv_ctx;

static int encloses(const sp_graph *outer, const sp_graph *g) {
    for (int depth = 0; g && depth < 1000000; g = g->parent, depth++)
        if (g == outer) return 1;
    return 0;
}

static int fv_add(void *ctx, sp_node *user, sp_node *x) {
    fv_ctx *c = ctx;
    const sp_graph *g = c->g;
    int gi = c->gi;
    if (!x)
        return sp_error(SP_ERR_INTERNAL, "finalize: graph @%s: node %%%d has a NULL input", g->name,
                        user ? user->id : 0);
    if (!x->graph || x->graph == g || !encloses(x->graph, g->parent))
        return sp_error(SP_ERR_INTERNAL,
                        "finalize: graph @%s uses node %%%d of graph @%s, which does not enclose it",
                        g->name, x->id, x->graph ? x->graph->name : "(none)");
    if (ir_map_get(&c->member[gi], IR_PKEY(x))) return 0;
    if (ir_map_put(&c->member[gi], IR_PKEY(x), (void *)1)) return SP_ERR_NOMEM;
    if (c->n[gi] == c->cap[gi]) {
        int cap = c->cap[gi] ? c->cap[gi] * 2 : 4;
        sp_node **p = realloc(c->fv[gi], sizeof *p * (size_t)cap);
        if (!p) return sp_error(SP_ERR_NOMEM, "out of memory listing free variables");
        c->fv[gi] = p;
        c->cap[gi] = cap;
    }
    c->fv[gi][c->n[gi]++] = x;
    c->changed = 1;
    c->grew[gi] = ++c->clock;
    return 0;
}

static sp_node **fv_of(void *ctx, const sp_graph *h, int *n) {
    fv_ctx *c = ctx;
    int hi = (int)(uintptr_t)ir_map_get(&c->gidx, IR_PKEY(h)) - 1;
    if (hi >= 0 && c->mark[hi] != c->gi + 1) { /* a dependency of this walk */
        int gi = c->gi;
        if (c->n_deps[gi] == c->cap_deps[gi]) {
            int cap = c->cap_deps[gi] ? c->cap_deps[gi] * 2 : 4;
            int *p = realloc(c->deps[gi], sizeof *p * (size_t)cap);
            if (!p) { /* cannot record it: this graph is walked every round */
                c->walked[gi] = -1;
            } else {
                c->deps[gi] = p;
                c->cap_deps[gi] = cap;
            }
        }
        if (c->n_deps[gi] < c->cap_deps[gi]) {
            c->deps[gi][c->n_deps[gi]++] = hi;
            c->mark[hi] = gi + 1;
        }
    }
    *n = hi >= 0 ? c->n[hi] : 0;
    return hi >= 0 ? c->fv[hi] : NULL;
}

void ir_fv_free(const sp_module *m, int *n, sp_node ***fv) {
    for (int i = 0; fv && i < m->n_graphs; i++) free(fv[i]);
    free(fv);
    free(n);
}

sp_status ir_fv_compute(const sp_module *m, int **n_out, sp_node ****fv_out) {
    fv_ctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    int ng = m->n_graphs;
    size_t cnt = (size_t)ng + 1;
    c.member = calloc(cnt, sizeof *c.member);
    c.n = calloc(cnt, sizeof *c.n);
    c.cap = calloc(cnt, sizeof *c.cap);
    c.fv = calloc(cnt, sizeof *c.fv);
    c.grew = calloc(cnt, sizeof *c.grew);
    c.walked = calloc(cnt, sizeof *c.walked);
    c.deps = calloc(cnt, sizeof *c.deps);
    c.n_deps = calloc(cnt, sizeof *c.n_deps);
    c.cap_deps = calloc(cnt, sizeof *c.cap_deps);
    c.mark = calloc(cnt, sizeof *c.mark);
    sp_status st = SP_OK;
    if (!c.member || !c.n || !c.cap || !c.fv || !c.grew || !c.walked || !c.deps || !c.n_deps || !c.cap_deps ||
        !c.mark) {
        st = sp_error(SP_ERR_NOMEM, "out of memory computing free variables");
        goto done;
    }
    for (int i = 0; i < ng && !st; i++) st = ir_map_put(&c.gidx, IR_PKEY(m->graphs[i]), (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < ng; i++) c.walked[i] = -1;
    /* Graphs usually refer to graphs created after them (branches,
     * continuations, loop bodies, nested defs), so walking the module
     * backwards settles most lists in the first pass.  A walk is
     * deterministic given the lists it reads, so one whose lists have not
     * grown since its last walk began would add nothing: it is skipped,
     * which leaves every list exactly as walking it would. */
    do {
        c.changed = 0;
        for (int i = ng - 1; i >= 0 && !st; i--) {
            if (c.walked[i] >= 0) {
                int stale = 0;
                for (int d = 0; d < c.n_deps[i] && !stale; d++) stale = c.grew[c.deps[i][d]] > c.walked[i];
                if (!stale) continue;
            }
            ir_walk w;
            c.g = m->graphs[i];
            c.gi = i;
            c.walked[i] = c.clock;
            for (int d = 0; d < c.n_deps[i]; d++) /* forget the last walk's marks */
                if (c.mark[c.deps[i][d]] == i + 1) c.mark[c.deps[i][d]] = 0;
            c.n_deps[i] = 0;
            ir_walk_init(&w, c.g, &c);
            w.on_free = fv_add;
            w.graph_fv = fv_of;
            if (c.g->output) st = ir_walk_from(&w, c.g->output);
            ir_walk_free(&w);
        }
    } while (c.changed && !st);
done:
    for (int i = 0; c.member && i < ng; i++) ir_map_free(&c.member[i]);
    for (int i = 0; c.deps && i < ng; i++) free(c.deps[i]);
    free(c.deps);
    free(c.n_deps);
    free(c.cap_deps);
    free(c.mark);
    free(c.grew);
    free(c.walked);
    free(c.member);
    free(c.cap);
    ir_map_free(&c.gidx);
    if (st) {
        ir_fv_free(m, c.n, c.fv);
        *n_out = NULL;
        *fv_out = NULL;
        return st;
    }
    *n_out = c.n;
    *fv_out = c.fv;
    return SP_OK;
}

sp_status ir_module_finalize(sp_module *m) {
    if (!m) return sp_error(SP_ERR_ARG, "finalize: NULL module");
    int *n;
    sp_node ***fv;
    sp_status st = ir_fv_compute(m, &n, &fv);
    if (st) return st;
    for (int i = 0; i < m->n_graphs; i++) {
        sp_graph *g = m->graphs[i];
        free(g->fv);
        g->fv = fv[i];
        g->n_fv = n[i];
        fv[i] = NULL;
    }
    ir_fv_free(m, n, fv);
    return SP_OK;
}

/* ---- evaluation order -------------------------------------------------- */

typedef struct order_ctx {
    sp_node **out;
    int n, cap;
} order_ctx;

static int order_on_node(void *ctx, sp_node *n) {
    order_ctx *c = ctx;
    if (n->kind == SP_NODE_PARAM) return 0;
    if (grow((void **)&c->out, &c->cap, c->n, sizeof *c->out)) return SP_ERR_NOMEM;
    c->out[c->n++] = n;
    return 0;
}

static sp_node **graph_own_fv(void *ctx, const sp_graph *h, int *n) {
    (void)ctx;
    *n = h->n_fv;
    return h->fv;
}

sp_node **ir_graph_nodes(const sp_graph *g, int *n) {
    *n = 0;
    if (!g) {
        sp_error(SP_ERR_ARG, "graph_nodes: NULL graph");
        return NULL;
    }
    order_ctx c;
    memset(&c, 0, sizeof c);
    ir_walk w;
    ir_walk_init(&w, g, &c);
    w.on_node = order_on_node;
    w.graph_fv = graph_own_fv;
    int st = g->output ? ir_walk_from(&w, g->output) : 0;
    ir_walk_free(&w);
    if (!st && !c.out) {
        c.out = malloc(sizeof *c.out);
        if (!c.out) st = sp_error(SP_ERR_NOMEM, "out of memory in graph_nodes");
    }
    if (st) {
        free(c.out);
        return NULL;
    }
    *n = c.n;
    return c.out;
}
