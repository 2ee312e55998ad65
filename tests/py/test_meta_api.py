"""Every function of the API (each row of src/runtime/api.def), the tensor
operators and indexing, run abstractly: on meta tensors with the primitive
trace installed (contract 1 of the graph compiler).

For each case the C check sp_test_api_trace (src/runtime/trace_check.h)
runs the call for real and on meta twins of its tensor arguments, and
proves that (a) nothing crashes, (b) the meta results have the real
results' dtypes and shapes, (c) the recorded primitive calls, replayed on
the real tensors, give the real values, and (d) the global random
generator did not move.  Functions that need values (item, tolist, math.*
on a tensor, ops.tensor of tensors...) must instead fail with an error
saying the value is not known at compile time.

The cases are generated from api.def: a row whose parameters are a plain
tensor (or two) gets a default call; every other row needs an entry in
RECIPES, so a new row without one fails test_every_row_has_a_case.
"""
import ctypes as C
import os
import re

import pytest

import spore_ct as ct

HERE = os.path.dirname(os.path.abspath(__file__))
API_DEF = os.path.join(HERE, "..", "..", "src", "runtime", "api.def")

ct.lib.sp_test_api_trace.restype = C.c_int
ct.lib.sp_test_api_trace.argtypes = [C.c_char_p, C.c_char_p, C.c_size_t]


def rows():
    text = open(API_DEF).read()
    pat = re.compile(r'^SP_API\((\w+),\s*(\w+),\s*(\w+),\s*"([^"]*)",\s*(\w+)\)', re.M)
    return [(m.group(1), m.group(2), m.group(4)) for m in pat.finditer(text)]


def qualified(module, name):
    return {"SPORE": "spore", "OPS": "ops", "MATH": "math", "TENSOR": "Tensor"}[module] + "." + name


X = "ops.randn(2, 3)"
Y = "ops.randn(2, 3)"

