import spore
from spore import ops


def f(x):
    return x.sum()


def main():
    return spore.grad(f)(ops.tensor([1, 2]))
# error: int_tensor.py:10:25: grad: input 0 is a Tensor of int64
