"""Every registered primitive on the GPU, against the same numpy references
as the CPU (test_ops.py), plus exact CPU/GPU parity where the math allows.

The cases of test_ops.py run unchanged: while a GPU test runs, test_ops.call
is replaced by gpu_call, which moves every input to cuda:0 -- keeping its
layout: the whole buffer moves and the same strided view (transposed,
strided, offset) is rebuilt over the device copy, so the kernels see the
views the CPU kernels see -- runs the primitive there, checks that the
outputs live on the GPU and brings them back.  Primitives that update
inputs in place (the optimizer updates; batch_norm's running statistics)
have the device buffers of their inputs copied back into the CPU tensors
the case holds.  Primitives without inputs (arange, full, random
fills) run through sp_op_call_into with outputs allocated on the GPU, and
their results must equal the CPU's bit for bit (normal: to float rounding).

SPORE_GPU_OPS=name,... restricts the per-primitive tests to those
primitives.  The module skips itself, saying why, when there is no usable GPU
(sp_cuda_available() == 0): CI has the CUDA library but no device.
"""
import ctypes as C
import gc
import os

import numpy as np
import pytest

import spore_ct as sp
from spore_ct import DT, TP, SporeError, T, last_error, make_attrs

lib = sp.lib
lib.sp_cuda_available.restype = C.c_int
lib.sp_cuda_available.argtypes = []

if not lib.sp_cuda_available():
    pytest.skip(f"no GPU: {last_error()}", allow_module_level=True)

import test_ops  # noqa: E402  (only once we know there is a GPU)


class Device(C.Structure):
    _fields_ = [("type", C.c_int), ("index", C.c_int)]


class Buffer(C.Structure):
    _fields_ = [("data", C.c_void_p), ("nbytes", C.c_size_t), ("device", Device),
                ("refcount", C.c_int), ("deleter", C.c_void_p), ("deleter_ctx", C.c_void_p)]


CPU, GPU = Device(0, 0), Device(1, 0)
I64P = C.POINTER(C.c_int64)
lib.sp_tensor_to.restype = C.c_int
lib.sp_tensor_to.argtypes = [TP, Device, C.POINTER(TP)]
lib.sp_tensor_view_of.restype = TP
lib.sp_tensor_view_of.argtypes = [C.c_void_p, C.c_int, C.c_int, I64P, I64P, C.c_int64]
lib.sp_tensor_new.restype = TP
lib.sp_tensor_new.argtypes = [C.c_int, C.c_int, I64P, Device]
lib.sp_op_call_into.restype = C.c_int
lib.sp_op_call_into.argtypes = [C.c_int, C.c_int, C.POINTER(TP), C.POINTER(sp.Attrs), C.c_int,
                                C.POINTER(TP)]
lib.sp_dtype_size.restype = C.c_size_t
lib.sp_dtype_size.argtypes = [C.c_int]