# name -> list of (args_expr, call_expr, expect); args_expr is a tuple
# expression bound to the parameters a, b, c, ... of f; expect 'ok' or
# 'value' (the traced call must fail: the value is needed).
RECIPES = {
    "spore.tensor": [("(ops.randn(2, 3),)", "spore.tensor(a)", "ok"),
                     ("(ops.randn(2, 3),)", "spore.tensor(a, spore.float64)", "ok"),
                     ("(ops.randn(2),)", "spore.tensor([a[0], a[1]])", "value")],
    "spore.Tensor": [("(ops.randn(2, 3),)", "spore.Tensor(a, dtype=spore.int32)", "ok"),
                     ("(1,)", "spore.Tensor([a, 2])", "ok")],
    "spore.set_seed": [("(5,)", "spore.set_seed(a)", "ok")],
    "spore.get_seed": [("(1,)", "spore.get_seed()", "ok")],
    "spore.grad": [("(ops.randn(3),)", "spore.grad(lambda x: (ops.sin(x) * x).sum())(a)", "ok")],
    "spore.value_and_grad": [("(ops.randn(3),)", "spore.value_and_grad(lambda x: ops.exp(x).sum())(a)", "ok")],
    "spore._grad_operation": [("(ops.randn(3),)", "ops.GradOperation()(lambda x: ops.tanh(x).sum())(a)", "ok")],
    "ops.GradOperation": [("(ops.randn(2),)", "ops.GradOperation(get_all=True)(lambda x, y: (x * y).sum())(a, a)", "ok")],
    "ops.tensor": [("(ops.randn(2, 3),)", "ops.tensor(a, dtype=spore.float16)", "ok"),
                   ("(1.5,)", "ops.tensor([[a, 2.0]])", "ok"),
                   ("(ops.randn(1),)", "ops.tensor([a[0], 1.0])", "value")],
    "ops.zeros": [("(1,)", "ops.zeros((2, 3))", "ok"), ("(1,)", "ops.zeros(4, spore.int32)", "ok")],
    "ops.ones": [("(1,)", "ops.ones((2, 3), dtype=spore.float64)", "ok")],
    "ops.full": [("(1,)", "ops.full((2, 2), 7)", "ok"), ("(1,)", "ops.full((3,), 2.5, dtype=spore.float16)", "ok"),
                 ("(ops.randn(1),)", "ops.full((2,), a)", "value")],
    "ops.zeros_like": [("(%s,)" % X, "ops.zeros_like(a)", "ok")],
    "ops.ones_like": [("(%s,)" % X, "ops.ones_like(a, dtype=spore.int64)", "ok")],
    "ops.full_like": [("(%s,)" % X, "ops.full_like(a, 3)", "ok")],
    "ops.arange": [("(1,)", "ops.arange(5)", "ok"), ("(1,)", "ops.arange(1, 4, 0.5)", "ok"),
                   ("(ops.tensor(5),)", "ops.arange(a)", "value")],
    "ops.randn": [("(1,)", "ops.randn(2, 3)", "ok"), ("(1,)", "ops.randn((4,), seed=3)", "ok")],
    "ops.rand": [("(1,)", "ops.rand(3, 2)", "ok")],
    "ops.normal": [("(1,)", "ops.normal((2, 2), 1.0, 2.0)", "ok"), ("(1,)", "ops.normal((3,), seed=7)", "ok")],
    "ops.uniform": [("(1,)", "ops.uniform((2, 2), 0.0, 5.0)", "ok")],
    "ops.randint": [("(1,)", "ops.randint(0, 10, (3, 2))", "ok")],
    "ops.bernoulli": [("(%s,)" % X, "ops.bernoulli(a, 0.3)", "ok"), ("(%s,)" % X, "ops.bernoulli(a, seed=2)", "ok")],
    "ops.gelu": [("(%s,)" % X, "ops.gelu(a)", "ok"), ("(%s,)" % X, "ops.gelu(a, approximate='tanh')", "ok")],
    "ops.softplus": [("(%s,)" % X, "ops.softplus(a, beta=2)", "ok")],
    "ops.leaky_relu": [("(%s,)" % X, "ops.leaky_relu(a, 0.1)", "ok")],
    "ops.clamp": [("(%s,)" % X, "ops.clamp(a, -0.5, 0.5)", "ok")],
    "ops.clip": [("(%s,)" % X, "ops.clip(a, max=0.1)", "ok")],
    "ops.div": [("(%s, %s)" % (X, Y), "ops.div(a, b)", "ok"),
                ("(%s, %s)" % (X, Y), "ops.div(a, b, rounding_mode='floor')", "ok"),
                ("(%s, %s)" % (X, Y), "ops.div(a, b, rounding_mode='trunc')", "ok")],
    "ops.pow": [("(%s,)" % X, "ops.pow(ops.abs(a), 2)", "ok")],
    "ops.where": [("(%s, %s)" % (X, Y), "ops.where(a > b, a, b)", "ok"), ("(%s,)" % X, "ops.where(a > 0, a, 0.0)", "ok")],
    "ops.cast": [("(%s,)" % X, "ops.cast(a, spore.int32)", "ok")],
    "ops.stop_gradient": [("(%s,)" % X, "ops.stop_gradient(a)", "ok")],
    "ops.sum": [("(%s,)" % X, "ops.sum(a)", "ok"), ("(%s,)" % X, "ops.sum(a, 1, keepdim=True)", "ok"),
                ("(%s,)" % X, "ops.sum(a, dtype=spore.float64)", "ok")],
    "ops.mean": [("(%s,)" % X, "ops.mean(a, axis=0)", "ok")],
    "ops.prod": [("(%s,)" % X, "ops.prod(a, 1, dtype=spore.float64)", "ok")],
    "ops.max": [("(%s,)" % X, "ops.max(a, axis=1, keepdims=True)", "ok")],
    "ops.min": [("(%s,)" % X, "ops.min(a)", "ok")],
    "ops.amax": [("(%s,)" % X, "ops.amax(a, (0, 1))", "ok")],
    "ops.amin": [("(%s,)" % X, "ops.amin(a, 0)", "ok")],
    "ops.logsumexp": [("(%s,)" % X, "ops.logsumexp(a, 1)", "ok")],
    "ops.argmax": [("(%s,)" % X, "ops.argmax(a, dim=1)", "ok"), ("(%s,)" % X, "ops.argmax(a)", "ok")],
    "ops.argmin": [("(%s,)" % X, "ops.argmin(a, 0, keepdims=True)", "ok")],
    "ops.cumsum": [("(%s,)" % X, "ops.cumsum(a, 1)", "ok"), ("(%s,)" % X, "ops.cumsum(a, 0, dtype=spore.float64)", "ok")],
    "ops.all": [("(%s,)" % X, "ops.all(a > 0)", "ok"), ("(%s,)" % X, "ops.all(a, axis=1)", "ok"),
                ("(ops.zeros((0, 2)),)", "ops.all(a)", "ok")],
    "ops.any": [("(%s,)" % X, "ops.any(a > 0, keep_dims=True)", "ok")],
    "ops.shape": [("(%s,)" % X, "ops.shape(a)", "ok")],
    "ops.rank": [("(%s,)" % X, "ops.rank(a)", "ok")],
    "ops.size": [("(%s,)" % X, "ops.size(a)", "ok")],
    "ops.numel": [("(%s,)" % X, "ops.numel(a)", "ok")],
    "ops.reshape": [("(%s,)" % X, "ops.reshape(a, (3, -1))", "ok"),
                    ("(%s,)" % X, "ops.reshape(a.T, (6,))", "ok")],
    "ops.transpose": [("(%s,)" % X, "ops.transpose(a, (1, 0))", "ok")],
    "ops.permute": [("(ops.randn(2, 3, 4),)", "ops.permute(a, (2, 0, 1))", "ok")],
    "ops.broadcast_to": [("(ops.randn(3),)", "ops.broadcast_to(a, (2, 3))", "ok")],
    "ops.concat": [("(%s, %s)" % (X, Y), "ops.concat((a, b), 1)", "ok")],
    "ops.cat": [("(%s, %s)" % (X, Y), "ops.cat([a, b])", "ok")],
    "ops.stack": [("(%s, %s)" % (X, Y), "ops.stack((a, b), axis=2)", "ok")],
    "ops.split": [("(ops.randn(5, 2),)", "ops.split(a, 2)", "ok"), ("(ops.randn(5, 2),)", "ops.split(a, (1, 4))", "ok")],
    "ops.pad": [("(%s,)" % X, "ops.pad(a, (1, 2))", "ok"), ("(%s,)" % X, "ops.pad(a, (1, 0, 0, 1), value=3.0)", "ok")],
    "ops.tile": [("(%s,)" % X, "ops.tile(a, (2, 1))", "ok")],
    "ops.gather": [("(%s, ops.tensor([2, 0]))" % X, "ops.gather(a, b, 1)", "ok")],
    "ops.gather_elements": [("(%s, ops.tensor([[0, 2], [1, 1]]))" % X, "ops.gather_elements(a, 1, b)", "ok")],
    "ops.take_along_axis": [("(%s, ops.tensor([[0, 2], [1, 1]]))" % X, "ops.take_along_axis(a, b, 1)", "ok")],
    "ops.scatter_add": [("(%s, ops.tensor([[0, 2], [1, 1]]), ops.ones((2, 2)))" % X, "ops.scatter_add(a, 1, b, c)", "ok")],
    "ops.one_hot": [("(ops.tensor([0, 2, 1]),)", "ops.one_hot(a, 4)", "ok")],
    "ops.squeeze": [("(ops.randn(1, 3, 1),)", "ops.squeeze(a)", "ok"), ("(ops.randn(1, 3, 1),)", "ops.squeeze(a, 2)", "ok")],
    "ops.expand_dims": [("(%s,)" % X, "ops.expand_dims(a, 1)", "ok")],
    "ops.unsqueeze": [("(%s,)" % X, "ops.unsqueeze(a, -1)", "ok")],
    "ops.flatten": [("(ops.randn(2, 3, 4),)", "ops.flatten(a)", "ok"), ("(ops.randn(2, 3, 4),)", "ops.flatten(a, start_dim=0)", "ok")],
    "ops.sort": [("(%s,)" % X, "ops.sort(a, descending=True)", "ok")],
    "ops.topk": [("(%s,)" % X, "ops.topk(a, 2)", "ok")],
    "ops.mm": [("(%s, ops.randn(3, 4))" % X, "ops.mm(a, b)", "ok")],
    "ops.matmul": [("(%s, ops.randn(3, 4))" % X, "ops.matmul(a, b)", "ok")],
    "ops.conv2d": [("(ops.randn(1, 2, 5, 5), ops.randn(3, 2, 3, 3), ops.randn(3))", "ops.conv2d(a, b, c, stride=2)", "ok"),
                   ("(ops.randn(1, 2, 5, 5), ops.randn(3, 2, 3, 3))", "ops.conv2d(a, b, pad_mode='same')", "ok")],
    "ops.max_pool2d": [("(ops.randn(1, 2, 4, 4),)", "ops.max_pool2d(a, 2)", "ok")],
    "ops.avg_pool2d": [("(ops.randn(1, 2, 4, 4),)", "ops.avg_pool2d(a, kernel_size=2, stride=2)", "ok")],
    "ops.softmax": [("(%s,)" % X, "ops.softmax(a, axis=0)", "ok")],
    "ops.log_softmax": [("(%s,)" % X, "ops.log_softmax(a)", "ok")],
    "ops.dropout": [("(%s,)" % X, "ops.dropout(a, p=0.5)", "ok"), ("(%s,)" % X, "ops.dropout(a, seed=4)", "ok"),
                    ("(%s,)" % X, "ops.dropout(a, training=False)", "ok")],
    "ops.layer_norm": [("(%s,)" % X, "ops.layer_norm(a, (3,))", "ok"),
                       ("(%s, ops.randn(3), ops.randn(3))" % X, "ops.layer_norm(a, (3,), b, c)", "ok")],
    "ops.batch_norm": [("(ops.randn(2, 3, 2, 2), ops.zeros(3), ops.ones(3))", "ops.batch_norm(a, b, c)", "ok"),
                       ("(ops.randn(2, 3, 2, 2), ops.zeros(3), ops.ones(3))", "ops.batch_norm(a, b, c, training=True)", "ok")],
    "ops.cross_entropy": [("(%s, ops.tensor([0, 2]))" % X, "ops.cross_entropy(a, b)", "ok"),
                          ("(%s, ops.tensor([0, 2]))" % X, "ops.cross_entropy(a, b, reduction='none')", "ok")],
    "ops.embedding": [("(ops.tensor([2, 0, 2]), ops.randn(3, 4))", "ops.embedding(a, b)", "ok")],
    "math.log": [("(2.0,)", "math.log(a)", "ok"), ("(8.0,)", "math.log(a, 2)", "ok"),
                 ("(ops.tensor(2.0),)", "math.log(a)", "value")],
    "math.atan2": [("(1.0, 2.0)", "math.atan2(a, b)", "ok")],
    "math.pow": [("(2.0, 3.0)", "math.pow(a, b)", "ok"), ("(ops.tensor(2.0), 3.0)", "math.pow(a, b)", "value")],
    "Tensor.reshape": [("(%s,)" % X, "a.reshape(3, 2)", "ok"), ("(%s,)" % X, "a.reshape((-1,))", "ok"),
                       ("(%s,)" % X, "a.T.reshape(6)", "ok")],
    "Tensor.view": [("(%s,)" % X, "a.view(6, 1)", "ok")],
    "Tensor.transpose": [("(%s,)" % X, "a.transpose()", "ok"), ("(ops.randn(2, 3, 4),)", "a.transpose(1, 2, 0)", "ok")],
    "Tensor.permute": [("(ops.randn(2, 3, 4),)", "a.permute((2, 1, 0))", "ok")],
    "Tensor.flatten": [("(ops.randn(2, 3, 4),)", "a.flatten()", "ok")],
    "Tensor.squeeze": [("(ops.randn(1, 3),)", "a.squeeze(0)", "ok")],
    "Tensor.expand_dims": [("(%s,)" % X, "a.expand_dims(0)", "ok")],
    "Tensor.unsqueeze": [("(%s,)" % X, "a.unsqueeze(2)", "ok")],
    "Tensor.astype": [("(%s,)" % X, "a.astype(spore.int8)", "ok")],
    "Tensor.to": [("(%s,)" % X, "a.to(spore.float64)", "ok")],
    "Tensor.sum": [("(%s,)" % X, "a.sum(axis=1)", "ok"), ("(%s,)" % X, "a.sum(dtype=spore.float64, keepdims=True)", "ok")],
    "Tensor.mean": [("(%s,)" % X, "a.mean(0)", "ok")],
    "Tensor.prod": [("(%s,)" % X, "a.prod()", "ok")],
    "Tensor.max": [("(%s,)" % X, "a.max(axis=0)", "ok")],
    "Tensor.min": [("(%s,)" % X, "a.min()", "ok")],
    "Tensor.argmax": [("(%s,)" % X, "a.argmax(1)", "ok")],
    "Tensor.argmin": [("(%s,)" % X, "a.argmin()", "ok")],
    "Tensor.cumsum": [("(%s,)" % X, "a.cumsum()", "ok"), ("(%s,)" % X, "a.cumsum(1)", "ok")],
    "Tensor.all": [("(%s,)" % X, "(a > 0).all()", "ok")],
    "Tensor.any": [("(%s,)" % X, "a.any(axis=0)", "ok")],
    "Tensor.clip": [("(%s,)" % X, "a.clip(-0.2, 0.2)", "ok")],
    "Tensor.clamp": [("(%s,)" % X, "a.clamp(min=0.0)", "ok")],
    "Tensor.softmax": [("(%s,)" % X, "a.softmax(0)", "ok")],
    "Tensor.matmul": [("(%s, ops.randn(3, 2))" % X, "a.matmul(b)", "ok")],
    "Tensor.pow": [("(%s,)" % X, "a.abs().pow(3)", "ok")],
    "Tensor.mul": [("(%s,)" % X, "a.mul(2)", "ok")],
    "Tensor.broadcast_to": [("(ops.randn(3),)", "a.broadcast_to((4, 3))", "ok")],
    "Tensor.tile": [("(%s,)" % X, "a.tile((1, 2))", "ok")],
    "Tensor.gather": [("(%s, ops.tensor([1]))" % X, "a.gather(b, 0)", "ok")],
    "Tensor.sort": [("(%s,)" % X, "a.sort(0)", "ok")],
    "Tensor.topk": [("(%s,)" % X, "a.topk(1, dim=0)", "ok")],
    "Tensor.item": [("(ops.randn(1),)", "a.item()", "value")],
    "Tensor.tolist": [("(%s,)" % X, "a.tolist()", "value")],
}

