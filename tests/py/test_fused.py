"""fused_elementwise and the fuse pass.

The primitive must give what the chain of primitives it stands for gives:
bit for bit for elementwise chains of every dtype (each step runs the
unfused op's own loop and rounds to the step's dtype), with broadcasting,
strided and transposed inputs, and for any thread count; with a reduction
at the end, max/min exactly and sum/mean within the final rounding (both
accumulate in double, in different orders), and identically for any
thread count.  Tensors here span several blocks and tiles of the CPU
kernel (512 and 32768 elements) so block and tile edges fall inside them.

The pass: every corpus program prints the same with `fuse` appended to the
optimization pipeline, and the prim-call program fusion_prims.py does get
fused calls.  Bad programs are errors naming the problem, never crashes.
"""
import os
import subprocess

import numpy as np
import pytest

import spore_ct as sp
from spore_ct import FLOATS, SporeError, call, tensor
from test_ops import fused_unfused, rand_values, rng

ALL = ["float32", "float64", "float16", "bfloat16", "int8", "uint8", "int32", "int64", "bool"]


def set_threads(n):
    import ctypes
    sp.lib.sp_set_num_threads.argtypes = [ctypes.c_int]
    assert sp.lib.sp_set_num_threads(n) == 0


@pytest.fixture(autouse=True)
def restore_threads():
    import ctypes
    sp.lib.sp_get_num_threads.restype = ctypes.c_int
    n = sp.lib.sp_get_num_threads()
    yield
    set_threads(n)


def fused(program, inputs, attrs=None):
    return call("fused_elementwise", inputs, dict(attrs or {}, program=program))[0]


def same_bits(f, u):
    assert f.dtype == u.dtype and f.shape == u.shape
    np.testing.assert_array_equal(f.numpy(), u.numpy())


# ---------------------------------------------------------------- elementwise chains

CHAINS_FLOAT = [
    "i0 i1 mul i2 add gelu",
    "i0 i1 mul i2 add gelu{approximate=tanh} f:0.5 mul i0 sub",
    "i0 tanh i1 sigmoid mul i2 silu add exp log1p",
    "i0 abs sqrt rsqrt i1 maximum i2 minimum reciprocal",
    "i0 i1 div floor i2 atan2 sin cos",
    "i0 i1 pow i2 mod i2 floor_div expm1 softplus{beta=2.0,threshold=3.0}",
    "i0 square erf round ceil neg sign relu",
    "i0 i1 less i0 i2 where i1 greater_equal i1 i2 where clamp{min=-0.5}",
    "i0 cast{dtype=float64} i1 add cast{dtype=float16} f:3 mul",
    "i0 isnan logical_not i1 isfinite logical_and i0 i2 where",
    # a masked gradient (relu's rule): the where's literal is spread over the
    # block for the branch-free loop; a (70, 1) input broadcast along rows is
    # gathered by filling runs
    "i0 f:0 greater i1 b:0 where",
    "i0 i2 add relu i0 f:0 less f:1 i1 where mul",
]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
@pytest.mark.parametrize("program", CHAINS_FLOAT)
def test_float_chains_bit_exact(dtype, program):
    r = rng("chain", dtype, program)
    x = rand_values(r, (70, 513), dtype, 0.1, 3.0)
    a = rand_values(r, (513,), dtype, 0.1, 3.0)
    b = rand_values(r, (70, 1), dtype, 0.1, 3.0)
    for layout in ["contig", "transposed", "strided"]:
        ins = [tensor(x, dtype, layout), tensor(a, dtype), tensor(b, dtype, "strided")]
        same_bits(fused(program, ins), fused_unfused(program, ins))


CHAINS_INT = [
    ("i0 i1 mul n:3 add abs i2 sub", ["int8", "uint8", "int32", "int64"]),
    ("i0 i1 floor_div i2 mod i1 pow neg", ["int8", "uint8", "int32", "int64"]),
    ("i0 i1 maximum i2 minimum square clamp{min=-5.0,max=7.5} sign", ["int8", "int32", "int64"]),
    ("i0 i1 div i2 add", ["int8", "uint8", "int32", "int64"]),
    ("i0 i1 equal i1 i2 less logical_or i0 i2 where", ALL),
    ("i0 i1 logical_and logical_not i2 logical_or", ALL),
]


@pytest.mark.parametrize("program,dtypes", CHAINS_INT)
def test_int_bool_chains_exact(program, dtypes):
    for dtype in dtypes:
        r = rng("int", dtype, program)
        ins = [tensor(rand_values(r, (33, 40), dtype), dtype, "transposed"),
               tensor(rand_values(r, (40,), dtype), dtype), tensor(rand_values(r, (), dtype), dtype)]
        same_bits(fused(program, ins), fused_unfused(program, ins))


