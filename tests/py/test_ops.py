"""Every registered primitive, forward, against a float64 numpy reference.

The list of primitives comes from the library (sp_op_count / sp_op_name), not
from this file: a primitive registered without a case here fails
test_every_primitive_has_a_case.  Each case runs for every dtype the
primitive claims (sp_op_dtypes) and for three layouts of its first input:
contiguous, a transposed (permuted) view and a strided (step 2) view.
Inputs are rounded to the dtype first and the reference computes on the
rounded values in float64 (integers: in their own dtype, as numpy does), so
the tolerance only has to cover the kernel's own rounding.
"""
import gc
import math

import numpy as np
import pytest

import spore_ct as sp
from spore_ct import DType, FLOATS, INTS, SLICE_NONE, call, tensor

RTOL = {"float64": 1e-10, "float32": 3e-6, "float16": 2e-3, "bfloat16": 1.6e-2}
LAYOUTS = ["contig", "transposed", "strided"]
CASES = {}


def case(*names):
    def reg(fn):
        for n in names:
            CASES[n] = fn
        return fn
    return reg


def rng(*key):
    return np.random.default_rng(abs(hash(key)) % (2**32))


def rand_values(r, shape, dtype, lo=-3.0, hi=3.0):
    if dtype in FLOATS:
        return r.uniform(lo, hi, size=shape)
    if dtype == "bool":
        return r.integers(0, 2, size=shape).astype(bool)
    if dtype == "uint8":
        return r.integers(0, max(2, int(hi * 10)), size=shape).astype(np.uint8)
    lo_i, hi_i = int(lo * 10), int(hi * 10)
    return r.integers(lo_i, max(lo_i + 1, hi_i), size=shape).astype(sp.NP_OF[dtype])


def ref_in(v, dtype):
    """The value a reference computes on: float64 for floats, native else."""
    r = sp.round_to(v, dtype)
    return r.astype(np.float64) if dtype in FLOATS else r


def check(got, want, dtype, out_dtype=None, rtol=None, atol=None):
    """got: a Spore tensor; want: numpy values; dtype: the output's dtype."""
    out_dtype = out_dtype or dtype
    assert got.dtype == out_dtype, f"dtype {got.dtype}, wanted {out_dtype}"
    want = np.asarray(want)
    g = got.numpy()
    assert g.shape == want.shape, f"shape {g.shape}, wanted {want.shape}"
    if out_dtype in FLOATS:
        rt = RTOL[out_dtype] if rtol is None else rtol
        at = rt if atol is None else atol
        np.testing.assert_allclose(g.astype(np.float64), want.astype(np.float64), rtol=rt,
                                   atol=at, equal_nan=True)
    else:
        np.testing.assert_array_equal(g, want.astype(g.dtype))


def promote(a, b):
    """sp_dtype_promote for the pairs the tests use."""
    if a == b:
        return a
    if "bfloat16" in (a, b):
        o = b if a == "bfloat16" else a
        if o in ("float16",):
            return "float32"
        if o in ("bool", "int8", "uint8"):
            return "bfloat16"
        if o in ("int32", "int64"):
            return "float64"
        return o
    return str(np.promote_types(sp.NP_OF[a], sp.NP_OF[b]))


def shapes_for(layout):
    base = [(3, 5), (2, 3, 4), (1, 4), (4, 1)]
    if layout == "contig":
        base += [(), (7,), (0,), (0, 3), (1,)]
    if layout == "strided":
        base += [(6,)]
    return base


# ---------------------------------------------------------------- unary
erf = np.vectorize(math.erf, otypes=[np.float64])
UNARY = {
    "neg": (lambda x: -x, None), "abs": (np.abs, None), "sign": (np.sign, None),
    "exp": (np.exp, None), "log": (np.log, (0.05, 4)), "log1p": (np.log1p, (-0.9, 3)),
    "expm1": (np.expm1, None), "sqrt": (np.sqrt, (0, 4)), "rsqrt": (lambda x: 1 / np.sqrt(x), (0.1, 4)),
    "square": (lambda x: x * x, None), "reciprocal": (lambda x: 1 / x, (0.2, 4)),
    "sin": (np.sin, None), "cos": (np.cos, None), "tanh": (np.tanh, None),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), None),
    "relu": (lambda x: np.maximum(x, np.zeros((), x.dtype)), None),
    "gelu": (lambda x: 0.5 * x * (1 + erf(x / math.sqrt(2))), None),
    "silu": (lambda x: x / (1 + np.exp(-x)), None),
    "softplus": (lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))), (-5, 25)),
    "erf": (erf, None), "floor": (np.floor, None), "ceil": (np.ceil, None),
    "round": (np.round, None),
    "clamp": (lambda x: np.clip(x, -1, 2) if x.dtype.kind == "f" else np.clip(x, -1, 2).astype(x.dtype), None),
    "logical_not": (lambda x: x == 0, None), "isnan": (np.isnan, None), "isfinite": (np.isfinite, None),
}
UNARY_ATTRS = {"clamp": {"min": -1.0, "max": 2.0}}


@case(*UNARY)
def unary_case(op, dtype, layout):
    fn, dom = UNARY[op]
    lo, hi = dom or (-3.0, 3.0)
    for shape in shapes_for(layout):
        r = rng(op, dtype, layout, shape)
        v = rand_values(r, shape, dtype, lo, hi)
        if op == "round" and v.size:
            v.flat[0] = 2.5
            v.flat[-1] = -0.5
        if op in ("isnan", "isfinite") and dtype in FLOATS and v.size >= 2:
            v.flat[0] = np.nan
            v.flat[1] = np.inf
        if op == "uint8" and op == "neg":
            pass
        x = ref_in(v, dtype)
        (y,) = call(op, [tensor(v, dtype, layout)], UNARY_ATTRS.get(op))
        boolean = op in ("logical_not", "isnan", "isfinite")
        if dtype not in FLOATS and op in ("isnan", "isfinite"):
            want = np.full(shape, op == "isfinite")
        else:
            with np.errstate(all="ignore"):
                want = fn(x)
        check(y, want, dtype, "bool" if boolean else dtype)


def test_gelu_tanh_and_softplus_beta():
    v = np.linspace(-4, 4, 33)
    (y,) = call("gelu", [tensor(v, "float64")], {"approximate": "tanh"})
    want = 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3)))
    check(y, want, "float64")
    (y,) = call("softplus", [tensor(v, "float64")], {"beta": 2.0, "threshold": 3.0})
    want = np.where(2 * v > 3, v, np.log1p(np.exp(2 * v)) / 2)
    check(y, want, "float64")


# ---------------------------------------------------------------- binary
BIN_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (5,)),
              ((0, 3), (1, 3)), ((5,), (1,)), ((2, 1, 3), (4, 1))]


def _floordiv(a, b):
    return np.floor_divide(a, b)


BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": None, "pow": None,
    "maximum": np.maximum, "minimum": np.minimum, "floor_div": _floordiv, "mod": np.mod,
    "atan2": np.arctan2, "equal": np.equal, "not_equal": np.not_equal, "less": np.less,
    "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal,
    "logical_and": lambda a, b: np.logical_and(a != 0, b != 0),
    "logical_or": lambda a, b: np.logical_or(a != 0, b != 0),
}
BOOL_OUT = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
            "logical_and", "logical_or"}


def binary_inputs(op, r, sa, sb, da, db):
    a = rand_values(r, sa, da)
    b = rand_values(r, sb, db)
    if op in ("div", "floor_div", "mod"):
        if db in FLOATS:
            b = np.where(np.abs(b) < 0.25, 1.5, b)
        elif db != "bool":
            b = np.where(b == 0, 3, b).astype(b.dtype)
        else:
            b = np.ones(sb, bool)
    if op == "pow":
        if da in FLOATS:
            a = r.uniform(0.3, 2.0, size=sa)
            b = r.uniform(-2, 2, size=sb) if db in FLOATS else rand_values(r, sb, db, 0, 0.4)
        else:
            a = rand_values(r, sa, da, -0.3 if da != "uint8" else 0, 0.3)
            b = rand_values(r, sb, db, 0, 0.4)
    if op in BOOL_OUT and a.size and b.size and np.broadcast_shapes(sa, sb) == sa and sa == sb:
        b = b.astype(a.dtype) if da == db else b
        if da == db:
            b.flat[0] = a.flat[0]  # an equal pair
    return a, b