# the operators and indexing of builtins.c / tensor_value.c
EXTRA = [
    ("(%s, %s)" % (X, Y), "a + b * a - b / a", "ok"),
    ("(%s,)" % X, "a * 2 + 1", "ok"),
    ("(ops.tensor([[1, 2], [3, 4]]),)", "a * 2.5 + a // 2 + a % 3", "ok"),
    ("(ops.tensor([True, False]),)", "a + 1", "ok"),
    ("(%s, ops.randn(3, 4))" % X, "a @ b", "ok"),
    ("(%s, %s)" % (X, Y), "(a < b, a <= b, a > b, a >= b, a == b, a != b)", "ok"),
    ("(%s,)" % X, "(-a, +a, abs(a), a ** 2)", "ok"),
    ("(%s,)" % X, "2.0 - a", "ok"),
    ("(%s,)" % X, "(a.shape, a.dtype, a.ndim, a.size, len(a))", "ok"),
    ("(%s,)" % X, "(a.T, a.mT)", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[1]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[-1, 2:4]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[:, ::2, None, 1]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[..., ::-1]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[3:0:-2, -10:10]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[::-3, 4:1:-3, 5:5]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[:]", "ok"),
    ("(ops.randn(4, 5, 6),)", "a[None]", "ok"),
    ("(ops.randn(4, 5),)", "a[ops.tensor([3, 0, 3])]", "ok"),
    ("(ops.randn(4, 5), ops.tensor([1, 2]))", "a[b]", "ok"),
    ("(ops.randn(4, 5), ops.tensor(1))", "a[b]", "value"),
    ("(ops.randn(3, 2),)", "[r for r in a]", "ok"),
    ("(ops.randn(3),)", "a[1:].reshape(2, 1)[0]", "ok"),
    ("(ops.randn(2, 3),)", "a.T[1:]", "ok"),
    ("(%s,)" % X, "a.sum() > 0 and 1", "value"),
    ("(ops.randn(1),)", "1 if a else 2", "value"),
    ("(ops.tensor([3]),)", "int(a)", "value"),
    ("(ops.tensor([3.5]),)", "float(a)", "value"),
    ("(%s,)" % X, "print(a)", "value"),
    ("(%s,)" % X, "(a, 1) == (a + 0, 1)", "value"),
    ("(ops.randn(2, 2),)", "ops.relu(a).astype(spore.float16).sum(axis=0, keepdims=True).T", "ok"),
    # primitives called directly (rt_prim_call)
    ("(%s, %s)" % (X, Y), "spore.prim.add(a, b)", "ok"),
    ("(ops.randn(4, 3),)", "spore.prim.split(a, axis=0, sizes=(1, 3))", "ok"),
    ("(ops.randn(10),)", "ops.slice(a, begin=(2,), end=(8,), step=(3,))", "ok"),
    ("(%s, ops.tensor([0, 2]))" % X, "ops.sparse_softmax_cross_entropy(a, b, reduction='none')", "ok"),
    ("(%s,)" % X, "ops.add(a, 1.5)", "ok"),
]


def is_default(module, params):
    ps = [p.strip() for p in params.split(",") if p.strip()]
    kinds = [p.split(":")[1].split("=")[0] for p in ps]
    required = [p for p in ps if "=" not in p]
    return all(k == "T" for k in kinds[:len(required)]) and 1 <= len(required) <= 2


def default_case(module, name, params):
    ps = [p.strip() for p in params.split(",") if p.strip()]
    nreq = len([p for p in ps if "=" not in p])
    if module == "TENSOR":
        call = "a.%s(%s)" % (name, "b" if nreq == 2 else "")
    else:
        call = "%s(%s)" % (qualified(module, name), ", ".join("ab"[:nreq]))
    return ("(" + ", ".join([X, Y][:nreq]) + ("," if nreq == 1 else "") + ")", call, "ok")


def math_cases(name, params):
    n = len([p for p in params.split(",") if p.strip() and "=" not in p])
    args = "(" + ", ".join(["0.5", "1.5"][:n]) + ("," if n == 1 else "") + ")"
    call = "math.%s(%s)" % (name, ", ".join("ab"[:n]))
    return [(args, call, "ok"),
            ("(ops.tensor(0.5),)" if n == 1 else "(ops.tensor(0.5), 1.5)", call, "value")]


def all_cases():
    out = []
    for module, name, params in rows():
        q = qualified(module, name)
        if q in RECIPES:
            cases = RECIPES[q]
        elif module == "MATH":
            cases = math_cases(name, params)
        elif is_default(module, params):
            cases = [default_case(module, name, params)]
        else:
            cases = None
        out.append((q, cases))
    return out


def source(args, call):
    return ("import spore\nimport math\nfrom spore import ops\n\n"
            "def args():\n    spore.set_seed(11)\n    return %s\n\n"
            "def f(*p):\n    a = p[0] if len(p) > 0 else None\n    b = p[1] if len(p) > 1 else None\n"
            "    c = p[2] if len(p) > 2 else None\n    return %s\n" % (args, call))


def run_case(args, call):
    buf = C.create_string_buffer(4096)
    rc = ct.lib.sp_test_api_trace(source(args, call).encode(), buf, len(buf))
    return rc, buf.value.decode()


def test_every_row_has_a_case():
    missing = [q for q, cases in all_cases() if not cases]
    assert not missing, "api.def rows without a meta-trace case in test_meta_api.py: %s" % missing


CASES = [(q, i, c) for q, cases in all_cases() if cases for i, c in enumerate(cases)]


@pytest.mark.parametrize("q,i,case", CASES, ids=["%s-%d" % (q, i) for q, i, _ in CASES])
def test_api_traced(q, i, case):
    args, call, expect = case
    rc, report = run_case(args, call)
    if expect == "ok":
        assert rc == 0, "%s: %s" % (call, report)
        assert report.startswith("ok: ")
    else:
        assert rc == 1, "%s should need a value, got rc %d: %s" % (call, rc, report)
        assert "not known at compile time" in report, report


@pytest.mark.parametrize("case", EXTRA, ids=[c[1] for c in EXTRA])
def test_operators_traced(case):
    args, call, expect = case
    rc, report = run_case(args, call)
    if expect == "ok":
        assert rc == 0, "%s: %s" % (call, report)
    else:
        assert rc == 1, "%s should need a value, got rc %d: %s" % (call, rc, report)
        assert "not known at compile time" in report, report


def test_traces_are_the_primitives():
    # what the trace records, exactly
    assert run_case("(%s,)" % X, "ops.relu(a)") == (0, "ok: 1 relu")
    assert run_case("(%s,)" % X, "a.reshape(3, 2)") == (0, "ok: 1 reshape")
    assert run_case("(%s,)" % X, "a.T") == (0, "ok: 1 transpose")
    assert run_case("(ops.randn(4, 5),)", "a[1:3]") == (0, "ok: 1 slice")
    assert run_case("(ops.randn(4, 5),)", "a[1]") == (0, "ok: 2 slice reshape")
    assert run_case("(ops.randn(4, 5),)", "a[:, None]") == (0, "ok: 1 reshape")
    assert run_case("(ops.randn(4, 5),)", "a[...]") == (0, "ok: 0")
    assert run_case("(%s,)" % X, "a * 2") == (0, "ok: 1 mul")
    assert run_case("(1,)", "ops.randn(2, 3)") == (0, "ok: 1 normal random")
    assert run_case("(1,)", "ops.randn(2, 3, seed=1)") == (0, "ok: 1 normal")
    assert run_case("(%s,)" % X, "ops.layer_norm(a, (3,))") == (0, "ok: 3 full full layer_norm")


def test_value_errors_name_the_function():
    rc, report = run_case("(ops.randn(1),)", "a.item()")
    assert rc == 1 and "Tensor.item()" in report and "(1,) float32" in report, report
    rc, report = run_case("(ops.tensor(2.0),)", "math.sqrt(a)")
    assert rc == 1 and "math.sqrt()" in report, report
    rc, report = run_case("(ops.randn(2),)", "ops.full((2,), a[0])")
    assert rc == 1 and "fill_value" in report, report
