from spore import ops


def main():
    return ops.sum(ops.ones(3), axes=0)
# error: bad_keyword.py:5:16: ops.sum() got an unexpected keyword argument 'axes'
