# Grad of grad through cross-entropy: the rule of sparse_softmax_cross_entropy
# is its fused backward primitive, whose own rule (nn.py) gives these
# Hessian-vector products and the derivative with respect to the loss's
# seed.  Closed forms, with p = softmax(z) and N rows:
#   mean:  d/dz <grad_z L, v> = (p*v - p*sum(p*v, axis=1)) / N
#   sum:   the same without / N
#   none:  L = sum(ce(z) * r): d/dz <grad_z L, v> = r * (p*v - p*sum(p*v)),
#          d/dr <grad_z L, v> = sum((p - onehot(y)) * v, axis=1)
import spore
from spore import ops, prim


def loss_mean(z, y):
    return prim.sparse_softmax_cross_entropy(z, y)


def loss_sum(z, y):
    return prim.sparse_softmax_cross_entropy(z, y, reduction="sum")


def loss_none(z, r, y):
    return (prim.sparse_softmax_cross_entropy(z, y, reduction="none") * r).sum()


def main():
    z = ops.tensor([[0.5, -1.0, 2.0], [0.1, 0.2, -0.3], [1.5, 0.0, -2.0], [-0.7, 0.4, 0.9]])
    y = ops.tensor([2, 0, 1, 1])
    v = ops.tensor([[1.0, -0.5, 0.25], [0.0, 2.0, -1.0], [0.3, 0.3, -0.6], [-1.5, 1.0, 0.5]])
    r = ops.tensor([0.5, 2.0, -1.0, 1.5])
    p = prim.softmax(z)
    hv = p * v - p * (p * v).sum(axis=1, keepdims=True)
    d = p - prim.one_hot(y, depth=3)
    g_mean = spore.grad(loss_mean)
    g_sum = spore.grad(loss_sum)
    g_none = spore.grad(loss_none)
    print(ops.abs(spore.grad(lambda a: (g_mean(a, y) * v).sum())(z) - hv / 4.0).max() < 1e-6)
    print(ops.abs(spore.grad(lambda a: (g_sum(a, y) * v).sum())(z) - hv).max() < 1e-6)
    gz, gr = spore.grad(lambda a, b: (g_none(a, b, y) * v).sum(), grad_position=(0, 1))(z, r)
    print(ops.abs(gz - r.reshape((4, 1)) * hv).max() < 1e-6)
    print(ops.abs(gr - (d * v).sum(axis=1)).max() < 1e-6)
    # the first derivative itself, through the fused primitive
    print(ops.abs(g_mean(z, y) - d / 4.0).max() < 1e-7)
# expect: True
# expect: True
# expect: True
# expect: True
# expect: True
