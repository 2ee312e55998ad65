# linalg.py -- gradient rules of matmul, conv2d and the pooling primitives,
# including the rules of the backward primitives that are themselves
# differentiable (conv2d_backprop_input/filter, max/avg_pool2d_backward):
# those are what make grad of grad of a CNN work.
#
# matmul: C = op(A) op(B) with op a transpose of the last two dims when the
# attribute asks; 1-D operands are lifted to a row (A) or a column (B) first
# and the gradient reshaped back; batch dims broadcast, so the gradient is
# summed back to each operand's shape.
#
# conv2d is bilinear in (x, w): <dy, conv(x, w)> = <Bi(dy, w), x> =
# <Bf(dy, x), w>, with Bi = conv2d_backprop_input and Bf =
# conv2d_backprop_filter.  Bi and Bf are bilinear too, and the identity
# gives their adjoints without new primitives: d/d(dy) <g, Bi(dy, w)> =
# conv(g, w), d/dw = Bf(dy, g); d/d(dy) <g, Bf(dy, x)> = conv(x, g),
# d/dx = Bi(dy, g).  Every rule passes the conv attributes through unchanged.
#
# avg_pool2d is linear, so avg_pool2d_backward is its adjoint and
# avg_pool2d is the adjoint of that.  max_pool2d_backward(x, dy) is linear
# in dy (it routes each window's dy to the window's first maximum of x) and
# piecewise constant in x: its rule gives zeros for x and, for dy, reads
# back the gradient at each window's first maximum, window offset by window
# offset over a -inf padded x (padded cells never win, as in the forward).
from spore import ops
from spore import prim
import spore


def bprop_matmul(a, b, out, dout, transpose_a=0, transpose_b=0):
    ta = transpose_a
    tb = transpose_b
    a2 = a
    b2 = b
    g = dout
    if a.ndim == 1:
        a2 = prim.reshape(a, shape=(1, a.shape[0]))
        ta = 0
        g = prim.reshape(g, shape=g.shape[:g.ndim - 1] + (1,) + g.shape[g.ndim - 1:])
    if b.ndim == 1:
        b2 = prim.reshape(b, shape=(b.shape[0], 1))
        tb = 0
        g = prim.reshape(g, shape=g.shape + (1,))
    if not ta and not tb:
        da = prim.matmul(g, b2, transpose_b=1)
        db = prim.matmul(a2, g, transpose_a=1)
    elif ta and not tb:
        da = prim.matmul(b2, g, transpose_b=1)
        db = prim.matmul(a2, g)
    elif not ta and tb:
        da = prim.matmul(g, b2)
        db = prim.matmul(g, a2, transpose_a=1)
    else:
        da = prim.matmul(b2, g, transpose_a=1, transpose_b=1)
        db = prim.matmul(g, a2, transpose_a=1, transpose_b=1)
    da = prim.reshape(_sum_to_shape(da, a2.shape), shape=a.shape)
    db = prim.reshape(_sum_to_shape(db, b2.shape), shape=b.shape)
    return (da, db)


def bprop_conv2d(x, w, out, dout, stride=(1, 1), dilation=(1, 1), pad_mode="pad", padding=0, groups=1):
    dx = prim.conv2d_backprop_input(dout, w, input_shape=x.shape, stride=stride, dilation=dilation,
                                    pad_mode=pad_mode, padding=padding, groups=groups)
    dw = prim.conv2d_backprop_filter(dout, x, filter_shape=w.shape, stride=stride, dilation=dilation,
                                     pad_mode=pad_mode, padding=padding, groups=groups)
    return (dx, dw)


def bprop_conv2d_backprop_input(dy, w, out, dout, input_shape=None, stride=(1, 1), dilation=(1, 1),
                                pad_mode="pad", padding=0, groups=1):
    ddy = prim.conv2d(dout, w, stride=stride, dilation=dilation, pad_mode=pad_mode, padding=padding,
                      groups=groups)
    dw = prim.conv2d_backprop_filter(dy, dout, filter_shape=w.shape, stride=stride, dilation=dilation,
                                     pad_mode=pad_mode, padding=padding, groups=groups)
    return (ddy, dw)