def test_mixed_dtypes_and_literals_follow_promotion():
    r = rng("mixed")
    x16 = tensor(r.uniform(-2, 2, (9, 700)), "float16")
    x64 = tensor(r.uniform(-2, 2, (700,)), "float64")
    i32 = tensor(r.integers(-9, 9, (9, 1)).astype(np.int32), "int32")
    for prog in ["i0 f:1.5 mul i2 add", "i2 f:0.5 mul", "i2 n:3 floor_div i0 add i1 mul",
                 "f:2.0 i0 sub i2 mul exp", "i0 b:1 add"]:
        ins = [x16, x64, i32]
        f, u = fused(prog, ins), fused_unfused(prog, ins)
        same_bits(f, u)
    assert fused("i2 f:0.5 mul", [x16, x64, i32]).dtype == "int32"  # weak literal: int32 * 0.5 -> int32
    assert fused("i0 i1 mul", [x16, x64, i32]).dtype == "float64"


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_threads_do_not_change_bits(dtype):
    r = rng("threads", dtype)
    ins = [tensor(r.uniform(-2, 2, (257, 301)), dtype, "transposed"), tensor(r.uniform(-2, 2, (301,)), dtype)]
    prog = "i0 i1 mul tanh i0 add"
    outs = []
    for n in (1, 2, 4):
        set_threads(n)
        outs.append(fused(prog, ins).numpy())
        for red, ax in [("sum", None), ("sum", (0,)), ("mean", (1,)), ("max", (0, 1)), ("min", (0,))]:
            at = {"reduce": red}
            if ax:
                at["axes"] = ax
            outs.append(fused(prog, ins, at).numpy())
    k = len(outs) // 3
    for j in range(k):
        np.testing.assert_array_equal(outs[j], outs[k + j])
        np.testing.assert_array_equal(outs[j], outs[2 * k + j])


# ---------------------------------------------------------------- reductions

@pytest.mark.parametrize("dtype", ALL)
def test_reductions_match_unfused(dtype):
    r = rng("red", dtype)
    shape = (3, 129, 257)  # 99k elements: three tiles, outputs across tile edges
    x = tensor(rand_values(r, shape, dtype), dtype, "strided")
    a = tensor(rand_values(r, shape[1:], dtype), dtype)
    prog = ("i0 i1 mul f:0.25 mul exp" if dtype in FLOATS else
            "i0 i1 add" if dtype != "bool" else "i0 i1 logical_or")
    for red in ["sum", "mean", "max", "min"]:
        if red == "mean" and dtype not in FLOATS:
            continue
        if red in ("max", "min") and dtype == "bool":
            continue
        for ax, kd in [(None, 0), ((0,), 1), ((-1,), 0), ((0, 2), 0), ((1,), 1), ((2, 0, 1), 0)]:
            at = {"reduce": red, "keepdims": kd}
            if ax is not None:
                at["axes"] = ax
            f, u = fused(prog, [x, a], at), fused_unfused(prog, [x, a], at)
            assert f.dtype == u.dtype and f.shape == u.shape, (red, ax)
            if red in ("max", "min") or f.dtype not in FLOATS:
                np.testing.assert_array_equal(f.numpy(), u.numpy())
            else:
                # both accumulate in double and round once: equal up to that rounding
                rt = {"float32": 2e-7, "float64": 1e-13, "float16": 1e-3, "bfloat16": 8e-3}[f.dtype]
                np.testing.assert_allclose(f.numpy().astype(np.float64), u.numpy().astype(np.float64),
                                           rtol=rt, atol=0)


def test_empty_tensors():
    e = tensor(np.zeros((0, 4)), "float32")
    assert fused("i0 exp", [e]).shape == (0, 4)
    s = fused("i0 exp", [e], {"reduce": "sum", "axes": (0,)})
    np.testing.assert_array_equal(s.numpy(), np.zeros(4, np.float32))
    m = fused("i0 exp", [e], {"reduce": "mean", "axes": (0,)})
    assert np.isnan(m.numpy()).all()
    with pytest.raises(SporeError):
        fused("i0 exp", [e], {"reduce": "max", "axes": (0,)})


# ---------------------------------------------------------------- bad programs

@pytest.mark.parametrize("program,words", [
    ("", "no primitive"),
    ("i0", "no primitive"),
    ("i0 nosuchop", "no primitive called"),
    ("i0 matmul", "not an elementwise"),
    ("i0 dropout", "not an elementwise"),
    ("i0 fused_elementwise", "not an elementwise"),
    ("i0 add", "needs 2 operands"),
    ("i0 i0 i0 add", "exactly"),
    ("i5 exp", "reads input 5"),
    ("i0 f:x add", "not a literal"),
    ("i0 b:2 add", "not a literal"),
    ("i0 n:99999999999999999999 add", "not a literal"),
    ("f:1 f:2 add", "no tensor operand"),
    ("i0 gelu{approximate=fast}", "approximate"),
    ("i0 gelu{approximate", "must end with"),
    ("i0 clamp{min}", "name=value"),
    ("i0 clamp{min=1,min=2}", "twice"),
    ("i0 cast{dtype=float99}", "float99"),
    ("i0 i1 add", "reads input 1"),
    (" ".join(["i0"] + ["exp"] * 65), "more than 64 steps"),
])
def test_bad_programs_are_errors(program, words):
    x = tensor(np.ones((2, 3)), "float32")
    with pytest.raises(SporeError) as e:
        fused(program, [x])
    assert words in str(e.value), str(e.value)


