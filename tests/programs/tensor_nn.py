# Neural-network functions of spore.ops on known inputs: conv2d with bias,
# pooling, layer_norm, cross_entropy, embedding.
import spore
from spore import ops


def main():
    x = ops.arange(16, dtype=spore.float32).reshape(1, 1, 4, 4)
    w = ops.ones((2, 1, 2, 2))
    b = ops.tensor([0.0, 100.0])
    y = ops.conv2d(x, w, b)
    print(y.shape, y[0, 0], y[0, 1, 0])
    print(ops.conv2d(x, w, stride=2), ops.conv2d(x, w, pad_mode="same").shape)
    print(ops.max_pool2d(x, 2), ops.avg_pool2d(x, kernel_size=2, stride=2))
    h = ops.tensor([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    ln = ops.layer_norm(h, (4,))
    print(ops.round(ln * 1000), ops.layer_norm(h, (4,), ops.full((4,), 2.0), ops.ones(4)).sum(axis=1))
    logits = ops.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    labels = ops.tensor([0, 2])
    loss = ops.cross_entropy(logits, labels)
    per = ops.cross_entropy(logits, labels, reduction="none")
    print(abs(loss.item() - 0.6690785) < 1e-5, per.shape)
    table = ops.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])
    print(ops.embedding(ops.tensor([2, 0, 2]), table))
    print(ops.dropout(h, p=0.5, training=False), ops.gelu(ops.tensor([0.0])), ops.silu(ops.tensor([0.0])))
    return ops.softmax(ops.tensor([[0.0, 0.0], [1.0, 1.0]]), axis=1)

# expect: (1, 2, 3, 3) [[10. 14. 18.]
# expect:  [26. 30. 34.]
# expect:  [42. 46. 50.]] [110. 114. 118.]
# expect: [[[[10. 18.]
# expect:    [42. 50.]]
# expect:
# expect:   [[10. 18.]
# expect:    [42. 50.]]]] (1, 2, 4, 4)
# expect: [[[[ 5.  7.]
# expect:    [13. 15.]]]] [[[[ 2.5  4.5]
# expect:    [10.5 12.5]]]]
# expect: [[-1342.  -447.   447.  1342.]
# expect:  [    0.     0.     0.     0.]] [4. 4.]
# expect: True (2,)
# expect: [[4. 5.]
# expect:  [0. 1.]
# expect:  [4. 5.]]
# expect: [[1. 2. 3. 4.]
# expect:  [2. 2. 2. 2.]] [0.] [0.]
# expect: [[0.5 0.5]
# expect:  [0.5 0.5]]
