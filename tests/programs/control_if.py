# if / elif / else, conditional expressions, short-circuiting `and`/`or`
# and chained comparisons (the middle operand evaluated once).
def classify(n):
    if n < 0:
        kind = "negative"
    elif n == 0:
        kind = "zero"
    elif n < 10:
        kind = "small"
    else:
        kind = "large"
    return kind


def noisy(v):
    print("eval", v)
    return v


def main():
    print(classify(-3), classify(0), classify(7), classify(42))
    x = 5
    if x > 3:
        x = x * 2
    print(x)
    if x > 100:
        print("big")
    else:
        pass
    y = "even" if x % 2 == 0 else "odd"
    print(y, 1 if False else 2)
    print(noisy(0) and noisy(1))
    print(noisy(2) or noisy(3))
    print(noisy(4) and noisy(5))
    print(noisy(0) or noisy(6))
    print(1 < 2 < 3, 3 > 2 > 2, 1 < noisy(2) < 3, 5 < noisy(1) < noisy(9))
    print(not True, not 0, not "", 0 < x <= 10 != 11)
    z = 0
    if x:
        if z:
            r = 1
        else:
            r = 2
    else:
        r = 3
    return r, None

# expect: negative zero small large
# expect: 10
# expect: even 2
# expect: eval 0
# expect: 0
# expect: eval 2
# expect: 2
# expect: eval 4
# expect: eval 5
# expect: 5
# expect: eval 0
# expect: eval 6
# expect: 6
# expect: eval 2
# expect: eval 1
# expect: True False True False
# expect: False True True True
# expect: (2, None)
