# reduce.py -- gradient rules of the reductions (sum, mean, max, min, prod,
# logsumexp) and of cumsum.
#
# A reduction's gradient is its dout broadcast back over the reduced axes
# (_unreduce in common.py restores the reduced axes as size 1 when keepdims
# was off, then broadcasts), scaled per element.  axes None or () mean all
# axes, as in ops.def.  max/min share the gradient evenly among tied
# extremes (torch's amax rule), so the result is well defined at ties; prod
# uses out/x and so assumes no zero in x (the finite-difference check draws
# x away from 0).  Integer inputs (sum/prod of ints give int64) get None.
# cumsum's adjoint is the reversed cumulative sum, built from slices with
# step -1 so that it stays differentiable.
from spore import ops
from spore import prim
import spore


def bprop_sum(x, out, dout, axes=None, keepdims=0):
    if not _is_float(x):
        return (None,)
    g = _unreduce(dout, x, axes, keepdims)
    if g.dtype != x.dtype:
        g = prim.cast(g, dtype=x.dtype)
    return (g,)


def bprop_mean(x, out, dout, axes=None, keepdims=0):
    n = x.size
    m = out.size
    scale = 0.0
    if n > 0:
        scale = (m * 1.0) / n
    return (_unreduce(dout, x, axes, keepdims) * scale,)


def _bprop_extreme(x, out, dout, axes, keepdims):
    if not _is_float(x):
        return (None,)
    ax = _axes_tuple(axes, x.ndim)
    hit = prim.cast(x == _unreduce(out, x, axes, keepdims), dtype=x.dtype)
    count = prim.sum(hit, axes=ax, keepdims=1)
    return (hit * _unreduce(dout, x, axes, keepdims) / count,)


def bprop_max(x, out, dout, axes=None, keepdims=0):
    return _bprop_extreme(x, out, dout, axes, keepdims)


def bprop_min(x, out, dout, axes=None, keepdims=0):
    return _bprop_extreme(x, out, dout, axes, keepdims)


def bprop_prod(x, out, dout, axes=None, keepdims=0):
    if not _is_float(x):
        return (None,)
    return (_unreduce(dout * out, x, axes, keepdims) / x,)


def bprop_logsumexp(x, out, dout, axes=None, keepdims=0):
    return (_unreduce(dout, x, axes, keepdims) * prim.exp(x - _unreduce(out, x, axes, keepdims)),)


def _flip(g, axis):
    return _slice_axis(g, axis, _SLICE_NONE, _SLICE_NONE, -1)


def bprop_cumsum(x, out, dout, axis=0):
    if not _is_float(x):
        return (None,)
    if x.ndim == 0:
        return (prim.cast(dout, dtype=x.dtype),)
    a = _norm_axis(axis, x.ndim)
    g = _flip(prim.cumsum(_flip(dout, a), axis=a), a)
    if g.dtype != x.dtype:
        g = prim.cast(g, dtype=x.dtype)
    return (g,)
