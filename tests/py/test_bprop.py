"""Gradient rules (src/ops/bprop/*.py) against central finite differences.

Generated from the registry: every primitive flagged differentiable in
ops.def must have a rule `bprop_<name>` in the rule files AND cases here,
or the suite fails.  For each case the test draws float64 inputs (with
broadcasting shapes for the elementwise binary ops, several shapes and
attribute settings per primitive) away from the primitive's non-smooth
points, runs the forward through the ctypes harness (spore_ct), draws a
random dout for every float output, and evaluates the rule through
`spore run` on a generated program: the rule files concatenated with a
`main` that rebuilds the same tensors, runs the primitive (through the
`prim` module, keyword arguments as attributes) and calls the rule.  The
check is the directional form of the chain rule, for a few random
directions v per differentiable input x_i:

    <d_x_i, v>  ~=  sum_j <dout_j, (f_j(x_i + eps v) - f_j(x_i - eps v)) / (2 eps)>

with eps = 1e-6 in float64, tolerance ~1e-6 relative to the sizes involved.
The rule must also return one entry per tensor input, the input's shape and
dtype, and None for integer/bool inputs.  Cases with dout None for an
output that got no gradient check that multi-output rules treat None as
zeros.  All cases of one primitive share one generated program.
"""
import os
import re
import subprocess
import tempfile
import zlib

import numpy as np
import pytest

import spore_ct as ct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BPROP = os.path.join(ROOT, "src", "ops", "bprop")
SPORE = os.environ.get("SPORE_BIN", os.path.join(ROOT, "build", "spore"))
EPS = 1e-6
NDIR = 3
NONE = -(2**63)

# rules for primitives that are not flagged differentiable but are used in
# (or are the adjoints of) rules, checked like the others
EXTRA = ["embedding_backward", "sparse_softmax_cross_entropy_backward"]


def rule_files():
    names = sorted(f for f in os.listdir(BPROP) if f.endswith(".py"))
    assert "common.py" in names
    names.remove("common.py")
    return [os.path.join(BPROP, "common.py")] + [os.path.join(BPROP, n) for n in names]


def rule_source():
    return "\n\n".join(open(p, encoding="utf-8").read() for p in rule_files())


def rules_defined():
    return set(re.findall(r"^def bprop_(\w+)\(", rule_source(), re.M))


def diff_ops():
    return [n for n in ct.op_names() if ct.lib.sp_op_is_differentiable(ct.lib.sp_op_find(n.encode()))]


# ---- input generation -----------------------------------------------------------

class In:
    """A case input: kind 'f' (float64, differentiated), 'n' (float64, the
    rule must give None), 'i' (int64), 'b' (bool)."""

    def __init__(self, kind, value):
        self.kind = kind
        self.value = np.asarray(value, dtype={"f": np.float64, "n": np.float64, "i": np.int64,
                                              "b": np.bool_}[kind])


class Case:
    def __init__(self, inputs, attrs=None, variadic=False, dnone=(), tol=1.0):
        self.inputs = inputs
        self.attrs = attrs or {}
        self.variadic = variadic
        self.dnone = dnone      # output indices whose dout is passed as None
        self.tol = tol          # multiplier on the tolerance


def F(a):
    return In("f", a)


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def away(rng, shape, lo=0.2, hi=2.0):
    """Values with lo <= |v| <= hi, random signs."""
    return rng.uniform(lo, hi, shape) * rng.choice([-1.0, 1.0], shape)


