"""The GPU benchmark and check of the library and NN kernels, beside PyTorch.

usage: python3 bench/bench_gpu.py BUILD_DIR [--parity] [--no-bench] [--nn] [--n 8192] [--iters 20]

Timing (the default): PyTorch (the python3 that runs this script) and
Spore's bench_gpu (BUILD_DIR/bench_gpu, a C program on libspore.so and
libspore_cuda.so) run the same measurements in one run, on the same GPU:
GEMM at n x n x n in bfloat16, float32 with TF32, float16 and plain
float32, and a 1 GiB device-to-device copy.  PyTorch goes first and last
(the better of its two figures counts, so clock warm-up does not favour
Spore); the table gives Spore / PyTorch.  PyTorch's settings mirror
Spore's: allow_tf32 on for the tf32 row only; torch.matmul with out= so no
allocation is timed; inputs uniform in [-1, 1).  --nn adds a table of NN
primitives (softmax, layer norm, cross-entropy, conv2d, pooling, batch
norm, Adam) timed in this process on both sides (Spore through ctypes, so
each Spore call carries some microseconds of Python overhead).

--parity runs the reference cases of tests/py/test_ops.py for this
family's primitives (matmul, convolution, pooling, softmax and
cross-entropy, norms, dropout, embedding, optimizers) on the GPU: inputs go
to the GPU keeping their layout (a transposed or strided view stays a view
of a device buffer), outputs come back and are checked against the same
float64 numpy references; in-place updates are copied back.  Then a few
GPU-only checks: the dropout mask equals the CPU's bit for bit, repeated
runs give identical bits, bad indices and labels give the CPU's errors,
and big products in bf16/tf32 stay within their precision.
"""
import argparse
import ctypes as C
import os
import subprocess
import sys
import time
import traceback

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--parity", action="store_true")
ap.add_argument("--no-bench", action="store_true")
ap.add_argument("--n", type=int, default=8192)
ap.add_argument("--iters", type=int, default=20)
ap.add_argument("--nn", action="store_true", help="also time NN primitives beside PyTorch")
args = ap.parse_args()
build = os.path.abspath(args.build)
os.environ.setdefault("SPORE_LIB", os.path.join(build, "libspore.so"))

FAMILY = ["matmul", "conv2d", "conv2d_backprop_input", "conv2d_backprop_filter", "max_pool2d",
          "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward", "softmax", "log_softmax",
          "sparse_softmax_cross_entropy", "sparse_softmax_cross_entropy_backward", "layer_norm",
          "layer_norm_backward", "batch_norm", "batch_norm_backward", "dropout", "embedding",
          "embedding_backward", "sgd_update", "adam_update"]
WRITES_INPUTS = {"sgd_update", "adam_update", "batch_norm"}


