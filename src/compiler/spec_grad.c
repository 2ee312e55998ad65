/*
 * spec_grad.c -- the gradient API during specialization: spore.grad(f)(x)
 * on a known f becomes a call of f's gradient graph, typed and made of
 * primitive calls like the rest of the program (DESIGN §5: "grad is J
 * until specialization has typed the function").
 *
 * Two steps, at the two calls a program makes.
 *
 * Building the gradient function.  builtin.api("spore.grad" |
 * "spore.value_and_grad" | "spore._grad_operation", f, options...) with f
 * a known function (a FUNC, or another gradient function: grad of grad)
 * and every option a constant gets the abstract
 *     PARTIAL(builtin.grad_call; f, pos, weights, has_aux, with_value, sens)
 * -- the run-time value's shape (grad.c's ad_grad_fn), with the options
 * normalized as _ad_grad_call reads them and `weights` the abstracts of
 * the weight tensors (a TUPLE, or None).  The call itself is pure and is
 * written into the clone lazily (spec_slot.lazy): only when the value is
 * used as a value -- passed on, returned, or called where the expansion
 * falls back -- so a gradient function that is only called leaves no
 * run-time API call, and f needs no generic clone.
 *
 * Calling it.  A call of such a function on arguments it can take by
 * position (f's parameters, plus the sens when sens_param) is expanded:
 *   1. the run-time API's checks, on the arguments' abstracts (an integer
 *      input asked for is the VM's error, at the call, when the call
 *      certainly runs -- ad_grad_check on f's own graph, before f runs,
 *      as grad.c checks before running J);
 *   2. f is specialized for the arguments (an ordinary call: its body
 *      becomes primitive calls, static loops unrolled into clones);
 *   3. ad_expand_grad builds, in the specialized module and nested where
 *      f's clone is, the graph grad runs on that clone: K(f) with J
 *      resolved statically, the rules copied from the rules module;
 *   4. that graph is returned as a FUNC to the caller (specialize.c),
 *      which specializes it for the same arguments -- its K graphs and rule
 *      copies are source graphs like the user's, whose API calls and
 *      Python shape logic fold into primitive calls -- and calls it in
 *      place of the run-time grad.
 * The expansion is cached per (f's context, options), so fixed-point
 * reruns and repeated calls build it once.
 *
 * Falling back.  Whenever something is not static -- options known only
 * at run time, f unknown or out of scope, keyword arguments, a count of
 * arguments f does not take, f still being built (recursion), weights
 * that are not tensors f's clone captures, a user backward rule reachable
 * from f (ad_reaches_custom_bprop: only the run-time API moves the errors
 * such a rule raises to the user's call), or anything the expansion
 * refuses -- the call stays the run-time builtin.grad_call: correct, not
 * lowered.
 *
 * Backward closures.  K(g) returns make_tuple(value, @bprop), and its
 * caller calls bprop with the value's gradient.  The caller reaches that
 * closure through K(g)'s result, a closure over K(g)'s activation, so it
 * calls the run-time value -- which specialize.c would make the *generic*
 * clone (parameters of unknown value: every shape test of the rules left
 * to run time, loops not unrolled).  Instead the value is the clone
 * specialized for a guess: the argument has the value's abstract
 * (spec_value_clone).  Each call through such a value checks that the
 * context it needs is the guessed one (spec_guess_check); a call of an
 * unknown callee inside a gradient graph, or a context that differs,
 * marks the guess wrong, and sp_specialize runs again without guesses
 * (correct, slower: generic clones).
 *
 * The time spent in steps 1-3 (not in specializing the result) is added
 * to sp_spec_stats.expand_seconds: the compile pipeline reports it as its
 * expand_grad stage.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ad/expand.h"
#include "compiler/spec_internal.h"

#define GRAD_MAX_ARGS 64

typedef struct spec_grad_memo {
    spec_ctx *k;           /* f's context (its clone is what K saw) */
    const sp_value *pos;   /* borrowed from a CONST abstract of the module */
    int aux, with_value, sens;
    sp_abstract *weights;  /* TUPLE of weight abstracts, or None */
    sp_graph *h;
    struct spec_grad_memo *next;
} spec_grad_memo;

