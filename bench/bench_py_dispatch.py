"""Python dispatch overhead: Spore's eager call of one primitive on small
tensors beside PyTorch's, and the call of a cached GRAPH_MODE Cell.

usage: .venv/bin/python bench/bench_py_dispatch.py   (needs `pip install .`
and Debian's python3-torch; `make bench` runs it)

Each figure is the median over 7 runs of the mean time of a tight loop of
calls on float32 tensors of 16 elements, so it measures the Python -> C
path (argument conversion, inference, allocation, result object), not
arithmetic.  Both libraries run with 1 thread.
"""
import os
import platform
import statistics
import time

os.environ.setdefault("SPORE_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

import spore  # noqa: E402
from spore import Tensor, nn, ops  # noqa: E402
from spore.ops import operations as P  # noqa: E402

torch.set_num_threads(1)
N = 20000


def per_call(fn, n=N):
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n)
    return statistics.median(runs)


a = np.linspace(-1, 1, 16, dtype=np.float32)
xs, ys = Tensor(a), Tensor(a[::-1].copy())
xt, yt = torch.from_numpy(a.copy()), torch.from_numpy(a[::-1].copy())
mul = P.Mul()

cases = [
    ("x + y", lambda: xs + ys, lambda: xt + yt),
    ("x * 2.0", lambda: xs * 2.0, lambda: xt * 2.0),
    ("P.Mul()(x, y)", lambda: mul(xs, ys), lambda: torch.mul(xt, yt)),
    ("ops.relu(x)", lambda: ops.relu(xs), lambda: torch.relu(xt)),
    ("x.sum()", lambda: xs.sum(), lambda: xt.sum()),
    ("x[1:5]", lambda: xs[1:5], lambda: xt[1:5]),
    ("Tensor(ndarray)", lambda: Tensor(a), lambda: torch.tensor(a)),
]

print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
      f"torch {torch.__version__}, 1 thread, float32[16]")
print(f"{'call':<18}{'Spore us':>10}{'PyTorch us':>12}{'ratio':>8}")
for name, s, t in cases:
    ts, tt = per_call(s), per_call(t)
    print(f"{name:<18}{ts * 1e6:>10.2f}{tt * 1e6:>12.2f}{ts / tt:>8.2f}")


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.mul = P.Mul()

    def construct(self, x, y):
        return self.mul(x, y) + x


class TNet(torch.nn.Module):
    def forward(self, x, y):
        return torch.mul(x, y) + x


net, tnet = Net(), TNet()
spore.set_context(mode=spore.PYNATIVE_MODE)
eager = per_call(lambda: net(xs, ys), N // 2)
spore.set_context(mode=spore.GRAPH_MODE)
net(xs, ys)
graph = per_call(lambda: net(xs, ys), N // 2)
tt = per_call(lambda: tnet(xt, yt), N // 2)
print(f"\nCell (mul + add): PYNATIVE {eager * 1e6:.2f} us, GRAPH_MODE (cached) {graph * 1e6:.2f} us, "
      f"torch.nn.Module {tt * 1e6:.2f} us; GRAPH/torch {graph / tt:.2f}")
