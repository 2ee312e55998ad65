def f(n):
    def g(k):
        return 1 if k < 1 else k * g(k - 1)
    a = 0
    return g(n) + (1 if 0 < n < 5 else a)
