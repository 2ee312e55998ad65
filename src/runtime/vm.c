/*
 * vm.c -- runs IR: frames, calls, closures and proper tail calls.
 *
 * A graph runs from a *plan* made the first time the graph is called in a
 * run: the nodes it owns in an order where every node comes after what it
 * needs, each with a frame slot, and each input resolved once to where its
 * value lives -- a slot of the frame (params first), an entry of the
 * closure's free-variable array, a constant, or a closure to build.  The
 * order is a depth-first post-order from the output, where a node needs
 * its inputs and also, for every graph constant among its inputs, the
 * nodes of this graph that the constant's closure captures: a loop header
 * called in tail position captures values computed beside the call, and
 * those must exist before the closure is made.  Among the orders that
 * respect those dependencies the plan takes the order the nodes were
 * created in when it is one (source_order): the front end creates nodes in
 * source order, so `x = f(); print(1)` calls f first and a random draw
 * assigned after spore.set_seed(n) sees the new seed, as in Python.
 *
 * Closures.  A graph constant whose graph has free variables is, when
 * evaluated, a closure of that graph over the current values of those
 * nodes: each is either a node of this frame or one of this graph's own
 * free variables (ir_module_finalize makes free variables transitive, so
 * that always holds).  Values are captured, not frames, so nothing keeps a
 * finished frame alive and a loop does not build a chain of environments.
 *
 * Tail calls.  When a graph's output is an apply of its own, the callee and
 * arguments are evaluated, the frame is released, and the loop in
 * vm_invoke continues with the callee: if/else (switch(...)() in tail
 * position) and while loops (a header graph calling itself) run in constant
 * C stack.  Only calls in other positions nest; they count against a depth
 * limit (VM_MAX_DEPTH) that reports "maximum recursion depth exceeded" at
 * the call instead of overflowing the C stack.
 *
 * Errors.  Builtins, primitives and the argument binder set a message
 * without a location; the node being evaluated adds file:line:col and the
 * caret line (sp_error_at) once -- `located` keeps the outer frames that
 * the error passes through from wrapping it again.  Every path releases
 * what it holds, so a failing program leaks nothing.
 *
 * Plans live in a per-run cache (a hash map from graph to plan) that the
 * outermost sp_vm_call frees when it returns; a builtin that calls back
 * into the VM (rt_call) reuses it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "runtime/rt.h"

#define VM_MAX_DEPTH 1000

/* ---- pointer map (open addressing; key 0 is empty) ------------------------ */

typedef struct vm_map {
    uintptr_t *keys;
    void **vals;
    size_t cap, n;
} vm_map;

static size_t map_hash(uintptr_t k, size_t cap) {
    uint64_t x = (uint64_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static void *map_get(const vm_map *m, const void *key) {
    if (!m->cap) return NULL;
    uintptr_t k = (uintptr_t)key;
    for (size_t i = map_hash(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k) return m->vals[i];
        if (!m->keys[i]) return NULL;
    }
}

static int map_put(vm_map *m, const void *key, void *val) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        uintptr_t *keys = calloc(cap, sizeof *keys);
        void **vals = calloc(cap, sizeof *vals);
        if (!keys || !vals) {
            free(keys);
            free(vals);
            sp_error(SP_ERR_NOMEM, "vm: out of memory");
            return -1;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->keys[i]) continue;
            size_t j = map_hash(m->keys[i], cap);
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
    uintptr_t k = (uintptr_t)key;
    size_t i = map_hash(k, m->cap);
    while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) m->n++;
    m->keys[i] = k;
    m->vals[i] = val;
    return 0;
}

