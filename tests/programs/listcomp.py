# List comprehensions with and without a condition.
def main():
    sq = [x * x for x in range(6)]
    ev = [x for x in sq if x % 2 == 0]
    pairs = [(a, b) for a, b in zip("ab", (1, 2))]
    n = 3
    scaled = [v * n for v in (1, 2, 3)]
    return sq, ev, pairs, scaled

# expect: ([0, 1, 4, 9, 16, 25], [0, 4, 16], [('a', 1), ('b', 2)], [3, 6, 9])
