# Functions: defaults, keyword arguments, *args, nested defs, recursion,
# mutual recursion, lambdas, functions as values.
def power(base, exp=2):
    return base ** exp


def describe(name, greeting="hello", punct="!"):
    return greeting + ", " + name + punct


def total(*args):
    s = 0
    for a in args:
        s += a
    return s, len(args)


def head_and_rest(first, *rest):
    return first, rest


def is_even(n):
    if n == 0:
        return True
    return is_odd(n - 1)


def is_odd(n):
    if n == 0:
        return False
    return is_even(n - 1)


def apply_twice(f, x):
    return f(f(x))


def main():
    print(power(3), power(2, 10), power(exp=3, base=2), power(5, exp=0))
    print(describe("spore"), describe("you", punct="?"), describe(greeting="hi", name="x"))
    print(total(), total(1, 2, 3), head_and_rest(1), head_and_rest(1, 2, 3))
    print(is_even(10), is_odd(7), is_even(7))
    square = lambda v: v * v
    add = lambda a, b=10: a + b
    print(square(7), add(1), add(1, 2), add(b=5, a=1), (lambda: "thunk")())
    print(apply_twice(square, 3), apply_twice(lambda s: s + "!", "hey"))

    def fact(n):
        return 1 if n <= 1 else n * fact(n - 1)

    def compose(f, g):
        return lambda x: f(g(x))

    inc_then_square = compose(square, lambda x: x + 1)
    print(fact(10), inc_then_square(4))
    return power(2), total(5)[0]

# expect: 9 1024 8 1
# expect: hello, spore! hello, you? hi, x!
# expect: (0, 0) (6, 3) (1, ()) (1, (2, 3))
# expect: True True False
# expect: 49 11 3 6 thunk
# expect: 81 hey!!
# expect: 3628800 25
# expect: (4, 5)
