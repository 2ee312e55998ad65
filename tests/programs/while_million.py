# A while loop of 1,000,000 iterations: a tail-recursive graph, so it runs
# in constant C stack.
def main():
    i = 0
    total = 0
    while i < 1000000:
        total += i % 7
        i += 1
    return i, total

# expect: (1000000, 2999997)
