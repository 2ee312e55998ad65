/*
 * specialize.c -- abstract interpretation with cloning (specialize.h):
 * contexts, graph calls, switches, tuples and the fixed point.
 *
 * One pass per context.  A context (spec_internal.h) walks the applies of
 * its source graph in the order the VM runs them (pass_graph_order: source
 * order, which effects rely on) and, for each, computes the abstract value
 * from its inputs' abstracts and writes what run time still needs into the
 * clone: nothing at all for a value folded into a constant, a call of a
 * specialized clone for a call of a known graph, the primitive calls a
 * leaf made (spec_leaf.c), or the original call with its inputs mapped.
 * Since clone nodes are created in that same order, their ids keep the
 * source order the VM needs.  A graph constant is a FUNC abstract over the
 * context of its parent; once materialized as a value it becomes the
 * clone of that graph for parameters of unknown value (its "generic"
 * clone; for the nullary graphs of if/else branches and loop bodies that
 * is exactly the specialized clone).
 *
 * Calls.  A call of a FUNC binds the argument abstracts to the callee's
 * parameters as the VM binds values (keywords, defaults, *args; the same
 * error messages) and looks the signature up in the memo: a context done
 * already is reused; a context still being built (busy) is recursion, and
 * the call gets that context's current guess of its result (BOTTOM at
 * first).  When a busy context finishes, a guess that was used and proves
 * wrong is joined with the real result and the context is built again,
 * after evicting every context made during its build (they may have used
 * the guess), until the guess holds.  Termination: a graph that already
 * has SPEC_WIDEN clones being built (nested in one another: recursion,
 * loops) or SPEC_WIDEN_ALL clones in all gets widened signatures (constant
 * scalars become SCALAR...), SPEC_WIDEN2 / SPEC_WIDEN2_ALL clones or a
 * deep C recursion widen everything,
 * and joins only climb a lattice of finite height.
 *
 * A call resolves to a constant callee (the clone) when the callee's scope
 * is visible at the call (the caller's graph is nested in it) and the
 * callee node carries no effects; otherwise the call keeps the run-time
 * callee value, which is then the generic clone made where the function
 * value was created.  Either way the result abstract is the one of the
 * specialized callee.
 *
 * A closure a call returns closes over the callee's new activation, never
 * over a scope the caller sees (even under recursion, where the caller may
 * be nested in another activation of the same context), so call results
 * mark such functions foreign: they are called through the run-time value.
 *
 * Switches.  A constant condition picks a branch at compile time (the other
 * branch is never looked at, so unrolled loops end).  Any other condition
 * keeps the switch; calling it calls every branch (in uncertain contexts:
 * errors there wait for run time) and joins their results.
 *
 * Tensors of a call.  A context is shared by every call with its
 * signature, so each call site (and each parameter) gets fresh TENSOR
 * abstracts for what it returns (fresh()): a tensor's abstract names the
 * node carrying it when a later leaf's trace reads it.  A direct call binds
 * keywords and defaults to positional arguments (spec_positional_args), the
 * form the inliner opens.  A pure make_tuple/make_list is written lazily,
 * where the tuple itself is used (spec_slot.lazy): the front end's
 * tuple_getitem(make_tuple(x, @if_after), 1) threading then needs no
 * generic clone of @if_after.
 *
 * Gradient graphs (spec_grad.c) are built into the specialized module in
 * the middle of specialization and specialized like source graphs: their
 * graph constants are source graphs (is_source_graph), their scope may be
 * a clone (ctx_of_clone), and a node of an enclosing clone they use is a
 * value as it is (spec_lookup).
 *
 * Effects.  Impure nodes are always written to the clone, in source order.
 * The front end keeps most of them alive through effect tuples
 * (make_tuple(e1, ..., x)); one that no tuple anchors -- a call used as an
 * `and` operand or a switch condition -- lives only through its users, so
 * those *carry* it: a carrier is never folded or replaced by code that
 * stops reading it, and a constant condition that carries still keeps its
 * switch.  Tensors made at compile time (ops.tensor of constants) are not
 * folded into constants either: closures must still capture them, since
 * grad finds its weights among what a closure captures.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/spec_internal.h"

#define SPEC_WIDEN 64       /* nested clones of one graph before signatures are widened */
#define SPEC_WIDEN2 256     /* ... before everything but callables is forgotten */
#define SPEC_WIDEN_ALL 128 /* clones of one graph in all (a gradient rule is called with */
#define SPEC_WIDEN2_ALL 1024 /* every shape of a model, its loops unrolled each time) */
#define SPEC_DEEP 600       /* nested contexts before everything is widened */
#define SPEC_MAX_DEPTH 2400 /* nested contexts: an error past this (C stack) */
#define SPEC_MAX_RERUNS 8   /* fixed-point iterations before the guess becomes ANY */

static sp_status nomem(void) { return sp_error(SP_ERR_NOMEM, "specialize: out of memory"); }

/* ---- small helpers ----------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
}

int spec_visible(const spec_ctx *c, const sp_node *x) {
    if (!x) return 0;
    if (x->kind == SP_NODE_CONST && !x->graph) return 1;
    for (const sp_graph *g = c->clone; g; g = g->parent)
        if (x->graph == g) return 1;
    return 0;
}

int spec_scope_visible(const spec_ctx *c, const void *scope) {
    if (!scope) return 1;
    for (const spec_ctx *e = c; e; e = e->parent)
        if (e == scope) return 1;
    return 0;
}

static int has_tensor(const sp_value *v, int depth) {
    if (depth > 32) return 1;
    switch (v->kind) {
    case SP_V_TENSOR: return 1;
    case SP_V_TUPLE:
    case SP_V_LIST:
    case SP_V_ENV: /* gradients of free variables: an env may hold meta tensors */
        for (int i = 0; i < v->u.seq.n; i++)
            if (has_tensor(v->u.seq.items[i], depth + 1)) return 1;
        return 0;
    case SP_V_PARTIAL:
        for (int i = 0; i < v->u.partial.n; i++)
            if (has_tensor(v->u.partial.args[i], depth + 1)) return 1;
        return 0;
    case SP_V_KEYWORD: return has_tensor(v->u.kw.value, depth + 1);
    default: return 0;
    }
}

int spec_foldable(const spec_ctx *c, const sp_abstract *a) {
    if (a->kind == SP_ABS_CONST) return !has_tensor(a->value, 0);
    return a->kind == SP_ABS_FUNC && !a->foreign && spec_scope_visible(c, a->scope);
}

void spec_note(spec *s, sp_abstract *a, sp_node *node) {
    if (!a || !node) return;
    if (a->kind == SP_ABS_TENSOR || (a->kind == SP_ABS_CONST && a->value->kind == SP_V_TENSOR)) {
        ir_map_put(&s->abs_node, IR_PKEY(a), node);
        /* a tensor made at compile time is found again by its value */
        if (a->kind == SP_ABS_CONST) ir_map_put(&s->tensor_abs, IR_PKEY(a->value->u.tensor), a);
    }
}

static int is_callable_abs(const sp_abstract *a) {
    if (a->kind == SP_ABS_FUNC || a->kind == SP_ABS_PARTIAL || a->kind == SP_ABS_ALT) return 1;
    if (a->kind != SP_ABS_CONST) return 0;
    sp_vkind k = a->value->kind;
    return k == SP_V_PRIM || k == SP_V_BUILTIN || k == SP_V_PARTIAL || k == SP_V_GRAPH || k == SP_V_CLOSURE;
}