static sp_status nomem(void) { return sp_error(SP_ERR_NOMEM, "specialize: out of memory"); }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A CONST abstract of v, taking v's reference (NULL: out of memory). */
static sp_abstract *abs_take(spec *s, sp_value *v) {
    sp_abstract *a = v ? sp_abs_const(s->m, v) : NULL;
    sp_value_release(v);
    return a;
}

static int is_const(const sp_abstract *a) { return a && a->kind == SP_ABS_CONST; }

static int truth_of(const sp_abstract *a) { return is_const(a) ? sp_value_truth(a->value) : -1; }

/* Binds API arguments to names as api.c does: 1, or 0 when it would fail
 * (an unknown keyword, an argument given twice, too many). */
static int bind(spec *s, const leaf_arg *args, int na, const char *const *names, int nn, sp_abstract **out) {
    for (int i = 0; i < nn; i++) out[i] = NULL;
    int p = 0;
    for (int i = 0; i < na; i++) {
        sp_abstract *v = NULL;
        const char *kw = spec_kw_of(s, args[i].abs, &v);
        int k = -1;
        if (!kw) {
            k = p++;
            v = args[i].abs;
        } else {
            for (int j = 0; j < nn; j++)
                if (!strcmp(names[j], kw)) k = j;
        }
        if (k < 0 || k >= nn || out[k] || !v) return 0;
        out[k] = v;
    }
    return 1;
}

static int is_grad_fn(const sp_abstract *a) {
    return a->kind == SP_ABS_PARTIAL && a->n == 6 && is_const(a->fn) && a->fn->value->kind == SP_V_BUILTIN &&
           a->fn->value->u.builtin == RT_B_GRAD_CALL;
}

static int is_tensor_abs(const sp_abstract *a) {
    return a->kind == SP_ABS_TENSOR || (is_const(a) && a->value->kind == SP_V_TENSOR);
}

/* The weights as a TUPLE of tensor abstracts, or NULL (not static
 * tensors: the run time decides). */
static sp_abstract *weights_of(spec *s, sp_abstract *w) {
    if (is_tensor_abs(w)) return sp_abs_seq(s->m, SP_ABS_TUPLE, 1, &w);
    sp_abstract *items[GRAD_MAX_ARGS];
    int n = 0;
    if (w->kind == SP_ABS_TUPLE || w->kind == SP_ABS_LIST) {
        if (w->n > GRAD_MAX_ARGS) return NULL;
        for (n = 0; n < w->n; n++) {
            if (!is_tensor_abs(w->items[n])) return NULL;
            items[n] = w->items[n];
        }
    } else if (is_const(w) && (w->value->kind == SP_V_TUPLE || w->value->kind == SP_V_LIST)) {
        if (w->value->u.seq.n > GRAD_MAX_ARGS) return NULL;
        for (n = 0; n < w->value->u.seq.n; n++) {
            sp_value *it = w->value->u.seq.items[n];
            if (it->kind != SP_V_TENSOR || !(items[n] = sp_abs_const(s->m, it))) return NULL;
        }
    } else {
        return NULL;
    }
    return n > 0 ? sp_abs_seq(s->m, SP_ABS_TUPLE, n, items) : NULL;
}

/* A valid grad_position (what ad_grad_fn accepts), else 0. */
static int pos_ok(const sp_value *p) {
    if (p->kind == SP_V_INT || p->kind == SP_V_NONE || (p->kind == SP_V_BOOL && !p->u.b)) return 1;
    if (p->kind != SP_V_TUPLE) return 0;
    for (int i = 0; i < p->u.seq.n; i++)
        if (p->u.seq.items[i]->kind != SP_V_INT) return 0;
    return 1;
}