_cuda = C.CDLL(os.path.join(os.path.dirname(lib._name), "libspore_cuda.so"),
               mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
_cuda.cuda_live_bytes.restype = C.c_longlong


def _check(st):
    if st:
        raise SporeError(st, last_error())


def device_of(t):
    return C.cast(t.ptr.contents.buf, C.POINTER(Buffer)).contents.device.type


def move(t, dev):
    """t on dev with the same view (shape, strides, offset) over a copy of
    its whole buffer."""
    tc = t.ptr.contents
    buf = C.cast(tc.buf, C.POINTER(Buffer)).contents
    es = lib.sp_dtype_size(tc.dtype)
    nel = buf.nbytes // es
    one = (C.c_int64 * 1)(1)
    flat = T(lib.sp_tensor_view_of(tc.buf, tc.dtype, 1, (C.c_int64 * 1)(nel), one, 0))
    out = TP()
    _check(lib.sp_tensor_to(flat.ptr, dev, C.byref(out)))
    moved = T(out)
    nd = tc.ndim
    shape = (C.c_int64 * max(1, nd))(*tc.shape[:nd])
    strides = (C.c_int64 * max(1, nd))(*tc.strides[:nd])
    return T(lib.sp_tensor_view_of(moved.ptr.contents.buf, tc.dtype, nd, shape, strides,
                                   tc.offset))


def to_cpu(t):
    out = TP()
    _check(lib.sp_tensor_to(t.ptr, CPU, C.byref(out)))
    return T(out)


def bits(t):
    """The raw bytes of a CPU tensor's values (C order); every NaN reads as
    the one canonical NaN (payloads and signs of NaN are not compared:
    libdevice's fmod returns a different NaN than glibc's)."""
    a = t.numpy()
    if a.dtype.kind == "f":
        a = np.where(np.isnan(a), np.float32("nan") if a.dtype != np.float64 else np.nan, a)
        a = a.astype(t.numpy().dtype)
    return a.tobytes() if t.dtype != "bfloat16" else sp.bf16_bits(a).tobytes()


EXACT_NO_INPUT = {"arange", "full", "zeros", "ones", "uniform", "bernoulli", "randint"}


def gpu_call(op, inputs, attrs=None):
    if not inputs:
        return _gpu_call_no_inputs(op, attrs)
    dev_in = [move(t, GPU) for t in inputs]
    outs = sp.call(op, dev_in, attrs)
    for o in outs:
        assert device_of(o) == 1, f"{op}: output not on the GPU"
    if op in UPDATES_INPUTS or lib.sp_op_is_inplace(lib.sp_op_find(op.encode())):
        for cpu_t, dev_t in zip(inputs, dev_in):
            _copy_buffer_back(cpu_t, dev_t)
    return [to_cpu(o) for o in outs]


# primitives with outputs that also update some inputs in place
UPDATES_INPUTS = {"batch_norm"}


def _copy_buffer_back(cpu_t, dev_t):
    """The whole device buffer of dev_t back into cpu_t's buffer (the two
    views have the same layout, so this carries any in-place update)."""
    cb = C.cast(cpu_t.ptr.contents.buf, C.POINTER(Buffer)).contents
    tc = dev_t.ptr.contents
    es = lib.sp_dtype_size(tc.dtype)
    one = (C.c_int64 * 1)(1)
    flat = T(lib.sp_tensor_view_of(tc.buf, tc.dtype, 1, (C.c_int64 * 1)(cb.nbytes // es), one, 0))
    back = to_cpu(flat)
    C.memmove(cb.data, lib.sp_tensor_data(back.ptr), cb.nbytes)


def _gpu_call_no_inputs(op, attrs):
    cpu_outs = sp.call(op, [], attrs)  # shapes, dtypes, errors: the CPU's
    dev = []
    for o in cpu_outs:
        tc = o.ptr.contents
        shape = (C.c_int64 * max(1, tc.ndim))(*tc.shape[:tc.ndim])
        dev.append(T(lib.sp_tensor_new(tc.dtype, tc.ndim, shape, GPU)))
    a, keep = make_attrs(attrs)
    arr = (TP * max(1, len(dev)))(*[t.ptr for t in dev])
    lib.sp_clear_error()
    _check(lib.sp_op_call_into(lib.sp_op_find(op.encode()), 0, None, C.byref(a), len(dev), arr))
    del keep
    got = [to_cpu(t) for t in dev]
    seeded = attrs and "seed" in attrs
    for g, c in zip(got, cpu_outs):
        if op in EXACT_NO_INPUT and (seeded or op not in ("uniform", "bernoulli", "randint")):
            assert bits(g) == bits(c), f"{op} {g.dtype}: GPU values differ from the CPU's"
        elif op == "normal" and seeded:
            np.testing.assert_allclose(g.numpy().astype(np.float64),
                                       c.numpy().astype(np.float64),
                                       rtol=test_ops.RTOL[g.dtype], atol=1e-12)
    return got


@pytest.fixture
def on_gpu(monkeypatch):
    monkeypatch.setattr(test_ops, "call", gpu_call)
    yield


def gpu_params():
    """test_ops' parameters; SPORE_GPU_OPS=a,b,... keeps those primitives only
    (gpu_check.sh runs each primitive in its own process, so one kernel
    that faults cannot take the device away from the rest)."""
    only = os.environ.get("SPORE_GPU_OPS")
    keep = set(only.split(",")) if only else None
    return [p for p in test_ops.params() if keep is None or p.values[0] in keep]


@pytest.mark.parametrize("op,dtype,layout", gpu_params())
def test_primitive_gpu(on_gpu, op, dtype, layout):
    gc.collect()
    cpu_before, gpu_before = lib.sp_cpu_live_bytes(), _cuda.cuda_live_bytes()
    test_ops.CASES[op](op, dtype, layout)
    gc.collect()
    assert lib.sp_cpu_live_bytes() <= cpu_before, "the primitive leaked CPU memory"
    assert _cuda.cuda_live_bytes() <= gpu_before, "the primitive leaked GPU memory"


# ---- exact parity and device behaviour --------------------------------

def _same_on_both(op, inputs, attrs=None):
    cpu = sp.call(op, inputs, attrs)
    gpu = gpu_call(op, inputs, attrs)
    return cpu, gpu


@pytest.mark.parametrize("src", sp.DTYPES)
def test_cast_bits_match_cpu(src):
    r = np.random.default_rng(5)
    if src in sp.FLOATS:
        v = np.concatenate([r.uniform(-300, 300, 64), r.uniform(-3e9, 3e9, 16),
                            [np.nan, np.inf, -np.inf, 0.0, -0.0, 0.5, -1.5, 2.5, 65520.0, 1e-8]])
    elif src == "bool":
        v = r.integers(0, 2, 90).astype(bool)
    else:
        info = np.iinfo(sp.NP_OF[src])
        v = r.integers(info.min, info.max, 90, endpoint=True).astype(sp.NP_OF[src])
    x = sp.tensor(v, src)
    for dst in sp.DTYPES:
        (c,), (g,) = _same_on_both("cast", [x], {"dtype": sp.DType(dst)})
        assert bits(c) == bits(g), f"cast {src} -> {dst}"


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "minimum", "floor_div",
                                "mod", "pow", "less", "equal", "logical_and"])
@pytest.mark.parametrize("dt", ["int8", "uint8", "int32", "int64", "float32", "float64"])
def test_binary_bits_match_cpu(op, dt):
    r = np.random.default_rng(7)
    if dt in sp.FLOATS:
        a, b = r.uniform(-5, 5, (6, 7)), r.uniform(-5, 5, (7,))
        b[0] = 0.0
        if op == "pow":
            a = np.abs(a)
    else:
        info = np.iinfo(sp.NP_OF[dt])
        a = r.integers(info.min, info.max, (6, 7), endpoint=True).astype(sp.NP_OF[dt])
        b = r.integers(-3 if info.min < 0 else 0, 4, (7,)).astype(sp.NP_OF[dt])
        b[0] = 0
        if info.min < 0:
            b[1] = -1
            a[0, 1] = info.min
    xa, xb = sp.tensor(a, dt), sp.tensor(b, dt)
    (c,), (g,) = _same_on_both(op, [xa, xb])
    if op in ("pow",) and dt in sp.FLOATS:
        np.testing.assert_allclose(g.numpy(), c.numpy(), rtol=1e-6 if dt == "float32" else 1e-14)
    else:
        assert bits(c) == bits(g), f"{op} {dt}"


@pytest.mark.parametrize("op", ["uniform", "bernoulli", "randint", "normal"])
@pytest.mark.parametrize("dt", ["float32", "float64", "float16", "bfloat16", "int32"])
def test_random_matches_cpu(op, dt):
    if op in ("uniform", "normal") and dt == "int32":
        pytest.skip("float-only primitive")
    attrs = {"shape": [1001], "dtype": sp.DType(dt), "seed": 1234567, "offset": 99}
    if op == "randint":
        attrs.update(low=-50, high=1000)
    gpu_call(op, [], attrs)  # compares with the CPU's values inside


def test_index_error_message_matches_cpu():
    x = sp.tensor(np.arange(10.0).reshape(5, 2), "float32")
    idx = sp.tensor(np.array([1, 7, -9, 2]), "int64")
    with pytest.raises(SporeError) as ce:
        sp.call("gather", [x, idx])
    with pytest.raises(SporeError) as ge:
        gpu_call("gather", [x, idx])
    assert ce.value.msg == ge.value.msg == "gather: index 7 out of range for axis 0 of size 5"
    # the device is usable afterwards and the flag was cleared
    (y,) = gpu_call("gather", [x, sp.tensor(np.array([4, -1]), "int32")])
    np.testing.assert_array_equal(y.numpy(), [[8, 9], [8, 9]])


def test_tensor_to_round_trip_and_views():
    v = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = sp.tensor(v, "float32", "transposed")
    out = TP()
    _check(lib.sp_tensor_to(t.ptr, GPU, C.byref(out)))
    g = T(out)
    assert device_of(g) == 1 and g.shape == (2, 3, 4)
    same = TP()
    _check(lib.sp_tensor_to(g.ptr, GPU, C.byref(same)))  # same device: the tensor itself
    assert C.addressof(same.contents) == C.addressof(g.ptr.contents)
    lib.sp_tensor_release(same)
    np.testing.assert_array_equal(to_cpu(g).numpy(), v)
    # a strided GPU view comes back through the reshape kernel
    gv = move(sp.tensor(v, "float32", "strided"), GPU)
    np.testing.assert_array_equal(to_cpu(gv).numpy(), v)


def test_gpu_memory_is_reused_and_returned():
    gc.collect()
    before = _cuda.cuda_live_bytes()
    x = move(sp.tensor(np.ones((256, 1024)), "float32"), GPU)
    for _ in range(20):
        (y,) = sp.call("add", [x, x])
        del y
    del x
    gc.collect()
    assert _cuda.cuda_live_bytes() == before


@pytest.mark.parametrize("dt", ["float32", "float64", "int32", "bfloat16"])
def test_big_reductions(dt):
    """Shapes large enough for the chunked paths (partials combined by a
    second kernel) in both work shapes, against numpy and the CPU."""
    r = np.random.default_rng(11)
    for shape, axes in [((1 << 20,), None), ((3, 200000), [1]), ((4096, 700), [0]),
                        ((300, 5000), [0]), ((64, 64, 64), [0, 2])]:
        v = r.integers(-50, 50, shape) if dt == "int32" else r.uniform(-1, 1, shape)
        x = sp.tensor(v, dt)
        attrs = {"axes": axes} if axes else {}
        for op in ("sum", "max", "argmax") if axes is None else ("sum", "min"):
            a = dict(attrs) if op != "argmax" else {}
            (c,), (g,) = _same_on_both(op, [x], a)
            if op == "sum" and dt != "int32":
                ref = sp.round_to(v, dt).astype(np.float64).sum(axis=tuple(axes) if axes else None)
                np.testing.assert_allclose(g.numpy().astype(np.float64), ref,
                                           rtol=test_ops.RTOL[dt] * 4, atol=1e-9 * v.size)
                np.testing.assert_allclose(g.numpy(), c.numpy(), rtol=test_ops.RTOL[dt] * 2)
            else:
                assert bits(c) == bits(g), f"{op} {dt} {shape} {axes}"
