# A 784-256-10 multilayer perceptron for Fashion-MNIST, written in Spore's
# source language and driven from C by examples/c/train_mlp.c through the
# program API (include/spore/program.h).
#
# Everything here is a pure function of its arguments: the C program keeps
# the weights, passes them to train_step and gets the updated ones back.
# The module-level names W1 .. B2 are the program's *parameters*: the C
# program stores the trained weights in them with sp_program_set_global
# (they start as None), and predict/evaluate read them, the way a saved
# model is used for inference.
import spore
from spore import ops

IN = 784
HIDDEN = 256
CLASSES = 10

W1 = None
B1 = None
W2 = None
B2 = None


def linear_init(fan_in, fan_out):
    # PyTorch's nn.Linear default: kaiming_uniform(a=sqrt(5)) for the weight,
    # which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same for the bias.
    bound = 1.0 / fan_in ** 0.5
    w = ops.uniform((fan_in, fan_out), -bound, bound)
    b = ops.uniform((fan_out,), -bound, bound)
    return w, b


def init(seed):
    spore.set_seed(seed)
    w1, b1 = linear_init(IN, HIDDEN)
    w2, b2 = linear_init(HIDDEN, CLASSES)
    return w1, b1, w2, b2


def forward(w1, b1, w2, b2, x):
    h = ops.relu(x @ w1 + b1)
    return h @ w2 + b2


def loss_fn(w1, b1, w2, b2, x, y):
    return ops.cross_entropy(forward(w1, b1, w2, b2, x), y)


def train_step(w1, b1, w2, b2, x, y, lr):
    # one step of plain SGD on a batch; returns the new weights and the loss
    loss, grads = spore.value_and_grad(loss_fn, grad_position=(0, 1, 2, 3))(w1, b1, w2, b2, x, y)
    g1, gb1, g2, gb2 = grads
    return w1 - lr * g1, b1 - lr * gb1, w2 - lr * g2, b2 - lr * gb2, loss


def correct(w1, b1, w2, b2, x, y):
    # the number of rows of x whose predicted class is y
    pred = forward(w1, b1, w2, b2, x).argmax(axis=1)
    return (pred == y).astype(spore.int64).sum()


def predict(x):
    # the class of each row of x under the parameters stored in the program
    return forward(W1, B1, W2, B2, x).argmax(axis=1)


def evaluate(x, y):
    # how many rows of x the stored parameters classify as y
    return correct(W1, B1, W2, B2, x, y)