int spec_grad_fn(spec *s, spec_ctx *c, sp_node *n, int na, const leaf_arg *args, spec_slot *out, sp_status *st) {
    *st = SP_OK;
    if (na < 1 || !is_const(args[0].abs) || args[0].abs->value->kind != SP_V_STR) return 0;
    const char *q = args[0].abs->value->u.str.s;
    int op = !strcmp(q, "spore.grad") ? 0 : !strcmp(q, "spore.value_and_grad") ? 1
           : !strcmp(q, "spore._grad_operation") ? 2 : -1;
    if (op < 0) return 0;
    static const char *gn[] = {"fn", "grad_position", "weights", "has_aux"};
    static const char *on[] = {"get_all", "get_by_list", "sens_param", "fn", "weights"};
    sp_abstract *a[5];
    if (!bind(s, args + 1, na - 1, op < 2 ? gn : on, op < 2 ? 4 : 5, a)) return 0;
    sp_abstract *fn, *w = NULL, *pos;
    int aux = 0, sens = 0;
    if (op < 2) {
        fn = a[0];
        pos = a[1] ? a[1] : abs_take(s, sp_value_int(0));
        if (a[2] && !(is_const(a[2]) && a[2]->value->kind == SP_V_NONE)) w = a[2];
        if ((aux = a[3] ? truth_of(a[3]) : 0) < 0 || !is_const(pos)) return 0;
        if (pos->value->kind == SP_V_NONE) {
            if (!w) return 0; /* the API's error, at run time */
            pos = abs_take(s, sp_value_bool(0));
        }
    } else {
        fn = a[3];
        int all = a[0] ? truth_of(a[0]) : 0, by_list = a[1] ? truth_of(a[1]) : 0;
        sens = a[2] ? truth_of(a[2]) : 0;
        if (all < 0 || by_list < 0 || sens < 0) return 0;
        if (by_list) {
            if (!a[4] || (is_const(a[4]) && a[4]->value->kind == SP_V_NONE)) return 0; /* the API's error */
            w = a[4];
        }
        pos = abs_take(s, all ? sp_value_none() : by_list ? sp_value_bool(0) : sp_value_int(0));
    }
    if (!pos) {
        *st = nomem();
        return 1;
    }
    if (!fn || !pos_ok(pos->value)) return 0;
    if (!(fn->kind == SP_ABS_FUNC && !fn->foreign) && !is_grad_fn(fn)) return 0;
    if (w && !(w = weights_of(s, w))) return sp_last_status() == SP_ERR_NOMEM ? (*st = SP_ERR_NOMEM, 1) : 0;
    sp_value *gc = sp_value_builtin(RT_B_GRAD_CALL);
    sp_abstract *items[6] = {fn, pos, w ? w : abs_take(s, sp_value_none()), abs_take(s, sp_value_bool(aux)),
                             abs_take(s, sp_value_bool(op == 1)), abs_take(s, sp_value_bool(sens))};
    sp_abstract *gca = abs_take(s, gc);
    out->abs = gca && items[2] && items[3] && items[4] && items[5] ? sp_abs_partial(s->m, gca, 6, items) : NULL;
    if (!out->abs) {
        *st = nomem();
        return 1;
    }
    out->pure = 1;
    out->carries = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        spec_slot *sl = spec_lookup(s, c, n->inputs[i]);
        if (!sl) {
            *st = sp_last_status();
            return 1;
        }
        if (sl->carries) { /* an effect rides on an argument: write the call now */
            out->node = spec_emit_orig(s, c, n, out->abs);
            if (!out->node) *st = sp_last_status();
            return 1;
        }
    }
    out->node = NULL;
    out->lazy = n;
    return 1;
}

/* ---- expansion ---------------------------------------------------------------- */

/* A value with the argument's kind and dtype for ad_grad_check (NULL when
 * unknown); *own set when the caller must release it. */
static sp_value *example_of(const sp_abstract *a, int *own) {
    *own = 0;
    if (a->kind == SP_ABS_CONST) return a->value;
    if (a->kind == SP_ABS_SCALAR && a->scalar != SP_V_FLOAT) {
        *own = 1;
        return a->scalar == SP_V_INT ? sp_value_int(1) : sp_value_bool(1);
    }
    if (a->kind == SP_ABS_TENSOR) {
        sp_tensor *t = sp_tensor_new(a->dtype, 0, NULL, SP_META);
        sp_value *v = t ? sp_value_tensor(t) : NULL;
        sp_tensor_release(t);
        *own = v != NULL;
        return v;
    }
    return NULL;
}

