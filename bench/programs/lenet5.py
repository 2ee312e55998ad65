# LeNet-5 on 1x28x28 images, in Spore's source language: what
# bench/bench_train_step.c runs as one SGD training step, compiled and on
# the VM, and bench/peer_train_step.py runs in PyTorch.
#
#   conv 6@5x5 pad 2 -> relu -> maxpool 2 -> conv 16@5x5 -> relu -> maxpool 2
#   -> flatten 400 -> dense 120 -> relu -> dense 84 -> relu -> dense 10
#
# train_step takes the ten parameters, a batch (x: float32 (B, 1, 28, 28),
# y: int64 (B,)) and the learning rate, and returns the ten updated
# parameters and the mean cross-entropy loss before the update.  init is
# PyTorch's default initialization (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
# weights and biases), so the peer starts from the same distribution; the
# benchmark itself passes the same tensors to both of its runs.
import spore
from spore import ops


def uniform_init(shape, fan_in, n_bias):
    bound = 1.0 / fan_in ** 0.5
    return ops.uniform(shape, -bound, bound), ops.uniform((n_bias,), -bound, bound)


def init(seed):
    spore.set_seed(seed)
    c1, c1b = uniform_init((6, 1, 5, 5), 25, 6)
    c2, c2b = uniform_init((16, 6, 5, 5), 150, 16)
    f1, f1b = uniform_init((400, 120), 400, 120)
    f2, f2b = uniform_init((120, 84), 120, 84)
    f3, f3b = uniform_init((84, 10), 84, 10)
    return c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b


def forward(c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b, x):
    h = ops.relu(ops.conv2d(x, c1, c1b, pad_mode="pad", padding=2))
    h = ops.max_pool2d(h, 2)
    h = ops.relu(ops.conv2d(h, c2, c2b))
    h = ops.max_pool2d(h, 2)
    h = h.reshape(h.shape[0], 400)
    h = ops.relu(h @ f1 + f1b)
    h = ops.relu(h @ f2 + f2b)
    return h @ f3 + f3b


def loss_fn(c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b, x, y):
    return ops.cross_entropy(forward(c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b, x), y)


def train_step(c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b, x, y, lr):
    loss, g = spore.value_and_grad(loss_fn, grad_position=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9))(
        c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b, x, y)
    return (c1 - lr * g[0], c1b - lr * g[1], c2 - lr * g[2], c2b - lr * g[3],
            f1 - lr * g[4], f1b - lr * g[5], f2 - lr * g[6], f2b - lr * g[7],
            f3 - lr * g[8], f3b - lr * g[9], loss)


def main():
    c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b = init(0)
    x = ops.uniform((4, 1, 28, 28), 0.0, 1.0)
    y = ops.arange(4) % 10
    out = train_step(c1, c1b, c2, c2b, f1, f1b, f2, f2b, f3, f3b, x, y, 0.1)
    print(len(out), out[0].shape, out[4].shape, out[10].shape)
    # near-uniform predictions over 10 classes: loss ~ log(10) = 2.30
    print(ops.abs(out[10] - 2.30).item() < 0.2)
    return out[10]
# expect: 11 (6, 1, 5, 5) (400, 120) ()
# expect: True
