# Grad of grad of grad: third (and fourth) derivatives of sin(x)*x^2 on
# tensors and on Python floats, and the Hessian-vector product of a 3-4-1
# tanh MLP (hvp(v) = grad of <grad f(w), v>), checked against the analytic
# derivatives, against torch.autograd.functional.hvp in float64 (numbers
# below) and against a central difference of the gradient.
import math
import spore
from spore import ops


def f(x):
    return (ops.sin(x) * x * x).sum()


def h(x):
    # on a Python float: ops.sin and the Tensor operators carry its gradient
    return ops.sin(x) * x * x


def loss(w1, w2):
    X = ops.tensor([[0.5, -1.0, 0.25], [1.5, 0.3, -0.7]])
    Y = ops.tensor([[0.2], [-0.4]])
    d = ops.matmul(ops.tanh(ops.matmul(X, w1)), w2) - Y
    return (d * d).sum()


def close(a, b, tol):
    return ops.abs(a - b).max() < tol


def main():
    x = ops.tensor([0.5, 1.5, -2.0])
    d1 = spore.grad(f)
    d2 = spore.grad(lambda v: d1(v).sum())
    d3 = spore.grad(lambda v: d2(v).sum())
    d4 = spore.grad(lambda v: d3(v).sum())
    s = ops.sin(x)
    c = ops.cos(x)
    print(close(d1(x), c * x * x + 2.0 * x * s, 1e-5))
    print(close(d2(x), -s * x * x + 4.0 * x * c + 2.0 * s, 1e-5))
    print(close(d3(x), -c * x * x - 6.0 * x * s + 6.0 * c, 1e-5))
    print(close(d4(x), s * x * x - 8.0 * x * c - 12.0 * s, 1e-4))

    # floats
    g1 = spore.grad(h)
    g2 = spore.grad(g1)
    g3 = spore.grad(g2)
    for p in (0.5, -1.25):
        sp = math.sin(p)
        cp = math.cos(p)
        print(abs(g1(p) - (cp * p * p + 2.0 * p * sp)) < 1e-5,
              abs(g2(p) - (-sp * p * p + 4.0 * p * cp + 2.0 * sp)) < 1e-5,
              abs(g3(p) - (-cp * p * p - 6.0 * p * sp + 6.0 * cp)) < 1e-5)

    # Hessian-vector product of the MLP
    w1 = ops.tensor([[0.1, -0.2, 0.3, 0.4], [0.5, 0.6, -0.7, 0.8], [-0.9, 1.0, 0.2, -0.3]])
    w2 = ops.tensor([[0.3], [-0.5], [0.7], [0.2]])
    v1 = ops.tensor([[1.0, 0.0, -1.0, 0.5], [0.2, 0.3, 0.1, -0.4], [0.0, 0.7, -0.2, 0.1]])
    v2 = ops.tensor([[0.5], [1.0], [-0.5], [0.25]])
    g = spore.grad(loss, grad_position=(0, 1))

    def gv(a, b):
        d = g(a, b)
        return (d[0] * v1).sum() + (d[1] * v2).sum()

    hv = spore.grad(gv, grad_position=(0, 1))(w1, w2)
    ref1 = ops.tensor([[-0.7619383, 3.7371615, -2.9998369, -0.1679559],
                       [0.1944250, -0.7931008, 0.2975626, 0.1960771],
                       [0.2031838, -1.0671078, 1.0055546, -0.0225355]])
    ref2 = ops.tensor([[2.2249522], [1.4558026], [-5.1783729], [1.0531513]])
    print(close(hv[0], ref1, 1e-4), close(hv[1], ref2, 1e-4))
    eps = 1e-3
    gp = g(w1 + eps * v1, w2 + eps * v2)
    gm = g(w1 - eps * v1, w2 - eps * v2)
    print(close(hv[0], (gp[0] - gm[0]) / (2 * eps), 2e-3), close(hv[1], (gp[1] - gm[1]) / (2 * eps), 2e-3))
# expect: True
# expect: True
# expect: True
# expect: True
# expect: True True True
# expect: True True True
# expect: True True
# expect: True True