typedef struct reach_ctx {
    spec *s;
    ir_map seen;
    sp_graph **stack;
    int n, cap, bad;
} reach_ctx;

static int reach_push(void *ctx, sp_graph *g) {
    reach_ctx *r = ctx;
    if (ir_map_get(&r->seen, IR_PKEY(g))) return 0;
    if (g->module != r->s->m || !g->output) r->bad = 1; /* still being built, or another module's */
    if (r->bad) return 1;
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 32;
        sp_graph **a = realloc(r->stack, sizeof *a * (size_t)cap);
        if (!a) return 1;
        r->stack = a;
        r->cap = cap;
    }
    r->stack[r->n++] = g;
    return ir_map_put(&r->seen, IR_PKEY(g), (void *)1) ? 1 : 0;
}

/* Nonzero when every graph g may call is complete and in the specialized
 * module: K reads them all, and builds K graphs in their module. */
static int complete(spec *s, sp_graph *g) {
    reach_ctx r;
    memset(&r, 0, sizeof r);
    r.s = s;
    int fail = reach_push(&r, g);
    while (!fail && r.n > 0) {
        sp_graph *x = r.stack[--r.n];
        int k = 0;
        sp_node **nodes = ir_graph_nodes(x, &k);
        if (!nodes) fail = 1;
        for (int i = 0; i < k && !fail; i++)
            for (int j = 0; j < nodes[i]->n_inputs && !fail; j++) {
                sp_node *in = nodes[i]->inputs[j];
                if (in->kind == SP_NODE_CONST && in->value) fail = ir_value_graphs(in->value, reach_push, &r);
            }
        if (!fail && x->output->kind == SP_NODE_CONST && x->output->value)
            fail = ir_value_graphs(x->output->value, reach_push, &r);
        free(nodes);
    }
    ir_map_free(&r.seen);
    free(r.stack);
    if (sp_last_status() == SP_ERR_NOMEM) return 0;
    sp_clear_error();
    return !fail && !r.bad;
}

typedef struct jscan {
    ir_map seen;
    sp_graph **stack;
    int n, cap, found, fail;
} jscan;

static int jscan_push(void *ctx, sp_graph *g) {
    jscan *j = ctx;
    if (ir_map_get(&j->seen, IR_PKEY(g))) return 0;
    if (ir_map_put(&j->seen, IR_PKEY(g), (void *)1)) return j->fail = 1;
    if (j->n == j->cap) {
        int cap = j->cap ? j->cap * 2 : 32;
        sp_graph **a = realloc(j->stack, sizeof *a * (size_t)cap);
        if (!a) return j->fail = 1;
        j->stack = a;
        j->cap = cap;
    }
    j->stack[j->n++] = g;
    return 0;
}

/* Nonzero when a graph h may call keeps a run-time J (K met a callee it
 * could not resolve: a function value, a builtin without a static rule),
 * or when that cannot be told (out of memory). */
static int has_runtime_j(sp_graph *h) {
    jscan j;
    memset(&j, 0, sizeof j);
    jscan_push(&j, h);
    while (j.n > 0 && !j.found && !j.fail) {
        sp_graph *x = j.stack[--j.n];
        int k = 0;
        sp_node **nodes = x->output ? ir_graph_nodes(x, &k) : NULL;
        if (x->output && !nodes) j.fail = 1;
        for (int i = 0; i < k && !j.found && !j.fail; i++) {
            sp_node *a = nodes[i];
            if (pass_is_call(a, PB_J)) j.found = 1;
            for (int q = 0; q < a->n_inputs && !j.fail; q++)
                if (a->inputs[q]->kind == SP_NODE_CONST && a->inputs[q]->value)
                    ir_value_graphs(a->inputs[q]->value, jscan_push, &j);
        }
        if (x->output && x->output->kind == SP_NODE_CONST && x->output->value)
            ir_value_graphs(x->output->value, jscan_push, &j);
        free(nodes);
    }
    ir_map_free(&j.seen);
    free(j.stack);
    return j.found || j.fail;
}

