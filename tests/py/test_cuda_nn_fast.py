"""The CUDA fast kernels of softmax, log_softmax, cross-entropy (forward and
backward), layer norm, batch norm (forward and backward) and transpose, at
the sizes that pick each of their paths (a warp per row; a block per row
with the row cached in shared memory; a block re-reading rows too long for
the cache; 16-byte vectors or element by element; batch norm's split
channel reductions; transpose's shared-memory tiles), against float64 numpy
references with test_ops.py's tolerances.  The row kernels promise the same
bits whether or not their data is 16-byte aligned: an input placed one
element into its buffer must give exactly the aligned call's bits.
Skips with the reason where there is no GPU (it imports test_ops_gpu,
which skips itself)."""
import ctypes as C

import numpy as np
import pytest

import spore_ct as sp
import test_ops
from test_ops_gpu import GPU, bits, gpu_call, lib, move, to_cpu

HALVES = ["float32", "bfloat16", "float16"]
RTOL = test_ops.RTOL

# rows of K: warp per row (K <= 256 chunks), block cached, block uncached
SOFTMAX_SHAPES = [(9, 5), (33, 40), (17, 1000), (6, 1023), (5, 2048), (4, 4096), (3, 4097),
                  (2, 12288), (2, 12289), (2, 20000)]


def gpu_at_offset(values, dtype, off):
    """A contiguous GPU tensor holding `values`, starting `off` elements
    into its buffer (so its data is not 16-byte aligned for off % 4 != 0)."""
    v = np.asarray(values)
    flat = np.concatenate([np.zeros(off), v.ravel(), np.zeros(3)])
    g = move(sp.tensor(flat, dtype), GPU)
    nd = v.ndim
    st, acc = [], 1
    for d in reversed(v.shape):
        st.insert(0, acc)
        acc *= d
    shape = (C.c_int64 * nd)(*v.shape)
    strides = (C.c_int64 * nd)(*st)
    return sp.T(lib.sp_tensor_view_of(g.ptr.contents.buf, sp.DT[dtype], nd, shape, strides, off))


