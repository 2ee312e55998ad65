# elementwise.py -- gradient rules of the elementwise primitives: unary
# math, activations, the binary arithmetic with numpy broadcasting, where and
# cast.
#
# Binary rules compute the gradient at the broadcast result's shape and hand
# it to _grad_for (common.py), which sums it back to the input's shape,
# casts it to the input's dtype and gives None for integer or bool inputs.
# Non-smooth points take a documented one-sided choice: relu and clamp pass
# the gradient where the input is strictly inside (relu: x > 0; clamp:
# min <= x <= max, torch's rule), maximum/minimum give a tie to the first
# input (MindSpore's rule), abs uses sign (0 at 0).  floor, ceil, round and
# sign are piecewise constant: zero gradient.  Rules prefer the forward
# output `out` where it saves work (exp, tanh, sigmoid, sqrt), which is also
# correct for grad of grad because `out` is itself a differentiated value.
#
# Masked gradients are where(mask, g, 0.0) with a Python zero, never a
# zeros_like tensor: the scalar costs no kernel and no memory (the fusion
# pass makes it a literal of the fused formula), and where's result keeps
# g's dtype.  Under weak typing a scalar operand of where takes the dtype
# of the call's first tensor, the bool mask, so only 0 and 1 survive that
# trip exactly: never write another constant there.  relu's rule reads `out`
# (out > 0 exactly where x > 0, NaN included), as PyTorch's
# threshold_backward does, so that the forward's last reader of x is relu
# itself and a bias add before it fuses into one kernel with it.
from spore import ops
from spore import prim
import spore


def _unary(x, g):
    if not _is_float(x):
        return (None,)
    return (g,)


def bprop_neg(x, out, dout):
    return _unary(x, -dout)


def bprop_abs(x, out, dout):
    return _unary(x, dout * prim.sign(x))


def bprop_sign(x, out, dout):
    return _unary(x, ops.zeros_like(x))


def bprop_floor(x, out, dout):
    return _unary(x, ops.zeros_like(x))


def bprop_ceil(x, out, dout):
    return _unary(x, ops.zeros_like(x))


def bprop_round(x, out, dout):
    return _unary(x, ops.zeros_like(x))


def bprop_exp(x, out, dout):
    return (dout * out,)


def bprop_log(x, out, dout):
    return (dout / x,)


def bprop_log1p(x, out, dout):
    return (dout / (x + 1.0),)


def bprop_expm1(x, out, dout):
    return (dout * (out + 1.0),)


def bprop_sqrt(x, out, dout):
    return (dout * 0.5 / out,)


def bprop_rsqrt(x, out, dout):
    return (dout * -0.5 * out / x,)


def bprop_square(x, out, dout):
    return _unary(x, dout * 2.0 * x)


def bprop_reciprocal(x, out, dout):
    return (-dout * out * out,)


def bprop_sin(x, out, dout):
    return (dout * prim.cos(x),)


def bprop_cos(x, out, dout):
    return (-dout * prim.sin(x),)


def bprop_tanh(x, out, dout):
    return (dout * (1.0 - out * out),)


def bprop_sigmoid(x, out, dout):
    return (dout * out * (1.0 - out),)


def bprop_relu(x, out, dout):
    return _unary(x, prim.where(out > 0, dout, 0.0))


def bprop_gelu(x, out, dout, approximate="none"):
    if approximate == "tanh":
        c = 0.7978845608028654  # sqrt(2/pi)
        x2 = x * x
        t = prim.tanh(c * (x + 0.044715 * x2 * x))
        d = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x2)
        return (dout * d,)
    cdf = 0.5 * (1.0 + prim.erf(x * 0.7071067811865476))
    pdf = prim.exp(x * x * -0.5) * 0.3989422804014327  # 1/sqrt(2*pi)
    return (dout * (cdf + x * pdf),)


def bprop_silu(x, out, dout):
    s = prim.sigmoid(x)
    return (dout * s * (1.0 + x * (1.0 - s)),)


def bprop_softplus(x, out, dout, beta=1.0, threshold=20.0):
    bx = x * beta
    return (prim.where(bx > threshold, dout, dout * prim.sigmoid(bx)),)


def bprop_erf(x, out, dout):
    return (dout * 1.1283791670955126 * prim.exp(-(x * x)),)  # 2/sqrt(pi)


def bprop_clamp(x, out, dout, min=None, max=None):
    if not _is_float(x):
        return (None,)
    g = dout
    if min is not None:
        g = prim.where(x >= min, g, 0.0)
    if max is not None:
        g = prim.where(x <= max, g, 0.0)
    return (g,)


# ---- binary, with broadcasting -------------------------------------------------

def bprop_add(a, b, out, dout):
    return (_grad_for(dout, a), _grad_for(dout, b))


def bprop_sub(a, b, out, dout):
    return (_grad_for(dout, a), _grad_for(-dout, b))


def bprop_mul(a, b, out, dout):
    ga = None
    gb = None
    if _is_float(a):
        ga = _grad_for(dout * b, a)
    if _is_float(b):
        gb = _grad_for(dout * a, b)
    return (ga, gb)


def bprop_div(a, b, out, dout):
    ga = None
    gb = None
    if _is_float(a):
        ga = _grad_for(dout / b, a)
    if _is_float(b):
        gb = _grad_for(-dout * out / b, b)
    return (ga, gb)


def bprop_pow(a, b, out, dout):
    ga = None
    gb = None
    if _is_float(a):
        # b * a^(b-1); 0 where b == 0 (so 0^0 has gradient 0, not NaN)
        d = dout * b * prim.pow(a, b - 1)
        ga = _grad_for(prim.where(b == 0, 0.0, d), a)
    if _is_float(b):
        # a^b * log(a) for a > 0; 0 elsewhere (no NaN from log of a <= 0)
        pos = a > 0
        la = prim.log(prim.where(pos, a, 1.0))
        d = dout * out * la
        gb = _grad_for(prim.where(pos, d, 0.0), b)
    return (ga, gb)


def bprop_maximum(a, b, out, dout):
    m = a >= b
    return (_grad_for(prim.where(m, dout, 0.0), a), _grad_for(prim.where(m, 0.0, dout), b))


def bprop_minimum(a, b, out, dout):
    m = a <= b
    return (_grad_for(prim.where(m, dout, 0.0), a), _grad_for(prim.where(m, 0.0, dout), b))


def bprop_mod(a, b, out, dout):
    # a - floor(a/b)*b: d/da = 1, d/db = -floor(a/b) (away from the jumps)
    gb = None
    if _is_float(b):
        gb = _grad_for(-dout * prim.floor(a / b), b)
    return (_grad_for(dout, a), gb)


def bprop_atan2(a, b, out, dout):
    r = a * a + b * b
    return (_grad_for(dout * b / r, a), _grad_for(-dout * a / r, b))


def bprop_where(cond, x, y, out, dout):
    return (None, _grad_for(prim.where(cond, dout, 0.0), x), _grad_for(prim.where(cond, 0.0, dout), y))


def bprop_cast(x, out, dout, dtype=None):
    if not _is_float(x) or not _is_float(out):
        return (None,)
    return (prim.cast(dout, dtype=x.dtype),)