/* The free variable of f holding weight w (its abstract, or the same
 * compile-time tensor), or NULL. */
static sp_node *weight_node(const sp_graph *f, const sp_abstract *w) {
    for (int i = 0; i < f->n_fv; i++) {
        const sp_abstract *a = f->fv[i]->abs;
        if (!a) continue;
        if (a == w) return f->fv[i];
        if (is_const(a) && is_const(w) && a->value->kind == SP_V_TENSOR && w->value->kind == SP_V_TENSOR &&
            a->value->u.tensor == w->value->u.tensor)
            return f->fv[i];
    }
    return NULL;
}

static spec_grad_memo *memo_find(spec *s, spec_ctx *k, const sp_value *pos, int aux, int wv, int sens,
                                 const sp_abstract *w) {
    for (spec_grad_memo *m = s->grads; m; m = m->next)
        if (m->k == k && !k->dead && m->aux == aux && m->with_value == wv && m->sens == sens &&
            sp_value_equal(m->pos, pos) && sp_abs_equal(m->weights, w))
            return m;
    return NULL;
}

/* Builds (or finds) the gradient graph of k's clone for these options;
 * *h NULL when the expansion does not apply.  Errors: out of memory. */
static sp_status build(spec *s, spec_ctx *k, sp_node *n, const sp_value *pos, int aux, int wv, int sens,
                       sp_abstract *w, sp_value *const *examples, sp_graph **h) {
    *h = NULL;
    spec_grad_memo *m = memo_find(s, k, pos, aux, wv, sens, w);
    if (m) {
        *h = m->h;
        return SP_OK;
    }
    double t0 = now();
    if (!complete(s, k->clone)) return sp_last_status() == SP_ERR_NOMEM ? SP_ERR_NOMEM : SP_OK;
    /* K reads free variables: the clones made so far get theirs (the busy
     * ones, without an output yet, get theirs at the end) */
    sp_status st = ir_module_finalize(s->m);
    if (st) return st;
    sp_node *wn[GRAD_MAX_ARGS];
    int nw = 0;
    if (w->kind == SP_ABS_TUPLE) {
        for (nw = 0; nw < w->n; nw++)
            if (!(wn[nw] = weight_node(k->clone, w->items[nw]))) return SP_OK; /* the run time decides */
    }
    ad_grad_opts o = {pos, aux, wv, sens, nw, wn, examples};
    sp_graph *g = ad_expand_grad(s->m, k->clone, &o, n->loc);
    if (!g) {
        if (sp_last_status() == SP_ERR_NOMEM) return SP_ERR_NOMEM;
        sp_clear_error(); /* whatever it refuses stays a run-time grad */
        return SP_OK;
    }
    if ((st = ir_module_finalize(s->m))) return st;
    if (has_runtime_j(g)) { /* not static all the way down: the run-time grad, as before */
        s->stats.expand_seconds += now() - t0;
        return sp_last_status() == SP_ERR_NOMEM ? SP_ERR_NOMEM : SP_OK;
    }
    if (!(m = calloc(1, sizeof *m))) return nomem();
    *m = (spec_grad_memo){k, pos, aux, wv, sens, w, g, s->grads};
    s->grads = m;
    s->stats.n_grads++;
    s->stats.expand_seconds += now() - t0;
    *h = g;
    return SP_OK;
}

/* a with every constant float made a SCALAR: a float the gradient is taken
 * with respect to must not fold into constants (its derivative would
 * vanish); ints and bools get no gradient and stay static.  NULL: out of
 * memory. */
