/*
 * spec_args.c -- the arguments of a call during specialization: partials
 * flattened, call_star's tuple spread, arguments bound to parameters.
 *
 * A call's callee may be a partial (a bound method, partial(construct,
 * self), a gradient function: partial(grad_call, 6 options)); its bound
 * arguments go first, outermost partial last, and the call is then a call
 * of the innermost function (spec_callee).  Binding follows vm.c's
 * bind_args on abstracts, with the same messages: positionals, keywords by
 * name, defaults, a *args parameter packing the rest into a tuple.
 *
 * call_star.  The front end builds f(a, *rest, k=v) as call_star(f, t),
 * t = (a,) + tuple(rest) + (keyword k=v,).  When t's abstract is a TUPLE
 * -- its length and items known now, which is the case whenever rest is a
 * tuple of known length, such as a function's own *args -- the call is
 * f(t0, t1, ...), and is specialized as exactly that: the callee is
 * flattened and bound like any call, a graph callee gets its specialized
 * clone called directly with the items as arguments (the form the inliner
 * opens), a leaf (primitive, API function) is evaluated on the items.
 * Each item's node is the node that already carries its abstract when
 * there is one visible, else tuple_getitem(t, i); the optimizer's tuple
 * rules remove what the spread no longer needs.  A call_star whose inputs
 * carry effects (spec_internal.h) is not spread: the effects ride on the
 * tuple, and only the call as written keeps reading it.  A call that is
 * not a direct call of a clone (an unknown callee, a switch of functions)
 * is emitted as written, call_star included: the VM spreads it then.
 *
 * Items that are keywords stay keyword values: the VM's call binds them by
 * name, as the front end's make_keyword arguments, so a direct call with a
 * keyword item keeps the items as its arguments instead of binding them
 * to positions here.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/spec_internal.h"

static sp_status nomem(void) { return sp_error(SP_ERR_NOMEM, "specialize: out of memory"); }

/* ---- binding (vm.c's bind_args, on abstracts) ------------------------------------------- */

const char *spec_kw_of(spec *s, const sp_abstract *a, sp_abstract **value) {
    if (a->kind == SP_ABS_KEYWORD) {
        *value = a->items[0];
        return a->name;
    }
    if (a->kind == SP_ABS_CONST && a->value->kind == SP_V_KEYWORD) {
        *value = sp_abs_const(s->m, a->value->u.kw.value);
        return a->value->u.kw.name;
    }
    return NULL;
}

sp_status spec_bind_abs(spec *s, const sp_graph *g, int n, const leaf_arg *args, sp_abstract **params) {
    int np = g->n_params, nfixed = g->has_varargs ? np - 1 : np, npos = 0;
    const char *name = g->name ? g->name : "<lambda>";
    sp_abstract *v;
    for (int i = 0; i < n; i++)
        if (!spec_kw_of(s, args[i].abs, &v)) npos++;
    if (npos > nfixed && !g->has_varargs)
        return sp_error(SP_ERR_TYPE, "%s() takes %d positional argument%s but %d %s given", name, nfixed,
                        nfixed == 1 ? "" : "s", npos, npos == 1 ? "was" : "were");
    sp_abstract **extra = malloc(sizeof *extra * (size_t)(n + 1));
    if (!extra) return nomem();
    for (int j = 0; j < np; j++) params[j] = NULL;
    int k = 0, ne = 0;
    sp_status st = SP_OK;
    for (int i = 0; i < n && !st; i++) {
        const char *kw = spec_kw_of(s, args[i].abs, &v);
        if (kw) {
            int j;
            for (j = 0; j < nfixed; j++)
                if (g->param_names && g->param_names[j] && !strcmp(g->param_names[j], kw)) break;
            if (j == nfixed)
                st = sp_error(SP_ERR_TYPE, "%s() got an unexpected keyword argument '%s'", name, kw);
            else if (params[j])
                st = sp_error(SP_ERR_TYPE, "%s() got multiple values for argument '%s'", name, kw);
            else if (!v)
                st = nomem();
            else
                params[j] = v;
        } else if (k < nfixed) {
            params[k++] = args[i].abs;
        } else {
            extra[ne++] = args[i].abs;
        }
    }
    if (!st && g->has_varargs && !(params[np - 1] = sp_abs_seq(s->m, SP_ABS_TUPLE, ne, extra))) st = nomem();
    free(extra);
    for (int j = 0; j < nfixed && !st; j++) {
        if (params[j]) continue;
        if (g->defaults && g->defaults[j]) {
            if (!(params[j] = sp_abs_const(s->m, g->defaults[j]))) st = nomem();
            continue;
        }
        int missing = 0;
        for (int q = j; q < nfixed; q++)
            if (!params[q] && !(g->defaults && g->defaults[q])) missing++;
        const char *pn = g->param_names && g->param_names[j] ? g->param_names[j] : "?";
        st = sp_error(SP_ERR_TYPE, "%s() missing %d required argument%s: '%s'", name, missing,
                      missing == 1 ? "" : "s", pn);
    }
    return st;
}

