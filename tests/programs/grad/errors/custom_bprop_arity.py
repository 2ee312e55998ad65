import spore
from spore import ops


def f(x, y):
    return x * y


def f_bprop(x, y, out, dout):
    return (dout * y,)


def main():
    g = spore.grad(lambda a, b: f(a, b).sum())
    return g(ops.tensor([1.0]), ops.tensor([2.0]))
# error: custom_bprop_arity.py:15:12: f_bprop returned 1 gradient(s) for the 2 input(s) of f
