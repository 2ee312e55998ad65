"""Spore's CUDA elementwise, reduction, shape, index and random kernels
beside PyTorch on the same GPU, in one process.

usage: python3 bench/bench_gpu_ops.py BUILD_DIR [--n 67108864] [--iters 20]

Each row runs the same operation on both sides on n float32 elements (or
the nearest matrix): Spore through ctypes and sp_op_call (so its time
includes output allocation from the caching allocator and a few
microseconds of Python), PyTorch through its eager ops.  Timing: warm-up,
then `iters` calls between two cudaDeviceSynchronize(), wall clock; the
figure is the effective bandwidth (bytes read + written by the op's
minimal traffic) so it can be read against the device's ~3 TB/s.  Also
times sp_tensor_to both ways (pageable host memory through the pinned
staging buffers) against torch's .to() from pageable memory.
"""
import argparse
import ctypes as C
import os
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "tests", "py"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--n", type=int, default=1 << 26)
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    os.environ["SPORE_LIB"] = os.path.join(args.build, "libspore.so")
    import spore_ct as sp
    import torch

    lib = sp.lib

    class Device(C.Structure):
        _fields_ = [("type", C.c_int), ("index", C.c_int)]

    lib.sp_cuda_available.restype = C.c_int
    if not lib.sp_cuda_available():
        print(f"bench_gpu_ops: no GPU ({sp.last_error()}); nothing to measure")
        return 0
    lib.sp_tensor_to.argtypes = [sp.TP, Device, C.POINTER(sp.TP)]
    GPU, CPU = Device(1, 0), Device(0, 0)
    def sync():
        torch.cuda.synchronize()  # the whole device: Spore's stream and torch's

    def to(t, dev):
        out = sp.TP()
        st = lib.sp_tensor_to(t.ptr, dev, C.byref(out))
        if st:
            raise sp.SporeError(st, sp.last_error())
        return sp.T(out)

    def timeit(fn, iters):
        fn()
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        sync()
        return (time.perf_counter() - t0) / iters

    n = args.n
    side = int(np.sqrt(n))
    r = np.random.default_rng(0)
    host = r.uniform(-1, 1, n).astype(np.float32)
    host2d = host[: side * side].reshape(side, side)
    x = to(sp.tensor(host, "float32"), GPU)
    x2 = to(sp.tensor(host2d, "float32"), GPU)
    row = to(sp.tensor(host2d[0], "float32"), GPU)
    idx = to(sp.tensor(r.integers(0, side, side).astype(np.int64), "int64"), GPU)
    tx = torch.from_numpy(host).cuda()
    tx2 = torch.from_numpy(host2d).cuda()
    trow = tx2[0].clone()
    tidx = torch.from_numpy(r.integers(0, side, side)).cuda()
    B = 4
    rows = [
        ("add x+x", lambda: sp.call("add", [x, x]), lambda: tx + tx, 3 * n * B),
        ("mul x*row (broadcast)", lambda: sp.call("mul", [x2, row]), lambda: tx2 * trow,
         2 * side * side * B),
        ("exp", lambda: sp.call("exp", [x]), lambda: torch.exp(tx), 2 * n * B),
        ("cast f32->bf16", lambda: sp.call("cast", [x], {"dtype": sp.DType("bfloat16")}),
         lambda: tx.to(torch.bfloat16), n * (B + 2)),
        ("sum all", lambda: sp.call("sum", [x]), lambda: tx.sum(), n * B),
        ("sum axis 0", lambda: sp.call("sum", [x2], {"axes": [0]}), lambda: tx2.sum(0),
         side * side * B),
        ("sum axis -1", lambda: sp.call("sum", [x2], {"axes": [-1]}), lambda: tx2.sum(-1),
         side * side * B),
        ("max axis -1", lambda: sp.call("max", [x2], {"axes": [-1]}),
         lambda: tx2.amax(-1), side * side * B),
        ("transpose 2-D", lambda: sp.call("transpose", [x2]), lambda: tx2.t().contiguous(),
         2 * side * side * B),
        ("gather rows", lambda: sp.call("gather", [x2, idx]), lambda: tx2[tidx],
         2 * side * side * B),
    ]
    print(f"# bench_gpu_ops on {torch.cuda.get_device_name()}, n = {n} float32, "
          f"{args.iters} iterations; GB/s of minimal traffic (higher is better)")
    print(f"{'op':24s} {'spore GB/s':>11s} {'torch GB/s':>11s} {'ratio':>6s}")
    for name, fs, ft, nbytes in rows:
        try:
            ts = timeit(fs, args.iters)
            tt = timeit(ft, args.iters)
            print(f"{name:24s} {nbytes / ts / 1e9:11.1f} {nbytes / tt / 1e9:11.1f} "
                  f"{tt / ts:6.2f}")
        except Exception as e:  # report and go on: one row must not hide the rest
            print(f"{name:24s} failed: {e}")
    # host <-> device copies (pageable memory)
    h = sp.tensor(host, "float32")
    ts_up = timeit(lambda: to(h, GPU), 5)
    ts_down = timeit(lambda: to(x, CPU), 5)
    th = torch.from_numpy(host)
    tt_up = timeit(lambda: th.to("cuda"), 5)
    tt_down = timeit(lambda: tx.to("cpu"), 5)
    nb = n * 4
    print(f"{'copy host->device':24s} {nb / ts_up / 1e9:11.1f} {nb / tt_up / 1e9:11.1f} "
          f"{tt_up / ts_up:6.2f}")
    print(f"{'copy device->host':24s} {nb / ts_down / 1e9:11.1f} {nb / tt_down / 1e9:11.1f} "
          f"{tt_down / ts_down:6.2f}")
    # eager per-call overhead: a tiny add
    s1 = to(sp.tensor(np.ones(16, np.float32), "float32"), GPU)
    t1 = torch.ones(16, device="cuda")
    ts = timeit(lambda: sp.call("add", [s1, s1]), 2000)
    tt = timeit(lambda: t1 + t1, 2000)
    print(f"{'tiny add (us/call)':24s} {ts * 1e6:11.1f} {tt * 1e6:11.1f} {tt / ts:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
