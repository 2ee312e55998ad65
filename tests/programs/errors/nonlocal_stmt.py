def main():
    x = 1

    def g():
        nonlocal x
        x = 2
    return x
# error: nonlocal_stmt.py:5:9: not supported in Spore: nonlocal
