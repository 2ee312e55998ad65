import spore
from spore import ops


def main():
    i = ops.tensor([1, 2, 3])
    return ops.exp(i)
# error: tensor_dtype_error.py:7:16: exp
