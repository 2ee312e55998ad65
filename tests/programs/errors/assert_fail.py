def main():
    x = 3
    assert x > 5, "x must exceed 5"
    return x
# error: assert_fail.py:3:5: AssertionError: x must exceed 5
