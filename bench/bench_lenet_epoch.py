"""bench_lenet_epoch.py -- one epoch of LeNet-5 on Fashion-MNIST, Spore vs PyTorch.

Issue 7's benchmark: the 60,000 training images in batches of 32 on 2
threads, then the 10,000 test images, Spore in GRAPH_MODE beside PyTorch
1.13 (eager, torch.set_num_threads(2)) in the same run on the same data
with the same architecture (examples/quickstart.py's LeNet5: conv 6@5x5
pad 2, relu, maxpool 2, conv 16@5x5, relu, maxpool 2, dense 400-120-84-10,
biases everywhere), the same loss (mean softmax cross-entropy) and the same
optimizer (momentum SGD, lr 0.01, momentum 0.9).  Goal: Spore's epoch in at
most half of PyTorch's time.

What each side does per epoch:
  Spore    Model.train(1, ds) over the quickstart's pipeline
           (MnistDataset -> Rescale/Normalize/HWC2CHW -> TypeCast -> batch 32,
           decoded in C worker threads), one compiled graph per step
           (forward, gradient, momentum update); the first step compiles.
  PyTorch  the same normalized images, already in memory as float32
           tensors, sliced into batches of 32 (so its figure has no data
           loading in it at all); zero_grad, forward, loss, backward, step.

Then the profile of Spore's epoch, each part timed alone:
  pipeline  iterating the dataset for one epoch, no training;
  steps     the compiled train step called on batches already in memory
            (the graph call from Python and the kernels);
  compile   the first step minus a later step;
  Model     what Model.train adds over the bare loop (callbacks, iterator).
Evaluation: Model.eval({'accuracy'}) over the test pipeline vs PyTorch's
forward under no_grad over in-memory batches of 32.

Every figure is the median of --repeat runs (default 3) alternating Spore
and PyTorch; the machine may be shared, so the spread and the load average
are printed too (on a machine busier than its CPUs PyTorch runs with
OMP_WAIT_POLICY=PASSIVE, see --omp-passive).

usage: /usr/bin/python3 bench/bench_lenet_epoch.py  (with PYTHONPATH at a
       staged spore package, e.g. $(tools/pydev.sh build), or spore installed)
       [--repeat N] [--threads 2] [--data DIR] [--limit N]
"""
import argparse
import gzip
import os
import statistics
import sys
import time

ap = argparse.ArgumentParser(description="LeNet-5 epoch: Spore vs PyTorch")
ap.add_argument("--repeat", type=int, default=3)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
ap.add_argument("--limit", type=int, default=None, help="train images (default: all 60,000)")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--omp-passive", choices=("auto", "yes", "no"), default="auto",
                help="OMP_WAIT_POLICY=PASSIVE for PyTorch (auto: when the load average exceeds the CPUs)")
ARGS = ap.parse_args()
os.environ["SPORE_NUM_THREADS"] = str(ARGS.threads)   # before spore sizes its thread pool
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
LOAD = os.getloadavg()[0]
# On a machine busier than its CPU count, libgomp's spinning threads make
# PyTorch's 2-thread step 10x slower than its 1-thread one (seen here: 326 vs
# 21 ms); passive waiting gives PyTorch its fair figure.  Set before torch loads.
PASSIVE = ARGS.omp_passive == "yes" or (ARGS.omp_passive == "auto" and LOAD > (os.cpu_count() or 1))
if PASSIVE:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import spore as ms  # noqa: E402
from spore import nn  # noqa: E402
from spore.train import Model, Callback  # noqa: E402
from quickstart import LeNet5, datapipe  # noqa: E402

torch.set_num_threads(ARGS.threads)
MEAN, STD = 0.2860, 0.3530
LR, MOMENTUM = 0.01, 0.9


def idx(name, offset):
    with gzip.open(os.path.join(ARGS.data, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def torch_data(prefix, limit):
    x = idx(f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)[:limit]
    y = idx(f"{prefix}-labels-idx1-ubyte.gz", 8).astype(np.int64)[:limit]
    x = torch.from_numpy(((x.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32))
    y = torch.from_numpy(y)
    return [(x[i:i + ARGS.batch], y[i:i + ARGS.batch]) for i in range(0, len(x), ARGS.batch)]


class TorchLeNet5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = torch.nn.Conv2d(6, 16, 5)
        self.f1 = torch.nn.Linear(400, 120)
        self.f2 = torch.nn.Linear(120, 84)
        self.f3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.max_pool2d(F.relu(self.c2(x)), 2)
        x = x.flatten(1)
        return self.f3(F.relu(self.f2(F.relu(self.f1(x)))))


def torch_run(train, test):
    torch.manual_seed(0)
    m = TorchLeNet5()
    opt = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM)
    t0 = time.perf_counter()
    for x, y in train:
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    correct = 0
    with torch.no_grad():
        for x, y in test:
            correct += int((m(x).argmax(1) == y).sum())
    t_eval = time.perf_counter() - t0
    n_test = sum(len(y) for _, y in test)
    return {"train": t_train, "eval": t_eval, "loss": float(loss), "acc": correct / n_test}


class _FirstSteps(Callback):
    """Times the first two steps (the first one compiles)."""

    def __init__(self):
        self.t = []

    def on_train_step_begin(self, rc):
        if len(self.t) < 4:
            self.t.append(time.perf_counter())

    def on_train_step_end(self, rc):
        if len(self.t) < 4:
            self.t.append(time.perf_counter())


def spore_model():
    ms.set_seed(0)
    net = LeNet5()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), learning_rate=LR, momentum=MOMENTUM)
    return Model(net, loss, opt, metrics={"accuracy"})


