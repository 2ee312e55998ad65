# Gradients of straight-line code: elementwise ops, broadcasting, matmul,
# reductions, several inputs, value_and_grad.
import spore
from spore import ops


def f(x):
    return (x * x).sum()


def g(x, y):
    return (ops.sin(x) * y).sum()


def h(w, x, b):
    return ops.tanh(x @ w + b).mean()


def main():
    x = ops.tensor([1.0, 2.0, 3.0])
    print(spore.grad(f)(x))
    y = ops.tensor([2.0, 0.5, -1.0])
    gx, gy = spore.grad(g, grad_position=(0, 1))(x, y)
    print(ops.abs(gx - ops.cos(x) * y).max() < 1e-6, ops.abs(gy - ops.sin(x)).max() < 1e-6)
    w = ops.tensor([[0.5], [-0.25]])
    xs = ops.tensor([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])
    b = ops.tensor([0.1])
    gw, gb = spore.grad(h, grad_position=(0, 2))(w, xs, b)
    z = ops.tanh(xs @ w + b)
    dz = (1.0 - z * z) / 3.0
    print(ops.abs(gw - xs.T @ dz).max() < 1e-6, ops.abs(gb - dz.sum()).max() < 1e-6, gb.shape)
    v, gv = spore.value_and_grad(f)(x)
    print(v, gv)
# expect: [2. 4. 6.]
# expect: True True
# expect: True True (1,)
# expect: 14.0 [2. 4. 6.]
