"""The two modes: the MindSpore README example, a corpus of Cells run in
PYNATIVE_MODE and GRAPH_MODE with identical results, graph-mode errors at
the user's own file:line, gradients, and the context."""
import inspect

import numpy as np
import pytest

import spore
from spore import Tensor, Parameter, nn, ops
from spore.ops import operations as P
from spore.ops import functional as F


class Mul(nn.Cell):
    def __init__(self):
        super(Mul, self).__init__()
        self.mul = P.Mul()

    def construct(self, x, y):
        return self.mul(x, y)


def test_mindspore_readme_example(mode, capsys):
    x = Tensor(np.array([1.0, 2.0, 3.0]).astype(np.float32))
    y = Tensor(np.array([4.0, 5.0, 6.0]).astype(np.float32))
    print(Mul()(x, y))
    assert capsys.readouterr().out == "[ 4. 10. 18.]\n"


def test_tensor_add_of_ones():
    out = F.tensor_add(ops.ones((1, 3, 3, 4), spore.float32), ops.ones((1, 3, 3, 4), spore.float32))
    assert out.shape == (1, 3, 3, 4) and (out.asnumpy() == 2).all()
    assert str(out[0, 0, 0]) == "[2. 2. 2. 2.]"


def test_gpu_target_without_gpu_fails_clearly():
    ok, why = spore._C.cuda_available()
    if ok:
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match="no usable GPU: .+"):
        spore.set_context(device_target="GPU")
    assert spore.get_context("device_target") == "CPU"


# ---- a corpus of Cells: control flow, closures, sub-cells, helpers ----

class Dense(nn.Cell):
    def __init__(self, n_in, n_out):
        super().__init__()
        rng = np.random.default_rng(n_in * 10 + n_out)
        self.weight = Parameter(Tensor(rng.standard_normal((n_out, n_in)).astype(np.float32)), name="weight")
        self.bias = Parameter(Tensor(np.zeros(n_out, np.float32)), name="bias")
        self.matmul = P.MatMul(transpose_b=True)

    def construct(self, x):
        return self.matmul(x, self.weight) + self.bias


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = Dense(4, 8)
        self.fc2 = Dense(8, 3)
        self.relu = P.ReLU()
        self.softmax = P.Softmax(axis=-1)

    def construct(self, x):
        return self.softmax(self.fc2(self.relu(self.fc1(x))))


class Loop(nn.Cell):
    def __init__(self):
        super().__init__()
        self.scale = 0.5
        self.reduce = P.ReduceSum(keep_dims=False)

    def step(self, x, i):
        return x * self.scale + i

    def construct(self, x, n):
        acc = x
        i = 0
        while i < n:
            acc = self.step(acc, i)
            i += 1
        for k in range(3):
            if k == 1:
                continue
            acc = acc - k
        return self.reduce(acc, 0), acc


class Branchy(nn.Cell):
    def construct(self, x):
        def shift(v):
            return v + x.mean()
        if x.sum() > 0:
            y = shift(ops.relu(x))
        elif x.sum() < -5:
            y = -x
        else:
            y = ops.exp(x) * 2
        return y[::-1], y.shape[0]


CORPUS = [
    (MLP(), lambda: (Tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)),)),
    (Loop(), lambda: (Tensor(np.arange(3, dtype=np.float32)), 4)),
    (Branchy(), lambda: (Tensor([1.0, -2.0, 3.0]),)),
    (Branchy(), lambda: (Tensor([-4.0, -2.0, -3.0]),)),
    (Branchy(), lambda: (Tensor([-1.0, 0.5, 0.25]),)),
]


def _flat(v):
    if isinstance(v, (tuple, list)):
        return [x for item in v for x in _flat(item)]
    return [v.asnumpy() if isinstance(v, spore.Tensor) else np.asarray(v)]