/* ---- the callee ------------------------------------------------------------------------ */

/* Flattens the partials around *fnp (bound arguments outermost last:
 * partial(partial(f, a), b)(c) = f(a, b, c)) into (*bound)[0..*n_bound),
 * keeping room for `extra` more.  SP_OK or out of memory. */
static sp_status flatten(spec *s, sp_abstract **fnp, leaf_arg **bound, int *n_bound, int *cap, int extra) {
    sp_abstract *fn = *fnp;
    for (int guard = 0; guard < 64; guard++) {
        int m = 0;
        leaf_arg tmp[64];
        if (fn->kind == SP_ABS_PARTIAL) {
            for (int i = 0; i < fn->n && m < 64; i++) tmp[m++] = (leaf_arg){fn->items[i], NULL};
            fn = fn->fn;
        } else if (fn->kind == SP_ABS_CONST && fn->value->kind == SP_V_PARTIAL) {
            sp_value *p = fn->value;
            for (int i = 0; i < p->u.partial.n && m < 64; i++) {
                sp_abstract *a = sp_abs_const(s->m, p->u.partial.args[i]);
                if (!a) return nomem();
                tmp[m++] = (leaf_arg){a, NULL};
            }
            if (!(fn = sp_abs_const(s->m, p->u.partial.fn))) return nomem();
        } else {
            break;
        }
        if (*n_bound + m + extra > *cap) {
            int cap2 = (*n_bound + m + extra) * 2;
            leaf_arg *b2 = realloc(*bound, sizeof *b2 * (size_t)cap2);
            if (!b2) return nomem();
            *bound = b2;
            *cap = cap2;
        }
        memmove(*bound + m, *bound, sizeof **bound * (size_t)*n_bound);
        memcpy(*bound, tmp, sizeof *tmp * (size_t)m);
        *n_bound += m;
    }
    *fnp = fn;
    return SP_OK;
}

static int is_call_star(const sp_abstract *fn) {
    return fn->kind == SP_ABS_CONST && fn->value->kind == SP_V_BUILTIN && fn->value->u.builtin == RT_B_CALL_STAR;
}

/* The clone node for item i (abstract it) of call_star's tuple at n: a
 * keyword item as make_keyword(name, value) (binding and the inliner read
 * keywords from that form); NULL without an error when a keyword's value
 * has no visible node, NULL + error when out of memory. */
static sp_node *item_node(spec *s, spec_ctx *c, sp_node *n, sp_abstract *it, int i, sp_node **tnode) {
    sp_abstract *v = NULL;
    const char *kw = spec_kw_of(s, it, &v);
    if (kw) {
        sp_node *vn = v ? spec_node_of_abs(s, c, v) : NULL;
        if (!vn) return NULL;
        sp_value *mk = sp_value_builtin(RT_B_MAKE_KEYWORD), *nm = sp_value_str(kw, strlen(kw));
        sp_node *in[3] = {mk ? spec_const(s, c, mk, n->loc) : NULL, nm ? spec_const(s, c, nm, n->loc) : NULL, vn};
        sp_value_release(mk);
        sp_value_release(nm);
        return in[0] && in[1] ? spec_apply(s, c, 3, in, n->loc, it) : NULL;
    }
    sp_node *x = spec_node_of_abs(s, c, it);
    if (x) return x;
    if (!*tnode && !(*tnode = spec_input(s, c, n->inputs[2]))) return NULL;
    sp_value *gi = sp_value_builtin(RT_B_TUPLE_GETITEM), *iv = sp_value_int(i);
    sp_node *in[3] = {gi ? spec_const(s, c, gi, n->loc) : NULL, *tnode, iv ? spec_const(s, c, iv, n->loc) : NULL};
    sp_value_release(gi);
    sp_value_release(iv);
    return in[0] && in[2] ? spec_apply(s, c, 3, in, n->loc, it) : NULL;
}

