/*
 * env.c -- env values and the sum of gradients.
 *
 * An env is the gradient of a function value: for a closure, the
 * gradients of the values it captured, keyed by the free variable's node
 * (ad_key_of: the node's address, unique while its module lives and never
 * small); for a partial, the gradients of its bound arguments under keys
 * -1, -2, ...  It is an immutable SP_V_ENV value holding key, value pairs
 * in u.seq (keys are INT values), so it is retained, released, compared
 * and freed like a tuple.  Envs stay small (a closure's free variables),
 * so lookups are linear.
 *
 * add_grad is the one way gradients combine: None is zero and the identity;
 * tensors and scalars add (Python's + with broadcasting, though the rules
 * already return each input's own shape); tuples and lists add item-wise;
 * envs add key-wise.  Anything else is an internal error (a rule returned
 * something of the wrong kind), reported, never aborting.
 */
#include <stdlib.h>
#include <string.h>

#include "ad/ad.h"
#include "runtime/rt.h"

int64_t ad_key_of(const sp_node *n) { return (int64_t)(intptr_t)n; }

static sp_value *env_of(int n, sp_value *const *items) {
    sp_value *v = sp_value_tuple(n, items);
    if (v) v->kind = SP_V_ENV; /* same layout as a tuple (see value.h) */
    return v;
}

sp_value *ad_env_new(void) { return env_of(0, NULL); }

static int env_find(const sp_value *env, int64_t key) {
    if (!env || env->kind != SP_V_ENV) return -1;
    for (int i = 0; i + 1 < env->u.seq.n; i += 2)
        if (env->u.seq.items[i]->u.i == key) return i;
    return -1;
}

sp_value *ad_env_get(const sp_value *env, int64_t key, const sp_value *dflt) {
    int i = env_find(env, key);
    const sp_value *r = i >= 0 ? env->u.seq.items[i + 1] : dflt;
    sp_value_retain((sp_value *)r);
    return (sp_value *)r;
}

sp_value *ad_env_set(const sp_value *env, int64_t key, const sp_value *v) {
    int n = env && env->kind == SP_V_ENV ? env->u.seq.n : 0, i = env_find(env, key);
    sp_value **items = malloc(sizeof *items * (size_t)(n + 2));
    if (!items) {
        sp_error(SP_ERR_NOMEM, "env_setitem: out of memory");
        return NULL;
    }
    int m = 0;
    for (int k = 0; k < n; k += 2) {
        if (k == i) continue;
        items[m++] = env->u.seq.items[k];
        items[m++] = env->u.seq.items[k + 1];
    }
    sp_value *kv = NULL, *r = NULL;
    if (v && v->kind != SP_V_NONE) {
        if (!(kv = sp_value_int(key))) goto done;
        items[m++] = kv;
        items[m++] = (sp_value *)v;
    }
    r = env_of(m, items);
done:
    sp_value_release(kv);
    free(items);
    return r;
}

static sp_value *env_add(const sp_value *a, const sp_value *b) {
    sp_value *r = (sp_value *)a;
    sp_value_retain(r);
    for (int k = 0; r && k + 1 < b->u.seq.n; k += 2) {
        int64_t key = b->u.seq.items[k]->u.i;
        sp_value *old = ad_env_get(r, key, NULL);
        sp_value *sum = old ? ad_add_grad(old, b->u.seq.items[k + 1]) : b->u.seq.items[k + 1];
        if (!old) sp_value_retain(sum);
        sp_value *r2 = sum ? ad_env_set(r, key, sum) : NULL;
        sp_value_release(old);
        sp_value_release(sum);
        sp_value_release(r);
        r = r2;
    }
    return r;
}

/* A tuple of Nones (the gradient of a pair nobody read) is zero too. */
static int is_zero(const sp_value *v) {
    if (!v || v->kind == SP_V_NONE) return 1;
    if (v->kind != SP_V_TUPLE) return 0;
    for (int i = 0; i < v->u.seq.n; i++)
        if (!is_zero(v->u.seq.items[i])) return 0;
    return 1;
}

sp_value *ad_add_grad(const sp_value *a, const sp_value *b) {
    if (a && b && is_zero(a) != is_zero(b) && (a->kind == SP_V_TUPLE) != (b->kind == SP_V_TUPLE)) {
        /* zero of one kind plus a gradient of another: the gradient */
        const sp_value *g = is_zero(a) ? b : a;
        sp_value_retain((sp_value *)g);
        return (sp_value *)g;
    }
    if (!a || a->kind == SP_V_NONE) a = b, b = NULL;
    if (!b || b->kind == SP_V_NONE) {
        if (!a) return sp_value_none();
        sp_value_retain((sp_value *)a);
        return (sp_value *)a;
    }
    if (a->kind == SP_V_ENV && b->kind == SP_V_ENV) return env_add(a, b);
    if ((a->kind == SP_V_TUPLE || a->kind == SP_V_LIST) && a->kind == b->kind) {
        if (a->u.seq.n != b->u.seq.n) {
            sp_error(SP_ERR_INTERNAL, "add_grad: tuples of %d and %d gradients", a->u.seq.n, b->u.seq.n);
            return NULL;
        }
        int n = a->u.seq.n;
        sp_value **items = calloc((size_t)(n ? n : 1), sizeof *items), *r = NULL;
        if (!items) {
            sp_error(SP_ERR_NOMEM, "add_grad: out of memory");
            return NULL;
        }
        int i;
        for (i = 0; i < n; i++)
            if (!(items[i] = ad_add_grad(a->u.seq.items[i], b->u.seq.items[i]))) break;
        if (i == n) r = a->kind == SP_V_TUPLE ? sp_value_tuple(n, items) : sp_value_list(n, items);
        for (int k = 0; k < i; k++) sp_value_release(items[k]);
        free(items);
        return r;
    }
    int an = a->kind == SP_V_TENSOR || rt_is_scalar(a), bn = b->kind == SP_V_TENSOR || rt_is_scalar(b);
    if (an && bn) return rt_binary(RT_B_ADD, a, b);
    sp_error(SP_ERR_INTERNAL, "add_grad: cannot add gradients of kinds %s and %s", sp_value_kind_name(a),
             sp_value_kind_name(b));
    return NULL;
}