sp_status spec_user_error(spec *s, spec_ctx *c, const sp_node *n) {
    sp_status code = sp_last_status();
    if (code == SP_ERR_NOMEM || code == SP_ERR_INTERNAL) return code;
    if (!c->certain) {
        sp_clear_error();
        return SP_OK;
    }
    if (code == SP_OK) code = SP_ERR_RUNTIME;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", sp_last_error()[0] ? sp_last_error() : "error");
    return sp_error_at(s->src, n->loc, code, "%s", msg);
}

/* ---- clone nodes ----------------------------------------------------------------- */

sp_node *spec_const(spec *s, spec_ctx *c, sp_value *v, sp_loc loc) {
    sp_node *k = ir_const_new(c->clone, v, loc);
    if (!k) return NULL;
    k->abs = sp_abs_const(s->m, v);
    return k->abs ? k : NULL;
}

sp_node *spec_apply(spec *s, spec_ctx *c, int n, sp_node *const *in, sp_loc loc, sp_abstract *a) {
    sp_node *x = ir_apply_new(c->clone, n, in, loc);
    if (!x) return NULL;
    x->abs = a;
    spec_note(s, a, x);
    return x;
}


/* A constant node for a folded abstract (CONST or visible FUNC). */
static sp_node *const_of_abs(spec *s, spec_ctx *c, sp_abstract *a, sp_loc loc) {
    if (a->kind == SP_ABS_CONST) return spec_const(s, c, a->value, loc);
    if (a->kind == SP_ABS_FUNC && !a->foreign && spec_scope_visible(c, a->scope)) {
        spec_ctx *h = spec_value_clone(s, a);
        if (!h) return NULL;
        sp_value *gv = sp_value_graph(h->clone);
        if (!gv) return NULL;
        sp_node *k = ir_const_new(c->clone, gv, loc);
        sp_value_release(gv);
        if (k) k->abs = a;
        return k;
    }
    return NULL;
}

sp_node *spec_node_of_abs(spec *s, spec_ctx *c, sp_abstract *a) {
    sp_node *x = ir_map_get(&s->abs_node, IR_PKEY(a));
    if (x && spec_visible(c, x)) return x;
    if (a->kind == SP_ABS_CONST || a->kind == SP_ABS_FUNC) {
        sp_node *k = const_of_abs(s, c, a, c->clone->loc);
        if (!k) sp_clear_error();
        return k;
    }
    return NULL;
}

/* ---- slots ---------------------------------------------------------------------- */

static spec_slot *slot_new(spec *s, spec_ctx *c, sp_node *x) {
    spec_slot *sl = ir_alloc(s->m, sizeof *sl);
    if (!sl || ir_map_put(&c->slots, IR_PKEY(x), sl)) {
        nomem();
        return NULL;
    }
    return sl;
}

/* The context in c's chain whose source graph is g, or NULL. */
static spec_ctx *ctx_of_graph(spec_ctx *c, const sp_graph *g) {
    for (; c; c = c->parent)
        if (c->src == g) return c;
    return NULL;
}

/* The context in c's chain whose clone is g, or NULL.  A gradient graph
 * (spec_grad.c) is built in the specialized module, nested in the clone
 * its function's scope was written to: specializing it reads that clone's
 * nodes, which carry their values already. */
static spec_ctx *ctx_of_clone(spec_ctx *c, const sp_graph *g) {
    for (; c; c = c->parent)
        if (c->clone == g) return c;
    return NULL;
}

/* Nonzero when graph constants of h's module are specialized as source
 * graphs: the user's module, and the gradient graphs (and the rules they
 * copied) that expansion added to the specialized module. */
static int is_source_graph(const spec *s, const sp_graph *h) { return h->module == s->src || h->module == s->m; }

spec_slot *spec_lookup(spec *s, spec_ctx *c, sp_node *x) {
    if (!x) {
        sp_error(SP_ERR_INTERNAL, "specialize: a missing input in @%s", c->src->name);
        return NULL;
    }
    if (x->kind == SP_NODE_CONST) {
        spec_slot *sl = ir_map_get(&c->slots, IR_PKEY(x));
        if (sl) return sl;
        sp_value *v = x->value;
        sp_abstract *a;
        if (v->kind == SP_V_GRAPH && is_source_graph(s, v->u.graph)) {
            sp_graph *h = v->u.graph;
            spec_ctx *scope = NULL;
            /* (gradient graphs may be read before the module is finalized
             * again: their scope is their parent's context when there is one) */
            int scoped = h->n_fv > 0 || (h->module == s->m && h->parent);
            if (scoped && !(scope = ctx_of_graph(c, h->parent)) && !(scope = ctx_of_clone(c, h->parent)) &&
                h->n_fv > 0) {
                sp_error(SP_ERR_INTERNAL, "specialize: @%s used outside the scope of its parent", h->name);
                return NULL;
            }
            a = sp_abs_func(s->m, h, scope);
        } else {
            a = ir_map_get(&s->consts, IR_PKEY(x));
            if (!a) {
                a = sp_abs_const(s->m, v);
                if (a && ir_map_put(&s->consts, IR_PKEY(x), a)) a = NULL;
            }
        }
        if (!a || !(sl = slot_new(s, c, x))) return NULL;
        sl->abs = a;
        sl->pure = 1;
        return sl;
    }
    spec_ctx *e = ctx_of_graph(c, x->graph);
    spec_slot *sl = e ? ir_map_get(&e->slots, IR_PKEY(x)) : NULL;
    if (!e && ctx_of_clone(c, x->graph)) {
        /* a node of an enclosing clone, used by a gradient graph: its value as it is */
        if ((sl = ir_map_get(&c->slots, IR_PKEY(x)))) return sl;
        sp_abstract *a = x->abs ? x->abs : sp_abs_any(s->m);
        if (!a || !(sl = slot_new(s, c, x))) return NULL;
        sl->abs = a;
        sl->node = x;
        sl->pure = 1;
        return sl;
    }
    if (!sl)
        sp_error(SP_ERR_INTERNAL, "specialize: node %%%d of @%s used before it was evaluated (in @%s%s)", x->id,
                 x->graph ? x->graph->name : "?", c->src->name, e ? "" : ", no context");
    return sl;
}

sp_node *spec_input(spec *s, spec_ctx *c, sp_node *x) {
    spec_slot *sl = spec_lookup(s, c, x);
    if (!sl) return NULL;
    if (sl->node) return sl->node;
    sp_node *k = sl->lazy ? spec_emit_orig(s, c, sl->lazy, sl->abs) : const_of_abs(s, c, sl->abs, x->loc);
    if (!k) {
        if (sp_last_status() == SP_OK)
            sp_error(SP_ERR_INTERNAL, "specialize: node %%%d has no value to use (%s)", x->id,
                     sl->abs->kind == SP_ABS_FUNC ? "a function outside its scope" : "folded");
        return NULL;
    }
    /* a constant of this context's own slot is reused; others are per use */
    if (ir_map_get(&c->slots, IR_PKEY(x)) == sl) sl->node = k;
    return k;
}

sp_node *spec_emit_orig(spec *s, spec_ctx *c, sp_node *n, sp_abstract *a) {
    sp_node *small[16], **in = n->n_inputs <= 16 ? small : malloc(sizeof *in * (size_t)n->n_inputs);
    if (!in) {
        nomem();
        return NULL;
    }
    int i;
    for (i = 0; i < n->n_inputs; i++)
        if (!(in[i] = spec_input(s, c, n->inputs[i]))) break;
    sp_node *x = i == n->n_inputs ? spec_apply(s, c, n->n_inputs, in, n->loc, a) : NULL;
    if (x) x->name = n->name ? ir_intern(s->m, n->name) : NULL;
    if (in != small) free(in);
    return x;
}