def binary_ref(op, a, b, da, db, out):
    if op == "div":
        return a.astype(np.float64) / b.astype(np.float64)
    if op == "pow":
        if out in FLOATS:
            return np.power(a.astype(np.float64), b.astype(np.float64))
        return np.power(a.astype(sp.NP_OF[out]), b.astype(sp.NP_OF[out]))
    if out in FLOATS:
        return BINARY[op](a.astype(np.float64), b.astype(np.float64))
    if op in BOOL_OUT:
        ct = promote(da, db)
        if ct in FLOATS:
            return BINARY[op](a.astype(np.float64), b.astype(np.float64))
        return BINARY[op](a.astype(sp.NP_OF[ct]), b.astype(sp.NP_OF[ct]))
    return BINARY[op](a.astype(sp.NP_OF[out]), b.astype(sp.NP_OF[out]))


@case(*BINARY)
def binary_case(op, dtype, layout):
    pairs = [(dtype, dtype)]
    if layout == "contig":
        extra = {"float32": "int32", "float64": "float32", "float16": "int8", "bfloat16": "float16",
                 "int32": "int64", "int8": "bool", "int64": "float32", "uint8": "int32", "bool": "int8"}
        if op not in ("atan2",) and extra[dtype] in sp.op_dtypes(op):
            if not (op in ("floor_div", "mod", "pow") and extra[dtype] == "bool"):
                pairs.append((dtype, extra[dtype]))
    for da, db in pairs:
        for sa, sb in BIN_SHAPES:
            if layout == "transposed" and len(sa) < 2:
                continue
            if layout == "strided" and len(sa) < 1:
                continue
            r = rng(op, da, db, layout, sa, sb)
            a, b = binary_inputs(op, r, sa, sb, da, db)
            out = "bool" if op in BOOL_OUT else promote(da, db)
            if op == "div" and out not in FLOATS:
                out = "float32"
            (y,) = call(op, [tensor(a, da, layout), tensor(b, db)])
            with np.errstate(all="ignore"):
                want = binary_ref(op, ref_in(a, da), ref_in(b, db), da, db, out)
            rt = None
            if op == "pow" and out in ("float32",):
                rt = 1e-5
            if op == "mod" and out in FLOATS:
                # near a multiple of b the float result may land on either side
                want = np.where(np.isclose(want, np.abs(ref_in(b, db)) * 1.0, rtol=1e-3), np.nan, want)
            g = y.numpy()
            if op == "mod" and out in FLOATS:
                g = np.where(np.isnan(want), np.nan, g)
                assert y.dtype == out
                np.testing.assert_allclose(g.astype(np.float64), want, rtol=RTOL[out] * 4,
                                           atol=RTOL[out] * 4, equal_nan=True)
                continue
            check(y, want, da, out, rtol=rt)


@case("where")
def where_case(op, dtype, layout):
    for sc, sx, sy in [((3, 4), (3, 4), (3, 4)), ((3, 1), (1, 4), (3, 4)), ((2, 3), (), (3,)),
                       ((0, 2), (0, 2), (2,))]:
        if layout == "transposed" and len(sc) < 2:
            continue
        r = rng(op, dtype, layout, sc)
        c = r.integers(0, 2, size=sc).astype(bool)
        x = rand_values(r, sx, dtype)
        y = rand_values(r, sy, dtype)
        (o,) = call("where", [tensor(c, "bool", layout), tensor(x, dtype), tensor(y, dtype)])
        check(o, np.where(c, ref_in(x, dtype), ref_in(y, dtype)), dtype)


# ---------------------------------------------------------------- reductions
RED_AXES = [None, (0,), (-1,), (0, 2), (1,)]


def reduce_out_dtype(op, dtype):
    if op in ("sum", "prod") and dtype not in FLOATS:
        return "int64"
    return dtype


def logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    m = np.where(np.isfinite(m), m, 0)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis) if axis is not None else s.reshape(())


REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod,
          "logsumexp": logsumexp}


@case(*REDUCE)
def reduce_case(op, dtype, layout):
    shapes = [(2, 3, 4), (5, 6, 3)] + ([(7,), (), (0, 3, 2)] if layout == "contig" else [])
    for shape in shapes:
        for axes in RED_AXES:
            if axes and (not shape or max(a if a >= 0 else len(shape) + a for a in axes) >= len(shape)):
                continue
            if axes is None and len(shape) == 0 and op in ("max", "min"):
                pass
            for keep in (0, 1):
                red_size = (np.prod([shape[a] for a in axes]) if axes else np.prod(shape)) if shape else 1
                if op in ("max", "min") and red_size == 0:
                    continue
                if shape == (0, 3, 2) and op in ("max", "min"):
                    continue
                r = rng(op, dtype, layout, shape, axes, keep)
                lo, hi = (0.5, 1.5) if op == "prod" else (-3, 3)
                if op == "prod" and dtype not in FLOATS:
                    lo, hi = (-0.2, 0.3) if dtype != "uint8" else (0, 0.3)
                v = rand_values(r, shape, dtype, lo, hi)
                attrs = {"keepdims": keep}
                if axes is not None:
                    attrs["axes"] = list(axes)
                (y,) = call(op, [tensor(v, dtype, layout)], attrs)
                out = reduce_out_dtype(op, dtype)
                x = ref_in(v, dtype)
                if out == "int64":
                    x = x.astype(np.int64)
                ax = tuple(axes) if axes is not None else None
                with np.errstate(all="ignore"):
                    want = REDUCE[op](x, axis=ax, keepdims=bool(keep))
                n = max(1, red_size)
                rt = None if dtype not in FLOATS or dtype == "float64" else RTOL[dtype] * (4 if dtype == "float32" else 2)
                at = None
                if dtype in FLOATS and op in ("sum", "mean"):
                    at = RTOL[dtype] * 3 * max(1.0, float(np.abs(x).max(initial=0)) * (n if op == "sum" else 1))
                check(y, want, dtype, out, rtol=rt, atol=at)


@case("argmax", "argmin")
def arg_case(op, dtype, layout):
    fn = np.argmax if op == "argmax" else np.argmin
    for shape in [(3, 5), (2, 3, 4)] + ([(7,)] if layout != "transposed" else []):
        for axis in [None, 0, -1]:
            for keep in (0, 1):
                r = rng(op, dtype, layout, shape, axis, keep)
                v = rand_values(r, shape, dtype)
                x = ref_in(v, dtype)
                attrs = {"keepdims": keep}
                if axis is not None:
                    attrs["axis"] = axis
                (y,) = call(op, [tensor(v, dtype, layout)], attrs)
                want = fn(x, axis=axis)
                if keep:
                    want = np.expand_dims(want, axis) if axis is not None else want.reshape((1,) * len(shape))
                check(y, want, "int64")


@case("cumsum")
def cumsum_case(op, dtype, layout):
    for shape in [(3, 5), (2, 3, 4)] + ([(7,), (0,)] if layout == "contig" else []):
        for axis in [0, -1]:
            r = rng(op, dtype, layout, shape, axis)
            v = rand_values(r, shape, dtype)
            (y,) = call(op, [tensor(v, dtype, layout)], {"axis": axis})
            out = dtype if dtype in FLOATS else "int64"
            x = ref_in(v, dtype)
            want = np.cumsum(x.astype(np.int64) if out == "int64" else x, axis=axis)
            check(y, want, dtype, out, atol=None if dtype not in FLOATS or dtype == "float64" else RTOL[dtype] * 20)


# ---------------------------------------------------------------- shape ops
def unary_shape_case(op, dtype, layout, shape, attrs, ref):
    r = rng(op, dtype, layout, shape, str(attrs))
    v = rand_values(r, shape, dtype)
    (y,) = call(op, [tensor(v, dtype, layout)], attrs)
    check(y, ref(sp.round_to(v, dtype)), dtype)


@case("reshape")
def reshape_case(op, dtype, layout):
    unary_shape_case(op, dtype, layout, (2, 3, 4), {"shape": [4, -1]}, lambda x: x.reshape(4, 6))
    unary_shape_case(op, dtype, layout, (6, 2), {"shape": [3, 2, 2]}, lambda x: x.reshape(3, 2, 2))
    unary_shape_case(op, dtype, layout, (4, 1), {"shape": [-1]}, lambda x: x.reshape(-1))