static void map_free(vm_map *m) {
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

/* ---- plans ------------------------------------------------------------------ */

enum { OPD_SLOT, OPD_FV, OPD_CONST, OPD_CLOSURE };

struct vm_capture;
typedef struct vm_opd {
    int kind;
    int idx;                 /* SLOT, FV */
    sp_value *v;             /* CONST: borrowed from the node */
    struct vm_capture *cap;  /* CLOSURE */
} vm_opd;

typedef struct vm_capture {
    sp_graph *h;
    int n;
    vm_opd *from; /* SLOT or FV operands, one per h->fv */
} vm_capture;

typedef struct vm_step {
    sp_node *node;
    int slot;
    int n;
    vm_opd *in; /* in[0] is the callee */
} vm_step;

typedef struct vm_plan {
    sp_graph *g;
    int n_slots, n_steps;
    vm_step *steps;
    int tail;       /* 1: the output is steps[n_steps], called in tail position */
    vm_opd out;     /* when !tail */
} vm_plan;

/* Plan memory: one list of blocks per run. */
typedef struct vm_block {
    struct vm_block *next;
    max_align_t data[];
} vm_block;

typedef struct vm_ctx {
    vm_map plans;   /* graph -> vm_plan */
    vm_block *mem;
    int depth;
    int located;    /* the current error already names its place */
} vm_ctx;

static _Thread_local vm_ctx *tls_ctx;

static void *ctx_alloc(vm_ctx *c, size_t n) {
    vm_block *b = malloc(sizeof *b + (n ? n : 1));
    if (!b) {
        sp_error(SP_ERR_NOMEM, "vm: out of memory");
        return NULL;
    }
    b->next = c->mem;
    c->mem = b;
    memset(b->data, 0, n);
    return b->data;
}

/* Scratch of one plan build: node -> slot + 1, fv node -> index + 1. */
typedef struct plan_build {
    vm_ctx *c;
    sp_graph *g;
    vm_map slot, fvi;
} plan_build;

static sp_status plan_opd(plan_build *pb, sp_node *x, vm_opd *o);

static sp_status plan_capture(plan_build *pb, sp_graph *h, vm_opd *o) {
    vm_capture *cap = ctx_alloc(pb->c, sizeof *cap + sizeof(vm_opd) * (size_t)h->n_fv);
    if (!cap) return SP_ERR_NOMEM;
    cap->h = h;
    cap->n = h->n_fv;
    cap->from = (vm_opd *)(cap + 1);
    for (int i = 0; i < h->n_fv; i++) {
        sp_status st = plan_opd(pb, h->fv[i], &cap->from[i]);
        if (st) return st;
    }
    o->kind = OPD_CLOSURE;
    o->cap = cap;
    return SP_OK;
}

static sp_status plan_opd(plan_build *pb, sp_node *x, vm_opd *o) {
    memset(o, 0, sizeof *o);
    if (!x) return sp_error(SP_ERR_INTERNAL, "vm: graph @%s has a missing input", pb->g->name);
    if (x->kind == SP_NODE_CONST) {
        sp_value *v = x->value;
        if (v && v->kind == SP_V_GRAPH && v->u.graph->n_fv > 0) return plan_capture(pb, v->u.graph, o);
        o->kind = OPD_CONST;
        o->v = v;
        return SP_OK;
    }
    void *s = map_get(&pb->slot, x);
    if (s) {
        o->kind = OPD_SLOT;
        o->idx = (int)(uintptr_t)s - 1;
        return SP_OK;
    }
    s = map_get(&pb->fvi, x);
    if (s) {
        o->kind = OPD_FV;
        o->idx = (int)(uintptr_t)s - 1;
        return SP_OK;
    }
    return sp_error(SP_ERR_INTERNAL,
                    "vm: graph @%s uses node %%%d, which is neither its own, a free variable "
                    "nor a constant (was the module finalized?)",
                    pb->g->name, x->id);
}

/* The DFS stack of a plan build: per entry the node, the input it is at
 * and, inside a graph-constant input, the capture it is at. */
typedef struct dfs {
    sp_node **node;
    int *k, *sub;
    int n, cap;
} dfs;

static int dfs_push(dfs *d, sp_node *n) {
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 64;
        sp_node **a = realloc(d->node, sizeof *a * (size_t)cap);
        if (a) d->node = a;
        int *b = a ? realloc(d->k, sizeof *b * (size_t)cap) : NULL;
        if (b) d->k = b;
        int *s = b ? realloc(d->sub, sizeof *s * (size_t)cap) : NULL;
        if (!s) {
            sp_error(SP_ERR_NOMEM, "vm: out of memory");
            return -1;
        }
        d->sub = s;
        d->cap = cap;
    }
    d->node[d->n] = n;
    d->k[d->n] = 0;
    d->sub[d->n] = 0;
    d->n++;
    return 0;
}

/* The next dependency of n after position (*k, *sub): its inputs, and for
 * a graph-constant input the free variables its closure captures.  NULL at
 * the end. */
