# Chains of elementwise primitives written as raw prim calls (the canonical
# form the fuse pass matches): with `--passes ...,fuse` each chain below
# becomes one fused_elementwise call and must print the same.
from spore import ops, prim


def layer(x, a, b):
    h = prim.gelu(prim.add(prim.mul(x, a), b), approximate="tanh")
    return prim.clamp(prim.sub(prim.mul(h, 0.5), x), min=-1.0, max=2.0)


def energy(x):
    return prim.sum(prim.exp(prim.mul(x, 0.5)), axes=(1,), keepdims=True)


def main():
    x = ops.tensor([[1.0, -2.0, 3.0], [0.5, 0.25, -1.0]])
    a = ops.tensor([2.0, 3.0, 4.0])
    y = layer(x, a, ops.tensor(0.5))
    print(y)
    print(energy(x))
    m = prim.fused_elementwise(x, a, program="i0 i1 maximum", reduce="max")
    print(m, prim.mean(prim.square(prim.sub(x, a))))
    return prim.where(prim.greater(x, 0.0), prim.sqrt(prim.abs(x)), prim.neg(x))

# expect: [[0.24245787 2.         2.        ]
# expect:  [0.19978571 0.30885708 0.9996919 ]]
# expect: [[6.4982896]
# expect:  [3.0237045]]
# expect: 4.0 10.302083
# expect: [[1.         2.         1.7320508 ]
# expect:  [0.70710677 0.5        1.        ]]
