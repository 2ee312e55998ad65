import spore.ops as ops

def loop(n):
    s = 0
    i = 0
    while i < n:
        i += 1
        if i % 2 == 0:
            continue
        if i > 7:
            break
        s = s + i
    else:
        s = -1
    return s, i

def fors(xs):
    t = 0
    for k, v in enumerate(xs):
        t += k * v
    for j in range(10, 0, -2):
        t -= j
    return t

def clos(a):
    def inner(b, *rest):
        return a + b + len(rest)
    f = lambda z: inner(z) * 2
    return f(3) if a and not a < 0 < 5 else [x * 2 for x in range(4) if x != 2]

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

def idx(x):
    return x[0], x[:, 1:3], x[..., None], x[-1], x[::2], x.shape, ops.relu(x).sum(axis=0)