def spore_run():
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    train_ds = datapipe(ARGS.data, "train", ARGS.batch, ARGS.limit)
    test_ds = datapipe(ARGS.data, "test", ARGS.batch)
    out = {}
    # the pipeline alone
    t0 = time.perf_counter()
    batches = [b for b in train_ds.create_tuple_iterator(num_epochs=1)]
    out["pipeline"] = time.perf_counter() - t0
    # the whole epoch through Model.train
    model = spore_model()
    first = _FirstSteps()
    t0 = time.perf_counter()
    model.train(1, train_ds, callbacks=[first])
    out["train"] = time.perf_counter() - t0
    out["first_step"] = first.t[1] - first.t[0]
    out["second_step"] = first.t[3] - first.t[2]
    t0 = time.perf_counter()
    res = model.eval(test_ds)
    out["eval"] = time.perf_counter() - t0
    out["acc"] = res["accuracy"]
    # the steps alone, on batches in memory, with a fresh (compiled once more) model
    model2 = spore_model()
    step = model2.train_network
    step.set_train(True)
    step(*batches[0])                       # compile outside the timing
    t0 = time.perf_counter()
    for x, y in batches[1:]:
        loss = step(x, y)
    out["steps"] = (time.perf_counter() - t0) * len(batches) / max(len(batches) - 1, 1)
    out["loss"] = float(loss.asnumpy())
    return out


def med(runs, key):
    v = [r[key] for r in runs]
    return statistics.median(v), min(v), max(v)


def main():
    train_t = torch_data("train", ARGS.limit)
    test_t = torch_data("t10k", None)
    n = sum(len(y) for _, y in train_t)
    n_test = sum(len(y) for _, y in test_t)
    sp, tr = [], []
    for r in range(ARGS.repeat):
        sp.append(spore_run())
        tr.append(torch_run(train_t, test_t))
        print(f"run {r + 1}: spore epoch {sp[-1]['train']:.2f} s (acc {sp[-1]['acc']:.4f}), "
              f"pytorch epoch {tr[-1]['train']:.2f} s (acc {tr[-1]['acc']:.4f})", flush=True)
    s_train, s_lo, s_hi = med(sp, "train")
    t_train, t_lo, t_hi = med(tr, "train")
    s_eval, _, _ = med(sp, "eval")
    t_eval, _, _ = med(tr, "eval")
    print(f"\nLeNet-5, Fashion-MNIST, batch {ARGS.batch}, {ARGS.threads} threads, median of {ARGS.repeat}; "
          f"load average {LOAD:.1f} at the start, now {os.getloadavg()[0]:.1f}"
          + ("; PyTorch with OMP_WAIT_POLICY=PASSIVE" if PASSIVE else ""))
    print(f"{'':28s} {'Spore':>10s} {'PyTorch':>10s} {'Spore/PyTorch':>14s}")
    print(f"{'train epoch (s)':28s} {s_train:10.2f} {t_train:10.2f} {s_train / t_train:14.2f}"
          f"   (spread {s_lo:.2f}-{s_hi:.2f} / {t_lo:.2f}-{t_hi:.2f})")
    print(f"{'train images/s':28s} {n / s_train:10.0f} {n / t_train:10.0f}")
    print(f"{'eval 10,000 images (s)':28s} {s_eval:10.2f} {t_eval:10.2f} {s_eval / t_eval:14.2f}")
    print(f"{'eval images/s':28s} {n_test / s_eval:10.0f} {n_test / t_eval:10.0f}")
    print(f"{'test accuracy after 1 epoch':28s} {med(sp, 'acc')[0]:10.4f} {med(tr, 'acc')[0]:10.4f}")
    pipe = med(sp, "pipeline")[0]
    steps = med(sp, "steps")[0]
    first = med(sp, "first_step")[0]
    second = med(sp, "second_step")[0]
    nb = (n + ARGS.batch - 1) // ARGS.batch
    print("\nwhere Spore's epoch goes (each part timed alone):")
    print(f"  data pipeline alone     {pipe:7.2f} s  ({pipe / nb * 1e3:.3f} ms/batch)")
    print(f"  train steps alone       {steps:7.2f} s  ({steps / nb * 1e3:.3f} ms/step, in-memory batches)")
    print(f"  compile (first step)    {first - second:7.2f} s")
    print(f"  epoch through Model     {s_train:7.2f} s  = steps + {s_train - steps:.2f} s "
          f"(compile, pipeline not hidden, loop and callbacks)")
    print(f"PyTorch epoch {t_train:.2f} s = {t_train / nb * 1e3:.3f} ms/step; goal: Spore <= {t_train / 2:.2f} s")


if __name__ == "__main__":
    main()