def distinct(rng, shape):
    """Values at least 0.08 apart, each within 0.01 of a multiple of 0.1
    (no ties for max/sort/pooling; add 0.05 to keep two such tensors apart)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n // 2) * 0.1 + rng.uniform(-0.01, 0.01, n)).reshape(shape)


def frac(rng, shape, lo=0.15, hi=0.35):
    """k + f with f in [lo, hi] or [1-hi, 1-lo]: away from integers and halves."""
    f = rng.uniform(lo, hi, shape)
    f = np.where(rng.random(shape) < 0.5, f, 1.0 - f)
    return rng.integers(-3, 3, shape) + f


UNARY_SHAPES = [(), (5,), (3, 4), (2, 3, 2)]


def unary_cases(name, rng):
    def gen(shape):
        if name in ("log", "sqrt", "rsqrt", "reciprocal"):
            return rng.uniform(0.3, 2.0, shape)
        if name == "log1p":
            return rng.uniform(-0.5, 2.0, shape)
        if name in ("abs", "relu", "sign"):
            return away(rng, shape, 0.1, 2.0)
        if name in ("floor", "ceil", "round"):
            return frac(rng, shape)
        return rng.normal(0, 1.2, shape)
    cases = [Case([F(gen(s))]) for s in UNARY_SHAPES]
    if name == "gelu":
        cases += [Case([F(gen((3, 4)))], {"approximate": "tanh"}), Case([F(gen((5,)))], {"approximate": "none"})]
    if name == "softplus":
        x = away(rng, (4, 5), 0.1, 3.0)
        x = np.where(np.abs(x * 2.0 - 1.0) < 0.2, x + 0.3, x)
        cases.append(Case([F(x)], {"beta": 2.0, "threshold": 1.0}))
    if name == "clamp":
        def cl(shape):
            x = rng.uniform(-1.5, 1.5, shape)
            for b in (-0.5, 0.5):
                x = np.where(np.abs(x - b) < 0.05, x + 0.1, x)
            return x
        cases = [Case([F(cl((3, 4)))], {"min": -0.5, "max": 0.5}), Case([F(cl((6,)))], {"min": -0.5}),
                 Case([F(cl((2, 3)))], {"max": 0.5}), Case([F(cl(()))], {"min": -0.5, "max": 0.5})]
    return cases


BIN_SHAPES = [((3, 4), (3, 4)), ((3, 1), (1, 4)), ((2, 3, 4), (4,)), ((), (3,)), ((2, 1, 3), ())]


def binary_cases(name, rng):
    cases = []
    for sa, sb in BIN_SHAPES:
        full = np.broadcast_shapes(sa, sb)
        if name == "pow":
            a, b = rng.uniform(0.5, 2.0, sa), rng.normal(0, 1.5, sb)
        elif name == "div":
            a, b = rng.normal(0, 1, sa), away(rng, sb, 0.5, 2.0)
        elif name in ("maximum", "minimum"):
            a = distinct(rng, sa)
            b = distinct(rng, sb) + 0.05
        elif name == "mod":
            q = np.abs(frac(rng, full)) + 1.0
            if sa == full:
                b = away(rng, sb, 0.5, 2.0)
                a = np.broadcast_to(b, full) * q
            else:
                a = away(rng, sa, 0.5, 2.0)
                b = np.broadcast_to(a, full) / q
                if sb != full:
                    continue
        elif name == "atan2":
            a, b = away(rng, sa, 0.3, 2.0), away(rng, sb, 0.3, 2.0)
        else:
            a, b = rng.normal(0, 1, sa), rng.normal(0, 1, sb)
        cases.append(Case([F(a), F(b)]))
    if name in ("add", "mul"):
        # an integer operand gets None
        cases.append(Case([F(rng.normal(0, 1, (3, 4))), In("i", rng.integers(-3, 4, (4,)))]))
    return cases


def where_cases(rng):
    return [Case([In("b", rng.random((3, 4)) < 0.5), F(rng.normal(0, 1, (3, 4))), F(rng.normal(0, 1, (3, 4)))]),
            Case([In("b", rng.random((3, 1)) < 0.5), F(rng.normal(0, 1, (4,))), F(rng.normal(0, 1, ()))]),
            Case([In("b", rng.random((2, 3, 4)) < 0.5), F(rng.normal(0, 1, (3, 1))), F(rng.normal(0, 1, (2, 1, 4)))])]


def reduce_cases(name, rng):
    def gen(shape):
        if name == "prod":
            return away(rng, shape, 0.5, 1.5)
        if name in ("max", "min"):
            return distinct(rng, shape)
        return rng.normal(0, 1, shape)
    cases = [Case([F(gen((3, 4)))]), Case([F(gen((3, 4)))], {"axes": [1]}),
             Case([F(gen((3, 4)))], {"axes": [-1, 0], "keepdims": 1}),
             Case([F(gen((2, 3, 4)))], {"axes": [0, 2]}), Case([F(gen((2, 3, 4)))], {"axes": [1], "keepdims": 1}),
             Case([F(gen((5,)))], {"keepdims": 1})]
    if name == "sum":
        cases.append(Case([In("i", rng.integers(0, 5, (3, 4)))], {"axes": [0]}))
    return cases


def cumsum_cases(rng):
    return [Case([F(rng.normal(0, 1, (3, 4)))], {"axis": 0}), Case([F(rng.normal(0, 1, (3, 4)))], {"axis": -1}),
            Case([F(rng.normal(0, 1, (2, 3, 4)))], {"axis": 1}), Case([F(rng.normal(0, 1, (6,)))])]


def conv_configs():
    return [dict(x=(2, 3, 6, 6), w=(4, 3, 3, 3), attrs={"padding": [1]}),
            dict(x=(1, 2, 7, 6), w=(3, 2, 3, 2), attrs={"stride": [2, 2], "padding": [1, 0, 2, 1]}),
            dict(x=(2, 4, 6, 6), w=(4, 2, 3, 3), attrs={"groups": 2, "dilation": [2, 1], "pad_mode": "same"}),
            dict(x=(1, 3, 7, 7), w=(2, 3, 2, 3), attrs={"stride": [2, 3], "pad_mode": "valid"}),
            dict(x=(1, 2, 5, 5), w=(2, 2, 3, 3), attrs={"stride": [2, 2], "pad_mode": "same"})]


def conv_out_shape(cfg):
    x = ct.tensor(np.zeros(cfg["x"]), "float64")
    w = ct.tensor(np.zeros(cfg["w"]), "float64")
    return ct.call("conv2d", [x, w], cfg["attrs"])[0].shape


def pool_configs(avg):
    cfgs = [dict(x=(2, 2, 6, 6), attrs={"kernel_size": [2, 2]}),
            dict(x=(1, 2, 7, 7), attrs={"kernel_size": [3, 3], "stride": [2, 2], "padding": [1]}),
            dict(x=(1, 1, 7, 6), attrs={"kernel_size": [2, 2], "stride": [2, 2], "ceil_mode": 1}),
            dict(x=(1, 2, 5, 6), attrs={"kernel_size": [3, 2], "stride": [2, 1], "pad_mode": "same"}),
            dict(x=(2, 1, 5, 5), attrs={"kernel_size": [2, 3], "stride": [1, 2], "pad_mode": "valid"}),
            dict(x=(1, 2, 5, 7), attrs={"kernel_size": [2, 2], "stride": [2, 2], "pad_mode": "same"}),
            dict(x=(1, 1, 6, 5), attrs={"kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0, 0, 1]}),
            dict(x=(1, 1, 5, 6), attrs={"kernel_size": [3, 3], "stride": [2, 2], "padding": [0, 1]})]
    if avg:
        cfgs.append(dict(x=(1, 2, 6, 6), attrs={"kernel_size": [3, 3], "stride": [1, 1], "padding": [1],
                                                 "count_include_pad": 0}))
        cfgs.append(dict(x=(1, 1, 7, 7), attrs={"kernel_size": [2, 2], "stride": [2, 2], "padding": [1],
                                                 "ceil_mode": 1, "count_include_pad": 0}))
    return cfgs


def pool_out_shape(op, cfg):
    return ct.call(op, [ct.tensor(np.zeros(cfg["x"]), "float64")], cfg["attrs"])[0].shape


def cases_for(name):
    rng = rng_for(name)
    R = lambda *s: rng.normal(0, 1, s)  # noqa: E731
    if name in ("neg", "abs", "sign", "exp", "log", "log1p", "expm1", "sqrt", "rsqrt", "square", "reciprocal",
                "sin", "cos", "tanh", "sigmoid", "relu", "gelu", "silu", "softplus", "erf", "floor", "ceil",
                "round", "clamp"):
        return unary_cases(name, rng)
    if name in ("add", "sub", "mul", "div", "pow", "maximum", "minimum", "mod", "atan2"):
        return binary_cases(name, rng)
    if name == "where":
        return where_cases(rng)
    if name in ("sum", "mean", "max", "min", "prod", "logsumexp"):
        return reduce_cases(name, rng)
    if name == "cumsum":
        return cumsum_cases(rng)
    if name == "reshape":
        return [Case([F(R(3, 4))], {"shape": [2, 6]}), Case([F(R(2, 3, 2))], {"shape": [-1, 3]}),
                Case([F(R(1))], {"shape": []})]
    if name == "transpose":
        return [Case([F(R(2, 3, 4))], {"perm": [2, 0, 1]}), Case([F(R(3, 4))]),
                Case([F(R(2, 3, 4))], {"perm": [-1, 0, -2]})]
    if name == "broadcast_to":
        return [Case([F(R(3, 1))], {"shape": [2, 3, 4]}), Case([F(R())], {"shape": [2, 2]}),
                Case([F(R(4))], {"shape": [3, 4]})]
    if name == "concat":
        return [Case([F(R(2, 3)), F(R(1, 3)), F(R(4, 3))], {"axis": 0}, variadic=True),
                Case([F(R(2, 2)), F(R(2, 3))], {"axis": -1}, variadic=True),
                Case([F(R(3, 2))], {"axis": 1}, variadic=True)]
    if name == "split":
        return [Case([F(R(5, 4))], {"axis": 0, "sizes": [2, 3]}), Case([F(R(3, 6))], {"axis": 1, "sizes": [1, 2, 3]}),
                Case([F(R(3, 6))], {"axis": -1, "sizes": [4, 2]}, dnone=(0,)),
                Case([F(R(4, 2))], {"axis": 0, "sizes": [4]})]
    if name == "stack":
        return [Case([F(R(2, 3)), F(R(2, 3)), F(R(2, 3))], {"axis": 1}, variadic=True),
                Case([F(R(4)), F(R(4))], {"axis": -1}, variadic=True),
                Case([F(R(2, 2))], {"axis": 0}, variadic=True)]
    if name == "pad":
        return [Case([F(R(3, 4))], {"pads": [1, 2, 0, 3], "value": 0.5}),
                Case([F(R(4, 5))], {"pads": [2, 1, 1, 3], "mode": "reflect"}),
                Case([F(R(2, 3, 4))], {"pads": [0, 0, 2, 1, 3, 0], "mode": "reflect"})]
    if name == "tile":
        return [Case([F(R(2, 3))], {"reps": [2, 2]}), Case([F(R(3))], {"reps": [2, 1, 2]}),
                Case([F(R(2, 3))], {"reps": [3]})]
    if name == "slice":
        return [Case([F(R(5, 6))], {"begin": [1, NONE], "end": [4, NONE], "step": [1, 2]}),
                Case([F(R(5, 6))], {"begin": [NONE, -1], "end": [NONE, NONE], "step": [2, -2]}),
                Case([F(R(4, 3, 5))], {"begin": [-3, 0, 4], "end": [100, 2, -100], "step": [1, 1, -1]}),
                Case([F(R(4))], {"begin": [3], "end": [1], "step": [1]})]
    if name == "gather":
        return [Case([F(R(5, 3)), In("i", [0, 4, -1, 2, 0])], {"axis": 0}),
                Case([F(R(2, 5, 3)), In("i", [[1, 1], [3, -5]])], {"axis": 1}),
                Case([F(R(4, 3)), In("i", 2)], {"axis": -1}),
                Case([F(R(6)), In("i", [5, 5, 0])])]
    if name == "take_along_axis":
        return [Case([F(R(4, 5)), In("i", rng.integers(0, 4, (3, 5)))], {"axis": 0}),
                Case([F(R(4, 5)), In("i", rng.integers(0, 5, (4, 7)))], {"axis": 1}),
                Case([F(R(2, 3, 4)), In("i", rng.integers(-3, 3, (2, 3, 4)))], {"axis": -2})]
    if name == "scatter_add":
        return [Case([F(R(5, 4)), In("i", rng.integers(0, 5, (3, 4))), F(R(3, 4))], {"axis": 0}),
                Case([F(R(3, 6)), In("i", rng.integers(0, 6, (2, 4))), F(R(2, 4))], {"axis": 1})]
    if name == "cast":
        return [Case([F(R(3, 4))], {"dtype": ct.DType("float64")}),
                Case([In("i", rng.integers(0, 5, (4,)))], {"dtype": ct.DType("float64")})]
    if name == "sort":
        return [Case([F(distinct(rng, (3, 5)))]), Case([F(distinct(rng, (4, 3)))], {"axis": 0, "descending": 1}),
                Case([F(distinct(rng, (6,)))], {"descending": 1}, dnone=(1,))]
    if name == "topk":
        return [Case([F(distinct(rng, (3, 6)))], {"k": 3}), Case([F(distinct(rng, (5, 2)))], {"k": 2, "axis": 0, "largest": 0}),
                Case([F(distinct(rng, (7,)))], {"k": 7}, dnone=(1,))]
    if name == "matmul":
        return [Case([F(R(3, 4)), F(R(4, 5))]), Case([F(R(4, 3)), F(R(4, 5))], {"transpose_a": 1}),
                Case([F(R(3, 4)), F(R(5, 4))], {"transpose_b": 1}),
                Case([F(R(2, 4, 3)), F(R(5, 4))], {"transpose_a": 1, "transpose_b": 1}),
                Case([F(R(2, 3, 4)), F(R(4, 5))]), Case([F(R(2, 1, 3, 4)), F(R(5, 4, 2))]),
                Case([F(R(4)), F(R(2, 4, 5))]), Case([F(R(3, 4)), F(R(4))]), Case([F(R(4)), F(R(4))])]
    if name == "conv2d":
        return [Case([F(R(*c["x"])), F(R(*c["w"]))], c["attrs"]) for c in conv_configs()]
    if name == "conv2d_backprop_input":
        return [Case([F(R(*conv_out_shape(c))), F(R(*c["w"]))], dict(c["attrs"], input_shape=list(c["x"])))
                for c in conv_configs()]
    if name == "conv2d_backprop_filter":
        return [Case([F(R(*conv_out_shape(c))), F(R(*c["x"]))], dict(c["attrs"], filter_shape=list(c["w"])))
                for c in conv_configs()]
    if name == "max_pool2d":
        return [Case([F(distinct(rng, c["x"]))], c["attrs"]) for c in pool_configs(False)]
    if name == "max_pool2d_backward":
        return [Case([F(distinct(rng, c["x"])), F(R(*pool_out_shape("max_pool2d", c)))], c["attrs"])
                for c in pool_configs(False)]
    if name == "avg_pool2d":
        return [Case([F(R(*c["x"]))], c["attrs"]) for c in pool_configs(True)]
    if name == "avg_pool2d_backward":
        return [Case([F(R(*pool_out_shape("avg_pool2d", c)))], dict(c["attrs"], input_shape=list(c["x"])))
                for c in pool_configs(True)]
    if name in ("softmax", "log_softmax"):
        return [Case([F(R(3, 5))]), Case([F(R(3, 5))], {"axis": 0}), Case([F(R(2, 3, 4))], {"axis": 1}),
                Case([F(R(6))])]
    if name == "sparse_softmax_cross_entropy":
        lab = In("i", rng.integers(0, 5, (4,)))
        return [Case([F(R(4, 5)), lab]), Case([F(R(4, 5)), lab], {"reduction": "sum"}),
                Case([F(R(4, 5)), lab], {"reduction": "none"})]
    if name == "sparse_softmax_cross_entropy_backward":
        # the rule of cross-entropy's rule (grad of grad through the loss)
        lab = In("i", rng.integers(0, 5, (4,)))
        return [Case([F(R(4, 5)), lab, F(R())]), Case([F(R(4, 5)), lab, F(R())], {"reduction": "sum"}),
                Case([F(R(4, 5)), lab, F(R(4))], {"reduction": "none"})]
    if name == "layer_norm":
        return [Case([F(R(3, 4)), F(R(4)), F(R(4))]), Case([F(R(2, 3, 4)), F(R(3, 4)), F(R(3, 4))], {"axis": 1}),
                Case([F(R(3, 5)), F(R(5)), F(R(5))], {"epsilon": 0.1}, dnone=(1, 2)),
                Case([F(R(2, 3)), F(R(2, 3)), F(R(2, 3))], {"axis": 0})]
    if name == "batch_norm":
        def bn(shape, training):
            c = shape[1]
            k = "n" if training else "f"
            return [F(R(*shape)), F(R(c)), F(R(c)), In(k, rng.normal(0, 0.5, c)), In(k, rng.uniform(0.5, 2, c))]
        return [Case(bn((4, 3, 2, 2), 1)), Case(bn((5, 3), 1), {"epsilon": 0.01}),
                Case(bn((4, 3, 2, 2), 1), dnone=(1, 2)),
                Case(bn((2, 3, 2, 2), 0), {"training": 0}), Case(bn((4, 2), 0), {"training": 0})]
    if name == "dropout":
        return [Case([F(R(4, 5))], {"p": 0.3, "seed": 7, "offset": 0}),
                Case([F(R(3, 3))], {"p": 0.0, "seed": 1, "offset": 4}),
                Case([F(R(6))], {"p": 0.5, "seed": 3, "offset": 9}, dnone=(1,))]
    if name == "embedding":
        return [Case([F(R(6, 3)), In("i", rng.integers(0, 6, (2, 4)))]), Case([F(R(4, 2)), In("i", [3, 3, 0])])]
    if name == "embedding_backward":
        return [Case([F(R(2, 4, 3)), In("i", rng.integers(0, 6, (2, 4)))], {"num_embeddings": 6})]
    return []


# ---- the generated program --------------------------------------------------------

def lit(v):
    """Source text of an attribute value."""
    if isinstance(v, ct.DType):
        return f"spore.{v.name}"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, int) and v == NONE:
        return "_SLICE_NONE"
    if isinstance(v, (list, tuple)):
        return "(" + "".join(lit(x) + ", " for x in v) + ")"
    if isinstance(v, float):
        return repr(float(v))
    return str(int(v))


def tensor_src(a, kind):
    a = np.asarray(a)
    dt = {"f": "float64", "n": "float64", "i": "int64", "b": "bool"}[kind]
    flat = a.reshape(-1).tolist()
    if kind in ("f", "n"):
        body = "[" + ", ".join(repr(float(x)) for x in flat) + "]"
    elif kind == "b":
        body = "[" + ", ".join("True" if x else "False" for x in flat) + "]"
    else:
        body = "[" + ", ".join(str(int(x)) for x in flat) + "]"
    if not flat:
        return f"ops.zeros({lit(list(a.shape))}, dtype=spore.{dt})"
    return f"prim.reshape(ops.tensor({body}, dtype=spore.{dt}), shape={lit(list(a.shape))})"


EMIT = '''

def _emit(cid, r):
    print("@R", cid, len(r))
    for k in range(len(r)):
        g = r[k]
        if g is None:
            print("@G", cid, k, "None")
        else:
            print("@G", cid, k, str(g.dtype), "|", g.shape, "|", prim.reshape(g, shape=(-1,)).tolist())
'''


def forward(name, case, values):
    ins = []
    for inp, v in zip(case.inputs, values):
        dt = {"f": "float64", "n": "float64", "i": "int64", "b": "bool"}[inp.kind]
        ins.append(ct.tensor(np.array(v, copy=True), dt))
    return [o.numpy() for o in ct.call(name, ins, case.attrs)]


def is_float(a):
    return np.issubdtype(np.asarray(a).dtype, np.floating)


def build_program(name, cases, douts):
    lines = [rule_source(), EMIT, "", "def main():"]
    for cid, (case, dout) in enumerate(zip(cases, douts)):
        xs = []
        for k, inp in enumerate(case.inputs):
            lines.append(f"    x{cid}_{k} = {tensor_src(inp.value, inp.kind)}")
            xs.append(f"x{cid}_{k}")
        kw = "".join(f", {k}={lit(v)}" for k, v in case.attrs.items())
        args = "(" + "".join(x + ", " for x in xs) + ")" if case.variadic else ", ".join(xs)
        lines.append(f"    out{cid} = prim.{name}({', '.join(xs)}{kw})")
        if len(dout) == 1:
            d = f"ops.zeros_like(out{cid})" if dout[0] is None else tensor_src(dout[0], "f")
        else:
            parts = []
            for j, dj in enumerate(dout):
                if j in case.dnone:
                    parts.append("None")
                elif dj is None:
                    parts.append(f"ops.zeros_like(out{cid}[{j}])")
                else:
                    parts.append(tensor_src(dj, "f"))
            d = "(" + ", ".join(parts) + ")"
        lines.append(f"    dout{cid} = {d}")
        lines.append(f"    _emit({cid}, bprop_{name}({args}, out{cid}, dout{cid}{kw}))")
    lines.append("    return 0")
    return "\n".join(lines) + "\n"


def run_program(src):
    if not os.path.exists(SPORE):
        pytest.skip(f"{SPORE} is not built (set SPORE_BIN)")
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
        path = f.name
    try:
        env = dict(os.environ, SPORE_NUM_THREADS="1")
        r = subprocess.run([SPORE, "run", path], capture_output=True, text=True, timeout=120, env=env)
    finally:
        os.unlink(path)
    assert r.returncode == 0, f"spore run failed:\n{r.stderr[-3000:]}"
    res = {}
    for line in r.stdout.splitlines():
        if line.startswith("@R "):
            _, cid, n = line.split()
            res[int(cid)] = [None] * int(n)
        elif line.startswith("@G "):
            head, *rest = line.split("|")
            _, cid, k, dt = head.split()
            if dt == "None":
                continue
            shape = eval(rest[0])  # noqa: S307 -- our own printed tuple
            vals = eval(rest[1], {"nan": np.nan, "inf": np.inf})  # noqa: S307
            res[int(cid)][int(k)] = (dt.replace("spore.", ""), tuple(shape), np.array(vals, dtype=np.float64))
    return res


def check_op(name):
    cases = cases_for(name)
    assert cases, f"no gradient-check case for differentiable primitive {name}"
    rng = np.random.default_rng(12345)
    douts, outs0 = [], []
    for case in cases:
        values = [i.value for i in case.inputs]
        outs = forward(name, case, values)
        outs0.append(outs)
        douts.append([rng.normal(0, 1, o.shape) if is_float(o) and j not in case.dnone else None
                      for j, o in enumerate(outs)])
    res = run_program(build_program(name, cases, douts))
    failures = []
    for cid, case in enumerate(cases):
        tag = f"{name} case {cid} attrs={case.attrs} shapes={[i.value.shape for i in case.inputs]}"
        got = res.get(cid)
        if got is None or len(got) != len(case.inputs):
            failures.append(f"{tag}: rule returned {None if got is None else len(got)} entries, "
                            f"want {len(case.inputs)}")
            continue
        for k, inp in enumerate(case.inputs):
            g = got[k]
            if inp.kind != "f":
                if g is not None:
                    failures.append(f"{tag}: input {k} ({inp.kind}) should get None")
                continue
            if g is None:
                failures.append(f"{tag}: input {k} got None")
                continue
            dt, shape, vals = g
            if dt != "float64" or shape != inp.value.shape:
                failures.append(f"{tag}: input {k} gradient is {dt}{shape}, want float64{inp.value.shape}")
                continue
            gv = vals.reshape(shape)
            for _ in range(NDIR):
                v = rng.normal(0, 1, shape)
                vals_p = [i.value for i in case.inputs]
                vals_m = list(vals_p)
                vals_p[k] = inp.value + EPS * v
                vals_m[k] = inp.value - EPS * v
                op_, om = forward(name, case, vals_p), forward(name, case, vals_m)
                rhs = 0.0
                scale = 0.0
                for j, dj in enumerate(douts[cid]):
                    if dj is None:
                        continue
                    diff = (op_[j].astype(np.float64) - om[j].astype(np.float64)) / (2 * EPS)
                    rhs += float(np.sum(dj * diff))
                    scale += float(np.linalg.norm(dj) * np.linalg.norm(diff))
                lhs = float(np.sum(gv * v))
                scale = max(scale, float(np.linalg.norm(gv) * np.linalg.norm(v)))
                if not abs(lhs - rhs) <= case.tol * (1e-6 * scale + 1e-8):
                    failures.append(f"{tag}: input {k}: <grad, v> = {lhs!r} but finite differences give {rhs!r}")
                    break
    assert not failures, "\n".join(failures)


def test_every_differentiable_primitive_has_a_rule_and_cases():
    rules = rules_defined()
    ops = diff_ops()
    assert len(ops) > 60
    missing = [n for n in ops if n not in rules]
    assert not missing, f"differentiable primitives without a rule bprop_<name>: {missing}"
    nocase = [n for n in ops + EXTRA if not cases_for(n)]
    assert not nocase, f"differentiable primitives without a gradient-check case: {nocase}"
    names = set(ct.op_names())
    unknown = [r for r in rules if r not in names]
    assert not unknown, f"rules for primitives that do not exist: {unknown}"


@pytest.mark.parametrize("name", diff_ops() + EXTRA)
def test_rule_against_finite_differences(name):
    check_op(name)


def test_rules_call_only_primitives_with_rules():
    """Grad of grad differentiates the rules themselves: every primitive a
    rule calls through `prim.` must have a rule of its own."""
    src = rule_source()
    rules = rules_defined()
    called = set(re.findall(r"\bprim\.(\w+)\(", src))
    assert called, "the rule files call no primitive?"
    missing = sorted(c for c in called if c not in rules)
    assert not missing, f"rules call primitives that have no rule: {missing}"


def test_gradients_keep_the_input_dtype():
    """Promotion is undone: a float32 operand of a float64 result gets a
    float32 gradient, summed over its broadcast axes; cast's rule casts back;
    integer operands get None."""
    src = rule_source() + EMIT + '''

def main():
    a = ops.ones((3, 1), dtype=spore.float32)
    b = ops.ones((4,), dtype=spore.float64) * 2.0
    o = prim.mul(a, b)
    _emit(0, bprop_mul(a, b, o, ops.ones_like(o)))
    c = prim.cast(a, dtype=spore.float64)
    _emit(1, bprop_cast(a, c, ops.ones_like(c), dtype=spore.float64))
    i = ops.tensor([1, 2, 3, 4])
    o2 = prim.add(b, i)
    _emit(2, bprop_add(b, i, o2, ops.ones_like(o2)))
    return 0
'''
    res = run_program(src)
    assert res[0][0][0] == "float32" and res[0][0][1] == (3, 1)
    np.testing.assert_array_equal(res[0][0][2], [8.0, 8.0, 8.0])
    assert res[0][1][0] == "float64" and res[0][1][1] == (4,)
    np.testing.assert_array_equal(res[0][1][2], [3.0, 3.0, 3.0, 3.0])
    assert res[1][0][0] == "float32" and res[1][0][1] == (3, 1)
    assert res[2][0][0] == "float64" and res[2][1] is None
