import spore
from spore import ops, prim


def f(x):
    labels = ops.tensor([1, 0])
    d = prim.sparse_softmax_cross_entropy_backward(x, labels, ops.tensor(1.0))
    return d.sum()


def main():
    return spore.grad(f)(ops.tensor([[1.0, 2.0], [0.5, 0.1]]))
# error: no_rule.py:7:14: cannot differentiate primitive 'sparse_softmax_cross_entropy_backward'