static sp_node *dep_next(sp_node *const *inputs, int n_inputs, int *k, int *sub) {
    while (*k < n_inputs) {
        sp_node *x = inputs[*k];
        if (x && x->kind == SP_NODE_CONST) {
            const sp_value *v = x->value;
            if (v && v->kind == SP_V_GRAPH && *sub < v->u.graph->n_fv) return v->u.graph->fv[(*sub)++];
            *sub = 0;
            (*k)++;
            continue;
        }
        (*k)++;
        *sub = 0;
        return x;
    }
    return NULL;
}

/* The own applies g needs, dependencies first (see the essay), in a
 * malloc'd array (*n entries); NULL + error on failure. */
static sp_node **plan_order(sp_graph *g, int *n_out) {
    dfs d = {0};
    vm_map seen = {0};
    sp_node **order = NULL, *out = g->output;
    int n_order = 0, cap_order = 0, ok = 1;
    /* the root: the output node, or a pseudo-node using a returned constant */
    if (dfs_push(&d, NULL)) ok = 0;
    while (ok && d.n > 0) {
        sp_node *n = d.node[d.n - 1];
        sp_node *x = n ? dep_next(n->inputs, n->n_inputs, &d.k[d.n - 1], &d.sub[d.n - 1])
                       : dep_next(&out, 1, &d.k[d.n - 1], &d.sub[d.n - 1]);
        if (x) {
            if (x->graph == g && x->kind == SP_NODE_APPLY && !map_get(&seen, x))
                ok = !map_put(&seen, x, (void *)1) && !dfs_push(&d, x);
            continue;
        }
        d.n--;
        if (!n) continue;
        if (n_order == cap_order) {
            cap_order = cap_order ? cap_order * 2 : 16;
            sp_node **o2 = realloc(order, sizeof *o2 * (size_t)cap_order);
            if (!o2) {
                sp_error(SP_ERR_NOMEM, "vm: out of memory");
                ok = 0;
                break;
            }
            order = o2;
        }
        order[n_order++] = n;
    }
    free(d.node);
    free(d.k);
    free(d.sub);
    map_free(&seen);
    if (!ok) {
        free(order);
        return NULL;
    }
    *n_out = n_order;
    return order ? order : malloc(1);
}

static int by_id(const void *a, const void *b) {
    int x = (*(sp_node *const *)a)->id, y = (*(sp_node *const *)b)->id;
    return (x > y) - (x < y);
}

/* Reorders a dependency order (DFS post-order from the output) into the
 * order the nodes were created in, when that is one too.  The front end
 * creates nodes in source order, so this runs calls and the effects
 * threaded beside them (print, spore.set_seed) in the order the program
 * wrote them: `x = f(); print(1)` calls f first even though the output
 * reaches print first.  A module read from IR text may number nodes
 * otherwise; its DFS order is kept then. */
