"""Python dispatch overhead: Spore's eager call of one primitive on small
tensors beside PyTorch's, and the call of a cached GRAPH_MODE Cell.

usage: .venv/bin/python bench/bench_py_dispatch.py [--quick]
       (needs the package -- `pip install .` or PYTHONPATH=$(tools/pydev.sh
       build-x) -- and Debian's python3-torch; `make bench` runs it)

Each figure is the median over 7 runs of the mean time of a tight loop of
calls on float32 tensors of 16 elements (a 4x4 matrix for matmul), so it
measures the Python -> C path (argument conversion, binding, inference,
allocation, result object), not arithmetic.  Spore's and PyTorch's loops
alternate run by run, so a machine shared with other jobs slows both
alike.  Both libraries run with 1 thread.

Every common operation is timed in the three ways a user writes it: an
operator (x + y), a function (ops.add / torch.add) and a Tensor method
(x.add(y)), plus the primitive classes (P.Add()) that MindSpore models use.
"""
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("SPORE_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

import spore  # noqa: E402
from spore import Tensor, nn, ops  # noqa: E402
from spore.ops import operations as P  # noqa: E402

torch.set_num_threads(1)
QUICK = "--quick" in sys.argv
N = 2000 if QUICK else 20000
RUNS = 3 if QUICK else 7


def loop(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def per_call(s, t, n=N):
    """Median seconds per call of s and of t, their runs interleaved."""
    rs, rt = [], []
    for _ in range(RUNS):
        rs.append(loop(s, n))
        rt.append(loop(t, n))
    return statistics.median(rs), statistics.median(rt)


a = np.linspace(-1, 1, 16, dtype=np.float32)
xs, ys = Tensor(a), Tensor(a[::-1].copy())
xt, yt = torch.from_numpy(a.copy()), torch.from_numpy(a[::-1].copy())
ms, mt = Tensor(a.reshape(4, 4)), torch.from_numpy(a.reshape(4, 4).copy())
p_add, p_mul, p_relu, p_matmul = P.Add(), P.Mul(), P.ReLU(), P.MatMul()
p_sum, p_reshape = P.ReduceSum(), P.Reshape()

cases = [
    # operators
    ("x + y", lambda: xs + ys, lambda: xt + yt),
    ("x * y", lambda: xs * ys, lambda: xt * yt),
    ("x * 2.0", lambda: xs * 2.0, lambda: xt * 2.0),
    ("m @ m", lambda: ms @ ms, lambda: mt @ mt),
    ("x[1:5]", lambda: xs[1:5], lambda: xt[1:5]),
    # functions
    ("ops.add(x, y)", lambda: ops.add(xs, ys), lambda: torch.add(xt, yt)),
    ("ops.mul(x, y)", lambda: ops.mul(xs, ys), lambda: torch.mul(xt, yt)),
    ("ops.relu(x)", lambda: ops.relu(xs), lambda: torch.relu(xt)),
    ("ops.matmul(m, m)", lambda: ops.matmul(ms, ms), lambda: torch.matmul(mt, mt)),
    ("ops.sum(x)", lambda: ops.sum(xs), lambda: torch.sum(xt)),
    ("ops.reshape(x, s)", lambda: ops.reshape(xs, (4, 4)), lambda: torch.reshape(xt, (4, 4))),
    # methods
    ("x.add(y)", lambda: xs.add(ys), lambda: xt.add(yt)),
    ("x.mul(y)", lambda: xs.mul(ys), lambda: xt.mul(yt)),
    ("x.relu()", lambda: xs.relu(), lambda: xt.relu()),
    ("m.matmul(m)", lambda: ms.matmul(ms), lambda: mt.matmul(mt)),
    ("x.sum()", lambda: xs.sum(), lambda: xt.sum()),
    ("x.reshape(4, 4)", lambda: xs.reshape(4, 4), lambda: xt.reshape(4, 4)),
    # primitive classes (peer: the torch function)
    ("P.Add()(x, y)", lambda: p_add(xs, ys), lambda: torch.add(xt, yt)),
    ("P.Mul()(x, y)", lambda: p_mul(xs, ys), lambda: torch.mul(xt, yt)),
    ("P.ReLU()(x)", lambda: p_relu(xs), lambda: torch.relu(xt)),
    ("P.MatMul()(m, m)", lambda: p_matmul(ms, ms), lambda: torch.matmul(mt, mt)),
    ("P.ReduceSum()(x)", lambda: p_sum(xs), lambda: torch.sum(xt)),
    ("P.Reshape()(x, s)", lambda: p_reshape(xs, (4, 4)), lambda: torch.reshape(xt, (4, 4))),
    ("Tensor(ndarray)", lambda: Tensor(a), lambda: torch.tensor(a)),
]

print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
      f"torch {torch.__version__}, 1 thread, float32[16]")
print(f"{'call':<20}{'Spore us':>10}{'PyTorch us':>12}{'ratio':>8}")
worst = 0.0
for name, s, t in cases:
    ts, tt = per_call(s, t)
    worst = max(worst, ts / tt)
    print(f"{name:<20}{ts * 1e6:>10.2f}{tt * 1e6:>12.2f}{ts / tt:>8.2f}")
print(f"highest ratio: {worst:.2f}")


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
eager, tt = per_call(lambda: net(xs, ys), lambda: tnet(xt, yt), N // 2)
spore.set_context(mode=spore.GRAPH_MODE)
net(xs, ys)
graph, tt = per_call(lambda: net(xs, ys), lambda: tnet(xt, yt), N // 2)
print(f"\nCell (mul + add): PYNATIVE {eager * 1e6:.2f} us, GRAPH_MODE (cached) {graph * 1e6:.2f} us, "
      f"torch.nn.Module {tt * 1e6:.2f} us; PYNATIVE/torch {eager / tt:.2f}, GRAPH/torch {graph / tt:.2f}")
