def f(x):
    x[0] = 1
    return x | y
