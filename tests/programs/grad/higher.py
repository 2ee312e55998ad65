# Grad of grad: second derivatives of tensor and float functions (third
# derivatives and a Hessian-vector product: third.py).
import spore
from spore import ops


def f(x):
    return (ops.sin(x) * x * x).sum()


def cube(x):
    return x * x * x


def main():
    x = ops.tensor([0.5, 1.5])
    d1 = spore.grad(f)
    d2 = spore.grad(lambda v: d1(v).sum())
    s = ops.sin(x)
    c = ops.cos(x)
    ref1 = c * x * x + 2.0 * x * s
    ref2 = -s * x * x + 4.0 * x * c + 2.0 * s
    print(ops.abs(d1(x) - ref1).max() < 1e-5)
    print(ops.abs(d2(x) - ref2).max() < 1e-5)
    # floats
    g1 = spore.grad(cube)
    g2 = spore.grad(g1)
    print(g1(2.0), g2(2.0), g2(-1.0))
# expect: True
# expect: True
# expect: 12.0 12.0 -6.0
