"""Docstring."""
from spore import ops as P, nn
import spore as ms
import math

N = 2 * 3 + 1
SHAPE = (N, -4)

@ms.jit
def f(x: int, y=1.5, *args) -> int:
    a, (b, c) = x, (y, 0x1f)
    a **= 2
    s = 'it''s' + "\t\x41\u00e9" + r'\d' + """multi
line"""
    z = [i * i for i in range(N) if i % 2]
    w = x if x is not None else -1
    assert a >= 0, "negative"
    u = a < b <= c != 3
    v = not (a in (1, 2)) or b not in [3]
    g = lambda k, m=2: k @ m // 3 % 4
    while True:
        a -= 1
        if a < 0:
            break
        elif a == 5:
            continue
        else:
            pass
    for i, j in zip(args, args[1:]):
        print(i, j, sep=" ")
    return x[..., None, ::-1, 1:2:3], P.relu(x).sum(axis=-1, keepdims=True), math.pi

if __name__ == "__main__":
    f(1)