static int source_order(sp_node **order, int n) {
    if (n < 2) return 0;
    sp_node **sorted = malloc(sizeof *sorted * (size_t)n);
    vm_map pos = {0};
    if (!sorted) return sp_error(SP_ERR_NOMEM, "vm: out of memory");
    memcpy(sorted, order, sizeof *sorted * (size_t)n);
    qsort(sorted, (size_t)n, sizeof *sorted, by_id);
    int ok = sorted[n - 1] == order[n - 1], st = 0; /* the output stays last */
    for (int i = 0; i < n && ok && !st; i++) st = map_put(&pos, sorted[i], (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < n && ok && !st; i++) {
        int k = 0, sub = 0;
        sp_node *x;
        while (ok && (x = dep_next(sorted[i]->inputs, sorted[i]->n_inputs, &k, &sub))) {
            uintptr_t p = (uintptr_t)map_get(&pos, x);
            if (p && (int)p - 1 >= i) ok = 0;
        }
    }
    if (ok && !st) memcpy(order, sorted, sizeof *order * (size_t)n);
    map_free(&pos);
    free(sorted);
    return st ? SP_ERR_NOMEM : 0;
}

static vm_plan *plan_build_graph(vm_ctx *c, sp_graph *g) {
    plan_build pb = {c, g, {0}, {0}};
    sp_node **order = NULL;
    int n_order = 0;
    vm_plan *p = NULL;
    sp_status st = SP_OK;
    if (!g->output) {
        sp_error(SP_ERR_INTERNAL, "vm: graph @%s has no output", g->name);
        return NULL;
    }
    for (int i = 0; i < g->n_params && !st; i++)
        if (map_put(&pb.slot, g->params[i], (void *)(uintptr_t)(i + 1))) st = SP_ERR_NOMEM;
    for (int i = 0; i < g->n_fv && !st; i++)
        if (map_put(&pb.fvi, g->fv[i], (void *)(uintptr_t)(i + 1))) st = SP_ERR_NOMEM;
    if (!st && !(order = plan_order(g, &n_order))) st = SP_ERR_NOMEM;
    if (!st && source_order(order, n_order)) st = SP_ERR_NOMEM;
    for (int i = 0; i < n_order && !st; i++)
        if (map_put(&pb.slot, order[i], (void *)(uintptr_t)(g->n_params + i + 1))) st = SP_ERR_NOMEM;
    if (st) goto done;
    p = ctx_alloc(c, sizeof *p + sizeof(vm_step) * (size_t)(n_order + 1));
    if (!p) {
        st = SP_ERR_NOMEM;
        goto done;
    }
    p->g = g;
    p->steps = (vm_step *)(p + 1);
    p->n_slots = g->n_params + n_order;
    /* the output apply is last in the order: it becomes the tail call */
    p->tail = g->output->kind == SP_NODE_APPLY && g->output->graph == g;
    p->n_steps = p->tail ? n_order - 1 : n_order;
    for (int i = 0; i < n_order && !st; i++) {
        sp_node *n = order[i];
        vm_step *s = &p->steps[i];
        s->node = n;
        s->slot = g->n_params + i;
        s->n = n->n_inputs;
        if (n->n_inputs < 1) {
            st = sp_error(SP_ERR_INTERNAL, "vm: node %%%d of @%s has no callee", n->id, g->name);
            break;
        }
        s->in = ctx_alloc(c, sizeof(vm_opd) * (size_t)n->n_inputs);
        if (!s->in) {
            st = SP_ERR_NOMEM;
            break;
        }
        for (int k = 0; k < n->n_inputs && !st; k++) st = plan_opd(&pb, n->inputs[k], &s->in[k]);
    }
    if (!st && !p->tail) st = plan_opd(&pb, g->output, &p->out);
    if (!st && map_put(&c->plans, g, p)) st = SP_ERR_NOMEM;
done:
    map_free(&pb.slot);
    map_free(&pb.fvi);
    free(order);
    return st ? NULL : p;
}

static vm_plan *plan_of(vm_ctx *c, sp_graph *g) {
    vm_plan *p = map_get(&c->plans, g);
    return p ? p : plan_build_graph(c, g);
}

/* ---- errors --------------------------------------------------------------- */

/* Adds the node's place to the current error, once. */
static void locate(vm_ctx *c, const sp_node *n) {
    if (c->located || !n) return;
    c->located = 1;
    sp_status code = sp_last_status();
    if (code == SP_OK) code = SP_ERR_RUNTIME;
    const sp_module *m = n->graph ? n->graph->module : NULL;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sp_last_error()[0] ? sp_last_error() : "error");
    sp_error_at(m, n->loc, code, "%s", msg);
}

/* ---- frames ---------------------------------------------------------------- */

typedef struct frame {
    sp_value **slot;
    sp_value *const *fv; /* the closure's captured values (borrowed) */
} frame;

static sp_value *opd_value(vm_ctx *c, const frame *f, const vm_opd *o);

static sp_value *make_closure(vm_ctx *c, const frame *f, const vm_capture *cap) {
    sp_value *small[8] = {0}, **vals = cap->n <= 8 ? small : malloc(sizeof *vals * (size_t)cap->n);
    if (!vals) {
        sp_error(SP_ERR_NOMEM, "vm: out of memory");
        return NULL;
    }
    int i;
    for (i = 0; i < cap->n; i++) {
        vals[i] = opd_value(c, f, &cap->from[i]);
        if (!vals[i]) break;
    }
    sp_value *r = i == cap->n ? sp_value_closure(cap->h, cap->n, vals) : NULL;
    for (int k = 0; k < i; k++) sp_value_release(vals[k]);
    if (vals != small) free(vals);
    return r;
}

