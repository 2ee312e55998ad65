# shape.py -- gradient rules of the shape and data-movement primitives:
# reshape, transpose, broadcast_to, concat, split, stack, pad, tile, slice,
# gather, take_along_axis, scatter_add, sort, topk.
#
# Every one of them is linear in its tensor input, so each rule applies the
# adjoint data movement to dout: the inverse permutation, a sum over the
# broadcast or tiled axes, a split of a concatenation, and for the
# selections (slice, gather, take_along_axis, sort, topk, reflect padding) a
# scatter_add of dout into zeros at the selected positions -- repeats add up,
# which is what a selection that reads one element twice needs.  The
# adjoints are themselves built from differentiable primitives (scatter_add's
# rule is take_along_axis and back), so grad of grad works.  Integer
# indices get None.  Multi-output rules (split, sort, topk) take `dout` as a
# tuple whose entries may be None.  A split or concat of ONE piece returns a
# single tensor, not a tuple, from the primitive: the rules handle that.
from spore import ops
from spore import prim
import spore


def bprop_reshape(x, out, dout, shape=None):
    return (prim.reshape(dout, shape=x.shape),)


def bprop_transpose(x, out, dout, perm=None):
    nd = x.ndim
    if perm is None or len(perm) == 0:
        return (prim.transpose(dout),)
    inv = ()
    for i in range(nd):
        for j in range(nd):
            if _norm_axis(perm[j], nd) == i:
                inv = inv + (j,)
    return (prim.transpose(dout, perm=inv),)


def bprop_broadcast_to(x, out, dout, shape=None):
    return (_grad_for(dout, x),)


def bprop_concat(xs, out, dout, axis=0):
    n = len(xs)
    if n == 1:
        return (_grad_for(dout, xs[0]),)
    a = _norm_axis(axis, out.ndim)
    sizes = ()
    for x in xs:
        sizes = sizes + (x.shape[a],)
    parts = prim.split(dout, axis=a, sizes=sizes)
    r = ()
    for i in range(n):
        r = r + (_grad_for(parts[i], xs[i]),)
    return r


def bprop_split(x, out, dout, axis=0, sizes=None):
    if not _is_float(x):
        return (None,)
    if len(sizes) == 1:
        return (_dz(dout, out),)
    parts = ()
    for i in range(len(sizes)):
        parts = parts + (_dz(dout[i], out[i]),)
    return (ops.concat(parts, axis=axis),)


def bprop_stack(xs, out, dout, axis=0):
    n = len(xs)
    a = _norm_axis(axis, out.ndim)
    if n == 1:
        return (_grad_for(prim.reshape(dout, shape=xs[0].shape), xs[0]),)
    sizes = ()
    for i in range(n):
        sizes = sizes + (1,)
    parts = prim.split(dout, axis=a, sizes=sizes)
    r = ()
    for i in range(n):
        r = r + (_grad_for(prim.reshape(parts[i], shape=xs[i].shape), xs[i]),)
    return r


def bprop_pad(x, out, dout, pads=None, mode="constant", value=0.0):
    if not _is_float(x):
        return (None,)
    g = dout
    for a in range(x.ndim):
        b = pads[2 * a]
        e = pads[2 * a + 1]
        n = x.shape[a]
        if b == 0 and e == 0:
            continue
        if mode == "reflect":
            # padded position j reads x[r(j)]: numpy's reflect, edge not repeated
            idx = ()
            for j in range(b, 0, -1):
                idx = idx + (j,)
            idx = idx + tuple(range(n))
            for j in range(e):
                idx = idx + (n - 2 - j,)
            g = _scatter_axis(g, a, idx, n)
        else:
            g = _slice_axis(g, a, b, b + n, 1)
    return (g,)


def bprop_tile(x, out, dout, reps=None):
    xs = x.shape
    r = tuple(reps)
    if len(r) < len(xs):
        r = _ones(len(xs) - len(r)) + r
    xs2 = _ones(len(r) - len(xs)) + xs
    inter = ()
    axes = ()
    for i in range(len(r)):
        inter = inter + (r[i], xs2[i])
        axes = axes + (2 * i,)
    g = dout
    if len(axes) > 0:
        g = prim.sum(prim.reshape(g, shape=inter), axes=axes)
    return (_grad_for(prim.reshape(g, shape=xs), x),)


def bprop_slice(x, out, dout, begin=None, end=None, step=None):
    if not _is_float(x):
        return (None,)
    g = dout
    for a in range(x.ndim):
        n = x.shape[a]
        b = _SLICE_NONE
        e = _SLICE_NONE
        s = 1
        if begin is not None and a < len(begin):
            b = begin[a]
        if end is not None and a < len(end):
            e = end[a]
        if step is not None and a < len(step):
            s = step[a]
        idx = _slice_range(n, b, e, s)
        if idx == tuple(range(n)):
            continue
        if s == 1 and len(idx) > 0:
            g = prim.pad(g, pads=_axis_pads(x.ndim, a, idx[0], n - idx[0] - len(idx)))
        else:
            g = _scatter_axis(g, a, idx, n)
    return (g,)


def _axis_pads(nd, axis, before, after):
    p = ()
    for i in range(nd):
        if i == axis:
            p = p + (before, after)
        else:
            p = p + (0, 0)
    return p


def _wrap_index(idx, n):
    return prim.where(idx < 0, idx + n, idx)


def bprop_gather(x, indices, out, dout, axis=0):
    if not _is_float(x):
        return (None, None)
    nd = x.ndim
    a = _norm_axis(axis, nd)
    n = x.shape[a]
    k = indices.size
    lead = x.shape[:a]
    tail = x.shape[a + 1:]
    g = prim.reshape(dout, shape=lead + (k,) + tail)
    z = ops.zeros(x.shape, dtype=g.dtype)
    if k == 0:
        return (z, None)
    idx = _wrap_index(prim.cast(prim.reshape(indices, shape=(k,)), dtype=spore.int64), n)
    idx = prim.reshape(idx, shape=_ones(len(lead)) + (k,) + _ones(len(tail)))
    idx = prim.broadcast_to(idx, shape=g.shape)
    return (prim.scatter_add(z, idx, g, axis=a), None)


def bprop_take_along_axis(x, indices, out, dout, axis=0):
    if not _is_float(x):
        return (None, None)
    a = _norm_axis(axis, x.ndim)
    idx = _wrap_index(indices, x.shape[a])
    return (prim.scatter_add(ops.zeros_like(x), idx, dout, axis=a), None)


def bprop_scatter_add(x, indices, updates, out, dout, axis=0):
    gx = None
    gu = None
    if _is_float(x):
        gx = dout
    if _is_float(updates):
        gu = prim.take_along_axis(dout, indices, axis=axis)
        if gu.dtype != updates.dtype:
            gu = prim.cast(gu, dtype=updates.dtype)
    return (gx, None, gu)


def _bprop_selected(x, out, dout, axis):
    if not _is_float(x):
        return (None,)
    dv = _dz(dout[0], out[0])
    a = _norm_axis(axis, x.ndim)
    return (prim.scatter_add(ops.zeros_like(x), out[1], dv, axis=a),)


def bprop_sort(x, out, dout, axis=-1, descending=0):
    return _bprop_selected(x, out, dout, axis)


def bprop_topk(x, out, dout, k=None, axis=-1, largest=1):
    return _bprop_selected(x, out, dout, axis)
