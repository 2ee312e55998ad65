/*
 * pass.c -- the pass registry, the driver that runs a list of passes to a
 * fixed point, and the purity test every pass relies on.
 *
 * The registry is the table src/compiler/passes/passes.def; a pass is
 * found by name.  The driver checks the whole list before running
 * anything (an unknown name is an error listing the known ones), then
 * runs the list in order, again and again until a whole round changes
 * nothing or max_rounds is reached, finalizing the module after every
 * pass (inlining and graph removal change free variables) and, in debug
 * builds, verifying it.
 *
 * Purity.  A node is pure when evaluating it has no effect beyond its
 * value: constants and parameters; applies of pure callees.  A callee is
 * pure when it is a primitive without SP_OPF_RANDOM or SP_OPF_INPLACE, a
 * builtin other than print, raise, assert, the function-calling plumbing
 * (call_star, grad_call, bprop_tape, j_primal) and api calls of stateful
 * or random API functions, a graph (or closure) whose body is pure, a
 * partial of a pure callee, or a switch between pure callees.  An unknown
 * callee (a parameter, the result of getattr) is impure.  A graph body is
 * pure when every live node of it is; recursion counts as impure (it may
 * not terminate, and the answer would depend on itself).
 *
 * Answers about graphs are memoized per pass: the driver opens a memo
 * before each pass and drops it after, because the pass may change graph
 * bodies.  Within one pass a stale answer is safe: passes preserve
 * meaning, so a body never turns from pure to impure.  Outside the
 * driver (tests, other callers) each query uses a memo of its own.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/passes/passes.h"
#include "ir/ir_internal.h"
#include "ops/ops.h"

/* ---- registry ------------------------------------------------------------ */

static const sp_pass pass_table[] = {
#define SP_PASS(name, fn) {#name, fn},
#include "compiler/passes/passes.def"
#undef SP_PASS
};
#define N_PASSES ((int)(sizeof pass_table / sizeof pass_table[0]))

static const sp_pass *find_n(const char *name, size_t len) {
    for (int i = 0; i < N_PASSES; i++)
        if (strlen(pass_table[i].name) == len && !strncmp(pass_table[i].name, name, len))
            return &pass_table[i];
    char known[512];
    size_t k = 0;
    known[0] = 0;
    for (int i = 0; i < N_PASSES && k + 40 < sizeof known; i++)
        k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", pass_table[i].name);
    sp_error(SP_ERR_ARG, "passes: unknown pass '%.*s' (known: %s)", (int)(len > 64 ? 64 : len), name,
             known);
    return NULL;
}

const sp_pass *sp_pass_find(const char *name) {
    if (!name) {
        sp_error(SP_ERR_ARG, "passes: NULL pass name");
        return NULL;
    }
    return find_n(name, strlen(name));
}

/* ---- purity -------------------------------------------------------------- */

enum { PURE_BUSY = 1, PURE_YES = 2, PURE_NO = 3 };

typedef struct pure_memo {
    ir_map state; /* graph -> PURE_* */
    ir_map cone;  /* node -> PURE_YES / PURE_NO (pass_cone_is_pure) */
} pure_memo;

static _Thread_local pure_memo *pass_memo; /* the driver's, during a pass */
/* The module the driver has finalized and handed to the pass now starting,
 * until the pass's first pass_finalize_at_start. */
static _Thread_local sp_module *pass_fresh;

sp_status pass_finalize_at_start(sp_module *m) {
    if (m && m == pass_fresh) {
        pass_fresh = NULL;
        return SP_OK;
    }
    pass_fresh = NULL;
    return ir_module_finalize(m);
}

static int callee_node_pure(pure_memo *pm, const sp_node *f, const sp_node *first, int depth);

/* The API functions (runtime/api.def) read as a table: an api call is pure
 * unless the function draws random numbers, touches the global seed or
 * updates its inputs in place. */
typedef struct api_entry {
    const char *module, *name, *prim, *impl;
} api_entry;

static const api_entry api_entries[] = {
#define SP_API(MOD, name, PRIM, params, impl) {#MOD, #name, #PRIM, #impl},
#include "runtime/api.def"
#undef SP_API
};

static const char *op_ids[] = {
#define SP_OP(ID, name, nin, nout, dtypes, infer, flags) #ID,
#include "ops/ops.def"
#undef SP_OP
};

