# Recursion on Python ints: fib(20) through non-tail calls.
def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def main():
    return fib(20)

# expect: 6765
