def main():
    try:
        x = 1
    except ValueError:
        x = 2
    return x
# error: try_except.py:2:5: not supported in Spore: try/except