/* ---- the order of a source graph's applies ---------------------------------------- */

typedef struct spec_order {
    int n;
    sp_node **nodes;
} spec_order;

static spec_order *order_of(spec *s, sp_graph *g) {
    spec_order *o = ir_map_get(&s->orders, IR_PKEY(g));
    if (o) return o;
    o = ir_alloc(s->m, sizeof *o);
    if (!o) return NULL;
    sp_node **nodes = pass_graph_order(g, &o->n);
    if (!nodes) return NULL;
    o->nodes = ir_alloc(s->m, sizeof *o->nodes * (size_t)(o->n ? o->n : 1));
    if (o->nodes) memcpy(o->nodes, nodes, sizeof *nodes * (size_t)o->n);
    free(nodes);
    /* the effect threading: impure values that a tuple keeps alive */
    for (int i = 0; i < o->n && o->nodes; i++)
        if (pass_is_call(o->nodes[i], PB_MAKE_TUPLE) || pass_is_call(o->nodes[i], PB_MAKE_LIST))
            for (int k = 1; k < o->nodes[i]->n_inputs; k++)
                if (ir_map_put(&s->anchored, IR_PKEY(o->nodes[i]->inputs[k]), (void *)1)) return NULL;
    if (!o->nodes || ir_map_put(&s->orders, IR_PKEY(g), o)) return NULL;
    return o;
}

/* ---- contexts --------------------------------------------------------------------------- */

static uint64_t sig_hash(const sp_graph *h, const spec_ctx *scope, int n, sp_abstract *const *args, int packed) {
    uint64_t x = mix((uint64_t)(uintptr_t)h, (uint64_t)(uintptr_t)scope + (uint64_t)packed);
    for (int i = 0; i < n; i++) x = mix(x, args[i]->hash);
    return x ? x : 1;
}

static spec_ctx *memo_find(spec *s, sp_graph *h, spec_ctx *scope, int n, sp_abstract *const *args, int packed,
                           uint64_t hash) {
    for (spec_ctx *c = ir_map_get(&s->memo, hash); c; c = c->next) {
        if (c->dead || c->src != h || c->parent != scope || c->n_args != n || c->packed != packed) continue;
        int i;
        for (i = 0; i < n; i++)
            if (!sp_abs_equal(c->args[i], args[i])) break;
        if (i == n) return c;
    }
    return NULL;
}

static void memo_remove(spec *s, spec_ctx *c) {
    spec_ctx *head = ir_map_get(&s->memo, c->hash), *prev = NULL;
    for (spec_ctx *x = head; x; prev = x, x = x->next)
        if (x == c) {
            if (prev)
                prev->next = x->next;
            else
                ir_map_put(&s->memo, c->hash, x->next); /* NULL: the key reads as absent */
            break;
        }
}

static int count_of(spec *s, const sp_graph *h) { return (int)(uintptr_t)ir_map_get(&s->counts, IR_PKEY(h)); }

static void count_add(spec *s, const sp_graph *h, int d) {
    int k = count_of(s, h) + d;
    ir_map_put(&s->counts, IR_PKEY(h), (void *)(uintptr_t)(k < 0 ? 0 : k));
}

static int has_custom_bprop(spec *s, const sp_graph *h);

/* Contexts of h being built now (nested in one another). */
static int busy_of(spec *s, const sp_graph *h) { return (int)(uintptr_t)ir_map_get(&s->busy, IR_PKEY(h)); }

static void busy_add(spec *s, const sp_graph *h, int d) {
    int k = busy_of(s, h) + d;
    ir_map_put(&s->busy, IR_PKEY(h), (void *)(uintptr_t)(k < 0 ? 0 : k));
}

/* A unique name for a clone of h in the specialized module (the plain
 * name for the generic clone of a top-level function, and for any clone of
 * one with a user backward rule, which grad finds by name). */
static const char *clone_name(spec *s, const sp_graph *h, int generic) {
    char buf[512];
    if (!h->parent && (generic || has_custom_bprop(s, h))) {
        int taken = 0;
        for (int i = 0; i < s->m->n_graphs && !taken; i++) taken = !strcmp(s->m->graphs[i]->name, h->name);
        if (!taken) return ir_intern(s->m, h->name);
    }
    snprintf(buf, sizeof buf, "%s.s%ld", h->name, ++s->serial);
    return ir_intern(s->m, buf);
}

static sp_status ctx_body(spec *s, spec_ctx *c);

/* a with every TENSOR replaced by a new, equal abstract.  A context is
 * shared by every call with its signature, and so is its result: each
 * call site's tensors must have abstracts of their own, since a tensor's
 * abstract names the node that carries it (abs_node) when a later leaf's
 * trace reads it -- f(x) - f(y) would otherwise read one call twice. */
static sp_abstract *fresh(spec *s, sp_abstract *a, int depth) {
    if (a->kind == SP_ABS_TENSOR) return sp_abs_tensor(s->m, a->dtype, a->ndim, a->shape, a->device);
    if ((a->kind != SP_ABS_TUPLE && a->kind != SP_ABS_LIST) || depth > 32) return a;
    sp_abstract *small[16], **it = a->n <= 16 ? small : malloc(sizeof *it * (size_t)a->n);
    if (!it) return NULL;
    int i, any = 0;
    for (i = 0; i < a->n; i++) {
        if (!(it[i] = fresh(s, a->items[i], depth + 1))) break;
        any |= it[i] != a->items[i];
    }
    sp_abstract *r = i < a->n ? NULL : any ? sp_abs_seq(s->m, a->kind, a->n, it) : a;
    if (it != small) free(it);
    return r;
}


/* Makes c's clone graph and parameters (a fresh graph for every run). */
static sp_status ctx_begin(spec *s, spec_ctx *c) {
    sp_graph *h = c->src;
    ir_map_free(&c->slots);
    const char *name = clone_name(s, h, c->generic);
    c->clone = name ? ir_graph_new(s->m, name, c->parent ? c->parent->clone : NULL, h->loc) : NULL;
    if (!c->clone) return sp_last_status() ? sp_last_status() : nomem();
    c->clone->has_varargs = h->has_varargs && !c->packed;
    for (int i = 0; i < h->n_params; i++) {
        sp_node *p = ir_param_new(c->clone, h->param_names ? h->param_names[i] : NULL, h->params[i]->loc);
        if (!p) return sp_last_status();
        if (h->defaults && h->defaults[i]) {
            sp_value_retain(h->defaults[i]);
            c->clone->defaults[i] = h->defaults[i];
        }
        /* a tensor parameter (or one in a tuple) gets its own abstract: the
         * caller's node keeps the caller's one (abs_node), this one names
         * the parameter */
        sp_abstract *a = fresh(s, c->args[i], 0);
        spec_slot *sl = a ? slot_new(s, c, h->params[i]) : NULL;
        if (!sl) return nomem();
        sl->abs = a;
        sl->node = p;
        sl->pure = 1;
        p->abs = a;
        spec_note(s, a, p);
    }
    return SP_OK;
}

/* Forgets every context made after c started (they may rest on c's guess).
 * They stay in s->ctxs (freed at the end): FUNC abstracts may name them. */