# ---------------------------------------------------------------- parity
def setup():
    """libspore through spore_ct, with the device helpers; None without a GPU."""
    sys.path.insert(0, os.path.join(here, "..", "tests", "py"))
    try:
        import pytest  # noqa: F401  (test_ops imports it; only its decorators are used)
    except ImportError:
        import types
        shim = types.ModuleType("pytest")
        shim.param = lambda *a, **k: a
        shim.fail = lambda msg: (_ for _ in ()).throw(AssertionError(msg))
        shim.mark = types.SimpleNamespace(parametrize=lambda *a, **k: (lambda f: f))
        sys.modules["pytest"] = shim
    import numpy as np
    import spore_ct as sp
    import test_ops

    lib = sp.lib

    class Device(C.Structure):
        _fields_ = [("type", C.c_int), ("index", C.c_int)]

    class Buffer(C.Structure):
        _fields_ = [("data", C.c_void_p), ("nbytes", C.c_size_t), ("device", Device)]

    for name, res, argt in [
            ("sp_cuda_available", C.c_int, []),
            ("sp_tensor_to", C.c_int, [sp.TP, Device, C.POINTER(sp.TP)]),
            ("sp_tensor_is_contiguous", C.c_int, [sp.TP]),
            ("sp_tensor_view_of", sp.TP, [C.c_void_p, C.c_int, C.c_int, C.POINTER(C.c_int64),
                                          C.POINTER(C.c_int64), C.c_int64]),
            ("sp_set_allow_tf32", None, [C.c_int])]:
        f = getattr(lib, name)
        f.restype, f.argtypes = res, argt
    # SPORE_PARITY_DEVICE=cpu runs the harness against the CPU (a self-test)
    on_cpu = os.environ.get("SPORE_PARITY_DEVICE") == "cpu"
    if not on_cpu and not lib.sp_cuda_available():
        print("no GPU:", sp.last_error())
        return None
    GPU, CPU = Device(0 if on_cpu else 1, 0), Device(0, 0)
    ISZ = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1,
           "int32": 4, "int64": 8, "bool": 1}

    def move(t, dev):
        out = sp.TP()
        st = lib.sp_tensor_to(t.ptr, dev, C.byref(out))
        if st:
            raise sp.SporeError(st, sp.last_error())
        return sp.T(out)

    def to_gpu(t):
        """t on the GPU with t's layout: its whole buffer moves, the view is rebuilt."""
        if lib.sp_tensor_is_contiguous(t.ptr):
            return move(t, GPU)
        tc = t.ptr.contents
        buf = C.cast(tc.buf, C.POINTER(Buffer)).contents
        nel = buf.nbytes // ISZ[t.dtype]
        one, n = (C.c_int64 * 1)(1), (C.c_int64 * 1)(nel)
        whole = sp.T(lib.sp_tensor_view_of(tc.buf, tc.dtype, 1, n, one, 0))
        g = move(whole, GPU)
        shape = (C.c_int64 * 8)(*tc.shape)
        strides = (C.c_int64 * 8)(*tc.strides)
        return sp.T(lib.sp_tensor_view_of(g.ptr.contents.buf, tc.dtype, tc.ndim, shape, strides,
                                          tc.offset))

    def copy_back(g, t):
        h = move(g, CPU)
        nb = int(np.prod(t.shape)) * ISZ[t.dtype] if t.shape else ISZ[t.dtype]
        C.memmove(lib.sp_tensor_data(t.ptr), lib.sp_tensor_data(h.ptr), nb)

    return types_ns(sp=sp, np=np, test_ops=test_ops, lib=lib, move=move, to_gpu=to_gpu,
                    copy_back=copy_back, GPU=GPU, CPU=CPU, ISZ=ISZ)


def types_ns(**kw):
    import types
    return types.SimpleNamespace(**kw)