/* call_star(f, t) at n with a static t: ce becomes the call of f on t's
 * items (see the essay).  1 spread, 0 not (nothing changed), -1 error. */
static int spread(spec *s, spec_ctx *c, sp_node *n, spec_callee *ce) {
    spec_slot *fs = spec_lookup(s, c, n->inputs[1]), *ts = fs ? spec_lookup(s, c, n->inputs[2]) : NULL;
    spec_slot *cs = ts ? spec_lookup(s, c, n->inputs[0]) : NULL;
    if (!cs) return -1;
    sp_abstract *t = ts->abs, *fn = fs->abs;
    int m = t->kind == SP_ABS_TUPLE ? t->n
            : t->kind == SP_ABS_CONST && t->value->kind == SP_V_TUPLE ? t->value->u.seq.n : -1;
    if (m < 0 || fs->carries || ts->carries || cs->carries) return 0;
    int n_bound = 0, cap = m + 8, done = 0;
    leaf_arg *args = malloc(sizeof *args * (size_t)cap);
    if (!args) {
        nomem();
        return -1;
    }
    sp_node *tnode = NULL;
    sp_status st = flatten(s, &fn, &args, &n_bound, &cap, m);
    for (done = 0; done < m && !st; done++) {
        sp_abstract *it = t->kind == SP_ABS_TUPLE ? t->items[done] : sp_abs_const(s->m, t->value->u.seq.items[done]);
        sp_node *x = it ? item_node(s, c, n, it, done, &tnode) : NULL;
        if (!x) {
            st = sp_last_status();
            break;
        }
        args[n_bound + done] = (leaf_arg){it, x};
    }
    if (done < m) {
        free(args);
        return st ? -1 : 0;
    }
    free(ce->args);
    ce->fn = fn;
    ce->n_bound = n_bound;
    ce->args = args;
    ce->na = n_bound + m;
    ce->fsrc = n->inputs[1];
    ce->star = 1;
    return 1;
}

sp_status spec_callee_unwrap(spec *s, spec_ctx *c, sp_node *n, spec_callee *ce) {
    memset(ce, 0, sizeof *ce);
    spec_slot *fs = spec_lookup(s, c, n->inputs[0]);
    if (!fs) return sp_last_status();
    sp_abstract *fn = fs->abs;
    int n_bound = 0, cap = n->n_inputs + 8;
    leaf_arg *bound = malloc(sizeof *bound * (size_t)cap);
    if (!bound) return nomem();
    sp_status st = flatten(s, &fn, &bound, &n_bound, &cap, n->n_inputs);
    for (int i = 1; i < n->n_inputs && !st; i++) {
        spec_slot *sl = spec_lookup(s, c, n->inputs[i]);
        if (!sl) st = sp_last_status();
        else bound[n_bound + i - 1] = (leaf_arg){sl->abs, sl->node};
    }
    if (st) {
        free(bound);
        return st;
    }
    ce->fn = fn;
    ce->n_bound = n_bound;
    ce->args = bound;
    ce->na = n_bound + n->n_inputs - 1;
    ce->fsrc = n->inputs[0];
    if (n_bound == 0 && n->n_inputs == 3 && is_call_star(fn) && spread(s, c, n, ce) < 0) {
        free(ce->args);
        ce->args = NULL;
        return sp_last_status() ? sp_last_status() : nomem();
    }
    return SP_OK;
}

int spec_all_positional(spec *s, const spec_callee *ce) {
    sp_abstract *v;
    for (int i = 0; i < ce->na; i++)
        if (spec_kw_of(s, ce->args[i].abs, &v)) return 0;
    return 1;
}

