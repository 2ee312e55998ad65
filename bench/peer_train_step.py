"""peer_train_step.py -- the peer of bench_train_step: the same two training
steps in PyTorch on the CPU (eager), steps/s printed the same way.

The models match bench/bench_train_step.c exactly: the 784-256-10
perceptron of examples/c/mlp.py on batches of 64, and LeNet-5 of
bench/programs/lenet5.py (conv 6@5x5 pad 2, relu, maxpool 2, conv 16@5x5,
relu, maxpool 2, dense 400-120-84-10) on batches of 64 1x28x28 images;
mean cross-entropy; plain SGD (torch.optim.SGD, no momentum) with the
learning rates the C bench uses.  One step is zero_grad, forward, loss,
backward, optimizer step -- the work Spore's train_step does.  As there,
the same batch is used every step, a few warm-up steps come first, every
step is timed alone and steps/s is from the median step (the machine is
shared), the mean beside it.  No figure here is compared with Spore's in
this script: bench/RESULTS.md puts the two outputs side by side.

Each thread count runs in a process of its own started with OMP_NUM_THREADS
set to it (the script re-runs itself), as PyTorch sizes its OpenMP pool at
start-up.

usage: /usr/bin/python3 bench/peer_train_step.py [--threads 1,2] [--steps N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


class LeNet5(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(1, 6, 5, padding=2)
        self.c2 = torch.nn.Conv2d(6, 16, 5)
        self.f1 = torch.nn.Linear(400, 120)
        self.f2 = torch.nn.Linear(120, 84)
        self.f3 = torch.nn.Linear(84, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.c1(x)), 2)
        h = F.max_pool2d(F.relu(self.c2(h)), 2)
        h = h.reshape(h.shape[0], 400)
        h = F.relu(self.f1(h))
        h = F.relu(self.f2(h))
        return self.f3(h)


MODELS = [
    # name, constructor, input shape, lr, timed steps (as in bench_train_step.c)
    ("mlp 784-256-10", mlp, (64, 784), 0.1, 200),
    ("lenet-5", LeNet5, (64, 1, 28, 28), 0.05, 40),
]
WARMUP = 8  # bench_train_step runs 3 warm-up and then steps/2 sampled ones


def bench(make, shape, lr, steps):
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(shape, generator=g)
    y = torch.randint(0, 10, (shape[0],), generator=g)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), statistics.fmean(times), float(loss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=0)
    args = ap.parse_args()
    threads = [int(s) for s in args.threads.split(",") if s]
    if len(threads) > 1 or os.environ.get("OMP_NUM_THREADS") != str(threads[0]):
        # one process per thread count, its OpenMP pool sized from the start:
        # shrinking it with set_num_threads left runs here 3x slower at
        # random (the idle pool threads compete on a loaded 2-core machine)
        for t in threads:
            env = dict(os.environ, OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
            cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(t)]
            if args.steps:
                cmd += ["--steps", str(args.steps)]
            subprocess.run(cmd, env=env, check=True)
        return
    print(f"peer_train_step: PyTorch {torch.__version__} CPU eager, the steps of bench_train_step "
          f"(steps/s from the median step), {threads[0]} threads")
    for name, make, shape, lr, steps in MODELS:
        print(f"\n{name}: batch {shape[0]}, lr {lr}, SGD ({WARMUP} warm-up + {args.steps or steps} timed steps)")
        for t in threads:
            torch.set_num_threads(t)
            med, mean, loss = bench(make, shape, lr, args.steps or steps)
            print(f"  threads {t}  pytorch:  {1 / med:8.1f} steps/s (mean {1 / mean:7.1f})  last loss {loss:.4f}",
                  flush=True)


if __name__ == "__main__":
    main()