/* The operand's value: a new reference, or NULL + error. */
static sp_value *opd_value(vm_ctx *c, const frame *f, const vm_opd *o) {
    sp_value *v;
    switch (o->kind) {
    case OPD_SLOT: v = f->slot[o->idx]; break;
    case OPD_FV: v = f->fv ? f->fv[o->idx] : NULL; break;
    case OPD_CONST: v = o->v; break;
    default: return make_closure(c, f, o->cap);
    }
    if (!v) {
        sp_error(SP_ERR_INTERNAL, "vm: a value was used before it was computed");
        return NULL;
    }
    sp_value_retain(v);
    return v;
}

/* Binds args (owned references, consumed) to the params of g in slot[]. */
static sp_status bind_args(const sp_graph *g, int n, sp_value **args, sp_value **slot) {
    int np = g->n_params, nfixed = g->has_varargs ? np - 1 : np, npos = 0;
    sp_status st = SP_OK;
    const char *name = g->name ? g->name : "<lambda>";
    for (int i = 0; i < n; i++)
        if (args[i]->kind != SP_V_KEYWORD) npos++;
    if (npos > nfixed && !g->has_varargs) {
        st = sp_error(SP_ERR_TYPE, "%s() takes %d positional argument%s but %d %s given", name,
                      nfixed, nfixed == 1 ? "" : "s", npos, npos == 1 ? "was" : "were");
        goto fail;
    }
    int k = 0;
    sp_value **extra = NULL;
    if (g->has_varargs) {
        extra = malloc(sizeof *extra * (size_t)(n > 0 ? n : 1));
        if (!extra) {
            st = sp_error(SP_ERR_NOMEM, "vm: out of memory");
            goto fail;
        }
    }
    int ne = 0;
    for (int i = 0; i < n; i++) {
        sp_value *a = args[i];
        if (a->kind == SP_V_KEYWORD) {
            int j;
            for (j = 0; j < nfixed; j++)
                if (g->param_names && g->param_names[j] && !strcmp(g->param_names[j], a->u.kw.name)) break;
            if (j == nfixed && g->has_varargs && g->module && g->module->file &&
                !strcmp(g->module->file, "<bprop>")) {
                /* the autodiff plumbing (src/ad/bprop_builtins.py) forwards
                 * keyword arguments through *args */
                extra[ne++] = a;
                args[i] = NULL;
                continue;
            }
            if (j == nfixed) {
                st = sp_error(SP_ERR_TYPE, "%s() got an unexpected keyword argument '%s'", name, a->u.kw.name);
                break;
            }
            if (slot[j]) {
                st = sp_error(SP_ERR_TYPE, "%s() got multiple values for argument '%s'", name, a->u.kw.name);
                break;
            }
            slot[j] = a->u.kw.value;
            sp_value_retain(slot[j]);
            sp_value_release(a);
        } else if (k < nfixed) {
            slot[k++] = a;
        } else {
            extra[ne++] = a;
        }
        args[i] = NULL;
    }
    if (!st && g->has_varargs) {
        slot[np - 1] = sp_value_tuple(ne, extra);
        if (!slot[np - 1]) st = SP_ERR_NOMEM;
    }
    for (int i = 0; i < ne; i++) sp_value_release(extra[i]);
    free(extra);
    for (int j = 0; j < nfixed && !st; j++) {
        if (slot[j]) continue;
        if (g->defaults && g->defaults[j]) {
            slot[j] = g->defaults[j];
            sp_value_retain(slot[j]);
            continue;
        }
        int missing = 0;
        for (int q = j; q < nfixed; q++)
            if (!slot[q] && !(g->defaults && g->defaults[q])) missing++;
        const char *pn = g->param_names && g->param_names[j] ? g->param_names[j] : "?";
        st = sp_error(SP_ERR_TYPE, "%s() missing %d required argument%s: '%s'", name, missing,
                      missing == 1 ? "" : "s", pn);
    }
fail:
    for (int i = 0; i < n; i++) sp_value_release(args[i]), args[i] = NULL;
    return st;
}

static void release_all(int n, sp_value **v) {
    for (int i = 0; i < n; i++) sp_value_release(v[i]);
}

static sp_value *call_value(vm_ctx *c, sp_value *fn, int n, sp_value **args, const sp_node *site);

/* Calls fn on args (owned references, consumed; `args` itself is a malloc'd
 * array this function frees).  Runs graphs in a loop so calls in tail
 * position do not nest. */
