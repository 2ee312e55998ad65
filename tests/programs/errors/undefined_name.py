def main():
    x = 1
    return x + y
# error: undefined_name.py:3:16: name 'y' is not defined