static sp_abstract *unfold_floats(spec *s, sp_abstract *a, int depth) {
    if (is_const(a) && a->value->kind == SP_V_FLOAT) return sp_abs_scalar(s->m, SP_V_FLOAT);
    if (depth > 16) return a;
    if (is_const(a) && (a->value->kind == SP_V_TUPLE || a->value->kind == SP_V_LIST)) {
        int n = a->value->u.seq.n, any = 0;
        sp_abstract **it = malloc(sizeof *it * (size_t)(n ? n : 1));
        if (!it) return NULL;
        for (int i = 0; i < n && it; i++) {
            sp_abstract *x = sp_abs_const(s->m, a->value->u.seq.items[i]);
            it[i] = x ? unfold_floats(s, x, depth + 1) : NULL;
            if (!it[i]) {
                free(it);
                return NULL;
            }
            any |= it[i] != x;
        }
        sp_abstract *r = any ? sp_abs_seq(s->m, a->value->kind == SP_V_LIST ? SP_ABS_LIST : SP_ABS_TUPLE, n, it) : a;
        free(it);
        return r;
    }
    if (a->kind == SP_ABS_TUPLE || a->kind == SP_ABS_LIST) {
        int any = 0;
        sp_abstract **it = malloc(sizeof *it * (size_t)(a->n ? a->n : 1));
        if (!it) return NULL;
        for (int i = 0; i < a->n; i++) {
            if (!(it[i] = unfold_floats(s, a->items[i], depth + 1))) {
                free(it);
                return NULL;
            }
            any |= it[i] != a->items[i];
        }
        sp_abstract *r = any ? sp_abs_seq(s->m, a->kind, a->n, it) : a;
        free(it);
        return r;
    }
    return a;
}

static sp_status expand(spec *s, spec_ctx *c, sp_node *n, sp_abstract *const *items, int na, leaf_arg *args,
                        sp_abstract **out) {
    *out = NULL;
    sp_abstract *fa = items[0], *pa = items[1], *w = items[2];
    int aux = truth_of(items[3]), wv = truth_of(items[4]), sens = truth_of(items[5]);
    if (!is_const(pa) || aux < 0 || wv < 0 || sens < 0) return SP_OK;
    int ni = na - sens;
    if (ni < 0 || ni > GRAD_MAX_ARGS) return SP_OK;
    for (int i = 0; i < na; i++) {
        sp_abstract *v;
        if (spec_kw_of(s, args[i].abs, &v)) return SP_OK; /* the API's error, at run time */
    }
    sp_status st;
    if (is_grad_fn(fa)) { /* grad of a gradient function: expand that one first */
        sp_abstract *inner = NULL;
        if ((st = expand(s, c, n, fa->items, ni, args, &inner)) || !inner) return st;
        fa = inner;
    }
    if (fa->kind != SP_ABS_FUNC || fa->foreign || !spec_scope_visible(c, fa->scope)) return SP_OK;
    sp_graph *f = fa->graph;
    if (f->has_varargs || f->n_params != ni || !f->output || ad_reaches_custom_bprop(f)) return SP_OK;
    double t0 = now();
    sp_value *ex[GRAD_MAX_ARGS + 1] = {0};
    int own[GRAD_MAX_ARGS + 1] = {0};
    for (int i = 0; i < ni; i++) ex[i] = example_of(args[i].abs, &own[i]);
    /* the run-time API's checks, before f runs (grad.c) */
    ad_grad_opts o = {pa->value, aux, wv, sens, 0, NULL, ex};
    st = ad_grad_check(f->module, f, &o, n->loc);
    s->stats.expand_seconds += now() - t0;
    if (st && (st == SP_ERR_NOMEM || c->certain)) goto done; /* located at the call already */
    sp_clear_error();
    spec_ctx *k = NULL;
    leaf_arg ua[GRAD_MAX_ARGS];
    for (int i = 0; i < ni && !st; i++) {
        ua[i] = (leaf_arg){unfold_floats(s, args[i].abs, 0), args[i].node};
        if (!ua[i].abs) st = nomem();
    }
    if (!st && (st = spec_call_graph(s, c, n, f, fa->scope, ni, ua, c->certain, 0, &k)) == SP_OK && k && k->done &&
        !k->busy && !k->dead) {
        sp_graph *h = NULL;
        st = build(s, k, n, pa->value, aux, wv, sens, w, ex, &h);
        if (!st && h && !(*out = sp_abs_func(s->m, h, fa->scope))) st = nomem();
    }
done:
    for (int i = 0; i < ni; i++)
        if (own[i]) sp_value_release(ex[i]);
    return st;
}

