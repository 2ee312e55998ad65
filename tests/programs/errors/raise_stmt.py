def check(n):
    if n < 0:
        raise ValueError("negative input")
    return n


def main():
    return check(-1)
# error: raise_stmt.py:3:9: negative input
