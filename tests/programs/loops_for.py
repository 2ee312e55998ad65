# for over range (1, 2, 3 arguments, negative and computed steps), tuples,
# lists, strings, zip and enumerate; break, continue and for-else.
def main():
    out = ()
    for i in range(4):
        out = out + (i,)
    for i in range(2, 5):
        out = out + (i,)
    for i in range(10, 0, -3):
        out = out + (i,)
    step = 2
    for i in range(0, 7, step):
        out = out + (i,)
    print(out)
    total = 0
    for v in (1, 2, 3):
        total += v
    for v in [10, 20]:
        total += v
    print(total)
    for ch in "abc":
        print(ch, end="")
    print()
    for a, b in zip((1, 2, 3), ["x", "y", "z"]):
        print(a, b)
    for i, name in enumerate(("p", "q")):
        print(i, name)
    for i, name in enumerate(["r", "s"], 5):
        print(i, name)
    for i in range(10):
        if i == 2:
            continue
        if i == 5:
            break
        print("i =", i)
    for i in range(3):
        pass
    else:
        print("for-else ran", i)
    for i in range(5):
        if i == 1:
            break
    else:
        print("not printed")
    pairs = ()
    for i in range(3):
        for j in range(i):
            pairs = pairs + ((i, j),)
    print(pairs, len(range(5)), list(range(0)), tuple(range(3)))
    return i

# expect: (0, 1, 2, 3, 2, 3, 4, 10, 7, 4, 1, 0, 2, 4, 6)
# expect: 36
# expect: abc
# expect: 1 x
# expect: 2 y
# expect: 3 z
# expect: 0 p
# expect: 1 q
# expect: 5 r
# expect: 6 s
# expect: i = 0
# expect: i = 1
# expect: i = 3
# expect: i = 4
# expect: for-else ran 2
# expect: ((1, 0), (2, 0), (2, 1)) 5 [] (0, 1, 2)
# expect: 2
