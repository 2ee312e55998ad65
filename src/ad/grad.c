/*
 * grad.c -- the user API: spore.grad, spore.value_and_grad,
 * ops.GradOperation (MindSpore's semantics), and builtin.grad_call that
 * runs them.
 *
 * spore.grad(fn, grad_position=0, weights=None, has_aux=False) returns
 * partial(builtin.grad_call, fn, pos, weights, has_aux, with_value,
 * sens_param).  Calling it runs J(fn) on the inputs, seeds the backward
 * pass with ones (the output must be a scalar Tensor or a float; with
 * has_aux the first item of the returned tuple) or with the last argument
 * when sens_param, and picks the gradients:
 *   pos an int       -> the gradient of that input
 *   pos a tuple      -> a tuple of those inputs' gradients
 *   pos None         -> all inputs' gradients, as a tuple
 *   pos False        -> no inputs' gradients (only weights)
 *   weights          -> a tuple of (env key, weight): the gradients of the
 *                       tensors fn captures, read from the env under the
 *                       key of the free variable that holds each one
 * With weights and inputs both asked for, the result is (inputs' grads,
 * weights' grads); with has_aux, (grads, aux) where aux is the rest of
 * fn's tuple; value_and_grad returns (value, grads).  An input no gradient
 * reached gets zeros of its shape (0.0 for a float).
 *
 * The steps are written once in source (_ad_grad_call in
 * src/ad/bprop_builtins.py), which is also J(builtin.grad_call), so grad
 * of grad differentiates through them.  This file checks what it can
 * before running them (an integer input asked for) and moves an error
 * raised inside the rule module (a non-scalar output) to the user's call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "runtime/rt.h"

enum { G_FN, G_POS, G_WEIGHTS, G_AUX, G_VALUE, G_SENS, G_NFIXED };

static int check_input(const sp_value *v, int64_t i) {
    if (v->kind == SP_V_INT || v->kind == SP_V_BOOL) {
        sp_error(SP_ERR_TYPE, "grad: input %lld is an integer (%s); gradients are taken with respect to "
                 "floating-point inputs", (long long)i, sp_value_kind_name(v));
        return -1;
    }
    if (v->kind == SP_V_TENSOR && !sp_dtype_is_float(v->u.tensor->dtype)) {
        sp_error(SP_ERR_TYPE, "grad: input %lld is a Tensor of %s; gradients are taken with respect to "
                 "floating-point inputs", (long long)i, sp_dtype_name(v->u.tensor->dtype));
        return -1;
    }
    return 0;
}

static int check_pos(const sp_value *pos, int n, sp_value *const *args) {
    if (pos->kind == SP_V_INT) {
        if (pos->u.i < 0 || pos->u.i >= n) {
            sp_error(SP_ERR_ARG, "grad: grad_position %lld is out of range for a call with %d input%s",
                     (long long)pos->u.i, n, n == 1 ? "" : "s");
            return -1;
        }
        return check_input(args[pos->u.i], pos->u.i);
    }
    if (pos->kind == SP_V_TUPLE) {
        for (int i = 0; i < pos->u.seq.n; i++) {
            const sp_value *p = pos->u.seq.items[i];
            if (p->kind != SP_V_INT) {
                sp_error(SP_ERR_TYPE, "grad: grad_position must be an int or a tuple of ints, not a tuple holding %s",
                         sp_value_kind_name(p));
                return -1;
            }
            if (check_pos(p, n, args)) return -1;
        }
        return 0;
    }
    return 0; /* None (all inputs): integers among them get no gradient */
}

sp_value *ad_grad_call(int n, sp_value *const *args) {
    if (n < G_NFIXED) {
        sp_error(SP_ERR_INTERNAL, "grad_call: %d arguments", n);
        return NULL;
    }
    int sens = sp_value_truth(args[G_SENS]) > 0;
    int ninputs = n - G_NFIXED - sens;
    if (ninputs < 0) {
        sp_error(SP_ERR_TYPE, "grad: sens_param=True needs the output's gradient as the last argument");
        return NULL;
    }
    for (int i = G_NFIXED; i < n; i++)
        if (args[i]->kind == SP_V_KEYWORD) {
            sp_error(SP_ERR_TYPE, "grad: the function of a grad takes its inputs by position (got %s=...)",
                     args[i]->u.kw.name);
            return NULL;
        }
    if (check_pos(args[G_POS], ninputs, args + G_NFIXED)) return NULL;
    sp_value *g = ad_rule_required("_ad_grad_call");
    if (!g) return NULL;
    sp_value *r = rt_call(g, n, args);
    if (!r) {
        /* an error raised inside the rules (sens_of, ...) belongs to the user's call */
        const char *e = sp_last_error();
        if (!strncmp(e, "<bprop>:", 8)) {
            const char *msg = strstr(e, ": "); /* after "<bprop>:line:col" */
            char buf[1024];
            snprintf(buf, sizeof buf, "%s", msg ? msg + 2 : e);
            char *nl = strchr(buf, '\n');
            if (nl) *nl = '\0';
            sp_status code = sp_last_status();
            sp_error(code ? code : SP_ERR_RUNTIME, "%s", buf);
            rt_error_unlocate();
        }
    }
    return r;
}

