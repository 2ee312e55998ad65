# Seeded random tensors: spore.set_seed makes draws repeatable, an explicit
# seed= is a pure function of the seed, and the numbers have the right
# range and moments.
import spore
from spore import ops


def draw(seed):
    spore.set_seed(seed)
    return ops.randn(2, 3)


def main():
    a = draw(7)
    b = draw(7)
    c = draw(8)
    print(a.shape, a.dtype, (a == b).all(), (a == c).all())
    spore.set_seed(1)
    first = ops.rand(4)
    second = ops.rand(4)
    print((first == second).all(), first.shape)
    u = ops.uniform((10000,), 2.0, 3.0, seed=3)
    print(u.min() >= 2.0, u.max() < 3.0, abs(u.mean().item() - 2.5) < 0.02)
    n = ops.normal((20000,), 1.0, 2.0, seed=4)
    print(abs(n.mean().item() - 1.0) < 0.05, abs(((n - n.mean()) ** 2).mean().item() - 4.0) < 0.15)
    same = (ops.normal((5,), seed=11) == ops.normal((5,), seed=11)).all()
    k = ops.randint(0, 5, (1000,), seed=2)
    print(same, k.dtype, k.min() >= 0, k.max() <= 4, ops.randn(3, dtype=spore.float64).dtype)
    return ops.rand((2, 2), seed=5).shape

# expect: (2, 3) spore.float32 True False
# expect: False (4,)
# expect: True True True
# expect: True True
# expect: True spore.int64 True True spore.float64
# expect: (2, 2)