static int api_name_pure(const char *q) {
    const char *dot = strchr(q, '.');
    if (!dot) return 0;
    size_t ml = (size_t)(dot - q);
    static const char *mods[][2] = {{"SPORE", "spore"}, {"OPS", "ops"}, {"MATH", "math"}, {"TENSOR", "Tensor"}};
    for (size_t i = 0; i < sizeof api_entries / sizeof api_entries[0]; i++) {
        const api_entry *e = &api_entries[i];
        if (strcmp(e->name, dot + 1) != 0) continue;
        const char *mod = NULL;
        for (int k = 0; k < 4; k++)
            if (!strcmp(e->module, mods[k][0])) mod = mods[k][1];
        if (!mod || strlen(mod) != ml || strncmp(mod, q, ml) != 0) continue;
        static const char *stateful[] = {"set_seed", "get_seed", "random", "bernoulli"};
        for (size_t k = 0; k < sizeof stateful / sizeof stateful[0]; k++)
            if (!strcmp(e->impl, stateful[k])) return 0;
        for (int op = 0; op < SP_OP_COUNT; op++)
            if (!strcmp(op_ids[op], e->prim))
                return !(sp_op_defs[op].flags & (SP_OPF_RANDOM | SP_OPF_INPLACE));
        return 1; /* PRIM NONE: an implementation without state */
    }
    return 0; /* unknown: the call will fail at run time; keep it */
}

static int builtin_pure(int id, const sp_value *first) {
    switch (id) {
    case PB_PRINT:
    case PB_RAISE:
    case PB_ASSERT:
    case PB_CALL_STAR: /* these call functions the pass cannot see */
    case PB_GRAD_CALL:
    case PB_BPROP_TAPE:
    case PB_J_PRIMAL: return 0;
    case PB_API: return first && first->kind == SP_V_STR && api_name_pure(first->u.str.s);
    default: return id >= 0 && id < PB_COUNT;
    }
}

static int graph_pure(pure_memo *pm, const sp_graph *g);
static int apply_pure(pure_memo *pm, const sp_node *n);

/* Calling the value f (with first argument `first` when known) is pure. */
static int callee_value_pure(pure_memo *pm, const sp_value *f, const sp_value *first, int depth) {
    if (!f || depth > 32) return 0;
    switch (f->kind) {
    case SP_V_PRIM:
        return f->u.prim >= 0 && f->u.prim < SP_OP_COUNT &&
               !(sp_op_defs[f->u.prim].flags & (SP_OPF_RANDOM | SP_OPF_INPLACE));
    case SP_V_BUILTIN: return builtin_pure(f->u.builtin, first);
    case SP_V_GRAPH: return graph_pure(pm, f->u.graph);
    case SP_V_CLOSURE: return graph_pure(pm, f->u.closure.graph);
    case SP_V_PARTIAL:
        return callee_value_pure(pm, f->u.partial.fn, f->u.partial.n > 0 ? f->u.partial.args[0] : first,
                                 depth + 1);
    default: return 0; /* not callable: an error to keep */
    }
}

static int callee_node_pure(pure_memo *pm, const sp_node *f, const sp_node *first, int depth) {
    if (!f || depth > 32) return 0;
    if (f->kind == SP_NODE_CONST)
        return callee_value_pure(pm, f->value, first && first->kind == SP_NODE_CONST ? first->value : NULL,
                                 depth);
    if (f->kind != SP_NODE_APPLY) return 0;
    if (pass_is_call(f, PB_PARTIAL) && f->n_inputs >= 2)
        return callee_node_pure(pm, f->inputs[1], f->n_inputs > 2 ? f->inputs[2] : first, depth + 1) &&
               apply_pure(pm, f);
    if (pass_is_call(f, PB_SWITCH) && f->n_inputs == 4)
        return apply_pure(pm, f) && callee_node_pure(pm, f->inputs[2], first, depth + 1) &&
               callee_node_pure(pm, f->inputs[3], first, depth + 1);
    return 0;
}

static int apply_pure(pure_memo *pm, const sp_node *n) {
    if (n->kind != SP_NODE_APPLY) return 1;
    if (n->n_inputs < 1 || !n->inputs) return 0;
    return callee_node_pure(pm, n->inputs[0], n->n_inputs > 1 ? n->inputs[1] : NULL, 0);
}

static int graph_pure(pure_memo *pm, const sp_graph *g) {
    uintptr_t s = (uintptr_t)ir_map_get(&pm->state, IR_PKEY(g));
    if (s) return s == PURE_YES;
    if (ir_map_put(&pm->state, IR_PKEY(g), (void *)(uintptr_t)PURE_BUSY)) return 0;
    int n = 0, pure = 1;
    sp_node **nodes = ir_graph_nodes(g, &n);
    if (!nodes) pure = 0;
    for (int i = 0; i < n && pure; i++) pure = apply_pure(pm, nodes[i]);
    free(nodes);
    if (pure) { /* nested closures a caller may call later are judged at their calls */
        s = (uintptr_t)ir_map_get(&pm->state, IR_PKEY(g));
        if (s != PURE_BUSY) pure = 0; /* met itself: recursion */
    }
    ir_map_put(&pm->state, IR_PKEY(g), (void *)(uintptr_t)(pure ? PURE_YES : PURE_NO));
    return pure;
}

