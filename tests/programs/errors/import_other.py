import numpy as np


def main():
    return 1
# error: import_other.py:1:8: cannot import 'numpy'