static void evict_after(spec *s, spec_ctx *c) {
    for (int i = s->n_ctxs - 1; i >= 0 && s->ctxs[i]->serial > c->serial; i--) {
        spec_ctx *x = s->ctxs[i];
        if (x->dead) continue;
        memo_remove(s, x);
        count_add(s, x->src, -1);
        ir_map_free(&x->slots);
        x->dead = 1;
        x->next = NULL;
    }
}

/* Builds c to its fixed point. */
static sp_status ctx_run(spec *s, spec_ctx *c) {
    c->result = sp_abs_bottom(s->m);
    if (!c->result) return nomem();
    for (int iter = 0;; iter++) {
        sp_status st = ctx_begin(s, c);
        if (st) return st;
        c->busy = 1;
        busy_add(s, c->src, 1);
        c->recursed = 0;
        c->impure = 0;
        st = ctx_body(s, c);
        c->busy = 0;
        busy_add(s, c->src, -1);
        if (st) return st;
        sp_node *out = c->src->output;
        spec_slot *sl = spec_lookup(s, c, out);
        if (!sl) return sp_last_status();
        sp_abstract *r = sl->abs;
        if (!c->recursed) {
            c->result = r;
            break;
        }
        sp_abstract *j = sp_abs_join(s->m, c->result, r);
        if (!j) return nomem();
        if (sp_abs_equal(j, c->result)) break; /* the guess held: the calls inside used it */
        c->result = iter + 1 >= SPEC_MAX_RERUNS ? sp_abs_any(s->m) : j;
        if (!c->result) return nomem();
        evict_after(s, c);
        s->stats.n_reruns++;
    }
    /* a busy context was met: it may not terminate, so never fold its calls */
    if (c->recursed) c->impure = 1;
    c->done = 1;
    return SP_OK;
}

/* The context of h over scope for parameter abstracts params (bound),
 * found or made and built.  certain: the call certainly runs. */
spec_ctx *spec_enter(spec *s, sp_graph *h, spec_ctx *scope, int n, sp_abstract **params, int certain, int flags) {
    int packed = (flags & SPEC_PACKED) && h->has_varargs;
    sp_abstract *small[16], **key = n <= 16 ? small : malloc(sizeof *key * (size_t)n);
    spec_ctx *c = NULL;
    if (!key) {
        nomem();
        return NULL;
    }
    int nested = busy_of(s, h), all = count_of(s, h);
    int level = s->depth > SPEC_DEEP || nested >= SPEC_WIDEN2 || all >= SPEC_WIDEN2_ALL ? 2
              : nested >= SPEC_WIDEN || all >= SPEC_WIDEN_ALL                      ? 1
                                                                                   : 0;
    for (int i = 0; i < n; i++) {
        key[i] = level ? sp_abs_widen(s->m, params[i], level) : params[i];
        if (!key[i]) goto done;
        if (key[i] != params[i] && !sp_abs_equal(key[i], params[i])) s->stats.n_widened++;
    }
    uint64_t hash = sig_hash(h, scope, n, key, packed);
    c = memo_find(s, h, scope, n, key, packed, hash);
    if (c) goto done;
    if (s->depth >= SPEC_MAX_DEPTH) {
        sp_error(SP_ERR_UNSUPPORTED, "specialize: calls nested more than %d deep (at @%s)", SPEC_MAX_DEPTH,
                 h->name);
        goto done;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        nomem();
        goto fail;
    }
    if (s->n_ctxs == s->cap_ctxs) {
        int cap = s->cap_ctxs ? s->cap_ctxs * 2 : 64;
        spec_ctx **a = realloc(s->ctxs, sizeof *a * (size_t)cap);
        if (!a) {
            nomem();
            goto fail;
        }
        s->ctxs = a;
        s->cap_ctxs = cap;
    }
    c->src = h;
    c->parent = scope;
    c->n_args = n;
    c->args = ir_alloc(s->m, sizeof *c->args * (size_t)(n ? n : 1));
    if (!c->args) goto fail;
    memcpy(c->args, key, sizeof *key * (size_t)n);
    c->hash = hash;
    c->certain = certain;
    c->generic = (flags & SPEC_GENERIC) != 0;
    c->packed = packed;
    c->serial = ++s->serial;
    s->ctxs[s->n_ctxs++] = c;
    c->next = ir_map_get(&s->memo, hash);
    if (ir_map_put(&s->memo, hash, c)) {
        s->n_ctxs--;
        goto fail;
    }
    count_add(s, h, 1);
    s->stats.n_contexts++;
    s->depth++;
    sp_status st = ctx_run(s, c);
    s->depth--;
    if (st) c = NULL; /* it stays in the list: freed at the end */
    goto done;
fail:
    free(c);
    c = NULL;
done:
    if (key != small) free(key);
    return c;
}

spec_ctx *spec_generic(spec *s, sp_graph *h, spec_ctx *scope) {
    sp_abstract *small[16], **params = h->n_params <= 16 ? small : malloc(sizeof *params * (size_t)h->n_params);
    if (!params) {
        nomem();
        return NULL;
    }
    spec_ctx *c = NULL;
    int i;
    for (i = 0; i < h->n_params; i++)
        if (!(params[i] = sp_abs_any(s->m))) break;
    if (i == h->n_params) c = spec_enter(s, h, scope, h->n_params, params, 0, SPEC_GENERIC);
    if (params != small) free(params);
    return c;
}

/* ---- calls ---------------------------------------------------------------------------------- */

/* The slot of call n whose callee abstract is fn with args (bound ones
 * first, n_bound of them, from partials).  The callee's run-time node is
 * the source callee's. */
static sp_status spec_call(spec *s, spec_ctx *c, sp_node *n, spec_slot *out);

static int any_carries(spec *s, spec_ctx *c, const sp_node *n) {
    for (int i = 0; i < n->n_inputs; i++) {
        spec_slot *sl = spec_lookup(s, c, n->inputs[i]);
        if (!sl || sl->carries) return 1;
    }
    return 0;
}

/* Nonzero when top-level graph h has a user backward rule: a global
 * <name>_bprop of the source module (src/ad/j.c finds it by name). */
static int has_custom_bprop(spec *s, const sp_graph *h) {
    if (h->parent || !h->name) return 0;
    char nm[512];
    snprintf(nm, sizeof nm, "%s_bprop", h->name);
    sp_value *v = ir_module_get_global(s->src, nm);
    return v && v->kind == SP_V_GRAPH;
}

sp_status spec_call_graph(spec *s, spec_ctx *c, sp_node *n, sp_graph *h, spec_ctx *scope, int na,
                            leaf_arg *args, int certain, int flags, spec_ctx **ctx_out) {
    *ctx_out = NULL;
    sp_abstract *small[16], **params = h->n_params <= 16 ? small : malloc(sizeof *params * (size_t)h->n_params);
    if (!params) return nomem();
    sp_status st = spec_bind_abs(s, h, na, args, params);
    if (st) {
        if (params != small) free(params);
        spec_ctx tmp = *c;
        tmp.certain = certain;
        return spec_user_error(s, &tmp, n);
    }
    spec_ctx *k = spec_enter(s, h, scope, h->n_params, params, certain, flags);
    if (params != small) free(params);
    if (!k) return sp_last_status() ? sp_last_status() : nomem();
    *ctx_out = k;
    return SP_OK;
}

