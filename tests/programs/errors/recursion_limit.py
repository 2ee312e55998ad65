def forever(n):
    return 1 + forever(n + 1)


def main():
    return forever(0)
# error: recursion_limit.py:2:16: maximum recursion depth exceeded
