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


# Layer norm's register kernels against the CPU kernel on identical inputs.
# The shapes pick every path: a warp per row (D <= 128 chunks), blocks of
# 64..512 threads with 1..8 chunks per lane, 16-byte and element-wise
# loads (D not a multiple of the chunk), a group walking many rows (M past
# the number of groups), rows too long for the registers (rows.cuh's kernel
# forward; the plain kernels backward), an empty batch.
LN_FWD_SHAPES = [(64, 768), (32, 1024), (6, 4096), (9, 5), (7, 33), (300, 64), (5, 1001),
                 (3, 8192), (2, 12289), (2, 40000), (2, 3, 40)]
LN_BWD_SHAPES = [(64, 768), (32, 1024), (6, 4096), (9, 5), (7, 33), (10000, 32), (5000, 600),
                 (5, 1001), (3, 8192), (2, 8200), (2, 3, 40), (0, 16)]
LN_DTYPES = ["float32", "bfloat16", "float16", "float64"]
MANTISSA = {"bfloat16": 7, "float16": 10}


def close_to_cpu(g, c, dt, what):
    """g (GPU) against c (CPU kernel): float32 to 1e-5 relative, float64 to
    1e-12, half types to one unit of their last place (both round a float
    result once); an absolute slack of the same relative size times the
    largest value covers entries that cancel to near zero."""
    g, c = g.numpy().astype(np.float64), c.numpy().astype(np.float64)
    assert g.shape == c.shape, what
    if c.size == 0:
        return
    big = np.abs(c).max()
    if dt in MANTISSA:
        ulp = 2.0 ** (np.floor(np.log2(np.maximum(np.abs(c), 1e-30))) - MANTISSA[dt])
        bad = np.abs(g - c) > ulp + 1e-5 * big
        assert not bad.any(), (what, dt, g[bad][:5], c[bad][:5])
    else:
        tol = 1e-12 if dt == "float64" else 1e-5
        np.testing.assert_allclose(g, c, rtol=tol, atol=tol * big, err_msg=f"{what} {dt}")


def ln_inputs(shape, dt, seed):
    r = np.random.default_rng(seed)
    D = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
    v = r.uniform(-2, 2, shape) + 1.5
    gm, bt = r.uniform(0.5, 1.5, shape[1:]), r.uniform(-1, 1, shape[1:])
    dyv = r.uniform(-1, 1, shape)
    return v, gm, bt, dyv, D


@pytest.mark.parametrize("dt", LN_DTYPES)
def test_layer_norm_matches_cpu(dt):
    for shape in LN_FWD_SHAPES:
        v, gm, bt, _, _ = ln_inputs(shape, dt, shape[-1] + len(shape))
        ins = [sp.tensor(v, dt), sp.tensor(gm, dt), sp.tensor(bt, dt)]
        attrs = {"axis": 1, "epsilon": 1e-5}
        cpu = sp.call("layer_norm", ins, attrs)
        gpu = gpu_call("layer_norm", ins, attrs)
        for name, g, c in zip(("y", "mean", "rstd"), gpu, cpu):
            close_to_cpu(g, c, dt if name == "y" else test_ops.stat_dtype(dt), (name, shape))
        g1 = [gpu_at_offset(v, dt, 1), move(ins[1], GPU), move(ins[2], GPU)]
        y1 = sp.call("layer_norm", g1, attrs)
        for a, b in zip(y1, gpu):
            assert bits(to_cpu(a)) == bits(b), (dt, shape, "misaligned input changed the bits")


@pytest.mark.parametrize("dt", LN_DTYPES)
def test_layer_norm_backward_matches_cpu(dt):
    for shape in LN_BWD_SHAPES:
        v, gm, bt, dyv, D = ln_inputs(shape, dt, 7 * shape[-1] + shape[0])
        attrs = {"axis": 1, "epsilon": 1e-5}
        x, g = sp.tensor(v, dt), sp.tensor(gm, dt)
        _, mean, rstd = sp.call("layer_norm", [x, g, sp.tensor(bt, dt)], attrs)
        ins = [sp.tensor(dyv, dt), x, g, mean, rstd]
        cpu = sp.call("layer_norm_backward", ins, {"axis": 1})
        gpu = gpu_call("layer_norm_backward", ins, {"axis": 1})
        for name, a, b in zip(("dx", "dgamma", "dbeta"), gpu, cpu):
            close_to_cpu(a, b, dt, (name, shape))
        if shape[0] == 0:
            assert not gpu[1].numpy().any() and not gpu[2].numpy().any()
            continue
        # the same bits on a second run (no atomics) and from misaligned data
        again = gpu_call("layer_norm_backward", ins, {"axis": 1})
        mis = sp.call("layer_norm_backward",
                      [gpu_at_offset(dyv, dt, 1), gpu_at_offset(v, dt, 3)]
                      + [move(t, GPU) for t in ins[2:]], {"axis": 1})
        for name, a, b, c in zip(("dx", "dgamma", "dbeta"), gpu, again, mis):
            assert bits(a) == bits(b), (dt, shape, name, "second run changed the bits")
            assert bits(a) == bits(to_cpu(c)), (dt, shape, name, "misaligned input changed bits")


def test_layer_norm_backward_against_numpy():
    """The fused backward's formulas themselves, on a float64 reference."""
    for shape in [(300, 768), (40, 4096), (7, 1001)]:
        v, gm, _, dyv, D = ln_inputs(shape, "float32", shape[1])
        x, dy = test_ops.ref_in(v, "float32"), test_ops.ref_in(dyv, "float32")
        mean = test_ops.ref_in(x.mean(axis=1), "float32")
        rstd = test_ops.ref_in(1 / np.sqrt(x.var(axis=1) + 1e-5), "float32")
        g64 = test_ops.ref_in(gm, "float32")
        dx, dg, db = gpu_call("layer_norm_backward",
                              [sp.tensor(dyv, "float32"), sp.tensor(v, "float32"),
                               sp.tensor(gm, "float32"), sp.tensor(mean, "float32"),
                               sp.tensor(rstd, "float32")], {"axis": 1})
        wdx, xhat = test_ops.norm_bwd(dy, x, g64, mean[:, None], rstd[:, None], (1,), None)
        tol = RTOL["float32"] * 8
        test_ops.check(dx, wdx, "float32", rtol=tol, atol=tol)
        test_ops.check(dg, (dy * xhat).sum(axis=0), "float32", rtol=tol,
                       atol=tol * 10 * np.sqrt(shape[0]))
        test_ops.check(db, dy.sum(axis=0), "float32", rtol=tol, atol=tol * 10 * np.sqrt(shape[0]))