sp_status spec_grad_call(spec *s, spec_ctx *c, sp_node *n, const leaf_arg *bound, int na, leaf_arg *args,
                         sp_abstract **fn_out) {
    *fn_out = NULL;
    sp_abstract *items[6];
    for (int i = 0; i < 6; i++) items[i] = bound[i].abs;
    /* only what spec_grad_fn made: f a function or a gradient function */
    if (!((items[0]->kind == SP_ABS_FUNC) || is_grad_fn(items[0])) || !is_const(items[1])) return SP_OK;
    return expand(s, c, n, items, na, args, fn_out);
}

/* ---- backward closures of gradient graphs ------------------------------------------ */

typedef struct spec_guess {
    sp_graph *g;
    spec_ctx *scope, *k;
} spec_guess;

/* The argument a backward closure of a gradient graph will be called
 * with, when a (a FUNC) is one: a graph of the specialized module with
 * one parameter, returned beside a value as make_tuple(value, @a) by its
 * parent -- the K protocol (src/ad/expand.c), whose caller calls it with
 * the gradient of that value, which has the value's abstract.  NULL: not
 * one, or guessing is off. */
static sp_abstract *bprop_guess(spec *s, const sp_abstract *a) {
    spec_ctx *e = a->scope;
    const sp_graph *g = a->graph;
    if (s->no_guess || !e || g->module != s->m || g->n_params != 1 || g->has_varargs || e->src != g->parent)
        return NULL;
    const sp_node *o = e->src->output;
    if (!o || !pass_is_call(o, PB_MAKE_TUPLE) || o->n_inputs != 3 || pass_const_graph(o->inputs[2]) != g)
        return NULL;
    spec_slot *sl = ir_map_get(&e->slots, IR_PKEY(o->inputs[1]));
    if (!sl || sl->abs->kind == SP_ABS_ANY || sl->abs->kind == SP_ABS_BOTTOM) return NULL;
    return sl->abs;
}

static spec_guess *guess_find(spec *s, const sp_graph *g, const spec_ctx *scope) {
    for (int i = s->n_guesses - 1; i >= 0; i--)
        if (s->guesses[i].g == g && s->guesses[i].scope == scope) return &s->guesses[i];
    return NULL;
}

void spec_guess_check(spec *s, const sp_graph *g, const spec_ctx *scope, const spec_ctx *k) {
    spec_guess *q = guess_find(s, g, scope);
    if (q && q->k != k && !q->k->dead && !k->dead) s->guess_conflict = 1;
}

spec_ctx *spec_value_clone(spec *s, sp_abstract *a) {
    sp_abstract *guess = bprop_guess(s, a);
    if (!guess) return spec_generic(s, a->graph, a->scope);
    spec_ctx *k = spec_enter(s, a->graph, a->scope, 1, &guess, 0, 0);
    if (!k) return NULL;
    spec_guess *q = guess_find(s, a->graph, a->scope);
    if (!q) {
        if (s->n_guesses == s->cap_guesses) {
            int cap = s->cap_guesses ? s->cap_guesses * 2 : 32;
            spec_guess *x = realloc(s->guesses, sizeof *x * (size_t)cap);
            if (!x) {
                nomem();
                return NULL;
            }
            s->guesses = x;
            s->cap_guesses = cap;
        }
        q = &s->guesses[s->n_guesses++];
        q->g = a->graph;
        q->scope = a->scope;
    }
    q->k = k;
    return k;
}

void spec_grad_free(spec *s) {
    while (s->grads) {
        spec_grad_memo *m = s->grads;
        s->grads = m->next;
        free(m);
    }
}
