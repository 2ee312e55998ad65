# Operators on tensors go to primitives with numpy broadcasting; Python
# scalars are weakly typed (x * 2 keeps float32, i + 1 keeps int32).
import spore
from spore import ops


def main():
    x = ops.tensor([[1.0, 2.0], [3.0, 4.0]])
    v = ops.tensor([10.0, 20.0])
    print(x + v, x - 1, 2 * x, x / 4, 1 / x)
    print(x // 2, x % 3, -x, +x, x ** 2, 2 ** x)
    print(x @ x, x @ v, v @ v)
    print(x > 2, x <= 2, x == 3, x != 3, 2.5 < x)
    i = ops.tensor([1, 2, 3], spore.int32)
    print((i + 1).dtype, (i * 2.5).dtype, (i / 2).dtype, (i // 2).dtype, (x * 2).dtype)
    h = ops.tensor([1.0, 2.0], spore.float16)
    print((h * 3).dtype, h * 3, (h + h).dtype)
    print(ops.maximum(x, 2.5), ops.minimum(x, v), ops.where(x > 2, x, -x), ops.where(x > 2, 1.0, 0.0))
    print(ops.exp(ops.zeros(2)), ops.sqrt(x), ops.relu(x - 2.5), ops.sigmoid(ops.zeros(1)))
    print(ops.softmax(ops.tensor([1.0, 1.0, 1.0, 1.0])), ops.log_softmax(ops.tensor([0.0, 0.0])))
    print(ops.concat((x, x)), ops.concat([x, x], axis=1), ops.stack((v, v)), ops.stack([v, v], axis=1))
    print(ops.transpose(x, (1, 0)), ops.reshape(x, (4,)), ops.broadcast_to(v, (2, 2)), ops.tile(v, (2,)))
    print(ops.sum(x), ops.sum(x, dim=0), ops.mean(x, 1), ops.max(x, axis=1), ops.argmax(x, dim=1))
    print(ops.cast(x, spore.int64), ops.pow(x, 2), ops.abs(-x), ops.clamp(x, min=2.0))
    print(ops.split(ops.arange(5), 2), ops.split(ops.arange(6), (1, 5)))
    print(ops.flatten(ops.zeros((2, 3, 4))).shape, ops.squeeze(ops.zeros((1, 3, 1))).shape)
    print(ops.expand_dims(v, 0).shape, ops.unsqueeze(v, dim=1).shape, ops.shape(x), ops.rank(x), ops.size(x))
    print(ops.pad(v, (1, 2)), ops.gather(v, ops.tensor([1, 1, 0]), 0), ops.one_hot(ops.tensor([0, 2]), 3))
    print(ops.sort(ops.tensor([3.0, 1.0, 2.0])), ops.topk(ops.tensor([3.0, 1.0, 2.0]), 2))
    print(ops.div(ops.tensor([-7.0, 7.0]), 2, rounding_mode="floor"), ops.div(ops.tensor([-7.0, 7.0]), 2, rounding_mode="trunc"))
    print(ops.leaky_relu(ops.tensor([-1.0, 1.0])), ops.logical_and(x > 1, x < 4), ops.isnan(x / 0 * 0))
    return x * v + 0.5

# expect: [[11. 22.]
# expect:  [13. 24.]] [[0. 1.]
# expect:  [2. 3.]] [[2. 4.]
# expect:  [6. 8.]] [[0.25 0.5 ]
# expect:  [0.75 1.  ]] [[1.         0.5       ]
# expect:  [0.33333334 0.25      ]]
# expect: [[0. 1.]
# expect:  [1. 2.]] [[1. 2.]
# expect:  [0. 1.]] [[-1. -2.]
# expect:  [-3. -4.]] [[1. 2.]
# expect:  [3. 4.]] [[ 1.  4.]
# expect:  [ 9. 16.]] [[ 2.  4.]
# expect:  [ 8. 16.]]
# expect: [[ 7. 10.]
# expect:  [15. 22.]] [ 50. 110.] 500.0
# expect: [[False False]
# expect:  [ True  True]] [[ True  True]
# expect:  [False False]] [[False False]
# expect:  [ True False]] [[ True  True]
# expect:  [False  True]] [[False False]
# expect:  [ True  True]]
# expect: spore.int32 spore.float32 spore.float32 spore.int32 spore.float32
# expect: spore.float16 [3. 6.] spore.float16
# expect: [[2.5 2.5]
# expect:  [3.  4. ]] [[1. 2.]
# expect:  [3. 4.]] [[-1. -2.]
# expect:  [ 3.  4.]] [[0. 0.]
# expect:  [1. 1.]]
# expect: [1. 1.] [[1.        1.4142135]
# expect:  [1.7320508 2.       ]] [[0.  0. ]
# expect:  [0.5 1.5]] [0.5]
# expect: [0.25 0.25 0.25 0.25] [-0.6931472 -0.6931472]
# expect: [[1. 2.]
# expect:  [3. 4.]
# expect:  [1. 2.]
# expect:  [3. 4.]] [[1. 2. 1. 2.]
# expect:  [3. 4. 3. 4.]] [[10. 20.]
# expect:  [10. 20.]] [[10. 10.]
# expect:  [20. 20.]]
# expect: [[1. 3.]
# expect:  [2. 4.]] [1. 2. 3. 4.] [[10. 20.]
# expect:  [10. 20.]] [10. 20. 10. 20.]
# expect: 10.0 [4. 6.] [1.5 3.5] [2. 4.] [1 1]
# expect: [[1 2]
# expect:  [3 4]] [[ 1.  4.]
# expect:  [ 9. 16.]] [[1. 2.]
# expect:  [3. 4.]] [[2. 2.]
# expect:  [3. 4.]]
# expect: ([0 1], [2 3], [4]) ([0], [1 2 3 4 5])
# expect: (2, 12) (3,)
# expect: (1, 2) (2, 1) (2, 2) 2 4
# expect: [ 0. 10. 20.  0.  0.] [20. 20. 10.] [[1. 0. 0.]
# expect:  [0. 0. 1.]]
# expect: ([1. 2. 3.], [1 2 0]) ([3. 2.], [0 2])
# expect: [-4.  3.] [-3.  3.]
# expect: [-0.2  1. ] [[False  True]
# expect:  [ True False]] [[ True  True]
# expect:  [ True  True]]
# expect: [[10.5 40.5]
# expect:  [30.5 80.5]]
