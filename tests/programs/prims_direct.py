# Every primitive of ops.def is spore.ops.<name>: positional tensor inputs,
# keyword attributes.
import spore
from spore import ops


def main():
    logits = ops.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    labels = ops.tensor([0, 2])
    print(ops.sparse_softmax_cross_entropy(logits, labels, reduction="none").shape)
    print(ops.slice(ops.arange(10), begin=(2,), end=(8,), step=(3,)))
    print(ops.logical_not(ops.tensor([True, False])), ops.sign(ops.tensor([-2.0, 0.0, 3.0])))
    print(ops.embedding_backward(ops.ones((3, 2)), ops.tensor([0, 2, 0]), num_embeddings=4))
    print(ops.one_hot(ops.tensor([1, 0]), 2, on_value=5.0), ops.broadcast_to(ops.tensor([1, 2]), shape=(2, 2)))
    print(ops.avg_pool2d_backward(ops.ones((1, 1, 1, 1)), input_shape=(1, 1, 2, 2), kernel_size=(2, 2)))
    return ops.concat((ops.ones(2), ops.zeros(1)))

# expect: (2,)
# expect: [2 5]
# expect: [False  True] [-1.  0.  1.]
# expect: [[2. 2.]
# expect:  [0. 0.]
# expect:  [1. 1.]
# expect:  [0. 0.]]
# expect: [[0. 5.]
# expect:  [5. 0.]] [[1 2]
# expect:  [1 2]]
# expect: [[[[0.25 0.25]
# expect:    [0.25 0.25]]]]
# expect: [1. 1. 0.]
