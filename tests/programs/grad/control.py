# Gradients through control flow: if/else on tensor and static conditions,
# while loops whose trip count depends on tensor values, for loops over
# static and dynamic ranges.
import spore
from spore import ops


def branch(x):
    if x.sum() > 0:
        y = x * x
    elif x.sum() > -10:
        y = x * 3.0
    else:
        y = -x
    return y.sum()


def static_branch(x, square=True):
    if square:
        return (x * x).sum()
    return x.sum()


def loop(x):
    # doubles x until its sum passes 10: the trip count depends on x
    while x.sum() < 10.0:
        x = x * 2.0
    return x.sum()


def powloop(x, n):
    r = ops.ones_like(x)
    for i in range(n):
        r = r * x
    return r.sum()


def static_for(x):
    s = x
    for k in (1.0, 2.0, 3.0):
        s = s * k + x
    return s.sum()


def main():
    print(spore.grad(branch)(ops.tensor([1.0, 2.0])))
    print(spore.grad(branch)(ops.tensor([-1.0, -2.0])))
    print(spore.grad(branch)(ops.tensor([-10.0, -2.0])))
    print(spore.grad(static_branch)(ops.tensor([1.0, 2.0])))
    print(spore.grad(loop)(ops.tensor([1.0, 2.0])))
    print(spore.grad(loop)(ops.tensor([4.0, 5.0])))
    n = int(ops.tensor(3))
    print(spore.grad(powloop)(ops.tensor([2.0, 3.0]), n))
    print(spore.grad(static_for)(ops.tensor([1.0])))
# expect: [2. 4.]
# expect: [3. 3.]
# expect: [-1. -1.]
# expect: [2. 4.]
# expect: [4. 4.]
# expect: [2. 2.]
# expect: [12. 27.]
# expect: [16.]