/* Nonzero when abstract a names a function whose scope is k or nested in k. */
static int scoped_in(const sp_abstract *a, const spec_ctx *k, int depth) {
    if (depth > 16) return 1;
    if (a->kind == SP_ABS_FUNC) {
        for (const spec_ctx *e = a->scope; e; e = e->parent)
            if (e == k) return 1;
        return 0;
    }
    if (a->kind == SP_ABS_PARTIAL && scoped_in(a->fn, k, depth + 1)) return 1;
    if (a->kind == SP_ABS_KEYWORD) return scoped_in(a->items[0], k, depth + 1);
    if (a->kind == SP_ABS_TUPLE || a->kind == SP_ABS_LIST || a->kind == SP_ABS_ALT || a->kind == SP_ABS_PARTIAL)
        for (int i = 0; i < a->n; i++)
            if (scoped_in(a->items[i], k, depth + 1)) return 1;
    return 0;
}

/* a with every function scoped in k marked foreign (busy k: forgotten,
 * ANY, since k's scope is not fully evaluated yet). */
static sp_abstract *escape(spec *s, sp_abstract *a, const spec_ctx *k, int busy) {
    if (!scoped_in(a, k, 0)) return a;
    if (a->kind == SP_ABS_FUNC && !busy) return a->foreign ? a : sp_abs_func_foreign(s->m, a);
    if (a->kind == SP_ABS_TUPLE || a->kind == SP_ABS_LIST) {
        sp_abstract **items = malloc(sizeof *items * (size_t)(a->n ? a->n : 1));
        if (!items) return NULL;
        int i;
        for (i = 0; i < a->n; i++)
            if (!(items[i] = escape(s, a->items[i], k, busy))) break;
        sp_abstract *r = i == a->n ? sp_abs_seq(s->m, a->kind, a->n, items) : NULL;
        free(items);
        return r;
    }
    return sp_abs_any(s->m);
}

/* The result of calling context k.  A closure k returns that is scoped in
 * k closes over the new activation of k (a new frame at run time), not
 * over any scope the caller sees, even when the caller is nested in
 * another activation of k (recursion): it is marked foreign, so calls of
 * it keep the run-time value.  A busy k is recursion: the call gets k's
 * guess, whose closures over k cannot be looked into yet (ANY). */
static sp_abstract *ctx_result(spec *s, spec_ctx *k) {
    if (k->busy) k->recursed = 1;
    sp_abstract *r = escape(s, k->result, k, k->busy);
    if (!r) nomem();
    return r;
}

/* Materializes call arguments that are folded (leaf args need nodes only
 * when a replacement reads them: spec_leaf looks them up lazily). */
static sp_status spec_call(spec *s, spec_ctx *c, sp_node *n, spec_slot *out) {
    spec_callee ce;
    sp_status st = spec_callee_unwrap(s, c, n, &ce);
    if (st) return st;
    spec_slot *fs = spec_lookup(s, c, ce.fsrc);
    sp_abstract *fn = ce.fn;
    int carries = any_carries(s, c, n);
    out->pure = 0;
    out->carries = 0;
    if (fn->kind == SP_ABS_CONST && fn->value->kind == SP_V_BUILTIN && fn->value->u.builtin == RT_B_GRAD_CALL &&
        ce.n_bound == 6) {
        /* a gradient function: its gradient graph, when everything is static */
        sp_abstract *h = NULL;
        st = spec_grad_call(s, c, n, ce.args, ce.na - 6, ce.args + 6, &h);
        if (st) {
            free(ce.args);
            return st;
        }
        if (h) {
            memmove(ce.args, ce.args + 6, sizeof *ce.args * (size_t)(ce.na - 6));
            ce.na -= 6;
            ce.n_bound = 0;
            fn = h;
        }
    }
    if (fn->kind == SP_ABS_CONST &&
        (fn->value->kind == SP_V_BUILTIN || fn->value->kind == SP_V_PRIM)) {
        st = spec_leaf(s, c, n, fn->value, ce.na, ce.args, out);
        free(ce.args);
        return st;
    }
    if (fn->kind == SP_ABS_CONST && fn->value->kind == SP_V_GRAPH && is_source_graph(s, fn->value->u.graph) &&
        fn->value->u.graph->n_fv == 0 && (fn->value->u.graph->module == s->src || !fn->value->u.graph->parent)) {
        fn = sp_abs_func(s->m, fn->value->u.graph, NULL);
        if (!fn) {
            free(ce.args);
            return nomem();
        }
    }
    if (fn->kind == SP_ABS_FUNC) {
        spec_ctx *k = NULL;
        /* a constant callee when its scope is visible, nothing rides on the
         * callee node and a partial's bound arguments have nodes here; a
         * function with a user backward rule is called as its generic clone
         * (the graph grad finds the rule beside), never through a partial */
        int custom = has_custom_bprop(s, fn->graph), direct = !fn->foreign && spec_scope_visible(c, fn->scope);
        if (direct && ce.n_bound > 0) {
            int r = custom ? 0 : spec_bound_nodes(s, c, &ce);
            if (r < 0) {
                free(ce.args);
                return sp_last_status() ? sp_last_status() : nomem();
            }
            direct = r;
        }
        /* a direct call of a *args function passes its extra arguments as
         * one tuple to a clone of its own (SPEC_PACKED), which inlines */
        int pack = direct && fn->graph->has_varargs && !custom && spec_all_positional(s, &ce);
        st = spec_call_graph(s, c, n, fn->graph, fn->scope, ce.na, ce.args, c->certain, pack ? SPEC_PACKED : 0, &k);
        if (st || !k) free(ce.args);
        if (st) return st;
        if (!k) { /* a binding error left to run time */
            out->abs = sp_abs_any(s->m);
            out->node = out->abs ? spec_emit_orig(s, c, n, out->abs) : NULL;
            return out->node ? SP_OK : sp_last_status();
        }
        sp_abstract *r = ctx_result(s, k);
        if (r) r = fresh(s, r, 0);
        if (!r) {
            free(ce.args);
            return nomem();
        }
        if (ce.n_bound > 0 || fn->foreign || !spec_scope_visible(c, fn->scope)) spec_guess_check(s, fn->graph, fn->scope, k);
        int pure = !k->busy && !k->impure;
        out->abs = r;
        out->pure = pure;
        if (pure && !carries && spec_foldable(c, r)) {
            free(ce.args);
            s->stats.n_folded++;
            return SP_OK; /* folded: the callee need not run */
        }
        if (!pure) c->impure = 1;
        if (direct && custom && !(k = spec_generic(s, fn->graph, NULL))) {
            free(ce.args);
            return sp_last_status() ? sp_last_status() : nomem();
        }
        /* a direct call gets every argument (bound ones included), bound to
         * the clone's parameters when it can be; a call through the callee
         * value gets the call's own (the source's, or the spread items) */
        int first = direct ? 0 : ce.n_bound, nargs = ce.na - first;
        sp_node *small[16], **in = nargs < 16 ? small : malloc(sizeof *in * (size_t)(nargs + 1));
        sp_node *x = NULL, **pos = NULL;
        int npos = -1;
        if (!in || spec_call_nodes(s, c, n, &ce) < 0) {
            if (in != small) free(in);
            free(ce.args);
            return sp_last_status() ? sp_last_status() : nomem();
        }
        if (direct) {
            sp_value *gv = sp_value_graph(k->clone);
            in[0] = gv ? ir_const_new(c->clone, gv, ce.fsrc->loc) : NULL;
            sp_value_release(gv);
            if (in[0]) in[0]->abs = fn;
        } else {
            in[0] = spec_input(s, c, ce.fsrc);
        }
        if (direct && in[0]) npos = spec_bind_nodes(s, c, n, &ce, k->clone, k->packed, &pos);
        if (npos >= 0) { /* keywords and defaults bound: a plain call inline can open */
            pos[0] = in[0];
            x = spec_apply(s, c, npos + 1, pos, n->loc, r);
        } else if (in[0] && !k->packed) {
            for (int i = 0; i < nargs; i++) in[i + 1] = ce.args[first + i].node;
            x = spec_apply(s, c, nargs + 1, in, n->loc, r);
        }
        free(pos);
        if (in != small) free(in);
        free(ce.args);
        if (!x) return sp_last_status() ? sp_last_status() : nomem();
        x->name = n->name ? ir_intern(s->m, n->name) : NULL;
        out->node = x;
        if (direct && fs->node && fs->carries) {
            /* the callee value carries effects (it came through an effect
             * tuple): keep it evaluated, before the call, beside the result */
            sp_value *mk = sp_value_builtin(RT_B_MAKE_TUPLE), *gi = sp_value_builtin(RT_B_TUPLE_GETITEM),
                     *one = sp_value_int(1);
            sp_node *tin[3] = {mk ? spec_const(s, c, mk, n->loc) : NULL, fs->node, x};
            sp_abstract *items[2] = {fs->abs, r};
            sp_abstract *ta = sp_abs_seq(s->m, SP_ABS_TUPLE, 2, items);
            sp_node *t = tin[0] && ta ? spec_apply(s, c, 3, tin, n->loc, ta) : NULL;
            sp_node *gin[3] = {gi ? spec_const(s, c, gi, n->loc) : NULL, t, one ? spec_const(s, c, one, n->loc) : NULL};
            sp_value_release(mk);
            sp_value_release(gi);
            sp_value_release(one);
            out->node = t && gin[0] && gin[2] ? spec_apply(s, c, 3, gin, n->loc, r) : NULL;
            if (!out->node) return sp_last_status() ? sp_last_status() : nomem();
        }
        return SP_OK;
    }
    if (fn->kind == SP_ABS_ALT) {
        sp_abstract *r = sp_abs_bottom(s->m);
        int pure = 1;
        for (int i = 0; i < fn->n && r; i++) {
            sp_abstract *f = fn->items[i];
            if (f->kind != SP_ABS_FUNC) {
                r = sp_abs_any(s->m);
                pure = 0;
                break;
            }
            spec_ctx *k = NULL;
            st = spec_call_graph(s, c, n, f->graph, f->scope, ce.na, ce.args, 0, 0, &k);
            if (st) break;
            if (!k) {
                r = sp_abs_any(s->m);
                pure = 0;
                continue;
            }
            sp_abstract *kr = ctx_result(s, k);
            r = kr ? sp_abs_join(s->m, r, kr) : NULL;
            spec_guess_check(s, f->graph, f->scope, k);
            if (k->busy || k->impure) pure = 0;
        }
        free(ce.args);
        if (st) return st;
        if (r) r = fresh(s, r, 0);
        if (!r) return nomem();
        out->abs = r;
        out->pure = pure;
        if (!pure) c->impure = 1;
        out->node = spec_emit_orig(s, c, n, r);
        return out->node ? SP_OK : sp_last_status();
    }
    free(ce.args);
    if (fn->kind == SP_ABS_CONST && !is_callable_abs(fn)) {
        sp_error(SP_ERR_TYPE, "'%s' object is not callable", sp_value_kind_name(fn->value));
        st = spec_user_error(s, c, n);
        if (st) return st;
    }
    /* an unknown callee: the call stays, its result unknown (in a gradient
     * graph, maybe a guessed backward closure, called with anything) */
    if (fn->kind != SP_ABS_CONST && c->src->module == s->m && s->n_guesses > 0) s->guess_conflict = 1;
    out->abs = fn->kind == SP_ABS_BOTTOM ? sp_abs_bottom(s->m) : sp_abs_any(s->m);
    if (!out->abs) return nomem();
    c->impure = 1;
    out->node = spec_emit_orig(s, c, n, out->abs);
    return out->node ? SP_OK : sp_last_status();
}