@pytest.mark.parametrize("dt", HALVES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_rows(op, dt):
    for shape in SOFTMAX_SHAPES:
        r = np.random.default_rng(shape[1])
        v = r.uniform(-6, 6, shape)
        x = test_ops.ref_in(v, dt)
        (y,) = gpu_call(op, [sp.tensor(v, dt)])
        want = test_ops.np_softmax(x, -1)
        if op == "log_softmax":
            want = np.log(want)
        test_ops.check(y, want, dt, rtol=RTOL[dt] * 4, atol=RTOL[dt] * 4)
        (y1,) = sp.call(op, [gpu_at_offset(v, dt, 1)])
        assert bits(to_cpu(y1)) == bits(y), (op, dt, shape, "misaligned input changed the bits")


def test_softmax_special_values():
    v = np.array([[0.0, np.inf, 1.0, 2.0], [-np.inf] * 4, [np.nan, 1.0, 2.0, 3.0],
                  [1e30, -1e30, 0.0, 5.0]])
    for op in ("softmax", "log_softmax"):
        c = sp.call(op, [sp.tensor(v, "float32")])[0].numpy()
        (g,) = gpu_call(op, [sp.tensor(v, "float32")])
        np.testing.assert_array_equal(np.isnan(g.numpy()), np.isnan(c), err_msg=op)
        ok = ~np.isnan(c)
        np.testing.assert_allclose(g.numpy()[ok], c[ok], rtol=1e-6, atol=1e-30, err_msg=op)


@pytest.mark.parametrize("dt", HALVES)
def test_xent_rows(dt):
    for n, c in [(300, 1000), (7, 5000), (3, 20000), (65, 7)]:
        for red in ("mean", "sum", "none"):
            r = np.random.default_rng(n * c)
            v = r.uniform(-4, 4, (n, c))
            lab = r.integers(0, c, n).astype(np.int64)
            x = test_ops.ref_in(v, dt)
            (y,) = gpu_call("sparse_softmax_cross_entropy", [sp.tensor(v, dt), sp.tensor(lab, "int64")],
                            {"reduction": red})
            test_ops.check(y, test_ops.xent_ref(x, lab, red), dt, rtol=RTOL[dt] * 4,
                           atol=RTOL[dt] * 4)
            dl = r.uniform(0.5, 2, () if red != "none" else (n,))
            (dx,) = gpu_call("sparse_softmax_cross_entropy_backward",
                             [sp.tensor(v, dt), sp.tensor(lab, "int64"), sp.tensor(dl, dt)],
                             {"reduction": red})
            g = test_ops.np_softmax(x, 1)
            g[np.arange(n), lab] -= 1
            d = test_ops.ref_in(dl, dt)
            want = g * (d[:, None] if red == "none" else d) / (n if red == "mean" else 1)
            test_ops.check(dx, want, dt, rtol=RTOL[dt] * 4, atol=RTOL[dt] * 4)


def test_xent_bad_label_long_rows():
    v = np.random.default_rng(1).uniform(-1, 1, (4, 5000))
    lab = sp.tensor(np.array([0, 1, 5000, 2]), "int64")
    msgs = []
    for call in (sp.call, gpu_call):
        with pytest.raises(sp.SporeError) as e:
            call("sparse_softmax_cross_entropy", [sp.tensor(v, "float32"), lab])
        msgs.append(e.value.msg)
    assert msgs[0] == msgs[1] and "label 5000 at position 2" in msgs[0], msgs


@pytest.mark.parametrize("dt", HALVES)
def test_layer_norm_rows(dt):
    for shape, axis in [((64, 4096), -1), ((5, 1000), -1), ((3, 12289), -1), ((2, 3, 40), 1),
                        ((7, 13), -1), ((2, 20000), -1)]:
        r = np.random.default_rng(shape[-1])
        ax = axis % len(shape)
        v = r.uniform(-2, 2, shape) + 3.0
        gm, bt = r.uniform(0.5, 1.5, shape[ax:]), r.uniform(-1, 1, shape[ax:])
        ins = [sp.tensor(v, dt), sp.tensor(gm, dt), sp.tensor(bt, dt)]
        y, mean, rstd = gpu_call("layer_norm", ins, {"axis": axis, "epsilon": 1e-5})
        wy, wm, wr = test_ops.ln_ref(test_ops.ref_in(v, dt), test_ops.ref_in(gm, dt),
                                     test_ops.ref_in(bt, dt), ax, 1e-5)
        tol = RTOL[dt] * 4
        test_ops.check(y, wy, dt, rtol=tol, atol=tol)
        test_ops.check(mean, wm, dt, test_ops.stat_dtype(dt), rtol=tol, atol=tol)
        test_ops.check(rstd, wr, dt, test_ops.stat_dtype(dt), rtol=tol, atol=tol)
        g1 = [gpu_at_offset(v, dt, 1), move(ins[1], GPU), move(ins[2], GPU)]
        y1 = sp.call("layer_norm", g1, {"axis": axis, "epsilon": 1e-5})
        for a, b in zip(y1, (y, mean, rstd)):
            assert bits(to_cpu(a)) == bits(b), (dt, shape, "misaligned input changed the bits")


BN_SHAPES = [(8, 16, 28, 28), (4, 3, 5, 7), (64, 10), (2, 3, 70000), (3, 2, 1, 6)]


def test_batch_norm_split():
    for shape in BN_SHAPES:
        for training in (1, 0):
            r = np.random.default_rng(len(shape) * 7 + training)
            C_ = shape[1]
            v = r.uniform(-2, 2, shape) + 5.0
            gm, bt = r.uniform(0.5, 1.5, C_), r.uniform(-1, 1, C_)
            rm, rv = r.uniform(-0.5, 0.5, C_), r.uniform(0.5, 2, C_)
            t_rm, t_rv = sp.tensor(rm, "float32"), sp.tensor(rv, "float32")
            y, sm, sr = gpu_call("batch_norm", [sp.tensor(v, "float32"), sp.tensor(gm, "float32"),
                                                sp.tensor(bt, "float32"), t_rm, t_rv],
                                 {"training": training, "momentum": 0.1, "epsilon": 1e-5})
            x = test_ops.ref_in(v, "float32")
            axes = (0,) + tuple(range(2, len(shape)))
            bs = (1, C_) + (1,) * (len(shape) - 2)
            tol = RTOL["float32"] * 8
            if training:
                mean, var = x.mean(axis=axes), x.var(axis=axes)
                n = x.size // C_
                test_ops.check(t_rm, 0.9 * rm + 0.1 * mean, "float32", rtol=1e-5)
                test_ops.check(t_rv, 0.9 * rv + 0.1 * var * n / (n - 1), "float32", rtol=1e-5)
            else:
                mean, var = test_ops.ref_in(rm, "float32"), test_ops.ref_in(rv, "float32")
            rstd = 1 / np.sqrt(var + 1e-5)
            want = (x - mean.reshape(bs)) * rstd.reshape(bs) * gm.reshape(bs) + bt.reshape(bs)
            test_ops.check(y, want, "float32", rtol=tol, atol=tol)
            test_ops.check(sm, mean, "float32", rtol=tol, atol=tol)
            test_ops.check(sr, rstd, "float32", rtol=tol, atol=tol)


def test_batch_norm_backward_split():
    for shape in BN_SHAPES:
        for training in (1, 0):
            r = np.random.default_rng(len(shape) * 11 + training)
            C_ = shape[1]
            v, dyv = r.uniform(-2, 2, shape), r.uniform(-1, 1, shape)
            gm = r.uniform(0.5, 1.5, C_)
            x, dy = test_ops.ref_in(v, "float32"), test_ops.ref_in(dyv, "float32")
            axes = (0,) + tuple(range(2, len(shape)))
            bs = (1, C_) + (1,) * (len(shape) - 2)
            mean = test_ops.ref_in(x.mean(axis=axes), "float32")
            rstd = test_ops.ref_in(1 / np.sqrt(x.var(axis=axes) + 1e-5), "float32")
            dx, dg, db = gpu_call("batch_norm_backward",
                                  [sp.tensor(dyv, "float32"), sp.tensor(v, "float32"),
                                   sp.tensor(gm, "float32"), sp.tensor(mean, "float32"),
                                   sp.tensor(rstd, "float32")], {"training": training})
            xhat = (x - mean.reshape(bs)) * rstd.reshape(bs)
            if training:
                wdx, _ = test_ops.norm_bwd(dy, x, gm.reshape(bs), mean.reshape(bs),
                                           rstd.reshape(bs), axes, None)
            else:
                wdx = dy * gm.reshape(bs) * rstd.reshape(bs)
            tol = RTOL["float32"] * 8
            n = x.size // C_
            test_ops.check(dx, wdx, "float32", rtol=tol, atol=tol)
            test_ops.check(dg, (dy * xhat).sum(axis=axes), "float32", rtol=tol,
                           atol=tol * 10 * max(1, np.sqrt(n / 100)))
            test_ops.check(db, dy.sum(axis=axes), "float32", rtol=tol,
                           atol=tol * 10 * max(1, np.sqrt(n / 100)))


@pytest.mark.parametrize("dt", ["float32", "bfloat16", "float64", "int8", "bool"])
def test_transpose_tiled(dt):
    cases = [((100, 77), None), ((3, 64, 50), [0, 2, 1]), ((40, 3, 50), [2, 1, 0]),
             ((17, 16), None), ((2, 33, 5, 40), [3, 1, 0, 2]), ((20, 30), [0, 1])]
    for shape, perm in cases:
        r = np.random.default_rng(len(shape))
        v = r.uniform(-50, 50, shape)
        want = np.transpose(sp.round_to(v, dt), perm)
        attrs = {} if perm is None else {"perm": perm}
        for layout in ("contig", "transposed"):
            t = sp.tensor(v, dt, layout)
            (g,) = gpu_call("transpose", [t], attrs)
            c = sp.call("transpose", [t], attrs)[0]
            assert g.numpy().shape == want.shape
            assert bits(g) == bits(c), (dt, shape, perm, layout)
            np.testing.assert_array_equal(g.numpy(), want.astype(g.numpy().dtype))
