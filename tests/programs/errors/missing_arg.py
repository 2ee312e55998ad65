def scale(x, factor):
    return x * factor


def main():
    return scale(2)
# error: missing_arg.py:6:12: scale() missing required argument 'factor'