def parity():
    env = setup()
    if env is None:
        return 0
    sp, np, test_ops, lib = env.sp, env.np, env.test_ops, env.lib
    move, to_gpu, copy_back, CPU = env.move, env.to_gpu, env.copy_back, env.CPU
    cpu_call = sp.call

    def gpu_call(op, inputs, attrs=None):
        g = [to_gpu(t) for t in inputs]
        outs = cpu_call(op, g, attrs)
        if op in WRITES_INPUTS:
            for t, gt in zip(inputs, g):
                if lib.sp_tensor_is_contiguous(t.ptr):
                    copy_back(gt, t)
        return [move(o, CPU) for o in outs]

    test_ops.call = gpu_call
    fails = total = 0
    for op in FAMILY:
        ok = 0
        runs = [(dt, lay) for dt in sp.DTYPES if (sp.lib.sp_op_dtypes(sp.lib.sp_op_find(op.encode())) >> sp.DT[dt]) & 1
                for lay in (["contig"] if op in test_ops.NO_LAYOUT else test_ops.LAYOUTS)]
        for dt, lay in runs:
            total += 1
            try:
                test_ops.CASES[op](op, dt, lay)
                ok += 1
            except Exception as e:  # noqa: BLE001 - report every failure and go on
                fails += 1
                msg = str(e).strip().splitlines()
                print(f"FAIL {op}-{dt}-{lay}: {' | '.join(msg[:6])[:600]}")
        print(f"parity {op}: {ok}/{len(runs)}", flush=True)

    # GPU-only checks
    extra = []

    def check(name, fn):
        nonlocal fails, total
        total += 1
        try:
            fn()
            extra.append(f"ok   {name}")
        except Exception:  # noqa: BLE001
            fails += 1
            extra.append(f"FAIL {name}: " + traceback.format_exc().strip().splitlines()[-1][:400])

    r = np.random.default_rng(5)

    def dropout_mask_equal():
        for dt in ("float32", "bfloat16"):
            x = sp.tensor(r.uniform(0.5, 2, (1000, 37)), dt)
            for p in (0.1, 0.5, 0.9):
                y1, m1 = cpu_call("dropout", [x], {"p": p, "seed": 123, "offset": 77})
                y2, m2 = gpu_call("dropout", [x], {"p": p, "seed": 123, "offset": 77})
                assert (m1.numpy() == m2.numpy()).all(), "masks differ"
                assert (y1.numpy() == y2.numpy()).all(), "values differ"

    def deterministic():
        d = sp.tensor(r.uniform(-1, 1, (4000, 64)), "float32")
        idx = sp.tensor(r.integers(0, 50, 4000), "int64")
        a = gpu_call("embedding_backward", [d, idx], {"num_embeddings": 50})[0].numpy()
        for _ in range(3):
            b = gpu_call("embedding_backward", [d, idx], {"num_embeddings": 50})[0].numpy()
            assert (a.view(np.uint32) == b.view(np.uint32)).all(), "embedding_backward bits vary"
        x = sp.tensor(r.uniform(-1, 1, (64, 16, 12, 12)), "float32")
        dy = sp.tensor(r.uniform(-1, 1, (64, 32, 12, 12)), "float32")
        at = {"filter_shape": [32, 16, 3, 3], "padding": [1]}
        a = gpu_call("conv2d_backprop_filter", [dy, x], at)[0].numpy()
        b = gpu_call("conv2d_backprop_filter", [dy, x], at)[0].numpy()
        assert (a.view(np.uint32) == b.view(np.uint32)).all(), "conv2d_backprop_filter bits vary"
        ref = cpu_call("conv2d_backprop_filter", [dy, x], at)[0].numpy()
        err = np.abs(a - ref).max() / np.abs(ref).max()
        assert err < 1e-5, f"conv2d_backprop_filter vs CPU rel err {err}"

    def errors():
        def both(op, inputs):
            msgs = []
            for name, call in (("cpu", cpu_call), ("gpu", gpu_call)):
                try:
                    call(op, inputs)
                    msgs.append(f"{name}: no error")
                except sp.SporeError as e:
                    msgs.append(e.msg)
            assert msgs[0] == msgs[1] and "no error" not in msgs[0], msgs

        w = sp.tensor(r.uniform(-1, 1, (10, 4)), "float32")
        both("embedding", [w, sp.tensor(np.array([1, 12, 3]), "int64")])
        lg = sp.tensor(r.uniform(-1, 1, (4, 5)), "float32")
        both("sparse_softmax_cross_entropy", [lg, sp.tensor(np.array([0, 1, 7, 2]), "int32")])

    def big_products():
        a64 = r.uniform(-1, 1, (512, 1024))
        b64 = r.uniform(-1, 1, (1024, 768))
        ref = a64 @ b64
        for dt, tf32, tol in (("float32", 0, 1e-6), ("float32", 1, 2e-3), ("bfloat16", 0, 1e-2),
                              ("float16", 0, 2e-3), ("float64", 0, 1e-13)):
            lib.sp_set_allow_tf32(tf32)
            A, B = sp.tensor(a64, dt), sp.tensor(b64, dt)
            y = gpu_call("matmul", [A, B])[0].numpy().astype(np.float64)
            want = sp.round_to(a64, dt).astype(np.float64) @ sp.round_to(b64, dt).astype(np.float64)
            err = np.linalg.norm(y - want) / np.linalg.norm(want)
            lib.sp_set_allow_tf32(0)
            assert err < tol, f"{dt} tf32={tf32}: rel err {err:.2e} >= {tol}"
            extra.append(f"     matmul {dt} tf32={tf32}: rel err {err:.2e}")
        del ref

    check("dropout mask equals the CPU's", dropout_mask_equal)
    check("repeat runs give identical bits", deterministic)
    check("bad index / label errors match the CPU's", errors)
    check("big products within precision", big_products)
    print("\n".join(extra))
    print(f"parity total: {total - fails}/{total} passed", flush=True)
    return 1 if fails else 0


