"""The CUDA fast paths (vectorized elementwise, row/scalar broadcast, vector
cast, shuffle reductions, row gather) against the CPU, bit for bit where the
math allows.  Skips with the reason where there is no GPU (it imports
test_ops_gpu, which skips itself)."""
import numpy as np
import pytest

import spore_ct as sp
import test_ops
from test_ops_gpu import _same_on_both, bits

HALVES = ["float32", "bfloat16", "float16"]


@pytest.mark.parametrize("dt", HALVES)
@pytest.mark.parametrize("n", [8, 13, 1000, 4099])
def test_binary_unary_fast(dt, n):
    r = np.random.default_rng(n)
    a, b = r.uniform(-3, 3, n), r.uniform(0.5, 3, n)
    xa, xb = sp.tensor(a, dt), sp.tensor(b, dt)
    for op in ("add", "sub", "mul", "div", "maximum", "minimum"):
        c, g = _same_on_both(op, [xa, xb])
        assert bits(c[0]) == bits(g[0]), (op, dt, n)
        c, g = _same_on_both(op, [xa, sp.tensor(np.array([1.75]), dt)])
        assert bits(c[0]) == bits(g[0]), (op, dt, n, "scalar")
    for op in ("neg", "abs", "sqrt", "relu", "square", "floor"):
        c, g = _same_on_both(op, [xb])
        assert bits(c[0]) == bits(g[0]), (op, dt, n)
    for op in ("exp", "tanh", "sigmoid"):
        c, g = _same_on_both(op, [xa])
        np.testing.assert_allclose(g[0].numpy().astype(np.float64),
                                   c[0].numpy().astype(np.float64),
                                   rtol=test_ops.RTOL[dt] * 2, atol=1e-6)


@pytest.mark.parametrize("dt", HALVES)
@pytest.mark.parametrize("shape", [(33, 64), (5, 24), (3, 8), (7, 13)])
def test_row_broadcast_fast(dt, shape):
    r = np.random.default_rng(1)
    a, b = r.uniform(-3, 3, shape), r.uniform(0.5, 3, shape[1:])
    for op in ("mul", "sub", "div", "add"):
        c, g = _same_on_both(op, [sp.tensor(a, dt), sp.tensor(b, dt)])
        assert bits(c[0]) == bits(g[0]), (op, dt, shape)


@pytest.mark.parametrize("src", HALVES)
def test_cast_fast(src):
    r = np.random.default_rng(2)
    v = np.concatenate([r.uniform(-300, 300, 997), [np.nan, np.inf, -np.inf, 0.0, -0.0, 65520.0,
                                                    1e-8, 3e38]])
    x = sp.tensor(v, src)
    for dst in HALVES + ["float64", "int32"]:
        c, g = _same_on_both("cast", [x], {"dtype": sp.DType(dst)})
        assert bits(c[0]) == bits(g[0]), (src, dst)


@pytest.mark.parametrize("dt", HALVES)
def test_reduce_fast(dt):
    r = np.random.default_rng(3)
    cases = [((1 << 20,), None), ((37, 1000), [-1]), ((1000, 37), [0]), ((3, 5, 4000), [2]),
             ((4000, 3), [0]), ((100, 70000), [1]), ((20, 37), [1]), ((9,), None)]
    for shape, axes in cases:
        v = r.uniform(-1, 1, shape)
        for layout in ("contig", "strided"):
            x = sp.tensor(v, dt, layout)
            attrs = {"axes": axes} if axes else {}
            for op in ("sum", "mean", "max", "min"):
                c, g = _same_on_both(op, [x], dict(attrs))
                if op in ("max", "min"):
                    assert bits(c[0]) == bits(g[0]), (op, dt, shape, axes, layout)
                else:
                    np.testing.assert_allclose(g[0].numpy().astype(np.float64),
                                               c[0].numpy().astype(np.float64),
                                               rtol=test_ops.RTOL[dt] * 2, atol=1e-6)
                    c2, g2 = _same_on_both(op, [x], dict(attrs))  # deterministic
                    assert bits(g[0]) == bits(g2[0])
    v = r.uniform(-1, 1, (64, 300))
    v[5, 17] = np.nan
    x = sp.tensor(v, dt)
    for op in ("max", "min", "sum"):
        for axes in ([1], [0], None):
            c, g = _same_on_both(op, [x], {"axes": axes} if axes else {})
            assert bits(c[0]) == bits(g[0]) or op == "sum", (op, axes)
            assert np.isnan(g[0].numpy()).sum() == np.isnan(c[0].numpy()).sum()


