# LeNet-5 (the modern variant: ReLU and max pooling) for 1x28x28 images,
# written in Spore's source language for bench/bench_gpu_step.c: one SGD
# training step at batch 64, compiled (forward, backward and the update in
# one lowered kernel list) and run on the GPU, captured into one CUDA graph
# or not.  bench/peer_gpu_step.py is the same model and step in PyTorch.
#
#   c1 conv 1->6 k5 pad 2, relu, max pool 2      [N,6,14,14]
#   c2 conv 6->16 k5, relu, max pool 2           [N,16,5,5]
#   f1 400->120, relu; f2 120->84, relu; f3 84->10
#   loss: mean cross-entropy on integer labels
#
# train_step is a pure function: it takes the ten parameters and a batch
# and returns the ten updated parameters and the loss (plain SGD, lr 0.05).
import spore
from spore import ops


def forward(c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b, x):
    h = ops.conv2d(x, c1w, pad_mode="pad", padding=2) + c1b.reshape((1, 6, 1, 1))
    h = ops.max_pool2d(ops.relu(h), 2, 2)
    h = ops.conv2d(h, c2w) + c2b.reshape((1, 16, 1, 1))
    h = ops.max_pool2d(ops.relu(h), 2, 2)
    h = h.reshape((x.shape[0], 400))
    h = ops.relu(h @ f1w + f1b)
    h = ops.relu(h @ f2w + f2b)
    return h @ f3w + f3b


def loss_fn(c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b, x, y):
    logits = forward(c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b, x)
    return ops.cross_entropy(logits, y)


def train_step(c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b, x, y):
    loss, g = spore.value_and_grad(loss_fn, grad_position=(0, 1, 2, 3, 4, 5, 6, 7, 8, 9))(
        c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b, x, y)
    lr = 0.05
    return (c1w - lr * g[0], c1b - lr * g[1], c2w - lr * g[2], c2b - lr * g[3],
            f1w - lr * g[4], f1b - lr * g[5], f2w - lr * g[6], f2b - lr * g[7],
            f3w - lr * g[8], f3b - lr * g[9], loss)
