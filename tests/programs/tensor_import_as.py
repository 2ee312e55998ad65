# `import spore.ops as ops` and calling primitives by their ops.def names.
import spore.ops as ops
import spore


def main():
    a = ops.tensor([1.0, 2.0, 3.0])
    b = ops.tensor([4.0, 5.0, 6.0])
    print(ops.mul(a, b), ops.add(a, 1), ops.sub(b, a), ops.div(b, 2))
    print(ops.floor_div(b, a), ops.square(a), ops.neg(a))
    return a * b

# expect: [ 4. 10. 18.] [2. 3. 4.] [3. 3. 3.] [2.  2.5 3. ]
# expect: [4. 2. 2.] [1. 4. 9.] [-1. -2. -3.]
# expect: [ 4. 10. 18.]
