/*
 * builder_call.c -- calls and list comprehensions, from AST to IR.
 *
 * A call f(a, b, k=v) becomes one apply whose inputs are the callee's node
 * and the arguments' nodes, a keyword argument wrapped as
 * make_keyword("k", v); the VM binds keywords by name.  A call that spreads
 * a sequence, f(a, *rest, k=v), becomes call_star(f, args) with args the
 * tuple (a,) + tuple(rest) + (keyword k=v,), built left to right so the
 * arguments are evaluated in source order; the VM (and, when the tuple's
 * length is static, the specializer) spreads it into an ordinary call.
 * The caret of a failing call goes under the callee's name, which is what
 * a reader looks for in a chain of calls.
 *
 * Calls whose callee is a constant graph or builtin are remembered and
 * checked once every graph is complete (a function may call one defined
 * later in the file): too many positionals, unknown or repeated keywords
 * and missing arguments are TypeErrors at compile time, worded as
 * CPython's.  Calls of anything else are checked when they run.
 *
 * A list comprehension [elt for t in it if cond] is built as the
 * statements it stands for (acc = []; for t in it: if cond: acc = acc +
 * [elt]) in a graph of its own, called in place, so its variables stay
 * inside it as Python 3 scopes them and the loop machinery of builder.c
 * (static unrolling included) applies unchanged.
 */
#include <string.h>

#include "frontend/builder_internal.h"

static int is_star(const char *kw) { return kw && kw[0] == '*'; }

/* f(a, *rest, k=v): call_star(f, (a,) + tuple(rest) + (keyword k=v,)) --
 * the VM's call_star binds KEYWORD items as keywords. */
static sp_node *build_star_call(builder *b, fnctx *fn, cursor *c, const fe_expr *e, sp_node *f) {
    int n = e->u.call.n, np = 0;
    sp_node **pend = salloc(b, (size_t)(n + 1) * sizeof *pend), *acc = NULL;
    if (!pend || !(pend[0] = kbuiltin(c->g, B_MAKE_TUPLE, e->loc))) return NULL;
    for (int i = 0; i <= n; i++) {
        const char *k = i < n ? e->u.call.kw[i] : FE_STAR_ARG;
        const fe_expr *a = i < n ? e->u.call.args[i] : NULL;
        if (!is_star(k)) {
            sp_node *v = fe_build_expr(b, fn, c, a);
            if (v && k) v = call2(c->g, B_MAKE_KEYWORD, a->loc, konst(c->g, sp_value_str(k, strlen(k)), a->loc), v);
            if (!v) return NULL;
            pend[++np] = v;
            continue;
        }
        if (np > 0 || !acc) {
            sp_node *t = ir_apply_new(c->g, np + 1, pend, e->loc);
            acc = t && acc ? call2(c->g, B_ADD, e->loc, acc, t) : t;
            if (!acc) return NULL;
            np = 0;
        }
        if (i == n) break;
        sp_node *v = fe_build_expr(b, fn, c, a), *t;
        sp_node *tin[2] = {v ? kbuiltin(c->g, B_TUPLE, a->loc) : NULL, v};
        if (!tin[0] || !(t = ir_apply_new(c->g, 2, tin, a->loc)) || !(acc = call2(c->g, B_ADD, a->loc, acc, t)))
            return NULL;
    }
    sp_loc loc = e->u.call.fn->kind == FE_E_NAME || e->u.call.fn->kind == FE_E_ATTR ? e->u.call.fn->loc : e->loc;
    return call2(c->g, B_CALL_STAR, loc, f, acc);
}

