import spore
from spore import ops


def f(x):
    return x * 2.0


def main():
    return spore.grad(f)(ops.tensor([1.0, 2.0]))
# error: nonscalar.py:10:25: grad: the function returns a Tensor of shape (2,), not a scalar