# ---------------------------------------------------------------- NN kernels
def nn_bench(iters):
    """Times a few NN primitives in this process, Spore (through ctypes) and
    PyTorch on the same data; float32, TF32 off on both sides."""
    import torch
    env = setup()
    if env is None or not torch.cuda.is_available():
        return
    sp, np = env.sp, env.np
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    r = np.random.default_rng(0)

    def both(vals, dt="float32"):
        t = sp.tensor(vals, dt)
        return env.to_gpu(t), torch.from_numpy(np.asarray(vals, dtype=np.float32)).cuda()

    def ms(fn):
        fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        torch.cuda.synchronize()
        return (time.perf_counter() - t0) / iters * 1e3

    rows = []
    x_s, x_t = both(r.uniform(-3, 3, (16384, 4096)))
    rows.append(("softmax [16384, 4096]", ms(lambda: sp.call("softmax", [x_s])),
                 ms(lambda: torch.softmax(x_t, -1))))
    g_s, g_t = both(r.uniform(0.5, 1.5, 4096))
    b_s, b_t = both(r.uniform(-1, 1, 4096))
    rows.append(("layer_norm [16384, 4096]", ms(lambda: sp.call("layer_norm", [x_s, g_s, b_s])),
                 ms(lambda: torch.nn.functional.layer_norm(x_t, (4096,), g_t, b_t))))
    lg_s, lg_t = both(r.uniform(-4, 4, (65536, 1000)))
    lab = r.integers(0, 1000, 65536)
    lab_s = env.to_gpu(sp.tensor(lab, "int64"))
    lab_t = torch.from_numpy(lab).cuda()
    rows.append(("xent [65536, 1000]", ms(lambda: sp.call("sparse_softmax_cross_entropy", [lg_s, lab_s])),
                 ms(lambda: torch.nn.functional.cross_entropy(lg_t, lab_t))))
    cx_s, cx_t = both(r.uniform(-1, 1, (64, 64, 56, 56)))
    cw_s, cw_t = both(r.uniform(-1, 1, (64, 64, 3, 3)))
    rows.append(("conv2d 64x64x56x56 k3", ms(lambda: sp.call("conv2d", [cx_s, cw_s], {"padding": [1]})),
                 ms(lambda: torch.nn.functional.conv2d(cx_t, cw_t, padding=1))))
    rows.append(("max_pool2d k2 s2 same x", ms(lambda: sp.call("max_pool2d", [cx_s], {"kernel_size": [2, 2]})),
                 ms(lambda: torch.nn.functional.max_pool2d(cx_t, 2))))
    bx_s = cx_s
    gm_s, gm_t = both(np.ones(64))
    bt_s, bt_t = both(np.zeros(64))
    rm_s, rm_t = both(np.zeros(64))
    rv_s, rv_t = both(np.ones(64))
    rows.append(("batch_norm 64x64x56x56", ms(lambda: sp.call("batch_norm", [bx_s, gm_s, bt_s, rm_s, rv_s])),
                 ms(lambda: torch.nn.functional.batch_norm(cx_t, rm_t, rv_t, gm_t, bt_t, training=True))))
    n = 1 << 26
    p_s, p_t = both(r.uniform(-1, 1, n))
    gr_s, gr_t = both(r.uniform(-1, 1, n))
    m_s, v_s = env.to_gpu(sp.tensor(np.zeros(n), "float32")), env.to_gpu(sp.tensor(np.zeros(n), "float32"))
    lr_s = env.to_gpu(sp.tensor(np.array(1e-3), "float32"))
    st_s = env.to_gpu(sp.tensor(np.array(1), "int64"))
    p_t.grad = gr_t
    opt = torch.optim.Adam([p_t], lr=1e-3, fused=True)
    rows.append(("adam_update 64M (fused)", ms(lambda: sp.call("adam_update", [p_s, gr_s, m_s, v_s, lr_s, st_s])),
                 ms(lambda: opt.step())))
    print(f"\n{'NN primitive (float32)':<28} {'Spore ms':>9} {'torch ms':>9} {'torch/Spore':>11}")
    for name, a, b in rows:
        print(f"{name:<28} {a:9.3f} {b:9.3f} {b / a:10.0%}")