sp_node *fe_build_call(builder *b, fnctx *fn, cursor *c, const fe_expr *e) {
    int n = e->u.call.n;
    for (int i = 0; i < n; i++)
        if (is_star(e->u.call.kw[i])) {
            sp_node *f = fe_build_expr(b, fn, c, e->u.call.fn);
            return f ? build_star_call(b, fn, c, e, f) : NULL;
        }
    sp_node **in = salloc(b, (size_t)(n + 1) * sizeof *in);
    if (!in) return NULL;
    in[0] = fe_build_expr(b, fn, c, e->u.call.fn);
    if (!in[0]) return NULL;
    for (int i = 0; i < n; i++) {
        const fe_expr *a = e->u.call.args[i];
        sp_node *v = fe_build_expr(b, fn, c, a);
        if (!v) return NULL;
        if (e->u.call.kw[i]) {
            const char *k = e->u.call.kw[i];
            v = call2(c->g, B_MAKE_KEYWORD, a->loc, konst(c->g, sp_value_str(k, strlen(k)), a->loc), v);
            if (!v) return NULL;
        }
        in[i + 1] = v;
    }
    /* the caret of a failing call goes under the callee's name */
    sp_loc loc = e->u.call.fn->kind == FE_E_NAME || e->u.call.fn->kind == FE_E_ATTR
                     ? e->u.call.fn->loc : e->loc;
    sp_node *call = ir_apply_new(c->g, n + 1, in, loc);
    if (call && in[0]->kind == SP_NODE_CONST &&
        (in[0]->value->kind == SP_V_GRAPH || in[0]->value->kind == SP_V_BUILTIN)) {
        if (b->n_calls == b->cap_calls) {
            int cap = b->cap_calls ? b->cap_calls * 2 : 64;
            callsite *v = salloc(b, (size_t)cap * sizeof *v);
            if (!v) return NULL;
            if (b->n_calls) memcpy(v, b->calls, (size_t)b->n_calls * sizeof *v);
            b->calls = v;
            b->cap_calls = cap;
        }
        b->calls[b->n_calls].call = call;
        b->calls[b->n_calls].e = e;
        b->n_calls++;
    }
    return call;
}

static const int builtin_nargs[] = {
#define SP_BUILTIN(ID, name, n) n,
#include "ir/builtins.def"
#undef SP_BUILTIN
};

/* The name Python would give a graph in a TypeError: "f", "<lambda>". */
static const char *display_name(const sp_graph *g) {
    const char *dot = strrchr(g->name, '.');
    const char *s = dot ? dot + 1 : g->name;
    return strcmp(s, "lambda") == 0 ? "<lambda>" : s;
}

/* Checks a static call against its callee's parameters, as Python's
 * TypeError would at the call: too many positionals, unknown or repeated
 * keywords, missing required arguments.  Graphs are complete by now. */
sp_status fe_check_call(builder *b, const callsite *cs) {
    const sp_node *call = cs->call;
    const fe_expr *e = cs->e;
    const sp_value *v = call->inputs[0]->value;
    int n = e->u.call.n, npos = 0;
    for (int i = 0; i < n; i++) npos += e->u.call.kw[i] == NULL;
    if (v->kind == SP_V_BUILTIN) {
        int want = v->u.builtin >= 0 && v->u.builtin < B_COUNT ? builtin_nargs[v->u.builtin] : -1;
        const char *nm = fe_builtin_name(v->u.builtin);
        if (!nm) nm = "builtin";
        if (want >= 0 && n != want)
            return sp_error_at(b->m, call->loc, SP_ERR_TYPE, "%s() takes exactly %d argument%s (%d given)",
                               nm, want, want == 1 ? "" : "s", n);
        return SP_OK;
    }
    const sp_graph *g = v->u.graph;
    const char *nm = display_name(g);
    int nfixed = g->n_params - (g->has_varargs ? 1 : 0);
    if (npos > nfixed && !g->has_varargs)
        return sp_error_at(b->m, call->loc, SP_ERR_TYPE,
                           "%s() takes %d positional argument%s but %d %s given", nm, nfixed,
                           nfixed == 1 ? "" : "s", npos, npos == 1 ? "was" : "were");
    for (int i = 0; i < n; i++) {
        const char *k = e->u.call.kw[i];
        if (!k) continue;
        int at = -1;
        for (int j = 0; j < nfixed; j++)
            if (g->param_names[j] && strcmp(g->param_names[j], k) == 0) at = j;
        if (at < 0)
            return sp_error_at(b->m, e->u.call.args[i]->loc, SP_ERR_TYPE,
                               "%s() got an unexpected keyword argument '%s'", nm, k);
        if (at < npos)
            return sp_error_at(b->m, e->u.call.args[i]->loc, SP_ERR_TYPE,
                               "%s() got multiple values for argument '%s'", nm, k);
    }
    for (int j = npos; j < nfixed; j++) {
        if (g->defaults && g->defaults[j]) continue;
        int given = 0;
        for (int i = 0; i < n; i++)
            given |= e->u.call.kw[i] && g->param_names[j] && strcmp(e->u.call.kw[i], g->param_names[j]) == 0;
        if (!given)
            return sp_error_at(b->m, call->loc, SP_ERR_TYPE,
                               "%s() missing required argument '%s'", nm,
                               g->param_names[j] ? g->param_names[j] : "?");
    }
    return SP_OK;
}

