# User-defined backward rules (MindSpore's Cell.bprop): a top-level
# function f whose module defines f_bprop(inputs..., out, dout) is
# differentiated through f_bprop, which returns one gradient per input
# (a tuple; None for no gradient).  The rules below differ from the true
# gradients, so the results prove the rules are used; grad of grad
# differentiates the rule itself.
import spore
from spore import ops


def cube(x):
    return x * x * x


def cube_bprop(x, out, dout):
    # the true gradient is 3x^2 * dout; this rule clips it to [-1, 1]
    return (ops.clamp(3.0 * x * x * dout, -1.0, 1.0),)


def scaled(x, y):
    return x * y


def scaled_bprop(x, y, out, dout):
    # a straight-through rule: 10 * dout for x, nothing for y
    return (dout * 10.0, None)


def halve(x):
    return x * 0.5


def halve_bprop(x, out, dout):
    # a single gradient may be returned bare; here 3 instead of 0.5
    return dout * 3.0


def use(x):
    return cube(x).sum() + 2.0 * cube(x * 0.5).sum()


def apply_twice(fn, x):
    return fn(fn(x))


def main():
    x = ops.tensor([0.1, 0.5, 2.0])
    print(spore.grad(lambda v: cube(v).sum())(x))
    # used twice, through the chain rule around it: dout = 2 and x * 0.5
    print(spore.grad(use)(x))
    print(spore.grad(lambda a, b: scaled(a, b).sum(), grad_position=(0, 1))(x, x))
    # grad of grad: d/dv sum(clamp(3 v^2)) = 6v where not clipped
    print(spore.grad(lambda v: spore.grad(lambda u: cube(u).sum())(v).sum())(x))
    # a Python float, and the function passed as a value (higher order)
    print(spore.grad(halve)(4.0), spore.grad(lambda v: apply_twice(halve, v))(4.0))
    # value_and_grad keeps the true forward value
    print(spore.value_and_grad(lambda v: cube(v).sum())(ops.tensor([2.0])))
# expect: [0.03 0.75 1.  ]
# expect: [0.0375 0.9375 1.5   ]
# expect: ([10. 10. 10.], [0. 0. 0.])
# expect: [0.6 3.  0. ]
# expect: 3.0 9.0
# expect: (8.0, [1.])