@case("transpose")
def transpose_case(op, dtype, layout):
    unary_shape_case(op, dtype, layout, (2, 3, 4), {"perm": [2, 0, 1]}, lambda x: x.transpose(2, 0, 1))
    unary_shape_case(op, dtype, layout, (3, 5), {}, lambda x: x.T)


@case("broadcast_to")
def broadcast_case(op, dtype, layout):
    unary_shape_case(op, dtype, layout, (3, 1), {"shape": [2, 3, 4]}, lambda x: np.broadcast_to(x, (2, 3, 4)))
    unary_shape_case(op, dtype, layout, (2, 4), {"shape": [3, 2, 4]}, lambda x: np.broadcast_to(x, (3, 2, 4)))


@case("concat")
def concat_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    parts = [rand_values(r, s, dtype) for s in [(2, 3), (2, 1), (2, 2)]]
    ys = call("concat", [tensor(parts[0], dtype, layout)] + [tensor(p, dtype) for p in parts[1:]], {"axis": 1})
    check(ys[0], np.concatenate([sp.round_to(p, dtype) for p in parts], axis=1), dtype)
    parts = [rand_values(r, s, dtype) for s in [(2, 3), (4, 3), (0, 3)]]
    ys = call("concat", [tensor(parts[0], dtype, layout)] + [tensor(p, dtype) for p in parts[1:]], {"axis": 0})
    check(ys[0], np.concatenate([sp.round_to(p, dtype) for p in parts], axis=0), dtype)


@case("split")
def split_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (6, 4), dtype)
    ys = call("split", [tensor(v, dtype, layout)], {"axis": 0, "sizes": [1, 2, 3]})
    x = sp.round_to(v, dtype)
    assert len(ys) == 3
    for y, w in zip(ys, [x[0:1], x[1:3], x[3:6]]):
        check(y, w, dtype)
    ys = call("split", [tensor(v, dtype, layout)], {"axis": -1, "sizes": [2, 0, 2]})
    for y, w in zip(ys, [x[:, 0:2], x[:, 2:2], x[:, 2:4]]):
        check(y, w, dtype)


@case("stack")
def stack_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    parts = [rand_values(r, (2, 3), dtype) for _ in range(3)]
    for axis in (0, 1, 2, -1):
        ys = call("stack", [tensor(parts[0], dtype, layout)] + [tensor(p, dtype) for p in parts[1:]], {"axis": axis})
        check(ys[0], np.stack([sp.round_to(p, dtype) for p in parts], axis=axis), dtype)


@case("pad")
def pad_case(op, dtype, layout):
    val = 3.0 if dtype not in FLOATS else 0.5
    if dtype == "bool":
        val = 1.0
    unary_shape_case(op, dtype, layout, (3, 4), {"pads": [1, 2, 0, 1], "value": val},
                     lambda x: np.pad(x, ((1, 2), (0, 1)), constant_values=np.array(val).astype(x.dtype)))
    unary_shape_case(op, dtype, layout, (4, 5), {"pads": [2, 1, 1, 3], "mode": "reflect"},
                     lambda x: np.pad(x, ((2, 1), (1, 3)), mode="reflect"))


@case("tile")
def tile_case(op, dtype, layout):
    unary_shape_case(op, dtype, layout, (2, 3), {"reps": [2, 1, 3]}, lambda x: np.tile(x, (2, 1, 3)))
    unary_shape_case(op, dtype, layout, (2, 3), {"reps": [2, 2]}, lambda x: np.tile(x, (2, 2)))


@case("slice")
def slice_case(op, dtype, layout):
    N = SLICE_NONE
    unary_shape_case(op, dtype, layout, (5, 6), {"begin": [1, N], "end": [4, N], "step": [2, -1]},
                     lambda x: x[1:4:2, ::-1])
    unary_shape_case(op, dtype, layout, (5, 6), {"begin": [-2, 1], "end": [100, -1], "step": [1, 2]},
                     lambda x: x[-2:100, 1:-1:2])
    unary_shape_case(op, dtype, layout, (4, 3), {"begin": [3, 0], "end": [1, 3], "step": [1, 1]},
                     lambda x: x[3:1, 0:3])


def index_values(r, shape, dtype_idx, hi, neg=False):
    lo = -hi if neg else 0
    return r.integers(lo, hi, size=shape).astype(sp.NP_OF[dtype_idx])


@case("gather")
def gather_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (4, 5), dtype)
    x = sp.round_to(v, dtype)
    for it in ("int32", "int64"):
        idx = index_values(r, (2, 3), it, 5, neg=True)
        (y,) = call("gather", [tensor(v, dtype, layout), tensor(idx, it)], {"axis": 1})
        check(y, np.take(x, idx, axis=1), dtype)
        idx0 = index_values(r, (3,), it, 4)
        (y,) = call("gather", [tensor(v, dtype, layout), tensor(idx0, it)], {"axis": 0})
        check(y, np.take(x, idx0, axis=0), dtype)


@case("take_along_axis")
def take_along_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (3, 4), dtype)
    x = sp.round_to(v, dtype)
    idx = index_values(r, (3, 2), "int64", 4)
    (y,) = call(op, [tensor(v, dtype, layout), tensor(idx, "int64")], {"axis": 1})
    check(y, np.take_along_axis(x, idx, axis=1), dtype)
    idx = index_values(r, (2, 4), "int32", 3)
    (y,) = call(op, [tensor(v, dtype, layout), tensor(idx, "int32")], {"axis": 0})
    check(y, np.take_along_axis(x, idx.astype(np.int64), axis=0), dtype)


@case("scatter_add")
def scatter_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (4, 3), dtype)
    u = rand_values(r, (5, 3), dtype)
    idx = index_values(r, (5, 3), "int64", 4)
    idx[0, 0] = idx[1, 0] = 2  # a repeated index
    (y,) = call(op, [tensor(v, dtype, layout), tensor(idx, "int64"), tensor(u, dtype)], {"axis": 0})
    xr, ur = ref_in(v, dtype), ref_in(u, dtype)
    want = xr.copy()
    for i in range(5):
        for j in range(3):
            want[idx[i, j], j] += ur[i, j]
    check(y, want, dtype)
    idx2 = index_values(r, (4, 2), "int32", 3)
    u2 = rand_values(r, (4, 2), dtype)
    (y,) = call(op, [tensor(v, dtype, layout), tensor(idx2, "int32"), tensor(u2, dtype)], {"axis": 1})
    want = xr.copy()
    u2r = ref_in(u2, dtype)
    for i in range(4):
        for j in range(2):
            want[i, idx2[i, j]] += u2r[i, j]
    check(y, want, dtype)


@case("one_hot")
def one_hot_case(op, dtype, layout):
    idx = np.array([[0, 3, 1], [4, 2, -1]], dtype=sp.NP_OF[dtype])
    src = idx if layout == "contig" else idx
    (y,) = call(op, [tensor(src, dtype, layout if layout != "strided" else "contig")], {"depth": 4})
    want = np.zeros((2, 3, 4), np.float32)
    for i in range(2):
        for j in range(3):
            if 0 <= idx[i, j] < 4:
                want[i, j, idx[i, j]] = 1
    check(y, want, "float32")
    (y,) = call(op, [tensor(idx, dtype)], {"depth": 5, "dtype": DType("int32"), "on_value": 7.0,
                                           "off_value": -1.0})
    want = np.full((2, 3, 5), -1, np.int32)
    for i in range(2):
        for j in range(3):
            if 0 <= idx[i, j] < 5:
                want[i, j, idx[i, j]] = 7
    check(y, want, "int32")


# ---------------------------------------------------------------- creation
@case("arange")
def arange_case(op, dtype, layout):
    if dtype in FLOATS:
        (y,) = call(op, [], {"start": 1.0, "stop": 7.0, "step": 1.5, "dtype": DType(dtype)})
        check(y, np.arange(1.0, 7.0, 1.5), dtype)
    else:
        hi = 100 if dtype in ("int8", "uint8") else 1000
        (y,) = call(op, [], {"start": 2, "stop": hi, "step": 3, "dtype": DType(dtype)})
        check(y, np.arange(2, hi, 3), dtype)
    (y,) = call(op, [], {"start": 5.0, "stop": 1.0, "step": -1.0, "dtype": DType(dtype)})
    check(y, np.arange(5, 1, -1), dtype)
    (y,) = call(op, [], {"start": 3, "stop": 3, "dtype": DType(dtype)})
    check(y, np.zeros((0,)), dtype)


