# Closures that capture tensors, functions passed in and returned,
# recursion, tuples in and out, and gradients w.r.t. captured weights.
import spore
from spore import ops


def apply_twice(f, x):
    return f(f(x))


def make_scaler(a):
    def scale(x):
        return x * a
    return scale


def rpow(x, n):
    if n == 0:
        return ops.ones_like(x)
    return x * rpow(x, n - 1)


def tree_sum(t):
    # a nested tuple of tensors
    if isinstance(t, tuple):
        s = tree_sum(t[0])
        for k in range(1, len(t)):
            s = s + tree_sum(t[k])
        return s
    return t.sum()


def pair(x, y):
    return (x * y, x + y)


def uses_pair(x, y):
    p, q = pair(x, y)
    return (p * q).sum()


def main():
    x = ops.tensor([1.0, 2.0])
    w = ops.tensor([3.0, -1.0])

    def inner(v):
        return ops.sin(v) * w

    def loss(v):
        return apply_twice(inner, v).sum()

    g = spore.grad(loss)(x)
    s1 = ops.sin(x) * w
    ref = ops.cos(s1) * w * ops.cos(x) * w
    print(ops.abs(g - ref).max() < 1e-6)

    def scaled(v):
        return make_scaler(w)(v).sum()
    print(spore.grad(scaled)(x))

    print(spore.grad(lambda v: rpow(v, 3).sum())(x))
    print(spore.grad(tree_sum)((x, (x * 2.0, w), x)))
    print(spore.grad(uses_pair, grad_position=(0, 1))(x, w))

    def wloss(v):
        return (v * w * w).sum()
    gx, gw = spore.grad(wloss, grad_position=0, weights=(w,))(x)
    print(gx, gw)
    print(spore.grad(wloss, grad_position=None, weights=w)(x))
# expect: True
# expect: [ 3. -1.]
# expect: [ 3. 12.]
# expect: ([1. 1.], ([1. 1.], [1. 1.]), [1. 1.])
# expect: ([15. -3.], [7. 0.])
# expect: [9. 1.] ([ 6. -4.],)
# expect: ([ 6. -4.],)
