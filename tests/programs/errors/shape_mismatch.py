from spore import ops


def main():
    a = ops.ones((2, 3))
    b = ops.ones((4,))
    return a + b
# error: shape_mismatch.py:7:14: add: shapes (2, 3) and (4,) cannot be broadcast
