def main():
    x = (1 +
    return x
# error: syntax_error.py:2:9:
# error: '(' was never closed