/* The (key, weight) pairs of weights among fn's captured values. */
sp_value *ad_weight_keys(const sp_value *fn, const sp_value *weights) {
    if (!weights || weights->kind == SP_V_NONE) return sp_value_none();
    const sp_value *one = weights;
    int n = 1;
    sp_value *const *ws = (sp_value *const *)&one;
    if (weights->kind == SP_V_TUPLE || weights->kind == SP_V_LIST) {
        n = weights->u.seq.n;
        ws = weights->u.seq.items;
    }
    const sp_value *f = fn;
    while (f->kind == SP_V_PARTIAL) f = f->u.partial.fn;
    sp_value **pairs = calloc((size_t)n + 1, sizeof *pairs), *r = NULL;
    if (!pairs) {
        sp_error(SP_ERR_NOMEM, "grad: out of memory");
        return NULL;
    }
    int i;
    for (i = 0; i < n; i++) {
        const sp_value *w = ws[i];
        if (w->kind != SP_V_TENSOR) {
            sp_error(SP_ERR_TYPE, "grad: weights must be Tensors, not %s (weight %d)", sp_value_kind_name(w), i);
            break;
        }
        int found = -1;
        if (f->kind == SP_V_CLOSURE)
            for (int k = 0; k < f->u.closure.n && found < 0; k++) {
                const sp_value *c = f->u.closure.fv[k];
                if (c->kind == SP_V_TENSOR && c->u.tensor == w->u.tensor) found = k;
            }
        if (found < 0) {
            sp_error(SP_ERR_ARG, "grad: weight %d is not a Tensor the function uses from an enclosing "
                     "function (weights are the tensors a closure captures)", i);
            break;
        }
        sp_value *key = sp_value_int(ad_key_of(f->u.closure.graph->fv[found]));
        sp_value *kv[2] = {key, (sp_value *)w};
        pairs[i] = key ? sp_value_tuple(2, kv) : NULL;
        sp_value_release(key);
        if (!pairs[i]) break;
    }
    if (i == n) r = sp_value_tuple(n, pairs);
    for (int k = 0; k < i; k++) sp_value_release(pairs[k]);
    free(pairs);
    return r;
}

sp_value *ad_grad_fn(const sp_value *fn, const sp_value *pos, const sp_value *weights, int has_aux,
                     int with_value, int sens_param) {
    if (fn->kind != SP_V_GRAPH && fn->kind != SP_V_CLOSURE && fn->kind != SP_V_PARTIAL &&
        fn->kind != SP_V_PRIM && fn->kind != SP_V_BUILTIN) {
        sp_error(SP_ERR_TYPE, "grad: expected a function, got %s", sp_value_kind_name(fn));
        return NULL;
    }
    if (pos->kind != SP_V_INT && pos->kind != SP_V_TUPLE && pos->kind != SP_V_NONE &&
        !(pos->kind == SP_V_BOOL && !pos->u.b)) {
        sp_error(SP_ERR_TYPE, "grad: grad_position must be an int, a tuple of ints or None, not %s",
                 sp_value_kind_name(pos));
        return NULL;
    }
    sp_value *wk = ad_weight_keys(fn, weights);
    sp_value *gc = wk ? sp_value_builtin(RT_B_GRAD_CALL) : NULL;
    sp_value *b[G_NFIXED] = {(sp_value *)fn, (sp_value *)pos, wk, sp_value_bool(has_aux), sp_value_bool(with_value),
                             sp_value_bool(sens_param)};
    sp_value *r = gc && b[3] && b[4] && b[5] ? sp_value_partial(gc, G_NFIXED, b) : NULL;
    sp_value_release(gc);
    for (int i = 2; i < G_NFIXED; i++) sp_value_release(b[i]);
    return r;
}
