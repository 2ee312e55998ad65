from spore import ops


def main():
    x = ops.ones(3)
    if x > 0:
        return 1
    return 0
# error: ambiguous_truth.py:6:5: the truth value of a Tensor of shape (3,)
