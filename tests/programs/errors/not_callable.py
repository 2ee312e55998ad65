def main():
    f = 3
    return f(1)
# error: not_callable.py:3:12: 'int' object is not callable
