def main():
    t = (1, 2, 3)
    return t[3]
# error: index_error.py:3:13: IndexError: tuple index 3 out of range
