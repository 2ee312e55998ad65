"""PyNative training step through the tape: forward + backward + SGD of a
small MLP (784-128-10, batch 32, cross-entropy), Spore's PYNATIVE_MODE
(eager forward recorded on the tape, the backward a compiled graph cached
per tape structure, nn.SGD) against PyTorch 1.13 eager (autograd,
torch.optim.SGD) in the same run.

usage: .venv/bin/python bench/bench_tape.py [--quick] [--threads N]
       (needs the package -- `pip install .` or PYTHONPATH=$(tools/pydev.sh
       build-x) -- and Debian's python3-torch)

Each figure is the median over RUNS runs of the mean time of N steps;
Spore's and PyTorch's runs alternate, so a loaded machine slows both
alike.  Both run with the same number of threads (2 by default; on a
loaded machine PyTorch's libgomp threads spin, so --threads 1 is the
fairer peer figure there).  The step counts as: the loss value read
back to Python each step (.item(), as a training loop prints it).
"""
import os
import platform
import statistics
import sys
import time

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
os.environ.setdefault("SPORE_NUM_THREADS", str(THREADS))
import numpy as np  # noqa: E402
import torch  # noqa: E402

import spore  # noqa: E402
from spore import Tensor, nn, ops  # noqa: E402
from spore import _C  # noqa: E402

torch.set_num_threads(THREADS)
QUICK = "--quick" in sys.argv
N = 20 if QUICK else 200
RUNS = 3 if QUICK else 7
B, D, H, C = 32, 784, 128, 10

rng = np.random.default_rng(0)
X = rng.standard_normal((B, D)).astype(np.float32)
Y = rng.integers(0, C, B).astype(np.int32)

spore.set_context(mode=spore.PYNATIVE_MODE)
spore.set_seed(0)
net = nn.SequentialCell([nn.Dense(D, H), nn.ReLU(), nn.Dense(H, C)])
loss_fn = nn.CrossEntropyLoss()
opt = nn.SGD(net.trainable_params(), learning_rate=0.01)


def forward(x, y):
    return loss_fn(net(x), y)


grad_fn = spore.value_and_grad(forward, None, opt.parameters)
xs, ys = Tensor(X), Tensor(Y)


def spore_step():
    loss, grads = grad_fn(xs, ys)
    opt(grads)
    return loss.item()


tnet = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, C))
with torch.no_grad():  # identical weights (Dense keeps (out, in) as torch does)
    for tp, sp in zip(tnet.parameters(), net.trainable_params()):
        tp.copy_(torch.from_numpy(sp.asnumpy()))
topt = torch.optim.SGD(tnet.parameters(), lr=0.01)
tloss = torch.nn.CrossEntropyLoss()
xt, yt = torch.from_numpy(X), torch.from_numpy(Y.astype(np.int64))


def torch_step():
    topt.zero_grad()
    loss = tloss(tnet(xt), yt)
    loss.backward()
    topt.step()
    return loss.item()


def loop(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


# the same losses first (same weights, same data, same update)
ls = [spore_step() for _ in range(3)]
lt = [torch_step() for _ in range(3)]
assert np.allclose(ls, lt, rtol=1e-4, atol=1e-5), (ls, lt)
c0, h0 = _C.tape_stats()
rs, rt = [], []
for _ in range(RUNS):
    rs.append(loop(spore_step, N))
    rt.append(loop(torch_step, N))
c1, h1 = _C.tape_stats()
s, t = statistics.median(rs), statistics.median(rt)
load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, load {load:.1f}")
print(f"MLP {D}-{H}-{C} batch {B}, PyNative step (forward + tape backward + SGD), {RUNS} runs x {N} steps, "
      f"{THREADS} thread(s)")
print(f"  spore {s * 1e3:8.3f} ms   torch {t * 1e3:8.3f} ms   ratio spore/torch {s / t:5.2f}")
print(f"  backward graphs compiled during the timing: {c1 - c0} (cache hits {h1 - h0})")
