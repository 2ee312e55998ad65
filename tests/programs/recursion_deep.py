# Non-tail recursion several hundred calls deep, and deep tail recursion
# (a tail call reuses its frame: 200000 calls in constant C stack).
def sum_to(n):
    if n == 0:
        return 0
    return n + sum_to(n - 1)


def count_down(n, acc):
    if n == 0:
        return acc
    return count_down(n - 1, acc + 1)


def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))


def main():
    return sum_to(500), count_down(200000, 0), ackermann(2, 3)

# expect: (125250, 200000, 9)