@case("full", "zeros", "ones")
def full_case(op, dtype, layout):
    val = {"full": 2.5 if dtype in FLOATS else 3, "zeros": 0, "ones": 1}[op]
    if dtype == "bool" and op == "full":
        val = 1
    attrs = {"shape": [2, 3], "dtype": DType(dtype)}
    if op == "full":
        attrs["value"] = float(val)
    (y,) = call(op, [], attrs)
    check(y, np.full((2, 3), val), dtype)
    attrs["shape"] = []
    (y,) = call(op, [], attrs)
    check(y, np.full((), val), dtype)


@case("cast")
def cast_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (3, 4), dtype)
    x = sp.round_to(v, dtype)
    for to in ["float32", "float64", "int32", "int64", "bool", "float16", "uint8"]:
        (y,) = call(op, [tensor(v, dtype, layout)], {"dtype": DType(to)})
        if to == "uint8" and dtype in FLOATS + ["int8", "int32", "int64"]:
            src = np.abs(x.astype(np.float64)).astype(np.float64)
            (y,) = call(op, [tensor(np.abs(x.astype(np.float64)), dtype, layout)], {"dtype": DType(to)})
            check(y, np.trunc(src).astype(np.uint8), to)
            continue
        want = x.astype(np.float64).astype(sp.NP_OF[to]) if dtype == "bfloat16" else x.astype(sp.NP_OF[to])
        check(y, want, to)
    (y,) = call(op, [tensor(v, dtype, layout)], {"dtype": DType("bfloat16")})
    check(y, sp.round_to(x.astype(np.float32), "bfloat16"), "bfloat16", rtol=0, atol=0)


@case("sort")
def sort_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (4, 6), dtype, -1, 1)  # small range: ties among ints
    x = sp.round_to(v, dtype)
    for axis in (-1, 0):
        for desc in (0, 1):
            vals, idx = call(op, [tensor(v, dtype, layout)], {"axis": axis, "descending": desc})
            xa = np.moveaxis(x, axis, -1)
            order = np.empty(xa.shape, np.int64)
            for row in np.ndindex(xa.shape[:-1]):
                key = [(-float(t) if desc else float(t)) for t in xa[row]]
                order[row] = sorted(range(xa.shape[-1]), key=lambda i: key[i])
            want_idx = np.moveaxis(order, -1, axis)
            check(idx, want_idx, "int64")
            check(vals, np.take_along_axis(x, want_idx, axis=axis), dtype)


@case("topk")
def topk_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = rand_values(r, (3, 7), dtype, -1, 1)
    x = sp.round_to(v, dtype)
    for largest in (1, 0):
        for axis, k in ((-1, 3), (0, 2)):
            vals, idx = call(op, [tensor(v, dtype, layout)], {"k": k, "axis": axis, "largest": largest})
            xa = np.moveaxis(x, axis, -1)
            order = np.empty(xa.shape[:-1] + (k,), np.int64)
            for row in np.ndindex(xa.shape[:-1]):
                key = [(-float(t) if largest else float(t)) for t in xa[row]]
                order[row] = sorted(range(xa.shape[-1]), key=lambda i: key[i])[:k]
            want_idx = np.moveaxis(order, -1, axis)
            check(idx, want_idx, "int64")
            check(vals, np.take_along_axis(x, want_idx, axis=axis), dtype)


# ---------------------------------------------------------------- matmul
@case("matmul")
def matmul_case(op, dtype, layout):
    cases = [((3, 4), (4, 5), 0, 0), ((2, 3, 4), (4, 5), 0, 0), ((2, 1, 3, 4), (5, 4, 2), 0, 0),
             ((4,), (4, 5), 0, 0), ((3, 4), (4,), 0, 0), ((4, 3), (4, 5), 1, 0), ((3, 4), (5, 4), 0, 1),
             ((2, 4, 3), (2, 5, 4), 1, 1), ((17, 33), (33, 9), 0, 0), ((0, 4), (4, 3), 0, 0),
             ((3, 0), (0, 2), 0, 0)]
    for sa, sb, ta, tb in cases:
        if layout == "transposed" and len(sa) < 2:
            continue
        r = rng(op, dtype, layout, sa, sb)
        a = r.uniform(-1, 1, sa)
        b = r.uniform(-1, 1, sb)
        (y,) = call(op, [tensor(a, dtype, layout), tensor(b, dtype)],
                    {"transpose_a": ta, "transpose_b": tb})
        A, B = ref_in(a, dtype), ref_in(b, dtype)
        if ta:
            A = np.swapaxes(A, -1, -2)
        if tb:
            B = np.swapaxes(B, -1, -2)
        k = A.shape[-1]
        check(y, np.matmul(A, B), dtype, rtol=RTOL[dtype] * 2,
              atol=RTOL[dtype] * 2 * max(1, k) ** 0.5 if dtype != "float64" else 1e-12)


# ---------------------------------------------------------------- conv / pool
def conv_pads(mode, padding, H, W, kh, kw, s, d):
    if mode == "valid":
        return 0, 0, 0, 0
    if mode == "same":
        res = []
        for n, k, st, dl in ((H, kh, s[0], d[0]), (W, kw, s[1], d[1])):
            out = -(-n // st)
            tot = max((out - 1) * st + (k - 1) * dl + 1 - n, 0)
            res += [tot // 2, tot - tot // 2]
        return tuple(res)
    p = list(padding)
    if len(p) == 1:
        p = p * 4
    elif len(p) == 2:
        p = [p[0], p[0], p[1], p[1]]
    return tuple(p)


def conv_geom(x_shape, w_shape, attrs):
    s = attrs.get("stride", [1, 1])
    d = attrs.get("dilation", [1, 1])
    kh, kw = w_shape[2], w_shape[3]
    pt, pb, pl, pr = conv_pads(attrs.get("pad_mode", "pad"), attrs.get("padding", [0]),
                               x_shape[2], x_shape[3], kh, kw, s, d)
    Ho = (x_shape[2] + pt + pb - d[0] * (kh - 1) - 1) // s[0] + 1
    Wo = (x_shape[3] + pl + pr - d[1] * (kw - 1) - 1) // s[1] + 1
    return s, d, (pt, pb, pl, pr), Ho, Wo


def conv_ref(x, w, attrs):
    g = attrs.get("groups", 1)
    s, d, (pt, pb, pl, pr), Ho, Wo = conv_geom(x.shape, w.shape, attrs)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    N, O = x.shape[0], w.shape[0]
    Cg, Og = w.shape[1], O // g
    y = np.zeros((N, O, Ho, Wo))
    for gi in range(g):
        for i in range(w.shape[2]):
            for j in range(w.shape[3]):
                patch = xp[:, gi * Cg:(gi + 1) * Cg, i * d[0]:i * d[0] + s[0] * (Ho - 1) + 1:s[0],
                           j * d[1]:j * d[1] + s[1] * (Wo - 1) + 1:s[1]]
                y[:, gi * Og:(gi + 1) * Og] += np.einsum("nchw,oc->nohw", patch, w[gi * Og:(gi + 1) * Og, :, i, j])
    return y


def conv_bwd_ref(x_shape, w, dy, attrs, x=None):
    g = attrs.get("groups", 1)
    s, d, (pt, pb, pl, pr), Ho, Wo = conv_geom(x_shape, w.shape, attrs)
    N, C, H, W = x_shape
    dxp = np.zeros((N, C, H + pt + pb, W + pl + pr))
    dw = np.zeros(w.shape)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))) if x is not None else None
    Cg, Og = w.shape[1], w.shape[0] // g
    for gi in range(g):
        for i in range(w.shape[2]):
            for j in range(w.shape[3]):
                sl = (slice(None), slice(gi * Cg, (gi + 1) * Cg),
                      slice(i * d[0], i * d[0] + s[0] * (Ho - 1) + 1, s[0]),
                      slice(j * d[1], j * d[1] + s[1] * (Wo - 1) + 1, s[1]))
                dyg = dy[:, gi * Og:(gi + 1) * Og]
                dxp[sl] += np.einsum("nohw,oc->nchw", dyg, w[gi * Og:(gi + 1) * Og, :, i, j])
                if xp is not None:
                    dw[gi * Og:(gi + 1) * Og, :, i, j] = np.einsum("nohw,nchw->oc", dyg, xp[sl])
    return dxp[:, :, pt:pt + H, pl:pl + W], dw


