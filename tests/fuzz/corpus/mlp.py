# A two-layer perceptron forward pass with fixed weights, written the way a
# model is: a function of parameters and inputs, using @, broadcasting,
# relu, softmax and argmax.
import spore
from spore import ops

HIDDEN = 3


def linear(x, w, b):
    return x @ w + b


def forward(params, x):
    w1, b1, w2, b2 = params
    h = ops.relu(linear(x, w1, b1))
    return ops.softmax(linear(h, w2, b2), axis=-1)


def main():
    w1 = ops.tensor([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0]])
    b1 = ops.zeros(HIDDEN)
    w2 = ops.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b2 = ops.tensor([0.0, 0.5])
    x = ops.tensor([[1.0, 2.0], [3.0, -1.0]])
    p = forward((w1, b1, w2, b2), x)
    print(p.shape, p.sum(axis=1))
    return p.argmax(axis=1), p

# expect: (2, 2) [1. 1.]
# expect: ([0 0], [[0.62245935 0.37754068]
# expect:  [0.8807971  0.11920292]])
