def gen():
    yield 1


def main():
    return gen()
# error: generator.py:2:5: not supported in Spore: yield
