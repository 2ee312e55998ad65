# print() prints like Python: str of each argument, sep and end, reprs
# inside containers.
def main():
    print()
    print("a", 1, 2.0, True, None)
    print("a", "b", sep="-")
    print("x", end="|")
    print("y", end="\n")
    print(("s", 1.0, [None, False]), ["q"], (1,))
    print(1e100, 1.5e-7, 123456789.0, 0.1, -2.0, 1e22, 3.0e15)
    print(1, 2, 3, sep="")
    return "returned string"

# expect:
# expect: a 1 2.0 True None
# expect: a-b
# expect: x|y
# expect: ('s', 1.0, [None, False]) ['q'] (1,)
# expect: 1e+100 1.5e-07 123456789.0 0.1 -2.0 1e+22 3000000000000000.0
# expect: 123
# expect: returned string