/* ---- builtins the specializer understands structurally ------------------------------------ */

static int const_int(const sp_abstract *a, int64_t *v) {
    if (a->kind != SP_ABS_CONST) return 0;
    if (a->value->kind == SP_V_INT) {
        *v = a->value->u.i;
        return 1;
    }
    if (a->value->kind == SP_V_BOOL) {
        *v = a->value->u.b;
        return 1;
    }
    return 0;
}

/* switch(cond, a, b) */
static sp_status spec_switch(spec *s, spec_ctx *c, sp_node *n, spec_slot *out) {
    spec_slot *k = spec_lookup(s, c, n->inputs[1]), *a = spec_lookup(s, c, n->inputs[2]),
              *b = spec_lookup(s, c, n->inputs[3]);
    if (!k || !a || !b) return sp_last_status();
    out->pure = 1;
    if (k->abs->kind == SP_ABS_CONST) {
        int t = sp_value_truth(k->abs->value);
        if (t >= 0 && !k->carries) {
            spec_slot *p = t ? a : b;
            out->abs = p->abs;
            out->node = p->node;
            out->lazy = p->lazy;
            out->carries = p->carries;
            out->pure = p->pure;
            s->stats.n_folded++;
            return SP_OK;
        }
        if (t >= 0) { /* the condition's effect must still run: keep the switch */
            out->abs = (t ? a : b)->abs;
            out->carries = 1;
            out->node = spec_emit_orig(s, c, n, out->abs);
            return out->node ? SP_OK : sp_last_status();
        }
        sp_status st = spec_user_error(s, c, n);
        if (st) return st;
    }
    if (is_callable_abs(a->abs) && is_callable_abs(b->abs)) {
        sp_abstract *alts[64];
        int m = 0;
        for (int side = 0; side < 2; side++) {
            sp_abstract *x = side ? b->abs : a->abs;
            if (x->kind == SP_ABS_ALT)
                for (int i = 0; i < x->n && m < 64; i++) alts[m++] = x->items[i];
            else if (m < 64)
                alts[m++] = x;
        }
        out->abs = sp_abs_alt(s->m, m, alts);
    } else {
        out->abs = sp_abs_join(s->m, a->abs, b->abs);
    }
    if (!out->abs) return nomem();
    out->carries = k->carries || a->carries || b->carries;
    out->node = spec_emit_orig(s, c, n, out->abs);
    return out->node ? SP_OK : sp_last_status();
}

/* make_tuple / make_list: items' abstracts; a constant when all are. */
static sp_status spec_make_seq(spec *s, spec_ctx *c, sp_node *n, int list, spec_slot *out) {
    int na = n->n_inputs - 1, all_const = 1, carries = 0, pure = 1;
    sp_abstract **items = malloc(sizeof *items * (size_t)(na ? na : 1));
    if (!items) return nomem();
    for (int i = 0; i < na; i++) {
        spec_slot *sl = spec_lookup(s, c, n->inputs[i + 1]);
        if (!sl) {
            free(items);
            return sp_last_status();
        }
        items[i] = sl->abs;
        if (sl->abs->kind != SP_ABS_CONST) all_const = 0;
        if (sl->carries || !sl->pure) carries = 1;
    }
    if (all_const && !carries) {
        sp_value **vals = malloc(sizeof *vals * (size_t)(na ? na : 1));
        if (!vals) {
            free(items);
            return nomem();
        }
        for (int i = 0; i < na; i++) vals[i] = items[i]->value;
        sp_value *v = list ? sp_value_list(na, vals) : sp_value_tuple(na, vals);
        free(vals);
        out->abs = v ? sp_abs_const(s->m, v) : NULL;
        sp_value_release(v);
    } else {
        out->abs = sp_abs_seq(s->m, list ? SP_ABS_LIST : SP_ABS_TUPLE, na, items);
    }
    free(items);
    if (!out->abs) return nomem();
    out->pure = pure;
    out->carries = carries;
    if (all_const && !carries && spec_foldable(c, out->abs)) {
        s->stats.n_folded++;
        return SP_OK;
    }
    if (!carries) {
        /* written where the tuple itself is used: the front end's tuples
         * that pass a function along with values, make_tuple(x, @if_after)
         * read back with tuple_getitem, would otherwise turn every such
         * function into a generic clone, specialized for nothing */
        out->lazy = n;
        return SP_OK;
    }
    out->node = spec_emit_orig(s, c, n, out->abs);
    return out->node ? SP_OK : sp_last_status();
}