/* [elt for target in iter if cond]: a loop accumulating a list by
 * concatenation, in a graph of its own whose result is the list. */
sp_node *fe_build_listcomp(builder *b, fnctx *fn, cursor *c, const fe_expr *e) {
    /* Build the equivalent statements: acc = []; for t in it: [if cond:] acc = acc + [elt] */
    fe_arena *a = &b->scratch;
    const char *acc = fe_hidden_name(b, "acc");
    fe_expr *acc_name = fe_arena_alloc(a, sizeof *acc_name);
    fe_expr *empty = fe_arena_alloc(a, sizeof *empty);
    fe_expr *one = fe_arena_alloc(a, sizeof *one);
    fe_expr *sum = fe_arena_alloc(a, sizeof *sum);
    fe_expr **one_items = fe_arena_alloc(a, sizeof *one_items);
    fe_expr **targets = fe_arena_alloc(a, sizeof *targets);
    fe_stmt *init = fe_arena_alloc(a, sizeof *init), *upd = fe_arena_alloc(a, sizeof *upd);
    fe_stmt *loop = fe_arena_alloc(a, sizeof *loop), *guard = fe_arena_alloc(a, sizeof *guard);
    fe_stmt **body = fe_arena_alloc(a, sizeof *body);
    if (!acc || !acc_name || !empty || !one || !sum || !one_items || !targets || !init || !upd ||
        !loop || !guard || !body)
        return NULL;
    acc_name->kind = FE_E_NAME;
    acc_name->loc = e->loc;
    acc_name->u.name = acc;
    empty->kind = FE_E_LIST;
    empty->loc = e->loc;
    one_items[0] = e->u.comp.elt;
    one->kind = FE_E_LIST;
    one->loc = e->u.comp.elt->loc;
    one->u.seq.n = 1;
    one->u.seq.items = one_items;
    sum->kind = FE_E_BINARY;
    sum->loc = e->loc;
    sum->u.op.op = FE_T_PLUS;
    sum->u.op.a = acc_name;
    sum->u.op.b = one;
    targets[0] = acc_name;
    upd->kind = FE_S_ASSIGN;
    upd->loc = e->loc;
    upd->u.assign.n = 1;
    upd->u.assign.targets = targets;
    upd->u.assign.value = sum;
    if (e->u.comp.cond) {
        guard->kind = FE_S_IF;
        guard->loc = e->u.comp.cond->loc;
        guard->u.cond.cond = e->u.comp.cond;
        guard->u.cond.body.n = 1;
        guard->u.cond.body.items = body;
        body[0] = upd;
        upd = guard;
    }
    fe_stmt **loop_body = fe_arena_alloc(a, sizeof *loop_body);
    if (!loop_body) return NULL;
    loop_body[0] = upd;
    loop->kind = FE_S_FOR;
    loop->loc = e->loc;
    loop->u.loop.target = e->u.comp.target;
    loop->u.loop.iter = e->u.comp.iter;
    loop->u.loop.body.n = 1;
    loop->u.loop.body.items = loop_body;

    /* The comprehension's own graph, called in place: its variables stay
     * inside it (Python 3 scoping), the enclosing ones are free variables. */
    sp_graph *g = fe_new_graph(b, fn, "listcomp", c->g, e->loc);
    if (!g) return NULL;
    fnctx inner = *fn;
    inner.loop = NULL;
    inner.locals.n = inner.locals.cap = 0;
    inner.locals.v = NULL;
    for (int i = 0; i < fn->locals.n; i++)
        if (!fe_names_add(b, &inner.locals, fn->locals.v[i])) return NULL;
    int ok = 1;
    fe_collect_targets(b, &inner.locals, e->u.comp.target, &ok);
    if (!ok || !fe_names_add(b, &inner.locals, acc)) return NULL;
    cursor lc;
    if (!fe_cursor_init(b, &lc, g, &c->env)) return NULL;
    sp_node *init_v = fe_build_expr(b, &inner, &lc, empty);
    if (!init_v || !fe_env_set(b, &lc.env, acc, init_v)) return NULL;
    if (fe_build_loop(b, &inner, &lc, loop) != 1) return NULL;
    sp_node *res = fe_env_get(&lc.env, acc);
    if (!res) return NULL;
    lc.g->output = res;
    return call0(c->g, kgraph(c->g, g, e->loc), e->loc);
}