int spec_bound_nodes(spec *s, spec_ctx *c, spec_callee *ce) {
    for (int i = 0; i < ce->n_bound; i++) {
        sp_node *x = spec_node_of_abs(s, c, ce->args[i].abs);
        if (!x) return sp_last_status() == SP_ERR_NOMEM ? -1 : 0;
        ce->args[i].node = x;
    }
    return 1;
}

int spec_call_nodes(spec *s, spec_ctx *c, sp_node *n, spec_callee *ce) {
    if (ce->star) return 0; /* spread made them */
    for (int i = ce->n_bound; i < ce->na; i++)
        if (!(ce->args[i].node = spec_input(s, c, n->inputs[i - ce->n_bound + 1]))) return -1;
    return 0;
}

/* The keyword of argument node x (a make_keyword call or a KEYWORD
 * constant) with its value node in *v, NULL for a positional; *bad when x
 * is a keyword whose name is not a constant (or out of memory). */
static const char *node_kw(spec *s, spec_ctx *c, sp_node *x, sp_node **v, int *bad) {
    *v = x;
    if (x->kind == SP_NODE_CONST && x->value->kind == SP_V_KEYWORD) {
        *v = spec_const(s, c, x->value->u.kw.value, x->loc);
        *bad = !*v;
        return x->value->u.kw.name;
    }
    if (!pass_is_call(x, PB_MAKE_KEYWORD)) return NULL;
    const sp_node *k = x->n_inputs == 3 ? x->inputs[1] : NULL;
    if (!k || k->kind != SP_NODE_CONST || k->value->kind != SP_V_STR) {
        *bad = 1;
        return NULL;
    }
    *v = x->inputs[2];
    return k->value->u.str.s;
}

int spec_bind_nodes(spec *s, spec_ctx *c, sp_node *n, const spec_callee *ce, const sp_graph *g, int packed,
                    sp_node ***out) {
    *out = NULL;
    int np = g->n_params, nfixed = packed ? np - 1 : np, p = 0, ne = 0, ok = 1, has_kw = 0;
    if (g->has_varargs && !packed) return -1;
    sp_node **in = calloc((size_t)np + 1, sizeof *in), **extra = calloc((size_t)ce->na + 2, sizeof *extra);
    sp_abstract **items = calloc((size_t)ce->na + 1, sizeof *items);
    if (!in || !extra || !items) ok = 0;
    for (int i = 0; i < ce->na && ok; i++) {
        sp_node *v = NULL;
        int bad = 0, j = -1;
        const char *kw = node_kw(s, c, ce->args[i].node, &v, &bad);
        if (bad) {
            ok = 0;
            break;
        }
        has_kw |= kw != NULL;
        if (!kw && p >= nfixed && packed) {
            items[ne] = ce->args[i].abs;
            extra[++ne] = v;
            continue;
        }
        if (!kw) j = p++;
        else
            for (int q = 0; q < nfixed; q++)
                if (g->param_names && g->param_names[q] && !strcmp(g->param_names[q], kw)) j = q;
        if (j < 0 || j >= nfixed || in[j + 1]) ok = 0;
        else in[j + 1] = v;
    }
    if (ok && !packed && !has_kw && ce->n_bound == 0 && !ce->star && ce->na == np) ok = 0; /* as written already */
    for (int j = 0; j < nfixed && ok; j++)
        if (!in[j + 1] && (!g->defaults || !g->defaults[j] || !(in[j + 1] = spec_const(s, c, g->defaults[j], n->loc))))
            ok = 0;
    if (ok && packed) {
        sp_value *mk = sp_value_builtin(RT_B_MAKE_TUPLE);
        sp_abstract *ta = sp_abs_seq(s->m, SP_ABS_TUPLE, ne, items);
        extra[0] = mk && ta ? spec_const(s, c, mk, n->loc) : NULL;
        in[np] = extra[0] ? spec_apply(s, c, ne + 1, extra, n->loc, ta) : NULL;
        sp_value_release(mk);
        ok = in[np] != NULL;
    }
    free(extra);
    free(items);
    if (!ok) {
        free(in);
        if (sp_last_status() == SP_ERR_NOMEM) return -1;
        sp_clear_error();
        if (packed) sp_error(SP_ERR_INTERNAL, "specialize: a call of a packed *args clone could not be bound");
        return -1;
    }
    *out = in;
    return np;
}