int ir_node_is_pure(const sp_node *n) {
    if (!n) return 0;
    if (n->kind != SP_NODE_APPLY) return 1;
    if (pass_memo) return apply_pure(pass_memo, n);
    pure_memo pm;
    memset(&pm, 0, sizeof pm);
    int r = apply_pure(&pm, n);
    ir_map_free(&pm.state);
    return r;
}

/* Depth-first over the own applies n depends on (inputs, and the captures
 * of graph constants: the closure is built before the call), stopping at
 * the first impure one or at nodes already known to be pure cones.  A
 * completed walk proves every node it met a pure cone too. */
static int cone_pure(pure_memo *pm, const sp_node *root) {
    uintptr_t s = (uintptr_t)ir_map_get(&pm->cone, IR_PKEY(root));
    if (s) return s == PURE_YES;
    const sp_graph *g = root->graph;
    ir_map seen;
    memset(&seen, 0, sizeof seen);
    const sp_node **stack = NULL;
    int n = 0, cap = 0, pure = 1;
#define CONE_PUSH(x)                                                                               \
    do {                                                                                           \
        const sp_node *x_ = (x);                                                                   \
        if (!x_ || x_->kind != SP_NODE_APPLY || x_->graph != g || ir_map_get(&seen, IR_PKEY(x_)) ||  \
            (uintptr_t)ir_map_get(&pm->cone, IR_PKEY(x_)) == PURE_YES)                             \
            break;                                                                                 \
        if (n == cap) {                                                                            \
            cap = cap ? cap * 2 : 64;                                                              \
            const sp_node **t_ = realloc(stack, sizeof *t_ * (size_t)cap);                         \
            if (!t_) {                                                                             \
                pure = 0;                                                                          \
                break;                                                                             \
            }                                                                                      \
            stack = t_;                                                                            \
        }                                                                                          \
        if (ir_map_put(&seen, IR_PKEY(x_), (void *)1)) {                                           \
            pure = 0;                                                                              \
            break;                                                                                 \
        }                                                                                          \
        stack[n++] = x_;                                                                           \
    } while (0)
    CONE_PUSH(root);
    while (n > 0 && pure) {
        const sp_node *x = stack[--n];
        if (!apply_pure(pm, x)) {
            pure = 0;
            break;
        }
        for (int k = 0; k < x->n_inputs && pure; k++) {
            const sp_node *y = x->inputs[k];
            if (y->kind == SP_NODE_CONST && y->value && y->value->kind == SP_V_GRAPH) {
                const sp_graph *h = y->value->u.graph;
                for (int j = 0; j < h->n_fv && pure; j++) CONE_PUSH(h->fv[j]);
            } else {
                CONE_PUSH(y);
            }
        }
    }
#undef CONE_PUSH
    if (pure) { /* everything met is a pure cone */
        for (size_t i = 0; i < seen.cap; i++)
            if (seen.keys[i]) ir_map_put(&pm->cone, seen.keys[i], (void *)(uintptr_t)PURE_YES);
    } else {
        ir_map_put(&pm->cone, IR_PKEY(root), (void *)(uintptr_t)PURE_NO);
    }
    ir_map_free(&seen);
    free(stack);
    return pure;
}

int pass_cone_is_pure(const sp_node *n) {
    if (!n) return 0;
    if (n->kind != SP_NODE_APPLY) return 1;
    if (pass_memo) return cone_pure(pass_memo, n);
    pure_memo pm;
    memset(&pm, 0, sizeof pm);
    int r = cone_pure(&pm, n);
    ir_map_free(&pm.state);
    ir_map_free(&pm.cone);
    return r;
}

/* ---- driver -------------------------------------------------------------- */

sp_status sp_passes_run(sp_module *m, const char *list, int max_rounds) {
    if (!m || !list) return sp_error(SP_ERR_ARG, "passes: NULL %s", m ? "list" : "module");
    const sp_pass *passes[64];
    int np = 0;
    for (const char *p = list; *p;) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        if (np == 64) return sp_error(SP_ERR_ARG, "passes: more than 64 passes in '%.80s'", list);
        if (!(passes[np++] = find_n(p, (size_t)(e - p)))) return SP_ERR_ARG;
        p = e;
    }
    if (max_rounds < 1) max_rounds = 1;
    sp_status st = ir_module_finalize(m);
    for (int round = 0; round < max_rounds && !st; round++) {
        int any = 0;
        for (int i = 0; i < np && !st; i++) {
            int changed = 0;
            pure_memo pm;
            memset(&pm, 0, sizeof pm);
            pass_memo = &pm;
            pass_fresh = m;
            st = passes[i]->run(m, &changed);
            pass_fresh = NULL;
            pass_memo = NULL;
            ir_map_free(&pm.state);
            ir_map_free(&pm.cone);
            /* A pass that changed nothing left every free-variable list
             * as the last finalize computed it. */
            if (!st && changed) st = ir_module_finalize(m);
#ifndef NDEBUG
            if (!st) st = sp_module_verify(m);
#endif
            any |= changed;
        }
        if (!any) break;
    }
    return st;
}
