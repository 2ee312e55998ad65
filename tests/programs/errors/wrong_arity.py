def add(a, b):
    return a + b


def main():
    return add(1, 2, 3)
# error: wrong_arity.py:6:12: add() takes 2 positional arguments but 3 were given