def test_bad_inputs_and_attributes_are_errors():
    x, y = tensor(np.ones((2, 3)), "float32"), tensor(np.ones((4,)), "float32")
    with pytest.raises(SporeError, match="cannot be broadcast"):
        fused("i0 i1 add", [x, y])
    with pytest.raises(SporeError, match="program"):
        call("fused_elementwise", [x], {})
    with pytest.raises(SporeError, match="reduce must be"):
        fused("i0 exp", [x], {"reduce": "prod"})
    with pytest.raises(SporeError):
        fused("i0 exp", [x], {"reduce": "sum", "axes": (5,)})
    with pytest.raises(SporeError):  # exp of an integer, as the unfused exp says
        fused("i0 exp", [tensor(np.ones(3), "int32")])


# ---------------------------------------------------------------- the pass on programs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPORE = os.environ.get("SPORE_BIN", os.path.join(ROOT, "build", "spore"))
PIPE = "inline,beta,switch_const,tuple_simplify,cse,fold,algebra,dce"


def spore(*args):
    if not os.path.exists(SPORE):
        pytest.skip(f"{SPORE} is not built (set SPORE_BIN)")
    env = dict(os.environ, SPORE_NUM_THREADS="2")
    return subprocess.run([SPORE, *args], capture_output=True, text=True, timeout=300, env=env)


def corpus():
    out = []
    for d, _, files in os.walk(os.path.join(ROOT, "tests", "programs")):
        out += [os.path.join(d, f) for f in files if f.endswith(".py")]
    return sorted(out)


@pytest.mark.parametrize("path", corpus(), ids=lambda p: os.path.relpath(p, ROOT))
def test_corpus_same_with_fuse(path):
    plain = spore("run", "--passes", PIPE, path)
    fusedr = spore("run", "--passes", PIPE + ",fuse", path)
    assert (fusedr.returncode, fusedr.stdout, fusedr.stderr) == (plain.returncode, plain.stdout, plain.stderr)


def test_prim_program_is_fused():
    path = os.path.join(ROOT, "tests", "programs", "fusion_prims.py")
    ir = spore("ir", "--passes", PIPE + ",fuse", path)
    assert ir.returncode == 0, ir.stderr
    assert ir.stdout.count("prim.fused_elementwise(") >= 4, ir.stdout
    assert '"i0 i1 mul i2 add gelu{approximate=tanh} f:0.5 mul i0 sub clamp{min=-1.0,max=2.0}"' in ir.stdout
    assert 'keyword("reduce", "sum")' in ir.stdout


def test_constant_leaves_become_literals():
    """Creation calls and 0-d constants in a fused tree become literals only
    where that changes no dtype, shape or value (fuse.c's essay): here the
    zeros/ones/full(0.5) of `e` and the zeros_like of `g` are gone (no
    launch left for them), while the zeros that widens `e` to (2, 3, 4),
    the float32 full(0.1) that promotes a float16 sum and the float64
    full(0.5) (a where literal would be held as bool) stay inputs; and the
    compiled program prints what the VM prints."""
    path = os.path.join(ROOT, "tests", "programs", "fusion_consts.py")
    ir = spore("ir", path, "--entry", "f", "--stage", "fuse", "--args", "f32[3,4], f32[3,4]")
    assert ir.returncode == 0, ir.stderr
    text = ir.stdout
    assert '"i0 f:1 greater i0 f:0 greater i1 f:0 where f:2 mul f:1 add f:0.5 maximum i2 where"' in text, text
    assert '"i0 i1 f:0 where"' in text, text
    creations = [ln.split("= prim.")[1].split("(")[0] for ln in text.splitlines()
                 if "= prim.zeros(" in ln or "= prim.ones(" in ln or "= prim.full(" in ln]
    assert creations == ["zeros", "full", "full"], text
    assert 'prim.zeros(keyword("shape", (2, 3, 4)))' in text
    assert 'keyword("value", 0.1)' in text and 'keyword("value", 0.5), keyword("dtype", dtype.float64)' in text
    vm = spore("run", path)
    comp = spore("run", "--compile", path)
    assert vm.returncode == 0 and (comp.returncode, comp.stdout) == (0, vm.stdout), comp.stderr
