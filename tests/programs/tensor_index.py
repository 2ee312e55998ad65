# Tensor indexing: ints, negative ints, slices with steps (negative too),
# None (new axis), Ellipsis, tuples of them, and integer-list gathers.
from spore import ops


def main():
    x = ops.arange(24).reshape(2, 3, 4)
    print(x[0])
    print(x[-1, -1], x[1, 2, 3], x[0, :, 1])
    print(x[:, 1:3, ::2])
    print(x[..., 0])
    print(x[0, ::-1, -1], x[1, 2, ::-2])
    print(x[None].shape, x[..., None].shape, x[:, None, 0].shape, x[0, ..., None, 1].shape)
    print(x[1:, 5:], x[0, 1:100, 3], x[0, -100:1, 0])
    y = ops.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    print(y[:, 1:3], y[-1], y[[1, 0]], y[ops.tensor([0, 0, 1])].shape)
    t = (10, 20, 30)
    i = 1
    print(t[-1], t[i], y[i][i + 1], y[i, -i])
    row = y[0]
    return row * 2, x[1, 1, 1] + 0

# expect: [[ 0  1  2  3]
# expect:  [ 4  5  6  7]
# expect:  [ 8  9 10 11]]
# expect: [20 21 22 23] 23 [1 5 9]
# expect: [[[ 4  6]
# expect:   [ 8 10]]
# expect:
# expect:  [[16 18]
# expect:   [20 22]]]
# expect: [[ 0  4  8]
# expect:  [12 16 20]]
# expect: [11  7  3] [23 21]
# expect: (1, 2, 3, 4) (2, 3, 4, 1) (2, 1, 4) (3, 1)
# expect: [] [ 7 11] [0]
# expect: [[2. 3.]
# expect:  [5. 6.]] [4. 5. 6.] [[4. 5. 6.]
# expect:  [1. 2. 3.]] (3, 3)
# expect: 30 20 6.0 6.0
# expect: ([2. 4. 6.], 17)
