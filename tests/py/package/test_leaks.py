"""10,000 calls in each mode leave Python's (tracemalloc) and Spore's
(sp_cpu_live_bytes) counters flat."""
import gc
import tracemalloc

import numpy as np

import spore
from spore import Tensor, nn, ops
from spore.ops import operations as P


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.mul = P.Mul()
        self.w = spore.Parameter(Tensor(np.ones(8, np.float32)), name="w")

    def construct(self, x):
        y = self.mul(x, self.w) + 1
        if y.sum() > 0:
            y = ops.relu(y)
        return y[1:].sum()


def _measure(fn, n):
    fn()  # warm up caches (compiled graphs, allocator blocks)
    gc.collect()
    tracemalloc.start()
    py0 = tracemalloc.get_traced_memory()[0]
    sp0 = spore._C.cpu_live_bytes()
    for _ in range(n):
        fn()
    gc.collect()
    py1 = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return py1 - py0, spore._C.cpu_live_bytes() - sp0


def test_no_leaks_in_either_mode():
    net = Net()
    x = Tensor(np.linspace(-1, 1, 8, dtype=np.float32))
    a = np.ones(4, np.float32)
    for mode in (spore.PYNATIVE_MODE, spore.GRAPH_MODE):
        spore.set_context(mode=mode)

        def step():
            r = net(x)
            t = Tensor(a) * 2 + x[:4]
            t.asnumpy()
            str(r)
            spore.from_dlpack(a).sum()
            return r.item()
        dpy, dsp = _measure(step, 10000)
        assert dsp == 0, (mode, dsp)
        assert dpy < 64 * 1024, (mode, dpy)  # 10,000 calls: under 7 bytes a call