/* tuple_getitem(t, i) and getitem(t, i) on a TUPLE/LIST abstract. */
static int spec_seq_item(spec *s, spec_ctx *c, sp_node *n, spec_slot *out, sp_status *st) {
    spec_slot *t = spec_lookup(s, c, n->inputs[1]), *ix = spec_lookup(s, c, n->inputs[2]);
    int64_t i;
    *st = SP_OK;
    if (!t || !ix) {
        *st = sp_last_status();
        return 1;
    }
    if ((t->abs->kind != SP_ABS_TUPLE && t->abs->kind != SP_ABS_LIST) || !const_int(ix->abs, &i)) return 0;
    int len = t->abs->n;
    if (i < 0) i += len;
    if (i < 0 || i >= len) return 0; /* the run-time error, from the leaf */
    out->abs = t->abs->items[i];
    out->pure = 1;
    out->carries = t->carries;
    if (!t->carries && spec_foldable(c, out->abs)) {
        s->stats.n_folded++;
        return 1;
    }
    sp_node *known = t->carries ? NULL : ir_map_get(&s->abs_node, IR_PKEY(out->abs));
    if (known && spec_visible(c, known)) { /* the item's own node */
        out->node = known;
        return 1;
    }
    /* t[i] on a sequence with a constant index is tuple_getitem(t, i): the
     * form the passes and the gradient expansion read */
    sp_value *gi = sp_value_builtin(RT_B_TUPLE_GETITEM), *iv = sp_value_int(i);
    sp_node *in[3] = {gi ? spec_const(s, c, gi, n->inputs[0]->loc) : NULL, spec_input(s, c, n->inputs[1]),
                      iv ? spec_const(s, c, iv, n->inputs[2]->loc) : NULL};
    sp_value_release(gi);
    sp_value_release(iv);
    out->node = in[0] && in[1] && in[2] ? spec_apply(s, c, 3, in, n->loc, out->abs) : NULL;
    if (out->node) out->node->name = n->name ? ir_intern(s->m, n->name) : NULL;
    if (!out->node) *st = sp_last_status() ? sp_last_status() : nomem();
    return 1;
}

/* partial(fn, args...) */
static sp_status spec_partial(spec *s, spec_ctx *c, sp_node *n, spec_slot *out) {
    int na = n->n_inputs - 2;
    spec_slot *f = spec_lookup(s, c, n->inputs[1]);
    if (!f) return sp_last_status();
    sp_abstract **items = malloc(sizeof *items * (size_t)(na > 0 ? na : 1));
    if (!items) return nomem();
    int carries = f->carries;
    for (int i = 0; i < na; i++) {
        spec_slot *sl = spec_lookup(s, c, n->inputs[i + 2]);
        if (!sl) {
            free(items);
            return sp_last_status();
        }
        items[i] = sl->abs;
        carries |= sl->carries;
    }
    out->abs = sp_abs_partial(s->m, f->abs, na, items);
    free(items);
    if (!out->abs) return nomem();
    out->pure = 1;
    out->carries = carries;
    out->node = spec_emit_orig(s, c, n, out->abs);
    return out->node ? SP_OK : sp_last_status();
}

/* make_keyword(name, value) */
static int spec_keyword(spec *s, spec_ctx *c, sp_node *n, spec_slot *out, sp_status *st) {
    spec_slot *k = spec_lookup(s, c, n->inputs[1]), *v = spec_lookup(s, c, n->inputs[2]);
    *st = SP_OK;
    if (!k || !v) {
        *st = sp_last_status();
        return 1;
    }
    if (k->abs->kind != SP_ABS_CONST || k->abs->value->kind != SP_V_STR || v->abs->kind == SP_ABS_CONST) return 0;
    out->abs = sp_abs_keyword(s->m, k->abs->value->u.str.s, v->abs);
    if (!out->abs) {
        *st = nomem();
        return 1;
    }
    out->pure = 1;
    out->carries = v->carries;
    out->node = spec_emit_orig(s, c, n, out->abs);
    if (!out->node) *st = sp_last_status();
    return 1;
}

/* ---- one node, one graph -------------------------------------------------------------------- */

static sp_status spec_node(spec *s, spec_ctx *c, sp_node *n) {
    spec_slot *out = slot_new(s, c, n);
    if (!out) return SP_ERR_NOMEM;
    if (n->n_inputs < 1) return sp_error(SP_ERR_INTERNAL, "specialize: node %%%d has no callee", n->id);
    spec_slot *f = spec_lookup(s, c, n->inputs[0]);
    if (!f) return sp_last_status();
    sp_status st = SP_OK;
    if (f->abs->kind == SP_ABS_CONST && f->abs->value->kind == SP_V_BUILTIN) {
        int id = f->abs->value->u.builtin, na = n->n_inputs - 1;
        switch (id) {
        case RT_B_SWITCH:
            if (na == 3) st = spec_switch(s, c, n, out);
            else goto call;
            break;
        case RT_B_MAKE_TUPLE:
        case RT_B_MAKE_LIST: st = spec_make_seq(s, c, n, id == RT_B_MAKE_LIST, out); break;
        case RT_B_TUPLE_GETITEM:
        case RT_B_GETITEM:
            if (na != 2 || !spec_seq_item(s, c, n, out, &st)) goto call;
            break;
        case RT_B_PARTIAL:
            if (na < 1) goto call;
            st = spec_partial(s, c, n, out);
            break;
        case RT_B_MAKE_KEYWORD:
            if (na != 2 || !spec_keyword(s, c, n, out, &st)) goto call;
            break;
        default: goto call;
        }
        goto done;
    }
call:
    st = spec_call(s, c, n, out);
done:
    if (st) return st;
    if (!out->abs) return sp_last_status() ? sp_last_status() : nomem();
    if (out->node && !out->node->abs) out->node->abs = out->abs;
    /* an effect no tuple keeps alive rides on its users, and on theirs:
     * they must keep reading it */
    if (!ir_map_get(&s->anchored, IR_PKEY(n)) && (!out->pure || any_carries(s, c, n))) out->carries = 1;
    return SP_OK;
}

static sp_status ctx_body(spec *s, spec_ctx *c) {
    spec_order *o = order_of(s, c->src);
    if (!o) return sp_last_status() ? sp_last_status() : nomem();
    for (int i = 0; i < o->n; i++) {
        sp_status st = spec_node(s, c, o->nodes[i]);
        if (st) return st;
    }
    sp_node *out = spec_input(s, c, c->src->output);
    if (!out) return sp_last_status();
    c->clone->output = out;
    return SP_OK;
}

/* ---- the module ------------------------------------------------------------------------------ */

static int mark_graph(void *ctx, sp_graph *g);