static sp_value *vm_invoke(vm_ctx *c, sp_value *fn, int n, sp_value **args, const sp_node *site) {
    sp_value *result = NULL;
    for (;;) {
        /* unwrap partials: their bound arguments go first */
        while (fn->kind == SP_V_PARTIAL) {
            int m = fn->u.partial.n;
            sp_value **a2 = malloc(sizeof *a2 * (size_t)(n + m + 1));
            if (!a2) {
                sp_error(SP_ERR_NOMEM, "vm: out of memory");
                goto fail;
            }
            for (int i = 0; i < m; i++) {
                a2[i] = fn->u.partial.args[i];
                sp_value_retain(a2[i]);
            }
            memcpy(a2 + m, args, sizeof *args * (size_t)n);
            free(args);
            args = a2;
            n += m;
            sp_value *inner = fn->u.partial.fn;
            sp_value_retain(inner);
            sp_value_release(fn);
            fn = inner;
        }
        if (fn->kind != SP_V_GRAPH && fn->kind != SP_V_CLOSURE) {
            result = call_value(c, fn, n, args, site);
            release_all(n, args);
            free(args);
            sp_value_release(fn);
            return result;
        }
        sp_graph *g = fn->kind == SP_V_GRAPH ? fn->u.graph : fn->u.closure.graph;
        if (fn->kind == SP_V_GRAPH && g->n_fv > 0) {
            sp_error(SP_ERR_INTERNAL, "vm: graph @%s needs a closure (it has free variables)", g->name);
            locate(c, site);
            goto fail;
        }
        vm_plan *p = plan_of(c, g);
        if (!p) {
            locate(c, site);
            goto fail;
        }
        frame f;
        f.fv = fn->kind == SP_V_CLOSURE ? fn->u.closure.fv : NULL;
        f.slot = calloc((size_t)(p->n_slots ? p->n_slots : 1), sizeof *f.slot);
        if (!f.slot) {
            sp_error(SP_ERR_NOMEM, "vm: out of memory");
            goto fail;
        }
        sp_status st = bind_args(g, n, args, f.slot);
        free(args);
        args = NULL;
        n = 0;
        if (st) {
            locate(c, site);
            goto fail_frame;
        }
        for (int i = 0; i < p->n_steps; i++) {
            vm_step *s = &p->steps[i];
            sp_value *small[8], **in = s->n <= 8 ? small : malloc(sizeof *in * (size_t)s->n);
            if (!in) {
                sp_error(SP_ERR_NOMEM, "vm: out of memory");
                goto fail_frame;
            }
            int k;
            for (k = 0; k < s->n; k++)
                if (!(in[k] = opd_value(c, &f, &s->in[k]))) break;
            sp_value *r = NULL;
            if (k == s->n) {
                r = call_value(c, in[0], s->n - 1, in + 1, s->node);
                release_all(s->n, in);
            } else {
                release_all(k, in);
                locate(c, s->node);
            }
            if (in != small) free(in);
            if (!r) goto fail_frame;
            f.slot[s->slot] = r;
        }
        if (!p->tail) {
            result = opd_value(c, &f, &p->out);
            release_all(p->n_slots, f.slot);
            free(f.slot);
            sp_value_release(fn);
            return result;
        }
        /* the tail call: evaluate its callee and arguments, drop the frame */
        vm_step *t = &p->steps[p->n_steps];
        sp_value *callee = opd_value(c, &f, &t->in[0]);
        sp_value **a = callee ? malloc(sizeof *a * (size_t)(t->n > 1 ? t->n - 1 : 1)) : NULL;
        int k = 0;
        if (a)
            for (k = 0; k < t->n - 1; k++)
                if (!(a[k] = opd_value(c, &f, &t->in[k + 1]))) break;
        release_all(p->n_slots, f.slot);
        free(f.slot);
        sp_value_release(fn);
        fn = NULL;
        if (!callee || !a || k < t->n - 1) {
            if (callee && !a) sp_error(SP_ERR_NOMEM, "vm: out of memory");
            locate(c, t->node);
            sp_value_release(callee);
            if (a) release_all(k, a);
            free(a);
            return NULL;
        }
        fn = callee;
        args = a;
        n = t->n - 1;
        site = t->node;
        continue;
    fail_frame:
        release_all(p->n_slots, f.slot);
        free(f.slot);
        goto fail;
    }
fail:
    if (args) {
        release_all(n, args);
        free(args);
    }
    sp_value_release(fn);
    return NULL;
}