CONV_CASES = [
    ((2, 3, 7, 8), (4, 3, 3, 3), {}),
    ((1, 2, 9, 9), (3, 2, 3, 2), {"stride": [2, 2], "padding": [1]}),
    ((2, 4, 8, 7), (4, 2, 3, 3), {"groups": 2, "pad_mode": "same", "stride": [2, 1]}),
    ((1, 3, 10, 10), (3, 1, 3, 3), {"groups": 3, "dilation": [2, 2], "padding": [2, 2]}),
    ((3, 2, 6, 5), (2, 2, 1, 1), {"pad_mode": "valid"}),
    ((1, 1, 6, 6), (2, 1, 5, 5), {"padding": [2, 1, 0, 2]}),
]
CONV_TOL = {"float32": 2e-5, "float64": 1e-10}


@case("conv2d")
def conv2d_case(op, dtype, layout):
    for xs, ws, attrs in CONV_CASES:
        r = rng(op, dtype, layout, xs, ws)
        x, w = r.uniform(-1, 1, xs), r.uniform(-1, 1, ws)
        (y,) = call(op, [tensor(x, dtype, layout), tensor(w, dtype)], attrs)
        check(y, conv_ref(ref_in(x, dtype), ref_in(w, dtype), attrs), dtype, rtol=CONV_TOL[dtype],
              atol=CONV_TOL[dtype] * 10)


@case("conv2d_backprop_input")
def conv_bi_case(op, dtype, layout):
    for xs, ws, attrs in CONV_CASES:
        r = rng(op, dtype, layout, xs, ws)
        w = r.uniform(-1, 1, ws)
        _, _, _, Ho, Wo = conv_geom(xs, ws, attrs)
        dy = r.uniform(-1, 1, (xs[0], ws[0], Ho, Wo))
        a = dict(attrs, input_shape=list(xs))
        (dx,) = call(op, [tensor(dy, dtype, layout), tensor(w, dtype)], a)
        want, _ = conv_bwd_ref(xs, ref_in(w, dtype), ref_in(dy, dtype), attrs)
        check(dx, want, dtype, rtol=CONV_TOL[dtype], atol=CONV_TOL[dtype] * 10)


@case("conv2d_backprop_filter")
def conv_bf_case(op, dtype, layout):
    for xs, ws, attrs in CONV_CASES:
        r = rng(op, dtype, layout, xs, ws)
        x = r.uniform(-1, 1, xs)
        w = np.zeros(ws)
        _, _, _, Ho, Wo = conv_geom(xs, ws, attrs)
        dy = r.uniform(-1, 1, (xs[0], ws[0], Ho, Wo))
        a = dict(attrs, filter_shape=list(ws))
        (dw,) = call(op, [tensor(dy, dtype, layout), tensor(x, dtype)], a)
        _, want = conv_bwd_ref(xs, w, ref_in(dy, dtype), attrs, x=ref_in(x, dtype))
        check(dw, want, dtype, rtol=CONV_TOL[dtype], atol=CONV_TOL[dtype] * 30)


POOL_CASES = [
    ((2, 3, 6, 6), {"kernel_size": [2, 2]}),
    ((1, 2, 7, 5), {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1]}),
    ((1, 1, 7, 7), {"kernel_size": [2, 2], "stride": [2, 2], "ceil_mode": 1}),
    ((2, 2, 5, 6), {"kernel_size": [3, 2], "stride": [1, 2], "pad_mode": "same"}),
    ((1, 2, 8, 8), {"kernel_size": [3, 3], "stride": [2, 2], "pad_mode": "valid"}),
]


