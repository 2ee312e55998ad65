def main():
    return 2 ** 70
# error: int_overflow.py:2:14: OverflowError