# ---------------------------------------------------------------- timing
def torch_bench(n, iters):
    import torch
    if not torch.cuda.is_available():
        return None
    dev = torch.device("cuda")
    res = {}
    g = torch.Generator(device=dev)
    g.manual_seed(0)
    for name, dt, tf32 in (("bf16", torch.bfloat16, False), ("tf32", torch.float32, True),
                           ("fp16", torch.float16, False), ("fp32", torch.float32, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.rand(n, n, device=dev, dtype=dt, generator=g) * 2 - 1
        b = torch.rand(n, n, device=dev, dtype=dt, generator=g) * 2 - 1
        c = torch.empty(n, n, device=dev, dtype=dt)
        it = iters if name != "fp32" else min(iters, 5)
        for _ in range(3):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(it):
            torch.matmul(a, b, out=c)
        torch.cuda.synchronize()
        s = (time.perf_counter() - t0) / it
        res["gemm " + name] = 2.0 * n ** 3 / s * 1e-12
        del a, b, c
    torch.backends.cuda.matmul.allow_tf32 = False
    side = 1 << 14
    src = torch.rand(side, side, device=dev)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        dst.copy_(src)
    torch.cuda.synchronize()
    s = (time.perf_counter() - t0) / iters
    res["copy"] = 2.0 * src.numel() * 4 / s * 1e-9
    del src, dst
    torch.cuda.empty_cache()
    return res, torch.__version__, torch.cuda.get_device_name(0)


def spore_bench(n, iters):
    exe = os.path.join(build, "bench_gpu")
    out = subprocess.run([exe, str(n), str(iters)], capture_output=True, text=True, timeout=300)
    res = {}
    for line in out.stdout.splitlines():
        print("  spore:", line)
        parts = line.split()
        kv = dict(p.split("=", 1) for p in parts if "=" in p)
        if parts and parts[0] == "gemm" and "tflops" in kv:
            res["gemm " + parts[1]] = float(kv["tflops"])
        if parts and parts[0] == "copy" and "gbps" in kv:
            res["copy"] = float(kv["gbps"])
    if out.returncode:
        print("  spore bench_gpu exited", out.returncode, out.stderr[-2000:])
    return res


def bench():
    try:
        t1 = torch_bench(args.n, args.iters)
    except ImportError:
        t1 = None
    if t1 is None:
        print("bench: no PyTorch with CUDA here; Spore alone:")
        spore_bench(args.n, args.iters)
        return
    r1, tv, gpu = t1
    s = spore_bench(args.n, args.iters)
    r2, _, _ = torch_bench(args.n, args.iters)
    print(f"\nGPU: {gpu}; PyTorch {tv}; n = {args.n}, {args.iters} timed calls each")
    print(f"{'measurement':<12} {'Spore':>10} {'PyTorch':>10} {'ratio':>7}")
    for k in ("gemm bf16", "gemm tf32", "gemm fp16", "gemm fp32", "copy"):
        unit = "GB/s" if k == "copy" else "TFLOP/s"
        t = max(r1.get(k, 0), r2.get(k, 0))
        v = s.get(k)
        ratio = f"{v / t:6.1%}" if v and t else "  -"
        vs = f"{v:10.1f}" if v else f"{'-':>10}"
        print(f"{k:<12} {vs} {t:10.1f} {ratio:>7}  ({unit})")
    if args.nn:
        try:
            nn_bench(args.iters)
        except Exception:  # noqa: BLE001 - the GEMM table above stands on its own
            traceback.print_exc()


rc = 0
if args.parity:
    rc = parity()
if not args.no_bench:
    bench()
sys.exit(rc)
