# nn.py -- gradient rules of the neural-network primitives: softmax,
# log_softmax, sparse_softmax_cross_entropy (and its backward primitive),
# layer_norm, batch_norm, dropout, embedding (and embedding_backward, its
# adjoint).
#
# Cross-entropy's rule is its fused backward primitive, one kernel where
# softmax, one_hot and the scaling would be three or four; the backward
# primitive has a rule of its own (written from softmax and one_hot), so
# grad of grad still goes through.  The normalization rules are written out
# from elementwise primitives rather than through layer_norm_backward /
# batch_norm_backward: those primitives have no gradient of their own, and
# a rule must be differentiable for grad of grad.  The cost is a handful of
# elementwise kernels per normalization in the backward pass; giving the
# backward primitives rules, as for cross-entropy, would let the rules call
# them.
#
# layer_norm and batch_norm have three outputs (y, mean, rstd); all three
# can carry gradient (grad of grad differentiates a rule that reads the
# saved statistics), so the rules add the mean and rstd terms:
# d mean/dx = 1/M, d rstd/dx = -rstd^3 (x - mean)/M over the M normalized
# elements.  In inference mode batch_norm's output depends on running_mean
# and running_var, which then get their gradients; in training mode they
# are buffers updated in place and get None.  dropout's mask (bool) and the
# integer labels and indices get None.
from spore import ops
from spore import prim
import spore


def bprop_softmax(x, out, dout, axis=-1):
    return (out * (dout - prim.sum(dout * out, axes=(axis,), keepdims=1)),)


def bprop_log_softmax(x, out, dout, axis=-1):
    return (dout - prim.exp(out) * prim.sum(dout, axes=(axis,), keepdims=1),)


def _cast_to(x, dtype):
    if x.dtype != dtype:
        return prim.cast(x, dtype=dtype)
    return x


def bprop_sparse_softmax_cross_entropy(logits, labels, out, dout, reduction="mean"):
    g = _cast_to(dout, logits.dtype)  # the backward primitive takes dloss in the logits' dtype
    return (prim.sparse_softmax_cross_entropy_backward(logits, labels, g, reduction=reduction), None)


def bprop_sparse_softmax_cross_entropy_backward(logits, labels, dloss, out, dout, reduction="mean"):
    # out = (p - onehot(labels)) * s with p = softmax(logits) and s the
    # per-row scale: dloss[i] ("none"), dloss ("sum"), dloss / N ("mean").
    # Through p, logits get softmax's rule applied to dout * s; dloss gets
    # the sum of dout * (p - onehot) over what it scaled.
    n = logits.shape[0]
    c = logits.shape[1]
    p = prim.softmax(logits, axis=-1)
    d = p - prim.one_hot(labels, depth=c, dtype=logits.dtype)
    if reduction == "none":
        gs = dout * prim.reshape(dloss, shape=(n, 1))
        gl = prim.sum(dout * d, axes=(1,))
    elif reduction == "sum":
        gs = dout * dloss
        gl = prim.sum(dout * d)
    else:
        gs = dout * (dloss / max(n, 1))
        gl = prim.sum(dout * d) / max(n, 1)
    dlogits = p * (gs - prim.sum(gs * p, axes=(1,), keepdims=1))
    return (dlogits, None, gl)


def _norm_terms(x, xhat, rstd, dy, dmean, drstd, axes, m):
    """dx of y = xhat*scale + shift given dyg = dy*scale, plus the terms of
    the saved mean and rstd: xhat = (x - mean)*rstd normalized over `axes`
    (M elements), mean/rstd broadcast to x's rank."""
    inv = 1.0 / m
    mg = prim.mean(dy, axes=axes, keepdims=1)
    mgx = prim.mean(dy * xhat, axes=axes, keepdims=1)
    dx = rstd * (dy - mg - xhat * mgx)
    if dmean is not None:
        dx = dx + dmean * inv
    if drstd is not None:
        dx = dx - drstd * rstd * rstd * xhat * inv
    return dx


def bprop_layer_norm(x, gamma, beta, out, dout, axis=-1, epsilon=1e-5):
    nd = x.ndim
    a = _norm_axis(axis, nd)
    lead = x.shape[:a]
    bshape = lead + _ones(nd - a)
    m = 1
    for d in x.shape[a:]:
        m = m * d
    axes = tuple(range(a, nd))
    mean = prim.cast(prim.reshape(out[1], shape=bshape), dtype=x.dtype)
    rstd = prim.cast(prim.reshape(out[2], shape=bshape), dtype=x.dtype)
    xhat = (x - mean) * rstd
    dy = _dz(dout[0], out[0])
    dmean = None
    drstd = None
    if dout[1] is not None:
        dmean = prim.cast(prim.reshape(dout[1], shape=bshape), dtype=x.dtype)
    if dout[2] is not None:
        drstd = prim.cast(prim.reshape(dout[2], shape=bshape), dtype=x.dtype)
    dx = _norm_terms(x, xhat, rstd, dy * gamma, dmean, drstd, axes, m)
    lead_axes = tuple(range(a))
    dg = dy * xhat
    db = dy
    if a > 0:
        dg = prim.sum(dg, axes=lead_axes)
        db = prim.sum(db, axes=lead_axes)
    return (dx, _grad_for(dg, gamma), _grad_for(db, beta))


def bprop_batch_norm(x, gamma, beta, running_mean, running_var, out, dout, training=1, momentum=0.1,
                     epsilon=1e-5):
    nd = x.ndim
    c = x.shape[1]
    cshape = (1, c) + _ones(nd - 2)
    axes = (0,) + tuple(range(2, nd))
    m = 1
    for i in axes:
        m = m * x.shape[i]
    mean = prim.reshape(out[1], shape=cshape)
    rstd = prim.reshape(out[2], shape=cshape)
    g = prim.reshape(gamma, shape=cshape)
    xhat = (x - mean) * rstd
    dy = _dz(dout[0], out[0])
    dmean = None
    drstd = None
    if dout[1] is not None:
        dmean = prim.reshape(dout[1], shape=cshape)
    if dout[2] is not None:
        drstd = prim.reshape(dout[2], shape=cshape)
    dg = prim.sum(dy * xhat, axes=axes)
    db = prim.sum(dy, axes=axes)
    if training:
        dx = _norm_terms(x, xhat, rstd, dy * g, dmean, drstd, axes, m)
        return (dx, dg, db, None, None)
    # inference: y = (x - running_mean) * rsqrt(running_var + eps) * gamma + beta,
    # and the saved outputs are running_mean and rsqrt(running_var + eps)
    dyg = dy * g
    dx = dyg * rstd
    drm = -prim.sum(dx, axes=axes)
    r3 = rstd * rstd * rstd * -0.5
    drv = prim.sum(dyg * (x - mean) * r3, axes=axes)
    if dmean is not None:
        drm = drm + prim.reshape(dmean, shape=(c,))
    if drstd is not None:
        drv = drv + prim.reshape(drstd * r3, shape=(c,))
    return (dx, dg, db, drm, drv)


def bprop_dropout(x, out, dout, p=0.5, seed=0, offset=0):
    dy = _dz(dout[0], out[0])
    if p >= 1.0:
        return (ops.zeros_like(dy),)
    return (prim.where(out[1], dy * (1.0 / (1.0 - p)), 0.0),)


def bprop_embedding(weight, indices, out, dout):
    return (prim.embedding_backward(dout, indices, num_embeddings=weight.shape[0]), None)


def bprop_embedding_backward(dout_in, indices, out, dout, num_embeddings=0):
    return (prim.embedding(dout, indices), None)
