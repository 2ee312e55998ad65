# Constant leaves of fused trees (src/compiler/passes/fuse.c): creation
# calls (zeros/ones/full with constant attributes) and 0-d constants that
# feed an elementwise tree become literals of the fused program when that
# changes nothing -- and stay inputs when it would (a zeros that widens the
# result, a float32 full that promotes a float16 operand).  Compiled
# (tests/py/test_compile_programs.py) and with the fuse pass
# (tests/py/test_fused.py) this must print what the VM prints;
# test_fused.py also checks which constants became literals.
import spore
from spore import ops, prim


def f(x, d):
    a = prim.where(x > 0, d, ops.zeros((3, 4)))
    b = a * 2.0 + ops.ones((4,))
    c = prim.maximum(b, ops.full((1, 4), 0.5))
    e = prim.where(x > 1, c, ops.zeros((2, 3, 4)))
    h = x.astype(spore.float16) + ops.full((3, 4), 0.1)
    g = prim.where(x < 0, d, ops.zeros_like(d))
    k = prim.where(x < 0, ops.full((3, 4), 0.5, dtype=spore.float64), d)
    return (e, h, g, k)


def main():
    eye = ops.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    # through a matmul, so that nothing here is a constant the fold pass takes
    x = ops.tensor([[1.0, -2.0, 3.0, 0.5], [-0.0, 2.5, -1.0, 4.0], [1.5, 1.2, -0.3, 2.0]]) @ eye
    d = ops.tensor([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 1.0, 1.1, 1.2]]) @ eye
    r = f(x, d)
    print(r[0])
    print(r[1].dtype, r[1])
    print(r[2])
    print(r[3].dtype, r[3])
# expect: [[[0.  0.  1.6 0. ]
# expect:   [0.  2.2 0.  2.6]
# expect:   [2.8 3.  0.  3.4]]
# expect: 
# expect:  [[0.  0.  1.6 0. ]
# expect:   [0.  2.2 0.  2.6]
# expect:   [2.8 3.  0.  3.4]]]
# expect: spore.float32 [[ 1.1        -1.9         3.1         0.6       ]
# expect:  [ 0.1         2.6        -0.9         4.1       ]
# expect:  [ 1.6         1.3001953  -0.20004883  2.1       ]]
# expect: [[0.  0.2 0.  0. ]
# expect:  [0.  0.  0.7 0. ]
# expect:  [0.  0.  1.1 0. ]]
# expect: spore.float64 [[0.1        0.5        0.30000001 0.40000001]
# expect:  [0.5        0.60000002 0.5        0.80000001]
# expect:  [0.89999998 1.         0.5        1.20000005]]