@pytest.mark.parametrize("dt", ["float32", "bfloat16", "int64", "int8"])
def test_gather_fast(dt):
    r = np.random.default_rng(4)
    for shape, ax in [((100, 64), 0), ((10, 4, 8), 1), ((50, 16), 0), ((7, 3), 0), ((6, 32), 1),
                      ((50, 300), 0), ((20, 1024), 0), ((4, 6, 256), 1)]:
        v = r.uniform(-9, 9, shape)
        idx = r.integers(-shape[ax], shape[ax], (11,))
        for layout in ("contig", "strided"):
            x = sp.tensor(v, dt, layout)
            c, g = _same_on_both("gather", [x, sp.tensor(idx, "int64")], {"axis": ax})
            assert bits(c[0]) == bits(g[0]), (dt, shape, ax, layout)


# ---- outputs that start inside their buffer (sp_op_call_into an arena slice) ----

from test_ops_gpu import GPU, lib, move, to_cpu, _check  # noqa: E402
import ctypes as C  # noqa: E402

OFFSET_CASES = [
    ("matmul", [(8, 16), (16, 12)], {}),
    ("layer_norm", [(6, 32), (32,), (32,)], {"axis": -1}),
    ("softmax", [(5, 40)], {}),
    ("log_softmax", [(5, 40)], {}),
    ("sum", [(7, 9)], {"axes": [1]}),
    ("add", [(64,), (64,)], {}),
    ("max_pool2d", [(1, 2, 6, 6)], {"kernel_size": [2, 2]}),
    ("conv2d", [(1, 3, 8, 8), (4, 3, 3, 3)], {}),
]


@pytest.mark.parametrize("op,shapes,attrs", OFFSET_CASES, ids=[c[0] for c in OFFSET_CASES])
def test_output_at_an_offset(op, shapes, attrs):
    """A kernel writing an output that is a view at a nonzero offset into a
    larger buffer (what the lowered executor's memory plan hands out) gives
    the same values as a fresh output, and leaves the bytes before and after
    the view untouched."""
    r = np.random.default_rng(7)
    ins = [sp.tensor(r.uniform(-2, 2, s), "float32") for s in shapes]
    attrs = {k: (sp.DType(v) if k == "dtype" else v) for k, v in attrs.items()}
    fresh = sp.call(op, [move(x, GPU) for x in ins], attrs)
    want = to_cpu(fresh[0]).numpy()
    n = want.size
    pad = 37
    big = sp.tensor(np.full(n + 2 * pad, 123.0), "float32")
    big_gpu = move(big, GPU)
    shape = (C.c_int64 * max(1, want.ndim))(*want.shape)
    strides = []
    acc = 1
    for d in reversed(want.shape):
        strides.insert(0, acc)
        acc *= d
    st = (C.c_int64 * max(1, want.ndim))(*strides)
    view = sp.T(lib.sp_tensor_view_of(big_gpu.ptr.contents.buf, 0, want.ndim, shape, st, pad))
    gins = [move(x, GPU) for x in ins]
    a, keep = sp.make_attrs(attrs)
    arr = (sp.TP * len(gins))(*[t.ptr for t in gins])
    rest = []
    for f in fresh[1:]:  # the other outputs (layer_norm's mean, rstd): fresh
        tc = f.ptr.contents
        sh = (C.c_int64 * max(1, tc.ndim))(*tc.shape[:tc.ndim])
        rest.append(sp.T(lib.sp_tensor_new(tc.dtype, tc.ndim, sh, GPU)))
    outs = (sp.TP * len(fresh))(view.ptr, *[t.ptr for t in rest])
    _check(lib.sp_op_call_into(lib.sp_op_find(op.encode()), len(gins), arr, C.byref(a), len(fresh),
                               outs))
    del keep
    got = to_cpu(big_gpu).numpy()
    np.testing.assert_allclose(got[pad:pad + n].reshape(want.shape), want, rtol=1e-6, atol=1e-6)
    assert (got[:pad] == 123.0).all() and (got[pad + n:] == 123.0).all()


