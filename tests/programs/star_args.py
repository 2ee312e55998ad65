# Star-arguments at call sites: f(*t), f(a, *t, b), f(*t, k=v), and a
# function forwarding its *args (what a training wrapper does with its
# inputs).  Plain Python: CPython prints the same.
def add3(a, b, c=100):
    return a * 100 + b * 10 + c


def forward(f, *args):
    return f(*args)


def main():
    t = (1, 2, 3)
    print(add3(*t))
    print(add3(4, *(5,)))
    print(add3(*(7, 8), c=9))
    print(add3(*[1], *(2,), 3))
    print(forward(add3, 1, 2))
    print(forward(max, 3, 9, 4))
    print(len(t))
# expect: 123
# expect: 550
# expect: 789
# expect: 123
# expect: 220
# expect: 9
# expect: 3
