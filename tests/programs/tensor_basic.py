# Tensor constructors and numpy-format printing; `import spore` and
# `from spore import ops, nn`.
import spore
from spore import ops, nn


def main():
    x = ops.tensor([[1.0, 2.0], [3.0, 4.0]], spore.float32)
    print(x)
    print(ops.tensor([1, 2, 3]), ops.tensor([True, False]), ops.tensor(2.5), ops.tensor([[1, 2]], spore.float64))
    print(ops.zeros((2, 3)), ops.ones(3, spore.int32))
    print(ops.full((2, 2), 7), ops.full((2,), 0.5), ops.full((1,), 3, dtype=spore.float32))
    print(ops.arange(5), ops.arange(1, 4), ops.arange(0.0, 1.0, 0.25), ops.arange(3, dtype=spore.float32))
    print(ops.zeros_like(x), ops.ones_like(x, dtype=spore.int64), ops.full_like(x, 9.0))
    print(x.dtype, x.shape, x.ndim, x.size, spore.int64, spore.bool_)
    print(spore.Tensor([1.5, 2.5]), spore.tensor([[7]]), isinstance(x, spore.Tensor), isinstance(3, spore.Tensor))
    return ops.tensor([[0.5, -1.25], [1e-3, 100.0]])

# expect: [[1. 2.]
# expect:  [3. 4.]]
# expect: [1 2 3] [ True False] 2.5 [[1. 2.]]
# expect: [[0. 0. 0.]
# expect:  [0. 0. 0.]] [1 1 1]
# expect: [[7 7]
# expect:  [7 7]] [0.5 0.5] [3.]
# expect: [0 1 2 3 4] [1 2 3] [0.   0.25 0.5  0.75] [0. 1. 2.]
# expect: [[0. 0.]
# expect:  [0. 0.]] [[1 1]
# expect:  [1 1]] [[9. 9.]
# expect:  [9. 9.]]
# expect: spore.float32 (2, 2) 2 4 spore.int64 spore.bool
# expect: [1.5 2.5] [[7]] True False
# expect: [[ 5.00e-01 -1.25e+00]
# expect:  [ 1.00e-03  1.00e+02]]
