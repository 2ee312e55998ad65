# Tuples and lists: literals, concatenation, repetition, indexing with
# negative indices, slices with steps, `in`, len, unpacking, conversion.
def main():
    t = (1, 2, 3, 4, 5)
    l = [10, 20, 30]
    print(t[0], t[-1], t[1:3], t[::2], t[::-1], t[-2:], t[:-3])
    print(l[1], l[-2], l[1:], l[::-1], len(t), len(l), len(()))
    print(t + (6,), l + [40], (0,) * 3, [1, 2] * 2, 3 in t, 9 in l, 9 not in t)
    a, b, c = l
    (d, e), f = (1, 2), 3
    x, y = y0, x0 = 5, 6
    print(a, b, c, d, e, f, x, y, x0, y0)
    p = q = 7
    print(p, q)
    print(tuple(l), list(t), tuple("ab"), list(()), (1,), [], ())
    print((1, 2) < (1, 3), (1, 2) == (1, 2), [1, 2] != [1, 2], (2,) > (1, 9))
    nested = ((1, 2), [3, (4, 5)], "s")
    return nested, nested[1][1][0]

# expect: 1 5 (2, 3) (1, 3, 5) (5, 4, 3, 2, 1) (4, 5) (1, 2)
# expect: 20 20 [20, 30] [30, 20, 10] 5 3 0
# expect: (1, 2, 3, 4, 5, 6) [10, 20, 30, 40] (0, 0, 0) [1, 2, 1, 2] True False True
# expect: 10 20 30 1 2 3 5 6 6 5
# expect: 7 7
# expect: (10, 20, 30) [1, 2, 3, 4, 5] ('a', 'b') [] (1,) [] ()
# expect: True True False True
# expect: (((1, 2), [3, (4, 5)], 's'), 4)
