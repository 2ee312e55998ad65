# Closures capture the values of enclosing variables when the inner
# function is made; nested three deep; returned and passed around.
def make_adder(n):
    def add(x):
        return x + n
    return add


def make_counter_step(start, step):
    def at(i):
        return start + i * step
    return at


def outer(a):
    def middle(b):
        def inner(c):
            return a * 100 + b * 10 + c
        return inner
    return middle


def main():
    add5 = make_adder(5)
    add10 = make_adder(10)
    print(add5(1), add10(1), make_adder(-1)(0))
    at = make_counter_step(3, 4)
    print(at(0), at(1), at(10))
    print(outer(1)(2)(3), outer(9)(8)(7))
    scale = 3
    fns = ()
    for k in range(3):
        fns = fns + (make_counter_step(0, k * scale),)
    print(fns[0](2), fns[1](2), fns[2](2))
    base = 7

    def uses_base(x):
        return x + base
    return uses_base(1), add5(add10(0))

# expect: 6 11 -1
# expect: 3 7 43
# expect: 123 987
# expect: 0 6 12
# expect: (8, 15)
