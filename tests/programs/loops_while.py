# while loops with break, continue and else; nested loops; loop-carried
# variables of several kinds.
def main():
    i = 0
    s = 0
    while i < 10:
        i += 1
        if i % 2 == 0:
            continue
        if i > 7:
            break
        s += i
    print(i, s)
    n = 0
    while n < 3:
        n += 1
    else:
        print("while-else ran", n)
    k = 0
    while True:
        k += 1
        if k == 4:
            break
    else:
        print("not printed")
    rows = ()
    a = 0
    while a < 3:
        b = 0
        row = ()
        while b <= a:
            row = row + (a * b,)
            b += 1
        rows = rows + (row,)
        a += 1
    print(rows)
    x = 100
    steps = 0
    while x != 1:
        x = x // 2 if x % 2 == 0 else 3 * x + 1
        steps += 1
    return k, steps

# expect: 9 16
# expect: while-else ran 3
# expect: ((0,), (0, 1), (0, 2, 4))
# expect: (4, 25)
