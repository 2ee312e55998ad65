from spore import ops


def main():
    x = ops.ones(3)
    return x.frobnicate()
# error: bad_attribute.py:6:14: 'Tensor' object has no attribute 'frobnicate'
