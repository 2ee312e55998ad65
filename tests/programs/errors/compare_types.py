def main():
    return (1, 2) < "ab"
# error: compare_types.py:2:19: '<' not supported between instances of 'tuple' and 'str'
