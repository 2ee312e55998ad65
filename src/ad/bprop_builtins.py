# bprop_builtins.py -- the gradient rules of the language's own builtins,
# and the user API's grad machinery, in the source language.
#
# This file is compiled into the same module as src/ops/bprop/*.py (the
# primitives' rules), at first use, by src/ad/rules.c.  Every name here
# starts with `_ad_` so it cannot collide with a primitive's rule.
#
# A rule is called as rule(<the builtin's arguments>, out, dout) and
# returns (env, d_arg1, ..., d_argn): env is the gradient of the callee
# itself (always empty for a builtin), None means "no gradient" (zero).
# Every rule is ordinary source, so K applies to it like to user code: the
# rules' own derivatives come from the same rules, which is how grad of
# grad works.  The rules may only use builtins that have rules here (or
# primitives/API functions with rules in src/ops/bprop).
#
# Invariants: dout is None when nothing downstream used the value; a rule
# must then return Nones (the C side skips calling it in that case, so the
# checks below are for the rules called from other rules).
import math
import spore
from spore import ops


def _ad_nones(n):
    return (None,) * n


def _ad_spread(d, args):
    # the gradient of a *args tuple, one entry per argument
    if d is None:
        return _ad_nones(len(args))
    return tuple(d)


def _ad_zero(args, out, dout):
    # a builtin with no gradient (comparisons, len, isinstance, print...)
    return (env_new(),) + _ad_nones(len(args))


def _ad_make_tuple(args, out, dout):
    if dout is None or not (isinstance(dout, tuple) or isinstance(dout, list)):
        return (env_new(),) + _ad_nones(len(args))
    return (env_new(),) + tuple(dout)


def _ad_seq_convert(seq, out, dout):
    # tuple(t) / list(t) of a sequence: the gradient passes through
    # (gradients of lists are tuples)
    if dout is None:
        return (env_new(), None)
    return (env_new(), tuple(dout))


def _ad_seq_getitem(seq, i, dout):
    # (no `out`: an item may be a keyword argument, which a partial would
    # bind by name)
    n = len(seq)
    if i < 0:
        i = i + n
    return (env_new(), _ad_nones(i) + (dout,) + _ad_nones(n - i - 1), None)


def _ad_tensor_getitem(x, index, out, dout):
    return (env_new(), getitem_grad(x, index, dout), None)


def _ad_getitem_grad(x, index, g, out, dout):
    # getitem_grad is linear in g: its transpose is the indexing itself
    return (env_new(), None, None, dout[index])


def _ad_switch(c, a, b, out, dout):
    if c:
        return (env_new(), None, dout, None)
    return (env_new(), None, None, dout)


def _ad_J(f, out, dout):
    return (env_new(), _ad_j_env(f, dout))


def _ad_j_env(f, d):
    # The gradient of f from the gradient d of J(f) (both envs).  J of a
    # closure has f's free variables under the same keys: d itself.  J of
    # partial(fn, b1..bk) is partial(_ad_j_partial, J(fn), (b1..bk,)),
    # whose env holds J(fn)'s gradient at -1 and the bound tuple's at -2;
    # f's env wants fn's keys and b_i's gradient at -i.  J of a builtin is
    # partial(j_primal, f): a builtin has no gradient.
    if d is None:
        return None
    parts = fn_parts(f)
    if parts[0] == 0:
        return d
    if parts[0] == 2:
        return None
    r = _ad_j_env(parts[1], env_getitem(d, -1, None))
    if r is None:
        r = env_new()
    db = env_getitem(d, -2, None)
    if db is not None:
        k = 1
        for x in db:
            r = env_setitem(r, 0 - k, add_grad(env_getitem(r, 0 - k, None), x))
            k = k + 1
    return r


def _ad_make_keyword(name, v, dout):
    return (env_new(), None, dout)


def _ad_partial(args, out, dout):
    # partial(fn, a1..ak): the gradient of a partial is an env whose keys
    # -1..-k hold the bound arguments' gradients (and fn's own keys)
    r = (env_new(), dout)
    k = 1
    for a in tuple_tail(args, 1):
        r = r + (env_getitem(dout, 0 - k, None),)
        k = k + 1
    return r


def _ad_method(x, name, nbound, out, dout):
    # x.sum is partial(api, "Tensor.sum", x): x is bound argument nbound
    return (env_new(), env_getitem(dout, 0 - nbound, None), None)


def _ad_make_closure(args, out, dout):
    r = (env_new(), None)
    for k in closure_keys(args[0]):
        r = r + (env_getitem(dout, k, None),)
    return r


def _ad_env_getitem(env, key, dflt, out, dout):
    return (env_new(), env_setitem(env_new(), key, dout), None, None)


def _ad_env_setitem(env, key, v, out, dout):
    return (env_new(), env_setitem(dout, key, None), None, env_getitem(dout, key, None))


def _ad_is_zero(v):
    if v is None:
        return True
    if isinstance(v, tuple):
        for x in v:
            if not _ad_is_zero(x):
                return False
        return True
    return False