/* Calls fn (borrowed) on args (borrowed) at site; a new reference or NULL. */
static sp_value *call_value(vm_ctx *c, sp_value *fn, int n, sp_value **args, const sp_node *site) {
    sp_value *r = NULL;
    switch (fn->kind) {
    case SP_V_BUILTIN:
        if (fn->u.builtin == RT_B_SWITCH && n == 3) {
            int t = sp_value_truth(args[0]);
            if (t >= 0) {
                r = args[t ? 1 : 2];
                sp_value_retain(r);
            }
        } else {
            r = rt_builtin_call(fn->u.builtin, n, args);
        }
        break;
    case SP_V_PRIM: r = rt_prim_call(fn->u.prim, n, args); break;
    case SP_V_GRAPH:
    case SP_V_CLOSURE:
    case SP_V_PARTIAL: {
        if (c->depth >= VM_MAX_DEPTH) {
            sp_error(SP_ERR_RUNTIME, "maximum recursion depth exceeded (%d nested calls)", VM_MAX_DEPTH);
            break;
        }
        sp_value **a = malloc(sizeof *a * (size_t)(n ? n : 1));
        if (!a) {
            sp_error(SP_ERR_NOMEM, "vm: out of memory");
            break;
        }
        for (int i = 0; i < n; i++) {
            a[i] = args[i];
            sp_value_retain(a[i]);
        }
        sp_value_retain(fn);
        c->depth++;
        r = vm_invoke(c, fn, n, a, site);
        c->depth--;
        break;
    }
    default:
        sp_error(SP_ERR_TYPE, "'%s' object is not callable", sp_value_kind_name(fn));
        break;
    }
    if (!r) locate(c, site);
    return r;
}

/* ---- entry points ------------------------------------------------------------ */

static void ctx_free(vm_ctx *c) {
    map_free(&c->plans);
    while (c->mem) {
        vm_block *b = c->mem;
        c->mem = b->next;
        free(b);
    }
}

sp_value *sp_vm_call(sp_module *m, sp_value *fn, int n, sp_value *const *args) {
    (void)m; /* graphs know their module; m is for the API's symmetry */
    if (!fn || n < 0 || (n > 0 && !args)) {
        sp_error(SP_ERR_ARG, "vm_call: NULL function or arguments");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        if (!args[i]) {
            sp_error(SP_ERR_ARG, "vm_call: argument %d is NULL", i);
            return NULL;
        }
    vm_ctx local, *c = tls_ctx;
    int outer = c == NULL;
    if (outer) {
        memset(&local, 0, sizeof local);
        c = tls_ctx = &local;
    } else if (c->depth >= VM_MAX_DEPTH) {
        sp_error(SP_ERR_RUNTIME, "maximum recursion depth exceeded (%d nested calls)", VM_MAX_DEPTH);
        return NULL;
    }
    sp_value *r = call_value(c, fn, n, (sp_value **)args, NULL);
    if (outer) {
        ctx_free(c);
        tls_ctx = NULL;
    }
    return r;
}

sp_value *rt_call(sp_value *fn, int n, sp_value *const *args) { return sp_vm_call(NULL, fn, n, args); }

void rt_error_unlocate(void) {
    if (tls_ctx) tls_ctx->located = 0;
}

sp_value *sp_vm_run(sp_module *m, const char *entry, int n, sp_value *const *args) {
    if (!m) {
        sp_error(SP_ERR_ARG, "vm_run: NULL module");
        return NULL;
    }
    if (!entry) entry = "main";
    sp_value *fn = ir_module_get_global(m, entry);
    if (!fn) {
        sp_error(SP_ERR_ARG, "%s: no function '%s' at module level (choose one with --entry)", m->file,
                 entry);
        return NULL;
    }
    if (fn->kind != SP_V_GRAPH && fn->kind != SP_V_CLOSURE && fn->kind != SP_V_PARTIAL) {
        sp_error(SP_ERR_TYPE, "%s: '%s' is a %s, not a function", m->file, entry, sp_value_kind_name(fn));
        return NULL;
    }
    sp_value *r = sp_vm_call(m, fn, n, args);
    if (r && r->kind == SP_V_UNDEF) {
        sp_value_release(r);
        sp_error(SP_ERR_RUNTIME, "%s: %s() returned a variable that was never assigned", m->file, entry);
        return NULL;
    }
    return r;
}
