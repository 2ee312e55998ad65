# Calls and prints run in source order, as in Python, even where the
# dependency order alone would allow another one.
def f(tag):
    print("f", tag)
    return tag


def main():
    a = f(1)
    print("between")
    b = f(2)
    c = f(3) + f(4)
    if a < b:
        print("branch", c)
        d = f(5)
    else:
        d = 0
    print("after if")
    for i in range(2):
        e = f(10 + i)
        print("loop", e)
    return a + b + c + d

# expect: f 1
# expect: between
# expect: f 2
# expect: f 3
# expect: f 4
# expect: branch 7
# expect: f 5
# expect: after if
# expect: f 10
# expect: loop 10
# expect: f 11
# expect: loop 11
# expect: 15