def bprop_conv2d_backprop_filter(dy, x, out, dout, filter_shape=None, stride=(1, 1), dilation=(1, 1),
                                 pad_mode="pad", padding=0, groups=1):
    ddy = prim.conv2d(x, dout, stride=stride, dilation=dilation, pad_mode=pad_mode, padding=padding,
                      groups=groups)
    dx = prim.conv2d_backprop_input(dy, dout, input_shape=x.shape, stride=stride, dilation=dilation,
                                    pad_mode=pad_mode, padding=padding, groups=groups)
    return (ddy, dx)


def bprop_max_pool2d(x, out, dout, kernel_size=None, stride=None, pad_mode="pad", padding=0, ceil_mode=0):
    return (prim.max_pool2d_backward(x, dout, kernel_size=kernel_size, stride=stride, pad_mode=pad_mode,
                                     padding=padding, ceil_mode=ceil_mode),)


def bprop_avg_pool2d(x, out, dout, kernel_size=None, stride=None, pad_mode="pad", padding=0, ceil_mode=0,
                     count_include_pad=1):
    return (prim.avg_pool2d_backward(dout, input_shape=x.shape, kernel_size=kernel_size, stride=stride,
                                     pad_mode=pad_mode, padding=padding, ceil_mode=ceil_mode,
                                     count_include_pad=count_include_pad),)


def bprop_avg_pool2d_backward(dy, out, dout, input_shape=None, kernel_size=None, stride=None, pad_mode="pad",
                              padding=0, ceil_mode=0, count_include_pad=1):
    return (prim.avg_pool2d(dout, kernel_size=kernel_size, stride=stride, pad_mode=pad_mode, padding=padding,
                            ceil_mode=ceil_mode, count_include_pad=count_include_pad),)


def _pair(v, dflt):
    if v is None:
        return dflt
    if isinstance(v, int):
        return (v, v)
    if len(v) == 1:
        return (v[0], v[0])
    return (v[0], v[1])


def _pool_pads(x, dy, kh, kw, sh, sw, pad_mode, padding):
    """(top, bottom, left, right) of the forward's padding, the bottom and
    right widened so that every window of dy's grid lies inside."""
    h = x.shape[2]
    w = x.shape[3]
    ho = dy.shape[2]
    wo = dy.shape[3]
    if pad_mode == "same":
        th = max((ho - 1) * sh + kh - h, 0)
        tw = max((wo - 1) * sw + kw - w, 0)
        t = th // 2
        l = tw // 2
    elif pad_mode == "valid":
        t = 0
        l = 0
    else:
        p = padding
        if isinstance(p, int):
            p = (p,)
        if len(p) == 1:
            t = p[0]
            l = p[0]
        elif len(p) == 2:
            t = p[0]
            l = p[1]
        else:
            t = p[0]
            l = p[2]
    b = max((ho - 1) * sh + kh - h - t, 0)
    r = max((wo - 1) * sw + kw - w - l, 0)
    return (t, b, l, r)


def bprop_max_pool2d_backward(x, dy, out, dout, kernel_size=None, stride=None, pad_mode="pad", padding=0,
                              ceil_mode=0):
    k = _pair(kernel_size, (1, 1))
    s = _pair(stride, k)
    kh = k[0]
    kw = k[1]
    sh = s[0]
    sw = s[1]
    pads = _pool_pads(x, dy, kh, kw, sh, sw, pad_mode, padding)
    m = prim.max_pool2d(x, kernel_size=kernel_size, stride=stride, pad_mode=pad_mode, padding=padding,
                        ceil_mode=ceil_mode)
    p4 = (0, 0, 0, 0, pads[0], pads[1], pads[2], pads[3])
    xp = prim.pad(x, pads=p4, value=float("-inf"))
    gp = prim.pad(dout, pads=p4)
    n = x.shape[0]
    c = x.shape[1]
    ho = dy.shape[2]
    wo = dy.shape[3]
    res = ops.zeros_like(dy)
    free = ops.ones_like(dy)
    for i in range(kh):
        for j in range(kw):
            begin = (0, 0, i, j)
            end = (n, c, i + (ho - 1) * sh + 1, j + (wo - 1) * sw + 1)
            step = (1, 1, sh, sw)
            xs = prim.slice(xp, begin=begin, end=end, step=step)
            gs = prim.slice(gp, begin=begin, end=end, step=step)
            hit = prim.cast(xs == m, dtype=dy.dtype) * free
            res = res + hit * gs
            free = free - hit
    return (ops.zeros_like(x), res)
