import spore
from spore import ops


def f(x, n):
    return (x * n).sum()


def main():
    return spore.grad(f, grad_position=1)(ops.tensor([1.0]), 3)
# error: int_input.py:10:42: grad: input 1 is an integer
