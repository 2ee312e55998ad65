from spore import ops


def main():
    a = ops.ones((2, 3))
    return ops.matmul(a, a)
# error: matmul_shape.py:6:16: matmul