typedef struct prune {
    ir_map live;
    sp_graph **stack;
    int n, cap;
} prune;

static int mark_graph(void *ctx, sp_graph *g) {
    prune *p = ctx;
    for (; g; g = g->parent) {
        if (ir_map_get(&p->live, IR_PKEY(g))) return 0;
        if (ir_map_put(&p->live, IR_PKEY(g), g)) return 1;
        if (p->n == p->cap) {
            int cap = p->cap ? p->cap * 2 : 64;
            sp_graph **a = realloc(p->stack, sizeof *a * (size_t)cap);
            if (!a) return 1;
            p->stack = a;
            p->cap = cap;
        }
        p->stack[p->n++] = g;
    }
    return 0;
}

/* Drops the clones nothing reachable from the globals names (guesses of
 * fixed-point iterations, evicted contexts, folded calls). */
static sp_status prune_graphs(sp_module *m) {
    prune p = {0};
    sp_status st = SP_OK;
    for (int i = 0; i < m->n_globals && !st; i++)
        if (ir_value_graphs(m->global_values[i], mark_graph, &p)) st = nomem();
    while (p.n > 0 && !st) {
        sp_graph *g = p.stack[--p.n];
        int k = 0;
        sp_node **nodes = ir_graph_nodes(g, &k);
        if (!nodes) {
            st = sp_last_status();
            break;
        }
        for (int i = 0; i < k && !st; i++)
            for (int j = 0; j < nodes[i]->n_inputs && !st; j++) {
                sp_node *x = nodes[i]->inputs[j];
                if (x->kind == SP_NODE_CONST && ir_value_graphs(x->value, mark_graph, &p)) st = nomem();
            }
        if (!st && g->output && g->output->kind == SP_NODE_CONST &&
            ir_value_graphs(g->output->value, mark_graph, &p))
            st = nomem();
        free(nodes);
    }
    if (!st) {
        int k = 0;
        for (int i = 0; i < m->n_graphs; i++) {
            sp_graph *g = m->graphs[i];
            if (ir_map_get(&p.live, IR_PKEY(g))) {
                m->graphs[k++] = g;
                g->id = k;
            } else { /* gone with the module's arena, but for what the graph owns */
                for (int j = 0; g->defaults && j < g->n_params; j++)
                    sp_value_release(g->defaults[j]), g->defaults[j] = NULL;
                free(g->fv); /* lists made while gradients were expanded */
                g->fv = NULL;
                g->n_fv = 0;
            }
        }
        m->n_graphs = k;
    }
    ir_map_free(&p.live);
    free(p.stack);
    return st;
}

static void spec_free(spec *s) {
    for (int i = 0; i < s->n_ctxs; i++) {
        ir_map_free(&s->ctxs[i]->slots);
        free(s->ctxs[i]);
    }
    free(s->ctxs);
    ir_map_free(&s->memo);
    ir_map_free(&s->counts);
    ir_map_free(&s->busy);
    ir_map_free(&s->orders);
    ir_map_free(&s->abs_node);
    ir_map_free(&s->consts);
    ir_map_free(&s->anchored);
    ir_map_free(&s->tensor_abs);
    spec_leaf_free(s);
    spec_grad_free(s);
    free(s->guesses);
}

static sp_module *specialize_run(sp_module *src, const char *entry, int n, sp_value *const *args,
                                 sp_spec_stats *stats, int no_guess, int *conflict);

sp_module *sp_specialize(sp_module *src, const char *entry, int n, sp_value *const *args, sp_spec_stats *stats) {
    if (!src || n < 0 || (n > 0 && !args)) {
        sp_error(SP_ERR_ARG, "specialize: NULL module or arguments");
        return NULL;
    }
    if (!entry) entry = "main";
    int conflict = 0;
    sp_module *m = specialize_run(src, entry, n, args, stats, 0, &conflict);
    if (m && conflict) { /* a backward closure's guess was wrong: no guesses */
        sp_module_free(m);
        m = specialize_run(src, entry, n, args, stats, 1, &conflict);
    }
    return m;
}

static sp_module *specialize_run(sp_module *src, const char *entry, int n, sp_value *const *args,
                                 sp_spec_stats *stats, int no_guess, int *conflict) {
    sp_value *fn = ir_module_get_global(src, entry);
    if (!fn) {
        sp_error(SP_ERR_ARG, "%s: no function '%s' at module level (choose one with --entry)", src->file, entry);
        return NULL;
    }
    if (fn->kind != SP_V_GRAPH || fn->u.graph->n_fv > 0) {
        sp_error(SP_ERR_TYPE, "%s: '%s' is a %s, not a function", src->file, entry, sp_value_kind_name(fn));
        return NULL;
    }
    spec s;
    memset(&s, 0, sizeof s);
    s.src = src;
    s.no_guess = no_guess;
    s.m = sp_module_new(src->file, src->source);
    if (!s.m) return NULL;
    sp_graph *g = fn->u.graph;
    sp_status st = SP_OK;
    leaf_arg *la = malloc(sizeof *la * (size_t)(n ? n : 1));
    sp_abstract **params = malloc(sizeof *params * (size_t)(g->n_params ? g->n_params : 1));
    if (!la || !params) st = nomem();
    for (int i = 0; i < n && !st; i++) {
        la[i].node = NULL;
        if (!(la[i].abs = sp_abs_of_arg(s.m, args[i]))) st = nomem();
    }
    if (!st) st = spec_bind_abs(&s, g, n, la, params);
    spec_ctx *c = NULL;
    if (!st) {
        c = spec_enter(&s, g, NULL, g->n_params, params, 1, 0);
        if (!c) st = sp_last_status() ? sp_last_status() : nomem();
    }
    free(la);
    free(params);
    if (!st) {
        sp_value *gv = sp_value_graph(c->clone);
        st = gv ? ir_module_set_global(s.m, entry, gv) : nomem();
        sp_value_release(gv);
    }
    /* user backward rules: grad finds <name>_bprop beside <name> */
    for (int i = 0; i < src->n_globals && !st; i++) {
        const char *nm = src->global_names[i];
        sp_value *v = src->global_values[i];
        size_t len = strlen(nm);
        if (len <= 6 || strcmp(nm + len - 6, "_bprop") || v->kind != SP_V_GRAPH || v->u.graph->n_fv) continue;
        char base[256];
        snprintf(base, sizeof base, "%.*s", (int)(len - 6), nm);
        sp_value *f = ir_module_get_global(src, base);
        if (!f || f->kind != SP_V_GRAPH) continue;
        spec_ctx *b = spec_generic(&s, v->u.graph, NULL), *fc = b ? spec_generic(&s, f->u.graph, NULL) : NULL;
        if (!fc) {
            st = sp_last_status() ? sp_last_status() : nomem();
            break;
        }
        sp_value *bv = sp_value_graph(b->clone), *fv = sp_value_graph(fc->clone);
        if (!bv || !fv || ir_module_set_global(s.m, nm, bv) || ir_module_set_global(s.m, base, fv)) st = nomem();
        sp_value_release(bv);
        sp_value_release(fv);
    }
    /* free variables first: pruning walks what closures use through them */
    if (!st) st = ir_module_finalize(s.m);
    if (!st) st = prune_graphs(s.m);
    if (!st) st = ir_module_finalize(s.m);
    if (stats) *stats = s.stats;
    *conflict = s.guess_conflict;
    spec_free(&s);
    if (st) {
        sp_module_free(s.m);
        return NULL;
    }
    return s.m;
}
