from spore import ops


def main():
    x = ops.ones((2, 2))
    y = x + "one"
    return y
# error: tensor_plus_str.py:6:11: unsupported operand type(s) for +: 'Tensor' and 'str'