@pytest.mark.parametrize("k", range(len(CORPUS)))
def test_corpus_graph_equals_pynative(k):
    net, args = CORPUS[k]
    spore.set_context(mode=spore.PYNATIVE_MODE)
    eager = _flat(net(*args()))
    spore.set_context(mode=spore.GRAPH_MODE)
    graph = _flat(net(*args()))
    graph_again = _flat(net(*args()))  # the cached graph
    assert len(eager) == len(graph) > 0
    for e, g, g2 in zip(eager, graph, graph_again):
        np.testing.assert_allclose(g, e, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(g, g2)


def test_mlp_values_against_numpy():
    net = MLP()
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
    h = np.maximum(x @ net.fc1.weight.asnumpy().T, 0) @ net.fc2.weight.asnumpy().T
    ref = np.exp(h) / np.exp(h).sum(-1, keepdims=True)
    for m in (spore.PYNATIVE_MODE, spore.GRAPH_MODE):
        spore.set_context(mode=m)
        np.testing.assert_allclose(net(Tensor(x)).asnumpy(), ref, rtol=1e-5)


def test_cell_registration():
    net = MLP()
    names = [n for n, _ in net.parameters_and_names()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert [p.name for p in net.trainable_params()] == names
    assert [type(c).__name__ for c in net.cells()] == ["Dense", "Dense"]
    net.fc1.bias.requires_grad = False
    assert len(net.trainable_params()) == 3 and len(net.untrainable_params()) == 1
    net.set_train()
    assert net.training and net.fc2.training
    net.set_train(False)
    assert not net.fc1.training


def test_attribute_change_recompiles():
    spore.set_context(mode=spore.GRAPH_MODE)
    net = Loop()
    assert net(Tensor([2.0]), 1)[0].item() == 1.0 - 2.0
    net.scale = 2.0
    assert net(Tensor([2.0]), 1)[0].item() == 4.0 - 2.0


def test_jit_function():
    @spore.jit
    def f(x, n):
        for _ in range(n):
            x = x * 2
        return x
    assert f(Tensor([1.0, 3.0]), 3).tolist() == [8.0, 24.0]


# ---- errors in graph mode point at the user's file and line ----

class Broken(nn.Cell):
    def construct(self, x):
        y = x + 1
        return ops.matmul(y, Tensor([[1.0, 2.0]]))


class Undefined(nn.Cell):
    def construct(self, x):
        return x * no_such_name  # noqa: F821


def _line_of(cls, text):
    lines, first = inspect.getsourcelines(cls.construct)
    return first + next(i for i, ln in enumerate(lines) if text in ln)


def test_runtime_error_points_at_user_line():
    spore.set_context(mode=spore.GRAPH_MODE)
    with pytest.raises(ValueError) as e:
        Broken()(Tensor([1.0, 2.0, 3.0]))
    msg = str(e.value)
    assert msg.startswith(f"{__file__}:{_line_of(Broken, 'ops.matmul')}:")
    assert "matmul" in msg and "return ops.matmul(y, Tensor([[1.0, 2.0]]))" in msg and "^" in msg


def test_name_error_points_at_user_line():
    spore.set_context(mode=spore.GRAPH_MODE)
    with pytest.raises(SyntaxError) as e:
        Undefined()(Tensor([1.0]))
    msg = str(e.value)
    assert msg.startswith(f"{__file__}:{_line_of(Undefined, 'no_such_name')}:")
    assert "name 'no_such_name' is not defined" in msg


# ---- gradients ----

def f_sin(x):
    return (ops.sin(x) * x * x).sum()


def test_grad_matches_analytic(mode):
    x = np.array([0.5, 1.0], np.float32)
    g = spore.grad(f_sin)(Tensor(x)).asnumpy()
    np.testing.assert_allclose(g, np.cos(x) * x * x + 2 * x * np.sin(x), rtol=1e-6)
    v, g2 = spore.value_and_grad(f_sin)(Tensor(x))
    np.testing.assert_allclose(v.asnumpy(), (np.sin(x) * x * x).sum(), rtol=1e-6)
    np.testing.assert_array_equal(g2.asnumpy(), g)
    g3 = ops.GradOperation()(f_sin)(Tensor(x))
    np.testing.assert_array_equal(g3.asnumpy(), g)


class SumDense(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = Dense(3, 2)

    def construct(self, x):
        return self.fc(x).sum()


def test_grad_of_cell_input(mode):
    net = SumDense()
    x = Tensor(np.ones((1, 3), np.float32))
    g = spore.grad(net)(x).asnumpy()
    np.testing.assert_allclose(g, net.fc.weight.asnumpy().sum(0, keepdims=True), rtol=1e-6)


# ---- primitives and the generated functional API ----

def test_ops_generated_from_the_table():
    names = [q[4:] for q in spore._C.api_names() if q.startswith("ops.")]
    assert len(names) > 100
    for n in names:
        assert callable(getattr(ops, n)), n
    assert ops.relu(Tensor([-1.0, 2.0])).tolist() == [0.0, 2.0]
    assert ops.sum(Tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1, keepdim=True).tolist() == [[3.0], [7.0]]


def test_primitive_classes():
    x = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    a = x.asnumpy()
    np.testing.assert_allclose(P.MatMul(transpose_b=True)(x, x).asnumpy(), a @ a.T)
    np.testing.assert_allclose(P.MatMul(transpose_a=True)(x, x).asnumpy(), a.T @ a)
    assert P.ReduceSum()(x).item() == 15.0
    assert P.ReduceSum(keep_dims=True)(x, 1).tolist() == [[3.0], [12.0]]
    assert P.ReduceMean()(x, 0).tolist() == [1.5, 2.5, 3.5]
    np.testing.assert_allclose(P.Softmax(axis=0)(x).asnumpy(), np.exp(a) / np.exp(a).sum(0), rtol=1e-6)
    assert P.Concat(axis=1)((x, x)).shape == (2, 6)
    assert P.Cast()(x, spore.int32).dtype == spore.int32
    m = P.Mul().shard(((1, 2), (1, 2)))
    assert isinstance(m, P.Mul) and m.strategy == ((1, 2), (1, 2))
    assert m(x, 2).tolist() == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]


def test_set_seed_reproducible():
    spore.set_seed(7)
    a = ops.randn(4).tolist()
    spore.set_seed(7)
    assert ops.randn(4).tolist() == a
    assert spore.get_seed() == 7


def test_run_check(capsys):
    assert spore.run_check() is True
    out = capsys.readouterr().out
    assert "installed on platform [CPU] successfully" in out


class BrokenWithWeight(nn.Cell):
    """A Parameter makes the call run a lifted copy of the graph (a module of
    its own), whose run-time errors must still quote the user's line."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.ones((3, 2), np.float32)), name="w")

    def construct(self, x):
        y = x * 2.0
        return ops.matmul(y, self.w)


def test_runtime_error_in_lifted_graph_has_caret_line():
    spore.set_context(mode=spore.GRAPH_MODE)
    with pytest.raises(ValueError) as e:
        BrokenWithWeight()(Tensor(np.ones((2, 4), np.float32)))
    msg = str(e.value)
    line = _line_of(BrokenWithWeight, "ops.matmul")
    assert msg.startswith(f"{__file__}:{line}:"), msg
    quoted, caret = msg.split("\n")[1:3]
    assert quoted == "        return ops.matmul(y, self.w)", msg
    assert caret.strip() == "^" and quoted[len(caret) - 1] != " ", msg
