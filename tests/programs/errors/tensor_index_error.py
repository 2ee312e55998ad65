from spore import ops


def main():
    x = ops.zeros((2, 3))
    return x[1, 5]
# error: tensor_index_error.py:6:13: index 5 is out of bounds for axis 1 with size 3