def pool_windows(shape, attrs):
    """Yields (oh, ow, h0, h1, w0, w1, pool_size) with torch's window rules."""
    k = attrs["kernel_size"]
    s = attrs.get("stride", k)
    H, W = shape[2], shape[3]
    pt, pb, pl, pr = conv_pads(attrs.get("pad_mode", "pad"), attrs.get("padding", [0]), H, W,
                               k[0], k[1], s, (1, 1))
    ceil = attrs.get("ceil_mode", 0)

    def out_size(n, kk, st, p0, p1):
        num = n + p0 + p1 - kk
        o = (-(-num // st) if ceil else num // st) + 1
        if ceil and (o - 1) * st >= n + p0:
            o -= 1
        return o
    Ho, Wo = out_size(H, k[0], s[0], pt, pb), out_size(W, k[1], s[1], pl, pr)
    for oh in range(Ho):
        for ow in range(Wo):
            h0, w0 = oh * s[0] - pt, ow * s[1] - pl
            h1, w1 = min(h0 + k[0], H + pb), min(w0 + k[1], W + pr)
            size = (h1 - h0) * (w1 - w0)
            yield oh, ow, max(h0, 0), min(h1, H), max(w0, 0), min(w1, W), size, Ho, Wo


def pool_ref(x, attrs, kind, include_pad=1):
    wins = list(pool_windows(x.shape, attrs))
    Ho, Wo = wins[0][7], wins[0][8]
    y = np.zeros(x.shape[:2] + (Ho, Wo))
    for oh, ow, h0, h1, w0, w1, size, _, _ in wins:
        win = x[:, :, h0:h1, w0:w1]
        if kind == "max":
            y[:, :, oh, ow] = win.max(axis=(2, 3))
        else:
            div = size if include_pad else (h1 - h0) * (w1 - w0)
            y[:, :, oh, ow] = win.sum(axis=(2, 3)) / div
    return y


def pool_bwd_ref(x_shape, dy, attrs, kind, x=None, include_pad=1):
    dx = np.zeros(x_shape)
    for oh, ow, h0, h1, w0, w1, size, _, _ in pool_windows(x_shape, attrs):
        if kind == "max":
            for n in range(x_shape[0]):
                for c in range(x_shape[1]):
                    win = x[n, c, h0:h1, w0:w1]
                    a = np.argmax(win)
                    dx[n, c, h0 + a // win.shape[1], w0 + a % win.shape[1]] += dy[n, c, oh, ow]
        else:
            div = size if include_pad else (h1 - h0) * (w1 - w0)
            dx[:, :, h0:h1, w0:w1] += dy[:, :, oh:oh + 1, ow:ow + 1] / div
    return dx


@case("max_pool2d", "avg_pool2d")
def pool_case(op, dtype, layout):
    kind = "max" if op == "max_pool2d" else "avg"
    for xs, attrs in POOL_CASES:
        for inc in ((1, 0) if kind == "avg" else (1,)):
            r = rng(op, dtype, layout, xs, inc)
            x = r.uniform(-1, 1, xs)
            a = dict(attrs, count_include_pad=inc) if kind == "avg" else attrs
            (y,) = call(op, [tensor(x, dtype, layout)], a)
            check(y, pool_ref(ref_in(x, dtype), attrs, kind, inc), dtype)


@case("max_pool2d_backward")
def maxpool_bwd_case(op, dtype, layout):
    for xs, attrs in POOL_CASES:
        r = rng(op, dtype, layout, xs)
        x = r.uniform(-1, 1, xs)
        wins = list(pool_windows(xs, attrs))
        dy = r.uniform(-1, 1, xs[:2] + (wins[0][7], wins[0][8]))
        (dx,) = call(op, [tensor(x, dtype, layout), tensor(dy, dtype)], attrs)
        check(dx, pool_bwd_ref(xs, ref_in(dy, dtype), attrs, "max", x=ref_in(x, dtype)), dtype)


@case("avg_pool2d_backward")
def avgpool_bwd_case(op, dtype, layout):
    for xs, attrs in POOL_CASES:
        for inc in (1, 0):
            r = rng(op, dtype, layout, xs, inc)
            wins = list(pool_windows(xs, attrs))
            dy = r.uniform(-1, 1, xs[:2] + (wins[0][7], wins[0][8]))
            a = dict(attrs, count_include_pad=inc, input_shape=list(xs))
            (dx,) = call(op, [tensor(dy, dtype, layout)], a)
            check(dx, pool_bwd_ref(xs, ref_in(dy, dtype), attrs, "avg", include_pad=inc), dtype)


# ---------------------------------------------------------------- nn
def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@case("softmax", "log_softmax")
def softmax_case(op, dtype, layout):
    for shape, axis in [((3, 4, 5), None), ((3, 4, 5), 1), ((2, 7), 0), ((4, 1), -1)]:
        r = rng(op, dtype, layout, shape, axis)
        v = r.uniform(-5, 5, shape)
        x = ref_in(v, dtype)
        attrs = {} if axis is None else {"axis": axis}
        (y,) = call(op, [tensor(v, dtype, layout)], attrs)
        ax = -1 if axis is None else axis
        want = np_softmax(x, ax) if op == "softmax" else np.log(np_softmax(x, ax))
        check(y, want, dtype, rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4)


def xent_ref(x, labels, reduction):
    ls = x - x.max(axis=1, keepdims=True)
    ls = ls - np.log(np.exp(ls).sum(axis=1, keepdims=True))
    loss = -ls[np.arange(len(labels)), labels]
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@case("sparse_softmax_cross_entropy")
def xent_case(op, dtype, layout):
    for lt in ("int32", "int64"):
        for red in ("mean", "sum", "none"):
            r = rng(op, dtype, layout, lt, red)
            v = r.uniform(-4, 4, (6, 5))
            lab = r.integers(0, 5, 6).astype(sp.NP_OF[lt])
            (y,) = call(op, [tensor(v, dtype, layout), tensor(lab, lt)], {"reduction": red})
            check(y, xent_ref(ref_in(v, dtype), lab, red), dtype, rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4)


@case("sparse_softmax_cross_entropy_backward")
def xent_bwd_case(op, dtype, layout):
    for red in ("mean", "sum", "none"):
        r = rng(op, dtype, layout, red)
        v = r.uniform(-4, 4, (6, 5))
        lab = r.integers(0, 5, 6).astype(np.int64)
        dl = r.uniform(0.5, 2, () if red != "none" else (6,))
        (dx,) = call(op, [tensor(v, dtype, layout), tensor(lab, "int64"), tensor(dl, dtype)],
                     {"reduction": red})
        x = ref_in(v, dtype)
        g = np_softmax(x, 1)
        g[np.arange(6), lab] -= 1
        d = ref_in(dl, dtype)
        want = g * (d[:, None] if red == "none" else d) / (6 if red == "mean" else 1)
        check(dx, want, dtype, rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4)


def stat_dtype(dtype):
    return "float64" if dtype == "float64" else "float32"


def ln_ref(x, gamma, beta, axis, eps):
    axes = tuple(range(axis, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt(var + eps)
    y = (x - mean) * rstd * gamma + beta
    return y, mean.reshape(x.shape[:axis]), rstd.reshape(x.shape[:axis])


LN_CASES = [((4, 6), -1), ((2, 3, 4), 1), ((5, 3), 1)]


@case("layer_norm")
def ln_case(op, dtype, layout):
    for shape, axis in LN_CASES:
        r = rng(op, dtype, layout, shape)
        ax = axis % len(shape)
        v, gm, bt = r.uniform(-2, 2, shape), r.uniform(0.5, 1.5, shape[ax:]), r.uniform(-1, 1, shape[ax:])
        y, mean, rstd = call(op, [tensor(v, dtype, layout), tensor(gm, dtype), tensor(bt, dtype)],
                             {"axis": axis, "epsilon": 1e-5})
        wy, wm, wr = ln_ref(ref_in(v, dtype), ref_in(gm, dtype), ref_in(bt, dtype), ax, 1e-5)
        check(y, wy, dtype, rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4)
        check(mean, wm, dtype, stat_dtype(dtype), rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4)
        check(rstd, wr, dtype, stat_dtype(dtype), rtol=RTOL[dtype] * 4, atol=RTOL[dtype] * 4)


def norm_bwd(dy, x, gamma, mean, rstd, red_axes, cnt):
    xhat = (x - mean) * rstd
    dxhat = dy * gamma
    dx = rstd * (dxhat - dxhat.mean(axis=red_axes, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=red_axes, keepdims=True))
    return dx, xhat


@case("layer_norm_backward")
def ln_bwd_case(op, dtype, layout):
    for shape, axis in LN_CASES:
        r = rng(op, dtype, layout, shape)
        ax = axis % len(shape)
        v, gm = r.uniform(-2, 2, shape), r.uniform(0.5, 1.5, shape[ax:])
        dy = r.uniform(-1, 1, shape)
        x, g = ref_in(v, dtype), ref_in(gm, dtype)
        _, m, rs = ln_ref(x, g, 0 * g, ax, 1e-5)
        sd = stat_dtype(dtype)
        m_r, rs_r = sp.round_to(m, sd).astype(np.float64), sp.round_to(rs, sd).astype(np.float64)
        dx, dg, db = call(op, [tensor(dy, dtype, layout), tensor(v, dtype), tensor(gm, dtype),
                               tensor(m, sd), tensor(rs, sd)], {"axis": axis})
        bshape = shape[:ax] + (1,) * (len(shape) - ax)
        d = ref_in(dy, dtype)
        wdx, xhat = norm_bwd(d, x, g, m_r.reshape(bshape), rs_r.reshape(bshape),
                             tuple(range(ax, len(shape))), None)
        lead = tuple(range(ax))
        tol = RTOL[dtype] * 8
        check(dx, wdx, dtype, rtol=tol, atol=tol)
        check(dg, (d * xhat).sum(axis=lead), dtype, rtol=tol, atol=tol * 4)
        check(db, d.sum(axis=lead), dtype, rtol=tol, atol=tol * 4)


@case("batch_norm")
def bn_case(op, dtype, layout):
    for shape in [(4, 3), (2, 3, 4, 5)]:
        for training in (1, 0):
            r = rng(op, dtype, layout, shape, training)
            C = shape[1]
            v = r.uniform(-2, 2, shape)
            gm, bt = r.uniform(0.5, 1.5, C), r.uniform(-1, 1, C)
            rm, rv = r.uniform(-0.5, 0.5, C), r.uniform(0.5, 2, C)
            t_rm, t_rv = tensor(rm, dtype), tensor(rv, dtype)
            y, sm, sr = call(op, [tensor(v, dtype, layout), tensor(gm, dtype), tensor(bt, dtype), t_rm, t_rv],
                             {"training": training, "momentum": 0.1, "epsilon": 1e-5})
            x = ref_in(v, dtype)
            axes = (0,) + tuple(range(2, len(shape)))
            bs = (1, C) + (1,) * (len(shape) - 2)
            if training:
                mean = x.mean(axis=axes)
                var = x.var(axis=axes)
                n = x.size // C
                want_rm = 0.9 * rm + 0.1 * mean
                want_rv = 0.9 * rv + 0.1 * var * n / (n - 1)
                check(t_rm, want_rm, dtype, rtol=1e-5 if dtype == "float32" else 1e-10)
                check(t_rv, want_rv, dtype, rtol=1e-5 if dtype == "float32" else 1e-10)
            else:
                mean, var = rm, rv
                check(t_rm, rm, dtype)
            rstd = 1 / np.sqrt(var + 1e-5)
            want = (x - mean.reshape(bs)) * rstd.reshape(bs) * gm.reshape(bs) + bt.reshape(bs)
            tol = RTOL[dtype] * 8
            check(y, want, dtype, rtol=tol, atol=tol)
            check(sm, mean, dtype, rtol=tol, atol=tol)
            check(sr, rstd, dtype, rtol=tol, atol=tol)


@case("batch_norm_backward")
def bn_bwd_case(op, dtype, layout):
    for shape in [(4, 3), (2, 3, 4, 5)]:
        for training in (1, 0):
            r = rng(op, dtype, layout, shape, training)
            C = shape[1]
            v, dyv = r.uniform(-2, 2, shape), r.uniform(-1, 1, shape)
            gm = r.uniform(0.5, 1.5, C)
            x, dy = ref_in(v, dtype), ref_in(dyv, dtype)
            axes = (0,) + tuple(range(2, len(shape)))
            bs = (1, C) + (1,) * (len(shape) - 2)
            if training:
                mean = x.mean(axis=axes)
                rstd = 1 / np.sqrt(x.var(axis=axes) + 1e-5)
            else:
                mean, rstd = r.uniform(-0.5, 0.5, C), r.uniform(0.5, 2, C)
            mean, rstd = ref_in(mean, dtype), ref_in(rstd, dtype)
            dx, dg, db = call(op, [tensor(dyv, dtype, layout), tensor(v, dtype), tensor(gm, dtype),
                                   tensor(mean, dtype), tensor(rstd, dtype)], {"training": training})
            xhat = (x - mean.reshape(bs)) * rstd.reshape(bs)
            if training:
                wdx, _ = norm_bwd(dy, x, gm.reshape(bs), mean.reshape(bs), rstd.reshape(bs), axes, None)
            else:
                wdx = dy * gm.reshape(bs) * rstd.reshape(bs)
            tol = RTOL[dtype] * 8
            check(dx, wdx, dtype, rtol=tol, atol=tol)
            check(dg, (dy * xhat).sum(axis=axes), dtype, rtol=tol, atol=tol * 10)
            check(db, dy.sum(axis=axes), dtype, rtol=tol, atol=tol * 10)


@case("dropout")
def dropout_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    v = r.uniform(0.5, 2, (100, 50))
    x = ref_in(v, dtype)
    for p in (0.3, 0.0, 1.0):
        y, mask = call(op, [tensor(v, dtype, layout)], {"p": p, "seed": 7, "offset": 0})
        assert mask.dtype == "bool"
        m = mask.numpy()
        keep = 1.0 - p
        want = np.where(m, x / keep, 0) if p < 1 else np.zeros_like(x)
        check(y, want, dtype)
        if p == 0:
            assert m.all()
        elif p == 1:
            assert not m.any()
        else:
            assert abs(m.mean() - keep) < 0.03
            y2, mask2 = call(op, [tensor(v, dtype)], {"p": p, "seed": 7, "offset": 0})
            np.testing.assert_array_equal(mask2.numpy(), m)
            _, mask3 = call(op, [tensor(v, dtype)], {"p": p, "seed": 8, "offset": 0})
            assert (mask3.numpy() != m).any()


@case("embedding")
def embedding_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    wv = r.uniform(-1, 1, (10, 4))
    for it in ("int32", "int64"):
        idx = r.integers(0, 10, (2, 3)).astype(sp.NP_OF[it])
        (y,) = call(op, [tensor(wv, dtype, layout), tensor(idx, it)])
        check(y, sp.round_to(wv, dtype)[idx], dtype)


@case("embedding_backward")
def embedding_bwd_case(op, dtype, layout):
    r = rng(op, dtype, layout)
    d = r.uniform(-1, 1, (2, 3, 4))
    idx = r.integers(0, 10, (2, 3)).astype(np.int64)
    idx[0, 0] = idx[1, 2] = 4
    (dw,) = call(op, [tensor(d, dtype, layout), tensor(idx, "int64")], {"num_embeddings": 10})
    want = np.zeros((10, 4))
    np.add.at(want, idx.reshape(-1), ref_in(d, dtype).reshape(-1, 4))
    check(dw, want, dtype, rtol=RTOL[dtype] * 2, atol=RTOL[dtype] * 2)


# ---------------------------------------------------------------- random
@case("uniform", "normal", "bernoulli", "randint")
def random_case(op, dtype, layout):
    attrs = {"shape": [20000], "dtype": DType(dtype), "seed": 42, "offset": 0}
    if op == "uniform":
        attrs.update(low=-1.0, high=3.0)
    if op == "normal":
        attrs.update(mean=1.0, std=2.0)
    if op == "bernoulli":
        attrs.update(p=0.25)
    if op == "randint":
        attrs.update(low=-3, high=5) if dtype != "uint8" else attrs.update(low=2, high=9)
    (y,) = call(op, [], attrs)
    (y2,) = call(op, [], attrs)
    (y3,) = call(op, [], dict(attrs, offset=12345))
    assert y.dtype == dtype and y.shape == (20000,)
    a = y.numpy().astype(np.float64)
    np.testing.assert_array_equal(a, y2.numpy().astype(np.float64))
    assert (a != y3.numpy().astype(np.float64)).any()
    if op == "uniform":
        assert a.min() >= -1 and a.max() <= 3 and abs(a.mean() - 1) < 0.05 and abs(a.var() - 16 / 12) < 0.06
    if op == "normal":
        assert abs(a.mean() - 1) < 0.06 and abs(a.std() - 2) < 0.06
    if op == "bernoulli":
        assert set(np.unique(a)) <= {0.0, 1.0} and abs(a.mean() - 0.25) < 0.02
    if op == "randint":
        lo, hi = (attrs["low"], attrs["high"])
        assert a.min() == lo and a.max() == hi - 1 and (a == np.round(a)).all()


# ---------------------------------------------------------------- optimizers
@case("sgd_update")
def sgd_case(op, dtype, layout):
    for attrs in [{}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": 1, "weight_decay": 0.01},
                  {"momentum": 0.5, "dampening": 0.3}]:
        r = rng(op, dtype, str(attrs))
        p = ref_in(r.uniform(-1, 1, (5, 3)), dtype)
        acc = np.zeros((5, 3))
        tp, tacc = tensor(p, dtype), tensor(acc, dtype)
        lr = float(np.float32(0.1))  # lr travels as a float32 tensor
        for step in range(3):
            g = ref_in(r.uniform(-1, 1, (5, 3)), dtype)
            outs = call(op, [tp, tensor(g, dtype), tacc, tensor(np.array(lr), "float32")], attrs)
            assert outs == []
            m, damp = attrs.get("momentum", 0.0), attrs.get("dampening", 0.0)
            g = g + attrs.get("weight_decay", 0.0) * p
            if m:
                acc = m * acc + (1 - damp) * g
                g = g + m * acc if attrs.get("nesterov") else acc
            p = p - lr * g
            tol = RTOL[dtype] * 4
            check(tp, p, dtype, rtol=tol, atol=tol)
            p = ref_in(tp.numpy().astype(np.float64), dtype)
            acc = tacc.numpy().astype(np.float64) if m else acc


@case("adam_update")
def adam_case(op, dtype, layout):
    for attrs in [{}, {"weight_decay": 0.1}, {"weight_decay": 0.1, "decoupled": 1},
                  {"bias_correction": 0, "beta1": 0.8}]:
        r = rng(op, dtype, str(attrs))
        p = ref_in(r.uniform(-1, 1, (4, 3)), dtype)
        m = np.zeros((4, 3))
        v = np.zeros((4, 3))
        tp, tm, tv = tensor(p, dtype), tensor(m, dtype), tensor(v, dtype)
        lr, b1, b2, eps = float(np.float32(0.01)), attrs.get("beta1", 0.9), 0.999, 1e-8
        wd = attrs.get("weight_decay", 0.0)
        for t in range(1, 4):
            # |g| >= 0.2 keeps (1-beta2)*g*g clear of float16's subnormals,
            # where the stored second moment would lose all precision
            g = ref_in(r.uniform(0.2, 1, (4, 3)) * r.choice([-1.0, 1.0], (4, 3)), dtype)
            call(op, [tp, tensor(g, dtype), tm, tv, tensor(np.array(lr), "float32"),
                      tensor(np.array(t), "int64")], attrs)
            if attrs.get("decoupled"):
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            if attrs.get("bias_correction", 1):
                mh, vh = m / (1 - b1**t), v / (1 - b2**t)
            else:
                mh, vh = m, v
            p = p - lr * mh / (np.sqrt(vh) + eps)
            tol = RTOL[dtype] * 8
            check(tp, p, dtype, rtol=tol, atol=tol)
            p = tp.numpy().astype(np.float64)
            m, v = tm.numpy().astype(np.float64), tv.numpy().astype(np.float64)


# ---------------------------------------------------------------- fused_elementwise
lib_op_find = sp.lib.sp_op_find
lib_op_nin = sp.lib.sp_op_num_inputs


def fused_attr_value(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def fused_unfused(program, inputs, attrs=None):
    """The chain a fused_elementwise program stands for, run primitive by
    primitive through `call` (literals as 0-d tensors of their step's first
    tensor operand's dtype, as the VM makes them), then its reduction."""
    stack = []
    for tok in program.split():
        if tok[0] == "i" and tok[1:].isdigit():
            stack.append(inputs[int(tok[1:])])
            continue
        if tok[:2] in ("f:", "n:", "b:"):
            stack.append(tok)
            continue
        name, _, rest = tok.partition("{")
        at = {}
        for kv in rest.rstrip("}").split(",") if rest else []:
            k, v = kv.split("=")
            at[k] = DType(v) if k == "dtype" else fused_attr_value(v)
        n = lib_op_nin(lib_op_find(name.encode()))
        args, stack = stack[-n:], stack[:-n]
        weak = next(a.dtype for a in args if not isinstance(a, str))
        args = [tensor(np.array(float(a[2:]) if a[0] == "f" else int(a[2:])), weak)
                if isinstance(a, str) else a for a in args]
        stack.append(call(name, args, at)[0])
    (y,) = stack
    attrs = attrs or {}
    if "reduce" in attrs:
        y = call(attrs["reduce"], [y], {k: v for k, v in attrs.items() if k != "reduce"})[0]
    return y


def fused_check(program, inputs, attrs, want, dtype):
    """fused == the unfused chain (bit for bit on the CPU; within a few ulp
    on the GPU, where NVRTC and nvcc may contract a formula differently),
    and == the numpy reference `want` (None: none) within the dtype's
    tolerance, widened for the rounding after every step."""
    at = dict(attrs or {}, program=program)
    (f,) = call("fused_elementwise", inputs, at)
    u = fused_unfused(program, inputs, attrs)
    assert f.dtype == u.dtype and f.shape == u.shape, (f.dtype, u.dtype, f.shape, u.shape)
    fv, uv = f.numpy(), u.numpy()
    exact = call is sp.call and (attrs or {}).get("reduce") in (None, "max", "min")
    if exact or f.dtype not in FLOATS:
        np.testing.assert_array_equal(fv, uv)
    else:
        rt = RTOL[f.dtype] * 4
        np.testing.assert_allclose(fv.astype(np.float64), uv.astype(np.float64), rtol=rt, atol=rt,
                                   equal_nan=True)
    if want is not None:
        rt = RTOL[f.dtype] * (8 if f.dtype in ("float16", "bfloat16") else 4) if f.dtype in FLOATS else None
        check(f, want, f.dtype, rtol=rt)


@case("fused_elementwise")
def fused_case(op, dtype, layout):
    for shape in [(3, 5), (2, 3, 4)]:
        r = rng(op, dtype, layout, shape)
        x = rand_values(r, shape, dtype)
        av = rand_values(r, shape[-1:], dtype)
        bv = rand_values(r, (), dtype)
        tx, ta, tb = tensor(x, dtype, layout), tensor(av, dtype), tensor(bv, dtype)
        X, A, B = ref_in(x, dtype), ref_in(av, dtype), ref_in(bv, dtype)
        if dtype in FLOATS:
            fused_check("i0 i1 mul i2 add gelu", [tx, ta, tb], None,
                        UNARY["gelu"][0](X * A + B), dtype)
            for red, ax in [("sum", (-1,)), ("mean", None), ("max", (0,)), ("min", (1,))]:
                attrs = {"reduce": red, "keepdims": 1 if red == "sum" else 0}
                if ax is not None:
                    attrs["axes"] = ax
                v = np.exp(np.tanh(X * 0.5) - A)
                want = REDUCE[red](v, axis=ax, keepdims=bool(attrs["keepdims"]))
                fused_check("i0 f:0.5 mul tanh i1 sub exp", [tx, ta], attrs, want, dtype)
            fused_check("i0 i1 greater i0 i1 where clamp{min=-1.0,max=2.0}", [tx, ta], None,
                        np.clip(np.where(X > A, X, A), -1, 2), dtype)
            fused_check("i0 cast{dtype=float64} f:1.5 mul i1 add", [tx, ta], None, None, dtype)
        elif dtype == "bool":
            fused_check("i0 i1 logical_and logical_not", [tx, ta], None, ~(x & av), dtype)
            fused_check("i0 i1 logical_or", [tx, ta], {"reduce": "sum", "axes": (-1,)},
                        np.sum(x | av, axis=-1), dtype)
            fused_check("i0 i1 logical_or cast{dtype=int32} n:2 mul", [tx, ta], None,
                        (x | av).astype(np.int32) * 2, dtype)
        else:
            fused_check("i0 i1 mul n:3 add abs", [tx, ta], None, None, dtype)
            fused_check("i0 i1 maximum", [tx, ta], {"reduce": "max", "axes": (0,)},
                        np.max(np.maximum(x, av), axis=0), dtype)
            fused_check("i0 i1 sub", [tx, ta], {"reduce": "sum"},
                        np.sum((x - av).astype(np.int64)), dtype)


@case("assign")
def assign_case(op, dtype, layout):
    """variable[...] = value converted to the variable's dtype and broadcast
    to its shape, for values of the same and of other dtypes.  Every input
    of an in-place primitive must be contiguous, so there are no layouts."""
    for vdt, vshape in [(dtype, (4, 3)), ("float64", (3,)), ("int32", (1, 3)), ("bool", ()),
                        ("float16", (4, 1))]:
        r = rng(op, dtype, vdt)
        var = tensor(rand_values(r, (4, 3), dtype), dtype)
        if vdt in FLOATS and dtype not in FLOATS:
            v = r.integers(0, 5, size=vshape).astype(np.float64)  # converts exactly to any int
        else:
            v = rand_values(r, vshape, vdt).astype(np.float32 if vdt == "float64" else None)
        outs = call(op, [var, tensor(v, vdt)])
        assert outs == []
        want = np.broadcast_to(sp.round_to(v, vdt), (4, 3))
        want = want != 0 if dtype == "bool" else sp.round_to(want, dtype)
        check(var, want, dtype, rtol=0, atol=0)


# ---------------------------------------------------------------- the driver
NO_LAYOUT = {"arange", "full", "zeros", "ones", "uniform", "normal", "bernoulli", "randint",
             "sgd_update", "adam_update", "assign", "one_hot"}


def params():
    out = []
    for op in sp.op_names():
        for dt in sp.op_dtypes(op):
            for lay in (["contig"] if op in NO_LAYOUT else LAYOUTS):
                out.append(pytest.param(op, dt, lay, id=f"{op}-{dt}-{lay}"))
    return out


def test_every_primitive_has_a_case():
    missing = [op for op in sp.op_names() if op not in CASES]
    assert not missing, f"primitives without a reference test case: {missing}"


@pytest.mark.parametrize("op,dtype,layout", params())
def test_primitive(op, dtype, layout):
    if op not in CASES:
        pytest.fail(f"no reference case for primitive {op}")
    gc.collect()
    before = sp.lib.sp_cpu_live_bytes()
    CASES[op](op, dtype, layout)
    gc.collect()
    # Only growth is a leak: tensors of an earlier failed test (kept alive by
    # its traceback) may be freed meanwhile.
    assert sp.lib.sp_cpu_live_bytes() <= before, "the primitive leaked memory"


def test_max_pool_2x2_fast_path_bits():
    """The 2x2/stride-2 float32 fast path of max pooling (contiguous rows)
    gives the generic path's bits (taken by a strided view) on ties, signed
    zeros and NaNs, forward and backward."""
    r = np.random.default_rng(7)
    xs = (3, 4, 10, 9)
    x = r.integers(0, 2, xs).astype(np.float64)
    x[0, 0, 0, :4] = [0.0, -0.0, -0.0, 0.0]
    x[1, 2, 4, 3] = np.nan
    x[2, 3, 7, 0] = np.nan
    x[2, 3, 6, 1] = np.nan
    dy = r.uniform(-1, 1, (3, 4, 5, 4))
    dy[0, 0, 0, 0] = -0.0
    a = {"kernel_size": [2, 2], "stride": [2, 2]}
    fast = tensor(x, "float32")
    slow = tensor(x, "float32", "transposed")  # column stride != 1: the generic path
    assert fast.numpy().tobytes() == slow.numpy().tobytes()
    (yf,) = call("max_pool2d", [fast], a)
    (ys,) = call("max_pool2d", [slow], a)
    assert yf.numpy().tobytes() == ys.numpy().tobytes()
    (df,) = call("max_pool2d_backward", [fast, tensor(dy, "float32")], a)
    (ds,) = call("max_pool2d_backward", [slow, tensor(dy, "float32")], a)
    assert df.numpy().tobytes() == ds.numpy().tobytes()
    assert np.isnan(yf.numpy()[1, 2, 2, 1]) and np.isnan(yf.numpy()[2, 3, 3, 0])