# ---- the LeNet step's backward kernels (max-pool backward over tiled windows,
# ---- per-channel bias sums, small-filter weight gradients) ----

TILED_POOL = [
    ((64, 6, 28, 28), {"kernel_size": [2, 2], "stride": [2, 2]}),
    ((3, 4, 7, 9), {"kernel_size": [2, 2]}),                    # uncovered last row/column
    ((2, 3, 7, 7), {"kernel_size": [2, 2], "stride": [2, 2], "ceil_mode": 1}),  # partial windows
    ((2, 2, 10, 11), {"kernel_size": [3, 3], "stride": [3, 3], "padding": [1]}),
    ((2, 2, 9, 8), {"kernel_size": [3, 2], "stride": [3, 2]}),
    ((1, 2, 6, 6), {"kernel_size": [2, 2], "stride": [1, 1]}),  # overlapping: the generic path
]


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(TILED_POOL)))
@pytest.mark.parametrize("layout", ["contig", "transposed"])
def test_max_pool_backward_tiled(dt, case, layout):
    """The one-thread-per-window max-pool backward equals the CPU (which the
    generic GPU kernel equals) bit for bit: ties (values in {0, 1}, -0.0
    against 0.0), NaN (first NaN wins, several NaN in a window), -inf, -0.0
    in dy (stored as +0.0 on every path), odd sizes."""
    xs, attrs = TILED_POOL[case]
    r = np.random.default_rng(case)
    x = r.integers(0, 2, xs).astype(np.float64)
    x.flat[::7] = -0.0
    x.flat[5::97] = np.nan
    x.flat[6::97] = np.nan
    x.flat[11::53] = -np.inf
    (y,) = sp.call("max_pool2d", [sp.tensor(x, dt)], attrs)
    ho, wo = y.numpy().shape[2:]
    dy = r.uniform(-1, 1, xs[:2] + (ho, wo))
    dy.flat[::13] = -0.0
    dy.flat[3::29] = np.nan
    c, g = _same_on_both("max_pool2d_backward", [sp.tensor(x, dt, layout), sp.tensor(dy, dt)], attrs)
    if attrs.get("stride", attrs["kernel_size"]) == attrs["kernel_size"]:
        assert bits(c[0]) == bits(g[0]), (xs, attrs, dt, layout)
    else:  # overlapping windows: the generic kernel sums a cell's shares in double
        np.testing.assert_allclose(g[0].numpy(), c[0].numpy(), rtol=1e-6)
    gz = g[0].numpy()
    assert not np.signbit(gz[gz == 0]).any()  # -0.0 in dy lands as +0.0
    # every window passes exactly one gradient (or none when empty)
    assert np.isnan(gz).sum() == np.isnan(c[0].numpy()).sum()


@pytest.mark.parametrize("dt", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape,axes", [((64, 6, 28, 28), [0, 2, 3]), ((64, 16, 10, 10), [0, 2, 3]),
                                        ((3, 5, 7, 33), [0, 2, 3]), ((2, 3, 4, 5, 40), [0, 1, 3, 4]),
                                        ((64, 120), [0]), ((64, 10), [0]), ((7, 2, 300), [0, 2])])