def _ad_add_grad(a, b, out, dout):
    da = dout
    db = dout
    if _ad_is_zero(a):
        da = None
    if _ad_is_zero(b):
        db = None
    return (env_new(), da, db)


def _ad_fill_zeros(d, o, out, dout):
    return (env_new(), dout, None)


def _ad_scatter_tuple(t, pos, n, out, dout):
    if dout is None:
        return (env_new(), None, None, None)
    return (env_new(), gather_tuple(dout, pos), None, None)


def _ad_gather_tuple(t, pos, out, dout):
    if dout is None:
        return (env_new(), None, None)
    return (env_new(), scatter_tuple(dout, pos, len(t)), None)


def _ad_tuple_head(t, k, out, dout):
    if dout is None:
        return (env_new(), None, None)
    return (env_new(), tuple(dout) + _ad_nones(len(t) - k), None)


def _ad_tuple_tail(t, k, out, dout):
    if dout is None:
        return (env_new(), None, None)
    return (env_new(), _ad_nones(k) + tuple(dout), None)


def _ad_tuple_add(a, b, out, dout):
    # a + b on tuples: split dout
    return (env_new(), tuple_head(dout, len(a)), tuple_tail(dout, len(a)))


# ---- Python scalars (floats) ----------------------------------------------

def _ad_s_add(x, y, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(2)
    return (env_new(), dout, dout)


def _ad_s_sub(x, y, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(2)
    return (env_new(), dout, -dout)


def _ad_s_mul(x, y, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(2)
    return (env_new(), dout * y, dout * x)


def _ad_s_truediv(x, y, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(2)
    return (env_new(), dout / y, -dout * x / (y * y))


def _ad_s_pow(x, y, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(2)
    dx = dout * y * x ** (y - 1)
    if x > 0:
        return (env_new(), dx, dout * out * _ad_log(x))
    return (env_new(), dx, None)


def _ad_log(x):
    return math.log(x)


def _ad_s_neg(x, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(1)
    return (env_new(), -dout)


def _ad_s_pos(x, out, dout):
    if dout is None:
        return (env_new(),) + _ad_nones(1)
    return (env_new(), dout)


def _ad_math(args, out, dout):
    # math.* on Python numbers: args = ("math.<fn>", x[, y])
    name = args[0]
    n = len(args) - 1
    if dout is None:
        return (env_new(),) + _ad_nones(n + 1)
    x = args[1]
    if name == "math.sin":
        d = (dout * math.cos(x),)
    elif name == "math.cos":
        d = (-dout * math.sin(x),)
    elif name == "math.tan":
        c = math.cos(x)
        d = (dout / (c * c),)
    elif name == "math.exp":
        d = (dout * out,)
    elif name == "math.log" and n == 1:
        d = (dout / x,)
    elif name == "math.log2":
        d = (dout / (x * math.log(2.0)),)
    elif name == "math.log10":
        d = (dout / (x * math.log(10.0)),)
    elif name == "math.sqrt":
        d = (dout * 0.5 / out,)
    elif name == "math.tanh":
        d = (dout * (1.0 - out * out),)
    elif name == "math.erf":
        d = (dout * 1.1283791670955126 * math.exp(-x * x),)
    elif name == "math.fabs":
        if x < 0:
            d = (-dout,)
        else:
            d = (dout,)
    elif name == "math.pow":
        y = args[2]
        dy = None
        if x > 0:
            dy = dout * out * math.log(x)
        d = (dout * y * math.pow(x, y - 1.0), dy)
    elif name == "math.atan2":
        y = args[2]
        r2 = x * x + y * y
        d = (dout * y / r2, -dout * x / r2)
    elif name == "math.floor" or name == "math.ceil" or name == "math.trunc" or name == "math.isnan" or name == "math.isinf" or name == "math.isfinite":
        d = _ad_nones(n)
    else:
        raise TypeError("cannot differentiate " + name + ": it has no gradient rule (use the ops.* function)")
    return (env_new(), None) + d


# ---- primitives -------------------------------------------------------------

def _ad_prim(rule, ins, kws, pos, n, out, dout):
    # A primitive call: rule(inputs..., out, dout, **attrs) gives one
    # gradient per tensor input; pos maps them to the call's arguments.
    r = call_star(rule, ins + (out, fill_zeros(dout, out)) + kws)
    if not isinstance(r, tuple):
        r = (r,)
    return (env_new(),) + scatter_tuple(r, pos, n)


# ---- user-defined backward rules -----------------------------------------------
# J of a top-level function f whose module also defines f_bprop (MindSpore's
# Cell.bprop): f runs as usual, and its bprop is
# f_bprop(inputs..., out, dout) -> a tuple with one gradient per input (a
# single value for a one-input function; None for no gradient).  f's body
# is not differentiated; f_bprop is ordinary code, so grad of grad
# differentiates f_bprop itself.  Tensors f captures get no gradient.

def _ad_custom(name, f, bfn, *args):
    out = call_star(f, args)

    def back(dout):
        r = call_star(bfn, args + (out, fill_zeros(dout, out)))
        if not isinstance(r, tuple):
            r = (r,)
        if len(r) != len(args):
            raise TypeError(name + "_bprop returned " + str(len(r)) + " gradient(s) for the " + str(len(args)) +
                            " input(s) of " + name + " (it must return a tuple with one per input, None for none)")
        return (env_new(),) + r

    return (out, back)


# ---- J of call_star (so K sees through the spreading) ------------------------

def _ad_j_call_star(fn, args):
    t = call_star(J(fn), args)
    bp = t[1]

    def back(dout):
        r = bp(dout)
        return (env_new(), r[0], tuple_tail(r, 1))

    return (t[0], back)


# ---- the user API ----------------------------------------------------------------
# builtin.grad_call runs spore.grad(...)(args...) in C (so its errors point
# at the user's line); J(builtin.grad_call) is _ad_grad_call below, the same
# steps in source, so that grad of grad differentiates through them.

def _ad_zeros_for(g, a):
    if g is None:
        if isinstance(a, spore.Tensor):
            return ops.zeros_like(a)
        return 0.0
    return g


def _ad_pick(r, args, pos):
    # r = (env, d_arg1, ...): the gradients grad_position asks for
    if pos is None:
        out = ()
        i = 0
        for a in args:
            out = out + (_ad_zeros_for(r[i + 1], a),)
            i = i + 1
        return out
    if isinstance(pos, tuple):
        out = ()
        for p in pos:
            out = out + (_ad_zeros_for(r[p + 1], args[p]),)
        return out
    return _ad_zeros_for(r[pos + 1], args[pos])


def _ad_grad_call(fn, pos, weights, has_aux, with_value, sens_param, *args):
    # weights: None, or a tuple of (env key, weight) pairs
    if sens_param:
        sens = args[len(args) - 1]
        args = tuple_head(args, len(args) - 1)
    t = call_star(J(fn), args)
    out = t[0]
    if not sens_param:
        if has_aux:
            sens = (sens_of(out[0]),) + _ad_nones(len(out) - 1)
        else:
            sens = sens_of(out)
    r = t[1](sens)
    g = None
    if pos is not False:
        g = _ad_pick(r, args, pos)
    if weights is not None:
        gw = ()
        for kw in weights:
            gw = gw + (_ad_zeros_for(env_getitem(r[0], kw[0], None), kw[1]),)
        if pos is False:
            g = gw
        else:
            g = (g, gw)
    if has_aux:
        if with_value:
            return (out, g)
        return (g, tuple_tail(out, 1))
    if with_value:
        return (out, g)
    return g


def _ad_j_partial(jfn, bound, *args):
    # J(partial(fn, a1..ak)): the bound arguments' gradients go to the env
    # under keys -1..-k, so the partial's gradient is an env like a closure's
    t = call_star(jfn, bound + args)
    bp = t[1]
    nb = len(bound)

    def back(dout):
        r = bp(dout)
        env = r[0]
        k = 1
        for d in tuple_head(tuple_tail(r, 1), nb):
            env = env_setitem(env, 0 - k, add_grad(env_getitem(env, 0 - k, None), d))
            k = k + 1
        return (env,) + tuple_tail(r, nb + 1)

    return (t[0], back)


# ---- J of j_primal (second and higher orders) -----------------------------------
# j_primal(f, a...) = (out, bp) where bp = partial(rule, bound...) and the
# bound values include the arguments (and out, last).  Its gradient w.r.t.
# a: the first-order bprop applied to d_out plus out's share of d_bp, plus
# the arguments' own shares of d_bp (the env of the partial, keys -1..-k).

def _ad_jj_primal(f, *args):
    pair = call_star(j_primal, (f,) + args)
    n = len(args)

    def back(dout):
        if dout is None:
            return (env_new(), None) + _ad_nones(n)
        d_out = dout[0]
        d_bp = dout[1]
        bp = pair[1]
        info = bprop_info(bp)
        code = info[0]
        bound = info[1]
        nb = len(bound)
        d_total = d_out
        if code != 3 and code != 4:
            d_total = add_grad(d_out, env_getitem(d_bp, 0 - nb, None))
        if d_total is None:
            d = _ad_nones(n)
        else:
            d = tuple_tail(bp(d_total), 1)
        if code == 0 or code == 4:
            extra = ()
            for i in range(n):
                extra = extra + (env_getitem(d_bp, 0 - i - 1, None),)
            d = add_grad(d, extra)
        elif code == 1:
            dt = env_getitem(d_bp, -1, None)
            if dt is not None:
                d = add_grad(d, tuple(dt))
        elif code == 2:
            di = env_getitem(d_bp, -2, None)
            if di is not None:
                d = add_grad(d, scatter_tuple(di, bound[3], bound[4]))
        return (env_new(), None) + d

    return (pair, back)
