# common.py -- helpers shared by every gradient rule of src/ops/bprop.
#
# The rule files are ordinary Spore source (Python syntax) compiled together
# as ONE module at first use, so every file sees the top-level names of the
# others; the helpers here start with an underscore so they never collide with
# a rule, which is always named bprop_<primitive>.
#
# The rule contract (shared with src/ad, see DESIGN.md section 5):
#   def bprop_<op>(<tensor inputs by position>, out, dout, <attrs>=<default>)
# returns a tuple with one entry per tensor input: the gradient with the
# input's shape and dtype, or None for an input that gets none (integer or
# bool tensors: indices, labels, masks).  Attributes arrive as keyword
# arguments named as in ops.def; an attribute the call did not set keeps the
# default written in the rule, which is ops.def's default.  Variadic
# primitives (concat, stack) take their inputs as ONE tuple `xs` and return
# one gradient per element of xs.  For primitives with several outputs
# (sort, topk, split, layer_norm, batch_norm, dropout) `out` and `dout` are
# tuples; an entry of dout may be None (that output got no gradient) and
# the rules treat it as zeros.
#
# Rules are written with differentiable primitives only, so the K transform
# can differentiate a rule again (grad of grad); they read shapes, which are
# static Python values, freely.  Invariants the helpers keep: a gradient
# returned for input x always has x.shape and x.dtype (broadcasting undone by
# summing, promotion undone by casting back).
from spore import ops
from spore import prim
import spore

# Python's slice "omitted" marker as the slice primitive spells it.
_SLICE_NONE = -9223372036854775807 - 1


def _is_float(x):
    return x.dtype in (spore.float32, spore.float64, spore.float16, spore.bfloat16)


def _dz(d, like):
    """d, or zeros shaped like `like` when d is None (an output that got no
    gradient)."""
    if d is None:
        return ops.zeros_like(like)
    return d


def _norm_axis(a, nd):
    if a < 0:
        return a + nd
    return a


def _axes_tuple(axes, nd):
    """The reduced axes of a reduction, normalized: None or () mean all."""
    if axes is None:
        return tuple(range(nd))
    if isinstance(axes, int):
        axes = (axes,)
    if len(axes) == 0:
        return tuple(range(nd))
    r = ()
    for a in axes:
        r = r + (_norm_axis(a, nd),)
    return r


def _ones(n):
    r = ()
    for i in range(n):
        r = r + (1,)
    return r


def _sum_to_shape(g, shape):
    """Sums g (broadcast from `shape` by numpy's rules) back to `shape`."""
    gs = g.shape
    if gs == shape:
        return g
    lead = len(gs) - len(shape)
    axes = ()
    for i in range(len(gs)):
        if i < lead:
            axes = axes + (i,)
        elif shape[i - lead] == 1 and gs[i] != 1:
            axes = axes + (i,)
    if len(axes) > 0:
        g = prim.sum(g, axes=axes, keepdims=1)
    return prim.reshape(g, shape=shape)


def _grad_for(g, x):
    """The gradient of input x from g, the gradient of a broadcast and
    promoted result: None for non-float x, else summed to x.shape and cast to
    x.dtype."""
    if not _is_float(x):
        return None
    g = _sum_to_shape(g, x.shape)
    if g.dtype != x.dtype:
        g = prim.cast(g, dtype=x.dtype)
    return g


def _keep_shape(x, axes):
    """x.shape with the (normalized) reduced axes set to 1."""
    ks = ()
    for i in range(x.ndim):
        if i in axes:
            ks = ks + (1,)
        else:
            ks = ks + (x.shape[i],)
    return ks


def _unreduce(g, x, axes, keepdims):
    """Broadcasts g, the result (or gradient) of a reduction of x over axes,
    back to x.shape."""
    ax = _axes_tuple(axes, x.ndim)
    if not keepdims:
        g = prim.reshape(g, shape=_keep_shape(x, ax))
    return prim.broadcast_to(g, shape=x.shape)


def _scatter_axis(g, axis, idx, n):
    """The adjoint of selecting positions idx (a tuple of ints in [0, n),
    repeats allowed) along `axis`: a tensor with g.shape except n along
    axis, holding the sum of g's slices at their positions."""
    shape = g.shape
    target = shape[:axis] + (n,) + shape[axis + 1:]
    z = ops.zeros(target, dtype=g.dtype)
    if len(idx) == 0:
        return z
    it = ops.tensor(idx, dtype=spore.int64)
    it = prim.reshape(it, shape=_ones(axis) + (len(idx),) + _ones(len(shape) - axis - 1))
    it = prim.broadcast_to(it, shape=shape)
    return prim.scatter_add(z, it, g, axis=axis)


def _slice_axis(g, axis, b, e, s):
    """g[..., b:e:s, ...] along one axis (Python semantics)."""
    nd = g.ndim
    begin = ()
    end = ()
    step = ()
    for i in range(nd):
        if i == axis:
            begin = begin + (b,)
            end = end + (e,)
            step = step + (s,)
        else:
            begin = begin + (_SLICE_NONE,)
            end = end + (_SLICE_NONE,)
            step = step + (1,)
    return prim.slice(g, begin=begin, end=end, step=step)


def _slice_range(n, b, e, s):
    """The indices b:e:s selects from a dimension of n (Python's
    slice.indices), as a tuple."""
    if s > 0:
        if b == _SLICE_NONE:
            b = 0
        elif b < 0:
            b = max(b + n, 0)
        else:
            b = min(b, n)
        if e == _SLICE_NONE:
            e = n
        elif e < 0:
            e = max(e + n, 0)
        else:
            e = min(e, n)
    else:
        if b == _SLICE_NONE:
            b = n - 1
        elif b < 0:
            b = max(b + n, -1)
        else:
            b = min(b, n - 1)
        if e == _SLICE_NONE:
            e = -1
        elif e < 0:
            e = max(e + n, -1)
        else:
            e = min(e, n - 1)
    return tuple(range(b, e, s))