def test_reduce_runs(dt, shape, axes):
    """Sums over several axes whose innermost is contiguous (bias
    gradients): the run kernel against the CPU, and the same bits on a
    second run (fixed chunking and combine, no atomics)."""
    r = np.random.default_rng(len(shape))
    v = r.uniform(-1, 1, shape)
    for layout in ("contig", "strided"):
        x = sp.tensor(v, dt, layout)
        for op in ("sum", "mean", "max", "min"):
            c, g = _same_on_both(op, [x], {"axes": axes})
            if op in ("max", "min"):
                assert bits(c[0]) == bits(g[0]), (op, shape, axes, layout)
            else:
                np.testing.assert_allclose(g[0].numpy().astype(np.float64),
                                           c[0].numpy().astype(np.float64),
                                           rtol=test_ops.RTOL[dt] * 2, atol=1e-6)
                c2, g2 = _same_on_both(op, [x], {"axes": axes})
                assert bits(g[0]) == bits(g2[0]), (op, shape, axes, layout)
    v.flat[v.size // 3] = np.nan
    x = sp.tensor(v, dt)
    for op in ("max", "sum"):
        c, g = _same_on_both(op, [x], {"axes": axes})
        assert np.isnan(g[0].numpy()).sum() == np.isnan(c[0].numpy()).sum(), (op, shape)


CONV_BF = [
    ((64, 1, 28, 28), (6, 1, 5, 5), {"pad_mode": "same"}),       # LeNet conv1
    ((64, 6, 14, 14), (16, 6, 5, 5), {"pad_mode": "valid"}),      # LeNet conv2
    ((5, 4, 11, 9), (6, 2, 3, 3), {"groups": 2, "stride": [2, 1], "padding": [1]}),
    ((3, 2, 12, 12), (4, 2, 3, 3), {"dilation": [2, 2], "padding": [1, 2, 0, 1]}),  # framed
    ((2, 3, 9, 9), (5, 3, 5, 5), {"stride": [2, 2], "padding": [2]}),
    ((2, 3, 8, 8), (4, 3, 2, 2), {}),                             # cuDNN only
]


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("case", range(len(CONV_BF)))
def test_conv_backprop_filter_choice(dt, case):
    """Weight and input gradients through whichever algorithm the timed
    choice keeps (Spore's split-K kernel or a deterministic cuDNN one) match
    the CPU, and repeat bit for bit (first call times the candidates, the
    next ones reuse the cached choice)."""
    xs, ws, attrs = CONV_BF[case]
    r = np.random.default_rng(100 + case)
    x = r.uniform(-1, 1, xs)
    (y,) = sp.call("conv2d", [sp.tensor(x, "float64"), sp.tensor(r.uniform(-1, 1, ws), "float64")],
                   attrs)
    dy = r.uniform(-1, 1, y.numpy().shape)
    tol = 1e-5 if dt == "float32" else 1e-12
    a = dict(attrs, filter_shape=list(ws))
    ins = [sp.tensor(dy, dt), sp.tensor(x, dt)]
    c, g = _same_on_both("conv2d_backprop_filter", ins, a)
    want = c[0].numpy().astype(np.float64)
    np.testing.assert_allclose(g[0].numpy().astype(np.float64), want, rtol=tol,
                               atol=tol * np.abs(want).max())
    for _ in range(2):
        _, g2 = _same_on_both("conv2d_backprop_filter", ins, a)
        assert bits(g[0]) == bits(g2[0]), (xs, ws, attrs, dt)
    w = r.uniform(-1, 1, ws)
    a = dict(attrs, input_shape=list(xs))
    ins = [sp.tensor(dy, dt), sp.tensor(w, dt)]
    c, g = _same_on_both("conv2d_backprop_input", ins, a)
    want = c[0].numpy().astype(np.float64)
    np.testing.assert_allclose(g[0].numpy().astype(np.float64), want, rtol=tol,
                               atol=tol * np.abs(want).max())
    _, g2 = _same_on_both("conv2d_backprop_input", ins, a)
    assert bits(g[0]) == bits(g2[0]), (xs, ws, attrs, dt)


def test_conv_untuned_choice(monkeypatch):
    """SPORE_CONV_TUNE=0 (no timing: the first deterministic candidate,
    Spore's own kernels for small filters) gives the CPU's gradients too;
    geometries of their own, so no cached choice from the tests above."""
    monkeypatch.setenv("SPORE_CONV_TUNE", "0")
    r = np.random.default_rng(7)
    for xs, ws, attrs in [((4, 3, 13, 11), (7, 3, 5, 5), {"padding": [2]}),
                          ((3, 4, 9, 10), (6, 2, 3, 3), {"groups": 2, "stride": [2, 2]})]:
        x = r.uniform(-1, 1, xs)
        (y,) = sp.call("conv2d", [sp.tensor(x, "float64"), sp.tensor(r.uniform(-1, 1, ws), "float64")],
                       attrs)
        dy = r.uniform(-1, 1, y.numpy().shape)
        for op, ins, extra in [("conv2d_backprop_filter", [dy, x], {"filter_shape": list(ws)}),
                               ("conv2d_backprop_input", [dy, r.uniform(-1, 1, ws)],
                                {"input_shape": list(xs)})]:
            c, g = _same_on_both(op, [sp.tensor(v, "float32") for v in ins], dict(attrs, **extra))
            want = c[0].numpy().astype(np.float64)
            np.testing.assert_allclose(g[0].numpy(), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
