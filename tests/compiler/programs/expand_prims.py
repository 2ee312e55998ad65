# A gradient of raw primitive calls (the form the specializer gives every
# function): expand_grad + the optimizer leave main with no run-time AD.
import spore
from spore import prim


def f(x, w):
    return prim.sum(prim.exp(prim.mul(x, w)))


def main():
    x = prim.exp(prim.full(shape=(3,), value=0.5))
    w = prim.exp(prim.full(shape=(3,), value=0.1))
    gx, gw = spore.grad(f, grad_position=(0, 1))(x, w)
    print(gx, gw)
# expect: [6.835427 6.835427 6.835427] [10.197258 10.197258 10.197258]
